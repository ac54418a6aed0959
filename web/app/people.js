// @ts-check
/**
 * The people in the call: who is here (the room's members and their names, also of those who
 * just left, for the line saying so), the side panel's list with each person's connection
 * quality, mic state and speaking highlight, and the host's actions on a member (mute their
 * microphone or camera, remove them). Names are looked up here for every other part of the view.
 */

import { byId, h } from './dom.js';

/** @typedef {import('./call.js').Call} Call */
/** @typedef {import('../sdk/protocol.js').PeerInfo} PeerInfo */
/** @typedef {import('../sdk/protocol.js').Role} Role */
/** @typedef {import('../sdk/quality.js').QualitySample} QualitySample */

/**
 * How this side is keyed in the tiles, the speaker and the chat: its peer id is not known until
 * the join, and its tile exists before.
 */
export const SELF = 'self';

/**
 * The name a member goes by: the name the server gives, else the one in its `meta`, else its
 * peer id.
 * @param {PeerInfo} info
 */
export function displayName(info) {
  return info.name || (typeof info.meta?.name === 'string' ? info.meta.name : '') || info.peer;
}

export class People {
  /** @param {Call} call Whose members, states and host rights the list shows. */
  constructor(call) {
    this.call = call;
    /** @type {Map<string, PeerInfo>} */
    this.members = new Map();
    /** The names of the last list, so a member that left is named in the line saying so. @type {Map<string, string>} */
    this.lastNames = new Map();
    /** Whether a new member is news: the first list after a join is who was already there. */
    this.announceJoins = false;
  }

  /**
   * @param {string} peer
   * @param {boolean} [gone] Look up peers that already left, too.
   */
  nameOf(peer, gone = false) {
    const call = this.call;
    if (peer === SELF || peer === call.self?.peer) return call.options.name || 'You';
    const info = this.members.get(peer);
    if (info) return displayName(info);
    return (gone && this.lastNames.get(peer)) || peer;
  }

  /**
   * The room's members changed: says who joined and left, and forgets what was known of those
   * who left.
   * @param {Iterable<[string, PeerInfo]>} members
   */
  update(members) {
    const call = this.call;
    const before = new Set(this.members.keys());
    this.members = new Map(members);
    // The first list after a join is who was already there, not news.
    const announce = this.announceJoins;
    this.announceJoins = true;
    for (const peer of this.members.keys()) {
      if (!before.has(peer) && announce) call.addSystem(`${this.nameOf(peer)} joined`);
    }
    for (const peer of before) {
      if (!this.members.has(peer)) {
        call.addSystem(`${this.nameOf(peer, true)} left`);
        call.remoteState.delete(peer);
        call.activity.quality.delete(peer);
      }
    }
    this.lastNames = new Map([...this.members].map(([p, i]) => [p, displayName(i)]));
    this.render();
    call.tiles.renderAll();
  }

  /** The side panel's list: this side first, then the members. */
  render() {
    const call = this.call;
    const list = byId('people');
    const isHost = call.self?.role === 'host';
    /** @type {HTMLElement[]} */
    const items = [];
    if (call.self) {
      items.push(this.item(call.self.peer, call.options.name || 'You', call.self.role, true, false));
    }
    for (const info of this.members.values()) {
      items.push(this.item(info.peer, displayName(info), info.role, false, isHost));
    }
    list.replaceChildren(...items);
    byId('people-count').textContent = String(items.length);
  }

