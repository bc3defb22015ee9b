// wschat's web client: the DOM and the WebSocket around chat.js's logic.
// Everything from the network is shown with textContent, never as HTML.

import {
  Timeline, Outbox, backoffDelay, newId, nameKey, retryAfterMs,
  presenceLines, leaveLine, actionOf, mentions, clockOptions, onlineAfter,
} from './chat.js';
import { followerOf } from './follow.js';
import { el } from './dom.js';
import { SUBPROTOCOLS } from './rooms.js';
import { RoomsView } from './rooms-ui.js';

/** localStorage: the name and its secret on this server (one origin, one server). */
const LOGIN_KEY = 'wschat.login';
/** sessionStorage: what is typed in the message field, across a reload. */
const DRAFT_KEY = 'wschat.draft';
/** Silent this long while online: ask for the user list, which also proves the link. */
const KEEPALIVE_IDLE_MS = 30000;
/** That question unanswered this long: the connection is dead. */
const KEEPALIVE_TIMEOUT_MS = 10000;
/** Online this long: the next drop starts the backoff from the beginning again. */
const STABLE_AFTER_MS = 10000;
/** The server does not confirm a logout within this: log out here anyway. */
const LOGOUT_TIMEOUT_MS = 5000;
/** Presence changes are followed by one `listUsers` after this quiet time. */
const LIST_DEBOUNCE_MS = 300;
/** A `listUsers` refused (not for its rate) is asked again after this. */
const LIST_RETRY_MS = 5000;

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'), me: $('me'), meName: $('me-name'), logout: $('logout'),
  logoutError: $('logout-error'), banner: $('banner'), bannerText: $('banner-text'),
  retry: $('retry'), joinView: $('join-view'), joinForm: $('join-form'), name: $('name'),
  nameError: $('name-error'), chatView: $('chat-view'), log: $('log'), outbox: $('outbox'),
  sendForm: $('send-form'), message: $('message'), messageError: $('message-error'),
  online: $('online'), onlineCount: $('online-count'), newMessages: $('new-messages'),
};

// --- state ---------------------------------------------------------------

/**
 * 'out' (no login wanted), 'connecting', 'loggingIn', 'online', 'waiting'
 * (to reconnect), 'refused' (the server refuses this page's origin).
 */
let phase = 'out';
/** The login we are after ({ name, secret }), null once logged out. */
let want = null;
/** Our name as the server shows it, once logged in. */
let me = null;
let ws = null;
let loginId = null;
/** The `loginMessage` that the `history` after it completes. */
let accepted = null;
/** What arrived live while logging in, shown after the catch-up. */
let held = [];
let hasBeenOnline = false;
let failures = 0;
let onlineSince = 0;
let lastHeard = 0;
let probe = null;
let logoutId = null;
let logoutTimer = null;
let retryAt = 0;
let retryTimer = null;
let tickTimer = null;
let pumpTimer = null;
let listTimer = null;
/** The ids of `listUsers` asked and not yet answered. */
const listIds = new Set();
/** What the message field's error is about: 'field' (what was typed) or 'rate' (the outbox). */
let messageErrorKind = null;
let timeline = new Timeline();
let outbox = new Outbox();
/** Who is online as last shown, and whether that was this connection's `userList`. */
let onlineUsers = [];
let onlineKnown = false;
/** Counts connection attempts, so that a late answer about an earlier one is ignored. */
let attempt = 0;

// --- storage (a browser may refuse it: then nothing is remembered) --------

function storedLogin() {
  try {
    const saved = JSON.parse(localStorage.getItem(LOGIN_KEY));
    if (saved && typeof saved.name === 'string' && typeof saved.secret === 'string') return saved;
  } catch { /* nothing usable stored */ }
  return null;
}

function storeLogin(name, secret) {
  try { localStorage.setItem(LOGIN_KEY, JSON.stringify({ name, secret })); } catch { /* kept in memory only */ }
}

