// An offer must not be missed: while one waits, a tone loops and the phone vibrates
// until the officer answers; when the page is hidden, a local notification too (tagged
// by assignment, so a re-offer replaces it instead of stacking).  Browsers play sound
// only after a user gesture: the on-duty tap unlocks it (`unlockSound`).
import { signal } from "@preact/signals";
import { enableSound, beep } from "../../shared/sound.js";

let ringing = null;
export const soundUnlocked = signal(false);

export async function unlockSound() {
  try {
    await enableSound();
    soundUnlocked.value = true;
  } catch {
    soundUnlocked.value = false;
  }
  // Ask for notifications on the same tap (a prompt needs a gesture on some browsers).
  if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission().catch(() => {});
  }
}

export function startRinging() {
  if (ringing) return;
  const ring = () => {
    beep(true);
    if (navigator.vibrate) navigator.vibrate([400, 150, 400]);
  };
  ring();
  ringing = setInterval(ring, 1500);
}

export function stopRinging() {
  clearInterval(ringing);
  ringing = null;
  if (navigator.vibrate) navigator.vibrate(0);
}

export function notifyOffer(title, body, tag) {
  if (!("Notification" in window) || Notification.permission !== "granted") return null;
  if (document.visibilityState === "visible") return null;
  try {
    const n = new Notification(title, { body, tag, renotify: true, requireInteraction: true });
    n.onclick = () => {
      window.focus();
      n.close();
    };
    return n;
  } catch {
    return null; // Android Chrome wants a service worker for this: the tone still rings
  }
}
