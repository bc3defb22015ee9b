//! chat-cli in interactive mode, in a pseudo-terminal: a message that
//! arrives while a line is half typed is printed above it, and the typed
//! line survives.
#![cfg(all(unix, feature = "cli", feature = "server"))]

mod clients;
mod net;

use std::path::Path;

use clients::{Cli, Server, TIMEOUT, chat_cli, run_script};
use nix::sys::wait::WaitStatus;
use rexpect::error::Error;
use rexpect::session::{Options, PtySession, spawn_with_options};

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
    let state = tempfile::tempdir().unwrap();
    let mut alice = alice_in_a_terminal(state.path(), &server)?;
    alice.exp_string("connected to")?;
    alice.exp_string("alice> ")?;
    alice.send("half typ")?;
    alice.flush()?;
    alice.exp_string("half typ")?;

    let bob_state = tempfile::tempdir().unwrap();
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
    let bob_state = tempfile::tempdir().unwrap();
    let mut bob = Cli::spawn(bob_state.path(), &[&server.url(), "--name", "bob"]);
    bob.send("hi");
    bob.expect_stdout("bob (you): hi");

    let state = tempfile::tempdir().unwrap();
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
    let other = tempfile::tempdir().unwrap();
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
fn a_name_refused_at_the_prompt_is_asked_again() -> Result<(), Error> {
    let server = Server::start(&[]);
    let bob_state = tempfile::tempdir().unwrap();
    let mut bob = Cli::spawn(bob_state.path(), &[&server.url(), "--name", "bob"]);
    bob.send("hi");
    bob.expect_stdout("bob (you): hi");

    let state = tempfile::tempdir().unwrap();
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
    let state = tempfile::tempdir().unwrap();
    let mut session = in_a_terminal(state.path(), &["ws://127.0.0.1:1"])?;
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
fn commands_ignore_case_refuse_stray_arguments_and_quit_asks_before_losing_lines()
-> Result<(), Error> {
    let mut server = Server::start(&[]);
    let state = tempfile::tempdir().unwrap();
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
    let bob_state = tempfile::tempdir().unwrap();
    let mut bob = Cli::spawn(bob_state.path(), &[&server.url(), "--name", "bob"]);
    bob.send("before you came");
    bob.expect_stdout("bob (you): before you came");

    let state = tempfile::tempdir().unwrap();
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
