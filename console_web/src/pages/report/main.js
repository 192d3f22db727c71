// The citizen's page (/report): silent alarm, video call, text and photos, my cases.
// Mobile first, usable offline (a service worker keeps the shell; the outbox keeps what
// is sent until the server has it), Chinese first and English.
import { render } from "preact";
import { html } from "../../shared/html.js";
import { t, locale, setLocale } from "../../shared/i18n.js";
import "./strings.js";
import "../../shared/base.css";
import "./report.css";
import { keepFresh, loadAccount } from "./auth.js";
import { startOutbox, online, items } from "./outbox.js";
import { cases, reloadCases, startFeed } from "./cases_state.js";
import { watchLocation } from "./location.js";
import { route, navigate } from "./router.js";
import { AlarmGrid, AlarmSent, resumeTrails } from "./alarm.js";
import { ReportForm } from "./report.js";
import { CaseList, CaseDetail } from "./cases.js";
import { VideoCall } from "./call.js";
import { Verify } from "./verify.js";
import { DialLinks } from "./delivery.js";

function Home() {
  const tiles = [
    ["#/alarm", "alarm", "home.alarm", "home.alarm_hint"],
    ["#/call", "call", "home.call", "home.call_hint"],
    ["#/text", "text", "home.text", "home.text_hint"],
    ["#/cases", "cases", "home.cases", "home.cases_hint"],
  ];
  return html`<section class="screen home">
    <h1 class="visually-hidden">${t("app.title")}</h1>
    <nav class="tiles" aria-label=${t("app.title")}>
      ${tiles.map(([href, name, title, hint]) => html`<a class=${`tile tile-${name}`} href=${href} key=${name}><strong>${t(title)}</strong><span>${t(hint)}</span></a>`)}
    </nav>
    <p class="small">${t("home.dial_hint")}</p>
    <${DialLinks} />
    <a class="verify-link" href="#/verify">${t("verify.title")}</a>
  </section>`;
}

function Screen() {
  const [, name, arg] = route.value.split("/");
  if (name === "alarm" && arg) return html`<${AlarmSent} alarmKey=${decodeURIComponent(arg)} />`;
  if (name === "alarm") return html`<${AlarmGrid} />`;
  if (name === "call") return html`<${VideoCall} />`;
  if (name === "text") return html`<${ReportForm} />`;
  if (name === "cases") return html`<${CaseList} />`;
  if (name === "case" && arg) return html`<${CaseDetail} caseNo=${decodeURIComponent(arg)} />`;
  if (name === "verify") return html`<${Verify} />`;
  return html`<${Home} />`;
}

function App() {
  const waiting = items.value.filter((i) => i.state === "waiting" || i.state === "sending").length;
  const home = route.value === "#/" || route.value === "";
  return html`<header class="bar">
      ${home ? html`<span class="brand">${t("app.title")}</span>` : html`<button type="button" class="back" onClick=${() => (history.length > 1 ? history.back() : navigate("#/"))}>${t("back")}</button>`}
      <button type="button" class="lang" lang=${locale.value === "zh-CN" ? "en" : "zh-CN"} onClick=${() => setLocale(locale.value === "zh-CN" ? "en" : "zh-CN")}>${t("app.lang_switch")}</button>
    </header>
    ${!online.value ? html`<div class="offline" role="status" data-waiting=${waiting}>${t("offline.banner")}<${DialLinks} /></div>` : null}
    <main><${Screen} /></main>`;
}

async function boot() {
  await loadAccount().catch(() => null);
  render(html`<${App} />`, document.getElementById("app"));
  performance.mark("m110:usable"); // rendered: an alarm can be held from now on
  watchLocation();
  await reloadCases();
  keepFresh();
  await startOutbox();
  resumeTrails(items.peek(), cases.peek());
  startFeed();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/report/sw.js", { scope: "/report" }).catch((err) => console.warn("service worker", err));
  }
}

boot();
