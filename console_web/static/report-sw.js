// The citizen page's service worker: the page opens with no network.  The server
// serves this file at /report/sw.js with `VERSION` and `SHELL` (the page and the hashed
// files it needs) written in front, so a new build is a new worker that caches the new
// shell and drops the old one.  The shell is answered from the cache at once (a frightened
// person on a weak signal must not wait for the network to see the page) and refreshed
// behind; hashed assets never change, so the cache is always right for them.  Nothing
// else (the API, Socket.IO) is touched: the page's outbox handles a missing network.
/* global VERSION, SHELL */
const CACHE = `m110-report-${VERSION}`;
const PAGE = "/report";

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("m110-report-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

async function shell(event) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(PAGE);
  const fresh = fetch(PAGE, { cache: "no-cache" })
    .then((response) => {
      if (response.ok) cache.put(PAGE, response.clone());
      return response;
    })
    .catch(() => null);
  if (cached) {
    event.waitUntil(fresh);
    return cached;
  }
  return (await fresh) || new Response("offline", { status: 503, headers: { "Content-Type": "text/plain" } });
}

async function asset(request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request, { ignoreSearch: true });
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) cache.put(request, response.clone());
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === PAGE && request.mode === "navigate") {
    event.respondWith(shell(event));
  } else if (url.pathname.startsWith("/assets/") || SHELL.includes(url.pathname)) {
    event.respondWith(asset(request));
  }
});
