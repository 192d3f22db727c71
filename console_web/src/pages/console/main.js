// The dispatcher console (/console): login, top bar, queue, incident detail, map.
import { render } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { signal, effect } from "@preact/signals";
import { html } from "../../shared/html.js";
import { t, fmt, locale, setLocale, setTimeZone, LOCALES } from "../../shared/i18n.js";
import { createFeed } from "../../shared/feed.js";
import { LoginForm } from "../../shared/login.js";
import { learnServerTime, now, serverNow } from "../../shared/clock.js";
import { enableSound, beep } from "../../shared/sound.js";
import "../../shared/base.css";
import "./console.css";
import "./strings.js";
import * as state from "./state.js";
import { Detail } from "./detail.js";
import { MapPane, mapRef } from "./map_pane.js";
import { Dialogs, showHelp } from "./dialogs.js";
import { store, expired, config, sound, flash, sessionEnded, api, act, alertLevel, tagLabel, receivedMs } from "./context.js";
import { installKeyboard } from "./keyboard.js";

async function loadSnapshot() {
  const body = await api.get("/api/console/snapshot");
  state.loadSnapshot(body);
  loadRoster();
  api.get("/api/console/annotations").then((b) => state.annotate(b.incidents)).catch((err) => console.warn("annotations", err));
  return body.seq;
}

async function loadRoster() {
  try {
    const body = await api.get("/api/console/roster");
    state.loadOfficers(body.officers);
    state.staffNames.clear();
    for (const s of body.staff) state.staffNames.set(s.id, s.display_name);
  } catch (err) {
    console.warn("roster", err);
  }
}

export const feed = createFeed({
  namespace: "/console",
  getToken: store.token,
  loadSnapshot,
  onEvent: state.applyEvent,
  onSessionEnded: sessionEnded,
});

async function loadConfig() {
  const sentAt = Date.now();
  const body = await (await fetch("/api/client/config")).json();
  learnServerTime(body.now_ms, sentAt, Date.now());
  setTimeZone(body.timezone);
  body.tags = Object.fromEntries((body.tags || []).map((tag) => [tag.code, tag]));
  for (const tag of Object.values(body.tags)) state.tagNames.set(tag.code, `${tag.label_zh} ${tag.label}`.toLowerCase());
  config.value = body;
}

// The tone: repeats while a new alarm is unclaimed or one is overdue; sound on only.
let beeps = 0;
export function toneLevel() {
  const nowMs = serverNow();
  let level = null;
  for (const i of state.incidents.values()) {
    const a = alertLevel(i, nowMs);
    if (a === "red") return "red";
    if (a === "new") level = "new";
  }
  return level;
}
setInterval(() => {
  if (!sound.value || !store.token()) return;
  const level = toneLevel();
  if (level) {
    beep(level === "red");
    beeps++;
  }
}, 3000);

function ConnectionState() {
  const s = feed.state.value;
  const label = { live: t("net.live"), connecting: t("net.connecting"), reconnecting: t("net.reconnecting"), resyncing: t("net.resyncing"), signed_out: t("net.reconnecting") }[s];
  return html`<span class=${`conn conn-${s}`} data-state=${s} role="status" aria-live="polite"
    title=${`seq ${feed.lastSeq.value ?? "–"}`}><span class="dot" aria-hidden="true"></span>${label}</span>`;
}

