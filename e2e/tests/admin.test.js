// The admin page at /admin, in Chromium: an operator signs in with an account holding the admin
// grant, sees every stored room with its live member count and participants, removes a
// participant (who is told `left`, reason `kicked`) and closes a room (its members get
// `room_closed`); an account without the grant is told so.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch, screenshot, WAIT } from '../lib/browser.js';
import { startServer } from '../lib/server.js';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** `POST path` with a JSON body (and a bearer token); the JSON answer. */
async function post(path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const answer = await fetch(`${server.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const json = await answer.json();
  assert.ok(answer.ok, `${path}: ${answer.status} ${JSON.stringify(json)}`);
  return json;
}

async function account(username, password) {
  await post('/v1/accounts', { username, password });
  return (await post('/v1/auth/login', { username, password })).access_token;
}

/** A member of `room` on a raw WebSocket in a page of its own; what it receives is kept. */
async function member(room, user, role, peer) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  await page.goto(`${server.url}/healthz`);
  const token = server.mint({ room, user, role });
  await page.evaluate(
    async ({ token, room, peer }) => {
      const url = `${location.origin.replace(/^http/, 'ws')}/v1/ws?token=${encodeURIComponent(token)}`;
      const ws = new WebSocket(url);
      globalThis.received = [];
      ws.onmessage = (e) => globalThis.received.push(JSON.parse(e.data));
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = reject;
      });
      ws.send(JSON.stringify({ type: 'join', room, seq: 1, ts: Date.now(), payload: { peer } }));
      globalThis.ws = ws;
    },
    { token, room, peer },
  );
  await page.waitForFunction(() => globalThis.received.some((m) => m.type === 'joined'));
  return { page, context };
}

/** Waits until `who` received a message of `type`; that message. */
async function received(who, type) {
  const handle = await who.page.waitForFunction(
    (type) => globalThis.received.find((m) => m.type === type) ?? null,
    type,
  );
  return handle.jsonValue();
}

test('an admin sees rooms, live counts and participants, removes one and closes a room', async () => {
  const owner = await account('owner', 'a long enough password');
  await account('root', 'the operator password');
  server.grantAdmin('root');
  await post('/v1/rooms', { id: 'standup', name: 'Standup' }, owner);
  await post('/v1/rooms', { id: 'retro', name: 'Retro' }, owner);
  const alice = await member('standup', 'user-alice', 'host', 'alice');
  const bob = await member('standup', 'user-bob', 'guest', 'bob');
  const carol = await member('retro', 'user-carol', 'guest', 'carol');

  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.url}/admin`);
  await page.getByLabel('Username').fill('root');
  await page.getByLabel('Password').fill('the operator password');
  await page.getByRole('button', { name: 'Sign in' }).click();

  const rows = page.locator('#rooms tbody tr');
  await page.locator('#totals', { hasText: '2 rooms, 3 in calls' }).waitFor();
  assert.equal(await rows.count(), 2);
  const standup = page.locator('#rooms tbody tr[data-room="standup"]');
  assert.deepEqual(
    (await standup.locator('td').allTextContents()).slice(0, 6),
    ['standup', 'Standup', (await (await fetch(`${server.url}/v1/users/me`, { headers: { authorization: `Bearer ${owner}` } })).json()).id, 'auto', 'off', '2'],
  );
  assert.equal(await page.locator('#grant').isHidden(), true, 'no notice for an admin');
  // The node that answers: its hub holds the three members' sessions in two rooms.
  await page.locator('#node', { hasText: /^Single node · version \S+ · up \d+ (s|min) · 3 sessions \(3 connected\) in 2 rooms · SQLite · media auto, no SFU$/ }).waitFor();
  assert.equal(await page.locator('#login').isHidden(), true, 'the sign-in form is gone');

  await standup.click();
  const participants = page.locator('#participants tbody tr');
  await page.locator('#participants tbody tr', { hasText: 'bob' }).waitFor();
  assert.equal(await participants.count(), 2);
  await screenshot(page, 'admin');

  await page.getByRole('button', { name: 'Remove bob' }).click();
  const left = await received(bob, 'left');
  assert.equal(left.payload.reason, 'kicked');
  await received(alice, 'peer_left');
  await page.locator('#totals', { hasText: '2 rooms, 2 in calls' }).waitFor();
  await page.locator('#participants tbody tr', { hasText: 'bob' }).waitFor({ state: 'detached' });
  assert.equal(await participants.count(), 1);

  page.once('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: 'Close retro' }).click();
  const closed = await received(carol, 'room_closed');
  assert.equal(closed.payload.reason, 'deleted');
  await page.locator('#totals', { hasText: '1 rooms, 1 in calls' }).waitFor();
  assert.equal(await rows.count(), 1);

  // An account without the grant is told so (and sees only its own rooms).
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Username').fill('owner');
  await page.getByLabel('Password').fill('a long enough password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#grant').waitFor();
  assert.equal(await page.locator('#node').isHidden(), true, 'node information is for admins');
  assert.deepEqual(errors, []);
  for (const who of [alice, bob, carol, { context }]) await who.context.close();
});
