// The SFU call without a browser: a fake RTCPeerConnection with transceivers and mids, a fake
// SFU answering and offering as the real one does, and the pure pieces (views, layers, tracks).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SfuCall } from '../sfu.js';
import { SIMULCAST_ENCODINGS, applyLayers, encodingsFor } from '../simulcast.js';
import { TrackTable } from '../tracks.js';
import { ViewBoard, normalizeView } from '../views.js';
import { FakeClient, FakePC, FakeStream, FakeTrack, fakeSfu, tick, until } from './fake-sfu.js';

const options = { room: 'r', RTCPeerConnection: FakePC, MediaStream: FakeStream, hangupOnUnload: false, viewDebounceMs: 20 };

/** A joined SFU call with a camera (audio + video), its client and the fake SFU. */
async function started({ peers = [{ peer: 'bob', role: 'guest', meta: null }], role = 'guest' } = {}) {
  const client = new FakeClient('me', role);
  client.joinPayload = { peer: 'me', role, mode: 'free_for_all', media: 'sfu', peers, ice_servers: [] };
  const call = new SfuCall(client, options);
  const audio = new FakeTrack('audio');
  const video = new FakeTrack('video');
  await call.setTrack('camera', 'audio', audio);
  await call.setTrack('camera', 'video', video);
  const events = [];
  for (const name of ['track', 'stream_removed', 'track_state', 'peer_closed', 'speakers', 'stream_state', 'layers', 'error']) {
    call.on(name, (e) => events.push({ name, ...e }));
  }
  await call.join();
  const sfu = fakeSfu(client, 'r');
  await until(() => client.of('offer').length === 1, 'the first offer');
  sfu.answerOffers();
  await tick(5);
  return { client, call, sfu, audio, video, events };
}

test('the camera is offered to the SFU with three simulcast layers and its tags', async () => {
  const { client, call } = await started();
  const offer = client.of('offer')[0];
  assert.equal(offer.to, 'sfu');
  const lines = JSON.parse(offer.payload.sdp);
  assert.deepEqual(lines.map((l) => [l.kind, l.direction]), [['audio', 'sendonly'], ['video', 'sendonly']]);
  assert.deepEqual(lines[1].rids, ['q', 'h', 'f']);
  assert.deepEqual(offer.payload.tags, { 0: 'camera', 1: 'camera' });
  // No candidates: the ICE-lite SFU learns the address from the checks.
  assert.equal(client.of('candidate').length, 0);
  assert.equal(call.pc.signalingState, 'stable');
});

test('a browser that refuses simulcast sends the camera as one encoding', async () => {
  FakePC.refuseSimulcast = true;
  try {
    const { client, call } = await started();
    const lines = JSON.parse(client.of('offer')[0].payload.sdp);
    assert.deepEqual(lines[1].rids, []);
    assert.equal(call.out.senders.get('camera:video').sender.params.encodings.length, 1);
  } finally {
    FakePC.refuseSimulcast = false;
  }
});

test("another member's tracks arrive as that member's tagged streams, and leave again", async () => {
  const { client, sfu, events } = await started();
  const cam = sfu.publish('bob', 'video', 'camera');
  await until(() => events.some((e) => e.name === 'track'), 'the camera track');
  const screen = sfu.publish('bob', 'video', 'screen');
  await until(() => events.filter((e) => e.name === 'track').length === 2, 'the screen track');
  const [first, second] = events.filter((e) => e.name === 'track');
  assert.deepEqual([first.peer, first.tag, second.peer, second.tag], ['bob', 'camera', 'bob', 'screen']);
  assert.notEqual(first.stream, second.stream);
  // Each SFU offer was answered.
  assert.equal(client.of('answer').length, 2);

  sfu.unpublish(screen);
  await until(() => events.some((e) => e.name === 'stream_removed'), 'the screen removed');
  assert.equal(events.find((e) => e.name === 'stream_removed').tag, 'screen');
  assert.ok(cam);
  client.emit('peer_left', { room: 'r', peer: 'bob', reason: 'left' });
  assert.deepEqual(
    events.filter((e) => e.name === 'stream_removed' || e.name === 'peer_closed').map((e) => `${e.name}:${e.tag ?? e.reason}`),
    ['stream_removed:screen', 'stream_removed:camera', 'peer_closed:left'],
  );
});

test('mute goes to the SFU with the track id it announced; a host mute stops the track here', async () => {
  const { client, call, sfu, audio, events } = await started();
  call.mute('audio', true);
  assert.equal(audio.enabled, false);
  const audioId = sfu.own.get('0');
  assert.deepEqual(client.of('mute').map((m) => m.payload), [{ track: audioId, muted: true }]);
  call.mute('audio', false);
  assert.equal(audio.enabled, true);

  // A host mutes this side's microphone: the track stops and the app hears it was the host.
  client.emit('media', { type: 'track_state', room: 'r', payload: { peer: 'me', track: audioId, muted: true, by: 'hana' } });
  assert.equal(audio.enabled, false);
  const told = events.find((e) => e.name === 'track_state');
  assert.deepEqual([told.self, told.kind, told.muted, told.by], [true, 'audio', true, 'hana']);
});

