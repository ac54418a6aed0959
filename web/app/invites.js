// @ts-check
/**
 * One room's share codes, as its owner manages them on the start page: the list (role, uses,
 * expiry, status) with Revoke, a form to make one (role, uses, lifetime), and the code just made,
 * shown once with a copy button. Once only because the server keeps nothing but a hash of the
 * code: it cannot be read back, and the page says so.
 */

import { SwitchboardError } from '../sdk/switchboard.js';
import { copyText, h } from './dom.js';
import { describeAccountError, showError } from './account.js';

/** @typedef {import('../sdk/account.js').AccountClient} AccountClient */
/** @typedef {import('../sdk/account.js').Room} Room */
/** @typedef {import('../sdk/account.js').Invite} Invite */

/** The lifetimes offered, in seconds (the API takes 60 s to 7 days). */
const LIFETIMES = [
  ['3600', '1 hour'],
  ['86400', '1 day'],
  ['604800', '7 days'],
];

const STATUS_LABELS = { active: 'active', expired: 'expired', used_up: 'used up', revoked: 'revoked' };

/**
 * The line of a code in the list.
 * @param {Invite} invite
 * @param {number} nowSecs
 */
export function describeInvite(invite, nowSecs) {
  const uses = invite.max_uses == null ? `${invite.uses} uses, no limit` : `${invite.uses} of ${invite.max_uses} used`;
  const when =
    invite.status === 'active'
      ? `expires ${describeIn(invite.expires_at - nowSecs)}`
      : STATUS_LABELS[invite.status] ?? invite.status;
  return `${invite.role} · ${uses} · ${when}`;
}

/**
 * "in 5 minutes", "in 3 hours", "in 2 days".
 * @param {number} seconds
 */
function describeIn(seconds) {
  if (seconds < 120) return 'in a minute or two';
  if (seconds < 7200) return `in ${Math.round(seconds / 60)} minutes`;
  if (seconds < 172800) return `in ${Math.round(seconds / 3600)} hours`;
  return `in ${Math.round(seconds / 86400)} days`;
}

export class InvitesPanel {
  /**
   * Builds the panel into `container` (empty, and owned by the panel from now on).
   * @param {AccountClient} account
   * @param {Room} room
   * @param {HTMLElement} container
   */
  constructor(account, room, container) {
    this.account = account;
    this.room = room;
    const label = (/** @type {string} */ forId, /** @type {string} */ text) => h('label', { htmlFor: forId, text });
    const uid = container.id;
    this.role = h(
      'select',
      { id: `${uid}-role`, name: 'role' },
      h('option', { value: 'guest', text: 'Guest' }),
      h('option', { value: 'host', text: 'Host' }),
    );
    this.uses = h('input', { id: `${uid}-uses`, name: 'uses', type: 'number', min: '1', max: '10000', value: '1', inputMode: 'numeric', placeholder: 'No limit' });
    this.lifetime = h('select', { id: `${uid}-expiry`, name: 'expires_in' }, ...LIFETIMES.map(([value, text]) => h('option', { value, text })));
    this.lifetime.value = '86400';
    this.error = h('p', { class: 'error', role: 'alert', hidden: true });
    this.fresh = h('div', { class: 'fresh-code', role: 'status', 'aria-live': 'polite', hidden: true });
    this.list = h('ul', { class: 'code-list', 'aria-label': `Share codes of ${room.name}` });
    this.empty = h('p', { class: 'note', text: 'No share codes yet.', hidden: true });
    const form = h(
      'form',
      { novalidate: true, onsubmit: (/** @type {SubmitEvent} */ e) => (e.preventDefault(), void this.create()) },
      h(
        'div',
        { class: 'row fields' },
        h('div', { class: 'field' }, label(this.role.id, 'Role'), this.role),
        h('div', { class: 'field' }, label(this.uses.id, 'Uses'), this.uses),
        h('div', { class: 'field' }, label(this.lifetime.id, 'Expires after'), this.lifetime),
      ),
      h('small', { class: 'note', text: 'Uses: how many people the code lets in; empty for any number until it expires.' }),
      h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary small', text: 'Make a share code' })),
    );
    container.replaceChildren(form, this.error, this.fresh, this.empty, this.list);
  }

  /** Reads the room's codes again. */
  async load() {
    try {
      const invites = await this.account.listInvites(this.room.id);
      const now = Date.now() / 1000;
      this.list.replaceChildren(...invites.map((invite) => this.item(invite, now)));
      this.empty.hidden = invites.length > 0;
      showError(this.error, null);
    } catch (error) {
      showError(this.error, describeAccountError(error));
    }
  }

  /** Makes a code from the form and shows it, this once. */
  async create() {
    const usesText = this.uses.value.trim();
    const uses = Number(usesText);
    if (usesText && !(Number.isInteger(uses) && uses >= 1 && uses <= 10000)) {
      showError(this.error, 'Uses is a whole number from 1 to 10000, or empty for no limit.');
      this.uses.focus();
      return;
    }
    try {
      const made = await this.account.createInvite(this.room.id, {
        role: this.role.value === 'host' ? 'host' : 'guest',
        max_uses: usesText ? uses : null,
        expires_in: Number(this.lifetime.value),
      });
      showError(this.error, null);
      this.showFresh(made.code);
      await this.load();
    } catch (error) {
      showError(this.error, describeAccountError(error));
    }
  }

  /**
   * The code just made, with a copy button.
   * @param {string} code
   */
  showFresh(code) {
    const output = h('output', { class: 'code', text: code });
    const copy = h('button', {
      type: 'button',
      class: 'secondary small',
      'aria-label': `Copy share code ${code}`,
      text: 'Copy',
      onclick: async () => {
        const ok = await copyText(code);
        copy.textContent = ok ? 'Copied' : 'Copy failed: select the code';
        setTimeout(() => (copy.textContent = 'Copy'), 2000);
      },
    });
    this.fresh.replaceChildren(
      h('div', { class: 'row' }, h('span', { text: 'New share code:' }), output, copy),
      h('small', {
        text: 'Copy it now: it is shown only this once. The server keeps only a hash of it, so it cannot show it again (make a new one if it is lost).',
      }),
    );
    this.fresh.hidden = false;
  }

  /**
   * One code of the list.
   * @param {Invite} invite
   * @param {number} now Unix seconds.
   */
  item(invite, now) {
    return h(
      'li',
      { 'data-status': invite.status, 'data-invite': invite.id },
      h('span', { text: describeInvite(invite, now) }),
      invite.status === 'active' &&
        h('button', {
          type: 'button',
          class: 'ghost small',
          'aria-label': `Revoke ${invite.role} code made ${new Date(invite.created_at * 1000).toLocaleTimeString()}`,
          text: 'Revoke',
          onclick: () => void this.revoke(invite),
        }),
    );
  }

  /** @param {Invite} invite */
  async revoke(invite) {
    try {
      await this.account.revokeInvite(this.room.id, invite.id);
    } catch (error) {
      if (error instanceof SwitchboardError && error.code === 'not_found') await this.load();
      showError(this.error, describeAccountError(error));
      return;
    }
    await this.load();
  }
}
