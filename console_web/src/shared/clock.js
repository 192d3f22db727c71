// The server's time, as well as the browser can know it: waiting times are counted
// from it (a PC clock that is minutes off must not make a queue look calm).
import { signal } from "@preact/signals";

let offsetMs = 0;
/** Milliseconds since the epoch on the server's clock. */
export const serverNow = () => Date.now() + offsetMs;

/** `server_ms` was read on the server between `sentAt` and `receivedAt` (local). */
export function learnServerTime(serverMs, sentAt, receivedAt) {
  offsetMs = serverMs - (sentAt + receivedAt) / 2;
}

/** A signal that ticks every `ms` with serverNow(): one timer for every clock on a page. */
export const now = signal(serverNow());
setInterval(() => {
  now.value = serverNow();
}, 1000);
