// @ts-check
/**
 * switchboard browser SDK: a resumable signaling client, and calls over a full mesh or the
 * server's SFU behind one `RoomCall` that follows the room's media, and the control API's client
 * for a signed-in person (`AccountClient`: login, rooms, share codes).
 *
 * ```js
 * import { Client, RoomCall } from '/sdk/switchboard.js';
 * const client = new Client({ token });
 * await client.connect();
 * const call = new RoomCall(client, { room: 'standup' });
 * call.on('track', ({ peer, stream, tag }) => show(peer, tag, stream));
 * await call.setCameraStream(await navigator.mediaDevices.getUserMedia({ audio: true, video: true }));
 * await call.join({ meta: { name: 'Ann' } });
 * ```
 *
 * See docs/sdk.md for the whole API.
 */

export { Client } from './client.js';
export { Mesh } from './mesh.js';
export { isPolite, shouldConnect, Negotiation, candidateToWire, candidateFromWire } from './negotiation.js';
export { SfuCall, SFU_PEER } from './sfu.js';
export { RoomCall } from './room-call.js';
export { SIMULCAST_ENCODINGS, applyLayers, encodingsFor } from './simulcast.js';
export { ViewBoard, normalizeView } from './views.js';
export { TrackTable } from './tracks.js';
export { Backoff } from './backoff.js';
export { Emitter } from './emitter.js';
export { SwitchboardError, ErrorCodes, errorFromResponse } from './protocol.js';
export { summarizeStats, grade, statsForMids } from './quality.js';
export { WebSocketTransport, SseTransport, PollTransport, TRANSPORTS, wsCloseMeaning } from './transports.js';
export { redeemShareCode, requestGuestToken } from './token.js';
export { AccountClient, REFRESH_KEY, REFRESH_MARGIN_MS } from './account.js';

/** The SDK's version. */
export const VERSION = '0.1.0';
