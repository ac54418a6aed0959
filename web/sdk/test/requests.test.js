// Requests and their answers: matched by id and kind, errors to the caller, timeouts, resets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SwitchboardError } from '../protocol.js';
import { Requests } from '../requests.js';

test('an answer settles its request and tells the seq that carried it', async () => {
  const r = new Requests(1000);
  let sentId = '';
  const joined = r.start('join', (m) => m.type === 'joined', (id) => ((sentId = id), 4));
  assert.equal(r.answer({ type: 'peer_joined', id: sentId, seq: 1, ts: 0 }), null, 'not the kind it waits for');
  assert.equal(r.answer({ type: 'joined', id: 'other', seq: 1, ts: 0 }), null, 'not its id');
  assert.deepEqual(r.answer({ type: 'joined', id: sentId, seq: 2, ts: 0, payload: { peer: 'a' } }), { seq: 4, error: false });
  assert.equal((await joined).payload.peer, 'a');
  assert.equal(r.waiting(sentId), false);
});

test('an error with the id rejects the request; a failed send rejects at once', async () => {
  const r = new Requests(1000);
  let sentId = '';
  const kick = r.start('kick', () => false, (id) => ((sentId = id), 9));
  r.resent(sentId, 12);
  const answered = r.answer({ type: 'error', id: sentId, seq: 3, ts: 0, payload: { code: 'forbidden', message: 'hosts only' } });
  assert.deepEqual(answered, { seq: 12, error: true });
  await assert.rejects(kick, (e) => e instanceof SwitchboardError && e.code === 'forbidden');
  await assert.rejects(
    r.start('leave', () => true, () => {
      throw new SwitchboardError('closed', 'the client is closed');
    }),
    (e) => e.code === 'closed',
  );
  assert.equal(r.byId.size, 0);
});

test('a request without an answer times out; failAll spares only what it is told to', async () => {
  const r = new Requests(20);
  await assert.rejects(r.start('mode', () => false, () => 1), (e) => e.code === 'timeout');
  const ids = [];
  const kept = r.start('join', () => true, (id) => (ids.push(id), 1));
  const dropped = r.start('kick', () => true, (id) => (ids.push(id), 2));
  r.failAll(new SwitchboardError('session_reset', 'lost'), (id) => id === ids[0]);
  await assert.rejects(dropped, (e) => e.code === 'session_reset');
  assert.equal(r.waiting(ids[0]), true);
  r.failAll(new SwitchboardError('closed', 'closed'));
  await assert.rejects(kept, (e) => e.code === 'closed');
  assert.notEqual(r.newId('p'), r.newId('p'));
});
