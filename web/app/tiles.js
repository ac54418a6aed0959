// @ts-check
/**
 * The call's video tiles: one per stream a peer shows (`camera`, `screen`), this side's own
 * first. It owns creating, removing and labelling them (name, host badge, muted, no video), the
 * note on a tile whose video the SFU pauses for want of bandwidth, the quality line of a tile,
 * the speaking highlight, and the speaker (audio output) every remote tile plays to. Where the
 * tiles go on screen is the {@link Stage}'s business; what they say comes from the {@link Call}.
 */

import { byId, h, initials } from './dom.js';
import { SELF } from './people.js';

/** @typedef {import('./call.js').Call} Call */
/** @typedef {import('./stage.js').Stage} Stage */
/** @typedef {import('../sdk/quality.js').QualitySample} QualitySample */

/**
 * @typedef {object} Tile
 * @property {HTMLElement} el
 * @property {HTMLVideoElement} video
 * @property {string} peer
 * @property {string} tag
 */

export class Tiles {
  /**
   * @param {Call} call Whose names, roles and mic/camera states the tiles show.
   * @param {Stage} stage Lays the tiles out again when one comes or goes.
   * @param {(message: string | null) => void} onSinkError Says a speaker could not be selected.
   */
  constructor(call, stage, onSinkError) {
    this.call = call;
    this.stage = stage;
    this.onSinkError = onSinkError;
    /** By `peer|tag`. @type {Map<string, Tile>} */
    this.tiles = new Map();
    /**
     * The SFU's `stream_state` of members' videos by `peer|tag`: a layer, or why paused. Kept
     * apart from the tiles because it can arrive before the tile exists.
     * @type {Map<string, string>}
     */
    this.layers = new Map();
    /** The chosen speaker (audio output) for remote tiles, if any. @type {string | null} */
    this.sinkId = null;
  }

  /**
   * @param {string} peer
   * @param {string} tag
   */
  get(peer, tag) {
    return this.tiles.get(`${peer}|${tag}`);
  }

  /**
   * The tile of `peer`'s stream `tag`, created if needed.
   * @param {string} peer
   * @param {string} tag
   * @returns {Tile}
   */
  ensure(peer, tag) {
    const key = `${peer}|${tag}`;
    const existing = this.tiles.get(key);
    if (existing) return existing;
    const local = peer === SELF;
    const video = h('video', { autoplay: true, playsInline: true, muted: local });
    if (local) video.muted = true;
    const label = tag === 'screen' ? 'screen' : 'video';
    const el = h(
      'figure',
      {
        class: `tile${local ? ' local' : ''}`,
        'data-peer': peer,
        'data-tag': tag,
        'aria-label': '',
      },
      video,
      h('div', { class: 'avatar', 'aria-hidden': 'true' }, h('span', { text: '' })),
      h(
        'figcaption',
        {},
        h('span', { class: 'name' }),
        h('span', { class: 'host-badge', text: 'Host', hidden: true }),
        h('span', { class: 'muted-icon', text: 'Muted' }),
        // Shown (style.css) while the SFU sends none of this video for want of bandwidth, so a
        // still picture is not taken for a frozen call.
        h('span', { class: 'bandwidth-note', text: 'Paused: low bandwidth' }),
        h('span', { class: 'quality', 'data-quality': 'connecting', text: local ? 'you' : '…' }),
      ),
    );
    el.setAttribute('aria-label', `${this.call.people.nameOf(peer)} ${label}`);
    const layer = this.layers.get(key);
    if (layer) el.dataset.layer = layer;
    const tile = { el, video, peer, tag };
    this.tiles.set(key, tile);
    const grid = byId('grid');
    // Own tiles first, then others by arrival.
    if (local) grid.prepend(el);
    else grid.append(el);
    if (this.sinkId && !local) void this.applySink(video);
    this.stage.render();
    this.renderState(peer);
    return tile;
  }

  /**
   * Plays a remote tile's new stream; when autoplay with sound is refused, plays it muted and
   * offers a button to unmute.
   * @param {Tile} tile
   */
  play(tile) {
    tile.video.play().catch((/** @type {unknown} */ error) => {
      // A newer stream replaced this one before it played (an SFU call adds a member's audio
      // and video one after the other): that play() is moot, not refused.
      if (/** @type {{name?: string}} */ (error)?.name === 'AbortError') return;
      // Autoplay with sound was refused: play muted and offer to unmute.
      tile.video.muted = true;
      void tile.video.play().catch(() => {});
      if (tile.el.querySelector('.unmute')) return;
      const button = h('button', {
        type: 'button',
        class: 'unmute small',
        text: 'Enable sound',
        'aria-label': `Enable sound from ${this.call.people.nameOf(tile.peer)}`,
        onclick: () => {
          tile.video.muted = false;
          void tile.video.play();
          button.remove();
        },
      });
      tile.el.append(button);
    });
  }