function forgetLogin() {
  try { localStorage.removeItem(LOGIN_KEY); } catch { /* nothing to forget */ }
}

function session(op, value) {
  try {
    if (op === 'get') return sessionStorage.getItem(DRAFT_KEY) || '';
    if (value) sessionStorage.setItem(DRAFT_KEY, value);
    else sessionStorage.removeItem(DRAFT_KEY);
  } catch { /* no draft kept */ }
  return '';
}

// --- rendering -----------------------------------------------------------

/** "6:37 PM" on a 12-hour clock (no leading zero), "18:37" on a 24-hour one. */
const CLOCK = new Intl.DateTimeFormat([], clockOptions(
  new Intl.DateTimeFormat([], { hour: 'numeric' }).resolvedOptions().hourCycle,
));

function timeOf(ms) {
  const at = new Date(Number.isFinite(ms) ? ms : Date.now());
  const node = el('time', '', CLOCK.format(at));
  node.dateTime = at.toISOString();
  node.title = at.toLocaleString();
  return node;
}

/** A name's colour: the same hue for the same name everywhere. */
function hueOf(name) {
  let h = 0;
  for (const c of nameKey(name)) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
}

/**
 * Each log follows new messages while at its end (see follow.js); `ui.log`
 * is the log being written to (rooms-ui.js points it at a room's).
 */
const append = (node) => followerOf(ui.log, ui.newMessages).append(node);

/** Messages of one person within this long of each other share one name line. */
const GROUP_MS = 5 * 60 * 1000;

function showText(message) {
  const name = String(message.username);
  const text = String(message.message);
  const own = me !== null && name === me;
  const action = actionOf(name, text);
  const item = el('li', own ? 'msg own' : 'msg');
  const previous = ui.log.lastElementChild;
  const at = Number(message.timestamp);
  // Highlighted as chat-cli does: someone else's message (or action) that names us.
  const mention = !own && me !== null && mentions(action ?? text, me);
  if (mention) item.classList.add('mention');
  const said = (words) => (mention ? el('mark', '', words) : words);
  if (action !== null) {
    // `/me waves`: "* bob waves", the name in the line, never grouped.
    item.classList.add('action');
    item.dataset.name = name;
    item.dataset.at = String(at);
    const who = el('span', 'who', name);
    who.style.setProperty('--hue', String(hueOf(name)));
    if (own) who.append(el('span', 'you', ' (you)'));
    const star = el('span', 'star', '* ');
    star.setAttribute('aria-hidden', 'true');
    const line = el('p', 'text');
    line.append(star, who, ' ', said(action));
    item.append(timeOf(message.timestamp), line);
    append(item);
    return;
  }
  if (previous && previous.classList.contains('msg') && !previous.classList.contains('action')
      && previous.dataset.name === name
      && previous.classList.contains('own') === own && Math.abs(at - Number(previous.dataset.at)) < GROUP_MS) {
    // The name is still there for a screen reader; the eye sees one group.
    item.classList.add('cont');
  }
  item.dataset.name = name;
  item.dataset.at = String(at);
  item.append(timeOf(message.timestamp));
  const who = el('span', 'who', name);
  who.style.setProperty('--hue', String(hueOf(name)));
  if (own) who.append(el('span', 'you', ' (you)'));
  const line = el('p', 'text');
  line.append(said(text));
  item.append(who, line);
  append(item);
}

/** A quiet line: joins, leaves, and what the page itself has to say. */
function notice(text, kind = '', at = Date.now()) {
  const item = el('li', kind ? `notice ${kind}` : 'notice');
  item.append(timeOf(at), el('span', '', text));
  append(item);
}

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function showBanner(text) {
  ui.bannerText.textContent = text;
  ui.banner.hidden = false;
}

