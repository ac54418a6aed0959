// @ts-check
/**
 * The three transports: WebSocket, server-sent events + POST, and long-poll + POST. Each carries
 * the same JSON messages; each only moves messages. Sequencing, dedupe, acks, resume and fallback
 * live in the client (client.js), which drives a transport through this interface:
 *
 * - `start({resume, lastSeq})` resolves once the transport is established: the server's `hello`
 *   was handed to `ctx.onMessage`, and (for SSE and long-poll) a ping went up and its pong came back
 *   down the stream, which proves a proxy is not swallowing it. It rejects with a
 *   {@link SwitchboardError} (`unauthorized`, `session_expired`, `transport_failed`, ...).
 * - `closed` resolves once, when an established transport ends, with why.
 * - `send(messages)` transmits; for SSE and long-poll it POSTs (serialized, batched) and reports
 *   per-message results through `ctx.onPosted`.
 * - `close(final)` ends it; with `final` it flushes what is queued (for a last `leave`).
 */

import { SwitchboardError, errorFromResponse } from './protocol.js';

/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').ClientMessage} ClientMessage */
/** @typedef {import('./protocol.js').PostResult} PostResult */
/** @typedef {import('./protocol.js').TransportName} TransportName */

/**
 * What a transport needs from the client.
 * @typedef {object} TransportContext
 * @property {string} baseUrl HTTP(S) base of the server, without a trailing slash.
 * @property {string} token The JWT.
 * @property {(msg: ServerMessage) => void} onMessage Every message received, in order.
 * @property {(batch: ClientMessage[], results: PostResult[]) => void} onPosted Results of a POST.
 * @property {() => number} lastSeq The highest server seq the client received.
 * @property {(type: string, fields?: Partial<ClientMessage>) => ClientMessage} makeMessage A message
 *   with the next client seq and a server-clock `ts` (for the probe ping).
 * @property {number} openTimeoutMs How long `start` may take.
 * @property {typeof WebSocket} [WebSocket]
 * @property {typeof EventSource} [EventSource]
 * @property {typeof fetch} [fetch]
 */

/**
 * Why an established transport ended.
 * @typedef {object} TransportEnd
 * @property {string} code `lost` (resume), `session_ended` (start a new session), `replaced`
 *   (another session of this user took over: stop), `unauthorized`, or `closed` (by the client).
 * @property {string} message
 * @property {number} [wsCode] The WebSocket close code, on WebSocket.
 */

/**
 * @typedef {object} Transport
 * @property {TransportName} name
 * @property {(options: {resume?: string, lastSeq?: number}) => Promise<void>} start
 * @property {Promise<TransportEnd>} closed
 * @property {(messages: ClientMessage[]) => void} send
 * @property {(final?: boolean) => void} close
 * @property {(message: string) => void} abandon Ends an established transport as lost.
 * @property {(messages: ClientMessage[]) => void} [sendFinal]
 */

/**
 * Encodes query parameters, leaving out undefined ones.
 * @param {Record<string, string | number | undefined>} params
 */
function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  return q.toString();
}

/**
 * What a WebSocket close code means for the session (docs/protocol.md, "How a session ends").
 * @param {number} code
 * @returns {string}
 */
export function wsCloseMeaning(code) {
  switch (code) {
    case 4001:
      return 'replaced';
    case 4004: // expired / resume refused
    case 4005: // outbox overflow
    case 1001: // server shutdown
      return 'session_ended';
    case 4006: // the node let the session go (draining, or cut off from its cluster)
      return 'lost'; // resume it: any node of the cluster takes it
    default:
      return 'lost'; // 1000 (server dropped us), 1006, 1008, 1009, 4002, 4003
  }
}

/**
 * @param {number} ms
 * @param {string} what
 */
function timeoutError(ms, what) {
  return new SwitchboardError('timeout', `${what} did not complete within ${ms} ms`);
}

/** Base of the three: the `closed` promise and the once-only end. */
class Base {
  /** @param {TransportContext} ctx */
  constructor(ctx) {
    /** @type {TransportName} */
    this.name = 'ws';
    this.ctx = ctx;
    /** @type {(end: TransportEnd) => void} */
    this._resolveClosed = () => {};
    /** @type {Promise<TransportEnd>} */
    this.closed = new Promise((resolve) => {
      this._resolveClosed = resolve;
    });
    this.ended = false;
    this.established = false;
  }

