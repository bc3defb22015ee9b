//! Rules 1–7 of the chat core (issue 2), driven through its public API:
//! names, logins, messages, binary frames, malformed input. Timing rules
//! (8–10) are in `core_timing.rs`, closing (11) in `core_closing.rs`.
//!
//! Every assertion compares the WHOLE list of actions the core asked for.

mod common;

use std::sync::Arc;

use common::*;
use wschat::protocol::LeaveReason;
use wschat::server::SecretHash;
use wschat::{Action, Config, Event, Inbound};

const TAKEN_ALICE: &str =
    r#"the name "alice" is taken; give its secret to reclaim it, or pick another"#;

fn logged_in(conn: wschat::ConnectionId, username: &str, fresh: bool) -> Event {
    Event::LoggedIn {
        conn,
        username: Arc::from(username),
        fresh,
    }
}

fn refused(conn: wschat::ConnectionId, username: &str) -> Event {
    Event::LoginRefused {
        conn,
        username: Arc::from(username),
    }
}

// ---- rule 1: valid names, NFC, case-insensitive uniqueness ----

#[test]
fn each_kind_of_invalid_username_is_refused_with_its_description() {
    let cases: &[(String, &str)] = &[
        ("".into(), "the name is empty"),
        (
            "a".repeat(33),
            "the name has 33 characters; at most 32 are allowed",
        ),
        (
            // 33 characters after NFC, 66 code points before.
            "e\u{301}".repeat(33),
            "the name has 33 characters; at most 32 are allowed",
        ),
        (" bob".into(), "the name starts or ends with whitespace"),
        ("bob ".into(), "the name starts or ends with whitespace"),
        (
            "bob\u{3000}".into(),
            "the name starts or ends with whitespace",
        ),
        (
            "bo\u{200b}b".into(),
            "the name contains the invisible or control character U+200B",
        ),
        (
            "\u{202e}bob".into(),
            "the name contains the invisible or control character U+202E",
        ),
        (
            "\u{feff}bob".into(),
            "the name contains the invisible or control character U+FEFF",
        ),
        (
            "bo\nb".into(),
            "the name contains the invisible or control character U+000A",
        ),
        (
            "\tbob".into(),
            "the name contains the invisible or control character U+0009",
        ),
        (
            "bob\u{7f}".into(),
            "the name contains the invisible or control character U+007F",
        ),
        (
            "bo\u{2028}b".into(),
            "the name contains the invisible or control character U+2028",
        ),
        // Nothing a client writes around a name can be part of one.
        (
            "alice (you)".into(),
            "the name contains a space; join words with _, - or . instead",
        ),
        (
            "-- back online as".into(),
            "the name starts with '-'; it must start with a letter, a digit or an emoji",
        ),
        (
            "alice:".into(),
            "the name contains ':' (U+003A); a name is made of letters, digits, emoji and _ - . '",
        ),
        (
            "bo\u{200d}b".into(),
            "the zero-width joiner U+200D is allowed only between two emoji",
        ),
    ];
    // Every case at one instant: more than a burst of messages.
    let mut h = Harness::new(without_message_limit());
    let a = h.open();
    for (name, description) in cases {
        h.login(a, name);
        assert_eq!(
            h.drain(),
            [error(a, "invalidUsername", description)],
            "{name:?}"
        );
    }
    assert_eq!(h.events(), []);
    assert_eq!((h.server.username(a), h.server.login_count()), (None, 0));
    // A refused name leaves the connection free to log in properly.
    h.login(a, "bob");
    assert_eq!(h.drain(), login_outcome(&[a], a, "bob"));
}

#[test]
fn names_at_the_length_limit_are_accepted_counting_characters_after_nfc() {
    let mut h = Harness::default();
    let a = h.open();
    let b = h.open();
    h.login(a, &"a".repeat(32));
    assert_eq!(h.drain(), login_outcome(&[a, b], a, &"a".repeat(32)));
    // 64 code points in NFD, 32 characters once composed.
    h.login(b, &"e\u{301}".repeat(32));
    assert_eq!(h.drain(), login_outcome(&[a, b], b, &"\u{e9}".repeat(32)));
    // An emoji joined with U+200D counts its every character.
    let c = h.open();
    let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
    h.login(c, family);
    assert_eq!(h.drain(), login_outcome(&[a, b, c], c, family));
}

