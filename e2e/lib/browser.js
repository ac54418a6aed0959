// Chromium (Debian's, never a downloaded one) with fake camera and microphone, and helpers that
// drive the web app like a person and check what it shows.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { REPO } from './server.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SHOTS = join(REPO, 'target', 'e2e');

/** Every wait in the suite is bounded by this (ms) unless it says otherwise. */
export const WAIT = 30000;

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
      '--disable-renderer-backgrounding',
      '--disable-background-timer-throttling',
      '--disable-backgrounding-occluded-windows',
      '--disable-dev-shm-usage',
    ],
    timeout: WAIT,
  });
}

/**
 * A new page (in its own browser context, so storage and network are separate) at `url`, with
 * camera and microphone allowed and its console kept for diagnostics.
 * @param {import('playwright-core').Browser} browser
 * @param {string} url
 * @param {string} name Who it is, for the console lines.
 * @param {{width: number, height: number}} [viewport]
 * @param {{lowRes?: boolean | {width: number, height: number}, relay?: boolean}} [options] `lowRes`: the camera at
 *   most 320x180 (or exactly the size given), 10 frames a second (many pages on a small machine), and every
 *   `RTCPeerConnection` the page makes kept in `globalThis.__pcs` for stats. `relay`: every
 *   `RTCPeerConnection` uses TURN relay candidates alone (`iceTransportPolicy: 'relay'`), as
 *   behind a firewall that lets nothing but the TURN server through.
 */
export async function openPage(browser, url, name, viewport, options = {}) {
  const context = await browser.newContext({
    viewport: viewport ?? { width: 1280, height: 800 },
    permissions: ['camera', 'microphone'],
  });
  if (options.lowRes) {
    const size = options.lowRes === true ? { width: 320, height: 180, exact: false } : { ...options.lowRes, exact: true };
    await context.addInitScript(lowResCamera, size);
  }
  if (options.relay) await context.addInitScript(relayOnly);
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  /** @type {string[]} */
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`[${name}] ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`[${name}] pageerror: ${e.message}`));
  await page.goto(url);
  return { page, context, name, console: consoleLines };
}

/**
 * Runs in the page: a small, slow camera, and a list of the page's peer connections.
 * @param {{width: number, height: number, exact: boolean}} size
 */
function lowResCamera(size) {
  const devices = navigator.mediaDevices;
  const original = devices.getUserMedia.bind(devices);
  devices.getUserMedia = (constraints) => {
    const video = constraints?.video;
    // At most that size; exactly it (scaled, which costs CPU) only when a size was asked for.
    const small = size.exact
      ? { width: { exact: size.width }, height: { exact: size.height }, frameRate: { max: 10 }, resizeMode: 'crop-and-scale' }
      : { width: { max: size.width }, height: { max: size.height }, frameRate: { max: 10 } };
    return original({ ...constraints, video: video ? { ...(typeof video === 'object' ? video : {}), ...small } : video });
  };
  /** @type {RTCPeerConnection[]} */
  const pcs = [];
  Object.assign(globalThis, { __pcs: pcs });
  const Native = globalThis.RTCPeerConnection;
  globalThis.RTCPeerConnection = class extends Native {
    /** @param {RTCConfiguration} [config] */
    constructor(config) {
      super(config);
      pcs.push(this);
    }
  };
}

/** Runs in the page: peer connections that may only use TURN relay candidates. */
function relayOnly() {
  const Native = globalThis.RTCPeerConnection;
  globalThis.RTCPeerConnection = class extends Native {
    /** @param {RTCConfiguration} [config] */
    constructor(config) {
      super({ ...config, iceTransportPolicy: 'relay' });
    }
  };
}

/** The peer id of the page's client once it has one. @param {import('playwright-core').Page} page */
export async function peerOf(page) {
  const peer = await page.waitForFunction(() => globalThis.__switchboard?.client?.peer ?? null).then((h) => h.jsonValue());
  return /** @type {string} */ (peer);
}

/**
 * A new page ({@link openPage}) that joins `room`.
 * @param {import('playwright-core').Browser} browser
 * @param {string} base Server (or proxy) URL.
 * @param {{room: string, name: string, transport?: string, media?: string, lowRes?: boolean | {width: number, height: number}, viewport?: {width: number, height: number}, relay?: boolean}} options
 */
export async function joinCall(browser, base, { room, name, transport, media, lowRes, viewport, relay }) {
  const q = new URLSearchParams({ room, name, autojoin: '1' });
  if (transport) q.set('transport', transport);
  if (media) q.set('media', media);
  const opened = await openPage(browser, `${base}/?${q}`, name, viewport, { lowRes, relay });
  await opened.page.locator('#call').waitFor({ state: 'visible' });
  await opened.page.locator('#connection-badge[data-state="connected"]').waitFor();
  return { ...opened, peer: await peerOf(opened.page) };
}

/**
 * Waits until `page` shows `peer`'s camera video with decoded frames: a width, and a frame count
 * that keeps going up. Uses only `page.evaluate`, so it works for a Playwright page and for a
 * Puppeteer (Firefox) page alike.
 * @param {{evaluate: (fn: (sel: string) => any, arg: string) => Promise<any>}} page
 * @param {string} peer
 * @param {string} [tag]
 */
export async function expectVideoFrom(page, peer, tag = 'camera') {
  const selector = `.tile[data-peer="${peer}"][data-tag="${tag}"] video`;
  const frames = async () =>
    page.evaluate((sel) => {
      const v = /** @type {HTMLVideoElement | null} */ (document.querySelector(sel));
      if (!v) return null;
      // Firefox leaves totalVideoFrames at 0 for a MediaStream (srcObject) video; its own count of
      // frames painted (mozPaintedFrames) goes up as the video plays. Chromium has no such field.
      const painted = /** @type {{mozPaintedFrames?: number}} */ (/** @type {unknown} */ (v)).mozPaintedFrames ?? 0;
      return { width: v.videoWidth, frames: Math.max(v.getVideoPlaybackQuality().totalVideoFrames, painted), paused: v.paused };
    }, selector);
  const deadline = Date.now() + WAIT;
  let first = null;
  while (Date.now() < deadline) {
    const now = await frames();
    if (now && now.width > 0 && now.frames > 0 && !now.paused) {
      if (!first) first = now;
      else if (now.frames > first.frames + 3) return now;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no playing video from ${peer} (${tag}) on the page: last ${JSON.stringify(await frames())}`);
}

