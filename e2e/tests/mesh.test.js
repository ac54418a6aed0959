// Four pages in one room form a full mesh: each shows the three others' video playing; a closed
// tab leaves at once.
import { after, before, test } from 'node:test';
import { expectVideoFrom, joinCall, launch, screenshot, withDiagnostics } from '../lib/browser.js';
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

test('four pages form a full mesh', async () => {
  const names = ['Ann', 'Ben', 'Cat', 'Dan'];
  const pages = [];
  for (const name of names) pages.push(await joinCall(browser, server.url, { room: 'four', name }));
  await withDiagnostics(pages, async () => {
    for (const viewer of pages) {
      for (const other of pages) {
        if (other !== viewer) await expectVideoFrom(viewer.page, other.peer);
      }
      await viewer.page.locator('#people-count', { hasText: '4' }).waitFor();
    }
    await screenshot(pages[3].page, 'call-four-pages');
    // Closing a tab hangs up at once (pagehide): the others see it leave, not after resume_ms.
    const gone = pages.pop();
    await gone.page.close();
    for (const viewer of pages) {
      await viewer.page.locator(`.tile[data-peer="${gone.peer}"]`).waitFor({ state: 'detached', timeout: 10000 });
      await viewer.page.locator('#people-count', { hasText: '3' }).waitFor({ timeout: 10000 });
    }
  });
  await Promise.all(pages.map((p) => p.context.close()));
});
