// The open incident: summary and verbs (grown in the next steps).
import { html } from "../../shared/html.js";
import { t } from "../../shared/i18n.js";
import * as state from "./state.js";

export function assignDialog(_incidentId) {}

export function Detail() {
  state.version.value;
  const incident = state.incidents.get(state.selectedId.value);
  if (!incident) return html`<section class="detail empty"><p>${t("detail.none")}</p></section>`;
  return html`<section class="detail" aria-label=${incident.case_no} data-id=${incident.id}>
    <h2>${incident.case_no} · ${incident.tag}</h2>
    <p>${t(`state.${incident.state}`)}</p>
  </section>`;
}