  /** @param {TransportEnd} end */
  _end(end) {
    if (this.ended) return;
    this.ended = true;
    this._teardown();
    this._resolveClosed(end);
  }

  /**
   * Gives up on an established transport that stopped answering; `closed` reports it as lost.
   * @param {string} message
   */
  abandon(message) {
    this._end({ code: 'lost', message });
  }

  /** Releases sockets and timers; subclasses override. */
  _teardown() {}

  get _fetch() {
    return this.ctx.fetch ?? globalThis.fetch.bind(globalThis);
  }
}

/** WebSocket: `GET /v1/ws?token=..[&resume=S&last_seq=N]`. */
export class WebSocketTransport extends Base {
  /** @param {TransportContext} ctx */
  constructor(ctx) {
    super(ctx);
    /** @type {TransportName} */
    this.name = 'ws';
    /** @type {WebSocket | null} */
    this.ws = null;
  }

  /** @param {{resume?: string, lastSeq?: number}} options */
  start({ resume, lastSeq } = {}) {
    const { ctx } = this;
    const WS = ctx.WebSocket ?? globalThis.WebSocket;
    const base = ctx.baseUrl.replace(/^http/, 'ws');
    const params = resume
      ? { token: ctx.token, resume, last_seq: lastSeq ?? 0 }
      : { token: ctx.token };
    const url = `${base}/v1/ws?${query(params)}`;
    return new Promise((resolve, reject) => {
      /** @type {SwitchboardError | null} */
      let refusal = null;
      let settled = false;
      /** @param {SwitchboardError} error */
      const fail = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.ended = true;
        this._teardown();
        reject(error);
      };
      const timer = setTimeout(
        () => fail(timeoutError(ctx.openTimeoutMs, 'WebSocket hello')),
        ctx.openTimeoutMs,
      );
      let ws;
      try {
        ws = new WS(url);
      } catch (e) {
        fail(new SwitchboardError('transport_failed', `WebSocket: ${e}`));
        return;
      }
      this.ws = ws;
      ws.onmessage = (event) => {
        /** @type {ServerMessage} */
        let msg;
        try {
          msg = JSON.parse(String(event.data));
        } catch {
          return;
        }
        if (!this.established) {
          if (msg.type === 'hello') {
            this.established = true;
            settled = true;
            clearTimeout(timer);
            ctx.onMessage(msg);
            resolve(undefined);
          } else if (msg.type === 'error' && msg.seq === 0) {
            refusal = SwitchboardError.fromMessage(msg);
          }
          return;
        }
        ctx.onMessage(msg);
      };
      ws.onerror = () => {
        // A close event follows.
      };
      ws.onclose = (event) => {
        if (!this.established) {
          if (refusal) return fail(refusal);
          // The browser hides why an upgrade failed; ask the same URL over plain HTTP, which the
          // server answers with its reason (401 for the token, 503 when draining, 400 otherwise).
          this._diagnose(url.replace(/^ws/, 'http')).then(fail);
          return;
        }
        this._end({
          code: wsCloseMeaning(event.code),
          message: event.reason || `WebSocket closed (${event.code})`,
          wsCode: event.code,
        });
      };
    });
  }

  /**
   * Why an upgrade failed: `unauthorized`, `unavailable` or `rate_limited` from the server,
   * `unreachable` when nothing answers, else `transport_failed` (WebSocket blocked on the way).
   * @param {string} httpUrl
   * @returns {Promise<SwitchboardError>}
   */
  async _diagnose(httpUrl) {
    try {
      const response = await this._fetch(httpUrl, {
        signal: AbortSignal.timeout(this.ctx.openTimeoutMs),
        cache: 'no-store',
      });
      if ([401, 429, 503].includes(response.status)) return errorFromResponse(response);
      return new SwitchboardError('transport_failed', 'WebSocket connection failed (blocked?)');
    } catch {
      return new SwitchboardError('unreachable', 'the server cannot be reached');
    }
  }

  /** @param {ClientMessage[]} messages */
  send(messages) {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return; // stays unconfirmed; resent after resume
    for (const m of messages) ws.send(JSON.stringify(m));
  }

  /** @param {boolean} [final] */
  close(final = false) {
    if (final && this.ws && this.ws.readyState === 1) this.ws.close(1000, 'bye');
    this._end({ code: 'closed', message: 'closed by the client' });
  }

  _teardown() {
    const ws = this.ws;
    if (!ws) return;
    ws.onmessage = ws.onclose = ws.onerror = null;
    // An open socket given up on (no pong in time) is left alone: a close frame would end the
    // session on the server, while the resume that follows makes the server close it (4002).
    if (ws.readyState === 0) ws.close();
  }
}

