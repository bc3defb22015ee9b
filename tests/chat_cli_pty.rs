//! chat-cli in interactive mode, in a pseudo-terminal: a message that
//! arrives while a line is half typed is printed above it, and the typed
//! line survives. Tests of what the screen shows (a line erased, a row
//! kept in view, colours) read it through a terminal emulator ([`Screen`]).
#![cfg(all(unix, feature = "cli", feature = "server"))]

mod clients;
mod net;
mod screen;

use std::path::Path;

use clients::{Cli, Direction, Proxy, Server, TIMEOUT, chat_cli, chatting, run_script, state_dir};
use nix::sys::wait::WaitStatus;
use rexpect::error::Error;
use rexpect::session::{Options, PtySession, spawn_with_options};
use screen::{Screen, count};

/// chat-cli as alice on `server`, interactive in a pseudo-terminal.
fn alice_in_a_terminal(state: &Path, server: &Server) -> Result<PtySession, Error> {
    in_a_terminal(state, &[&server.url(), "--name", "alice"])
}

/// chat-cli with `args`, interactive in a pseudo-terminal.
fn in_a_terminal(state: &Path, args: &[&str]) -> Result<PtySession, Error> {
    let mut command = chat_cli(state, args);
    command.env("TERM", "xterm");
    let options = Options::new()
        .timeout_ms(Some(TIMEOUT.as_millis() as u64))
        .strip_ansi_escape_codes(true);
    spawn_with_options(command, options)
}

/// Waits for the end of the session and checks that it exited with 0.
fn assert_exits_with_0(session: &mut PtySession) -> Result<(), Error> {
    assert_exits_with(session, 0)
}

/// Waits for the end of the session and checks its exit status; returns
/// what it printed last.
fn assert_exits_with(session: &mut PtySession, code: i32) -> Result<(), Error> {
    let rest = session.exp_eof()?;
    let status = session.process().wait()?;
    assert!(
        matches!(status, WaitStatus::Exited(_, c) if c == code),
        "chat-cli did not exit with {code}: {status:?}; it printed {rest:?}"
    );
    Ok(())
}

#[test]
fn a_message_arriving_while_typing_leaves_the_typed_line_intact() -> Result<(), Error> {
    let server = Server::start(&[]);
    let state = state_dir();
    let mut alice = alice_in_a_terminal(state.path(), &server)?;
    alice.exp_string("connected to")?;
    alice.exp_string("alice> ")?;
    alice.send("half typ")?;
    alice.flush()?;
    alice.exp_string("half typ")?;

    let bob_state = state_dir();
    let bob = run_script(
        bob_state.path(),
        &[&server.url(), "--name", "bob"],
        "hello from bob\n",
    );
    assert!(bob.status.success(), "{bob:?}");

    // Printed above the prompt, which is drawn again below it with the
    // half-typed text…
    alice.exp_string("bob: hello from bob")?;
    alice.exp_string("alice> half typ")?;
    // …and the line goes on from where it was.
    alice.send_line("ed")?;
    alice.exp_string("alice (you): half typed")?;

    // Ctrl-D leaves with status 0.
    alice.send_control('d')?;
    assert_exits_with_0(&mut alice)?;
    Ok(())
}

