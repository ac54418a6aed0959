// @ts-check
/**
 * The switchboard client: one signaling session over whichever transport works, kept alive across
 * network drops.
 *
 * - Connects over WebSocket; when that fails or is blocked, falls back to SSE and then long-poll by
 *   itself, and keeps using the transport that worked (`transport: 'sse'` forces one).
 * - Tracks the last server `seq`, drops duplicates, and acknowledges with `ack` regularly.
 * - Numbers its own messages and keeps each until the server is known to have it: a pong to a later
 *   ping, a reply, a POST result, or `hello.last_client_seq` after a resume. After a resume it
 *   resends exactly the ones the server did not get.
 * - Notices a dead transport (pings when idle, expects the pong), then resumes the session with
 *   exponential backoff and jitter; if the session expired meanwhile, starts a new one and joins its
 *   rooms again (`session_reset`).
 * - Stamps `ts` with the server's clock (offset taken from `hello.ts`).
 *
 * The rules it follows are plain objects without IO, each tested on its own: the seqs both ways
 * and what waits for confirmation (`session-seq.js`), requests and their answers (`requests.js`),
 * when to ping and when a transport is dead (`liveness.js`), and which event each server message
 * becomes (`client-events.js`). This file is the IO: transports, timers, reconnects.
 */

import { Backoff } from './backoff.js';
import { Emitter } from './emitter.js';
import { SwitchboardError } from './protocol.js';
import { eventOf } from './client-events.js';
import { Liveness } from './liveness.js';
import { Requests } from './requests.js';
import { SessionSeq } from './session-seq.js';
import { TRANSPORTS } from './transports.js';

/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').ClientMessage} ClientMessage */
/** @typedef {import('./protocol.js').TransportName} TransportName */
/** @typedef {import('./protocol.js').HelloPayload} HelloPayload */
/** @typedef {import('./protocol.js').JoinedPayload} JoinedPayload */
/** @typedef {import('./protocol.js').RoomMode} RoomMode */
/** @typedef {import('./protocol.js').MediaMode} MediaMode */
/** @typedef {import('./transports.js').Transport} Transport */
/** @typedef {import('./transports.js').TransportContext} TransportContext */

/** @typedef {import('./client-events.js').ConnectionState} ConnectionState */
/**
 * @typedef {object} ClientOptions
 * @property {string | (() => string | Promise<string>)} token The JWT, or a function returning one
 *   (called again when the server refuses the current one; a resume needs the same user).
 * @property {string} [url] HTTP(S) base URL of the server (default: the page's origin).
 * @property {'auto' | TransportName} [transport] `auto` (default) tries `transports` in order and
 *   falls back by itself; a name forces that transport.
 * @property {TransportName[]} [transports] Order for `auto` (default `['ws', 'sse', 'poll']`).
 * @property {import('./backoff.js').BackoffOptions} [backoff] Reconnect delays.
 * @property {number} [openTimeoutMs] How long establishing one transport may take (default 8000).
 * @property {number} [pingIntervalMs] Ping after this long without a message (default 5000).
 * @property {number} [pongTimeoutMs] A transport is dead when a ping gets no answer in this long
 *   (default 5000).
 * @property {number} [ackDelayMs] Acknowledge at most this long after a message (default 1000).
 * @property {number} [ackEvery] ...or after this many unacknowledged messages (default 32).
 * @property {number} [requestTimeoutMs] How long `join`, `setMode`, `kick` wait (default 30000).
 * @property {typeof WebSocket} [WebSocket] For tests or non-browser runtimes.
 * @property {typeof EventSource} [EventSource] For tests or non-browser runtimes.
 * @property {typeof fetch} [fetch] For tests or non-browser runtimes.
 * @property {Partial<Record<TransportName, new (ctx: TransportContext) => Transport>>} [transportClasses]
 *   Replaces transport implementations (tests).
 */

/** @typedef {import('./client-events.js').StateEvent} StateEvent */
/** @typedef {import('./client-events.js').ClientEvents} ClientEvents */
/** @typedef {import('./client-events.js').SignalEvent} SignalEvent */
/** @typedef {import('./client-events.js').MediaEvent} MediaEvent */


