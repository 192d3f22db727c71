// What every part of the console shares: the session, the API, configuration, the
// sound switch, and how a failed action is shown.
import { signal } from "@preact/signals";
import { t, locale } from "../../shared/i18n.js";
import { createApi } from "../../shared/api.js";
import { staffSession } from "../../shared/session.js";
import * as state from "./state.js";

export const store = staffSession("m110.console");
export const expired = signal(false);
export const config = signal({ overdue_s: { 1: 60, 2: 300, 3: 900, 4: 1800 }, basemap: null });
export const sound = signal(false);
export const flash = signal(null);

export function sessionEnded() {
  expired.value = true;
  store.clear();
}

export const api = createApi({ getToken: store.token, onUnauthorized: sessionEnded });

/** Run a verb; a refusal is shown, never thrown at the keyboard handler. */
export async function act(fn) {
  try {
    return await fn();
  } catch (err) {
    flash.value = t("error.action", { message: err.message });
    setTimeout(() => (flash.value = null), 6000);
    return null;
  }
}

/** A tag's name in the current language (the server's tag table), else its code. */
export function tagLabel(code) {
  const tag = config.value.tags?.[code];
  if (!tag) return code;
  return (locale.value === "zh-CN" ? tag.label_zh : tag.label) || tag.label || code;
}

const parsed = new WeakMap();
/** `received_at` in epoch ms, parsed once per snapshot object (the queue asks often). */
export function receivedMs(incident) {
  let ms = parsed.get(incident);
  if (ms === undefined) {
    ms = Date.parse(incident.received_at);
    parsed.set(incident, ms);
  }
  return ms;
}

/** "new" (arrived while watching, unclaimed), "amber" (half its time), "red" (overdue). */
export function alertLevel(incident, nowMs) {
  if (incident.state !== "queued") return null;
  const limit = (config.value.overdue_s[incident.severity] || 900) * 1000;
  const waited = nowMs - receivedMs(incident);
  if (incident.overdue || waited >= limit) return "red";
  if (waited >= limit / 2) return "amber";
  if (state.fresh.has(incident.id)) return "new";
  return null;
}
