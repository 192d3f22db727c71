// The map pane: precincts, incidents by severity, officers.
import { useEffect, useRef } from "preact/hooks";
import { effect } from "@preact/signals";
import { html } from "../../shared/html.js";
import { createMap } from "../../shared/map.js";
import * as state from "./state.js";
import { tagLabel } from "./context.js";

// The live map, for tests and the benchmark (window.__console.map).
export const mapRef = { current: null };

export function MapPane({ config }) {
  const box = useRef(null);
  useEffect(() => {
    const map = createMap(box.current, {
      basemap: config?.basemap,
      onSelect: (id) => {
        state.cursorId.value = id;
        state.selectedId.value = id;
      },
    });
    mapRef.current = map;
    fetch("/api/precincts.geojson")
      .then((r) => r.json())
      .then((g) => {
        map.setPrecincts(g);
        state.precincts.value = (g.features || []).map((f) => ({ code: f.properties.code, name: f.properties.name }));
      })
      .catch((err) => console.warn("precincts", err));
    // The map follows the queue at most four times a second: markers need not animate.
    let pending = null;
    const draw = () => {
      pending = null;
      const selected = state.selectedId.peek();
      map.setIncidents(
        [...state.incidents.values()].map((i) => ({ id: i.id, lon: i.lon, lat: i.lat, severity: i.severity, selected: i.id === selected, label: `${i.case_no} ${tagLabel(i.tag)}` })),
      );
    };
    const stopIncidents = effect(() => {
      state.version.value;
      state.selectedId.value;
      if (!pending) pending = setTimeout(draw, 250);
    });
    const stopOfficers = effect(() => {
      state.officerVersion.value;
      map.setOfficers([...state.officers.values()]);
    });
    const stopFocus = effect(() => {
      const focus = state.focusTrail.value;
      map.setFocus(focus?.incident, focus?.trail || []);
    });
    return () => {
      clearTimeout(pending);
      stopFocus();
      stopIncidents();
      stopOfficers();
      map.leaflet.remove();
      mapRef.current = null;
    };
  }, []);
  return html`<section class="map" aria-label="map"><div class="map-box" ref=${box}></div></section>`;
}
