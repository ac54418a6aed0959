// The app's signed-in half, in Chromium, as people use it: an owner signs up on the start page,
// creates a room with its lobby on, makes a share code; a guest with no account types the code,
// waits, is admitted, and the two see each other. The same after a restart of the server on the
// same data directory. And the account card's edges: wrong password, taken username, lockout
// (429 with its wait), a reload keeping the login, sign out revoking it, rooms a page at a time,
// delete with a confirm.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { expectVideoFrom, launch, openPage, peerOf, screenshot, withDiagnostics } from '../lib/browser.js';
import { startServer } from '../lib/server.js';

const CODE = /^[0-9A-Z]{5}-[0-9A-Z]{5}$/;

let server;
let browser;

before(async () => {
  server = await startServer({
    env: {
      // A lock long enough to be seen by the next click (the default first lock is a second),
      // and room for every sign-in of this file in the per-address budget.
      SWITCHBOARD_API__LOCKOUT_BASE_MS: '60000',
      SWITCHBOARD_API__LOGIN_BURST_PER_ADDRESS: '50',
    },
  });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * Signs up (or in) on the start page's account card and waits until "my rooms" shows.
 * @param {import('playwright-core').Page} page
 * @param {{username: string, password: string}} who
 * @param {'Create account' | 'Sign in'} how
 */
async function signIn(page, { username, password }, how) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: how, exact: true }).click();
  await page.locator('#signed-in').waitFor();
  assert.equal(await page.locator('#account-name').textContent(), username);
}

/**
 * Creates a room from the "New room" form (lobby on, as the form starts).
 * @param {import('playwright-core').Page} page
 * @param {string} id
 * @param {string} name
 * @param {{media?: string, max?: string}} [more] The media (an option's label) and max people.
 */
async function createRoom(page, id, name, more = {}) {
  if (!(await page.locator('#new-room').getAttribute('open'))) await page.locator('#new-room summary').click();
  await page.getByLabel('Room id').fill(id);
  await page.getByLabel('Name', { exact: true }).fill(name);
  if (more.media) await page.locator('#new-room-media').selectOption({ label: more.media });
  if (more.max) await page.getByLabel('Max people').fill(more.max);
  assert.equal(await page.getByLabel(/^Lobby/).isChecked(), true, 'the lobby starts on');
  await page.getByRole('button', { name: 'Create room' }).click();
  await page.getByRole('button', { name: `Join ${name} as host` }).waitFor();
}

/**
 * Makes a share code for the room in its panel; returns the code shown.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 * @param {string} uses '' for no limit
 */
async function makeCode(page, name, uses) {
  const item = page.getByRole('listitem', { name });
  const toggle = page.getByRole('button', { name: `Share codes of ${name}` });
  if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
  await item.getByLabel('Uses').fill(uses);
  await item.getByRole('button', { name: 'Make a share code' }).click();
  const code = (await item.locator('.fresh-code output').textContent()) ?? '';
  assert.match(code, CODE);
  await item.locator('.fresh-code', { hasText: 'shown only this once' }).waitFor();
  return code;
}

/**
 * A guest with no account types `code` on the start page and waits in the lobby.
 * @param {string} base
 * @param {string} code
 * @param {string} name
 */
async function knockWith(base, code, name) {
  const guest = await openPage(browser, `${base}/?name=${name}`, name);
  assert.equal(await guest.page.locator('#signed-out').isVisible(), true);
  await guest.page.locator('#code-input').fill(code.replace('-', ' ').toLowerCase());
  await guest.page.getByRole('button', { name: 'Join call' }).click();
  await guest.page.locator('#banner', { hasText: 'Waiting for a host to let you in' }).waitFor();
  return guest;
}

/**
 * The owner joins as host, admits `guest`, and both see each other's video.
 * @param {{page: import('playwright-core').Page}} host
 * @param {{page: import('playwright-core').Page}} guest
 * @param {string} guestName
 */
