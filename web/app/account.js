// @ts-check
/**
 * The start page's account card: sign up, sign in and sign out, and which half of the card shows
 * (the form, or "my rooms" once signed in). The login itself (tokens, refresh, storage) is the
 * SDK's {@link AccountClient}; this file owns only what a person sees of it, and turns the API's
 * errors into sentences that say what to do.
 */

import { SwitchboardError } from '../sdk/switchboard.js';
import { byId } from './dom.js';

/** @typedef {import('../sdk/account.js').AccountClient} AccountClient */
/** @typedef {import('../sdk/account.js').Account} Account */

/**
 * How long to wait, said as people say it.
 * @param {number} seconds
 */
export function describeWait(seconds) {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minutes`;
}

/**
 * A sentence for a failed account request.
 * @param {unknown} error
 * @param {'sign-in' | 'sign-up' | 'other'} [during]
 */
export function describeAccountError(error, during = 'other') {
  if (!(error instanceof SwitchboardError)) return `Something went wrong: ${error}`;
  switch (error.code) {
    case 'unauthorized':
      return during === 'sign-in'
        ? 'Wrong username or password.'
        : 'You are signed out (the sign-in expired or was ended elsewhere). Sign in again.';
    case 'conflict':
      return during === 'sign-up' ? 'That username is taken. Pick another, or sign in.' : `Already exists: ${error.message}`;
    case 'rate_limited':
      return error.retryAfter !== undefined
        ? `Too many attempts. Try again in ${describeWait(error.retryAfter)}.`
        : 'Too many attempts. Wait a little and try again.';
    case 'invalid_message':
      // The server quotes field names in backticks, as in its docs; a form reads better without.
      return `Please check the form: ${error.message.replaceAll('`', '')}.`;
    case 'not_found':
      return 'That no longer exists (deleted, or expired). The list is up to date now.';
    case 'unreachable':
      return 'The server cannot be reached. Check your connection and try again.';
    case 'unavailable':
      return 'The server is restarting. Try again in a moment.';
    default:
      return `The server refused (${error.code}): ${error.message}`;
  }
}

/**
 * Shows a message in an `.error` paragraph, or hides it (`null`).
 * @param {HTMLElement} el
 * @param {string | null} message
 */
export function showError(el, message) {
  el.hidden = !message;
  el.textContent = message ?? '';
}

/** The sign-in form and the switch between the card's two halves. */
export class AccountCard {
  /**
   * @param {AccountClient} account
   * @param {{onSignedIn: (who: Account) => void, onSignedOut: () => void}} hooks What else
   *   changes with the login (the rooms list).
   */
  constructor(account, hooks) {
    this.account = account;
    this.hooks = hooks;
    this.form = /** @type {HTMLFormElement} */ (byId('sign-in-form'));
    this.username = /** @type {HTMLInputElement} */ (byId('username-input'));
    this.password = /** @type {HTMLInputElement} */ (byId('password-input'));
    this.error = byId('account-error');
    /** Whether this page is signing out (else a sign-out is the login failing, which is said). */
    this.leaving = false;
    this.buttons = [byId('sign-in'), byId('sign-up'), byId('sign-out')].map(
      (b) => /** @type {HTMLButtonElement} */ (b),
    );
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submit('sign-in');
    });
    byId('sign-up').addEventListener('click', () => void this.submit('sign-up'));
    byId('sign-out').addEventListener('click', () => void this.signOut());
    account.on('change', (who) => this.render(who));
  }

  /**
   * Signs in again with the login a previous load of the page kept, if any.
   * @returns {Promise<void>}
   */
  async restore() {
    try {
      await this.account.restore();
    } catch (error) {
      showError(this.error, describeAccountError(error));
    }
  }

  /**
   * Signs in, or creates the account and then signs in.
   * @param {'sign-in' | 'sign-up'} action
   */
  async submit(action) {
    const username = this.username.value.trim();
    const password = this.password.value;
    if (!username || !password) {
      showError(this.error, 'Enter a username and a password.');
      (username ? this.password : this.username).focus();
      return;
    }
    showError(this.error, null);
    this.busy(true);
    try {
      if (action === 'sign-up') await this.account.register({ username, password });
      await this.account.login({ username, password });
      this.form.reset();
    } catch (error) {
      showError(this.error, describeAccountError(error, action));
      this.password.focus();
    } finally {
      this.busy(false);
    }
  }

  async signOut() {
    this.busy(true);
    this.leaving = true;
    try {
      await this.account.logout();
    } catch (error) {
      // Signed out here all the same; the server may keep the login until it expires.
      showError(this.error, `Signed out on this device, but the server was not told: ${describeAccountError(error)}`);
    } finally {
      this.leaving = false;
      this.busy(false);
    }
    this.username.focus();
  }

  /** @param {boolean} busy */
  busy(busy) {
    for (const button of this.buttons) button.disabled = busy;
  }

  /** @param {Account | null} who */
  render(who) {
    byId('signed-out').hidden = who !== null;
    byId('signed-in').hidden = who === null;
    byId('account-name').textContent = who ? who.display_name || who.username : '';
    if (who) {
      showError(this.error, null);
      this.hooks.onSignedIn(who);
    } else {
      if (!this.leaving) showError(this.error, describeAccountError(new SwitchboardError('unauthorized', 'signed out')));
      this.hooks.onSignedOut();
    }
  }
}
