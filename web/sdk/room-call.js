// @ts-check
/**
 * A call in a room whatever carries its media: a {@link Mesh} when the room's effective media is
 * `mesh`, an {@link SfuCall} when it is `sfu` (`joined.media`), switching live on
 * `media_changed` (a room in `auto` goes to the SFU at its third member and back at two).
 *
 * The app sees one set of events. A live switch is make-before-break: the new engine starts with
 * the same local tracks while the old one keeps playing; each member's old connection is
 * released as soon as the new engine delivers that member's first track, and the old engine is
 * closed when every member it showed arrived anew (or after `switchGraceMs`). Events of the
 * engine being replaced are not passed on, so the app sees members' streams replaced (a `track`
 * with a new stream for the same member and tag), never a hang-up; streams that did not come
 * back are removed at the end.
 */

import { Emitter } from './emitter.js';
import { Mesh } from './mesh.js';
import { joinListening, setCameraStream } from './room-engine.js';
import { SfuCall } from './sfu.js';

/** @typedef {import('./client.js').Client} Client */
/** @typedef {import('./protocol.js').JoinedPayload} JoinedPayload */
/** @typedef {import('./protocol.js').MediaMode} MediaMode */
/** @typedef {import('./sfu.js').SfuEvents} SfuEvents */
/** @typedef {import('./views.js').View} View */
/** @typedef {Mesh | SfuCall} Engine */

/**
 * @typedef {import('./mesh.js').MeshOptions & import('./sfu.js').SfuOptions & {switchGraceMs?: number}} RoomCallOptions
 *   The options of both engines; `switchGraceMs` bounds a live switch (default 5000).
 */

/**
 * @typedef {object} RoomCallOnlyEvents
 * @property {{media: 'mesh' | 'sfu', media_mode: MediaMode, by?: string}} media The effective
 *   media or the setting, at the join and on every change.
 */

/** @typedef {SfuEvents & RoomCallOnlyEvents} RoomCallEvents */

/** Events passed on from the current engine. @type {(keyof SfuEvents)[]} */
const FORWARDED = [
  'peer', 'track', 'stream_removed', 'peer_closed', 'connection_state', 'data', 'members', 'mode', 'self',
  'ended', 'error', 'speakers', 'track_state', 'stream_state', 'layers',
];

/** @extends {Emitter<RoomCallEvents>} */
export class RoomCall extends Emitter {
  /**
   * @param {Client} client
   * @param {RoomCallOptions} options
   */
  constructor(client, options) {
    super();
    this.client = client;
    this.room = options.room;
    this.options = options;
    /** @type {Engine | null} */
    this.engine = null;
    /** The engine a live switch replaces, until it is closed. @type {Engine | null} */
    this.retiring = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.retireTimer = null;
    /** The effective media. @type {'mesh' | 'sfu' | null} */
    this.media = null;
    /** The room's setting. @type {MediaMode | null} */
    this.mediaMode = null;
    /** Local tracks by `tag:kind`, handed to each new engine. @type {Map<string, {tag: string, kind: 'audio' | 'video', track: MediaStreamTrack | null}>} */
    this.local = new Map();
    /** Own mutes by `tag:kind`, handed on too. @type {Map<string, boolean>} */
    this.muted = new Map();
    /** Streams the app was given, by `peer|tag`, with the engine that gave them. @type {Map<string, {peer: string, tag: string, stream: MediaStream, engine: Engine}>} */
    this.shown = new Map();
    /** Views the app asked for, re-applied on a switch to the SFU. @type {Map<string, {peer: string, tag: string, view: View}>} */
    this.viewed = new Map();
    this.switches = 0;
    /** @type {(() => void)[]} */
    this._offs = [];
  }

  /**
   * Joins the room; the media follows `joined.media`.
   * @param {{peer?: string, meta?: any}} [options]
   * @returns {Promise<JoinedPayload>}
   */
  async join(options = {}) {
    return joinListening(this, options);
  }

  /**
   * @param {string} tag
   * @param {'audio' | 'video'} kind
   * @param {MediaStreamTrack | null} track
   */
  async setTrack(tag, kind, track) {
    this.local.set(`${tag}:${kind}`, { tag, kind, track });
    await Promise.all(this._engines().map((e) => e.setTrack(tag, kind, track)));
  }

