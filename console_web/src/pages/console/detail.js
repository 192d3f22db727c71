// The open incident: what happened (timeline with actors), where (position, accuracy,
// the silent alarm's trail), evidence on demand, the reporter, chat, notes, every
// workflow verb, recommendations with one-click assign, and the assignments' states.
import { useEffect, useState } from "preact/hooks";
import { html } from "../../shared/html.js";
import { t, fmt, addCatalogue } from "../../shared/i18n.js";
import { draft } from "../../shared/drafts.js";
import { now } from "../../shared/clock.js";
import * as state from "./state.js";
import { confirmAction } from "./dialogs.js";
import { api, act, alertLevel, tagLabel } from "./context.js";
import { VideoPane } from "./video.js";
import "./detail_strings.js";

const DISPOSITIONS = ["arrested", "report_taken", "advised", "assisted", "no_offence", "gone_on_arrival", "referred", "other"];

function actorName(actor) {
  if (!actor) return "";
  if (actor.kind === "citizen") return t("actor.citizen");
  if (actor.kind === "system") return t("actor.system");
  const id = Number(actor.id);
  if (id === state.me.peek()?.id) return t("actor.me");
  return state.staffNames.get(id) || state.officers.get(id)?.callsign || `#${actor.id}`;
}

/** A history row ({seq, type, at, actor, payload}) in the shape of a live event. */
function normalise(row) {
  return { seq: row.seq, type: row.type, at: row.at, actor: row.actor, ...row.payload };
}

async function loadTimeline(id) {
  const body = await api.get(`/api/incidents/${id}/history`);
  const timeline = state.timelines.get(id) || { seqs: new Set(), events: [] };
  for (const row of body.events) {
    const event = normalise(row);
    if (event.type.startsWith("assignment.")) state.absorbAssignment(event, id);
    if (timeline.seqs.has(event.seq)) continue;
    timeline.seqs.add(event.seq);
    timeline.events.push(event);
  }
  timeline.events.sort((a, b) => a.seq - b.seq);
  state.timelines.set(id, timeline);
  state.timelineVersion.value++;
}

function describe(event) {
  const bits = [t(`ev.${event.type}`)];
  if (event.type === "incident.created" && event.text) bits.push(`“${event.text}”`);
  if (event.text && event.type !== "incident.created") bits.push(`${event.kind ? t(`note.${event.kind}`) + ": " : ""}${event.text}`);
  if (event.reason) bits.push(event.reason);
  if (event.note) bits.push(event.note);
  if (event.callsigns) bits.push(event.callsigns.join(", "));
  if (event.callsign && !event.callsigns) bits.push(event.callsign);
  if (event.into_case_no) bits.push(event.into_case_no);
  if (event.transfer) bits.push(`${t(`transfer.${event.transfer.kind}`)} ${event.transfer.name}`);
  if (event.points) bits.push(t("ev.points", { n: event.points.length }));
  if (event.message) bits.push(event.message.body);
  if (event.type === "incident.resolved" && event.incident?.disposition) bits.push(t(`disposition.${event.incident.disposition}`));
  if (event.rating) bits.push(`★${event.rating} ${event.comment || ""}`);
  return bits.join(" · ");
}

function Timeline({ events }) {
  return html`<section class="block"><h3>${t("detail.timeline")}</h3>
    <ol class="timeline">
      ${events.filter((e) => e.type !== "message.created").map((e) => html`<li key=${e.seq} data-type=${e.type}>
        <time datetime=${e.at}>${fmt.time(e.at)}</time> <b>${actorName(e.actor)}</b> ${describe(e)}</li>`)}
    </ol></section>`;
}

function trailOf(incident, events) {
  const points = [];
  for (const e of events) if (e.points) points.push(...e.points);
  if (incident.lon != null && !points.length) points.push({ lon: incident.lon, lat: incident.lat, time: incident.received_at, accuracy_m: incident.accuracy_m });
  return points;
}

