// @ts-check
/**
 * What the two media engines, {@link Mesh} and {@link SfuCall}, share: the room as `joined` and
 * the membership events describe it (this side's peer id and role, the mode, the other members,
 * the ICE servers), joining, attaching to a room already joined, listening to the client while
 * the call lasts, and ending when this side is out of the room. Each engine carries the media
 * through the hooks below: one connection per member for the mesh, one to the SFU for the other.
 */

import { Emitter } from './emitter.js';

/** @typedef {import('./client.js').Client} Client */
/** @typedef {import('./protocol.js').PeerInfo} PeerInfo */
/** @typedef {import('./protocol.js').RoomMode} RoomMode */
/** @typedef {import('./protocol.js').Role} Role */
/** @typedef {import('./protocol.js').IceServer} IceServer */
/** @typedef {import('./protocol.js').JoinedPayload} JoinedPayload */
/** @typedef {import('./mesh.js').MeshEvents} MeshEvents */

/**
 * @typedef {object} RoomEngineOptions
 * @property {string} room The room to call in.
 * @property {boolean} [hangupOnUnload] Hang up on `pagehide` (default true).
 */

/**
 * What a call that joins its room and takes a camera has: an engine, or a {@link RoomCall} over
 * engines.
 * @typedef {object} Call
 * @property {Client} client
 * @property {string} room
 * @property {() => void} _listen
 * @property {() => void} _unlisten
 * @property {(tag: string, kind: 'audio' | 'video', track: MediaStreamTrack | null) => Promise<void>} setTrack
 */

/**
 * Joins `call`'s room, listening to the client from before the request, so nothing the join
 * causes is missed, and not at all once it fails.
 * @param {Call} call
 * @param {{peer?: string, meta?: any}} options
 * @returns {Promise<JoinedPayload>}
 */
export async function joinListening(call, options) {
  call._listen();
  try {
    return await call.client.join(call.room, options);
  } catch (error) {
    call._unlisten();
    throw error;
  }
}

/**
 * Sets `call`'s camera and microphone from a `getUserMedia` stream (tag `camera`).
 * @param {Call} call
 * @param {MediaStream} stream
 */
export async function setCameraStream(call, stream) {
  await Promise.all([
    call.setTrack('camera', 'audio', stream.getAudioTracks()[0] ?? null),
    call.setTrack('camera', 'video', stream.getVideoTracks()[0] ?? null),
  ]);
}

/**
 * @template {MeshEvents} Events
 * @extends {Emitter<Events>}
 */
export class RoomEngine extends Emitter {
  /**
   * @param {Client} client
   * @param {RoomEngineOptions} options
   */
  constructor(client, options) {
    super();
    this.client = client;
    this.room = options.room;
    /** @type {{peer: string, role: Role} | null} */
    this.self = null;
    /** @type {RoomMode} */
    this.mode = 'free_for_all';
    /** The room's other members. @type {Map<string, PeerInfo>} */
    this.members = new Map();
    /** @type {IceServer[]} */
    this.iceServers = [];
    /** Listening to the client: from `join` or `attach` to the end of the call. */
    this.active = false;
    /** @type {(() => void)[]} */
    this._offs = [];
    this._hangupOnUnload = options.hangupOnUnload !== false;
    this._onPageHide = () => this.hangup('unload');
  }

  /**
   * Joins the room and starts the media (and connects everyone who joins later).
   * @param {{peer?: string, meta?: any}} [options]
   * @returns {Promise<JoinedPayload>}
   */
  async join(options = {}) {
    return joinListening(this, options);
  }

  /**
   * Starts in a room already joined ({@link RoomCall} switching media): the members `joined`
   * lists, and later ones.
   * @param {JoinedPayload} joined
   */
  attach(joined) {
    this._listen();
    this._joined(joined);
  }

  /**
   * Stops the media and listening, without leaving the room ({@link RoomCall} switching away).
   * @param {string} reason
   */
  detach(reason) {
    this._stopMedia(reason);
    this._unlisten();
  }

  /**
   * Sets the camera and microphone from a `getUserMedia` stream (tag `camera`).
   * @param {MediaStream} stream
   */
  async setCameraStream(stream) {
    await setCameraStream(this, stream);
  }

  /**
   * Ends the call: the media stopped, the room left. The client stays open.
   * @param {string} [_reason]
   */
  hangup(_reason = 'hangup') {
    if (!this.active) return;
    this._stopMedia('hangup');
    this._unlisten();
    this.client.leave(this.room).catch(() => {});
  }

  // ---- what each engine provides ----

