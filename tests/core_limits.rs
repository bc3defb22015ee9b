//! The core's limits on what a peer may do (issue 7), at their exact
//! instants: message rate, wrong secrets per address, login timeout, ping
//! floods. Each is also shown switched off with 0.
//!
//! Every assertion compares the WHOLE list of actions the core asked for.

mod common;

use std::time::Duration;

use common::*;
use wschat::{CloseCode, Config, ConnectionId, Event, Inbound, Limit};

const SLOW_DOWN: &str = "too many messages: at most 5 a second, 10 at once; retry in";

fn rate_limited(conn: ConnectionId, description: &str) -> Out {
    error(conn, "rateLimited", description)
}

fn slow_down(conn: ConnectionId, wait_ms: u64) -> Out {
    rate_limited(conn, &format!("{SLOW_DOWN} {wait_ms} ms"))
}

fn guessing(conn: ConnectionId, wait_s: u64) -> Out {
    rate_limited(
        conn,
        &format!("too many wrong secrets from your address; retry in {wait_s} s"),
    )
}

fn taken(conn: ConnectionId, name: &str) -> Out {
    error(
        conn,
        "loginTaken",
        &format!("the name \"{name}\" is taken; give its secret to reclaim it, or pick another"),
    )
}

fn said(to: &[ConnectionId], username: &str, text: &str) -> Vec<Out> {
    broadcast(to, &text_broadcast(username, text))
}

/// Guessers that never log in, watched for a minute and more: no login
/// timeout, and no pings to anyone before 120 s.
fn quiet_for_a_minute() -> Config {
    Config {
        ping_interval: secs(120),
        ..without_login_timeout()
    }
}

/// Advances the clock to `t` since the start, asserting nothing happens.
fn quiet_until(h: &mut Harness, t: Duration) {
    let by = t - h.elapsed();
    assert_eq!(h.advance(by), [], "until {t:?}");
}

// ---- message rate ----

#[test]
fn a_burst_of_ten_passes_then_one_message_per_200ms_and_excess_is_not_broadcast() {
    let mut h = Harness::default();
    let alice = h.logged_in("alice");
    let bob = h.logged_in("bob");
    // The logins took a token each; two idle seconds refill the buckets.
    quiet_until(&mut h, secs(2));
    for i in 0..10 {
        h.say(alice, &format!("m{i}"));
        assert_eq!(h.drain(), said(&[alice, bob], "alice", &format!("m{i}")));
    }
    h.say(alice, "one too many");
    assert_eq!(h.drain(), [slow_down(alice, 200)]);
    // Others are not held back by alice's limit.
    h.say(bob, "hi");
    assert_eq!(h.drain(), said(&[alice, bob], "bob", "hi"));

    quiet_until(&mut h, secs(2) + ms(199));
    h.say(alice, "still too soon");
    assert_eq!(h.drain(), [slow_down(alice, 1)]);
    quiet_until(&mut h, secs(2) + ms(200));
    h.say(alice, "one more");
    assert_eq!(h.drain(), said(&[alice, bob], "alice", "one more"));
    h.say(alice, "and another");
    assert_eq!(h.drain(), [slow_down(alice, 200)]);
    assert_eq!(
        h.events()
            .into_iter()
            .filter(|e| matches!(e, Event::RateLimited { .. }))
            .collect::<Vec<_>>(),
        [alice, alice, alice].map(|conn| Event::RateLimited {
            conn,
            limit: Limit::Messages
        })
    );
}

#[test]
fn a_sender_keeping_to_the_rate_is_never_refused() {
    let mut h = Harness::default();
    let alice = h.logged_in("alice");
    quiet_until(&mut h, secs(2));
    for i in 0..10 {
        h.say(alice, &format!("burst {i}"));
    }
    assert_eq!(h.drain().len(), 10);
    // One message every 200 ms for a minute, right after the burst.
    for i in 0..300 {
        h.now += ms(200);
        h.say(alice, &format!("steady {i}"));
        assert_eq!(h.drain(), said(&[alice], "alice", &format!("steady {i}")));
    }
}

