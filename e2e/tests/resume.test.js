// A page loses its network for several seconds in the middle of a call, then gets it back: the
// session resumes (same session, peers never see it leave), messages sent meanwhile in both
// directions arrive exactly once, and the video keeps playing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { expectChat, expectVideoFrom, joinCall, launch, screenshot, sendChat, withDiagnostics, WAIT } from '../lib/browser.js';
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

for (const transport of ['ws', 'sse']) {
  test(`a ${transport} page resumes its call after the network drops`, async () => {
    const room = `drop-${transport}`;
    const a = await joinCall(browser, server.url, { room, name: 'Alice', transport });
    const b = await joinCall(browser, server.url, { room, name: 'Bob' });
    await withDiagnostics([a, b], async () => {
      await expectVideoFrom(a.page, b.peer);
      await expectVideoFrom(b.page, a.peer);
      const session = await a.page.evaluate(() => globalThis.__switchboard.client.session);

      await a.context.setOffline(true);
      await a.page.locator('#connection-badge[data-state="reconnecting"]').waitFor({ timeout: WAIT });
      await a.page.locator('#banner', { hasText: 'Connection lost' }).waitFor();
      await screenshot(a.page, `reconnecting-${transport}`);
      await sendChat(b.page, 'said while Alice was away');
      await sendChat(a.page, 'typed while offline');
      await a.page.waitForTimeout(3000);
      await a.context.setOffline(false);

      await a.page.locator('#connection-badge[data-state="connected"]').waitFor({ timeout: WAIT });
      assert.equal(await expectChat(a.page, b.peer, 'said while Alice was away'), 1);
      assert.equal(await expectChat(b.page, a.peer, 'typed while offline'), 1);
      const after = await a.page.evaluate(() => {
        const c = globalThis.__switchboard.client;
        return { session: c.session, resumes: c.stats.resumes, sessions: c.stats.sessions };
      });
      assert.equal(after.session, session, 'the same session continues');
      assert.ok(after.resumes >= 1, 'it was resumed');
      assert.equal(after.sessions, 1);
      // Bob never saw Alice leave, and nothing arrived twice.
      assert.equal(await b.page.locator('#chat-log li.system', { hasText: 'Alice left' }).count(), 0);
      await sendChat(b.page, 'welcome back');
      assert.equal(await expectChat(a.page, b.peer, 'welcome back'), 1);
      assert.equal(await expectChat(a.page, b.peer, 'said while Alice was away'), 1);
      await expectVideoFrom(a.page, b.peer);
      await expectVideoFrom(b.page, a.peer);
    });
    await a.context.close();
    await b.context.close();
  });
}
