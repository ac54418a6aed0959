import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff } from '../backoff.js';

test('ceilings grow by the factor up to the cap', () => {
  const b = new Backoff({ initialMs: 500, maxMs: 8000, factor: 2, jitter: 0 });
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((n) => b.ceiling(n)), [500, 1000, 2000, 4000, 8000, 8000, 8000]);
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => b.next()), [500, 1000, 2000, 4000, 8000, 8000]);
});

test('jitter keeps each delay between (1 - jitter) x ceiling and the ceiling', () => {
  let r = 0;
  const b = new Backoff({ initialMs: 1000, maxMs: 16000, jitter: 0.5, random: () => r });
  r = 0;
  assert.equal(b.next(), 500);
  r = 0.999999;
  assert.equal(b.next(), 2000);
  const random = new Backoff({ initialMs: 100, maxMs: 10000 });
  for (let n = 0; n < 200; n++) {
    const ceiling = random.ceiling(random.attempt);
    const d = random.next();
    assert.ok(d >= ceiling / 2 - 1 && d <= ceiling + 1, `${d} outside [${ceiling / 2}, ${ceiling}]`);
  }
});

test('full jitter can go down to zero; reset starts over', () => {
  const b = new Backoff({ initialMs: 400, maxMs: 400, jitter: 1, random: () => 0 });
  assert.equal(b.next(), 0);
  b.next();
  assert.equal(b.attempt, 2);
  b.reset();
  assert.equal(b.attempt, 0);
});

test('nonsense settings are refused', () => {
  assert.throws(() => new Backoff({ initialMs: 0 }), RangeError);
  assert.throws(() => new Backoff({ initialMs: 100, maxMs: 50 }), RangeError);
  assert.throws(() => new Backoff({ factor: 0.5 }), RangeError);
});
