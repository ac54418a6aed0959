// A server with guest access off (the production setting): the lobby says so, and a link that
// carries a token minted elsewhere (`/#token=...`, here by `switchboard token`) joins.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch, screenshot } from '../lib/browser.js';
import { startServer } from '../lib/server.js';

let server;
let browser;

before(async () => {
  server = await startServer({ env: { SWITCHBOARD_GUEST_ACCESS: 'false' } });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('without guest access the lobby explains, and an invitation token joins', async () => {
  const context = await browser.newContext({ permissions: ['camera', 'microphone'] });
  const page = await context.newPage();
  await page.goto(`${server.url}/?room=board&name=Ann&autojoin=1`);
  await page.locator('#lobby-error', { hasText: 'does not hand out guest access' }).waitFor();
  await screenshot(page, 'guest-access-off');

  const token = server.mint({ room: 'board', user: 'ann', role: 'host', name: 'Ann' });
  await page.goto(`${server.url}/?room=board&autojoin=1#token=${token}`);
  await page.locator('#connection-badge[data-state="connected"]').waitFor();
  await page.locator('#people li .host-badge').waitFor();
  assert.equal(await page.locator('#host-controls').isVisible(), true);
  assert.equal(await page.locator('#people li strong').first().textContent(), 'Ann (you)');
  await context.close();
});
