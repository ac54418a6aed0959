// @ts-check
/**
 * The call view: one {@link Client} and one {@link RoomCall} (mesh or SFU, as the room has it),
 * the video grid ({@link Stage}), the controls, the people list with host controls, the chat,
 * and the camera's notice. Apart from it: the connection badges and banner (status.js), the
 * lobby's knocks (knocks.js), the chat log (chat.js) and the kept guest tokens (guest-token.js).
 */

import { Client, RoomCall, SwitchboardError, requestGuestToken } from '../sdk/switchboard.js';
import { ChatLog } from './chat.js';
import { byId, copyText, h, initials } from './dom.js';
import { forgetToken, storeToken, storedToken } from './guest-token.js';
import { KnockList, waitForAnswer } from './knocks.js';
import { LevelMeter, canChooseSpeaker, describeMediaError, listDevices, openCamera } from './media.js';
import { Stage } from './stage.js';
import { ConnectionStatus } from './status.js';

/** @typedef {import('../sdk/protocol.js').PeerInfo} PeerInfo */
/** @typedef {import('../sdk/protocol.js').Role} Role */
/** @typedef {import('../sdk/protocol.js').RoomMode} RoomMode */
/** @typedef {import('../sdk/protocol.js').TransportName} TransportName */
/** @typedef {import('../sdk/quality.js').QualitySample} QualitySample */

/**
 * @typedef {object} CallOptions
 * @property {string} room
 * @property {string} name Display name ('' for none).
 * @property {'auto' | TransportName} transport
 * @property {string | null} token A token given in the link (`#token=`) or by a share code, else a
 *   guest token is requested.
 * @property {boolean} [lobby] The token is a lobby token: knock, and wait for a host to let us in.
 * @property {boolean} muted Join with the microphone off.
 * @property {'mesh' | 'sfu' | 'auto' | null} [media] The room's media a host sets on joining
 *   (`?media=`), when it differs.
 * @property {(message: string | null) => void} onEnd Called when the call ends (with a reason to show).
 */

/**
 * @typedef {object} Tile
 * @property {HTMLElement} el
 * @property {HTMLVideoElement} video
 * @property {string} peer
 * @property {string} tag
 */

const SELF = 'self';

export class Call {
  /** @param {CallOptions} options */
  constructor(options) {
    this.options = options;
    this.room = options.room;
    /** @type {Client | null} */
    this.client = null;
    /** The media of the call, mesh or SFU as the room has it. @type {RoomCall | null} */
    this.rtc = null;
    /** @type {MediaStream | null} */
    this.stream = null;
    /** @type {MediaStream | null} */
    this.screen = null;
    this.micOn = !options.muted;
    this.camOn = true;
    /** The effective media and the room's setting, once known. @type {'mesh' | 'sfu' | null} */
    this.media = null;
    /** @type {'mesh' | 'sfu' | 'auto' | null} */
    this.mediaMode = null;
    /** The SFU's `stream_state` of members' videos by `peer|tag`: a layer, or why paused. @type {Map<string, string>} */
    this.layers = new Map();
    /** Whether `options.media` was asked for already (once per call). */
    this.mediaAsked = false;
    this.stage = new Stage(byId('grid'), { onView: (peer, tag, view) => this.rtc?.setView(peer, tag, view) });
    /** @type {Map<string, Tile>} */
    this.tiles = new Map();
    /** @type {Map<string, PeerInfo>} */
    this.members = new Map();
    /** @type {{peer: string, role: Role} | null} */
    this.self = null;
    /** @type {RoomMode} */
    this.mode = 'free_for_all';
    /** Remote mic/camera state, from their `state` messages. @type {Map<string, {mic: boolean, cam: boolean}>} */
    this.remoteState = new Map();
    /** @type {Map<string, QualitySample>} */
    this.quality = new Map();
    /** @type {LevelMeter | null} */
    this.meter = null;
    /** @type {string | null} */
    this.speaker = null;
    this.speakerSince = 0;
    /** @type {ReturnType<typeof setInterval>[]} */
    this.timers = [];
    /** @type {(() => void)[]} */
    this.cleanup = [];
    this.ended = false;
    /** @type {string | null} */
    this.sinkId = null;
    this.announceJoins = false;
    /** Guests knocking on the room (hosts see them). */
    this.knocks = new KnockList((ticket, admit) => void this.answerKnock(ticket, admit));
    /** The chat and the call's notices. */
    this.chat = new ChatLog(byId('chat-log'));
    this.status = new ConnectionStatus(this);
  }