function showJoinView(error = '', hint = '') {
  ui.chatView.hidden = true;
  ui.me.hidden = true;
  ui.joinView.hidden = false;
  ui.nameError.textContent = error || hint;
  ui.nameError.className = error ? 'error' : 'hint';
  if (error) ui.name.setAttribute('aria-invalid', 'true');
  else ui.name.removeAttribute('aria-invalid');
  ui.name.focus();
}

function showChatView(name) {
  ui.meName.textContent = name;
  ui.me.hidden = false;
  ui.logoutError.textContent = '';
  const wasHidden = ui.chatView.hidden;
  ui.joinView.hidden = true;
  ui.chatView.hidden = false;
  if (wasHidden) ui.message.focus();
}

function renderOutbox() {
  ui.outbox.replaceChildren();
  for (const item of outbox.items) {
    const row = el('li');
    row.append(el('span', 'text', item.text));
    if (item.state === 'unknown') {
      row.append(el('span', 'state', 'may not have been delivered'));
      const again = el('button', 'quiet', 'Send again');
      again.type = 'button';
      again.addEventListener('click', () => { outbox.retry(item); renderOutbox(); pump(); });
      const drop = el('button', 'quiet', 'Discard');
      drop.type = 'button';
      drop.addEventListener('click', () => { outbox.remove(item); renderOutbox(); });
      row.append(again, drop);
    } else {
      const waiting = phase !== 'online' ? 'will be sent when the connection is back' : 'sending…';
      row.append(el('span', 'state', item.state === 'unconfirmed' ? 'checking whether it arrived…' : waiting));
    }
    ui.outbox.append(row);
  }
  ui.outbox.hidden = outbox.items.length === 0;
}

function renderOnline(users) {
  onlineUsers = users;
  ui.online.replaceChildren();
  ui.online.classList.remove('stale');
  for (const user of users) {
    if (!user || typeof user.username !== 'string') continue;
    const row = el('li', '', user.username);
    if (user.username === me) row.append(el('span', 'you', ' (you)'));
    if (Number.isSafeInteger(user.connections) && user.connections > 1) {
      row.append(el('span', 'devices', ` · ${user.connections} devices`));
    }
    ui.online.append(row);
  }
  ui.onlineCount.textContent = `(${ui.online.children.length})`;
}

// --- the connection ------------------------------------------------------

function send(frame) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
}

function connect() {
  clearTimeout(retryTimer);
  clearInterval(tickTimer);
  phase = 'connecting';
  attempt += 1;
  setStatus('connecting', 'Connecting…');
  if (!ui.banner.hidden) ui.bannerText.textContent = 'Connecting…';
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(`${scheme}//${location.host}/`, SUBPROTOCOLS);
  ws = socket;
  // Events of a socket we have given up on are ignored.
  socket.onopen = () => { if (ws === socket) opened(); };
  socket.onmessage = (event) => { if (ws === socket) received(event.data); };
  socket.onclose = (event) => { if (ws === socket) closed(event); };
}

function opened() {
  phase = 'loggingIn';
  setStatus('connecting', want && hasBeenOnline ? `Joining again as ${want.name}…` : 'Joining…');
  lastHeard = Date.now();
  loginId = newId();
  const login = { type: 'login', id: loginId, username: want.name };
  if (want.secret) login.secret = want.secret;
  send({ ...login, ...timeline.loginFields(), ...roomsView.loginFields(ws.protocol) });
}

/** Gives up on the current socket (dead, or no longer wanted). */
function dropSocket(code = 1000, reason = '') {
  const socket = ws;
  ws = null;
  probe = null;
  if (socket) {
    try { socket.close(code, reason); } catch { /* already closing */ }
  }
}

function closed(event) {
  ws = null;
  const neverOpened = phase === 'connecting';
  let why = 'The connection was lost.';
  if (neverOpened) why = "Can't reach the server.";
  else if (event.code === 1001) why = 'The server is restarting.';
  lostConnection(why);
  if (neverOpened && want !== null) checkRefused(attempt);
}

