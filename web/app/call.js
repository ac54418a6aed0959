// @ts-check
/**
 * The call view: one {@link Client} and one {@link RoomCall} (mesh or SFU, as the room has it),
 * joined and wired here, and the state the view's parts share (the stream, mic and camera, who
 * this side is, the room's media and mode, the others' mic and camera). This file owns getting
 * in (token, camera, lobby, join), turning the SDK's events into updates of the parts, the chat,
 * and leaving. The parts, each given this call: the tiles (tiles.js) on the {@link Stage}, the
 * people list and hosts' actions on a member (people.js), the room's media and mode
 * (host-controls.js), the mic/camera/screen buttons (controls.js), the settings dialog
 * (devices.js), the quality and active-speaker timers (activity.js), the connection badges and
 * banner (status.js), the lobby's knocks (knocks.js), the chat log (chat.js) and the kept guest
 * tokens (guest-token.js).
 */

import { Client, RoomCall, SwitchboardError, requestGuestToken } from '../sdk/switchboard.js';
import { Activity } from './activity.js';
import { ChatLog } from './chat.js';
import { Controls } from './controls.js';
import { Devices } from './devices.js';
import { byId, copyText } from './dom.js';
import { forgetToken, storeToken, storedToken } from './guest-token.js';
import { HostControls } from './host-controls.js';
import { KnockList, waitForAnswer } from './knocks.js';
import { openCamera } from './media.js';
import { People, SELF } from './people.js';
import { Stage } from './stage.js';
import { ConnectionStatus } from './status.js';
import { Tiles } from './tiles.js';

/** @typedef {import('../sdk/protocol.js').Role} Role */
/** @typedef {import('../sdk/protocol.js').RoomMode} RoomMode */
/** @typedef {import('../sdk/protocol.js').TransportName} TransportName */

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
    this.stage = new Stage(byId('grid'), { onView: (peer, tag, view) => this.rtc?.setView(peer, tag, view) });
    /** @type {{peer: string, role: Role} | null} */
    this.self = null;
    /** @type {RoomMode} */
    this.mode = 'free_for_all';
    /** Remote mic/camera state, from their `state` messages. @type {Map<string, {mic: boolean, cam: boolean}>} */
    this.remoteState = new Map();
    /** @type {(() => void)[]} */
    this.cleanup = [];
    this.ended = false;
    this.tiles = new Tiles(this, this.stage, (message) => this.devices.showError(message));
    this.people = new People(this);
    this.hostControls = new HostControls(this);
    this.controls = new Controls(this);
    this.devices = new Devices(this);
    this.activity = new Activity(this);
    this.status = new ConnectionStatus(this);
    /** Guests knocking on the room (hosts see them). */
    this.knocks = new KnockList((ticket, admit) => void this.answerKnock(ticket, admit));
    /** The chat and the call's notices. */
    this.chat = new ChatLog(byId('chat-log'));
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
    this.tiles.renderSelf(this.stream);
    this.activity.start(this.stream?.getAudioTracks()[0]);
    this.controls.render();
    void this.devices.fill();
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
          this.tiles.renderState(e.from);
          this.people.render();
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
        this.hostControls.askForMedia();
        this.people.announceJoins = false;
        this.hostControls.render();
        this.people.render();
        this.tiles.renderSelf(this.stream);
      }),
    );
    on(rtc.on('members', (members) => this.people.update(members)));
    on(rtc.on('media', (e) => this.hostControls.onMedia(e)));
    on(
      rtc.on('speakers', ({ peers }) => {
        const other = peers.find((p) => p !== this.self?.peer);
        if (other) this.stage.setSpeaker(other);
      }),
    );
    on(
      // What the SFU sends of a member's video: a layer (q, h, f) or why nothing.
      rtc.on('stream_state', ({ peer, tag, state, layer }) => this.tiles.setLayer(peer, tag, layer ?? state)),
    );
    on(
      rtc.on('track_state', (e) => {
        const what = e.kind === 'audio' ? 'microphone' : 'camera';
        if (e.self && e.muted && e.by !== this.self?.peer) {
          // A host muted this side: the SDK stopped the track; the controls say so.
          if (e.kind === 'audio') this.micOn = false;
          else if (this.camOn) void this.controls.toggleCamera(); // the camera goes off, light and all
          this.addSystem(`${this.people.nameOf(e.by)} (host) turned off your ${what}. Turn it on again when you want.`);
          this.controls.render();
          this.controls.broadcastState();
        } else if (!e.self && e.muted && e.by !== e.peer) {
          this.addSystem(`${this.people.nameOf(e.by)} turned off ${this.people.nameOf(e.peer)}'s ${what}.`);
        }
      }),
    );
    on(rtc.on('mode', ({ mode }) => this.hostControls.onMode(mode)));
    on(
      rtc.on('peer', ({ peer }) => {
        this.tiles.ensure(peer, 'camera');
        this.controls.sendState(peer);
        this.people.render();
      }),
    );
    on(
      rtc.on('track', ({ peer, stream, tag }) => {
        const tile = this.tiles.ensure(peer, tag);
        if (tile.video.srcObject !== stream) {
          tile.video.srcObject = stream;
          this.tiles.play(tile);
        }
        this.tiles.renderState(peer);
      }),
    );
    on(
      rtc.on('stream_removed', ({ peer, tag }) => {
        if (tag !== 'camera') this.tiles.remove(peer, tag);
      }),
    );
    on(rtc.on('peer_closed', ({ peer }) => this.tiles.removePeer(peer)));
    on(
      rtc.on('connection_state', ({ peer, state }) => {
        this.tiles.setConnection(peer, state);
        // The people list and the tile's RTT would otherwise say "connecting" until the next
        // two-second sample, while the video already plays.
        if (state === 'connected') void this.activity.sampleQuality();
        else this.people.render();
      }),
    );
    on(
      rtc.on('ended', ({ reason, by }) => {
        if (this.ended) return;
        const why =
          reason === 'kicked'
            ? by
              ? `The host (${this.people.nameOf(by)}) removed you from the room.`
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
    this.tiles.renderSelf(this.stream);
    this.controls.render();
    this.controls.broadcastState();
    void this.devices.fill();
  }

  // ---- chat ----

  /** @param {string} text */
  sendChat(text) {
    const client = this.client;
    if (!client || !text.trim()) return;
    const payload = { kind: 'chat', text: text.trim() };
    const guestLimited = this.mode === 'host_only' && this.self?.role !== 'host';
    if (guestLimited) {
      const hosts = [...this.people.members.values()].filter((m) => m.role === 'host');
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
    const label = `${mine ? 'You' : this.people.nameOf(from)}${privately ? (mine ? ' → hosts' : ' (to hosts)') : ''}`;
    this.chat.message(mine ? 'self' : from, label, text, mine);
  }

  /** @param {string} text */
  addSystem(text) {
    this.chat.system(text);
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
    this.activity.stop();
    for (const off of this.cleanup.splice(0)) off();
    try {
      this.rtc?.hangup('leave');
    } catch {
      // already gone
    }
    this.client?.close('left the call');
    this.stream?.getTracks().forEach((t) => t.stop());
    this.screen?.getTracks().forEach((t) => t.stop());
    this.stage.close();
    this.tiles.clear();
  }
}

/**
 * The invite link of a room (keeps a forced transport out of it).
 * @param {string} room
 */
export function inviteLink(room) {
  return `${location.origin}/?room=${encodeURIComponent(room)}`;
}
