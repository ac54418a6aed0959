// @ts-check
/**
 * The other members' media an SFU call shows: which of the SFU's m-lines carry which member's
 * track (matched with the latest `track_map`), and one stream per member and tag made of them.
 * A stream is rebuilt as a new `MediaStream` each time a track joins it (a video element shows a
 * new `srcObject` at once, where it may miss a track added to the one it plays); a track that
 * leaves is removed from its stream, and a stream left empty is gone. What changes is told
 * through the two callbacks, as the call's `track` and `stream_removed` events.
 */

/** @typedef {import('./tracks.js').TrackTable} TrackTable */

/**
 * @typedef {object} Shown
 * @property {string} peer
 * @property {string} track The SFU's track id.
 * @property {string} tag
 * @property {'audio' | 'video'} kind
 * @property {MediaStreamTrack} media The receiver's track.
 */

/**
 * @typedef {object} RemoteStreamsEvents
 * @property {(e: {peer: string, track: MediaStreamTrack, stream: MediaStream, tag: string}) => void} track
 * @property {(e: {peer: string, stream: MediaStream, tag: string}) => void} removed
 */

export class RemoteStreams {
  /**
   * @param {typeof MediaStream} MS
   * @param {RemoteStreamsEvents} on
   */
  constructor(MS, on) {
    this.MS = MS;
    this.on = on;
    /** Tracks shown, by the mid that carries them. @type {Map<string, Shown>} */
    this.byMid = new Map();
    /** Streams by `peer|tag`. @type {Map<string, MediaStream>} */
    this.streams = new Map();
  }

  /**
   * Matches the connection's receiving m-lines with the SFU's map: a newly carried track joins
   * its member's stream, one no longer carried (or carrying another track) leaves it.
   * @param {RTCRtpTransceiver[]} transceivers
   * @param {TrackTable} table
   */
  assign(transceivers, table) {
    for (const t of transceivers) {
      const mid = t.mid;
      if (!mid) continue;
      // Only the SFU's m-lines are in its map; this side's own never are.
      const entry = table.mids.get(mid);
      const receiving = t.currentDirection === 'recvonly' || t.currentDirection === 'sendrecv';
      const shown = this.byMid.get(mid);
      if (!entry || !receiving) {
        if (shown) this.drop(mid);
        continue;
      }
      if (shown?.track === entry.track) continue;
      if (shown) this.drop(mid);
      const tag = table.published.get(entry.track)?.tag ?? 'camera';
      const media = t.receiver.track;
      const key = `${entry.peer}|${tag}`;
      const stream = new this.MS([...(this.streams.get(key)?.getTracks() ?? []), media]);
      this.streams.set(key, stream);
      this.byMid.set(mid, { peer: entry.peer, track: entry.track, tag, kind: entry.kind, media });
      this.on.track({ peer: entry.peer, track: media, stream, tag });
    }
  }

  /**
   * The track on `mid` is no longer shown.
   * @param {string} mid
   */
  drop(mid) {
    const r = this.byMid.get(mid);
    if (!r) return;
    this.byMid.delete(mid);
    const key = `${r.peer}|${r.tag}`;
    const stream = this.streams.get(key);
    if (!stream) return;
    stream.removeTrack(r.media);
    if (stream.getTracks().length === 0) {
      this.streams.delete(key);
      this.on.removed({ peer: r.peer, stream, tag: r.tag });
    }
  }

  /**
   * Drops what matches: a track id, a member, or (no filter) everything.
   * @param {{track?: string, peer?: string}} [filter]
   */
  dropWhere(filter = {}) {
    for (const [mid, r] of [...this.byMid]) {
      if ((filter.track === undefined || r.track === filter.track) && (filter.peer === undefined || r.peer === filter.peer)) {
        this.drop(mid);
      }
    }
  }

  /**
   * The shown tracks of `peer`, with their mids.
   * @param {string} peer
   */
  of(peer) {
    return [...this.byMid].filter(([, r]) => r.peer === peer);
  }
}
