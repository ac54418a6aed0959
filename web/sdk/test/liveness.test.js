// When the client pings and when it gives a transport up, on a virtual clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Liveness } from '../liveness.js';

test('pings after the idle interval, and a transport whose ping goes unanswered is dead', () => {
  const l = new Liveness(5000, 5000);
  l.started(0);
  for (let t = 1000; t < 5000; t += 1000) assert.equal(l.check(t, 0), null, `quiet at ${t}`);
  l.heard(4500);
  assert.equal(l.check(5000, 0), null, 'heard recently');
  assert.equal(l.check(6000, 0), null);
  for (let t = 7000; t < 9500; t += 1000) assert.equal(l.check(t, 0), null);
  assert.equal(l.check(9500, 0), 'ping', 'idle for the interval');
  l.pinged('p1', 7, 9500);
  for (let t = 10500; t <= 14500; t += 1000) assert.equal(l.check(t, 0), null, `waiting at ${t}`);
  assert.equal(l.check(15000, 0), 'dead', 'no pong for longer than the timeout');
  assert.equal(l.ping, null);
});

test('a pong confirms its ping seq once; other ids confirm nothing', () => {
  const l = new Liveness(5000, 5000);
  l.started(0);
  l.pinged('p1', 7, 100);
  assert.equal(l.pong('p2'), null);
  assert.equal(l.pong('p1'), 7);
  assert.equal(l.pong('p1'), null);
  assert.equal(l.check(1000, 0), null, 'nothing outstanding');
});

test('many unconfirmed messages ask for a ping at once', () => {
  const l = new Liveness(5000, 5000);
  l.started(0);
  assert.equal(l.check(1000, 15), null);
  assert.equal(l.check(2000, 16), 'ping');
});

test('throttled timers are not taken for a dead transport', () => {
  const l = new Liveness(5000, 5000);
  l.started(0);
  l.pinged('p1', 1, 500);
  assert.equal(l.check(60000, 0), null, 'a check a minute late judges nothing');
  for (let t = 61000; t <= 65000; t += 1000) assert.equal(l.check(t, 0), null, `the ping is timed from the late check (${t})`);
  assert.equal(l.check(66000, 0), 'dead');
  l.started(70000);
  l.pinged('p2', 2, 70000);
  l.ended();
  assert.equal(l.pong('p2'), null, 'a ping of an ended transport is forgotten');
});
