// A small t() over zh-CN / en catalogues, and Intl formatters for times and numbers.
// Pages add their own strings with addCatalogue(); t() reads the `locale` signal, so a
// component that calls it re-renders when the language changes.
import { signal } from "@preact/signals";

export const LOCALES = ["zh-CN", "en"];
const catalogues = { "zh-CN": {}, en: {} };

function initialLocale() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (LOCALES.includes(asked)) return asked;
  try {
    const kept = localStorage.getItem("m110.locale");
    if (LOCALES.includes(kept)) return kept;
  } catch {
    // storage refused (private mode): fall through
  }
  const preferred = navigator.languages?.[0] || navigator.language || "zh-CN";
  return preferred.toLowerCase().startsWith("zh") ? "zh-CN" : preferred.startsWith("en") ? "en" : "zh-CN";
}

export const locale = signal(initialLocale());
document.documentElement.lang = locale.peek();
let timeZone; // the server's (MICRO110_TIMEZONE), from /api/client/config

export function setLocale(value) {
  if (!LOCALES.includes(value)) return;
  locale.value = value;
  document.documentElement.lang = value;
  try {
    localStorage.setItem("m110.locale", value);
  } catch {
    // not kept: fine
  }
}

export function setTimeZone(tz) {
  timeZone = tz;
  cache.clear();
}

/** Add strings: addCatalogue({"zh-CN": {...}, en: {...}}). */
export function addCatalogue(entries) {
  for (const lang of LOCALES) Object.assign(catalogues[lang], entries[lang] || {});
}

/** The string for `key` in the current language; {name} placeholders from `params`. */
export function t(key, params) {
  const lang = locale.value;
  const text = catalogues[lang][key] ?? catalogues.en[key] ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (_, name) => (params[name] ?? "").toString());
}

const cache = new Map();
function formatter(kind, options) {
  const key = `${locale.value}|${kind}|${JSON.stringify(options)}`;
  let f = cache.get(key);
  if (!f) {
    f = new Intl[kind](locale.value, timeZone && kind === "DateTimeFormat" ? { timeZone, ...options } : options);
    cache.set(key, f);
  }
  return f;
}

export const fmt = {
  time: (d) => formatter("DateTimeFormat", { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }).format(new Date(d)),
  dateTime: (d) =>
    formatter("DateTimeFormat", { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }).format(new Date(d)),
  number: (n, options = {}) => formatter("NumberFormat", options).format(n),
  /** metres: "850 m" / "1.2 km" */
  distance: (m) =>
    m >= 1000
      ? formatter("NumberFormat", { style: "unit", unit: "kilometer", maximumFractionDigits: 1 }).format(m / 1000)
      : formatter("NumberFormat", { style: "unit", unit: "meter", maximumFractionDigits: 0 }).format(m),
  /** seconds waited: "0:42", "12:05", "1:02:03" (tabular, the same in every language) */
  duration: (s) => {
    const total = Math.max(0, Math.floor(s));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const sec = String(total % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
  },
};

addCatalogue({
  "zh-CN": {
    "lang.name": "中文",
    "login.title": "登录",
    "login.username": "用户名",
    "login.password": "密码",
    "login.submit": "登录",
    "login.expired": "登录已过期，请重新登录。已输入的内容都保留着。",
    "login.failed": "登录失败：{message}",
    "net.live": "实时",
    "net.connecting": "正在连接",
    "net.reconnecting": "重新连接中",
    "net.resyncing": "正在重新同步",
    "net.offline_banner": "与服务器的连接已断开，正在重新连接……断线期间的事件会在恢复后补上。",
    "bundle.error": "出错了：{message}",
  },
  en: {
    "lang.name": "English",
    "login.title": "Sign in",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.expired": "Your session ended: sign in again. Everything you typed is kept.",
    "login.failed": "Sign-in failed: {message}",
    "net.live": "Live",
    "net.connecting": "Connecting",
    "net.reconnecting": "Reconnecting",
    "net.resyncing": "Resyncing",
    "net.offline_banner": "Connection to the server lost, reconnecting… Events from while you were away will follow.",
    "bundle.error": "Something went wrong: {message}",
  },
});
