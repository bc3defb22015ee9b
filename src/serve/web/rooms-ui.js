// The page's rooms and direct messages (protocol v3): the lists "Rooms" and
// "Direct messages", "Join a room", the open room's topic and "Members",
// the slash commands, the unread counts (in the lists and the title) and
// the read markers. app.js hands it every frame first (`take`) and what is
// typed (`command`); the lobby stays app.js's (its log is `ui.log`). A
// server that selects v2 (a cluster node) gets none of this: lobby only.

import { el, button } from './dom.js';
import {
  LOBBY, Rooms, roomOf, roomKey, isDm, parseCommand, noticeLine, membershipLine,
  label, asRoom, readableRefusal,
} from './rooms.js';
import { presenceLines, mentions } from './chat.js';
import { drawMembers } from './members-ui.js';

/** localStorage: the room that was open, per name ({ name, room }). */
const OPEN_ROOM_KEY = 'wschat.room';
/** Reading is told to the server this long after it happened (one `read` for a burst). */
const READ_DELAY_MS = 250;
/** Joins, leaves and acts are followed by one `listMembers` after this quiet time. */
const MEMBERS_DELAY_MS = 200;

const $ = (id) => document.getElementById(id);

/**
 * `hooks`: { ui, showText(frame), notice(text, kind, at), send(frame),
 * newId(), acknowledge(replyTo), say(text, room), fieldError(text),
 * phase() }, all app.js's.
 */
export class RoomsView {
  constructor(hooks) {
    this.hooks = hooks;
    this.rooms = new Rooms();
    this.enabled = false;
    this.me = null;
    /** Each room's log but the lobby's (which is `ui.log`), by room key. */
    this.logs = new Map();
    /** Requests sent and not answered: id → { kind, room }. */
    this.pending = new Map();
    /** Room frames that came while logging in, shown once the lobby is caught up. */
    this.held = [];
    /** Whether the remembered room was opened since the page loaded. */
    this.restored = false;
    this.loggedInBefore = false;
    this.readTimer = null;
    this.membersTimer = null;
    /** After a reconnect with messages in flight in rooms: their rooms' own lines caught up. */
    this.catchUp = null;
    this.dom = {
      chat: $('chat-view'), nav: $('rooms-nav'), rooms: $('rooms'), dms: $('dms'),
      dmsEmpty: $('dms-empty'), joinForm: $('join-room-form'), joinField: $('join-room'),
      joinError: $('join-room-error'), head: $('room-head'), toggle: $('rooms-toggle'),
      name: $('room-name'), topic: $('room-topic'), membersSection: $('members-section'),
      members: $('members'), membersCount: $('members-count'),
    };
    this.wire();
  }

  // --- what app.js asks ---------------------------------------------------

  /** Fields of the next `login`: the rooms to catch up on (v3 only). */
  loginFields(protocol) {
    if (protocol !== 'wschat.v3') {
      this.disable();
      // No rooms on this server now: what was in flight in one cannot be told.
      for (const room of this.hooks.unconfirmedRooms()) this.settled(room, this.hooks.settle(room, [], false));
      return {};
    }
    return this.enabled ? { rooms: this.rooms.loginRooms() } : {};
  }

  /** Where a typed line goes: the open room, or undefined for the lobby (as v2). */
  target() {
    return this.enabled && this.rooms.current !== LOBBY ? this.rooms.current : undefined;
  }

  /** Logged out: nothing of this name stays. */
  reset() {
    for (const log of this.logs.values()) log.parentElement.remove();
    this.logs.clear();
    this.rooms = new Rooms();
    this.pending.clear();
    this.held = [];
    this.catchUp = null;
    this.loggedInBefore = false;
    this.restored = false;
    try { localStorage.removeItem(OPEN_ROOM_KEY); } catch { /* nothing kept */ }
    this.disable();
  }

