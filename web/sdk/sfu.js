// @ts-check
/**
 * A call through the server's SFU (docs/sfu.md): one `RTCPeerConnection` to the reserved peer
 * `sfu`, which forwards every member's tracks. It has the {@link Mesh}'s surface and events
 * (tracks per member with their stream tags, per-member connection state and quality samples),
 * so an app shows either the same way; {@link RoomCall} picks one.
 *
 * - Negotiation is perfect negotiation with fixed roles: this side is impolite (it ignores an SFU
 *   offer crossing its own), the SFU polite. This side offers its tracks as `sendonly` m-lines,
 *   with `tags: {mid: tag}` in the payload so the room learns which track is a screen share; the
 *   SFU offers one m-line per track of another member, after a `track_map` naming them.
 * - The camera is sent as three simulcast layers (simulcast.js), or as one where
 *   the browser refuses; the SFU's `layers` turns unwatched layers off at the encoder.
 * - `setView` tells the SFU how big a member's video is shown (or that it is off screen), so it
 *   picks a layer; debounced by a {@link ViewBoard}.
 * - Mute state lives in the SFU: `mute` sends it (and stops the local track), a host's
 *   `muteRemote` asks it of another member's track; a host's mute of this side's track stops it
 *   here too (`track.enabled = false`) and is told to the app as `track_state` with `self`.
 * - A failed media session (`media_unavailable`, or the connection failing) starts over with a
 *   new connection and offer after a capped exponential backoff, as long as the room lasts.
 * - The SFU is ICE-lite on a known address and learns this side's from its checks, so no
 *   candidates are trickled to it.
 */

import { Backoff } from './backoff.js';
import { Negotiation } from './negotiation.js';
import { Publisher } from './publisher.js';
import { statsForMids, summarizeStats } from './quality.js';
import { RemoteStreams } from './remote-streams.js';
import { RoomEngine } from './room-engine.js';
import { applyLayers } from './simulcast.js';
import { TrackTable } from './tracks.js';
import { ViewBoard } from './views.js';

/** @typedef {import('./client.js').Client} Client */
/** @typedef {import('./client.js').SignalEvent} SignalEvent */
/** @typedef {import('./client.js').MediaEvent} MediaEvent */
/** @typedef {import('./protocol.js').PeerInfo} PeerInfo */
/** @typedef {import('./protocol.js').JoinedPayload} JoinedPayload */
/** @typedef {import('./quality.js').QualitySample} QualitySample */
/** @typedef {import('./mesh.js').MeshEvents} MeshEvents */
/** @typedef {import('./views.js').View} View */
/** @typedef {import('./tracks.js').TrackInfo} TrackInfo */

/** The reserved peer id of the SFU. */
export const SFU_PEER = 'sfu';

/** Errors the SFU answers with (docs/protocol.md, "SFU rooms"). */
const SFU_ERRORS = new Set(['bad_sdp', 'unsupported_codec', 'too_many_tracks', 'unknown_track', 'media_unavailable']);

/**
 * @typedef {object} SfuOptions
 * @property {string} room
 * @property {RTCConfiguration} [rtcConfig] Base configuration; the server's ICE servers are added.
 * @property {boolean} [simulcast] Send the camera as three layers (default true).
 * @property {number} [viewDebounceMs] How long a tile's size must hold before the SFU is told
 *   (default 300).
 * @property {import('./backoff.js').BackoffOptions} [restartBackoff] Delays between media session
 *   restarts (default 1 s doubling to 15 s).
 * @property {boolean} [hangupOnUnload] Leave on `pagehide` (default true).
 * @property {typeof RTCPeerConnection} [RTCPeerConnection] For tests.
 * @property {typeof MediaStream} [MediaStream] For tests.
 */

