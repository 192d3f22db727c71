// The officer page's state, driven by the /officer feed (docs/events.md) in seq order.
//
// Offers are keyed by assignment id: a re-offer (`offers` counts them) replaces the
// one shown, so alerts never stack.  Assignments being worked are kept with their
// incident, trail, chat and the steps recorded for them.
import { signal, computed } from "@preact/signals";

export const duty = signal("off_duty"); // available | busy | off_duty
export const offers = signal(new Map()); // assignment_id -> {assignment_id, offers, incident, offered_at}
export const work = signal(new Map()); // assignment_id -> {assignment_id, state, incident, steps: []}
export const selected = signal(null); // assignment_id shown in the assignment view
export const notices = signal([]); // [{id, text}] short messages (assignment cancelled, ...)
// Per incident: trail points, chat messages, notes, the report's text and photos.
export const incidents = signal(new Map()); // incident_id -> {trail, chat, notes, text, photos, loaded}

const ENDED = new Set(["assignment.cleared", "assignment.cancelled", "assignment.declined"]);
const STEPS = new Set(["assignment.accepted", "assignment.en_route", "assignment.on_scene", "assignment.cleared"]);
const INCIDENT_ENDS = new Set(["incident.resolved", "incident.closed", "incident.invalid", "incident.merged", "incident.transferred"]);

function updated(sig, fn) {
  const next = new Map(sig.peek());
  fn(next);
  sig.value = next;
}

export function incidentData(id) {
  let data = incidents.peek().get(id);
  if (!data) {
    data = { trail: [], chat: [], notes: [], text: null, photos: [], loaded: false };
    updated(incidents, (m) => m.set(id, data));
  }
  return data;
}

function touchIncident(id, fn) {
  const data = { ...incidentData(id) };
  fn(data);
  updated(incidents, (m) => m.set(id, data));
}

let noticeSeq = 0;
export function notify(text) {
  const id = ++noticeSeq;
  notices.value = [...notices.peek(), { id, text }];
  setTimeout(() => (notices.value = notices.peek().filter((n) => n.id !== id)), 15000);
}

/** The officer snapshot (GET /api/officers/me/snapshot) or a resume ack's lists. */
export function loadSnapshot(body, { replace = true } = {}) {
  if (body.status) duty.value = body.status;
  updated(offers, (m) => {
    if (replace) m.clear();
    for (const p of body.pending || []) m.set(p.assignment_id, { ...m.get(p.assignment_id), ...p });
  });
  updated(work, (m) => {
    if (replace) m.clear();
    for (const a of body.active || []) m.set(a.assignment_id, { steps: [], ...m.get(a.assignment_id), ...a });
  });
  if (!selected.peek() || !work.peek().has(selected.peek())) selected.value = work.peek().keys().next().value ?? null;
}

/** Apply one feed event (in seq order, each once). `hooks.onOffer(offer)` rings. */
export function applyEvent(event, hooks = {}) {
  const type = event.type;
  if (type === "officer.status") {
    duty.value = event.status;
    return;
  }
  if (type.startsWith("assignment.")) {
    const id = event.assignment_id;
    if (type === "assignment.offered" || type === "assignment.unacknowledged") {
      if (work.peek().has(id)) return;
      const offer = { assignment_id: id, offers: event.offers, incident: event.incident, offered_at: event.at };
      const fresh = !offers.peek().has(id);
      updated(offers, (m) => m.set(id, { ...m.get(id), ...offer }));
      if (type === "assignment.offered") hooks.onOffer?.(offer, fresh);
      return;
    }
    updated(offers, (m) => m.delete(id));
    if (STEPS.has(type)) {
      updated(work, (m) => {
        const kept = m.get(id) || { assignment_id: id, steps: [] };
        const step = { type, at: event.at, captured_at: event.captured_at, place: event.place, seq: event.seq };
        m.set(id, { ...kept, state: type.slice("assignment.".length), incident: event.incident, steps: [...kept.steps, step] });
      });
      if (type === "assignment.accepted" && !selected.peek()) selected.value = id;
    }
    if (ENDED.has(type)) {
      const had = work.peek().has(id);
      updated(work, (m) => m.delete(id));
      if (selected.peek() === id) selected.value = work.peek().keys().next().value ?? null;
      if (had && type === "assignment.cancelled") hooks.onEnded?.(event);
    }
    return;
  }
  if (type === "message.created") {
    const m = event.message;
    touchIncident(m.incident_id, (data) => {
      const rest = data.chat.filter((c) => c.id !== m.id && !(m.client_key && c.client_key === m.client_key && c.local));
      data.chat = [...rest, m];
    });
    hooks.onMessage?.(event);
    return;
  }
  if (type === "incident.updated") {
    const id = event.incident.id;
    touchIncident(id, (data) => {
      if (event.points) data.trail = [...data.trail, ...event.points];
      if (event.kind) data.notes = [...data.notes, { kind: event.kind, text: event.text, at: event.at }];
      if (event.reason) data.notes = [...data.notes, { kind: "cancelled", text: event.reason, at: event.at }];
    });
  }
  if (type.startsWith("incident.") && event.incident) {
    // Every assignment on this incident shows the incident as it now is.
    updated(work, (m) => {
      for (const [aid, a] of m) if (a.incident?.id === event.incident.id) m.set(aid, { ...a, incident: event.incident });
    });
    if (INCIDENT_ENDS.has(type)) hooks.onIncidentEnded?.(event);
  }
}

/** A chat message typed here, shown at once and matched to the server's by client_key. */
export function addLocalMessage(incidentId, message) {
  touchIncident(incidentId, (data) => {
    data.chat = [...data.chat, { ...message, local: true }];
  });
}

/** Fill an incident's trail, notes, text and chat from its history (officer view). */
export function loadHistory(incidentId, events) {
  touchIncident(incidentId, (data) => {
    const chat = new Map(data.chat.map((c) => [c.client_key || c.id, c]));
    const trail = [];
    const notes = [];
    for (const e of events) {
      const p = e.payload || {};
      if (e.type === "incident.created") {
        data.text = p.text ?? null;
        if (p.incident?.lon != null) trail.push({ lon: p.incident.lon, lat: p.incident.lat, time: e.at });
      } else if (e.type === "incident.trail") {
        trail.push(...(p.points || []));
      } else if (e.type === "incident.note") {
        notes.push({ kind: p.kind, text: p.text, at: e.at });
      } else if (e.type === "incident.cancelled") {
        notes.push({ kind: "cancelled", text: p.reason, at: e.at });
      } else if (e.type === "message.created" && (p.message?.thread || "reporter") === "officers") {
        chat.set(p.message.client_key || p.message.id, p.message);
      }
    }
    data.trail = trail;
    data.notes = notes;
    // The steps already recorded for this officer's assignments (after a reload).
    updated(work, (m) => {
      for (const [aid, a] of m) {
        const steps = events
          .filter((e) => STEPS.has(e.type) && e.payload?.assignment_id === aid)
          .map((e) => ({ type: e.type, at: e.at, captured_at: e.payload.captured_at, place: e.payload.place, seq: e.seq }));
        const seen = new Set(steps.map((s) => s.seq));
        m.set(aid, { ...a, steps: [...steps, ...(a.steps || []).filter((s) => !seen.has(s.seq))] });
      }
    });
    data.chat = [...chat.values()].sort((a, b) => Date.parse(a.created_at || 0) - Date.parse(b.created_at || 0));
    data.loaded = true;
  });
}

export const current = computed(() => (selected.value ? work.value.get(selected.value) : null));
