//! chat-cli on protocol v2 against a real chat-server on 127.0.0.1, with a
//! TCP proxy in between to cut its connection while the server and the
//! others carry on: it catches up on what it missed, once and in order,
//! never loses a message it sent, and falls back to v1 when the server
//! does not select v2.
#![cfg(all(feature = "cli", feature = "server"))]

mod clients;
mod net;

use clients::{Cli, Direction, Proxy, Server, run_script, state_dir};
use serde_json::Value;

/// A server with a proxy in front of it that can cut a client off, and the
/// state directories of the clients started (kept until the end).
struct Chat {
    server: Server,
    proxy: Proxy,
    states: Vec<tempfile::TempDir>,
}

impl Chat {
    /// `server`, behind `proxy` (`Proxy::start` or `Proxy::v1_only`).
    fn start(server: Server, proxy: fn(u16) -> Proxy) -> Chat {
        let proxy = proxy(server.port());
        Chat {
            server,
            proxy,
            states: Vec::new(),
        }
    }

    /// chat-cli as `name` through the proxy, with `extra` flags.
    fn behind_proxy(&mut self, name: &str, extra: &[&str]) -> Cli {
        let url = self.proxy.url();
        self.spawn(&url, name, extra)
    }

    /// chat-cli as `name`, straight to the server.
    fn direct(&mut self, name: &str) -> Cli {
        let url = self.server.url();
        self.spawn(&url, name, &[])
    }

    fn spawn(&mut self, url: &str, name: &str, extra: &[&str]) -> Cli {
        let state = state_dir();
        let cli = Cli::spawn(state.path(), &[&[url, "--name", name][..], extra].concat());
        self.states.push(state);
        cli
    }
}

/// The JSON lines of a `--json` run, and their types.
fn json_lines(stdout: &[String]) -> (Vec<Value>, Vec<String>) {
    let frames: Vec<Value> = stdout
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let types = frames
        .iter()
        .map(|f| f["type"].as_str().unwrap().to_owned())
        .collect();
    (frames, types)
}

/// Cuts the proxy and waits until both the client and the server (as
/// `witness`, another chat-cli, hears) know the client is gone.
fn cut_off(proxy: &Proxy, client: &mut Cli, name: &str, witness: &mut Cli) {
    proxy.cut();
    client.expect_stderr("connection lost");
    witness.expect_stdout(&format!("* {name} left"));
}

#[test]
fn after_a_drop_the_client_prints_every_missed_message_once_in_order() {
    let mut chat = Chat::start(Server::start(&[]), Proxy::start);
    let mut alice = chat.behind_proxy("alice", &[]);
    alice.send("before");
    alice.expect_stdout("alice (you): before");
    let mut bob = chat.direct("bob");
    alice.expect_stdout("* bob joined from 127.0.0.1");
    bob.send("hello alice");
    alice.expect_stdout("bob: hello alice");

    cut_off(&chat.proxy, &mut alice, "alice", &mut bob);
    let missed: Vec<String> = (1..=5)
        .map(|n| format!("while you were away {n}"))
        .collect();
    for message in &missed {
        bob.send(message);
        bob.expect_stdout(&format!("bob (you): {message}"));
    }
    chat.proxy.restore();
    alice.expect_stderr("back online as alice");
    bob.expect_stdout("* alice joined from 127.0.0.1");
    bob.send("welcome back");
    alice.expect_stdout("bob: welcome back");

    let alice = alice.finish();
    assert!(alice.status.success(), "{alice:?}");
    let mut expected = vec![
        "alice (you): before".to_owned(),
        "* bob joined from 127.0.0.1".to_owned(),
        "bob: hello alice".to_owned(),
    ];
    expected.extend(missed.iter().map(|m| format!("bob: {m}")));
    expected.push("bob: welcome back".to_owned());
    assert_eq!(alice.stdout, expected, "each missed message once, in order");
    assert!(
        !alice.stderr.iter().any(|l| l.contains("missed")),
        "the server held everything: {:?}",
        alice.stderr
    );
}