/**
 * Events beyond the mesh's.
 * @typedef {object} SfuOnlyEvents
 * @property {{peers: string[]}} speakers Who speaks now, loudest first (the SFU's `speakers`).
 * @property {{peer: string, track: string, kind: 'audio' | 'video', tag: string, muted: boolean, by: string, self: boolean}} track_state
 *   A track was muted or unmuted, by its publisher or a host; `self`: one of this side's tracks.
 * @property {{peer: string, track: string, tag: string, state: string, layer?: string}} stream_state
 *   What the SFU now sends this side of a simulcast track (`active` with `layer`, `paused`,
 *   `paused_for_bandwidth`).
 * @property {{track: string, active: string[], paused: string[]}} layers Which camera layers
 *   someone receives (the encoder is told already).
 */

/** @typedef {MeshEvents & SfuOnlyEvents} SfuEvents */

/** @extends {RoomEngine<SfuEvents>} */
export class SfuCall extends RoomEngine {
  /**
   * @param {Client} client
   * @param {SfuOptions} options
   */
  constructor(client, options) {
    super(client, options);
    this.options = options;
    /** What carries the media: the server's SFU. */
    this.kind = /** @type {const} */ ('sfu');
    /** What this side sends. */
    this.out = new Publisher({ MediaStream: options.MediaStream, simulcast: options.simulcast });
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    this.negotiation = new Negotiation(false);
    /** SFU signals are handled one at a time, in order. @type {Promise<void>} */
    this.chain = Promise.resolve();
    /** `setParameters` calls one at a time (concurrent ones fail). @type {Promise<void>} */
    this.paramChain = Promise.resolve();
    this.tracks = new TrackTable();
    /** The other members' tracks shown, as streams per member and tag. */
    this.remote = new RemoteStreams(options.MediaStream ?? globalThis.MediaStream, {
      track: (e) => this.emit('track', e),
      removed: (e) => this.emit('stream_removed', e),
    });
    this.views = new ViewBoard(options.viewDebounceMs ?? 300);
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.viewTimer = null;
    this.backoff = new Backoff(options.restartBackoff ?? { initialMs: 1000, maxMs: 15000 });
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.restartTimer = null;
    this.restarts = 0;
    /** @type {Map<string, QualitySample>} */
    this.samples = new Map();
    /** Counters, for diagnostics. */
    this.counts = { offersSent: 0, answersSent: 0, ignoredOffers: 0 };
  }

  /** Nothing to release per member: one connection carries them all. @param {string} _peer */
  release(_peer) {}

  /**
   * Sets the local track of `tag` and `kind`: replaced on its m-line where one exists (no
   * renegotiation; `null` sends nothing and keeps the track published), else added on a new
   * `sendonly` m-line (renegotiates).
   * @param {string} tag
   * @param {'audio' | 'video'} kind
   * @param {MediaStreamTrack | null} track
   */
  async setTrack(tag, kind, track) {
    await this.out.set(this.pc, tag, kind, track);
  }

  /**
   * Stops sending `tag`/`kind`: its m-line goes `inactive` (renegotiates) and the SFU
   * unpublishes the track. A later `setTrack` adds a new m-line.
   * @param {string} tag
   * @param {'audio' | 'video'} kind
   */
  removeTrack(tag, kind) {
    this.out.remove(tag, kind);
  }

  /**
   * Mutes or unmutes one of this side's tracks: the browser stops sending it
   * (`track.enabled`) and the SFU stops forwarding it and tells the room (`track_state`).
   * @param {'audio' | 'video'} kind
   * @param {boolean} muted
   * @param {string} [tag]
   */
  mute(kind, muted, tag = 'camera') {
    const key = `${tag}:${kind}`;
    this.out.mute(key, muted);
    const id = this._ownId(key);
    if (id) this._send('mute', { track: id, muted });
  }

  /**
   * A host mutes another member's `kind` track of `tag` (only its publisher unmutes it).
   * Returns how many tracks were asked; the SFU answers `track_state`, or `forbidden`.
   * @param {string} peer
   * @param {'audio' | 'video'} kind
   * @param {string} [tag]
   */
  muteRemote(peer, kind, tag = 'camera') {
    const ids = this.tracks.tracksOf(peer, kind, tag);
    for (const track of ids) this._send('mute', { track, muted: true });
    return ids.length;
  }