  /** @param {MediaStream} stream */
  async setCameraStream(stream) {
    await setCameraStream(this, stream);
  }

  /**
   * @param {string} tag
   * @param {'audio' | 'video'} kind
   */
  removeTrack(tag, kind) {
    this.local.delete(`${tag}:${kind}`);
    for (const e of this._engines()) e.removeTrack(tag, kind);
  }

  /**
   * Mutes or unmutes one of this side's tracks: the track stops (`enabled`), and in an SFU room
   * the SFU is told (the room gets `track_state`).
   * @param {'audio' | 'video'} kind
   * @param {boolean} muted
   * @param {string} [tag]
   */
  mute(kind, muted, tag = 'camera') {
    const key = `${tag}:${kind}`;
    this.muted.set(key, muted);
    const track = this.local.get(key)?.track;
    if (track) track.enabled = !muted;
    if (this.engine instanceof SfuCall) this.engine.mute(kind, muted, tag);
  }

  /**
   * A host mutes another member's track (SFU rooms only; returns false elsewhere).
   * @param {string} peer
   * @param {'audio' | 'video'} kind
   * @param {string} [tag]
   */
  muteRemote(peer, kind, tag = 'camera') {
    return this.engine instanceof SfuCall ? this.engine.muteRemote(peer, kind, tag) > 0 : false;
  }

  /**
   * How big `peer`'s `tag` video is shown (device pixels), or `{paused: true}` off screen; the
   * SFU picks a simulcast layer by it (a mesh ignores it).
   * @param {string} peer
   * @param {string} tag
   * @param {View} view
   */
  setView(peer, tag, view) {
    this.viewed.set(`${peer}|${tag}`, { peer, tag, view });
    if (this.engine instanceof SfuCall) this.engine.setView(peer, tag, view);
  }

  /**
   * Sets the room's media (hosts): `mesh`, `sfu` or `auto`.
   * @param {MediaMode} media
   */
  async setMedia(media) {
    await this.client.setMedia(this.room, media, this.mediaMode ?? undefined);
  }

  /**
   * @param {string} peer
   * @param {string} data
   */
  sendData(peer, data) {
    return this.engine?.sendData(peer, data) ?? false;
  }

  /** The members whose media this side gets now. */
  peers() {
    return this.engine?.peers() ?? [];
  }

  /** @param {string} peer */
  connection(peer) {
    return this.engine?.connection(peer) ?? null;
  }

  /** @param {string} peer */
  quality(peer) {
    return this.engine?.quality(peer) ?? Promise.resolve(null);
  }

  /** @param {string} peer */
  audioLevel(peer) {
    return this.engine?.audioLevel(peer) ?? 0;
  }

  /** @param {string} [reason] */
  hangup(reason = 'hangup') {
    this._finishSwitch();
    const engine = this.engine;
    this._unlisten();
    if (engine) engine.hangup(reason);
    else this.client.leave(this.room).catch(() => {});
  }

  // ---- internals ----

  _engines() {
    return /** @type {Engine[]} */ ([this.engine, this.retiring].filter(Boolean));
  }

  _listen() {
    if (this._offs.length) return;
    const c = this.client;
    if (this.options.hangupOnUnload !== false) {
      const onPageHide = () => this.hangup('unload');
      globalThis.addEventListener?.('pagehide', onPageHide);
      this._offs.push(() => globalThis.removeEventListener?.('pagehide', onPageHide));
    }
    this._offs.push(
      // Registered before any engine's own listeners, so a `joined` asking for the other media
      // replaces the engine before the old one would act on it.
      c.on('joined', (e) => {
        if (e.room !== this.room) return;
        this.mediaMode = e.media_mode ?? e.media;
        this._setMedia(e.media ?? 'mesh', e.media_mode ?? e.media);
        if (this.engine?.kind !== (e.media ?? 'mesh')) this._switch(e.media ?? 'mesh', e, false);
      }),
      c.on('media_changed', (e) => {
        if (e.room !== this.room || !this.engine) return;
        this.mediaMode = e.media_mode;
        this._setMedia(e.media, e.media_mode, e.by);
        if (this.engine.kind !== e.media) this._switch(e.media, this._joinedOf(this.engine), true);
      }),
    );
  }

