// @ts-check
/** Camera, microphone and speaker handling, with messages a person can act on. */

/**
 * @typedef {object} MediaResult
 * @property {MediaStream | null} stream
 * @property {string | null} error A message for the person, when something was not available.
 */

/**
 * What a `getUserMedia` failure means, in words.
 * @param {unknown} error
 * @param {string} what "camera and microphone", "camera", ...
 */
export function describeMediaError(error, what = 'camera and microphone') {
  const name = /** @type {{name?: string}} */ (error)?.name ?? '';
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return `Access to your ${what} was denied, so the others can't see or hear you. Allow it in the browser's site settings (the icon next to the address), then press "Try again".`;
    case 'NotFoundError':
    case 'OverconstrainedError':
      return `No ${what} found. Connect one and press "Try again"; you can still watch and chat.`;
    case 'NotReadableError':
    case 'AbortError':
      return `Your ${what} is busy (another app may be using it). Close that app and press "Try again".`;
    default:
      if (!globalThis.isSecureContext) {
        return `This page is not served over HTTPS (or localhost), so the browser offers no ${what}.`;
      }
      return `Your ${what} could not be started (${name || String(error)}).`;
  }
}

/**
 * Opens the camera and microphone, falling back to one of them when both are not available.
 * @param {{audioId?: string, videoId?: string, audio?: boolean, video?: boolean}} [choice]
 * @returns {Promise<MediaResult>}
 */
export async function openCamera(choice = {}) {
  if (!navigator.mediaDevices?.getUserMedia) {
    return { stream: null, error: describeMediaError({ name: 'Unsupported' }) };
  }
  const audio = choice.audio === false ? false : choice.audioId ? { deviceId: { exact: choice.audioId } } : true;
  const video =
    choice.video === false
      ? false
      : {
          // A full mesh sends one copy per peer: 640x360 keeps that affordable.
          width: { ideal: 640 },
          height: { ideal: 360 },
          frameRate: { ideal: 24 },
          ...(choice.videoId ? { deviceId: { exact: choice.videoId } } : {}),
        };
  try {
    return { stream: await navigator.mediaDevices.getUserMedia({ audio, video }), error: null };
  } catch (error) {
    const name = /** @type {{name?: string}} */ (error)?.name;
    if (name === 'NotAllowedError' || name === 'SecurityError' || !audio || !video) {
      return { stream: null, error: describeMediaError(error) };
    }
    // One of the two may still work.
    for (const [constraints, missing] of /** @type {const} */ ([
      [{ audio, video: false }, 'camera'],
      [{ audio: false, video }, 'microphone'],
    ])) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia(constraints);
        return { stream, error: describeMediaError(error, missing) };
      } catch {
        // try the other
      }
    }
    return { stream: null, error: describeMediaError(error) };
  }
}

/**
 * The media devices by kind (labels appear once the page has media permission).
 * @returns {Promise<{cameras: MediaDeviceInfo[], mics: MediaDeviceInfo[], speakers: MediaDeviceInfo[]}>}
 */
export async function listDevices() {
  const devices = navigator.mediaDevices?.enumerateDevices ? await navigator.mediaDevices.enumerateDevices() : [];
  return {
    cameras: devices.filter((d) => d.kind === 'videoinput'),
    mics: devices.filter((d) => d.kind === 'audioinput'),
    speakers: devices.filter((d) => d.kind === 'audiooutput'),
  };
}

/** Whether the browser lets a page pick the speaker (`HTMLMediaElement.setSinkId`). */
export function canChooseSpeaker() {
  return typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;
}

/** The loudness of a local audio track, 0..1, from a Web Audio analyser. */
export class LevelMeter {
  /** @param {MediaStreamTrack} track */
  constructor(track) {
    /** @type {AudioContext | null} */
    this.context = null;
    /** @type {AnalyserNode | null} */
    this.analyser = null;
    this.data = new Uint8Array(256);
    try {
      const context = new AudioContext();
      const source = context.createMediaStreamSource(new MediaStream([track]));
      const analyser = context.createAnalyser();
      analyser.fftSize = 512;
      source.connect(analyser);
      this.context = context;
      this.analyser = analyser;
      this.data = new Uint8Array(analyser.fftSize);
    } catch {
      // No Web Audio: the level stays 0.
    }
  }

  /** RMS level of the last few milliseconds, 0..1. */
  level() {
    const analyser = this.analyser;
    if (!analyser) return 0;
    if (this.context?.state === 'suspended') void this.context.resume().catch(() => {});
    analyser.getByteTimeDomainData(this.data);
    let sum = 0;
    for (const v of this.data) {
      const x = (v - 128) / 128;
      sum += x * x;
    }
    return Math.sqrt(sum / this.data.length);
  }

  close() {
    void this.context?.close().catch(() => {});
    this.context = null;
    this.analyser = null;
  }
}
