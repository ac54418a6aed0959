// @ts-check
/**
 * The app's entry: the lobby (room, name, share code, invite link) and the switch to the call
 * view. A share code takes the guest to its room, through the room's lobby when it has one.
 * Beside it the account card (account.js, rooms.js): a signed-in owner's rooms and share codes,
 * and "join as host" with a token minted for them; guests need none of it.
 *
 * URL parameters: `?room=NAME` pre-fills the room (invite links); `&transport=ws|sse|poll` forces
 * a signaling transport (for testing); `&media=mesh|sfu|auto` has a host set the room's media when
 * it differs; `&autojoin=1` joins at once. A token minted elsewhere (for a
 * server without guest access) can be passed as `#token=JWT`: the fragment never reaches servers.
 */

import { AccountClient, SwitchboardError, redeemShareCode } from '../sdk/switchboard.js';
import { AccountCard } from './account.js';
import { Call, inviteLink } from './call.js';
import { byId, copyText } from './dom.js';
import { RoomsView } from './rooms.js';
import { describeJoinError } from './status.js';

const ROOM_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
const WORDS = ['amber', 'brisk', 'cedar', 'dune', 'ember', 'fjord', 'grove', 'harbor', 'indigo', 'juniper', 'kelp', 'lumen'];

/** @type {Call | null} */
let call = null;

const params = new URLSearchParams(location.search);
const hash = new URLSearchParams(location.hash.slice(1));
const transportParam = params.get('transport');
/** @type {'auto' | 'ws' | 'sse' | 'poll'} */
const transport =
  transportParam === 'ws' || transportParam === 'sse' || transportParam === 'poll' ? transportParam : 'auto';
const linkToken = hash.get('token');
const mediaParam = params.get('media');
/** @type {'mesh' | 'sfu' | 'auto' | null} */
const media = mediaParam === 'mesh' || mediaParam === 'sfu' || mediaParam === 'auto' ? mediaParam : null;

const roomInput = /** @type {HTMLInputElement} */ (byId('room-input'));
const nameInput = /** @type {HTMLInputElement} */ (byId('name-input'));
const codeInput = /** @type {HTMLInputElement} */ (byId('code-input'));
const inviteInput = /** @type {HTMLInputElement} */ (byId('invite-input'));
const mutedInput = /** @type {HTMLInputElement} */ (byId('join-muted'));
const joinButton = /** @type {HTMLButtonElement} */ (byId('join-button'));

function randomRoom() {
  const pick = () => WORDS[Math.floor(Math.random() * WORDS.length)];
  return `${pick()}-${pick()}-${Math.floor(100 + Math.random() * 900)}`;
}

function storedName() {
  try {
    return localStorage.getItem('switchboard.name') ?? '';
  } catch {
    return '';
  }
}

/** @param {string} name */
function storeName(name) {
  try {
    localStorage.setItem('switchboard.name', name);
  } catch {
    // private mode
  }
}

/** @param {string | null} message */
function lobbyError(message) {
  const el = byId('lobby-error');
  el.hidden = !message;
  el.textContent = message ?? '';
}

function updateInvite() {
  const room = roomInput.value.trim();
  inviteInput.value = ROOM_PATTERN.test(room) ? inviteLink(room) : '';
}

/** @param {boolean} inCall */
function showCall(inCall) {
  byId('lobby').hidden = inCall;
  byId('call').hidden = !inCall;
  byId('topbar-room').hidden = !inCall;
  byId('topbar-status').hidden = !inCall;
  document.title = inCall ? `${roomInput.value.trim()} · switchboard` : 'switchboard · video call';
}

/**
 * Redeems the share code typed, if any: the room, token and whether it leads through the lobby.
 * @returns {Promise<{room: string, token: string, lobby: boolean} | null>}
 */
async function redeemTyped() {
  const code = codeInput.value.trim();
  if (!code) return null;
  const name = nameInput.value.trim();
  const answer = await redeemShareCode({ code, name: name || undefined });
  codeInput.value = '';
  roomInput.value = answer.room;
  return { room: answer.room, token: answer.token, lobby: answer.lobby };
}

/**
 * Joins the room typed (with the share code typed, if any), or `given`: a room and a token minted
 * for it (an owner joining as host).
 * @param {{room: string, token: string} | null} [given]
 */
