// The video call: the rear camera first, to the server (WHIP-shaped: the SDP offer is
// POSTed to the call's session URL, the answer comes back with the session's Location;
// DELETE there hangs up).  The server records from the first packet, before anyone
// picks up.  When ICE fails or the network drops, a new connection is offered to the
// same session URL: the same incident goes on.
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "../../shared/html.js";
import { t } from "../../shared/i18n.js";
import { api, account } from "./auth.js";
import { fix, positionFields } from "./location.js";
import { streamTrail } from "./alarm.js";
import { casePut, caseGet, newKey } from "./store.js";
import { cases, reloadCases } from "./cases_state.js";
import { DialLinks } from "./delivery.js";

const VIDEO = { width: { ideal: 640 }, frameRate: { max: 15 } };

function preferVp8(transceiver) {
  const caps = RTCRtpSender.getCapabilities?.("video");
  if (!caps || !transceiver.setCodecPreferences) return;
  const vp8 = caps.codecs.filter((c) => c.mimeType.toLowerCase() === "video/vp8");
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== "video/vp8");
  if (vp8.length) transceiver.setCodecPreferences([...vp8, ...rest]);
}

function gathered(pc, ms = 2500) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, ms); // host candidates are enough to start; do not wait forever
  });
}

/** One call: its media, its peer connection, and how it comes back after a drop. */
class Call {
  constructor(onChange) {
    this.onChange = onChange;
    this.state = "connecting"; // connecting | live | reconnecting | ended | failed
    this.facing = "environment";
    this.muted = false;
    this.pc = null;
    this.location = null;
    this.retry = 0;
    this.ended = false;
  }

  set(state, extra = {}) {
    Object.assign(this, extra);
    this.state = state;
    this.onChange({ ...this });
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: { ideal: this.facing }, ...VIDEO },
      audio: { echoCancellation: true, noiseSuppression: true },
    });
    this.onChange({ ...this });
    const key = newKey("call");
    const current = fix.peek();
    // With no fix yet the call goes at once all the same: its trail routes it later.
    const answer = await api("POST", "/api/calls", {
      tag: "other",
      idempotency_key: key,
      client_time: new Date().toISOString(),
      ...positionFields(current),
    });
    this.stopTrail = streamTrail(key, current, answer.incident_id);
    this.caseNo = answer.case_no;
    this.sessionUrl = answer.session_url;
    const kept = (await caseGet(answer.case_no)) || { timeline: [], messages: [] };
    await casePut({
      ...kept, case_no: answer.case_no, incident_id: answer.incident_id, tracking_token: answer.tracking_token,
      kind: "call", tag: "other", key, status: answer.status, precinct: answer.precinct,
      received_at: new Date().toISOString(),
    });
    await reloadCases();
    this.ice = (await api("GET", "/api/rtc/config").catch(() => null))?.ice_servers || [];
    this.onOnline = () => this.state === "reconnecting" && this.connect();
    window.addEventListener("online", this.onOnline);
    await this.connect();
  }

  async connect() {
    if (this.ended) return;
    this.pc?.close();
    const pc = new RTCPeerConnection({ iceServers: this.ice });
    this.pc = pc;
    const [audio] = this.stream.getAudioTracks();
    const [video] = this.stream.getVideoTracks();
    pc.addTransceiver(audio, { direction: "sendrecv", streams: [this.stream] }); // the dispatcher's voice comes back
    const vt = pc.addTransceiver(video, { direction: "sendonly", streams: [this.stream] });
    preferVp8(vt);
    pc.ontrack = (e) => {
      if (e.track.kind === "audio") this.onChange({ ...this, remote: new MediaStream([e.track]) });
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc || this.ended) return;
      if (pc.connectionState === "connected") {
        this.retry = 0;
        this.set("live");
      } else if (pc.connectionState === "failed") {
        this.reconnect();
      } else if (pc.connectionState === "disconnected") {
        // Often back by itself within seconds; if not, start over.
        setTimeout(() => pc === this.pc && pc.connectionState === "disconnected" && this.reconnect(), 4000);
      }
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const token = account.peek()?.token;
      const response = await fetch(this.sessionUrl, {
        method: "POST",
        headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
        body: pc.localDescription.sdp,
      });
      if (!response.ok) throw Object.assign(new Error(`HTTP ${response.status}`), { status: response.status });
      this.location = new URL(response.headers.get("Location"), location.href).href;
      await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
      // The server closed this connection (a DTLS close_notify: it ended the session,
      // e.g. a node going down): start over now, not when ICE's consent checks notice
      // ~8 s later.  A call the dispatcher ended answers the new offer 409 (below).
      const dtls = vt.sender.transport;
      if (dtls) {
        dtls.onstatechange = () => {
          if (pc !== this.pc || this.ended || this.state === "reconnecting") return;
          if (dtls.state === "closed" || dtls.state === "failed") this.reconnect();
        };
      }
    } catch (err) {
      if (pc !== this.pc) return;
      if (err.status === 409) {
        // The dispatcher ended the call (or the case is closed): not a lost network.
        this.release();
        this.set("ended", { endedBy: "dispatcher" });
        return;
      }
      if (err.status && err.status >= 400 && err.status < 500 && err.status !== 429 && err.status !== 408) {
        this.set("failed", { error: err.message });
        return;
      }
      this.reconnect();
    }
  }

  reconnect() {
    if (this.ended) return;
    this.set("reconnecting");
    this.retry += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), Math.min(500 * 2 ** this.retry, 8000));
  }

  toggleMute() {
    this.muted = !this.muted;
    for (const track of this.stream.getAudioTracks()) track.enabled = !this.muted;
    this.onChange({ ...this });
  }

  async switchCamera() {
    const facing = this.facing === "environment" ? "user" : "environment";
    const fresh = await navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: facing }, ...VIDEO } });
    const [track] = fresh.getVideoTracks();
    const sender = this.pc?.getSenders().find((s) => s.track?.kind === "video");
    await sender?.replaceTrack(track);
    for (const old of this.stream.getVideoTracks()) {
      old.stop();
      this.stream.removeTrack(old);
    }
    this.stream.addTrack(track);
    this.facing = facing;
    this.onChange({ ...this });
  }

  /** Stop everything this call holds on the phone. */
  release() {
    this.ended = true;
    this.stopTrail?.();
    clearTimeout(this.timer);
    window.removeEventListener("online", this.onOnline);
    this.pc?.close();
    for (const track of this.stream?.getTracks() || []) track.stop();
  }

  async hangUp() {
    const token = account.peek()?.token;
    if (this.location && !this.ended) {
      fetch(this.location, { method: "DELETE", headers: { Authorization: `Bearer ${token}` } }).catch(() => null);
    }
    this.release();
    this.set("ended");
  }
}

