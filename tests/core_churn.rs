//! Memory under churn (issue 21, item 6): connections that open, log in
//! and close in a loop leave nothing behind in the core beyond what its
//! limits allow, however fast they come (here, all within one virtual
//! minute, before any of their timers is due).

mod common;

use common::*;
use wschat::{CloseCode, Config, Event};

const CYCLES: usize = 20_000;
const MAX_HELD: usize = 1_000;

fn churn_config() -> Config {
    Config {
        new_names_per_minute: 0,
        max_held_names: MAX_HELD,
        ..Config::default()
    }
}

/// The core's tables after the churn: each bounded by what is live (the
/// idle names, at most `MAX_HELD`), not by the number of cycles.
fn assert_bounded(h: &Harness, cycles: usize) {
    let (logins, idle, timers) = (
        h.server.login_count(),
        h.server.idle_login_count(),
        h.server.timer_entries(),
    );
    assert!(logins <= MAX_HELD && idle <= MAX_HELD, "{logins} {idle}");
    assert!(
        timers <= 3 * MAX_HELD,
        "{timers} timer entries after {cycles} cycles, for {idle} idle names and {} \
         connections",
        h.server.connection_count()
    );
}

#[test]
fn connect_new_name_close_20000_times_keeps_the_core_bounded() {
    let mut h = Harness::new(churn_config());
    // Watched throughout: what is still wanted survives every compaction.
    let lurker = h.open_from("10.0.0.9");
    for i in 0..CYCLES {
        let conn = h.open();
        h.login(conn, &format!("churn{i}"));
        // Its loginMessage, and the loginBroadcast to it and the lurker.
        assert_eq!(h.drain().len(), 3, "login {i}");
        h.close(conn);
        let _ = h.events();
        assert!(h.advance(ms(2)).is_empty());
    }
    assert_eq!(h.server.idle_login_count(), MAX_HELD);
    assert_bounded(&h, CYCLES);
    // The lurker's login timeout still comes at exactly 60 s, and the idle
    // names still expire, each at the end of its TTL.
    let out = h.advance(secs(60) - h.elapsed());
    assert_eq!(
        out,
        [(secs(60), close(lurker, CloseCode::POLICY, "login timeout"))]
    );
    let _ = h.events();
    h.advance(Config::default().login_ttl);
    let expired = h
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::LoginExpired { .. }))
        .count();
    assert_eq!((expired, h.server.login_count()), (MAX_HELD, 0));
    assert!(
        h.server.timer_entries() <= 2,
        "{}",
        h.server.timer_entries()
    );
}

#[test]
fn reclaiming_one_name_again_and_again_keeps_the_core_bounded() {
    let mut h = Harness::new(churn_config());
    let first = h.logged_in("same");
    let secret = h.secret_of(first);
    h.close(first);
    for i in 0..CYCLES / 4 {
        let conn = h.open();
        h.login_with_secret(conn, "same", &secret);
        assert_eq!(h.drain().len(), 2, "login {i}");
        h.close(conn);
        let _ = h.events();
        h.advance(ms(2));
    }
    assert_eq!(h.server.idle_login_count(), 1);
    assert_bounded(&h, CYCLES / 4);
}
