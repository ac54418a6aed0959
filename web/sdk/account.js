// @ts-check
/**
 * The control API's client for a signed-in person (docs/api.md): register, sign in and out, the
 * account's rooms, their share codes, and room tokens for them. It owns the login: the access
 * token in memory, the refresh token in a `Storage` so a reload keeps the login, and the rule
 * that a refresh token is spent exactly once (the server signs a login out everywhere when a
 * spent one comes back, so two refreshes must never race).
 *
 * Every failure is a {@link SwitchboardError} with the server's code (`unauthorized`, `conflict`,
 * `not_found`, `rate_limited` with `retryAfter` seconds, ...), or `unreachable` when there is no
 * answer.
 */

import { Emitter } from './emitter.js';
import { SwitchboardError, errorFromResponse } from './protocol.js';

/**
 * @typedef {object} Account
 * @property {string} id
 * @property {string} username Lower case.
 * @property {string} display_name
 * @property {boolean} admin Holds the admin grant (sees every room).
 * @property {number} created_at Unix seconds.
 */

/** @typedef {'auto' | 'mesh' | 'sfu'} Media */

/**
 * @typedef {object} Room A stored room.
 * @property {string} id The signaling room id.
 * @property {string} name
 * @property {string} owner The owning account's id.
 * @property {'free_for_all' | 'host_only'} mode
 * @property {Media} media
 * @property {boolean} lobby Share-code guests wait for a host.
 * @property {number | null} [max_peers] `null`: the server's limit.
 * @property {number | null} [expires_at] Unix seconds; `null`: persistent.
 * @property {number} created_at
 * @property {number} updated_at
 */

/**
 * @typedef {object} RoomRequest What `createRoom` takes; every field is optional.
 * @property {string} [id] Default: a random id.
 * @property {string} [name] Default: the id.
 * @property {number} [max_peers]
 * @property {'free_for_all' | 'host_only'} [mode]
 * @property {Media} [media] `sfu` only on a server that runs the SFU.
 * @property {boolean} [lobby]
 * @property {number} [expires_in] Seconds; absent: persistent.
 */

/**
 * @typedef {object} Invite A share code as its room's owner sees it (never the code itself).
 * @property {string} id
 * @property {string} room
 * @property {'host' | 'guest'} role
 * @property {number} uses
 * @property {number | null} [max_uses] `null`: any number until it expires.
 * @property {number} expires_at
 * @property {number} created_at
 * @property {number | null} [revoked_at]
 * @property {'active' | 'expired' | 'used_up' | 'revoked'} status
 */

/**
 * @typedef {object} InviteRequest
 * @property {'host' | 'guest'} [role] Default `guest`.
 * @property {number | null} [max_uses] Default 1; `null`: any number.
 * @property {number} [expires_in] Seconds, 60 to 604800 (default a day).
 */

/**
 * @typedef {object} RoomToken
 * @property {string} token The JWT for the signaling endpoints.
 * @property {string} user
 * @property {string} room
 * @property {'host' | 'guest'} role
 * @property {string | null} [name]
 * @property {number} expires_at Unix seconds.
 */

/**
 * @typedef {object} AccountEvents
 * @property {Account | null} change The signed-in account, or `null` once signed out (by
 *   `logout`, or because the login stopped working: revoked, expired, or a password change).
 */

/** The `Storage` methods the login is kept with (`sessionStorage`, or anything like it). */
/** @typedef {Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>} TokenStore */

/** Where the refresh token is kept in the `Storage`. */
export const REFRESH_KEY = 'switchboard.refresh';

/**
 * How long before its expiry an access token is replaced, in ms: a request never leaves with a
 * token that could expire on the way, or on a clock a little behind the server's.
 */
export const REFRESH_MARGIN_MS = 30_000;

/**
 * The default store of the refresh token: `sessionStorage`. It survives a reload of the tab but
 * is not shared between tabs, and that matters because a refresh token is single-use: two tabs
 * holding one (as `localStorage` would have them) would both refresh with it, and the loser's
 * replay would sign the login out everywhere. A tab closed also drops its login, which narrows
 * what a stolen token is good for. (Duplicating a tab copies `sessionStorage`; the copy that
 * refreshes second is signed out, which is the server's rule working, not a bug.)
 * @returns {TokenStore | null}
 */
function defaultStore() {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    // Storage refused (a sandboxed frame): the login lasts as long as the page.
    return null;
  }
}