  /**
   * Gets media and a token, connects, joins. Throws a {@link SwitchboardError} (shown in the
   * lobby) when the room cannot be joined.
   * @returns {Promise<void>}
   */
  async start() {
    const { room, name, transport } = this.options;
    const stored = this.options.token ? null : storedToken(room, name);
    try {
      // The token first: a server without guest access says so before the camera is asked for.
      let token = this.options.token ?? stored;
      if (!token) {
        const guest = await requestGuestToken({ room, name: name || undefined });
        token = guest.token;
        storeToken(room, name, guest.token, guest.expires_at);
      }
      const media = await openCamera({ audio: true, video: true });
      this.stream = media.stream;
      this.camOn = !!media.stream?.getVideoTracks().length;
      const audio = media.stream?.getAudioTracks()[0];
      if (audio) audio.enabled = this.micOn;
      this.showMediaNotice(media.error);
      const client = new Client({ token, transport });
      this.client = client;
      const rtc = new RoomCall(client, { room });
      this.rtc = rtc;
      this.wire(client, rtc);
      // For the browser tests and for poking around in the console.
      Object.assign(globalThis, { __switchboard: { client, rtc, call: this } });
      await client.connect();
      if (this.options.lobby) await this.waitToBeLetIn(client);
      if (this.stream) await rtc.setCameraStream(this.stream);
      await rtc.join({ meta: name ? { name } : undefined });
    } catch (error) {
      // Nothing stays behind: no connection, and the camera light goes off.
      this.teardown();
      if (stored && error instanceof SwitchboardError && error.code === 'unauthorized') {
        // The kept token went bad (the server's secret changed): start over with a new one.
        forgetToken(room);
        this.ended = false;
        this.cleanup = [];
        return this.start();
      }
      throw error;
    }
    this.renderSelfTile();
    this.startTimers();
    this.renderControls();
    void this.fillDevices();
  }

  /**
   * A lobby token's session: knocks, and shows the waiting screen until a host answers. Throws
   * when the guest is turned away.
   * @param {Client} client
   */
  async waitToBeLetIn(client) {
    this.status.showBanner('Waiting for a host to let you in…', 'warn');
    await waitForAnswer(client, this.room, this.cleanup);
    this.status.hideBanner();
  }

  /** The guests waiting to join, with Admit and Deny for the hosts. */
  renderKnocks() {
    this.knocks.render(this.self?.role === 'host');
  }

  /**
   * @param {string} ticket
   * @param {boolean} admit
   */
  async answerKnock(ticket, admit) {
    const name = this.knocks.nameOf(ticket);
    try {
      await (admit ? this.client?.admit(this.room, ticket) : this.client?.deny(this.room, ticket));
    } catch (error) {
      this.addSystem(`Could not answer ${name}: ${error instanceof Error ? error.message : error}`);
    }
  }