test("a host mutes another member's microphone through the SFU", async () => {
  const { client, call, sfu } = await started({ role: 'host' });
  const mic = sfu.publish('bob', 'audio');
  await tick(5);
  assert.equal(call.muteRemote('bob', 'audio'), 1);
  assert.equal(call.muteRemote('nobody', 'audio'), 0);
  assert.deepEqual(client.of('mute').map((m) => m.payload), [{ track: mic, muted: true }]);
});

test('a mute asked before the SFU named the track is sent once it does', async () => {
  const client = new FakeClient('me');
  client.joinPayload = { peer: 'me', role: 'guest', mode: 'free_for_all', media: 'sfu', peers: [], ice_servers: [] };
  const call = new SfuCall(client, options);
  await call.setTrack('camera', 'audio', new FakeTrack('audio'));
  call.mute('audio', true);
  await call.join();
  const sfu = fakeSfu(client, 'r');
  await until(() => client.of('offer').length === 1, 'the offer');
  assert.equal(client.of('mute').length, 0);
  sfu.answerOffers();
  assert.deepEqual(client.of('mute').map((m) => m.payload), [{ track: sfu.own.get('0'), muted: true }]);
});

test('layers turns unwatched camera encodings off and on again', async () => {
  const { client, call, sfu } = await started();
  const videoId = sfu.own.get('1');
  const sender = call.out.senders.get('camera:video').sender;
  client.emit('media', { type: 'layers', room: 'r', payload: { track: videoId, active: ['q'], paused: ['h', 'f'] } });
  await until(() => sender.setCalls === 1, 'setParameters');
  assert.deepEqual(sender.params.encodings.map((e) => [e.rid, e.active ?? true]), [['q', true], ['h', false], ['f', false]]);
  client.emit('media', { type: 'layers', room: 'r', payload: { track: videoId, active: ['q', 'h'], paused: ['f'] } });
  await until(() => sender.setCalls === 2, 'setParameters again');
  assert.deepEqual(sender.params.encodings.map((e) => e.active ?? true), [true, true, false]);
});

test('tile sizes reach the SFU debounced, grouped by view', async () => {
  const { client, call, sfu } = await started({
    peers: [
      { peer: 'bob', role: 'guest', meta: null },
      { peer: 'cat', role: 'guest', meta: null },
    ],
  });
  const bob = sfu.publish('bob', 'video', 'camera');
  const cat = sfu.publish('cat', 'video', 'camera');
  await tick(5);
  call.setView('bob', 'camera', { width: 100, height: 50 });
  call.setView('bob', 'camera', { width: 320.4, height: 180 });
  call.setView('cat', 'camera', { width: 320, height: 180 });
  assert.equal(client.of('subscribe').length, 0, 'not before the debounce');
  await until(() => client.of('subscribe').length === 1, 'one subscribe');
  assert.deepEqual(client.of('subscribe')[0].payload, { tracks: [bob, cat], subscribe: true, width: 320, height: 180 });
  call.setView('cat', 'camera', { paused: true });
  await until(() => client.of('subscribe').length === 2, 'the pause');
  assert.deepEqual(client.of('subscribe')[1].payload, { tracks: [cat], subscribe: true, paused: true });
  await tick(40);
  assert.equal(client.of('subscribe').length, 2, 'nothing changed, nothing sent');
});

test('media_unavailable starts a new media session with a new offer, after a backoff', async () => {
  const { client, call, events } = await started();
  const first = call.pc;
  const error = Object.assign(new Error('ice lost'), { code: 'media_unavailable', reply: { room: 'r', payload: { code: 'media_unavailable' } } });
  call.backoff.initialMs = 10;
  client.emit('error', error);
  client.emit('error', error); // one restart at a time
  await until(() => client.of('offer').length === 2, 'a second offer');
  assert.notEqual(call.pc, first);
  assert.equal(first.closed, true);
  assert.equal(call.restarts, 1);
  assert.equal(events.filter((e) => e.name === 'error').length, 0);
  const lines = JSON.parse(client.of('offer')[1].payload.sdp);
  assert.equal(lines.length, 2, 'the camera is offered again');
});

test("the SFU's offer crossing ours is ignored (this side is impolite)", async () => {
  const { client, call, sfu } = await started();
  await call.setTrack('screen', 'video', new FakeTrack('video'));
  await until(() => call.pc.signalingState === 'have-local-offer', 'our offer');
  sfu.publish('bob', 'video', 'camera');
  await tick(5);
  assert.equal(call.counts.ignoredOffers, 1);
  sfu.answerOffers();
  sfu.offer(); // the SFU offers again after answering
  await until(() => client.of('answer').length === 1, 'our answer');
  assert.deepEqual(client.of('offer')[1].payload.tags, { 0: 'camera', 1: 'camera', 2: 'screen' });
});