  /**
   * A line typed in the message field: undefined when it is to be said as
   * it is, 'done' when it was a command, 'error' when it was one that is
   * wrong (said under the field; the line stays to edit).
   */
  command(text) {
    const parsed = parseCommand(text, this.rooms.current);
    if (!parsed) return undefined;
    if (!this.enabled) {
      this.hooks.fieldError('This server has no rooms (it speaks protocol v2): only the lobby.');
      return 'error';
    }
    if (parsed.error) {
      this.hooks.fieldError(parsed.error);
      return 'error';
    }
    if (parsed.open) {
      this.open(parsed.open);
    } else if (parsed.say) {
      this.hooks.say(parsed.say.text, parsed.say.room);
    } else if (parsed.show === 'names') {
      this.request({ type: 'listMembers', room: this.rooms.current }, 'names');
    } else if (parsed.show === 'rooms') {
      this.request({ type: 'listRooms' }, 'rooms');
    } else if (parsed.show === 'unread') {
      this.noticeIn(this.rooms.current, this.rooms.unreadLine());
    } else if (parsed.show === 'topic') {
      const entry = this.rooms.get(this.rooms.current);
      const room = this.rooms.current;
      this.noticeIn(room, entry && entry.topic ? `The topic of ${room}: ${entry.topic}` : `${room} has no topic`);
    } else if (parsed.request.type === 'join' && this.rooms.get(parsed.request.room)?.role) {
      this.open(this.rooms.get(parsed.request.room).room);
    } else {
      this.request(parsed.request, parsed.request.type === 'join' ? 'join' : 'command');
    }
    return 'done';
  }

  /** Every frame, before app.js: true when it was a room's (app.js does nothing more). */
  take(frame) {
    if (frame.type === 'loginMessage' && typeof frame.username === 'string') this.me = frame.username;
    if (frame.type === 'rooms') {
      this.loggedIn(frame);
      return true;
    }
    if (!this.enabled) return false;
    const lobby = roomOf(frame) === LOBBY;
    if (frame.type === 'errorMessage') {
      // app.js shows the others (a refused message: "Not sent: …"), as a person reads them.
      if (typeof frame.description === 'string') frame.description = readableRefusal(frame.description);
      return this.refused(frame);
    }
    if (frame.type === 'history' && lobby) {
      // The lobby's catch-up completes the login (app.js): room frames held meanwhile follow it.
      if (this.held.length) setTimeout(() => this.flush(), 0);
      return false;
    }
    const ours = ['notice', 'member', 'membership', 'roomList', 'memberList', 'readMarker'];
    const room = ours.includes(frame.type) || (!lobby && ['history', 'textBroadcast', 'presence'].includes(frame.type));
    if (room && this.hooks.phase() === 'loggingIn') {
      this.held.push(frame);
      return true;
    }
    if (this.hooks.phase() === 'online') this.flush();
    if (!room) {
      if (frame.type === 'textBroadcast') this.lobbyText(frame);
      // The lobby's joins and leaves are v2's: its members change with them.
      if (['loginBroadcast', 'logoutBroadcast', 'presence'].includes(frame.type)) this.refreshMembers(LOBBY);
      return false;
    }
    this.roomFrame(frame);
    return true;
  }

  // --- frames -------------------------------------------------------------

  flush() {
    const held = this.held;
    this.held = [];
    for (const frame of held) this.roomFrame(frame);
  }

  roomFrame(frame) {
    const room = roomOf(frame);
    switch (frame.type) {
      case 'history': {
        const asked = this.pending.get(frame.replyTo);
        this.pending.delete(frame.replyTo);
        // A joined room's history, answered after a live message came: it goes before it.
        const live = asked && asked.kind === 'history' && this.rooms.get(room)?.seen != null;
        if (asked && (asked.kind === 'older' || live)) this.showOlder(room, frame);
        else this.history(room, frame);
        break;
      }
      case 'textBroadcast': this.text(room, frame); break;
      case 'notice': this.moderated(room, frame); break;
      case 'member': this.member(room, frame); break;
      case 'presence':
        for (const line of presenceLines(frame)) this.noticeIn(room, line, '', frame.timestamp);
        this.refreshMembers(room);
        break;
      case 'membership': this.membership(frame); break;
      case 'readMarker':
        this.rooms.marker(room, frame.seq);
        this.render();
        break;
      case 'roomList': this.roomList(frame); break;
      case 'memberList': this.memberList(frame); break;
      default: break;
    }
  }

