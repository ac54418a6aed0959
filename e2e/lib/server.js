// Starts the real switchboard binary on an ephemeral port with a temporary data dir and secret.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The server binary: `SWITCHBOARD_BIN`, else `target/debug/switchboard` in the repository. */
export function serverBinary() {
  const bin = process.env.SWITCHBOARD_BIN
    ? resolve(REPO, process.env.SWITCHBOARD_BIN)
    : join(REPO, 'target', 'debug', 'switchboard');
  if (!existsSync(bin)) {
    throw new Error(`no server binary at ${bin}: run \`cargo build -p switchboard\` or set SWITCHBOARD_BIN`);
  }
  return bin;
}

/**
 * @typedef {object} Server
 * @property {string} url e.g. http://127.0.0.1:41234
 * @property {number} port
 * @property {string[]} logs The server's log lines so far.
 * @property {string} dataDir Where its database lives.
 * @property {string} secret Its signing secret.
 * @property {(claims: {room: string, user: string, role?: string, name?: string}) => string} mint
 * @property {(username: string) => void} grantAdmin
 * @property {() => Promise<void>} stop
 */

/**
 * @param {{env?: Record<string, string>, sfu?: boolean, dataDir?: string, secret?: string, port?: number}} [options]
 *   Extra `SWITCHBOARD_*` settings; `sfu`: run the SFU on loopback (a UDP port the system picks,
 *   bandwidth estimation off) and make new rooms SFU rooms. `dataDir`, `secret`, `port`: a restart of an earlier server (its
 *   `dataDir`, `secret` and `port`), which keeps its database and its pages' origin; a `dataDir`
 *   given is the caller's, and `stop` leaves it in place.
 * @returns {Promise<Server>}
 */
export async function startServer(options = {}) {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'switchboard-e2e-')));
  const secret = options.secret ?? randomBytes(32).toString('hex');
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? dataDir,
    SWITCHBOARD_SECRET: secret,
    SWITCHBOARD_DATA_DIR: dataDir,
    SWITCHBOARD_LOG: process.env.SWITCHBOARD_E2E_LOG ?? 'info',
    SWITCHBOARD_LOG_FORMAT: 'text',
    NO_COLOR: '1',
    // The SFU's bandwidth estimation is off unless a test turns it on: on a loaded machine the
    // browsers' late feedback reads as congestion, and the SFU pauses video (with two busy loops
    // beside six pages, every camera on every page). Estimation with browsers has its own
    // test (bandwidth.test.js); the others check what they are about on a fixed downlink.
    ...(options.sfu
      ? {
          SWITCHBOARD_MEDIA_MODE: 'sfu',
          SWITCHBOARD_SFU__UDP_PORT: '0',
          SWITCHBOARD_SFU__BIND: '127.0.0.1',
          SWITCHBOARD_SFU__BWE: 'false',
        }
      : {}),
    ...options.env,
  };
  const child = spawn(serverBinary(), ['serve', '--listen', `127.0.0.1:${options.port ?? 0}`], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  /** @type {string[]} */
  const logs = [];
  const address = await new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${logs.join('\n')}`)), 20000);
    let buffer = '';
    const onData = (/** @type {Buffer} */ chunk) => {
      buffer += chunk.toString();
      let i;
      while ((i = buffer.indexOf('\n')) >= 0) {
        // eslint-disable-next-line no-control-regex
        const line = buffer.slice(0, i).replace(/\x1b\[[0-9;]*m/g, '');
        buffer = buffer.slice(i + 1);
        logs.push(line);
        if (logs.length > 5000) logs.shift();
        const m = /listening on http:\/\/(127\.0\.0\.1:\d+)\//.exec(line);
        if (m) {
          clearTimeout(timer);
          resolvePromise(m[1]);
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${logs.join('\n')}`));
    });
  });
  const url = `http://${address}`;
  return {
    url,
    port: Number(String(address).split(':')[1]),
    logs,
    dataDir,
    secret,
    /**
     * A token signed with this server's secret, minted by the binary's `token` command.
     * @param {{room: string, user: string, role?: string, name?: string}} claims
     */
    mint({ room, user, role = 'guest', name }) {
      const args = ['token', '--room', room, '--user', user, '--role', role, '--ttl', '10m'];
      if (name) args.push('--name', name);
      return execFileSync(serverBinary(), args, {
        env: { PATH: env.PATH, HOME: env.HOME, SWITCHBOARD_SECRET: secret, SWITCHBOARD_DATA_DIR: dataDir },
        encoding: 'utf8',
      }).trim();
    },
    /**
     * Gives the account `username` the admin grant, as an operator does: `switchboard admin`
     * on the server's machine (here: its data dir's SQLite store).
     * @param {string} username
     */
    grantAdmin(username) {
      execFileSync(serverBinary(), ['admin', username], {
        env: { PATH: env.PATH, HOME: env.HOME, SWITCHBOARD_SECRET: secret, SWITCHBOARD_DATA_DIR: dataDir },
        encoding: 'utf8',
      });
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