async function join(given = null) {
  let redeemed;
  try {
    if (given) {
      roomInput.value = given.room;
      codeInput.value = '';
      updateInvite();
      redeemed = { ...given, lobby: false };
    } else redeemed = await redeemTyped();
  } catch (error) {
    lobbyError(
      error instanceof SwitchboardError && error.code === 'not_found'
        ? 'This share code does not work: it is unknown, used up, expired or revoked.'
        : describeJoinError(error),
    );
    codeInput.focus();
    return;
  }
  const room = roomInput.value.trim();
  if (!ROOM_PATTERN.test(room)) {
    lobbyError('Room names are 1 to 64 letters, digits, or _ - . :');
    roomInput.focus();
    return;
  }
  const name = nameInput.value.trim();
  storeName(name);
  lobbyError(null);
  joinButton.disabled = true;
  joinButton.textContent = 'Joining…';
  const url = new URL(location.href);
  url.searchParams.set('room', room);
  url.searchParams.delete('autojoin');
  history.replaceState(null, '', url);
  byId('room-label').textContent = room;
  byId('chat-log').replaceChildren();
  const badge = byId('connection-badge');
  badge.dataset.state = 'connecting';
  badge.textContent = 'Connecting…';
  byId('banner').hidden = true;
  const current = new Call({
    room,
    name,
    transport,
    media,
    token: redeemed?.token ?? linkToken,
    lobby: redeemed?.lobby ?? false,
    muted: mutedInput.checked,
    onEnd: (reason) => {
      if (call !== current) return;
      call = null;
      showCall(false);
      lobbyError(reason);
      joinButton.disabled = false;
      joinButton.textContent = 'Join again';
      joinButton.focus();
    },
  });
  call = current;
  showCall(true);
  try {
    await current.start();
    byId('chat-input').focus();
  } catch (error) {
    if (call === current) {
      call = null;
      showCall(false);
      lobbyError(describeJoinError(error));
    }
    joinButton.disabled = false;
    joinButton.textContent = 'Join call';
  }
}

function wireCallControls() {
  const on = (/** @type {string} */ id, /** @type {(c: Call) => void} */ act) =>
    byId(id).addEventListener('click', () => call && act(call));
  on('mic-toggle', (c) => c.controls.toggleMic());
  on('cam-toggle', (c) => void c.controls.toggleCamera());
  on('screen-toggle', (c) => void c.controls.toggleScreen());
  on('leave', (c) => c.leave());
  on('copy-link', (c) => void c.copyInvite());
  on('settings-open', () => {
    void call?.devices.fill();
    /** @type {HTMLDialogElement} */ (byId('settings')).showModal();
  });
  byId('side-toggle').addEventListener('click', () => {
    const side = byId('side');
    const collapsed = side.classList.toggle('collapsed');
    byId('side-toggle').setAttribute('aria-expanded', String(!collapsed));
  });
  byId('layout-toggle').addEventListener('click', () => call?.stage.setLayout(call.stage.layout === 'grid' ? 'speaker' : 'grid'));
  byId('page-prev').addEventListener('click', () => call?.stage.turn(-1));
  byId('page-next').addEventListener('click', () => call?.stage.turn(1));
  byId('media-select').addEventListener('change', (e) => {
    const value = /** @type {HTMLSelectElement} */ (e.target).value;
    if (value === 'mesh' || value === 'sfu' || value === 'auto') void call?.hostControls.setMedia(value);
  });
  byId('mode-switch').addEventListener('change', (e) => {
    const checked = /** @type {HTMLInputElement} */ (e.target).checked;
    void call?.hostControls.setMode(checked);
  });
  byId('chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = /** @type {HTMLInputElement} */ (byId('chat-input'));
    call?.sendChat(input.value);
    input.value = '';
  });
  byId('camera-select').addEventListener('change', (e) => {
    void call?.devices.chooseCamera(/** @type {HTMLSelectElement} */ (e.target).value);
  });
  byId('mic-select').addEventListener('change', (e) => {
    void call?.devices.chooseMic(/** @type {HTMLSelectElement} */ (e.target).value);
  });
  byId('speaker-select').addEventListener('change', (e) => {
    void call?.devices.chooseSpeaker(/** @type {HTMLSelectElement} */ (e.target).value);
  });
}

/** The account card: sign in, then the account's rooms, whose "join as host" runs the call here. */
function wireAccount() {
  const account = new AccountClient();
  const rooms = new RoomsView(account, {
    name: () => nameInput.value.trim(),
    onJoin: (room, token) => void join({ room, token }),
  });
  const card = new AccountCard(account, {
    onSignedIn: () => void rooms.reload(),
    onSignedOut: () => rooms.clear(),
  });
  void card.restore();
}

function init() {
  const room = params.get('room');
  roomInput.value = room && ROOM_PATTERN.test(room) ? room : randomRoom();
  nameInput.value = params.get('name') ?? storedName();
  updateInvite();
  roomInput.addEventListener('input', updateInvite);
  byId('copy-invite').addEventListener('click', async () => {
    updateInvite();
    const ok = await copyText(inviteInput.value, inviteInput);
    byId('copy-invite').textContent = ok ? 'Copied' : 'Select';
    setTimeout(() => (byId('copy-invite').textContent = 'Copy'), 2000);
  });
  byId('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void join();
  });
  wireCallControls();
  wireAccount();
  if (params.get('autojoin') === '1') void join();
  else (room ? nameInput : roomInput).focus();
}

init();