  /** The `rooms` answering a login: every room and DM of the name, and what changed meanwhile. */
  loggedIn(frame) {
    this.enable();
    const states = Array.isArray(frame.rooms) ? frame.rooms : [];
    for (const state of states) this.rooms.update(state);
    const changes = Array.isArray(frame.changes) ? frame.changes : [];
    for (const change of changes) {
      if (!change || typeof change.room !== 'string') continue;
      if (['left', 'kicked', 'banned'].includes(change.change)) this.forget(change.room);
      // On the first login every room is "joined": nothing to tell.
      if (this.loggedInBefore || change.change === 'invited') {
        this.noticeIn(LOBBY, membershipLine(change), change.change === 'joined' ? '' : 'warn');
      }
    }
    this.loggedInBefore = true;
    // Messages in flight in rooms when the connection dropped: each room's
    // catch-up tells whether they arrived; a listRooms answered after them
    // says that every catch-up has come.
    const waiting = this.hooks.unconfirmedRooms();
    if (waiting.length) {
      this.catchUp = { rooms: waiting, own: new Map(), complete: new Map() };
      this.request({ type: 'listRooms' }, 'sync');
    }
    if (!this.restored) {
      this.restored = true;
      const remembered = this.remembered();
      if (remembered && this.rooms.get(remembered)) this.open(this.rooms.get(remembered).room, { focus: false });
    }
    if (!this.rooms.get(this.rooms.current)) this.open(LOBBY, { focus: false });
    this.render();
  }

  history(room, frame) {
    const log = this.logFor(room);
    const { messages, reset } = this.rooms.history(room, frame);
    if (this.catchUp) {
      const key = roomKey(room);
      const own = messages.filter((m) => m.type === 'textBroadcast' && m.username === this.me).map((m) => String(m.message));
      this.catchUp.own.set(key, [...(this.catchUp.own.get(key) || []), ...own]);
      this.catchUp.complete.set(key, (this.catchUp.complete.get(key) ?? true) && frame.complete !== false);
    }
    if (reset) {
      log.replaceChildren();
      this.noticeIn(room, 'The server started a new message history: earlier messages are no longer held there.', 'warn');
    }
    for (const message of messages) {
      if (message.type === 'notice') this.showNotice(room, message);
      else this.showIn(room, () => this.hooks.showText(message));
    }
    if (this.rooms.isCurrent(room)) {
      log.scrollTop = log.scrollHeight;
      this.scheduleRead();
    }
    this.render();
  }

  text(room, frame) {
    const own = this.me !== null && frame.username === this.me;
    const fresh = this.rooms.arrived(room, frame.seq, {
      own, mention: !own && mentions(frame.message, this.me), reading: this.reading(room),
    });
    if (fresh) this.showIn(room, () => this.hooks.showText(frame));
    if (typeof frame.replyTo === 'string') this.hooks.acknowledge(frame.replyTo);
    if (this.rooms.isCurrent(room)) this.scheduleRead();
    this.render();
  }

  /** A lobby message (app.js shows it): only counted here. */
  lobbyText(frame) {
    const own = this.me !== null && frame.username === this.me;
    this.rooms.arrived(LOBBY, frame.seq, {
      own, mention: !own && mentions(frame.message, this.me), reading: this.reading(LOBBY),
    });
    if (this.rooms.isCurrent(LOBBY)) this.scheduleRead();
    this.render();
  }

  moderated(room, frame) {
    // Acts are numbered with the messages and never unread; the lobby's are
    // not numbered (their `seq` is the lobby's latest message's).
    if (roomKey(room) !== roomKey(LOBBY) && !this.rooms.arrived(room, frame.seq, { reading: true })) return;
    const entry = this.rooms.ensure(room);
    if (frame.act === 'topic') entry.topic = typeof frame.topic === 'string' ? frame.topic : '';
    if (frame.act === 'mode') entry.inviteOnly = frame.inviteOnly === true;
    if (frame.username === this.me && entry.role !== 'owner') {
      if (frame.act === 'op') entry.role = 'operator';
      if (frame.act === 'deop') entry.role = 'member';
    }
    this.showNotice(room, frame);
    this.refreshMembers(room);
    if (this.rooms.isCurrent(room)) this.scheduleRead();
    this.render();
  }