function Location({ incident, trail }) {
  if (incident.lon == null) return html`<section class="block"><h3>${t("detail.location")}</h3><p>${t("detail.no_position")}</p></section>`;
  const last = trail[trail.length - 1];
  return html`<section class="block"><h3>${t("detail.location")}</h3>
    <p><span class="mono">${fmt.number(incident.lat, { maximumFractionDigits: 5 })}, ${fmt.number(incident.lon, { maximumFractionDigits: 5 })}</span>
      · ${t("detail.accuracy", { m: incident.accuracy_m != null ? fmt.distance(incident.accuracy_m) : "?" })}
      · ${incident.jurisdiction === "inside" ? incident.precinct_code : t("detail.outside", { code: incident.nearest_precinct_code || "–", d: incident.distance_m != null ? fmt.distance(incident.distance_m) : "?" })}</p>
    ${trail.length > 1 && html`<p data-trail=${trail.length}>${t("detail.trail", { n: fmt.number(trail.length), at: fmt.time(last.time) })}</p>`}
  </section>`;
}

function Photos({ incident }) {
  const [items, setItems] = useState(null); // [{id, url, revealed}]
  const [list, setList] = useState([]);
  useEffect(() => {
    setItems(null);
    api.get(`/api/incidents/${incident.id}/evidence`).then((b) => setList(b.attachments)).catch(() => setList([]));
  }, [incident.id]);
  if (!list.length) return null;
  async function load() {
    const loaded = [];
    for (const a of list.filter((x) => x.kind === "image" || x.kind === "snapshot")) {
      const response = await api.request("GET", `/api/incidents/${incident.id}/evidence/${a.id}?purpose=dispatch`, { raw: true });
      loaded.push({ id: a.id, url: URL.createObjectURL(await response.blob()), revealed: false });
    }
    setItems(loaded);
  }
  return html`<section class="block"><h3>${t("detail.photos", { n: list.length })}</h3>
    ${items === null
      ? html`<button type="button" data-action="load-photos" onClick=${() => act(load)}>${t("detail.load_photos")}</button>`
      : html`<div class="photos">${items.map((p, k) => html`<button type="button" class=${p.revealed ? "photo revealed" : "photo"} aria-pressed=${p.revealed}
          aria-label=${p.revealed ? t("detail.photo_n", { n: k + 1 }) : t("detail.reveal_photo", { n: k + 1 })}
          onClick=${() => setItems(items.map((q) => (q.id === p.id ? { ...q, revealed: !q.revealed } : q)))}>
          <img src=${p.url} alt=${t("detail.photo_n", { n: k + 1 })} /></button>`)}</div>`}
  </section>`;
}

function Reporter({ incident }) {
  const [identity, setIdentity] = useState(null);
  useEffect(() => setIdentity(null), [incident.id]);
  return html`<section class="block"><h3>${t("detail.reporter")}</h3>
    <p>${t(`verification.${incident.verification}`)}</p>
    ${incident.refused_attempts
      ? html`<p class="refused" data-refused>${t("detail.refused", { n: incident.refused_attempts })}</p>`
      : null}
    ${identity
      ? html`<dl class="identity" data-identity>
          <dt>${t("reporter.name")}</dt><dd>${identity.name || "–"}</dd>
          <dt>${t("reporter.id")}</dt><dd>${identity.national_id || "–"}</dd>
          <dt>${t("reporter.phone")}</dt><dd>${identity.phone || "–"}</dd>
          <dt>${t("reporter.record")}</dt><dd>${t("reporter.record_text", { valid: identity.valid_reports, false: identity.false_alarms })}</dd></dl>`
      : html`<button type="button" data-action="reveal-reporter" onClick=${() => act(async () => setIdentity(await api.get(`/api/incidents/${incident.id}/reporter?purpose=dispatch`)))}>${t("detail.reveal_reporter")}</button>`}
  </section>`;
}

