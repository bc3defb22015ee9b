// Unit tests of the web client's protocol logic (src/serve/web/chat.js),
// without a browser: `node --test tests/browser/chat.test.mjs` (run by
// tests/web_client.rs). Each case is a sequence of frames as a server would
// send them, and what the page must make of them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';

// chat.js is a browser module in src/, outside any package.json: import its
// text as a module of its own (it imports nothing).
const source = await readFile(new URL('../../src/serve/web/chat.js', import.meta.url), 'utf8');
const chat = await import(`data:text/javascript,${encodeURIComponent(source)}`);
const { Timeline, Outbox, backoffDelay, retryAfterMs, presenceLines, leaveLine, newId, nameKey } = chat;

const text = (seq, message = `m${seq}`, username = 'bob') => ({
  type: 'textBroadcast', id: `i${seq}`, username, message, seq, timestamp: 1764326400000 + seq,
});
const history = (messages, complete = true, epoch) => ({
  type: 'history', id: 'h', replyTo: 'l', ...(epoch === undefined ? {} : { epoch }), messages, complete,
});
const texts = (result) => result.messages.map((m) => m.message);

/** A timeline that has seen messages 1..=last under `epoch` (one login, one history). */
function seen(last, epoch) {
  const timeline = new Timeline();
  assert.deepEqual(timeline.loginFields(), {});
  const all = Array.from({ length: last }, (_, i) => text(i + 1));
  timeline.history(history(all, true, epoch));
  return timeline;
}

test('a newcomer sends no since, then catches up from the last seq it saw', () => {
  const timeline = new Timeline();
  assert.deepEqual(timeline.loginFields(), {});
  const first = timeline.history(history([text(1), text(2)]));
  assert.deepEqual(texts(first), ['m1', 'm2']);
  assert.equal(first.reset, null);
  assert.equal(first.missed, false);
  assert.equal(timeline.fresh(3), true);
  assert.deepEqual(timeline.loginFields(), { since: 3 });
  const back = timeline.history(history([text(4), text(5)]));
  assert.deepEqual(texts(back), ['m4', 'm5']);
  assert.deepEqual([back.reset, back.missed], [null, false]);
});

test('an empty first history still gives the next login since 0', () => {
  const timeline = new Timeline();
  timeline.loginFields();
  timeline.history(history([]));
  assert.deepEqual(timeline.loginFields(), { since: 0 });
});

test('what came live while logging in is shown once: history first, then only newer seqs', () => {
  const timeline = seen(2);
  timeline.loginFields();
  // 3 and 4 arrived live before the login was answered, and are in the history too.
  const caught = timeline.history(history([text(3), text(4)]));
  assert.deepEqual(texts(caught), ['m3', 'm4']);
  assert.deepEqual([3, 4, 5].map((seq) => timeline.fresh(seq)), [false, false, true]);
  assert.equal(timeline.fresh(5), false, 'the same seq twice');
});

test('messages no longer held are reported as missed', () => {
  const timeline = seen(2);
  timeline.loginFields();
  const caught = timeline.history(history([text(40), text(41)], false));
  assert.deepEqual(texts(caught), ['m40', 'm41']);
  assert.deepEqual([caught.reset, caught.missed], [null, true]);
});

test('without epochs, a restarted server (since beyond its count) is a new numbering', () => {
  const timeline = seen(5);
  assert.deepEqual(timeline.loginFields(), { since: 5 });
  // It holds 1 and 2, said after it started: both new, although <= 5.
  const caught = timeline.history(history([text(1, 'new 1'), text(2, 'new 2')], false));
  assert.deepEqual(texts(caught), ['new 1', 'new 2']);
  assert.equal(caught.reset, 'restart');
  assert.equal(caught.missed, true, 'what the old server held and we never saw is gone');
  assert.equal(timeline.fresh(3), true);
  assert.deepEqual(timeline.loginFields(), { since: 3 });
});

test('without epochs, a restarted server that holds nothing yet resets to since 0', () => {
  const timeline = seen(5);
  timeline.loginFields();
  const caught = timeline.history(history([], false));
  assert.equal(caught.reset, 'restart');
  assert.equal(timeline.fresh(1), true, 'the first message of the new server is not "already seen"');
});

