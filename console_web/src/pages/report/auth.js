// The device's citizen account: registered on first open, its short-lived token
// refreshed before it expires (and again when the server says 401), both kept in
// IndexedDB so a reload or an offline open still knows who it is.
import { signal } from "@preact/signals";
import { getKv, setKv, newKey } from "./store.js";

export const account = signal(null); // {citizen_id, token, token_expires_at, refresh_token, ..., verification}
const EARLY_MS = 60_000; // refresh a minute before expiry

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const parsed = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(parsed?.error?.message || `HTTP ${response.status}`);
    error.status = response.status;
    error.retryAfter = Number(response.headers.get("Retry-After")) || null;
    throw error;
  }
  return parsed;
}

async function keep(tokens) {
  const kept = { ...(account.peek() || {}), ...tokens };
  await setKv("account", kept);
  account.value = kept;
  return kept;
}

export async function loadAccount() {
  const kept = await getKv("account");
  if (kept) account.value = kept;
  return kept;
}

let pending = null;
/** A valid token (registering or refreshing as needed); throws when offline. */
export function ensureToken({ force = false } = {}) {
  pending ||= (async () => {
    try {
      let current = account.peek() || (await loadAccount());
      if (!current) {
        let device = await getKv("device_id");
        if (!device) {
          device = newKey("device");
          await setKv("device_id", device);
        }
        current = await keep(await post("/api/citizens", { device_id: device, platform: "web" }));
      }
      const expires = Date.parse(current.token_expires_at);
      if (force || !(expires - EARLY_MS > Date.now())) {
        try {
          current = await keep(await post("/api/citizens/refresh", { refresh_token: current.refresh_token }));
        } catch (err) {
          if (err.status !== 401 && err.status !== 400) throw err;
          // The refresh token is gone too: this device registers again (its cases keep
          // their tracking tokens, so they stay visible).
          await setKv("account", null);
          account.value = null;
          const device = await getKv("device_id");
          current = await keep(await post("/api/citizens", { device_id: device, platform: "web" }));
        }
      }
      return current.token;
    } finally {
      pending = null;
    }
  })();
  return pending;
}

/** Refresh on a timer too, so the live feed reconnects with a valid token. */
export function keepFresh() {
  const tick = async () => {
    try {
      await ensureToken();
    } catch {
      // offline: the outbox and the feed ask again when the network returns
    }
    const current = account.peek();
    const left = current ? Date.parse(current.token_expires_at) - Date.now() - EARLY_MS : 30_000;
    setTimeout(tick, Math.min(Math.max(left, 5_000), 30 * 60_000));
  };
  tick();
}

export async function setVerification(level) {
  if (account.peek()) await keep({ verification: level });
}

/** JSON to the API with the citizen's token; one retry after a refresh on 401. */
export async function api(method, path, body) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const token = await ensureToken({ force: attempt > 0 });
    const response = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (response.status === 401 && attempt === 0) continue;
    const parsed = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new Error(parsed?.error?.message || `HTTP ${response.status}`);
      error.status = response.status;
      error.field = parsed?.error?.field;
      throw error;
    }
    return parsed;
  }
  return null;
}
