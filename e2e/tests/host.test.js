// The host switches the room to host-only mode and back, and removes a guest.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { expectChat, expectVideoFrom, joinCall, launch, screenshot, sendChat, withDiagnostics } from '../lib/browser.js';
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

test('host-only mode and kick', async () => {
  const host = await joinCall(browser, server.url, { room: 'panel', name: 'Hana' });
  const g1 = await joinCall(browser, server.url, { room: 'panel', name: 'Gus' });
  const g2 = await joinCall(browser, server.url, { room: 'panel', name: 'Gwen' });
  await withDiagnostics([host, g1, g2], async () => {
    await expectVideoFrom(g1.page, g2.peer);
    // Guests have no host controls.
    assert.equal(await g1.page.locator('#host-controls').isVisible(), false);
    assert.equal(await g1.page.getByRole('button', { name: /^Remove / }).count(), 0);

    await host.page.getByRole('switch', { name: 'Host-only mode' }).check();
    for (const g of [g1, g2]) await g.page.locator('#mode-note').waitFor();
    // Guests no longer connect to each other, but still to the host.
    await g1.page.locator(`.tile[data-peer="${g2.peer}"]`).waitFor({ state: 'detached' });
    await g2.page.locator(`.tile[data-peer="${g1.peer}"]`).waitFor({ state: 'detached' });
    await expectVideoFrom(g1.page, host.peer);
    await expectVideoFrom(host.page, g2.peer);
    // A guest's chat goes to the host only.
    await sendChat(g1.page, 'question for the host');
    assert.equal(await expectChat(host.page, g1.peer, 'question for the host'), 1);
    await sendChat(host.page, 'answer for everyone');
    assert.equal(await expectChat(g2.page, host.peer, 'answer for everyone'), 1);
    assert.equal(await g2.page.locator('#chat-log li', { hasText: 'question for the host' }).count(), 0);
    await screenshot(host.page, 'host-only-mode');

    await host.page.getByRole('switch', { name: 'Host-only mode' }).uncheck();
    await g1.page.locator('#mode-note').waitFor({ state: 'hidden' });
    await expectVideoFrom(g1.page, g2.peer);
    await expectVideoFrom(g2.page, g1.peer);

    // The host removes Gwen: she is back in the lobby with the reason, and cannot rejoin.
    await host.page.getByRole('button', { name: 'Remove Gwen from the room' }).click();
    await g2.page.locator('#lobby-error', { hasText: 'removed you from the room' }).waitFor();
    await host.page.locator(`#people li[data-peer="${g2.peer}"]`).waitFor({ state: 'detached' });
    await g1.page.locator(`.tile[data-peer="${g2.peer}"]`).waitFor({ state: 'detached' });
    await g2.page.getByRole('button', { name: 'Join again' }).click();
    await g2.page.locator('#lobby-error', { hasText: 'You cannot rejoin this room' }).waitFor();
    await screenshot(g2.page, 'kicked');
  });
  await Promise.all([host, g1, g2].map((p) => p.context.close()));
});
