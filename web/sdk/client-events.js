// @ts-check
/**
 * What a {@link import('./client.js').Client} tells the app: its events' shapes, and which event
 * each server message becomes. The mapping is a pure function of the message; what the client
 * itself keeps from a message (its rooms, its peer id, an admission's token) stays in the client.
 */

import { SwitchboardError } from './protocol.js';

/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').TransportName} TransportName */
/** @typedef {import('./protocol.js').HelloPayload} HelloPayload */
/** @typedef {import('./protocol.js').JoinedPayload} JoinedPayload */
/** @typedef {import('./protocol.js').PeerInfo} PeerInfo */
/** @typedef {import('./protocol.js').RoomMode} RoomMode */
/** @typedef {import('./protocol.js').MediaMode} MediaMode */

/**
 * @typedef {'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed'} ConnectionState
 */

/**
 * @typedef {object} StateEvent
 * @property {ConnectionState} state
 * @property {TransportName | null} transport The transport in use or being tried.
 * @property {string | null} session
 * @property {number} [attempt] Reconnect round, from 1.
 * @property {number} [retryInMs] When reconnecting: delay before the next round.
 * @property {string} [reason] Why the state changed.
 * @property {SwitchboardError} [error] The error that caused it, if any.
 */

/**
 * @typedef {{room: string} & JoinedPayload} JoinedEvent
 * @typedef {{room: string} & PeerInfo} PeerJoinedEvent
 * @typedef {{room: string, peer: string, reason: string}} PeerLeftEvent
 * @typedef {{room: string, reason: string, by?: string}} LeftEvent
 * @typedef {{room: string, from: string, payload: any, id?: string}} MessageEvent
 * @typedef {{type: 'offer' | 'answer' | 'candidate' | 'call_start' | 'call_end', room: string, from: string, payload: any}} SignalEvent
 * @typedef {{room: string, mode: RoomMode, by: string}} ModeChangedEvent
 * @typedef {{room: string, media: 'mesh' | 'sfu', media_mode: MediaMode, by?: string}} MediaChangedEvent
 * @typedef {{type: 'track_map' | 'track_published' | 'track_unpublished' | 'track_state' | 'stream_state' | 'layers' | 'speakers', room: string, payload: any}} MediaEvent
 * @typedef {{previous: string | null, session: string}} SessionResetEvent
 */

/**
 * Events of a {@link Client}.
 * @typedef {object} ClientEvents
 * @property {StateEvent} state Connection state or transport changed.
 * @property {HelloPayload} hello A session started or resumed (`resumed`).
 * @property {JoinedEvent} joined This session joined a room (also after a `session_reset`).
 * @property {PeerJoinedEvent} peer_joined
 * @property {PeerLeftEvent} peer_left
 * @property {LeftEvent} left This session left a room (its own `leave`, or kicked).
 * @property {MessageEvent} message App data or chat from a peer.
 * @property {{room: string, ticket: string, name?: string}} knock A guest waits to enter (hosts).
 * @property {{room: string, ticket: string, outcome: string, by?: string}} knock_ended A knock is
 *   over: `admitted`, `denied`, `expired` or `left` (hosts).
 * @property {{room: string, token: string}} admitted This lobby session was let in: `join` now.
 * @property {{room: string, reason: string}} denied This lobby session was turned away:
 *   `denied`, `expired` or `deleted`.
 * @property {{room: string, payload: any}} announcement A message from the server itself to the
 *   room (its owner's `POST /v1/rooms/{room}/messages`).
 * @property {SignalEvent} signal offer, answer, candidate, call_start or call_end from a peer.
 * @property {ModeChangedEvent} mode_changed
 * @property {MediaChangedEvent} media_changed The room's media setting or effective media
 *   changed (`auto` switches between mesh and SFU as members come and go).
 * @property {MediaEvent} media What the SFU tells about the room's tracks (SFU rooms).
 * @property {{room: string, reason: string}} room_closed
 * @property {{room: string, reason: string}} replaced Another session of this user took over.
 * @property {{code: string, message: string}} warning
 * @property {SwitchboardError} error A server `error` no request was waiting for, or a fatal error.
 * @property {SessionResetEvent} session_reset The old session could not be resumed; a new one
 *   started and rooms are being joined again. Peer connections should be rebuilt.
 * @property {ServerMessage} server_message Every server message, after dedupe.
 */

/** Messages a peer sends through the server, emitted as `signal` (SDP and calls) or `message`. */
const RELAYED = new Set(['offer', 'answer', 'candidate', 'call_start', 'call_end', 'message']);

/** What the SFU tells members besides SDP (docs/protocol.md, "SFU rooms"), emitted as `media`. */
const MEDIA = new Set(['track_map', 'track_published', 'track_unpublished', 'track_state', 'stream_state', 'layers', 'speakers']);

/**
 * The event a server message becomes, or null: replies and messages the app has no event for
 * (`pong`, `hello`, a `duplicate_seq` error, which answers a message resent after an unanswered
 * POST: the server had it).
 * @param {ServerMessage} msg
 * @returns {{name: keyof ClientEvents, event: any} | null}
 */
export function eventOf(msg) {
  const room = msg.room ?? '';
  const p = msg.payload ?? {};
  switch (msg.type) {
    case 'joined':
      return { name: 'joined', event: { room, ...p } };
    case 'peer_joined':
      return { name: 'peer_joined', event: { room, ...p } };
    case 'peer_left':
      return { name: 'peer_left', event: { room, peer: p.peer, reason: p.reason } };
    case 'left':
      return { name: 'left', event: { room, reason: p.reason ?? 'left', by: p.by } };
    case 'mode_changed':
      return { name: 'mode_changed', event: { room, mode: p.mode, by: p.by } };
    case 'media_changed':
      return { name: 'media_changed', event: { room, media: p.media, media_mode: p.media_mode, by: p.by } };
    case 'room_closed':
      return { name: 'room_closed', event: { room, reason: p.reason } };
    case 'replaced':
      return { name: 'replaced', event: { room, reason: p.reason } };
    case 'warning':
      return { name: 'warning', event: { code: p.code, message: p.message } };
    case 'error':
      return p.code === 'duplicate_seq' ? null : { name: 'error', event: SwitchboardError.fromMessage(msg) };
    case 'message':
      return { name: 'message', event: { room, from: msg.from, payload: p, id: msg.id } };
    case 'announcement':
      return { name: 'announcement', event: { room, payload: p } };
    case 'knock':
      return { name: 'knock', event: { room, ticket: p.ticket, name: p.name } };
    case 'knock_ended':
      return { name: 'knock_ended', event: { room, ticket: p.ticket, outcome: p.outcome, by: p.by } };
    case 'admitted':
      return { name: 'admitted', event: { room, token: p.token } };
    case 'denied':
      return { name: 'denied', event: { room, reason: p.reason } };
    default:
      if (MEDIA.has(msg.type)) return { name: 'media', event: { type: msg.type, room, payload: p } };
      if (RELAYED.has(msg.type) && msg.from) {
        return { name: 'signal', event: { type: msg.type, room, from: msg.from, payload: p } };
      }
      return null;
  }
}
