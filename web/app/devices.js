// @ts-check
/**
 * The settings dialog: the lists of cameras, microphones and speakers, and switching to the one
 * chosen. A new camera or microphone replaces the track this side sends (the old one stops, so
 * its light goes off); a speaker applies to every remote tile. A device that cannot be opened
 * is said in the dialog, and the call goes on with what it had.
 */

import { byId, h } from './dom.js';
import { canChooseSpeaker, listDevices, openCamera } from './media.js';

/** @typedef {import('./call.js').Call} Call */

export class Devices {
  /** @param {Call} call Whose stream and tracks the choices change. */
  constructor(call) {
    this.call = call;
  }

  /** Fills the three lists, the devices in use selected. */
  async fill() {
    const call = this.call;
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
    fill('camera-select', cameras, call.stream?.getVideoTracks()[0]?.getSettings().deviceId, 'Camera');
    fill('mic-select', mics, call.stream?.getAudioTracks()[0]?.getSettings().deviceId, 'Microphone');
    byId('speaker-field').hidden = !canChooseSpeaker() || speakers.length === 0;
    fill('speaker-select', speakers, call.tiles.sinkId ?? undefined, 'Speaker');
  }

  /** @param {string} deviceId */
  async chooseCamera(deviceId) {
    const call = this.call;
    if (!call.camOn) return;
    const media = await openCamera({ audio: false, videoId: deviceId });
    const track = media.stream?.getVideoTracks()[0];
    if (!track) {
      this.showError(media.error);
      return;
    }
    const old = call.stream?.getVideoTracks()[0];
    if (old) {
      old.stop();
      call.stream?.removeTrack(old);
    }
    call.stream?.addTrack(track);
    await call.rtc?.setTrack('camera', 'video', track);
    this.showError(null);
  }

  /** @param {string} deviceId */
  async chooseMic(deviceId) {
    const call = this.call;
    const media = await openCamera({ video: false, audioId: deviceId });
    const track = media.stream?.getAudioTracks()[0];
    if (!track) {
      this.showError(media.error);
      return;
    }
    const old = call.stream?.getAudioTracks()[0];
    if (old) {
      old.stop();
      call.stream?.removeTrack(old);
    }
    track.enabled = call.micOn;
    if (!call.stream) call.stream = new MediaStream();
    call.stream.addTrack(track);
    await call.rtc?.setTrack('camera', 'audio', track);
    call.activity.setMic(track);
    this.showError(null);
    call.controls.render();
  }

  /** @param {string} deviceId */
  async chooseSpeaker(deviceId) {
    await this.call.tiles.setSink(deviceId);
  }

  /**
   * The dialog's error line (`null` hides it).
   * @param {string | null} message
   */
  showError(message) {
    const el = byId('settings-error');
    el.hidden = !message;
    el.textContent = message ?? '';
  }
}