async function admitAndCall(host, guest, guestName) {
  await host.page.getByRole('button', { name: `Admit ${guestName}` }).click();
  await guest.page.locator('#banner').waitFor({ state: 'hidden' });
  await guest.page.locator('#connection-badge[data-state="connected"]').waitFor();
  await expectVideoFrom(host.page, await peerOf(guest.page));
  await expectVideoFrom(guest.page, await peerOf(host.page));
}

test('an owner signs up, makes a lobby room and a share code, and admits a guest who typed it', async () => {
  const host = await openPage(browser, `${server.url}/?name=Hana`, 'Hana');
  const pages = [host];
  await withDiagnostics(pages, async () => {
    await signIn(host.page, { username: 'hana', password: 'correct horse battery' }, 'Create account');
    await host.page.locator('#rooms-empty').waitFor();
    await createRoom(host.page, 'standup', 'Standup', { media: 'Mesh', max: '4' });
    const item = host.page.getByRole('listitem', { name: 'Standup' });
    assert.equal(await item.locator('.who small').textContent(), 'standup · lobby on · Mesh · up to 4');
    const code = await makeCode(host.page, 'Standup', '2');
    await item.locator('.code-list li', { hasText: 'guest · 0 of 2 used · expires in 24 hours' }).waitFor();
    await screenshot(host.page, 'accounts-rooms');

    await host.page.getByRole('button', { name: 'Join Standup as host' }).click();
    await host.page.locator('#connection-badge[data-state="connected"]').waitFor();
    assert.equal(await host.page.locator('#room-label').textContent(), 'standup');

    const gus = await knockWith(server.url, code, 'Gus');
    pages.push(gus);
    await admitAndCall(host, gus, 'Gus');
    await screenshot(host.page, 'accounts-call');
  });
  await Promise.all(pages.map((p) => p.context.close()));
});

