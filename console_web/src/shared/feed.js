// The resumable feed (docs/events.md) over Socket.IO, for any namespace.
//
// Every event carries its `seq`; the client keeps the last one it applied and, on every
// (re)connect, emits `resume` with it: the server replays what was missed, in order,
// then sends live events.  An event at or below the kept seq is dropped, so nothing is
// applied twice.  When the server answers {resync: true} (too far behind) the page
// loads a fresh snapshot and the feed resumes from the snapshot's seq.
//
//   const feed = createFeed({
//     namespace: "/console",
//     getToken: () => token,                    // read on every (re)connect
//     loadSnapshot: async () => seqOfSnapshot,   // the page replaces its state
//     onEvent: (event) => {...},                 // in seq order, each once
//     onSessionEnded: (reason) => {...},         // show the login again
//   });
//   feed.state.value  // "connecting" | "live" | "reconnecting" | "resyncing" | "signed_out"
import { io } from "socket.io-client";
import { signal } from "@preact/signals";

const REFUSED = new Set(["unauthorized", "forbidden"]);

// Half to one and a half times `ms`: a node's consoles that lost it together must not
// all come back at the same instant (a reconnect storm on the node that takes them).
const jittered = (ms) => ms * (0.5 + Math.random());

export function createFeed({ namespace, getToken, loadSnapshot, onEvent, onSessionEnded = () => {}, onResumed = () => {}, url = "", connect = io }) {
  const state = signal("connecting");
  const lastSeq = signal(null);
  let seq = null;
  let generation = 0; // a newer connection makes an older resume's answer moot

  const socket = connect(url + namespace, {
    auth: (cb) => cb({ token: getToken() }),
    transports: ["websocket"],
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
    randomizationFactor: 0.5, // socket.io's own back-off, jittered likewise
    autoConnect: false,
  });

  function apply(event) {
    if (typeof event?.seq !== "number") return;
    if (seq !== null && event.seq <= seq) return; // replayed and live overlap: once only
    seq = event.seq;
    lastSeq.value = seq;
    onEvent(event);
  }

  async function snapshot(mine) {
    state.value = seq === null ? "connecting" : "resyncing";
    const at = await loadSnapshot();
    if (mine !== generation) return false;
    seq = at;
    lastSeq.value = at;
    return true;
  }

  async function resume() {
    const mine = ++generation;
    try {
      if (seq === null && !(await snapshot(mine))) return;
      for (let attempt = 0; attempt < 3; attempt++) {
        const ack = await socket.timeout(30000).emitWithAck("resume", { last_seq: seq });
        if (mine !== generation) return;
        if (ack?.ok && ack.resync) {
          if (!(await snapshot(mine))) return;
          continue;
        }
        if (ack?.ok) {
          state.value = "live";
          onResumed(ack);
          return;
        }
        // e.g. last_seq unknown to this server (a restored database): start afresh.
        if (!(await snapshot(mine))) return;
      }
      socket.disconnect().connect();
    } catch (err) {
      if (mine !== generation) return;
      // A timeout or a snapshot that failed: drop the connection and let it retry.
      console.warn("feed: resume failed", err);
      state.value = "reconnecting";
      socket.disconnect();
      setTimeout(() => socket.connect(), jittered(1000));
    }
  }

  socket.onAny((_name, payload) => apply(payload));
  socket.on("connect", () => {
    resume();
  });
  socket.on("disconnect", (reason) => {
    generation++;
    if (state.value !== "signed_out") state.value = "reconnecting";
    // A server-side disconnect is not retried by socket.io itself; ours is (unless the
    // session ended, which `session.ended` said first).
    if (reason === "io server disconnect" && state.value !== "signed_out") {
      setTimeout(() => socket.connect(), jittered(1000));
    }
  });
  socket.on("session.ended", (body) => {
    state.value = "signed_out";
    onSessionEnded(body?.reason || "session ended");
  });
  socket.on("connect_error", (err) => {
    if (socket.active) {
      state.value = seq === null ? "connecting" : "reconnecting";
      return; // socket.io retries by itself
    }
    if (REFUSED.has(err?.data?.code)) {
      state.value = "signed_out";
      onSessionEnded(err.message);
    } else {
      state.value = "reconnecting";
      setTimeout(() => socket.connect(), jittered(2000));
    }
  });

  return {
    state,
    lastSeq,
    socket,
    start: () => socket.connect(),
    /** After a new login: connect again with the new token, resuming where we were. */
    restart: () => {
      socket.disconnect();
      state.value = seq === null ? "connecting" : "reconnecting";
      socket.connect();
    },
    stop: () => socket.disconnect(),
  };
}
