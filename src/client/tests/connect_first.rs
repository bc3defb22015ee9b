//! Issue 24, defect 7: without a name, the client connects first and asks
//! for one only once the server is there; when nothing answers at the
//! address, it says to check that chat-server runs there.

use super::*;

fn unnamed() -> Harness {
    let mut c = config(Mode::Interactive);
    c.username = String::new();
    c.on_name_refused = OnNameRefused::AskAnother;
    Harness::new(c)
}

#[test]
fn without_a_name_it_connects_then_asks_then_logs_in_on_that_connection() {
    let mut h = unnamed();
    assert_eq!(h.drain(), ["connect"]);
    // Connected: the server is there; now the name.
    assert_eq!(h.connected(), ["ask name"]);
    assert_eq!(h.client.poll_timeout(), None, "waits for the user");
    // What the server says before a login is not ours yet.
    assert_eq!(h.server(text("bob", "hi")), Vec::<String>::new());
    h.now += Duration::from_secs(30);
    h.client.handle_name("alice", Some("S".into()), h.now);
    assert_eq!(h.drain(), ["send login alice secret=S"]);
    assert_eq!(
        h.client.poll_timeout(),
        Some(h.now + Duration::from_secs(10)),
        "the login's own deadline, from when it was sent"
    );
    h.server(login_message("alice", "S"));
    assert!(h.client.is_online());
}

#[test]
fn a_given_secret_goes_with_the_first_name_asked_and_not_with_the_next() {
    let mut c = config(Mode::Interactive);
    c.username = String::new();
    c.on_name_refused = OnNameRefused::AskAnother;
    c.given_secret = Some("from my laptop".into());
    let mut h = Harness::new(c);
    h.drain();
    h.connected();
    h.client.handle_name("alice", Some("saved".into()), h.now);
    assert_eq!(h.drain(), ["send login alice secret=from my laptop"]);
    h.server(error(ErrorCode::LoginTaken, None));
    h.client.handle_name("carol", None, h.now);
    h.drain();
    assert_eq!(h.connected(), ["send login carol"]);
}

#[test]
fn a_connection_the_server_closed_while_the_user_typed_is_made_again() {
    // Closed while asking: a new one once the name is given.
    let mut h = unnamed();
    h.drain();
    h.connected();
    assert_eq!(h.disconnected("login timeout"), Vec::<String>::new());
    assert!(!h.client.is_finished());
    h.client.handle_name("alice", None, h.now);
    assert_eq!(h.drain(), ["connect"]);
    assert_eq!(h.connected(), ["send login alice"]);

    // Closed just as the name was given (the close still on its way): once
    // more on a new connection, then a failure is final as ever.
    let mut h = unnamed();
    h.drain();
    h.connected();
    h.client.handle_name("alice", None, h.now);
    assert_eq!(h.drain(), ["send login alice"]);
    assert_eq!(h.disconnected("login timeout"), ["connect"]);
    assert_eq!(h.connected(), ["send login alice"]);
    assert_eq!(
        h.disconnected("reset"),
        ["exit 1: the connection to ws://test closed before the login was answered: reset"]
    );
}

#[test]
fn no_server_at_the_address_ends_before_any_name_is_asked() {
    let mut h = unnamed();
    assert_eq!(h.drain(), ["connect"]);
    h.client
        .handle_unreachable("Connection refused (os error 111)", h.now);
    assert_eq!(
        h.drain(),
        [
            "exit 1: could not connect to ws://test: Connection refused (os error 111); \
             check that chat-server is running at that address"
        ]
    );
}

#[test]
fn once_online_an_unreachable_server_is_only_waited_for() {
    let mut h = Harness::interactive();
    h.log_in("S");
    h.disconnected("reset");
    h.wake();
    h.client
        .handle_unreachable("Connection refused (os error 111)", h.now);
    let out = h.drain();
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0].starts_with(
            "show 12:00 -- could not reconnect (Connection refused (os error 111)); still trying"
        ),
        "{out:?}"
    );
}