/** @extends {Emitter<ClientEvents>} */
export class Client extends Emitter {
  /** @param {ClientOptions} options */
  constructor(options) {
    super();
    if (!options || !options.token) throw new TypeError('Client needs a token');
    this.options = options;
    const loc = globalThis.location;
    /** @type {string} */
    this.baseUrl = (options.url ?? (loc ? loc.origin : '')).replace(/\/+$/, '');
    if (!/^https?:\/\//.test(this.baseUrl)) throw new TypeError('Client needs an http(s) url');
    this.openTimeoutMs = options.openTimeoutMs ?? 8000;
    this.pingIntervalMs = options.pingIntervalMs ?? 5000;
    this.pongTimeoutMs = options.pongTimeoutMs ?? 5000;
    this.ackDelayMs = options.ackDelayMs ?? 1000;
    this.ackEvery = options.ackEvery ?? 32;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30000;
    this.backoff = new Backoff(options.backoff);
    const forced = options.transport && options.transport !== 'auto' ? options.transport : null;
    if (forced && !TRANSPORTS[forced]) throw new TypeError(`unknown transport ${forced}`);
    /** @type {TransportName[]} */
    this.order = forced ? [forced] : [...(options.transports ?? ['ws', 'sse', 'poll'])];

    /** @type {ConnectionState} */
    this.state = 'idle';
    /** @type {Transport | null} */
    this.transport = null;
    /** The transport of the current session, once established. @type {TransportName | null} */
    this.transportName = null;
    /** @type {string | null} */
    this.session = null;
    /** This session's peer id (fixed by its first join). @type {string | null} */
    this.peer = null;
    /** Server time minus local time, from the last `hello`. */
    this.clockOffset = 0;
    /** The last `hello` payload. @type {HelloPayload | null} */
    this.hello = null;
    /** Counters, for display and tests. */
    this.stats = { duplicates: 0, resumes: 0, sessions: 0, reconnects: 0, resent: 0, received: 0 };

    /** Whether the last hello resumed the session. */
    this._resumed = false;
    /** Whether the current session must not be resumed (it ended or was refused). */
    this._sessionDead = false;
    this._closed = false;
    this._connected = false;
    /** Seqs both ways and the unconfirmed client messages. */
    this._seqs = new SessionSeq();
    /** Requests waiting for their answers. */
    this._requests = new Requests(this.requestTimeoutMs);
    /** Rooms this session is in or joining, with what to rejoin them with. @type {Map<string, {peer?: string, meta?: any}>} */
    this._rooms = new Map();
    /** @type {string | null} */
    this._token = null;
    /** The room token of a lobby session once a host admitted it. @type {string | null} */
    this._admittedToken = null;
    /** Pings and their pongs. */
    this._alive = new Liveness(this.pingIntervalMs, this.pongTimeoutMs);
    /** @type {ReturnType<typeof setTimeout> | null} */
    this._ackTimer = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this._liveness = null;
    /** @type {(() => void) | null} */
    this._wake = null;
    /** @type {Promise<void> | null} */
    this._connecting = null;
    // The browser says the network changed: reconnect at once if waiting, and check the current
    // transport now (a socket often survives a network change as a silent zombie).
    this._onOnline = () => {
      this.reconnectNow();
      this._pingNow();
    };
    this._onOffline = () => this._pingNow();
  }

  /** The server's clock now, in Unix ms (local clock plus the offset from `hello`). */
  now() {
    return Date.now() + this.clockOffset;
  }

  /**
   * Connects (and keeps reconnecting until {@link close}). Resolves at the first `hello`; rejects
   * if the client closes first (bad token, replaced, closed by the app).
   * @returns {Promise<void>}
   */
  connect() {
    if (this._connecting) return this._connecting;
    if (this._closed) return Promise.reject(new SwitchboardError('closed', 'the client is closed'));
    this._connecting = new Promise((resolve, reject) => {
      const off = this.on('state', (event) => {
        if (event.state === 'connected') {
          off();
          resolve();
        } else if (event.state === 'closed') {
          off();
          reject(event.error ?? new SwitchboardError('closed', event.reason ?? 'closed'));
        }
      });
    });
    globalThis.addEventListener?.('online', this._onOnline);
    globalThis.addEventListener?.('offline', this._onOffline);
    void this._run();
    return this._connecting;
  }

  /**
   * Joins `room`. Resolves with `joined`'s payload; rejects with the server's error (`room_full`,
   * `forbidden`, ...). The room is joined again by itself after a session reset.
   * @param {string} room
   * @param {{peer?: string, meta?: any}} [options] Peer id to use (else the server picks one) and
   *   app data shown to the others.
   * @returns {Promise<JoinedPayload>}
   */
  async join(room, options = {}) {
    const payload = {};
    const peer = options.peer ?? this.peer ?? undefined;
    if (peer) Object.assign(payload, { peer });
    if (options.meta !== undefined) Object.assign(payload, { meta: options.meta });
    const reply = await this.request('join', { room, payload }, (m) => m.type === 'joined');
    this._rooms.set(room, { peer: reply.payload.peer, meta: options.meta });
    return reply.payload;
  }

  /**
   * Leaves `room`.
   * @param {string} room
   * @returns {Promise<void>}
   */
  async leave(room) {
    this._rooms.delete(room);
    await this.request('leave', { room }, (m) => m.type === 'left');
  }

  /**
   * Sends app data (chat and the like) to one peer (`to`) or the whole room.
   * @param {string} room
   * @param {object} payload
   * @param {{to?: string}} [options]
   * @returns {number} The message's client seq.
   */
  sendMessage(room, payload, options = {}) {
    return this.send('message', { room, to: options.to, payload });
  }

  /**
   * Sets a room's mode (hosts only). Resolves on `mode_changed`.
   * @param {string} room
   * @param {RoomMode} mode
   */
  async setMode(room, mode) {
    await this.request('mode', { room, payload: { mode } }, (m) => m.type === 'mode_changed');
  }

  /**
   * Sets a room's media (hosts only): `mesh`, `sfu`, or `auto` (mesh for two, SFU from three).
   * Resolves on the `media_changed` answering it (the sender's copy echoes its id); rejects with
   * `forbidden` (a guest) or `media_unavailable` (`sfu` on a server without an SFU).
   * @param {string} room
   * @param {MediaMode} media
   * @param {MediaMode} [current] The room's setting as last known; equal to `media`, nothing is sent.
   */
  async setMedia(room, media, current) {
    if (media === current) return;
    await this.request('set_media', { room, payload: { media } }, (m) => m.type === 'media_changed');
  }

  /**
   * Removes a member from a room (hosts only). Resolves on its `peer_left`.
   * @param {string} room
   * @param {string} peer
   */
  async kick(room, peer) {
    await this.request('kick', { room, payload: { peer } }, (m) => m.type === 'peer_left');
  }

  /**
   * Lobby sessions (a share code's lobby token): asks the room's hosts to be let in. Resolves with
   * `knocking`'s payload, `{ticket, expires_ms}`; then `admitted` (the client keeps its room
   * token for reconnects; `join` the room now) or `denied` follows.
   * @param {string} room
   * @returns {Promise<{ticket: string, expires_ms: number}>}
   */
  async knock(room) {
    const reply = await this.request('knock', { room }, (m) => m.type === 'knocking');
    return reply.payload;
  }

  /**
   * Lets a guest knocking on `room` in (hosts only). Resolves on its `knock_ended`.
   * @param {string} room
   * @param {string} ticket From the `knock` event.
   */
  async admit(room, ticket) {
    await this.request('admit', { room, payload: { ticket } }, (m) => m.type === 'knock_ended');
  }

  /**
   * Turns a guest knocking on `room` away (hosts only). Resolves on its `knock_ended`.
   * @param {string} room
   * @param {string} ticket From the `knock` event.
   */
  async deny(room, ticket) {
    await this.request('deny', { room, payload: { ticket } }, (m) => m.type === 'knock_ended');
  }

  /**
   * Sends any client message. It gets the next seq and is kept until the server confirms it, so a
   * message sent while disconnected goes out after the resume.
   * @param {string} type
   * @param {Partial<ClientMessage>} [fields]
   * @returns {number} The seq.
   */
  send(type, fields = {}) {
    if (this._closed) throw new SwitchboardError('closed', 'the client is closed');
    const msg = this._make(type, fields);
    this._seqs.keep(msg);
    if (this._connected) this._transmit([msg]);
    return msg.seq;
  }

  /**
   * Sends a message with a fresh correlation `id` and waits for the reply that `matches`, or the
   * `error` with that id.
   * @param {string} type
   * @param {Partial<ClientMessage>} fields
   * @param {(msg: ServerMessage) => boolean} matches
   * @returns {Promise<ServerMessage>}
   */
  request(type, fields, matches) {
    return this._requests.start(type, matches, (id) => this.send(type, { ...fields, id }));
  }

  /** Skips the current backoff delay and reconnects now (also done on the browser's `online`). */
  reconnectNow() {
    const wake = this._wake;
    this._wake = null;
    wake?.();
  }

  /**
   * Ends the session: leaves every room, closes the transport (a WebSocket with 1000, so the
   * server ends the session at once), and stops reconnecting. Safe during `pagehide`.
   * @param {string} [reason]
   */
  close(reason = 'closed by the app') {
    if (this._closed) return;
    const leaves = [...this._rooms.keys()].map((room) => this._make('leave', { room }));
    const transport = this.transport;
    if (transport && this._connected) {
      if (transport.sendFinal) transport.sendFinal(leaves);
      else transport.send(leaves);
    }
    this._rooms.clear();
    this._shutdown('closed', reason);
    transport?.close(true);
  }

  // ---- internals ----

  /**
   * @param {string} type
   * @param {Partial<ClientMessage>} fields
   * @returns {ClientMessage}
   */
  _make(type, fields = {}) {
    return this._seqs.make(type, fields, this.now());
  }

  /** @param {ClientMessage[]} messages */
  _transmit(messages) {
    const t = this.transport;
    if (!t || messages.length === 0) return;
    const now = this.now();
    for (const m of messages) m.ts = now;
    t.send(messages);
  }

  /**
   * @param {ConnectionState} state
   * @param {Partial<StateEvent>} [extra]
   */
  _setState(state, extra = {}) {
    this.state = state;
    this.emit('state', {
      state,
      transport: extra.transport !== undefined ? extra.transport : this.transportName,
      session: this.session,
      ...extra,
    });
  }

  /** @returns {Promise<string>} */
  async _getToken(fresh = false) {
    // An admitted lobby guest reconnects as the member it now is.
    if (this._admittedToken) return this._admittedToken;
    const { token } = this.options;
    if (typeof token === 'string') return token;
    if (!this._token || fresh) this._token = await token();
    return this._token;
  }

  /** The connect-and-reconnect loop; runs until {@link close}. */
  async _run() {
    let round = 0;
    while (!this._closed) {
      const transport = await this._establish(round);
      if (this._closed) return;
      if (transport) {
        round = 0;
        const end = await transport.closed;
        if (this._closed || end.code === 'closed') return;
        this._detach();
        if (end.code === 'replaced') {
          this._fail(new SwitchboardError('replaced', 'another session of this user joined the room'));
          return;
        }
        if (end.code === 'session_ended') this._sessionDead = true;
        if (end.code === 'unauthorized') this._token = null;
        this.stats.reconnects += 1;
        this._setState('reconnecting', { reason: end.message, attempt: 1 });
        continue; // one immediate try, then backoff
      }
      round += 1;
      const delay = this.backoff.next();
      this._setState('reconnecting', { retryInMs: delay, attempt: round, transport: null });
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delay);
        this._wake = () => {
          clearTimeout(timer);
          resolve(undefined);
        };
      });
      this._wake = null;
    }
  }

  /**
   * One round over the transports in order. Returns the established transport, or null.
   * @param {number} round
   * @returns {Promise<Transport | null>}
   */
  async _establish(round) {
    const classes = { ...TRANSPORTS, ...this.options.transportClasses };
    let refreshedToken = false;
    let restartedSession = false;
    for (let i = 0; i < this.order.length && !this._closed; i++) {
      const name = this.order[i];
      const resume = this.session && !this._sessionDead ? this.session : undefined;
      this._setState(this.state === 'idle' || this.state === 'connecting' ? 'connecting' : 'reconnecting', {
        transport: name,
        attempt: round + 1,
      });
      let token;
      try {
        token = await this._getToken();
      } catch (e) {
        this._fail(new SwitchboardError('unauthorized', `could not get a token: ${e}`));
        return null;
      }
      const Cls = classes[name];
      if (!Cls) continue;
      const transport = new Cls(this._context(token));
      this.transport = transport;
      try {
        await transport.start(resume ? { resume, lastSeq: this._seqs.received } : {});
      } catch (e) {
        transport.close();
        if (this.transport === transport) this.transport = null;
        this._connected = false;
        const error = e instanceof SwitchboardError ? e : new SwitchboardError('transport_failed', String(e));
        if (this._closed) return null;
        if (error.code === 'unauthorized') {
          if (typeof this.options.token === 'function' && !refreshedToken) {
            refreshedToken = true;
            this._token = null;
            i--;
            continue;
          }
          this._fail(error);
          return null;
        }
        if (resume && ['session_expired', 'forbidden', 'invalid_message'].includes(error.code)) {
          // The session cannot be resumed: start a new one on the same transport.
          this._sessionDead = true;
          if (!restartedSession) {
            restartedSession = true;
            i--;
          }
          continue;
        }
        if (['unreachable', 'unavailable', 'rate_limited'].includes(error.code)) return null;
        continue; // this transport does not work here: try the next one
      }
      if (this._closed) {
        transport.close(true);
        return null;
      }
      if (i > 0 && this.order.length > 1) {
        // Keep to what worked: the ones that failed go to the end of the line.
        this.order = [...this.order.slice(i), ...this.order.slice(0, i)];
      }
      this.backoff.reset();
      this.transportName = transport.name;
      this._alive.started(Date.now());
      if (!this._liveness) this._liveness = setInterval(() => this._checkLiveness(), 1000);
      this._setState('connected', { reason: this._resumed ? 'resumed' : 'new session' });
      return transport;
    }
    return null;
  }

  /**
   * @param {string} token
   * @returns {TransportContext}
   */
  _context(token) {
    const { options } = this;
    return {
      baseUrl: this.baseUrl,
      token,
      openTimeoutMs: this.openTimeoutMs,
      onMessage: (msg) => this._receive(msg),
      onPosted: (batch, results) => this._seqs.posted(batch, results),
      lastSeq: () => this._seqs.received,
      makeMessage: (type, fields) => this._make(type, fields),
      WebSocket: options.WebSocket,
      EventSource: options.EventSource,
      fetch: options.fetch,
    };
  }

  /** The transport ended: stop the timers that belong to it. */
  _detach() {
    this._connected = false;
    this.transport = null;
    this._alive.ended();
    if (this._liveness) clearInterval(this._liveness);
    this._liveness = null;
    if (this._ackTimer) clearTimeout(this._ackTimer);
    this._ackTimer = null;
  }

  /** @param {SwitchboardError} error */
  _fail(error) {
    this.emit('error', error);
    this._shutdown('closed', error.message, error);
  }

  /**
   * @param {ConnectionState} state
   * @param {string} reason
   * @param {SwitchboardError} [error]
   */
  _shutdown(state, reason, error) {
    this._closed = true;
    const transport = this.transport;
    this._detach();
    this.transport = transport; // close() still needs it
    this.reconnectNow();
    globalThis.removeEventListener?.('online', this._onOnline);
    globalThis.removeEventListener?.('offline', this._onOffline);
    this._requests.failAll(error ?? new SwitchboardError('closed', reason));
    this._setState(state, { reason, error });
  }

  /**
   * Every message from the transport.
   * @param {ServerMessage} msg
   */
  _receive(msg) {
    if (this._closed || !msg || typeof msg !== 'object') return;
    this._alive.heard(Date.now());
    if (msg.type === 'hello') {
      this._hello(msg);
      return;
    }
    if (typeof msg.seq === 'number' && msg.seq > 0) {
      if (!this._seqs.receive(msg.seq)) {
        this.stats.duplicates += 1;
        return;
      }
      this._scheduleAck();
    }
    this.stats.received += 1;
    this._dispatch(msg);
  }

  /** @param {ServerMessage} msg */
  _hello(msg) {
    /** @type {HelloPayload} */
    const hello = msg.payload;
    this.clockOffset = msg.ts - Date.now();
    this.hello = hello;
    const resumed = this.session !== null && hello.session === this.session && !this._sessionDead;
    if (resumed) {
      this.stats.resumes += 1;
      this._seqs.resumed(msg.seq, hello.last_client_seq);
    } else {
      const previous = this.session;
      this.session = hello.session;
      this._sessionDead = false;
      this._seqs.started(msg.seq);
      this.stats.sessions += 1;
      if (previous !== null) this._reset(previous, hello.last_client_seq);
    }
    if (hello.peer) this.peer = hello.peer;
    this._resumed = resumed;
    this._connected = true;
    const { pending } = this._seqs;
    if (pending.length > 0) {
      this.stats.resent += resumed ? pending.length : 0;
      this._transmit([...pending]);
    }
    this.emit('hello', { ...hello, resumed });
  }

  /**
   * A new session replaced one that could not be resumed: what was unconfirmed belonged to the old
   * one, except joins, which are sent again (with the same peer id) for every room.
   * @param {string} previous
   * @param {number} lastClientSeq
   */
  _reset(previous, lastClientSeq) {
    const joins = new Map();
    for (const m of this._seqs.abandon(lastClientSeq)) {
      if (m.type === 'join' && m.room && m.id && this._requests.waiting(m.id)) joins.set(m.room, m);
    }
    const rejoining = new Set([...joins.values()].map((m) => m.id));
    this._requests.failAll(new SwitchboardError('session_reset', 'the session was lost and started over'), (id) =>
      rejoining.has(id),
    );
    this.emit('session_reset', { previous, session: /** @type {string} */ (this.session) });
    for (const [room, state] of this._rooms) {
      if (joins.has(room)) continue;
      const payload = {};
      if (state.peer) Object.assign(payload, { peer: state.peer });
      if (state.meta !== undefined) Object.assign(payload, { meta: state.meta });
      this._seqs.keep(this._make('join', { room, payload }));
    }
    for (const m of joins.values()) {
      const again = this._make('join', { room: m.room, id: m.id, payload: m.payload });
      this._requests.resent(/** @type {string} */ (m.id), again.seq);
      this._seqs.keep(again);
    }
  }

  _scheduleAck() {
    if (this.transport?.name === 'poll') return; // `after` acknowledges
    if (this._seqs.ackDue(this.ackEvery)) {
      this._sendAck();
    } else if (!this._ackTimer) {
      this._ackTimer = setTimeout(() => this._sendAck(), this.ackDelayMs);
    }
  }

  _sendAck() {
    if (this._ackTimer) clearTimeout(this._ackTimer);
    this._ackTimer = null;
    if (!this._connected) return;
    const seq = this._seqs.takeAck();
    if (seq === null) return;
    // Not kept for resending: a later ack (or the resume's last_seq) covers a lost one.
    this._transmit([this._make('ack', { payload: { seq } })]);
  }

  _checkLiveness() {
    const verdict = this._alive.check(Date.now(), this._seqs.pending.length);
    // The run loop sees the transport end and resumes the session.
    if (verdict === 'dead') this.transport?.abandon('no answer to a ping');
    else if (verdict === 'ping') this._pingNow();
  }

  /** Sends a ping now, unless one is outstanding; no pong within `pongTimeoutMs` ends the transport. */
  _pingNow() {
    if (!this._connected || this._alive.ping || this._closed) return;
    const id = this._requests.newId('p');
    const ping = this._make('ping', { id });
    this._alive.pinged(id, ping.seq, Date.now());
    this._transmit([ping]);
  }

  /** @param {ServerMessage} msg */
  _dispatch(msg) {
    const room = msg.room ?? '';
    const p = msg.payload ?? {};
    this.emit('server_message', msg);
    // Replies to our requests (relayed messages carry the sender's id, so never match those).
    if (msg.id && !msg.from) {
      const pinged = msg.type === 'pong' ? this._alive.pong(msg.id) : null;
      if (pinged !== null) this._seqs.confirm(pinged);
      const answered = this._requests.answer(msg);
      if (answered) {
        this._seqs.confirm(answered.seq);
        if (answered.error) return; // the request's caller handles it
      }
    }
    if (msg.type === 'error' && typeof p.client_seq === 'number') this._seqs.confirm(p.client_seq);
    switch (msg.type) {
      case 'joined':
        if (p.peer) this.peer = p.peer;
        if (!this._rooms.has(room)) this._rooms.set(room, { peer: p.peer });
        break;
      case 'left':
      case 'room_closed':
      case 'replaced':
        this._rooms.delete(room);
        break;
      case 'admitted':
        this._admittedToken = p.token;
        break;
    }
    const event = eventOf(msg);
    if (event) this.emit(event.name, event.event);
  }
}
