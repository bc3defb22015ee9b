// Rooms and direct messages (protocol v3, docs/PROTOCOL.md "Version 3"),
// without the DOM, sockets or clocks: what the page knows of each room
// (`Rooms`), the slash commands typed in the message field
// (`parseCommand`), and the wording of what happened in a room.
// rooms-ui.js drives it; tests/browser/rooms.test.mjs tests it under Node.
// It imports nothing, so that the unit tests can load it on its own.

/** The subprotocols offered: v3 first; a cluster node selects v2 (lobby only). */
export const SUBPROTOCOLS = ['wschat.v3', 'wschat.v2'];

/** The room that v2 calls the chat: always there, everyone in it. */
export const LOBBY = '#lobby';

/** Rooms are one room case-insensitively, after NFC, as names are. */
export function roomKey(room) {
  return String(room).normalize('NFC').toLowerCase();
}

/** A direct conversation is addressed `@name`, by the other party's name. */
export function isDm(room) {
  return String(room).startsWith('@');
}

/** The room a frame is about: absent means the lobby (as v2 sends it). */
export function roomOf(frame) {
  return typeof frame.room === 'string' && frame.room ? frame.room : LOBBY;
}

const isSeq = (seq) => Number.isSafeInteger(seq) && seq >= 0;

/**
 * What the page knows of one room or DM: the server's `roomState` fields,
 * and what it has shown (`seen`, the highest `seq` in its log, in `shownEpoch`).
 */
export class Room {
  constructor(name) {
    this.room = name;
    this.topic = '';
    this.inviteOnly = false;
    this.members = 0;
    this.role = null;
    this.epoch = null;
    this.lastSeq = 0;
    this.readSeq = 0;
    this.unread = 0;
    this.mentioned = false;
    this.seen = null;
    this.shownEpoch = null;
    /** The lowest `seq` shown, and whether the server holds nothing before it. */
    this.first = null;
    this.nothingOlder = false;
    /** The `seq` of each message shown after `readSeq`, and whether it names us. */
    this.unseen = [];
  }

  /** Takes a `roomState` from the server. */
  update(state) {
    // A full state without a topic: the room has none.
    if (typeof state.topic === 'string' || 'lastSeq' in state) this.topic = state.topic || '';
    if (typeof state.inviteOnly === 'boolean') this.inviteOnly = state.inviteOnly;
    if (Number.isSafeInteger(state.members)) this.members = state.members;
    if (typeof state.role === 'string') this.role = state.role;
    if (typeof state.epoch === 'string') this.epoch = state.epoch;
    if (isSeq(state.lastSeq)) this.lastSeq = Math.max(this.lastSeq, state.lastSeq);
    if (isSeq(state.readSeq)) this.readSeq = state.readSeq;
    if (isSeq(state.unread)) this.unread = state.unread;
    if (typeof state.mentioned === 'boolean') this.mentioned = state.mentioned;
    this.unseen = this.unseen.filter((u) => u.seq > this.readSeq);
  }

  /** Whether this member may moderate the room. */
  get operator() {
    return this.role === 'owner' || this.role === 'operator';
  }
}

/** Every room and DM of the logged-in name, and which one is open. */
export class Rooms {
  constructor() {
    this.byKey = new Map();
    this.current = LOBBY;
  }

  get(room) {
    return this.byKey.get(roomKey(room));
  }

  /** The room named so, created (empty) if unknown. */
  ensure(room) {
    let entry = this.get(room);
    if (!entry) {
      entry = new Room(room);
      this.byKey.set(roomKey(room), entry);
    }
    return entry;
  }

  update(state) {
    if (!state || typeof state.room !== 'string') return undefined;
    const entry = this.ensure(state.room);
    entry.update(state);
    return entry;
  }

  remove(room) {
    this.byKey.delete(roomKey(room));
    if (roomKey(this.current) === roomKey(room)) this.current = LOBBY;
  }

  isCurrent(room) {
    return roomKey(room) === roomKey(this.current);
  }

  /** The rooms, the lobby first, then by name. */
  channels() {
    const all = [...this.byKey.values()].filter((r) => !isDm(r.room));
    return all.sort((a, b) => (a.room === LOBBY ? -1 : b.room === LOBBY ? 1 : roomKey(a.room).localeCompare(roomKey(b.room))));
  }

  dms() {
    return [...this.byKey.values()].filter((r) => isDm(r.room))
      .sort((a, b) => roomKey(a.room).localeCompare(roomKey(b.room)));
  }

