// Two people in one room: video both ways, chat both ways, mute, screen share (renegotiation),
// quality indicator, leaving; and the messages a person sees when things go wrong.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  expectChat, expectVideoFrom, joinCall, launch, screenshot, sendChat, withDiagnostics, WAIT,
} from '../lib/browser.js';
import { startServer } from '../lib/server.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  server = await startServer({ env: { SWITCHBOARD_MAX_PEERS: '2' } });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the lobby offers a room, a name and an invite link', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${server.url}/?room=standup`);
  assert.equal(await page.getByLabel('Room', { exact: true }).inputValue(), 'standup');
  assert.equal(await page.getByLabel('Invite link', { exact: true }).inputValue(), `${server.url}/?room=standup`);
  await page.getByLabel('Your name').fill('Ann');
  await screenshot(page, 'lobby');
  await page.getByLabel('Room', { exact: true }).fill('bad room!');
  await page.getByRole('button', { name: 'Join call' }).click();
  await page.getByRole('alert').filter({ hasText: 'Room names are' }).waitFor();
  await context.close();
});

test('two pages see each other, chat both ways, mute, share a screen and leave', async () => {
  const a = await joinCall(browser, server.url, { room: 'duo', name: 'Alice' });
  const b = await joinCall(browser, server.url, { room: 'duo', name: 'Bob' });
  await withDiagnostics([a, b], async () => {
    await expectVideoFrom(a.page, b.peer);
    await expectVideoFrom(b.page, a.peer);
    assert.equal(await a.page.locator('#transport-badge').textContent(), 'WebSocket');
    // Once the video plays, neither list still says the other is connecting (it did until the
    // next two-second quality sample).
    for (const [page, peer] of [[a.page, b.peer], [b.page, a.peer]]) {
      const stats = await page.locator(`#people li[data-peer="${peer}"] .stats`).textContent();
      assert.notEqual(stats, 'connecting…');
    }

    // The first one into the room is its host, and both lists say so.
    await a.page.locator(`#people li[data-peer="${a.peer}"] .host-badge`).waitFor();
    await b.page.locator(`#people li[data-peer="${a.peer}"] .host-badge`).waitFor();
    assert.equal(await b.page.locator(`#people li[data-peer="${b.peer}"] .host-badge`).count(), 0);

    await sendChat(a.page, 'hello from Alice');
    assert.equal(await expectChat(b.page, a.peer, 'hello from Alice'), 1);
    await sendChat(b.page, 'hi Alice, Bob here');
    assert.equal(await expectChat(a.page, b.peer, 'hi Alice, Bob here'), 1);

    // The quality indicator measures the connection (RTT from getStats).
    await a.page.waitForFunction(
      (peer) => document.querySelector(`.tile[data-peer="${peer}"]`)?.getAttribute('data-rtt')?.match(/^\d+$/),
      b.peer,
      { timeout: WAIT },
    );
    await a.page.locator(`#people li[data-peer="${b.peer}"] .stats`, { hasText: 'RTT' }).waitFor();

    // Bob mutes: Alice's tile for Bob says so.
    await b.page.getByRole('button', { name: 'Microphone on (click to mute)' }).click();
    await a.page.locator(`.tile[data-peer="${b.peer}"].mic-off`).waitFor();
    await b.page.getByRole('button', { name: 'Microphone muted (click to unmute)' }).click();
    await a.page.locator(`.tile[data-peer="${b.peer}"]:not(.mic-off)`).waitFor();

    // Alice turns her camera off (the track is stopped, no renegotiation) and on again.
    await a.page.getByRole('button', { name: 'Camera on (click to turn off)' }).click();
    await b.page.locator(`.tile[data-peer="${a.peer}"].no-video`).waitFor();
    await a.page.getByRole('button', { name: 'Camera off (click to turn on)' }).click();
    await b.page.locator(`.tile[data-peer="${a.peer}"]:not(.no-video)`).waitFor();
    await expectVideoFrom(b.page, a.peer);

    // Screen share adds a track: the connection renegotiates and Bob sees a second video.
    await a.page.getByRole('button', { name: 'Share your screen' }).click();
    await expectVideoFrom(b.page, a.peer, 'screen');
    await screenshot(a.page, 'call-two-pages');
    await screenshot(b.page, 'call-screen-share');
    await a.page.getByRole('button', { name: 'Stop sharing your screen' }).click();
    await b.page.locator(`.tile[data-peer="${a.peer}"][data-tag="screen"]`).waitFor({ state: 'detached' });
    await expectVideoFrom(b.page, a.peer);

    // A narrow (phone) window still shows the call.
    await b.page.setViewportSize({ width: 390, height: 800 });
    await screenshot(b.page, 'call-narrow');

    await b.page.getByRole('button', { name: 'Leave the call' }).click();
    await b.page.locator('#lobby').waitFor();
    await a.page.locator(`.tile[data-peer="${b.peer}"]`).waitFor({ state: 'detached' });
    await a.page.locator('#chat-log li.system', { hasText: 'Bob left' }).waitFor();
  });
  await a.context.close();
  await b.context.close();
});

test('a full room and a denied camera are explained', async () => {
  const a = await joinCall(browser, server.url, { room: 'pair', name: 'Alice' });
  // Camera and microphone refused: the page joins anyway, says why, and still shows the others.
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.addInitScript(() => {
    navigator.mediaDevices.getUserMedia = async () => {
      throw new DOMException('Permission denied', 'NotAllowedError');
    };
  });
  const page = await context.newPage();
  await page.goto(`${server.url}/?room=pair&name=Dora&autojoin=1`);
  await page.locator('#media-notice', { hasText: 'was denied' }).waitFor();
  await page.locator('#connection-badge[data-state="connected"]').waitFor();
  await expectVideoFrom(page, a.peer);
  await screenshot(page, 'camera-denied');
  // The room holds two (SWITCHBOARD_MAX_PEERS=2): a third is told it is full.
  const third = await browser.newContext();
  const p3 = await third.newPage();
  await p3.goto(`${server.url}/?room=pair&name=Carl&autojoin=1`);
  await p3.locator('#lobby-error', { hasText: 'This room is full (2 people at most)' }).waitFor();
  await screenshot(p3, 'room-full');
  await Promise.all([a.context.close(), context.close(), third.close()]);
});