/** Has the dispatcher ended this call (the case feed's `call.ended`: only theirs is sent)? */
function dispatcherEnded(caseNo) {
  const kept = cases.value.find((c) => c.case_no === caseNo);
  return (kept?.timeline || []).some((s) => s.event === "call.ended");
}

/** Has a dispatcher joined (the last call step the case feed brought)? */
function dispatcherJoined(caseNo) {
  const kept = cases.value.find((c) => c.case_no === caseNo);
  const steps = (kept?.timeline || []).filter((s) => s.event === "call.answered" || s.event === "call.left");
  return steps.length > 0 && steps[steps.length - 1].event === "call.answered";
}

export function VideoCall() {
  const [view, setView] = useState(null);
  const [error, setError] = useState(null);
  const call = useRef(null);
  const local = useRef(null);
  const remote = useRef(null);

  useEffect(() => () => call.current && !call.current.ended && call.current.hangUp(), []);
  useEffect(() => {
    if (local.current && view?.stream && local.current.srcObject !== view.stream) local.current.srcObject = view.stream;
    if (remote.current && view?.remote && remote.current.srcObject !== view.remote) remote.current.srcObject = view.remote;
  });

  const start = async () => {
    setError(null);
    call.current = new Call(setView);
    try {
      await call.current.start();
    } catch (err) {
      call.current.hangUp().catch(() => null);
      setError(t("call.failed", { message: err.message }));
    }
  };

  // The dispatcher hung up: the feed says so at once (the closed connection alone would
  // look like a lost network until the phone's next offer is refused).
  const endedThere = Boolean(view?.caseNo && dispatcherEnded(view.caseNo));
  useEffect(() => {
    const current = call.current;
    if (!endedThere || !current || current.ended) return;
    current.release();
    current.set("ended", { endedBy: "dispatcher" });
  }, [endedThere]);

  const joined = view?.caseNo && dispatcherJoined(view.caseNo);
  const status =
    !view || view.state === "connecting" ? t("call.connecting")
    : view.state === "reconnecting" ? t("call.reconnecting")
    : view.state === "ended" ? (view.endedBy === "dispatcher" ? t("call.ended_by_dispatcher") : t("call.ended"))
    : view.state === "failed" ? t("call.failed", { message: view.error })
    : joined ? t("call.connected") : t("call.waiting");
  const state = !view ? "idle" : view.state === "live" ? (joined ? "connected" : "waiting") : view.state;

  return html`<section class="screen call" aria-labelledby="call-title">
    <h1 id="call-title">${t("call.title")}</h1>
    ${!view
      ? html`<button type="button" class="primary big" onClick=${start}>${t("call.start")}</button>`
      : html`<div class="call-view">
          <video ref=${local} class="local" autoplay playsinline muted aria-label=${t("call.camera")}></video>
          <audio ref=${remote} autoplay aria-label=${t("call.remote")}></audio>
          <p class="call-state" role="status" aria-live="polite" data-state=${state}>${status}</p>
          ${view.state !== "ended"
            ? html`<div class="call-controls">
                <button type="button" aria-pressed=${view.muted} onClick=${() => call.current.toggleMute()}>${view.muted ? t("call.unmute") : t("call.mute")}</button>
                <button type="button" onClick=${() => call.current.switchCamera().catch((e) => setError(e.message))}>${t("call.switch")}</button>
                <button type="button" class="danger" onClick=${() => call.current.hangUp()}>${t("call.hangup")}</button>
              </div>`
            : null}
        </div>`}
    ${error ? html`<div role="alert"><p class="error">${error}</p><${DialLinks} /></div>` : null}
  </section>`;
}