function Chat({ incident, events }) {
  const text = draft(`chat.${incident.id}`);
  const messages = events.filter((e) => e.type === "message.created");
  async function send(event) {
    event.preventDefault();
    const body = text.value.trim();
    if (!body) return;
    const sent = await act(() => api.post(`/api/incidents/${incident.id}/messages`, { body, client_key: `c-${crypto.randomUUID()}` }));
    if (sent) text.value = "";
  }
  return html`<section class="block"><h3>${t("detail.chat")}</h3>
    <ol class="chat" aria-live="polite">
      ${messages.map((m) => html`<li key=${m.seq} class=${m.message.sender_kind === "citizen" ? "from-citizen" : "from-staff"} data-chat=${m.message.sender_kind}>
        <time datetime=${m.at}>${fmt.time(m.at)}</time> <b>${actorName(m.actor)}</b> ${m.message.body}</li>`)}
    </ol>
    <form class="inline" onSubmit=${send}>
      <label class="visually-hidden" for="chat-input">${t("detail.chat_input")}</label>
      <input id="chat-input" name="chat" autocomplete="off" placeholder=${t("detail.chat_input")} value=${text.value} onInput=${(e) => (text.value = e.currentTarget.value)} />
      <button type="submit">${t("detail.send")}</button>
    </form></section>`;
}

function Notes({ incident }) {
  const text = draft(`note.${incident.id}`);
  const kind = draft(`note-kind.${incident.id}`, "note");
  async function add(event) {
    event.preventDefault();
    const body = text.value.trim();
    if (!body) return;
    const done = await act(() => api.post(`/api/incidents/${incident.id}/notes`, { text: body, kind: kind.value }));
    if (done) text.value = "";
  }
  return html`<section class="block notes"><h3>${t("detail.notes")}</h3>
    <form class="inline" onSubmit=${add}>
      <label class="visually-hidden" for="note-kind">${t("detail.note_kind")}</label>
      <select id="note-kind" value=${kind.value} onChange=${(e) => (kind.value = e.currentTarget.value)}>
        ${["note", "follow_up", "callback"].map((k) => html`<option value=${k}>${t(`note.${k}`)}</option>`)}
      </select>
      <label class="visually-hidden" for="note-text">${t("detail.note_text")}</label>
      <textarea id="note-text" rows="2" value=${text.value} onInput=${(e) => (text.value = e.currentTarget.value)}></textarea>
      <button type="submit">${t("detail.add")}</button>
    </form></section>`;
}

async function ensureMine(incident) {
  const mine = state.me.peek();
  if (incident.claimed_by === mine?.id) return incident;
  if (incident.state !== "queued") return incident; // the server says no if it must
  const claimed = await api.post(`/api/incidents/${incident.id}/claim`, {});
  state.putIncident(claimed);
  return claimed;
}

export async function assignOfficer(incident, officerId) {
  return act(async () => {
    const current = await ensureMine(incident);
    const after = await api.post(`/api/incidents/${current.id}/assign`, { officer_ids: [officerId] });
    state.putIncident(after);
    return after;
  });
}

function Recommendations({ incident }) {
  const [found, setFound] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    setFound(null);
    setError(null);
    if (incident.lon == null) return;
    api.get(`/api/incidents/${incident.id}/recommendations`).then((b) => setFound(b.officers)).catch((e) => setError(e.message));
  }, [incident.id, state.officerVersion.value]);
  return html`<section class="block"><h3>${t("detail.recommended")}</h3>
    ${error && html`<p class="muted">${error}</p>`}
    ${found && !found.length && html`<p class="muted">${t("detail.no_officers")}</p>`}
    ${found && html`<ol class="recs">${found.map((r, k) => html`<li key=${r.officer_id} data-officer=${r.officer_id}>
      <b>${r.callsign}</b> ${fmt.distance(r.distance_m)}${r.stale ? html` <span class="muted">${t("detail.stale")}</span>` : ""}
      <button type="button" class=${k === 0 ? "primary" : ""} data-action="assign" data-officer=${r.officer_id} onClick=${() => assignOfficer(incident, r.officer_id)}>${t("verb.assign")}</button></li>`)}</ol>`}
  </section>`;
}

