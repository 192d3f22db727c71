// The console's state: open incidents, officers and assignments, kept current by the
// feed.  Events are applied to plain Maps at once; the views re-render at most once a
// frame (`version`), so a burst of 200 alarms a second costs a few renders, not 200.
import { signal, computed, batch } from "@preact/signals";

export const OPEN = new Set(["queued", "claimed", "assigned", "escalated"]);

export const me = signal(null); // the signed-in user
export const incidents = new Map(); // id -> IncidentSnapshot
export const officers = new Map(); // id -> {id, callsign, status, lon, lat, position_at}
export const assignments = new Map(); // incident id -> Map(assignment id -> {...})
export const version = signal(0);
export const officerVersion = signal(0);
export const selectedId = signal(null);
export const cursorId = signal(null); // the row the keyboard is on
export const fresh = new Set(); // arrived while watching, not yet claimed: the alarm sounds
export const search = signal("");
export const precincts = signal([]); // [{code, name}] of the map's layer: transfer targets
export const timelines = new Map(); // incident id -> {events: [], messages: []} while open
export const timelineVersion = signal(0);
const listeners = new Set(); // (event) => void, for the open detail pane

// The open incident's own changes (`selectedVersion`): its detail pane re-renders for
// those, not for every one of 200 alarms a second elsewhere in the queue.
export const selectedVersion = signal(0);
let selectedDirty = false;

let frame = 0;
function changed(id) {
  if (id !== undefined && id === selectedId.peek()) selectedDirty = true;
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    batch(() => {
      version.value++;
      if (selectedDirty) selectedVersion.value++;
      selectedDirty = false;
    });
  });
}

export function inScope(incident) {
  const user = me.peek();
  if (!user || user.role === "commander" || user.role === "admin") return true;
  const scope = incident.precinct_code ?? incident.nearest_precinct_code;
  return scope == null || user.precincts.includes(scope);
}

export function putIncident(incident) {
  const before = incidents.get(incident.id);
  if (OPEN.has(incident.state) && inScope(incident)) {
    if (before && before.version > incident.version) return; // never go back in time
    if (before) unplace(before);
    incidents.set(incident.id, incident);
    place(incident);
    if (incident.state !== "queued") fresh.delete(incident.id);
  } else {
    if (before) unplace(before);
    incidents.delete(incident.id);
    fresh.delete(incident.id);
    if (selectedId.peek() !== incident.id) assignments.delete(incident.id);
    gone.set(incident.id, incident);
    if (gone.size > GONE_KEPT) gone.delete(gone.keys().next().value);
  }
  if (!moved.all) moved.add(incident.id);
  changed(incident.id);
}

// Open incidents in scope that the snapshot counted (`totals`) but did not load (it
// holds those in hand and the top of the queue, at most 2,000): counted in the top bar
// until an event brings one in (or a fresh snapshot counts again).
export const beyond = { open: 0, queued: 0, bySeverity: { 1: 0, 2: 0, 3: 0, 4: 0 } };

function countBeyond(body) {
  beyond.open = 0;
  beyond.queued = 0;
  beyond.bySeverity = { 1: 0, 2: 0, 3: 0, 4: 0 };
  const totals = body.totals;
  if (!body.more || !totals) return;
  let queued = 0;
  const bySeverity = { 1: 0, 2: 0, 3: 0, 4: 0 };
  for (const i of body.incidents) {
    if (i.state === "queued") queued++;
    bySeverity[i.severity] = (bySeverity[i.severity] || 0) + 1;
  }
  beyond.open = Math.max(0, totals.open - body.incidents.length);
  beyond.queued = Math.max(0, totals.queued - queued);
  for (const s of [1, 2, 3, 4]) beyond.bySeverity[s] = Math.max(0, (totals.by_severity?.[s] || 0) - bySeverity[s]);
}

/** An event about an incident not loaded, not new: one of those counted beyond (most
 * likely; one transferred in from elsewhere is counted out once too many, until the
 * next snapshot). */
function intoView(event) {
  if (!beyond.open || event.type === "incident.created") return;
  const id = event.incident.id;
  if (incidents.has(id) || gone.has(id)) return;
  beyond.open--;
  if (beyond.queued > 0) beyond.queued--;
  const s = event.incident.severity;
  if (beyond.bySeverity[s] > 0) beyond.bySeverity[s]--;
}

