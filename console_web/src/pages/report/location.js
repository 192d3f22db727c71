// The phone's position: watched from the first open (the alarm goes out with the best
// fix so far, or none), kept watching through transient errors.  Browsers report
// WGS-84; the datum is always sent.
import { signal } from "@preact/signals";

export const fix = signal(null); // {lon, lat, accuracy_m, datum, time}
export const locationState = signal("waiting"); // waiting | ok | denied | unavailable
const listeners = new Set();

/** Call `fn(fix)` for every new fix; returns an unsubscribe function. */
export function onFix(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

let watching = false;
export function watchLocation() {
  if (watching || !("geolocation" in navigator)) {
    if (!("geolocation" in navigator)) locationState.value = "unavailable";
    return;
  }
  watching = true;
  navigator.geolocation.watchPosition(
    (pos) => {
      const next = {
        lon: pos.coords.longitude,
        lat: pos.coords.latitude,
        accuracy_m: Math.min(Math.max(pos.coords.accuracy || 1, 0.1), 100000),
        datum: "wgs84",
        time: new Date(pos.timestamp || Date.now()).toISOString(),
      };
      fix.value = next;
      locationState.value = "ok";
      for (const fn of listeners) fn(next);
    },
    (err) => {
      // Denied is final; a timeout or an unavailable fix is not: the watch goes on.
      if (err.code === 1) locationState.value = "denied";
      else if (!fix.peek()) locationState.value = "waiting";
    },
    { enableHighAccuracy: true, maximumAge: 0, timeout: 15000 },
  );
}

/** The position fields of a submission: the fix, or nothing at all. */
export function positionFields(f = fix.peek()) {
  return f ? { lon: f.lon, lat: f.lat, accuracy_m: f.accuracy_m, datum: f.datum } : {};
}
