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
    let mut command = chat_cli(state, &[&server.url(), "--name", "alice"]);
    command.env("TERM", "xterm");
    let options = Options::new()
        .timeout_ms(Some(TIMEOUT.as_millis() as u64))
        .strip_ansi_escape_codes(true);
    spawn_with_options(command, options)
}

/// Waits for the end of the session and checks that it exited with 0.
fn assert_exits_with_0(session: &mut PtySession) -> Result<(), Error> {
    session.exp_eof()?;
    assert!(
        matches!(session.process().wait()?, WaitStatus::Exited(_, 0)),
        "chat-cli did not exit with 0"
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
