// Drives chat-server's web client in Debian's headless Chromium with
// playwright-core. tests/web_client.rs runs one scenario per test:
//
//   node scenarios.mjs SCENARIO http://127.0.0.1:PORT/ SCREENSHOT_DIR
//
// and exits 0 when every check passed. A line "@restart" on stdout asks
// the Rust side to kill the server and start it again on the same port;
// it answers "ok" on stdin. Every wait is bounded.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { join as joinPath } from 'node:path';
import { roomScenarios } from './rooms-scenarios.mjs';

const [scenarioName, baseUrl, shots] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
/** The longest any single wait may take. */
const STEP_MS = 15000;
/** What a reconnection may take: a few backoff steps while the server restarts. */
const RECONNECT_MS = 20000;

// --- talking to the Rust side ---------------------------------------------

const started = Date.now();
/** A line for the transcript that a failing test shows. */
function log(text) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(2)} s] ${text}`);
}

const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function ask(request) {
  process.stdout.write(`@${request}\n`);
  const { value, done } = await answers.next();
  assert.ok(!done && value === 'ok', `the test harness did not ${request}: ${value}`);
}

// --- the browser ----------------------------------------------------------

async function launch() {
  try {
    return await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000,
      // As root on a machine whose only network is loopback: no sandbox,
      // and none of Chromium's own connections to the outside.
      args: [
        '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--disable-dev-shm-usage',
      ],
    });
  } catch (error) {
    throw new Error(`Chromium did not start (${CHROMIUM}; tests/run.sh installs it): ${error.message}`);
  }
}

/**
 * A person with a browser of their own (separate storage): a page on the
 * chat, watched for script errors, dialogs and requests to other hosts.
 * `route` (optional) sits between the page and the server's WebSocket.
 */
async function person(browser, label, options = {}) {
  const context = await browser.newContext({
    viewport: options.viewport || { width: 1000, height: 620 },
    colorScheme: options.colorScheme || 'light',
    locale: 'en-GB',
    timezoneId: 'UTC',
    ...options.context, // e.g. a phone's { hasTouch, isMobile }, another locale
  });
  context.setDefaultTimeout(STEP_MS);
  const page = await context.newPage();
  const who = { label, context, page, problems: [], dialogs: [], consoleErrors: [] };
  const origin = new URL(baseUrl).origin;
  page.on('pageerror', (error) => who.problems.push(`script error: ${error.message}`));
  page.on('dialog', async (dialog) => {
    who.dialogs.push(dialog.message());
    await dialog.dismiss().catch(() => {});
  });
  page.on('console', (message) => {
    if (message.type() === 'error') who.consoleErrors.push(message.text());
  });
  page.on('request', (request) => {
    const url = request.url();
    if (new URL(url).origin !== origin) who.problems.push(`a request to another host: ${url}`);
  });
  page.on('websocket', (ws) => {
    if (ws.url() !== `${origin.replace('http', 'ws')}/`) who.problems.push(`a WebSocket to ${ws.url()}`);
  });
  if (options.route) await page.routeWebSocket(/.*/, options.route);
  who.response = await page.goto(baseUrl);
  return who;
}

/** Checks that nothing went wrong in the page that was not expected. */
function assertClean(who, { allowConsole = [] } = {}) {
  assert.deepEqual(who.problems, [], `${who.label}: problems`);
  assert.deepEqual(who.dialogs, [], `${who.label}: a dialog opened (a script ran)`);
  const unexpected = who.consoleErrors.filter((text) => !allowConsole.some((re) => re.test(text)));
  assert.deepEqual(unexpected, [], `${who.label}: console errors`);
}

/** WebSocket failures while the server is away are the browser's to log. */
const SOCKET_ERRORS = [/WebSocket connection to .* failed/];

// The controls, found as a screen reader user would find them.
const nameField = (p) => p.getByRole('textbox', { name: 'Name', exact: true });
const joinButton = (p) => p.getByRole('button', { name: 'Join', exact: true });
const messageField = (p) => p.getByRole('textbox', { name: 'Message', exact: true });
const sendButton = (p) => p.getByRole('button', { name: 'Send', exact: true });
const logoutButton = (p) => p.getByRole('button', { name: 'Log out', exact: true });
const onlineList = (p) => p.getByRole('list', { name: 'Online', exact: true });
const messageLog = (p) => p.getByRole('log');

async function join(who, name) {
  await nameField(who.page).fill(name);
  await joinButton(who.page).click();
}

async function joined(who, name) {
  await join(who, name);
  await who.page.locator('#me-name').filter({ hasText: name }).waitFor();
  await until(`${who.label} online`, async () => {
    const status = await who.page.locator('#status').textContent();
    return { ok: status === 'Online', got: status };
  });
}

async function say(who, text) {
  await messageField(who.page).fill(text);
  await messageField(who.page).press('Enter');
}

/** Polls `check` (which returns { ok, got }) until ok, failing after `ms`. */
async function until(what, check, ms = STEP_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await check();
    if (last.ok) return last.got;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(last.got, null, 1)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The chat messages in a page's log: [name, text, own]. */
function messages(who) {
  return messageLog(who.page).locator('li.msg').evaluateAll((items) => items.map((li) => [
    li.querySelector('.who').firstChild.textContent,
    li.querySelector('.text').textContent,
    li.classList.contains('own'),
  ]));
}

/** The quiet lines in a page's log, without their times. */
function notices(who) {
  return messageLog(who.page).locator('li.notice > span').allTextContents();
}

/** Waits until the log holds exactly `expected` messages ([name, text, own]), in order. */
async function expectMessages(who, expected, ms = STEP_MS) {
  await until(`${who.label}'s messages to be ${JSON.stringify(expected)}`, async () => {
    const got = await messages(who);
    return { ok: JSON.stringify(got) === JSON.stringify(expected), got };
  }, ms);
}

