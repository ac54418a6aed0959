// The `auto` media mode in real browsers: two pages call over the mesh, a third moves the room to
// the SFU and every page keeps showing the others (the same tiles, new streams, one connection),
// and when the third leaves the room goes back to the mesh. A host that joins with `?media=`
// sets the room's media.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { expectVideoFrom, joinCall, launch, screenshot, withDiagnostics } from '../lib/browser.js';
import { startServer } from '../lib/server.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  // The SFU on loopback, rooms in `auto` (the default setting).
  server = await startServer({ sfu: true, env: { SWITCHBOARD_MEDIA_MODE: 'auto' } });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * What carries the page's media, and how many of its peer connections are open.
 * @param {import('playwright-core').Page} page
 */
function media(page) {
  return page.evaluate(() => {
    const g = /** @type {any} */ (globalThis);
    return {
      kind: g.__switchboard.rtc.engine.kind,
      open: g.__pcs.filter((/** @type {RTCPeerConnection} */ pc) => pc.connectionState !== 'closed').length,
    };
  });
}

/**
 * Marks the tile of `peer` on `page`, to tell later whether it is still the same element.
 * @param {import('playwright-core').Page} page
 * @param {string} peer
 */
function markTile(page, peer) {
  return page.evaluate((p) => {
    const tile = /** @type {any} */ (document.querySelector(`.tile[data-peer="${p}"][data-tag="camera"]`));
    tile.__marked = true;
  }, peer);
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} peer
 */
function stillMarked(page, peer) {
  return page.evaluate(
    (p) => /** @type {any} */ (document.querySelector(`.tile[data-peer="${p}"][data-tag="camera"]`))?.__marked === true,
    peer,
  );
}

test('auto: mesh for two, the SFU at three, mesh again at two, without a hang-up', async () => {
  const started = Date.now();
  const opts = { room: 'auto', lowRes: true };
  const a = await joinCall(browser, server.url, { ...opts, name: 'Ann' });
  const b = await joinCall(browser, server.url, { ...opts, name: 'Bo' });
  /** @type {Awaited<ReturnType<typeof joinCall>> | null} */
  let c = null;
  await withDiagnostics([a, b], async () => {
    await expectVideoFrom(a.page, b.peer);
    await expectVideoFrom(b.page, a.peer);
    assert.equal(await a.page.locator('#media-badge').textContent(), 'Mesh');
    assert.deepEqual(await media(a.page), { kind: 'mesh', open: 1 });
    await markTile(a.page, b.peer);

    // A third member: every page moves to the SFU and shows the two others through it.
    c = await joinCall(browser, server.url, { ...opts, name: 'Cy' });
    const three = [a, b, c];
    for (const p of three) await p.page.locator('#media-badge', { hasText: 'SFU' }).waitFor();
    for (const viewer of three) {
      for (const other of three) if (other !== viewer) await expectVideoFrom(viewer.page, other.peer);
    }
    // The mesh connection was let go once the SFU carried the other member: one connection each.
    for (const p of three) await p.page.waitForFunction(() => /** @type {any} */ (globalThis).__pcs.filter((/** @type {RTCPeerConnection} */ pc) => pc.connectionState !== 'closed').length === 1);
    assert.deepEqual(await media(a.page), { kind: 'sfu', open: 1 });
    // Bo's tile on Ann's page is the same element: its stream was replaced, nobody left.
    assert.equal(await stillMarked(a.page, b.peer), true);
    assert.equal(await a.page.locator('#chat-log li.system', { hasText: 'Bo left' }).count(), 0);
    await screenshot(a.page, 'auto-sfu-three');

    // Cy leaves: 5 s later the room is a mesh again, and Ann and Bo see each other over it.
    await c.page.getByRole('button', { name: 'Leave the call' }).click();
    for (const p of [a, b]) await p.page.locator('#media-badge', { hasText: 'Mesh' }).waitFor({ timeout: 15000 });
    await expectVideoFrom(a.page, b.peer);
    await expectVideoFrom(b.page, a.peer);
    await a.page.waitForFunction(() => /** @type {any} */ (globalThis).__switchboard.rtc.retiring === null);
    assert.deepEqual(await media(a.page), { kind: 'mesh', open: 1 });
    assert.equal(await stillMarked(a.page, b.peer), true);
  });
  await Promise.all([a, b, /** @type {any} */ (c)].map((p) => p.context.close()));
  console.log(`auto 2 -> 3 -> 2 checked in ${Date.now() - started} ms`);
});

test('a host joining with ?media=sfu sets the room to the SFU', async () => {
  const host = await joinCall(browser, server.url, { room: 'chosen', name: 'Hal', media: 'sfu', lowRes: true });
  const guest = await joinCall(browser, server.url, { room: 'chosen', name: 'Gil', lowRes: true });
  await withDiagnostics([host, guest], async () => {
    for (const p of [host, guest]) await p.page.locator('#media-badge', { hasText: 'SFU' }).waitFor();
    assert.equal(await host.page.locator('#media-select').inputValue(), 'sfu');
    await expectVideoFrom(guest.page, host.peer);
    await expectVideoFrom(host.page, guest.peer);
    // Two members, yet the SFU: the setting is `sfu`, not `auto`.
    assert.equal((await media(guest.page)).kind, 'sfu');
    // The host sets it back to automatic: two members, so the mesh.
    await host.page.locator('#media-select').selectOption('auto');
    for (const p of [host, guest]) await p.page.locator('#media-badge', { hasText: 'Mesh' }).waitFor();
    await expectVideoFrom(guest.page, host.peer);
  });
  await Promise.all([host.context.close(), guest.context.close()]);
});