  member(room, frame) {
    if (typeof frame.username !== 'string') return;
    const entry = this.rooms.ensure(room);
    const joined = frame.change === 'joined';
    entry.members = Math.max(0, entry.members + (joined ? 1 : -1));
    this.noticeIn(room, `${frame.username} ${joined ? 'joined' : 'left'}`, '', frame.timestamp);
    this.refreshMembers(room);
  }

  /** Our own membership changed (here or on another device of ours). */
  membership(frame) {
    if (typeof frame.room !== 'string') return;
    const asked = this.pending.get(frame.replyTo);
    if (asked) this.pending.delete(frame.replyTo);
    switch (frame.change) {
      case 'joined': {
        const entry = this.rooms.update({ ...frame.state, room: frame.room }) || this.rooms.ensure(frame.room);
        if (entry.seen === null && entry.lastSeq > 0) {
          this.request({ type: 'history', room: entry.room, limit: 50 }, 'history');
        }
        // A DM's head says who it is with; a room's log says it was joined.
        if (!isDm(entry.room)) this.noticeIn(entry.room, membershipLine(frame));
        if (asked && (asked.kind === 'join' || asked.kind === 'join-form')) {
          if (asked.kind === 'join-form') this.dom.joinField.value = '';
          this.open(entry.room);
        }
        break;
      }
      case 'left':
      case 'kicked':
      case 'banned':
        this.forget(frame.room);
        this.noticeIn(LOBBY, membershipLine(frame), frame.change === 'left' ? '' : 'warn');
        break;
      case 'invited':
        this.noticeIn(this.rooms.current, membershipLine(frame));
        break;
      default:
        break;
    }
    this.render();
  }

  roomList(frame) {
    const asked = this.pending.get(frame.replyTo);
    if (!asked) return;
    this.pending.delete(frame.replyTo);
    if (asked.kind === 'sync') {
      this.settleRooms();
      return;
    }
    const rooms = Array.isArray(frame.rooms) ? frame.rooms : [];
    const lines = rooms.filter((r) => r && typeof r.room === 'string' && !isDm(r.room)).map((r) => {
      const topic = typeof r.topic === 'string' && r.topic ? `: ${r.topic}` : '';
      const mine = r.role ? '' : ' (not joined)';
      return `${r.room} (${Number(r.members) || 0})${mine}${topic}`;
    });
    this.noticeIn(this.rooms.current, `Rooms: ${lines.join('; ') || 'none'}`);
  }

  /** Every room's catch-up has come: what was in flight in each is settled. */
  settleRooms() {
    const catchUp = this.catchUp;
    this.catchUp = null;
    if (!catchUp) return;
    for (const room of catchUp.rooms) {
      const key = roomKey(room);
      const settled = this.hooks.settle(room, catchUp.own.get(key) || [], catchUp.complete.get(key) ?? true);
      this.settled(room, settled);
    }
  }

  /** Says in `room` what became of its messages in flight (as app.js says it of the lobby's). */
  settled(room, { resent, unknown }) {
    const where = this.enabled && this.rooms.get(room) ? room : LOBBY;
    for (const item of resent) {
      this.noticeIn(where, `The server never got "${item.text}" before the connection dropped: sending it again.`);
    }
    for (const item of unknown) {
      this.noticeIn(where, `The connection dropped before the server confirmed "${item.text}", and the server no ` +
        'longer holds the messages of that time: it may not have been delivered.', 'error');
    }
  }

  memberList(frame) {
    const asked = this.pending.get(frame.replyTo);
    if (!asked) return;
    this.pending.delete(frame.replyTo);
    const members = Array.isArray(frame.members) ? frame.members.filter((m) => m && typeof m.username === 'string') : [];
    if (asked.kind === 'names') {
      const names = members.map((m) => (m.role && m.role !== 'member' ? `${m.username} (${m.role})` : m.username));
      this.noticeIn(this.rooms.current, `Members of ${frame.room}: ${names.join(', ')}`);
    }
    if (typeof frame.room === 'string' && this.rooms.isCurrent(frame.room)) this.renderMembers(members);
  }

