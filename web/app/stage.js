// @ts-check
/**
 * How the call's tiles are laid out, and what that means for the media: a paged grid (at most
 * `pageSize` tiles a page) or a speaker view (a screen share, else the active speaker, large;
 * the others in a strip of `stripSize`). A remote tile on screen reports its size in device
 * pixels as a `ResizeObserver` sees it, one off screen (another page, past the strip) reports
 * `paused`, so in an SFU room the server sends each video at the layer its tile needs and
 * nothing for tiles nobody sees. The tiles are the grid's `.tile` children, in order.
 */

import { byId } from './dom.js';

/** @typedef {{width: number, height: number} | {paused: true}} View */

/**
 * @typedef {object} StageOptions
 * @property {number} [pageSize] Tiles per grid page (default 9).
 * @property {number} [stripSize] Tiles in the speaker view's strip (default 5).
 * @property {(peer: string, tag: string, view: View) => void} onView A remote tile's view changed.
 */

export class Stage {
  /**
   * @param {HTMLElement} grid
   * @param {StageOptions} options
   */
  constructor(grid, options) {
    this.grid = grid;
    this.pageSize = options.pageSize ?? 9;
    this.stripSize = options.stripSize ?? 5;
    this.onView = options.onView;
    /** @type {'grid' | 'speaker'} */
    this.layout = 'grid';
    this.page = 0;
    this.pages = 1;
    /** The peer shown large in the speaker view ('self' for this side). @type {string | null} */
    this.speaker = null;
    /** Tiles being measured. @type {Set<Element>} */
    this.observed = new Set();
    /** The last view reported per tile, so a hidden tile says `paused` once. @type {WeakMap<Element, string>} */
    this.reported = new WeakMap();
    this.observer =
      typeof ResizeObserver === 'function'
        ? new ResizeObserver((entries) => {
            for (const entry of entries) this._measured(/** @type {HTMLElement} */ (entry.target), entry.contentRect);
          })
        : null;
  }

  /** @param {'grid' | 'speaker'} layout */
  setLayout(layout) {
    this.layout = layout;
    this.render();
  }

  /** @param {string | null} peer */
  setSpeaker(peer) {
    if (peer === this.speaker) return;
    this.speaker = peer;
    if (this.layout === 'speaker') this.render();
  }

  /** @param {number} delta */
  turn(delta) {
    this.page = Math.min(this.pages - 1, Math.max(0, this.page + delta));
    this.render();
  }

  /** Shows, hides and sizes the tiles for the current layout, page and speaker. */
  render() {
    const tiles = /** @type {HTMLElement[]} */ ([...this.grid.querySelectorAll(':scope > .tile')]);
    /** @type {Set<HTMLElement>} */
    let shown;
    /** @type {HTMLElement | null} */
    let main = null;
    if (this.layout === 'speaker' && tiles.length > 1) {
      const remote = tiles.filter((t) => !t.classList.contains('local'));
      main =
        remote.find((t) => t.dataset.tag === 'screen') ??
        tiles.find((t) => t.dataset.peer === this.speaker && t.dataset.tag === 'camera') ??
        remote[0] ??
        tiles[0];
      shown = new Set([main, ...tiles.filter((t) => t !== main).slice(0, this.stripSize)]);
      this.pages = 1;
      this.page = 0;
    } else {
      this.pages = Math.max(1, Math.ceil(tiles.length / this.pageSize));
      this.page = Math.min(this.page, this.pages - 1);
      shown = new Set(tiles.slice(this.page * this.pageSize, (this.page + 1) * this.pageSize));
    }
    for (const tile of tiles) {
      const visible = shown.has(tile);
      tile.hidden = !visible;
      tile.classList.toggle('main', tile === main);
      if (visible) this._observe(tile);
      else this._unobserve(tile);
    }
    for (const tile of this.observed) if (!tile.isConnected) this.observed.delete(tile);
    this.grid.dataset.layout = main ? 'speaker' : 'grid';
    this.grid.dataset.count = shown.size > 9 ? 'many' : String(Math.max(1, shown.size));
    this._renderPager();
  }

  _renderPager() {
    byId('pager').hidden = this.pages <= 1;
    byId('page-label').textContent = `Page ${this.page + 1} of ${this.pages}`;
    /** @type {HTMLButtonElement} */ (byId('page-prev')).disabled = this.page === 0;
    /** @type {HTMLButtonElement} */ (byId('page-next')).disabled = this.page >= this.pages - 1;
    const toggle = byId('layout-toggle');
    const speaker = this.layout === 'speaker';
    toggle.setAttribute('aria-pressed', String(speaker));
    toggle.textContent = speaker ? 'Grid view' : 'Speaker view';
  }

  /** @param {HTMLElement} tile */
  _observe(tile) {
    if (this.observed.has(tile)) return;
    this.observed.add(tile);
    if (this.observer) this.observer.observe(tile);
    else this._measured(tile, tile.getBoundingClientRect());
  }

  /** @param {HTMLElement} tile */
  _unobserve(tile) {
    if (this.observed.delete(tile)) this.observer?.unobserve(tile);
    this._report(tile, { paused: true });
  }

  /**
   * @param {HTMLElement} tile
   * @param {{width: number, height: number}} rect CSS pixels.
   */
  _measured(tile, rect) {
    if (tile.hidden || !tile.isConnected) return;
    const scale = globalThis.devicePixelRatio || 1;
    this._report(tile, { width: Math.round(rect.width * scale), height: Math.round(rect.height * scale) });
  }

  /**
   * @param {HTMLElement} tile
   * @param {View} view
   */
  _report(tile, view) {
    const { peer, tag } = tile.dataset;
    if (!peer || !tag || tile.classList.contains('local')) return;
    const key = JSON.stringify(view);
    if (this.reported.get(tile) === key) return;
    this.reported.set(tile, key);
    this.onView(peer, tag, view);
  }

  /** Stops measuring. */
  close() {
    this.observer?.disconnect();
    this.observed.clear();
  }
}