  /**
   * How big this side shows `peer`'s `tag` video: `{width, height}` in device pixels, or
   * `{paused: true}` when it is not on screen. Sent to the SFU once it held still a moment.
   * @param {string} peer
   * @param {string} tag
   * @param {View} view
   */
  setView(peer, tag, view) {
    this.views.set(peer, tag, view, Date.now());
    this._flushViews();
  }

  /** @param {string} _peer @param {string} _data */
  sendData(_peer, _data) {
    return false; // the SFU forwards media only; app data goes through the client
  }

  /** The members whose media this side gets through the SFU. */
  peers() {
    return [...this.members.keys()];
  }

  /**
   * The connection carrying `peer`'s media: the one to the SFU.
   * @param {string} peer
   * @returns {RTCPeerConnection | null}
   */
  connection(peer) {
    return this.members.has(peer) ? this.pc : null;
  }

  /**
   * A quality sample of `peer`'s media: the SFU connection's RTT, and loss and bitrate of the
   * m-lines carrying `peer`'s tracks.
   * @param {string} peer
   * @returns {Promise<QualitySample | null>}
   */
  async quality(peer) {
    const pc = this.pc;
    if (!pc || !this.members.has(peer)) return null;
    const report = await pc.getStats();
    const mine = this.remote.of(peer);
    const picked = statsForMids(report, new Set(mine.map(([mid]) => mid)), new Set(mine.map(([, r]) => r.media.id)));
    const sample = summarizeStats(picked, this.samples.get(peer) ?? null, performance.now());
    this.samples.set(peer, sample);
    return sample;
  }

  /**
   * The loudest recent audio level from `peer`, 0..1.
   * @param {string} peer
   */
  audioLevel(peer) {
    let level = 0;
    if (!this.pc) return level;
    for (const t of this.pc.getTransceivers()) {
      const r = t.mid ? this.remote.byMid.get(t.mid) : undefined;
      if (!r || r.peer !== peer || r.kind !== 'audio') continue;
      for (const source of t.receiver.getSynchronizationSources?.() ?? []) {
        if (Date.now() - source.timestamp < 1000) level = Math.max(level, source.audioLevel ?? 0);
      }
    }
    return level;
  }

  // ---- internals ----

  /**
   * @param {Client} client
   * @param {(e: {room: string}) => boolean} mine
   */
  _listenMedia(client, mine) {
    return [
      client.on('signal', (e) => {
        if (!mine(e) || e.from !== SFU_PEER) return;
        this.chain = this.chain.then(() => this._handle(e)).catch((error) => this.emit('error', { peer: SFU_PEER, error }));
      }),
      client.on('media', (e) => mine(e) && this._media(e)),
      client.on('error', (error) => {
        const reply = error.reply;
        if (!this.active || reply?.room !== this.room || !SFU_ERRORS.has(error.code)) return;
        const refused = reply.payload?.type;
        if (error.code === 'media_unavailable' && refused === 'subscribe') {
          this.views.resend(); // the SFU's queue was full: say it again
          this._flushViews();
        } else if (error.code === 'media_unavailable') {
          this._scheduleRestart();
        } else if (error.code !== 'unknown_track') {
          // unknown_track: a track unpublished while a view or mute was on its way.
          this.emit('error', { peer: SFU_PEER, error });
        }
      }),
    ];
  }

  /** Tells the app of every member, and connects to the SFU. */
  _startMedia() {
    for (const [peer, info] of this.members) this.emit('peer', { peer, info });
    this._startSession();
  }

  /** @param {string} _reason */
  _stopMedia(_reason) {
    this._closeSession();
  }

  /**
   * @param {string} peer
   * @param {PeerInfo} info
   */
  _memberJoined(peer, info) {
    this.emit('peer', { peer, info });
    if (this.pc) this.emit('connection_state', { peer, state: this.pc.connectionState });
  }

  /**
   * @param {string} peer
   * @param {string} reason
   */
  _memberLeft(peer, reason) {
    this._forgetPeer(peer, reason);
  }

