// A staff session ({token, expires_at, user}) kept per tab in sessionStorage, so a
// reload does not sign the dispatcher out, and closing the tab does.
import { signal } from "@preact/signals";

export function staffSession(key = "m110.staff") {
  let kept = null;
  try {
    kept = JSON.parse(sessionStorage.getItem(key) || "null");
  } catch {
    kept = null;
  }
  const session = signal(kept);
  // The last user name survives a lost session: the login form comes back filled in.
  const lastUser = signal(kept?.user?.username || "");
  return {
    session,
    lastUser,
    token: () => session.peek()?.token || null,
    save(value) {
      session.value = value;
      lastUser.value = value?.user?.username || lastUser.peek();
      try {
        sessionStorage.setItem(key, JSON.stringify(value));
      } catch {
        // kept in memory only
      }
    },
    clear() {
      session.value = null;
      try {
        sessionStorage.removeItem(key);
      } catch {
        // nothing kept
      }
    },
  };
}