/**
 * What SSE and long-poll share: the session is created (or resumed) by `POST /v1/sessions`, and
 * client messages are POSTed, one request at a time, in order, batched.
 */
class HttpBase extends Base {
  /** @param {TransportContext} ctx */
  constructor(ctx) {
    super(ctx);
    /** @type {string | null} */
    this.session = null;
    /** @type {ClientMessage[]} */
    this.queue = [];
    this.posting = false;
    this.abort = new AbortController();
    /** @type {string | null} */
    this.probeId = null;
    /** @type {() => void} */
    this.probeDone = () => {};
  }

  /** @param {{resume?: string, lastSeq?: number}} options */
  async _create({ resume, lastSeq }) {
    const params = resume
      ? { token: this.ctx.token, resume, last_seq: lastSeq ?? 0 }
      : { token: this.ctx.token };
    let response;
    try {
      response = await this._fetch(`${this.ctx.baseUrl}/v1/sessions?${query(params)}`, {
        method: 'POST',
        signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.ctx.openTimeoutMs)]),
        cache: 'no-store',
      });
    } catch {
      throw new SwitchboardError('unreachable', 'the server cannot be reached');
    }
    if (!response.ok) throw await errorFromResponse(response);
    const body = await response.json();
    this.session = String(body.session);
    this.ctx.onMessage(body.hello);
  }

  /** The URL of this session's endpoint `what` (`events`, `poll`, `messages`). */
  _url(/** @type {string} */ what, /** @type {Record<string, string | number | undefined>} */ extra = {}) {
    const id = encodeURIComponent(String(this.session));
    return `${this.ctx.baseUrl}/v1/sessions/${id}/${what}?${query({ token: this.ctx.token, ...extra })}`;
  }

  /**
   * Sends a ping and waits until its pong arrives on the stream (see `_seen`).
   * @returns {Promise<void>}
   */
  _probe() {
    const ping = this.ctx.makeMessage('ping', { id: `probe-${Math.random().toString(36).slice(2)}` });
    this.probeId = ping.id ?? null;
    const done = new Promise((resolve) => {
      this.probeDone = () => resolve(undefined);
    });
    this.send([ping]);
    return done;
  }

  /**
   * Hands a received message on, noticing the probe's pong.
   * @param {ServerMessage} msg
   */
  _seen(msg) {
    if (this.probeId && msg.type === 'pong' && msg.id === this.probeId) {
      this.probeId = null;
      this.probeDone();
    }
    this.ctx.onMessage(msg);
  }

  /**
   * Runs `established` with the open timeout; a failure tears the transport down.
   * @param {() => Promise<void>} steps
   */
  async _establish(steps) {
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(timeoutError(this.ctx.openTimeoutMs, `${this.name} stream`)),
        this.ctx.openTimeoutMs,
      );
    });
    // A stream that dies while being established fails the start at once.
    const died = this.closed.then((end) => {
      throw new SwitchboardError('transport_failed', end.message);
    });
    try {
      await Promise.race([steps(), timeout, died]);
      this.established = true;
    } catch (error) {
      this.ended = true;
      this._teardown();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** @param {ClientMessage[]} messages */
  send(messages) {
    if (this.ended) return;
    this.queue.push(...messages);
    if (!this.posting) {
      this.posting = true;
      // Messages sent in the same task go out in one POST.
      queueMicrotask(() => this._flush());
    }
  }

  async _flush() {
    while (this.queue.length > 0 && !this.ended) {
      const batch = this.queue.splice(0, 64);
      let response;
      try {
        response = await this._fetch(this._url('messages'), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(batch),
          signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(15000)]),
          cache: 'no-store',
        });
      } catch {
        this._end({ code: 'lost', message: 'a POST of messages failed' });
        return;
      }
      if (!response.ok) {
        const error = await errorFromResponse(response);
        this._end(httpEnd(error));
        return;
      }
      /** @type {PostResult[]} */
      let results;
      try {
        results = await response.json();
      } catch {
        this._end({ code: 'lost', message: 'a POST answer was cut off' });
        return;
      }
      this.ctx.onPosted(batch, results);
    }
    this.posting = false;
  }

  /**
   * Sends messages with `keepalive`, so they still leave while the page unloads.
   * @param {ClientMessage[]} messages
   */
  sendFinal(messages) {
    if (!this.session || messages.length === 0) return;
    try {
      void this._fetch(this._url('messages'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([...this.queue, ...messages]),
        keepalive: true,
      }).catch(() => {});
      this.queue = [];
    } catch {
      // unloading
    }
  }

  close() {
    this._end({ code: 'closed', message: 'closed by the client' });
  }

  _teardown() {
    this.abort.abort();
  }
}

