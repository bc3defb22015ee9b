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

const scenario = scenarios[scenarioName] || roomScenarios({
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
