// The account client against a scripted control API: where the tokens live, refresh before expiry
// and once on a 401, one refresh for many callers (refresh tokens are single-use), restore after a
// reload, sign out, and the errors a page shows (conflict, unauthorized, 429 with its wait).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AccountClient, REFRESH_KEY, REFRESH_MARGIN_MS } from '../account.js';
import { SwitchboardError, errorFromResponse } from '../protocol.js';

const ACCOUNT = { id: 'u1', username: 'ann', display_name: 'Ann', admin: false, created_at: 1 };

/** A `Storage` in a Map. */
function memoryStore() {
  const map = new Map();
  return {
    map,
    getItem: (/** @type {string} */ k) => map.get(k) ?? null,
    setItem: (/** @type {string} */ k, /** @type {string} */ v) => void map.set(k, v),
    removeItem: (/** @type {string} */ k) => void map.delete(k),
  };
}

/**
 * The control API as far as the client uses it, with the server's rules for tokens: a refresh
 * token trades once, a spent one comes back as 401, access tokens are checked on every call.
 */
function fakeServer({ expiresIn = 900 } = {}) {
  let n = 0;
  const s = {
    /** Access tokens the server takes. */
    access: new Set(),
    /** Refresh tokens that still trade. */
    refresh: new Set(),
    /** Every request: `METHOD path` and its bearer token. @type {{line: string, token: string | null, body: any}[]} */
    log: [],
    /** Answers to give before the normal ones, by `METHOD path`. @type {Map<string, Response[]>} */
    scripted: new Map(),
    issue() {
      n += 1;
      const tokens = { access_token: `a${n}`, refresh_token: `r${n}`, token_type: 'Bearer', expires_in: expiresIn, refresh_expires_in: 86400, account: ACCOUNT };
      s.access.add(tokens.access_token);
      s.refresh.add(tokens.refresh_token);
      return tokens;
    },
    /** @type {typeof fetch} */
    fetch: async (input, init = {}) => {
      const url = new URL(String(input));
      const line = `${init.method ?? 'GET'} ${url.pathname}${url.search}`;
      const auth = /** @type {Record<string, string>} */ (init.headers ?? {}).authorization ?? null;
      const body = init.body ? JSON.parse(String(init.body)) : undefined;
      s.log.push({ line, token: auth?.replace('Bearer ', '') ?? null, body });
      const queued = s.scripted.get(line)?.shift();
      if (queued) return queued;
      const json = (status, value) => new Response(JSON.stringify(value), { status, headers: { 'content-type': 'application/json' } });
      const error = (status, code) => json(status, { error: { code, message: code } });
      if (line === 'POST /v1/auth/login') {
        return body.password === 'right password' ? json(200, s.issue()) : error(401, 'unauthorized');
      }
      if (line === 'POST /v1/auth/refresh') {
        if (!s.refresh.delete(body.refresh_token)) return error(401, 'unauthorized');
        return json(200, s.issue());
      }
      if (line === 'POST /v1/auth/logout') {
        s.refresh.delete(body.refresh_token);
        return new Response(null, { status: 204 });
      }
      if (!auth || !s.access.has(auth.replace('Bearer ', ''))) return error(401, 'unauthorized');
      if (line.startsWith('GET /v1/rooms')) return json(200, { rooms: [{ id: 'standup' }], next: null });
      if (line === 'DELETE /v1/rooms/standup') return new Response(null, { status: 204 });
      return error(404, 'not_found');
    },
  };
  return s;
}

function client(server, store = memoryStore(), clock = { now: 1_000_000 }) {
  return new AccountClient({ url: 'http://sb.test', fetch: server.fetch, store, now: () => clock.now });
}

test('signing in keeps the refresh token in the store and the access token in memory only', async () => {
  const server = fakeServer();
  const store = memoryStore();
  const c = client(server, store);
  /** @type {any[]} */
  const changes = [];
  c.on('change', (a) => changes.push(a));
  const account = await c.login({ username: 'ann', password: 'right password' });
  assert.equal(account.username, 'ann');
  assert.deepEqual([...store.map.entries()], [[REFRESH_KEY, 'r1']]);
  assert.deepEqual(changes, [ACCOUNT]);
  const page = await c.listRooms({ limit: 10, after: 'a b' });
  assert.deepEqual(page, { rooms: [{ id: 'standup' }], next: null });
  assert.equal(server.log.at(-1)?.line, 'GET /v1/rooms?limit=10&after=a+b');
  assert.equal(server.log.at(-1)?.token, 'a1');
});

test('the access token is replaced before it expires, not after a failed call', async () => {
  const server = fakeServer({ expiresIn: 900 });
  const clock = { now: 1_000_000 };
  const c = client(server, memoryStore(), clock);
  await c.login({ username: 'ann', password: 'right password' });
  clock.now += 900_000 - REFRESH_MARGIN_MS - 1;
  await c.deleteRoom('standup');
  assert.equal(server.log.at(-1)?.token, 'a1', 'still fresh enough');
  clock.now += 2;
  await c.deleteRoom('standup');
  assert.deepEqual(
    server.log.slice(-2).map((r) => r.line),
    ['POST /v1/auth/refresh', 'DELETE /v1/rooms/standup'],
  );
  assert.equal(server.log.at(-1)?.token, 'a2');
  assert.equal(server.refresh.has('r1'), false, 'the old refresh token is spent');
});