  /**
   * @param {Client} client
   * @param {RoomCall} rtc
   */
  wire(client, rtc) {
    const on = (/** @type {() => void} */ off) => this.cleanup.push(off);
    on(client.on('state', (e) => this.status.onState(e)));
    on(
      client.on('message', (e) => {
        if (e.room !== this.room) return;
        const p = e.payload ?? {};
        if (p.kind === 'chat' && typeof p.text === 'string') this.addChat(e.from, p.text, !!p.private);
        if (p.kind === 'state') {
          this.remoteState.set(e.from, { mic: p.mic !== false, cam: p.cam !== false });
          this.renderTileState(e.from);
          this.renderPeople();
        }
      }),
    );
    on(
      client.on('error', (error) => {
        if (error.code === 'forbidden' && error.reply?.payload?.type === 'message') {
          this.addSystem('That message was not delivered: in host-only mode guests can write only to hosts.');
        } else if (!['duplicate_seq', 'unknown_peer'].includes(error.code)) {
          console.warn('switchboard:', error.code, error.message);
        }
      }),
    );
    on(client.on('session_reset', () => this.addSystem('The connection was restored with a new session.')));
    on(
      client.on('knock', ({ ticket, name }) => {
        this.addSystem(`${this.knocks.add(ticket, name)} is waiting to join.`);
        this.renderKnocks();
      }),
    );
    on(
      client.on('knock_ended', ({ ticket, outcome }) => {
        const name = this.knocks.settle(ticket);
        if (outcome === 'denied') this.addSystem(`${name} was not let in.`);
        this.renderKnocks();
      }),
    );
    on(client.on('warning', (w) => console.warn('switchboard warning:', w.code, w.message)));
    on(
      rtc.on('self', (self) => {
        this.self = self;
        this.askForMedia();
        this.announceJoins = false;
        this.renderHostControls();
        this.renderPeople();
        this.renderSelfTile();
      }),
    );
    on(
      rtc.on('members', (members) => {
        const before = new Set(this.members.keys());
        this.members = new Map(members);
        // The first list after a join is who was already there, not news.
        const announce = this.announceJoins;
        this.announceJoins = true;
        for (const peer of this.members.keys()) {
          if (!before.has(peer) && announce) this.addSystem(`${this.nameOf(peer)} joined`);
        }
        for (const peer of before) {
          if (!this.members.has(peer)) {
            this.addSystem(`${this.nameOf(peer, true)} left`);
            this.remoteState.delete(peer);
            this.quality.delete(peer);
          }
        }
        this.lastNames = new Map([...this.members].map(([p, i]) => [p, this.displayName(i)]));
        this.renderPeople();
        for (const tile of this.tiles.values()) this.renderTileState(tile.peer);
      }),
    );
    on(
      rtc.on('media', ({ media, media_mode, by }) => {
        const changed = this.media !== null && this.media !== media;
        this.media = media;
        this.mediaMode = media_mode;
        const badge = byId('media-badge');
        badge.textContent = media === 'sfu' ? 'SFU' : 'Mesh';
        badge.dataset.media = media;
        if (changed) this.addSystem(media === 'sfu' ? 'The call now goes through the server (SFU).' : 'The call is now direct between you (mesh).');
        else if (by && by !== this.self?.peer) this.addSystem(`${this.nameOf(by)} set the media to ${media_mode}.`);
        this.renderHostControls();
        this.askForMedia();
      }),
    );
    on(rtc.on('speakers', ({ peers }) => peers[0] && this.stage.setSpeaker(peers[0])));
    on(
      rtc.on('stream_state', ({ peer, tag, state, layer }) => {
        // What the SFU sends of a member's video: a layer (q, h, f) or why nothing.
        this.layers.set(`${peer}|${tag}`, layer ?? state);
        const tile = this.tiles.get(`${peer}|${tag}`);
        if (tile) tile.el.dataset.layer = layer ?? state;
      }),
    );
    on(
      rtc.on('track_state', (e) => {
        const what = e.kind === 'audio' ? 'microphone' : 'camera';
        if (e.self && e.muted && e.by !== this.self?.peer) {
          // A host muted this side: the SDK stopped the track; the controls say so.
          if (e.kind === 'audio') this.micOn = false;
          else if (this.camOn) void this.toggleCamera(); // the camera goes off, light and all
          this.addSystem(`${this.nameOf(e.by)} (host) turned off your ${what}. Turn it on again when you want.`);
          this.renderControls();
          this.broadcastState();
        } else if (!e.self && e.muted && e.by !== e.peer) {
          this.addSystem(`${this.nameOf(e.by)} turned off ${this.nameOf(e.peer)}'s ${what}.`);
        }
      }),
    );
    on(
      rtc.on('mode', ({ mode }) => {
        this.mode = mode;
        this.renderHostControls();
      }),
    );
    on(
      rtc.on('peer', ({ peer }) => {
        this.ensureTile(peer, 'camera');
        this.sendState(peer);
        this.renderPeople();
      }),
    );
    on(
      rtc.on('track', ({ peer, stream, tag }) => {
        const tile = this.ensureTile(peer, tag);
        if (tile.video.srcObject !== stream) {
          tile.video.srcObject = stream;
          this.play(tile);
        }
        this.renderTileState(peer);
      }),
    );
    on(
      rtc.on('stream_removed', ({ peer, tag }) => {
        if (tag !== 'camera') this.removeTile(peer, tag);
      }),
    );
    on(rtc.on('peer_closed', ({ peer }) => this.removePeerTiles(peer)));
    on(
      rtc.on('connection_state', ({ peer, state }) => {
        const tile = this.tiles.get(`${peer}|camera`);
        if (tile) tile.el.dataset.connection = state;
        // The people list and the tile's RTT would otherwise say "connecting" until the next
        // two-second sample, while the video already plays.
        if (state === 'connected') void this.sampleQuality();
        else this.renderPeople();
      }),
    );
    on(
      rtc.on('ended', ({ reason, by }) => {
        if (this.ended) return;
        const why =
          reason === 'kicked'
            ? by
              ? `The host (${this.nameOf(by)}) removed you from the room.`
              : "The room's owner removed you from the room."
            : reason === 'replaced'
              ? 'You joined this room from another tab or device, so this one left.'
              : reason.startsWith('room_closed')
                ? reason.endsWith('shutdown')
                  ? 'The server is restarting; the room was closed.'
                  : reason.endsWith('deleted')
                    ? "The room's owner deleted the room."
                    : 'The room was closed after a long time without activity.'
                : null;
        this.end(why);
      }),
    );
    const onPageHide = () => this.teardown();
    globalThis.addEventListener('pagehide', onPageHide);
    on(() => globalThis.removeEventListener('pagehide', onPageHide));
  }

