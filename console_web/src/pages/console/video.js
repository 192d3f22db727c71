// The video pane: pick up a citizen's live call WHEP-style (POST an SDP offer to
// /api/incidents/{id}/call/viewers, get the answer and a Location to DELETE when
// leaving), see and hear them, talk back with the microphone, mute, leave (the call
// goes on) or hang up (DELETE /api/incidents/{id}/call: ended for everyone).  A
// commander listens in without sending audio, and leaves.
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "../../shared/html.js";
import { t } from "../../shared/i18n.js";
import { api, act } from "./context.js";
import * as state from "./state.js";

async function iceServers() {
  try {
    const body = await api.get("/api/rtc/config");
    return body.ice_servers || [];
  } catch {
    return [];
  }
}

function gathered(pc, timeoutMs = 3000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, timeoutMs); // send what we have: the server is on a public address
  });
}

export function VideoPane({ incident }) {
  const video = useRef(null);
  const session = useRef(null); // {pc, mic, location}
  const [phase, setPhase] = useState("idle"); // idle | connecting | live | ended
  const [muted, setMuted] = useState(false);
  const live = state.liveCalls.has(incident.id);
  const listenOnly = state.me.value?.role === "commander";

  // Leave (the call goes on: another dispatcher may pick it up) or, for the claiming
  // dispatcher, end it for everyone.
  // `closedByServer`: the server ended this viewer and records why; a leave now would
  // read as ours.
  async function hangUp(endCall = false, closedByServer = false) {
    const s = session.current;
    session.current = null;
    if (!s) return;
    s.mic?.getTracks().forEach((track) => track.stop());
    setPhase("ended");
    if (closedByServer) {
      s.pc.close();
      return;
    }
    const leave = () => (s.location ? api.del(s.location) : Promise.resolve());
    const bye = (endCall ? api.del(`/api/incidents/${incident.id}/call`).catch(leave) : leave()).catch(() => {});
    // Say goodbye before closing: a connection that just closes reads, at the server,
    // as one that failed.  A request that hangs (no network) waits at most 2 s.
    await Promise.race([bye, new Promise((r) => setTimeout(r, 2000))]);
    s.pc.close();
  }
  useEffect(() => () => void hangUp(), [incident.id]);

  async function pickUp() {
    setPhase("connecting");
    if (!listenOnly && incident.state === "queued") {
      // Picking up is the claiming dispatcher's: take it first.
      state.putIncident(await api.post(`/api/incidents/${incident.id}/claim`, {}));
    }
    const pc = new RTCPeerConnection({ iceServers: await iceServers() });
    let mic = null;
    if (!listenOnly) {
      try {
        mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true } });
      } catch (err) {
        console.warn("no microphone: listening only", err);
      }
    }
    session.current = { pc, mic, location: null };
    pc.addTransceiver("video", { direction: "recvonly" });
    if (mic) pc.addTransceiver(mic.getAudioTracks()[0], { direction: "sendrecv" });
    else pc.addTransceiver("audio", { direction: "recvonly" });
    const stream = new MediaStream();
    pc.ontrack = (event) => {
      stream.addTrack(event.track);
      if (video.current) video.current.srcObject = stream;
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "connected") setPhase("live");
      if (pc.connectionState === "failed") hangUp();
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const response = await api.request("POST", `/api/incidents/${incident.id}/call/viewers`, {
      body: pc.localDescription.sdp,
      headers: { "Content-Type": "application/sdp" },
      raw: true,
    });
    session.current.location = response.headers.get("Location");
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    // The server closed this connection (a DTLS close_notify: the call ended, the
    // citizen hung up): show it at once, not a frozen picture until ICE gives up.
    const dtls = pc.getReceivers()[0]?.transport;
    if (dtls) {
      dtls.onstatechange = () => {
        if (session.current?.pc !== pc) return;
        if (dtls.state === "closed" || dtls.state === "failed") hangUp(false, dtls.state === "closed");
      };
    }
    return true;
  }

  function toggleMute() {
    const mic = session.current?.mic;
    if (!mic) return;
    const next = !muted;
    mic.getAudioTracks().forEach((track) => (track.enabled = !next));
    setMuted(next);
  }

  return html`<section class="block video" data-call=${phase} aria-label=${t("video.title")}>
    <h3>${t("video.title")} ${live ? html`<span class="live">● ${t("queue.live_call")}</span>` : ""}</h3>
    <video ref=${video} autoplay playsinline class=${phase === "live" || phase === "connecting" ? "" : "hidden"} aria-label=${t("video.citizen")}></video>
    <div class="verbs">
      ${(phase === "idle" || phase === "ended") && html`<button type="button" class="primary" data-action="pick-up" onClick=${() => act(pickUp).then((ok) => { if (!ok) (session.current ? hangUp() : setPhase("idle")); })}>
        ${listenOnly ? t("video.listen") : t("video.pick_up")}</button>`}
      ${(phase === "connecting" || phase === "live") && !listenOnly && html`<button type="button" aria-pressed=${muted} data-action="mute" onClick=${toggleMute}>${muted ? t("video.unmute") : t("video.mute")}</button>`}
      ${(phase === "connecting" || phase === "live") && html`<button type="button" data-action="leave" onClick=${() => hangUp(false)}>${t("video.leave")}</button>`}
      ${(phase === "connecting" || phase === "live") && !listenOnly && html`<button type="button" class="danger" data-action="hang-up" onClick=${() => hangUp(true)}>${t("video.hang_up")}</button>`}
    </div>
  </section>`;
}
