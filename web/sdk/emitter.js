// @ts-check
/**
 * A small typed event emitter. `Events` maps each event name to the type of its argument.
 *
 * @template {Record<string, any>} Events
 */
export class Emitter {
  constructor() {
    /** @type {Map<keyof Events, Set<(arg: any) => void>>} */
    this._listeners = new Map();
  }

  /**
   * Calls `listener` every time `event` is emitted. Returns a function that removes it.
   *
   * @template {keyof Events} K
   * @param {K} event
   * @param {(arg: Events[K]) => void} listener
   * @returns {() => void}
   */
  on(event, listener) {
    let set = this._listeners.get(event);
    if (!set) {
      set = new Set();
      this._listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  /**
   * Calls `listener` the next time `event` is emitted, once.
   *
   * @template {keyof Events} K
   * @param {K} event
   * @param {(arg: Events[K]) => void} listener
   * @returns {() => void}
   */
  once(event, listener) {
    /** @param {Events[K]} arg */
    const wrapper = (arg) => {
      this.off(event, wrapper);
      listener(arg);
    };
    return this.on(event, wrapper);
  }

  /**
   * Removes a listener added with {@link on}.
   *
   * @template {keyof Events} K
   * @param {K} event
   * @param {(arg: Events[K]) => void} listener
   */
  off(event, listener) {
    this._listeners.get(event)?.delete(listener);
  }

  /**
   * Calls every listener of `event` with `arg`. A listener that throws does not stop the others;
   * its error is reported with `reportError` (or `console.error`) and the emitter carries on.
   *
   * @template {keyof Events} K
   * @param {K} event
   * @param {Events[K]} arg
   */
  emit(event, arg) {
    const set = this._listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(arg);
      } catch (error) {
        if (typeof globalThis.reportError === 'function') globalThis.reportError(error);
        else console.error(error);
      }
    }
  }
}