  totalUnread() {
    let total = 0;
    for (const room of this.byKey.values()) total += room.unread;
    return total;
  }

  /** Where unread messages wait, as a line: "#dev 2 (mentions you), bob 1". */
  unreadLine() {
    const waiting = [...this.channels(), ...this.dms()].filter((r) => r.unread > 0)
      .map((r) => `${label(r.room)} ${r.unread}${r.mentioned ? ' (mentions you)' : ''}`);
    return waiting.length ? `Unread: ${waiting.join(', ')}` : 'Nothing unread';
  }

  /** The catch-up list of the next `login` (the lobby keeps v2's top-level fields). */
  loginRooms() {
    const list = [];
    for (const r of this.byKey.values()) {
      if (r.room === LOBBY || r.seen === null || r.shownEpoch === null) continue;
      list.push({ room: r.room, epoch: r.shownEpoch, since: r.seen });
    }
    return list.slice(0, 1000);
  }

  /**
   * A message (or numbered notice) for `room` arrived live: whether it is
   * new (each `seq` is shown once). A new one that is not ours counts as
   * unread unless the room is being read; `mention`: it names us.
   */
  arrived(room, seq, { own = false, mention = false, reading = false } = {}) {
    const entry = this.ensure(room);
    if (isSeq(seq)) {
      if (entry.seen !== null && seq <= entry.seen) return false;
      entry.seen = seq;
      if (entry.first === null) entry.first = seq;
      if (entry.shownEpoch === null) entry.shownEpoch = entry.epoch;
      entry.lastSeq = Math.max(entry.lastSeq, seq);
      if (own) {
        // Saying something is reading everything before it.
        entry.readSeq = Math.max(entry.readSeq, seq);
        entry.unread = 0;
        entry.mentioned = false;
        entry.unseen = [];
      } else if (!reading && seq > entry.readSeq) {
        entry.unread += 1;
        entry.mentioned = entry.mentioned || mention;
        entry.unseen.push({ seq, mention });
      }
    }
    return true;
  }

  /**
   * A `history` of `room`: the messages not shown yet, oldest first, and
   * `reset` when it is another numbering than the one shown (the log
   * starts again).
   */
  history(room, history) {
    const entry = this.ensure(room);
    const epoch = typeof history.epoch === 'string' ? history.epoch : null;
    const reset = epoch !== null && entry.shownEpoch !== null && epoch !== entry.shownEpoch;
    if (reset) {
      entry.seen = null;
      entry.first = null;
      entry.nothingOlder = false;
    }
    // Whether older messages are held is not told here: a login's catch-up is
    // complete when it holds all after `since`, whatever came before.
    if (epoch !== null) entry.shownEpoch = epoch;
    const messages = (Array.isArray(history.messages) ? history.messages : [])
      .filter((m) => m && (m.type === 'textBroadcast' || m.type === 'notice'))
      .filter((m) => !isSeq(m.seq) || entry.seen === null || m.seq > entry.seen);
    for (const m of messages) {
      if (isSeq(m.seq)) {
        entry.seen = Math.max(entry.seen ?? 0, m.seq);
        entry.first = Math.min(entry.first ?? m.seq, m.seq);
        entry.lastSeq = Math.max(entry.lastSeq, m.seq);
      }
    }
    if (entry.seen === null) entry.seen = 0;
    return { messages, reset };
  }

  /** Whether `room` has messages before the first shown that the server may hold. */
  hasOlder(room) {
    const entry = this.get(room);
    return Boolean(entry) && entry.first !== null && entry.first > 1 && !entry.nothingOlder;
  }

  /** The `history` before the first shown: the older messages, oldest first. */
  older(room, history) {
    const entry = this.ensure(room);
    if (typeof history.epoch === 'string' && entry.shownEpoch !== null && history.epoch !== entry.shownEpoch) return [];
    const messages = (Array.isArray(history.messages) ? history.messages : [])
      .filter((m) => m && (m.type === 'textBroadcast' || m.type === 'notice') && isSeq(m.seq))
      .filter((m) => entry.first === null || m.seq < entry.first);
    for (const m of messages) entry.first = Math.min(entry.first ?? m.seq, m.seq);
    if (history.complete !== false) entry.nothingOlder = true;
    return messages;
  }

