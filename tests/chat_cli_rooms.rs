//! chat-cli with rooms and direct messages (protocol v3), against the real
//! chat-server on 127.0.0.1: in a pseudo-terminal read through a vt100
//! emulator (the prompt shows the current room, lines of other rooms carry
//! their name, Tab completes rooms after `#`, every command, the bell, each
//! room's catch-up after a server restart), and in pipes (`--room`, `--to`,
//! `--json`). Every wait is bounded ([`TIMEOUT`]).
#![cfg(all(unix, feature = "cli", feature = "server"))]

mod clients;
mod net;
mod screen;

use clients::{Cli, Proxy, Server, chat_cli, run_script, state_dir};
use nix::sys::wait::WaitStatus;
use screen::{Screen, count};
use serde_json::Value;

/// A row (or a script's line) without its `HH:MM ` time, wherever it is:
/// at the start, or after a room's label (`[#dev] 14:02 bob: hi`).
fn untimed(row: &str) -> String {
    let (label, rest) = match row.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((label, rest)) => (format!("[{label}] "), rest),
        None => (String::new(), row),
    };
    let bytes = rest.as_bytes();
    let timed = bytes.len() > 6
        && bytes[..5].iter().enumerate().all(|(i, b)| {
            if i == 2 {
                *b == b':'
            } else {
                b.is_ascii_digit()
            }
        })
        && bytes[5] == b' ';
    let rest = if timed { &rest[6..] } else { rest };
    format!("{label}{rest}")
}

/// Waits until some row, its times removed, is `expected`.
fn wait_for_row(screen: &mut Screen, expected: &str) -> Vec<String> {
    screen.wait_until(&format!("the row {expected:?}"), |rows| {
        rows.iter().any(|row| untimed(row) == expected)
    })
}

/// How many rows, their times removed, are `expected`.
fn rows_equal(rows: &[String], expected: &str) -> usize {
    rows.iter().filter(|row| untimed(row) == expected).count()
}

/// Waits until the last row (the prompt) is `prompt`.
fn wait_for_prompt(screen: &mut Screen, prompt: &str) {
    screen.wait_until(&format!("the prompt {prompt:?}"), |rows| {
        rows.last().is_some_and(|row| row == prompt.trim_end())
    });
}

/// The one secret chat-cli saved in the state directory `state`.
fn saved_secret(state: &std::path::Path) -> String {
    let text = std::fs::read_to_string(state.join("wschat/secrets.json")).expect("saved secrets");
    let json: Value = serde_json::from_str(&text).expect("JSON");
    // {"servers": {URL: {NAME: SECRET}}, …}: alice's, at whichever address.
    let servers = json["servers"].as_object().expect("servers");
    servers
        .values()
        .find_map(|names| names["alice"].as_str())
        .expect("a secret for alice")
        .to_owned()
}

/// Waits for a script's stdout line equal to `expected`, times removed.
fn expect_line(cli: &mut Cli, expected: &str) {
    cli.expect_stdout_where(expected, |line| untimed(line) == expected);
}

