// The web client's protocol logic, without the DOM, sockets or clocks:
// which messages are new across reconnects (`Timeline`), what waits to be
// sent and what became of it (`Outbox`), and the wording of quiet lines.
// app.js drives it; tests/browser/chat.test.mjs tests it under Node.

/**
 * The delay before the next reconnection attempt after `failures` failures
 * in a row: 0.5 s doubled up to 30 s, drawn from the upper half (as
 * chat-cli does), so that a restarted server is not hit by every page at once.
 */
export function backoffDelay(failures, random = Math.random) {
  const ceiling = Math.min(500 * 2 ** Math.min(failures, 20), 30000);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** A fresh message id: 16 characters from the URL-safe alphabet. */
export function newId(getRandomValues = (a) => crypto.getRandomValues(a)) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const bytes = getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => alphabet[b & 63]).join('');
}

/** Names are one name case-insensitively, after NFC (docs/PROTOCOL.md, "Names"). */
export function nameKey(name) {
  return String(name).normalize('NFC').toLowerCase();
}

/** How long a `rateLimited` description says to wait, in ms (1 s if it does not say). */
export function retryAfterMs(description) {
  const match = /retry in (\d+(?:\.\d+)?)\s*(ms|s)\b/.exec(String(description));
  if (!match) return 1000;
  return Math.ceil(Number(match[1]) * (match[2] === 's' ? 1000 : 1));
}

const isText = (m) => m !== null && typeof m === 'object' && m.type === 'textBroadcast';
const isSeq = (seq) => Number.isSafeInteger(seq) && seq >= 0;

/**
 * The message numbers seen, so that every message is shown once across
 * reconnects: the highest `seq` (the next login's `since`) and the epoch of
 * the server's message store it belongs to.
 */
export class Timeline {
  constructor() {
    /** The highest `seq` seen; null before the first history. */
    this.lastSeq = null;
    /** The store's epoch that `lastSeq` counts in; null if the server sent none. */
    this.epoch = null;
    /** What the current login sent. */
    this.sentSince = null;
    this.sentEpoch = null;
  }

  /** The catch-up fields of the next `login`: `since` (and `epoch`) once a history was seen. */
  loginFields() {
    this.sentSince = this.lastSeq;
    this.sentEpoch = this.epoch;
    const fields = {};
    if (this.lastSeq !== null) {
      fields.since = this.lastSeq;
      if (this.epoch !== null) fields.epoch = this.epoch;
    }
    return fields;
  }

  /**
   * Takes the `history` that completes a login. Returns the messages to
   * show (each `seq` once, oldest first), `reset` ('epoch' when the server's
   * store is new, 'restart' when a server without epochs evidently counts
   * from 1 again, null otherwise) and `missed` (messages said while away are
   * no longer held; not claimed for a mere renumbering).
   */
  history(history) {
    const messages = Array.isArray(history.messages) ? history.messages.filter(isText) : [];
    const returning = this.sentSince !== null;
    const complete = history.complete !== false;
    const epoch = typeof history.epoch === 'string' ? history.epoch : null;
    let reset = null;
    if (epoch !== null && this.sentEpoch !== null && epoch !== this.sentEpoch) {
      reset = 'epoch';
    } else if (returning && !complete) {
      // Without an epoch to tell: a server that no longer knows our
      // `since` (it restarted and counts from 1 again) sends what it holds,
      // incomplete, starting at or below `since`.
      const first = messages.map((m) => m.seq).find(isSeq);
      if (first === undefined || first <= this.sentSince) reset = 'restart';
    }
    // A history without an epoch leaves the one we know (an older server).
    if (epoch !== null) this.epoch = epoch;
    if (reset !== null) this.lastSeq = null;
    const fresh = messages.filter((m) => this.fresh(m.seq));
    // From now on every login asks for what came after what we saw; an
    // empty history for a newcomer means nothing was said yet.
    if (this.lastSeq === null) this.lastSeq = 0;
    return { messages: fresh, reset, missed: returning && !complete && reset !== 'epoch' };
  }

