// The reporter's cases as the UI sees them, and the live /citizen feed that updates
// them (`case.status`, the dispatcher's `message.created`).  The feed resumes from the
// last seq this phone applied (kept in IndexedDB), so nothing said while the phone was
// away is lost.
import { signal } from "@preact/signals";
import { createFeed } from "../../shared/feed.js";
import { account, ensureToken } from "./auth.js";
import { casesAll, casePut, caseGet, getKv, setKv } from "./store.js";

export const cases = signal([]);
export let feed = null;

export async function reloadCases() {
  cases.value = await casesAll();
}

const OPEN = new Set(["queued", "claimed", "assigned", "escalated"]);
export const isOpen = (status) => OPEN.has(status);

function stepKey(at, event) {
  return `${Date.parse(at)}|${event}`;
}

function addStep(kept, step) {
  const timeline = kept.timeline || [];
  const key = stepKey(step.at, step.event);
  if (timeline.some((s) => stepKey(s.at, s.event) === key)) return timeline;
  return [...timeline, step].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
}

/** The server's view of one case: its status and whole timeline (messages too). */
export async function refreshCase(caseNo) {
  const kept = await caseGet(caseNo);
  if (!kept) return;
  const response = await fetch(`/api/cases/${encodeURIComponent(caseNo)}`, {
    headers: { Authorization: `Bearer ${kept.tracking_token}` },
  });
  if (!response.ok) return;
  const body = await response.json();
  let timeline = kept.timeline || [];
  for (const step of body.timeline) timeline = addStep({ timeline }, step);
  // Re-read after the fetch: a feed event or the rating form may have written meanwhile.
  const now = (await caseGet(caseNo)) || kept;
  await casePut({ ...now, status: body.status, precinct: body.precinct, timeline, rating: body.rating ?? now.rating ?? null });
  await reloadCases();
}

async function applyEvent(event) {
  if (event.type === "case.status" && event.case_no) {
    const kept = await caseGet(event.case_no);
    if (kept) {
      await casePut({
        ...kept,
        status: event.status,
        rating: event.event === "incident.rated" ? kept.rating || true : kept.rating,
        timeline: addStep(kept, { at: event.at, event: event.event || "", text: event.text }),
      });
    }
  } else if (event.type === "message.created" && event.message) {
    const caseNo = event.case_no;
    const all = await casesAll();
    const kept = all.find((c) => c.case_no === caseNo || c.incident_id === event.message.incident_id);
    if (kept && !(kept.messages || []).some((m) => m.id === event.message.id)) {
      await casePut({ ...kept, messages: [...(kept.messages || []), event.message] });
    }
  }
  if (typeof event.seq === "number") await setKv("feed_seq", event.seq);
  await reloadCases();
}

export function startFeed() {
  if (feed) return feed;
  feed = createFeed({
    namespace: "/citizen",
    getToken: () => account.peek()?.token,
    // The "snapshot": every case this phone knows, fetched again; the feed resumes
    // from the last seq applied here (steps seen twice are recognised and kept once).
    loadSnapshot: async () => {
      await ensureToken().catch(() => null);
      for (const kept of await casesAll()) await refreshCase(kept.case_no).catch(() => null);
      return (await getKv("feed_seq")) ?? null;
    },
    onEvent: (event) => {
      applyEvent(event);
    },
    onSessionEnded: async () => {
      await ensureToken({ force: true }).catch(() => null);
      setTimeout(() => feed.restart(), 1000);
    },
  });
  ensureToken()
    .catch(() => null)
    .then(() => feed.start());
  return feed;
}

/** A chat message to the dispatcher, over the open socket (idempotent by client_key). */
export async function sendMessage(kept, body) {
  const clientKey = `m-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  const ack = await feed.socket.timeout(15000).emitWithAck("message", {
    incident_id: kept.incident_id,
    body,
    client_key: clientKey,
  });
  if (!ack?.ok) throw new Error(ack?.error?.message || "not sent");
  const fresh = await caseGet(kept.case_no);
  await casePut({ ...fresh, messages: [...(fresh.messages || []), ack.message] });
  await reloadCases();
  return ack.message;
}