#[test]
fn join_shows_the_room_in_the_prompt_and_lines_of_other_rooms_carry_their_name() {
    let server = Server::start(&[]);
    let state = state_dir();
    let mut alice = Screen::start(state.path(), &[&server.url(), "--name", "alice"]);
    wait_for_prompt(&mut alice, "alice> ");
    alice.type_keys("/join #dev\r");
    wait_for_row(&mut alice, "-- joined #dev (you own it; 1 member)");
    wait_for_prompt(&mut alice, "#dev> ");

    // bob talks in #dev from a script: every line he reads goes there.
    let bob_state = state_dir();
    let mut bob = Cli::spawn(
        bob_state.path(),
        &[&server.url(), "--name", "bob", "--room", "#dev"],
    );
    bob.send("hi dev");
    expect_line(&mut bob, "[#dev] bob (you): hi dev");
    // The current room's line as always…
    wait_for_row(&mut alice, "bob: hi dev");
    // …and what alice types goes to #dev; bob's script labels every line.
    alice.type_keys("hello bob\r");
    wait_for_row(&mut alice, "alice (you): hello bob");
    expect_line(&mut bob, "[#dev] alice: hello bob");

    // The lobby is another room now: its lines carry its name.
    let carol_state = state_dir();
    let out = run_script(
        carol_state.path(),
        &[&server.url(), "--name", "carol"],
        "lobby talk\n",
    );
    assert!(out.status.success(), "{out:?}");
    let rows = wait_for_row(&mut alice, "[#lobby] carol: lobby talk");
    assert_eq!(count(&rows, "lobby talk"), 1, "{rows:#?}");
    alice.type_keys("/unread\r");
    wait_for_row(&mut alice, "unread: #lobby 1");

    // A direct message, both ways, each labelled with who wrote to whom.
    alice.type_keys("/msg bob psst\r");
    wait_for_row(&mut alice, "[you → bob] alice (you): psst");
    expect_line(&mut bob, "[alice → you] alice: psst");

    // Tab completes a room after `#`.
    alice.complete("#dev> ", "/join #lo", "/join #lobby ");
    alice.type_keys("\r");
    wait_for_row(&mut alice, "-- now talking in #lobby");
    wait_for_prompt(&mut alice, "alice> ");
    alice.type_keys("in the lobby\r");
    let rows = wait_for_row(&mut alice, "alice (you): in the lobby");
    assert_eq!(
        count(&rows, "[#lobby]"),
        1,
        "only carol's line, from before: {rows:#?}"
    );
    expect_line(&mut bob, "[#lobby] alice: in the lobby");
    alice.type_keys("/unread\r");
    wait_for_row(&mut alice, "nothing unread");

    // alice on another device (her saved secret) joins a room: it appears
    // here, with a line saying so, and Tab offers it.
    let out = run_script(
        state.path(),
        &[&server.url(), "--name", "alice", "--room", "#side"],
        "from the phone\n",
    );
    assert!(out.status.success(), "{out:?}");
    wait_for_row(&mut alice, "-- you joined #side on another device");
    wait_for_row(&mut alice, "[#side] alice (you): from the phone");
    alice.complete("alice> ", "/join #si", "/join #side ");
    alice.type_keys("\x15\x04");
    assert!(matches!(alice.exit_status(), WaitStatus::Exited(_, 0)));
}

#[test]
fn every_room_command_does_what_it_says_on_screen() {
    // Many commands in a row: past the default message rate.
    let server = Server::start(&["--message-rate", "0"]);
    let state = state_dir();
    let mut alice = Screen::start(state.path(), &[&server.url(), "--name", "alice"]);
    wait_for_prompt(&mut alice, "alice> ");
    alice.type_keys("/join #ops\r");
    wait_for_row(&mut alice, "-- joined #ops (you own it; 1 member)");
    let bob_state = state_dir();
    let mut bob = Cli::spawn(
        bob_state.path(),
        &[&server.url(), "--name", "bob", "--room", "#ops"],
    );
    bob.send("here");
    wait_for_row(&mut alice, "bob: here");
    // carol holds her name (to be invited), and has left.
    let carol_state = state_dir();
    let out = run_script(carol_state.path(), &[&server.url(), "--name", "carol"], "");
    assert!(out.status.success(), "{out:?}");

    for (typed, shown) in [
        (
            "/topic deploys only",
            "* alice set the topic of #ops: deploys only",
        ),
        ("/topic", "#ops's topic: deploys only"),
        ("/names", "#ops (2): alice (owner, you), bob"),
        ("/who", "#ops (2): alice (owner, you), bob"),
        ("/op bob", "* alice made bob an operator of #ops"),
        ("/deop bob", "* alice made bob a plain member of #ops"),
        ("/mute bob 10m", "* alice muted bob in #ops for 10 min"),
        ("/unmute bob", "* alice unmuted bob in #ops"),
        ("/mode +i", "* alice made #ops invite-only"),
        ("/invite carol", "* alice invited carol to #ops"),
        ("/mode -i", "* alice made #ops public"),
        (
            "/kick bob off topic",
            "* alice removed bob from #ops: off topic",
        ),
        ("/ban bob 1h", "* alice banned bob from #ops for 1 h"),
        ("/unban bob", "* alice lifted the ban on bob in #ops"),
    ] {
        let before = rows_equal(&alice.rows(), shown);
        alice.type_keys(&format!("{typed}\r"));
        alice.wait_until(&format!("{shown:?} after {typed:?}"), |rows| {
            rows_equal(rows, shown) > before
        });
        // What is typed next waits for the prompt, as a person would.
        wait_for_prompt(&mut alice, "#ops> ");
    }
    // bob was told, by the one who did it.
    bob.expect_stderr("alice removed you from #ops: off topic");

    alice.type_keys("/rooms\r");
    wait_for_row(&mut alice, "rooms (2):");
    wait_for_row(&mut alice, "  #ops (yours: owner) 1 member — deploys only");
    alice.type_keys("/part #ops done here\r");
    wait_for_row(&mut alice, "-- you left #ops");
    wait_for_prompt(&mut alice, "alice> ");
    alice.type_keys("/query bob\r");
    wait_for_prompt(&mut alice, "@bob> ");
    alice.type_keys("sorry about that\r");
    wait_for_row(&mut alice, "alice (you): sorry about that");
    expect_line(&mut bob, "[alice → you] alice: sorry about that");
    alice.type_keys("/who\r");
    wait_for_row(&mut alice, "@bob is a direct message between you and bob");
    alice.type_keys("/part\r");
    wait_for_prompt(&mut alice, "alice> ");
    alice.type_keys("/who\r");
    wait_for_row(&mut alice, "online (2): alice (you), bob");
    alice.type_keys("/help\r");
    wait_for_row(
        &mut alice,
        "rooms and direct messages (servers that speak protocol v3):",
    );
    alice.type_keys("/join\r");
    wait_for_row(
        &mut alice,
        "usage: /join #ROOM (name the room, e.g. /join #dev)",
    );
}