async function expectOnline(who, names) {
  await until(`${who.label}'s Online list to be ${names}`, async () => {
    const got = await onlineList(who.page).locator('li').allTextContents();
    return { ok: JSON.stringify(got) === JSON.stringify(names), got };
  });
}

async function expectStatus(who, pattern, ms = STEP_MS) {
  return until(`${who.label}'s status to match ${pattern}`, async () => {
    const got = await who.page.locator('#status').textContent();
    return { ok: pattern.test(got), got };
  }, ms);
}

/**
 * Presses "Reconnect now" while the page waits to reconnect, until it is
 * online (it may also get there by itself in the meantime).
 */
async function reconnectNow(who) {
  const button = who.page.getByRole('button', { name: 'Reconnect now', exact: true });
  await until(`${who.label} to be back online`, async () => {
    const status = await who.page.locator('#status').textContent();
    if (status === 'Reconnecting…') await button.click({ timeout: 1000 }).catch(() => {});
    return { ok: status === 'Online', got: status };
  }, RECONNECT_MS);
}

async function screenshot(who, name) {
  await who.page.screenshot({ path: joinPath(shots, `${name}.png`) });
}

/**
 * A WebSocket route that passes everything through until `cut()`, which
 * drops the page's connection and refuses new ones until `restore()`, as
 * a network going away would. `rewrite` may change frames in flight.
 */
function cutter(rewrite = {}) {
  const open = new Set();
  const state = { cut: false, fromPage: [], toPage: [] };
  state.route = (ws) => {
    if (state.cut) {
      log(`route: a new WebSocket refused (cut)`);
      ws.close({ code: 4000, reason: 'cut by the test' });
      return;
    }
    log(`route: a new WebSocket connected (${open.size} open before)`);
    const server = ws.connectToServer();
    const pair = { ws, server };
    open.add(pair);
    ws.onMessage((message) => {
      state.fromPage.push(JSON.parse(message));
      server.send(rewrite.toServer ? rewrite.toServer(message) : message);
    });
    server.onMessage((message) => {
      const sent = rewrite.toPage ? rewrite.toPage(message) : message;
      state.toPage.push(JSON.parse(sent));
      ws.send(sent);
    });
    ws.onClose(() => { open.delete(pair); server.close().catch(() => {}); });
    server.onClose(() => { open.delete(pair); ws.close().catch(() => {}); });
  };
  state.cut = false;
  state.drop = async () => {
    state.cut = true;
    log(`route: cut, closing ${open.size} open`);
    for (const pair of [...open]) {
      open.delete(pair);
      await pair.ws.close({ code: 4000, reason: 'cut by the test' }).catch(() => {});
      await pair.server.close().catch(() => {});
    }
  };
  state.restore = () => { state.cut = false; log('route: restored'); };
  return state;
}

// --- the scenarios --------------------------------------------------------

