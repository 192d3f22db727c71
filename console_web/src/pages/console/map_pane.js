// The map pane: precincts, incidents by severity, officers.
import { useEffect, useRef } from "preact/hooks";
import { effect } from "@preact/signals";
import { html } from "../../shared/html.js";
import { createMap } from "../../shared/map.js";
import * as state from "./state.js";
import { tagLabel, config as configSignal } from "./context.js";
import { locale } from "../../shared/i18n.js";

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
    // The map follows the queue at most twice a second, and redraws only the markers of
    // the incidents that changed since (state.moved): at 200 alarms a second a frame
    // must not walk a thousand markers.
    let pending = null;
    let selectedBefore = null;
    const marker = (i, selected) => ({ id: i.id, lon: i.lon, lat: i.lat, severity: i.severity, selected: i.id === selected, label: `${i.case_no} ${tagLabel(i.tag)}` });
    const draw = () => {
      pending = null;
      const selected = state.selectedId.peek();
      const moved = state.moved;
      if (moved.all) {
        map.setIncidents([...state.incidents.values()].map((i) => marker(i, selected)));
      } else {
        if (selectedBefore !== selected) moved.add(selectedBefore).add(selected);
        const changes = [];
        for (const id of moved) {
          if (id == null) continue;
          const i = state.incidents.get(id);
          changes.push(i ? marker(i, selected) : { id, gone: true });
        }
        map.updateIncidents(changes);
      }
      moved.clear();
      moved.all = false;
      selectedBefore = selected;
    };
    const stopIncidents = effect(() => {
      state.version.value;
      state.selectedId.value;
      if (!pending) pending = setTimeout(draw, 500);
    });
    // A new language renames every marker.
    const stopLabels = effect(() => {
      configSignal.value; // the tags' names
      locale.value;
      state.moved.all = true;
      if (!pending) pending = setTimeout(draw, 500);
    });
    // Officers' positions, at most twice a second too.
    let officersPending = null;
    const stopOfficers = effect(() => {
      state.officerVersion.value;
      if (!officersPending) {
        officersPending = setTimeout(() => {
          officersPending = null;
          map.setOfficers([...state.officers.values()]);
        }, 500);
      }
    });
    const stopFocus = effect(() => {
      const focus = state.focusTrail.value;
      map.setFocus(focus?.incident, focus?.trail || []);
    });
    return () => {
      clearTimeout(pending);
      clearTimeout(officersPending);
      stopFocus();
      stopIncidents();
      stopLabels();
      stopOfficers();
      map.leaflet.remove();
      mapRef.current = null;
    };
  }, []);
  return html`<section class="map" aria-label="map"><div class="map-box" ref=${box}></div></section>`;
}
