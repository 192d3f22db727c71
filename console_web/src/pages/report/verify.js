// Optional verification, offered, never required: it says what it changes (a verified
// reporter is served sooner) and an unverified report is never refused.
import { useState } from "preact/hooks";
import { html } from "../../shared/html.js";
import { t } from "../../shared/i18n.js";
import { account, api, setVerification } from "./auth.js";

export function Verify() {
  const [phone, setPhone] = useState("");
  const [challenge, setChallenge] = useState(null);
  const [code, setCode] = useState("");
  const [name, setName] = useState("");
  const [nationalId, setNationalId] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const level = account.value?.verification || "anonymous";

  const run = (fn) => async (event) => {
    event.preventDefault();
    setError(null);
    if (!navigator.onLine) {
      setError(t("verify.offline"));
      return;
    }
    setBusy(true);
    try {
      await fn();
    } catch (err) {
      setError(t("verify.failed", { message: err.message }));
    } finally {
      setBusy(false);
    }
  };

  const sendCode = run(async () => setChallenge((await api("POST", "/api/citizens/me/phone", { phone })).challenge_id));
  const confirmCode = run(async () => {
    const answer = await api("POST", "/api/citizens/me/phone/verify", { challenge_id: challenge, code });
    await setVerification(answer.verification);
    setChallenge(null);
  });
  const realName = run(async () => {
    const answer = await api("POST", "/api/citizens/me/real-name", { name, national_id: nationalId });
    await setVerification(answer.verification);
    setNationalId("");
  });

  return html`<section class="screen verify" aria-labelledby="verify-title">
    <h1 id="verify-title">${t("verify.title")}</h1>
    <p>${t("verify.why")}</p>
    <p class="level" data-level=${level}>${t("verify.level", { level: t(`verify.level.${level}`) })}</p>
    ${level === "anonymous"
      ? html`<form class="card" onSubmit=${challenge ? confirmCode : sendCode}>
          <h2>${t("verify.phone")}</h2>
          <label>${t("verify.phone_label")}<input type="tel" name="phone" autocomplete="tel" value=${phone} onInput=${(e) => setPhone(e.currentTarget.value)} /></label>
          ${challenge
            ? html`<label>${t("verify.code_label")}<input name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="6" value=${code} onInput=${(e) => setCode(e.currentTarget.value)} /></label>
                <button type="submit" class="primary" disabled=${busy}>${t("verify.confirm")}</button>`
            : html`<button type="submit" disabled=${busy}>${t("verify.send_code")}</button>`}
        </form>`
      : null}
    ${level !== "real_name" && level !== "face"
      ? html`<form class="card" onSubmit=${realName}>
          <h2>${t("verify.real_name")}</h2>
          <label>${t("verify.name_label")}<input name="name" autocomplete="name" value=${name} onInput=${(e) => setName(e.currentTarget.value)} /></label>
          <label>${t("verify.id_label")}<input name="national_id" autocomplete="off" value=${nationalId} onInput=${(e) => setNationalId(e.currentTarget.value)} /></label>
          <button type="submit" disabled=${busy}>${t("verify.confirm")}</button>
        </form>`
      : null}
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
  </section>`;
}
