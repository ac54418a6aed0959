// @ts-check
/**
 * The client's side of a session's sequence numbers (docs/protocol.md, "Sequence numbers and
 * resume"), both ways, without IO: the {@link Client} sends, schedules and resends; this says what.
 *
 * - Out: every client message gets the next `seq` and is kept until the server is known to have
 *   it (a pong to a later ping, a reply, a POST's results, `hello.last_client_seq`), so a resume
 *   resends exactly what the server did not get.
 * - In: the highest server `seq` seen drops duplicates and is what `ack` and a resume's
 *   `last_seq` carry.
 */

/** @typedef {import('./protocol.js').ClientMessage} ClientMessage */
/** @typedef {import('./protocol.js').PostResult} PostResult */

export class SessionSeq {
  constructor() {
    /** The last client seq given out. */
    this.sent = 0;
    /** Unconfirmed client messages, by increasing seq. @type {ClientMessage[]} */
    this.pending = [];
    /** The highest server seq received. */
    this.received = 0;
    /** The highest server seq acknowledged. */
    this.acked = 0;
  }

  /**
   * A new client message with the next seq, stamped `ts`. `seq`, `ts` and `type` in `fields`, and
   * undefined fields, are left out. Not kept: {@link keep} it if it must survive a resume.
   * @param {string} type
   * @param {Partial<ClientMessage>} fields
   * @param {number} ts
   * @returns {ClientMessage}
   */
  make(type, fields, ts) {
    /** @type {ClientMessage} */
    const msg = { type, seq: ++this.sent, ts };
    for (const [k, v] of Object.entries(fields)) {
      if (v !== undefined && k !== 'seq' && k !== 'ts' && k !== 'type') {
        /** @type {any} */ (msg)[k] = v;
      }
    }
    return msg;
  }

  /**
   * Keeps `msg` until the server confirms it.
   * @param {ClientMessage} msg
   */
  keep(msg) {
    this.pending.push(msg);
  }

  /**
   * The server has every client message up to and including `seq`.
   * @param {number} seq
   */
  confirm(seq) {
    if (this.pending.length && this.pending[0].seq <= seq) {
      this.pending = this.pending.filter((m) => m.seq > seq);
    }
  }

  /**
   * A POST of `batch` was answered with `results`: accepted or refused, each was received (a
   * `duplicate_seq` means an earlier copy was).
   * @param {ClientMessage[]} batch
   * @param {PostResult[]} results
   */
  posted(batch, results) {
    if (!Array.isArray(results) || results.length !== batch.length) return;
    const seqs = new Set(batch.map((m) => m.seq));
    this.pending = this.pending.filter((m) => !seqs.has(m.seq));
  }

  /**
   * A server message numbered `seq` arrived: whether it is new (false: a duplicate, to drop).
   * @param {number} seq
   */
  receive(seq) {
    if (seq <= this.received) return false;
    this.received = seq;
    return true;
  }

  /**
   * Whether `every` or more messages wait to be acknowledged.
   * @param {number} every
   */
  ackDue(every) {
    return this.received - this.acked >= every;
  }

  /** The seq to acknowledge now, or null when everything received was acknowledged. */
  takeAck() {
    if (this.received <= this.acked) return null;
    this.acked = this.received;
    return this.received;
  }

  /**
   * The session was resumed: `hello` came at `seq` and says the server has client messages up to
   * `lastClientSeq`.
   * @param {number} seq
   * @param {number} lastClientSeq
   */
  resumed(seq, lastClientSeq) {
    this.received = Math.max(this.received, seq);
    this.confirm(lastClientSeq);
    if (this.sent < lastClientSeq) this.sent = lastClientSeq;
  }

  /**
   * A new session started: its `hello` came at `seq`.
   * @param {number} seq
   */
  started(seq) {
    this.received = seq;
    this.acked = 0;
  }

  /**
   * The new session replaced one that could not be resumed: what was unconfirmed belonged to the
   * old one and is handed back; client seqs go on from `lastClientSeq`.
   * @param {number} lastClientSeq
   * @returns {ClientMessage[]}
   */
  abandon(lastClientSeq) {
    const old = this.pending;
    this.pending = [];
    this.sent = lastClientSeq;
    return old;
  }
}
