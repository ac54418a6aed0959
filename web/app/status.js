// @ts-check
/**
 * What the call tells its user about the connection: the connection and transport badges, the
 * banner (reconnecting with a countdown and "Retry now", reconnected, waiting in the lobby), and
 * the sentence for why a join failed or a closed connection ended the call
 * ({@link describeJoinError}, also shown on the lobby page).
 */

import { SwitchboardError } from '../sdk/switchboard.js';
import { byId } from './dom.js';
import { KNOCK_DELETED, KNOCK_DENIED, KNOCK_EXPIRED } from './knocks.js';

/** @typedef {import('./call.js').Call} Call */
/** @typedef {import('../sdk/client.js').StateEvent} StateEvent */

const TRANSPORT_LABELS = { ws: 'WebSocket', sse: 'SSE', poll: 'Long-poll' };
const STATE_LABELS = {
  idle: 'Idle',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
};
/** How long "Reconnected." stays up. */
const RECONNECTED_MS = 3000;

/** A user-facing message for a failure to get into a room. */
export function describeJoinError(/** @type {unknown} */ error) {
  if (!(error instanceof SwitchboardError)) return `Could not join: ${error}`;
  switch (error.code) {
    case 'room_full':
      return `This room is full (${error.message.replace(/^.*\((\d+) peers\).*$/, '$1')} people at most). Try again later or pick another room.`;
    case 'forbidden':
      if (error.message === KNOCK_DENIED) return 'A host of this room did not let you in.';
      if (error.message === KNOCK_EXPIRED) return 'Nobody let you in in time. Try again later.';
      if (error.message === KNOCK_DELETED) return 'This room no longer exists.';
      if (/kick|removed you/i.test(error.message)) return 'You cannot rejoin this room: the host removed you.';
      if (/guest access/i.test(error.message)) {
        return 'This server does not hand out guest access. Ask the host for an invitation link.';
      }
      return `You may not join this room (${error.message}).`;
    case 'unauthorized':
      return 'Your invitation is not valid any more (expired, or for another room). Ask for a new link.';
    case 'unreachable':
      return 'The server cannot be reached. Check your connection and try again.';
    case 'rate_limited':
      return 'Too many attempts right now. Wait a few seconds and try again.';
    case 'unavailable':
      return 'The server is restarting. Try again in a moment.';
    case 'invalid_message':
      return `Invalid room or name: ${error.message}`;
    case 'peer_taken':
      return 'Someone in this room already uses your peer id.';
    default:
      return `Could not join (${error.code}): ${error.message}`;
  }
}

export class ConnectionStatus {
  /** @param {Call} call Whose client this is about, and which a closed connection ends. */
  constructor(call) {
    this.call = call;
    /** Whether the connection was lost, so that getting it back is said. */
    this.wasReconnecting = false;
  }

  /** @param {StateEvent} e */
  onState(e) {
    const call = this.call;
    const badge = byId('connection-badge');
    badge.dataset.state = e.state;
    badge.textContent = STATE_LABELS[e.state];
    const transportBadge = byId('transport-badge');
    const current = call.client?.transportName ?? e.transport;
    if (current) {
      transportBadge.textContent = TRANSPORT_LABELS[current];
      transportBadge.dataset.transport = current;
    }
    if (e.state === 'reconnecting') {
      this.wasReconnecting = true;
      const wait = e.retryInMs ? ` in ${Math.max(1, Math.round(e.retryInMs / 1000))} s` : '';
      const attempt = e.attempt && e.attempt > 1 ? ` (attempt ${e.attempt})` : '';
      this.showBanner(`Connection lost. Reconnecting${wait}${attempt}…`, 'warn', 'Retry now', () =>
        call.client?.reconnectNow(),
      );
    } else if (e.state === 'connected' && this.wasReconnecting) {
      this.wasReconnecting = false;
      this.showBanner('Reconnected.', 'ok');
      const timer = setTimeout(() => {
        if (byId('banner').dataset.kind === 'ok') this.hideBanner();
      }, RECONNECTED_MS);
      call.cleanup.push(() => clearTimeout(timer));
    } else if (e.state === 'closed' && !call.ended) {
      const error = e.error;
      if (error?.code === 'replaced') return; // `ended` says it
      call.end(error ? describeJoinError(error) : 'The connection was closed.');
    }
  }

  /**
   * @param {string} text
   * @param {'warn' | 'error' | 'ok'} kind
   * @param {string} [action]
   * @param {() => void} [onAction]
   */
  showBanner(text, kind, action, onAction) {
    const banner = byId('banner');
    banner.hidden = false;
    banner.dataset.kind = kind;
    byId('banner-text').textContent = text;
    const button = byId('banner-action');
    button.hidden = !action;
    button.textContent = action ?? '';
    button.onclick = onAction ?? null;
  }

  hideBanner() {
    const banner = byId('banner');
    banner.hidden = true;
    banner.dataset.kind = '';
  }
}
