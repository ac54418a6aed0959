// @ts-check
/**
 * "My rooms" on the start page: the signed-in account's stored rooms a page at a time (as
 * `GET /v1/rooms` pages them), a form to create one, and per room: join as host, its share codes
 * ({@link InvitesPanel}), delete. Joining is handed back to the page (`onJoin`), which runs the
 * call view as it does for anyone, with a host token minted for the owner.
 */

import { SwitchboardError } from '../sdk/switchboard.js';
import { byId, h } from './dom.js';
import { describeAccountError, showError } from './account.js';
import { InvitesPanel } from './invites.js';

/** @typedef {import('../sdk/account.js').AccountClient} AccountClient */
/** @typedef {import('../sdk/account.js').Room} Room */

/** Rooms per page of the list. */
export const PAGE = 20;

const MEDIA_LABELS = { auto: 'Automatic media', mesh: 'Mesh', sfu: 'SFU' };

/**
 * The line under a room's name: id, lobby, media, size.
 * @param {Room} room
 */
export function describeRoom(room) {
  const parts = [room.id, room.lobby ? 'lobby on' : 'no lobby', MEDIA_LABELS[room.media] ?? room.media];
  if (room.max_peers) parts.push(`up to ${room.max_peers}`);
  if (room.mode === 'host_only') parts.push('host-only');
  if (room.expires_at) parts.push(`until ${new Date(room.expires_at * 1000).toLocaleString()}`);
  return parts.join(' · ');
}

