// @ts-check
/**
 * Full-mesh calls: one `RTCPeerConnection` per remote member of a room, negotiated through a
 * {@link Client} with the "perfect negotiation" pattern.
 *
 * - Roles: of two peers, the one whose peer id sorts higher is *polite* (it rolls back its own offer
 *   when offers cross); the other is *impolite* (it ignores the crossing offer). Both may offer at
 *   any time, so glare never deadlocks. To keep glare rare, the impolite side opens each connection
 *   and the polite side waits for its offer (or opens it itself after `politeWaitMs`).
 * - The impolite side also restarts ICE (`restartIce()`) when a connection fails, stays
 *   disconnected, or never starts checking (a browser can lose its candidates after a rollback).
 * - Trickle ICE: candidates are sent as they are gathered; received ones wait in a buffer until
 *   the remote description is set.
 * - A connection whose ICE fails (or stays disconnected) is restarted with `restartIce()`.
 * - Adding or removing a track (screen share) renegotiates; replacing one (camera switch, mute
 *   by `null`) does not need to.
 * - Each member's connection is closed when it leaves, sends `call_end`, or the page unloads.
 * - Offers and answers carry `streams: {streamId: tag}` so the other side knows which incoming
 *   stream is the camera and which is a screen share.
 */

import { Negotiation, candidateFromWire, candidateToWire, isPolite, shouldConnect } from './negotiation.js';
import { summarizeStats } from './quality.js';
import { RoomEngine } from './room-engine.js';

export { Negotiation, candidateFromWire, candidateToWire, isPolite, shouldConnect };

/** @typedef {import('./client.js').Client} Client */
/** @typedef {import('./protocol.js').PeerInfo} PeerInfo */
/** @typedef {import('./protocol.js').RoomMode} RoomMode */
/** @typedef {import('./protocol.js').Role} Role */
/** @typedef {import('./protocol.js').JoinedPayload} JoinedPayload */
/** @typedef {import('./quality.js').QualitySample} QualitySample */
/** @typedef {import('./client.js').SignalEvent} SignalEvent */

/**
 * Lets Node exit while a timer runs (browsers return plain numbers, which need nothing).
 * @param {any} timer
 */
function unref(timer) {
  timer?.unref?.();
}

/**
 * @typedef {object} MeshOptions
 * @property {string} room The room to call in.
 * @property {RTCConfiguration} [rtcConfig] Base configuration; the server's ICE servers are added.
 * @property {boolean} [dataChannel] Open a data channel to every peer (default true); it also makes
 *   sure peers without media still connect.
 * @property {number} [disconnectedRestartMs] Restart ICE after this long `disconnected` (default 4000).
 * @property {number} [stuckRestartMs] Restart ICE when a negotiated connection has not connected
 *   after this long (default 8000).
 * @property {number} [politeWaitMs] How long the polite side waits for the other's first offer
 *   before opening the connection itself (default 3000).
 * @property {boolean} [hangupOnUnload] Send `call_end` and leave on `pagehide` (default true).
 * @property {(local: {peer: string, role: Role}, remote: PeerInfo, mode: RoomMode) => boolean} [policy]
 *   Which members to connect to (default {@link shouldConnect}).
 * @property {typeof RTCPeerConnection} [RTCPeerConnection] For tests.
 * @property {typeof MediaStream} [MediaStream] For tests.
 */

/**
 * @typedef {object} MeshEvents
 * @property {{peer: string, info: PeerInfo}} peer A connection to a member was created.
 * @property {{peer: string, track: MediaStreamTrack, stream: MediaStream, tag: string}} track A
 *   remote track arrived; `tag` is the sender's label for its stream (`camera`, `screen`...).
 * @property {{peer: string, stream: MediaStream, tag: string}} stream_removed
 * @property {{peer: string, reason: string}} peer_closed A connection was closed.
 * @property {{peer: string, state: RTCPeerConnectionState}} connection_state
 * @property {{peer: string, data: any}} data A data-channel message.
 * @property {Map<string, PeerInfo>} members The room's other members changed.
 * @property {{mode: RoomMode, by?: string}} mode
 * @property {{peer: string, role: Role}} self This side's peer id and role (after each join).
 * @property {{reason: string, by?: string}} ended This side is out of the room (left, kicked,
 *   room closed, replaced).
 * @property {{peer?: string, error: unknown}} error
 */

