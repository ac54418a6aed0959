// @ts-check
/**
 * Wire types of the switchboard protocol (see docs/protocol.md), as JSDoc for `tsc --checkJs`,
 * and the error class every SDK failure uses.
 */

/** @typedef {'ws' | 'sse' | 'poll'} TransportName */
/** @typedef {'host' | 'guest'} Role */
/** @typedef {'host_only' | 'free_for_all'} RoomMode */
/** @typedef {'mesh' | 'sfu' | 'auto'} MediaMode The media setting of a room. */

/**
 * One message from the server.
 * @typedef {object} ServerMessage
 * @property {string} type
 * @property {string} [room]
 * @property {number} seq
 * @property {number} ts
 * @property {string} [from]
 * @property {string} [id]
 * @property {any} payload
 */

/**
 * One message to the server.
 * @typedef {object} ClientMessage
 * @property {string} type
 * @property {string} [room]
 * @property {number} seq
 * @property {number} ts
 * @property {string} [to]
 * @property {string} [id]
 * @property {any} [payload]
 */

/**
 * @typedef {object} Limits
 * @property {number} max_frame_bytes
 * @property {number} max_sdp_bytes
 * @property {number} max_candidate_bytes
 * @property {number} max_meta_bytes
 * @property {number} max_message_bytes
 * @property {number} max_token_bytes
 * @property {number} ts_skew_ms
 */

/**
 * `hello.payload`.
 * @typedef {object} HelloPayload
 * @property {string} session
 * @property {string} [peer]
 * @property {number} heartbeat_ms
 * @property {number} resume_ms
 * @property {Limits} limits
 * @property {number} last_client_seq
 * @property {boolean} [resumed]
 */

/**
 * A member of a room, as in `joined.peers` and `peer_joined`.
 * @typedef {object} PeerInfo
 * @property {string} peer
 * @property {Role} role
 * @property {string} [name]
 * @property {any} meta
 */

/**
 * An ICE server as handed out in `joined.ice_servers` (the shape of `RTCIceServer`).
 * @typedef {object} IceServer
 * @property {string[]} urls
 * @property {string} [username]
 * @property {string} [credential]
 */

/**
 * `joined.payload`.
 * @typedef {object} JoinedPayload
 * @property {string} peer
 * @property {Role} role
 * @property {RoomMode} mode
 * @property {'mesh' | 'sfu'} media Where the room's media goes; `sfu`: offer to the peer `sfu`.
 * @property {MediaMode} [media_mode] The room's media setting (`auto`: mesh for two, SFU from three).
 * @property {PeerInfo[]} peers
 * @property {IceServer[]} ice_servers
 */

/**
 * A per-message result of `POST /v1/sessions/{id}/messages`.
 * @typedef {{accepted: boolean, error?: {code: string, message: string}}} PostResult
 */

/** The error codes of the protocol, plus the SDK's own (`transport_failed`, `timeout`, ...). */
export const ErrorCodes = Object.freeze({
  invalid_message: 'invalid_message',
  unknown_type: 'unknown_type',
  payload_too_large: 'payload_too_large',
  request_timeout: 'request_timeout',
  unauthorized: 'unauthorized',
  forbidden: 'forbidden',
  not_in_room: 'not_in_room',
  unknown_peer: 'unknown_peer',
  room_full: 'room_full',
  rate_limited: 'rate_limited',
  duplicate_seq: 'duplicate_seq',
  stale_ts: 'stale_ts',
  session_expired: 'session_expired',
  peer_taken: 'peer_taken',
  not_found: 'not_found',
  conflict: 'conflict',
  unavailable: 'unavailable',
  internal: 'internal',
  bad_sdp: 'bad_sdp',
  unsupported_codec: 'unsupported_codec',
  too_many_tracks: 'too_many_tracks',
  unknown_track: 'unknown_track',
  media_unavailable: 'media_unavailable',
  // The SDK's own:
  transport_failed: 'transport_failed',
  unreachable: 'unreachable',
  timeout: 'timeout',
  closed: 'closed',
  replaced: 'replaced',
  session_reset: 'session_reset',
});

/** An error from the server (`error` message or HTTP error body) or from the SDK itself. */
export class SwitchboardError extends Error {
  /**
   * @param {string} code One of {@link ErrorCodes}.
   * @param {string} message Human-readable text.
   * @param {{status?: number, reply?: ServerMessage, retryAfter?: number}} [details]
   */
  constructor(code, message, details = {}) {
    super(message);
    this.name = 'SwitchboardError';
    /** @type {string} */
    this.code = code;
    /** HTTP status, when the error answered an HTTP request. @type {number | undefined} */
    this.status = details.status;
    /**
     * Seconds to wait before trying again: an HTTP answer's `Retry-After` (a 429's lockout or
     * budget), so a page can say when, not just "later". @type {number | undefined}
     */
    this.retryAfter = details.retryAfter;
    /** The server's `error` message, when there was one. @type {ServerMessage | undefined} */
    this.reply = details.reply;
  }

  /**
   * The error an `error` message carries.
   * @param {ServerMessage} msg
   */
  static fromMessage(msg) {
    const p = msg.payload ?? {};
    return new SwitchboardError(String(p.code ?? 'internal'), String(p.message ?? p.code ?? 'error'), {
      reply: msg,
    });
  }
}

/**
 * The error of a failed HTTP answer (`{"error": {"code", "message"}}`), or one made up from its
 * status when the body is not that shape.
 * @param {Response} response
 * @returns {Promise<SwitchboardError>}
 */
export async function errorFromResponse(response) {
  /** @type {any} */
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON
  }
  // A status alone names the most general code it can mean: a bare 409 (a proxy's, say) is a
  // `conflict`, not the `room_full` only a join's answer can be.
  const byStatus = /** @type {Record<number, string>} */ ({
    400: 'invalid_message',
    401: 'unauthorized',
    403: 'forbidden',
    404: 'not_found',
    409: 'conflict',
    410: 'session_expired',
    408: 'request_timeout',
    413: 'payload_too_large',
    429: 'rate_limited',
    503: 'unavailable',
  });
  const code = body?.error?.code ?? byStatus[response.status] ?? 'internal';
  const message = body?.error?.message ?? `HTTP ${response.status}`;
  // Only the delta-seconds form: the server never sends an HTTP date.
  const retry = Number.parseInt(response.headers?.get('retry-after') ?? '', 10);
  const retryAfter = Number.isFinite(retry) && retry >= 0 ? retry : undefined;
  return new SwitchboardError(code, message, { status: response.status, retryAfter });
}
