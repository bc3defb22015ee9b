// Unit tests of the web client's rooms logic (src/serve/web/rooms.js),
// without a browser: `node --test tests/browser/rooms.test.mjs` (run by
// tests/web_client.rs): the slash commands as chat-cli reads them, unread
// counts and mentions, read markers, and catch-up per room.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';

// rooms.js imports nothing: its text is loaded as a module of its own.
const source = await readFile(new URL('../../src/serve/web/rooms.js', import.meta.url), 'utf8');
const {
  Rooms, LOBBY, readableRefusal, parseCommand, parseDuration, noticeLine, membershipLine, roomOf, SUBPROTOCOLS,
} = await import(`data:text/javascript,${encodeURIComponent(source)}`);

const state = (room, fields = {}) => ({
  room, inviteOnly: false, members: 2, role: 'member', epoch: 'E1', lastSeq: 0, readSeq: 0,
  unread: 0, mentioned: false, ...fields,
});
const text = (seq, message = `m${seq}`, username = 'bob') => ({ type: 'textBroadcast', username, message, seq });

test('v3 is offered first, v2 as the fall back', () => {
  assert.deepEqual(SUBPROTOCOLS, ['wschat.v3', 'wschat.v2']);
  assert.equal(roomOf({}), LOBBY);
  assert.equal(roomOf({ room: '#dev' }), '#dev');
});

test('the slash commands read as in chat-cli', () => {
  const at = (line) => parseCommand(line, '#dev');
  assert.deepEqual(at('/join dev'), { request: { type: 'join', room: '#dev' } });
  assert.deepEqual(at('/join #Ops'), { request: { type: 'join', room: '#Ops' } });
  assert.deepEqual(at('/part'), { request: { type: 'part', room: '#dev' } });
  assert.deepEqual(at('/part #ops bye all'), { request: { type: 'part', room: '#ops', reason: 'bye all' } });
  assert.deepEqual(at('/part see you'), { request: { type: 'part', room: '#dev', reason: 'see you' } });
  assert.deepEqual(at('/msg @bob hi there'), { say: { room: '@bob', text: 'hi there' } });
  assert.deepEqual(at('/query bob'), { open: '@bob' });
  assert.deepEqual(at('/names'), { show: 'names' });
  assert.deepEqual(at('/who'), { show: 'names' });
  assert.deepEqual(at('/rooms'), { show: 'rooms' });
  assert.deepEqual(at('/unread'), { show: 'unread' });
  assert.deepEqual(at('/topic'), { show: 'topic' });
  assert.deepEqual(at('/topic builds  and releases'), { request: { room: '#dev', type: 'topic', topic: 'builds  and releases' } });
  assert.deepEqual(at('/invite carol'), { request: { room: '#dev', type: 'invite', username: 'carol' } });
  assert.deepEqual(at('/kick carol off topic'), { request: { room: '#dev', type: 'kick', username: 'carol', reason: 'off topic' } });
  assert.deepEqual(at('/ban carol'), { request: { room: '#dev', type: 'ban', username: 'carol' } });
  assert.deepEqual(at('/ban carol 2h spam'), { request: { room: '#dev', type: 'ban', username: 'carol', seconds: 7200, reason: 'spam' } });
  assert.deepEqual(at('/ban carol spam'), { request: { room: '#dev', type: 'ban', username: 'carol', reason: 'spam' } });
  assert.deepEqual(at('/unban carol'), { request: { room: '#dev', type: 'unban', username: 'carol' } });
  assert.deepEqual(at('/mute bob 10m'), { request: { room: '#dev', type: 'mute', username: 'bob', seconds: 600 } });
  assert.deepEqual(at('/unmute bob'), { request: { room: '#dev', type: 'unmute', username: 'bob' } });
  assert.deepEqual(at('/op bob'), { request: { room: '#dev', type: 'op', username: 'bob' } });
  assert.deepEqual(at('/deop bob'), { request: { room: '#dev', type: 'deop', username: 'bob' } });
  assert.deepEqual(at('/mode +i'), { request: { room: '#dev', type: 'mode', inviteOnly: true } });
  assert.deepEqual(at('/mode -i'), { request: { room: '#dev', type: 'mode', inviteOnly: false } });
  // Wrong ones are said, with how to write them.
  assert.deepEqual(at('/mode +x'), { error: 'Usage: /mode +i|-i' });
  assert.deepEqual(at('/join'), { error: 'Usage: /join #room' });
  assert.deepEqual(at('/msg bob'), { error: 'Usage: /msg NAME TEXT' });
  assert.match(at('/mute bob soon').error, /not a duration/);
  // Anything else is said as it is: /me included, and plain text.
  assert.equal(at('/me waves'), null);
  assert.equal(at('hello'), null);
  assert.equal(at('/unknown thing'), null);
});