  /**
   * The server's read marker for `room` (from any device of ours): what
   * is unread is what came after it.
   */
  marker(room, seq) {
    const entry = this.get(room);
    if (!entry || !isSeq(seq)) return entry;
    entry.readSeq = Math.max(entry.readSeq, seq);
    if (entry.readSeq >= entry.lastSeq) {
      entry.unread = 0;
      entry.mentioned = false;
      entry.unseen = [];
    } else {
      entry.unseen = entry.unseen.filter((u) => u.seq > entry.readSeq);
      entry.unread = Math.min(entry.unread, entry.unseen.length || entry.unread);
      entry.mentioned = entry.unseen.some((u) => u.mention);
    }
    return entry;
  }

  /** The `read` to send for the open room, or null when all is read; marks it read here. */
  readOpen() {
    const entry = this.get(this.current);
    if (!entry || entry.lastSeq <= entry.readSeq && entry.unread === 0) return null;
    entry.readSeq = Math.max(entry.readSeq, entry.lastSeq);
    entry.unread = 0;
    entry.mentioned = false;
    entry.unseen = [];
    return { type: 'read', room: entry.room, seq: entry.readSeq };
  }
}

// --- slash commands ----------------------------------------------------------

/** `30s`, `10m`, `2h`, `1d` or plain seconds, in seconds; null if it is not one. */
export function parseDuration(text) {
  const match = /^(\d{1,9})(s|m|h|d|w)?$/i.exec(String(text));
  if (!match) return null;
  const unit = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[(match[2] || 's').toLowerCase()];
  return Number(match[1]) * unit;
}

/** A room name as typed: `dev` and `#dev` are `#dev`. */
export function asRoom(text) {
  const name = String(text).trim();
  return name.startsWith('#') ? name : `#${name}`;
}

const asName = (text) => String(text).trim().replace(/^@/, '');

const USAGE = {
  join: '/join #room',
  part: '/part [#room] [reason]',
  msg: '/msg NAME TEXT',
  query: '/query NAME',
  topic: '/topic [TEXT]',
  invite: '/invite NAME',
  kick: '/kick NAME [reason]',
  ban: '/ban NAME [duration] [reason]',
  unban: '/unban NAME',
  mute: '/mute NAME [duration]',
  unmute: '/unmute NAME',
  op: '/op NAME',
  deop: '/deop NAME',
  mode: '/mode +i|-i',
};

/**
 * A line typed in the message field, as chat-cli reads it: null when it is
 * not one of these commands (it is said as it is, `/me` included), else
 * one of { request } (a frame without `id`), { say: { room, text } },
 * { open: room } (a DM to switch to), { show: 'names'|'rooms'|'topic'|'unread' } or
 * { error }. `current` is the open room.
 */
export function parseCommand(line, current) {
  const match = /^\/([a-z]+)(?:\s+([\s\S]*))?$/i.exec(String(line).trim());
  if (!match) return null;
  const command = match[1].toLowerCase();
  const rest = (match[2] || '').trim();
  const words = rest ? rest.split(/\s+/) : [];
  const usage = () => ({ error: `Usage: ${USAGE[command]}` });
  const inRoom = (fields) => ({ request: { room: current, ...fields } });
  switch (command) {
    case 'join':
      if (words.length !== 1) return usage();
      return { request: { type: 'join', room: asRoom(words[0]) } };
    case 'part': {
      if (words[0] && words[0].startsWith('#')) {
        const reason = rest.slice(words[0].length).trim();
        return { request: { type: 'part', room: words[0], ...(reason ? { reason } : {}) } };
      }
      return { request: { type: 'part', room: current, ...(rest ? { reason: rest } : {}) } };
    }
    case 'msg': {
      if (words.length < 2) return usage();
      const text = rest.slice(words[0].length).trim();
      return { say: { room: `@${asName(words[0])}`, text } };
    }
    case 'query':
      if (words.length !== 1) return usage();
      return { open: `@${asName(words[0])}` };
    case 'names':
    case 'who':
      return { show: 'names' };
    case 'rooms':
      return { show: 'rooms' };
    case 'unread':
      return { show: 'unread' };
    case 'topic':
      if (!rest) return { show: 'topic' };
      return inRoom({ type: 'topic', topic: rest });
    case 'invite':
    case 'unban':
    case 'unmute':
    case 'op':
    case 'deop':
      if (words.length !== 1) return usage();
      return inRoom({ type: command, username: asName(words[0]) });
    case 'kick': {
      if (words.length < 1) return usage();
      const reason = rest.slice(words[0].length).trim();
      return inRoom({ type: 'kick', username: asName(words[0]), ...(reason ? { reason } : {}) });
    }
    case 'ban':
    case 'mute': {
      if (words.length < 1 || (command === 'mute' && words.length > 2)) return usage();
      const fields = { type: command, username: asName(words[0]) };
      let tail = rest.slice(words[0].length).trim();
      if (words[1] !== undefined) {
        const seconds = parseDuration(words[1]);
        if (seconds !== null) {
          fields.seconds = seconds;
          tail = tail.slice(words[1].length).trim();
        } else if (command === 'mute') {
          return { error: `"${words[1]}" is not a duration (30s, 10m, 2h, 1d)` };
        }
      }
      if (tail) fields.reason = tail;
      return inRoom(fields);
    }
    case 'mode':
      if (words.length !== 1 || !/^[+-]i$/.test(words[0])) return usage();
      return inRoom({ type: 'mode', inviteOnly: words[0] === '+i' });
    default:
      return null;
  }
}

