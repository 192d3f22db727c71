// What every part of the officer page shares: the session, the API, the feed, the
// outbox, configuration and how the answer to a tap is stamped.
import { signal } from "@preact/signals";
import { t, locale } from "../../shared/i18n.js";
import { createApi } from "../../shared/api.js";
import { staffSession } from "../../shared/session.js";
import { serverNow } from "../../shared/clock.js";
import { fix } from "./field.js";

export const store = staffSession("m110.officer");
export const expired = signal(false);
export const config = signal({ basemap: null, tags: {} });
export const flash = signal(null);

export function sessionEnded() {
  expired.value = true;
  store.clear();
}

export const api = createApi({ getToken: store.token, onUnauthorized: sessionEnded });

export function showError(message) {
  flash.value = t("error.action", { message });
  setTimeout(() => (flash.value = null), 6000);
}

/** A tag's name in the current language (the server's tag table), else its code. */
export function tagLabel(code) {
  const tag = config.value.tags?.[code];
  if (!tag) return code;
  return (locale.value === "zh-CN" ? tag.label_zh : tag.label) || tag.label || code;
}

const FRESH_FIX_MS = 120000;

/** When (on the server's clock) and where the officer is as they tap. */
export function stamp() {
  const f = fix.peek();
  const fields = { captured_at: new Date(serverNow()).toISOString() };
  if (f && Date.now() - f.at < FRESH_FIX_MS) {
    fields.place = { lon: f.lon, lat: f.lat, accuracy_m: Math.min(100000, Math.max(1, f.accuracy_m)), datum: "wgs84" };
  }
  return fields;
}
