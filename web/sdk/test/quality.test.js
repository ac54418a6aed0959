import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grade, summarizeStats } from '../quality.js';

const report = (bytesIn, bytesOut, received, lost, rtt = 0.042) => [
  { id: 'T', type: 'transport', selectedCandidatePairId: 'P1' },
  { id: 'P0', type: 'candidate-pair', currentRoundTripTime: 0.9, localCandidateId: 'L0' },
  { id: 'P1', type: 'candidate-pair', currentRoundTripTime: rtt, localCandidateId: 'L1', nominated: true, state: 'succeeded' },
  { id: 'L1', type: 'local-candidate', candidateType: 'relay' },
  { id: 'IA', type: 'inbound-rtp', kind: 'audio', bytesReceived: bytesIn / 4, packetsReceived: received / 2, packetsLost: lost / 2 },
  { id: 'IV', type: 'inbound-rtp', kind: 'video', bytesReceived: (bytesIn * 3) / 4, packetsReceived: received / 2, packetsLost: lost / 2 },
  { id: 'O', type: 'outbound-rtp', bytesSent: bytesOut },
];

test('the first sample has the RTT of the selected pair and no rates yet', () => {
  const s = summarizeStats(report(1000, 1000, 100, 0), null, 1000);
  assert.equal(s.rttMs, 42);
  assert.equal(s.candidateType, 'relay');
  assert.equal(s.inKbps, null);
  assert.equal(s.lossPct, null);
  assert.equal(s.quality, 'good');
});

test('later samples compute bitrates and loss over the interval', () => {
  const first = summarizeStats(report(0, 0, 0, 0), null, 0);
  const second = summarizeStats(report(250_000, 125_000, 970, 30), first, 2000);
  assert.equal(second.inKbps, 1000);
  assert.equal(second.outKbps, 500);
  assert.equal(second.lossPct, 3);
  assert.equal(second.quality, 'fair');
});

test('a Map-like report and Firefox-style selected pairs work too', () => {
  const stats = new Map([
    ['p', { id: 'p', type: 'candidate-pair', selected: true, currentRoundTripTime: 0.5 }],
  ]);
  const s = summarizeStats(stats, null, 0);
  assert.equal(s.rttMs, 500);
  assert.equal(s.quality, 'poor');
});

test('grades', () => {
  assert.equal(grade({ rttMs: null, lossPct: 0 }), 'unknown');
  assert.equal(grade({ rttMs: 20, lossPct: 0 }), 'good');
  assert.equal(grade({ rttMs: 250, lossPct: 0 }), 'fair');
  assert.equal(grade({ rttMs: 20, lossPct: 6 }), 'poor');
});
