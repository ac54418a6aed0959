// Test doubles for SFU calls without a browser: an RTCPeerConnection with transceivers, mids and
// the JSEP signaling states (its "SDP" is JSON listing the m-lines), a client that records what
// it sends, and a fake SFU that answers offers and adds other members' tracks the way the real
// one does (track_published, track_map, then an offer).
import { Emitter } from '../emitter.js';

export const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** Waits until `check` holds (bounded), failing with `what`. */
export async function until(check, what) {
  for (let i = 0; i < 400; i++) {
    if (check()) return;
    await tick(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}

let tracks = 0;
export class FakeTrack {
  constructor(kind) {
    this.kind = kind;
    this.id = `track-${++tracks}`;
    this.enabled = true;
  }
}

let streams = 0;
export class FakeStream {
  constructor(list = []) {
    this.id = `stream-${++streams}`;
    this.tracks = [...list];
  }
  getTracks() {
    return this.tracks;
  }
  removeTrack(t) {
    this.tracks = this.tracks.filter((x) => x !== t);
  }
  addEventListener() {}
}

class FakeTransceiver {
  constructor(kind, init, track) {
    this.kind = kind;
    this.mid = null;
    this.direction = init.direction ?? 'sendrecv';
    this.currentDirection = null;
    const encodings = (init.sendEncodings ?? [{}]).map((e) => ({ ...e }));
    const sender = {
      track,
      params: { encodings },
      setCalls: 0,
      replaceTrack: async (t) => (sender.track = t),
      getParameters: () => structuredClone(sender.params),
      setParameters: async (p) => {
        sender.setCalls += 1;
        sender.params = structuredClone(p);
      },
    };
    this.sender = sender;
    this.receiver = { track: new FakeTrack(kind), getSynchronizationSources: () => [] };
  }
}

let pcs = 0;
export class FakePC {
  /** Set to make addTransceiver refuse more than one encoding. */
  static refuseSimulcast = false;
  static all = [];

  constructor(config) {
    this.id = ++pcs;
    this.config = config;
    this.signalingState = 'stable';
    this.connectionState = 'new';
    this.iceConnectionState = 'new';
    this.localDescription = null;
    this.remoteDescription = null;
    this.transceivers = [];
    this.nextMid = 0;
    this.needed = false;
    this.ops = 0;
    this.closed = false;
    FakePC.all.push(this);
  }
  _negotiationNeeded() {
    this.needed = true;
    setTimeout(() => this._check(), 0);
  }
  _check() {
    if (this.ops === 0 && this.needed && this.signalingState === 'stable' && !this.closed) {
      this.needed = false;
      this.onnegotiationneeded?.();
    }
  }
  async _op(body) {
    this.ops += 1;
    try {
      await tick();
      return body();
    } finally {
      this.ops -= 1;
      if (this.ops === 0) setTimeout(() => this._check(), 0);
    }
  }
  addTransceiver(trackOrKind, init = {}) {
    if (FakePC.refuseSimulcast && (init.sendEncodings?.length ?? 0) > 1) {
      throw Object.assign(new Error('no simulcast'), { name: 'OperationError' });
    }
    const track = typeof trackOrKind === 'string' ? null : trackOrKind;
    const t = new FakeTransceiver(track ? track.kind : trackOrKind, init, track);
    this.transceivers.push(t);
    this._negotiationNeeded();
    return t;
  }
  getTransceivers() {
    return this.transceivers;
  }
  // What a mesh connection uses.
  addTrack(track) {
    return this.addTransceiver(track, { direction: 'sendrecv' }).sender;
  }
  removeTrack() {
    this._negotiationNeeded();
  }
  createDataChannel() {
    this._negotiationNeeded();
    return { readyState: 'connecting', close() {}, send() {} };
  }
  restartIce() {}
  getReceivers() {
    return [];
  }
  async addIceCandidate() {}
  setLocalDescription() {
    return this._op(() => {
      if (this.signalingState === 'have-remote-offer') {
        // Answer: each m-line of the offer, received here.
        this.localDescription = { type: 'answer', sdp: JSON.stringify(this.transceivers.map((t) => ({ mid: t.mid, direction: t.direction }))) };
        for (const t of this.transceivers) if (t.remoteSends !== undefined) t.currentDirection = t.remoteSends ? 'recvonly' : 'inactive';
        this.signalingState = 'stable';
      } else if (this.signalingState === 'stable') {
        for (const t of this.transceivers) if (t.mid === null) t.mid = String(this.nextMid++);
        const lines = this.transceivers.map((t) => ({ mid: t.mid, kind: t.kind, direction: t.direction, rids: t.sender.params.encodings.map((e) => e.rid).filter(Boolean) }));
        this.localDescription = { type: 'offer', sdp: JSON.stringify(lines) };
        this.signalingState = 'have-local-offer';
        this.needed = false;
      } else {
        throw Object.assign(new Error(`setLocalDescription in ${this.signalingState}`), { name: 'InvalidStateError' });
      }
    });
  }
  setRemoteDescription(desc) {
    return this._op(() => {
      const lines = JSON.parse(desc.sdp);
      if (desc.type === 'offer') {
        if (this.signalingState === 'have-local-offer') this.localDescription = null; // rollback
        else if (this.signalingState !== 'stable') throw Object.assign(new Error('offer'), { name: 'InvalidStateError' });
        const added = [];
        for (const line of lines) {
          let t = this.transceivers.find((x) => x.mid === line.mid);
          if (!t) {
            t = new FakeTransceiver(line.kind, { direction: 'recvonly' }, null);
            t.mid = line.mid;
            this.nextMid = Math.max(this.nextMid, Number(line.mid) + 1);
            this.transceivers.push(t);
            added.push(t);
          }
          if (line.direction === 'sendonly' || line.direction === 'inactive') t.remoteSends = line.direction === 'sendonly';
        }
        this.remoteDescription = desc;
        this.signalingState = 'have-remote-offer';
        this._added = added;
      } else {
        if (this.signalingState !== 'have-local-offer') throw Object.assign(new Error('answer'), { name: 'InvalidStateError' });
        for (const t of this.transceivers) if (t.direction === 'sendonly' || t.direction === 'inactive') t.currentDirection = t.direction;
        this.remoteDescription = desc;
        this.signalingState = 'stable';
      }
    }).then(() => {
      for (const t of this._added ?? []) this.ontrack?.({ track: t.receiver.track, transceiver: t, streams: [] });
      this._added = [];
    });
  }
  async getStats() {
    return new Map();
  }
  setConnectionState(state) {
    this.connectionState = state;
    this.onconnectionstatechange?.();
  }
  close() {
    this.closed = true;
    this.signalingState = 'closed';
  }
}

/** A client that records what it sends; the test plays the server by emitting events. */
export class FakeClient extends Emitter {
  constructor(peer = 'me', role = 'guest') {
    super();
    this.peer = peer;
    this.role = role;
    this.sent = [];
    this.joinPayload = null;
  }
  async join(room) {
    const payload = this.joinPayload ?? { peer: this.peer, role: this.role, mode: 'free_for_all', media: 'sfu', peers: [], ice_servers: [] };
    setTimeout(() => this.emit('joined', { room, ...payload }), 0);
    return payload;
  }
  send(type, fields) {
    this.sent.push({ type, ...fields });
    return this.sent.length;
  }
  async leave() {}
  async setMedia() {}
  /** Messages of `type` sent so far. */
  of(type) {
    return this.sent.filter((m) => m.type === type);
  }
}

/**
 * Plays the SFU for one client: answers its offers, publishes other members' tracks to it.
 * @param {FakeClient} client
 * @param {string} room
 */
export function fakeSfu(client, room) {
  let nextTrack = 1;
  let answered = 0;
  const sfu = {
    /** Own track ids by mid, as the SFU announced them. */
    own: new Map(),
    /** m-lines the SFU sends on: {mid, peer, track, kind}. */
    lines: [],
    tags: {},
    /** Answers every offer not answered yet; announces new own tracks (with the offer's tags). */
    answerOffers() {
      const offers = client.of('offer');
      for (; answered < offers.length; answered++) {
        const offer = offers[answered];
        Object.assign(sfu.tags, offer.payload.tags ?? {});
        const lines = JSON.parse(offer.payload.sdp);
        client.emit('signal', { type: 'answer', room, from: 'sfu', payload: { type: 'answer', sdp: JSON.stringify(lines) } });
        for (const line of lines) {
          if (line.direction !== 'sendonly' || sfu.own.has(line.mid)) continue;
          const track = `t${nextTrack++}`;
          sfu.own.set(line.mid, track);
          const tag = sfu.tags[line.mid];
          client.emit('media', { type: 'track_published', room, payload: { peer: client.peer, track, kind: line.kind, muted: false, mid: line.mid, ...(tag ? { tag } : {}) } });
        }
      }
    },
    /** Another member publishes a track: announced, mapped and offered. */
    publish(peer, kind, tag) {
      const track = `t${nextTrack++}`;
      client.emit('media', { type: 'track_published', room, payload: { peer, track, kind, muted: false, ...(tag ? { tag } : {}) } });
      const mid = String(100 + sfu.lines.length);
      sfu.lines.push({ mid, peer, track, kind, direction: 'sendonly' });
      sfu.offer();
      return track;
    },
    /** A track is gone: unpublished, its m-line stopped. */
    unpublish(track) {
      const line = sfu.lines.find((l) => l.track === track);
      client.emit('media', { type: 'track_unpublished', room, payload: { peer: line.peer, track } });
      line.direction = 'inactive';
      sfu.offer();
    },
    offer() {
      const open = sfu.lines.filter((l) => l.direction === 'sendonly');
      client.emit('media', { type: 'track_map', room, payload: { mids: open.map(({ mid, peer, track, kind }) => ({ mid, peer, track, kind })) } });
      client.emit('signal', { type: 'offer', room, from: 'sfu', payload: { type: 'offer', sdp: JSON.stringify(sfu.lines) } });
    },
  };
  return sfu;
}
