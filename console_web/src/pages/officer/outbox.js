// The outbox: status steps, answers and chat messages wait here, stamped with when and
// where they were tapped, until the server has acknowledged them.  Each carries an
// idempotency key, so sending one again after a lost acknowledgement records nothing
// twice (the server answers with its first answer).  Kept in IndexedDB: a reload, a
// crashed tab or a dead battery does not lose what the officer tapped.
//
//   const box = createOutbox({ send: (item) => emitWithAck(...), canSend: () => bool });
//   box.add({ kind: "status", payload: {...}, label: "到达现场" });
//   box.items.value  // what is waiting, oldest first: [{key, kind, label, state, error, ...}]
import { openDB } from "idb";
import { signal } from "@preact/signals";

const DB = "m110-officer";
const STORE = "outbox";
// Answers that mean "not now": keep the item and try again later.
const TRANSIENT = new Set(["network", "timeout", "dependency_unavailable", "internal", "busy", "rate_limited", "unauthorized"]);

export function newKey(prefix = "m110") {
  const random = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
  return `${prefix}-${random}`;
}

async function openStore() {
  try {
    return await openDB(DB, 1, {
      upgrade(db) {
        db.createObjectStore(STORE, { keyPath: "key" });
      },
    });
  } catch (err) {
    console.warn("outbox: IndexedDB refused, kept in memory only", err);
    return null;
  }
}

export function createOutbox({ send, canSend, onSent = () => {}, onFailed = () => {}, owner = () => "" }) {
  const items = signal([]);
  const dbReady = openStore();
  let flushing = false;
  let retryTimer = null;
  let backoffMs = 2000;

  async function persist(item) {
    const db = await dbReady;
    if (db) await db.put(STORE, item).catch((err) => console.warn("outbox: not kept", err));
  }
  async function forget(key) {
    const db = await dbReady;
    if (db) await db.delete(STORE, key).catch(() => {});
  }
  function show() {
    items.value = [...memory.values()].sort((a, b) => a.created - b.created);
  }
  const memory = new Map();

  async function load() {
    const db = await dbReady;
    if (!db) return;
    for (const item of await db.getAll(STORE)) {
      // Another officer's leftovers on a shared phone are not sent as this one.
      if (item.owner && item.owner !== owner()) continue;
      memory.set(item.key, { ...item, state: item.state === "failed" ? "failed" : "waiting" });
    }
    show();
    flush();
  }

  function add({ kind, payload, label, incidentId = null }) {
    const item = {
      key: payload.client_key,
      kind,
      payload,
      label,
      incidentId,
      owner: owner(),
      created: Date.now(),
      attempts: 0,
      state: "waiting",
      error: null,
    };
    memory.set(item.key, item);
    show();
    persist(item);
    flush();
    return item;
  }

  function schedule() {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(flush, backoffMs);
    backoffMs = Math.min(backoffMs * 2, 30000);
  }

  async function flush() {
    if (flushing) return;
    if (!canSend()) {
      if (items.peek().some((i) => i.state === "waiting")) schedule();
      return;
    }
    flushing = true;
    try {
      // In order: an officer's steps are meant to arrive in the order they were tapped.
      for (const item of [...memory.values()].sort((a, b) => a.created - b.created)) {
        if (item.state === "failed") continue;
        if (!canSend()) break;
        item.state = "sending";
        item.attempts += 1;
        show();
        let answer;
        try {
          answer = await send(item);
        } catch (err) {
          answer = { ok: false, error: { code: "timeout", message: err?.message || "no answer" } };
        }
        if (answer?.ok) {
          memory.delete(item.key);
          await forget(item.key);
          show();
          backoffMs = 2000;
          onSent(item, answer);
          continue;
        }
        const code = answer?.error?.code || "network";
        if (TRANSIENT.has(code)) {
          item.state = "waiting";
          item.error = answer?.error?.message || code;
          show();
          persist(item);
          schedule();
          return;
        }
        // Refused for good (e.g. the assignment ended meanwhile): shown, not retried.
        item.state = "failed";
        item.error = answer?.error?.message || code;
        show();
        persist(item);
        onFailed(item, answer);
      }
    } finally {
      flushing = false;
    }
  }

  function discard(key) {
    memory.delete(key);
    forget(key);
    show();
  }

  load();
  return { items, add, flush, discard };
}
