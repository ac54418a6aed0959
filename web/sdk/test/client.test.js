// The client's logic against scripted transports: seq dedupe, acks, resend after resume, session
// reset, fallback between transports, requests.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client } from '../client.js';
import { SwitchboardError } from '../protocol.js';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** Scripted transports: each instance records what it is asked and waits to be told what happens. */
function harness() {
  /** @type {any[]} */
  const instances = [];
  const make = (name) =>
    class Fake {
      constructor(ctx) {
        this.name = name;
        this.ctx = ctx;
        this.sent = [];
        this.ended = false;
        this.closed = new Promise((r) => (this._close = r));
        instances.push(this);
      }
      start(options) {
        this.options = options;
        return new Promise((resolve, reject) => {
          this._resolve = resolve;
          this._reject = reject;
        });
      }
      hello({ session = 'S1', seq = 1, last = 0, ts = Date.now(), peer } = {}) {
        this.ctx.onMessage({
          type: 'hello',
          seq,
          ts,
          payload: { session, peer, heartbeat_ms: 15000, resume_ms: 30000, limits: {}, last_client_seq: last },
        });
        this._resolve();
      }
      fail(code) {
        this._reject(new SwitchboardError(code, code));
      }
      deliver(msg) {
        this.ctx.onMessage({ ts: Date.now(), payload: {}, ...msg });
      }
      drop(code = 'lost') {
        this._close({ code, message: 'dropped' });
      }
      send(messages) {
        this.sent.push(...messages.map((m) => structuredClone(m)));
      }
      close() {
        this._close({ code: 'closed', message: 'closed' });
      }
      abandon(message) {
        this._close({ code: 'lost', message });
      }
    };
  const transportClasses = { ws: make('ws'), sse: make('sse'), poll: make('poll') };
  const client = (options = {}) =>
    new Client({
      url: 'http://switchboard.test',
      token: 't0ken',
      transportClasses,
      backoff: { initialMs: 5, maxMs: 10 },
      ackDelayMs: 20,
      ...options,
    });
  /** The n-th transport started, once it exists. */
  const nth = async (n) => {
    for (let i = 0; i < 200 && !instances[n]?.options; i++) await tick(1);
    assert.ok(instances[n], `transport #${n} was never started`);
    return instances[n];
  };
  return { instances, client, nth };
}

test('connects over WebSocket first and reports the state', async () => {
  const h = harness();
  const c = h.client();
  const states = [];
  c.on('state', (e) => states.push(`${e.state}:${e.transport}`));
  const connected = c.connect();
  (await h.nth(0)).hello({ session: 'S1' });
  await connected;
  assert.equal(c.session, 'S1');
  assert.equal(c.transportName, 'ws');
  assert.deepEqual(states, ['connecting:ws', 'connected:ws']);
  c.close();
});

test('duplicates and replays below the last seq are dropped', async () => {
  const h = harness();
  const c = h.client();
  const got = [];
  c.on('message', (m) => got.push(m.payload.n));
  const connected = c.connect();
  const t = await h.nth(0);
  t.hello();
  await connected;
  for (const seq of [2, 3, 3, 2, 4]) {
    t.deliver({ type: 'message', room: 'r', seq, from: 'p', payload: { n: seq } });
  }
  assert.deepEqual(got, [2, 3, 4]);
  assert.equal(c.stats.duplicates, 2);
  c.close();
});

test('acknowledges after a batch and after a pause', async () => {
  const h = harness();
  const c = h.client({ ackEvery: 32 });
  const connected = c.connect();
  const t = await h.nth(0);
  t.hello();
  await connected;
  for (let seq = 2; seq <= 40; seq++) t.deliver({ type: 'pong', seq });
  const acks = () => t.sent.filter((m) => m.type === 'ack').map((m) => m.payload.seq);
  assert.deepEqual(acks(), [32]);
  await tick(60);
  assert.deepEqual(acks(), [32, 40]);
  c.close();
});

test('after a resume only the messages the server did not get are sent again, in order', async () => {
  const h = harness();
  const c = h.client();
  const connected = c.connect();
  const first = await h.nth(0);
  first.hello({ session: 'S1' });
  await connected;
  first.deliver({ type: 'pong', seq: 2 });
  const seqs = [1, 2, 3].map((n) => c.sendMessage('r', { n }));
  assert.deepEqual(seqs, [1, 2, 3]);
  first.drop();
  const second = await h.nth(1);
  assert.deepEqual(second.options, { resume: 'S1', lastSeq: 2 });
  const resumed = new Promise((r) => c.once('hello', r));
  second.hello({ session: 'S1', seq: 3, last: 1 });
  assert.equal((await resumed).resumed, true);
  assert.deepEqual(
    second.sent.filter((m) => m.type === 'message').map((m) => [m.seq, m.payload.n]),
    [
      [2, 2],
      [3, 3],
    ],
  );
  // New messages continue above.
  assert.equal(c.sendMessage('r', { n: 4 }), 4);
  assert.equal(c.stats.resumes, 1);
  c.close();
});