/**
 * A WebSocket that never opened. The browser does not tell why: the 403
 * of a server that refuses this page's origin (--allowed-origins) looks
 * like no server at all. So ask it over plain HTTP, where a 403 shows;
 * refused, no retrying in a loop ("Reconnect now" tries once more).
 */
async function checkRefused(which) {
  let answer;
  try {
    answer = await fetch(`/origin-check?origin=${encodeURIComponent(location.origin)}`, { cache: 'no-store' });
  } catch {
    return; // nothing there: keep trying as before
  }
  if (answer.status !== 403 || which !== attempt || phase !== 'waiting') return;
  clearTimeout(retryTimer);
  clearInterval(tickTimer);
  phase = 'refused';
  setStatus('out', 'Refused by the server');
  showBanner(`The server refused this page: it does not accept connections from pages at ${location.origin} ` +
    '(its allowed origins). Ask its operator, then try again.');
}

function lostConnection(why) {
  const wasOnline = phase === 'online';
  onlineKnown = false;
  probe = null;
  listIds.clear();
  accepted = null;
  held = [];
  outbox.lost();
  renderOutbox();
  // Who was online is no longer known.
  ui.online.classList.add('stale');
  ui.onlineCount.textContent = '(offline)';
  if (want === null) {
    phase = 'out';
    setStatus('out', 'Not connected');
    return;
  }
  if (wasOnline && Date.now() - onlineSince >= STABLE_AFTER_MS) failures = 0;
  if (wasOnline) notice(`${why} Reconnecting…`, 'warn');
  scheduleReconnect(backoffDelay(failures), why);
  failures += 1;
}

function scheduleReconnect(delay, why) {
  phase = 'waiting';
  retryAt = Date.now() + delay;
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, delay);
  const tick = () => {
    const seconds = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
    const text = failures > 3
      ? `Can't reach the server. Trying again in ${seconds} s…`
      : `${why} Reconnecting in ${seconds} s…`;
    showBanner(text);
  };
  // The status is a live region: it changes once, the countdown is in the banner.
  setStatus('waiting', 'Reconnecting…');
  tick();
  clearInterval(tickTimer);
  tickTimer = setInterval(tick, 1000);
  renderOutbox();
}

/** "Reconnect now", or the browser saying it is online again: no more waiting. */
function reconnectNow() {
  if (phase !== 'waiting' && phase !== 'connecting' && phase !== 'refused') return;
  dropSocket();
  connect();
}

// --- what the server says ------------------------------------------------

function received(data) {
  lastHeard = Date.now();
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    console.warn('ignored a frame that is not JSON', data);
    return;
  }
  if (!frame || typeof frame !== 'object') return;
  if (roomsView.take(frame)) return;
  if (probe && frame.type === 'userList' && frame.replyTo === probe.id) probe = null;
  if (frame.type === 'userList') listIds.delete(frame.replyTo);
  switch (frame.type) {
    case 'loginMessage':
      if (phase === 'loggingIn') accepted = frame;
      break;
    case 'history':
      if (phase === 'loggingIn' && accepted) caughtUp(frame);
      break;
    case 'errorMessage':
      refused(frame);
      break;
    case 'userList':
      if (Array.isArray(frame.users)) {
        onlineKnown = true;
        renderOnline(frame.users);
      }
      break;
    case 'textBroadcast':
    case 'loginBroadcast':
    case 'logoutBroadcast':
    case 'presence':
      if (phase === 'loggingIn') held.push(frame);
      else live(frame);
      break;
    default:
      break; // a newer server's message: nothing to show
  }
}