test('rooms, codes and logins survive a restart of the server on the same data directory', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'switchboard-e2e-restart-'));
  let first = await startServer({ dataDir });
  const pages = [];
  try {
    const owner = await openPage(browser, `${first.url}/?name=Rita`, 'Rita');
    pages.push(owner);
    await withDiagnostics(pages, async () => {
      await signIn(owner.page, { username: 'rita', password: 'persistent password' }, 'Create account');
      await createRoom(owner.page, 'weekly', 'Weekly');
      const code = await makeCode(owner.page, 'Weekly', '');
      await owner.context.close();
      pages.length = 0;

      await first.stop();
      first = await startServer({ dataDir, secret: first.secret, port: first.port });

      const host = await openPage(browser, `${first.url}/?name=Rita`, 'Rita');
      pages.push(host);
      await signIn(host.page, { username: 'rita', password: 'persistent password' }, 'Sign in');
      const item = host.page.getByRole('listitem', { name: 'Weekly' });
      await item.waitFor();
      assert.match((await item.locator('.who small').textContent()) ?? '', /^weekly · lobby on/);
      await host.page.getByRole('button', { name: 'Share codes of Weekly' }).click();
      await item.locator('.code-list li[data-status="active"]', { hasText: 'guest · 0 uses, no limit' }).waitFor();
      await host.page.getByRole('button', { name: 'Join Weekly as host' }).click();
      await host.page.locator('#connection-badge[data-state="connected"]').waitFor();

      const gia = await knockWith(first.url, code, 'Gia');
      pages.push(gia);
      await admitAndCall(host, gia, 'Gia');
    });
  } finally {
    await Promise.all(pages.map((p) => p.context.close()));
    await first.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('sign-in errors are shown, a reload keeps the login, and signing out ends it', async () => {
  const { page, context } = await openPage(browser, server.url, 'Ivy');
  const ivy = { username: 'ivy', password: 'ivy password 1' };
  await signIn(page, ivy, 'Create account');
  const kept = await page.evaluate(() => sessionStorage.getItem('switchboard.refresh'));
  assert.ok(kept, 'the refresh token is kept for reloads');
  assert.equal(await page.evaluate(() => Object.keys(localStorage).filter((k) => /refresh|access/.test(k)).length), 0);

  await page.reload();
  await page.locator('#signed-in').waitFor();
  assert.equal(await page.locator('#account-name').textContent(), 'ivy');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#signed-out').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('switchboard.refresh')), null);
  const current = await fetch(`${server.url}/v1/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: kept }),
  });
  assert.equal(current.status, 401, 'the login is revoked on the server, not just forgotten here');
  await page.reload();
  await page.locator('#sign-in-form').waitFor();
  assert.equal(await page.locator('#signed-in').isVisible(), false);

  await page.getByLabel('Username').fill('ivy');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator('#account-error', { hasText: 'Wrong username or password.' }).waitFor();
  assert.equal(await page.locator('#signed-in').isVisible(), false);

  await page.getByLabel('Password').fill('another password');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('#account-error', { hasText: 'That username is taken' }).waitFor();

  // Five failures in a row (api.login_failures_before_lockout), with or without an account, lock
  // a username, here for a minute (api.lockout_base_ms above), so the sixth attempt is refused
  // with a 429 and its wait.
  await page.getByLabel('Username').fill('mallory');
  for (let i = 0; i < 5; i += 1) {
    await page.getByLabel('Password').fill(`guess number ${i}`);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.locator('#account-error', { hasText: 'Wrong username or password.' }).waitFor();
    await page.locator('#sign-in:not([disabled])').waitFor();
  }
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator('#account-error', { hasText: /^Too many attempts\. Try again in (60|59) seconds\.$/ }).waitFor();
  await screenshot(page, 'accounts-locked');

  await signIn(page, ivy, 'Sign in');
  await context.close();
});

test('my rooms come a page at a time, and a room is deleted only once confirmed', async () => {
  const owner = { username: 'paige', password: 'many rooms here' };
  const post = async (path, body, token) => {
    const headers = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
    const answer = await fetch(`${server.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    assert.ok(answer.ok, `${path}: ${answer.status}`);
    return answer.json();
  };
  await post('/v1/accounts', owner);
  const { access_token: token } = await post('/v1/auth/login', owner);
  for (let i = 0; i < 21; i += 1) await post('/v1/rooms', { id: `room-${String(i).padStart(2, '0')}` }, token);

  const { page, context } = await openPage(browser, server.url, 'Paige');
  await signIn(page, owner, 'Sign in');
  const items = page.locator('#room-list > li');
  await page.getByRole('button', { name: 'Load more rooms' }).waitFor();
  assert.equal(await items.count(), 20);
  await page.getByRole('button', { name: 'Load more rooms' }).click();
  await page.getByRole('listitem', { name: 'room-20' }).waitFor();
  assert.equal(await items.count(), 21);
  assert.equal(await page.getByRole('button', { name: 'Load more rooms' }).isVisible(), false);

  const stored = async () =>
    (await fetch(`${server.url}/v1/rooms/room-00`, { headers: { authorization: `Bearer ${token}` } })).status;
  // This server runs no SFU, and the form says so in the server's words.
  await page.locator('#new-room summary').click();
  await page.getByLabel('Room id').fill('big-one');
  await page.locator('#new-room-media').selectOption('sfu');
  await page.getByRole('button', { name: 'Create room' }).click();
  await page.locator('#new-room-error', { hasText: 'media sfu needs a server that runs the SFU' }).waitFor();
  await page.getByLabel('Room id').fill('room-00');
  await page.locator('#new-room-media').selectOption('auto');
  await page.getByRole('button', { name: 'Create room' }).click();
  await page.locator('#new-room-error', { hasText: 'That room id is taken' }).waitFor();

  page.once('dialog', (dialog) => void dialog.dismiss());
  await page.getByRole('button', { name: 'Delete room-00' }).click();
  // The click's handler has run by the time the page evaluates anything after it.
  await page.evaluate(() => 0);
  assert.equal(await items.count(), 21);
  assert.equal(await stored(), 200, 'a dismissed confirm deletes nothing');
  page.once('dialog', (dialog) => {
    assert.match(dialog.message(), /Delete the room "room-00"/);
    void dialog.accept();
  });
  await page.getByRole('button', { name: 'Delete room-00' }).click();
  await page.getByRole('listitem', { name: 'room-00' }).waitFor({ state: 'detached' });
  assert.equal(await stored(), 404);
  await context.close();
});
