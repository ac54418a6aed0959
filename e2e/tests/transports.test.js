// A page forced onto SSE and one forced onto long-poll each call a WebSocket page. SSE streams end
// every few seconds here (the server's lifetime cap), so EventSource reconnects mid-call.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { expectChat, expectVideoFrom, joinCall, launch, screenshot, sendChat, withDiagnostics } from '../lib/browser.js';
import { startServer } from '../lib/server.js';

let server;
let browser;

before(async () => {
  server = await startServer({
    env: {
      SWITCHBOARD_SSE_LIFETIME_MS: '3000',
      SWITCHBOARD_SSE_JITTER_MS: '500',
      SWITCHBOARD_POLL_WAIT_MS: '4000',
    },
  });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

for (const [transport, label] of [
  ['sse', 'SSE'],
  ['poll', 'Long-poll'],
]) {
  test(`a ${label} page calls a WebSocket page`, async () => {
    const room = `via-${transport}`;
    const ws = await joinCall(browser, server.url, { room, name: 'Wes', transport: 'ws' });
    const other = await joinCall(browser, server.url, { room, name: `${label} user`, transport });
    await withDiagnostics([ws, other], async () => {
      assert.equal(await other.page.locator('#transport-badge').textContent(), label);
      assert.equal(await ws.page.locator('#transport-badge').textContent(), 'WebSocket');
      await expectVideoFrom(other.page, ws.peer);
      await expectVideoFrom(ws.page, other.peer);
      await sendChat(other.page, `first over ${transport}`);
      await sendChat(ws.page, 'first over ws');
      assert.equal(await expectChat(ws.page, other.peer, `first over ${transport}`), 1);
      assert.equal(await expectChat(other.page, ws.peer, 'first over ws'), 1);
      // Outlive a few SSE streams (and poll cycles), then talk again: nothing lost or doubled.
      await other.page.waitForTimeout(7000);
      await sendChat(other.page, `second over ${transport}`);
      await sendChat(ws.page, 'second over ws');
      assert.equal(await expectChat(ws.page, other.peer, `second over ${transport}`), 1);
      assert.equal(await expectChat(other.page, ws.peer, 'second over ws'), 1);
      assert.equal(await expectChat(other.page, ws.peer, 'first over ws'), 1);
      const stats = await other.page.evaluate(() => globalThis.__switchboard.client.stats);
      assert.equal(stats.sessions, 1, 'one session for the whole call');
      assert.equal(await other.page.locator('#connection-badge').getAttribute('data-state'), 'connected');
      await expectVideoFrom(ws.page, other.peer);
      await screenshot(other.page, `call-${transport}`);
    });
    await ws.context.close();
    await other.context.close();
  });
}