test('a 401 refreshes once and retries once; a second 401 is the caller\'s error', async () => {
  const server = fakeServer();
  const c = client(server);
  await c.login({ username: 'ann', password: 'right password' });
  server.access.clear(); // the server stopped taking the access token (a new key)
  await c.deleteRoom('standup');
  assert.deepEqual(
    server.log.slice(-3).map((r) => `${r.line} ${r.token}`),
    ['DELETE /v1/rooms/standup a1', 'POST /v1/auth/refresh null', 'DELETE /v1/rooms/standup a2'],
  );
  const before = server.log.length;
  const forbidden = () => new Response('{"error":{"code":"unauthorized","message":"no"}}', { status: 401 });
  server.scripted.set('DELETE /v1/rooms/standup', [forbidden(), forbidden()]);
  await assert.rejects(c.deleteRoom('standup'), (e) => e instanceof SwitchboardError && e.code === 'unauthorized');
  assert.deepEqual(
    server.log.slice(before).map((r) => r.line),
    ['DELETE /v1/rooms/standup', 'POST /v1/auth/refresh', 'DELETE /v1/rooms/standup'],
  );
  assert.equal(c.signedIn, true, 'the login itself still works');
});

test('many callers needing a refresh share one: the single-use token is never spent twice', async () => {
  const server = fakeServer();
  const clock = { now: 1_000_000 };
  const c = client(server, memoryStore(), clock);
  await c.login({ username: 'ann', password: 'right password' });
  clock.now += 900_000;
  await Promise.all([c.listRooms(), c.listRooms(), c.deleteRoom('standup')]);
  assert.equal(server.log.filter((r) => r.line === 'POST /v1/auth/refresh').length, 1);
  assert.ok(server.log.slice(-3).every((r) => r.token === 'a2'));
});

test('a reload restores the login from the store; a revoked one is forgotten', async () => {
  const server = fakeServer();
  const store = memoryStore();
  await client(server, store).login({ username: 'ann', password: 'right password' });
  const reloaded = client(server, store);
  assert.equal(reloaded.signedIn, false);
  assert.deepEqual(await reloaded.restore(), ACCOUNT);
  assert.equal(store.map.get(REFRESH_KEY), 'r2');

  server.refresh.clear(); // signed out elsewhere
  const again = client(server, store);
  assert.equal(await again.restore(), null);
  assert.equal(store.map.has(REFRESH_KEY), false);
  assert.equal(await client(server, store).restore(), null, 'nothing kept, nothing asked');
  assert.equal(server.log.at(-1)?.line, 'POST /v1/auth/refresh');
});

test('a server that cannot be reached keeps the stored login for the next try', async () => {
  const server = fakeServer();
  const store = memoryStore();
  await client(server, store).login({ username: 'ann', password: 'right password' });
  const offline = new AccountClient({ url: 'http://sb.test', store, fetch: async () => { throw new TypeError('offline'); } });
  await assert.rejects(offline.restore(), (e) => e instanceof SwitchboardError && e.code === 'unreachable');
  assert.equal(store.map.get(REFRESH_KEY), 'r1');
});

test('signing out revokes the refresh token and forgets both', async () => {
  const server = fakeServer();
  const store = memoryStore();
  const c = client(server, store);
  await c.login({ username: 'ann', password: 'right password' });
  /** @type {any[]} */
  const changes = [];
  c.on('change', (a) => changes.push(a));
  await c.logout();
  assert.deepEqual(server.log.at(-1), { line: 'POST /v1/auth/logout', token: null, body: { refresh_token: 'r1' } });
  assert.equal(server.refresh.has('r1'), false);
  assert.equal(store.map.size, 0);
  assert.deepEqual(changes, [null]);
  await assert.rejects(c.listRooms(), (e) => e instanceof SwitchboardError && e.code === 'unauthorized');
});

test('errors carry the server\'s code, and a 429 its Retry-After', async () => {
  const server = fakeServer();
  const c = client(server);
  await assert.rejects(c.login({ username: 'ann', password: 'wrong' }), (e) => e instanceof SwitchboardError && e.code === 'unauthorized' && e.status === 401);
  server.scripted.set('POST /v1/auth/login', [
    new Response('{"error":{"code":"rate_limited","message":"too many failed logins"}}', { status: 429, headers: { 'retry-after': '37' } }),
  ]);
  await assert.rejects(c.login({ username: 'ann', password: 'right password' }), (e) => e instanceof SwitchboardError && e.code === 'rate_limited' && e.retryAfter === 37);
  server.scripted.set('POST /v1/accounts', [new Response('{"error":{"code":"conflict","message":"username taken"}}', { status: 409 })]);
  await assert.rejects(c.register({ username: 'ann', password: 'right password' }), (e) => e instanceof SwitchboardError && e.code === 'conflict');
  assert.equal(c.signedIn, false);
});

test('an answer without an error body is named by its status alone', async () => {
  const bare = async (/** @type {number} */ status, /** @type {string} */ body) => (await errorFromResponse(new Response(body, { status })));
  const conflict = await bare(409, '');
  assert.deepEqual([conflict.code, conflict.status, conflict.message], ['conflict', 409, 'HTTP 409']);
  assert.equal((await bare(503, '<html>bad gateway</html>')).code, 'unavailable');
  assert.equal((await bare(418, '')).code, 'internal');
});
