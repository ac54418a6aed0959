// Perfect negotiation without a browser: a fake RTCPeerConnection with the real signaling state
// machine, two meshes wired through fake clients, glare, candidate buffering, policies.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Emitter } from '../emitter.js';
import { Mesh, Negotiation, candidateFromWire, candidateToWire, isPolite, shouldConnect } from '../mesh.js';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

class FakeStream {
  static n = 0;
  constructor(tracks = []) {
    this.id = `stream-${++FakeStream.n}`;
    this.tracks = tracks;
  }
  getTracks() {
    return this.tracks;
  }
  addEventListener() {}
}

let pcs = 0;
/** The signaling state machine of RTCPeerConnection (JSEP), enough for negotiation. */
class FakePC {
  constructor(config) {
    this.id = ++pcs;
    this.config = config;
    this.signalingState = 'stable';
    this.iceConnectionState = 'new';
    this.connectionState = 'new';
    this.localDescription = null;
    this.remoteDescription = null;
    this.added = [];
    this.senders = [];
    this.offers = 0;
    this.restarts = 0;
    this.needed = false;
    this.ops = 0;
  }
  _negotiationNeeded() {
    this.needed = true;
    setTimeout(() => this._checkNegotiation(), 0);
  }
  // Like the browser: only with an empty operations chain and in stable.
  _checkNegotiation() {
    if (this.ops === 0 && this.needed && this.signalingState === 'stable') {
      this.needed = false;
      this.onnegotiationneeded?.();
    }
  }
  async _op(body) {
    this.ops = (this.ops ?? 0) + 1;
    try {
      await tick();
      return body();
    } finally {
      this.ops -= 1;
      if (this.ops === 0) setTimeout(() => this._checkNegotiation(), 0);
    }
  }
  createDataChannel() {
    this._negotiationNeeded();
    return { readyState: 'connecting', close() {}, send() {} };
  }
  addTrack(track) {
    const sender = { track, replaceTrack: async (t) => (sender.track = t) };
    this.senders.push(sender);
    this._negotiationNeeded();
    return sender;
  }
  removeTrack(sender) {
    this.senders = this.senders.filter((s) => s !== sender);
    this._negotiationNeeded();
  }
  restartIce() {
    this.restarts += 1;
    this._negotiationNeeded();
  }
  setLocalDescription() {
    return this._op(() => this._sld());
  }
  setRemoteDescription(desc) {
    return this._op(() => this._srd(desc));
  }
  _sld() {
    if (this.signalingState === 'have-remote-offer') {
      this.localDescription = { type: 'answer', sdp: `answer-from-${this.id}` };
      this.signalingState = 'stable';
    } else if (this.signalingState === 'stable') {
      this.offers += 1;
      this.localDescription = { type: 'offer', sdp: `offer-${this.offers}-from-${this.id}` };
      this.signalingState = 'have-local-offer';
      this.needed = false;
    } else {
      throw Object.assign(new Error(`setLocalDescription in ${this.signalingState}`), { name: 'InvalidStateError' });
    }
  }
  _srd(desc) {
    if (desc.type === 'offer') {
      if (this.signalingState === 'have-local-offer') {
        // Implicit rollback (what the polite side relies on).
        this.localDescription = null;
        this.needed = true;
      } else if (this.signalingState !== 'stable') {
        throw Object.assign(new Error(`offer in ${this.signalingState}`), { name: 'InvalidStateError' });
      } else {
        // Tracks added before a remote offer ride on its m-lines: the answer covers them.
        this.needed = false;
      }
      this.remoteDescription = desc;
      this.signalingState = 'have-remote-offer';
    } else {
      if (this.signalingState !== 'have-local-offer') {
        throw Object.assign(new Error(`answer in ${this.signalingState}`), { name: 'InvalidStateError' });
      }
      this.remoteDescription = desc;
      this.signalingState = 'stable';
    }
  }
  async addIceCandidate(candidate) {
    if (!this.remoteDescription) throw Object.assign(new Error('no remote description'), { name: 'InvalidStateError' });
    this.added.push(candidate);
  }
  getReceivers() {
    return [];
  }
  close() {
    this.signalingState = 'closed';
  }
}

