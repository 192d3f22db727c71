// Modal dialogs: confirmations (merge, transfer, resolve, invalid), the shortcut help,
// and forms.  One at a time; Escape cancels; focus goes into the dialog and back.
import { signal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import { html } from "../../shared/html.js";
import { t, addCatalogue } from "../../shared/i18n.js";

export const dialog = signal(null); // {kind, title, body, confirm, onConfirm}

addCatalogue({
  "zh-CN": {
    "dialog.confirm": "确认",
    "dialog.cancel": "取消",
    "help.title": "快捷键",
    "help.keys": "↑/↓ 选择 · 回车 打开 · c 接警 · x 接下一条 · a 派警 · / 搜索 · ? 帮助 · Esc 关闭",
    "help.note": "输入框有焦点或正在输入法组字时，快捷键不起作用。",
  },
  en: {
    "dialog.confirm": "Confirm",
    "dialog.cancel": "Cancel",
    "help.title": "Keyboard shortcuts",
    "help.keys": "↑/↓ move · Enter open · c claim · x take next · a assign · / search · ? help · Esc close",
    "help.note": "Shortcuts are ignored while a text field has focus or an input method is composing.",
  },
});

let returnFocus = null;

/** Ask before a step that cannot be taken back; resolves true when confirmed. */
export function confirmAction(title, body, { fields = null } = {}) {
  returnFocus = document.activeElement;
  return new Promise((resolve) => {
    dialog.value = { kind: "confirm", title, body, fields, resolve };
  });
}

export function showHelp() {
  returnFocus = document.activeElement;
  dialog.value = { kind: "help" };
}

export function closeDialog(result = false) {
  const d = dialog.peek();
  dialog.value = null;
  d?.resolve?.(result);
  returnFocus?.focus?.();
}

export function Dialogs() {
  const d = dialog.value;
  const box = useRef(null);
  useEffect(() => {
    box.current?.querySelector("[data-autofocus]")?.focus();
  }, [d]);
  if (!d) return null;
  const onKey = (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      closeDialog(false);
    }
  };
  if (d.kind === "help") {
    return html`<div class="backdrop" onKeyDown=${onKey}>
      <div class="dialog card" role="dialog" aria-modal="true" aria-labelledby="help-title" ref=${box}>
        <h2 id="help-title">${t("help.title")}</h2>
        <p class="keys">${t("help.keys")}</p>
        <p>${t("help.note")}</p>
        <button type="button" data-autofocus onClick=${() => closeDialog()}>${t("dialog.cancel")}</button>
      </div></div>`;
  }
  const submit = (e) => {
    e.preventDefault();
    const values = d.fields ? Object.fromEntries(new FormData(e.currentTarget)) : true;
    closeDialog(values);
  };
  return html`<div class="backdrop" onKeyDown=${onKey}>
    <form class="dialog card" role="alertdialog" aria-modal="true" aria-labelledby="dialog-title" aria-describedby="dialog-body" ref=${box} onSubmit=${submit}>
      <h2 id="dialog-title">${d.title}</h2>
      <p id="dialog-body">${d.body}</p>
      ${d.fields}
      <div class="buttons">
        <button type="submit" class="primary danger" data-autofocus=${!d.fields} data-confirm>${t("dialog.confirm")}</button>
        <button type="button" onClick=${() => closeDialog(false)}>${t("dialog.cancel")}</button>
      </div>
    </form></div>`;
}
