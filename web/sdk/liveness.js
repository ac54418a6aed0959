// @ts-check
/**
 * Whether the transport still works, judged without IO: the {@link import('./client.js').Client}
 * reports what it hears and calls {@link Liveness.check} about once a second with the time;
 * this says when to ping and when a ping went unanswered too long (the transport is dead: a
 * socket often survives a network change as a silent zombie).
 */

export class Liveness {
  /**
   * @param {number} pingIntervalMs Ping after this long without a message.
   * @param {number} pongTimeoutMs A ping unanswered this long means the transport is dead.
   */
  constructor(pingIntervalMs, pongTimeoutMs) {
    this.pingIntervalMs = pingIntervalMs;
    this.pongTimeoutMs = pongTimeoutMs;
    this.lastHeard = 0;
    this.lastCheck = 0;
    /** The ping waiting for its pong. @type {{id: string, seq: number, at: number} | null} */
    this.ping = null;
  }

  /**
   * A transport was established at `now`; nothing is outstanding on it.
   * @param {number} now
   */
  started(now) {
    this.lastHeard = this.lastCheck = now;
    this.ping = null;
  }

  /** The transport ended: a ping on it will never be answered. */
  ended() {
    this.ping = null;
  }

  /**
   * Something arrived at `now`.
   * @param {number} now
   */
  heard(now) {
    this.lastHeard = now;
  }

  /**
   * A ping `id`, numbered `seq`, left at `now`.
   * @param {string} id
   * @param {number} seq
   * @param {number} now
   */
  pinged(id, seq, now) {
    this.ping = { id, seq, at: now };
  }

  /**
   * A pong with `id` arrived: the seq of the ping it answers (the server has every client message
   * up to it), or null if no ping waits for it.
   * @param {string} id
   */
  pong(id) {
    if (!this.ping || this.ping.id !== id) return null;
    const { seq } = this.ping;
    this.ping = null;
    return seq;
  }

  /**
   * What to do at `now`: `dead` (the ping went unanswered), `ping` (idle too long, or `waiting`
   * sent messages are unconfirmed, which a pong would confirm), or nothing.
   * @param {number} now
   * @param {number} waiting
   * @returns {'dead' | 'ping' | null}
   */
  check(now, waiting) {
    // Checks further apart than this mean the page's timers were throttled (a hidden tab): the
    // silence says nothing of the transport, so judge next time.
    const late = now - this.lastCheck > 3000;
    this.lastCheck = now;
    if (late) {
      if (this.ping) this.ping.at = now;
      return null;
    }
    if (this.ping) {
      if (now - this.ping.at <= this.pongTimeoutMs) return null;
      this.ping = null;
      return 'dead';
    }
    return now - this.lastHeard >= this.pingIntervalMs || waiting >= 16 ? 'ping' : null;
  }
}
