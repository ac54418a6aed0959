// @ts-check
/**
 * Simulcast for the camera in SFU rooms: the layers the SFU expects (rids `q`, `h`, `f`, lowest
 * first, see docs/sfu.md), how many a camera's size allows, and what the SFU's `layers` message
 * means for the encoder. The bitrates are the SFU's nominal layer rates, so its allocator's
 * arithmetic matches what is sent.
 */

/** The camera's layers: a quarter, half and full resolution. */
export const SIMULCAST_ENCODINGS = Object.freeze([
  Object.freeze({ rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 }),
  Object.freeze({ rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 }),
  Object.freeze({ rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 }),
]);

/**
 * The layers to send for a camera captured `height` pixels tall: as many as browsers encode at
 * that size (Chromium sends one stream below 270 lines, two below 540), so every layer offered
 * is one the SFU receives, and its nominal heights (180, 360, 720) stay about right: three
 * layers from 540 lines up, two (`q` at half, `h` at full size) from 270, else none (one
 * encoding, no simulcast). An unknown height gets three.
 * @param {number | undefined} height
 * @returns {{rid: string, scaleResolutionDownBy: number, maxBitrate: number}[] | null}
 */
export function encodingsFor(height) {
  if (height === undefined || height >= 540) return SIMULCAST_ENCODINGS.map((e) => ({ ...e }));
  if (height >= 270) {
    return [
      { ...SIMULCAST_ENCODINGS[0], scaleResolutionDownBy: 2 },
      { ...SIMULCAST_ENCODINGS[1], scaleResolutionDownBy: 1 },
    ];
  }
  return null;
}

/**
 * Encodings with `active` set from a `layers` message: rids in `paused` off (nobody receives
 * them, so the browser need not encode them), rids in `active` on; others as they were.
 * @template {{rid?: string, active?: boolean}} E
 * @param {E[]} encodings
 * @param {unknown} active
 * @param {unknown} paused
 * @returns {{encodings: E[], changed: boolean}}
 */
export function applyLayers(encodings, active, paused) {
  const on = new Set(Array.isArray(active) ? active : []);
  const off = new Set(Array.isArray(paused) ? paused : []);
  let changed = false;
  const out = encodings.map((e) => {
    const want = e.rid && on.has(e.rid) ? true : e.rid && off.has(e.rid) ? false : (e.active ?? true);
    if (want === (e.active ?? true)) return e;
    changed = true;
    return { ...e, active: want };
  });
  return { encodings: out, changed };
}
