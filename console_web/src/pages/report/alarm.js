// The silent alarm: a grid of tags, each held for 2 s to send.  It goes out at once with
// the best fix so far (or none), then every better fix follows on the trail.  After
// sending: a calm screen, and cancelling only through a confirmation.
import { useState } from "preact/hooks";
import { html } from "../../shared/html.js";
import { t, fmt } from "../../shared/i18n.js";
import { HoldButton } from "./hold.js";
import { TAGS } from "./strings.js";
import { enqueue, items } from "./outbox.js";
import { fix, locationState, onFix, positionFields } from "./location.js";
import { newKey } from "./store.js";
import { Delivery } from "./delivery.js";
import { navigate } from "./router.js";

const TRAIL_MIN_MS = 5_000; // the server takes at most 2 points a second; a phone needs far fewer

/** Stream fixes to the alarm's trail: the first at once, then better or moved ones.
 * A call's trail names its incident (known at once); an alarm's waits for its key.
 * Returns the function that stops it. */
export function streamTrail(alarmKey, sentWithFix, incidentId = null) {
  let last = sentWithFix ? { ...sentWithFix, at: Date.now() } : null;
  const off = onFix((f) => {
    const now = Date.now();
    if (last) {
      if (now - last.at < TRAIL_MIN_MS) return;
      const better = f.accuracy_m < last.accuracy_m * 0.8;
      const moved = metres(last, f) > Math.max(15, f.accuracy_m);
      if (!better && !moved && now - last.at < 60_000) return;
    }
    // The first fix of an alarm sent without one goes at once: it routes the alarm.
    last = { ...f, at: now };
    if (incidentId) enqueue("trail", { incident_id: incidentId, call: true, body: { points: [f] } });
    else enqueue("trail", { body: { points: [f] } }, { after: alarmKey });
  });
  streams.set(alarmKey, off);
  return () => {
    off();
    streams.delete(alarmKey);
  };
}
const streams = new Map();

function metres(a, b) {
  const rad = Math.PI / 180;
  const x = (b.lon - a.lon) * rad * Math.cos(((a.lat + b.lat) / 2) * rad);
  const y = (b.lat - a.lat) * rad;
  return Math.hypot(x, y) * 6_371_000;
}

export function sendAlarm(tag) {
  const current = fix.peek();
  const key = newKey("alarm");
  performance.mark(`m110:confirmed:${key}`); // bench/report_page.py measures from here
  const payload = { tag, client_time: new Date().toISOString(), idempotency_key: key, ...positionFields(current) };
  enqueue("alarm", payload);
  streamTrail(key, current);
  return key;
}

export function AlarmGrid() {
  const [hint, setHint] = useState(null);
  return html`<section class="screen alarm" aria-labelledby="alarm-title">
    <h1 id="alarm-title">${t("alarm.title")}</h1>
    <p class="lead">${t("alarm.choose")}</p>
    <div class="tag-grid">
      ${TAGS.map(
        (tag) => html`<${HoldButton}
          key=${tag}
          className=${`tag tag-${tag}`}
          label=${t("alarm.hold", { tag: t(`tag.${tag}`) })}
          onShort=${() => setHint(t("alarm.short"))}
          onConfirm=${() => navigate(`#/alarm/${sendAlarm(tag)}`)}
        >${t(`tag.${tag}`)}</${HoldButton}>`,
      )}
    </div>
    <p class="hint" role="status" aria-live="polite">${hint || ""}</p>
  </section>`;
}

function LocationLine() {
  const f = fix.value;
  if (locationState.value === "denied") return html`<p class="location warn">${t("alarm.location_denied")}</p>`;
  if (!f) return html`<p class="location">${t("alarm.location_none")}</p>`;
  return html`<p class="location ok">${t("alarm.location_ok", { accuracy: fmt.distance(f.accuracy_m) })}</p>`;
}

export function AlarmSent({ alarmKey }) {
  const [confirming, setConfirming] = useState(false);
  const item = items.value.find((i) => i.idempotency_key === alarmKey);
  const cancelled = items.value.some((i) => i.kind === "cancel" && i.after === alarmKey);
  const cancel = () => {
    enqueue("cancel", { body: { reason: t("alarm.cancel_reason") } }, { after: alarmKey });
    streams.get(alarmKey)?.();
    setConfirming(false);
  };
  return html`<section class="screen calm" aria-labelledby="sent-title">
    <h1 id="sent-title">${t("alarm.sent_title")}</h1>
    <${Delivery} itemKey=${alarmKey} />
    <p class="calm-text">${t("alarm.calm")}</p>
    <${LocationLine} />
    ${cancelled
      ? html`<p class="notice">${t("alarm.cancelled")}</p>`
      : item && item.state !== "failed"
        ? html`<button type="button" class="quiet cancel" onClick=${() => setConfirming(true)}>${t("alarm.cancel")}</button>`
        : null}
    ${confirming
      ? html`<div class="backdrop"><div class="card dialog" role="alertdialog" aria-modal="true" aria-labelledby="cancel-title" aria-describedby="cancel-text">
          <h2 id="cancel-title">${t("alarm.cancel_confirm_title")}</h2>
          <p id="cancel-text">${t("alarm.cancel_confirm_text")}</p>
          <div class="buttons">
            <button type="button" class="primary" autofocus onClick=${() => setConfirming(false)}>${t("alarm.cancel_no")}</button>
            <button type="button" class="danger" onClick=${cancel}>${t("alarm.cancel_yes")}</button>
          </div>
        </div></div>`
      : null}
  </section>`;
}

/** After a reload: alarms sent in the last two hours and not cancelled keep streaming. */
export function resumeTrails(outbox, cases) {
  const since = Date.now() - 2 * 3600_000;
  for (const item of outbox) {
    if (item.kind !== "alarm" || item.state === "failed" || Date.parse(item.captured_at) < since) continue;
    if (outbox.some((i) => i.kind === "cancel" && i.after === item.idempotency_key)) continue;
    const kept = cases.find((c) => c.key === item.idempotency_key);
    if (kept && !["queued", "claimed", "assigned", "escalated"].includes(kept.status)) continue;
    if (!streams.has(item.idempotency_key)) streamTrail(item.idempotency_key, null);
  }
}