  /** A refusal of something this module asked: said where it was asked. */
  refused(frame) {
    const asked = this.pending.get(frame.replyTo);
    if (!asked) return false;
    this.pending.delete(frame.replyTo);
    const said = typeof frame.description === 'string' && frame.description
      ? frame.description : `the server refused it (${frame.error})`;
    const text = said[0].toUpperCase() + said.slice(1);
    if (asked.kind === 'sync') {
      this.settleRooms();
    } else if (asked.kind === 'join-form') {
      this.dom.joinError.textContent = text;
      this.dom.joinField.setAttribute('aria-invalid', 'true');
    } else if (asked.kind === 'command' || asked.kind === 'join' || asked.kind === 'names' || asked.kind === 'rooms') {
      this.hooks.fieldError(text);
    } else {
      console.warn(`${asked.kind} refused: ${text}`);
    }
    return true;
  }

  // --- showing ----------------------------------------------------------------

  /** The log of `room` (the lobby's is app.js's `ui.log`), made when first needed. */
  logFor(room) {
    if (roomKey(room) === roomKey(LOBBY)) return this.hooks.ui.log;
    let log = this.logs.get(roomKey(room));
    if (!log) {
      // As the lobby's: a list of messages in a region with the log role.
      const region = el('div', 'log-region');
      region.setAttribute('role', 'log');
      region.setAttribute('aria-label', `Messages in ${isDm(room) ? `the conversation with ${label(room)}` : room}`);
      region.hidden = !this.rooms.isCurrent(room);
      log = el('ol', 'log room-log');
      log.tabIndex = 0;
      log.setAttribute('aria-label', 'Messages');
      // Earlier messages than the first shown, when the server may hold some.
      const more = button('Show earlier messages', 'quiet older');
      more.hidden = true;
      more.addEventListener('click', () => {
        const entry = this.rooms.get(room);
        if (!entry || entry.first === null) return;
        more.disabled = true;
        this.request({ type: 'history', room: entry.room, before: entry.first, limit: 50 }, 'older');
      });
      region.append(more, log);
      this.hooks.ui.log.parentElement.after(region);
      this.logs.set(roomKey(room), log);
    }
    return log;
  }

  /** Runs app.js's `show` with `room`'s log as the one it appends to. */
  showIn(room, show) {
    const ui = this.hooks.ui;
    const lobby = ui.log;
    ui.log = this.logFor(room);
    try {
      show();
    } finally {
      ui.log = lobby;
    }
  }

  /** An older page of `room`: put before what is shown, the view staying where it was. */
  showOlder(room, frame) {
    const log = this.logFor(room);
    const messages = this.rooms.older(room, frame);
    const page = el('ol');
    const ui = this.hooks.ui;
    const lobby = ui.log;
    ui.log = page;
    try {
      for (const m of messages) {
        if (m.type === 'notice') this.hooks.notice(noticeLine(m, this.me), 'act', m.timestamp);
        else this.hooks.showText(m);
      }
    } finally {
      ui.log = lobby;
    }
    const height = log.scrollHeight;
    log.prepend(...page.children);
    log.scrollTop += log.scrollHeight - height;
    log.parentElement.querySelector('button.older').disabled = false;
    this.render();
  }

  noticeIn(room, text, kind = '', at = Date.now()) {
    this.showIn(room, () => this.hooks.notice(text, kind, at));
  }

  showNotice(room, frame) {
    this.noticeIn(room, noticeLine(frame, this.me), 'act', frame.timestamp);
  }

  /** Opens `room` (a DM may be opened before anything was said in it). */
  open(room, { focus = true } = {}) {
    const entry = this.rooms.ensure(room);
    this.rooms.current = entry.room;
    const shown = this.logFor(entry.room);
    this.hooks.ui.log.parentElement.hidden = shown !== this.hooks.ui.log;
    for (const log of this.logs.values()) log.parentElement.hidden = log !== shown;
    // The "New messages" button spoke for the log that was on screen.
    this.hooks.ui.newMessages.hidden = true;
    shown.scrollTop = shown.scrollHeight;
    this.remember(entry.room);
    this.closeDrawer();
    this.renderMembers(null);
    this.refreshMembers(entry.room, 0);
    this.readNow();
    this.render();
    // On a phone the field would bring up the keyboard over the messages: the log instead.
    if (focus) (matchMedia('(max-width: 40rem)').matches ? shown : $('message')).focus();
  }

  /** A room we are no longer in: its log goes, the lobby opens if it was open. */
  forget(room) {
    const key = roomKey(room);
    const wasOpen = this.rooms.isCurrent(room);
    this.rooms.remove(room);
    const log = this.logs.get(key);
    if (log) log.parentElement.remove();
    this.logs.delete(key);
    if (wasOpen) this.open(LOBBY, { focus: false });
  }