function TopBar() {
  const c = state.counts.value;
  const o = state.officerCounts.value;
  const nowMs = now.value;
  let overdue = 0;
  for (const i of state.incidents.values()) if (alertLevel(i, nowMs) === "red") overdue++;
  const user = state.me.value;
  return html`
    <header class="topbar">
      <strong class="brand">${t("app.title")}</strong>
      <${ConnectionState} />
      <span class="counts" aria-label=${t("top.open")}>
        ${t("top.open")} <b data-count="open">${fmt.number(c.open)}</b>
        ${[1, 2, 3, 4].map((s) => html`<span class=${`sev sev-${s}`} title=${t(`sev.${s}`)}>${t(`sev.${s}`)} ${fmt.number(c.bySeverity[s] || 0)}</span>`)}
        ${c.beyond > 0 && html`<span class="beyond" data-count="beyond" title=${t("top.beyond_hint")}>${t("top.beyond", { n: fmt.number(c.beyond) })}</span>`}
      </span>
      <span class=${overdue ? "overdue-count hot" : "overdue-count"}>${t("top.overdue")} <b data-count="overdue">${fmt.number(overdue)}</b></span>
      <span class="officers" data-free=${o.free} data-busy=${o.busy}>${t("top.officers", { free: fmt.number(o.free), busy: fmt.number(o.busy) })}</span>
      <span class="spacer"></span>
      <button type="button" class=${sound.value ? "sound on" : "sound"} aria-pressed=${sound.value}
        onClick=${async () => { if (!sound.value) await enableSound(); sound.value = !sound.value; }}>
        ${sound.value ? t("top.sound_on") : t("top.sound_off")}</button>
      <button type="button" onClick=${showHelp}>${t("top.help")}</button>
      <select aria-label="Language / 语言" value=${locale.value} onChange=${(e) => setLocale(e.currentTarget.value)}>
        ${LOCALES.map((l) => html`<option value=${l}>${l === "en" ? "English" : "中文"}</option>`)}
      </select>
      <span class="user">${user?.display_name}</span>
      <button type="button" onClick=${async () => { await api.post("/api/auth/logout", {}).catch(() => {}); store.clear(); feed.stop(); location.reload(); }}>${t("top.logout")}</button>
    </header>`;
}

const ROW_H = 44;

function QueueRow({ incident, index, nowMs }) {
  const user = state.me.value;
  const level = alertLevel(incident, nowMs);
  const waited = (nowMs - receivedMs(incident)) / 1000;
  const isCursor = state.cursorId.value === incident.id;
  const holder = incident.claimed_by == null ? "" : incident.claimed_by === user?.id ? t("queue.held_by_me") : t("queue.held_by", { who: state.staffNames.get(incident.claimed_by) || `#${incident.claimed_by}` });
  return html`
    <li role="option" id=${`row-${incident.id}`} data-id=${incident.id} data-case=${incident.case_no} data-state=${incident.state}
      aria-selected=${isCursor} class=${`row sev-${incident.severity} ${isCursor ? "cursor" : ""} ${state.selectedId.value === incident.id ? "open" : ""}`}
      style=${`top:${index * ROW_H}px`}
      onClick=${() => { state.cursorId.value = incident.id; state.selectedId.value = incident.id; }}>
      ${level
        ? html`<span class=${`alert alert-${level}`} role="img" title=${t(`alert.${level}`)} aria-label=${t(`alert.${level}`)}></span>`
        : html`<span class="alert alert-none" aria-hidden="true"></span>`}
      <span class="sevchip">${t(`sev.${incident.severity}`)}</span>
      <span class="case"><b>${incident.case_no}</b> <span class="tag">${tagLabel(incident.tag)}</span></span>
      <span class="channel">${t(`channel.${incident.channel}`)}${incident.live_call ? html` <span class="live">● ${t("queue.live_call")}</span>` : ""}</span>
      <span class="verif">${t(`verification.${incident.verification}`)}</span>
      <span class="waited" data-waited=${Math.floor(waited)}>${fmt.duration(waited)}</span>
      <span class="dup">${incident.possible_duplicates?.length ? t("queue.duplicate") : ""}</span>
      <span class="holder">${incident.state === "queued" ? t("state.queued") : holder || t(`state.${incident.state}`)}</span>
    </li>`;
}