export function loadSnapshot(body) {
  stats.lastSeq = body.seq;
  countBeyond(body);
  batch(() => {
    incidents.clear();
    fresh.clear();
    for (const incident of body.incidents) incidents.set(incident.id, incident);
    ordered.length = 0;
    for (const incident of incidents.values()) ordered.push(incident);
    ordered.sort(rank);
    moved.clear();
    moved.all = true;
    changed();
  });
}

/** The report's words, photo count, possible duplicates and live calls (not in the
 * snapshot).  A call live then stays marked until its call.ended arrives. */
export function annotate(list) {
  for (const a of list) {
    if (a.live_call) liveCalls.add(a.id);
    const i = incidents.get(a.id);
    if (!i) continue;
    i.live_call = liveCalls.has(a.id);
    i.text = a.text;
    i.images = a.images;
    i.possible_duplicates = a.possible_duplicates;
    if (a.id === selectedId.peek()) changed(a.id);
  }
  changed();
}

export function loadOfficers(list) {
  officers.clear();
  for (const o of list) officers.set(o.id, o);
  officerVersion.value++;
}

function putAssignment(event) {
  const forIncident = assignments.get(event.incident.id) || new Map();
  const state = event.type.slice("assignment.".length);
  const before = forIncident.get(event.assignment_id);
  if (before && before.seq >= event.seq) return; // history that live events overtook
  forIncident.set(event.assignment_id, {
    id: event.assignment_id,
    officer_id: event.officer_id,
    callsign: event.callsign,
    state,
    offers: event.offers ?? before?.offers ?? 1,
    offered_at: before?.offered_at ?? event.at, // re-offers keep counting from the first
    changed_at: event.at,
    reason: event.reason,
    seq: event.seq,
  });
  assignments.set(event.incident.id, forIncident);
}

// What tests and the benchmark read: events applied, and any that came out of order.
export const stats = {
  applied: 0,
  regressions: 0,
  lastSeq: 0,
  created: new Map(),
  // Off unless a test or benchmark turns it on: how often each incident.created was
  // applied, and when each new incident's row was first rendered.
  tracking: false,
  pendingRender: [],
  arrivedAt: new Map(), // id -> when its incident.created was applied
  renderedAt: new Map(), // id -> when its row was first rendered
  /** The benchmark's reading: {id: [arrived, rendered]} of the rows rendered since the
   * last call, then forgotten here (so the page's heap holds none of the bench's data). */
  take() {
    const out = {};
    for (const [id, at] of stats.renderedAt) {
      out[id] = [stats.arrivedAt.get(id), at];
      stats.arrivedAt.delete(id);
      stats.created.delete(id);
    }
    stats.renderedAt.clear();
    return out;
  },
};

/** Called by the queue after each commit: stamps the incidents that just got a row. */
export function markRendered() {
  if (!stats.pendingRender.length) return;
  const at = performance.timeOrigin + performance.now();
  for (const id of stats.pendingRender) stats.renderedAt.set(id, at);
  stats.pendingRender.length = 0;
}

export function applyEvent(event) {
  const type = event.type;
  stats.applied++;
  if (event.seq <= stats.lastSeq) stats.regressions++;
  stats.lastSeq = event.seq;
  if (type === "incident.created" && stats.tracking) {
    // Tests and the benchmark only: a 24-hour console keeps nothing per incident ever seen.
    stats.created.set(event.incident.id, (stats.created.get(event.incident.id) || 0) + 1);
    stats.pendingRender.push(event.incident.id);
    stats.arrivedAt.set(event.incident.id, performance.timeOrigin + performance.now());
  }
  if (type.startsWith("officer.")) {
    const o = officers.get(event.officer_id) || { id: event.officer_id, callsign: String(event.officer_id) };
    if (type === "officer.position") Object.assign(o, { lon: event.lon, lat: event.lat, accuracy_m: event.accuracy_m, position_at: event.position_at });
    if (type === "officer.status") o.status = event.status;
    officers.set(o.id, o);
    officerVersion.value++;
  }
  if (type.startsWith("assignment.")) {
    putAssignment(event);
    // Free/busy comes from the officer.status events the server sends with accept,
    // clear and an incident's end (as with duty): nothing is guessed here.
    officerVersion.value++;
  }
  if (type.startsWith("call.")) {
    const id = event.incident?.id || event.incident_id;
    if (id && type === "call.ended") liveCalls.delete(id);
    else if (id) liveCalls.add(id);
    const i = incidents.get(id);
    if (i) i.live_call = liveCalls.has(id);
    changed(id);
  }
  if (event.incident) {
    if (event.incident && liveCalls.has(event.incident.id)) event.incident.live_call = true;
    if (type === "incident.created" && event.incident.state === "queued") fresh.add(event.incident.id);
    if (type === "incident.created") {
      // The report's text and photo count come only with this event.
      event.incident.text = event.text;
      event.incident.images = event.images;
      event.incident.possible_duplicates = event.possible_duplicates;
    } else {
      const before = incidents.get(event.incident.id);
      if (before) {
        event.incident.text = before.text;
        event.incident.images = before.images;
        event.incident.possible_duplicates = before.possible_duplicates;
      }
    }
    intoView(event);
    putIncident(event.incident);
  }
  const incidentId = event.incident?.id || event.message?.incident_id;
  if (incidentId && timelines.has(incidentId)) {
    const timeline = timelines.get(incidentId);
    if (!timeline.seqs.has(event.seq)) {
      timeline.seqs.add(event.seq);
      timeline.events.push(event);
      timelineVersion.value++;
    }
  }
  for (const fn of listeners) fn(event);
}

