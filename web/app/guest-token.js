// @ts-check
/**
 * The guest tokens the call view asked `POST /v1/token` for, kept per room in this tab's
 * `sessionStorage`: a reload keeps the same user (and its host role), and a user the host removed
 * stays removed when it clicks "Join again".
 */

/**
 * Where a room's token is kept.
 * @param {string} room
 */
function tokenKey(room) {
  return `switchboard.token.${room}`;
}

/**
 * The kept token for `room`, if it carries `name` and has time left.
 * @param {string} room
 * @param {string} name
 * @returns {string | null}
 */
export function storedToken(room, name) {
  try {
    const kept = JSON.parse(sessionStorage.getItem(tokenKey(room)) ?? 'null');
    // Keep it while it has at least 10 minutes left and carries the same name.
    if (kept && kept.name === name && kept.expires_at * 1000 - Date.now() > 600_000) return kept.token;
  } catch {
    // no storage
  }
  return null;
}

/**
 * Keeps a guest token for `room`.
 * @param {string} room
 * @param {string} name
 * @param {string} token
 * @param {number} expiresAt Unix seconds.
 */
export function storeToken(room, name, token, expiresAt) {
  try {
    sessionStorage.setItem(tokenKey(room), JSON.stringify({ token, name, expires_at: expiresAt }));
  } catch {
    // no storage
  }
}

/**
 * Drops `room`'s kept token (it stopped working).
 * @param {string} room
 */
export function forgetToken(room) {
  try {
    sessionStorage.removeItem(tokenKey(room));
  } catch {
    // no storage
  }
}