/** Two fake clients that deliver each other's targeted messages, asynchronously, in order. */
function pair() {
  const clients = new Map();
  class FakeClient extends Emitter {
    constructor(peer, role) {
      super();
      this.peer = peer;
      this.role = role;
      this.sent = [];
    }
    async join(room) {
      const peers = [...clients.values()]
        .filter((c) => c !== this && c.joined)
        .map((c) => ({ peer: c.peer, role: c.role, meta: null }));
      this.joined = true;
      const payload = { peer: this.peer, role: this.role, mode: 'free_for_all', peers, ice_servers: [{ urls: ['stun:x'] }] };
      setTimeout(() => {
        this.emit('joined', { room, ...payload });
        for (const other of clients.values()) {
          if (other !== this && other.joined) other.emit('peer_joined', { room, peer: this.peer, role: this.role, meta: null });
        }
      }, 0);
      return payload;
    }
    send(type, { room, to, payload }) {
      this.sent.push({ type, to, payload });
      const target = clients.get(to);
      setTimeout(() => target?.emit('signal', { type, room, from: this.peer, payload: structuredClone(payload) }), 1);
      return this.sent.length;
    }
    async leave() {}
  }
  const add = (peer, role = 'guest') => {
    const c = new FakeClient(peer, role);
    clients.set(peer, c);
    return c;
  };
  return { add };
}

const meshOptions = { room: 'r', RTCPeerConnection: FakePC, MediaStream: FakeStream, hangupOnUnload: false };

