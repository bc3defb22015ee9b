//! Rule 11: a closed connection leaves nothing behind but its login's
//! reservation, and nothing is ever sent to it — even when it closes while
//! actions for it are still queued. The harness fails any test in which an
//! action names a closed connection.

mod common;

use common::*;
use wschat::protocol::LeaveReason;
use wschat::{CloseCode, Event, Inbound};

const HI_FROM_ALICE: &str =
    r#"{"type":"textBroadcast","id":"*","username":"alice","message":"hi"}"#;

const SHUTTING_DOWN: &str = "server shutting down";

#[test]
fn a_connection_closing_between_a_broadcast_and_the_drain_gets_none_of_it() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let b = h.logged_in("bob");
    let c = h.logged_in("carol");
    h.say(a, "hi");
    h.close(b);
    assert_eq!(h.drain(), broadcast(&[a, c], HI_FROM_ALICE));
}

#[test]
fn a_connection_closing_mid_login_gets_no_reply_but_keeps_its_name_reserved() {
    let mut h = Harness::default();
    let a = h.open();
    let b = h.open();
    h.login(a, "alice");
    h.close(a);
    // The others still learn of the login; the reply to the closed one is dropped.
    assert_eq!(
        h.drain(),
        [send(
            b,
            r#"{"type":"loginBroadcast","id":"*","username":"alice","location":"127.0.0.1"}"#
        )]
    );
    h.login(b, "ALICE");
    assert_eq!(
        h.drain(),
        [error(
            b,
            "loginTaken",
            r#"the name "alice" is taken; give its secret to reclaim it, or pick another"#
        )]
    );
}

#[test]
fn a_pong_owed_to_a_connection_that_closed_is_dropped() {
    let mut h = Harness::default();
    let a = h.open();
    let b = h.open();
    h.frame(a, Inbound::Ping(b"1"));
    h.frame(b, Inbound::Ping(b"2"));
    h.close(a);
    assert_eq!(h.drain(), [Out::Pong(b, b"2".to_vec())]);
}

#[test]
fn connections_closing_in_the_middle_of_a_busy_exchange_get_nothing_more() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let b = h.logged_in("bob");
    let c = h.open();
    let d = h.open();
    // Several inputs before one drain, with closes in between.
    h.say(a, "one");
    h.login(c, "carol");
    h.close(b);
    h.say(c, "two");
    h.frame(d, Inbound::Binary(b"x"));
    h.close(a);
    assert_eq!(
        h.drain(),
        seq([
            broadcast(&[c, d], &text_broadcast("alice", "one")),
            login_outcome(&[c, d], c, "carol"),
            broadcast(&[c, d], &text_broadcast("carol", "two")),
            vec![error(
                d,
                "bytesReceived",
                "binary frames are not part of the protocol; send JSON in text frames"
            )],
        ])
    );
    assert_eq!(h.server.connection_count(), 2);
    assert_eq!(h.server.login_count(), 3);
}

#[test]
fn a_connection_closed_during_ping_retries_is_never_pinged_again() {
    // Connections that never log in, watched for minutes.
    let mut h = Harness::new(without_login_timeout());
    let a = h.open();
    let b = h.open();
    assert_eq!(
        h.advance(secs(62)),
        [
            (secs(60), Out::Ping(a)),
            (secs(60), Out::Ping(b)),
            (secs(61), Out::Ping(a)),
            (secs(61), Out::Ping(b)),
        ]
    );
    h.close(a);
    h.close(b);
    assert_eq!(h.advance(secs(3600)), []);
    assert_eq!(h.events(), []);
}

#[test]
fn a_closed_connection_leaves_nothing_but_its_logins_reservation() {
    let mut h = Harness::default();
    let conns: Vec<_> = (0..100).map(|_| h.open()).collect();
    let alice = h.logged_in("alice");
    for &conn in &conns {
        h.close(conn);
    }
    h.close(alice);
    assert_eq!(h.server.connection_count(), 0);
    assert_eq!(h.server.login_count(), 1);
    // Stale wake-ups of the closed connections do nothing; then only the
    // reservation's expiry remains, and after it nothing at all.
    assert_eq!(h.advance(secs(600)), []);
    assert_eq!(
        h.events(),
        [
            Event::LoggedIn {
                conn: alice,
                username: "alice".into(),
                fresh: true
            },
            Event::Left {
                username: "alice".into(),
                location: "127.0.0.1".into(),
                reason: LeaveReason::Disconnected,
            },
            Event::LoginExpired {
                username: "alice".into()
            }
        ]
    );
    assert_eq!(h.server.login_count(), 0);
    assert_eq!(h.server.poll_timeout(), None);
}

