// The field officer's page (/officer): login, on/off duty, position, offers that cannot
// be missed, the assignment (map, navigation, status in one tap), chat, and an outbox
// that holds what was tapped until the server has it.
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { effect, signal } from "@preact/signals";
import { html } from "../../shared/html.js";
import { t, fmt, locale, setLocale, setTimeZone } from "../../shared/i18n.js";
import { createFeed } from "../../shared/feed.js";
import { LoginForm } from "../../shared/login.js";
import { learnServerTime } from "../../shared/clock.js";
import { createMap } from "../../shared/map.js";
import "../../shared/base.css";
import "./officer.css";
import "./strings.js";
import * as state from "./state.js";
import { createOutbox, newKey } from "./outbox.js";
import { startField, stopField, fix, geoError, wakeLock } from "./field.js";
import { unlockSound, soundUnlocked, startRinging, stopRinging, notifyOffer } from "./alert.js";
import { navigationLinks, distanceM } from "./navigation.js";
import { store, expired, config, flash, sessionEnded, api, showError, tagLabel, stamp } from "./context.js";

// --- feed, outbox, duty ------------------------------------------------------------

const answered = new Set(); // offers answered here, waiting for the server's event
const lastReport = signal(null); // when the last position was acknowledged

const hooks = {
  onOffer(offer) {
    if (answered.has(offer.assignment_id)) return;
    ring();
  },
  onEnded(event) {
    state.notify(t("notice.cancelled", { case: event.incident.case_no }));
  },
  onIncidentEnded(event) {
    state.notify(t("notice.ended", { case: event.incident.case_no }));
  },
};

export const feed = createFeed({
  namespace: "/officer",
  getToken: store.token,
  loadSnapshot: async () => {
    const body = await api.get("/api/officers/me/snapshot");
    state.loadSnapshot(body);
    ring();
    return body.seq;
  },
  onEvent: (event) => state.applyEvent(event, hooks),
  onResumed: (ack) => {
    // What waits or is being worked as the feed resumes (merged: live events may have
    // arrived first).
    state.loadSnapshot({ pending: ack.pending, active: ack.active }, { replace: false });
    ring();
    outbox.flush();
  },
  onSessionEnded: sessionEnded,
});

const canSend = () => navigator.onLine && feed.socket.connected && feed.state.peek() === "live";

export const outbox = createOutbox({
  send: (item) => feed.socket.timeout(10000).emitWithAck(item.kind, item.payload),
  canSend,
  owner: () => String(store.session.peek()?.user?.id ?? ""),
  onFailed: (item, answer) => showError(answer?.error?.message || item.error),
});
window.addEventListener("online", () => outbox.flush());

async function call(event, payload) {
  if (!canSend()) throw new Error(t("error.offline"));
  const answer = await feed.socket.timeout(10000).emitWithAck(event, payload);
  if (!answer?.ok) throw new Error(answer?.error?.message || "refused");
  return answer;
}

async function reportPosition(f) {
  if (!canSend()) return false;
  try {
    const answer = await call("position", { lon: f.lon, lat: f.lat, accuracy_m: Math.min(100000, Math.max(1, f.accuracy_m)), datum: "wgs84" });
    lastReport.value = Date.now();
    return Boolean(answer.ok);
  } catch {
    return false;
  }
}

function waitingOffers() {
  return [...state.offers.value.values()].filter((o) => !answered.has(o.assignment_id));
}

function ring() {
  const waiting = waitingOffers();
  if (!waiting.length) {
    stopRinging();
    return;
  }
  startRinging();
  const offer = waiting[0];
  notifyOffer(t("offer.title"), t("offer.notification", { tag: tagLabel(offer.incident.tag), case: offer.incident.case_no }), offer.assignment_id);
}

effect(() => {
  // Ring exactly while an unanswered offer is shown.
  state.offers.value;
  ring();
});

effect(() => {
  const duty = state.duty.value;
  if (!store.session.value) {
    stopField();
    return;
  }
  if (duty === "available" || duty === "busy") startField({ report: reportPosition });
  else stopField();
});

async function setDuty(onDuty) {
  if (onDuty) await unlockSound(); // this tap is the gesture that lets the tone play
  try {
    const answer = await call("duty", { on_duty: onDuty });
    state.duty.value = answer.status;
  } catch (err) {
    showError(err.message);
  }
}

