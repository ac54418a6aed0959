// @ts-check
/**
 * The negotiation decisions both kinds of call share, apart from any connection so they are
 * unit-tested: who is polite, what to do with a crossing offer or an early candidate (perfect
 * negotiation), and the wire form of ICE candidates. The mesh makes one {@link Negotiation} per
 * member; the SFU call one towards the peer `sfu`, where the client is always impolite.
 */

/** @typedef {import('./protocol.js').RoomMode} RoomMode */
/** @typedef {import('./protocol.js').Role} Role */

/**
 * Whether the local peer is the polite one towards `remote`: the higher id is polite.
 * @param {string} local
 * @param {string} remote
 */
export function isPolite(local, remote) {
  return local > remote;
}

/**
 * Whether two members should be connected in a room's mode: always in `free_for_all`; in
 * `host_only` only when one of them is a host (guests may signal only to hosts).
 * @param {RoomMode} mode
 * @param {Role} localRole
 * @param {Role} remoteRole
 */
export function shouldConnect(mode, localRole, remoteRole) {
  return mode !== 'host_only' || localRole === 'host' || remoteRole === 'host';
}

/**
 * Wire form of an ICE candidate.
 * @param {RTCIceCandidate | RTCIceCandidateInit | null} c
 */
export function candidateToWire(c) {
  if (!c || !c.candidate) return { candidate: '' };
  /** @type {Record<string, any>} */
  const out = { candidate: c.candidate };
  if (c.sdpMid != null) out.sdp_mid = c.sdpMid;
  if (c.sdpMLineIndex != null) out.sdp_m_line_index = c.sdpMLineIndex;
  if (c.usernameFragment != null) out.username_fragment = c.usernameFragment;
  return out;
}

/**
 * `RTCIceCandidateInit` from the wire form.
 * @param {any} p
 * @returns {RTCIceCandidateInit}
 */
export function candidateFromWire(p) {
  /** @type {RTCIceCandidateInit} */
  const init = { candidate: String(p?.candidate ?? '') };
  if (p?.sdp_mid != null) init.sdpMid = p.sdp_mid;
  if (p?.sdp_m_line_index != null) init.sdpMLineIndex = p.sdp_m_line_index;
  if (p?.username_fragment != null) init.usernameFragment = p.username_fragment;
  if (init.sdpMid == null && init.sdpMLineIndex == null) init.sdpMLineIndex = 0;
  return init;
}

/**
 * The negotiation state of one remote peer (perfect negotiation), apart from the connection, so
 * the decisions can be unit-tested.
 */
export class Negotiation {
  /** @param {boolean} polite */
  constructor(polite) {
    this.polite = polite;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.settingRemoteAnswer = false;
    /** Candidates received before a remote description. @type {RTCIceCandidateInit[]} */
    this.buffered = [];
  }

  /**
   * What to do with an incoming description, given the connection's signaling state:
   * `ignore` (impolite side, crossing offer) or `accept` (a polite side's crossing offer is accepted:
   * setRemoteDescription rolls the local offer back).
   * @param {'offer' | 'answer'} type
   * @param {RTCSignalingState} signalingState
   * @returns {'ignore' | 'accept'}
   */
  onDescription(type, signalingState) {
    const ready = !this.makingOffer && (signalingState === 'stable' || this.settingRemoteAnswer);
    const collision = type === 'offer' && !ready;
    this.ignoreOffer = !this.polite && collision;
    return this.ignoreOffer ? 'ignore' : 'accept';
  }

  /**
   * What to do with an incoming candidate: `buffer` it until a remote description is set, or
   * `add` it now.
   * @param {RTCIceCandidateInit} candidate
   * @param {boolean} hasRemoteDescription
   * @returns {'buffer' | 'add'}
   */
  onCandidate(candidate, hasRemoteDescription) {
    if (!hasRemoteDescription) {
      this.buffered.push(candidate);
      return 'buffer';
    }
    return 'add';
  }

  /** The buffered candidates, in order, emptying the buffer. */
  takeBuffered() {
    const out = this.buffered;
    this.buffered = [];
    return out;
  }
}
