// A subscriber whose downlink cannot carry even the lowest simulcast layer (the SFU's
// `sfu.downlink_kbps` set below it) gets `stream_state` `paused_for_bandwidth` for the others'
// cameras, and the app says so on their tiles instead of showing a still picture as if the call
// had frozen. And with the SFU's bandwidth estimation (`sfu.bwe`) started low, a browser's
// feedback raises the estimate and its large tile moves up a layer.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { expectVideoFrom, joinCall, launch, screenshot, withDiagnostics } from '../lib/browser.js';
import { startServer } from '../lib/server.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  // A fixed downlink (no estimate: sfu.bwe is turned off, since an estimate would grow on
  // loopback) of 100 kbit/s: under the
  // lowest layer's nominal 150 kbit/s (docs/sfu.md, simulcast).
  server = await startServer({
    sfu: true,
    env: { SWITCHBOARD_SFU__BWE: 'false', SWITCHBOARD_SFU__DOWNLINK_KBPS: '100' },
  });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a tile paused for bandwidth says so', async () => {
  // 360p cameras, so they are sent as simulcast layers.
  const join = (/** @type {string} */ name) =>
    joinCall(browser, server.url, { room: 'thin', name, lowRes: { width: 640, height: 360 } });
  const pages = [await join('Ola'), await join('Pim')];
  const [ola, pim] = pages;
  await withDiagnostics(pages, async () => {
    const tile = ola.page.locator(`.tile[data-peer="${pim.peer}"][data-tag="camera"]`);
    await tile.and(ola.page.locator('[data-layer="paused_for_bandwidth"]')).waitFor();
    const note = tile.locator('.bandwidth-note');
    await note.waitFor({ state: 'visible' });
    assert.equal(await note.textContent(), 'Paused: low bandwidth');
    // Its own tile never carries the note.
    assert.equal(await ola.page.locator('.tile.local .bandwidth-note').isVisible(), false);
    await screenshot(ola.page, 'sfu-paused-for-bandwidth');
  });
  await Promise.all(pages.map((p) => p.context.close()));
});

test('with bandwidth estimation, a browser starting low is raised to the layer its tile needs', async () => {
  // Started at 300 kbit/s, the estimate carries the 180p layer only (360p is 500 kbit/s); on
  // loopback the browser's transport-wide feedback lets it grow.
  const estimating = await startServer({
    sfu: true,
    env: { SWITCHBOARD_SFU__BWE: 'true', SWITCHBOARD_SFU__DOWNLINK_KBPS: '300' },
  });
  const join = (/** @type {string} */ name) =>
    joinCall(browser, estimating.url, {
      room: 'growing',
      name,
      lowRes: { width: 640, height: 360 },
      viewport: { width: 1000, height: 700 },
    });
  const pages = [await join('Quin'), await join('Rae')];
  const [quin, rae] = pages;
  try {
    await withDiagnostics(pages, async () => {
      const tile = quin.page.locator(`.tile[data-peer="${rae.peer}"][data-tag="camera"]`);
      await tile.and(quin.page.locator('[data-layer="q"]')).waitFor();
      await quin.page.getByRole('button', { name: 'Speaker view' }).click();
      // The large tile needs 360p; the estimate, not the fixed start, lets it have it.
      await tile.and(quin.page.locator('[data-layer="h"]')).waitFor({ timeout: 60000 });
      await expectVideoFrom(quin.page, rae.peer);
    });
  } finally {
    await Promise.all(pages.map((p) => p.context.close()));
    await estimating.stop();
  }
});
