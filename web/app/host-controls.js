// @ts-check
/**
 * The room's settings as the call shows and a host changes them: the media (mesh, SFU or auto:
 * the selector, the badge, and the line saying it changed) and the mode (host-only or free for
 * all: the switch, the note guests see, the chat's placeholder). A host who joined with
 * `?media=` sets the media once here. Hosts' actions on one member are in people.js.
 */

import { SwitchboardError } from '../sdk/switchboard.js';
import { byId } from './dom.js';

/** @typedef {import('./call.js').Call} Call */
/** @typedef {import('../sdk/protocol.js').RoomMode} RoomMode */

export class HostControls {
  /** @param {Call} call Whose room's settings these are. */
  constructor(call) {
    this.call = call;
    /** Whether `options.media` was asked for already (once per call). */
    this.mediaAsked = false;
  }

  /** The host controls (hosts only), the mode note (guests only) and what follows from the mode. */
  render() {
    const call = this.call;
    const isHost = call.self?.role === 'host';
    byId('host-controls').hidden = !isHost;
    const toggle = /** @type {HTMLInputElement} */ (byId('mode-switch'));
    toggle.checked = call.mode === 'host_only';
    toggle.setAttribute('aria-checked', String(toggle.checked));
    const mediaSelect = /** @type {HTMLSelectElement} */ (byId('media-select'));
    if (call.mediaMode) mediaSelect.value = call.mediaMode;
    byId('mode-note').hidden = isHost || call.mode !== 'host_only';
    call.renderKnocks();
    /** @type {HTMLInputElement} */ (byId('chat-input')).placeholder =
      !isHost && call.mode === 'host_only' ? 'Message the hosts' : 'Message everyone';
    call.people.render();
  }

  /**
   * The room's media is (now) `media`, set to `media_mode` (by `by`, when a member changed it).
   * @param {import('../sdk/room-call.js').RoomCallOnlyEvents['media']} e
   */
  onMedia({ media, media_mode, by }) {
    const call = this.call;
    const changed = call.media !== null && call.media !== media;
    call.media = media;
    call.mediaMode = media_mode;
    const badge = byId('media-badge');
    badge.textContent = media === 'sfu' ? 'SFU' : 'Mesh';
    badge.dataset.media = media;
    if (changed) call.addSystem(media === 'sfu' ? 'The call now goes through the server (SFU).' : 'The call is now direct between you (mesh).');
    else if (by && by !== call.self?.peer) call.addSystem(`${call.people.nameOf(by)} set the media to ${media_mode}.`);
    this.render();
    this.askForMedia();
  }

  /**
   * The room's mode changed.
   * @param {RoomMode} mode
   */
  onMode(mode) {
    this.call.mode = mode;
    this.render();
  }

  /**
   * A host sets the room's media (`mesh`, `sfu` or `auto`).
   * @param {'mesh' | 'sfu' | 'auto'} media
   */
  async setMedia(media) {
    try {
      await this.call.rtc?.setMedia(media);
    } catch (error) {
      const why = error instanceof SwitchboardError && error.code === 'media_unavailable' ? 'this server runs no SFU' : error instanceof Error ? error.message : String(error);
      this.call.addSystem(`Could not change the media: ${why}.`);
      this.render();
    }
  }

  /** A host that joined with `?media=` sets the room to it once, when it differs. */
  askForMedia() {
    const call = this.call;
    const wanted = call.options.media;
    if (!wanted || this.mediaAsked || call.self?.role !== 'host' || call.mediaMode === null) return;
    this.mediaAsked = true;
    if (wanted !== call.mediaMode) void this.setMedia(wanted);
  }

  /** @param {boolean} hostOnly */
  async setMode(hostOnly) {
    const call = this.call;
    try {
      await call.client?.setMode(call.room, hostOnly ? 'host_only' : 'free_for_all');
    } catch (error) {
      call.addSystem(`Could not change the mode: ${error instanceof Error ? error.message : error}`);
      this.render();
    }
  }
}
