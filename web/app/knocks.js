// @ts-check
/**
 * The lobby as the call view sees it, both sides: a guest holding a lobby token knocks and waits
 * for a host's answer ({@link waitForAnswer}), and hosts see the guests knocking with Admit and
 * Deny ({@link KnockList}). The reasons a knock fails are written here once, for the error the
 * guest's join throws and the sentence the lobby page shows for it.
 */

import { SwitchboardError } from '../sdk/switchboard.js';
import { byId, h } from './dom.js';

/** @typedef {import('../sdk/client.js').Client} Client */

// How a knock that did not get in ends, as the message of the `forbidden` error a join throws.
export const KNOCK_DENIED = 'a host denied the knock';
export const KNOCK_EXPIRED = 'nobody answered the knock in time';
export const KNOCK_DELETED = 'the room was deleted';

/** What a guest who gave no name is called. */
const NAMELESS = 'A guest';

/**
 * Knocks on `room` and resolves once a host admits; rejects with `forbidden` (one of the
 * `KNOCK_*` messages) when a host denies, nobody answers in time, or the room is deleted.
 * @param {Client} client A session opened with a lobby token.
 * @param {string} room
 * @param {(() => void)[]} cleanup Where the listeners' removal goes, for a call torn down while
 *   it waits.
 * @returns {Promise<void>}
 */
export async function waitForAnswer(client, room, cleanup) {
  /** @type {Promise<void>} */
  const answered = new Promise((resolve, reject) => {
    const off = [
      client.on('admitted', () => {
        off.forEach((f) => f());
        resolve();
      }),
      client.on('denied', ({ reason }) => {
        off.forEach((f) => f());
        const why = reason === 'expired' ? KNOCK_EXPIRED : reason === 'deleted' ? KNOCK_DELETED : KNOCK_DENIED;
        reject(new SwitchboardError('forbidden', why));
      }),
    ];
    cleanup.push(() => off.forEach((f) => f()));
  });
  await client.knock(room);
  await answered;
}

/** The guests knocking on the room, by ticket, and the hosts' panel of them. */
export class KnockList {
  /**
   * @param {(ticket: string, admit: boolean) => void} answer What Admit and Deny do.
   */
  constructor(answer) {
    this.answer = answer;
    /** Display names by ticket; bounded by the server, which holds the knocks. @type {Map<string, string>} */
    this.waiting = new Map();
  }

  /**
   * A guest knocked; returns the name it is shown with.
   * @param {string} ticket
   * @param {string | undefined} name
   */
  add(ticket, name) {
    const shown = name || NAMELESS;
    this.waiting.set(ticket, shown);
    return shown;
  }

  /**
   * A knock was answered or expired; returns the guest's name.
   * @param {string} ticket
   */
  settle(ticket) {
    const name = this.nameOf(ticket);
    this.waiting.delete(ticket);
    return name;
  }

  /** @param {string} ticket */
  nameOf(ticket) {
    return this.waiting.get(ticket) ?? NAMELESS;
  }

  /**
   * Shows the waiting guests with Admit and Deny, to hosts only.
   * @param {boolean} isHost
   */
  render(isHost) {
    const items = [...this.waiting].map(([ticket, name]) =>
      h(
        'li',
        { 'data-ticket': ticket },
        h('span', { class: 'who' }, h('strong', { text: name })),
        h('button', {
          type: 'button',
          class: 'small',
          text: 'Admit',
          'aria-label': `Admit ${name}`,
          onclick: () => this.answer(ticket, true),
        }),
        h('button', {
          type: 'button',
          class: 'small danger',
          text: 'Deny',
          'aria-label': `Deny ${name}`,
          onclick: () => this.answer(ticket, false),
        }),
      ),
    );
    byId('knocks').replaceChildren(...items);
    byId('knocks-panel').hidden = !isHost || items.length === 0;
  }
}
