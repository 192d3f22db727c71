// What a user types survives a lost session and a reload: each draft is a signal kept
// in sessionStorage under its name (per tab, gone when the tab closes).
import { signal, effect } from "@preact/signals";

const drafts = new Map();
const PREFIX = "m110.draft.";

export function draft(name, initial = "") {
  let s = drafts.get(name);
  if (s) return s;
  let kept = null;
  try {
    kept = sessionStorage.getItem(PREFIX + name);
  } catch {
    kept = null;
  }
  s = signal(kept ?? initial);
  drafts.set(name, s);
  effect(() => {
    try {
      if (s.value) sessionStorage.setItem(PREFIX + name, s.value);
      else sessionStorage.removeItem(PREFIX + name);
    } catch {
      // storage full or refused: the in-memory draft still survives a re-login
    }
  });
  return s;
}
