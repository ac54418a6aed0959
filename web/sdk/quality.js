// @ts-check
/**
 * Connection quality from `RTCPeerConnection.getStats()`: round-trip time of the selected candidate
 * pair, packet loss and bitrates since the previous sample. Pure functions over the stats objects,
 * so they run (and are tested) without a browser.
 */

/**
 * @typedef {object} QualitySample
 * @property {number} at When the sample was taken, in ms (any monotonic clock).
 * @property {number | null} rttMs Round-trip time of the selected candidate pair.
 * @property {number | null} lossPct Incoming packets lost since the previous sample, in percent.
 * @property {number | null} inKbps Incoming bitrate since the previous sample.
 * @property {number | null} outKbps Outgoing bitrate since the previous sample.
 * @property {number} bytesIn Totals, for the next sample's differences.
 * @property {number} bytesOut
 * @property {number} packetsReceived
 * @property {number} packetsLost
 * @property {string | null} candidateType Local candidate type of the selected pair (host, srflx,
 *   relay...): `relay` means the call goes through TURN.
 * @property {'good' | 'fair' | 'poor' | 'unknown'} quality
 */

/**
 * Grades a sample: `poor` from 400 ms RTT or 5 % loss, `fair` from 200 ms or 2 %, else `good`;
 * `unknown` without an RTT.
 * @param {{rttMs: number | null, lossPct: number | null}} sample
 * @returns {'good' | 'fair' | 'poor' | 'unknown'}
 */
export function grade({ rttMs, lossPct }) {
  if (rttMs === null) return 'unknown';
  const loss = lossPct ?? 0;
  if (rttMs >= 400 || loss >= 5) return 'poor';
  if (rttMs >= 200 || loss >= 2) return 'fair';
  return 'good';
}

/**
 * Summarizes a stats report.
 * @param {Iterable<any> | {values(): Iterable<any>}} report An `RTCStatsReport` or any iterable
 *   of stats objects.
 * @param {QualitySample | null} previous The previous sample of the same connection.
 * @param {number} now Current time in ms, on the clock of `previous.at`.
 * @returns {QualitySample}
 */
export function summarizeStats(report, previous, now) {
  /** @type {Iterable<any>} */
  const stats =
    'values' in report && typeof report.values === 'function'
      ? /** @type {{values(): Iterable<any>}} */ (report).values()
      : /** @type {Iterable<any>} */ (report);
  /** @type {Map<string, any>} */
  const byId = new Map();
  /** @type {any[]} */
  const pairs = [];
  /** @type {string | null} */
  let selectedPairId = null;
  let bytesIn = 0;
  let bytesOut = 0;
  let packetsReceived = 0;
  let packetsLost = 0;
  /** @type {number | null} */
  let remoteRtt = null;
  for (const s of stats) {
    if (s.id) byId.set(s.id, s);
    switch (s.type) {
      case 'transport':
        if (s.selectedCandidatePairId) selectedPairId = s.selectedCandidatePairId;
        break;
      case 'candidate-pair':
        pairs.push(s);
        break;
      case 'inbound-rtp':
        bytesIn += s.bytesReceived ?? 0;
        packetsReceived += s.packetsReceived ?? 0;
        packetsLost += Math.max(0, s.packetsLost ?? 0);
        break;
      case 'outbound-rtp':
        bytesOut += s.bytesSent ?? 0;
        break;
      case 'remote-inbound-rtp':
        if (typeof s.roundTripTime === 'number') remoteRtt = s.roundTripTime;
        break;
    }
  }
  const pair =
    pairs.find((p) => p.id === selectedPairId) ??
    pairs.find((p) => p.selected) ??
    pairs.find((p) => p.nominated && p.state === 'succeeded') ??
    null;
  const rttS = typeof pair?.currentRoundTripTime === 'number' ? pair.currentRoundTripTime : remoteRtt;
  const rttMs = rttS === null ? null : Math.round(rttS * 1000);
  const local = pair ? byId.get(pair.localCandidateId) : null;
  const candidateType = local?.candidateType ?? null;

  /** @type {number | null} */
  let lossPct = null;
  /** @type {number | null} */
  let inKbps = null;
  /** @type {number | null} */
  let outKbps = null;
  if (previous && now > previous.at) {
    const seconds = (now - previous.at) / 1000;
    inKbps = Math.max(0, Math.round(((bytesIn - previous.bytesIn) * 8) / 1000 / seconds));
    outKbps = Math.max(0, Math.round(((bytesOut - previous.bytesOut) * 8) / 1000 / seconds));
    const lost = Math.max(0, packetsLost - previous.packetsLost);
    const received = Math.max(0, packetsReceived - previous.packetsReceived);
    lossPct = lost + received > 0 ? Math.round((1000 * lost) / (lost + received)) / 10 : 0;
  }
  const sample = { at: now, rttMs, lossPct, inKbps, outKbps, bytesIn, bytesOut, packetsReceived, packetsLost, candidateType };
  return { ...sample, quality: grade(sample) };
}

/**
 * The stats of one member's media on a shared connection (an SFU call): everything about the
 * connection (candidate pairs, transport, outbound), but only the `inbound-rtp` of the m-lines
 * (`mid`) or receiver tracks (`trackIdentifier`, for browsers without `mid` on them) that carry
 * that member's tracks.
 * @param {Iterable<any> | {values(): Iterable<any>}} report
 * @param {Set<string>} mids
 * @param {Set<string>} trackIds
 * @returns {any[]}
 */
export function statsForMids(report, mids, trackIds) {
  /** @type {Iterable<any>} */
  const stats =
    'values' in report && typeof report.values === 'function'
      ? /** @type {{values(): Iterable<any>}} */ (report).values()
      : /** @type {Iterable<any>} */ (report);
  const out = [];
  for (const s of stats) {
    if (s.type === 'inbound-rtp' && !mids.has(s.mid) && !trackIds.has(s.trackIdentifier)) continue;
    out.push(s);
  }
  return out;
}
