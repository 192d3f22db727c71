// Keyboard first: ↑/↓ move, Enter opens, c claim, x take the next, a assign, / search,
// ? help.  Ignored while a text field has focus or an input method is composing (a
// Chinese IME sends keydown for every letter of a word being composed), and while a
// dialog is open.
import * as state from "./state.js";
import { closeDialog, dialog, showHelp } from "./dialogs.js";
import { assignDialog } from "./detail.js";

function typing(event) {
  if (event.isComposing || event.keyCode === 229) return true;
  const el = event.target;
  if (!(el instanceof HTMLElement)) return false;
  if (el.isContentEditable) return true;
  const tag = el.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag === "INPUT") return !["checkbox", "radio", "button", "submit"].includes(el.type);
  return false;
}

export function installKeyboard({ api, act }) {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape" && event.target?.id === "search" && !event.isComposing) {
      event.target.blur(); // back to the queue's keys, the search kept
      return;
    }
    // A dialog takes Escape itself once its focus is inside; until then (a key pressed
    // the moment it opened, before its button took the focus) Escape closes it here.
    if (event.key === "Escape" && dialog.peek() && !event.isComposing) {
      closeDialog(false);
      event.preventDefault();
      return;
    }
    // Enter or Space on a focused button presses it (the button `a` focuses, say).
    if ((event.key === "Enter" || event.key === " ") && event.target instanceof HTMLElement && event.target.closest("button, a[href]")) return;
    if (typing(event) || dialog.peek() || !state.me.peek() || document.querySelector(".login-backdrop")) return;
    const list = state.rows.peek();
    const at = list.findIndex((r) => r.id === state.cursorId.peek());
    const target = state.cursorId.peek() || state.selectedId.peek();
    switch (event.key) {
      case "ArrowDown":
      case "ArrowUp": {
        if (!list.length) return;
        const step = event.key === "ArrowDown" ? 1 : -1;
        const next = at < 0 ? 0 : Math.min(list.length - 1, Math.max(0, at + step));
        state.cursorId.value = list[next].id;
        break;
      }
      case "Enter":
        if (!state.cursorId.peek()) return;
        state.selectedId.value = state.cursorId.peek();
        break;
      case "c":
        if (!target) return;
        act(() => api.post(`/api/incidents/${target}/claim`, {})).then((incident) => {
          if (incident) {
            state.putIncident(incident);
            state.selectedId.value = incident.id;
          }
        });
        break;
      case "x":
        act(() => api.post("/api/incidents/next", {})).then((body) => {
          if (body?.incident) {
            state.putIncident(body.incident);
            state.cursorId.value = body.incident.id;
            state.selectedId.value = body.incident.id;
          }
        });
        break;
      case "a":
        if (!target) return;
        state.selectedId.value = target;
        assignDialog(target);
        break;
      case "/":
        document.getElementById("search")?.focus();
        break;
      case "?":
        showHelp();
        break;
      case "Escape":
        state.selectedId.value = null;
        break;
      default:
        return;
    }
    event.preventDefault();
  });
}