/** @extends {Emitter<AccountEvents>} */
export class AccountClient extends Emitter {
  /**
   * @param {{url?: string, fetch?: typeof fetch, store?: TokenStore | null, now?: () => number}} [options]
   *   `url`: the server (default: this page's origin); `store`: where the refresh token lives
   *   (default `sessionStorage`; `null`: memory only, a reload signs out); `now`: the clock in ms
   *   (tests).
   */
  constructor(options = {}) {
    super();
    this.base = (options.url ?? globalThis.location?.origin ?? '').replace(/\/+$/, '');
    this.doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    /** @type {TokenStore | null} */
    this.store = options.store === undefined ? defaultStore() : options.store;
    this.now = options.now ?? Date.now;
    /** The signed-in account. @type {Account | null} */
    this.account = null;
    /** In memory only: a script that can read storage cannot lift it from there. @type {string | null} */
    this.accessToken = null;
    /** When the access token expires, ms on `now`'s clock. */
    this.accessExpires = 0;
    /**
     * The refresh token as this page last got it: the store's copy may be missing (storage
     * refused) and is only read when the page has none (after a reload). @type {string | null}
     */
    this.memoryRefresh = null;
    /** The one refresh in flight, which every caller that needs one waits for. @type {Promise<void> | null} */
    this.refreshing = null;
  }

  /** Whether someone is signed in. */
  get signedIn() {
    return this.account !== null;
  }

  /**
   * Creates an account (`POST /v1/accounts`). It does not sign in: call {@link login} after.
   * Rejects with `conflict` when the username is taken, `invalid_message` for a bad username or
   * password, `rate_limited` when this address registered too much.
   * @param {{username: string, password: string, display_name?: string}} registration
   * @returns {Promise<Account>}
   */
  async register(registration) {
    return this.call('POST', '/v1/accounts', registration);
  }

  /**
   * Signs in (`POST /v1/auth/login`). Rejects with `unauthorized` for a wrong username or
   * password (the server does not say which), `rate_limited` (with `retryAfter`) when the
   * username is locked after failures.
   * @param {{username: string, password: string}} credentials
   * @returns {Promise<Account>}
   */
  async login(credentials) {
    const tokens = await this.call('POST', '/v1/auth/login', credentials);
    return this.accept(tokens);
  }

  /**
   * Signs in again with the kept refresh token, after a reload. Resolves to the account, or
   * `null` when none is kept or it no longer works (then it is forgotten). Rejects only when the
   * server cannot answer (the token is kept for the next try).
   * @returns {Promise<Account | null>}
   */
  async restore() {
    if (this.account) return this.account;
    if (!this.keptRefresh()) return null;
    try {
      await this.refresh();
    } catch (error) {
      if (error instanceof SwitchboardError && error.code === 'unauthorized') return null;
      throw error;
    }
    return this.account;
  }

  /**
   * Signs out: revokes the refresh token on the server (`POST /v1/auth/logout`: that login's
   * tokens stop working) and forgets both tokens. The tokens are forgotten even when the server
   * cannot be reached; the error is then passed on, so a page can say the login may live on
   * until it expires.
   * @returns {Promise<void>}
   */
  async logout() {
    await this.refreshing?.catch(() => {});
    const refresh = this.keptRefresh();
    this.forget();
    if (refresh) await this.call('POST', '/v1/auth/logout', { refresh_token: refresh });
  }

  /**
   * The signed-in account's rooms (`GET /v1/rooms`), one page in id order; an admin's: every
   * room. Pass the answer's `next` as `after` for the next page (`null` on the last).
   * @param {{limit?: number, after?: string | null}} [page]
   * @returns {Promise<{rooms: Room[], next: string | null}>}
   */
  async listRooms({ limit, after } = {}) {
    const query = new URLSearchParams();
    if (limit !== undefined) query.set('limit', String(limit));
    if (after) query.set('after', after);
    const q = query.toString();
    const page = await this.authed('GET', `/v1/rooms${q ? `?${q}` : ''}`);
    return { rooms: page.rooms, next: page.next ?? null };
  }

  /**
   * Creates a room the account owns (`POST /v1/rooms`). Rejects with `conflict` when the id is
   * taken, `invalid_message` for a bad field (`media: 'sfu'` on a server without the SFU).
   * @param {RoomRequest} room
   * @returns {Promise<Room>}
   */
  async createRoom(room) {
    return this.authed('POST', '/v1/rooms', room);
  }

  /**
   * One room (`GET /v1/rooms/{room}`); `not_found` for another account's room.
   * @param {string} room
   * @returns {Promise<Room>}
   */
  async getRoom(room) {
    return this.authed('GET', roomPath(room));
  }

  /**
   * Deletes a room (`DELETE /v1/rooms/{room}`): a call under way ends with `room_closed`, and its
   * share codes stop working.
   * @param {string} room
   * @returns {Promise<void>}
   */
  async deleteRoom(room) {
    await this.authed('DELETE', roomPath(room));
  }

  /**
   * A room's share codes, newest first (`GET /v1/rooms/{room}/invites`).
   * @param {string} room
   * @returns {Promise<Invite[]>}
   */
  async listInvites(room) {
    const answer = await this.authed('GET', `${roomPath(room)}/invites`);
    return answer.invites;
  }