  /** A new connection to the SFU with every local track, which offers at once. */
  _startSession() {
    if (this.pc) return;
    const PC = this.options.RTCPeerConnection ?? globalThis.RTCPeerConnection;
    const base = this.options.rtcConfig ?? {};
    const pc = new PC({ ...base, iceServers: [...(base.iceServers ?? []), ...this.iceServers] });
    this.pc = pc;
    this.negotiation = new Negotiation(false);
    pc.onnegotiationneeded = async () => {
      if (this.pc !== pc) return;
      try {
        this.negotiation.makingOffer = true;
        await pc.setLocalDescription();
        this._sendDescription(pc);
      } catch (error) {
        this.emit('error', { peer: SFU_PEER, error });
      } finally {
        this.negotiation.makingOffer = false;
      }
    };
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      const state = pc.connectionState;
      for (const peer of this.members.keys()) this.emit('connection_state', { peer, state });
      if (state === 'connected') this.backoff.reset();
      if (state === 'failed') this._scheduleRestart();
    };
    pc.ontrack = () => this.pc === pc && this.remote.assign(pc.getTransceivers(), this.tracks);
    this.out.addAll(pc);
    this.views.resend();
  }

  /** @param {RTCPeerConnection} pc */
  _sendDescription(pc) {
    const d = pc.localDescription;
    if (!d || this.pc !== pc) return;
    /** @type {Record<string, any>} */
    const payload = { type: d.type, sdp: d.sdp };
    if (d.type === 'offer') {
      this.counts.offersSent += 1;
      payload.tags = this.out.tags();
    } else {
      this.counts.answersSent += 1;
    }
    this._send(d.type, payload);
  }

  /**
   * @param {string} type
   * @param {object} payload
   */
  _send(type, payload) {
    try {
      const to = type === 'offer' || type === 'answer' ? SFU_PEER : undefined;
      this.client.send(type, { room: this.room, to, payload });
    } catch (error) {
      this.emit('error', { peer: SFU_PEER, error });
    }
  }

  /** @param {SignalEvent} e */
  async _handle(e) {
    const pc = this.pc;
    if (!pc || (e.type !== 'offer' && e.type !== 'answer')) return;
    if (this.negotiation.onDescription(e.type, pc.signalingState) === 'ignore') {
      this.counts.ignoredOffers += 1; // the SFU yields and offers again after our answer
      return;
    }
    this.negotiation.settingRemoteAnswer = e.type === 'answer';
    try {
      await pc.setRemoteDescription({ type: e.type, sdp: String(e.payload?.sdp ?? '') });
    } finally {
      this.negotiation.settingRemoteAnswer = false;
    }
    if (e.type === 'offer') {
      await pc.setLocalDescription();
      this._sendDescription(pc);
    }
    this.remote.assign(pc.getTransceivers(), this.tracks);
  }

  /** @param {MediaEvent} e */
  _media(e) {
    const p = e.payload;
    switch (e.type) {
      case 'track_map':
        this.tracks.onMap(p);
        break;
      case 'track_published': {
        const info = this.tracks.onPublished(p);
        if (info?.mid) {
          const key = this.out.keyOn(info.mid);
          if (key && this.out.muted.get(key)) this._send('mute', { track: info.track, muted: true });
        } else if (info) {
          this.views.resend(info.peer);
          this._flushViews();
        }
        break;
      }
      case 'track_unpublished': {
        const info = this.tracks.onUnpublished(p);
        if (info) this.remote.dropWhere({ track: info.track });
        break;
      }
      case 'track_state':
        this._trackState(p);
        break;
      case 'stream_state': {
        const tag = this.tracks.published.get(p?.track)?.tag ?? 'camera';
        this.emit('stream_state', { peer: p?.peer, track: p?.track, tag, state: p?.state, layer: p?.layer });
        break;
      }
      case 'layers':
        this._layers(p);
        break;
      case 'speakers':
        this.emit('speakers', { peers: Array.isArray(p?.peers) ? p.peers : [] });
        break;
    }
  }

  /** @param {any} p */
  _trackState(p) {
    const info = this.tracks.onState(p);
    if (!info) return;
    const self = info.mid !== undefined;
    if (self) {
      const key = this.out.keyOn(/** @type {string} */ (info.mid));
      // A host muted it: stop sending here too; only this side unmutes (with `mute`).
      if (key && info.muted) this.out.mute(key, true);
    }
    const by = String(p.by ?? '');
    this.emit('track_state', { peer: info.peer, track: info.track, kind: info.kind, tag: info.tag, muted: info.muted, by, self });
  }

  /** @param {any} p */
  _layers(p) {
    const info = this.tracks.own.get(p?.track);
    const key = info?.mid ? this.out.keyOn(info.mid) : null;
    const t = key ? this.out.senders.get(key) : undefined;
    if (!t) return;
    this.paramChain = this.paramChain
      .then(async () => {
        const params = t.sender.getParameters();
        const { encodings, changed } = applyLayers(params.encodings ?? [], p.active, p.paused);
        if (changed) await t.sender.setParameters({ ...params, encodings });
      })
      .catch((error) => this.emit('error', { peer: SFU_PEER, error }));
    this.emit('layers', { track: p.track, active: p.active ?? [], paused: p.paused ?? [] });
  }

  /**
   * The SFU's id of the local track of `key`, once it announced it.
   * @param {string} key
   */
  _ownId(key) {
    const mid = this.out.senders.get(key)?.mid;
    return mid ? (this.tracks.ownOn(mid)?.track ?? null) : null;
  }

  /**
   * @param {string} peer
   * @param {string} reason
   */
  _forgetPeer(peer, reason) {
    this.remote.dropWhere({ peer });
    this.tracks.removePeer(peer);
    this.views.forget(peer);
    this.samples.delete(peer);
    this.emit('peer_closed', { peer, reason });
  }

  /** Sends the views that are due, and looks again when the next one is. */
  _flushViews() {
    if (this.viewTimer) clearTimeout(this.viewTimer);
    this.viewTimer = null;
    if (!this.active) return;
    const now = Date.now();
    const { due, wakeAt } = this.views.poll(now);
    /** @type {Map<string, {view: View, tracks: string[], shown: {peer: string, tag: string}[]}>} */
    const byView = new Map();
    for (const { peer, tag, view } of due) {
      const tracks = this.tracks.tracksOf(peer, 'video', tag);
      if (tracks.length === 0) continue; // sent when the track is published
      const key = JSON.stringify(view);
      const group = byView.get(key) ?? { view, tracks: [], shown: [] };
      group.tracks.push(...tracks);
      group.shown.push({ peer, tag });
      byView.set(key, group);
    }
    for (const { view, tracks, shown } of byView.values()) {
      // At most 64 tracks per message (the protocol's limit).
      for (let i = 0; i < tracks.length; i += 64) {
        this._send('subscribe', { tracks: tracks.slice(i, i + 64), subscribe: true, ...view });
      }
      for (const { peer, tag } of shown) this.views.sent(peer, tag, view);
    }
    if (wakeAt !== null) {
      this.viewTimer = setTimeout(() => this._flushViews(), Math.max(0, wakeAt - now));
      /** @type {any} */ (this.viewTimer)?.unref?.();
    }
  }

  /** The media session failed: a new one after the backoff's delay (one restart at a time). */
  _scheduleRestart() {
    if (this.restartTimer || !this.active) return;
    const delay = this.backoff.next();
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (!this.active) return;
      this.restarts += 1;
      this._closeSession();
      this._startSession();
    }, delay);
    /** @type {any} */ (this.restartTimer)?.unref?.();
  }

  /** Closes the connection to the SFU; every remote stream is removed. */
  _closeSession() {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    if (this.viewTimer) clearTimeout(this.viewTimer);
    this.viewTimer = null;
    const pc = this.pc;
    this.pc = null;
    if (pc) {
      pc.onnegotiationneeded = pc.ontrack = pc.onconnectionstatechange = null;
      pc.close();
    }
    this.remote.dropWhere();
    this.out.reset();
    this.tracks.resetSession();
    this.chain = Promise.resolve();
    this.paramChain = Promise.resolve();
  }
}
