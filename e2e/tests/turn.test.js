// Browsers that can reach nothing but a TURN server still hold an SFU call: each page may use
// TURN relay candidates alone (`iceTransportPolicy: 'relay'`, as behind a firewall that lets only
// the TURN server through), so its media reaches the SFU's UDP port through coturn, with the
// time-limited credentials the server hands out (`turn_secret`, `turn_urls`). The SFU is
// ICE-lite: it answers the checks that arrive from the TURN server's relayed address like any
// other, and sends its media back there.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { after, before, test } from 'node:test';
import { expectVideoFrom, joinCall, launch, withDiagnostics } from '../lib/browser.js';
import { startServer } from '../lib/server.js';

const TURNSERVER = process.env.TURNSERVER_PATH ?? '/usr/bin/turnserver';
const SECRET = 'e2e-turn-shared-secret';

/** @type {import('node:child_process').ChildProcess} */
let coturn;
/** @type {string[]} */
const coturnLog = [];
/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

/** A UDP port free on 127.0.0.1 a moment ago. */
async function freeUdpPort() {
  const socket = createSocket('udp4');
  await new Promise((ok) => socket.bind(0, '127.0.0.1', () => ok(undefined)));
  const { port } = socket.address();
  await new Promise((ok) => socket.close(() => ok(undefined)));
  return port;
}

/** coturn on 127.0.0.1:`port`, relaying on loopback, with the shared secret; resolves once it listens. */
async function startCoturn(/** @type {number} */ port) {
  const child = spawn(
    TURNSERVER,
    [
      '-n', // no configuration file
      '--listening-ip=127.0.0.1',
      `--listening-port=${port}`,
      '--relay-ip=127.0.0.1',
      // The SFU is on loopback too; coturn refuses loopback peers unless told.
      '--allow-loopback-peers',
      '--use-auth-secret',
      `--static-auth-secret=${SECRET}`,
      '--realm=switchboard.test',
      '--fingerprint',
      '--no-tcp',
      '--no-tls',
      '--no-dtls',
      '--no-cli',
      '--log-file=stdout',
      '--verbose',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const listening = new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`coturn did not start:\n${coturnLog.join('')}`)), 10000);
    const read = (/** @type {Buffer} */ chunk) => {
      coturnLog.push(chunk.toString());
      if (/listener opened on/i.test(coturnLog.join(''))) {
        clearTimeout(timer);
        ok(undefined);
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    child.on('exit', (code) => fail(new Error(`coturn exited (${code}):\n${coturnLog.join('')}`)));
  });
  await listening;
  return child;
}

before(async () => {
  const port = await freeUdpPort();
  coturn = await startCoturn(port);
  server = await startServer({
    sfu: true,
    env: {
      SWITCHBOARD_TURN_SECRET: SECRET,
      SWITCHBOARD_TURN_URLS: JSON.stringify([`turn:127.0.0.1:${port}?transport=udp`]),
    },
  });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  coturn?.kill();
});

/**
 * The candidate types of the pairs the page's connections send media on (`relay` through TURN).
 * @param {import('playwright-core').Page} page
 */
async function selectedCandidateTypes(page) {
  return page.evaluate(async () => {
    const types = [];
    for (const pc of /** @type {RTCPeerConnection[]} */ (globalThis.__pcs)) {
      if (pc.connectionState !== 'connected') continue;
      const stats = [...(await pc.getStats()).values()];
      const byId = new Map(stats.map((s) => [s.id, s]));
      for (const transport of stats.filter((s) => s.type === 'transport' && s.selectedCandidatePairId)) {
        const pair = byId.get(transport.selectedCandidatePairId);
        types.push(byId.get(pair?.localCandidateId)?.candidateType ?? 'unknown');
      }
    }
    return types;
  });
}

test('pages that can only reach a TURN server hold an SFU call through it', async () => {
  const join = (/** @type {string} */ name) =>
    joinCall(browser, server.url, { room: 'relayed', name, lowRes: true, relay: true });
  const pages = [await join('Sam'), await join('Tess')];
  const [sam, tess] = pages;
  try {
    await withDiagnostics(pages, async () => {
      await expectVideoFrom(sam.page, tess.peer);
      await expectVideoFrom(tess.page, sam.peer);
      for (const p of pages) {
        assert.equal(await p.page.evaluate(() => globalThis.__switchboard.rtc.engine.kind), 'sfu');
        const types = await selectedCandidateTypes(p.page);
        assert.ok(types.length > 0, `${p.name} has a connected transport`);
        assert.deepEqual(new Set(types), new Set(['relay']), `${p.name}'s media goes through TURN: ${types}`);
      }
      // coturn took the credentials the server minted (an allocation for each page).
      const allocations = coturnLog.join('').match(/ALLOCATE processed, success/g) ?? [];
      assert.ok(allocations.length >= 2, coturnLog.join(''));
    });
  } finally {
    await Promise.all(pages.map((p) => p.context.close()));
  }
});