  /**
   * Makes a share code (`POST /v1/rooms/{room}/invites`). `code` (`XXXXX-XXXXX`) is in this
   * answer only: the server keeps just its hash.
   * @param {string} room
   * @param {InviteRequest} [invite]
   * @returns {Promise<{code: string, invite: Invite}>}
   */
  async createInvite(room, invite = {}) {
    return this.authed('POST', `${roomPath(room)}/invites`, invite);
  }

  /**
   * Revokes a share code (`DELETE /v1/rooms/{room}/invites/{invite}`): it stops working at once.
   * @param {string} room
   * @param {string} invite The invite's `id` (not the code).
   * @returns {Promise<void>}
   */
  async revokeInvite(room, invite) {
    await this.authed('DELETE', `${roomPath(room)}/invites/${encodeURIComponent(invite)}`);
  }

  /**
   * Mints a room token for the signaling endpoints (`POST /v1/rooms/{room}/tokens`): by default
   * for this account as a `guest` for an hour; `{role: 'host'}` for the owner to run the call.
   * @param {string} room
   * @param {{role?: 'host' | 'guest', name?: string, user?: string, ttl_secs?: number}} [request]
   * @returns {Promise<RoomToken>}
   */
  async mintRoomToken(room, request = {}) {
    return this.authed('POST', `${roomPath(room)}/tokens`, request);
  }

  /**
   * An API call with the access token: refreshed first when it is about to expire, and once more
   * if the server still answers 401 (a token the server stopped taking, say after its restart
   * with a new key). A login that cannot be refreshed is signed out (`change` with `null`).
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<any>}
   */
  async authed(method, path, body) {
    if (!this.account) throw new SwitchboardError('unauthorized', 'not signed in');
    if (this.now() >= this.accessExpires - REFRESH_MARGIN_MS) await this.refresh();
    try {
      return await this.call(method, path, body, this.accessToken);
    } catch (error) {
      if (!(error instanceof SwitchboardError && error.status === 401)) throw error;
      await this.refresh();
      return this.call(method, path, body, this.accessToken);
    }
  }

  /**
   * Trades the refresh token for new tokens (`POST /v1/auth/refresh`), one trade at a time: a
   * caller arriving while one is under way waits for it rather than spending the token twice.
   * A refusal signs out.
   * @returns {Promise<void>}
   */
  refresh() {
    this.refreshing ??= (async () => {
      const refresh = this.keptRefresh();
      if (!refresh) {
        this.forget();
        throw new SwitchboardError('unauthorized', 'not signed in');
      }
      try {
        this.accept(await this.call('POST', '/v1/auth/refresh', { refresh_token: refresh }));
      } catch (error) {
        if (error instanceof SwitchboardError && error.status === 401) this.forget();
        throw error;
      }
    })().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /**
   * Takes the tokens of a login or refresh.
   * @param {{access_token: string, expires_in: number, refresh_token: string, account: Account}} tokens
   */
  accept(tokens) {
    const before = this.account;
    this.accessToken = tokens.access_token;
    this.accessExpires = this.now() + tokens.expires_in * 1000;
    this.memoryRefresh = tokens.refresh_token;
    try {
      this.store?.setItem(REFRESH_KEY, tokens.refresh_token);
    } catch {
      // Storage full or refused: the login lasts as long as the page (memoryRefresh).
    }
    this.account = tokens.account;
    if (before?.id !== tokens.account.id || before?.display_name !== tokens.account.display_name) {
      this.emit('change', tokens.account);
    }
    return tokens.account;
  }

  /** The refresh token: the page's own copy, else the one a previous load kept. */
  keptRefresh() {
    if (this.memoryRefresh) return this.memoryRefresh;
    try {
      return this.store?.getItem(REFRESH_KEY) ?? null;
    } catch {
      return null;
    }
  }

  /** Drops both tokens and the account; `change` with `null` if someone was signed in. */
  forget() {
    const was = this.account;
    this.account = null;
    this.accessToken = null;
    this.accessExpires = 0;
    this.memoryRefresh = null;
    try {
      this.store?.removeItem(REFRESH_KEY);
    } catch {
      // nothing kept
    }
    if (was) this.emit('change', null);
  }

  /**
   * One request: the JSON answer (`null` for 204), or the error of the answer.
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @param {string | null} [token]
   * @returns {Promise<any>}
   */
  async call(method, path, body, token) {
    /** @type {Record<string, string>} */
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    let response;
    try {
      response = await this.doFetch(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch {
      throw new SwitchboardError('unreachable', 'the server cannot be reached');
    }
    if (!response.ok) throw await errorFromResponse(response);
    if (response.status === 204) return null;
    return response.json();
  }
}

/** @param {string} room */
function roomPath(room) {
  return `/v1/rooms/${encodeURIComponent(room)}`;
}
