// The page's memory on the phone (IndexedDB through idb): the device and its tokens,
// the outbox of submissions not yet acknowledged, and the reporter's cases.  Nothing
// here needs the network, so the page opens and takes an alarm offline.
import { openDB } from "idb";

const DB_NAME = "m110-report";

let dbPromise;
export function db() {
  dbPromise ||= openDB(DB_NAME, 1, {
    upgrade(database) {
      database.createObjectStore("kv");
      const outbox = database.createObjectStore("outbox", { keyPath: "idempotency_key" });
      outbox.createIndex("captured_at", "captured_at");
      database.createObjectStore("cases", { keyPath: "case_no" });
    },
  });
  return dbPromise;
}

export async function getKv(key) {
  return (await db()).get("kv", key);
}

export async function setKv(key, value) {
  return (await db()).put("kv", value, key);
}

export async function outboxAll() {
  return (await db()).getAllFromIndex("outbox", "captured_at");
}

export async function outboxPut(item) {
  return (await db()).put("outbox", item);
}

export async function outboxGet(key) {
  return (await db()).get("outbox", key);
}

export async function casesAll() {
  const all = await (await db()).getAll("cases");
  return all.sort((a, b) => (b.received_at || "").localeCompare(a.received_at || ""));
}

export async function casePut(item) {
  return (await db()).put("cases", item);
}

export async function caseGet(caseNo) {
  return (await db()).get("cases", caseNo);
}

/** A key no other submission of this device will have (also offline). */
export function newKey(kind) {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  const rand = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${kind}-${Date.now().toString(36)}-${rand}`;
}