/** Something said now, to everyone. */
function live(frame) {
  switch (frame.type) {
    case 'textBroadcast': {
      if (!timeline.fresh(frame.seq)) return;
      // Whoever talks is online, even before the notice of their join
      // (held back by the server's presence budget) arrives.
      noticed({ joined: [frame.username] });
      showText(frame);
      if (typeof frame.replyTo === 'string' && outbox.acknowledged(frame.replyTo)) {
        if (messageErrorKind === 'rate' && outbox.items.length === 0) setMessageError(null, '');
        renderOutbox();
        pump();
      }
      break;
    }
    case 'loginBroadcast':
      if (typeof frame.username !== 'string' || frame.username === me) return;
      notice(`${frame.username} joined`, '', frame.timestamp);
      noticed({ joined: [frame.username] });
      refreshOnline();
      break;
    case 'logoutBroadcast':
      if (typeof frame.username !== 'string') return;
      if (frame.username === me) {
        if (frame.reason === 'logout') loggedOut(logoutId ? '' : 'You were logged out from another tab or device.');
        return;
      }
      notice(leaveLine(frame.username, frame.reason), '', frame.timestamp);
      noticed({ left: [frame.username] });
      refreshOnline();
      break;
    case 'presence':
      for (const line of presenceLines(frame)) notice(line, '', frame.timestamp);
      noticed(frame);
      refreshOnline();
      break;
    default:
      break;
  }
}

/**
 * Shows a join or leave in the Online list at once (the `listUsers` it
 * prompts answers only later), once this connection's list is known.
 */
function noticed(change) {
  if (!onlineKnown) return;
  const users = onlineAfter(onlineUsers, change);
  if (users.length !== onlineUsers.length || users.some((u, i) => u !== onlineUsers[i])) renderOnline(users);
}

/** The `history` after `loginMessage`: the login is complete. */
function caughtUp(history) {
  const name = String(accepted.username);
  const secret = String(accepted.secret);
  accepted = null;
  const returning = hasBeenOnline;
  me = name;
  want = { name, secret };
  storeLogin(name, secret);
  phase = 'online';
  hasBeenOnline = true;
  onlineSince = Date.now();
  clearInterval(tickTimer);
  clearTimeout(retryTimer);
  ui.banner.hidden = true;
  setStatus('online', 'Online');
  showChatView(name);

  const caught = timeline.history(history);
  ui.log.setAttribute('aria-busy', 'true');
  if (returning) notice('Back online.');
  if (caught.reset === 'epoch') {
    notice('The server started a new message history: earlier messages are no longer held there.', 'warn');
  } else if (caught.reset === 'restart') {
    notice('The server restarted and no longer holds earlier messages: some may have been missed.', 'warn');
  } else if (caught.missed) {
    notice('Some messages were missed while you were away: the server no longer holds them.', 'warn');
  }
  for (const message of caught.messages) showText(message);
  if (!returning) notice(`You joined as ${name}.`);
  const own = caught.messages.filter((m) => m.username === name).map((m) => String(m.message));
  const settled = outbox.settle(own, history.complete !== false);
  for (const item of settled.resent) {
    notice(`The server never got "${item.text}" before the connection dropped: sending it again.`);
  }
  for (const item of settled.unknown) {
    notice(`The connection dropped before the server confirmed "${item.text}", and the server no ` +
      'longer holds the messages of that time: it may not have been delivered.', 'error');
  }
  const meanwhile = held;
  held = [];
  for (const frame of meanwhile) {
    // Our own name's logout, heard before our login was answered, came before it.
    if (frame.type === 'logoutBroadcast' && frame.username === name) continue;
    live(frame);
  }
  ui.log.setAttribute('aria-busy', 'false');
  followerOf(ui.log, ui.newMessages).toEnd();
  renderOutbox();
  refreshOnline(0);
  pump();
}

