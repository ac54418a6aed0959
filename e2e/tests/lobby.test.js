// Share code -> lobby -> admit -> call: the room's owner sets up a room with its lobby on over the
// control API; a guest types the share code and waits; the host admits one guest, who joins the
// call, and turns another away.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { expectVideoFrom, launch, openPage, peerOf, screenshot, withDiagnostics } from '../lib/browser.js';
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

/**
 * A control API call that must succeed: its JSON answer.
 * @param {string} method
 * @param {string} path
 * @param {string | null} token
 * @param {object} [body]
 */
async function api(method, path, token, body) {
  const headers = { 'content-type': 'application/json' };
  if (token) Object.assign(headers, { authorization: `Bearer ${token}` });
  const response = await fetch(`${server.url}${path}`, { method, headers, body: body && JSON.stringify(body) });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A guest page that types `code` on the lobby page and asks to join. */
async function knockWith(code, name) {
  const guest = await openPage(browser, `${server.url}/?name=${name}`, name);
  // Typed as people do: lower case, no hyphen.
  await guest.page.locator('#code-input').fill(code.replace('-', '').toLowerCase());
  await guest.page.getByRole('button', { name: 'Join call' }).click();
  await guest.page.locator('#banner', { hasText: 'Waiting for a host to let you in' }).waitFor();
  return guest;
}

test('a share-code guest waits in the lobby until the host admits it; another is turned away', async () => {
  const account = { username: 'hana', password: 'correct horse battery' };
  await api('POST', '/v1/accounts', null, account);
  const { access_token: owner } = await api('POST', '/v1/auth/login', null, account);
  await api('POST', '/v1/rooms', owner, { id: 'standup', name: 'Standup', lobby: true });
  const hostToken = await api('POST', '/v1/rooms/standup/tokens', owner, { role: 'host', name: 'Hana' });
  const { code } = await api('POST', '/v1/rooms/standup/invites', owner, { max_uses: null });

  const host = await openPage(browser, `${server.url}/?room=standup&name=Hana&autojoin=1#token=${hostToken.token}`, 'Hana');
  await host.page.locator('#connection-badge[data-state="connected"]').waitFor();
  const gus = await knockWith(code, 'Gus');
  const pages = [host, gus];
  await withDiagnostics(pages, async () => {
    await host.page.getByRole('button', { name: 'Admit Gus' }).waitFor();
    await screenshot(gus.page, 'lobby-waiting');
    await screenshot(host.page, 'lobby-knock');
    await host.page.getByRole('button', { name: 'Admit Gus' }).click();
    await gus.page.locator('#banner').waitFor({ state: 'hidden' });
    await gus.page.locator('#connection-badge[data-state="connected"]').waitFor();
    await expectVideoFrom(host.page, await peerOf(gus.page));
    await expectVideoFrom(gus.page, await peerOf(host.page));
    await host.page.locator('#knocks-panel').waitFor({ state: 'hidden' });

    const gwen = await knockWith(code, 'Gwen');
    pages.push(gwen);
    await host.page.getByRole('button', { name: 'Deny Gwen' }).click();
    await gwen.page.locator('#lobby-error', { hasText: 'did not let you in' }).waitFor();
    await host.page.locator('#chat-log li', { hasText: 'Gwen was not let in' }).waitFor();
    await screenshot(gwen.page, 'lobby-denied');
  });
  await Promise.all(pages.map((p) => p.context.close()));
});
