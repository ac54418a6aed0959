// @ts-check
/**
 * How big each remote video is shown, debounced into `subscribe` views for the SFU. The app says
 * a tile's size (device pixels) or that it is off screen, as often as a `ResizeObserver` fires;
 * the board sends a view only once it held still for `debounceMs` and differs from what the SFU
 * was last told, so resizing a window costs a message per tile, not one per frame. Fed the time
 * by the caller, so it is tested without a clock.
 */

/** @typedef {{width: number, height: number} | {paused: true}} View */

/**
 * A view as sent: whole device pixels, at least 1; anything else is paused.
 * @param {any} view
 * @returns {View}
 */
export function normalizeView(view) {
  if (view && view.paused !== true && Number.isFinite(view.width) && Number.isFinite(view.height)) {
    return { width: Math.max(1, Math.round(view.width)), height: Math.max(1, Math.round(view.height)) };
  }
  return { paused: true };
}

/**
 * @param {View | null} a
 * @param {View} b
 */
function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class ViewBoard {
  /** @param {number} debounceMs */
  constructor(debounceMs) {
    this.debounceMs = debounceMs;
    /** By `peer|tag`. @type {Map<string, {peer: string, tag: string, view: View, at: number, sent: View | null}>} */
    this.views = new Map();
  }

  /**
   * The app shows `peer`'s `tag` video at `view` from `now` on.
   * @param {string} peer
   * @param {string} tag
   * @param {any} view `{width, height}` or `{paused: true}`.
   * @param {number} now
   */
  set(peer, tag, view, now) {
    const key = `${peer}|${tag}`;
    const next = normalizeView(view);
    const entry = this.views.get(key);
    if (entry && same(entry.view, next)) return;
    this.views.set(key, { peer, tag, view: next, at: now, sent: entry?.sent ?? null });
  }

  /**
   * Views to send now, and when to look again (`null`: nothing waits). When one view is due, the
   * views that would be due within half a debounce go with it: tiles resized together (a window
   * resize, a new grid page) are set a few milliseconds apart, and should reach the SFU as one
   * `subscribe` per size, not one each.
   * @param {number} now
   * @returns {{due: {peer: string, tag: string, view: View}[], wakeAt: number | null}}
   */
  poll(now) {
    const waiting = [...this.views.values()].filter((e) => !same(e.sent, e.view));
    const anyDue = waiting.some((e) => e.at + this.debounceMs <= now);
    const until = anyDue ? now + this.debounceMs / 2 : now;
    const due = [];
    /** @type {number | null} */
    let wakeAt = null;
    for (const e of waiting) {
      const at = e.at + this.debounceMs;
      if (at <= until) due.push({ peer: e.peer, tag: e.tag, view: e.view });
      else wakeAt = wakeAt === null ? at : Math.min(wakeAt, at);
    }
    return { due, wakeAt };
  }

  /**
   * The SFU was told `view` for `peer`'s `tag` video.
   * @param {string} peer
   * @param {string} tag
   * @param {View} view
   */
  sent(peer, tag, view) {
    const e = this.views.get(`${peer}|${tag}`);
    if (e) e.sent = view;
  }

  /**
   * The SFU must hear `peer`'s views again (it published a new track; or, without `peer`, a new
   * media session started).
   * @param {string} [peer]
   */
  resend(peer) {
    for (const e of this.views.values()) if (!peer || e.peer === peer) e.sent = null;
  }

  /** @param {string} peer */
  forget(peer) {
    for (const [key, e] of this.views) if (e.peer === peer) this.views.delete(key);
  }
}