#[test]
fn who_lists_who_is_online_and_logout_frees_the_name() -> Result<(), Error> {
    let server = Server::start(&[]);
    let (mut bob, _bob_state) = chatting(&server, "bob", "hi");

    let state = state_dir();
    let mut alice = alice_in_a_terminal(state.path(), &server)?;
    alice.exp_string("connected to")?;
    // A newcomer sees what was said before, for context.
    alice.exp_string("bob: hi")?;
    alice.exp_string("alice> ")?;
    alice.send_line("/who")?;
    alice.exp_string("online (2): alice (you), bob")?;
    alice.send_line("/logout")?;
    alice.exp_string("logged out: the name alice is free")?;
    assert_exits_with_0(&mut alice)?;
    bob.expect_stdout("* alice logged out");

    // Free at once: someone else takes it, no secret needed.
    let other = state_dir();
    let out = run_script(
        other.path(),
        &[&server.url(), "--name", "Alice"],
        "mine now\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, ["Alice (you): mine now"]);
    Ok(())
}

#[test]
fn quit_and_ctrl_d_say_the_name_stays_reserved_and_logout_does_not() -> Result<(), Error> {
    let server = Server::start(&[]);
    let bye = "bye: the name alice stays yours for 10 minutes";
    let state = state_dir();
    let mut alice = alice_in_a_terminal(state.path(), &server)?;
    alice.exp_string("alice> ")?;
    alice.send_line("/quit")?;
    alice.exp_string(bye)?;
    assert_exits_with_0(&mut alice)?;

    // Ctrl-D, back with the secret saved.
    let mut alice = alice_in_a_terminal(state.path(), &server)?;
    alice.exp_string("alice> ")?;
    alice.send_control('d')?;
    alice.exp_string(bye)?;
    assert_exits_with_0(&mut alice)?;

    // /logout freed it: nothing is reserved.
    let mut alice = alice_in_a_terminal(state.path(), &server)?;
    alice.exp_string("alice> ")?;
    alice.send_line("/logout")?;
    alice.exp_string("logged out: the name alice is free")?;
    let rest = alice.exp_eof()?;
    assert!(!rest.contains("bye:"), "{rest:?}");
    Ok(())
}

#[test]
fn a_name_refused_at_the_prompt_is_asked_again() -> Result<(), Error> {
    let server = Server::start(&[]);
    let (mut bob, _bob_state) = chatting(&server, "bob", "hi");

    let state = state_dir();
    let mut session = in_a_terminal(state.path(), &[&server.url()])?;
    session.exp_string("your name: ")?;
    session.send_line("bob")?;
    session.exp_string("the name 'bob' is taken; pick another")?;
    session.exp_string("your name: ")?;
    // Valid here, too long for the server (32 at most).
    session.send_line(&"a".repeat(40))?;
    session.exp_string("at most 32 are allowed")?;
    session.exp_string("your name: ")?;
    session.send_line("carol")?;
    session.exp_string("connected to")?;
    session.exp_string("carol> ")?;
    session.send_line("made it")?;
    session.exp_string("carol (you): made it")?;
    bob.expect_stdout("carol: made it");
    session.send_control('d')?;
    assert_exits_with_0(&mut session)
}

#[test]
fn ctrl_c_at_the_name_prompt_cancels_with_130() -> Result<(), Error> {
    // The name is asked once the server is there.
    let server = Server::start(&[]);
    let state = state_dir();
    let mut session = in_a_terminal(state.path(), &[&server.url()])?;
    session.exp_string("your name: ")?;
    session.send_control('c')?;
    let rest = session.exp_eof()?;
    assert!(!rest.contains("Usage"), "{rest:?}");
    assert!(
        matches!(session.process().wait()?, WaitStatus::Exited(_, 130)),
        "{rest:?}"
    );
    Ok(())
}

#[test]
fn no_server_at_the_address_is_said_before_any_name_is_asked() -> Result<(), Error> {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("ws://127.0.0.1:{port}");
    let state = state_dir();
    let mut session = in_a_terminal(state.path(), &[&url])?;
    let rest = session.exp_eof()?;
    assert_eq!(
        rest.trim(),
        format!(
            "chat-cli: could not connect to {url}: Connection refused (os error 111); \
             check that chat-server is running at that address"
        ),
    );
    assert!(
        matches!(session.process().wait()?, WaitStatus::Exited(_, 1)),
        "{rest:?}"
    );
    Ok(())
}

#[test]
fn commands_ignore_case_refuse_stray_arguments_and_quit_asks_before_losing_lines()
-> Result<(), Error> {
    let mut server = Server::start(&[]);
    let state = state_dir();
    let mut alice = alice_in_a_terminal(state.path(), &server)?;
    alice.exp_string("alice> ")?;
    alice.send_line("/WHO")?;
    alice.exp_string("online (1): alice (you)")?;
    alice.send_line("/quit now")?;
    alice.exp_string("usage: /quit (it takes no argument)")?;

    server.kill();
    alice.exp_string("connection lost")?;
    alice.send_line("are you there")?;
    alice.exp_string("your message will be sent when the connection is back")?;
    alice.send_line("/quit")?;
    alice.exp_string("1 message is not sent yet (the connection is down):")?;
    alice.exp_string("are you there")?;
    alice.exp_string("/quit again leaves without them")?;
    alice.send_line("/quit")?;
    alice.exp_string("not sent: are you there")?;
    assert_exits_with(&mut alice, 1)
}

#[test]
fn replayed_messages_are_set_apart_mentions_ring_and_a_pasted_paragraph_is_one_message()
-> Result<(), Error> {
    let server = Server::start(&[]);
    let (mut bob, _bob_state) = chatting(&server, "bob", "before you came");

    let state = state_dir();
    let mut alice = alice_in_a_terminal(state.path(), &server)?;
    // (rexpect reads bytes as Latin-1: the rules "──" are left out.)
    alice.exp_string(" 1 earlier message ")?;
    alice.exp_string("bob: before you came")?;
    alice.exp_string(" now ")?;
    alice.exp_string("alice> ")?;

    bob.send("lunch, alice?");
    // The bell rings with the line.
    alice.exp_string("\u{7}")?;
    alice.exp_string("bob: lunch, alice?")?;

    // A bracketed paste of two lines, then Enter: one message.
    alice.send("\x1b[200~first line\nsecond line\x1b[201~")?;
    alice.flush()?;
    alice.send_line("")?;
    alice.exp_string("alice (you): first line")?;
    alice.exp_string("                   second line")?;
    bob.expect_stdout("alice: first line");
    bob.expect_stdout("             second line");
    alice.send_control('d')?;
    assert_exits_with_0(&mut alice)
}

#[test]
fn tab_completes_the_names_of_who_is_online_and_the_commands() {
    let server = Server::start(&[]);
    let (mut alice, _alice_state) = chatting(&server, "alice", "hi");

    let state = state_dir();
    let mut bob = Screen::start(state.path(), &[&server.url(), "--name", "bob"]);
    bob.wait_for_bottom(&["bob>"]);
    // alice was online before bob came: the server's userList says so.
    bob.complete("bob> ", "al", "alice: ");
    bob.type_keys("\x15"); // Ctrl-U: clear the line

    // Commands, in any case.
    bob.complete("bob> ", "/wh", "/who");
    bob.type_keys("\x15");
    bob.complete("bob> ", "/ME", "/me ");
    bob.type_keys("\x15");

    // Carol comes later, and is completed in the middle of a line.
    let carol_state = state_dir();
    let mut carol = Cli::spawn(carol_state.path(), &[&server.url(), "--name", "Carol"]);
    carol.send("hello");
    bob.wait_for_text("Carol: hello");
    bob.complete("bob> ", "lunch with ca", "lunch with Carol ");
    bob.type_keys("tomorrow?\r");
    bob.wait_for_text("bob (you): lunch with Carol tomorrow?");
    alice.expect_stdout("bob: lunch with Carol tomorrow?");

    // Once she is gone, she is no longer offered.
    drop(carol);
    bob.wait_for_text("Carol left");
    bob.type_keys("ca\t");
    bob.wait_for_bottom(&["bob> ca"]);
    bob.type_keys("\x15\x04"); // Ctrl-D
    assert!(matches!(bob.exit_status(), WaitStatus::Exited(_, 0)));
}

#[test]
fn on_v1_tab_completes_the_names_seen_in_the_session() {
    let server = Server::start(&[]);
    let proxy = Proxy::v1_only(server.addr.port());
    let state = state_dir();
    let mut bob = Screen::start(state.path(), &[&proxy.url(), "--name", "bob"]);
    bob.wait_for_text("speaks protocol v1");
    bob.wait_for_bottom(&["bob>"]);
    let alice_state = state_dir();
    let out = run_script(
        alice_state.path(),
        &[&server.url(), "--name", "alice"],
        "hi bob\n",
    );
    assert!(out.status.success(), "{out:?}");
    bob.wait_for_text("alice: hi bob");
    bob.complete("bob> ", "thanks al", "thanks alice ");
}

#[test]
fn your_line_shows_once_pending_until_the_server_confirms_it() {
    let server = Server::start(&[]);
    let proxy = Proxy::start(server.addr.port());
    let state = state_dir();
    let mut alice = Screen::start(state.path(), &[&proxy.url(), "--name", "alice"]);
    alice.wait_for_bottom(&["alice>"]);

    // The server does not get the line yet: it is pending, and what was
    // typed is gone from the prompt's row.
    proxy.hold(Direction::ToServer);
    alice.type_keys("hi there\r");
    let rows = alice.wait_for_bottom(&["alice (you): hi there (sending…)", "alice>"]);
    assert_eq!(count(&rows, "hi there"), 1, "{rows:#?}");

    // Someone else speaks meanwhile: above the pending line, which stays
    // just above the prompt.
    let bob_state = state_dir();
    let mut bob = Cli::spawn(bob_state.path(), &[&server.url(), "--name", "bob"]);
    bob.send("meanwhile");
    alice.wait_for_bottom(&[
        "bob: meanwhile",
        "alice (you): hi there (sending…)",
        "alice>",
    ]);

    // Confirmed: one line, in the chat after bob's, and nothing pending.
    proxy.release(Direction::ToServer);
    let rows = alice.wait_for_bottom(&["bob: meanwhile", "alice (you): hi there", "alice>"]);
    assert_eq!(count(&rows, "hi there"), 1, "{rows:#?}");
    bob.expect_stdout("alice: hi there");
    assert_eq!(count(&rows, "sending"), 0, "{rows:#?}");

    // Offline, a line waits for the connection, then shows once.
    proxy.cut();
    alice.wait_for_text("connection lost");
    alice.type_keys("still here\r");
    alice.wait_for_bottom(&[
        "alice (you): still here (waiting for the connection)",
        "alice>",
    ]);
    proxy.restore();
    let rows = alice.wait_until("the line sent once back", |rows| {
        rows.iter()
            .any(|row| row.ends_with("alice (you): still here"))
    });
    assert_eq!(count(&rows, "still here"), 1, "{rows:#?}");
    assert_eq!(count(&rows, "waiting for the connection"), 0, "{rows:#?}");
    assert_eq!(count(&rows, "alice> "), 0, "no typed line left: {rows:#?}");
    alice.type_keys("\x04");
    assert!(matches!(alice.exit_status(), WaitStatus::Exited(_, 0)));
}

#[test]
fn a_mention_is_highlighted_in_colour_and_rings_the_bell_once() {
    let server = Server::start(&[]);
    let bob_state = state_dir();
    let mut bob = Cli::spawn(bob_state.path(), &[&server.url(), "--name", "bob"]);
    let state = state_dir();
    let mut alice = Screen::start_in_colour(state.path(), &[&server.url(), "--name", "alice"]);
    alice.wait_for_bottom(&["alice>"]);
    bob.send("hello all");
    alice.wait_for_bottom(&["bob: hello all", "alice>"]);
    bob.send("lunch, alice?");
    // The bell took no row of its own.
    let rows = alice.wait_for_bottom(&["bob: hello all", "bob: lunch, alice?", "alice>"]);
    let row = |text: &str| rows.iter().position(|row| row.contains(text)).unwrap() as u16;
    let (plain, mention) = (row("hello all"), row("lunch, alice?"));
    // "HH:MM bob: " is 11 columns.
    let screen = alice.parser.screen();
    let cell = screen.cell(mention, 11).expect("a cell");
    assert_eq!(cell.contents(), "l");
    assert!(cell.bold(), "a mention is bold…");
    assert_eq!(cell.fgcolor(), vt100::Color::Idx(0), "…black…");
    assert_eq!(cell.bgcolor(), vt100::Color::Idx(3), "…on yellow");
    let cell = screen.cell(plain, 11).expect("a cell");
    assert_eq!(cell.contents(), "h");
    assert!(!cell.bold());
    assert_eq!(cell.bgcolor(), vt100::Color::Default);
    assert_eq!(alice.bells(), 1, "one bell, for the mention");
}

#[test]
fn replayed_messages_are_set_apart_from_live_ones_on_screen() {
    let server = Server::start(&[]);
    let bob_state = state_dir();
    let mut bob = Cli::spawn(bob_state.path(), &[&server.url(), "--name", "bob"]);
    bob.send("one");
    bob.send("two");
    bob.expect_stdout("bob (you): two");

    let state = state_dir();
    let mut alice = Screen::start(state.path(), &[&server.url(), "--name", "alice"]);
    alice.wait_for_bottom(&["alice>"]);
    bob.send("three");
    alice.wait_for_bottom(&[
        "── 2 earlier messages ──",
        "bob: one",
        "bob: two",
        "── now ──",
        "bob: three",
        "alice>",
    ]);
}

#[test]
fn a_name_the_rule_refuses_at_the_prompt_is_said_above_the_prompt_asked_again() {
    let server = Server::start(&[]);
    // Online, so that the name is taken.
    let (_bob, _bob_state) = chatting(&server, "bob", "hi");

    let state = state_dir();
    let mut session = Screen::start(state.path(), &[&server.url()]);
    session.wait_for_bottom(&["your name:"]);
    session.type_keys("bob\r");
    session.wait_for_bottom(&[
        "your name: bob",
        "!! the name 'bob' is taken; pick another or wait until it is released",
        "your name:",
    ]);
    // Refused by the name rule after the server refused one: said as the
    // server's refusal was, in order, and asked again below.
    session.type_keys("no-one at all\r");
    session.wait_for_bottom(&[
        "your name: no-one at all",
        "!! that name cannot be used: the name contains a space; join words with _,",
        " - or . instead",
        "your name:",
    ]);
    session.type_keys("carol\r");
    session.wait_for_bottom(&["carol>"]);
}

#[test]
fn a_line_that_wraps_or_a_pasted_paragraph_is_erased_whole_and_shown_once() {
    let server = Server::start(&[]);
    let state = state_dir();
    let mut alice = Screen::start(state.path(), &[&server.url(), "--name", "alice"]);
    alice.wait_for_bottom(&["alice>"]);
    // 7 + 100 columns: the typed line takes two rows.
    let long = format!("start {} end", "x".repeat(90));
    alice.type_keys(&format!("{long}\r"));
    let rows = alice.wait_until("the long line, confirmed", |rows| {
        rows.iter()
            .any(|row| row.contains("alice (you): start xxx"))
            && !rows.iter().any(|row| row.contains("sending"))
            && rows.last().is_some_and(|row| row == "alice>")
    });
    assert_eq!(count(&rows, "start xxx"), 1, "{rows:#?}");
    assert!(
        rows[rows.len() - 2].ends_with("xxx end"),
        "the rest of it on the next row, nothing after: {rows:#?}"
    );

    alice.type_keys("\x1b[200~first line\nsecond line\x1b[201~\r");
    let rows = alice.wait_for_bottom(&[
        "alice (you): first line",
        "                   second line",
        "alice>",
    ]);
    assert_eq!(count(&rows, "first line"), 1, "{rows:#?}");
    assert_eq!(count(&rows, "second line"), 1, "{rows:#?}");
}
