// The staff login form (console and officer pages).  Shown over the page when a
// session ends, never instead of it: whatever was typed underneath stays where it was.
import { useState, useRef, useEffect } from "preact/hooks";
import { html } from "./html.js";
import { t } from "./i18n.js";
import { learnServerTime } from "./clock.js";

export function LoginForm({ store, expired = false, roles = null, onLoggedIn }) {
  const [username, setUsername] = useState(store.lastUser.value || "");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const first = useRef(null);
  useEffect(() => first.current?.focus(), []);

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const sentAt = Date.now();
      const response = await fetch("/api/auth/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username, password }),
      });
      const body = await response.json();
      if (!response.ok) throw new Error(body?.error?.message || `HTTP ${response.status}`);
      const date = Date.parse(response.headers.get("Date") || "");
      if (!Number.isNaN(date)) learnServerTime(date + 500, sentAt, Date.now());
      if (roles && !roles.includes(body.user.role)) throw new Error(t("login.wrong_role"));
      store.save(body);
      setPassword("");
      onLoggedIn?.(body);
    } catch (err) {
      setError(t("login.failed", { message: err.message }));
    } finally {
      setBusy(false);
    }
  }

  return html`
    <div class="login-backdrop">
      <form class="login card" onSubmit=${submit} aria-labelledby="login-title">
        <h1 id="login-title">${t("login.title")}</h1>
        ${expired && html`<p class="notice" role="status">${t("login.expired")}</p>`}
        <label>${t("login.username")}
          <input ref=${first} name="username" autocomplete="username" required value=${username}
            onInput=${(e) => setUsername(e.currentTarget.value)} /></label>
        <label>${t("login.password")}
          <input name="password" type="password" autocomplete="current-password" required value=${password}
            onInput=${(e) => setPassword(e.currentTarget.value)} /></label>
        ${error && html`<p class="error" role="alert">${error}</p>`}
        <button type="submit" class="primary" disabled=${busy}>${t("login.submit")}</button>
      </form>
    </div>`;
}
