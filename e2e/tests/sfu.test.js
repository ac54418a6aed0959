// Six pages in one SFU room (the server's SFU on loopback): each decodes the five others' video
// and sends its camera once, over one RTCPeerConnection; the speaker view's large tile gets a
// higher simulcast layer than grid tiles; a screen share reaches the others as a screen; a host
// turns a guest's microphone off and the guest sees it. Small cameras (320x180,
// 10 frames a second) keep six pages affordable on two cores.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { expectVideoFrom, joinCall, launch, screenshot, withDiagnostics } from '../lib/browser.js';
import { startServer } from '../lib/server.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  server = await startServer({ sfu: true });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * What a page's own stats say: per remote member, frames decoded on the inbound video tracks
 * it carries; and the video it sends (sources, and which connections send bytes).
 * @param {import('playwright-core').Page} page
 */
function mediaStats(page) {
  return page.evaluate(async () => {
    const g = /** @type {any} */ (globalThis);
    const engine = g.__switchboard.rtc.engine;
    /** @type {Record<string, number>} */
    const decoded = {};
    const sources = new Set();
    let sendingPcs = 0;
    let open = 0;
    for (const pc of /** @type {RTCPeerConnection[]} */ (g.__pcs)) {
      if (pc.connectionState === 'closed') continue;
      open += 1;
      let sent = 0;
      for (const s of (await pc.getStats()).values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'video' && pc === engine.pc) {
          const peer = engine.remote.byMid.get(s.mid)?.peer;
          if (peer) decoded[peer] = Math.max(decoded[peer] ?? 0, s.framesDecoded ?? 0);
        }
        if (s.type === 'outbound-rtp' && s.kind === 'video' && s.bytesSent > 0) {
          sent += s.bytesSent;
          sources.add(s.mediaSourceId);
        }
      }
      if (sent > 0) sendingPcs += 1;
    }
    return { decoded, sources: sources.size, sendingPcs, open, kind: engine.kind };
  });
}

test('six pages in an SFU room see each other, share a screen, and a host mutes a guest', async () => {
  const started = Date.now();
  const names = ['Hana', 'Ben', 'Cat', 'Dan', 'Eve', 'Fay'];
  const join = (/** @type {string} */ name) =>
    joinCall(browser, server.url, { room: 'six', name, lowRes: true, viewport: { width: 1000, height: 700 } });
  // The first one in is the room's host; the others join together.
  const pages = [await join(names[0])];
  pages.push(...(await Promise.all(names.slice(1).map(join))));
  const [host, guest] = pages;
  await withDiagnostics(pages, async () => {
    await Promise.all(
      pages.map(async (viewer) => {
        assert.equal(await viewer.page.locator('#media-badge').textContent(), 'SFU');
        for (const other of pages) if (other !== viewer) await expectVideoFrom(viewer.page, other.peer);
      }),
    );
    // Sound plays: no tile fell back to muted playback.
    for (const p of pages) assert.equal(await p.page.getByRole('button', { name: /^Enable sound/ }).count(), 0, p.name);

    // The stats say the same: frames decoded from five members, going up; one camera sent once.
    const first = await Promise.all(pages.map((p) => mediaStats(p.page)));
    await new Promise((r) => setTimeout(r, 1500));
    const second = await Promise.all(pages.map((p) => mediaStats(p.page)));
    for (const [i, p] of pages.entries()) {
      const others = pages.filter((o) => o !== p).map((o) => o.peer).sort();
      assert.deepEqual(Object.keys(second[i].decoded).sort(), others, `${p.name} decodes the five others`);
      for (const peer of others) {
        assert.ok(second[i].decoded[peer] > first[i].decoded[peer], `${p.name}: frames from ${peer} go up`);
      }
      assert.equal(second[i].kind, 'sfu');
      assert.equal(second[i].open, 1, `${p.name} has one connection`);
      assert.equal(second[i].sendingPcs, 1, `${p.name} sends video on one connection`);
      assert.equal(second[i].sources, 1, `${p.name} sends one camera (its simulcast layers share the source)`);
    }
    // Each member's connection quality is shown (the SFU connection's RTT).
    await host.page.locator(`#people li[data-peer="${guest.peer}"] .stats`, { hasText: 'RTT' }).waitFor();
    await screenshot(host.page, 'sfu-six-pages');

    // The speaker view shows one member large: its tile's size asks the SFU for a higher layer
    // of that camera than the small grid tiles get (stream_state tells the layer).
    await host.page.evaluate(() => {
      const g = /** @type {any} */ (globalThis);
      g.__layers = {};
      g.__switchboard.rtc.on('stream_state', (/** @type {any} */ e) => (g.__layers[e.peer] = e.layer ?? e.state));
    });
    await host.page.getByRole('button', { name: 'Speaker view' }).click();
    const main = await host.page.locator('.tile.main').getAttribute('data-peer');
    assert.ok(main && main !== 'self', 'a remote member is shown large');
    await host.page.waitForFunction((peer) => ['h', 'f'].includes(/** @type {any} */ (globalThis).__layers[peer]), main);
    await screenshot(host.page, 'sfu-speaker-view');
    await host.page.getByRole('button', { name: 'Grid view' }).click();
    await host.page.waitForFunction((peer) => /** @type {any} */ (globalThis).__layers[peer] === 'q', main);

    // A screen share is its own track, tagged: the others show it as a screen.
    await pages[2].page.getByRole('button', { name: 'Share your screen' }).click();
    for (const viewer of [host, guest]) await expectVideoFrom(viewer.page, pages[2].peer, 'screen');
    await pages[2].page.getByRole('button', { name: 'Stop sharing your screen' }).click();
    await host.page.locator(`.tile[data-peer="${pages[2].peer}"][data-tag="screen"]`).waitFor({ state: 'detached' });

    // The host (first in) turns Ben's microphone off: Ben's page says so and stops sending it.
    await host.page.getByRole('button', { name: "Mute Ben's microphone" }).click();
    await guest.page.locator('#chat-log li.system', { hasText: 'turned off your microphone' }).waitFor();
    await guest.page.getByRole('button', { name: 'Microphone muted (click to unmute)' }).waitFor();
    const enabled = await guest.page.evaluate(() => /** @type {any} */ (globalThis).__switchboard.call.stream.getAudioTracks()[0].enabled);
    assert.equal(enabled, false);
    await host.page.locator(`.tile[data-peer="${guest.peer}"].mic-off`).waitFor();
    // Ben turns it on again himself.
    await guest.page.getByRole('button', { name: 'Microphone muted (click to unmute)' }).click();
    await host.page.locator(`.tile[data-peer="${guest.peer}"]:not(.mic-off)`).waitFor();
  });
  await Promise.all(pages.map((p) => p.context.close()));
  console.log(`six-page SFU room checked in ${Date.now() - started} ms`);
});
