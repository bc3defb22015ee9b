//! Rules 8–10 of the chat core (issue 2): activity, the heartbeat (pings,
//! backoff, eviction) and login expiry, at their exact instants. Minutes of
//! virtual time pass instantly; `advance` wakes the core at every instant it
//! asks for and stamps each action with the time since the test began.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use wschat::protocol::LeaveReason;
use wschat::{CloseCode, Config, ConnectionId, Event, Inbound};

/// The default heartbeat of a connection silent since 0 s: pings at 60 s,
/// retries after 1, 2, 4… s capped at 60 s, eviction at 300 s.
const SILENT_PINGS: [u64; 9] = [60, 61, 63, 67, 75, 91, 123, 183, 243];

fn ping_timeout(conn: ConnectionId) -> Out {
    close(conn, CloseCode::NORMAL, "ping timeout")
}

fn expired(username: &str) -> Event {
    Event::LoginExpired {
        username: Arc::from(username),
    }
}

/// The heartbeat is the same for every connection, and most tests here
/// watch one that never logs in: the login timeout (`core_limits.rs`) is
/// switched off so it does not close it first.
fn harness() -> Harness {
    Harness::new(without_login_timeout())
}

/// Advances the clock to `t` since the start.
fn advance_to(h: &mut Harness, t: Duration) -> Vec<(Duration, Out)> {
    let by = t - h.elapsed();
    h.advance(by)
}

/// Keeps `conns` alive with a pong every 50 s until `t`, asserting that
/// nothing at all happens meanwhile.
fn keep_alive_until(h: &mut Harness, conns: &[ConnectionId], t: Duration) {
    while h.elapsed() < t {
        let step = secs(50).min(t - h.elapsed());
        assert_eq!(h.advance(step), [], "at {:?}", h.elapsed());
        for &conn in conns {
            h.frame(conn, Inbound::Pong(b"wschat"));
        }
        assert_eq!(h.drain(), []);
    }
}

// ---- rule 9: the heartbeat ----

#[test]
fn a_silent_connection_is_pinged_retried_with_backoff_and_evicted_at_exactly_300s() {
    let mut h = harness();
    let a = h.open();
    let mut expected: Vec<_> = SILENT_PINGS.map(|s| (secs(s), Out::Ping(a))).into();
    expected.push((secs(300), ping_timeout(a)));
    assert_eq!(h.advance(secs(3600)), expected);
    assert_eq!(h.events(), [Event::Evicted { conn: a }]);
    assert_eq!(h.server.connection_count(), 0);
    // Nothing of it is left to wake up for.
    assert_eq!(h.server.poll_timeout(), None);
}

#[test]
fn nothing_happens_a_millisecond_before_each_heartbeat_instant() {
    let mut h = harness();
    let a = h.open();
    for s in SILENT_PINGS {
        assert_eq!(advance_to(&mut h, secs(s) - ms(1)), []);
        assert_eq!(h.advance(ms(1)), [(secs(s), Out::Ping(a))]);
    }
    assert_eq!(advance_to(&mut h, secs(300) - ms(1)), []);
    assert!(h.server.is_open(a));
    assert_eq!(h.advance(ms(1)), [(secs(300), ping_timeout(a))]);
}

#[test]
fn the_ping_carries_a_payload_and_a_logged_in_connection_is_evicted_alike() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    assert_eq!(h.server.poll_timeout(), Some(h.start + secs(60)));
    h.now += secs(60);
    h.server.handle_timeout(h.now);
    match h.server.poll_action() {
        Some(wschat::Action::Ping { to, payload }) => {
            assert_eq!((to, &payload[..]), (a, &b"wschat"[..]));
        }
        other => panic!("expected a ping, got {other:?}"),
    }
    let expected: Vec<_> = SILENT_PINGS[1..]
        .iter()
        .map(|&s| (secs(s), Out::Ping(a)))
        .chain([(secs(300), ping_timeout(a))])
        .collect();
    assert_eq!(h.advance(secs(240)), expected);
    assert_eq!(
        h.events(),
        [
            Event::LoggedIn {
                conn: a,
                username: "alice".into(),
                fresh: true
            },
            Event::Evicted { conn: a },
            left("alice", LeaveReason::Evicted),
        ]
    );
}

#[test]
fn the_heartbeat_follows_the_config() {
    let mut h = Harness::new(Config {
        ping_interval: secs(10),
        ping_retry: ms(500),
        evict_after: secs(30),
        ..Config::default()
    });
    let a = h.open();
    // Retries after 0.5, 1, 2, 4, 8 s; the next (10 s, capped) would be
    // after the eviction.
    let expected: Vec<_> = [10_000, 10_500, 11_500, 13_500, 17_500, 25_500]
        .map(|t| (ms(t), Out::Ping(a)))
        .into_iter()
        .chain([(secs(30), ping_timeout(a))])
        .collect();
    assert_eq!(h.advance(secs(60)), expected);
}