function refused(frame) {
  const said = typeof frame.description === 'string' && frame.description
    ? frame.description : `the server refused it (${frame.error})`;
  const description = said[0].toUpperCase() + said.slice(1);
  const replyTo = frame.replyTo;
  if (replyTo !== undefined && replyTo === loginId && phase === 'loggingIn') {
    loginRefused(frame.error, description);
  } else if (replyTo !== undefined && outbox.inFlight(replyTo)) {
    const item = outbox.refused(replyTo, frame.error, description, Date.now());
    if (frame.error === 'rateLimited') {
      setMessageError('rate', `${description} (it will be sent again by itself)`);
    } else {
      setMessageError('field', `Not sent: ${description}`);
      // Give the refused text back to edit, unless something else is being typed.
      if (!ui.message.value) { ui.message.value = item.text; session('set', item.text); grow(); }
    }
    renderOutbox();
    pump();
  } else if (replyTo !== undefined && replyTo === logoutId) {
    ui.logoutError.textContent = description;
  } else if (listIds.delete(replyTo)) {
    // The Online list is asked for again later; nothing the user did.
    if (probe && replyTo === probe.id) probe = null;
    // Any other refusal (a cluster's store unreachable) is asked again too:
    // until answered, whoever joined meanwhile would be missing.
    refreshOnline(frame.error === 'rateLimited' ? retryAfterMs(description) : LIST_RETRY_MS);
  } else {
    notice(description, 'error');
  }
}

function loginRefused(error, description) {
  if (error === 'rateLimited') {
    // Not a refusal of the name: try again when the server allows it.
    dropSocket();
    const wait = retryAfterMs(description);
    if (ui.chatView.hidden) ui.nameError.textContent = `${description}; trying again by itself.`;
    scheduleReconnect(wait, 'The server asked to wait.');
    return;
  }
  const name = want ? want.name : '';
  const saved = storedLogin();
  if (saved && nameKey(saved.name) === nameKey(name)) forgetLogin();
  want = null;
  me = null;
  phase = 'out';
  dropSocket();
  setStatus('out', 'Not connected');
  ui.banner.hidden = true;
  ui.name.value = name;
  showJoinView(description);
}

// --- online list and keepalive --------------------------------------------

function refreshOnline(delay = LIST_DEBOUNCE_MS) {
  clearTimeout(listTimer);
  listTimer = setTimeout(() => {
    if (phase !== 'online') return;
    const id = newId();
    listIds.add(id);
    send({ type: 'listUsers', id });
  }, delay);
}

setInterval(() => {
  if (phase !== 'online') return;
  const now = Date.now();
  if (probe && now - probe.at > KEEPALIVE_TIMEOUT_MS) {
    // No answer: the connection is dead, whatever the browser thinks.
    dropSocket(4000, 'no answer');
    lostConnection('The connection stopped answering.');
  } else if (!probe && now - lastHeard > KEEPALIVE_IDLE_MS) {
    probe = { id: newId(), at: now };
    listIds.add(probe.id);
    send({ type: 'listUsers', id: probe.id });
  }
}, 2000);

// --- what the user does --------------------------------------------------

/** Sends the next message that waits, if the connection allows. */
function pump() {
  clearTimeout(pumpTimer);
  if (phase !== 'online') return;
  const now = Date.now();
  const item = outbox.next(now);
  if (item) {
    send(outbox.send(item));
    renderOutbox();
    return;
  }
  const due = outbox.dueAt();
  if (due !== null && due > now && !outbox.items.some((i) => i.state === 'sent')) {
    pumpTimer = setTimeout(pump, due - now);
  }
}

function join(name) {
  const saved = storedLogin();
  const secret = saved && nameKey(saved.name) === nameKey(name) ? saved.secret : undefined;
  if (phase === 'connecting' || phase === 'loggingIn') return; // already on its way
  want = { name, secret };
  failures = 0;
  ui.nameError.textContent = '';
  ui.name.removeAttribute('aria-invalid');
  connect();
}

function logout() {
  ui.logoutError.textContent = '';
  if (phase === 'online') {
    logoutId = newId();
    send({ type: 'logout', id: logoutId });
    clearTimeout(logoutTimer);
    logoutTimer = setTimeout(() => loggedOut(''), LOGOUT_TIMEOUT_MS);
  } else {
    loggedOut('You were offline: the server frees your name once it has been away a while.');
  }
}