#[test]
fn nfc_and_nfd_spellings_are_the_same_name_shown_composed() {
    let mut h = Harness::default();
    let a = h.open();
    let b = h.open();
    // Typed decomposed; everyone sees the composed form.
    h.login(a, "Jose\u{301}");
    assert_eq!(h.drain(), login_outcome(&[a, b], a, "Jos\u{e9}"));
    h.login(b, "Jos\u{e9}");
    assert_eq!(
        h.drain(),
        [error(
            b,
            "loginTaken",
            "the name \"Jos\u{e9}\" is taken; give its secret to reclaim it, or pick another"
        )]
    );
    let secret = h.secret_of(a);
    h.login_with_secret(b, "Jos\u{e9}", &secret);
    assert_eq!(h.drain(), login_outcome(&[a, b], b, "Jos\u{e9}"));
    assert_eq!(h.secret_of(b), secret);
    assert_eq!(
        h.events(),
        [
            logged_in(a, "Jos\u{e9}", true),
            refused(b, "Jos\u{e9}"),
            logged_in(b, "Jos\u{e9}", false)
        ]
    );
}

#[test]
fn names_collide_case_insensitively_and_everyone_sees_the_first_spelling() {
    let mut h = Harness::default();
    let a = h.open();
    let b = h.open();
    h.login(a, "Alice");
    assert_eq!(h.drain(), login_outcome(&[a, b], a, "Alice"));
    for spelling in ["alice", "ALICE", "aLiCe"] {
        h.login(b, spelling);
        assert_eq!(
            h.drain(),
            [error(
                b,
                "loginTaken",
                r#"the name "Alice" is taken; give its secret to reclaim it, or pick another"#
            )]
        );
    }
    // Reclaimed under another spelling: still shown as first typed.
    let secret = h.secret_of(a);
    h.login_with_secret(b, "ALICE", &secret);
    assert_eq!(h.drain(), login_outcome(&[a, b], b, "Alice"));
    assert_eq!(h.server.username(b), Some("Alice"));
    h.say(b, "hi");
    assert_eq!(
        h.drain(),
        broadcast(&[a, b], &text_broadcast("Alice", "hi"))
    );
    assert_eq!(
        h.events(),
        [
            logged_in(a, "Alice", true),
            refused(b, "Alice"),
            refused(b, "Alice"),
            refused(b, "Alice"),
            logged_in(b, "Alice", false)
        ]
    );
    assert_eq!(h.server.login_count(), 1);
}

// ---- rule 2: a fresh login ----

#[test]
fn a_fresh_login_is_broadcast_to_every_open_connection_then_answered_with_a_secret() {
    let mut h = Harness::default();
    let carol = h.logged_in("carol");
    let a = h.open_from("unknown");
    let b = h.open(); // not logged in: still told
    h.login(a, "alice");
    let mut expected = broadcast(&[carol, a, b], &login_broadcast("alice", "unknown"));
    expected.push(send(a, &login_message("alice", "unknown")));
    assert_eq!(h.drain(), expected);
    assert_eq!(
        h.events(),
        [logged_in(carol, "carol", true), logged_in(a, "alice", true)]
    );
    assert_eq!(h.server.username(a), Some("alice"));
    // 24 characters of a 64-letter alphabet: 144 random bits (the harness
    // checks the shape); each login gets its own.
    assert_eq!(h.secret_of(a).len(), 24);
    assert_ne!(h.secret_of(a), h.secret_of(carol));
}

// ---- rule 3: reclaiming with the secret ----

#[test]
fn the_right_secret_reclaims_a_name_from_several_connections_at_once() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let secret = h.secret_of(a);
    let b = h.open();
    let c = h.open();
    h.login_with_secret(b, "alice", &secret);
    assert_eq!(h.drain(), login_outcome(&[a, b, c], b, "alice"));
    h.login_with_secret(c, "alice", &secret);
    assert_eq!(h.drain(), login_outcome(&[a, b, c], c, "alice"));
    assert_eq!((h.secret_of(b), h.secret_of(c)), (secret.clone(), secret));
    assert_eq!(
        h.events(),
        [
            logged_in(a, "alice", true),
            logged_in(b, "alice", false),
            logged_in(c, "alice", false)
        ]
    );
    assert_eq!(h.server.login_count(), 1);
    // All three speak as alice; closing one leaves the others logged in.
    h.close(a);
    h.say(c, "from my phone");
    assert_eq!(
        h.drain(),
        broadcast(&[b, c], &text_broadcast("alice", "from my phone"))
    );
    h.say(b, "from my laptop");
    assert_eq!(
        h.drain(),
        broadcast(&[b, c], &text_broadcast("alice", "from my laptop"))
    );
}

