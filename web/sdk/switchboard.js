// @ts-check
/**
 * switchboard browser SDK: a resumable signaling client and a full-mesh call manager.
 *
 * ```js
 * import { Client, Mesh } from '/sdk/switchboard.js';
 * const client = new Client({ token });
 * await client.connect();
 * const mesh = new Mesh(client, { room: 'standup' });
 * mesh.on('track', ({ peer, stream }) => show(peer, stream));
 * await mesh.setCameraStream(await navigator.mediaDevices.getUserMedia({ audio: true, video: true }));
 * await mesh.join({ meta: { name: 'Ann' } });
 * ```
 *
 * See docs/sdk.md for the whole API.
 */

export { Client } from './client.js';
export { Mesh, isPolite, shouldConnect, Negotiation, candidateToWire, candidateFromWire } from './mesh.js';
export { Backoff } from './backoff.js';
export { Emitter } from './emitter.js';
export { SwitchboardError, ErrorCodes, errorFromResponse } from './protocol.js';
export { summarizeStats, grade } from './quality.js';
export { WebSocketTransport, SseTransport, PollTransport, TRANSPORTS, wsCloseMeaning } from './transports.js';
export { redeemShareCode, requestGuestToken } from './token.js';

/** The SDK's version. */
export const VERSION = '0.1.0';
