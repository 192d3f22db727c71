// Guaranteed delivery: every submission is written to the outbox in IndexedDB with its
// idempotency key *before* it is sent, then sent and resent until the server has
// answered it: on load, on `online`, when the page becomes visible, and on a back-off
// timer that honours Retry-After.  The server keeps one report per key, so a resend of
// something that did arrive is answered with the first answer, never a second report.
//
// item: {idempotency_key, kind, payload, blobs, captured_at, attempts, next_at,
//        state: waiting | sending | done | failed, answer, error, after}
import { signal } from "@preact/signals";
import { ensureToken } from "./auth.js";
import { outboxAll, outboxPut, outboxGet, casePut, caseGet, newKey } from "./store.js";
import { reloadCases } from "./cases_state.js";

export const items = signal([]); // the outbox as the UI shows it
export const progress = signal({}); // idempotency_key -> 0..1 while uploading
export const online = signal(navigator.onLine);

const MAX_BACKOFF_MS = 60_000;
let timer = null;
let flushing = null;
let again = false;

async function refresh() {
  items.value = await outboxAll();
}

/** Keep it, then try to send it at once.  Resolves when it is safely stored. */
export async function enqueue(kind, payload, { blobs = [], after = null } = {}) {
  const item = {
    idempotency_key: payload.idempotency_key || newKey(kind),
    kind,
    payload,
    blobs,
    after, // the alarm's key this waits for (trail, cancel)
    captured_at: new Date().toISOString(),
    attempts: 0,
    next_at: 0,
    state: "waiting",
    answer: null,
    error: null,
  };
  await outboxPut(item);
  await refresh();
  flush();
  return item;
}

function backoff(attempts) {
  const base = Math.min(1000 * 2 ** Math.max(0, attempts - 1), MAX_BACKOFF_MS);
  return base / 2 + Math.random() * (base / 2);
}

function send(item, token) {
  const { kind, payload } = item;
  if (kind === "alarm") return postJson("/api/alarms", payload, token);
  if (kind === "trail" || kind === "cancel") {
    const channel = payload.call ? "calls" : "alarms"; // a video call has a trail too
    return postJson(`/api/${channel}/${payload.incident_id}/${kind}`, payload.body, token);
  }
  if (kind === "report") return postForm(item, token);
  throw new Error(`unknown outbox kind ${kind}`);
}

function postJson(path, body, token) {
  return fetch(path, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, retryAfter: r.headers.get("Retry-After"), body: await r.json().catch(() => null) }));
}

// XMLHttpRequest rather than fetch: only it reports upload progress.
function postForm(item, token) {
  const form = new FormData();
  for (const [name, value] of Object.entries(item.payload)) {
    if (value !== null && value !== undefined && value !== "") form.append(name, String(value));
  }
  item.blobs.forEach((blob, i) => form.append("images", blob, `photo-${i + 1}.jpg`));
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/reports");
    xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) progress.value = { ...progress.peek(), [item.idempotency_key]: e.loaded / e.total };
    };
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // not JSON (a proxy's page): the status decides
      }
      resolve({ status: xhr.status, retryAfter: xhr.getResponseHeader("Retry-After"), body });
    };
    xhr.onerror = () => reject(new Error("network"));
    xhr.ontimeout = () => reject(new Error("timeout"));
    xhr.timeout = 120_000;
    xhr.send(form);
  });
}

async function received(item, answer) {
  if (item.kind === "alarm" || item.kind === "report") {
    const kept = (await caseGet(answer.case_no)) || {};
    await casePut({
      timeline: [],
      messages: [],
      ...kept,
      case_no: answer.case_no,
      incident_id: answer.incident_id,
      tracking_token: answer.tracking_token,
      kind: item.kind,
      tag: item.payload.tag,
      key: item.idempotency_key,
      status: kept.status || answer.status,
      precinct: answer.precinct,
      received_at: kept.received_at || new Date().toISOString(),
    });
    await reloadCases();
  }
}

/** Resolve `after`: the alarm this waits for must have its incident id first. */
async function ready(item) {
  if (!item.after) return true;
  const alarm = await outboxGet(item.after);
  if (!alarm) return false;
  if (alarm.state === "failed") {
    item.state = "failed";
    item.error = alarm.error;
    await outboxPut(item);
    return false;
  }
  if (alarm.state !== "done") return false;
  item.payload.incident_id = alarm.answer.incident_id;
  return true;
}

async function flushOnce() {
  let token;
  const now = Date.now();
  const due = (await outboxAll()).filter((i) => (i.state === "waiting" || i.state === "sending") && i.next_at <= now);
  for (const item of due) {
    if (!(await ready(item))) continue;
    try {
      token ||= await ensureToken();
    } catch {
      online.value = navigator.onLine;
      return; // no network: everything waits for the next try
    }
    item.state = "sending";
    item.attempts += 1;
    await outboxPut(item);
    await refresh();
    let result;
    try {
      result = await send(item, token);
    } catch {
      item.state = "waiting";
      item.next_at = Date.now() + backoff(item.attempts);
      await outboxPut(item);
      continue;
    }
    online.value = true;
    if (result.status >= 200 && result.status < 300) {
      item.state = "done";
      item.answer = result.body;
      performance.mark(`m110:acked:${item.idempotency_key}`);
      item.blobs = []; // the server has them: free the phone's storage
      await received(item, result.body || {});
    } else if (result.status === 401) {
      token = await ensureToken({ force: true }).catch(() => null);
      item.state = "waiting";
      item.next_at = 0;
    } else if (result.status === 429 || result.status === 503 || result.status >= 500 || result.status === 0) {
      const wait = Number(result.retryAfter) * 1000;
      item.state = "waiting";
      item.next_at = Date.now() + (wait > 0 ? wait : backoff(item.attempts));
    } else {
      // Refused for what it is (a 4xx naming the problem): sending it again cannot help.
      item.state = "failed";
      item.error = result.body?.error?.message || `HTTP ${result.status}`;
    }
    const { [item.idempotency_key]: _, ...rest } = progress.peek();
    progress.value = rest;
    await outboxPut(item);
  }
  await refresh();
}

function schedule() {
  clearTimeout(timer);
  const waiting = items.peek().filter((i) => i.state === "waiting" || i.state === "sending");
  if (!waiting.length) return;
  const soonest = Math.min(...waiting.map((i) => i.next_at || 0));
  // At least every 15 s while something waits (a fix, a network that came back quietly).
  timer = setTimeout(flush, Math.min(Math.max(soonest - Date.now(), 250), 15_000));
}

/** Send whatever is due; one flush at a time (a second request runs after it). */
export function flush() {
  if (flushing) {
    again = true;
    return flushing;
  }
  flushing = (async () => {
    try {
      do {
        again = false;
        await flushOnce();
      } while (again);
    } catch (err) {
      console.warn("outbox: flush failed", err);
    } finally {
      flushing = null;
      schedule();
    }
  })();
  return flushing;
}

export async function startOutbox() {
  // A send cut off by a closed page is "sending" in the store: it goes again.
  await refresh();
  window.addEventListener("online", () => {
    online.value = true;
    for (const item of items.peek()) if (item.state === "waiting") item.next_at = 0;
    Promise.all(items.peek().filter((i) => i.state === "waiting").map(outboxPut)).then(flush);
  });
  window.addEventListener("offline", () => {
    online.value = false;
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") flush();
  });
  flush();
}

/** The outbox item of `key` as the UI sees it (signal-driven). */
export function itemOf(key) {
  return items.value.find((i) => i.idempotency_key === key) || null;
}
