// The admin page: signs in with the control API (POST /v1/auth/login), keeps the access token in
// memory only (a reload signs out), and shows every stored room (an admin's GET /v1/rooms) with
// its live member count, its participants, and the two actions an operator needs in a hurry:
// remove a participant (DELETE .../participants/{peer}) and close a room (DELETE /v1/rooms/{room},
// which ends its call with `room_closed`); and, for an admin, the node that answers (GET /v1/node:
// its version, uptime and what it holds). Everything goes through the documented REST API
// (docs/api.md); the page has no powers of its own.

/** How often the live counts are read again, in ms. */
const REFRESH_MS = 5000;

/** @type {string | null} */
let token = null;
/** @type {string | null} */
let selected = null;
/** The account holds the admin grant (node information is for admins only). */
let admin = false;
/** @type {ReturnType<typeof setInterval> | undefined} */
let timer;

/** @param {string} id @returns {HTMLElement} */
function $(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`no #${id}`);
  return element;
}

/**
 * Calls the API with the access token; resolves to the JSON answer (null for 204), or rejects
 * with the error body's message.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const answer = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (answer.status === 204) return null;
  const json = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    if (answer.status === 401 && token) signOut();
    throw new Error(json?.error?.message ?? `${method} ${path}: ${answer.status}`);
  }
  return json;
}

/**
 * A table row of `cells` (text) and an optional button.
 * @param {string[]} cells
 * @param {{label: string, name: string, act: () => void} | null} action
 */
function row(cells, action) {
  const tr = document.createElement('tr');
  for (const text of cells) {
    const td = document.createElement('td');
    td.textContent = text;
    tr.append(td);
  }
  const td = document.createElement('td');
  if (action) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'danger';
    button.textContent = action.label;
    button.setAttribute('aria-label', action.name);
    button.addEventListener('click', (event) => {
      event.stopPropagation();
      action.act();
    });
    td.append(button);
  }
  tr.append(td);
  return tr;
}

/** Every stored room, a page at a time. @returns {Promise<any[]>} */
async function allRooms() {
  const rooms = [];
  let after = null;
  do {
    const query = after ? `?limit=100&after=${encodeURIComponent(after)}` : '?limit=100';
    const page = await api('GET', `/v1/rooms${query}`);
    rooms.push(...page.rooms);
    after = page.next;
  } while (after);
  return rooms;
}