test('speakers and stream_state are passed on', async () => {
  const { client, sfu, events } = await started();
  const track = sfu.publish('bob', 'video', 'screen');
  client.emit('media', { type: 'speakers', room: 'r', payload: { peers: ['bob'] } });
  client.emit('media', { type: 'stream_state', room: 'r', payload: { peer: 'bob', track, state: 'active', layer: 'h' } });
  assert.deepEqual(events.find((e) => e.name === 'speakers').peers, ['bob']);
  const s = events.find((e) => e.name === 'stream_state');
  assert.deepEqual([s.tag, s.state, s.layer], ['screen', 'active', 'h']);
});

test('views: whole pixels, held still for the debounce, sent once', () => {
  assert.deepEqual(normalizeView({ width: 10.6, height: 0 }), { width: 11, height: 1 });
  assert.deepEqual(normalizeView({ width: NaN, height: 3 }), { paused: true });
  const board = new ViewBoard(100);
  board.set('a', 'camera', { width: 10, height: 10 }, 0);
  assert.deepEqual(board.poll(50), { due: [], wakeAt: 100 });
  board.set('a', 'camera', { width: 20, height: 10 }, 60);
  assert.deepEqual(board.poll(100).wakeAt, 160);
  const { due } = board.poll(160);
  assert.deepEqual(due, [{ peer: 'a', tag: 'camera', view: { width: 20, height: 10 } }]);
  board.sent('a', 'camera', due[0].view);
  assert.deepEqual(board.poll(500), { due: [], wakeAt: null });
  board.resend('a');
  assert.equal(board.poll(500).due.length, 1);
});

test('views: those set a little apart go together, those far apart do not', () => {
  const board = new ViewBoard(100);
  board.set('a', 'camera', { width: 10, height: 10 }, 0);
  board.set('b', 'camera', { width: 10, height: 10 }, 30);
  board.set('c', 'camera', { width: 10, height: 10 }, 80);
  assert.deepEqual(board.poll(99), { due: [], wakeAt: 100 }, 'nothing early');
  const first = board.poll(100);
  assert.deepEqual(first.due.map((d) => d.peer), ['a', 'b'], 'b is due within half a debounce');
  assert.equal(first.wakeAt, 180);
  for (const d of first.due) board.sent(d.peer, d.tag, d.view);
  assert.deepEqual(board.poll(180).due.map((d) => d.peer), ['c']);
});

test('layers: paused rids off, active ones on, the rest untouched', () => {
  const encodings = SIMULCAST_ENCODINGS.map((e) => ({ ...e }));
  const off = applyLayers(encodings, ['q'], ['h', 'f']);
  assert.equal(off.changed, true);
  assert.deepEqual(off.encodings.map((e) => e.active), [undefined, false, false]);
  assert.equal(applyLayers(off.encodings, ['q'], ['h', 'f']).changed, false);
  assert.deepEqual(applyLayers(off.encodings, ['q', 'h', 'f'], []).encodings.map((e) => e.active), [undefined, true, true]);
  assert.equal(applyLayers([{}], 'junk', null).changed, false);
});

test('track table: own tracks by mid, others by member, garbage ignored', () => {
  const t = new TrackTable();
  t.onPublished({ peer: 'me', track: 't1', kind: 'audio', muted: false, mid: '0' });
  t.onPublished({ peer: 'bob', track: 't2', kind: 'video', muted: false, tag: 'screen' });
  t.onPublished({ peer: 'bob', track: 't3', kind: 'audio', muted: true });
  assert.equal(t.onPublished({ track: 5 }), null);
  assert.equal(t.ownOn('0').track, 't1');
  assert.deepEqual(t.tracksOf('bob'), ['t2', 't3']);
  assert.deepEqual(t.tracksOf('bob', 'video', 'screen'), ['t2']);
  assert.equal(t.published.get('t3').tag, 'camera');
  assert.equal(t.onState({ track: 't3', muted: false }).muted, false);
  t.onMap({ mids: [{ mid: '5', peer: 'bob', track: 't2', kind: 'video' }, { mid: 7 }] });
  assert.deepEqual([...t.mids.keys()], ['5']);
  assert.equal(t.removePeer('bob').length, 2);
  t.resetSession();
  assert.equal(t.own.size + t.mids.size, 0);
});

test('a camera gets as many layers as browsers encode at its size', () => {
  assert.deepEqual(encodingsFor(720)?.map((e) => [e.rid, e.scaleResolutionDownBy]), [['q', 4], ['h', 2], ['f', 1]]);
  assert.deepEqual(encodingsFor(360)?.map((e) => [e.rid, e.scaleResolutionDownBy]), [['q', 2], ['h', 1]]);
  assert.equal(encodingsFor(180), null);
  assert.equal(encodingsFor(undefined)?.length, 3);
});

test('a small camera is sent as one encoding', async () => {
  const client = new FakeClient('me');
  client.joinPayload = { peer: 'me', role: 'guest', mode: 'free_for_all', media: 'sfu', peers: [], ice_servers: [] };
  const call = new SfuCall(client, options);
  const small = Object.assign(new FakeTrack('video'), { getSettings: () => ({ width: 320, height: 180 }) });
  await call.setTrack('camera', 'video', small);
  await call.join();
  await until(() => client.of('offer').length === 1, 'the offer');
  assert.deepEqual(JSON.parse(client.of('offer')[0].payload.sdp)[0].rids, []);
});
