// @ts-check
/**
 * The call's two running measurements, each on its own timer: the quality of the link to every
 * peer (sampled every {@link QUALITY_MS}, shown on tiles and in the people list) and the active
 * speaker (the loudest microphone, picked every {@link SPEAKER_MS} with hold times so the
 * highlight and the speaker view do not flicker). It owns the level meter of this side's mic.
 */

import { LevelMeter } from './media.js';
import { SELF, describeSample } from './people.js';

/** @typedef {import('./call.js').Call} Call */
/** @typedef {import('../sdk/quality.js').QualitySample} QualitySample */

/** How often each link's quality is sampled. */
const QUALITY_MS = 2000;
/** How often the active speaker is picked. */
const SPEAKER_MS = 300;
/** A level below this is silence. */
const SPEAKING_LEVEL = 0.03;
/** How long the current speaker keeps the highlight before a louder one takes it. */
const SPEAKER_HOLD_MS = 800;
/** How long after falling silent the speaker loses the highlight. */
const SILENCE_MS = 1500;

export class Activity {
  /** @param {Call} call Whose peers are measured and whose tiles and list show it. */
  constructor(call) {
    this.call = call;
    /** The latest sample per peer. @type {Map<string, QualitySample>} */
    this.quality = new Map();
    /** This side's microphone level. @type {LevelMeter | null} */
    this.meter = null;
    /** The active speaker: a peer, {@link SELF}, or nobody. @type {string | null} */
    this.speaker = null;
    /** When the speaker was last heard (or took the highlight). */
    this.speakerSince = 0;
    /** @type {ReturnType<typeof setInterval>[]} */
    this.timers = [];
  }

  /**
   * Starts both timers, metering `mic` if there is one.
   * @param {MediaStreamTrack | undefined} mic
   */
  start(mic) {
    if (mic) this.meter = new LevelMeter(mic);
    this.timers.push(setInterval(() => void this.sampleQuality(), QUALITY_MS));
    this.timers.push(setInterval(() => this.pickSpeaker(), SPEAKER_MS));
  }

  /**
   * Meters a newly chosen microphone instead.
   * @param {MediaStreamTrack} mic
   */
  setMic(mic) {
    this.meter?.close();
    this.meter = new LevelMeter(mic);
  }

  /** Stops the timers and the meter (the call ended). */
  stop() {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.meter?.close();
  }

  async sampleQuality() {
    const call = this.call;
    const rtc = call.rtc;
    if (!rtc) return;
    for (const peer of rtc.peers()) {
      const sample = await rtc.quality(peer).catch(() => null);
      if (!sample) continue;
      this.quality.set(peer, sample);
      call.tiles.showQuality(peer, sample, describeSample(sample));
    }
    call.people.render();
  }

  pickSpeaker() {
    const call = this.call;
    const rtc = call.rtc;
    if (!rtc) return;
    /** @type {[string, number][]} */
    const levels = [];
    if (call.micOn && this.meter) levels.push([SELF, this.meter.level()]);
    for (const peer of rtc.peers()) {
      if (call.remoteState.get(peer)?.mic === false) continue;
      levels.push([peer, rtc.audioLevel(peer)]);
    }
    levels.sort((a, b) => b[1] - a[1]);
    const [loudest, level] = levels[0] ?? [null, 0];
    const now = Date.now();
    let speaker = this.speaker;
    if (loudest && level > SPEAKING_LEVEL) {
      // Switch after the current speaker has held the highlight a moment, to avoid flicker.
      if (loudest !== speaker && (speaker === null || now - this.speakerSince > SPEAKER_HOLD_MS)) {
        speaker = loudest;
        this.speakerSince = now;
      } else if (loudest === speaker) {
        this.speakerSince = now;
      }
    } else if (speaker && now - this.speakerSince > SILENCE_MS) {
      speaker = null;
    }
    if (speaker === this.speaker) return;
    this.speaker = speaker;
    // Your own voice highlights you but leaves the large tile with who spoke before, as in
    // other meeting apps: a speaker view of yourself is a mirror.
    if (speaker && speaker !== SELF) call.stage.setSpeaker(speaker);
    call.tiles.markSpeaker(speaker);
    call.people.markSpeaker(speaker);
  }
}
