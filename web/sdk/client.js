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
 */

import { Backoff } from './backoff.js';
import { Emitter } from './emitter.js';
import { SwitchboardError } from './protocol.js';
import { TRANSPORTS } from './transports.js';

/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').ClientMessage} ClientMessage */
/** @typedef {import('./protocol.js').TransportName} TransportName */
/** @typedef {import('./protocol.js').HelloPayload} HelloPayload */
/** @typedef {import('./protocol.js').JoinedPayload} JoinedPayload */
/** @typedef {import('./protocol.js').PeerInfo} PeerInfo */
/** @typedef {import('./protocol.js').RoomMode} RoomMode */
/** @typedef {import('./protocol.js').MediaMode} MediaMode */
/** @typedef {import('./protocol.js').PostResult} PostResult */
/** @typedef {import('./transports.js').Transport} Transport */
/** @typedef {import('./transports.js').TransportContext} TransportContext */
/** @typedef {import('./transports.js').TransportEnd} TransportEnd */

/**
 * @typedef {'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed'} ConnectionState
 */

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

/**
 * @typedef {object} StateEvent
 * @property {ConnectionState} state
 * @property {TransportName | null} transport The transport in use or being tried.
 * @property {string | null} session
 * @property {number} [attempt] Reconnect round, from 1.
 * @property {number} [retryInMs] When reconnecting: delay before the next round.
 * @property {string} [reason] Why the state changed.
 * @property {SwitchboardError} [error] The error that caused it, if any.
 */

/**
 * @typedef {{room: string} & JoinedPayload} JoinedEvent
 * @typedef {{room: string} & PeerInfo} PeerJoinedEvent
 * @typedef {{room: string, peer: string, reason: string}} PeerLeftEvent
 * @typedef {{room: string, reason: string, by?: string}} LeftEvent
 * @typedef {{room: string, from: string, payload: any, id?: string}} MessageEvent
 * @typedef {{type: 'offer' | 'answer' | 'candidate' | 'call_start' | 'call_end', room: string, from: string, payload: any}} SignalEvent
 * @typedef {{room: string, mode: RoomMode, by: string}} ModeChangedEvent
 * @typedef {{room: string, media: 'mesh' | 'sfu', media_mode: MediaMode, by?: string}} MediaChangedEvent
 * @typedef {{type: 'track_map' | 'track_published' | 'track_unpublished' | 'track_state' | 'stream_state' | 'layers' | 'speakers', room: string, payload: any}} MediaEvent
 * @typedef {{previous: string | null, session: string}} SessionResetEvent
 */

/**
 * Events of a {@link Client}.
 * @typedef {object} ClientEvents
 * @property {StateEvent} state Connection state or transport changed.
 * @property {HelloPayload} hello A session started or resumed (`resumed`).
 * @property {JoinedEvent} joined This session joined a room (also after a `session_reset`).
 * @property {PeerJoinedEvent} peer_joined
 * @property {PeerLeftEvent} peer_left
 * @property {LeftEvent} left This session left a room (its own `leave`, or kicked).
 * @property {MessageEvent} message App data or chat from a peer.
 * @property {{room: string, ticket: string, name?: string}} knock A guest waits to enter (hosts).
 * @property {{room: string, ticket: string, outcome: string, by?: string}} knock_ended A knock is
 *   over: `admitted`, `denied`, `expired` or `left` (hosts).
 * @property {{room: string, token: string}} admitted This lobby session was let in: `join` now.
 * @property {{room: string, reason: string}} denied This lobby session was turned away:
 *   `denied`, `expired` or `deleted`.
 * @property {{room: string, payload: any}} announcement A message from the server itself to the
 *   room (its owner's `POST /v1/rooms/{room}/messages`).
 * @property {SignalEvent} signal offer, answer, candidate, call_start or call_end from a peer.
 * @property {ModeChangedEvent} mode_changed
 * @property {MediaChangedEvent} media_changed The room's media setting or effective media
 *   changed (`auto` switches between mesh and SFU as members come and go).
 * @property {MediaEvent} media What the SFU tells about the room's tracks (SFU rooms).
 * @property {{room: string, reason: string}} room_closed
 * @property {{room: string, reason: string}} replaced Another session of this user took over.
 * @property {{code: string, message: string}} warning
 * @property {SwitchboardError} error A server `error` no request was waiting for, or a fatal error.
 * @property {SessionResetEvent} session_reset The old session could not be resumed; a new one
 *   started and rooms are being joined again. Peer connections should be rebuilt.
 * @property {ServerMessage} server_message Every server message, after dedupe.
 */