  /**
   * Sets the local track of `tag` and `kind`, `null` to send nothing.
   * @abstract
   * @param {string} _tag
   * @param {'audio' | 'video'} _kind
   * @param {MediaStreamTrack | null} _track
   * @returns {Promise<void>}
   */
  async setTrack(_tag, _kind, _track) {
    throw new Error('a RoomEngine subclass sets tracks');
  }

  /**
   * The room is known (`joined`, or attached): start carrying media.
   * @abstract
   */
  _startMedia() {
    throw new Error('a RoomEngine subclass starts its media');
  }

  /**
   * Stop carrying media (hang-up, the end of the room, a session reset, a switch away).
   * @abstract
   * @param {string} _reason
   */
  _stopMedia(_reason) {
    throw new Error('a RoomEngine subclass stops its media');
  }

  /**
   * The engine's own listeners on the client, with `mine` telling this room's events.
   * @abstract
   * @param {Client} _client
   * @param {(e: {room: string}) => boolean} _mine
   * @returns {(() => void)[]}
   */
  _listenMedia(_client, _mine) {
    throw new Error('a RoomEngine subclass listens for its media');
  }

  /**
   * A member joined (already in `members`).
   * @param {string} _peer
   * @param {PeerInfo} _info
   */
  _memberJoined(_peer, _info) {}

  /**
   * A member left (already out of `members`).
   * @param {string} _peer
   * @param {string} _reason
   */
  _memberLeft(_peer, _reason) {}

  /** The room's mode changed (`mode` holds it). */
  _modeChanged() {}

  // ---- internals ----

  /**
   * Emits one of the events every engine has. (`Events` extends them, but TypeScript does not
   * narrow a generic's property types, hence the cast.)
   * @template {keyof MeshEvents} K
   * @param {K} event
   * @param {MeshEvents[K]} arg
   */
  _emitShared(event, arg) {
    /** @type {Emitter<MeshEvents>} */ (/** @type {unknown} */ (this)).emit(event, arg);
  }

  _listen() {
    if (this.active) return;
    this.active = true;
    const c = this.client;
    // `active` too: a listener removed during an emit still sees that one event.
    const mine = (/** @type {{room: string}} */ e) => e.room === this.room && this.active;
    this._offs.push(
      c.on('joined', (e) => mine(e) && this._joined(e)),
      c.on('peer_joined', (e) => {
        if (!mine(e)) return;
        const { room: _room, ...info } = e;
        this.members.set(e.peer, info);
        this._emitShared('members', this.members);
        this._memberJoined(e.peer, info);
      }),
      c.on('peer_left', (e) => {
        if (!mine(e)) return;
        this.members.delete(e.peer);
        this._emitShared('members', this.members);
        this._memberLeft(e.peer, e.reason);
      }),
      c.on('mode_changed', (e) => {
        if (!mine(e)) return;
        this.mode = e.mode;
        this._emitShared('mode', { mode: e.mode, by: e.by });
        this._modeChanged();
      }),
      c.on('left', (e) => mine(e) && this._ended(e.reason, e.by)),
      c.on('room_closed', (e) => mine(e) && this._ended(`room_closed:${e.reason}`)),
      c.on('replaced', (e) => mine(e) && this._ended('replaced')),
      // The others saw this side leave; the client joins again and `joined` starts over.
      c.on('session_reset', () => this._stopMedia('session_reset')),
      ...this._listenMedia(c, mine),
    );
    if (this._hangupOnUnload) globalThis.addEventListener?.('pagehide', this._onPageHide);
  }

  _unlisten() {
    this.active = false;
    for (const off of this._offs) off();
    this._offs = [];
    globalThis.removeEventListener?.('pagehide', this._onPageHide);
  }

  /**
   * The room as `joined` (or the call it takes over from) describes it.
   * @param {JoinedPayload} e
   */
  _joined(e) {
    this.self = { peer: e.peer, role: e.role };
    this.mode = e.mode;
    this.iceServers = e.ice_servers ?? [];
    this.members = new Map(e.peers.map((p) => [p.peer, p]));
    this._emitShared('self', this.self);
    this._emitShared('mode', { mode: this.mode });
    this._emitShared('members', this.members);
    this._startMedia();
  }

  /**
   * This side is out of the room.
   * @param {string} reason
   * @param {string} [by]
   */
  _ended(reason, by) {
    this._stopMedia(reason);
    this.members.clear();
    this._emitShared('members', this.members);
    this._unlisten();
    this._emitShared('ended', { reason, by });
  }
}