test('messages sent while disconnected go out after the resume', async () => {
  const h = harness();
  const c = h.client();
  const connected = c.connect();
  const first = await h.nth(0);
  first.hello();
  await connected;
  first.drop();
  c.sendMessage('r', { text: 'while away' });
  const second = await h.nth(1);
  second.hello({ session: 'S1', seq: 2, last: 0 });
  await tick();
  assert.deepEqual(second.sent.map((m) => m.payload?.text), ['while away']);
  c.close();
});

test('a pong confirms what was sent before its ping; POST results confirm each message', async () => {
  const h = harness();
  const c = h.client();
  const connected = c.connect();
  const t = await h.nth(0);
  t.hello();
  await connected;
  c.sendMessage('r', { n: 1 });
  c.sendMessage('r', { n: 2 });
  c._pingNow();
  const ping = t.sent.find((m) => m.type === 'ping');
  c.sendMessage('r', { n: 3 });
  t.deliver({ type: 'pong', seq: 2, id: ping.id });
  assert.deepEqual(c._seqs.pending.map((m) => m.payload?.n), [3]);
  c.ctx = null;
  const [m3] = c._seqs.pending;
  t.ctx.onPosted([m3], [{ accepted: false, error: { code: 'forbidden', message: 'no' } }]);
  assert.equal(c._seqs.pending.length, 0);
  c.close();
});

test('the clock offset from hello stamps ts', async () => {
  const h = harness();
  const c = h.client();
  const connected = c.connect();
  const t = await h.nth(0);
  t.hello({ ts: Date.now() + 120_000 });
  await connected;
  c.sendMessage('r', {});
  const sent = t.sent.at(-1);
  assert.ok(Math.abs(sent.ts - (Date.now() + 120_000)) < 1000, `${sent.ts}`);
  c.close();
});

test('join resolves with joined, rejects with the error; relayed ids never match', async () => {
  const h = harness();
  const c = h.client();
  const connected = c.connect();
  const t = await h.nth(0);
  t.hello();
  await connected;
  const joining = c.join('r1', { peer: 'me' });
  const join = t.sent.find((m) => m.type === 'join');
  assert.deepEqual(join.payload, { peer: 'me' });
  // Another peer's relayed message with the same id is not the answer.
  t.deliver({ type: 'message', room: 'r1', seq: 2, from: 'other', id: join.id });
  t.deliver({ type: 'joined', room: 'r1', seq: 3, id: join.id, payload: { peer: 'me', role: 'guest', mode: 'free_for_all', peers: [], ice_servers: [] } });
  assert.equal((await joining).peer, 'me');
  assert.equal(c.peer, 'me');
  const full = c.join('r2');
  const join2 = t.sent.filter((m) => m.type === 'join')[1];
  t.deliver({ type: 'error', room: 'r2', seq: 4, id: join2.id, payload: { code: 'room_full', message: 'room `r2` is full (2 peers)' } });
  await assert.rejects(full, (e) => e instanceof SwitchboardError && e.code === 'room_full');
  c.close();
});

test('a lobby guest knocks, is admitted and reconnects with its room token; a host decides', async () => {
  const h = harness();
  const guest = h.client({ token: 'lobby-token' });
  const connected = guest.connect();
  const t = await h.nth(0);
  assert.equal(t.ctx.token, 'lobby-token');
  t.hello();
  await connected;
  const knocking = guest.knock('r1');
  const knock = t.sent.find((m) => m.type === 'knock');
  assert.equal(knock.room, 'r1');
  t.deliver({ type: 'knocking', room: 'r1', seq: 2, id: knock.id, payload: { ticket: 'T1', expires_ms: 300000 } });
  assert.deepEqual(await knocking, { ticket: 'T1', expires_ms: 300000 });
  /** @type {any[]} */
  const events = [];
  guest.on('admitted', (e) => events.push(e));
  t.deliver({ type: 'admitted', room: 'r1', seq: 3, payload: { token: 'room-token' } });
  assert.deepEqual(events, [{ room: 'r1', token: 'room-token' }]);
  t.drop();
  const t2 = await h.nth(1);
  assert.equal(t2.ctx.token, 'room-token', 'reconnects as the member it now is');
  guest.close();

  const host = h.client();
  const hostConnected = host.connect();
  const ht = await h.nth(2);
  ht.hello({ session: 'S2' });
  await hostConnected;
  /** @type {any[]} */
  const knocks = [];
  host.on('knock', (e) => knocks.push(e));
  host.on('knock_ended', (e) => knocks.push(e));
  ht.deliver({ type: 'knock', room: 'r1', seq: 2, payload: { ticket: 'T2', name: 'Gus' } });
  const denying = host.deny('r1', 'T2');
  const deny = ht.sent.find((m) => m.type === 'deny');
  assert.deepEqual(deny.payload, { ticket: 'T2' });
  ht.deliver({ type: 'knock_ended', room: 'r1', seq: 3, id: deny.id, payload: { ticket: 'T2', outcome: 'denied', by: 'me' } });
  await denying;
  assert.deepEqual(knocks, [
    { room: 'r1', ticket: 'T2', name: 'Gus' },
    { room: 'r1', ticket: 'T2', outcome: 'denied', by: 'me' },
  ]);
  host.close();
});