  enable() {
    if (this.enabled) return;
    this.enabled = true;
    this.dom.nav.hidden = false;
    this.dom.head.hidden = false;
    this.dom.membersSection.hidden = false;
    this.dom.chat.classList.add('with-rooms');
    this.decorateOnline();
  }

  disable() {
    this.enabled = false;
    this.dom.nav.hidden = true;
    this.dom.head.hidden = true;
    this.dom.membersSection.hidden = true;
    this.dom.chat.classList.remove('with-rooms', 'drawer-open');
    this.hooks.ui.log.parentElement.hidden = false;
    for (const log of this.logs.values()) log.parentElement.hidden = true;
    for (const dm of this.hooks.ui.online.querySelectorAll('button.dm')) dm.remove();
    $('message').placeholder = 'Write a message';
    document.title = 'wschat';
  }

  /** The lists, the open room's head and the title. */
  render() {
    if (!this.enabled) return;
    this.renderList(this.dom.rooms, this.rooms.channels());
    this.renderList(this.dom.dms, this.rooms.dms());
    this.dom.dmsEmpty.hidden = this.rooms.dms().length > 0;
    const entry = this.rooms.get(this.rooms.current);
    const room = this.rooms.current;
    this.dom.name.textContent = isDm(room) ? label(room) : room;
    let topic = entry && entry.topic ? entry.topic : '';
    if (isDm(room)) topic = `Direct messages with ${label(room)}`;
    if (entry && entry.inviteOnly && !isDm(room)) topic = topic ? `${topic} · invite-only` : 'Invite-only';
    this.dom.topic.textContent = topic;
    this.dom.topic.hidden = !topic;
    // Where a typed line goes, said where it is typed.
    $('message').placeholder = `Message ${isDm(room) ? label(room) : room}`;
    for (const [key, log] of this.logs) {
      log.parentElement.querySelector('button.older').hidden = !this.rooms.hasOlder(key);
    }
    const total = this.rooms.totalUnread();
    document.title = total > 0 ? `(${total}) wschat` : 'wschat';
    this.dom.toggle.textContent = total > 0 ? `Rooms (${total} unread)` : 'Rooms';
  }

  renderList(list, entries) {
    // Drawn again on every change: the focus stays on the entry it was on.
    const focused = list.contains(document.activeElement) ? document.activeElement.dataset.room : undefined;
    list.replaceChildren();
    for (const entry of entries) {
      const item = el('li');
      const open = button('', 'room');
      open.dataset.room = entry.room;
      open.append(el('span', 'room-label', label(entry.room)));
      // Said as "#dev 2 unread, mentions you"; the eye sees "#dev (2) (@)".
      if (entry.unread > 0) {
        open.append(' ', el('span', 'badge', String(entry.unread)), el('span', 'visually-hidden', ' unread'));
        if (entry.mentioned) open.append(el('span', 'mention-mark'), el('span', 'visually-hidden', ', mentions you'));
      }
      if (this.rooms.isCurrent(entry.room)) open.setAttribute('aria-current', 'true');
      open.addEventListener('click', () => this.open(entry.room));
      item.append(open);
      list.append(item);
      if (focused !== undefined && roomKey(focused) === roomKey(entry.room)) open.focus();
    }
  }

  /** `members` of the open room (null: not known yet). */
  renderMembers(members) {
    // A DM's two members are in its name.
    this.dom.membersSection.hidden = !this.enabled || isDm(this.rooms.current);
    this.dom.membersCount.textContent = members === null ? '' : `(${members.length})`;
    const entry = this.rooms.get(this.rooms.current);
    drawMembers(this.dom.members, members || [], {
      me: this.me,
      mine: entry && !isDm(entry.room) ? entry.role : null,
      act: (username, fields) => this.request({ room: this.rooms.current, username, ...fields }, 'command'),
    });
  }