/**
 * Sends a chat message from the page's chat box.
 * @param {import('playwright-core').Page} page
 * @param {string} text
 */
export async function sendChat(page, text) {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByRole('button', { name: 'Send message' }).click();
}

/**
 * Waits for a chat message from `peer` with `text`, and returns how many such lines there are.
 * @param {import('playwright-core').Page} page
 * @param {string} peer
 * @param {string} text
 */
export async function expectChat(page, peer, text) {
  const line = page.locator(`#chat-log li[data-from="${peer}"]`, { hasText: text });
  await line.first().waitFor();
  return line.count();
}

/**
 * Saves a screenshot to target/e2e/NAME.png.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
export async function screenshot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/**
 * Runs `body`, printing the pages' console output when it fails (bounded by the test's timeout).
 * @param {{console: string[]}[]} pages
 * @param {() => Promise<void>} body
 */
export async function withDiagnostics(pages, body) {
  try {
    await body();
  } catch (error) {
    for (const p of pages) {
      for (const line of p.console.slice(-40)) console.error(line);
      const links = await p.page
        .evaluate(() => {
          const engine = globalThis.__switchboard?.rtc?.engine;
          if (!engine) return 'no call';
          if (engine.kind === 'sfu') {
            return {
              sfu: engine.pc?.connectionState,
              signaling: engine.pc?.signalingState,
              restarts: engine.restarts,
              counts: engine.counts,
              remote: [...engine.remote.byMid.values()].map((r) => `${r.peer}:${r.kind}:${r.tag}`),
              published: engine.tracks.published.size,
              own: engine.tracks.own.size,
              layers: [...document.querySelectorAll('.tile')].map((t) => `${/** @type {HTMLElement} */ (t).dataset.peer}:${/** @type {HTMLElement} */ (t).dataset.layer}`),
              encodings: engine.out.senders.get('camera:video')?.sender.getParameters().encodings.map((/** @type {any} */ e) => `${e.rid}:${e.active}`),
            };
          }
          return [...engine.links.values()].map((l) => ({
            peer: l.peer,
            polite: l.negotiation.polite,
            signaling: l.pc.signalingState,
            ice: l.pc.iceConnectionState,
            connection: l.pc.connectionState,
            receivers: l.pc.getReceivers().map((r) => `${r.track.kind}:${r.track.readyState}:${r.track.muted}`),
            streams: [...l.streams.keys()].length,
            restarts: l.restarts,
            counts: l.counts,
            local: l.pc.localDescription?.sdp?.match(/a=ice-ufrag:.*/g),
            remote: l.pc.remoteDescription?.sdp?.match(/a=ice-ufrag:.*/g),
          }));
        })
        .catch((e) => `page gone: ${e}`);
      console.error(`[${p.name}] peer ${p.peer} links: ${JSON.stringify(links)}`);
    }
    throw error;
  }
}
