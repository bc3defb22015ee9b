//! Issue 24, defect 6: one server under several addresses. The client
//! reports the store a server names (its `epoch`), sends a secret saved at
//! another address of the same server, and names the addresses that hold a
//! secret for a name refused as taken.

use super::*;
use crate::client::SavedAt;

fn history_in(epoch: &str) -> ServerMessage<'_> {
    ServerMessage::History {
        id: "h".into(),
        reply_to: "l".into(),
        epoch: Some(epoch.into()),
        messages: Vec::new(),
        complete: true,
        room: None,
    }
}

/// Logs in as alice on v2 with a server whose store is `epoch`; every
/// event of the login, in order (only the kind of most).
fn log_in_v2(h: &mut Harness, secret: &str, epoch: &str) -> Vec<String> {
    h.client.handle_connected(Some(SUBPROTOCOL_V2), h.now);
    for message in [login_message("alice", secret), history_in(epoch)] {
        let json = String::from_utf8(message.encode()).unwrap();
        h.client.handle_text(&json, h.now);
    }
    while h.client.poll_action().is_some() {}
    std::iter::from_fn(|| h.client.poll_event())
        .filter_map(|event| match event {
            Event::ServerStore(epoch) => Some(format!("store {epoch}")),
            Event::SecretIssued { secret, .. } => Some(format!("save {secret}")),
            _ => None,
        })
        .collect()
}

#[test]
fn the_store_a_server_names_is_reported_before_the_secret_is_saved() {
    let mut h = Harness::interactive();
    assert_eq!(h.drain(), ["connect"]);
    assert_eq!(log_in_v2(&mut h, "S", "E1"), ["store E1", "save S"]);
    // Reconnected to the same store: nothing new to report.
    h.disconnected("reset");
    h.wake();
    assert_eq!(log_in_v2(&mut h, "S", "E1"), Vec::<String>::new());
    // A new store (the server's data wiped): reported.
    h.disconnected("reset");
    h.wake();
    assert_eq!(log_in_v2(&mut h, "S2", "E2"), ["store E2", "save S2"]);
}

#[test]
fn a_secret_of_the_same_server_at_another_address_is_sent_and_saved_here() {
    let mut c = config(Mode::Script);
    c.same_server_secret = Some(SavedAt {
        address: "ws://localhost:1".into(),
        secret: "S".into(),
    });
    let mut h = Harness::new(c);
    assert_eq!(h.drain(), ["connect"]);
    assert_eq!(h.connected(), ["send login alice secret=S"]);
    // The server gives it back: the name is ours; filed for this address.
    assert_eq!(h.server(login_message("alice", "S")), ["save alice=S"]);
}

#[test]
fn a_name_taken_here_names_the_addresses_that_hold_a_secret_for_it() {
    let mut c = config(Mode::Script);
    c.saved_elsewhere = vec!["ws://localhost:1".into()];
    let mut h = Harness::new(c);
    assert_eq!(h.drain(), ["connect"]);
    // Their secret is not sent here.
    assert_eq!(h.connected(), ["send login alice"]);
    assert_eq!(
        h.server(error(ErrorCode::LoginTaken, None)),
        [
            "close",
            "exit 2: the name 'alice' is taken here; a secret for it is saved for \
             ws://localhost:1, but chat-cli cannot tell whether that is this server: if so \
             (another address of it, or another node of its cluster), connect there to keep \
             your name (chat-cli ws://localhost:1 --name alice); if not, pick another name or \
             wait until this one is released"
        ]
    );

    // Typed at the prompt: said, and asked again; a secret sent that did
    // not match is said too.
    let mut c = config(Mode::Interactive);
    c.on_name_refused = OnNameRefused::AskAnother;
    c.saved_secret = Some("stale".into());
    c.saved_elsewhere = vec!["ws://a:1".into(), "ws://b:1".into()];
    let mut h = Harness::new(c);
    h.drain();
    h.connected();
    let out = h.server(error(ErrorCode::LoginTaken, None));
    assert_eq!(out[0], "close");
    assert!(
        out[1].starts_with(
            "ask name: the name 'alice' is taken here and the secret given for it does not \
             match; secrets for it are saved for ws://a:1, \
             ws://b:1, but chat-cli cannot tell whether one of those is this server: if so"
        ),
        "{out:?}"
    );
}
