// A Leaflet map that is useful with no tile server at all: precinct boundaries
// (GET /api/precincts.geojson), incidents by severity and officers as vector markers
// (no image paths to break, no CDN).  An optional basemap comes from
// /api/client/config: {url, datum: "wgs84" | "gcj02", attribution, max_zoom}.  State
// stays in WGS-84; what is drawn over GCJ-02 tiles is shifted to match them.
import L from "leaflet";
import "leaflet/dist/leaflet.css";
import { projectorFor } from "./datum.js";

export const SEVERITY_COLOURS = { 1: "#c62828", 2: "#e65100", 3: "#f9a825", 4: "#1565c0" };

export function createMap(element, { basemap = null, onSelect = () => {} } = {}) {
  const project = projectorFor(basemap?.datum);
  const latLng = (lon, lat) => {
    const [x, y] = project(lon, lat);
    return L.latLng(y, x);
  };
  const map = L.map(element, {
    preferCanvas: true, // a thousand markers stay cheap
    zoomControl: true,
    attributionControl: Boolean(basemap?.attribution),
    keyboard: false, // the page owns the keyboard
  }).setView([32.06, 118.79], 10);
  if (basemap?.url) {
    L.tileLayer(basemap.url, {
      attribution: basemap.attribution || "",
      maxZoom: basemap.max_zoom || 18,
      subdomains: basemap.subdomains || "abc",
    }).addTo(map);
  }
  const precinctLayer = L.geoJSON(null, {
    coordsToLatLng: (c) => latLng(c[0], c[1]),
    style: () => ({ color: "#455a64", weight: 1.5, fillColor: "#90a4ae", fillOpacity: 0.06 }),
    onEachFeature: (feature, layer) => layer.bindTooltip(feature.properties?.name || "", { sticky: true }),
  }).addTo(map);
  const incidentLayer = L.layerGroup().addTo(map);
  const officerLayer = L.layerGroup().addTo(map);
  const focusLayer = L.layerGroup().addTo(map);
  const incidentMarkers = new Map();
  const incidentKeys = new Map();
  const officerMarkers = new Map();
  const officerKeys = new Map();

  function dropIncident(id) {
    const marker = incidentMarkers.get(id);
    if (!marker) return;
    // From the group, not only the map: a marker merely removed from the map stays in
    // the group's layers, and a night of alarms would keep every one of them.
    incidentLayer.removeLayer(marker);
    incidentMarkers.delete(id);
    incidentKeys.delete(id);
  }

  function putIncident(i) {
    if (i.lon == null || i.lat == null) {
      dropIncident(i.id);
      return;
    }
    // Unchanged markers are left alone.
    const key = `${i.lon},${i.lat},${i.severity},${i.selected ? 1 : 0},${i.label || ""}`;
    if (incidentKeys.get(i.id) === key) return;
    incidentKeys.set(i.id, key);
    const style = {
      radius: i.selected ? 9 : 6,
      color: i.selected ? "#000" : "#fff",
      weight: i.selected ? 3 : 1,
      fillColor: SEVERITY_COLOURS[i.severity] || "#616161",
      fillOpacity: 0.9,
    };
    let marker = incidentMarkers.get(i.id);
    if (!marker) {
      const id = i.id;
      marker = L.circleMarker(latLng(i.lon, i.lat), style).addTo(incidentLayer);
      marker.on("click", () => onSelect(id));
      incidentMarkers.set(id, marker);
    } else {
      marker.setLatLng(latLng(i.lon, i.lat));
      marker.setStyle(style);
      marker.setRadius(style.radius);
    }
    if (i.label) {
      if (marker.getTooltip()) marker.setTooltipContent(i.label);
      else marker.bindTooltip(i.label);
    }
  }

  return {
    leaflet: map,
    latLng,
    setPrecincts(geojson) {
      precinctLayer.clearLayers();
      precinctLayer.addData(geojson);
      const bounds = precinctLayer.getBounds();
      if (bounds.isValid()) map.fitBounds(bounds, { padding: [8, 8] });
    },
    /** incidents: [{id, lon, lat, severity, selected, label}], all of them (those without
     * a position are skipped): markers of incidents not in the list are removed. */
    setIncidents(incidents) {
      const seen = new Set();
      for (const i of incidents) {
        seen.add(i.id);
        putIncident(i);
      }
      for (const id of incidentMarkers.keys()) if (!seen.has(id)) dropIncident(id);
    },
    /** Only what changed: [{id, lon, lat, severity, selected, label} | {id, gone: true}]. */
    updateIncidents(changes) {
      for (const i of changes) {
        if (i.gone) dropIncident(i.id);
        else putIncident(i);
      }
    },
    /** officers: [{id, lon, lat, status, callsign}], all of them; unchanged ones are left alone. */
    setOfficers(officers) {
      const seen = new Set();
      for (const o of officers) {
        if (o.lon == null || o.lat == null || o.status === "off_duty") continue;
        seen.add(o.id);
        const key = `${o.lon},${o.lat},${o.status},${o.callsign}`;
        if (officerKeys.get(o.id) === key) continue;
        officerKeys.set(o.id, key);
        const style = {
          radius: 5,
          color: "#1b5e20",
          weight: 2,
          fillColor: o.status === "busy" ? "#ffb300" : "#43a047",
          fillOpacity: 1,
        };
        let marker = officerMarkers.get(o.id);
        if (!marker) {
          marker = L.circleMarker(latLng(o.lon, o.lat), style).addTo(officerLayer);
          officerMarkers.set(o.id, marker);
          marker.bindTooltip(o.callsign || String(o.id));
        } else {
          marker.setLatLng(latLng(o.lon, o.lat));
          marker.setStyle(style);
          marker.setTooltipContent(o.callsign || String(o.id));
        }
      }
      for (const [id, marker] of officerMarkers) {
        if (!seen.has(id)) {
          officerLayer.removeLayer(marker);
          officerMarkers.delete(id);
          officerKeys.delete(id);
        }
      }
    },
    /** The selected incident: its accuracy circle and trail. */
    setFocus(incident, trail = []) {
      focusLayer.clearLayers();
      if (!incident || incident.lon == null) return;
      const centre = latLng(incident.lon, incident.lat);
      if (incident.accuracy_m) {
        L.circle(centre, { radius: incident.accuracy_m, color: "#6a1b9a", weight: 1, fillOpacity: 0.08 }).addTo(focusLayer);
      }
      if (trail.length > 1) {
        L.polyline(trail.map((p) => latLng(p.lon, p.lat)), { color: "#6a1b9a", weight: 3, dashArray: "4 4" }).addTo(focusLayer);
      }
      map.panTo(centre);
    },
    invalidate: () => map.invalidateSize(),
  };
}