/** @param {number} secs */
function uptime(secs) {
  if (secs < 60) return `${secs} s`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h ${Math.floor((secs % 3600) / 60)} min`;
  return `${Math.floor(secs / 86400)} d ${Math.floor((secs % 86400) / 3600)} h`;
}

/** One line about the node that answers (GET /v1/node). @param {any} n */
function describeNode(n) {
  const parts = [
    n.node ? `Node ${n.node}` : 'Single node',
    `version ${n.version}`,
    `up ${uptime(n.uptime_secs)}`,
    `${n.sessions} sessions (${n.attached} connected) in ${n.rooms} rooms`,
    n.database === 'postgres' ? 'PostgreSQL' : 'SQLite',
    `media ${n.media_mode}${n.sfu ? ', SFU on' : ', no SFU'}`,
  ];
  if (n.cluster) parts.push(n.cluster.fenced ? 'fenced' : n.cluster.reachable ? 'Redis reachable' : 'Redis unreachable');
  return parts.join(' · ');
}

/** @param {string} room */
function participantsPath(room) {
  return `/v1/rooms/${encodeURIComponent(room)}/participants`;
}

/** Reads the rooms and their live counts, and the selected room's participants. */
async function refresh() {
  const error = $('console-error');
  try {
    const rooms = await allRooms();
    // A room deleted between the list and its count has none: shown as a dash, not an error.
    const counts = await Promise.all(
      rooms.map((room) =>
        api('GET', participantsPath(room.id)).then(
          (p) => /** @type {number | null} */ (p.participants.length),
          () => null,
        ),
      ),
    );
    const body = /** @type {HTMLTableElement} */ ($('rooms')).tBodies[0];
    body.replaceChildren(
      ...rooms.map((room, i) => {
        const tr = row(
          [room.id, room.name, room.owner, room.media, room.lobby ? 'on' : 'off', String(counts[i] ?? '–')],
          { label: 'Close', name: `Close ${room.id}`, act: () => closeRoom(room.id) },
        );
        tr.dataset.room = room.id;
        if (room.id === selected) tr.classList.add('selected');
        tr.addEventListener('click', () => select(room.id));
        return tr;
      }),
    );
    const live = counts.reduce((/** @type {number} */ a, b) => a + (b ?? 0), 0);
    $('totals').textContent = `${rooms.length} rooms, ${live} in calls`;
    $('node').hidden = !admin;
    if (admin) $('node').textContent = describeNode(await api('GET', '/v1/node'));
    if (selected && !rooms.some((room) => room.id === selected)) selected = null;
    await showParticipants();
    error.textContent = '';
  } catch (e) {
    error.textContent = e instanceof Error ? e.message : String(e);
  }
}

/** @param {string} room */
async function select(room) {
  selected = room;
  await refresh();
}

/** Shows the selected room's participants, or hides the panel. */
async function showParticipants() {
  const panel = $('room');
  panel.hidden = selected === null;
  if (selected === null) return;
  const room = selected;
  $('room-id').textContent = room;
  const { participants } = await api('GET', participantsPath(room));
  const body = /** @type {HTMLTableElement} */ ($('participants')).tBodies[0];
  body.replaceChildren(
    ...participants.map((/** @type {any} */ p) =>
      row([p.peer, p.user, p.role, p.name ?? ''], {
        label: 'Remove',
        name: `Remove ${p.peer}`,
        act: () => kick(room, p.peer),
      }),
    ),
  );
}

/** @param {string} room @param {string} peer */
async function kick(room, peer) {
  await api('DELETE', `${participantsPath(room)}/${encodeURIComponent(peer)}`).catch(show);
  await refresh();
}

/** @param {string} room */
async function closeRoom(room) {
  if (!confirm(`Close room ${room}? Its call ends and the stored room is deleted.`)) return;
  await api('DELETE', `/v1/rooms/${encodeURIComponent(room)}`).catch(show);
  await refresh();
}

/** @param {unknown} e */
function show(e) {
  $('console-error').textContent = e instanceof Error ? e.message : String(e);
}

function signOut() {
  token = null;
  admin = false;
  // Gone at once: the next account to sign in may not hold the grant.
  $('node').hidden = true;
  $('node').textContent = '';
  selected = null;
  clearInterval(timer);
  $('console').hidden = true;
  $('login').hidden = false;
  $('sign-out').hidden = true;
  $('who').textContent = '';
}

/** @param {SubmitEvent} event */
async function signIn(event) {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.target);
  const data = new FormData(form);
  const error = $('login-error');
  try {
    const tokens = await api('POST', '/v1/auth/login', {
      username: String(data.get('username') ?? ''),
      password: String(data.get('password') ?? ''),
    });
    token = tokens.access_token;
    error.textContent = '';
    form.reset();
    $('who').textContent = tokens.account.username;
    admin = Boolean(tokens.account.admin);
    $('grant').hidden = admin;
    $('login').hidden = true;
    $('console').hidden = false;
    $('sign-out').hidden = false;
    await refresh();
    timer = setInterval(refresh, REFRESH_MS);
  } catch (e) {
    error.textContent = e instanceof Error ? e.message : String(e);
  }
}

$('login').addEventListener('submit', (event) => signIn(/** @type {SubmitEvent} */ (event)));
$('refresh').addEventListener('click', () => refresh());
$('sign-out').addEventListener('click', signOut);
