// Text and photos: the channel for deaf and mute reporters, so nothing here needs sound.
// Photos are resized on the phone (a 12 MP photo becomes ~300 KB) before they are kept
// in the outbox, so they go through a weak signal and fit the phone's storage.
import { useState } from "preact/hooks";
import { html } from "../../shared/html.js";
import { t, fmt } from "../../shared/i18n.js";
import { TAGS } from "./strings.js";
import { enqueue } from "./outbox.js";
import { fix, positionFields } from "./location.js";
import { newKey } from "./store.js";
import { Delivery } from "./delivery.js";

const MAX_PHOTOS = 6;
const MAX_SIDE = 1600;

async function resize(file) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close?.();
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("could not encode"))), "image/jpeg", 0.82),
  );
}

export function ReportForm() {
  const [text, setText] = useState("");
  const [tag, setTag] = useState("other");
  const [photos, setPhotos] = useState([]); // [{blob, url}]
  const [preparing, setPreparing] = useState(null); // {done, total}
  const [problem, setProblem] = useState(null);
  const [sentKey, setSentKey] = useState(null);

  const addFiles = async (event) => {
    const files = Array.from(event.currentTarget.files || []);
    event.currentTarget.value = "";
    const room = MAX_PHOTOS - photos.length;
    if (files.length > room) setProblem(t("report.too_many"));
    const chosen = files.slice(0, Math.max(room, 0));
    const ready = [];
    setPreparing({ done: 0, total: chosen.length });
    for (const [i, file] of chosen.entries()) {
      try {
        const blob = await resize(file);
        ready.push({ blob, url: URL.createObjectURL(blob) });
      } catch (err) {
        setProblem(String(err.message || err));
      }
      setPreparing({ done: i + 1, total: chosen.length });
    }
    setPreparing(null);
    setPhotos((before) => [...before, ...ready].slice(0, MAX_PHOTOS));
  };

  const submit = async (event) => {
    event.preventDefault();
    if (!text.trim() && !photos.length) {
      setProblem(t("report.need_content"));
      return;
    }
    setProblem(null);
    const key = newKey("report");
    await enqueue(
      "report",
      { idempotency_key: key, tag, text: text.trim(), client_time: new Date().toISOString(), ...positionFields() },
      { blobs: photos.map((p) => p.blob) },
    );
    for (const p of photos) URL.revokeObjectURL(p.url);
    setSentKey(key);
    setText("");
    setPhotos([]);
  };

  const f = fix.value;
  return html`<section class="screen report" aria-labelledby="report-title">
    <h1 id="report-title">${t("report.title")}</h1>
    ${sentKey ? html`<div class="sent"><p>${t("report.sent")}</p><${Delivery} itemKey=${sentKey} /></div>` : null}
    <form onSubmit=${submit} class="report-form">
      <label>${t("report.tag_label")}
        <select name="tag" value=${tag} onChange=${(e) => setTag(e.currentTarget.value)}>
          ${TAGS.map((code) => html`<option value=${code}>${t(`tag.${code}`)}</option>`)}
        </select>
      </label>
      <label>${t("report.text_label")}
        <textarea name="text" rows="5" maxlength="5000" value=${text} onInput=${(e) => setText(e.currentTarget.value)}></textarea>
      </label>
      <fieldset class="photos">
        <legend>${t("report.photos_label")}</legend>
        <ul class="thumbs">
          ${photos.map(
            (p, i) => html`<li key=${p.url}><img src=${p.url} alt="" /><button type="button" class="quiet" aria-label=${t("report.remove_photo", { n: i + 1 })}
              onClick=${() => { URL.revokeObjectURL(p.url); setPhotos(photos.filter((x) => x !== p)); }}>×</button></li>`,
          )}
        </ul>
        ${photos.length < MAX_PHOTOS
          ? html`<label class="button add-photos">${t("report.add_photos")}
              <input class="visually-hidden" type="file" name="photos" accept="image/*" multiple onChange=${addFiles} /></label>`
          : null}
        ${preparing ? html`<p role="status"><progress max=${preparing.total} value=${preparing.done}></progress> ${t("report.preparing", preparing)}</p>` : null}
      </fieldset>
      <p class="location">${f ? t("report.location", { accuracy: fmt.distance(f.accuracy_m) }) : t("report.no_location")}</p>
      ${problem ? html`<p class="error" role="alert">${problem}</p>` : null}
      <button type="submit" class="primary big" disabled=${!!preparing}>${t("report.send")}</button>
    </form>
  </section>`;
}