#[test]
fn a_direct_message_rings_the_bell_unless_no_bell() {
    let server = Server::start(&[]);
    let state = state_dir();
    let mut alice = Screen::start(state.path(), &[&server.url(), "--name", "alice", "--bell"]);
    wait_for_prompt(&mut alice, "alice> ");
    let quiet_state = state_dir();
    let mut quiet = Screen::start(
        quiet_state.path(),
        &[&server.url(), "--name", "quiet", "--no-bell"],
    );
    wait_for_prompt(&mut quiet, "quiet> ");
    let bob_state = state_dir();
    let out = run_script(
        bob_state.path(),
        &[&server.url(), "--name", "bob", "--to", "alice"],
        "a secret\n",
    );
    assert!(out.status.success(), "{out:?}");
    let out = run_script(
        bob_state.path(),
        &[&server.url(), "--name", "bob", "--to", "quiet"],
        "hush\n",
    );
    assert!(out.status.success(), "{out:?}");
    wait_for_row(&mut alice, "[bob → you] bob: a secret");
    wait_for_row(&mut quiet, "[bob → you] bob: hush");
    assert_eq!(alice.bells(), 1, "one bell, for the direct message");
    assert_eq!(quiet.bells(), 0);
}

#[test]
fn after_a_server_restart_each_room_catches_up_once_under_its_own_divider() {
    let mut server = Server::start(&[]);
    let proxy = Proxy::start(server.port());
    let state = state_dir();
    let mut alice = Screen::start(state.path(), &[&proxy.url(), "--name", "alice"]);
    wait_for_prompt(&mut alice, "alice> ");
    alice.type_keys("/join #ops\r");
    wait_for_row(&mut alice, "-- joined #ops (you own it; 1 member)");
    alice.type_keys("/join #dev\r");
    wait_for_row(&mut alice, "-- joined #dev (you own it; 1 member)");
    let bob_state = state_dir();
    let out = run_script(
        bob_state.path(),
        &[&server.url(), "--name", "bob", "--room", "#dev"],
        "before\n",
    );
    assert!(out.status.success(), "{out:?}");
    wait_for_row(&mut alice, "bob: before");

    // alice is cut off; the server restarts (its store kept) meanwhile,
    // and bob talks in both rooms.
    proxy.cut();
    alice.wait_for_text("connection lost");
    server.restart();
    for (room, said) in [("#dev", "dev one\ndev two\n"), ("#ops", "ops one\n")] {
        let out = run_script(
            bob_state.path(),
            &[&server.url(), "--name", "bob", "--room", room],
            said,
        );
        assert!(out.status.success(), "{out:?}");
    }
    // A room joined on another device, with alice's secret: her name.
    let device_state = state_dir();
    let mut other = chat_cli(
        device_state.path(),
        &[&server.url(), "--name", "alice", "--room", "#new"],
    );
    other.env("CHAT_SECRET", saved_secret(state.path()));
    let mut device = Cli::from_command(other);
    device.send("made it");
    expect_line(&mut device, "[#new] alice (you): made it");
    assert!(device.finish().status.success());
    proxy.restore();
    let rows = alice.wait_until("both rooms caught up", |rows| {
        rows.iter().any(|row| row.contains("ops one"))
            && rows.iter().any(|row| row.contains("dev two"))
    });
    let rows: Vec<String> = rows.iter().map(|row| untimed(row)).collect();
    let at = |text: &str| {
        rows.iter()
            .position(|row| row == text)
            .unwrap_or_else(|| panic!("no {text:?} in {rows:#?}"))
    };
    // One divider per room, its messages once and in order below it.
    assert_eq!(count(&rows, "while you were away"), 3, "{rows:#?}"); // #dev, #new, #ops
    let dev = at("── 2 messages in #dev while you were away ──");
    assert_eq!(
        rows[dev + 1],
        "bob: dev one",
        "#dev is current: no label: {rows:#?}"
    );
    assert_eq!(rows[dev + 2], "bob: dev two", "{rows:#?}");
    let ops = at("── 1 message in #ops while you were away ──");
    assert_eq!(rows[ops + 1], "[#ops] bob: ops one", "{rows:#?}");
    assert_eq!(count(&rows, "bob: before"), 1, "{rows:#?}");
    at("-- you joined #new on another device");
    at("[#new] alice (you): made it");
    wait_for_prompt(&mut alice, "#dev> ");
}