function answer(offer, accept, reason = "") {
  answered.add(offer.assignment_id);
  outbox.add({
    kind: "ack",
    label: accept ? t("step.accepted") : t("step.declined"),
    incidentId: offer.incident.id,
    payload: { assignment_id: offer.assignment_id, accept, reason, client_key: newKey("ack"), ...stamp() },
  });
  if (accept) state.selected.value = offer.assignment_id;
  state.offers.value = new Map(state.offers.peek()); // re-evaluate the alert
}

function tapStep(assignment, status) {
  outbox.add({
    kind: "status",
    label: t(`step.${status}`),
    incidentId: assignment.incident.id,
    payload: { assignment_id: assignment.assignment_id, status, client_key: newKey("step"), ...stamp() },
  });
}

function sendMessage(incidentId, body) {
  const key = newKey("msg");
  const me = store.session.peek()?.user;
  state.addLocalMessage(incidentId, { id: key, client_key: key, body, sender_kind: "staff", sender_id: String(me?.id ?? ""), created_at: new Date().toISOString(), thread: "officers" });
  outbox.add({ kind: "message", label: body.slice(0, 40), incidentId, payload: { incident_id: incidentId, body, client_key: key, ...stamp() } });
}

async function loadConfig() {
  try {
    const sentAt = Date.now();
    const body = await (await fetch("/api/client/config")).json();
    learnServerTime(body.now_ms, sentAt, Date.now());
    setTimeZone(body.timezone);
    body.tags = Object.fromEntries((body.tags || []).map((tag) => [tag.code, tag]));
    config.value = body;
  } catch (err) {
    console.warn("config", err);
  }
}

// --- components --------------------------------------------------------------------

function Severity({ n }) {
  return html`<span class=${`sev sev-${n}`}>${t("case.severity", { n })}</span>`;
}

function distanceTo(incident) {
  const f = fix.value;
  if (!f || incident?.lon == null) return null;
  return distanceM(f.lon, f.lat, incident.lon, incident.lat);
}

function OfferAlert() {
  const waiting = waitingOffers();
  const [declining, setDeclining] = useState(false);
  const [reason, setReason] = useState("");
  const [choice, setChoice] = useState(null);
  const first = useRef(null);
  const offer = waiting[0];
  useEffect(() => {
    first.current?.focus();
  }, [offer?.assignment_id, declining]);
  if (!offer) return null;
  const incident = offer.incident;
  const distance = distanceTo(incident);
  const reasons = ["busy", "far", "vehicle", "other"];
  const finalReason = choice === "other" || !choice ? reason.trim() : [t(`offer.reason.${choice}`), reason.trim()].filter(Boolean).join("：");
  return html`
    <div class="offer-backdrop">
      <section class="offer" role="alertdialog" aria-modal="true" aria-labelledby="offer-title" aria-describedby="offer-what" data-assignment=${offer.assignment_id}>
        <h1 id="offer-title">${t("offer.title")}</h1>
        ${offer.offers > 1 && html`<p class="again">${t("offer.again", { n: offer.offers })}</p>`}
        <p id="offer-what" class="offer-what">
          <strong>${tagLabel(incident.tag)}</strong> <${Severity} n=${incident.severity} />
          <br />${incident.case_no} · ${t(`case.channel.${incident.channel}`)}
          <br />${t("case.received", { time: fmt.time(incident.received_at) })}
          ${distance != null && html`<br />${t("offer.distance", { distance: fmt.distance(distance) })}`}
        </p>
        ${!declining
          ? html`<div class="offer-buttons">
              <button ref=${first} class="accept" onClick=${() => answer(offer, true)}>${t("offer.accept")}</button>
              <button class="decline" onClick=${() => setDeclining(true)}>${t("offer.decline")}</button>
            </div>`
          : html`<form class="decline-form" onSubmit=${(e) => {
              e.preventDefault();
              if (!finalReason) return;
              answer(offer, false, finalReason);
              setDeclining(false);
              setReason("");
              setChoice(null);
            }}>
              <fieldset>
                <legend>${t("offer.reason")}</legend>
                ${reasons.map((r, i) => html`<label class="chip"><input ref=${i === 0 ? first : null} type="radio" name="reason" value=${r} checked=${choice === r} onChange=${() => setChoice(r)} /> ${t(`offer.reason.${r}`)}</label>`)}
              </fieldset>
              <label>${t("offer.reason")}<textarea name="reason-text" rows="2" value=${reason} onInput=${(e) => setReason(e.currentTarget.value)}></textarea></label>
              ${!finalReason && html`<p class="hint">${t("offer.reason_required")}</p>`}
              <div class="offer-buttons">
                <button type="submit" class="decline" disabled=${!finalReason}>${t("offer.confirm_decline")}</button>
                <button type="button" onClick=${() => setDeclining(false)}>${t("offer.back")}</button>
              </div>
            </form>`}
      </section>
    </div>`;
}