/**
 * @typedef {object} PendingRequest
 * @property {(msg: ServerMessage) => void} resolve
 * @property {(error: SwitchboardError) => void} reject
 * @property {(msg: ServerMessage) => boolean} matches
 * @property {ReturnType<typeof setTimeout>} timer
 * @property {number} seq
 */

const RELAYED = new Set(['offer', 'answer', 'candidate', 'call_start', 'call_end', 'message']);

/** What the SFU tells members besides SDP (docs/protocol.md, "SFU rooms"), emitted as `media`. */
const MEDIA = new Set(['track_map', 'track_published', 'track_unpublished', 'track_state', 'stream_state', 'layers', 'speakers']);

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
    this._lastSeq = 0;
    this._acked = 0;
    this._seq = 0;
    /** Unconfirmed client messages, by increasing seq. @type {ClientMessage[]} */
    this._pending = [];
    /** @type {Map<string, PendingRequest>} */
    this._requests = new Map();
    this._idPrefix = Math.random().toString(36).slice(2, 8);
    this._nextId = 0;
    /** Rooms this session is in or joining, with what to rejoin them with. @type {Map<string, {peer?: string, meta?: any}>} */
    this._rooms = new Map();
    /** @type {string | null} */
    this._token = null;
    /** The room token of a lobby session once a host admitted it. @type {string | null} */
    this._admittedToken = null;
    this._lastHeard = 0;
    /** @type {{id: string, seq: number, at: number} | null} */
    this._ping = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this._ackTimer = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this._liveness = null;
    this._lastCheck = 0;
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
    this._pending.push(msg);
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
    const id = `${this._idPrefix}-${++this._nextId}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._requests.delete(id);
        reject(new SwitchboardError('timeout', `no answer to ${type} within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      let seq = 0;
      try {
        seq = this.send(type, { ...fields, id });
      } catch (error) {
        clearTimeout(timer);
        reject(error);
        return;
      }
      this._requests.set(id, { resolve, reject, matches, timer, seq });
    });
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
    /** @type {ClientMessage} */
    const msg = { type, seq: ++this._seq, ts: this.now() };
    for (const [k, v] of Object.entries(fields)) {
      if (v !== undefined && k !== 'seq' && k !== 'ts' && k !== 'type') {
        /** @type {any} */ (msg)[k] = v;
      }
    }
    return msg;
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
        await transport.start(resume ? { resume, lastSeq: this._lastSeq } : {});
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
      this._lastHeard = this._lastCheck = Date.now();
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
      onPosted: (batch, results) => this._posted(batch, results),
      lastSeq: () => this._lastSeq,
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
    this._ping = null;
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
    for (const [id, request] of this._requests) {
      clearTimeout(request.timer);
      request.reject(error ?? new SwitchboardError('closed', reason));
      this._requests.delete(id);
    }
    this._setState(state, { reason, error });
  }

  /**
   * Every message from the transport.
   * @param {ServerMessage} msg
   */
  _receive(msg) {
    if (this._closed || !msg || typeof msg !== 'object') return;
    this._lastHeard = Date.now();
    if (msg.type === 'hello') {
      this._hello(msg);
      return;
    }
    if (typeof msg.seq === 'number' && msg.seq > 0) {
      if (msg.seq <= this._lastSeq) {
        this.stats.duplicates += 1;
        return;
      }
      this._lastSeq = msg.seq;
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
      this._lastSeq = Math.max(this._lastSeq, msg.seq);
      this._confirm(hello.last_client_seq);
      if (this._seq < hello.last_client_seq) this._seq = hello.last_client_seq;
    } else {
      const previous = this.session;
      this.session = hello.session;
      this._sessionDead = false;
      this._lastSeq = msg.seq;
      this._acked = 0;
      this.stats.sessions += 1;
      if (previous !== null) this._reset(previous, hello.last_client_seq);
    }
    if (hello.peer) this.peer = hello.peer;
    this._resumed = resumed;
    this._connected = true;
    if (this._pending.length > 0) {
      this.stats.resent += resumed ? this._pending.length : 0;
      this._transmit([...this._pending]);
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
    for (const m of this._pending) {
      if (m.type === 'join' && m.room && m.id && this._requests.has(m.id)) joins.set(m.room, m);
    }
    this._pending = [];
    this._seq = lastClientSeq;
    for (const [id, request] of this._requests) {
      if ([...joins.values()].some((m) => m.id === id)) continue;
      clearTimeout(request.timer);
      request.reject(new SwitchboardError('session_reset', 'the session was lost and started over'));
      this._requests.delete(id);
    }
    this.emit('session_reset', { previous, session: /** @type {string} */ (this.session) });
    for (const [room, state] of this._rooms) {
      if (joins.has(room)) continue;
      const payload = {};
      if (state.peer) Object.assign(payload, { peer: state.peer });
      if (state.meta !== undefined) Object.assign(payload, { meta: state.meta });
      this._pending.push(this._make('join', { room, payload }));
    }
    for (const m of joins.values()) {
      const again = this._make('join', { room: m.room, id: m.id, payload: m.payload });
      const request = this._requests.get(/** @type {string} */ (m.id));
      if (request) request.seq = again.seq;
      this._pending.push(again);
    }
  }

  /**
   * Drops unconfirmed messages up to and including `seq`: the server has them.
   * @param {number} seq
   */
  _confirm(seq) {
    if (this._pending.length && this._pending[0].seq <= seq) {
      this._pending = this._pending.filter((m) => m.seq > seq);
    }
  }

  /**
   * @param {ClientMessage[]} batch
   * @param {PostResult[]} results
   */
  _posted(batch, results) {
    // Accepted or refused, each was received (a `duplicate_seq` means an earlier copy was).
    const seqs = new Set(batch.map((m) => m.seq));
    if (Array.isArray(results) && results.length === batch.length) {
      this._pending = this._pending.filter((m) => !seqs.has(m.seq));
    }
  }

  _scheduleAck() {
    if (this.transport?.name === 'poll') return; // `after` acknowledges
    if (this._lastSeq - this._acked >= this.ackEvery) {
      this._sendAck();
    } else if (!this._ackTimer) {
      this._ackTimer = setTimeout(() => this._sendAck(), this.ackDelayMs);
    }
  }

  _sendAck() {
    if (this._ackTimer) clearTimeout(this._ackTimer);
    this._ackTimer = null;
    if (!this._connected || this._lastSeq <= this._acked) return;
    this._acked = this._lastSeq;
    // Not kept for resending: a later ack (or the resume's last_seq) covers a lost one.
    this._transmit([this._make('ack', { payload: { seq: this._lastSeq } })]);
  }

  _checkLiveness() {
    const now = Date.now();
    const late = now - this._lastCheck > 3000; // timers were throttled: judge next time
    this._lastCheck = now;
    if (!this._connected || late) {
      if (late && this._ping) this._ping.at = now;
      return;
    }
    if (this._ping) {
      if (now - this._ping.at > this.pongTimeoutMs) {
        this._ping = null;
        // The run loop sees the transport end and resumes the session.
        this.transport?.abandon('no answer to a ping');
      }
      return;
    }
    // Ping when idle, and when many sent messages wait: a pong confirms everything before it.
    if (now - this._lastHeard >= this.pingIntervalMs || this._pending.length >= 16) this._pingNow();
  }

  /** Sends a ping now, unless one is outstanding; no pong within `pongTimeoutMs` ends the transport. */
  _pingNow() {
    if (!this._connected || this._ping || this._closed) return;
    const id = `${this._idPrefix}-p${++this._nextId}`;
    const ping = this._make('ping', { id });
    this._ping = { id, seq: ping.seq, at: Date.now() };
    this._transmit([ping]);
  }

  /** @param {ServerMessage} msg */
  _dispatch(msg) {
    const room = msg.room ?? '';
    const p = msg.payload ?? {};
    this.emit('server_message', msg);
    // Replies to our requests (relayed messages carry the sender's id, so never match those).
    if (msg.id && !msg.from) {
      if (this._ping && msg.type === 'pong' && msg.id === this._ping.id) {
        this._confirm(this._ping.seq);
        this._ping = null;
      }
      const request = this._requests.get(msg.id);
      if (request && (msg.type === 'error' || request.matches(msg))) {
        this._requests.delete(msg.id);
        clearTimeout(request.timer);
        this._confirm(request.seq);
        if (msg.type === 'error') {
          request.reject(SwitchboardError.fromMessage(msg));
          return; // the request's caller handles it
        }
        request.resolve(msg);
      }
    }
    if (msg.type === 'error' && typeof p.client_seq === 'number') this._confirm(p.client_seq);
    switch (msg.type) {
      case 'joined':
        if (p.peer) this.peer = p.peer;
        if (!this._rooms.has(room)) this._rooms.set(room, { peer: p.peer });
        this.emit('joined', { room, ...p });
        break;
      case 'peer_joined':
        this.emit('peer_joined', { room, ...p });
        break;
      case 'peer_left':
        this.emit('peer_left', { room, peer: p.peer, reason: p.reason });
        break;
      case 'left':
        this._rooms.delete(room);
        this.emit('left', { room, reason: p.reason ?? 'left', by: p.by });
        break;
      case 'mode_changed':
        this.emit('mode_changed', { room, mode: p.mode, by: p.by });
        break;
      case 'media_changed':
        this.emit('media_changed', { room, media: p.media, media_mode: p.media_mode, by: p.by });
        break;
      case 'room_closed':
        this._rooms.delete(room);
        this.emit('room_closed', { room, reason: p.reason });
        break;
      case 'replaced':
        this._rooms.delete(room);
        this.emit('replaced', { room, reason: p.reason });
        break;
      case 'warning':
        this.emit('warning', { code: p.code, message: p.message });
        break;
      case 'error':
        // A duplicate_seq answers a message resent after an unanswered POST: the server had it.
        if (p.code !== 'duplicate_seq') this.emit('error', SwitchboardError.fromMessage(msg));
        break;
      case 'message':
        this.emit('message', { room, from: /** @type {string} */ (msg.from), payload: p, id: msg.id });
        break;
      case 'announcement':
        this.emit('announcement', { room, payload: p });
        break;
      case 'knock':
        this.emit('knock', { room, ticket: p.ticket, name: p.name });
        break;
      case 'knock_ended':
        this.emit('knock_ended', { room, ticket: p.ticket, outcome: p.outcome, by: p.by });
        break;
      case 'admitted':
        this._admittedToken = p.token;
        this.emit('admitted', { room, token: p.token });
        break;
      case 'denied':
        this.emit('denied', { room, reason: p.reason });
        break;
      default:
        if (MEDIA.has(msg.type)) {
          this.emit('media', { type: /** @type {MediaEvent['type']} */ (msg.type), room, payload: p });
        } else if (RELAYED.has(msg.type) && msg.from) {
          this.emit('signal', {
            type: /** @type {SignalEvent['type']} */ (msg.type),
            room,
            from: msg.from,
            payload: p,
          });
        }
    }
  }
}
