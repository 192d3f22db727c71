// What the phone does while the officer is on duty: watch the position and report it
// (about every 5 s while moving, every 30 s while still), and keep the screen on where
// the browser grants a wake lock (asked again whenever the page comes back into view).
import { signal } from "@preact/signals";
import { distanceM } from "./navigation.js";

export const MOVING_INTERVAL_MS = 5000;
export const STILL_INTERVAL_MS = 30000;
const MOVING_SPEED_MS = 1.0; // metres per second
const MOVED_M = 15; // further than this from the last report counts as moving

export const fix = signal(null); // {lon, lat, accuracy_m, at, speed}
export const geoError = signal(null);
export const wakeLock = signal("off"); // off | held | refused | unsupported

let watchId = null;
let timer = null;
let lastSent = null; // {lon, lat, at}
let lock = null;
let wanted = false;

export function isMoving(current, previous) {
  if (!current) return false;
  if (current.speed != null && current.speed > MOVING_SPEED_MS) return true;
  return previous != null && distanceM(previous.lon, previous.lat, current.lon, current.lat) > MOVED_M;
}

/** Milliseconds until the next report is due (0: now). */
export function dueIn(current, previous, nowMs) {
  if (!current) return Infinity;
  if (!previous) return 0;
  const interval = isMoving(current, previous) ? MOVING_INTERVAL_MS : STILL_INTERVAL_MS;
  return Math.max(0, previous.at + interval - nowMs);
}

export function startField({ report }) {
  wanted = true;
  if (!("geolocation" in navigator)) {
    geoError.value = "unsupported";
  } else if (watchId === null) {
    watchId = navigator.geolocation.watchPosition(
      (p) => {
        geoError.value = null;
        fix.value = { lon: p.coords.longitude, lat: p.coords.latitude, accuracy_m: Math.max(1, p.coords.accuracy || 50), speed: p.coords.speed, at: Date.now() };
        tick();
      },
      (err) => {
        // Keep watching after a transient error (no fix indoors, a timeout).
        geoError.value = err.code === 1 ? "denied" : "unavailable";
      },
      { enableHighAccuracy: true, maximumAge: 0, timeout: 15000 },
    );
  }
  async function tick() {
    const current = fix.peek();
    if (!wanted || !current || dueIn(current, lastSent, Date.now()) > 0) return;
    const sending = { lon: current.lon, lat: current.lat, at: Date.now() };
    const ok = await report(current);
    if (ok) lastSent = sending;
  }
  clearInterval(timer);
  timer = setInterval(tick, 1000);
  holdWakeLock();
}

export function stopField() {
  wanted = false;
  if (watchId !== null) navigator.geolocation.clearWatch(watchId);
  watchId = null;
  clearInterval(timer);
  timer = null;
  lastSent = null;
  releaseWakeLock();
}

async function holdWakeLock() {
  if (!("wakeLock" in navigator)) {
    wakeLock.value = "unsupported";
    return;
  }
  if (lock && !lock.released) return;
  try {
    lock = await navigator.wakeLock.request("screen");
    wakeLock.value = "held";
    lock.addEventListener("release", () => {
      if (wakeLock.peek() === "held") wakeLock.value = wanted ? "refused" : "off";
    });
  } catch {
    // Refused (battery saver, page hidden, a headless browser): the page still works.
    wakeLock.value = "refused";
  }
}

function releaseWakeLock() {
  const held = lock;
  lock = null;
  wakeLock.value = "off";
  held?.release().catch(() => {});
}

document.addEventListener("visibilitychange", () => {
  if (wanted && document.visibilityState === "visible") holdWakeLock();
});