function Queue() {
  const list = state.rows.value;
  const nowMs = now.value;
  const box = useRef(null);
  const [view, setView] = useState({ top: 0, height: 600 });
  useEffect(() => {
    const el = box.current;
    const measure = () => setView({ top: el.scrollTop, height: el.clientHeight });
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    el.addEventListener("scroll", measure, { passive: true });
    return () => {
      observer.disconnect();
      el.removeEventListener("scroll", measure);
    };
  }, []);
  useLayoutEffect(state.markRendered, [list]);
  // Keep the keyboard's row in view: when the keys move it, and when rows arriving above
  // push it out of view; not when the dispatcher has scrolled away from it.
  const kept = useRef({ id: null, index: -1, top: 0, shown: false });
  useEffect(() => {
    const id = state.cursorId.value;
    const el = box.current;
    const i = id == null ? -1 : list.findIndex((r) => r.id === id);
    if (!el) return;
    const last = kept.current;
    const pushed = last.shown && last.index !== i && last.top === el.scrollTop;
    if (i >= 0 && (last.id !== id || pushed)) {
      if (i * ROW_H < el.scrollTop) el.scrollTop = i * ROW_H;
      else if ((i + 1) * ROW_H > el.scrollTop + el.clientHeight) el.scrollTop = (i + 1) * ROW_H - el.clientHeight;
    }
    const shown = i >= 0 && i * ROW_H >= el.scrollTop && (i + 1) * ROW_H <= el.scrollTop + el.clientHeight;
    kept.current = { id, index: i, top: el.scrollTop, shown };
  }, [state.cursorId.value, list]);
  const first = Math.max(0, Math.floor(view.top / ROW_H) - 5);
  const last = Math.min(list.length, Math.ceil((view.top + view.height) / ROW_H) + 5);
  const visible = list.slice(first, last);
  return html`
    <section class="queue" aria-labelledby="queue-title">
      <div class="queue-head">
        <h2 id="queue-title">${t("queue.title")} <span class="n">${t("queue.count", { n: fmt.number(list.length) })}</span></h2>
        <input id="search" type="search" placeholder=${t("queue.search")} aria-label=${t("queue.search")}
          value=${state.search.value} onInput=${(e) => (state.search.value = e.currentTarget.value)} />
      </div>
      <div class="queue-scroll" ref=${box}>
        ${list.length === 0
          ? html`<p class="empty">${t("queue.empty")}</p>`
          : html`<ul role="listbox" aria-label=${t("queue.title")} tabindex="0" aria-activedescendant=${state.cursorId.value ? `row-${state.cursorId.value}` : undefined}
              class="rows" style=${`height:${list.length * ROW_H}px`}>
              ${visible.map((incident, k) => html`<${QueueRow} key=${incident.id} incident=${incident} index=${first + k} nowMs=${nowMs} />`)}
            </ul>`}
      </div>
    </section>`;
}

function Banner() {
  const s = feed.state.value;
  if (s !== "reconnecting" && s !== "resyncing") return null;
  return html`<div class="banner" role="alert" data-banner=${s}>${t("net.offline_banner")}</div>`;
}

function App() {
  const session = store.session.value;
  useEffect(() => {
    if (session) state.me.value = session.user;
  }, [session]);
  if (!session && !state.me.value) {
    return html`<${LoginForm} store=${store} roles=${["dispatcher", "commander"]} onLoggedIn=${started} />`;
  }
  return html`
    <div class="console" lang=${locale.value}>
      <${TopBar} />
      <${Banner} />
      ${flash.value && html`<div class="flash" role="alert">${flash.value}</div>`}
      <main class="panes">
        <${Queue} />
        <${Detail} />
        <${MapPane} config=${config.value} />
      </main>
      <${Dialogs} />
      ${expired.value && html`<${LoginForm} store=${store} expired roles=${["dispatcher", "commander"]}
        onLoggedIn=${(body) => { expired.value = false; state.me.value = body.user; feed.restart(); }} />`}
    </div>`;
}

function started(body) {
  state.me.value = body.user;
  expired.value = false;
  feed.start();
}

installKeyboard({ api, act, feed });
effect(() => {
  document.title = t("app.title");
});

loadConfig()
  .catch((err) => console.warn("config", err))
  .finally(() => {
    if (store.token()) {
      state.me.value = store.session.peek().user;
      feed.start();
    }
    render(html`<${App} />`, document.getElementById("app"));
  });

// Tests and the benchmark look at the console from outside through this.
window.__console = {
  state, feed, config, sound, toneLevel, beeps: () => beeps,
  get map() { return mapRef.current; },
};