test('a session that cannot be resumed is replaced by a new one that joins its rooms again', async () => {
  const h = harness();
  const c = h.client();
  const connected = c.connect();
  const first = await h.nth(0);
  first.hello({ session: 'S1' });
  await connected;
  const joining = c.join('r1', { meta: { name: 'Ann' } });
  const join = first.sent.find((m) => m.type === 'join');
  first.deliver({ type: 'joined', room: 'r1', seq: 2, id: join.id, payload: { peer: 'ann', role: 'host', mode: 'free_for_all', peers: [], ice_servers: [] } });
  await joining;
  c.sendMessage('r1', { stale: true });
  const resets = [];
  c.on('session_reset', (e) => resets.push(e));
  first.drop();
  const second = await h.nth(1);
  assert.equal(second.options.resume, 'S1');
  second.fail('session_expired');
  const third = await h.nth(2);
  assert.equal(third.name, 'ws', 'a refused resume retries the same transport with a new session');
  assert.deepEqual(third.options, {});
  third.hello({ session: 'S2' });
  await tick();
  assert.deepEqual(resets, [{ previous: 'S1', session: 'S2' }]);
  assert.deepEqual(
    third.sent.map((m) => [m.type, m.seq, m.room, m.payload]),
    [['join', 1, 'r1', { peer: 'ann', meta: { name: 'Ann' } }]],
    'only the join is sent, renumbered from 1; the old message is dropped',
  );
  c.close();
});

test('falls back to SSE, then long-poll, and keeps to what worked', async () => {
  const h = harness();
  const c = h.client();
  const connected = c.connect();
  (await h.nth(0)).fail('transport_failed');
  const sse = await h.nth(1);
  assert.equal(sse.name, 'sse');
  sse.fail('timeout');
  const poll = await h.nth(2);
  assert.equal(poll.name, 'poll');
  poll.hello();
  await connected;
  assert.equal(c.transportName, 'poll');
  poll.drop();
  const again = await h.nth(3);
  assert.equal(again.name, 'poll', 'reconnects on the transport that worked');
  again.hello({ seq: 2 });
  c.close();
});

test('an unreachable server waits with backoff instead of trying the other transports', async () => {
  const h = harness();
  const c = h.client();
  const states = [];
  c.on('state', (e) => states.push(e));
  const connected = c.connect();
  (await h.nth(0)).fail('unreachable');
  const next = await h.nth(1);
  assert.equal(next.name, 'ws');
  assert.ok(states.some((s) => s.state === 'reconnecting' && typeof s.retryInMs === 'number'));
  next.hello();
  await connected;
  c.close();
});

test('a forced transport is the only one tried', async () => {
  const h = harness();
  const c = h.client({ transport: 'sse' });
  const connected = c.connect();
  const t = await h.nth(0);
  assert.equal(t.name, 'sse');
  t.fail('transport_failed');
  const again = await h.nth(1);
  assert.equal(again.name, 'sse');
  again.hello();
  await connected;
  c.close();
});

test('a refused token closes the client; a token function is asked again first', async () => {
  const h = harness();
  const c = h.client();
  const connected = c.connect();
  (await h.nth(0)).fail('unauthorized');
  await assert.rejects(connected, (e) => e.code === 'unauthorized');
  assert.equal(c.state, 'closed');

  const h2 = harness();
  let calls = 0;
  const c2 = h2.client({ token: async () => `token-${++calls}` });
  const connected2 = c2.connect();
  const t0 = await h2.nth(0);
  assert.equal(t0.ctx.token, 'token-1');
  t0.fail('unauthorized');
  const t1 = await h2.nth(1);
  assert.equal(t1.ctx.token, 'token-2');
  t1.hello();
  await connected2;
  c2.close();
});

test('replaced ends the client without reconnecting', async () => {
  const h = harness();
  const c = h.client();
  const connected = c.connect();
  const t = await h.nth(0);
  t.hello();
  await connected;
  const closed = new Promise((r) => c.on('state', (e) => e.state === 'closed' && r(e)));
  t.drop('replaced');
  const e = await closed;
  assert.equal(e.error.code, 'replaced');
  await tick(30);
  assert.equal(h.instances.length, 1);
});

test('close sends leave for joined rooms', async () => {
  const h = harness();
  const c = h.client();
  const connected = c.connect();
  const t = await h.nth(0);
  t.hello();
  await connected;
  const joining = c.join('r1');
  const join = t.sent.find((m) => m.type === 'join');
  t.deliver({ type: 'joined', room: 'r1', seq: 2, id: join.id, payload: { peer: 'p', role: 'guest', mode: 'free_for_all', peers: [], ice_servers: [] } });
  await joining;
  c.close();
  assert.deepEqual(t.sent.at(-1).type, 'leave');
  assert.equal(c.state, 'closed');
  assert.throws(() => c.sendMessage('r1', {}), (e) => e.code === 'closed');
});
