// The facade that follows the room's media: mesh or SFU from `joined.media`, and live switches on
// `media_changed`, make before break, with the app seeing streams replaced and never a hang-up.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Mesh } from '../mesh.js';
import { RoomCall } from '../room-call.js';
import { SfuCall } from '../sfu.js';
import { FakeClient, FakePC, FakeStream, FakeTrack, fakeSfu, tick, until } from './fake-sfu.js';

const options = { room: 'r', RTCPeerConnection: FakePC, MediaStream: FakeStream, hangupOnUnload: false, switchGraceMs: 5000, politeWaitMs: 5 };
const bob = { peer: 'bob', role: 'guest', meta: null };

async function joinedMesh(extra = {}) {
  const client = new FakeClient('me', 'host');
  client.joinPayload = { peer: 'me', role: 'host', mode: 'free_for_all', media: 'mesh', media_mode: 'auto', peers: [bob], ice_servers: [] };
  const call = new RoomCall(client, { ...options, ...extra });
  const events = [];
  for (const name of ['track', 'stream_removed', 'peer_closed', 'media', 'members']) call.on(name, (e) => events.push({ name, ...e }));
  const camera = new FakeTrack('video');
  await call.setTrack('camera', 'video', camera);
  await call.join();
  await until(() => call.engine instanceof Mesh && call.engine.links.has('bob'), 'the mesh link to bob');
  // Bob's camera arrives over the mesh.
  const link = call.engine.links.get('bob');
  const stream = new FakeStream([new FakeTrack('video')]);
  link.pc.ontrack({ track: stream.tracks[0], streams: [stream] });
  return { client, call, events, camera, link, meshStream: stream };
}

test('joined.media picks the engine', async () => {
  const { call, events } = await joinedMesh();
  assert.equal(call.media, 'mesh');
  assert.equal(call.mediaMode, 'auto');
  assert.deepEqual(events.filter((e) => e.name === 'media').map((e) => e.media), ['mesh']);
  assert.equal(events.filter((e) => e.name === 'track').length, 1);

  const client = new FakeClient('me');
  client.joinPayload = { peer: 'me', role: 'guest', mode: 'free_for_all', media: 'sfu', peers: [bob], ice_servers: [] };
  const sfuCall = new RoomCall(client, options);
  await sfuCall.join();
  await until(() => client.of('offer').length === 1, 'an offer to the SFU');
  assert.ok(sfuCall.engine instanceof SfuCall);
  assert.equal(client.of('offer')[0].to, 'sfu');
});

test('auto to the SFU and back: make before break, streams replaced, no hang-up', async () => {
  const { client, call, events, link, meshStream } = await joinedMesh();

  // The third member made the room an SFU room.
  client.emit('media_changed', { room: 'r', media: 'sfu', media_mode: 'auto' });
  assert.ok(call.engine instanceof SfuCall);
  assert.ok(call.retiring instanceof Mesh);
  await until(() => client.of('offer').some((o) => o.to === 'sfu'), 'the SFU offer');
  const offer = client.of('offer').find((o) => o.to === 'sfu');
  assert.deepEqual(JSON.parse(offer.payload.sdp).map((l) => l.kind), ['video'], 'the same camera, sent to the SFU');
  assert.equal(link.pc.closed, false, 'the mesh keeps playing meanwhile');

  const sfu = fakeSfu(client, 'r');
  sfu.answerOffers();
  sfu.publish('bob', 'video', 'camera');
  await until(() => events.filter((e) => e.name === 'track').length === 2, "bob's camera through the SFU");
  const replaced = events.filter((e) => e.name === 'track')[1];
  assert.equal(replaced.peer, 'bob');
  assert.notEqual(replaced.stream, meshStream);
  assert.equal(link.pc.closed, true, 'the mesh link is released once the SFU carries bob');
  assert.equal(call.retiring, null);
  assert.deepEqual(events.filter((e) => e.name === 'peer_closed' || e.name === 'stream_removed'), [], 'no hang-up');

  // Back to two: the mesh comes back, and the SFU session closes once bob arrives over it.
  const sfuPc = call.engine.pc;
  client.emit('media_changed', { room: 'r', media: 'mesh', media_mode: 'auto' });
  assert.ok(call.engine instanceof Mesh);
  await until(() => call.engine.links.has('bob'), 'a new mesh link');
  assert.equal(sfuPc.closed, false);
  const again = new FakeStream([new FakeTrack('video')]);
  call.engine.links.get('bob').pc.ontrack({ track: again.tracks[0], streams: [again] });
  assert.equal(sfuPc.closed, true);
  assert.equal(events.filter((e) => e.name === 'track').at(-1).stream, again);
  assert.deepEqual(events.filter((e) => e.name === 'peer_closed' || e.name === 'stream_removed'), []);
  assert.deepEqual(events.filter((e) => e.name === 'media').map((e) => e.media), ['mesh', 'sfu', 'mesh']);
  assert.equal(call.switches, 2);
});

test('a switch whose new engine never carries a member ends after the grace time', async () => {
  const { client, call, events, link } = await joinedMesh({ switchGraceMs: 100 });
  client.emit('media_changed', { room: 'r', media: 'sfu', media_mode: 'sfu', by: 'me' });
  await until(() => call.retiring === null, 'the grace time');
  assert.equal(link.pc.closed, true);
  assert.equal(call.retiring, null);
  // Bob's mesh stream did not come back: removed, and still no peer_closed.
  assert.deepEqual(events.filter((e) => e.name === 'stream_removed').map((e) => e.peer), ['bob']);
  assert.equal(events.filter((e) => e.name === 'peer_closed').length, 0);
  assert.equal(events.find((e) => e.name === 'media' && e.media === 'sfu').by, 'me');
});

test('mute and views follow the engine; setMedia asks the server', async () => {
  const { client, call, camera } = await joinedMesh();
  call.mute('video', true);
  assert.equal(camera.enabled, false);
  assert.equal(call.muteRemote('bob', 'audio'), false, 'no host mute in a mesh');
  call.setView('bob', 'camera', { paused: true });
  client.emit('media_changed', { room: 'r', media: 'sfu', media_mode: 'auto' });
  const sfu = fakeSfu(client, 'r');
  await until(() => client.of('offer').some((o) => o.to === 'sfu'), 'the SFU offer');
  sfu.answerOffers();
  assert.deepEqual(client.of('mute').map((m) => m.payload.muted), [true], 'the mute is told to the SFU');
  sfu.publish('bob', 'video', 'camera');
  await until(() => client.of('subscribe').length === 1, 'the view');
  assert.equal(client.of('subscribe')[0].payload.paused, true);

  let asked = null;
  client.setMedia = async (room, media, current) => (asked = [room, media, current]);
  await call.setMedia('mesh');
  assert.deepEqual(asked, ['r', 'mesh', 'auto']);
});
