// @ts-check
/**
 * What an SFU call sends: the local tracks by `tag:kind`, the `sendonly` m-line each rides on in
 * the current media session (the camera's with as many simulcast layers as its size allows, one
 * encoding where the browser refuses), the stream tags the offer announces, and the mute wishes that must outlive a media
 * session. One media session's m-lines are forgotten with {@link Publisher.reset}; the tracks
 * and wishes stay for the next one.
 */

import { encodingsFor } from './simulcast.js';

/** @typedef {{tag: string, kind: 'audio' | 'video', track: MediaStreamTrack | null}} LocalTrack */

export class Publisher {
  /**
   * @param {{MediaStream?: typeof MediaStream, simulcast?: boolean}} options
   */
  constructor(options) {
    this.options = options;
    /** Local tracks by `tag:kind`. @type {Map<string, LocalTrack>} */
    this.local = new Map();
    /** One stream per tag (the browser wants one for `msid`). @type {Map<string, MediaStream>} */
    this.streams = new Map();
    /** This session's sending transceivers by `tag:kind`. @type {Map<string, RTCRtpTransceiver>} */
    this.senders = new Map();
    /** Mute wishes by `tag:kind` (own, or a host's until this side unmutes). @type {Map<string, boolean>} */
    this.muted = new Map();
  }

  /**
   * Sets the track of `tag`/`kind`: replaced on its m-line, or added on a new one when `pc` is
   * given (renegotiates); a muted one starts disabled.
   * @param {RTCPeerConnection | null} pc
   * @param {string} tag
   * @param {'audio' | 'video'} kind
   * @param {MediaStreamTrack | null} track
   */
  async set(pc, tag, kind, track) {
    const key = `${tag}:${kind}`;
    this.local.set(key, { tag, kind, track });
    if (track && this.muted.get(key)) track.enabled = false;
    const sender = this.senders.get(key);
    if (sender) await sender.sender.replaceTrack(track);
    else if (track && pc) this.add(pc, key);
  }

  /**
   * Stops sending `tag`/`kind`: its m-line goes `inactive` (the SFU unpublishes the track); a
   * later {@link set} adds a new m-line, since the SFU publishes on new m-lines only.
   * @param {string} tag
   * @param {'audio' | 'video'} kind
   */
  remove(tag, kind) {
    const key = `${tag}:${kind}`;
    this.local.delete(key);
    const t = this.senders.get(key);
    if (!t) return;
    this.senders.delete(key);
    void t.sender.replaceTrack(null).catch(() => {});
    t.direction = 'inactive';
  }

  /**
   * Every local track on a new connection; with none, an m-line that only receives (an offer
   * needs one).
   * @param {RTCPeerConnection} pc
   */
  addAll(pc) {
    let sending = 0;
    for (const [key, { track }] of this.local) {
      if (!track) continue;
      this.add(pc, key);
      sending += 1;
    }
    if (sending === 0) pc.addTransceiver('audio', { direction: 'recvonly' });
  }

  /**
   * A `sendonly` m-line for the local track of `key`; the camera's with simulcast layers.
   * @param {RTCPeerConnection} pc
   * @param {string} key
   */
  add(pc, key) {
    const { tag, kind, track } = /** @type {LocalTrack & {track: MediaStreamTrack}} */ (this.local.get(key));
    /** @type {RTCRtpTransceiverInit} */
    const init = { direction: 'sendonly', streams: [this._stream(tag)] };
    /** @type {RTCRtpTransceiver | null} */
    let transceiver = null;
    const layers = kind === 'video' && tag === 'camera' && this.options.simulcast !== false ? encodingsFor(track.getSettings?.().height) : null;
    if (layers) {
      try {
        transceiver = pc.addTransceiver(track, { ...init, sendEncodings: layers });
      } catch {
        // The browser refuses simulcast: one encoding below.
      }
    }
    this.senders.set(key, transceiver ?? pc.addTransceiver(track, init));
  }

  /**
   * Mutes or unmutes the local track of `key` here (`track.enabled`), and remembers the wish.
   * @param {string} key
   * @param {boolean} muted
   */
  mute(key, muted) {
    this.muted.set(key, muted);
    const track = this.local.get(key)?.track;
    if (track) track.enabled = !muted;
  }

  /** `{mid: tag}` of the m-lines sent on, for the offer. */
  tags() {
    /** @type {Record<string, string>} */
    const tags = {};
    for (const [key, t] of this.senders) if (t.mid) tags[t.mid] = key.slice(0, key.lastIndexOf(':'));
    return tags;
  }

  /**
   * The `tag:kind` sent on `mid`.
   * @param {string} mid
   */
  keyOn(mid) {
    for (const [key, t] of this.senders) if (t.mid === mid) return key;
    return null;
  }

  /** Forgets the m-lines of a media session that ended. */
  reset() {
    this.senders.clear();
  }

  /** @param {string} tag */
  _stream(tag) {
    let stream = this.streams.get(tag);
    if (!stream) {
      const MS = this.options.MediaStream ?? globalThis.MediaStream;
      stream = new MS();
      this.streams.set(tag, stream);
    }
    return stream;
  }
}
