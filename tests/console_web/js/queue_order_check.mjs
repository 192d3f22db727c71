// Drives console_web/src/pages/console/state.js with random feed events and checks,
// after every one, that the queue it keeps sorted incrementally is exactly the full
// sort in the server's order (queued by priority_score then id, then those in hand),
// with and without a search.  Prints one JSON object; test_queue_order_js.py checks it.
const [, , statePath] = process.argv;
globalThis.requestAnimationFrame = (fn) => setTimeout(fn, 0);
const state = await import(statePath);

let seed = 110;
function random() {
  // mulberry32: the same run every time
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(random() * list.length)];
const uuid = () => "xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx".replace(/x/g, () => Math.floor(random() * 16).toString(16));

function expected(q = "") {
  const all = [...state.incidents.values()].filter((i) => !q || i.case_no.toLowerCase().includes(q));
  const order = (a, b) => a.priority_score - b.priority_score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return [...all.filter((i) => i.state === "queued").sort(order), ...all.filter((i) => i.state !== "queued").sort(order)].map((i) => i.id);
}

state.me.value = { id: 1, role: "commander", precincts: [] };
const live = new Map(); // id -> latest snapshot sent
let seq = 0;
let n = 0;
const scores = [100, 200, 200, 300, 300, 300, 400]; // ties are common: the id decides
function incident(id, fields) {
  const before = live.get(id);
  const next = { id, case_no: before?.case_no ?? `N${String(++n).padStart(5, "0")}`, tag: "fire", severity: 2,
    state: "queued", priority_score: pick(scores) + random() * (random() < 0.5 ? 0 : 1), version: (before?.version ?? 0) + 1,
    lon: 118.8, lat: 32.06, received_at: "2026-12-07T00:00:00Z", ...before, ...fields };
  next.version = (before?.version ?? 0) + 1;
  live.set(id, next);
  return next;
}
state.loadSnapshot({ seq: 0, incidents: Array.from({ length: 50 }, () => incident(uuid(), {})) });

let checks = 0;
const mismatches = [];
function check(label) {
  state.version.value++; // what the next animation frame does
  for (const q of ["", "n000"]) {
    state.search.value = q;
    const got = state.rows.value.map((i) => i.id);
    const want = expected(q);
    checks++;
    if (JSON.stringify(got) !== JSON.stringify(want) && mismatches.length < 3) mismatches.push({ label, q, got: got.length, want: want.length });
  }
  state.search.value = "";
}

for (let step = 0; step < 3000; step++) {
  const ids = [...live.keys()].filter((id) => ["queued", "claimed", "assigned", "escalated"].includes(live.get(id).state));
  const roll = random();
  let event;
  if (roll < 0.3 || ids.length < 5) {
    event = { type: "incident.created", incident: incident(uuid(), {}) };
  } else if (roll < 0.45) {
    event = { type: "incident.claimed", incident: incident(pick(ids), { state: "claimed", claimed_by: 1 }) };
  } else if (roll < 0.55) {
    event = { type: "incident.released", incident: incident(pick(ids), { state: "queued", claimed_by: null }) };
  } else if (roll < 0.65) {
    event = { type: "incident.escalated", incident: incident(pick(ids), { state: "escalated", priority_score: pick(scores) }) };
  } else if (roll < 0.72) {
    event = { type: "incident.updated", incident: incident(pick(ids), { priority_score: pick(scores) }) };
  } else if (roll < 0.95) {
    event = { type: pick(["incident.invalid", "incident.resolved", "incident.merged"]), incident: incident(pick(ids), { state: pick(["invalid", "resolved", "merged"]) }) };
  } else {
    // An old copy arriving late (a verb's answer after the feed's newer event): ignored.
    const id = pick(ids);
    event = { type: "incident.updated", incident: { ...live.get(id), version: live.get(id).version - 1, priority_score: -1 } };
  }
  event.seq = ++seq;
  state.applyEvent(event);
  check(`${step} ${event.type}`);
  if (step === 1500) {
    // A resync: a fresh snapshot of what is open now.
    state.loadSnapshot({ seq, incidents: [...live.values()].filter((i) => ["queued", "claimed", "assigned", "escalated"].includes(i.state)) });
    check("snapshot");
  }
}

// A bounded snapshot (as the server's: those in hand, then the most urgent queued, at
// most `limit`, with `totals` of all): the top bar's counts stay those of every open
// incident while events bring the others in one by one.
const OPEN = ["queued", "claimed", "assigned", "escalated"];
const order = (a, b) => (a.state === "queued") - (b.state === "queued") || a.priority_score - b.priority_score || (a.id < b.id ? -1 : 1);
const openNow = () => [...live.values()].filter((i) => OPEN.includes(i.state));
const all = openNow().sort(order);
const limit = 10;
state.loadSnapshot({ seq, incidents: all.slice(0, limit), more: all.length > limit,
  totals: { open: all.length, queued: all.filter((i) => i.state === "queued").length, by_severity: { 2: all.length } } });
const beyondMismatches = [];
for (let step = 0; step < 300; step++) {
  const ids = openNow().map((i) => i.id);
  const roll = random();
  const id = pick(ids);
  const event = roll < 0.2 ? { type: "incident.created", incident: incident(uuid(), {}) }
    : roll < 0.6 ? { type: "incident.claimed", incident: incident(id, { state: "claimed" }) }
    : { type: "incident.resolved", incident: incident(id, { state: "resolved" }) };
  event.seq = ++seq;
  state.applyEvent(event);
  state.version.value++; // what the next animation frame does
  const c = state.counts.value;
  const want = openNow().length;
  if ((c.open !== want || c.bySeverity[2] !== want) && beyondMismatches.length < 3) beyondMismatches.push({ step, got: c.open, want });
}
const beyondLeft = state.counts.value.beyond;
console.log(JSON.stringify({ checks, open: state.incidents.size, mismatches, beyondMismatches, beyondAtStart: all.length - limit, beyondLeft }));
process.exit(0);