/** One remote peer's connection. */
class Link {
  /**
   * @param {string} peer
   * @param {RTCPeerConnection} pc
   * @param {boolean} polite
   */
  constructor(peer, pc, polite) {
    this.peer = peer;
    this.pc = pc;
    this.negotiation = new Negotiation(polite);
    /** Signals are handled one at a time, in order. @type {Promise<void>} */
    this.chain = Promise.resolve();
    /** Senders by `tag:kind`. @type {Map<string, RTCRtpSender>} */
    this.senders = new Map();
    /** Remote stream tags from the peer's descriptions. @type {Map<string, string>} */
    this.remoteTags = new Map();
    /** @type {Map<string, MediaStream>} */
    this.streams = new Map();
    /** @type {RTCDataChannel | null} */
    this.channel = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.restartTimer = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.watchdog = null;
    /** Since when the connection has been negotiated but not connected (0: it is not). */
    this.stuckSince = 0;
    this.restarts = 0;
    /** @type {QualitySample | null} */
    this.lastSample = null;
    this.closed = false;
    /** Counters, for diagnostics. */
    this.counts = { offersSent: 0, answersSent: 0, candidatesSent: 0, candidatesReceived: 0, candidatesAdded: 0, candidateErrors: 0, ignoredOffers: 0 };
  }
}

/** @extends {RoomEngine<MeshEvents>} */
export class Mesh extends RoomEngine {
  /**
   * @param {Client} client
   * @param {MeshOptions} options
   */
  constructor(client, options) {
    super(client, options);
    this.options = options;
    /** What carries the media: connections to each member. */
    this.kind = /** @type {const} */ ('mesh');
    this.callId = `call-${Math.random().toString(36).slice(2, 10)}`;
    /** @type {Map<string, Link>} */
    this.links = new Map();
    /** Polite side: members whose offer it waits for, with the timer that stops waiting. @type {Map<string, ReturnType<typeof setTimeout>>} */
    this.waiting = new Map();
    /** Local tracks by `tag:kind`. @type {Map<string, {tag: string, track: MediaStreamTrack | null}>} */
    this.local = new Map();
    /** One stream per tag, carrying that tag's tracks to every peer. @type {Map<string, MediaStream>} */
    this.localStreams = new Map();
  }

  /**
   * Sets the local track of `tag` and `kind` (`camera`/`video`, `camera`/`audio`, `screen`/`video`)
   * on every connection: replaced where a sender exists (no renegotiation; `null` stops sending),
   * added where not (renegotiates).
   * @param {string} tag
   * @param {'audio' | 'video'} kind
   * @param {MediaStreamTrack | null} track
   */
  async setTrack(tag, kind, track) {
    const key = `${tag}:${kind}`;
    this.local.set(key, { tag, track });
    const work = [];
    for (const link of this.links.values()) {
      const sender = link.senders.get(key);
      if (sender) work.push(sender.replaceTrack(track));
      else if (track) link.senders.set(key, link.pc.addTrack(track, this._stream(tag)));
    }
    await Promise.all(work);
  }

  /**
   * Removes the track of `tag` and `kind` from every connection (renegotiates).
   * @param {string} tag
   * @param {'audio' | 'video'} kind
   */
  removeTrack(tag, kind) {
    const key = `${tag}:${kind}`;
    this.local.delete(key);
    for (const link of this.links.values()) {
      const sender = link.senders.get(key);
      if (sender) {
        link.senders.delete(key);
        if (link.pc.signalingState !== 'closed') link.pc.removeTrack(sender);
      }
    }
  }

  /**
   * Sends data to one peer over its data channel; false when the channel is not open.
   * @param {string} peer
   * @param {string} data
   */
  sendData(peer, data) {
    const channel = this.links.get(peer)?.channel;
    if (!channel || channel.readyState !== 'open') return false;
    channel.send(data);
    return true;
  }