  /**
   * @param {string} peer
   * @param {string} tag
   */
  remove(peer, tag) {
    const key = `${peer}|${tag}`;
    const tile = this.tiles.get(key);
    if (!tile) return;
    tile.video.srcObject = null;
    tile.el.remove();
    this.tiles.delete(key);
    this.stage.render();
  }

  /** @param {string} peer */
  removePeer(peer) {
    for (const tile of [...this.tiles.values()]) if (tile.peer === peer) this.remove(peer, tile.tag);
  }

  /**
   * This side's camera tile, showing `stream` (none yet: the avatar).
   * @param {MediaStream | null} stream
   */
  renderSelf(stream) {
    const tile = this.ensure(SELF, 'camera');
    if (stream && tile.video.srcObject !== stream) {
      tile.video.srcObject = stream;
      void tile.video.play().catch(() => {});
    }
    this.renderState(SELF);
  }

  /**
   * Labels `peer`'s tiles: name, host badge, muted, no video.
   * @param {string} peer
   */
  renderState(peer) {
    const call = this.call;
    const local = peer === SELF;
    const name = call.people.nameOf(peer);
    const role = local ? call.self?.role : call.people.members.get(peer)?.role;
    const state = local ? { mic: call.micOn, cam: call.camOn } : call.remoteState.get(peer);
    for (const tile of this.tiles.values()) {
      if (tile.peer !== peer) continue;
      const el = tile.el;
      const screen = tile.tag === 'screen';
      /** @type {HTMLElement} */ (el.querySelector('.name')).textContent = local
        ? `${name} (you)${screen ? ' · screen' : ''}`
        : `${name}${screen ? ' · screen' : ''}`;
      /** @type {HTMLElement} */ (el.querySelector('.host-badge')).hidden = role !== 'host' || screen;
      /** @type {HTMLElement} */ (el.querySelector('.avatar span')).textContent = initials(name);
      el.setAttribute('aria-label', `${name}${local ? ' (you)' : ''} ${screen ? 'screen' : 'video'}`);
      el.classList.toggle('mic-off', !screen && state?.mic === false);
      const hasVideo = tile.video.srcObject instanceof MediaStream && tile.video.srcObject.getVideoTracks().length > 0;
      el.classList.toggle('no-video', !screen && (state?.cam === false || !hasVideo));
    }
  }

  /** Labels every tile again (members' names or roles changed). */
  renderAll() {
    for (const tile of this.tiles.values()) this.renderState(tile.peer);
  }

  /**
   * What the SFU sends of a member's video: a layer (q, h, f) or why nothing.
   * @param {string} peer
   * @param {string} tag
   * @param {string} layer
   */
  setLayer(peer, tag, layer) {
    this.layers.set(`${peer}|${tag}`, layer);
    const tile = this.get(peer, tag);
    if (tile) tile.el.dataset.layer = layer;
  }

  /**
   * The state of the connection to `peer`, on its camera tile.
   * @param {string} peer
   * @param {string} state
   */
  setConnection(peer, state) {
    const tile = this.get(peer, 'camera');
    if (tile) tile.el.dataset.connection = state;
  }

  /**
   * The latest quality sample of `peer`, on its camera tile.
   * @param {string} peer
   * @param {QualitySample} sample
   * @param {string} description One line about it, for the tooltip.
   */
  showQuality(peer, sample, description) {
    const tile = this.get(peer, 'camera');
    if (!tile) return;
    const q = /** @type {HTMLElement} */ (tile.el.querySelector('.quality'));
    q.dataset.quality = sample.quality;
    q.textContent = sample.rttMs === null ? '…' : `${sample.rttMs} ms`;
    q.title = description;
    tile.el.dataset.rtt = String(sample.rttMs ?? '');
    tile.el.dataset.kbps = String(sample.inKbps ?? '');
  }

  /**
   * Highlights the camera tile of the active speaker.
   * @param {string | null} speaker A peer, {@link SELF}, or nobody.
   */
  markSpeaker(speaker) {
    for (const tile of this.tiles.values()) tile.el.classList.toggle('speaking', tile.peer === speaker && tile.tag === 'camera');
  }

  /**
   * Plays every remote tile to the speaker `deviceId`, and the ones still to come.
   * @param {string} deviceId
   */
  async setSink(deviceId) {
    this.sinkId = deviceId;
    for (const tile of this.tiles.values()) if (tile.peer !== SELF) await this.applySink(tile.video);
  }

  /** @param {HTMLVideoElement} video */
  async applySink(video) {
    if (!this.sinkId) return;
    try {
      await /** @type {any} */ (video).setSinkId(this.sinkId);
    } catch (error) {
      this.onSinkError(`The speaker could not be selected: ${/** @type {Error} */ (error).message}`);
    }
  }

  /** Removes every tile and lets go of its stream (the call ended). */
  clear() {
    for (const tile of this.tiles.values()) {
      tile.video.srcObject = null;
      tile.el.remove();
    }
    this.tiles.clear();
  }
}
