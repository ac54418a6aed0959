// @ts-check
/** Guest tokens from the server's `POST /v1/token` (when the server allows guest access). */

import { SwitchboardError, errorFromResponse } from './protocol.js';

/**
 * @typedef {object} GuestToken
 * @property {string} token The JWT.
 * @property {string} user Its `sub`: a random user id.
 * @property {string} room The room it grants.
 * @property {import('./protocol.js').Role} role `host` when the room was empty, else `guest`.
 * @property {string} [name] The display name it carries.
 * @property {number} expires_at Expiry, Unix seconds.
 */

/**
 * Redeems a share code (`POST /v1/invites/{code}/redeem`): a room token, or a lobby token
 * (`lobby: true`) whose session must `knock` and wait for a host. Rejects with `not_found` for a
 * code that is unknown, used up, expired or revoked.
 * @param {{code: string, name?: string, url?: string, fetch?: typeof fetch}} options
 * @returns {Promise<GuestToken & {lobby: boolean}>}
 */
export async function redeemShareCode({ code, name, url, fetch: f }) {
  const base = (url ?? globalThis.location?.origin ?? '').replace(/\/+$/, '');
  const doFetch = f ?? globalThis.fetch.bind(globalThis);
  let response;
  try {
    response = await doFetch(`${base}/v1/invites/${encodeURIComponent(code)}/redeem`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(name ? { name } : {}),
      cache: 'no-store',
    });
  } catch {
    throw new SwitchboardError('unreachable', 'the server cannot be reached');
  }
  if (!response.ok) throw await errorFromResponse(response);
  return response.json();
}

/**
 * Asks the server for a guest token for `room`. Rejects with `forbidden` when the server has guest
 * access off, `invalid_message` for a bad room id or name.
 * @param {{room: string, name?: string, url?: string, fetch?: typeof fetch}} options
 * @returns {Promise<GuestToken>}
 */
export async function requestGuestToken({ room, name, url, fetch: f }) {
  const base = (url ?? globalThis.location?.origin ?? '').replace(/\/+$/, '');
  const doFetch = f ?? globalThis.fetch.bind(globalThis);
  let response;
  try {
    response = await doFetch(`${base}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(name ? { room, name } : { room }),
      cache: 'no-store',
    });
  } catch {
    throw new SwitchboardError('unreachable', 'the server cannot be reached');
  }
  if (!response.ok) throw await errorFromResponse(response);
  return response.json();
}