  /**
   * The connection to `peer`, if any.
   * @param {string} peer
   * @returns {RTCPeerConnection | null}
   */
  connection(peer) {
    return this.links.get(peer)?.pc ?? null;
  }

  /**
   * A quality sample of the connection to `peer` (RTT, loss, bitrates since the previous call).
   * @param {string} peer
   * @returns {Promise<QualitySample | null>}
   */
  async quality(peer) {
    const link = this.links.get(peer);
    if (!link || link.closed) return null;
    const report = await link.pc.getStats();
    const sample = summarizeStats(report, link.lastSample, performance.now());
    link.lastSample = sample;
    return sample;
  }

  /**
   * The loudest incoming audio level from `peer`, 0..1 (from the RTP receivers' sources).
   * @param {string} peer
   */
  audioLevel(peer) {
    const link = this.links.get(peer);
    if (!link || link.closed) return 0;
    let level = 0;
    for (const receiver of link.pc.getReceivers()) {
      if (receiver.track?.kind !== 'audio' || typeof receiver.getSynchronizationSources !== 'function') continue;
      for (const source of receiver.getSynchronizationSources()) {
        if (Date.now() - source.timestamp < 1000) level = Math.max(level, source.audioLevel ?? 0);
      }
    }
    return level;
  }

  /**
   * Ends the call: `call_end` to every connected peer, connections closed, the room left. The
   * client stays open.
   * @param {string} [reason]
   */
  hangup(reason = 'hangup') {
    if (!this.active) return;
    for (const peer of this.links.keys()) {
      try {
        this.client.send('call_end', { room: this.room, to: peer, payload: { call_id: this.callId, reason } });
      } catch {
        // the client is closed
      }
    }
    super.hangup(reason);
  }

  /** The members this side has a connection to. */
  peers() {
    return [...this.links.keys()];
  }

  /**
   * Closes the connection to one member, which now gets its media another way.
   * @param {string} peer
   */
  release(peer) {
    this._close(peer, 'media_changed');
  }

  // ---- internals ----

  /** @param {string} reason */
  _stopMedia(reason) {
    this._closeAll(reason);
  }

  /** Connects to the members `joined` lists. */
  _startMedia() {
    this._reconcile();
  }

  /**
   * @param {Client} client
   * @param {(e: {room: string}) => boolean} mine
   */
  _listenMedia(client, mine) {
    return [client.on('signal', (e) => mine(e) && this._signal(e))];
  }

  /** @param {string} peer */
  _memberJoined(peer) {
    // A member that rejoined (a new session) needs a new connection.
    this._close(peer, 'rejoined');
    this._reconcile();
  }

  /**
   * @param {string} peer
   * @param {string} reason
   */
  _memberLeft(peer, reason) {
    this._close(peer, reason);
  }

  _modeChanged() {
    this._reconcile();
  }

  /** @param {PeerInfo} info */
  _allowed(info) {
    if (!this.self) return false;
    const policy = this.options.policy;
    return policy ? policy(this.self, info, this.mode) : shouldConnect(this.mode, this.self.role, info.role);
  }

  /** Connects to the members the policy allows and disconnects from the others. */
  _reconcile() {
    for (const info of this.members.values()) {
      if (!this._allowed(info) || this.links.has(info.peer)) continue;
      if (!this.self || !isPolite(this.self.peer, info.peer)) {
        this._link(info.peer);
      } else if (!this.waiting.has(info.peer)) {
        // The impolite side opens the connection; open it here only if its offer does not come.
        const peer = info.peer;
        this.waiting.set(
          peer,
          setTimeout(() => {
            this.waiting.delete(peer);
            if (this.active) this._link(peer);
          }, this.options.politeWaitMs ?? 3000),
        );
        unref(this.waiting.get(peer));
      }
    }
    for (const peer of [...this.links.keys(), ...this.waiting.keys()]) {
      const info = this.members.get(peer);
      if (!info || !this._allowed(info)) this._close(peer, 'policy');
    }
  }

  /** @param {string} tag */
  _stream(tag) {
    let stream = this.localStreams.get(tag);
    if (!stream) {
      const MS = this.options.MediaStream ?? globalThis.MediaStream;
      stream = new MS();
      this.localStreams.set(tag, stream);
    }
    return stream;
  }

