// One-tap navigation to an incident: a `geo:` link (WGS-84, any map app) and the three
// big Chinese map apps, each given the position in the datum it expects: AMap (高德)
// and Tencent (腾讯) take GCJ-02, Baidu (百度) takes BD-09.  The server keeps WGS-84;
// the conversions are those of geo/datum.py (tests compare the two).  Pure: no DOM.
import { wgs84ToGcj02 } from "../../shared/datum.js";

const BD_X_PI = (Math.PI * 3000.0) / 180.0;
const EARTH_RADIUS_M = 6371008.8; // geo/distance.py

export function gcj02ToBd09(lon, lat) {
  const z = Math.sqrt(lon * lon + lat * lat) + 0.00002 * Math.sin(lat * BD_X_PI);
  const theta = Math.atan2(lat, lon) + 0.000003 * Math.cos(lon * BD_X_PI);
  return [z * Math.cos(theta) + 0.0065, z * Math.sin(theta) + 0.006];
}

/** WGS-84 -> the datum a map app expects: "wgs84", "gcj02" or "bd09". */
export function fromWgs84(lon, lat, datum) {
  if (datum === "gcj02") return wgs84ToGcj02(lon, lat);
  if (datum === "bd09") return gcj02ToBd09(...wgs84ToGcj02(lon, lat));
  return [lon, lat];
}

/** Great-circle distance in metres (geo.distance.haversine_m). */
export function distanceM(lon1, lat1, lon2, lat2) {
  const rad = Math.PI / 180;
  const p1 = lat1 * rad;
  const p2 = lat2 * rad;
  const dp = p2 - p1;
  const dl = (lon2 - lon1) * rad;
  const a = Math.sin(dp / 2) ** 2 + Math.cos(p1) * Math.cos(p2) * Math.sin(dl / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

const fixed = (n) => n.toFixed(6);

/**
 * Links that start navigation to (lon, lat) in WGS-84, labelled `name`:
 * [{app: "geo" | "amap" | "baidu" | "tencent", datum, href}].
 */
export function navigationLinks(lon, lat, name = "") {
  const label = encodeURIComponent(name || "110");
  const [glon, glat] = fromWgs84(lon, lat, "gcj02");
  const [blon, blat] = fromWgs84(lon, lat, "bd09");
  return [
    { app: "geo", datum: "wgs84", href: `geo:${fixed(lat)},${fixed(lon)}?q=${fixed(lat)},${fixed(lon)}(${label})` },
    {
      app: "amap",
      datum: "gcj02",
      href: `https://uri.amap.com/navigation?to=${fixed(glon)},${fixed(glat)},${label}&mode=car&coordinate=gaode&callnative=1&src=micro110`,
    },
    {
      app: "baidu",
      datum: "bd09",
      href: `baidumap://map/direction?destination=latlng:${fixed(blat)},${fixed(blon)}|name:${label}&coord_type=bd09ll&mode=driving&src=micro110`,
    },
    {
      app: "tencent",
      datum: "gcj02",
      href: `qqmap://map/routeplan?type=drive&to=${label}&tocoord=${fixed(glat)},${fixed(glon)}&referer=micro110`,
    },
  ];
}
