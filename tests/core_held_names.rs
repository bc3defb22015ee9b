//! Which names a node of a cluster holds (`Server::held_names`), as its
//! Redis link asks when it registers again: each name with how many of
//! this node's connections hold it, from the store's answer to its login
//! until the connection closes or the name is logged out.

mod common;

use common::*;
use wschat::server::{Claim, Remote, Request, Reserve, Snapshot, Ticket};
use wschat::{Config, ConnectionId};

fn node() -> Harness {
    Harness::cluster(
        Config::default(),
        Snapshot {
            epoch: "shared".into(),
            last_seq: 10,
            ..Snapshot::default()
        },
    )
}

/// The one request asked: a reservation.
fn only(h: &mut Harness) -> Ticket<Reserve> {
    let requests = h.writes();
    assert_eq!(requests.len(), 1, "{requests:?}");
    match requests.into_iter().next() {
        Some(Request::Reserve(ticket, _)) => ticket,
        other => panic!("not a reservation: {other:?}"),
    }
}

/// The store's answer to `ticket`: `claim`, of the name shown as `display`.
fn claimed(h: &mut Harness, ticket: Ticket<Reserve>, claim: Claim, display: &str) {
    h.answer(ticket.answer(Ok((claim, display.into()))));
}

/// `held_names()` in a fixed order, as (key, display, connections).
fn held(h: &Harness) -> Vec<(String, String, usize)> {
    let mut held: Vec<_> = h
        .server
        .held_names()
        .into_iter()
        .map(|n| (n.key.to_string(), n.display.to_string(), n.connections))
        .collect();
    held.sort();
    held
}

fn name(key: &str, display: &str, connections: usize) -> (String, String, usize) {
    (key.into(), display.into(), connections)
}

/// Logs `name` in on a new connection, the store answering `claim`.
fn log_in(h: &mut Harness, display: &str, secret: Option<&str>, claim: Claim) -> ConnectionId {
    let conn = h.open();
    match secret {
        Some(secret) => h.login_with_secret(conn, display, secret),
        None => h.login(conn, display),
    }
    let ticket = only(h);
    claimed(h, ticket, claim, display);
    let _ = h.drain();
    conn
}

#[test]
fn held_names_count_each_names_connections_from_the_stores_answer_until_they_go() {
    let mut h = node();
    assert_eq!(held(&h), []);
    assert_eq!(h.server.last_ticket(), 0);

    // Asked, not answered yet: not held.
    let alice = h.open();
    h.login(alice, "Alice");
    let ticket = only(&mut h);
    assert_eq!(h.server.last_ticket(), ticket.get());
    assert_eq!(held(&h), []);
    claimed(&mut h, ticket, Claim::Fresh, "Alice");
    let _ = h.drain();
    assert_eq!(held(&h), [name("alice", "Alice", 1)]);

    // A second device reclaims it; Bob comes; a login refused counts not.
    let secret = h.secret_of(alice);
    let alice2 = log_in(&mut h, "Alice", Some(&secret), Claim::Reclaimed);
    let _bob = log_in(&mut h, "Bob", None, Claim::Fresh);
    let _guess = log_in(&mut h, "Bob", Some("wrong"), Claim::Taken);
    assert_eq!(held(&h), [name("alice", "Alice", 2), name("bob", "Bob", 1)]);

    // A connection closes; another node logs Bob out.
    h.close(alice2);
    let _ = h.writes();
    h.server.handle_remote(
        Remote::LoggedOut {
            key: "bob".into(),
            username: "Bob".into(),
        },
        h.now,
    );
    let _ = h.drain();
    assert_eq!(held(&h), [name("alice", "Alice", 1)]);
}