// --- wording ---------------------------------------------------------------------

/** How long until `until` (ms since the epoch), as a person says it. */
function untilText(until, now) {
  if (!Number.isFinite(until)) return '';
  const minutes = Math.max(1, Math.round((until - now) / 60000));
  if (minutes < 60) return ` for ${minutes}\u00a0min`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return ` for ${hours}\u00a0h`;
  return ` for ${Math.round(hours / 24)}\u00a0days`;
}

/** The line for a moderation `notice`; `me` reads as "you". */
export function noticeLine(notice, me, now = Date.now()) {
  const who = (name) => (me && typeof name === 'string' && name === me ? 'you' : String(name));
  const by = notice.by === me && me ? 'You' : String(notice.by);
  const target = who(notice.username);
  const reason = typeof notice.reason === 'string' && notice.reason ? ` (${notice.reason})` : '';
  const until = untilText(notice.until, now);
  switch (notice.act) {
    case 'topic':
      return notice.topic ? `${by} set the topic: ${notice.topic}` : `${by} cleared the topic`;
    case 'mode':
      return notice.inviteOnly ? `${by} made the room invite-only` : `${by} opened the room to everyone`;
    case 'invite': return `${by} invited ${target}`;
    case 'kick': return `${by} removed ${target} from the room${reason}`;
    case 'ban': return `${by} banned ${target}${until}${reason}`;
    case 'unban': return `${by} lifted the ban on ${target}`;
    case 'mute': return `${by} muted ${target}${until}${reason}`;
    case 'unmute': return `${by} let ${target} speak again`;
    case 'op': return `${by} made ${target} an operator`;
    case 'deop': return `${by} took operator rights from ${target}`;
    default: return `${by} changed something in the room`;
  }
}

/** `seconds` as a person says a wait: "45 s", "10 min", "3 h", "2 days" (never broken apart). */
export function waitText(seconds) {
  if (seconds < 60) return `${seconds}\u00a0s`;
  if (seconds < 3600) return `${Math.ceil(seconds / 60)}\u00a0min`;
  if (seconds < 48 * 3600) return `${Math.round(seconds / 3600)}\u00a0h`;
  return `${Math.round(seconds / 86400)}\u00a0days`;
}

/**
 * A refusal's description for a person: the server's "until 1796695427911
 * (ms since the Unix epoch; another 3600 s)" (a ban, a mute) reads "for
 * another 60 min".
 */
export function readableRefusal(description) {
  return String(description).replace(/until \d+ \(ms since the Unix epoch; another (\d+) s\)/,
    (_, seconds) => `for another ${waitText(Number(seconds))}`);
}

/** The line for a change of our own membership (`membership`, `rooms.changes`). */
export function membershipLine(change, now = Date.now()) {
  const room = String(change.room);
  const by = typeof change.by === 'string' ? change.by : 'an operator';
  const reason = typeof change.reason === 'string' && change.reason ? ` (${change.reason})` : '';
  switch (change.change) {
    case 'joined': return isDm(room) ? `Direct messages with ${room.slice(1)}` : `You joined ${room}`;
    case 'left': return `You left ${room}`;
    case 'invited': return `${by} invited you to ${room}: type /join ${room} to enter`;
    case 'kicked': return `${by} removed you from ${room}${reason}`;
    case 'banned': return `${by} banned you from ${room}${untilText(change.until, now)}${reason}`;
    default: return `Your membership of ${room} changed`;
  }
}

/** A room's name as its list shows it: `#dev`, or the other party of a DM. */
export function label(room) {
  return isDm(room) ? String(room).slice(1) : String(room);
}