#[test]
fn the_secret_reclaims_a_name_whose_connections_all_closed_before_the_ttl() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let secret = h.secret_of(a);
    h.close(a);
    assert_eq!(h.advance(secs(599)), []);
    let b = h.open();
    h.login_with_secret(b, "alice", &secret);
    assert_eq!(h.drain(), login_outcome(&[b], b, "alice"));
    assert_eq!(h.secret_of(b), secret);
    assert_eq!(
        h.events(),
        [
            logged_in(a, "alice", true),
            left("alice", LeaveReason::Disconnected),
            logged_in(b, "alice", false)
        ]
    );
}

// ---- rule 4: loginTaken ----

#[test]
fn a_held_name_with_no_secret_or_a_wrong_one_is_taken() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let bob = h.logged_in("bob");
    let b = h.open();
    let wrong = h.secret_of(a).replace(|_| true, "x"); // same length, wrong
    let bobs = h.secret_of(bob);
    for secret in [
        None,
        Some(""),
        Some("nope"),
        Some(wrong.as_str()),
        Some(&bobs),
    ] {
        match secret {
            None => h.login(b, "alice"),
            Some(secret) => h.login_with_secret(b, "alice", secret),
        }
        assert_eq!(h.drain(), [error(b, "loginTaken", TAKEN_ALICE)]);
    }
    assert_eq!(
        h.events(),
        [
            logged_in(a, "alice", true),
            logged_in(bob, "bob", true),
            refused(b, "alice"),
            refused(b, "alice"),
            refused(b, "alice"),
            refused(b, "alice"),
            refused(b, "alice"),
        ]
    );
    // Still not logged in, and free to pick another name.
    assert_eq!(h.server.username(b), None);
    h.login(b, "carol");
    assert_eq!(h.drain(), login_outcome(&[a, bob, b], b, "carol"));
}

// ---- rule 5: alreadyLoggedIn ----

#[test]
fn a_connection_already_logged_in_cannot_log_in_again() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let secret = h.secret_of(a);
    let already = r#"this connection is already logged in as "alice""#;
    h.login(a, "bob");
    assert_eq!(h.drain(), [error(a, "alreadyLoggedIn", already)]);
    h.login_with_secret(a, "alice", &secret);
    assert_eq!(h.drain(), [error(a, "alreadyLoggedIn", already)]);
    h.login(a, ""); // even an invalid name: the connection's state comes first
    assert_eq!(h.drain(), [error(a, "alreadyLoggedIn", already)]);
    assert_eq!(h.server.username(a), Some("alice"));
    // bob was never taken.
    let b = h.open();
    h.login(b, "bob");
    assert_eq!(h.drain(), login_outcome(&[a, b], b, "bob"));
}

// ---- rule 6: messages ----

#[test]
fn messaging_before_login_is_refused() {
    let mut h = Harness::default();
    let a = h.open();
    let other = h.logged_in("alice");
    h.say(a, "hi");
    assert_eq!(
        h.drain(),
        [error(
            a,
            "messagingWhileNotLoggedIn",
            "log in before sending messages"
        )]
    );
    // A refused login does not change that.
    h.login(a, "alice");
    h.say(a, "hi");
    assert_eq!(
        h.drain(),
        [
            error(a, "loginTaken", TAKEN_ALICE),
            error(
                a,
                "messagingWhileNotLoggedIn",
                "log in before sending messages"
            )
        ]
    );
    assert_eq!(h.server.username(other), Some("alice"));
}

#[test]
fn a_text_goes_verbatim_to_every_open_connection_sender_included() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let idle = h.open();
    let b = h.logged_in("bob");
    for text in [
        "hello world",
        "  padded  ",
        "quotes \" and \\ and\nnewlines\t and é ✓ 👋",
        "{\"type\":\"login\"}",
    ] {
        h.say(a, text);
        assert_eq!(
            h.drain(),
            broadcast(&[a, idle, b], &text_broadcast("alice", text))
        );
    }
}