  /**
   * @param {string} peer
   * @param {string} name
   * @param {Role} role
   * @param {boolean} me
   * @param {boolean} canKick
   */
  item(peer, name, role, me, canKick) {
    const call = this.call;
    const sample = call.activity.quality.get(peer);
    const state = me ? { mic: call.micOn, cam: call.camOn } : call.remoteState.get(peer);
    const link = me ? null : call.rtc?.connection(peer);
    const stats = me
      ? 'you'
      : !link
        ? call.mode === 'host_only'
          ? 'not connected (host-only mode)'
          : 'connecting…'
        : sample
          ? describeSample(sample)
          : link.connectionState === 'connected'
            ? 'measuring…'
            : 'connecting…';
    return h(
      'li',
      { 'data-peer': peer, class: call.activity.speaker === (me ? SELF : peer) ? 'speaking' : '' },
      h(
        'span',
        {
          class: 'quality',
          'data-quality': me ? 'good' : (sample?.quality ?? 'connecting'),
          'aria-label': me ? '' : `Connection quality: ${sample?.quality ?? 'unknown'}`,
          role: 'img',
        },
        '',
      ),
      h(
        'span',
        { class: 'who' },
        h('strong', { text: me ? `${name} (you)` : name }),
        h('span', { class: 'stats', text: stats }),
      ),
      role === 'host' ? h('span', { class: 'host-badge', text: 'Host' }) : null,
      state?.mic === false ? h('span', { class: 'muted-tag', text: 'muted' }) : null,
      canKick && !me && call.media === 'sfu' && state?.mic !== false
        ? h('button', {
            type: 'button',
            class: 'small host-mute',
            text: 'Mute',
            'aria-label': `Mute ${name}'s microphone`,
            onclick: () => this.muteRemote(peer, 'audio'),
          })
        : null,
      canKick && !me && call.media === 'sfu' && state?.cam !== false
        ? h('button', {
            type: 'button',
            class: 'small host-mute',
            text: 'Camera off',
            'aria-label': `Turn off ${name}'s camera`,
            onclick: () => this.muteRemote(peer, 'video'),
          })
        : null,
      canKick && !me
        ? h('button', {
            type: 'button',
            class: 'small danger kick',
            text: 'Remove',
            'aria-label': `Remove ${name} from the room`,
            onclick: () => void this.kick(peer),
          })
        : null,
    );
  }

  /**
   * Highlights the active speaker in the list.
   * @param {string | null} speaker A peer, {@link SELF}, or nobody.
   */
  markSpeaker(speaker) {
    for (const li of byId('people').children) {
      const peer = /** @type {HTMLElement} */ (li).dataset.peer;
      li.classList.toggle('speaking', (peer === this.call.self?.peer ? SELF : peer) === speaker);
    }
  }

  /**
   * A host removes a member from the room.
   * @param {string} peer
   */
  async kick(peer) {
    const call = this.call;
    const name = this.nameOf(peer);
    try {
      await call.client?.kick(call.room, peer);
      call.addSystem(`You removed ${name}.`);
    } catch (error) {
      call.addSystem(`Could not remove ${name}: ${error instanceof Error ? error.message : error}`);
    }
  }

  /**
   * A host turns off another member's microphone or camera (SFU rooms).
   * @param {string} peer
   * @param {'audio' | 'video'} kind
   */
  muteRemote(peer, kind) {
    if (!this.call.rtc?.muteRemote(peer, kind)) {
      this.call.addSystem(`${this.nameOf(peer)} sends no ${kind === 'audio' ? 'microphone' : 'camera'} to mute.`);
    }
  }
}

/**
 * One line about a quality sample, for the list and a tile's tooltip.
 * @param {QualitySample} s
 */
export function describeSample(s) {
  const parts = [];
  if (s.rttMs !== null) parts.push(`RTT ${s.rttMs} ms`);
  if (s.lossPct !== null) parts.push(`loss ${s.lossPct}%`);
  if (s.inKbps !== null) parts.push(`↓ ${formatKbps(s.inKbps)}`);
  if (s.outKbps !== null) parts.push(`↑ ${formatKbps(s.outKbps)}`);
  if (s.candidateType === 'relay') parts.push('via TURN');
  return parts.join(' · ') || 'measuring…';
}

/** @param {number} kbps */
function formatKbps(kbps) {
  return kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mbps` : `${kbps} kbps`;
}