  // ---- the camera and microphone's notice ----

  /** @param {string | null} message */
  showMediaNotice(message) {
    const notice = byId('media-notice');
    notice.hidden = !message;
    byId('media-notice-text').textContent = message ?? '';
    byId('media-retry').onclick = () => void this.retryMedia();
  }

  async retryMedia() {
    const media = await openCamera({ audio: true, video: true });
    if (!media.stream) {
      this.showMediaNotice(media.error);
      return;
    }
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = media.stream;
    this.camOn = media.stream.getVideoTracks().length > 0;
    const audio = media.stream.getAudioTracks()[0];
    if (audio) audio.enabled = this.micOn;
    await this.rtc?.setCameraStream(media.stream);
    this.showMediaNotice(media.error);
    this.renderSelfTile();
    this.renderControls();
    this.broadcastState();
    void this.fillDevices();
  }

  // ---- tiles ----

  /**
   * The tile of `peer`'s stream `tag`, created if needed.
   * @param {string} peer
   * @param {string} tag
   * @returns {Tile}
   */
  ensureTile(peer, tag) {
    const key = `${peer}|${tag}`;
    const existing = this.tiles.get(key);
    if (existing) return existing;
    const local = peer === SELF;
    const video = h('video', { autoplay: true, playsInline: true, muted: local });
    if (local) video.muted = true;
    const label = tag === 'screen' ? 'screen' : 'video';
    const el = h(
      'figure',
      {
        class: `tile${local ? ' local' : ''}`,
        'data-peer': peer,
        'data-tag': tag,
        'aria-label': '',
      },
      video,
      h('div', { class: 'avatar', 'aria-hidden': 'true' }, h('span', { text: '' })),
      h(
        'figcaption',
        {},
        h('span', { class: 'name' }),
        h('span', { class: 'host-badge', text: 'Host', hidden: true }),
        h('span', { class: 'muted-icon', text: 'Muted' }),
        // Shown (style.css) while the SFU sends none of this video for want of bandwidth, so a
        // still picture is not taken for a frozen call.
        h('span', { class: 'bandwidth-note', text: 'Paused: low bandwidth' }),
        h('span', { class: 'quality', 'data-quality': 'connecting', text: local ? 'you' : '…' }),
      ),
    );
    el.setAttribute('aria-label', `${this.nameOf(peer)} ${label}`);
    const layer = this.layers.get(key);
    if (layer) el.dataset.layer = layer;
    const tile = { el, video, peer, tag };
    this.tiles.set(key, tile);
    const grid = byId('grid');
    // Own tiles first, then others by arrival.
    if (local) grid.prepend(el);
    else grid.append(el);
    if (this.sinkId && !local) void this.applySink(video);
    this.layout();
    this.renderTileState(peer);
    return tile;
  }

  /** @param {Tile} tile */
  play(tile) {
    tile.video.play().catch((/** @type {unknown} */ error) => {
      // A newer stream replaced this one before it played (an SFU call adds a member's audio
      // and video one after the other): that play() is moot, not refused.
      if (/** @type {{name?: string}} */ (error)?.name === 'AbortError') return;
      // Autoplay with sound was refused: play muted and offer to unmute.
      tile.video.muted = true;
      void tile.video.play().catch(() => {});
      if (tile.el.querySelector('.unmute')) return;
      const button = h('button', {
        type: 'button',
        class: 'unmute small',
        text: 'Enable sound',
        'aria-label': `Enable sound from ${this.nameOf(tile.peer)}`,
        onclick: () => {
          tile.video.muted = false;
          void tile.video.play();
          button.remove();
        },
      });
      tile.el.append(button);
    });
  }

  /**
   * @param {string} peer
   * @param {string} tag
   */
  removeTile(peer, tag) {
    const key = `${peer}|${tag}`;
    const tile = this.tiles.get(key);
    if (!tile) return;
    tile.video.srcObject = null;
    tile.el.remove();
    this.tiles.delete(key);
    this.layout();
  }

  /** @param {string} peer */
  removePeerTiles(peer) {
    for (const tile of [...this.tiles.values()]) if (tile.peer === peer) this.removeTile(peer, tile.tag);
  }

  layout() {
    this.stage.render();
  }

  renderSelfTile() {
    const tile = this.ensureTile(SELF, 'camera');
    if (this.stream && tile.video.srcObject !== this.stream) {
      tile.video.srcObject = this.stream;
      void tile.video.play().catch(() => {});
    }
    this.renderTileState(SELF);
  }