#[test]
fn the_catch_up_after_a_drop_holds_exactly_what_was_missed() {
    let mut chat = Chat::start(Server::start(&[]), Proxy::start);
    let mut alice = chat.behind_proxy("alice", &["--json"]);
    alice.send("mine");
    alice.expect_stdout_where("alice's own message", |l| l.contains(r#""message":"mine""#));
    let mut bob = chat.direct("bob");
    bob.send("seen");
    alice.expect_stdout_where("bob's message", |l| l.contains(r#""message":"seen""#));
    cut_off(&chat.proxy, &mut alice, "alice", &mut bob);
    for message in ["missed 1", "missed 2"] {
        bob.send(message);
        bob.expect_stdout(&format!("bob (you): {message}"));
    }
    chat.proxy.restore();
    let history = alice.expect_stdout_where("the catch-up", |l| l.contains(r#""type":"history""#));
    let history: Value = serde_json::from_str(&history).expect("JSON");
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["missed 1", "missed 2"], "since = the last seq seen");
    assert_eq!(history["complete"], true);
}

#[test]
fn a_message_left_unconfirmed_by_a_drop_is_delivered_exactly_once() {
    let mut chat = Chat::start(Server::start(&[]), Proxy::start);
    let mut alice = chat.behind_proxy("alice", &[]);
    alice.send("hi");
    alice.expect_stdout("alice (you): hi");
    let mut bob = chat.direct("bob");
    alice.expect_stdout("* bob joined from 127.0.0.1");

    // The server gets the message; its confirmation is lost with the
    // connection. The catch-up shows it arrived: it is not sent again.
    chat.proxy.hold(Direction::ToClient);
    alice.send("did this arrive?");
    bob.expect_stdout("alice: did this arrive?");
    cut_off(&chat.proxy, &mut alice, "alice", &mut bob);
    chat.proxy.restore();
    alice.expect_stderr("back online as alice");
    alice.expect_stdout("alice (you): did this arrive?");

    // The message never reaches the server: after the reconnect it is
    // sent again, and said so.
    chat.proxy.hold(Direction::ToServer);
    alice.send("and this one?");
    chat.proxy.wait_held();
    cut_off(&chat.proxy, &mut alice, "alice", &mut bob);
    chat.proxy.restore();
    alice.expect_stderr("sending it again: and this one?");
    alice.expect_stdout("alice (you): and this one?");
    bob.expect_stdout("alice: and this one?");

    bob.send("the end");
    alice.expect_stdout("bob: the end");
    let alice = alice.finish();
    assert!(alice.status.success(), "{alice:?}");
    let bob = bob.finish();
    assert!(bob.status.success(), "{bob:?}");
    for (who, lines, line) in [
        ("alice", &alice.stdout, "alice (you): did this arrive?"),
        ("alice", &alice.stdout, "alice (you): and this one?"),
        ("bob", &bob.stdout, "alice: did this arrive?"),
        ("bob", &bob.stdout, "alice: and this one?"),
    ] {
        let times = lines.iter().filter(|l| *l == line).count();
        assert_eq!(times, 1, "{who} saw {line:?} {times} times: {lines:?}");
    }
}

#[test]
fn against_a_server_that_does_not_select_v2_the_client_falls_back_to_v1() {
    let server = Server::start(&[]);
    let v1_only = Proxy::v1_only(server.port());
    let state = state_dir();
    let out = run_script(
        state.path(),
        &[&v1_only.url(), "--name", "old", "--json"],
        "hi\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stderr, Vec::<String>::new());
    let (frames, types) = json_lines(&out.stdout);
    assert_eq!(types, ["loginBroadcast", "loginMessage", "textBroadcast"]);
    for frame in &frames {
        for v2_field in ["seq", "timestamp", "replyTo"] {
            assert!(frame.get(v2_field).is_none(), "v1 only: {frame}");
        }
    }
    // The first connection offered v2 and was given nothing; the second
    // offered nothing.
    assert_eq!(v1_only.connections(), 2);

    // The same server, asked directly, speaks v3 (v2 and rooms) with
    // chat-cli: its `rooms` follows `loginMessage`.
    let state = state_dir();
    let out = run_script(
        state.path(),
        &[&server.url(), "--name", "new", "--json"],
        "hi\n",
    );
    assert!(out.status.success(), "{out:?}");
    let (frames, types) = json_lines(&out.stdout);
    assert_eq!(
        types,
        [
            "loginBroadcast",
            "loginMessage",
            "rooms",
            "history",
            "textBroadcast"
        ]
    );
    let own = &frames[4];
    assert!(own["seq"].is_u64() && own["timestamp"].is_u64(), "{own}");
    assert!(own["replyTo"].is_string(), "{own}");
}

#[test]
fn a_v1_session_still_works_through_a_drop() {
    let mut chat = Chat::start(Server::start(&[]), Proxy::v1_only);
    let mut alice = chat.behind_proxy("alice", &[]);
    alice.send("on v1");
    alice.expect_stdout("alice (you): on v1");
    let mut bob = chat.direct("bob");
    alice.expect_stdout("* bob joined from 127.0.0.1");
    chat.proxy.cut();
    alice.expect_stderr("connection lost");
    bob.expect_stdout("* alice left");
    bob.send("lost to v1");
    bob.expect_stdout("bob (you): lost to v1");
    chat.proxy.restore();
    alice.expect_stderr("back online as alice");
    bob.send("after");
    alice.expect_stdout("bob: after");
    let alice = alice.finish();
    assert!(alice.status.success(), "{alice:?}");
    // v1 has no catch-up: what was said meanwhile is not shown.
    assert!(!alice.stdout.iter().any(|l| l.contains("lost to v1")));
}

#[test]
fn when_the_server_no_longer_holds_everything_missed_the_client_says_so() {
    let mut chat = Chat::start(Server::start(&["--history-size", "3"]), Proxy::start);
    let mut alice = chat.behind_proxy("alice", &[]);
    alice.send("here");
    alice.expect_stdout("alice (you): here");
    let mut bob = chat.direct("bob");
    alice.expect_stdout("* bob joined from 127.0.0.1");
    cut_off(&chat.proxy, &mut alice, "alice", &mut bob);
    for n in 1..=5 {
        let message = format!("said {n}");
        bob.send(&message);
        bob.expect_stdout(&format!("bob (you): {message}"));
    }
    chat.proxy.restore();
    alice.expect_stderr("back online as alice");
    alice.expect_stderr("some messages were missed while you were away");
    bob.send("and now");
    alice.expect_stdout("bob: and now");
    let alice = alice.finish();
    assert!(alice.status.success(), "{alice:?}");
    assert_eq!(
        alice.stdout,
        [
            "alice (you): here",
            "* bob joined from 127.0.0.1",
            "bob: said 3",
            "bob: said 4",
            "bob: said 5",
            "bob: and now"
        ],
        "what the server still held, once"
    );
}

// ---- across a server restart (issue 13) ----

/// Says `texts` as `name` on a v2 connection of its own, each acknowledged.
fn say_as(server: &Server, name: &str, texts: &[&str]) {
    let mut client = net::Client::connect_v2(server.addr);
    client.login(name);
    for text in texts {
        client.say(text);
        loop {
            let json = client.recv_type("textBroadcast");
            if json["message"] == *text {
                break;
            }
        }
    }
}

/// How often `line` is in what chat-cli printed.
fn count(lines: &[String], line: &str) -> usize {
    lines.iter().filter(|l| *l == line).count()
}

#[test]
fn across_a_restart_every_message_said_meanwhile_is_shown_once_and_in_order() {
    let mut server = Server::start(&[]);
    let (alice_state, bob_state) = (state_dir(), state_dir());
    let mut alice = Cli::spawn(alice_state.path(), &[&server.url(), "--name", "alice"]);
    let mut bob = Cli::spawn(bob_state.path(), &[&server.url(), "--name", "bob"]);
    alice.send("before");
    bob.expect_stdout("alice: before");

    // The server dies and comes back on the same store; carol talks to it
    // before (or while) the two reconnect.
    server.kill();
    alice.expect_stderr("connection lost");
    bob.expect_stderr("connection lost");
    server.restart();
    say_as(&server, "carol", &["after 1", "after 2", "after 3"]);
    for cli in [&mut alice, &mut bob] {
        cli.expect_stderr("back online as");
        cli.expect_stdout("carol: after 3");
    }
    alice.send("and back");
    bob.expect_stdout("alice: and back");

    for (name, cli) in [("alice", alice), ("bob", bob)] {
        let out = cli.finish();
        assert!(out.status.success(), "{name}: {out:?}");
        let shown: Vec<&String> = out.stdout.iter().filter(|l| l.contains("after ")).collect();
        assert_eq!(
            shown,
            ["carol: after 1", "carol: after 2", "carol: after 3"],
            "{name}: {out:?}"
        );
        assert_eq!(count(&out.stdout, "carol: after 1"), 1, "{name}: {out:?}");
        // Nothing was missed, and the store is the same: neither is said.
        let all = [out.stdout.clone(), out.stderr.clone()].concat();
        assert!(!all.iter().any(|l| l.contains("missed")), "{name}: {out:?}");
        assert!(
            !all.iter().any(|l| l.contains("store is new")),
            "{name}: {out:?}"
        );
    }
}

#[test]
fn a_restart_that_kept_nothing_is_said_plainly_and_nothing_said_since_is_lost() {
    let mut server = Server::start(&["--in-memory"]);
    let state = state_dir();
    let mut alice = Cli::spawn(state.path(), &[&server.url(), "--name", "alice"]);
    alice.send("one");
    alice.send("two");
    alice.expect_stdout("alice (you): two");
    server.kill();
    alice.expect_stderr("connection lost");
    server.restart();
    // The new server numbers from 1 again, and has said as much as alice
    // had seen by the time she is back: without the epoch, these would be
    // taken for messages already shown.
    say_as(&server, "carol", &["fresh 1", "fresh 2", "fresh 3"]);
    alice.expect_stdout("carol: fresh 3");
    let out = alice.finish();
    assert!(out.status.success(), "{out:?}");
    let all = [out.stdout.clone(), out.stderr.clone()].concat();
    let new_store = all.iter().filter(|l| l.contains("store is new")).count();
    assert_eq!(new_store, 1, "{out:?}");
    assert!(!all.iter().any(|l| l.contains("missed")), "{out:?}");
    for text in ["carol: fresh 1", "carol: fresh 2", "carol: fresh 3"] {
        assert_eq!(count(&out.stdout, text), 1, "{text}: {out:?}");
    }
}

#[test]
fn a_secret_saved_at_another_address_is_named_then_used_once_the_server_is_known() {
    let server = Server::start(&[]);
    let here = server.url();
    let there = format!("ws://localhost:{}", server.port());
    assert_ne!(here, there);
    let state = state_dir();
    let first = run_script(state.path(), &[&here, "--name", "ivy"], "hi\n");
    assert!(first.status.success(), "{first:?}");

    // The server holds the name (its TTL is minutes). Under another address
    // chat-cli cannot tell yet that it is the same server: it sends no
    // secret, and says where one is saved and what to do.
    let out = run_script(state.path(), &[&there, "--name", "ivy"], "again\n");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        out.stderr,
        [format!(
            "chat-cli: the name 'ivy' is taken here; a secret for it is saved for {here}, but \
             chat-cli cannot tell whether that is this server: if so (another address of it, \
             or another node of its cluster), connect there to keep your name (chat-cli {here} \
             --name ivy); if not, pick another name or wait until this one is released"
        )]
    );

    // A login there under another name shows the server's store: the same
    // one. From then on ivy's secret is used there too, and filed for it.
    let bot = run_script(state.path(), &[&there, "--name", "bot"], "beep\n");
    assert!(bot.status.success(), "{bot:?}");
    let out = run_script(state.path(), &[&there, "--name", "ivy"], "again\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, ["ivy (you): again"]);
    let file = state.path().join("wschat/secrets.json");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert!(saved["servers"][&here]["ivy"].is_string(), "{saved}");
    assert_eq!(
        saved["servers"][&there]["ivy"], saved["servers"][&here]["ivy"],
        "{saved}"
    );
    assert_eq!(saved["epochs"][&there], saved["epochs"][&here], "{saved}");
}
