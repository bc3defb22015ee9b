// The web client's rooms and direct messages (protocol v3, issue 24), and
// the accessibility audit (axe-core, WCAG 2.1 A and AA) of every screen the
// page has. scenarios.mjs runs these as it runs its own: `t` is its helpers.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE_SOURCE = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
/** The rules audited: WCAG 2.0 and 2.1, levels A and AA. */
const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/**
 * A WebSocket route that cuts the page's connection around one message:
 * `swallow` (the server never gets it) or `cutAfter` (the server gets it,
 * its confirmation is lost); new connections are refused until `restore()`.
 */
function inFlightCutter() {
  const state = { cut: false, swallow: null, cutAfter: null, pairs: new Set() };
  const cutNow = () => {
    state.cut = true;
    for (const pair of state.pairs) {
      pair.ws.close({ code: 4000, reason: 'cut by the test' }).catch(() => {});
      pair.server.close().catch(() => {});
    }
    state.pairs.clear();
  };
  state.route = (ws) => {
    if (state.cut) {
      ws.close({ code: 4000, reason: 'cut by the test' });
      return;
    }
    const server = ws.connectToServer();
    const pair = { ws, server };
    state.pairs.add(pair);
    ws.onMessage((message) => {
      const frame = JSON.parse(message);
      const text = frame.type === 'textFromUser' ? frame.text : null;
      if (text !== null && text === state.swallow) {
        state.swallow = null;
        cutNow();
        return;
      }
      server.send(message);
      if (text !== null && text === state.cutAfter) {
        state.cutAfter = null;
        cutNow();
      }
    });
    server.onMessage((message) => {
      if (state.pairs.has(pair)) ws.send(message);
    });
    ws.onClose(() => { state.pairs.delete(pair); server.close().catch(() => {}); });
    server.onClose(() => { state.pairs.delete(pair); ws.close().catch(() => {}); });
  };
  state.restore = () => { state.cut = false; };
  return state;
}