#[test]
fn a_pong_resets_the_backoff() {
    let mut h = harness();
    let a = h.open();
    assert_eq!(
        h.advance(secs(62)),
        [(secs(60), Out::Ping(a)), (secs(61), Out::Ping(a))]
    );
    h.frame(a, Inbound::Pong(b"wschat"));
    assert_eq!(h.drain(), []);
    // Silent again from 62 s: the whole schedule starts over from there.
    let mut expected: Vec<_> = SILENT_PINGS.map(|s| (secs(s + 62), Out::Ping(a))).into();
    expected.push((secs(362), ping_timeout(a)));
    assert_eq!(h.advance(secs(3600)), expected);
}

#[test]
fn the_backoff_cap_is_the_ping_interval() {
    // With a long eviction, retries settle at one per ping_interval.
    let mut h = Harness::new(Config {
        evict_after: secs(600),
        login_timeout: Duration::ZERO,
        ..Config::default()
    });
    let a = h.open();
    let expected: Vec<_> = SILENT_PINGS
        .iter()
        .copied()
        .chain([303, 363, 423, 483, 543])
        .map(|s| (secs(s), Out::Ping(a)))
        .chain([(secs(600), ping_timeout(a))])
        .collect();
    assert_eq!(h.advance(secs(600)), expected);
}

// ---- rule 8: every inbound frame is activity ----

#[test]
fn every_kind_of_inbound_frame_postpones_the_next_ping() {
    let mut h = harness();
    let idle = h.open();
    let text = h.open();
    let bad_text = h.open();
    let binary = h.open();
    let ping = h.open();
    let pong = h.open();
    let login = h.open();
    assert_eq!(h.advance(secs(30)), []);
    h.say(text, "not logged in yet");
    h.frame(bad_text, Inbound::Text(b"\xff garbage"));
    h.frame(binary, Inbound::Binary(b"x"));
    h.frame(ping, Inbound::Ping(b"p"));
    h.frame(pong, Inbound::Pong(b"p"));
    h.login(login, "alice");
    // Three errors, a pong, and a login seen by all seven.
    assert_eq!(h.drain().len(), 3 + 1 + 7 + 1);
    // idle keeps its schedule; every other connection is pinged 60 s after
    // its frame, in connection order.
    let mut expected: Vec<_> = [60, 61, 63, 67, 75]
        .map(|s| (secs(s), Out::Ping(idle)))
        .into();
    expected.extend([text, bad_text, binary, ping, pong, login].map(|c| (secs(90), Out::Ping(c))));
    assert_eq!(h.advance(secs(60)), expected);
}

#[test]
fn activity_while_pings_go_unanswered_restarts_the_schedule_from_it() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    assert_eq!(
        h.advance(secs(64)),
        [
            (secs(60), Out::Ping(a)),
            (secs(61), Out::Ping(a)),
            (secs(63), Out::Ping(a))
        ]
    );
    h.say(a, "still here");
    assert_eq!(
        h.drain(),
        broadcast(&[a], &text_broadcast("alice", "still here"))
    );
    assert_eq!(advance_to(&mut h, secs(124) - ms(1)), []);
    assert_eq!(h.advance(ms(1)), [(secs(124), Out::Ping(a))]);
}

#[test]
fn handle_timeout_called_early_does_nothing() {
    let mut h = harness();
    let a = h.open();
    let due = h.start + secs(60);
    assert_eq!(h.server.poll_timeout(), Some(due));
    for early in [secs(0), secs(30), secs(60) - ms(1)] {
        h.server.handle_timeout(h.start + early);
        assert_eq!(h.drain(), []);
        assert_eq!(h.server.poll_timeout(), Some(due));
    }
    // And the ping still comes exactly on time, once.
    assert_eq!(h.advance(secs(60)), [(secs(60), Out::Ping(a))]);
}

#[test]
fn a_late_driver_evicts_at_its_first_wake_after_the_deadline() {
    let mut h = harness();
    let a = h.open();
    let b = h.open();
    h.skip(secs(200)); // the driver slept through six pings…
    h.frame(b, Inbound::Pong(b"")); // …and only now hears from b
    assert_eq!(
        h.advance(secs(0)),
        [(secs(200), Out::Ping(a))] // one ping, not six
    );
    h.skip(secs(1000));
    assert_eq!(
        h.advance(secs(0)),
        [(secs(1200), ping_timeout(a)), (secs(1200), ping_timeout(b))]
    );
}

// ---- rule 10: logins expire login_ttl after their last connection closed ----