#[test]
fn inputs_for_a_closed_or_unknown_connection_are_ignored() {
    // Connections that never log in, watched for minutes.
    let mut h = Harness::new(without_login_timeout());
    let a = h.logged_in("alice");
    h.close(a);
    h.close(a); // twice: harmless
    // The next connection takes a's slot, but a's handle stays dead.
    let b = h.open();
    assert_ne!(a, b);
    assert!(!h.server.is_open(a));
    h.say(a, "ghost");
    h.login(a, "bob");
    h.frame(a, Inbound::Binary(b"x"));
    h.frame(a, Inbound::Ping(b"x"));
    h.frame(a, Inbound::Pong(b"x"));
    assert_eq!(h.drain(), []);
    assert_eq!(h.server.username(a), None);
    // b's heartbeat was not touched by a's frames.
    assert_eq!(h.advance(secs(60)), [(secs(60), Out::Ping(b))]);
}

#[test]
fn reporting_the_close_of_a_connection_the_core_closed_is_harmless() {
    // Connections that never log in, watched for minutes.
    let mut h = Harness::new(without_login_timeout());
    let a = h.open();
    let b = h.open();
    h.frame(b, Inbound::Pong(b""));
    assert_eq!(h.advance(secs(299)).len(), 2 * 9);
    h.frame(b, Inbound::Pong(b""));
    assert_eq!(
        h.advance(secs(1)),
        [(secs(300), close(a, CloseCode::NORMAL, "ping timeout"))]
    );
    h.server.handle_close(a, h.now); // the driver's socket task noticing
    assert_eq!(h.drain(), []);
    assert!(h.server.is_open(b));
}

#[test]
fn frames_queued_for_a_connection_the_core_evicts_are_dropped_before_its_close() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let b = h.logged_in("bob");
    assert_eq!(h.advance(secs(299)).len(), 2 * 9);
    h.frame(a, Inbound::Pong(b""));
    // The driver is late: at 300 s b is overdue, but a speaks first.
    h.skip(secs(1));
    h.say(a, "hi");
    h.server.handle_timeout(h.now);
    assert_eq!(
        h.drain(),
        [
            send(a, HI_FROM_ALICE),
            close(b, CloseCode::NORMAL, "ping timeout")
        ]
    );
}

#[test]
fn shutdown_closes_everyone_with_1001_and_starts_every_logins_ttl() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let b = h.open();
    let c = h.logged_in("bob");
    h.say(a, "hi"); // queued, never drained: dropped by the closes
    h.server.shutdown(h.now);
    assert_eq!(
        h.drain(),
        [
            close(a, CloseCode::GOING_AWAY, SHUTTING_DOWN),
            close(b, CloseCode::GOING_AWAY, SHUTTING_DOWN),
            close(c, CloseCode::GOING_AWAY, SHUTTING_DOWN),
        ]
    );
    assert_eq!(h.server.connection_count(), 0);
    assert_eq!(h.server.login_count(), 2);
    let _ = h.events();
    assert_eq!(h.advance(secs(600) - ms(1)), []);
    assert_eq!(h.events(), []);
    assert_eq!(h.advance(ms(1)), []);
    assert_eq!(
        h.events(),
        [
            Event::LoginExpired {
                username: "alice".into()
            },
            Event::LoginExpired {
                username: "bob".into()
            }
        ]
    );
    // A second shutdown has no one left to close.
    h.server.shutdown(h.now);
    assert_eq!(h.drain(), []);
}

#[test]
fn a_connection_that_opens_after_shutdown_is_closed_at_once() {
    let mut h = Harness::default();
    let alice = h.logged_in("alice");
    h.server.shutdown(h.now);
    assert!(h.server.is_shutting_down());
    assert_eq!(
        h.drain(),
        [close(alice, CloseCode::GOING_AWAY, SHUTTING_DOWN)]
    );
    let _ = h.events();
    // The driver calls nothing more: the core remembers it is shutting down.
    h.advance(secs(1));
    let late = h.open_v2();
    h.login(late, "bob");
    assert_eq!(
        h.drain(),
        [close(late, CloseCode::GOING_AWAY, SHUTTING_DOWN)]
    );
    assert!(!h.server.is_open(late));
    assert_eq!(
        (h.server.connection_count(), h.server.login_count()),
        (0, 1)
    );
    assert_eq!(h.events(), []);
}