test('durations read as people write them', () => {
  assert.equal(parseDuration('30'), 30);
  assert.equal(parseDuration('30s'), 30);
  assert.equal(parseDuration('10m'), 600);
  assert.equal(parseDuration('2h'), 7200);
  assert.equal(parseDuration('1d'), 86400);
  assert.equal(parseDuration('1w'), 604800);
  assert.equal(parseDuration('soon'), null);
  assert.equal(parseDuration('-5m'), null);
});

test('unread counts: what others say in a room not being read', () => {
  const rooms = new Rooms();
  rooms.update(state(LOBBY));
  rooms.update(state('#dev', { lastSeq: 3, readSeq: 1, unread: 2, mentioned: true }));
  assert.equal(rooms.totalUnread(), 2);
  assert.equal(rooms.arrived('#dev', 4, { mention: false }), true);
  assert.equal(rooms.arrived('#dev', 4, {}), false, 'each seq once');
  assert.deepEqual([rooms.get('#DEV').unread, rooms.get('#dev').mentioned], [3, true]);
  // Read while open: not counted. Our own: everything before it is read.
  assert.equal(rooms.arrived(LOBBY, 1, { reading: true }), true);
  assert.equal(rooms.get(LOBBY).unread, 0);
  rooms.arrived('#dev', 5, { own: true });
  assert.deepEqual([rooms.get('#dev').unread, rooms.get('#dev').readSeq], [0, 5]);
  assert.deepEqual(rooms.channels().map((r) => r.room), [LOBBY, '#dev']);
  rooms.update(state('@carol', { lastSeq: 1, unread: 1 }));
  rooms.arrived('#dev', 6, { mention: true });
  assert.equal(rooms.unreadLine(), 'Unread: #dev 1 (mentions you), carol 1');
  assert.equal(new Rooms().unreadLine(), 'Nothing unread');
});

test("the server's read marker (from any device) settles what is unread", () => {
  const rooms = new Rooms();
  rooms.update(state('#dev', { lastSeq: 0 }));
  rooms.arrived('#dev', 1, {});
  rooms.arrived('#dev', 2, { mention: true });
  rooms.arrived('#dev', 3, {});
  assert.equal(rooms.get('#dev').unread, 3);
  rooms.marker('#dev', 2);
  assert.deepEqual([rooms.get('#dev').unread, rooms.get('#dev').mentioned], [1, false]);
  rooms.marker('#dev', 1);
  assert.equal(rooms.get('#dev').readSeq, 2, 'a marker never goes back');
  rooms.marker('#dev', 3);
  assert.equal(rooms.get('#dev').unread, 0);
});

test('opening a room reads it: one read with its latest seq', () => {
  const rooms = new Rooms();
  rooms.update(state('#dev', { lastSeq: 7, readSeq: 5, unread: 2 }));
  assert.equal(rooms.readOpen(), null, 'the lobby is open, and unknown');
  rooms.current = '#dev';
  assert.deepEqual(rooms.readOpen(), { type: 'read', room: '#dev', seq: 7 });
  assert.equal(rooms.readOpen(), null, 'nothing more to read');
  assert.equal(rooms.totalUnread(), 0);
});

test('catch-up per room: what was shown is asked after, each seq once, a new epoch starts again', () => {
  const rooms = new Rooms();
  rooms.update(state('#dev', { lastSeq: 2 }));
  assert.deepEqual(rooms.loginRooms(), [], 'nothing shown yet: the server sends the latest');
  const first = rooms.history('#dev', { epoch: 'E1', messages: [text(1), text(2)] });
  assert.deepEqual(first.messages.map((m) => m.seq), [1, 2]);
  assert.deepEqual(rooms.loginRooms(), [{ room: '#dev', epoch: 'E1', since: 2 }]);
  const again = rooms.history('#dev', { epoch: 'E1', messages: [text(2), text(3), { type: 'notice', seq: 4, act: 'topic' }] });
  assert.deepEqual(again.messages.map((m) => m.seq), [3, 4]);
  assert.equal(again.reset, false);
  const fresh = rooms.history('#dev', { epoch: 'E2', messages: [text(1)] });
  assert.deepEqual([fresh.reset, fresh.messages.map((m) => m.seq)], [true, [1]]);
  assert.deepEqual(rooms.loginRooms(), [{ room: '#dev', epoch: 'E2', since: 1 }]);
  rooms.remove('#dev');
  assert.deepEqual(rooms.loginRooms(), []);
});