#[test]
fn a_login_outlives_the_ttl_while_connected_and_expires_exactly_ttl_after_its_close() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let old_secret = h.secret_of(a);
    keep_alive_until(&mut h, &[a], secs(15 * 60));
    let b = h.open();
    h.login(b, "alice");
    assert_eq!(
        h.drain(),
        [error(
            b,
            "loginTaken",
            r#"the name "alice" is taken; give its secret to reclaim it, or pick another"#
        )]
    );
    h.close(b);
    h.close(a);
    let closed_at = h.elapsed();
    assert_eq!(h.advance(secs(600) - ms(1)), []);
    assert_eq!(h.server.login_count(), 1);
    let _ = h.events();
    // Still held a millisecond before.
    let c = h.open();
    h.login(c, "alice");
    assert_eq!(
        h.drain(),
        [error(
            c,
            "loginTaken",
            r#"the name "alice" is taken; give its secret to reclaim it, or pick another"#
        )]
    );
    let _ = h.events();
    assert_eq!(h.advance(ms(1)), []);
    assert_eq!(h.elapsed(), closed_at + secs(600));
    assert_eq!(h.events(), [expired("alice")]);
    assert_eq!(h.server.login_count(), 0);
    // Free: the old secret is worthless, the login is fresh with a new one.
    h.login_with_secret(c, "alice", &old_secret);
    assert_eq!(h.drain(), login_outcome(&[c], c, "alice"));
    assert_ne!(h.secret_of(c), old_secret);
    assert_eq!(
        h.events(),
        [Event::LoggedIn {
            conn: c,
            username: "alice".into(),
            fresh: true
        }]
    );
}

#[test]
fn the_ttl_runs_from_the_last_of_several_connections_to_close() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let secret = h.secret_of(a);
    let b = h.open();
    h.login_with_secret(b, "alice", &secret);
    let _ = h.drain();
    keep_alive_until(&mut h, &[a, b], secs(100));
    h.close(a);
    keep_alive_until(&mut h, &[b], secs(450));
    h.close(b);
    assert_eq!(advance_to(&mut h, secs(1050) - ms(1)), []);
    assert_eq!(h.server.login_count(), 1);
    let _ = h.events();
    assert_eq!(h.advance(ms(1)), []);
    assert_eq!(h.events(), [expired("alice")]);
    assert_eq!(h.server.login_count(), 0);
}

#[test]
fn an_evicted_connections_login_expires_ttl_after_the_eviction() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let _ = h.events();
    assert_eq!(
        h.advance(secs(300)).last(),
        Some(&(secs(300), ping_timeout(a)))
    );
    assert_eq!(
        h.events(),
        [
            Event::Evicted { conn: a },
            left("alice", LeaveReason::Evicted)
        ]
    );
    assert_eq!(advance_to(&mut h, secs(900) - ms(1)), []);
    assert_eq!((h.events(), h.server.login_count()), (vec![], 1));
    assert_eq!(h.advance(ms(1)), []);
    assert_eq!(
        (h.events(), h.server.login_count()),
        (vec![expired("alice")], 0)
    );
}

#[test]
fn a_stale_expiry_timer_does_not_release_a_name_reclaimed_in_between() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let secret = h.secret_of(a);
    h.close(a); // expiry planned for 600 s
    assert_eq!(advance_to(&mut h, secs(100)), []);
    let b = h.open();
    h.login_with_secret(b, "alice", &secret);
    assert_eq!(h.drain(), login_outcome(&[b], b, "alice"));
    keep_alive_until(&mut h, &[b], secs(500));
    h.close(b); // now planned for 1100 s
    let _ = h.events();
    // The 600 s wake-up finds the name in use since: nothing is released.
    assert_eq!(advance_to(&mut h, secs(1100) - ms(1)), []);
    assert_eq!((h.events(), h.server.login_count()), (vec![], 1));
    assert_eq!(h.advance(ms(1)), []);
    assert_eq!(h.events(), [expired("alice")]);
}

#[test]
fn a_stale_expiry_timer_does_not_release_a_name_taken_afresh_by_someone_else() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    let old_secret = h.secret_of(a);
    h.close(a); // expiry planned for 600 s
    // The driver sleeps past 600 s; meanwhile the name is taken afresh.
    h.skip(secs(700));
    let b = h.open();
    h.login(b, "ALICE");
    assert_eq!(h.drain(), login_outcome(&[b], b, "ALICE"));
    let new_secret = h.secret_of(b);
    assert_ne!(new_secret, old_secret);
    // The old reservation's end is reported even though no timer saw it.
    assert_eq!(
        h.events(),
        [
            Event::LoggedIn {
                conn: a,
                username: "alice".into(),
                fresh: true
            },
            left("alice", LeaveReason::Disconnected),
            expired("alice"),
            Event::LoggedIn {
                conn: b,
                username: "ALICE".into(),
                fresh: true
            }
        ]
    );
    // The overdue timer of the old reservation fires now and must not
    // release the new one.
    assert_eq!(h.advance(secs(0)), []);
    assert_eq!((h.events(), h.server.login_count()), (vec![], 1));
    let c = h.open();
    h.login_with_secret(c, "alice", &old_secret);
    assert_eq!(
        h.drain(),
        [error(
            c,
            "loginTaken",
            r#"the name "ALICE" is taken; give its secret to reclaim it, or pick another"#
        )]
    );
    h.login_with_secret(c, "alice", &new_secret);
    assert_eq!(h.drain(), login_outcome(&[b, c], c, "ALICE"));
}