#[test]
fn every_kind_of_frame_counts_and_v2_refusals_name_the_message() {
    let mut h = Harness::default();
    let v1 = h.open();
    let v2 = h.open_v2();
    let frames: [Inbound<'_>; 5] = [
        Inbound::Text(b"not json"),
        Inbound::Binary(b"\x00"),
        Inbound::Text(br#"{"type":"textFromUser","id":"m","text":"x"}"#),
        Inbound::Text(br#"{"type":"login","id":"l","username":""}"#),
        Inbound::Text(br#"{"type":"listUsers","id":"u"}"#),
    ];
    for conn in [v1, v2] {
        for frame in frames.iter().cycle().take(10) {
            h.frame(conn, *frame);
        }
        assert_eq!(h.drain().len(), 10, "one answer each");
    }
    // Pings and pongs are not messages.
    h.frame(v1, Inbound::Pong(b""));
    h.frame(v1, Inbound::Ping(b"p"));
    assert_eq!(h.drain(), [Out::Pong(v1, b"p".to_vec())]);

    h.text(v1, r#"{"type":"login","id":"l1","username":"alice"}"#);
    h.frame(v1, Inbound::Binary(b"\x00"));
    h.text(v2, r#"{"type":"login","id":"l2","username":"bob"}"#);
    h.text(v2, "{\"id\":\"junk\",");
    let refusal = format!(
        r#"{{"type":"errorMessage","error":"rateLimited","id":"*","replyTo":"l2","description":"{SLOW_DOWN} 200 ms"}}"#
    );
    assert_eq!(
        h.drain(),
        [
            slow_down(v1, 200),
            slow_down(v1, 200),
            send(v2, &refusal),
            // Not even decodable: no id to echo.
            send(
                v2,
                &format!(
                    r#"{{"type":"errorMessage","error":"rateLimited","id":"*","description":"{SLOW_DOWN} 200 ms"}}"#
                )
            ),
        ]
    );
    // A refused login did nothing: the names are free.
    assert_eq!(h.server.login_count(), 0);
}

#[test]
fn message_rate_or_burst_0_switches_the_limit_off() {
    for config in [
        Config {
            message_rate: 0,
            ..Config::default()
        },
        Config {
            message_burst: 0,
            ..Config::default()
        },
    ] {
        let mut h = Harness::new(config);
        let alice = h.logged_in("alice");
        for i in 0..100 {
            h.say(alice, &format!("m{i}"));
            assert_eq!(h.drain(), said(&[alice], "alice", &format!("m{i}")));
        }
        assert_eq!(h.events().len(), 1); // the login
    }
}

// ---- wrong secrets per address ----

#[test]
fn five_wrong_secrets_lock_an_address_out_of_secret_logins_until_its_minute_ends() {
    let mut h = Harness::new(quiet_for_a_minute());
    let alice = h.logged_in("alice");
    let secret = h.secret_of(alice);
    let guesser = h.open_from("10.0.0.9");
    let accomplice = h.open_from("10.0.0.9"); // same address, same count
    for i in 0..5 {
        quiet_until(&mut h, secs(i));
        let conn = [guesser, accomplice][i as usize % 2];
        h.login_with_secret(conn, "alice", &format!("guess{i}"));
        assert_eq!(h.drain(), [taken(conn, "alice")]);
    }
    assert_eq!(h.server.tracked_addresses(), 1);
    // The window opened at 0 s with the first wrong secret.
    h.login_with_secret(guesser, "alice", "guess5");
    assert_eq!(h.drain(), [guessing(guesser, 56)]);
    // Even the right secret, or a secret for a free name, until then.
    quiet_until(&mut h, secs(59) + ms(500));
    h.login_with_secret(accomplice, "alice", &secret);
    h.login_with_secret(guesser, "bob", "anything");
    assert_eq!(h.drain(), [guessing(accomplice, 1), guessing(guesser, 1)]);
    // Logins without a secret, and other addresses, are not affected.
    h.login(guesser, "alice");
    assert_eq!(h.drain(), [taken(guesser, "alice")]);
    let elsewhere = h.open_from("10.0.0.10");
    h.login_with_secret(elsewhere, "alice", &secret);
    let all = [alice, guesser, accomplice, elsewhere];
    let mut expected = broadcast(&all, &login_broadcast("alice", "10.0.0.10"));
    expected.push(send(elsewhere, &login_message("alice", "10.0.0.10")));
    assert_eq!(h.drain(), expected);

    // At 60 s the window ends: its timer forgets the address, and the
    // right secret works again.
    quiet_until(&mut h, secs(60));
    assert_eq!(h.server.tracked_addresses(), 0);
    h.login_with_secret(guesser, "alice", &secret);
    let mut expected = broadcast(&all, &login_broadcast("alice", "10.0.0.9"));
    expected.push(send(guesser, &login_message("alice", "10.0.0.9")));
    assert_eq!(h.drain(), expected);
    let limited = h
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::RateLimited { .. }))
        .count();
    assert_eq!(limited, 3);
}

#[test]
fn missing_secrets_are_not_guesses_and_a_late_driver_still_ends_the_window() {
    let mut h = Harness::new(quiet_for_a_minute());
    let alice = h.logged_in("alice");
    let secret = h.secret_of(alice);
    let other = h.open_from("10.0.0.9");
    for i in 0..8 {
        quiet_until(&mut h, secs(i));
        h.login(other, "alice");
        assert_eq!(h.drain(), [taken(other, "alice")]);
    }
    assert_eq!(h.server.tracked_addresses(), 0);
    for _ in 0..5 {
        h.login_with_secret(other, "alice", "wrong");
        assert_eq!(h.drain(), [taken(other, "alice")]);
    }
    h.login_with_secret(other, "alice", &secret);
    assert_eq!(h.drain(), [guessing(other, 60)]);
    // The window (7 s to 67 s) ends at 67 s even if nothing woke the core.
    h.skip(secs(60));
    h.frame(other, Inbound::Pong(b""));
    h.login_with_secret(other, "alice", &secret);
    let all = [alice, other];
    let mut expected = broadcast(&all, &login_broadcast("alice", "10.0.0.9"));
    expected.push(send(other, &login_message("alice", "10.0.0.9")));
    assert_eq!(h.drain(), expected);
}

#[test]
fn the_address_table_is_capped_and_a_full_table_refuses_untracked_addresses() {
    let mut h = Harness::new(Config {
        login_failure_addresses: 3,
        ..quiet_for_a_minute()
    });
    let alice = h.logged_in("alice");
    let secret = h.secret_of(alice);
    // A thousand addresses guess once each.
    for i in 0..1000 {
        let conn = h.open_from(&format!("10.0.{}.{}", i / 256, i % 256));
        h.login_with_secret(conn, "alice", "guess");
        let expected = if i < 3 {
            taken(conn, "alice")
        } else {
            guessing(conn, 60)
        };
        assert_eq!(h.drain(), [expected], "address {i}");
        h.close(conn);
    }
    assert_eq!(h.server.tracked_addresses(), 3);
    // A tracked address below its limit may still try.
    let tracked = h.open_from("10.0.0.1");
    h.login_with_secret(tracked, "alice", "guess");
    assert_eq!(h.drain(), [taken(tracked, "alice")]);
    // Untracked ones may log in without a secret, not with one.
    let newcomer = h.open_from("192.0.2.1");
    h.login_with_secret(newcomer, "alice", &secret);
    assert_eq!(h.drain(), [guessing(newcomer, 60)]);
    h.login(newcomer, "bob");
    let all = [alice, tracked, newcomer];
    let mut expected = broadcast(&all, &login_broadcast("bob", "192.0.2.1"));
    expected.push(send(newcomer, &login_message("bob", "192.0.2.1")));
    assert_eq!(h.drain(), expected);
    // A minute after the first guesses, the table is empty again.
    quiet_until(&mut h, secs(60));
    assert_eq!(h.server.tracked_addresses(), 0);
}

#[test]
fn wrong_secrets_from_one_ipv6_64_count_as_one_address() {
    let mut h = Harness::new(Config {
        login_failure_addresses: 2,
        ..quiet_for_a_minute()
    });
    let alice = h.logged_in("alice");
    let secret = h.secret_of(alice);
    // One host, five addresses of its /64, one guess each.
    let mut all = vec![alice];
    for i in 1..=5 {
        let conn = h.open_from(&format!("2001:db8:1:2::{i:x}"));
        all.push(conn);
        h.login_with_secret(conn, "alice", "guess");
        assert_eq!(h.drain(), [taken(conn, "alice")], "guess {i}");
    }
    assert_eq!(h.server.tracked_addresses(), 1);
    // The sixth address of that /64 is locked out like the first.
    let sixth = h.open_from("2001:db8:1:2:ffff:ffff:ffff:ffff");
    all.push(sixth);
    h.login_with_secret(sixth, "alice", &secret);
    assert_eq!(h.drain(), [guessing(sixth, 60)]);
    // The table (capped at 2) is not full: another /64 is not locked out.
    let neighbour = h.open_from("2001:db8:1:3::1");
    all.push(neighbour);
    h.login_with_secret(neighbour, "alice", &secret);
    assert_eq!(
        h.drain(),
        login_outcome_from(&all, neighbour, "alice", "2001:db8:1:3::1")
    );
}

// ---- new names per address, and the ceiling on names held ----

fn too_many_names(conn: ConnectionId, wait_s: u64) -> Out {
    rate_limited(
        conn,
        &format!("too many new names from your address; retry in {wait_s} s"),
    )
}

#[test]
fn an_address_takes_twenty_new_names_at_once_then_one_every_six_seconds() {
    let mut h = Harness::new(quiet_for_a_minute());
    let watcher = h.open_from("192.0.2.1");
    let mut all = vec![watcher];
    let join = |h: &mut Harness, all: &mut Vec<ConnectionId>, name: &str| {
        let conn = h.open_from("10.0.0.9");
        all.push(conn);
        h.login(conn, name);
        conn
    };
    for i in 0..20 {
        let conn = join(&mut h, &mut all, &format!("n{i}"));
        let mut expected = broadcast(&all, &login_broadcast(&format!("n{i}"), "10.0.0.9"));
        expected.push(send(conn, &login_message(&format!("n{i}"), "10.0.0.9")));
        assert_eq!(h.drain(), expected, "name {i}");
    }
    let squatter = join(&mut h, &mut all, "n20");
    assert_eq!(h.drain(), [too_many_names(squatter, 6)]);
    assert_eq!(h.server.login_count(), 20);
    // Reclaiming a name with its secret is not a new name; nor is a login
    // from another address.
    let n0 = all[1];
    let secret = h.secret_of(n0);
    h.close(n0);
    all.retain(|&c| c != n0);
    h.login_with_secret(squatter, "n0", &secret);
    let mut expected = broadcast(&all, &login_broadcast("n0", "10.0.0.9"));
    expected.push(send(squatter, &login_message("n0", "10.0.0.9")));
    assert_eq!(h.drain(), expected);
    h.login(watcher, "watcher");
    assert_eq!(h.drain().len(), all.len() + 1);
    // Six seconds on, one more new name.
    quiet_until(&mut h, secs(6) - ms(1));
    let early = join(&mut h, &mut all, "n21");
    assert_eq!(h.drain(), [too_many_names(early, 1)]);
    quiet_until(&mut h, secs(6));
    h.login(early, "n21");
    assert_eq!(h.drain().len(), all.len() + 1);
    let limited = h.events().into_iter().filter(|e| {
        matches!(
            e,
            Event::RateLimited {
                limit: Limit::NewNames,
                ..
            }
        )
    });
    assert_eq!(limited.count(), 2);
}

#[test]
fn past_max_held_names_the_name_idle_longest_is_released_first() {
    let mut h = Harness::new(Config {
        max_held_names: 3,
        ..without_login_timeout()
    });
    let conns: Vec<_> = ["a", "b", "c", "d"].map(|n| h.logged_in(n)).into();
    let _ = h.events();
    // They leave in the order b, a, c, d: four idle names, one too many.
    for i in [1, 0, 2] {
        h.close(conns[i]);
    }
    assert_eq!(h.server.idle_login_count(), 3);
    h.close(conns[3]);
    let released: Vec<Event> = h
        .events()
        .into_iter()
        .filter(|e| !matches!(e, Event::Left { .. }))
        .collect();
    assert_eq!(
        released,
        [Event::LoginEvicted {
            username: "b".into()
        }]
    );
    assert_eq!(
        (h.server.login_count(), h.server.idle_login_count()),
        (3, 3)
    );
    // "b" is free for anyone now; "a" is still held.
    let other = h.open_from("10.0.0.2");
    h.login(other, "b");
    assert_eq!(
        h.drain(),
        login_outcome_from(&[other], other, "b", "10.0.0.2")
    );
    let another = h.open_from("10.0.0.2");
    h.login(another, "a");
    assert_eq!(h.drain(), [taken(another, "a")]);
}

fn login_outcome_from(all: &[ConnectionId], conn: ConnectionId, name: &str, at: &str) -> Vec<Out> {
    let mut out = broadcast(all, &login_broadcast(name, at));
    out.push(send(conn, &login_message(name, at)));
    out
}

#[test]
fn new_names_per_minute_and_max_held_names_0_switch_their_limits_off() {
    let mut h = Harness::new(Config {
        new_names_per_minute: 0,
        max_held_names: 0,
        ..without_message_limit()
    });
    for i in 0..500 {
        let conn = h.open();
        h.login(conn, &format!("n{i}"));
        assert_eq!(h.drain().len(), 2, "name {i}");
        h.close(conn);
    }
    assert_eq!(h.server.idle_login_count(), 500);
}

#[test]
fn login_failures_per_minute_0_switches_the_limit_off() {
    let mut h = Harness::new(Config {
        login_failures_per_minute: 0,
        ..Config::default()
    });
    let alice = h.logged_in("alice");
    let other = h.open_from("10.0.0.9");
    for i in 0..50 {
        h.now += secs(1);
        h.login_with_secret(other, "alice", &format!("guess{i}"));
        assert_eq!(h.drain(), [taken(other, "alice")]);
    }
    assert_eq!(h.server.tracked_addresses(), 0);
    assert!(h.server.is_open(alice));
}

// ---- login timeout ----

#[test]
fn a_connection_without_a_login_is_closed_at_exactly_60s_however_busy() {
    let mut h = Harness::default();
    let idle = h.open();
    let busy = h.open();
    let late = h.open();
    // Activity and refused logins do not buy time.
    for s in [10, 20, 30, 40, 50] {
        quiet_until(&mut h, secs(s));
        h.frame(busy, Inbound::Pong(b""));
        h.login(busy, "");
        assert_eq!(
            h.drain(),
            [error(busy, "invalidUsername", "the name is empty")]
        );
    }
    // A login a millisecond before the deadline is in time.
    quiet_until(&mut h, secs(60) - ms(1));
    h.login(late, "alice");
    assert_eq!(h.drain(), login_outcome(&[idle, busy, late], late, "alice"));
    assert_eq!(
        h.advance(ms(1)),
        [
            (secs(60), close(idle, CloseCode::POLICY, "login timeout")),
            (secs(60), close(busy, CloseCode::POLICY, "login timeout")),
        ]
    );
    assert_eq!(
        h.events()
            .into_iter()
            .filter(|e| matches!(e, Event::LoginTimedOut { .. }))
            .collect::<Vec<_>>(),
        [
            Event::LoginTimedOut { conn: idle },
            Event::LoginTimedOut { conn: busy }
        ]
    );
    assert_eq!(h.server.connection_count(), 1);
}

#[test]
fn a_logout_restarts_the_login_timeout_of_every_device_it_logs_out() {
    let mut h = Harness::new(Config {
        login_timeout: secs(20),
        ..Config::default()
    });
    let phone = h.open_v2();
    h.text(phone, r#"{"type":"login","id":"l","username":"alice"}"#);
    h.drain();
    let secret = h.secret_of(phone);
    let laptop = h.open_v2();
    h.login_with_secret(laptop, "alice", &secret);
    h.drain();
    let bob = h.logged_in("bob");
    quiet_until(&mut h, secs(30));
    h.text(phone, r#"{"type":"logout","id":"o"}"#);
    assert_eq!(h.drain().len(), 2, "a logoutBroadcast to each v2 device");
    // Their timers are set for their heartbeat, at 60 s; the new deadline,
    // 50 s, is earlier and is kept to the millisecond.
    quiet_until(&mut h, secs(50) - ms(1));
    assert_eq!(
        h.advance(ms(1)),
        [
            (secs(50), close(phone, CloseCode::POLICY, "login timeout")),
            (secs(50), close(laptop, CloseCode::POLICY, "login timeout")),
        ]
    );
    // Nothing else was disturbed: bob is pinged on his schedule, once.
    assert_eq!(h.advance(secs(10)), [(secs(60), Out::Ping(bob))]);
}

#[test]
fn login_timeout_0_switches_the_limit_off() {
    let mut h = Harness::new(without_login_timeout());
    let idle = h.open();
    assert_eq!(h.advance(secs(60)), [(secs(60), Out::Ping(idle))]);
}

// ---- ping floods ----

#[test]
fn a_ping_burst_is_answered_the_next_ten_ignored_and_the_one_after_closes() {
    let mut h = Harness::default();
    let flooder = h.logged_in("mallory");
    let bob = h.logged_in("bob");
    quiet_until(&mut h, secs(5));
    let mut expected = Vec::new();
    for i in 0..20u8 {
        h.frame(flooder, Inbound::Ping(&[i]));
        if i < 10 {
            expected.push(Out::Pong(flooder, vec![i]));
        }
    }
    assert_eq!(h.drain(), expected);
    h.frame(flooder, Inbound::Ping(b"21st"));
    assert_eq!(h.drain(), [close(flooder, CloseCode::POLICY, "ping flood")]);
    assert!(h.events().contains(&Event::PingFlood { conn: flooder }));
    // bob's pings are his own.
    h.frame(bob, Inbound::Ping(b"b"));
    assert_eq!(h.drain(), [Out::Pong(bob, b"b".to_vec())]);
}

#[test]
fn pings_at_the_rate_are_all_answered_and_a_pause_earns_pongs_again() {
    let mut h = Harness::default();
    let a = h.logged_in("alice");
    for i in 0..200u8 {
        h.now += ms(500);
        h.frame(a, Inbound::Ping(&[i]));
        assert_eq!(h.drain(), [Out::Pong(a, vec![i])]);
    }
    h.now += secs(5);
    for _ in 0..15 {
        h.frame(a, Inbound::Ping(b"x"));
    }
    assert_eq!(h.drain().len(), 10);
    // 15 pings at once leave the bucket 7.5 s from full, which is 3 s
    // from a token; an ignored ping counts too, making it 3.5 s.
    h.now += ms(2999);
    h.frame(a, Inbound::Ping(b"early"));
    assert_eq!(h.drain(), []);
    h.now += ms(500);
    h.frame(a, Inbound::Ping(b"too early"));
    assert_eq!(h.drain(), []);
    h.now += ms(501);
    h.frame(a, Inbound::Ping(b"in time"));
    assert_eq!(h.drain(), [Out::Pong(a, b"in time".to_vec())]);
}

#[test]
fn peer_ping_rate_or_burst_0_switches_the_limit_off() {
    for config in [
        Config {
            peer_ping_rate: 0,
            ..Config::default()
        },
        Config {
            peer_ping_burst: 0,
            ..Config::default()
        },
    ] {
        let mut h = Harness::new(config);
        let a = h.logged_in("alice");
        for _ in 0..1000 {
            h.frame(a, Inbound::Ping(b"p"));
        }
        assert_eq!(h.drain(), vec![Out::Pong(a, b"p".to_vec()); 1000]);
    }
}
