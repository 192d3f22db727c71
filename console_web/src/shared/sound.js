// An alert tone made with WebAudio (no file to fetch).  Browsers allow sound only after
// a user gesture, so `enable()` is called from the click on the sound switch.
let ctx = null;

export function enableSound() {
  ctx = ctx || new AudioContext();
  return ctx.resume();
}

/** Two short beeps; `urgent` is higher. */
export function beep(urgent = false) {
  if (!ctx || ctx.state !== "running") return;
  const t0 = ctx.currentTime;
  for (const offset of [0, 0.25]) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = urgent ? 1320 : 880;
    gain.gain.setValueAtTime(0.0001, t0 + offset);
    gain.gain.exponentialRampToValueAtTime(0.3, t0 + offset + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + offset + 0.18);
    osc.connect(gain).connect(ctx.destination);
    osc.start(t0 + offset);
    osc.stop(t0 + offset + 0.2);
  }
}