function IncidentMap({ incident, trail }) {
  const element = useRef(null);
  const map = useRef(null);
  useEffect(() => {
    map.current = createMap(element.current, { basemap: config.value.basemap });
    api.get("/api/precincts.geojson").then((g) => {
      map.current?.setPrecincts(g);
      focus();
    }).catch(() => {});
    return () => {
      map.current?.leaflet.remove();
      map.current = null;
    };
  }, []);
  function focus() {
    const m = map.current;
    if (!m || incident?.lon == null) return;
    m.setIncidents([{ id: incident.id, lon: incident.lon, lat: incident.lat, severity: incident.severity, selected: true }]);
    const f = fix.peek();
    m.setOfficers(f ? [{ id: "me", lon: f.lon, lat: f.lat, status: "busy", callsign: t("chat.me") }] : []);
    m.setFocus(incident, trail);
    const here = m.latLng(incident.lon, incident.lat);
    if (f && distanceM(f.lon, f.lat, incident.lon, incident.lat) < 20000) {
      m.leaflet.fitBounds([here, m.latLng(f.lon, f.lat)], { padding: [30, 30], maxZoom: 16 });
    } else {
      m.leaflet.setView(here, 15);
    }
  }
  useEffect(focus, [incident?.id, incident?.lon, incident?.lat, trail.length, fix.value]);
  return html`<div class="map" ref=${element} role="region" aria-label=${t("map.title")}></div>`;
}

function Photos({ incidentId }) {
  const [photos, setPhotos] = useState(null);
  const [urls, setUrls] = useState([]);
  useEffect(() => {
    setPhotos(null);
    setUrls([]);
    api.get(`/api/incidents/${incidentId}/evidence`).then((b) => setPhotos(b.attachments || b.evidence || [])).catch(() => setPhotos([]));
  }, [incidentId]);
  useEffect(() => () => urls.forEach((u) => URL.revokeObjectURL(u)), [urls]);
  if (photos === null) return null;
  if (!photos.length) return html`<p class="muted">${t("case.photos.none")}</p>`;
  async function show() {
    const loaded = [];
    for (const p of photos) {
      try {
        const response = await api.request("GET", `/api/incidents/${incidentId}/evidence/${p.id}?purpose=officer_on_scene`, { raw: true });
        loaded.push(URL.createObjectURL(await response.blob()));
      } catch (err) {
        showError(err.message);
      }
    }
    setUrls(loaded);
  }
  return urls.length
    ? html`<div class="photos">${urls.map((u, i) => html`<img src=${u} alt=${`${t("case.photos")} ${i + 1}`} />`)}</div>`
    : html`<button class="show-photos" onClick=${show}>${t("case.photos.show", { n: photos.length })}</button>`;
}

const NEXT = { accepted: ["en_route", "on_scene", "cleared"], en_route: ["on_scene", "cleared"], on_scene: ["cleared"], cleared: [] };

function Steps({ assignment }) {
  const waiting = outbox.items.value.filter((i) => i.payload.assignment_id === assignment.assignment_id);
  const pendingStatus = waiting.filter((i) => i.kind === "status").map((i) => i.payload.status);
  const effective = pendingStatus.length ? pendingStatus[pendingStatus.length - 1] : assignment.state;
  const next = NEXT[effective] || [];
  return html`
    <div class="steps" role="group" aria-label=${t("case.state." + (assignment.state || "accepted"))}>
      ${["en_route", "on_scene", "cleared"].map((s) => html`
        <button class=${`step ${next[0] === s ? "primary" : ""}`} disabled=${!next.includes(s)} onClick=${() => tapStep(assignment, s)} data-step=${s}>${t(`step.${s}`)}</button>`)}
    </div>
    <ol class="step-log">
      ${(assignment.steps || []).map((s) => html`<li>
        <strong>${t(`step.${s.type.slice("assignment.".length)}`)}</strong>
        ${s.captured_at ? ` · ${t("step.tapped", { time: fmt.time(s.captured_at) })}` : ""}
        ${` · ${t("step.recorded", { time: fmt.time(s.at) })}`}</li>`)}
      ${waiting.map((i) => html`<li class="waiting"><strong>${i.label}</strong> · ${t("outbox.tapped", { time: fmt.time(i.payload.captured_at) })} · ${t("chat.waiting")}</li>`)}
    </ol>`;
}