function Assignments({ incident }) {
  state.selectedVersion.value;
  const nowMs = now.value;
  const list = [...(state.assignments.get(incident.id)?.values() || [])];
  if (!list.length) return null;
  return html`<section class="block"><h3>${t("detail.assignments")}</h3>
    <ul class="assignments">${list.map((a) => html`<li key=${a.id} data-assignment=${a.state} data-officer=${a.officer_id}>
      <b>${a.callsign}</b> ${t(`assignment.${a.state}`)}
      ${(a.state === "offered" || a.state === "unacknowledged") && html` <span class=${a.state === "unacknowledged" ? "timer late" : "timer"}>${fmt.duration((nowMs - Date.parse(a.offered_at)) / 1000)}</span>`}
      ${a.reason ? ` · ${a.reason}` : ""}</li>`)}</ul></section>`;
}

function field(name, label, control) {
  return html`<label>${label}${control}</label>`;
}

async function verb(incident, name) {
  const id = incident.id;
  const post = (path, body = {}) => act(async () => {
    const after = await api.post(`/api/incidents/${id}/${path}`, body);
    state.putIncident(after);
    return after;
  });
  switch (name) {
    case "claim":
    case "release":
    case "close":
    case "unmerge":
      return post(name);
    case "escalate": {
      const values = await confirmAction(t("verb.escalate"), t("confirm.escalate", { case: incident.case_no }), {
        fields: field("note", t("field.note"), html`<textarea name="note" rows="2"></textarea>`),
      });
      return values && post("escalate", { note: values.note });
    }
    case "merge": {
      const options = [...state.incidents.values()].filter((i) => i.id !== id && !i.merged_into);
      const dups = new Set((incident.possible_duplicates || []).map((d) => d.incident_id));
      options.sort((a, b) => (dups.has(b.id) ? 1 : 0) - (dups.has(a.id) ? 1 : 0));
      if (!options.length) return null;
      const values = await confirmAction(t("verb.merge"), t("confirm.merge", { case: incident.case_no }), {
        fields: field("into", t("field.into"), html`<select name="into" data-autofocus>${options.map((o) => html`<option value=${o.id}>${o.case_no} · ${tagLabel(o.tag)}${dups.has(o.id) ? ` · ${t("queue.duplicate")}` : ""}</option>`)}</select>`),
      });
      return values && post("merge", { into: values.into });
    }
    case "transfer": {
      const values = await confirmAction(t("verb.transfer"), t("confirm.transfer", { case: incident.case_no }), {
        fields: html`${field("to", t("field.to"), html`<select name="to" data-autofocus>${["precinct", "agency", "department"].map((k) => html`<option value=${k}>${t(`transfer.${k}`)}</option>`)}</select>`)}
          ${field("name", t("field.name"), html`<input name="name" required maxlength="120" list="transfer-precincts" />
            <datalist id="transfer-precincts">${state.precincts.value.map((p) => html`<option value=${p.code}>${p.name}</option>`)}</datalist>`)}
          ${field("note", t("field.note"), html`<textarea name="note" rows="2"></textarea>`)}`,
      });
      return values && post("transfer", { to: values.to, name: values.name, note: values.note });
    }
    case "resolve": {
      const values = await confirmAction(t("verb.resolve"), t("confirm.resolve", { case: incident.case_no }), {
        fields: html`${field("disposition", t("field.disposition"), html`<select name="disposition" data-autofocus>${DISPOSITIONS.map((d) => html`<option value=${d}>${t(`disposition.${d}`)}</option>`)}</select>`)}
          ${field("note", t("field.note"), html`<textarea name="note" rows="2"></textarea>`)}`,
      });
      return values && post("resolve", { disposition: values.disposition, note: values.note });
    }
    case "invalid": {
      const values = await confirmAction(t("verb.invalid"), t("confirm.invalid", { case: incident.case_no }), {
        fields: field("reason", t("field.reason"), html`<input name="reason" required maxlength="500" data-autofocus />`),
      });
      return values && post("invalid", { reason: values.reason });
    }
    default:
      return null;
  }
}

