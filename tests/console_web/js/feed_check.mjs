// Drives console_web/src/shared/feed.js with a scripted socket: resume by seq, nothing
// applied twice, resync from a snapshot when the server says so, a refused session.
// Prints one JSON object; tests/console_web/test_feed_js.py checks it.
const [, , feedPath] = process.argv;
const { createFeed } = await import(feedPath);

function fakeSocket(script) {
  const handlers = new Map();
  let any = null;
  const socket = {
    active: true,
    emitted: [],
    on(name, fn) { handlers.set(name, fn); },
    onAny(fn) { any = fn; },
    connect() { queueMicrotask(() => handlers.get("connect")?.()); return socket; },
    disconnect() { return socket; },
    timeout() { return socket; },
    async emitWithAck(name, data) {
      socket.emitted.push([name, data]);
      return script.ack(data, (event) => any(event.type, event));
    },
    push(event) { any(event.type, event); },
    fire(name, arg) { handlers.get(name)?.(arg); },
  };
  return socket;
}

const applied = [];
let snapshots = 0;
let ended = null;
let acks = 0;
const script = {
  ack(data, push) {
    acks++;
    if (acks === 1) {
      // First resume (from the snapshot's seq 10): the server replays 11 and 12.
      push({ type: "incident.created", seq: 11 });
      push({ type: "incident.created", seq: 12 });
      return { ok: true, seq: 12 };
    }
    if (acks === 2) return { ok: true, resync: true, seq: 9000 }; // too far behind
    return { ok: true, seq: 9000 };
  },
};
let socket;
const feed = createFeed({
  namespace: "/console",
  getToken: () => "t",
  loadSnapshot: async () => { snapshots++; return snapshots === 1 ? 10 : 9000; },
  onEvent: (e) => applied.push(e.seq),
  onSessionEnded: (reason) => { ended = reason; },
  connect: () => (socket = fakeSocket(script)),
});
const tick = () => new Promise((r) => setTimeout(r, 10));
feed.start();
await tick();
const first = { state: feed.state.value, applied: [...applied], resumedFrom: socket.emitted[0][1].last_seq };
socket.push({ type: "incident.created", seq: 12 }); // a live copy of a replayed event
socket.push({ type: "incident.claimed", seq: 13 });
socket.push({ type: "incident.claimed", seq: 9 });
socket.fire("disconnect", "transport close");
const away = feed.state.value;
socket.fire("connect"); // reconnected: resume from 13, told to resync
await tick();
const second = {
  state: feed.state.value,
  resumedFrom: socket.emitted.slice(1).map(([, d]) => d.last_seq),
  snapshots,
  lastSeq: feed.lastSeq.value,
};
socket.push({ type: "incident.created", seq: 9000 }); // already in the snapshot
socket.push({ type: "incident.created", seq: 9001 });
socket.active = false;
socket.fire("connect_error", { message: "session ended", data: { code: "unauthorized" } });
console.log(JSON.stringify({ first, away, second, applied, ended, finalState: feed.state.value }));
process.exit(0);