function Chat({ incidentId }) {
  const data = state.incidents.value.get(incidentId) || { chat: [] };
  const [text, setText] = useState("");
  const me = String(store.session.value?.user?.id ?? "");
  const list = useRef(null);
  useEffect(() => {
    if (list.current) list.current.scrollTop = list.current.scrollHeight;
  }, [data.chat.length]);
  return html`
    <section class="card chat" aria-labelledby="chat-title">
      <h2 id="chat-title">${t("chat.title")}</h2>
      <ol class="messages" ref=${list} aria-live="polite">
        ${data.chat.map((m) => {
          const mine = m.sender_id === me && m.sender_kind === "staff";
          return html`<li class=${mine ? "mine" : "theirs"} data-client-key=${m.client_key || ""}>
            <span class="who">${mine ? t("chat.me") : t("chat.dispatcher")}</span>
            <span class="body">${m.body}</span>
            <span class="when">${m.local ? t("chat.waiting") : fmt.time(m.captured_at || m.created_at)}</span>
          </li>`;
        })}
      </ol>
      <form class="chat-form" onSubmit=${(e) => {
        e.preventDefault();
        const body = text.trim();
        if (!body) return;
        sendMessage(incidentId, body);
        setText("");
      }}>
        <label class="visually-hidden" for="chat-input">${t("chat.placeholder")}</label>
        <input id="chat-input" name="chat" maxlength="2000" autocomplete="off" placeholder=${t("chat.placeholder")} value=${text} onInput=${(e) => setText(e.currentTarget.value)} />
        <button type="submit" class="primary">${t("chat.send")}</button>
      </form>
    </section>`;
}

function Assignment({ assignment }) {
  const incident = assignment.incident;
  const data = state.incidents.value.get(incident.id) || { trail: [], notes: [], chat: [], text: null, loaded: false };
  useEffect(() => {
    if (data.loaded) return;
    api.get(`/api/incidents/${incident.id}/history`).then((b) => state.loadHistory(incident.id, b.events)).catch((err) => console.warn("history", err));
  }, [incident.id]);
  const distance = distanceTo(incident);
  const latest = data.trail.length ? data.trail[data.trail.length - 1] : null;
  return html`
    <article class="assignment" aria-labelledby="case-title">
      <section class="card">
        <h1 id="case-title">${tagLabel(incident.tag)} <${Severity} n=${incident.severity} /></h1>
        <p>${incident.case_no} · ${t(`case.channel.${incident.channel}`)} · <span class="state">${t(`case.state.${assignment.state}`)}</span></p>
        <p>${t("case.received", { time: fmt.time(incident.received_at) })}
          ${distance != null && html` · <strong class="distance">${t("case.distance", { distance: fmt.distance(distance) })}</strong>`}</p>
        <h2>${t("case.what")}</h2>
        <p class="what">${data.text || t("case.no_text")}</p>
        ${latest && html`<p class="muted">${t("case.trail", { n: data.trail.length, time: fmt.time(latest.time) })}</p>`}
        ${data.notes.length > 0 && html`<h2>${t("case.notes")}</h2><ul>${data.notes.map((n) => html`<li>${n.text}</li>`)}</ul>`}
        <h2>${t("case.photos")}</h2>
        <${Photos} incidentId=${incident.id} />
      </section>
      <section class="card">
        <${Steps} assignment=${assignment} />
      </section>
      ${incident.lon != null && html`
        <section class="card">
          <${IncidentMap} incident=${incident} trail=${data.trail} />
          <h2>${t("case.navigate")}</h2>
          <div class="nav-links">
            ${navigationLinks(incident.lon, incident.lat, `${incident.case_no}`).map((l) => html`<a class="button" href=${l.href} data-app=${l.app} data-datum=${l.datum} rel="noopener">${t(`case.nav.${l.app}`)}</a>`)}
          </div>
        </section>`}
      <${Chat} incidentId=${incident.id} />
    </article>`;
}

