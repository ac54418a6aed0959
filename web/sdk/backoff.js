// @ts-check
/**
 * Reconnect delays: exponential backoff with jitter.
 *
 * Attempt `n` (0-based) has a ceiling of `min(maxMs, initialMs * factor^n)`; the delay is drawn
 * uniformly from `[ceiling * (1 - jitter), ceiling]`. With `jitter = 1` this is "full jitter", with
 * `jitter = 0` plain exponential backoff. The default (0.5) keeps at least half the ceiling so a
 * flapping network does not cause a burst of immediate retries, while clients that dropped together
 * still spread out.
 */

/**
 * @typedef {object} BackoffOptions
 * @property {number} [initialMs] First ceiling, in ms (default 500).
 * @property {number} [maxMs] Largest delay, in ms (default 15000).
 * @property {number} [factor] Growth per attempt (default 2).
 * @property {number} [jitter] Fraction of the ceiling that is random, 0..1 (default 0.5).
 * @property {() => number} [random] Source of uniform numbers in [0, 1) (default `Math.random`).
 */

export class Backoff {
  /** @param {BackoffOptions} [options] */
  constructor(options = {}) {
    this.initialMs = options.initialMs ?? 500;
    this.maxMs = options.maxMs ?? 15000;
    this.factor = options.factor ?? 2;
    this.jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
    this.random = options.random ?? Math.random;
    if (!(this.initialMs > 0) || !(this.maxMs >= this.initialMs) || !(this.factor >= 1)) {
      throw new RangeError('backoff needs 0 < initialMs <= maxMs and factor >= 1');
    }
    /** Attempts made since the last {@link reset}. */
    this.attempt = 0;
  }

  /**
   * The ceiling of attempt `n`: `min(maxMs, initialMs * factor^n)`.
   * @param {number} n
   */
  ceiling(n) {
    return Math.min(this.maxMs, this.initialMs * Math.pow(this.factor, n));
  }

  /**
   * The delay before the next attempt, in ms; counts the attempt.
   * @returns {number}
   */
  next() {
    const ceiling = this.ceiling(this.attempt);
    this.attempt += 1;
    const floor = ceiling * (1 - this.jitter);
    return Math.round(floor + (ceiling - floor) * this.random());
  }

  /** Starts over after a success. */
  reset() {
    this.attempt = 0;
  }
}