  _unlisten() {
    for (const off of this._offs) off();
    this._offs = [];
  }

  /**
   * @param {'mesh' | 'sfu'} media
   * @param {MediaMode} mode
   * @param {string} [by]
   */
  _setMedia(media, mode, by) {
    this.media = media;
    this.emit('media', by ? { media, media_mode: mode, by } : { media, media_mode: mode });
  }

  /**
   * The room as an engine knows it, in `joined`'s shape, for the engine taking over.
   * @param {Engine} engine
   * @returns {JoinedPayload}
   */
  _joinedOf(engine) {
    const self = engine.self ?? { peer: this.client.peer ?? '', role: 'guest' };
    return {
      peer: self.peer,
      role: self.role,
      mode: engine.mode,
      media: /** @type {'mesh' | 'sfu'} */ (this.media),
      peers: [...engine.members.values()],
      ice_servers: engine.iceServers,
    };
  }

  /**
   * Starts the engine for `media` with the local tracks; the current one is closed at once, or,
   * live, kept until the new one carries its members (make before break).
   * @param {'mesh' | 'sfu'} media
   * @param {JoinedPayload} joined
   * @param {boolean} live
   */
  _switch(media, joined, live) {
    this._finishSwitch();
    const old = this.engine;
    const next = media === 'sfu' ? new SfuCall(this.client, { ...this.options, hangupOnUnload: false }) : new Mesh(this.client, { ...this.options, hangupOnUnload: false });
    this.engine = next;
    this._wire(next);
    for (const { tag, kind, track } of this.local.values()) void next.setTrack(tag, kind, track);
    if (next instanceof SfuCall) {
      for (const [key, muted] of this.muted) {
        const [tag, kind] = key.split(':');
        if (muted) next.mute(/** @type {'audio' | 'video'} */ (kind), true, tag);
      }
      for (const { peer, tag, view } of this.viewed.values()) next.setView(peer, tag, view);
    }
    if (old) {
      if (live) {
        this.switches += 1;
        this.retiring = old;
        this.retireTimer = setTimeout(() => this._finishSwitch(), this.options.switchGraceMs ?? 5000);
        /** @type {any} */ (this.retireTimer)?.unref?.();
      } else {
        old.detach('media_changed');
        this._dropShownOf(old);
      }
    }
    next.attach(joined);
  }

  /** @param {Engine} engine */
  _wire(engine) {
    for (const name of FORWARDED) {
      /** @type {(arg: any) => void} */
      const listener = (arg) => {
        if (engine !== this.engine) return; // a replaced engine is silent
        if (name === 'track') this._onTrack(engine, arg);
        if (name === 'stream_removed') this.shown.delete(`${arg.peer}|${arg.tag}`);
        this.emit(name, arg);
      };
      /** @type {Emitter<any>} */ (engine).on(name, listener);
    }
  }

  /**
   * @param {Engine} engine
   * @param {{peer: string, stream: MediaStream, tag: string}} e
   */
  _onTrack(engine, e) {
    this.shown.set(`${e.peer}|${e.tag}`, { peer: e.peer, tag: e.tag, stream: e.stream, engine });
    const old = this.retiring;
    if (!old) return;
    old.release(e.peer);
    const waiting = [...this.shown.values()].some((s) => s.engine === old);
    if (!waiting) this._finishSwitch();
  }

  /** Closes the replaced engine; streams of it that did not come back are removed. */
  _finishSwitch() {
    if (this.retireTimer) clearTimeout(this.retireTimer);
    this.retireTimer = null;
    const old = this.retiring;
    if (!old) return;
    this.retiring = null;
    old.detach('media_changed');
    this._dropShownOf(old);
  }

  /** @param {Engine} engine */
  _dropShownOf(engine) {
    for (const [key, s] of this.shown) {
      if (s.engine !== engine) continue;
      this.shown.delete(key);
      this.emit('stream_removed', { peer: s.peer, stream: s.stream, tag: s.tag });
    }
  }
}
