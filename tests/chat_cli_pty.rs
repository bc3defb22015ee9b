//! chat-cli in interactive mode, in a pseudo-terminal: a message that
//! arrives while a line is half typed is printed above it, and the typed
//! line survives.
#![cfg(all(unix, feature = "cli", feature = "server"))]

mod clients;

use clients::{Cli, Server, TIMEOUT, chat_cli, run_script};
use nix::sys::wait::WaitStatus;
use rexpect::session::{Options, spawn_with_options};

#[test]
fn a_message_arriving_while_typing_leaves_the_typed_line_intact()
-> Result<(), rexpect::error::Error> {
    let server = Server::start();
    let state = tempfile::tempdir().unwrap();
    let mut command = chat_cli(state.path(), &[&server.url(), "--name", "alice"]);
    command.env("TERM", "xterm");
    let options = Options::new()
        .timeout_ms(Some(TIMEOUT.as_millis() as u64))
        .strip_ansi_escape_codes(true);
    let mut alice = spawn_with_options(command, options)?;
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
    alice.exp_eof()?;
    assert!(
        matches!(alice.process().wait()?, WaitStatus::Exited(_, 0)),
        "chat-cli did not exit with 0"
    );
    Ok(())
}

#[test]
fn who_lists_who_is_online_and_logout_frees_the_name() -> Result<(), rexpect::error::Error> {
    let server = Server::start();
    let bob_state = tempfile::tempdir().unwrap();
    let mut bob = Cli::spawn(bob_state.path(), &[&server.url(), "--name", "bob"]);
    bob.send("hi");
    bob.expect_stdout("bob (you): hi");

    let state = tempfile::tempdir().unwrap();
    let mut command = chat_cli(state.path(), &[&server.url(), "--name", "alice"]);
    command.env("TERM", "xterm");
    let options = Options::new()
        .timeout_ms(Some(TIMEOUT.as_millis() as u64))
        .strip_ansi_escape_codes(true);
    let mut alice = spawn_with_options(command, options)?;
    alice.exp_string("connected to")?;
    // A newcomer sees what was said before, for context.
    alice.exp_string("bob: hi")?;
    alice.exp_string("alice> ")?;
    alice.send_line("/who")?;
    alice.exp_string("online (2): alice (you), bob")?;
    alice.send_line("/logout")?;
    alice.exp_string("logged out: the name alice is free")?;
    alice.exp_eof()?;
    assert!(
        matches!(alice.process().wait()?, WaitStatus::Exited(_, 0)),
        "chat-cli did not exit with 0"
    );
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