/** Waits until `check` holds (bounded). */
async function until(check, what) {
  for (let i = 0; i < 400; i++) {
    if (check()) return;
    await tick(5);
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('exactly one side of a pair is polite', () => {
  assert.equal(isPolite('alice', 'bob'), false);
  assert.equal(isPolite('bob', 'alice'), true);
  for (const [a, b] of [['x1', 'x2'], ['Z', 'a'], ['peer-10', 'peer-9']]) {
    assert.notEqual(isPolite(a, b), isPolite(b, a));
  }
});

test('negotiation decisions: the impolite side ignores a crossing offer, the polite one accepts it', () => {
  const impolite = new Negotiation(false);
  impolite.makingOffer = true;
  assert.equal(impolite.onDescription('offer', 'have-local-offer'), 'ignore');
  assert.equal(impolite.ignoreOffer, true);
  const polite = new Negotiation(true);
  polite.makingOffer = true;
  assert.equal(polite.onDescription('offer', 'have-local-offer'), 'accept');
  // Answers are always applied; offers in stable are never a collision.
  assert.equal(impolite.onDescription('answer', 'have-local-offer'), 'accept');
  impolite.makingOffer = false;
  assert.equal(impolite.onDescription('offer', 'stable'), 'accept');
  assert.equal(impolite.ignoreOffer, false);
  // While an answer is being applied the state is not stable yet, but an offer is no collision.
  impolite.settingRemoteAnswer = true;
  assert.equal(impolite.onDescription('offer', 'have-local-offer'), 'accept');
});

test('candidates wait for a remote description, in order', () => {
  const n = new Negotiation(true);
  assert.equal(n.onCandidate({ candidate: 'a' }, false), 'buffer');
  assert.equal(n.onCandidate({ candidate: 'b' }, false), 'buffer');
  assert.equal(n.onCandidate({ candidate: 'c' }, true), 'add');
  assert.deepEqual(n.takeBuffered().map((c) => c.candidate), ['a', 'b']);
  assert.deepEqual(n.takeBuffered(), []);
});

test('candidates convert to and from the wire form', () => {
  const c = { candidate: 'candidate:1 1 udp 1 192.0.2.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0, usernameFragment: 'uf' };
  const wire = candidateToWire(c);
  assert.deepEqual(wire, { candidate: c.candidate, sdp_mid: '0', sdp_m_line_index: 0, username_fragment: 'uf' });
  assert.deepEqual(candidateFromWire(wire), c);
  assert.deepEqual(candidateToWire(null), { candidate: '' });
  assert.deepEqual(candidateFromWire({ candidate: '' }), { candidate: '', sdpMLineIndex: 0 });
});

test('who connects to whom in each mode', () => {
  assert.equal(shouldConnect('free_for_all', 'guest', 'guest'), true);
  assert.equal(shouldConnect('host_only', 'guest', 'guest'), false);
  assert.equal(shouldConnect('host_only', 'guest', 'host'), true);
  assert.equal(shouldConnect('host_only', 'host', 'guest'), true);
});

test('the impolite side opens the connection and the polite side answers it', async () => {
  const net = pair();
  const a = new Mesh(net.add('alice', 'host'), meshOptions);
  const b = new Mesh(net.add('bob'), meshOptions);
  await a.setTrack('camera', 'video', { kind: 'video', id: 'va' });
  await b.setTrack('camera', 'video', { kind: 'video', id: 'vb' });
  await a.join();
  await b.join();
  await until(() => a.links.has('bob') && b.links.has('alice'), 'both links');
  const pa = a.links.get('bob').pc;
  const pb = b.links.get('alice').pc;
  assert.deepEqual(pa.config.iceServers, [{ urls: ['stun:x'] }], 'the server ICE servers are used');
  await until(() => pa.signalingState === 'stable' && pb.remoteDescription && pa.remoteDescription, 'negotiated');
  assert.equal(a.links.get('bob').negotiation.polite, false);
  assert.equal(b.links.get('alice').negotiation.polite, true);
  assert.equal(a.links.get('bob').counts.offersSent, 1);
  assert.equal(b.links.get('alice').counts.offersSent, 0, 'no crossing offer from the polite side');
});

test('offers that cross (glare) still end up negotiated on both sides', async () => {
  const net = pair();
  const a = new Mesh(net.add('alice'), meshOptions);
  const b = new Mesh(net.add('bob'), meshOptions);
  const errors = [];
  a.on('error', (e) => errors.push(e));
  b.on('error', (e) => errors.push(e));
  await a.join();
  await b.join();
  await until(() => a.links.has('bob') && b.links.has('alice'), 'links');
  const la = a.links.get('bob');
  const lb = b.links.get('alice');
  await until(() => la.pc.signalingState === 'stable' && lb.pc.signalingState === 'stable' && la.pc.remoteDescription, 'first negotiation');
  await tick(20);
  // Both add a track at once: both offer.
  await Promise.all([
    a.setTrack('screen', 'video', { kind: 'video', id: 'sa' }),
    b.setTrack('screen', 'video', { kind: 'video', id: 'sb' }),
  ]);
  await until(() => la.counts.offersSent >= 2 && lb.counts.offersSent >= 1, 'both offered');
  await until(
    () => la.pc.signalingState === 'stable' && lb.pc.signalingState === 'stable',
    'both stable again',
  );
  await tick(50);
  assert.equal(la.pc.signalingState, 'stable');
  assert.equal(lb.pc.signalingState, 'stable');
  assert.deepEqual(errors, []);
  assert.ok(la.counts.ignoredOffers >= 1, 'the impolite side ignored the crossing offer');
  // The polite side's own track was negotiated after it answered.
  assert.ok(la.counts.answersSent >= 1 && lb.counts.answersSent >= 1);
});

test('candidates that arrive before the remote description are applied after it', async () => {
  const net = pair();
  const zed = net.add('zed'); // a member with no mesh: the test speaks for it (bob is impolite to it)
  zed.joined = true;
  const b = new Mesh(net.add('bob'), meshOptions);
  await b.join();
  await until(() => b.links.get('zed')?.pc.signalingState === 'have-local-offer', 'bob offers to zed');
  const pc = b.links.get('zed').pc;
  const from = (type, payload) => b.client.emit('signal', { type, room: 'r', from: 'zed', payload });
  from('candidate', { candidate: 'candidate:early', sdp_mid: '0', sdp_m_line_index: 0 });
  from('candidate', { candidate: 'candidate:early-2', sdp_mid: '0', sdp_m_line_index: 0 });
  await tick(5);
  assert.equal(pc.added.length, 0, 'buffered while there is no remote description');
  from('answer', { type: 'answer', sdp: 'answer-from-zed' });
  await until(() => pc.added.length === 2, 'buffered candidates applied');
  assert.deepEqual(pc.added.map((c) => c.candidate), ['candidate:early', 'candidate:early-2']);
  from('candidate', { candidate: 'candidate:late', sdp_mid: '0' });
  await until(() => pc.added.length === 3, 'later candidates applied at once');
});

test('adding a track renegotiates; replacing one does not', async () => {
  const net = pair();
  const a = new Mesh(net.add('alice'), meshOptions);
  const b = new Mesh(net.add('bob'), meshOptions);
  await a.join();
  await b.join();
  await until(() => a.links.has('bob') && b.links.has('alice'), 'links');
  const pa = a.links.get('bob').pc;
  await until(() => pa.signalingState === 'stable' && pa.remoteDescription, 'first negotiation');
  await tick(20);
  const offers = () => a.client.sent.filter((m) => m.type === 'offer').length + b.client.sent.filter((m) => m.type === 'offer').length;
  const before = offers();
  await a.setTrack('screen', 'video', { kind: 'video', id: 'screen' });
  await until(() => offers() > before, 'a new offer');
  const offer = a.client.sent.filter((m) => m.type === 'offer').at(-1);
  assert.deepEqual(Object.values(offer.payload.streams), ['screen'], 'the offer labels the stream');
  await until(() => pa.signalingState === 'stable', 'renegotiated');
  await tick(20);
  const after = offers();
  await a.setTrack('screen', 'video', { kind: 'video', id: 'screen-2' });
  await tick(30);
  assert.equal(offers(), after, 'replaceTrack needs no offer');
  assert.equal(pa.senders[0].track.id, 'screen-2');
});

test('peer_left and call_end close the connection; host_only disconnects guests from guests', async () => {
  const net = pair();
  const host = new Mesh(net.add('host', 'host'), meshOptions);
  const g1 = new Mesh(net.add('g1'), meshOptions);
  const g2 = new Mesh(net.add('g2'), meshOptions);
  await host.join();
  await g1.join();
  await g2.join();
  await until(() => g1.links.has('g2') && g1.links.has('host') && g2.links.has('host'), 'full mesh');
  const closed = [];
  g1.on('peer_closed', (e) => closed.push(e));
  g1.client.emit('mode_changed', { room: 'r', mode: 'host_only', by: 'host' });
  assert.deepEqual([...g1.links.keys()], ['host']);
  assert.deepEqual(closed, [{ peer: 'g2', reason: 'policy' }]);
  g1.client.emit('mode_changed', { room: 'r', mode: 'free_for_all', by: 'host' });
  assert.ok(g1.links.has('g2'), 'reconnects when allowed again');
  g1.client.emit('signal', { type: 'call_end', room: 'r', from: 'g2', payload: { call_id: 'c' } });
  assert.equal(g1.links.has('g2'), false);
  g1.client.emit('peer_left', { room: 'r', peer: 'host', reason: 'left' });
  assert.equal(g1.links.size, 0);
  assert.equal(g1.members.has('host'), false);
});

test('the impolite side restarts ICE on a negotiated connection that never connects', async () => {
  const net = pair();
  const opts = { ...meshOptions, stuckRestartMs: 60 };
  const a = new Mesh(net.add('alice'), opts);
  const b = new Mesh(net.add('bob'), opts);
  await a.join();
  await b.join();
  await until(() => a.links.get('bob')?.pc.remoteDescription && b.links.get('alice')?.pc.remoteDescription, 'negotiated');
  // FakePC never connects (ICE stays "new").
  await until(() => a.links.get('bob').restarts >= 1, 'a restart from alice');
  assert.equal(b.links.get('alice').restarts, 0, 'the polite side leaves restarts to the other');
  a.hangup();
  b.hangup();
});

test('ICE failure restarts ICE', async () => {
  const net = pair();
  const a = new Mesh(net.add('alice'), meshOptions);
  const b = new Mesh(net.add('bob'), meshOptions);
  await a.join();
  await b.join();
  await until(() => a.links.has('bob'), 'link');
  const pc = a.links.get('bob').pc;
  pc.iceConnectionState = 'failed';
  pc.oniceconnectionstatechange();
  assert.equal(pc.restarts, 1);
  assert.equal(a.links.get('bob').restarts, 1);
});

test('hangup sends call_end to every peer and leaves', async () => {
  const net = pair();
  const aClient = net.add('alice');
  const a = new Mesh(aClient, meshOptions);
  const b = new Mesh(net.add('bob'), meshOptions);
  await a.join();
  await b.join();
  await until(() => a.links.has('bob') && b.links.has('alice'), 'links');
  const ended = [];
  b.on('peer_closed', (e) => ended.push(e.reason));
  a.hangup();
  assert.equal(a.links.size, 0);
  assert.ok(aClient.sent.some((m) => m.type === 'call_end' && m.to === 'bob'));
  await until(() => ended.includes('call_end'), 'bob closes on call_end');
});