  /** "Message NAME" beside each other name in Online. */
  decorateOnline() {
    if (!this.enabled) return;
    for (const row of this.hooks.ui.online.children) {
      if (row.querySelector('button.dm') || row.querySelector('.you')) continue;
      const name = row.dataset.name || (row.firstChild ? row.firstChild.textContent : '');
      if (!name) continue;
      const dm = button('', 'quiet dm');
      dm.setAttribute('aria-label', `Message ${name}`);
      dm.title = `Message ${name}`;
      dm.addEventListener('click', () => this.open(`@${name}`));
      row.append(dm);
    }
  }

  // --- the server, asked ------------------------------------------------------

  request(frame, kind) {
    const id = this.hooks.newId();
    this.pending.set(id, { kind, room: frame.room });
    this.hooks.send({ ...frame, id });
    return id;
  }

  refreshMembers(room, delay = MEMBERS_DELAY_MS) {
    if (!this.rooms.isCurrent(room) || isDm(room)) return;
    clearTimeout(this.membersTimer);
    this.membersTimer = setTimeout(() => {
      if (this.hooks.phase() !== 'online' || !this.enabled) return;
      this.request({ type: 'listMembers', room: this.rooms.current }, 'members');
    }, delay);
  }

  /** Whether the person is reading `room` now: it is open and the page is seen. */
  reading(room) {
    return this.rooms.isCurrent(room) && document.visibilityState === 'visible';
  }

  /** Tells the server (and so our other devices) what was read, soon. */
  scheduleRead() {
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => this.readNow(), READ_DELAY_MS);
  }

  /** The open room is read, as far as it goes. */
  readNow() {
    clearTimeout(this.readTimer);
    if (!this.enabled || this.hooks.phase() !== 'online' || document.visibilityState !== 'visible') return;
    const read = this.rooms.readOpen();
    if (read) this.request(read, 'read');
    this.render();
  }

  // --- remembering the open room -------------------------------------------

  remember(room) {
    try { localStorage.setItem(OPEN_ROOM_KEY, JSON.stringify({ name: this.me, room })); } catch { /* not kept */ }
  }

  remembered() {
    try {
      const saved = JSON.parse(localStorage.getItem(OPEN_ROOM_KEY));
      if (saved && typeof saved.room === 'string' && saved.name === this.me) return saved.room;
    } catch { /* nothing usable */ }
    return null;
  }

  // --- the controls ---------------------------------------------------------------

  closeDrawer() {
    if (this.dom.chat.classList.contains('drawer-open')) this.setDrawer(false);
  }

  /** Opens or closes the lists' drawer (a phone); open, what it covers is inert. */
  setDrawer(open) {
    const d = this.dom;
    d.chat.classList.toggle('drawer-open', open);
    d.toggle.setAttribute('aria-expanded', String(open));
    const covered = [...d.chat.querySelectorAll(':scope > .people, .conversation > :not(.room-head)')];
    for (const node of covered) node.inert = open;
  }

  wire() {
    const d = this.dom;
    d.joinForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const typed = d.joinField.value.trim();
      d.joinError.textContent = '';
      d.joinField.removeAttribute('aria-invalid');
      if (!typed || typed === '#') {
        d.joinError.textContent = 'Type the name of a room first, like #dev.';
        d.joinField.setAttribute('aria-invalid', 'true');
        d.joinField.focus();
        return;
      }
      const room = asRoom(typed);
      const known = this.rooms.get(room);
      if (known && known.role) {
        d.joinField.value = '';
        this.open(known.room);
        return;
      }
      this.request({ type: 'join', room }, 'join-form');
    });
    d.joinField.addEventListener('input', () => {
      d.joinError.textContent = '';
      d.joinField.removeAttribute('aria-invalid');
    });
    d.toggle.addEventListener('click', () => {
      const open = !d.chat.classList.contains('drawer-open');
      this.setDrawer(open);
      if (open) (d.rooms.querySelector('button') || d.joinField).focus();
    });
    // On a phone, a tap beside the drawer closes it.
    d.chat.addEventListener('click', (event) => {
      if (d.nav.contains(event.target) || d.toggle.contains(event.target)) return;
      this.closeDrawer();
    });
    d.nav.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && d.chat.classList.contains('drawer-open')) {
        this.closeDrawer();
        d.toggle.focus();
      }
    });
    new MutationObserver(() => this.decorateOnline()).observe(this.hooks.ui.online, { childList: true });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.scheduleRead();
    });
  }
}
