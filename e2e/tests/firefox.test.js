// Firefox and Chromium in one call: Debian's firefox-esr (driven by puppeteer-core over WebDriver
// BiDi, with Firefox's fake camera and microphone) and Debian's Chromium (playwright-core) see each
// other's video (decoded frames) and chat both ways, in a mesh room and in an SFU room.
// FIREFOX_PATH points at another Firefox.
//
// The SFU room's server binds its SFU to this machine's first non-loopback IPv4 address, not to
// 127.0.0.1: Debian's firefox-esr gathers no loopback candidates even with
// media.peerconnection.ice.loopback set, so it cannot pair with an SFU announcing 127.0.0.1.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import puppeteer from 'puppeteer-core';
import {
  expectChat, expectVideoFrom, joinCall, launch, sendChat, SHOTS, WAIT, withDiagnostics,
} from '../lib/browser.js';
import { startServer } from '../lib/server.js';

const FIREFOX = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';
/** An address of this machine Firefox pairs with (see above); none: the SFU test is skipped. */
const LAN = Object.values(networkInterfaces())
  .flat()
  .find((i) => i?.family === 'IPv4' && !i.internal)?.address;

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof startServer>>} */
let sfuServer;
/** @type {import('playwright-core').Browser} */
let chromium;
/** @type {import('puppeteer-core').Browser} */
let firefox;

before(async () => {
  server = await startServer();
  if (LAN) sfuServer = await startServer({ sfu: true, env: { SWITCHBOARD_SFU__BIND: LAN } });
  chromium = await launch();
  firefox = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    timeout: WAIT,
    protocolTimeout: WAIT,
    extraPrefsFirefox: {
      // Fake camera and microphone, granted without a prompt.
      'media.navigator.streams.fake': true,
      'media.navigator.permission.disabled': true,
      // Videos play without a gesture.
      'media.autoplay.default': 0,
      'media.autoplay.blocking_policy': 0,
    },
  });
});
after(async () => {
  await firefox?.close();
  await chromium?.close();
  await server?.stop();
  await sfuServer?.stop();
});

/**
 * A Firefox page that joins `room` (as `joinCall` does for Chromium).
 * @param {string} room
 * @param {string} name
 * @param {string} [base] The server's URL (default: the mesh server's).
 */
async function joinFirefox(room, name, base = server.url) {
  const context = await firefox.createBrowserContext();
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  await page.setViewport({ width: 1280, height: 800 });
  /** @type {string[]} */
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`[${name}] ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`[${name}] pageerror: ${e instanceof Error ? e.message : e}`));
  await page.goto(`${base}/?${new URLSearchParams({ room, name, autojoin: '1' })}`);
  await page.waitForSelector('#call', { visible: true });
  await page.waitForSelector('#connection-badge[data-state="connected"]');
  const handle = await page.waitForFunction(() => globalThis.__switchboard?.client?.peer ?? null);
  const peer = /** @type {string} */ (await handle.jsonValue());
  return { page, context, peer, name, console: consoleLines };
}

test('a Firefox page and a Chromium page see each other and chat both ways', async () => {
  const started = Date.now();
  const fox = await joinFirefox('crossover', 'Fiona');
  const chrome = await joinCall(chromium, server.url, { room: 'crossover', name: 'Chris' });
  await withDiagnostics([fox, chrome], async () => {
    await expectVideoFrom(chrome.page, fox.peer);
    await expectVideoFrom(fox.page, chrome.peer);

    await sendChat(chrome.page, 'hello from Chromium');
    assert.equal(await expectChat(chrome.page, 'self', 'hello from Chromium'), 1);
    await fox.page.waitForFunction(
      (peer, text) =>
        [...document.querySelectorAll(`#chat-log li[data-from="${peer}"]`)].some((li) => li.textContent?.includes(text)),
      {},
      chrome.peer,
      'hello from Chromium',
    );

    await fox.page.type('#chat-input', 'hi from Firefox');
    await fox.page.click('#chat-form button[type="submit"]');
    assert.equal(await expectChat(chrome.page, fox.peer, 'hi from Firefox'), 1);
    const inFirefox = await fox.page.evaluate(
      (peer, text) =>
        [...document.querySelectorAll(`#chat-log li[data-from="${peer}"]`)].filter((li) => li.textContent?.includes(text)).length,
      'self',
      'hi from Firefox',
    );
    assert.equal(inFirefox, 1);

    // Firefox's getStats feeds the quality indicator too (RTT on the tile).
    await fox.page.waitForFunction(
      (peer) => document.querySelector(`.tile[data-peer="${peer}"]`)?.getAttribute('data-rtt')?.match(/^\d+$/),
      {},
      chrome.peer,
    );

    // Both still playing after the chat, then a picture of the call as Firefox shows it.
    await expectVideoFrom(fox.page, chrome.peer);
    mkdirSync(SHOTS, { recursive: true });
    await fox.page.screenshot({ path: /** @type {`${string}.png`} */ (join(SHOTS, 'call-firefox.png')) });
  });
  await Promise.all([fox.context.close(), chrome.context.close()]);
  console.log(`firefox + chromium call checked in ${Date.now() - started} ms`);
});

test('a Firefox page and Chromium pages see each other through the SFU', { skip: LAN ? false : 'no non-loopback IPv4 address' }, async () => {
  const started = Date.now();
  const fox = await joinFirefox('sfu-crossover', 'Fiona', sfuServer.url);
  const chrome = await joinCall(chromium, sfuServer.url, { room: 'sfu-crossover', name: 'Chris', lowRes: true });
  const third = await joinCall(chromium, sfuServer.url, { room: 'sfu-crossover', name: 'Cleo', lowRes: true });
  await withDiagnostics([fox, chrome, third], async () => {
    assert.equal(await fox.page.evaluate(() => document.querySelector('#media-badge')?.textContent), 'SFU');
    await expectVideoFrom(fox.page, chrome.peer);
    await expectVideoFrom(fox.page, third.peer);
    // Firefox's camera (sent with its simulcast layers) reaches both Chromium pages.
    await expectVideoFrom(chrome.page, fox.peer);
    await expectVideoFrom(third.page, fox.peer);
    mkdirSync(SHOTS, { recursive: true });
    await fox.page.screenshot({ path: /** @type {`${string}.png`} */ (join(SHOTS, 'sfu-firefox.png')) });
  });
  await Promise.all([fox.context.close(), chrome.context.close(), third.context.close()]);
  console.log(`firefox + chromium SFU call checked in ${Date.now() - started} ms`);
});