  /** @param {string} peer */
  renderTileState(peer) {
    const local = peer === SELF;
    const name = this.nameOf(peer);
    const role = local ? this.self?.role : this.members.get(peer)?.role;
    const state = local ? { mic: this.micOn, cam: this.camOn } : this.remoteState.get(peer);
    for (const tile of this.tiles.values()) {
      if (tile.peer !== peer) continue;
      const el = tile.el;
      const screen = tile.tag === 'screen';
      /** @type {HTMLElement} */ (el.querySelector('.name')).textContent = local
        ? `${name} (you)${screen ? ' · screen' : ''}`
        : `${name}${screen ? ' · screen' : ''}`;
      /** @type {HTMLElement} */ (el.querySelector('.host-badge')).hidden = role !== 'host' || screen;
      /** @type {HTMLElement} */ (el.querySelector('.avatar span')).textContent = initials(name);
      el.setAttribute('aria-label', `${name}${local ? ' (you)' : ''} ${screen ? 'screen' : 'video'}`);
      el.classList.toggle('mic-off', !screen && state?.mic === false);
      const hasVideo = tile.video.srcObject instanceof MediaStream && tile.video.srcObject.getVideoTracks().length > 0;
      el.classList.toggle('no-video', !screen && (state?.cam === false || !hasVideo));
    }
  }

  // ---- people ----

  /**
   * @param {PeerInfo} info
   */
  displayName(info) {
    return info.name || (typeof info.meta?.name === 'string' ? info.meta.name : '') || info.peer;
  }

  /** @type {Map<string, string>} */
  lastNames = new Map();

  /**
   * @param {string} peer
   * @param {boolean} [gone] Look up peers that already left, too.
   */
  nameOf(peer, gone = false) {
    if (peer === SELF || peer === this.self?.peer) return this.options.name || 'You';
    const info = this.members.get(peer);
    if (info) return this.displayName(info);
    return (gone && this.lastNames.get(peer)) || peer;
  }

