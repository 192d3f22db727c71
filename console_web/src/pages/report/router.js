// Hash routes: the page is one URL (/report), so the service worker serves every screen.
import { signal } from "@preact/signals";

export const route = signal(location.hash || "#/");
window.addEventListener("hashchange", () => {
  route.value = location.hash || "#/";
});

export function navigate(hash) {
  if (location.hash !== hash) location.hash = hash;
  route.value = hash;
}