test('moderation and membership read as sentences, "you" for oneself', () => {
  const now = 1_000_000;
  assert.equal(noticeLine({ act: 'mute', by: 'alice', username: 'bob', until: now + 600000 }, 'bob', now),
    'alice muted you for 10\u00a0min');
  assert.equal(noticeLine({ act: 'ban', by: 'alice', username: 'carol', reason: 'spam', until: now + 3600000 }, 'alice', now),
    'You banned carol for 1\u00a0h (spam)');
  assert.equal(noticeLine({ act: 'ban', by: 'alice', username: 'carol' }, 'bob', now), 'alice banned carol');
  assert.equal(noticeLine({ act: 'kick', by: 'alice', username: 'carol' }, 'bob', now), 'alice removed carol from the room');
  assert.equal(noticeLine({ act: 'topic', by: 'bob', topic: 'builds' }, 'alice', now), 'bob set the topic: builds');
  assert.equal(noticeLine({ act: 'mode', by: 'bob', inviteOnly: true }, 'alice', now), 'bob made the room invite-only');
  assert.equal(noticeLine({ act: 'op', by: 'alice', username: 'bob' }, 'bob', now), 'alice made you an operator');
  assert.equal(membershipLine({ room: '#ops', change: 'kicked', by: 'alice', reason: 'wrong room' }),
    'alice removed you from #ops (wrong room)');
  assert.equal(membershipLine({ room: '#ops', change: 'invited', by: 'alice' }),
    'alice invited you to #ops: type /join #ops to enter');
  assert.equal(membershipLine({ room: '@bob', change: 'joined' }), 'Direct messages with bob');
});

test("a ban's or a mute's end reads as a wait, not as milliseconds", () => {
  assert.equal(readableRefusal('you are banned from #ops until 1796695427911 (ms since the Unix epoch; another 3600 s)'),
    'you are banned from #ops for another 1\u00a0h');
  assert.equal(readableRefusal('you are muted in #dev until 1796695427911 (ms since the Unix epoch; another 42 s)'),
    'you are muted in #dev for another 42\u00a0s');
  assert.equal(readableRefusal('you are not in #x'), 'you are not in #x');
});

test('earlier messages: asked before the first shown, until the server holds no more', () => {
  const rooms = new Rooms();
  rooms.update(state('#dev', { lastSeq: 60 }));
  const latest = Array.from({ length: 50 }, (_, i) => text(i + 11));
  rooms.history('#dev', { epoch: 'E1', messages: latest, complete: false });
  assert.equal(rooms.get('#dev').first, 11);
  assert.equal(rooms.hasOlder('#dev'), true);
  const older = rooms.older('#dev', { epoch: 'E1', messages: [text(1), text(2), text(11)], complete: false });
  assert.deepEqual(older.map((m) => m.seq), [1, 2], 'what is shown already is not again');
  assert.equal(rooms.hasOlder('#dev'), false, 'seq 1 is the first there is');
  // A catch-up's "complete" is about what came after: older ones may still be held.
  const caught = new Rooms();
  caught.history('#ops', { epoch: 'E1', messages: [text(4), text(5)], complete: true });
  assert.equal(caught.hasOlder('#ops'), true);
  // Another epoch's page is not this room's.
  const partial = new Rooms();
  partial.history('#ops', { epoch: 'E1', messages: [text(4), text(5)], complete: false });
  assert.deepEqual(partial.older('#ops', { epoch: 'E2', messages: [text(1)] }), []);
  assert.deepEqual(partial.older('#ops', { epoch: 'E1', messages: [text(3)], complete: true }).map((m) => m.seq), [3]);
  assert.equal(partial.hasOlder('#ops'), false);
});