#[test]
fn empty_and_whitespace_only_messages_are_refused() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let b = h.logged_in("bob");
    for text in ["", " ", "\t\n  \r", "\u{3000}\u{a0}"] {
        h.say(a, text);
        assert_eq!(
            h.drain(),
            [error(a, "emptyMessage", "the message is empty")],
            "{text:?}"
        );
    }
    h.say(b, ".");
    assert_eq!(h.drain(), broadcast(&[a, b], &text_broadcast("bob", ".")));
}

#[test]
fn messages_of_up_to_4000_characters_pass_and_4001_are_refused() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let b = h.logged_in("bob");
    // Characters, not bytes: 'é' is two bytes.
    for unit in ["x", "\u{e9}", "👋"] {
        let longest = unit.repeat(4000);
        h.say(a, &longest);
        assert_eq!(
            h.drain(),
            broadcast(&[a, b], &text_broadcast("alice", &longest))
        );
        h.say(a, &unit.repeat(4001));
        assert_eq!(
            h.drain(),
            [error(
                a,
                "messageTooLong",
                "the message is longer than 4000 characters"
            )]
        );
    }
    h.say(a, &"x".repeat(1_000_000));
    assert_eq!(
        h.drain(),
        [error(
            a,
            "messageTooLong",
            "the message is longer than 4000 characters"
        )]
    );
}

#[test]
fn the_message_limit_follows_the_config() {
    let mut h = Harness::new(Config {
        max_message_chars: 5,
        ..Config::default()
    });
    let a = h.logged_in("alice");
    h.say(a, "12345");
    assert_eq!(
        h.drain(),
        broadcast(&[a], &text_broadcast("alice", "12345"))
    );
    h.say(a, "123456");
    assert_eq!(
        h.drain(),
        [error(
            a,
            "messageTooLong",
            "the message is longer than 5 characters"
        )]
    );
}

