// Hold to confirm: the action fires only after the pointer (or Enter/Space) has been
// held for `ms`, with a ring filling meanwhile.  A tap, a scroll or a slide off the
// button sends nothing.  No sound and no vibration: a silent alarm must stay silent.
import { useRef, useState, useEffect } from "preact/hooks";
import { html } from "../../shared/html.js";

const SLOP_PX = 24; // a finger moving further than this is scrolling, not holding
const R = 44;
const CIRCUMFERENCE = 2 * Math.PI * R;

export function HoldButton({ ms = 2000, label, onConfirm, onShort, children, className = "" }) {
  const [progress, setProgress] = useState(0);
  const hold = useRef(null);

  const stop = (completed) => {
    const current = hold.current;
    if (!current) return;
    cancelAnimationFrame(current.frame);
    hold.current = null;
    setProgress(0);
    if (!completed && onShort) onShort();
  };

  const start = (x, y, pointerId, target) => {
    if (hold.current) return;
    if (pointerId !== undefined) target.setPointerCapture?.(pointerId);
    const began = performance.now();
    const tick = (now) => {
      if (!hold.current) return;
      const done = Math.min((now - began) / ms, 1);
      setProgress(done);
      if (done >= 1) {
        hold.current = null;
        setProgress(0);
        onConfirm();
        return;
      }
      hold.current.frame = requestAnimationFrame(tick);
    };
    hold.current = { x, y, pointerId, frame: requestAnimationFrame(tick) };
  };

  useEffect(() => () => hold.current && cancelAnimationFrame(hold.current.frame), []);

  const handlers = {
    onPointerDown: (e) => {
      if (e.button !== 0 && e.pointerType === "mouse") return;
      e.preventDefault();
      start(e.clientX, e.clientY, e.pointerId, e.currentTarget);
    },
    onPointerMove: (e) => {
      const current = hold.current;
      if (current && current.pointerId === e.pointerId && Math.hypot(e.clientX - current.x, e.clientY - current.y) > SLOP_PX) stop(false);
    },
    onPointerUp: () => stop(false),
    onPointerCancel: () => stop(false),
    onLostPointerCapture: () => stop(false),
    onContextMenu: (e) => e.preventDefault(),
    onKeyDown: (e) => {
      if ((e.key === "Enter" || e.key === " ") && !e.repeat) {
        e.preventDefault();
        start(0, 0, undefined, e.currentTarget);
      } else if (e.key === "Enter" || e.key === " ") e.preventDefault();
    },
    onKeyUp: (e) => {
      if (e.key === "Enter" || e.key === " ") stop(false);
    },
    onClick: (e) => e.preventDefault(), // a click alone never confirms
  };

  return html`<button type="button" class=${`hold ${className} ${progress > 0 ? "holding" : ""}`} aria-label=${label} data-progress=${progress.toFixed(2)} ...${handlers}>
    <svg class="ring" viewBox="0 0 100 100" aria-hidden="true" focusable="false">
      <circle class="ring-track" cx="50" cy="50" r=${R} />
      <circle class="ring-fill" cx="50" cy="50" r=${R} stroke-dasharray=${CIRCUMFERENCE} stroke-dashoffset=${CIRCUMFERENCE * (1 - progress)} />
    </svg>
    <span class="hold-label">${children}</span>
  </button>`;
}
