// @ts-check
/**
 * The client's requests waiting for their answers: each has a correlation `id`, the seq of the
 * message that carried it (answered means the server has that message) and a deadline. An answer
 * is the server message with the same `id` that the request's `matches` accepts, or an `error`
 * with that id.
 */

import { SwitchboardError } from './protocol.js';

/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */

/**
 * @typedef {object} PendingRequest
 * @property {(msg: ServerMessage) => void} resolve
 * @property {(error: SwitchboardError) => void} reject
 * @property {(msg: ServerMessage) => boolean} matches
 * @property {ReturnType<typeof setTimeout>} timer
 * @property {number} seq
 */

export class Requests {
  /** @param {number} timeoutMs How long a request waits for its answer. */
  constructor(timeoutMs) {
    this.timeoutMs = timeoutMs;
    /** @type {Map<string, PendingRequest>} */
    this.byId = new Map();
    this.prefix = Math.random().toString(36).slice(2, 8);
    this.counter = 0;
  }

  /**
   * A correlation id no other message of this client carries; `tag` tells kinds apart in logs.
   * @param {string} [tag]
   */
  newId(tag = '') {
    return `${this.prefix}-${tag}${++this.counter}`;
  }

  /**
   * Sends a request with `send` (which returns the seq it got, or throws) and waits for its answer.
   * @param {string} type For the timeout's message.
   * @param {(msg: ServerMessage) => boolean} matches
   * @param {(id: string) => number} send
   * @returns {Promise<ServerMessage>}
   */
  start(type, matches, send) {
    const id = this.newId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.byId.delete(id);
        reject(new SwitchboardError('timeout', `no answer to ${type} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      let seq = 0;
      try {
        seq = send(id);
      } catch (error) {
        clearTimeout(timer);
        reject(error);
        return;
      }
      this.byId.set(id, { resolve, reject, matches, timer, seq });
    });
  }

  /**
   * Settles the request `msg` answers, if any. Returns the seq of the message that carried it
   * (the server has it) and whether `msg` was an error the request's caller now handles.
   * @param {ServerMessage} msg
   * @returns {{seq: number, error: boolean} | null}
   */
  answer(msg) {
    const request = msg.id ? this.byId.get(msg.id) : undefined;
    if (!msg.id || !request || (msg.type !== 'error' && !request.matches(msg))) return null;
    this.byId.delete(msg.id);
    clearTimeout(request.timer);
    if (msg.type === 'error') request.reject(SwitchboardError.fromMessage(msg));
    else request.resolve(msg);
    return { seq: request.seq, error: msg.type === 'error' };
  }

  /**
   * Whether the request `id` still waits.
   * @param {string} id
   */
  waiting(id) {
    return this.byId.has(id);
  }

  /**
   * The request `id` is carried again, by the message numbered `seq`.
   * @param {string} id
   * @param {number} seq
   */
  resent(id, seq) {
    const request = this.byId.get(id);
    if (request) request.seq = seq;
  }

  /**
   * Fails every waiting request with `error`, but those `keep` spares.
   * @param {SwitchboardError} error
   * @param {(id: string) => boolean} [keep]
   */
  failAll(error, keep = () => false) {
    for (const [id, request] of this.byId) {
      if (keep(id)) continue;
      clearTimeout(request.timer);
      request.reject(error);
      this.byId.delete(id);
    }
  }
}