const scenarios = {
  /** Two people chat both ways; keyboard alone; the Online list; no other host. */
  async two_pages_chat_both_ways(browser) {
    const alice = await person(browser, 'alice');
    const headers = alice.response.headers();
    assert.match(headers['content-security-policy'], /script-src 'self';/);
    assert.match(headers['content-type'], /^text\/html/);
    await screenshot(alice, 'join');

    // Keyboard alone: the name field has the focus, Enter joins, and the
    // message field has the focus once joined.
    await alice.page.keyboard.type('alice');
    await alice.page.keyboard.press('Enter');
    await expectStatus(alice, /^Online$/);
    await until('the Message field to have the focus', async () => {
      const got = await alice.page.evaluate(() => document.activeElement && document.activeElement.id);
      return { ok: got === 'message', got };
    });
    await expectOnline(alice, ['alice (you)']);
    assert.deepEqual(await notices(alice), ['You joined as alice.']);
    await screenshot(alice, 'joined');

    const bob = await person(browser, 'bob');
    await joined(bob, 'bob');
    await until("alice hearing of bob's join", async () => {
      const got = await notices(alice);
      return { ok: got.includes('bob joined'), got };
    });
    await expectOnline(alice, ['alice (you)', 'bob']);
    await expectOnline(bob, ['alice', 'bob (you)']);

    await alice.page.keyboard.type('hello bob');
    await alice.page.keyboard.press('Enter');
    await expectMessages(bob, [['alice', 'hello bob', false]]);
    await messageField(bob.page).fill('hi alice,\nhow are you?');
    await sendButton(bob.page).click();
    const both = [['alice', 'hello bob', true], ['bob', 'hi alice,\nhow are you?', false]];
    await expectMessages(alice, both);
    await expectMessages(bob, [['alice', 'hello bob', false], ['bob', 'hi alice,\nhow are you?', true]]);
    assert.equal(await messageField(bob.page).inputValue(), '', 'the field empties once sent');

    // Time, name and text; the own message marked for a screen reader too.
    const first = messageLog(alice.page).locator('li.msg').first();
    assert.match(await first.locator('time').getAttribute('datetime'), /^\d{4}-\d\d-\d\dT/);
    assert.match(await first.locator('time').textContent(), /^\d\d:\d\d$/);
    assert.equal(await first.locator('.who').textContent(), 'alice (you)');
    await alice.page.locator('#outbox').waitFor({ state: 'hidden' });
    await screenshot(alice, 'chatting');

    // The same conversation on a phone in the dark, for the eye.
    const phone = await person(browser, 'carol', { viewport: { width: 390, height: 720 }, colorScheme: 'dark' });
    await joined(phone, 'carol');
    await say(bob, 'welcome carol');
    await expectMessages(phone, [
      ['alice', 'hello bob', false], ['bob', 'hi alice,\nhow are you?', false], ['bob', 'welcome carol', false],
    ]);
    await expectOnline(phone, ['alice', 'bob', 'carol (you)']);
    await screenshot(phone, 'chatting-phone-dark');

    for (const who of [alice, bob, phone]) assertClean(who);
  },

  /** A reload gets the same name back without asking; Log out frees it. */
  async reload_keeps_the_name(browser) {
    const alice = await person(browser, 'alice');
    await joined(alice, 'alice');
    await say(alice, 'before the reload');
    await expectMessages(alice, [['alice', 'before the reload', true]]);
    await messageField(alice.page).fill('half-typed');

    await alice.page.reload();
    await expectStatus(alice, /^Online$/);
    assert.equal(await alice.page.locator('#me-name').textContent(), 'alice');
    assert.equal(await nameField(alice.page).isVisible(), false, 'no name asked for');
    assert.equal(await messageField(alice.page).inputValue(), 'half-typed', 'the draft survives a reload');
    await say(alice, 'after the reload');
    await expectMessages(alice, [['alice', 'before the reload', true], ['alice', 'after the reload', true]]);
    const saved = await alice.page.evaluate(() => JSON.parse(localStorage.getItem('wschat.login')));
    assert.equal(saved.name, 'alice');
    assert.match(saved.secret, /^[A-Za-z0-9_-]{20,}$/);

    // Someone else cannot have the name while alice holds it...
    const bob = await person(browser, 'bob');
    await join(bob, 'alice');
    await bob.page.locator('#name-error').filter({ hasText: 'is taken' }).waitFor();

    // ...until she logs out.
    await logoutButton(alice.page).click();
    await nameField(alice.page).waitFor();
    await alice.page.locator('#name-error').filter({ hasText: 'is free for anyone' }).waitFor();
    assert.equal(await alice.page.evaluate(() => localStorage.getItem('wschat.login')), null);
    await joined(bob, 'alice');
    await alice.page.reload();
    await nameField(alice.page).waitFor();
    assert.equal(await alice.page.locator('#chat-view').isVisible(), false, 'logged out stays out');

    for (const who of [alice, bob]) assertClean(who);
  },

  /**
   * A dropped connection catches up with what was missed, sends what was
   * typed meanwhile and keeps the draft; a server restart is survived, the
   * store keeping the numbering (the same `epoch`); nothing is shown twice.
   */
  async server_restart_catch_up(browser) {
    await restartCatchUp(browser, { kept: true });
  },

  /**
   * The same against a server that keeps nothing (`--in-memory`): its
   * restart is a new numbering (a new `epoch`), said once.
   */
  async in_memory_restart_catch_up(browser) {
    await restartCatchUp(browser, { kept: false });
  },

  /**
   * A server that sends no `epoch` (as before persistence; emulated by
   * taking it out of every `history` on the way): a restart is told by its
   * numbers (a `since` beyond its count gets what it holds, incomplete),
   * every new message is shown, and the page says once that it restarted.
   */
  async server_without_epochs(browser) {
    const link = cutter({
      toPage(message) {
        const frame = JSON.parse(message);
        if (frame.type !== 'history') return message;
        delete frame.epoch;
        return JSON.stringify(frame);
      },
    });
    const alice = await person(browser, 'alice', { route: link.route });
    const bob = await person(browser, 'bob');
    await joined(alice, 'alice');
    await joined(bob, 'bob');
    await say(bob, 'one');
    await say(bob, 'two');
    await expectMessages(alice, [['bob', 'one', false], ['bob', 'two', false]]);

    await link.drop();
    await ask('restart');
    await expectStatus(bob, /^Online$/, RECONNECT_MS);
    await say(bob, 'fresh 1');
    await expectMessages(bob, [['bob', 'one', true], ['bob', 'two', true], ['bob', 'fresh 1', true]]);
    link.restore();
    await reconnectNow(alice);
    const all = [['bob', 'one', false], ['bob', 'two', false], ['bob', 'fresh 1', false]];
    await expectMessages(alice, all, RECONNECT_MS);
    const logins = link.fromPage.filter((f) => f.type === 'login');
    assert.equal(logins.length, 2);
    assert.deepEqual([logins[1].since, 'epoch' in logins[1]], [2, false], JSON.stringify(logins[1]));

    // Another drop in the new numbering is an ordinary catch-up.
    await link.drop();
    await say(bob, 'fresh 2');
    link.restore();
    await reconnectNow(alice);
    await expectMessages(alice, [...all, ['bob', 'fresh 2', false]], RECONNECT_MS);
    assert.equal(link.fromPage.filter((f) => f.type === 'login')[2].since, 1);

    await screenshot(alice, 'restart-without-epochs');
    const said = await notices(alice);
    assert.equal(said.filter((n) => /restarted/.test(n)).length, 1, said.join('\n'));
    assert.deepEqual(said.filter((n) => /new message history/.test(n)), [], said.join('\n'));
    for (const who of [alice, bob]) assertClean(who, { allowConsole: SOCKET_ERRORS });
  },

  /** Markup from the network is text, and no script runs; the policy blocks inline code. */
  async xss_is_text(browser) {
    const alice = await person(browser, 'alice');
    const mallory = await person(browser, 'mallory');
    await joined(alice, 'alice');
    const name = 'mallory';
    await joined(mallory, name);
    const attacks = ['<img src=x onerror=alert(1)>', '<script>alert(2)</script>',
      '<img src=x onerror="window.pwned=1">'];
    for (const attack of attacks) await say(mallory, attack);
    await expectMessages(alice, attacks.map((text) => [name, text, false]));
    await expectMessages(mallory, attacks.map((text) => [name, text, true]));
    for (const who of [alice, mallory]) {
      assert.equal(await who.page.locator('#log img, #log script').count(), 0);
      assert.equal(await who.page.evaluate(() => window.pwned), undefined);
    }
    // The policy itself: inline code is refused, whoever adds it.
    await alice.page.addScriptTag({ content: 'window.inline = 1' }).catch(() => {});
    assert.equal(await alice.page.evaluate(() => window.inline), undefined, 'inline script ran');
    assert.ok(alice.consoleErrors.some((e) => /Content Security Policy/.test(e)), alice.consoleErrors.join('\n'));
    alice.consoleErrors = alice.consoleErrors.filter((e) => !/Content Security Policy/.test(e));
    for (const who of [alice, mallory]) assertClean(who);
  },

  /**
   * Every error's description next to where it happened. The server:
   * --max-message-chars 20 --message-rate 2 --message-burst 6.
   */
  async errors_are_shown_where_they_happened(browser) {
    const alice = await person(browser, 'alice');
    await joined(alice, 'alice');
    const bob = await person(browser, 'bob');

    await join(bob, 'ALICE');
    const error = bob.page.locator('#name-error');
    await error.filter({ hasText: 'the name "alice" is taken; give its secret to reclaim it, or pick another' }).waitFor();
    await screenshot(bob, 'taken-name');
    assert.equal(await nameField(bob.page).getAttribute('aria-invalid'), 'true');
    assert.match(await nameField(bob.page).getAttribute('aria-describedby'), /\bname-error\b/);
    assert.equal(await nameField(bob.page).inputValue(), 'ALICE', 'the name typed is kept to edit');

    await join(bob, 'b'.repeat(33));
    await error.filter({ hasText: 'the name has 33 characters; at most 32 are allowed' }).waitFor();

    await join(bob, 'bob');
    await expectStatus(bob, /^Online$/);
    assert.equal(await nameField(bob.page).isVisible(), false);

    // Too long for this server: refused, said next to the field, given back to edit.
    const long = 'x'.repeat(21);
    await say(bob, long);
    const messageError = bob.page.locator('#message-error');
    await messageError.filter({ hasText: 'Not sent: the message is longer than 20 characters' }).waitFor();
    assert.equal(await messageField(bob.page).inputValue(), long);
    assert.match(await messageField(bob.page).getAttribute('aria-describedby'), /\bmessage-error\b/);
    await messageField(bob.page).fill('');
    await sendButton(bob.page).click();
    await messageError.filter({ hasText: 'The message is empty.' }).waitFor();

    // Faster than the server allows (10 at once, 5 a second): told, then
    // sent by itself, each message once and in order.
    const burst = Array.from({ length: 10 }, (_, i) => `burst ${i + 1}`);
    for (const text of burst) await say(bob, text);
    await messageError.filter({ hasText: /Too many messages: .*it will be sent again by itself/ }).waitFor();
    await expectMessages(alice, burst.map((text) => ['bob', text, false]));
    await bob.page.locator('#outbox').waitFor({ state: 'hidden' });
    await messageError.waitFor({ state: 'hidden' }); // all sent: nothing left to say
    await expectMessages(bob, burst.map((text) => ['bob', text, true]));
    for (const who of [alice, bob]) assertClean(who);
  },
};

