// @ts-check
/**
 * The call's chat log: people's messages and the call's own notices (joins, leaves, changes,
 * failures) in one list, which a screen reader announces (`role=log`). It keeps the last
 * {@link MAX_LINES} lines, dropping the oldest, so a long call's page does not grow without end,
 * and follows new lines only while the reader is at the bottom.
 */

import { h } from './dom.js';

/** Lines kept; older ones are dropped. */
export const MAX_LINES = 500;

export class ChatLog {
  /** @param {HTMLElement} log The `<ol>` of lines. */
  constructor(log) {
    this.log = log;
  }

  /**
   * A person's message.
   * @param {string} from Its sender's peer id, or `self`.
   * @param {string} label Who, as shown ("You", a name, "(to hosts)").
   * @param {string} text
   * @param {boolean} mine
   */
  message(from, label, text, mine) {
    this.append(
      h(
        'li',
        { class: mine ? 'mine' : '', 'data-from': from },
        h('span', { class: 'from', text: label }),
        h('span', { class: 'text', text }),
      ),
    );
  }

  /**
   * A notice from the call itself.
   * @param {string} text
   */
  system(text) {
    this.append(h('li', { class: 'system', text }));
  }

  /** @param {HTMLElement} item */
  append(item) {
    const log = this.log;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(item);
    while (log.children.length > MAX_LINES) log.firstElementChild?.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
  }
}