test('the epoch is remembered with the seq and sent with since', () => {
  const timeline = seen(2, 'k3J');
  assert.deepEqual(timeline.loginFields(), { since: 2, epoch: 'k3J' });
  const caught = timeline.history(history([text(3)], true, 'k3J'));
  assert.deepEqual([texts(caught), caught.reset, caught.missed], [['m3'], null, false]);
});

test('a new epoch is a new numbering: every message shown, a reset, no claim of missed messages', () => {
  const timeline = seen(5, 'old');
  timeline.loginFields();
  const caught = timeline.history(history([text(1, 'a'), text(2, 'b'), text(6, 'c')], false, 'new'));
  assert.deepEqual(texts(caught), ['a', 'b', 'c']);
  assert.equal(caught.reset, 'epoch');
  assert.equal(caught.missed, false);
  assert.deepEqual(timeline.loginFields(), { since: 6, epoch: 'new' });
  // The next catch-up in the same epoch is an ordinary one.
  const next = timeline.history(history([text(7)], true, 'new'));
  assert.deepEqual([texts(next), next.reset, next.missed], [['m7'], null, false]);
});

test('a history without an epoch leaves the epoch as it was', () => {
  const timeline = seen(3, 'e1');
  timeline.loginFields();
  const caught = timeline.history(history([text(4)], true));
  assert.deepEqual([texts(caught), caught.reset], [['m4'], null]);
  assert.deepEqual(timeline.loginFields(), { since: 4, epoch: 'e1' });
});

test('an epoch first heard after a login without one is adopted, not a reset', () => {
  const timeline = seen(3);
  timeline.loginFields();
  const caught = timeline.history(history([text(4)], true, 'e9'));
  assert.deepEqual([texts(caught), caught.reset], [['m4'], null]);
  assert.deepEqual(timeline.loginFields(), { since: 4, epoch: 'e9' });
});

test('a message without a usable seq is always shown', () => {
  const timeline = seen(3);
  assert.equal(timeline.fresh(undefined), true);
  assert.equal(timeline.fresh('4'), true);
  assert.equal(timeline.fresh(-1), true);
  assert.equal(timeline.fresh(4), true);
});

test('the outbox sends one message at a time, in order', () => {
  let n = 0;
  const outbox = new Outbox(() => `m${++n}`);
  outbox.add('one');
  outbox.add('two');
  const first = outbox.next(0);
  assert.deepEqual(outbox.send(first), { type: 'textFromUser', id: 'm1', text: 'one' });
  assert.equal(outbox.next(0), null, 'one in flight');
  assert.equal(outbox.acknowledged('nope'), undefined);
  assert.equal(outbox.acknowledged('m1').text, 'one');
  assert.deepEqual(outbox.send(outbox.next(0)), { type: 'textFromUser', id: 'm2', text: 'two' });
  outbox.acknowledged('m2');
  assert.equal(outbox.items.length, 0);
});

test('a rate-limited message is sent again when the server says; a refused one is dropped', () => {
  let n = 0;
  const outbox = new Outbox(() => `m${++n}`);
  outbox.add('fast');
  outbox.add('too long');
  outbox.send(outbox.next(0));
  const limited = outbox.refused('m1', 'rateLimited', 'too many messages: at most 5 a second, 10 at once; retry in 200 ms', 1000);
  assert.equal(limited.text, 'fast');
  assert.equal(outbox.next(1199), null);
  assert.equal(outbox.dueAt(), 1200);
  outbox.send(outbox.next(1200));
  outbox.acknowledged('m2');
  outbox.send(outbox.next(1200));
  assert.equal(outbox.refused('m3', 'messageTooLong', 'the message is longer than 4000 characters', 1200).text, 'too long');
  assert.equal(outbox.items.length, 0);
});

