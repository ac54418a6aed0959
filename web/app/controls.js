// @ts-check
/**
 * The call's own media controls: the microphone, camera and screen-share buttons, what they do
 * to the tracks this side sends, and their pressed state and labels. Every change is told to
 * the other peers in a `state` message, so their tiles and lists show this side muted or
 * without video. The mic and camera state itself is the {@link Call}'s (`micOn`, `camOn`),
 * since a host's mute changes it too.
 */

import { byId } from './dom.js';
import { describeMediaError, openCamera } from './media.js';
import { SELF } from './people.js';

/** @typedef {import('./call.js').Call} Call */

export class Controls {
  /** @param {Call} call Whose stream, tracks and state the buttons change. */
  constructor(call) {
    this.call = call;
  }

  /** The buttons' pressed state and labels, and this side's tile and list entry with them. */
  render() {
    const call = this.call;
    const mic = byId('mic-toggle');
    mic.setAttribute('aria-pressed', String(call.micOn));
    mic.setAttribute('aria-label', call.micOn ? 'Microphone on (click to mute)' : 'Microphone muted (click to unmute)');
    /** @type {HTMLButtonElement} */ (mic).disabled = !call.stream?.getAudioTracks().length;
    const cam = byId('cam-toggle');
    cam.setAttribute('aria-pressed', String(call.camOn));
    cam.setAttribute('aria-label', call.camOn ? 'Camera on (click to turn off)' : 'Camera off (click to turn on)');
    const screen = byId('screen-toggle');
    screen.setAttribute('aria-pressed', String(!!call.screen));
    screen.setAttribute('aria-label', call.screen ? 'Stop sharing your screen' : 'Share your screen');
    /** @type {HTMLButtonElement} */ (screen).disabled = !navigator.mediaDevices?.getDisplayMedia;
    call.tiles.renderState(SELF);
    call.people.render();
  }

  toggleMic() {
    const call = this.call;
    const track = call.stream?.getAudioTracks()[0];
    if (!track) return;
    call.micOn = !call.micOn;
    call.rtc?.mute('audio', !call.micOn);
    track.enabled = call.micOn;
    this.render();
    this.broadcastState();
  }

  async toggleCamera() {
    const call = this.call;
    const rtc = call.rtc;
    if (!rtc) return;
    if (call.camOn) {
      // Stop the camera (its light goes off); peers keep the sender and get no frames.
      const track = call.stream?.getVideoTracks()[0];
      track?.stop();
      if (track) call.stream?.removeTrack(track);
      await rtc.setTrack('camera', 'video', null);
      call.camOn = false;
    } else {
      const videoId = /** @type {HTMLSelectElement} */ (byId('camera-select')).value || undefined;
      const media = await openCamera({ audio: false, videoId });
      const track = media.stream?.getVideoTracks()[0];
      if (!track) {
        call.showMediaNotice(media.error ?? describeMediaError({ name: 'NotFoundError' }, 'camera'));
        return;
      }
      if (!call.stream) call.stream = new MediaStream();
      call.stream.addTrack(track);
      await rtc.setTrack('camera', 'video', track);
      rtc.mute('video', false); // a host's mute ends when its publisher turns the camera on
      call.camOn = true;
      const tile = call.tiles.get(SELF, 'camera');
      if (tile) {
        tile.video.srcObject = call.stream;
        void tile.video.play().catch(() => {});
      }
    }
    this.render();
    this.broadcastState();
  }

  async toggleScreen() {
    const call = this.call;
    const rtc = call.rtc;
    if (!rtc) return;
    if (call.screen) {
      this.stopScreen();
      return;
    }
    let screen;
    try {
      screen = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (error) {
      if (/** @type {{name?: string}} */ (error)?.name !== 'NotAllowedError') {
        call.addSystem(`Screen sharing failed: ${/** @type {Error} */ (error).message ?? error}`);
      }
      return;
    }
    const track = screen.getVideoTracks()[0];
    if (!track) return;
    call.screen = screen;
    track.addEventListener('ended', () => this.stopScreen());
    // Added next to the camera: every connection renegotiates.
    await rtc.setTrack('screen', 'video', track);
    const tile = call.tiles.ensure(SELF, 'screen');
    tile.video.srcObject = screen;
    void tile.video.play().catch(() => {});
    call.tiles.renderState(SELF);
    this.render();
  }

  stopScreen() {
    const call = this.call;
    if (!call.screen) return;
    call.screen.getTracks().forEach((t) => t.stop());
    call.screen = null;
    call.rtc?.removeTrack('screen', 'video');
    call.tiles.remove(SELF, 'screen');
    this.render();
  }

  /** Tells every connected peer whether the mic and camera are on. */
  broadcastState() {
    for (const peer of this.call.rtc?.peers() ?? []) this.sendState(peer);
  }

  /** @param {string} peer */
  sendState(peer) {
    const call = this.call;
    try {
      call.client?.sendMessage(call.room, { kind: 'state', mic: call.micOn, cam: call.camOn }, { to: peer });
    } catch {
      // closed
    }
  }
}