/**
 * How a failed HTTP answer ends a transport.
 * @param {SwitchboardError} error
 * @returns {TransportEnd}
 */
function httpEnd(error) {
  switch (error.code) {
    case 'session_expired':
    case 'not_found':
      return { code: 'session_ended', message: error.message };
    case 'unauthorized':
      return { code: 'unauthorized', message: error.message };
    default:
      return { code: 'lost', message: error.message };
  }
}

/**
 * Server-sent events: `GET /v1/sessions/{id}/events?token=..&last_seq=N`. The browser's
 * EventSource reconnects by itself (with `Last-Event-ID`) when the server ends a stream at its
 * lifetime cap; a stream that the browser gives up on ends the transport.
 */
export class SseTransport extends HttpBase {
  /** @param {TransportContext} ctx */
  constructor(ctx) {
    super(ctx);
    /** @type {TransportName} */
    this.name = 'sse';
    /** @type {EventSource | null} */
    this.source = null;
  }

  /** @param {{resume?: string, lastSeq?: number}} options */
  start(options = {}) {
    return this._establish(async () => {
      await this._create(options);
      const ES = this.ctx.EventSource ?? globalThis.EventSource;
      const source = new ES(this._url('events', { last_seq: this.ctx.lastSeq() }));
      this.source = source;
      await new Promise((resolve, reject) => {
        source.onopen = () => resolve(undefined);
        source.onerror = () => {
          if (source.readyState === 2) {
            reject(new SwitchboardError('transport_failed', 'the event stream was refused'));
          }
        };
        source.onmessage = (event) => this._onEvent(event);
      });
      source.onerror = () => {
        // CONNECTING: the browser retries by itself (the client's liveness check bounds how long).
        if (source.readyState === 2) this._end({ code: 'lost', message: 'the event stream failed' });
      };
      await this._probe();
    });
  }

  /** @param {MessageEvent} event */
  _onEvent(event) {
    /** @type {ServerMessage} */
    let msg;
    try {
      msg = JSON.parse(String(event.data));
    } catch {
      return;
    }
    this._seen(msg);
  }

  _teardown() {
    super._teardown();
    if (this.source) {
      this.source.onmessage = this.source.onerror = this.source.onopen = null;
      this.source.close();
    }
  }
}

/**
 * Long-poll: `GET /v1/sessions/{id}/poll?token=..&after=N`, again and again. `after` acknowledges
 * what the client has, so the client sends no `ack` on this transport.
 */
export class PollTransport extends HttpBase {
  /** @param {TransportContext} ctx */
  constructor(ctx) {
    super(ctx);
    /** @type {TransportName} */
    this.name = 'poll';
  }

  /** @param {{resume?: string, lastSeq?: number}} options */
  start(options = {}) {
    return this._establish(async () => {
      await this._create(options);
      void this._loop();
      await this._probe();
    });
  }

  async _loop() {
    while (!this.ended) {
      let response;
      try {
        response = await this._fetch(this._url('poll', { after: this.ctx.lastSeq() }), {
          signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(45000)]),
          cache: 'no-store',
        });
      } catch {
        this._end({ code: 'lost', message: 'a poll failed' });
        return;
      }
      if (!response.ok) {
        this._end(httpEnd(await errorFromResponse(response)));
        return;
      }
      /** @type {ServerMessage[]} */
      let messages;
      try {
        messages = await response.json();
      } catch {
        this._end({ code: 'lost', message: 'a poll answer was cut off' });
        return;
      }
      if (this.ended) return;
      for (const msg of messages) this._seen(msg);
    }
  }
}

/** @type {Record<TransportName, new (ctx: TransportContext) => Transport>} */
export const TRANSPORTS = {
  ws: WebSocketTransport,
  sse: SseTransport,
  poll: PollTransport,
};
