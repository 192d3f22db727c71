// WGS-84 -> GCJ-02 for drawing on Chinese basemaps (AMap, Tencent).  State is always
// kept in WGS-84 (what the server sends); only what is drawn on GCJ-02 tiles is
// shifted.  The same published formula as geo/datum.py (tests compare the two).
const A = 6378245.0;
const EE = 0.00669342162296594323;

export function inChina(lon, lat) {
  return lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271;
}

export function wgs84ToGcj02(lon, lat) {
  if (!inChina(lon, lat)) return [lon, lat];
  const pi = Math.PI;
  const x = lon - 105.0;
  const y = lat - 35.0;
  const wave = ((20.0 * Math.sin(6.0 * x * pi) + 20.0 * Math.sin(2.0 * x * pi)) * 2.0) / 3.0;
  let dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  dlat += wave;
  dlat += ((20.0 * Math.sin(y * pi) + 40.0 * Math.sin((y / 3.0) * pi)) * 2.0) / 3.0;
  dlat += ((160.0 * Math.sin((y / 12.0) * pi) + 320.0 * Math.sin((y * pi) / 30.0)) * 2.0) / 3.0;
  let dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  dlon += wave;
  dlon += ((20.0 * Math.sin(x * pi) + 40.0 * Math.sin((x / 3.0) * pi)) * 2.0) / 3.0;
  dlon += ((150.0 * Math.sin((x / 12.0) * pi) + 300.0 * Math.sin((x / 30.0) * pi)) * 2.0) / 3.0;
  const radLat = (lat / 180.0) * pi;
  const magic = 1.0 - EE * Math.sin(radLat) * Math.sin(radLat);
  const sqrtMagic = Math.sqrt(magic);
  dlat = (dlat * 180.0) / (((A * (1.0 - EE)) / (magic * sqrtMagic)) * pi);
  dlon = (dlon * 180.0) / ((A / sqrtMagic) * Math.cos(radLat) * pi);
  return [lon + dlon, lat + dlat];
}

/** A function [lon, lat] (WGS-84) -> [lon, lat] in the basemap's datum. */
export function projectorFor(datum) {
  return datum === "gcj02" ? wgs84ToGcj02 : (lon, lat) => [lon, lat];
}
