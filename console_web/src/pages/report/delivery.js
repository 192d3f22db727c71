// Where a submission is: waiting to send, sending, received (case number), taken by a
// dispatcher -- or refused, with what to do instead.
import { html } from "../../shared/html.js";
import { t } from "../../shared/i18n.js";
import { items, progress } from "./outbox.js";
import { cases } from "./cases_state.js";

const TAKEN = new Set(["claimed", "assigned", "escalated", "resolved", "closed"]);

export function deliveryState(key) {
  const item = items.value.find((i) => i.idempotency_key === key);
  if (!item) return null;
  if (item.state !== "done") return { state: item.state, item };
  const kept = cases.value.find((c) => c.key === key || c.case_no === item.answer?.case_no);
  const caseNo = item.answer?.case_no;
  if (kept && TAKEN.has(kept.status)) return { state: "taken", item, caseNo };
  return { state: "received", item, caseNo };
}

export function Delivery({ itemKey }) {
  const found = deliveryState(itemKey);
  if (!found) return null;
  const { state, item, caseNo } = found;
  const pct = progress.value[itemKey];
  return html`<div class=${`delivery delivery-${state}`} role="status" aria-live="polite" data-state=${state}>
    <span class="dot" aria-hidden="true"></span>
    <strong>${state === "received" ? t("state.received", { case_no: caseNo }) : t(`state.${state}`)}</strong>
    ${pct !== undefined && state === "sending" ? html` <span>${t("report.uploading", { percent: Math.round(pct * 100) })}</span>` : null}
    ${state === "waiting" ? html`<p class="small">${t("state.waiting_long")}</p>` : null}
    ${state === "failed" ? html`<p class="small error">${item.error}</p><${DialLinks} />` : null}
  </div>`;
}

export function DialLinks() {
  return html`<div class="dial">
    <a class="button dial-call" href="tel:110">${t("home.dial")}</a>
    <a class="button dial-sms" href="sms:12110">${t("home.sms")}</a>
  </div>`;
}