// --- main -----------------------------------------------------------------

const scenario = { ...scenarios, ...newcomerDefectScenarios() }[scenarioName] || roomScenarios({
  person, joined, join, say, until, screenshot, assertClean, log, expectStatus, expectOnline,
  expectMessages, messages, notices, cutter, ask, reconnectNow, RECONNECT_MS, SOCKET_ERRORS,
})[scenarioName];
if (!scenario) {
  console.error(`no scenario ${scenarioName}; there are: ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}
const browser = await launch();
let failed = false;
try {
  await scenario(browser);
  console.log(`scenario ${scenarioName}: passed`);
} catch (error) {
  failed = true;
  console.error(`scenario ${scenarioName} FAILED: ${error.stack || error}`);
} finally {
  await browser.close().catch(() => {});
}
process.exit(failed ? 1 : 0);

/**
 * The drop-and-restart scenario; `kept`: whether the server keeps its
 * numbering across the restart (a store) or starts a new one.
 */
async function restartCatchUp(browser, { kept }) {
    const link = cutter();
    const alice = await person(browser, 'alice', { route: link.route });
    const bob = await person(browser, 'bob');
    await joined(alice, 'alice');
    await joined(bob, 'bob');
    await say(alice, 'one');
    await say(bob, 'two');
    await expectMessages(alice, [['alice', 'one', true], ['bob', 'two', false]]);

    // Alice's network goes away.
    await link.drop();
    await expectStatus(alice, /^Reconnecting…$/);
    await alice.page.locator('#banner').filter({ hasText: /Reconnecting in \d+ s|Trying again in \d+ s/ }).waitFor();
    await say(bob, 'away 1');
    await say(bob, 'away 2');
    await say(alice, 'typed offline');
    await alice.page.locator('#outbox').filter({ hasText: 'will be sent when the connection is back' }).waitFor();
    await messageField(alice.page).fill('a draft');
    await screenshot(alice, 'reconnecting');
    await expectMessages(bob, [['alice', 'one', false], ['bob', 'two', true], ['bob', 'away 1', true], ['bob', 'away 2', true]]);

    link.restore();
    const afterDrop = [['alice', 'one', true], ['bob', 'two', false], ['bob', 'away 1', false],
      ['bob', 'away 2', false], ['alice', 'typed offline', true]];
    await expectMessages(alice, afterDrop, RECONNECT_MS);
    await expectMessages(bob, afterDrop.map(([n, t]) => [n, t, n === 'bob']));
    assert.equal(await messageField(alice.page).inputValue(), 'a draft', 'the draft survives');
    assert.deepEqual((await notices(alice)).filter((n) => /missed|restarted|history/.test(n)), []);

    // The server restarts while alice is cut off (keeping its numbering, or
    // with nothing kept: a new epoch, numbers from 1 again); bob gets back
    // first and talks to it.
    await link.drop();
    await ask('restart');
    await expectStatus(bob, /^Online$/, RECONNECT_MS);
    await say(bob, 'new 1');
    await say(bob, 'new 2');
    await expectMessages(bob, [...afterDrop.map(([n, t]) => [n, t, n === 'bob']),
      ['bob', 'new 1', true], ['bob', 'new 2', true]]);
    // Alice's page has been failing for a while and waits longer each time
    // (up to 30 s): her "Reconnect now" does not wait.
    link.restore();
    await reconnectNow(alice);
    await expectMessages(alice, [...afterDrop, ['bob', 'new 1', false], ['bob', 'new 2', false]], RECONNECT_MS);
    await say(alice, 'the end');
    const final = [...afterDrop, ['bob', 'new 1', false], ['bob', 'new 2', false], ['alice', 'the end', true]];
    await expectMessages(alice, final);
    await expectMessages(bob, final.map(([n, t]) => [n, t, n === 'bob']));
    for (const who of [alice, bob]) {
      const said = await notices(who);
      const fresh = said.filter((n) => /new message history/.test(n)).length;
      assert.equal(fresh, kept ? 0 : 1, `${who.label}: ${said.join('\n')}`);
      assert.deepEqual(said.filter((n) => /missed|restarted/.test(n)), [], `${who.label}: ${said.join('\n')}`);
    }

    // Each login after the first asked for what came after the last seq
    // seen, in the numbering (epoch) it was seen in.
    const logins = link.fromPage.filter((f) => f.type === 'login');
    const epochs = link.toPage.filter((f) => f.type === 'history').map((f) => f.epoch);
    assert.equal(logins.length, 3, JSON.stringify(logins));
    assert.equal(epochs.length, 3);
    assert.ok(typeof epochs[0] === 'string' && epochs[0].length > 0, 'the server names its numbering');
    assert.deepEqual(epochs.map((e) => e === epochs[0]), [true, true, kept],
      kept ? 'a store keeps its epoch' : 'a restart with nothing kept is a new epoch');
    assert.ok(!('since' in logins[0]) && !('epoch' in logins[0]), JSON.stringify(logins[0]));
    assert.deepEqual([logins[1].since, logins[1].epoch], [2, epochs[0]]);
    assert.deepEqual([logins[2].since, logins[2].epoch], [5, epochs[0]]);

    await expectOnline(alice, ['alice (you)', 'bob']);
    await screenshot(alice, 'caught-up');
    for (const who of [alice, bob]) assertClean(who, { allowConsole: SOCKET_ERRORS });
}

// --- issue 24, defects 1–5 of the page (branch web-defects) -----------------
//
// Each scenario here failed before its fix. They are a function's, declared
// (and so hoisted) here at the end, that `main` merges with the others.

function newcomerDefectScenarios() {
  const DESKTOP = { viewport: { width: 1280, height: 800 } };
  const PHONE = { viewport: { width: 390, height: 844 }, context: { hasTouch: true, isMobile: true } };
  /** How far the log may be from its end and still count as at the end (CSS pixels). */
  const AT_END_PX = 2;

  /** Says every text, one after the other, and waits until the server took the last. */
  async function sayAll(who, texts) {
    for (const text of texts) await say(who, text);
    await who.page.locator('#outbox').waitFor({ state: 'hidden' });
  }

  /** How far the log is scrolled from its end, in CSS pixels. */
  const gapBelow = (who) => who.page.locator('#log').evaluate((log) => log.scrollHeight - log.scrollTop - log.clientHeight);

  /** Whether the last message of the log is in sight (inside the log's box). */
  const lastInSight = (who) => who.page.locator('#log').evaluate((log) => {
    const last = log.lastElementChild;
    if (!last) return false;
    const box = log.getBoundingClientRect();
    const item = last.getBoundingClientRect();
    return item.bottom <= box.bottom + 1 && item.top >= box.top - 1;
  });

  /** The document's size against the window's, and how far the window itself scrolled. */
  const documentFit = (who) => who.page.evaluate(() => ({
    documentHeight: document.documentElement.scrollHeight,
    bodyHeight: document.body.scrollHeight,
    windowHeight: window.innerHeight,
    scrollY: window.scrollY,
  }));

  async function expectFits(who) {
    const fit = await documentFit(who);
    assert.deepEqual(fit, {
      documentHeight: fit.windowHeight, bodyHeight: fit.windowHeight, windowHeight: fit.windowHeight, scrollY: 0,
    }, `${who.label}: the page must be exactly as tall as the window`);
  }

  /**
   * A finger's swipe from (x, y), moving `dy` down the screen (positive:
   * towards older messages), as touch events (Chromium's synthesized
   * touch scroll gesture does nothing headless).
   */
  async function swipe(who, x, y, dy) {
    const cdp = await who.context.newCDPSession(who.page);
    const steps = 10;
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x, y }] });
    for (let i = 1; i <= steps; i += 1) {
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [{ x, y: y + (dy * i) / steps }] });
      await who.page.waitForTimeout(16);
    }
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    await cdp.detach();
    await who.page.waitForTimeout(300); // and its fling
  }

  /** The centre of an element, in the page's coordinates. */
  async function centre(locator) {
    const box = await locator.boundingBox();
    return { x: Math.round(box.x + box.width / 2), y: Math.round(box.y + box.height / 2) };
  }

  const newMessagesButton = (p) => p.getByRole('button', { name: /^New messages/ });

  const history = Array.from({ length: 40 }, (_, i) => `line ${i + 1} of a long history`);

  return {
    /**
     * Defect 1: the page is exactly the window's height at 1280×800 and on
     * a phone, with a long history; a wheel over the Online list or a swipe
     * does not scroll the page away. Server: a high message rate.
     */
    async the_page_fits_the_window_and_only_the_log_scrolls(browser) {
      const bob = await person(browser, 'bob');
      await joined(bob, 'bob');
      await sayAll(bob, history);

      const alice = await person(browser, 'alice', DESKTOP);
      await joined(alice, 'alice');
      await expectMessages(alice, history.map((t) => ['bob', t, false]));
      await expectOnline(alice, ['alice (you)', 'bob']);
      await expectFits(alice);
      const online = await centre(onlineList(alice.page));
      await alice.page.mouse.move(online.x, online.y);
      for (let i = 0; i < 5; i += 1) await alice.page.mouse.wheel(0, 800);
      await alice.page.waitForTimeout(300);
      await expectFits(alice);
      await screenshot(alice, 'defect1-long-history-desktop');

      const carol = await person(browser, 'carol', PHONE);
      await joined(carol, 'carol');
      await expectMessages(carol, history.map((t) => ['bob', t, false]));
      await expectOnline(carol, ['alice', 'bob', 'carol (you)']);
      await expectFits(carol);
      // Swipes up on the Online bar, the header and the log.
      for (const where of [onlineList(carol.page), carol.page.locator('header'), carol.page.locator('#log')]) {
        const at = await centre(where);
        await swipe(carol, at.x, at.y, -250);
        await expectFits(carol);
      }
      await screenshot(carol, 'defect1-long-history-phone');
      for (const who of [alice, bob, carol]) assertClean(who);
    },

    /**
     * Defect 2: on a phone (touch) the conversation follows new messages,
     * one's own included, while it is at its end; scrolled up, it stays,
     * and a "New messages" button says what waits below and goes there.
     */
    async on_a_phone_the_conversation_follows_new_messages(browser) {
      const bob = await person(browser, 'bob');
      await joined(bob, 'bob');
      await sayAll(bob, history);

      const alice = await person(browser, 'alice', PHONE);
      await joined(alice, 'alice');
      await expectMessages(alice, history.map((t) => ['bob', t, false]));
      await expectOnline(alice, ['alice (you)', 'bob']);
      await alice.page.waitForTimeout(300);
      const atEnd = async (what) => until(`${what}: alice's log at its end, its last message in sight`, async () => {
        const got = { gap: await gapBelow(alice), lastInSight: await lastInSight(alice) };
        return { ok: got.gap <= AT_END_PX && got.lastInSight, got };
      }, 3000);
      await atEnd('right after joining');

      await say(bob, 'from bob');
      await expectMessages(alice, [...history.map((t) => ['bob', t, false]), ['bob', 'from bob', false]]);
      await atEnd("bob's message");
      await say(alice, 'from alice');
      await messageLog(alice.page).locator('li.msg.own').filter({ hasText: 'from alice' }).waitFor();
      await atEnd("alice's own message");
      assert.equal(await newMessagesButton(alice.page).count(), 0, 'nothing waits below');

      // A swipe down the log (towards older messages): it stays there.
      const log = await centre(alice.page.locator('#log'));
      await swipe(alice, log.x, log.y, 250);
      await swipe(alice, log.x, log.y, 250);
      const away = await gapBelow(alice);
      assert.ok(away > 200, `the swipe scrolled back (${away} px from the end)`);
      await say(bob, 'while alice reads');
      await newMessagesButton(alice.page).waitFor();
      const stayed = await gapBelow(alice);
      assert.ok(stayed > 200, `the log jumped to the end while alice read (${stayed} px left)`);
      await screenshot(alice, 'defect2-new-messages-below');
      await newMessagesButton(alice.page).click();
      await atEnd('"New messages"');
      await newMessagesButton(alice.page).waitFor({ state: 'hidden' });

      // Scrolled back to the end by hand: following again, nothing waits.
      await swipe(alice, log.x, log.y, 250);
      await swipe(alice, log.x, log.y, 250);
      await say(bob, 'again while alice reads');
      await newMessagesButton(alice.page).waitFor();
      for (let i = 0; i < 20 && (await gapBelow(alice)) > AT_END_PX; i += 1) {
        await swipe(alice, log.x, log.y, -250);
      }
      await newMessagesButton(alice.page).waitFor({ state: 'hidden' });
      await say(bob, 'the last');
      await messageLog(alice.page).locator('li.msg').filter({ hasText: 'the last' }).waitFor();
      await atEnd('after scrolling back by hand');
      for (const who of [alice, bob]) assertClean(who);
    },

    /**
     * Defect 3: whoever joined and talked is in the Online list, at once.
     * Round after round two people join at once and talk at once; the
     * moment alice's page shows one's message, its Online list must have
     * them (it was refreshed only 300 ms after a join notice, and a join held
     * back by the server's presence budget came later still). Server:
     * --presence-rate 1 --presence-burst 1, so that some joins are held.
     */
    async the_online_list_has_whoever_joined_and_talked(browser) {
      const alice = await person(browser, 'alice');
      await joined(alice, 'alice');
      await expectOnline(alice, ['alice (you)']);
      // Alice's Online list as it was when each message showed in her log.
      await alice.page.evaluate(() => {
        window.listWhenShown = {};
        new MutationObserver(() => {
          for (const text of document.querySelectorAll('#log li.msg .text')) {
            if (text.textContent in window.listWhenShown) continue;
            window.listWhenShown[text.textContent] = [...document.querySelectorAll('#online li')].map((li) => li.textContent);
          }
        }).observe(document.getElementById('log'), { childList: true });
      });
      const listWhenShown = (text) => until(`"${text}" in alice's log`, async () => {
        const got = await alice.page.evaluate((t) => window.listWhenShown[t], text);
        return { ok: got !== undefined, got };
      });
      for (let round = 1; round <= 4; round += 1) {
        const [b, c] = [`bob${round}`, `carol${round}`];
        const bob = await person(browser, b);
        const carol = await person(browser, c);
        await Promise.all([
          joined(bob, b).then(() => say(bob, `hi from ${b}`)),
          joined(carol, c).then(() => say(carol, `hi from ${c}`)),
        ]);
        const whenBob = await listWhenShown(`hi from ${b}`);
        const whenCarol = await listWhenShown(`hi from ${c}`);
        log(`round ${round}: alice's list when ${b} talked: ${whenBob}; when ${c} did: ${whenCarol}`);
        assert.ok(whenBob.includes(b), `round ${round}: ${b} talked, alice's Online list: ${whenBob}`);
        assert.ok(whenCarol.includes(c), `round ${round}: ${c} talked, alice's Online list: ${whenCarol}`);
        await say(alice, `hi ${round}`);
        const names = ['alice', b, c];
        for (const who of [alice, bob, carol]) {
          await expectOnline(who, names.map((n) => (n === who.label ? `${n} (you)` : n)));
        }
        for (const who of [bob, carol]) assertClean(who);
        await bob.context.close();
        await carol.context.close();
        await expectOnline(alice, ['alice (you)']);
      }
      assertClean(alice);
    },

    /**
     * Defect 4: `/me` (a text "* NAME ACTION" from NAME, as chat-cli sends
     * it) reads as an action; a mention of the user is highlighted (chat-cli's
     * rule); a 12-hour clock has no leading zero, a 24-hour one keeps it.
     */
    async actions_mentions_and_times_read_as_in_chat_cli(browser) {
      // Every message's time is made 18:37 UTC, or 06:37 for a text with "morning".
      const at = (text) => Date.UTC(2026, 0, 1, /morning/.test(text) ? 6 : 18, 37);
      const retime = (message) => {
        const frame = JSON.parse(message);
        if (frame.type === 'textBroadcast') frame.timestamp = at(frame.message);
        if (frame.type === 'history' && Array.isArray(frame.messages)) {
          for (const m of frame.messages) m.timestamp = at(m.message);
        }
        return JSON.stringify(frame);
      };
      const alice = await person(browser, 'alice', { context: { locale: 'en-US' }, route: cutter({ toPage: retime }).route });
      const bob = await person(browser, 'bob', { route: cutter({ toPage: retime }).route });
      await joined(alice, 'alice');
      await joined(bob, 'bob');
      const said = ['* bob waves', '* alice waves', 'hi Alice, good morning', 'malice is not alice…', '* bob hugs @alice'];
      await sayAll(bob, said);
      await expectMessages(alice, said.map((t) => ['bob', t, false]));
      const items = (who) => messageLog(who.page).locator('li.msg').evaluateAll((lis) => lis.map((li) => ({
        action: li.classList.contains('action'),
        nameInLine: li.querySelector('.text .who') !== null,
        mention: li.classList.contains('mention') && li.querySelector('.text mark') !== null,
        time: li.querySelector('time').textContent,
        shown: li.querySelector('.text').innerText,
      })));
      const aliceSees = await items(alice);
      assert.deepEqual(aliceSees.map((i) => [i.action, i.nameInLine, i.shown]), [
        [true, true, '* bob waves'],
        [false, false, '* alice waves'], // not bob's own name: a text like any other
        [false, false, 'hi Alice, good morning'],
        [false, false, 'malice is not alice…'],
        [true, true, '* bob hugs @alice'],
      ], 'actions read "* NAME ACTION", on one line');
      assert.deepEqual(aliceSees.map((i) => i.mention), [false, true, true, true, true], 'mentions of alice');
      assert.deepEqual(aliceSees.map((i) => i.time), ['6:37 PM', '6:37 PM', '6:37 AM', '6:37 PM', '6:37 PM']);
      const bobSees = await items(bob);
      assert.deepEqual(bobSees.map((i) => i.mention), [false, false, false, false, false], 'never one\'s own');
      assert.deepEqual(bobSees.map((i) => i.time), ['18:37', '18:37', '06:37', '18:37', '18:37']);
      await screenshot(alice, 'defect4-action-and-mentions');
      for (const who of [alice, bob]) assertClean(who);
    },

    /**
     * Defect 5: a page whose origin the server refuses (--allowed-origins
     * without it) says so and does not retry in a loop; "Reconnect now"
     * tries once more.
     */
    async a_refused_origin_is_said_and_not_retried(browser) {
      const alice = await person(browser, 'alice');
      const sockets = [];
      alice.page.on('websocket', (ws) => sockets.push(ws.url()));
      await join(alice, 'alice');
      await alice.page.locator('#banner').filter({ hasText: /refused this page/ }).waitFor();
      await screenshot(alice, 'defect5-refused-origin');
      await alice.page.waitForTimeout(4000);
      assert.equal(sockets.length, 1, `no retries in a loop: ${sockets.length} WebSockets`);
      const status = await alice.page.locator('#status').textContent();
      assert.ok(!/Reconnecting/.test(status), status);
      assert.ok(!/Can't reach/.test(await alice.page.locator('#banner').textContent()));
      await alice.page.getByRole('button', { name: 'Reconnect now', exact: true }).click();
      await until('one more try', async () => ({ ok: sockets.length === 2, got: sockets.length }));
      await alice.page.locator('#banner').filter({ hasText: /refused this page/ }).waitFor();
      await alice.page.waitForTimeout(1500);
      assert.equal(sockets.length, 2);
      assertClean(alice, { allowConsole: [...SOCKET_ERRORS, /403/] });
    },
  };
}
