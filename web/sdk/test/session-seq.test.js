// The session's seqs without a transport: what is kept, confirmed, resent and acknowledged.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SessionSeq } from '../session-seq.js';

test('client messages are numbered, kept until confirmed, and confirmed in order', () => {
  const s = new SessionSeq();
  const a = s.make('message', { room: 'r', payload: { n: 1 }, to: undefined, seq: 99, type: 'x' }, 5);
  assert.deepEqual(a, { type: 'message', seq: 1, ts: 5, room: 'r', payload: { n: 1 } });
  s.keep(a);
  for (let n = 2; n <= 4; n++) s.keep(s.make('message', { room: 'r' }, 6));
  assert.equal(s.make('ping', {}, 7).seq, 5, 'a ping is numbered but not kept');
  s.confirm(2);
  assert.deepEqual(s.pending.map((m) => m.seq), [3, 4]);
  s.posted([s.pending[1]], [{ seq: 4, ok: true }]);
  assert.deepEqual(s.pending.map((m) => m.seq), [3]);
  s.posted([s.pending[0]], []);
  assert.deepEqual(s.pending.map((m) => m.seq), [3], 'results that do not match the batch confirm nothing');
});

test('server seqs: duplicates dropped, acks due by count, each seq acknowledged once', () => {
  const s = new SessionSeq();
  s.started(1);
  assert.equal(s.receive(1), false, 'the hello itself');
  assert.equal(s.receive(2), true);
  assert.equal(s.receive(2), false);
  assert.equal(s.ackDue(3), false, 'acks count from 0 in a new session');
  assert.equal(s.receive(3), true);
  assert.equal(s.ackDue(3), true);
  assert.equal(s.takeAck(), 3);
  assert.equal(s.takeAck(), null);
});

test('a resume confirms what the server had and never numbers below it', () => {
  const s = new SessionSeq();
  s.started(1);
  for (let n = 0; n < 3; n++) s.keep(s.make('message', {}, 0));
  s.receive(7);
  s.resumed(5, 2);
  assert.equal(s.received, 7, 'a hello older than what arrived does not go back');
  assert.deepEqual(s.pending.map((m) => m.seq), [3]);
  s.resumed(9, 10);
  assert.equal(s.make('message', {}, 0).seq, 11);
});

test('a new session hands back the old unconfirmed messages and starts its acks over', () => {
  const s = new SessionSeq();
  s.started(1);
  s.keep(s.make('join', { room: 'r' }, 0));
  s.receive(4);
  s.takeAck();
  s.started(1);
  assert.deepEqual(s.abandon(0).map((m) => m.type), ['join']);
  assert.deepEqual(s.pending, []);
  assert.equal(s.make('join', {}, 0).seq, 1);
  assert.equal(s.receive(2), true);
  assert.equal(s.takeAck(), 2);
});
