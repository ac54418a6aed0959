// Six pages in one SFU room (the server's SFU on loopback): each decodes the five others' video
// and sends its camera once, over one RTCPeerConnection; a screen share reaches the others as a
// screen; a host turns a guest's microphone off and the guest sees it. Small cameras (320x180,
// 10 frames a second, sent as one encoding) keep six pages affordable on two cores. Then three
// pages with 360p cameras (two simulcast layers): the speaker view's large tile gets the higher
// layer, grid tiles the lower one, and the video plays on through each switch. The downlink is
// fixed (the harness turns bandwidth estimation off): the layers follow tile sizes alone.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WAIT, expectVideoFrom, joinCall, launch, screenshot, withDiagnostics } from '../lib/browser.js';
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

    // The stats say the same: frames decoded from five members, going up (within WAIT, for a
    // loaded machine); one camera sent once.
    const first = await Promise.all(pages.map((p) => mediaStats(p.page)));
    /** @type {Awaited<ReturnType<typeof mediaStats>>[]} */
    let second = [];
    const deadline = Date.now() + WAIT;
    const risen = () =>
      pages.every((p, i) => pages.every((o) => o === p || (second[i]?.decoded[o.peer] ?? 0) > (first[i].decoded[o.peer] ?? 0)));
    do {
      await new Promise((r) => setTimeout(r, 1000));
      second = await Promise.all(pages.map((p) => mediaStats(p.page)));
    } while (!risen() && Date.now() < deadline);
    for (const [i, p] of pages.entries()) {
      const others = pages.filter((o) => o !== p).map((o) => o.peer).sort();
      assert.deepEqual(Object.keys(second[i].decoded).sort(), others, `${p.name} decodes the five others`);
      for (const peer of others) {
        const [before, now] = [first[i].decoded[peer], second[i].decoded[peer]];
        assert.ok(now > before, `${p.name}: frames from ${peer} go up (${before} -> ${now})`);
      }
      assert.equal(second[i].kind, 'sfu');
      assert.equal(second[i].open, 1, `${p.name} has one connection`);
      assert.equal(second[i].sendingPcs, 1, `${p.name} sends video on one connection`);
      assert.equal(second[i].sources, 1, `${p.name} sends one camera (its simulcast layers share the source)`);
    }
    // Each member's connection quality is shown (the SFU connection's RTT).
    await host.page.locator(`#people li[data-peer="${guest.peer}"] .stats`, { hasText: 'RTT' }).waitFor();
    await screenshot(host.page, 'sfu-six-pages');

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

test('simulcast: a large tile gets the higher layer, a small one the lower, and both play', async () => {
  const join = (/** @type {string} */ name) =>
    joinCall(browser, server.url, { room: 'layers', name, lowRes: { width: 640, height: 360 }, viewport: { width: 1000, height: 700 } });
  const pages = [await join('Lia'), await join('Max'), await join('Noa')];
  const [viewer] = pages;
  try {
    await withDiagnostics(pages, async () => {
      for (const other of pages.slice(1)) await expectVideoFrom(viewer.page, other.peer);
      // Quiet microphones, so the large tile stays with one member (the fake audio beeps).
      for (const p of pages.slice(1)) await p.page.getByRole('button', { name: 'Microphone on (click to mute)' }).click();
      await viewer.page.getByRole('button', { name: 'Speaker view' }).click();
      // The large tile's member comes at the 360p layer, the strip's at the 180p one.
      // (Each tile's data-layer is the SFU's stream_state for it.)
      const handle = await viewer.page.waitForFunction(() => {
        const main = /** @type {HTMLElement | null} */ (document.querySelector('.tile.main'));
        const strip = /** @type {HTMLElement[]} */ ([...document.querySelectorAll('.tile:not(.main):not(.local)')]);
        const ok = main && !main.classList.contains('local') && main.dataset.layer === 'h' && strip.length > 0 && strip.every((t) => t.dataset.layer === 'q');
        return ok ? { main: main.dataset.peer, strip: strip.map((t) => t.dataset.peer) } : null;
      });
      const { main, strip } = /** @type {{main: string, strip: string[]}} */ (await handle.jsonValue());
      await expectVideoFrom(viewer.page, main);
      for (const peer of strip) await expectVideoFrom(viewer.page, peer);
      // The large tile's picture is the bigger one (both may be scaled down by a loaded machine's
      // encoder, so compare them rather than expect 640 pixels).
      await viewer.page.waitForFunction(
        ([big, small]) => {
          const width = (/** @type {string} */ p) =>
            /** @type {HTMLVideoElement} */ (document.querySelector(`.tile[data-peer="${p}"] video`)).videoWidth;
          return width(big) > width(small);
        },
        [main, strip[0]],
      );
      // The viewer speaking highlights her own tile but never takes the large one: a speaker
      // view shows the others. (Her microphone's meter is made to read loud: the fake
      // device's beeps are short, and a loaded machine's timers can miss them.)
      await viewer.page.evaluate(() => {
        const g = /** @type {any} */ (globalThis);
        const own = /** @type {HTMLElement} */ (document.querySelector('.tile.local'));
        g.__ownTileWasMain = false;
        new MutationObserver(() => {
          if (own.classList.contains('main')) g.__ownTileWasMain = true;
        }).observe(own, { attributes: true, attributeFilter: ['class'] });
        g.__switchboard.call.activity.meter.level = () => 1;
      });
      await viewer.page.locator('.tile.local.speaking').waitFor();
      // A second more of her speaking: the SFU's speakers event (which names her too) comes.
      await viewer.page.waitForTimeout(1000);
      assert.equal(await viewer.page.evaluate(() => /** @type {any} */ (globalThis).__ownTileWasMain), false);
      assert.equal(await viewer.page.locator('.tile.main').getAttribute('data-peer'), main);
      await screenshot(viewer.page, 'sfu-speaker-view');
      await viewer.page.getByRole('button', { name: 'Grid view' }).click();
      await viewer.page.locator(`.tile[data-peer="${main}"][data-layer="q"]`).waitFor();
      await expectVideoFrom(viewer.page, /** @type {string} */ (main));
    });
  } finally {
    await Promise.all(pages.map((p) => p.context.close()));
  }
});
