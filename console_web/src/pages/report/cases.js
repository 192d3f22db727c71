// My cases: each report this phone made, its timeline live over /citizen, chat with
// the dispatcher, and a rating once the police have dealt with it.
import { useState, useEffect } from "preact/hooks";
import { html } from "../../shared/html.js";
import { t, fmt } from "../../shared/i18n.js";
import { cases, refreshCase, sendMessage, feed, isOpen } from "./cases_state.js";
import { caseGet, casePut } from "./store.js";
import { items } from "./outbox.js";
import { Delivery } from "./delivery.js";
import { navigate } from "./router.js";

const statusText = (status) => t(`status.${status}`);
const stepText = (step) => (step.event && t(`event.${step.event}`) !== `event.${step.event}` ? t(`event.${step.event}`) : step.text);

export function CaseList() {
  const waiting = items.value.filter((i) => (i.kind === "alarm" || i.kind === "report") && i.state !== "done");
  return html`<section class="screen cases" aria-labelledby="cases-title">
    <h1 id="cases-title">${t("cases.title")}</h1>
    ${waiting.map((i) => html`<div class="case-row" key=${i.idempotency_key}><span>${t(`tag.${i.payload.tag}`)}</span><${Delivery} itemKey=${i.idempotency_key} /></div>`)}
    ${cases.value.length === 0 && waiting.length === 0 ? html`<p>${t("cases.none")}</p>` : null}
    <ul class="case-list">
      ${cases.value.map(
        (c) => html`<li key=${c.case_no}>
          <a class="case-link" href=${`#/case/${encodeURIComponent(c.case_no)}`} aria-label=${t("cases.open", { case_no: c.case_no })}>
            <strong>${c.case_no}</strong> · ${t(`tag.${c.tag}`)}<br />
            <span class=${`status status-${c.status}`}>${statusText(c.status)}</span>
          </a>
        </li>`,
      )}
    </ul>
  </section>`;
}

function Rating({ kept }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  if (kept.rating) return html`<p class="notice">${t("case.rated")}</p>`;
  const rate = async (n) => {
    setBusy(true);
    setError(null);
    try {
      const response = await fetch(`/api/cases/${encodeURIComponent(kept.case_no)}/rating`, {
        method: "POST",
        headers: { Authorization: `Bearer ${kept.tracking_token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ rating: n, comment: "" }),
      });
      if (!response.ok && response.status !== 409) throw new Error((await response.json().catch(() => null))?.error?.message || `HTTP ${response.status}`);
      const fresh = await caseGet(kept.case_no);
      await casePut({ ...fresh, rating: n });
      await refreshCase(kept.case_no);
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<fieldset class="rating"><legend>${t("case.rate")}</legend>
    ${[1, 2, 3, 4, 5].map((n) => html`<button type="button" disabled=${busy} aria-label=${t("case.rate_n", { n })} onClick=${() => rate(n)}>${"★".repeat(n)}</button>`)}
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
  </fieldset>`;
}

function Chat({ kept }) {
  const [text, setText] = useState("");
  const [error, setError] = useState(null);
  const send = async (event) => {
    event.preventDefault();
    if (!text.trim()) return;
    setError(null);
    try {
      await sendMessage(kept, text.trim());
      setText("");
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<section class="chat" aria-labelledby="chat-title">
    <h2 id="chat-title">${t("case.chat")}</h2>
    <ol class="messages" aria-live="polite">
      ${(kept.messages || []).map(
        (m) => html`<li key=${m.id} class=${`msg msg-${m.sender_kind}`}>
          <span class="who">${m.sender_kind === "citizen" ? t("case.chat_me") : t("case.chat_dispatcher")}</span>
          <span class="body">${m.body}</span>
          <time datetime=${m.created_at}>${fmt.time(m.created_at)}</time>
        </li>`,
      )}
    </ol>
    ${isOpen(kept.status)
      ? html`<form class="chat-form" onSubmit=${send}>
          <label class="visually-hidden" for="chat-input">${t("case.chat_label")}</label>
          <input id="chat-input" name="message" maxlength="2000" value=${text} onInput=${(e) => setText(e.currentTarget.value)} />
          <button type="submit" class="primary">${t("case.chat_send")}</button>
        </form>`
      : null}
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
  </section>`;
}

export function CaseDetail({ caseNo }) {
  useEffect(() => {
    refreshCase(caseNo).catch(() => null);
  }, [caseNo]);
  const kept = cases.value.find((c) => c.case_no === caseNo);
  if (!kept) {
    return html`<section class="screen"><p>${t("cases.none")}</p><button type="button" onClick=${() => navigate("#/cases")}>${t("back")}</button></section>`;
  }
  const live = feed?.state.value === "live";
  return html`<section class="screen case" aria-labelledby="case-title">
    <h1 id="case-title">${kept.case_no}</h1>
    <p><span class=${`status status-${kept.status}`} data-status=${kept.status}>${statusText(kept.status)}</span>
      · <span class=${live ? "live" : "not-live"}>${live ? t("case.live") : t("case.not_live")}</span></p>
    <h2>${t("case.timeline")}</h2>
    <ol class="timeline" aria-live="polite">
      ${(kept.timeline || []).map(
        (step) => html`<li key=${`${step.at}|${step.event}`} data-event=${step.event}><time datetime=${step.at}>${fmt.dateTime(step.at)}</time> ${stepText(step)}</li>`,
      )}
    </ol>
    <${Chat} kept=${kept} />
    ${kept.status === "resolved" || kept.status === "closed" ? html`<${Rating} kept=${kept} />` : null}
  </section>`;
}
