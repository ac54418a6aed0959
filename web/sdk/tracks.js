// @ts-check
/**
 * What an SFU call knows about the room's tracks, from the SFU's messages alone: the tracks the
 * others publish (`track_published`, `track_unpublished`, `track_state`), the ones this side
 * publishes (its own `track_published`, which names the m-line), and which (peer, track) each of
 * the SFU's m-lines carries (`track_map`). Plain data with no connection, so the SFU call's
 * bookkeeping is unit-tested on its own.
 */

/**
 * A published track as the SFU announces it.
 * @typedef {object} TrackInfo
 * @property {string} peer Its publisher.
 * @property {string} track Its id in the room (`t1`, ...).
 * @property {'audio' | 'video'} kind
 * @property {boolean} muted
 * @property {string} tag The publisher's stream tag (`camera`, `screen`); `camera` when untagged.
 * @property {string} [mid] Own tracks only: the m-line of this side's session that carries it.
 */

/** @typedef {{mid: string, peer: string, track: string, kind: 'audio' | 'video'}} MidEntry */

export class TrackTable {
  constructor() {
    /** The others' tracks, by id. @type {Map<string, TrackInfo>} */
    this.published = new Map();
    /** This side's tracks, by id. @type {Map<string, TrackInfo>} */
    this.own = new Map();
    /** The SFU's m-lines, by mid, from the last `track_map`. @type {Map<string, MidEntry>} */
    this.mids = new Map();
  }

  /**
   * A `track_published` payload.
   * @param {any} p
   * @returns {TrackInfo | null} The track, or null for a payload that is not one.
   */
  onPublished(p) {
    if (typeof p?.peer !== 'string' || typeof p?.track !== 'string') return null;
    /** @type {TrackInfo} */
    const info = {
      peer: p.peer,
      track: p.track,
      kind: p.kind === 'audio' ? 'audio' : 'video',
      muted: p.muted === true,
      tag: typeof p.tag === 'string' ? p.tag : 'camera',
    };
    if (typeof p.mid === 'string') {
      info.mid = p.mid;
      this.own.set(info.track, info);
    } else {
      this.published.set(info.track, info);
    }
    return info;
  }

  /**
   * A `track_unpublished` payload.
   * @param {any} p
   * @returns {TrackInfo | null} The track that is gone, if it was known.
   */
  onUnpublished(p) {
    const info = this.published.get(p?.track) ?? null;
    this.published.delete(p?.track);
    return info;
  }

  /**
   * A `track_state` payload: the new mute state of one of the others' tracks or of an own one.
   * @param {any} p
   * @returns {TrackInfo | null}
   */
  onState(p) {
    const info = this.published.get(p?.track) ?? this.own.get(p?.track) ?? null;
    if (info) info.muted = p.muted === true;
    return info;
  }

  /**
   * A `track_map` payload: replaces the map of the SFU's m-lines.
   * @param {any} p
   */
  onMap(p) {
    this.mids = new Map();
    for (const e of Array.isArray(p?.mids) ? p.mids : []) {
      if (typeof e?.mid !== 'string' || typeof e?.peer !== 'string' || typeof e?.track !== 'string') continue;
      this.mids.set(e.mid, { mid: e.mid, peer: e.peer, track: e.track, kind: e.kind === 'audio' ? 'audio' : 'video' });
    }
  }

  /**
   * The own track carried on `mid`.
   * @param {string} mid
   */
  ownOn(mid) {
    for (const info of this.own.values()) if (info.mid === mid) return info;
    return null;
  }

  /**
   * Ids of the tracks `peer` publishes, of `kind` and `tag` when given.
   * @param {string} peer
   * @param {'audio' | 'video'} [kind]
   * @param {string} [tag]
   */
  tracksOf(peer, kind, tag) {
    const out = [];
    for (const info of this.published.values()) {
      if (info.peer === peer && (!kind || info.kind === kind) && (!tag || info.tag === tag)) out.push(info.track);
    }
    return out;
  }

  /**
   * Forgets a member that left; returns its tracks.
   * @param {string} peer
   */
  removePeer(peer) {
    const gone = [...this.published.values()].filter((i) => i.peer === peer);
    for (const info of gone) this.published.delete(info.track);
    return gone;
  }

  /** Forgets this side's tracks and the SFU's m-lines (a new media session starts over). */
  resetSession() {
    this.own.clear();
    this.mids.clear();
  }
}