  renderPeople() {
    const list = byId('people');
    const isHost = this.self?.role === 'host';
    /** @type {HTMLElement[]} */
    const items = [];
    if (this.self) {
      items.push(this.personItem(this.self.peer, this.options.name || 'You', this.self.role, true, false));
    }
    for (const info of this.members.values()) {
      items.push(this.personItem(info.peer, this.displayName(info), info.role, false, isHost));
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
  personItem(peer, name, role, me, canKick) {
    const sample = this.quality.get(peer);
    const state = me ? { mic: this.micOn, cam: this.camOn } : this.remoteState.get(peer);
    const link = me ? null : this.rtc?.connection(peer);
    const stats = me
      ? 'you'
      : !link
        ? this.mode === 'host_only'
          ? 'not connected (host-only mode)'
          : 'connecting…'
        : sample
          ? describeSample(sample)
          : link.connectionState === 'connected'
            ? 'measuring…'
            : 'connecting…';
    return h(
      'li',
      { 'data-peer': peer, class: this.speaker === (me ? SELF : peer) ? 'speaking' : '' },
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
      canKick && !me && this.media === 'sfu' && state?.mic !== false
        ? h('button', {
            type: 'button',
            class: 'small host-mute',
            text: 'Mute',
            'aria-label': `Mute ${name}'s microphone`,
            onclick: () => this.muteRemote(peer, 'audio'),
          })
        : null,
      canKick && !me && this.media === 'sfu' && state?.cam !== false
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

  renderHostControls() {
    const isHost = this.self?.role === 'host';
    byId('host-controls').hidden = !isHost;
    const toggle = /** @type {HTMLInputElement} */ (byId('mode-switch'));
    toggle.checked = this.mode === 'host_only';
    toggle.setAttribute('aria-checked', String(toggle.checked));
    const mediaSelect = /** @type {HTMLSelectElement} */ (byId('media-select'));
    if (this.mediaMode) mediaSelect.value = this.mediaMode;
    byId('mode-note').hidden = isHost || this.mode !== 'host_only';
    this.renderKnocks();
    /** @type {HTMLInputElement} */ (byId('chat-input')).placeholder =
      !isHost && this.mode === 'host_only' ? 'Message the hosts' : 'Message everyone';
    this.renderPeople();
  }

  /** @param {string} peer */
  async kick(peer) {
    const name = this.nameOf(peer);
    try {
      await this.client?.kick(this.room, peer);
      this.addSystem(`You removed ${name}.`);
    } catch (error) {
      this.addSystem(`Could not remove ${name}: ${error instanceof Error ? error.message : error}`);
    }
  }

  /**
   * A host sets the room's media (`mesh`, `sfu` or `auto`).
   * @param {'mesh' | 'sfu' | 'auto'} media
   */
  async setMedia(media) {
    try {
      await this.rtc?.setMedia(media);
    } catch (error) {
      const why = error instanceof SwitchboardError && error.code === 'media_unavailable' ? 'this server runs no SFU' : error instanceof Error ? error.message : String(error);
      this.addSystem(`Could not change the media: ${why}.`);
      this.renderHostControls();
    }
  }

  /** A host that joined with `?media=` sets the room to it once, when it differs. */
  askForMedia() {
    const wanted = this.options.media;
    if (!wanted || this.mediaAsked || this.self?.role !== 'host' || this.mediaMode === null) return;
    this.mediaAsked = true;
    if (wanted !== this.mediaMode) void this.setMedia(wanted);
  }

  /**
   * A host turns off another member's microphone or camera (SFU rooms).
   * @param {string} peer
   * @param {'audio' | 'video'} kind
   */
  muteRemote(peer, kind) {
    if (!this.rtc?.muteRemote(peer, kind)) {
      this.addSystem(`${this.nameOf(peer)} sends no ${kind === 'audio' ? 'microphone' : 'camera'} to mute.`);
    }
  }

  /** @param {boolean} hostOnly */
  async setMode(hostOnly) {
    try {
      await this.client?.setMode(this.room, hostOnly ? 'host_only' : 'free_for_all');
    } catch (error) {
      this.addSystem(`Could not change the mode: ${error instanceof Error ? error.message : error}`);
      this.renderHostControls();
    }
  }

  // ---- chat ----

  /** @param {string} text */
  sendChat(text) {
    const client = this.client;
    if (!client || !text.trim()) return;
    const payload = { kind: 'chat', text: text.trim() };
    const guestLimited = this.mode === 'host_only' && this.self?.role !== 'host';
    if (guestLimited) {
      const hosts = [...this.members.values()].filter((m) => m.role === 'host');
      if (hosts.length === 0) {
        this.addSystem('No host is here to read it: in host-only mode guests can write only to hosts.');
        return;
      }
      for (const host of hosts) client.sendMessage(this.room, { ...payload, private: true }, { to: host.peer });
    } else {
      client.sendMessage(this.room, payload);
    }
    this.addChat(SELF, payload.text, guestLimited);
  }

  /**
   * @param {string} from
   * @param {string} text
   * @param {boolean} privately
   */
  addChat(from, text, privately) {
    const mine = from === SELF;
    const label = `${mine ? 'You' : this.nameOf(from)}${privately ? (mine ? ' → hosts' : ' (to hosts)') : ''}`;
    this.chat.message(mine ? 'self' : from, label, text, mine);
  }

  /** @param {string} text */
  addSystem(text) {
    this.chat.system(text);
  }

  // ---- controls ----

  renderControls() {
    const mic = byId('mic-toggle');
    mic.setAttribute('aria-pressed', String(this.micOn));
    mic.setAttribute('aria-label', this.micOn ? 'Microphone on (click to mute)' : 'Microphone muted (click to unmute)');
    /** @type {HTMLButtonElement} */ (mic).disabled = !this.stream?.getAudioTracks().length;
    const cam = byId('cam-toggle');
    cam.setAttribute('aria-pressed', String(this.camOn));
    cam.setAttribute('aria-label', this.camOn ? 'Camera on (click to turn off)' : 'Camera off (click to turn on)');
    const screen = byId('screen-toggle');
    screen.setAttribute('aria-pressed', String(!!this.screen));
    screen.setAttribute('aria-label', this.screen ? 'Stop sharing your screen' : 'Share your screen');
    /** @type {HTMLButtonElement} */ (screen).disabled = !navigator.mediaDevices?.getDisplayMedia;
    this.renderTileState(SELF);
    this.renderPeople();
  }

  toggleMic() {
    const track = this.stream?.getAudioTracks()[0];
    if (!track) return;
    this.micOn = !this.micOn;
    this.rtc?.mute('audio', !this.micOn);
    track.enabled = this.micOn;
    this.renderControls();
    this.broadcastState();
  }

  async toggleCamera() {
    const rtc = this.rtc;
    if (!rtc) return;
    if (this.camOn) {
      // Stop the camera (its light goes off); peers keep the sender and get no frames.
      const track = this.stream?.getVideoTracks()[0];
      track?.stop();
      if (track) this.stream?.removeTrack(track);
      await rtc.setTrack('camera', 'video', null);
      this.camOn = false;
    } else {
      const videoId = /** @type {HTMLSelectElement} */ (byId('camera-select')).value || undefined;
      const media = await openCamera({ audio: false, videoId });
      const track = media.stream?.getVideoTracks()[0];
      if (!track) {
        this.showMediaNotice(media.error ?? describeMediaError({ name: 'NotFoundError' }, 'camera'));
        return;
      }
      if (!this.stream) this.stream = new MediaStream();
      this.stream.addTrack(track);
      await rtc.setTrack('camera', 'video', track);
      rtc.mute('video', false); // a host's mute ends when its publisher turns the camera on
      this.camOn = true;
      const tile = this.tiles.get(`${SELF}|camera`);
      if (tile) {
        tile.video.srcObject = this.stream;
        void tile.video.play().catch(() => {});
      }
    }
    this.renderControls();
    this.broadcastState();
  }

  async toggleScreen() {
    const rtc = this.rtc;
    if (!rtc) return;
    if (this.screen) {
      this.stopScreen();
      return;
    }
    let screen;
    try {
      screen = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (error) {
      if (/** @type {{name?: string}} */ (error)?.name !== 'NotAllowedError') {
        this.addSystem(`Screen sharing failed: ${/** @type {Error} */ (error).message ?? error}`);
      }
      return;
    }
    const track = screen.getVideoTracks()[0];
    if (!track) return;
    this.screen = screen;
    track.addEventListener('ended', () => this.stopScreen());
    // Added next to the camera: every connection renegotiates.
    await rtc.setTrack('screen', 'video', track);
    const tile = this.ensureTile(SELF, 'screen');
    tile.video.srcObject = screen;
    void tile.video.play().catch(() => {});
    this.renderTileState(SELF);
    this.renderControls();
  }

  stopScreen() {
    if (!this.screen) return;
    this.screen.getTracks().forEach((t) => t.stop());
    this.screen = null;
    this.rtc?.removeTrack('screen', 'video');
    this.removeTile(SELF, 'screen');
    this.renderControls();
  }

  /** Tells every connected peer whether the mic and camera are on. */
  broadcastState() {
    for (const peer of this.rtc?.peers() ?? []) this.sendState(peer);
  }

  /** @param {string} peer */
  sendState(peer) {
    try {
      this.client?.sendMessage(this.room, { kind: 'state', mic: this.micOn, cam: this.camOn }, { to: peer });
    } catch {
      // closed
    }
  }

  // ---- devices ----

  async fillDevices() {
    const { cameras, mics, speakers } = await listDevices();
    /**
     * @param {string} id
     * @param {MediaDeviceInfo[]} devices
     * @param {string | undefined} current
     * @param {string} fallback
     */
    const fill = (id, devices, current, fallback) => {
      const select = /** @type {HTMLSelectElement} */ (byId(id));
      select.replaceChildren(
        ...devices.map((d, i) =>
          h('option', { value: d.deviceId, text: d.label || `${fallback} ${i + 1}`, selected: d.deviceId === current }),
        ),
      );
      select.disabled = devices.length === 0;
    };
    fill('camera-select', cameras, this.stream?.getVideoTracks()[0]?.getSettings().deviceId, 'Camera');
    fill('mic-select', mics, this.stream?.getAudioTracks()[0]?.getSettings().deviceId, 'Microphone');
    byId('speaker-field').hidden = !canChooseSpeaker() || speakers.length === 0;
    fill('speaker-select', speakers, this.sinkId ?? undefined, 'Speaker');
  }

  /** @param {string} deviceId */
  async chooseCamera(deviceId) {
    if (!this.camOn) return;
    const media = await openCamera({ audio: false, videoId: deviceId });
    const track = media.stream?.getVideoTracks()[0];
    if (!track) {
      this.settingsError(media.error);
      return;
    }
    const old = this.stream?.getVideoTracks()[0];
    if (old) {
      old.stop();
      this.stream?.removeTrack(old);
    }
    this.stream?.addTrack(track);
    await this.rtc?.setTrack('camera', 'video', track);
    this.settingsError(null);
  }

  /** @param {string} deviceId */
  async chooseMic(deviceId) {
    const media = await openCamera({ video: false, audioId: deviceId });
    const track = media.stream?.getAudioTracks()[0];
    if (!track) {
      this.settingsError(media.error);
      return;
    }
    const old = this.stream?.getAudioTracks()[0];
    if (old) {
      old.stop();
      this.stream?.removeTrack(old);
    }
    track.enabled = this.micOn;
    if (!this.stream) this.stream = new MediaStream();
    this.stream.addTrack(track);
    await this.rtc?.setTrack('camera', 'audio', track);
    this.meter?.close();
    this.meter = new LevelMeter(track);
    this.settingsError(null);
    this.renderControls();
  }

  /** @param {string} deviceId */
  async chooseSpeaker(deviceId) {
    this.sinkId = deviceId;
    for (const tile of this.tiles.values()) if (tile.peer !== SELF) await this.applySink(tile.video);
  }

  /** @param {HTMLVideoElement} video */
  async applySink(video) {
    if (!this.sinkId) return;
    try {
      await /** @type {any} */ (video).setSinkId(this.sinkId);
    } catch (error) {
      this.settingsError(`The speaker could not be selected: ${/** @type {Error} */ (error).message}`);
    }
  }

  /** @param {string | null} message */
  settingsError(message) {
    const el = byId('settings-error');
    el.hidden = !message;
    el.textContent = message ?? '';
  }

  // ---- timers: quality and active speaker ----

  startTimers() {
    const audio = this.stream?.getAudioTracks()[0];
    if (audio) this.meter = new LevelMeter(audio);
    this.timers.push(setInterval(() => void this.sampleQuality(), 2000));
    this.timers.push(setInterval(() => this.pickSpeaker(), 300));
  }

  async sampleQuality() {
    const rtc = this.rtc;
    if (!rtc) return;
    for (const peer of rtc.peers()) {
      const sample = await rtc.quality(peer).catch(() => null);
      if (!sample) continue;
      this.quality.set(peer, sample);
      const tile = this.tiles.get(`${peer}|camera`);
      if (tile) {
        const q = /** @type {HTMLElement} */ (tile.el.querySelector('.quality'));
        q.dataset.quality = sample.quality;
        q.textContent = sample.rttMs === null ? '…' : `${sample.rttMs} ms`;
        q.title = describeSample(sample);
        tile.el.dataset.rtt = String(sample.rttMs ?? '');
        tile.el.dataset.kbps = String(sample.inKbps ?? '');
      }
    }
    this.renderPeople();
  }

  pickSpeaker() {
    const rtc = this.rtc;
    if (!rtc) return;
    /** @type {[string, number][]} */
    const levels = [];
    if (this.micOn && this.meter) levels.push([SELF, this.meter.level()]);
    for (const peer of rtc.peers()) {
      if (this.remoteState.get(peer)?.mic === false) continue;
      levels.push([peer, rtc.audioLevel(peer)]);
    }
    levels.sort((a, b) => b[1] - a[1]);
    const [loudest, level] = levels[0] ?? [null, 0];
    const now = Date.now();
    let speaker = this.speaker;
    if (loudest && level > 0.03) {
      // Switch after the current speaker has held the highlight a moment, to avoid flicker.
      if (loudest !== speaker && (speaker === null || now - this.speakerSince > 800)) {
        speaker = loudest;
        this.speakerSince = now;
      } else if (loudest === speaker) {
        this.speakerSince = now;
      }
    } else if (speaker && now - this.speakerSince > 1500) {
      speaker = null;
    }
    if (speaker === this.speaker) return;
    this.speaker = speaker;
    if (speaker) this.stage.setSpeaker(speaker);
    for (const tile of this.tiles.values()) tile.el.classList.toggle('speaking', tile.peer === speaker && tile.tag === 'camera');
    for (const li of byId('people').children) {
      const peer = /** @type {HTMLElement} */ (li).dataset.peer;
      li.classList.toggle('speaking', (peer === this.self?.peer ? SELF : peer) === speaker);
    }
  }

  // ---- ending ----

  /** Copies the invite link of this room. */
  async copyInvite() {
    const url = inviteLink(this.room);
    const ok = await copyText(url);
    this.addSystem(ok ? 'Invite link copied.' : `Invite link: ${url}`);
  }

  /** Leaves the call (the Leave button). */
  leave() {
    this.end(null);
  }

  /** @param {string | null} reason */
  end(reason) {
    if (this.ended) return;
    this.ended = true;
    this.teardown();
    this.options.onEnd(reason);
  }

  /** Hangs up, closes the client and releases the camera. Safe to call twice. */
  teardown() {
    this.ended = true;
    byId('media-notice').hidden = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    for (const off of this.cleanup.splice(0)) off();
    try {
      this.rtc?.hangup('leave');
    } catch {
      // already gone
    }
    this.client?.close('left the call');
    this.stream?.getTracks().forEach((t) => t.stop());
    this.screen?.getTracks().forEach((t) => t.stop());
    this.meter?.close();
    this.stage.close();
    for (const tile of this.tiles.values()) {
      tile.video.srcObject = null;
      tile.el.remove();
    }
    this.tiles.clear();
  }
}

/**
 * One line about a quality sample.
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

/**
 * The invite link of a room (keeps a forced transport out of it).
 * @param {string} room
 */
export function inviteLink(room) {
  return `${location.origin}/?room=${encodeURIComponent(room)}`;
}