test('after a drop, what was in flight is settled against the catch-up', () => {
  let n = 0;
  const outbox = new Outbox(() => `m${++n}`);
  for (const t of ['a', 'b']) outbox.add(t);
  outbox.send(outbox.next(0));
  outbox.lost();
  assert.equal(outbox.next(0), null, 'nothing is sent before the catch-up settles it');
  // Delivered: it is in the catch-up.
  assert.deepEqual(outbox.settle(['a'], true), { resent: [], unknown: [] });
  assert.deepEqual(outbox.items.map((i) => i.text), ['b']);

  outbox.send(outbox.next(0));
  outbox.lost();
  const complete = outbox.settle([], true);
  assert.deepEqual(complete.resent.map((i) => i.text), ['b'], 'the server never got it: send again');
  assert.equal(outbox.next(0).text, 'b');

  outbox.send(outbox.next(0));
  outbox.lost();
  const incomplete = outbox.settle([], false);
  assert.deepEqual(incomplete.unknown.map((i) => i.text), ['b'], 'nobody can tell');
  assert.equal(outbox.next(0), null, 'the user decides');
  outbox.retry(incomplete.unknown[0]);
  assert.equal(outbox.next(0).text, 'b');
});

test('the same text twice is settled in order, each against its own copy', () => {
  let n = 0;
  const outbox = new Outbox(() => `m${++n}`);
  outbox.add('same');
  outbox.add('same');
  outbox.send(outbox.next(0));
  outbox.lost();
  outbox.settle(['same'], true);
  assert.deepEqual(outbox.items.map((i) => [i.text, i.state]), [['same', 'waiting']]);
});

test('quiet lines say who came and went', () => {
  assert.deepEqual(presenceLines({ joined: ['a', 'b', 'c'], joinedCount: 1234, left: ['d'], leftCount: 1 }),
    ['a, b, c and 1231 others joined', 'd left']);
  assert.deepEqual(presenceLines({ joined: ['a'], joinedCount: 2, left: [], leftCount: 0 }), ['a and 1 other joined']);
  assert.deepEqual(presenceLines({ joined: ['a', 'b'] }), ['a and b joined']);
  assert.deepEqual(presenceLines({ joined: 'junk', left: [3] }), []);
  assert.equal(leaveLine('bob', 'logout'), 'bob logged out');
  assert.equal(leaveLine('bob', 'evicted'), 'bob was disconnected (no answer)');
  assert.equal(leaveLine('bob', 'something new'), 'bob left');
});

test('small helpers', () => {
  assert.equal(retryAfterMs('too many wrong secrets from your address; retry in 42 s'), 42000);
  assert.equal(retryAfterMs('retry in 200 ms'), 200);
  assert.equal(retryAfterMs('no idea'), 1000);
  assert.equal(nameKey('Alice'), nameKey('alice'));
  assert.equal(nameKey('e\u0301'), nameKey('\u00e9'));
  assert.match(newId(), /^[A-Za-z0-9_-]{16}$/);
  for (let failures = 0; failures < 12; failures += 1) {
    const ceiling = Math.min(500 * 2 ** failures, 30000);
    assert.equal(backoffDelay(failures, () => 0), ceiling / 2);
    assert.equal(backoffDelay(failures, () => 1), ceiling);
  }
});

// --- issue 24, defects 3 and 4 of the page (branch web-defects) -------------

test('only a star and the sender\'s own name make an action, as in chat-cli', () => {
  assert.equal(chat.actionOf('bob', '* bob waves'), 'waves');
  assert.equal(chat.actionOf('bob', '* bob waves\nand smiles'), 'waves\nand smiles');
  assert.equal(chat.actionOf('bob', '* alice waves'), null);
  assert.equal(chat.actionOf('bob', '* bob'), null);
  assert.equal(chat.actionOf('bob', '* bob   '), null);
  assert.equal(chat.actionOf('bob', '* bobby waves'), null);
  assert.equal(chat.actionOf('bob', 'bob waves'), null);
});

test('a mention is the name as a word, case-insensitively, as in chat-cli', () => {
  for (const text of ['hi alice', 'Alice, look', '@ALICE', 'ping alice.', '(alice)', 'alice']) {
    assert.equal(chat.mentions(text, 'alice'), true, text);
  }
  for (const text of ['malice', 'alice_b', 'alice2', 'alicé', 'éalice', 'nobody', '']) {
    assert.equal(chat.mentions(text, 'alice'), false, text);
  }
  assert.equal(chat.mentions('bonjour Zoë!', 'zoË'), true);
  assert.equal(chat.mentions('😀alice😀', 'alice'), true, 'an emoji is not a letter');
  assert.equal(chat.mentions('𝒜alice', 'alice'), false, 'a letter outside the BMP is one');
  assert.equal(chat.mentions('anything', ''), false);
});