/** Logged out (confirmed, or given up waiting): forget the name and its secret. */
function loggedOut(hint) {
  clearTimeout(logoutTimer);
  clearTimeout(retryTimer);
  clearInterval(tickTimer);
  logoutId = null;
  const name = me || (want && want.name) || '';
  want = null;
  me = null;
  phase = 'out';
  forgetLogin();
  dropSocket();
  timeline = new Timeline();
  outbox = new Outbox();
  hasBeenOnline = false;
  roomsView.reset();
  setMessageError(null, '');
  ui.log.replaceChildren();
  ui.online.replaceChildren();
  onlineUsers = [];
  onlineKnown = false;
  ui.onlineCount.textContent = '';
  renderOutbox();
  ui.banner.hidden = true;
  setStatus('out', 'Not connected');
  ui.name.value = name;
  showJoinView('', hint || `Logged out: "${name}" is free for anyone to take.`);
}

/** The error under the message field; `kind` null clears it. */
function setMessageError(kind, text) {
  messageErrorKind = kind;
  ui.messageError.textContent = text;
  if (kind === 'field') ui.message.setAttribute('aria-invalid', 'true');
  else ui.message.removeAttribute('aria-invalid');
}

function grow() {
  const box = ui.message;
  box.style.height = 'auto';
  box.style.height = `${box.scrollHeight + 2}px`;
}

ui.joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = ui.name.value.trim();
  if (!name) {
    ui.nameError.className = 'error';
    ui.nameError.textContent = 'Type a name first.';
    ui.name.setAttribute('aria-invalid', 'true');
    ui.name.focus();
    return;
  }
  join(name);
});

ui.sendForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.message.value;
  if (!text.trim()) {
    setMessageError('field', 'The message is empty.');
    ui.message.focus();
    return;
  }
  if (messageErrorKind === 'field') setMessageError(null, '');
  const command = roomsView.command(text);
  if (command === 'error') {
    ui.message.focus();
    return;
  }
  ui.message.value = '';
  session('set', '');
  grow();
  if (command === 'done') {
    ui.message.focus();
    return;
  }
  outbox.add(text, roomsView.target());
  renderOutbox();
  pump();
  ui.message.focus();
});

ui.message.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.sendForm.requestSubmit();
  }
});

ui.message.addEventListener('input', () => {
  session('set', ui.message.value);
  if (messageErrorKind === 'field') setMessageError(null, '');
  grow();
});

ui.logout.addEventListener('click', logout);
ui.retry.addEventListener('click', reconnectNow);
window.addEventListener('online', reconnectNow);

// --- rooms (v3) -----------------------------------------------------------

/** The server broadcast what the outbox sent under `replyTo` (in a room): delivered. */
function acknowledge(replyTo) {
  if (!outbox.acknowledged(replyTo)) return;
  if (messageErrorKind === 'rate' && outbox.items.length === 0) setMessageError(null, '');
  renderOutbox();
  pump();
}

const roomsView = new RoomsView({
  ui, showText, notice, send, newId, acknowledge,
  say(text, room) { outbox.add(text, room); renderOutbox(); pump(); },
  unconfirmedRooms: () => outbox.unconfirmedRooms(),
  settle(room, own, complete) {
    const settled = outbox.settle(own, complete, room);
    renderOutbox();
    pump();
    return settled;
  },
  fieldError(text) { setMessageError('field', text); },
  phase: () => phase,
});

// --- start ---------------------------------------------------------------

ui.message.value = session('get');
const saved = storedLogin();
if (saved) {
  // A return visit: the same name back, without asking.
  want = { name: saved.name, secret: saved.secret };
  ui.name.value = saved.name;
  showChatView(saved.name);
  connect();
} else {
  showJoinView();
}