#[test]
fn a_broadcast_is_encoded_once_and_every_recipient_shares_its_bytes() {
    let mut h = Harness::default();
    let conns: Vec<_> = ["alice", "bob", "carol"]
        .iter()
        .map(|name| h.logged_in(name))
        .collect();
    let idle = h.open();
    h.say(conns[0], "shared");
    let mut recipients = Vec::new();
    let mut pointers = Vec::new();
    while let Some(action) = h.server.poll_action() {
        let Action::Send { to, frame } = action else {
            panic!("unexpected {action:?}");
        };
        assert_eq!(frame.as_str().as_ptr(), frame.bytes().as_ptr());
        recipients.push(to);
        pointers.push(frame.bytes().as_ptr());
    }
    assert_eq!(recipients, [conns[0], conns[1], conns[2], idle]);
    assert!(pointers.iter().all(|&p| p == pointers[0]), "{pointers:?}");

    // The same for a loginBroadcast; the loginMessage is its own frame.
    let d = h.open();
    h.login(d, "dave");
    let frames: Vec<_> = std::iter::from_fn(|| h.server.poll_action().map(Action::into_owned))
        .map(|action| match action {
            Action::Send { frame, .. } => frame,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(frames.len(), 6);
    let first = frames[0].bytes().as_ptr();
    assert!(frames[..5].iter().all(|f| f.bytes().as_ptr() == first));
    assert_ne!(frames[5].bytes().as_ptr(), first);
}

// ---- rule 7: binary frames ----

#[test]
fn a_binary_frame_is_answered_with_bytes_received() {
    let mut h = Harness::default();
    let a = h.open();
    let b = h.logged_in("bob");
    let description = "binary frames are not part of the protocol; send JSON in text frames";
    let login = br#"{"type":"login","id":"l","username":"alice"}"#;
    for (conn, payload) in [(a, &b""[..]), (a, &login[..]), (b, &[0, 159, 255][..])] {
        h.frame(conn, Inbound::Binary(payload));
        assert_eq!(h.drain(), [error(conn, "bytesReceived", description)]);
    }
    // Binary JSON does not log in.
    assert_eq!(h.server.username(a), None);
}

// ---- malformed text frames: invalidJson ----

#[test]
fn each_kind_of_malformed_text_is_answered_with_a_described_invalid_json() {
    let object = r#"expected a JSON object with a "type" field"#;
    let cases: &[(&[u8], &str)] = &[
        (
            b"hello",
            "not valid JSON: a syntax error at line 1, column 1",
        ),
        (
            b"{\"type\":",
            "not valid JSON: the text ends inside a value (line 1, column 8)",
        ),
        (
            b"{\"type\":\"login\",}",
            "not valid JSON: a syntax error at line 1, column 17",
        ),
        (b"", "empty frame: expected a JSON object"),
        (b" \n", "empty frame: expected a JSON object"),
        (b"null", object),
        (b"[1,2]", object),
        (b"42", object),
        (b"\"login\"", object),
        (br#"{"id":"m","text":"x"}"#, r#"missing field "type""#),
        (
            br#"{"type":"login","id":"l"}"#,
            r#"missing field "username""#,
        ),
        (
            br#"{"type":"textFromUser","id":"m"}"#,
            r#"missing field "text""#,
        ),
        (
            br#"{"type":"textFromUser","text":"x"}"#,
            r#"missing field "id""#,
        ),
        (
            br#"{"type":"shout","id":"x"}"#,
            r#"unknown variant "shout", expected "login" or "textFromUser""#,
        ),
        (
            br#"{"type":7,"id":"x"}"#,
            r#"invalid type: integer "7", expected variant identifier"#,
        ),
        (
            br#"{"type":"textFromUser","id":7,"text":"x"}"#,
            r#"invalid type: integer "7", expected a string"#,
        ),
        (
            br#"{"type":"login","id":"l","username":null}"#,
            r#"invalid type: null, expected a string"#,
        ),
        (
            br#"{"type":"login","id":"l","username":"a","secret":5}"#,
            r#"invalid type: integer "5", expected a string"#,
        ),
        (
            b"{\"type\":\"textFromUser\",\"id\":\"m\",\"text\":\"\xff\"}",
            "not valid JSON: the text is not UTF-8 (at byte 40)",
        ),
    ];
    // Every case at one instant: more than a burst of messages.
    let mut h = Harness::new(without_message_limit());
    let a = h.open();
    let b = h.logged_in("bob");
    for &(input, description) in cases {
        for conn in [a, b] {
            h.frame(conn, Inbound::Text(input));
            assert_eq!(
                h.drain(),
                [error(conn, "invalidJson", description)],
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }
    assert_eq!(h.server.username(a), None);
}

#[test]
fn unknown_extra_fields_are_ignored() {
    let mut h = Harness::default();
    let a = h.open();
    h.text(
        a,
        r#"{"extra":{"deep":[1,null]},"type":"login","id":"l","username":"alice","colour":"red"}"#,
    );
    assert_eq!(h.drain(), login_outcome(&[a], a, "alice"));
    h.text(a, r#"{"type":"textFromUser","text":"hi","id":"m","at":12}"#);
    assert_eq!(h.drain(), broadcast(&[a], &text_broadcast("alice", "hi")));
}

// ---- pings from the peer ----

#[test]
fn a_ping_is_answered_with_a_pong_carrying_its_payload() {
    let mut h = Harness::default();
    let a = h.open();
    let b = h.logged_in("bob");
    h.frame(a, Inbound::Ping(b"are you there"));
    h.frame(b, Inbound::Ping(b""));
    assert_eq!(
        h.drain(),
        [
            Out::Pong(a, b"are you there".to_vec()),
            Out::Pong(b, Vec::new())
        ]
    );
    // A pong from the peer needs no answer.
    h.frame(a, Inbound::Pong(b"wschat"));
    assert_eq!(h.drain(), []);
}

#[test]
fn a_single_node_says_which_names_its_open_connections_hold() {
    let mut h = Harness::default();
    let laptop = h.logged_in("Alice");
    let secret = h.secret_of(laptop);
    let phone = h.open();
    h.login_with_secret(phone, "alice", &secret);
    let bob = h.logged_in("bob");
    // Held, but by no connection: not this node's to register anywhere.
    h.close(bob);
    let _ = h.drain();
    let held: Vec<_> = h
        .server
        .held_names()
        .into_iter()
        .map(|n| (n.key, n.display, n.secret, n.connections))
        .collect();
    let alice = (
        Arc::from("alice"),
        Arc::from("Alice"),
        SecretHash::of(&secret),
        2,
    );
    assert_eq!(held, [alice]);
}