  /** `{streamId: tag}` of the local streams, sent with every description. */
  _streamTags() {
    /** @type {Record<string, string>} */
    const tags = {};
    for (const [tag, stream] of this.localStreams) tags[stream.id] = tag;
    return tags;
  }

  /**
   * The link to `peer`, created if the peer is a member the policy allows.
   * @param {string} peer
   * @returns {Link | null}
   */
  _link(peer) {
    const existing = this.links.get(peer);
    if (existing) return existing;
    const info = this.members.get(peer);
    if (!this.self || !info || !this._allowed(info)) return null;
    const PC = this.options.RTCPeerConnection ?? globalThis.RTCPeerConnection;
    const base = this.options.rtcConfig ?? {};
    const pc = new PC({ ...base, iceServers: [...(base.iceServers ?? []), ...this.iceServers] });
    const link = new Link(peer, pc, isPolite(this.self.peer, peer));
    this.links.set(peer, link);
    const waiting = this.waiting.get(peer);
    if (waiting !== undefined) clearTimeout(waiting);
    this.waiting.delete(peer);
    this._wire(link);
    if (this.options.dataChannel !== false) {
      const channel = pc.createDataChannel('switchboard', { negotiated: true, id: 0 });
      channel.onmessage = (e) => this.emit('data', { peer, data: e.data });
      link.channel = channel;
    }
    for (const [key, { tag, track }] of this.local) {
      if (track) link.senders.set(key, pc.addTrack(track, this._stream(tag)));
    }
    this.emit('peer', { peer, info });
    return link;
  }