export function roomScenarios(t) {
  const { person, joined, join, say, until, screenshot, assertClean, log } = t;

  // --- finding things as a screen reader user would --------------------------

  const roomsList = (p) => p.getByRole('list', { name: 'Rooms', exact: true });
  const dmsList = (p) => p.getByRole('list', { name: 'Direct messages', exact: true });
  const membersList = (p) => p.getByRole('list', { name: 'Members', exact: true });
  const joinRoomField = (p) => p.getByRole('textbox', { name: 'Join a room', exact: true });
  const joinRoomButton = (p) => p.getByRole('button', { name: 'Join room', exact: true });
  const roomsToggle = (p) => p.getByRole('button', { name: /^Rooms/ });
  const visibleLog = (p) => p.getByRole('log');
  const messageField = (p) => p.getByRole('textbox', { name: 'Message', exact: true });
  const entry = (list, label) => list.getByRole('button', { name: new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`) });

  /**
   * The entries of a list (Rooms or Direct messages) as [label, unread,
   * mentioned, open]: what the eye sees and a screen reader says.
   */
  function entries(list) {
    return list.locator('button.room').evaluateAll((buttons) => buttons.map((b) => [
      b.querySelector('.room-label').textContent,
      b.querySelector('.badge') ? Number(b.querySelector('.badge').textContent) : 0,
      b.querySelector('.mention-mark') !== null,
      b.getAttribute('aria-current') === 'true',
    ]));
  }

  async function expectEntries(who, list, expected, what) {
    await until(`${who.label}'s ${what} to be ${JSON.stringify(expected)}`, async () => {
      const got = await entries(list);
      return { ok: JSON.stringify(got) === JSON.stringify(expected), got };
    });
  }

  /** The chat messages of the visible log: [name, text]. */
  function shown(who) {
    return visibleLog(who.page).locator('li.msg').evaluateAll((items) => items.map((li) => [
      li.querySelector('.who').firstChild.textContent, li.querySelector('.text').textContent,
    ]));
  }

  async function expectShown(who, expected) {
    await until(`${who.label}'s open room to show ${JSON.stringify(expected)}`, async () => {
      const got = await shown(who);
      return { ok: JSON.stringify(got) === JSON.stringify(expected), got };
    });
  }

  /** Waits for a quiet line in the visible log that matches `pattern`. */
  async function expectLine(who, pattern) {
    await until(`${who.label} to show a line matching ${pattern}`, async () => {
      const got = await visibleLog(who.page).locator('li.notice > span').allTextContents();
      return { ok: got.some((line) => pattern.test(line)), got };
    });
  }

  async function expectHead(who, name, topic) {
    await until(`${who.label}'s open room to be ${name} (${topic})`, async () => {
      const got = [await who.page.locator('#room-name').textContent(),
        await who.page.locator('#room-topic').isVisible() ? await who.page.locator('#room-topic').textContent() : ''];
      return { ok: got[0] === name && (topic === undefined || got[1] === topic), got };
    });
  }

  async function expectMembers(who, expected) {
    await until(`${who.label}'s Members to be ${JSON.stringify(expected)}`, async () => {
      const got = await membersList(who.page).locator('li .member').allTextContents();
      return { ok: JSON.stringify(got) === JSON.stringify(expected), got };
    });
  }

  async function expectTitle(who, title) {
    await until(`${who.label}'s title to be ${title}`, async () => {
      const got = await who.page.title();
      return { ok: got === title, got };
    });
  }

  /** Types a line (a message or a command) in the message field and sends it. */
  async function type(who, line) {
    await say(who, line);
  }

  async function joinRoom(who, room, shownAs = room) {
    await type(who, `/join ${room}`);
    await expectHead(who, shownAs);
  }

  /**
   * Audits the page as it is with axe-core (WCAG 2.1 A and AA): fails on
   * any serious or critical violation; the lesser ones are logged.
   */
  async function audit(who, screen) {
    const page = who.page;
    // Evaluated over the DevTools protocol: the page's policy does not apply.
    if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE);
    const result = await page.evaluate((tags) => window.axe.run(document, {
      runOnly: { type: 'tag', values: tags },
      resultTypes: ['violations'],
    }).then((r) => r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5),
    }))), WCAG_TAGS);
    const grave = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    const lesser = result.filter((v) => !grave.includes(v));
    log(`axe ${screen} (${who.label}): ${grave.length} serious or critical, ${lesser.length} lesser` +
      (lesser.length ? `: ${lesser.map((v) => `${v.id} (${v.impact})`).join(', ')}` : ''));
    assert.deepEqual(grave, [], `axe-core on the ${screen} screen: ${JSON.stringify(grave, null, 1)}`);
  }

  /** Opens the room lists on a phone (the drawer), if they are not shown. */
  async function showLists(who) {
    const toggle = roomsToggle(who.page);
    if (await toggle.isVisible() && (await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
    await roomsList(who.page).waitFor();
  }

  return {
    /**
     * The lists "Rooms" and "Direct messages", "Join a room", the topic and
     * the members of the open room, unread counts and mention marks (in the
     * lists and the title), at 1280×800; the login and error screens audited.
     */
    async rooms_lists_unread_and_mentions(browser) {
      const alice = await person(browser, 'alice', { viewport: DESKTOP });
      await audit(alice, 'login');
      await joined(alice, 'alice');
      await audit(alice, 'chat (the lobby)');
      await expectEntries(alice, roomsList(alice.page), [['#lobby', 0, false, true]], 'Rooms');
      await expectEntries(alice, dmsList(alice.page), [], 'Direct messages');
      await expectHead(alice, '#lobby');

      const bob = await person(browser, 'bob', { viewport: DESKTOP });
      await join(bob, 'ALICE');
      await bob.page.locator('#name-error').filter({ hasText: 'is taken' }).waitFor();
      await audit(bob, 'login error');
      await joined(bob, 'bob');

      // "Join a room" and "Join room": the room is created and opened.
      await joinRoomField(alice.page).fill('dev');
      await joinRoomButton(alice.page).click();
      await expectHead(alice, '#dev');
      await expectEntries(alice, roomsList(alice.page), [['#lobby', 0, false, false], ['#dev', 0, false, true]], 'Rooms');
      await expectMembers(alice, ['alice (owner)']);
      assert.equal(await joinRoomField(alice.page).inputValue(), '', 'the field empties once joined');
      await type(alice, '/topic builds and releases');
      await expectHead(alice, '#dev', 'builds and releases');
      await expectLine(alice, /^You set the topic: builds and releases$/);

      // The same from the message field, as in chat-cli.
      await joinRoom(bob, '#Dev', '#dev');
      await expectHead(bob, '#dev', 'builds and releases');
      await expectMembers(bob, ['alice (owner)', 'bob']);
      await expectMembers(alice, ['alice (owner)', 'bob']);
      await expectLine(alice, /^bob joined$/);

      // Alice goes back to the lobby; bob talks in #dev, once naming her.
      await entry(roomsList(alice.page), '#lobby').click();
      await expectHead(alice, '#lobby');
      await type(bob, 'the build is red');
      await type(bob, '@alice can you look?');
      await expectShown(bob, [['bob', 'the build is red'], ['bob', '@alice can you look?']]);
      await expectEntries(alice, roomsList(alice.page), [['#lobby', 0, false, true], ['#dev', 2, true, false]], 'Rooms');
      await expectTitle(alice, '(2) wschat');
      await expectShown(alice, []);
      const name = await entry(roomsList(alice.page), '#dev').textContent();
      assert.match(name, /2 unread, mentions you/, 'the count and the mention are said too');
      await type(alice, '/unread');
      await expectLine(alice, /^Unread: #dev 2 \(mentions you\)$/);
      await screenshot(alice, 'rooms-unread-1280');
      await audit(alice, 'rooms with unread badges');

      // A room's messages stay in it: the lobby says nothing of them.
      await type(alice, 'lunch anyone?');
      await expectShown(alice, [['alice', 'lunch anyone?']]);
      await expectEntries(bob, roomsList(bob.page), [['#lobby', 1, false, false], ['#dev', 0, false, true]], 'Rooms');

      // Opening the room reads it: no count, no mark, no number in the title.
      await entry(roomsList(alice.page), '#dev').click();
      await expectShown(alice, [['bob', 'the build is red'], ['bob', '@alice can you look?']]);
      await expectEntries(alice, roomsList(alice.page), [['#lobby', 0, false, false], ['#dev', 0, false, true]], 'Rooms');
      await expectTitle(alice, 'wschat');
      await type(alice, 'on it: a flaky test, I think');
      await type(bob, 'thanks!');
      await expectShown(alice, [['bob', 'the build is red'], ['bob', '@alice can you look?'],
        ['alice', 'on it: a flaky test, I think'], ['bob', 'thanks!']]);
      await type(bob, '/msg alice lunch at 12:30?');
      await expectEntries(alice, dmsList(alice.page), [['bob', 1, false, false]], 'Direct messages');
      await expectMembers(alice, ['alice (owner)', 'bob']);
      await screenshot(alice, 'rooms-1280');
      await audit(alice, 'a room');

      // Keyboard alone: Enter opens a room; the lists, drawn again as messages come, keep the focus.
      await entry(roomsList(alice.page), '#lobby').focus();
      await type(bob, 'ping');
      await expectShown(alice, [['bob', 'the build is red'], ['bob', '@alice can you look?'],
        ['alice', 'on it: a flaky test, I think'], ['bob', 'thanks!'], ['bob', 'ping']]);
      assert.equal(await alice.page.evaluate(() => document.activeElement.dataset.room), '#lobby');
      await alice.page.keyboard.press('Enter');
      await expectHead(alice, '#lobby');

      // /part leaves: the room goes from the list, and the lobby says so.
      await type(bob, '/part');
      await expectHead(bob, '#lobby');
      await expectLine(bob, /^You left #dev$/);
      await expectEntries(bob, roomsList(bob.page), [['#lobby', 0, false, true]], 'Rooms');
      await entry(roomsList(alice.page), '#dev').click();
      await expectLine(alice, /^bob left$/);
      await expectMembers(alice, ['alice (owner)']);

      for (const who of [alice, bob]) assertClean(who);
    },

    /** The same on a phone (390×844): the lists are behind the "Rooms" button. */
    async rooms_on_a_phone(browser) {
      const bob = await person(browser, 'bob', { viewport: DESKTOP });
      await joined(bob, 'bob');
      await joinRoom(bob, '#dev');
      await type(bob, '/topic builds and releases');
      const carol = await person(browser, 'carol', { viewport: PHONE });
      await audit(carol, 'login (phone)');
      await joined(carol, 'carol');
      await expectHead(carol, '#lobby');
      assert.equal(await roomsList(carol.page).isVisible(), false, 'the lists wait behind the button');
      await audit(carol, 'chat (phone)');
      await roomsToggle(carol.page).click();
      assert.equal(await roomsToggle(carol.page).getAttribute('aria-expanded'), 'true');
      await roomsList(carol.page).waitFor();
      await joinRoomField(carol.page).waitFor();
      // What the drawer covers is out of reach (no focus, no screen reader) while it is open.
      const focusable = () => carol.page.evaluate(() => {
        const field = document.getElementById('message');
        field.focus();
        return document.activeElement === field;
      });
      assert.equal(await focusable(), false, 'the message field cannot take the focus behind the drawer');
      await audit(carol, 'room lists (phone)');
      await carol.page.keyboard.press('Escape');
      await roomsList(carol.page).waitFor({ state: 'hidden' });
      assert.equal(await roomsToggle(carol.page).getAttribute('aria-expanded'), 'false');
      assert.equal(await focusable(), true);
      // A tap beside the drawer closes it too.
      await showLists(carol);
      await carol.page.mouse.click(370, 500);
      await roomsList(carol.page).waitFor({ state: 'hidden' });

      await showLists(carol);
      await joinRoomField(carol.page).fill('#dev');
      await joinRoomButton(carol.page).click();
      await expectHead(carol, '#dev', 'builds and releases');
      await roomsList(carol.page).waitFor({ state: 'hidden' });
      await type(bob, 'welcome carol');
      await type(carol, 'thanks');
      await expectShown(carol, [['bob', 'welcome carol'], ['carol', 'thanks']]);
      await showLists(carol);
      await entry(roomsList(carol.page), '#lobby').click();
      await type(bob, 'a second one');
      await type(bob, 'carol: and a third');
      await until("carol's Rooms button to count the unread", async () => {
        const got = await roomsToggle(carol.page).textContent();
        return { ok: got === 'Rooms (2 unread)', got };
      });
      await showLists(carol);
      await expectEntries(carol, roomsList(carol.page), [['#lobby', 0, false, true], ['#dev', 2, true, false]], 'Rooms');
      await screenshot(carol, 'rooms-unread-390');
      await entry(roomsList(carol.page), '#dev').click();
      await expectShown(carol, [['bob', 'welcome carol'], ['carol', 'thanks'], ['bob', 'a second one'], ['bob', 'carol: and a third']]);
      // Read as soon as it is open.
      assert.equal(await roomsToggle(carol.page).textContent(), 'Rooms');
      await screenshot(carol, 'rooms-390');
      await audit(carol, 'a room (phone)');

      // An operator on a phone: a member's actions open as a sheet in view.
      await joinRoom(carol, '#help');
      await joinRoom(bob, '#help');
      await expectMembers(carol, ['carol (owner)', 'bob']);
      await carol.page.getByRole('button', { name: 'Moderate bob', exact: true }).click();
      const sheet = carol.page.getByRole('group', { name: 'Moderate bob', exact: true });
      const box = await sheet.boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width && box.y + box.height <= PHONE.height,
        `the actions are in view: ${JSON.stringify(box)}`);
      await audit(carol, "an operator's member actions (phone)");
      await sheet.getByRole('button', { name: 'Mute', exact: true }).click();
      await sheet.waitFor({ state: 'hidden' });
      await expectMembers(carol, ['carol (owner)', 'bob (muted)']);
      await type(bob, 'may I?');
      await bob.page.locator('#message-error').filter({ hasText: /muted in #help/ }).waitFor();
      await expectLine(carol, /^You muted bob$/);
      await screenshot(carol, 'moderated-room-390');
      for (const who of [bob, carol]) assertClean(who);
    },

    /** "Message NAME" beside a name in Online opens a DM; /msg and /query too. */
    async direct_messages(browser) {
      const alice = await person(browser, 'alice', { viewport: DESKTOP });
      // Bob's phone is dark: the audit covers the dark colours too.
      const bob = await person(browser, 'bob', { viewport: PHONE, colorScheme: 'dark' });
      await joined(alice, 'alice');
      await joined(bob, 'bob');
      const messageBob = alice.page.getByRole('button', { name: 'Message bob', exact: true });
      await messageBob.click();
      await expectHead(alice, 'bob', 'Direct messages with bob');
      assert.equal(await alice.page.evaluate(() => document.activeElement.id), 'message');
      assert.equal(await membersList(alice.page).count(), 0, 'a DM has no Members list');
      assert.equal(await messageField(alice.page).getAttribute('placeholder'), 'Message bob');
      await type(alice, 'lunch at 12:30?');
      await expectShown(alice, [['alice', 'lunch at 12:30?']]);
      await expectEntries(alice, dmsList(alice.page), [['bob', 0, false, true]], 'Direct messages');
      await audit(alice, 'a direct conversation');
      await screenshot(alice, 'dm-1280');

      // Bob, on his phone in the lobby, sees it waiting.
      await until("bob's Rooms button to count the DM", async () => {
        const got = await roomsToggle(bob.page).textContent();
        return { ok: got === 'Rooms (1 unread)', got };
      });
      await expectTitle(bob, '(1) wschat');
      await showLists(bob);
      await expectEntries(bob, dmsList(bob.page), [['alice', 1, false, false]], 'Direct messages');
      await entry(dmsList(bob.page), 'alice').click();
      await expectHead(bob, 'alice', 'Direct messages with alice');
      await expectShown(bob, [['alice', 'lunch at 12:30?']]);
      await type(bob, 'yes');
      await expectShown(alice, [['alice', 'lunch at 12:30?'], ['bob', 'yes']]);
      await expectTitle(bob, 'wschat');
      await screenshot(bob, 'dm-390');
      await audit(bob, 'a direct conversation (phone)');

      // /msg says it without leaving the room; /query opens the conversation.
      await entry(dmsList(alice.page), 'bob').waitFor();
      await entry(roomsList(alice.page), '#lobby').click();
      await type(alice, '/msg bob see you there');
      await expectHead(alice, '#lobby');
      await expectShown(bob, [['alice', 'lunch at 12:30?'], ['bob', 'yes'], ['alice', 'see you there']]);
      await type(alice, '/query bob');
      await expectHead(alice, 'bob');
      await expectShown(alice, [['alice', 'lunch at 12:30?'], ['bob', 'yes'], ['alice', 'see you there']]);

      // A name nobody holds: refused next to the field.
      await type(alice, '/msg nobody hello?');
      await alice.page.locator('#message-error').filter({ hasText: /nobody/ }).waitFor();
      await audit(alice, 'an error under the message field');
      for (const who of [alice, bob]) assertClean(who);
    },

    /**
     * Moderation from the message field and from a member's menu: a mute,
     * a kick and a ban are enforced by the server and shown on every page.
     */
    async moderation(browser) {
      const alice = await person(browser, 'alice', { viewport: DESKTOP });
      const bob = await person(browser, 'bob', { viewport: DESKTOP });
      const carol = await person(browser, 'carol', { viewport: PHONE });
      await joined(alice, 'alice');
      await joined(bob, 'bob');
      await joined(carol, 'carol');
      await joinRoom(alice, '#ops');
      await type(alice, '/topic incidents only');
      await joinRoom(bob, '#ops');
      await joinRoom(carol, '#ops');
      await expectMembers(alice, ['alice (owner)', 'bob', 'carol']);
      // Only an operator has a member's menu.
      await alice.page.getByRole('button', { name: 'Moderate bob', exact: true }).waitFor();
      await expectMembers(bob, ['alice (owner)', 'bob', 'carol']);
      assert.equal(await bob.page.getByRole('button', { name: /^Moderate / }).count(), 0);

      // /mute: bob may read but not say.
      await type(alice, '/mute bob 10m');
      await expectLine(alice, /^You muted bob for 10\smin$/);
      await expectLine(bob, /^alice muted you for 10\smin$/);
      await expectMembers(alice, ['alice (owner)', 'bob (muted)', 'carol']);
      await type(bob, 'can I still talk?');
      await bob.page.locator('#message-error').filter({ hasText: /^Not sent: You are muted in #ops for another 10\smin$/ }).waitFor();
      await audit(bob, 'a refusal (muted)');

      // The member's menu, by keyboard: Enter opens it on its first action, Escape closes it.
      const moderateCarol = alice.page.getByRole('button', { name: 'Moderate carol', exact: true });
      await moderateCarol.focus();
      await alice.page.keyboard.press('Enter');
      const menu = alice.page.getByRole('group', { name: 'Moderate carol', exact: true });
      assert.equal(await moderateCarol.getAttribute('aria-expanded'), 'true');
      assert.equal(await alice.page.evaluate(() => document.activeElement.textContent), 'Kick');
      // Someone comes and goes: the Members list is drawn again, the menu stays open on Kick.
      const dave = await person(browser, 'dave', { viewport: DESKTOP });
      await joined(dave, 'dave');
      await joinRoom(dave, '#ops');
      await expectMembers(alice, ['alice (owner)', 'bob (muted)', 'carol', 'dave']);
      await type(dave, '/part');
      await expectMembers(alice, ['alice (owner)', 'bob (muted)', 'carol']);
      assert.equal(await moderateCarol.getAttribute('aria-expanded'), 'true');
      assert.equal(await alice.page.evaluate(() => document.activeElement.textContent), 'Kick');
      await alice.page.keyboard.press('Escape');
      await menu.waitFor({ state: 'hidden' });
      assert.equal(await alice.page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Moderate carol');
      // And by pointer: kick carol.
      await moderateCarol.click();
      await audit(alice, "an operator's member menu");
      await menu.getByRole('button', { name: 'Kick', exact: true }).click();
      await expectLine(alice, /^You removed carol from the room$/);
      await expectMembers(alice, ['alice (owner)', 'bob (muted)']);
      await expectHead(carol, '#lobby');
      await expectLine(carol, /^alice removed you from #ops$/);
      await screenshot(carol, 'moderated-kicked-390');
      await audit(carol, 'kicked (phone)');
      await showLists(carol);
      await expectEntries(carol, roomsList(carol.page), [['#lobby', 0, false, true]], 'Rooms');

      // A kick is not a ban: carol comes back, and is banned.
      await joinRoomField(carol.page).fill('#ops');
      await joinRoomButton(carol.page).click();
      await expectHead(carol, '#ops');
      await expectMembers(alice, ['alice (owner)', 'bob (muted)', 'carol']);
      await type(alice, '/ban carol 1h spam');
      await expectLine(alice, /^You banned carol for 1\sh \(spam\)$/);
      await expectHead(carol, '#lobby');
      await type(carol, '/join #ops');
      await carol.page.locator('#message-error').filter({ hasText: /banned/ }).waitFor();
      await expectHead(carol, '#lobby');
      await showLists(carol);
      await joinRoomField(carol.page).fill('#ops');
      await joinRoomButton(carol.page).click();
      await carol.page.locator('#join-room-error').filter({ hasText: /^You are banned from #ops for another (60\smin|1\sh)$/ }).waitFor();
      assert.equal(await joinRoomField(carol.page).getAttribute('aria-invalid'), 'true');
      await screenshot(carol, 'moderated-banned-390');
      await audit(carol, 'a refused join (phone)');
      await carol.page.keyboard.press('Escape');

      // /op makes bob an operator; /mode +i closes the room.
      await type(alice, '/unmute bob');
      await type(alice, '/op bob');
      await expectMembers(alice, ['alice (owner)', 'bob (operator)']);
      await type(alice, '/mode +i');
      await expectHead(bob, '#ops', 'incidents only · invite-only');
      await type(bob, 'I can talk again');
      await expectShown(alice, [['bob', 'I can talk again']]);
      await screenshot(alice, 'moderated-room-1280');
      await audit(alice, 'a moderated room');
      // Invite-only: the ban lifted, carol needs an invite to come back.
      await type(alice, '/unban carol');
      await expectLine(alice, /^You lifted the ban on carol$/);
      await type(carol, '/join #ops');
      await carol.page.locator('#message-error').filter({ hasText: /invite-only/ }).waitFor();
      await type(alice, '/invite carol');
      await expectLine(carol, /^alice invited you to #ops: type \/join #ops to enter$/);
      await type(carol, '/join #ops');
      await expectHead(carol, '#ops', 'incidents only · invite-only');
      await expectMembers(alice, ['alice (owner)', 'bob (operator)', 'carol']);
      await type(alice, '/kick carol');
      await expectMembers(alice, ['alice (owner)', 'bob (operator)']);
      await type(alice, '/names');
      await expectLine(alice, /^Members of #ops: alice \(owner\), bob \(operator\)$/);
      // Not an operator of the lobby: refused, said under the field.
      await entry(roomsList(bob.page), '#lobby').click();
      await type(bob, '/kick alice');
      await bob.page.locator('#message-error').filter({ hasText: /operator|may not|forbidden/i }).waitFor();
      // Alice is a server operator (--operators alice): she moderates the lobby.
      await entry(roomsList(alice.page), '#lobby').click();
      await type(carol, 'hello lobby');
      await t.expectMessages(alice, [['carol', 'hello lobby', false]]);
      await type(alice, '/mute carol 2m');
      await expectLine(carol, /^alice muted you for 2\smin$/);
      await type(carol, 'still here?');
      await carol.page.locator('#message-error').filter({ hasText: /^Not sent: You are muted in #lobby for another (2\smin|1\d\d\ss)$/ }).waitFor();
      for (const who of [alice, bob, carol, dave]) assertClean(who);
    },

    /** The open room survives a reload; a return visit opens it again. */
    async remembered_room_across_a_reload(browser) {
      const alice = await person(browser, 'alice', { viewport: DESKTOP });
      await joined(alice, 'alice');
      await joinRoom(alice, '#dev');
      await type(alice, 'before the reload');
      await expectShown(alice, [['alice', 'before the reload']]);
      await alice.page.reload();
      await t.expectStatus(alice, /^Online$/);
      await expectHead(alice, '#dev');
      await expectShown(alice, [['alice', 'before the reload']]);
      await type(alice, 'after the reload');
      await expectShown(alice, [['alice', 'before the reload'], ['alice', 'after the reload']]);
      // The lobby, once opened, is what the next visit opens.
      await entry(roomsList(alice.page), '#lobby').click();
      await alice.page.reload();
      await t.expectStatus(alice, /^Online$/);
      await expectHead(alice, '#lobby');
      assertClean(alice);
    },

    /**
     * Read markers are the server's: two pages of one name agree on what
     * is unread, whichever of them read it.
     */
    async read_markers_agree_across_pages(browser) {
      const phone = await person(browser, 'alice (phone)', { viewport: PHONE });
      await joined(phone, 'alice');
      await joinRoom(phone, '#dev');
      await showLists(phone);
      await entry(roomsList(phone.page), '#lobby').click();
      // The same person on a laptop: same browser storage, so the same name.
      const laptop = { label: 'alice (laptop)', page: await phone.context.newPage(), problems: [], dialogs: [], consoleErrors: [] };
      laptop.page.on('pageerror', (error) => laptop.problems.push(`script error: ${error.message}`));
      await laptop.page.setViewportSize(DESKTOP);
      await laptop.page.goto(new URL(phone.page.url()).href);
      await t.expectStatus(laptop, /^Online$/);
      await expectHead(laptop, '#lobby');

      const bob = await person(browser, 'bob', { viewport: DESKTOP });
      await joined(bob, 'bob');
      await joinRoom(bob, '#dev');
      await type(bob, 'one');
      await type(bob, 'two, alice');
      await expectEntries(laptop, roomsList(laptop.page), [['#lobby', 0, false, true], ['#dev', 2, true, false]], 'Rooms');
      await showLists(phone);
      await expectEntries(phone, roomsList(phone.page), [['#lobby', 0, false, true], ['#dev', 2, true, false]], 'Rooms');
      await expectTitle(phone, '(2) wschat');

      // Read on the laptop: the phone agrees.
      await entry(roomsList(laptop.page), '#dev').click();
      await expectShown(laptop, [['bob', 'one'], ['bob', 'two, alice']]);
      await expectEntries(phone, roomsList(phone.page), [['#lobby', 0, false, true], ['#dev', 0, false, false]], 'Rooms');
      await expectTitle(phone, 'wschat');

      // A third message, read on the phone this time.
      await type(bob, 'three');
      await entry(roomsList(laptop.page), '#lobby').click();
      await type(bob, 'four');
      await expectEntries(laptop, roomsList(laptop.page), [['#lobby', 0, false, true], ['#dev', 1, false, false]], 'Rooms');
      await entry(roomsList(phone.page), '#dev').click();
      await expectShown(phone, [['bob', 'one'], ['bob', 'two, alice'], ['bob', 'three'], ['bob', 'four']]);
      await expectEntries(laptop, roomsList(laptop.page), [['#lobby', 0, false, true], ['#dev', 0, false, false]], 'Rooms');
      for (const who of [phone, laptop, bob]) assertClean(who);
    },

    /**
     * After a dropped connection and after a server restart (its store
     * keeps every room's numbering), every room catches up once: the login
     * lists each room with the last seq shown, nothing is shown twice, and
     * a DM that came meanwhile waits, counted.
     */
    async rooms_catch_up_after_a_drop_and_a_restart(browser) {
      const link = t.cutter();
      const alice = await person(browser, 'alice', { viewport: DESKTOP, route: link.route });
      const bob = await person(browser, 'bob', { viewport: DESKTOP });
      await joined(alice, 'alice');
      await joined(bob, 'bob');
      await joinRoom(alice, '#dev');
      await joinRoom(bob, '#dev');
      await type(bob, 'one');
      await expectShown(alice, [['bob', 'one']]);

      await link.drop();
      await t.expectStatus(alice, /^Reconnecting…$/);
      await type(bob, 'away 1');
      await type(bob, '/msg alice psst');
      await expectShown(bob, [['bob', 'one'], ['bob', 'away 1']]);
      link.restore();
      await t.reconnectNow(alice);
      await expectShown(alice, [['bob', 'one'], ['bob', 'away 1']]);
      await expectEntries(alice, dmsList(alice.page), [['bob', 1, false, false]], 'Direct messages');
      const logins = () => link.fromPage.filter((f) => f.type === 'login');
      const listed = (login) => (login.rooms || []).map((r) => [r.room, r.since, typeof r.epoch]);
      assert.deepEqual(listed(logins()[0]), [], 'a first login knows no room');
      assert.deepEqual(listed(logins()[1]), [['#dev', 1, 'string']], JSON.stringify(logins()[1]));

      // The server restarts while alice is away; bob talks to the new one.
      await link.drop();
      await t.ask('restart');
      await t.expectStatus(bob, /^Online$/, t.RECONNECT_MS);
      await type(bob, 'after the restart');
      await expectShown(bob, [['bob', 'one'], ['bob', 'away 1'], ['bob', 'after the restart']]);
      link.restore();
      await t.reconnectNow(alice);
      await expectShown(alice, [['bob', 'one'], ['bob', 'away 1'], ['bob', 'after the restart']]);
      await entry(dmsList(alice.page), 'bob').click();
      await expectShown(alice, [['bob', 'psst']]);
      const third = listed(logins()[2]).map(([room, since]) => [room, since]).sort();
      assert.deepEqual(third, [['#dev', 2], ['@bob', 1]], JSON.stringify(logins()[2]));
      const said = await visibleLog(alice.page).locator('li.notice > span').allTextContents();
      assert.deepEqual(said.filter((n) => /new message history|missed/.test(n)), [], said.join('\n'));
      for (const who of [alice, bob]) assertClean(who, { allowConsole: t.SOCKET_ERRORS });
    },

    /**
     * A message in flight in a room when the connection drops is settled
     * against that room's catch-up: sent again if the server never got it,
     * shown once if it did (its confirmation was what got lost).
     */
    async in_flight_room_messages_are_settled_after_a_drop(browser) {
      const link = inFlightCutter();
      const alice = await person(browser, 'alice', { viewport: DESKTOP, route: link.route });
      const bob = await person(browser, 'bob', { viewport: DESKTOP });
      await joined(alice, 'alice');
      await joined(bob, 'bob');
      await joinRoom(bob, '#dev');
      await joinRoom(alice, '#dev');
      await type(bob, 'hello');
      await expectShown(alice, [['bob', 'hello']]);

      // Lost on the way: the server never got it.
      link.swallow = 'never got there';
      await type(alice, 'never got there');
      await t.expectStatus(alice, /^Reconnecting…$/);
      await alice.page.locator('#outbox').filter({ hasText: 'checking whether it arrived' }).waitFor();
      link.restore();
      await t.reconnectNow(alice);
      await expectShown(bob, [['bob', 'hello'], ['alice', 'never got there']]);
      await expectShown(alice, [['bob', 'hello'], ['alice', 'never got there']]);
      await expectLine(alice, /^The server never got "never got there" before the connection dropped: sending it again\.$/);

      // Arrived, but its confirmation was lost: shown once, not sent again.
      link.cutAfter = 'got there unconfirmed';
      await type(alice, 'got there unconfirmed');
      await expectShown(bob, [['bob', 'hello'], ['alice', 'never got there'], ['alice', 'got there unconfirmed']]);
      await t.expectStatus(alice, /^Reconnecting…$/);
      link.restore();
      await t.reconnectNow(alice);
      await expectShown(alice, [['bob', 'hello'], ['alice', 'never got there'], ['alice', 'got there unconfirmed']]);
      await alice.page.locator('#outbox').waitFor({ state: 'hidden' });
      await type(alice, 'and after');
      const all = [['bob', 'hello'], ['alice', 'never got there'], ['alice', 'got there unconfirmed'], ['alice', 'and after']];
      await expectShown(bob, all);
      await expectShown(alice, all);
      const said = await visibleLog(alice.page).locator('li.notice > span').allTextContents();
      assert.deepEqual(said.filter((n) => /may not have been delivered|got there unconfirmed/.test(n)), [], said.join('\n'));
      for (const who of [alice, bob]) assertClean(who, { allowConsole: t.SOCKET_ERRORS });
    },

    /**
     * A room shows its latest 50 messages; "Show earlier messages" pages
     * back until the first, keeping the view where it was.
     */
    async earlier_messages_on_demand(browser) {
      const bob = await person(browser, 'bob', { viewport: DESKTOP });
      await joined(bob, 'bob');
      await joinRoom(bob, '#dev');
      const lines = Array.from({ length: 55 }, (_, i) => `line ${i + 1}`);
      for (const line of lines) await type(bob, line);
      await until('bob to have said them all', async () => {
        const got = (await shown(bob)).length;
        return { ok: got === 55, got };
      });
      const alice = await person(browser, 'alice', { viewport: DESKTOP });
      await joined(alice, 'alice');
      await joinRoom(alice, '#dev');
      await expectShown(alice, lines.slice(5).map((l) => ['bob', l]));
      const earlier = alice.page.getByRole('button', { name: 'Show earlier messages', exact: true });
      await audit(alice, 'a room with earlier messages');
      await earlier.click();
      await expectShown(alice, lines.map((l) => ['bob', l]));
      await earlier.waitFor({ state: 'hidden' });
      // A return visit: the latest again, and the way back to the first.
      await alice.page.reload();
      await expectShown(alice, lines.slice(5).map((l) => ['bob', l]));
      await earlier.click();
      await expectShown(alice, lines.map((l) => ['bob', l]));
      for (const who of [alice, bob]) assertClean(who);
    },

    /**
     * A server that selects v2 (a cluster node): the lobby as before, and
     * nothing of rooms on the page.
     */
    async a_v2_server_gets_the_lobby_only(browser) {
      const alice = await person(browser, 'alice', { viewport: DESKTOP });
      const bob = await person(browser, 'bob', { viewport: PHONE });
      await joined(alice, 'alice');
      await joined(bob, 'bob');
      await t.expectOnline(alice, ['alice (you)', 'bob']);
      for (const who of [alice, bob]) {
        assert.equal(await roomsList(who.page).count(), 0, `${who.label}: no Rooms list`);
        assert.equal(await who.page.locator('#room-head').isVisible(), false);
        assert.equal(await who.page.getByRole('button', { name: /^Message / }).count(), 0);
        assert.equal(await membersList(who.page).count(), 0);
      }
      await type(alice, 'hello on v2');
      await t.expectMessages(bob, [['alice', 'hello on v2', false]]);
      await type(alice, '/join #dev');
      await alice.page.locator('#message-error').filter({ hasText: /no rooms/ }).waitFor();
      await audit(bob, 'the lobby on a v2 server (phone)');
      await screenshot(bob, 'v2-lobby-390');
      for (const who of [alice, bob]) assertClean(who);
    },
  };
}