  /** Whether a message numbered `seq` is new (and if so, remember it). */
  fresh(seq) {
    if (!isSeq(seq)) return true;
    if (this.lastSeq !== null && seq <= this.lastSeq) return false;
    this.lastSeq = seq;
    return true;
  }
}

/**
 * Messages typed but not yet confirmed by the server, oldest first. One is
 * in flight at a time, so they arrive in order and a burst typed offline
 * does not run into the server's rate limit. An item's `state`:
 * 'waiting' (to be sent, not before `notBefore`), 'sent' (in flight),
 * 'unconfirmed' (in flight when the connection dropped) or 'unknown' (the
 * server no longer holds the messages that would tell whether it arrived).
 */
export class Outbox {
  constructor(makeId = newId) {
    this.items = [];
    this.makeId = makeId;
  }

  /** `room`: where it is said (v3); absent, the lobby. */
  add(text, room) {
    const item = { id: null, text, state: 'waiting', notBefore: 0 };
    if (room) item.room = room;
    this.items.push(item);
    return item;
  }

  /** The item to send now, or null (one in flight, or none due before `now`). */
  next(now) {
    if (this.items.some((i) => i.state === 'sent' || i.state === 'unconfirmed')) return null;
    const item = this.items.find((i) => i.state === 'waiting');
    return item && item.notBefore <= now ? item : null;
  }

  /** When the next waiting item is due, or null. */
  dueAt() {
    const item = this.items.find((i) => i.state === 'waiting');
    return item ? item.notBefore : null;
  }

  /** Marks `item` sent and returns the `textFromUser` frame for it. */
  send(item) {
    item.id = this.makeId();
    item.state = 'sent';
    const frame = { type: 'textFromUser', id: item.id, text: item.text };
    if (item.room) frame.room = item.room;
    return frame;
  }

  /** The item in flight under `id`, or undefined. */
  inFlight(id) {
    return this.items.find((i) => i.state === 'sent' && i.id === id);
  }

  /** The server broadcast the message sent under `id`: it is delivered. */
  acknowledged(id) {
    const item = this.inFlight(id);
    if (item) this.remove(item);
    return item;
  }

  /** The server refused the message sent under `id`; a rate-limited one is sent again later. */
  refused(id, error, description, now) {
    const item = this.inFlight(id);
    if (!item) return undefined;
    if (error === 'rateLimited') {
      item.state = 'waiting';
      item.notBefore = now + retryAfterMs(description);
    } else {
      this.remove(item);
    }
    return item;
  }

  /** The connection dropped: what was in flight may or may not have arrived. */
  lost() {
    for (const item of this.items) if (item.state === 'sent') item.state = 'unconfirmed';
  }

  /**
   * After a reconnect: settles each unconfirmed item against `own`, the
   * texts of our own messages in the catch-up (in order). Found: delivered.
   * Not found in a complete catch-up: the server never got it, so it is
   * sent again. Otherwise nobody can tell. Returns { resent, unknown }.
   * `room`: the room (v3) whose catch-up that is; absent, the lobby's.
   */
  settle(own, complete, room) {
    const resent = [];
    const unknown = [];
    let from = 0;
    for (const item of [...this.items]) {
      if (item.state !== 'unconfirmed' || (item.room || null) !== (room || null)) continue;
      const at = own.indexOf(item.text, from);
      if (at >= 0) {
        from = at + 1;
        this.remove(item);
      } else if (complete) {
        item.state = 'waiting';
        resent.push(item);
      } else {
        item.state = 'unknown';
        unknown.push(item);
      }
    }
    return { resent, unknown };
  }

  /** The rooms (v3) of what was in flight when the connection dropped. */
  unconfirmedRooms() {
    const rooms = this.items.filter((i) => i.state === 'unconfirmed' && i.room).map((i) => i.room);
    return [...new Set(rooms)];
  }

  /** The user chose to send an 'unknown' item again. */
  retry(item) {
    item.state = 'waiting';
    item.notBefore = 0;
  }

  remove(item) {
    this.items = this.items.filter((i) => i !== item);
  }
}