export function listen(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

// The queue as the server ranks it (`ORDER BY priority_score, id` in the store): the
// queued by score, then the rest in hand by score.  Kept sorted as events arrive (a
// binary search and one splice per change), so a frame never sorts the whole queue.
const ordered = []; // every open incident, in `rank` order
function rank(a, b) {
  const held = (a.state !== "queued") - (b.state !== "queued");
  if (held) return held;
  return a.priority_score - b.priority_score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
function slot(incident) {
  let lo = 0;
  let hi = ordered.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (rank(ordered[mid], incident) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
function place(incident) {
  ordered.splice(slot(incident), 0, incident);
}
function unplace(incident) {
  // Found where it was ranked; annotations change an incident in place but never its rank.
  let at = slot(incident);
  if (ordered[at] !== incident) at = ordered.indexOf(incident);
  if (at >= 0) ordered.splice(at, 1);
}

// Incidents added, changed or gone since the map last looked (`all`: redraw everything).
export const moved = Object.assign(new Set(), { all: true });

function matches(i, q) {
  return i.case_no.toLowerCase().includes(q) || i.tag.toLowerCase().includes(q) || (i.text || "").toLowerCase().includes(q) || (tagNames.get(i.tag) || "").includes(q);
}

/** The queue in the server's order, filtered by the search: a new array each frame. */
export const rows = computed(() => {
  version.value;
  const q = search.value.trim().toLowerCase();
  return q ? ordered.filter((i) => matches(i, q)) : ordered.slice();
});

export const counts = computed(() => {
  version.value;
  const bySeverity = { 1: 0, 2: 0, 3: 0, 4: 0 };
  let overdue = 0;
  let queued = 0;
  for (const i of incidents.values()) {
    bySeverity[i.severity] = (bySeverity[i.severity] || 0) + 1;
    if (i.overdue && i.state === "queued") overdue++;
    if (i.state === "queued") queued++;
  }
  // With those the snapshot counted but did not load (`beyond`, not in the queue's rows).
  for (const s of [1, 2, 3, 4]) bySeverity[s] += beyond.bySeverity[s];
  return { bySeverity, overdue, queued: queued + beyond.queued, open: incidents.size + beyond.open, beyond: beyond.open };
});

export const officerCounts = computed(() => {
  officerVersion.value;
  let free = 0;
  let busy = 0;
  for (const o of officers.values()) {
    if (o.status === "available") free++;
    else if (o.status === "busy") busy++;
  }
  return { free, busy };
});

export const staffNames = new Map();
export const tagNames = new Map(); // tag code -> "绑架 kidnapping" (search matches both)

// Incidents that left the open set (resolved, merged, ...) stay readable in the detail
// pane while selected (resolved ones still need closing).
export const gone = new Map();
const GONE_KEPT = 200;
export const focusTrail = signal(null); // {id, trail} of the open incident, for the map

/** An assignment event from the history (the page opened after it happened). */
export function absorbAssignment(event, incidentId) {
  putAssignment({ ...event, incident: event.incident || { id: incidentId } });
  officerVersion.value++;
}

// Incidents with a citizen's call in progress (call.started ... call.ended).
export const liveCalls = new Set();