  /** @param {Link} link */
  _wire(link) {
    const { pc, peer, negotiation } = link;
    pc.onnegotiationneeded = async () => {
      try {
        negotiation.makingOffer = true;
        await pc.setLocalDescription();
        this._sendDescription(link);
      } catch (error) {
        this.emit('error', { peer, error });
      } finally {
        negotiation.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (link.closed) return;
      link.counts.candidatesSent += 1;
      this._send('candidate', peer, candidateToWire(candidate));
    };
    pc.oniceconnectionstatechange = () => {
      const state = pc.iceConnectionState;
      if (link.restartTimer) clearTimeout(link.restartTimer);
      link.restartTimer = null;
      if (state === 'failed') {
        this._restartIce(link);
      } else if (state === 'disconnected') {
        link.restartTimer = setTimeout(() => {
          if (pc.iceConnectionState === 'disconnected') this._restartIce(link);
        }, this.options.disconnectedRestartMs ?? 4000);
      }
    };
    // Negotiated but never connecting: restart (once per `stuckRestartMs`).
    const stuckMs = this.options.stuckRestartMs ?? 8000;
    link.watchdog = setInterval(() => {
      const negotiated = pc.signalingState === 'stable' && pc.remoteDescription !== null;
      const connecting = ['new', 'checking'].includes(pc.iceConnectionState);
      if (!negotiated || !connecting) {
        link.stuckSince = 0;
      } else if (!link.stuckSince) {
        link.stuckSince = Date.now();
      } else if (Date.now() - link.stuckSince >= stuckMs) {
        link.stuckSince = 0;
        this._restartIce(link);
      }
    }, Math.min(1000, stuckMs / 2));
    unref(link.watchdog);
    pc.onconnectionstatechange = () => {
      this.emit('connection_state', { peer, state: pc.connectionState });
    };
    pc.ontrack = ({ track, streams }) => {
      const MS = this.options.MediaStream ?? globalThis.MediaStream;
      const stream = streams[0] ?? new MS([track]);
      const tag = link.remoteTags.get(stream.id) ?? 'camera';
      if (!link.streams.has(stream.id)) {
        link.streams.set(stream.id, stream);
        stream.addEventListener('removetrack', () => {
          if (stream.getTracks().length === 0 && link.streams.delete(stream.id)) {
            this.emit('stream_removed', { peer, stream, tag });
          }
        });
      }
      this.emit('track', { peer, track, stream, tag });
    };
  }

  /**
   * Restarts ICE from the impolite side only: its restart offer is never rolled back, and two
   * sides restarting at once would only make offers cross.
   * @param {Link} link
   */
  _restartIce(link) {
    if (link.closed || link.negotiation.polite) return;
    link.restarts += 1;
    link.pc.restartIce();
  }

  /** @param {Link} link */
  _sendDescription(link) {
    const d = link.pc.localDescription;
    if (!d || link.closed) return;
    if (d.type === 'offer') link.counts.offersSent += 1;
    else link.counts.answersSent += 1;
    this._send(d.type, link.peer, { type: d.type, sdp: d.sdp, streams: this._streamTags() });
  }

  /**
   * @param {string} type
   * @param {string} to
   * @param {object} payload
   */
  _send(type, to, payload) {
    try {
      this.client.send(type, { room: this.room, to, payload });
    } catch (error) {
      this.emit('error', { peer: to, error });
    }
  }

  /** @param {SignalEvent} e */
  _signal(e) {
    if (e.type === 'call_end') {
      this._close(e.from, 'call_end');
      return;
    }
    const link = this._link(e.from);
    if (!link) return;
    link.chain = link.chain
      .then(() => this._handle(link, e))
      .catch((error) => this.emit('error', { peer: link.peer, error }));
  }

  /**
   * @param {Link} link
   * @param {SignalEvent} e
   */
  async _handle(link, e) {
    if (link.closed) return;
    const { pc, negotiation } = link;
    const p = e.payload ?? {};
    if (e.type === 'offer' || e.type === 'answer') {
      if (p.streams && typeof p.streams === 'object') {
        for (const [id, tag] of Object.entries(p.streams)) link.remoteTags.set(id, String(tag));
      }
      if (negotiation.onDescription(e.type, pc.signalingState) === 'ignore') {
        link.counts.ignoredOffers += 1;
        return;
      }
      negotiation.settingRemoteAnswer = e.type === 'answer';
      try {
        await pc.setRemoteDescription({ type: e.type, sdp: String(p.sdp) });
      } finally {
        negotiation.settingRemoteAnswer = false;
      }
      for (const candidate of negotiation.takeBuffered()) {
        await pc.addIceCandidate(candidate).then(
          () => (link.counts.candidatesAdded += 1),
          () => (link.counts.candidateErrors += 1),
        );
      }
      if (e.type === 'offer') {
        await pc.setLocalDescription();
        this._sendDescription(link);
      }
    } else if (e.type === 'candidate') {
      const candidate = candidateFromWire(p);
      link.counts.candidatesReceived += 1;
      if (negotiation.onCandidate(candidate, pc.remoteDescription !== null) === 'buffer') return;
      try {
        await pc.addIceCandidate(candidate);
        link.counts.candidatesAdded += 1;
      } catch (error) {
        link.counts.candidateErrors += 1;
        // Candidates of an ignored offer, and end-of-candidates markers some browsers refuse.
        if (!negotiation.ignoreOffer && candidate.candidate) throw error;
      }
    }
    // call_start: the link exists now; nothing else to do.
  }

  /**
   * @param {string} peer
   * @param {string} reason
   */
  _close(peer, reason) {
    const waiting = this.waiting.get(peer);
    if (waiting !== undefined) clearTimeout(waiting);
    this.waiting.delete(peer);
    const link = this.links.get(peer);
    if (!link) return;
    this.links.delete(peer);
    link.closed = true;
    if (link.restartTimer) clearTimeout(link.restartTimer);
    if (link.watchdog) clearInterval(link.watchdog);
    link.channel?.close();
    link.pc.onnegotiationneeded = link.pc.onicecandidate = link.pc.ontrack = null;
    link.pc.oniceconnectionstatechange = link.pc.onconnectionstatechange = null;
    link.pc.close();
    for (const stream of link.streams.values()) {
      this.emit('stream_removed', { peer, stream, tag: link.remoteTags.get(stream.id) ?? 'camera' });
    }
    this.emit('peer_closed', { peer, reason });
  }

  /** @param {string} reason */
  _closeAll(reason) {
    for (const peer of [...this.links.keys()]) this._close(peer, reason);
  }
}