#[test]
fn pipes_send_to_a_room_or_a_name_and_json_lines_carry_the_room() {
    let server = Server::start(&[]);
    let bob_state = state_dir();
    let mut bob = Cli::spawn(
        bob_state.path(),
        &[&server.url(), "--name", "bob", "--room", "#dev", "--json"],
    );
    bob.expect_stdout_where("bob's membership of #dev", |line| {
        line.contains("\"membership\"") && line.contains("\"#dev\"")
    });
    let alice_state = state_dir();
    let out = run_script(
        alice_state.path(),
        &[&server.url(), "--name", "alice", "--room", "dev"],
        "to the room\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        out.stdout.iter().map(|l| untimed(l)).collect::<Vec<_>>(),
        ["[#dev] alice (you): to the room"]
    );
    let out = run_script(
        alice_state.path(),
        &[&server.url(), "--name", "alice", "--to", "bob"],
        "just you\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        out.stdout.iter().map(|l| untimed(l)).collect::<Vec<_>>(),
        ["[you → bob] alice (you): just you"]
    );
    for (text, room) in [("to the room", "#dev"), ("just you", "@alice")] {
        let line = bob.expect_stdout_where(text, |line| line.contains(text));
        let frame: Value = serde_json::from_str(&line).expect("a JSON line");
        assert_eq!(frame["room"], room, "{frame}");
    }
}

#[test]
fn a_server_without_rooms_says_so() {
    let server = Server::start(&[]);
    let proxy = Proxy::v1_only(server.port());
    let state = state_dir();
    let out = run_script(
        state.path(),
        &[&proxy.url(), "--name", "alice", "--room", "#dev"],
        "lost?\n",
    );
    assert!(!out.status.success(), "{out:?}");
    assert!(
        out.stderr.iter().any(|l| l.contains("this server speaks protocol v1, which has no rooms or direct messages: #dev needs a server that speaks protocol v3")),
        "{out:?}"
    );
    let mut alice = Screen::start(state.path(), &[&proxy.url(), "--name", "alice"]);
    wait_for_prompt(&mut alice, "alice> ");
    alice.type_keys("/join #dev\r");
    // 80 columns: the line wraps.
    alice.wait_for_text(
        "this server has no rooms or direct messages (it speaks protocol v1): /join needs",
    );
    wait_for_prompt(&mut alice, "alice> ");
}

#[test]
fn help_explains_the_room_flags_and_commands() {
    let state = state_dir();
    let help = chat_cli(state.path(), &["--help"])
        .output()
        .expect("chat-cli --help");
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).expect("UTF-8");
    for topic in [
        "--room <#ROOM>",
        "--to <NAME>",
        "wschat.v3",
        "#dev> ",
        "[#ops] 14:02 bob: …",
        "[bob → you]",
        "/join #ROOM",
        "/part [#ROOM] [REASON]",
        "/msg NAME TEXT",
        "/query NAME",
        "/rooms",
        "/names",
        "/unread",
        "/topic [TEXT]",
        "/invite NAME",
        "/kick NAME [REASON]",
        "/ban NAME [DURATION]",
        "/unban NAME",
        "/mute NAME [DURATION]",
        "/unmute NAME",
        "/op NAME",
        "/deop NAME",
        "/mode +i|-i",
        "Tab completes #rooms",
        "under one divider per room",
    ] {
        assert!(help.contains(topic), "--help lacks {topic}:\n{help}");
    }
    // A room or a name that cannot be one is a usage error.
    for args in [
        &["--name", "a", "--room", "#no room"][..],
        &["--name", "a", "--to", "no one"][..],
        &["--name", "a", "--room", "#dev", "--to", "bob"][..],
    ] {
        let out = chat_cli(state.path(), args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("chat-cli");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}