function OutboxPanel() {
  const items = outbox.items.value;
  if (!items.length) return null;
  return html`
    <section class="card outbox" aria-labelledby="outbox-title" role="status">
      <h2 id="outbox-title">${t("outbox.title", { n: items.length })}</h2>
      <ul>
        ${items.map((i) => html`<li data-key=${i.key} data-state=${i.state}>
          <strong>${i.label}</strong> · ${t("outbox.tapped", { time: fmt.time(i.payload.captured_at) })} ·
          ${i.state === "failed" ? html`<span class="error">${t("outbox.failed", { error: i.error })}</span> <button onClick=${() => outbox.discard(i.key)}>${t("outbox.discard")}</button>` : t(`outbox.${i.state}`)}
        </li>`)}
      </ul>
    </section>`;
}

function DutyBar() {
  // Busy while working an assignment (the server marks the officer busy on accepting).
  const duty = state.duty.value !== "off_duty" && state.work.value.size > 0 ? "busy" : state.duty.value;
  const onDuty = duty !== "off_duty";
  const f = fix.value;
  const net = { live: t("net.live"), connecting: t("net.connecting"), reconnecting: t("net.reconnecting"), resyncing: t("net.resyncing"), signed_out: t("net.reconnecting") }[feed.state.value];
  return html`
    <header class="topbar">
      <span class="who">${store.session.value?.user?.display_name || ""}</span>
      <span class=${`duty duty-${duty}`} data-duty=${duty}>${t(`officer.status.${duty}`)}</span>
      <span class=${`net net-${feed.state.value}`} data-net=${feed.state.value} role="status">${net}</span>
      <button class="lang" onClick=${() => setLocale(locale.value === "zh-CN" ? "en" : "zh-CN")}>${t("lang.switch")}</button>
    </header>
    ${feed.state.value !== "live" && store.session.value && html`<p class="banner" role="status">${t("net.offline_banner")}</p>`}
    <section class="card duty-panel">
      ${onDuty
        ? html`<button class="off" onClick=${() => setDuty(false)}>${t("officer.go_off_duty")}</button>
            ${!soundUnlocked.value && html`<button class="primary" onClick=${unlockSound}>${t("officer.sound_locked")}</button>`}
            <p class="muted">${geoError.value ? t(`officer.geo.${geoError.value}`) : f ? t("officer.position", { accuracy: Math.round(f.accuracy_m), time: lastReport.value ? fmt.time(lastReport.value) : "—" }) : t("officer.position_wait")}
              ${wakeLock.value !== "off" && html` · ${t(`officer.wake.${wakeLock.value}`)}`}</p>`
        : html`<button class="on primary" onClick=${() => setDuty(true)}>${t("officer.go_on_duty")}</button>`}
      <p class="limits">${t("officer.limits")}</p>
    </section>`;
}

function Shell() {
  const current = state.current.value;
  return html`
    <${DutyBar} />
    <main>
      ${flash.value && html`<p class="flash error" role="alert">${flash.value}</p>`}
      ${state.notices.value.map((n) => html`<p class="notice" role="status">${n.text}</p>`)}
      <${OutboxPanel} />
      ${state.work.value.size > 1 && html`<nav class="tabs">${[...state.work.value.values()].map((a) => html`
        <button aria-pressed=${a.assignment_id === state.selected.value} onClick=${() => (state.selected.value = a.assignment_id)}>${a.incident.case_no}</button>`)}</nav>`}
      ${current ? html`<${Assignment} assignment=${current} />` : html`<p class="idle card">${t("officer.idle")}</p>`}
    </main>
    <${OfferAlert} />`;
}

function App() {
  const session = store.session.value;
  useEffect(() => {
    document.title = t("officer.title");
  }, [locale.value]);
  if (!session) {
    return html`<${LoginForm} store=${store} expired=${expired.value} roles=${["officer"]} onLoggedIn=${() => {
      expired.value = false;
      feed.restart();
    }} />`;
  }
  return html`<${Shell} />`;
}

loadConfig();
if (store.token()) feed.start();
render(html`<${App} />`, document.getElementById("app"));