export function assignDialog(id) {
  // `a`: the recommendations are in this incident's detail pane; focus the first one's
  // button (Enter then assigns).  They load after the pane opens, so wait a little.
  const find = () => document.querySelector(`.detail[data-id='${id}'] .recs button[data-action=assign]`);
  const found = find();
  if (found) return found.focus();
  const observer = new MutationObserver(() => {
    const button = find();
    if (!button) return;
    observer.disconnect();
    clearTimeout(giveUp);
    button.focus();
  });
  const giveUp = setTimeout(() => observer.disconnect(), 10000);
  observer.observe(document.body, { subtree: true, childList: true });
  return undefined;
}

const VERBS = {
  queued: ["claim", "merge", "transfer", "invalid"],
  claimed: ["release", "escalate", "merge", "transfer", "resolve", "invalid"],
  assigned: ["escalate", "merge", "transfer", "resolve"], // officers went: not invalid
  escalated: ["claim", "release", "merge", "transfer", "resolve", "invalid"],
  resolved: ["close"],
  merged: ["unmerge"],
};

function Verbs({ incident }) {
  const verbs = VERBS[incident.state] || [];
  return html`<div class="verbs" role="toolbar" aria-label=${t("detail.actions")}>
    ${verbs.map((v) => html`<button type="button" data-verb=${v} class=${["resolve", "invalid", "merge", "transfer"].includes(v) ? "warn" : ""} onClick=${() => verb(incident, v)}>${t(`verb.${v}`)}</button>`)}
  </div>`;
}

export function Detail() {
  state.selectedVersion.value; // its incident changed (not every other one in the queue)
  state.timelineVersion.value;
  const id = state.selectedId.value;
  const incident = state.incidents.get(id) || state.gone.get(id);
  const focus = state.incidents.get(id) || state.gone.get(id);
  const trailLength = focus ? trailOf(focus, state.timelines.get(id)?.events || []).length : 0;
  useEffect(() => {
    // The map shows the open incident's accuracy and trail (only when they change).
    state.focusTrail.value = focus ? { incident: focus, trail: trailOf(focus, state.timelines.get(id)?.events || []) } : null;
  }, [id, trailLength, focus?.lon, focus?.lat]);
  useEffect(() => {
    if (!id) return undefined;
    if (!state.timelines.has(id)) state.timelines.set(id, { seqs: new Set(), events: [] });
    loadTimeline(id).catch((err) => console.warn("history", err));
    return () => state.timelines.delete(id);
  }, [id]);
  if (!incident) return html`<section class="detail empty" aria-label=${t("detail.title")}><p>${t("detail.none")}</p></section>`;
  // A fresh array: @preact/signals skips a child whose props are all the same objects.
  const events = [...(state.timelines.get(id)?.events || [])];
  const trail = trailOf(incident, events);
  const level = alertLevel(incident, now.value);
  const created = events.find((e) => e.type === "incident.created");
  return html`<section class="detail" aria-labelledby="detail-title" data-id=${incident.id} data-state=${incident.state}>
    <header class="detail-head">
      <h2 id="detail-title"><span class=${`alert alert-${level || "none"}`} aria-hidden="true"></span>
        ${incident.case_no} · ${tagLabel(incident.tag)} <span class=${`sevchip sev-${incident.severity}`}>${t(`sev.${incident.severity}`)}</span></h2>
      <p>${t(`state.${incident.state}`)} · ${t(`channel.${incident.channel}`)} · ${t("detail.received", { at: fmt.dateTime(incident.received_at) })}
        ${incident.claimed_by != null ? ` · ${t("detail.holder", { who: actorName({ kind: "staff", id: incident.claimed_by }) })}` : ""}</p>
      ${(incident.text || created?.text) && html`<blockquote class="report-text">${incident.text || created.text}</blockquote>`}
      <${Verbs} incident=${incident} />
    </header>
    ${incident.channel === "video" && html`<${VideoPane} incident=${incident} />`}
    <${Assignments} incident=${incident} />
    ${["queued", "claimed", "assigned", "escalated"].includes(incident.state) && html`<${Recommendations} incident=${incident} />`}
    <${Location} incident=${incident} trail=${trail} />
    <${Chat} incident=${incident} events=${events} />
    <${Notes} incident=${incident} />
    <${Photos} incident=${incident} />
    <${Reporter} incident=${incident} />
    <${Timeline} events=${events} />
  </section>`;
}