export class RoomsView {
  /**
   * @param {AccountClient} account
   * @param {{name: () => string, onJoin: (room: string, token: string) => void}} hooks `name`: the
   *   display name to join with; `onJoin`: runs the call with a host token.
   */
  constructor(account, hooks) {
    this.account = account;
    this.hooks = hooks;
    this.list = byId('room-list');
    this.more = /** @type {HTMLButtonElement} */ (byId('rooms-more'));
    this.error = byId('rooms-error');
    this.form = /** @type {HTMLFormElement} */ (byId('new-room-form'));
    this.formError = byId('new-room-error');
    /** Where the next page starts; `null` when the last was read. @type {string | null} */
    this.next = null;
    /** Bumped on every reload and sign-out, so a page that arrives late is dropped. */
    this.generation = 0;
    /** For unique element ids (room ids may hold characters ids and selectors dislike). */
    this.serial = 0;
    this.more.addEventListener('click', () => void this.loadPage());
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.create();
    });
  }

  /** Reads the list again from the first page. */
  async reload() {
    this.generation += 1;
    this.next = null;
    this.list.replaceChildren();
    await this.loadPage(true);
  }

  /** Empties the list (signed out). */
  clear() {
    this.generation += 1;
    this.next = null;
    this.list.replaceChildren();
    this.more.hidden = true;
    byId('rooms-empty').hidden = true;
    showError(this.error, null);
  }

  /**
   * Reads the next page and appends it.
   * @param {boolean} [first]
   */
  async loadPage(first = false) {
    const generation = this.generation;
    this.more.disabled = true;
    try {
      const page = await this.account.listRooms({ limit: PAGE, after: first ? null : this.next });
      if (generation !== this.generation) return;
      this.next = page.next;
      this.list.append(...page.rooms.map((room) => this.item(room)));
      showError(this.error, null);
    } catch (error) {
      if (generation === this.generation) showError(this.error, describeAccountError(error));
    } finally {
      this.more.disabled = false;
      this.more.hidden = this.next === null;
      byId('rooms-empty').hidden = this.list.childElementCount > 0 || !this.more.hidden;
    }
  }

  /** Creates a room from the form, and lists it. */
  async create() {
    const data = new FormData(this.form);
    const id = String(data.get('id') ?? '').trim();
    const name = String(data.get('name') ?? '').trim();
    const max = String(data.get('max_peers') ?? '').trim();
    const media = /** @type {'auto' | 'mesh' | 'sfu'} */ (String(data.get('media') ?? 'auto'));
    if (id && !/^[A-Za-z0-9_.:-]{1,64}$/.test(id)) {
      showError(this.formError, 'Room ids are 1 to 64 letters, digits, or _ - . :');
      byId('new-room-id').focus();
      return;
    }
    if (max && !(Number.isInteger(Number(max)) && Number(max) >= 1)) {
      showError(this.formError, 'Max people is a whole number, 1 or more (or empty for the server\'s limit).');
      byId('new-room-max').focus();
      return;
    }
    const button = /** @type {HTMLButtonElement} */ (byId('create-room'));
    button.disabled = true;
    try {
      const room = await this.account.createRoom({
        ...(id ? { id } : {}),
        ...(name ? { name } : {}),
        ...(max ? { max_peers: Number(max) } : {}),
        media,
        lobby: data.get('lobby') === 'on',
      });
      showError(this.formError, null);
      this.form.reset();
      // New rooms go first: the list is otherwise in id order, and this is the one wanted now.
      const item = this.item(room);
      this.list.prepend(item);
      byId('rooms-empty').hidden = true;
      /** @type {HTMLElement | null} */ (item.querySelector('.join-host'))?.focus();
    } catch (error) {
      showError(
        this.formError,
        error instanceof SwitchboardError && error.code === 'conflict'
          ? 'That room id is taken. Pick another, or leave it empty for a random one.'
          : describeAccountError(error),
      );
    } finally {
      button.disabled = false;
    }
  }

  /**
   * One room of the list.
   * @param {Room} room
   */
  item(room) {
    this.serial += 1;
    const codesId = `codes-${this.serial}`;
    const titleId = `room-title-${this.serial}`;
    const codes = h('div', { class: 'codes', id: codesId, hidden: true });
    /** @type {InvitesPanel | null} */
    let panel = null;
    const toggle = h('button', {
      type: 'button',
      class: 'secondary small',
      'aria-expanded': 'false',
      'aria-controls': codesId,
      'aria-label': `Share codes of ${room.name}`,
      text: 'Share codes',
      onclick: () => {
        const open = codes.hidden;
        codes.hidden = !open;
        toggle.setAttribute('aria-expanded', String(open));
        if (open) {
          panel ??= new InvitesPanel(this.account, room, codes);
          void panel.load();
        }
      },
    });
    const li = h(
      'li',
      { class: 'room-item', 'aria-labelledby': titleId, 'data-room': room.id },
      h(
        'div',
        { class: 'room-head' },
        h('div', { class: 'who' }, h('strong', { id: titleId, text: room.name }), h('small', { text: describeRoom(room) })),
        h('button', {
          type: 'button',
          class: 'primary small join-host',
          'aria-label': `Join ${room.name} as host`,
          text: 'Join as host',
          onclick: (/** @type {MouseEvent} */ e) => void this.joinAsHost(room, /** @type {HTMLButtonElement} */ (e.currentTarget)),
        }),
        toggle,
        h('button', {
          type: 'button',
          class: 'danger small',
          'aria-label': `Delete ${room.name}`,
          text: 'Delete',
          onclick: () => void this.remove(room, li),
        }),
      ),
      codes,
    );
    return li;
  }

  /**
   * Mints a host token for the owner and hands it to the page to run the call.
   * @param {Room} room
   * @param {HTMLButtonElement} button
   */
  async joinAsHost(room, button) {
    button.disabled = true;
    try {
      const name = this.hooks.name() || this.account.account?.display_name || '';
      const minted = await this.account.mintRoomToken(room.id, { role: 'host', ...(name ? { name } : {}) });
      showError(this.error, null);
      this.hooks.onJoin(room.id, minted.token);
    } catch (error) {
      showError(this.error, describeAccountError(error));
    } finally {
      button.disabled = false;
    }
  }

  /**
   * Deletes a room once confirmed.
   * @param {Room} room
   * @param {HTMLElement} li
   */
  async remove(room, li) {
    const sure = confirm(`Delete the room "${room.name}" (${room.id})? A call in it ends, and its share codes stop working.`);
    if (!sure) return;
    try {
      await this.account.deleteRoom(room.id);
      showError(this.error, null);
    } catch (error) {
      showError(this.error, describeAccountError(error));
      // Gone already (expired, or deleted elsewhere): the list drops it too.
      if (!(error instanceof SwitchboardError && error.code === 'not_found')) return;
    }
    li.remove();
    byId('rooms-empty').hidden = this.list.childElementCount > 0 || !this.more.hidden;
  }
}
