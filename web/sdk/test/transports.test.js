// The transports against fake WebSocket, fetch and EventSource.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SwitchboardError } from '../protocol.js';
import { PollTransport, SseTransport, WebSocketTransport, wsCloseMeaning } from '../transports.js';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

function context(overrides = {}) {
  const received = [];
  const posted = [];
  let seq = 0;
  const ctx = {
    baseUrl: 'http://sb.test',
    token: 'tok',
    openTimeoutMs: 500,
    onMessage: (m) => received.push(m),
    onPosted: (batch, results) => posted.push({ batch, results }),
    lastSeq: () => received.reduce((n, m) => Math.max(n, m.seq ?? 0), 0),
    makeMessage: (type, fields = {}) => ({ type, seq: ++seq, ts: Date.now(), ...fields }),
    ...overrides,
  };
  return { ctx, received, posted };
}

class FakeWebSocket {
  static last = null;
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeWebSocket.last = this;
  }
  open() {
    this.readyState = 1;
  }
  frame(msg) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close(code) {
    this.closedWith = code ?? 1005;
    this.readyState = 3;
  }
  serverClose(code, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const hello = (seq = 1) => ({ type: 'hello', seq, ts: Date.now(), payload: { session: 'S1', last_client_seq: 0 } });

test('WebSocket: resolves on hello, forwards messages, maps close codes', async () => {
  const { ctx, received } = context({ WebSocket: FakeWebSocket });
  const t = new WebSocketTransport(ctx);
  const started = t.start({ resume: 'S0', lastSeq: 7 });
  const ws = FakeWebSocket.last;
  assert.equal(ws.url, 'ws://sb.test/v1/ws?token=tok&resume=S0&last_seq=7');
  ws.open();
  ws.frame(hello(8));
  await started;
  ws.frame({ type: 'pong', seq: 9 });
  assert.deepEqual(received.map((m) => m.type), ['hello', 'pong']);
  t.send([{ type: 'ping', seq: 1, ts: 0 }]);
  assert.equal(ws.sent[0].type, 'ping');
  ws.serverClose(4001, 'replaced');
  assert.deepEqual(await t.closed, { code: 'replaced', message: 'replaced', wsCode: 4001 });
});

test('WebSocket: a refused resume rejects with the error code', async () => {
  const { ctx } = context({ WebSocket: FakeWebSocket });
  const t = new WebSocketTransport(ctx);
  const started = t.start({ resume: 'S0', lastSeq: 1 });
  const ws = FakeWebSocket.last;
  ws.open();
  ws.frame({ type: 'error', seq: 0, ts: 0, payload: { code: 'session_expired', message: 'gone' } });
  ws.serverClose(4004);
  await assert.rejects(started, (e) => e instanceof SwitchboardError && e.code === 'session_expired');
});

test('WebSocket: a failed upgrade is diagnosed over HTTP', async () => {
  for (const [answer, code] of [
    [() => new Response(JSON.stringify({ error: { code: 'unauthorized', message: 'token expired' } }), { status: 401 }), 'unauthorized'],
    [() => new Response('{}', { status: 400 }), 'transport_failed'],
    [() => Promise.reject(new TypeError('fetch failed')), 'unreachable'],
  ]) {
    const urls = [];
    const { ctx } = context({
      WebSocket: FakeWebSocket,
      fetch: async (url) => {
        urls.push(url);
        return answer();
      },
    });
    const t = new WebSocketTransport(ctx);
    const started = t.start({});
    FakeWebSocket.last.serverClose(1006);
    await assert.rejects(started, (e) => e.code === code);
    assert.equal(urls[0], 'http://sb.test/v1/ws?token=tok');
  }
});

test('WebSocket: no hello in time is a timeout; giving up leaves an open socket to the server', async () => {
  const { ctx } = context({ WebSocket: FakeWebSocket, openTimeoutMs: 20 });
  const t = new WebSocketTransport(ctx);
  const started = t.start({});
  await assert.rejects(started, (e) => e.code === 'timeout');

  const second = new WebSocketTransport(context({ WebSocket: FakeWebSocket }).ctx);
  const ok = second.start({});
  const ws = FakeWebSocket.last;
  ws.open();
  ws.frame(hello());
  await ok;
  second.abandon('no pong');
  assert.equal((await second.closed).code, 'lost');
  assert.equal(ws.closedWith, undefined, 'no close frame: that would end the session');
});

test('close codes', () => {
  assert.equal(wsCloseMeaning(4001), 'replaced');
  for (const c of [4004, 4005, 1001]) assert.equal(wsCloseMeaning(c), 'session_ended');
  for (const c of [1000, 1006, 4002, 4003, 4006, 1008]) assert.equal(wsCloseMeaning(c), 'lost');
});

/** A fake server for the HTTP transports. */
function httpServer() {
  const requests = [];
  let pollWaiters = [];
  const queue = [];
  const respond = () => {
    if (queue.length && pollWaiters.length) {
      const waiter = pollWaiters.shift();
      waiter(new Response(JSON.stringify(queue.splice(0))));
    }
  };
  const fetch = async (url, init = {}) => {
    const u = new URL(url);
    requests.push({ method: init.method ?? 'GET', path: u.pathname, query: Object.fromEntries(u.searchParams), body: init.body });
    if (u.pathname === '/v1/sessions') {
      return new Response(JSON.stringify({ session: 'S1', hello: hello() }));
    }
    if (u.pathname.endsWith('/messages')) {
      const batch = JSON.parse(init.body);
      for (const m of batch) if (m.type === 'ping') queue.push({ type: 'pong', seq: 100 + m.seq, ts: 0, id: m.id, payload: {} });
      respond();
      return new Response(JSON.stringify(batch.map(() => ({ accepted: true }))));
    }
    if (u.pathname.endsWith('/poll')) {
      return new Promise((resolve, reject) => {
        pollWaiters.push(resolve);
        init.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
        respond();
      });
    }
    return new Response('{}', { status: 404 });
  };
  return { fetch, requests, push: (m) => (queue.push(m), respond()) };
}

test('long-poll: creates the session, proves the stream with a ping, posts in order', async () => {
  const server = httpServer();
  const { ctx, received, posted } = context({ fetch: server.fetch });
  const t = new PollTransport(ctx);
  await t.start({ resume: 'S0', lastSeq: 4 });
  const create = server.requests[0];
  assert.deepEqual(create.query, { token: 'tok', resume: 'S0', last_seq: '4' });
  assert.deepEqual(received.map((m) => m.type), ['hello', 'pong']);
  t.send([{ type: 'message', room: 'r', seq: 10, ts: 0, payload: {} }]);
  t.send([{ type: 'message', room: 'r', seq: 11, ts: 0, payload: {} }]);
  await tick(5);
  const bodies = server.requests.filter((r) => r.path.endsWith('/messages')).map((r) => JSON.parse(r.body).map((m) => m.seq));
  assert.deepEqual(bodies.at(-1), [10, 11], 'messages of one task go in one POST');
  assert.equal(posted.at(-1).results.length, 2);
  server.push({ type: 'message', seq: 200, ts: 0, payload: { n: 1 } });
  await tick(5);
  assert.equal(received.at(-1).seq, 200);
  const polls = server.requests.filter((r) => r.path.endsWith('/poll'));
  assert.equal(polls.at(-1).query.after, '200', 'after acknowledges what arrived');
  t.close();
  assert.equal((await t.closed).code, 'closed');
});

test('SSE: the stream opens at the hello seq and a refused stream fails the start', async () => {
  const server = httpServer();
  class FakeEventSource {
    static last = null;
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      FakeEventSource.last = this;
      setTimeout(() => {
        if (this.readyState !== 0) return;
        this.readyState = 1;
        this.onopen?.();
      }, 5);
    }
    close() {
      this.readyState = 2;
    }
  }
  const origFetch = server.fetch;
  const fetch = async (url, init) => {
    const res = await origFetch(url, init);
    // Deliver the probe's pong on the event stream instead of a poll.
    if (String(url).includes('/messages')) {
      for (const m of JSON.parse(init.body)) {
        if (m.type === 'ping') setTimeout(() => FakeEventSource.last.onmessage?.({ data: JSON.stringify({ type: 'pong', seq: 2, ts: 0, id: m.id }) }), 1);
      }
    }
    return res;
  };
  const { ctx, received } = context({ fetch, EventSource: FakeEventSource });
  const t = new SseTransport(ctx);
  await t.start({});
  assert.match(FakeEventSource.last.url, /\/v1\/sessions\/S1\/events\?token=tok&last_seq=1$/);
  assert.deepEqual(received.map((m) => m.type), ['hello', 'pong']);
  FakeEventSource.last.readyState = 2;
  FakeEventSource.last.onerror?.();
  assert.equal((await t.closed).code, 'lost');

  class Refused extends FakeEventSource {
    constructor(url) {
      super(url);
      this.onopen = null;
      setTimeout(() => {
        this.readyState = 2;
        this.onerror?.();
      }, 0);
    }
  }
  const refused = new SseTransport(context({ fetch, EventSource: Refused }).ctx);
  await assert.rejects(refused.start({}), (e) => e.code === 'transport_failed');
});