test('a 12-hour clock has no leading zero, a 24-hour one keeps two digits', () => {
  const at = new Date(Date.UTC(2026, 0, 1, 18, 37));
  const morning = new Date(Date.UTC(2026, 0, 1, 6, 37));
  const clock = (locale) => {
    const { hourCycle } = new Intl.DateTimeFormat(locale, { hour: 'numeric' }).resolvedOptions();
    const format = new Intl.DateTimeFormat(locale, { ...chat.clockOptions(hourCycle), timeZone: 'UTC' });
    return [format.format(at), format.format(morning)];
  };
  assert.deepEqual(clock('en-US'), ['6:37 PM', '6:37 AM']);
  assert.deepEqual(clock('en-GB'), ['18:37', '06:37']);
  assert.deepEqual(chat.clockOptions(undefined), { hour: '2-digit', minute: '2-digit' });
});

test('the Online list follows a notice at once, before the userList confirms it', () => {
  const list = [{ username: 'alice', connections: 2 }, { username: 'carol', connections: 1 }];
  const names = (users) => users.map((u) => u.username);
  assert.deepEqual(names(chat.onlineAfter(list, { joined: ['Bob'] })), ['alice', 'Bob', 'carol']);
  assert.equal(chat.onlineAfter(list, { joined: ['bob'] })[0], list[0], 'the others kept as they were');
  assert.deepEqual(names(chat.onlineAfter(list, { joined: ['ALICE'] })), ['alice', 'carol'], 'once a name');
  assert.deepEqual(names(chat.onlineAfter(list, { left: ['Carol'] })), ['alice']);
  assert.deepEqual(names(chat.onlineAfter(list, { left: ['nobody', 7] })), ['alice', 'carol']);
  // A presence summary does not say in which order: a name in both is left for the userList.
  assert.deepEqual(names(chat.onlineAfter(list, { joined: ['carol', 'dan'], left: ['carol', 'eve'] })),
    ['alice', 'carol', 'dan']);
  assert.deepEqual(names(chat.onlineAfter(list, { joined: ['eve'], left: ['eve'] })), ['alice', 'carol']);
  assert.deepEqual(names(chat.onlineAfter([], { joined: null, left: undefined })), []);
});

test("an outbox item said in a room carries it, and is settled against that room's catch-up (v3)", () => {
  const outbox = new Outbox(() => 'id1');
  const item = outbox.add('hi dev', '#dev');
  assert.deepEqual(outbox.send(item), { type: 'textFromUser', id: 'id1', text: 'hi dev', room: '#dev' });
  outbox.lost();
  assert.deepEqual(outbox.unconfirmedRooms(), ['#dev']);
  // The lobby's catch-up says nothing of #dev; #dev's does.
  assert.deepEqual(outbox.settle(['hi dev'], true), { resent: [], unknown: [] });
  assert.equal(item.state, 'unconfirmed');
  assert.deepEqual(outbox.settle([], true, '#dev').resent.map((i) => i.text), ['hi dev']);
  assert.deepEqual(outbox.unconfirmedRooms(), []);
  assert.deepEqual(outbox.send(item), { type: 'textFromUser', id: 'id1', text: 'hi dev', room: '#dev' });
  outbox.lost();
  assert.deepEqual(outbox.settle(['hi dev'], true, '#dev'), { resent: [], unknown: [] });
  assert.equal(outbox.items.length, 0, 'found in its room: delivered');
  assert.deepEqual(outbox.send(outbox.add('lobby')), { type: 'textFromUser', id: 'id1', text: 'lobby' });
});

test('a mention is @name or the name as a word, in any case', () => {
  assert.equal(chat.mentions('@alice look', 'alice'), true);
  assert.equal(chat.mentions('ALICE: look', 'alice'), true);
  assert.equal(chat.mentions('hi alice', 'alice'), true);
  assert.equal(chat.mentions('malice aforethought', 'alice'), false);
  assert.equal(chat.mentions('alice_2 is here', 'alice'), false);
  assert.equal(chat.mentions('nothing', 'alice'), false);
  assert.equal(chat.mentions('a.b?', 'a.b'), true, 'the name is not a pattern');
  assert.equal(chat.mentions('axb', 'a.b'), false);
});