/** A list of names as a person writes it: "a", "a and b", "a, b and c". */
function names(list, others) {
  const parts = [...list];
  if (others > 0) parts.push(`${others} ${others === 1 ? 'other' : 'others'}`);
  if (parts.length <= 1) return parts.join('');
  return `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
}

/** The quiet lines for a `presence` summary. */
export function presenceLines(presence) {
  const lines = [];
  const side = (list, count, verb) => {
    const shown = Array.isArray(list) ? list.filter((n) => typeof n === 'string') : [];
    const total = Number.isSafeInteger(count) ? Math.max(count, shown.length) : shown.length;
    if (total > 0) lines.push(`${names(shown, total - shown.length)} ${verb}`);
  };
  side(presence.joined, presence.joinedCount, 'joined');
  side(presence.left, presence.leftCount, 'left');
  return lines;
}

/** The quiet line for a `logoutBroadcast`. */
export function leaveLine(name, reason) {
  switch (reason) {
    case 'logout':
      return `${name} logged out`;
    case 'evicted':
      return `${name} was disconnected (no answer)`;
    default:
      return `${name} left`;
  }
}

// --- as chat-cli shows a message (src/client/render.rs) --------------------

/**
 * What `/me` sends is a text "* NAME ACTION" from NAME: the ACTION, or null
 * for any other text ("* alice waves" from bob is not bob's action).
 */
export function actionOf(from, text) {
  const prefix = `* ${from} `;
  const said = String(text);
  if (!said.startsWith(prefix)) return null;
  const action = said.slice(prefix.length);
  return action.trim() ? action : null;
}

const WORD = /[\p{Alphabetic}\p{N}_]/u;

/** The code point that ends `text` before `at` (a UTF-16 index), or ''. */
function charBefore(text, at) {
  if (at === 0) return '';
  const low = text.charCodeAt(at - 1);
  const start = low >= 0xdc00 && low <= 0xdfff && at >= 2 ? at - 2 : at - 1;
  return String.fromCodePoint(text.codePointAt(start));
}

/**
 * Whether `text` names `name` as a word, case-insensitively ("Alice," and
 * "@alice" do, "malice" does not): chat-cli's rule for a mention.
 */
export function mentions(text, name) {
  const haystack = String(text).toLowerCase();
  const needle = String(name).toLowerCase();
  if (!needle) return false;
  for (let at = haystack.indexOf(needle); at >= 0; at = haystack.indexOf(needle, at + 1)) {
    const after = haystack.codePointAt(at + needle.length);
    const afterChar = after === undefined ? '' : String.fromCodePoint(after);
    if (!WORD.test(charBefore(haystack, at)) && !WORD.test(afterChar)) return true;
  }
  return false;
}

/**
 * How a message's time is written for a clock of `hourCycle` (a locale's
 * `Intl` hour cycle): "6:37 PM" on a 12-hour clock, "18:37" and "06:37"
 * on a 24-hour one.
 */
export function clockOptions(hourCycle) {
  const twelve = hourCycle === 'h11' || hourCycle === 'h12';
  return { hour: twelve ? 'numeric' : '2-digit', minute: '2-digit' };
}

/**
 * The Online list after a notice, at once, before the server's `userList`
 * confirms it (so that nobody who joined, or talks, is missing meanwhile):
 * `joined` names added, `left` names taken out, the rest kept with their
 * device counts. A name in both (a `presence` summary, which does not say
 * in which order) is left as it was, for the `userList` to tell.
 */
export function onlineAfter(users, { joined = [], left = [] }) {
  const names = (list) => (Array.isArray(list) ? list.filter((n) => typeof n === 'string') : []);
  const [came, went] = [names(joined), names(left)];
  const cameKeys = new Set(came.map(nameKey));
  const wentKeys = new Set(went.map(nameKey));
  const list = users.filter((u) => !wentKeys.has(nameKey(u.username)) || cameKeys.has(nameKey(u.username)));
  const known = new Set(list.map((u) => nameKey(u.username)));
  for (const name of came) {
    const key = nameKey(name);
    if (known.has(key) || wentKeys.has(key)) continue;
    known.add(key);
    list.push({ username: name, connections: 1 });
  }
  return list.sort((a, b) => (nameKey(a.username) < nameKey(b.username) ? -1 : 1));
}
