//! The core as one node of a cluster (issue 15), on the virtual clock: the
//! test plays the shared store, which decides names and numbers messages,
//! and the other nodes, whose doings arrive as `Remote` inputs. Whole lists
//! of requests and actions are compared.

mod common;

use std::sync::Arc;

use common::*;
use wschat::protocol::LeaveReason;
use wschat::server::{
    Claim, Disconnect, Failed, Remote, Request, Reserve, SecretHash, Snapshot, StoredMessage, Write,
};
use wschat::{Config, ConnectionId, Event};

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

fn only(h: &mut Harness) -> Request {
    let requests = h.writes();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.into_iter().next().unwrap()
}

/// The store decides `claim` of the name `request` reserves.
fn claimed(h: &mut Harness, request: &Request, claim: Claim, display: &str) {
    let Request::Reserve(ticket, _) = request else {
        panic!("not a reservation: {request:?}");
    };
    h.answer(ticket.answer(Ok((claim, display.into()))));
}

/// The store says whether the user of `request`, a disconnect, is gone.
fn released(h: &mut Harness, request: &Request, gone: bool) {
    let Request::Disconnect(ticket, _) = request else {
        panic!("not a disconnect: {request:?}");
    };
    h.answer(ticket.answer(Ok(gone)));
}

/// Logs `name` in on a fresh connection of this node, the store saying it
/// was free.
fn joined(h: &mut Harness, name: &str) -> ConnectionId {
    let conn = h.open();
    h.login(conn, name);
    let request = only(h);
    claimed(h, &request, Claim::Fresh, name);
    let _ = h.drain();
    let _ = h.events();
    conn
}

#[test]
fn a_login_asks_the_store_and_is_answered_by_its_decision() {
    let mut h = node();
    let watcher = joined(&mut h, "watcher");
    let alice = h.open();
    h.login(alice, "Alice");
    assert_eq!(h.drain(), []);
    let request = only(&mut h);
    let Request::Reserve(
        _,
        Reserve {
            key,
            display,
            offered,
            fresh,
            location,
            timestamp,
        },
    ) = request.clone()
    else {
        panic!("{request:?}");
    };
    assert_eq!(
        (&*key, &*display, offered, &*location),
        ("alice", "Alice", None, "127.0.0.1")
    );
    assert_eq!(timestamp, EPOCH_MS);
    // Free: reserved with the new secret, whose hash the store was given.
    claimed(&mut h, &request, Claim::Fresh, "Alice");
    assert_eq!(h.drain(), login_outcome(&[watcher, alice], alice, "Alice"));
    assert_eq!(fresh, SecretHash::of(&h.secret_of(alice)));

    // Taken on another node: refused, and counted as a wrong secret.
    let guesser = h.open_from("10.0.0.9");
    h.login_with_secret(guesser, "alice", "not-the-secret");
    let request = only(&mut h);
    assert!(
        matches!(&request, Request::Reserve(_, Reserve { offered: Some(hash), .. }) if *hash == SecretHash::of("not-the-secret"))
    );
    claimed(&mut h, &request, Claim::Taken, "Alice");
    assert_eq!(
        h.drain(),
        [error(
            guesser,
            "loginTaken",
            "the name \"Alice\" is taken; give its secret to reclaim it, or pick another"
        )]
    );
    assert_eq!(h.server.tracked_addresses(), 1);

    // Reclaimed with its secret: told back the secret it gave.
    let phone = h.open();
    let secret = h.secret_of(alice);
    h.login_with_secret(phone, "alice", &secret);
    let request = only(&mut h);
    claimed(&mut h, &request, Claim::Reclaimed, "Alice");
    let out = h.drain();
    assert_eq!(
        out.last(),
        Some(&send(phone, &login_message("Alice", "127.0.0.1")))
    );
    assert_eq!(h.secret_of(phone), secret);
}

#[test]
fn a_store_that_cannot_answer_refuses_the_login_with_unavailable() {
    let mut h = node();
    let alice = h.open_v2();
    h.text(alice, r#"{"type":"login","id":"l","username":"alice"}"#);
    h.text(
        alice,
        r#"{"type":"textFromUser","id":"m","text":"too early"}"#,
    );
    let request = only(&mut h);
    h.answer(request.fail(Failed("redis is down".into())));
    assert_eq!(
        h.drain(),
        [
            send(
                alice,
                r#"{"type":"errorMessage","error":"unavailable","id":"*","replyTo":"l","description":"the server could not reach its store to log you in; try again in a moment"}"#
            ),
            // What waited behind the login is answered after it, in order.
            send(
                alice,
                r#"{"type":"errorMessage","error":"messagingWhileNotLoggedIn","id":"*","replyTo":"m","description":"log in before sending messages"}"#
            ),
        ]
    );
    assert_eq!(h.server.username(alice), None);
}

#[test]
fn messages_of_every_node_are_delivered_in_the_order_the_store_gives() {
    let mut h = node();
    let alice = joined(&mut h, "alice");
    let new = h.open_v2();
    h.say(alice, "mine");
    let request = only(&mut h);
    let Request::Append(ticket, _) = request else {
        panic!("{request:?}");
    };
    assert_eq!(h.drain(), []);
    // Another node's message first (seq 11), then this one's (12).
    h.server.handle_remote(
        Remote::Message(StoredMessage {
            seq: 11,
            id: "x".repeat(21),
            timestamp: EPOCH_MS,
            username: "bob".into(),
            text: "from node two".into(),
            notice: false,
        }),
        h.now,
    );
    h.answer(ticket.answer(Ok(12)));
    let v2 = |name: &str, text: &str, seq: u64| {
        format!(
            r#"{{"type":"textBroadcast","id":"*","username":"{name}","message":"{text}","seq":{seq},"timestamp":{EPOCH_MS}}}"#
        )
    };
    assert_eq!(
        h.drain(),
        [
            send(alice, &text_broadcast("bob", "from node two")),
            send(new, &v2("bob", "from node two", 11)),
            send(alice, &text_broadcast("alice", "mine")),
            send(new, &v2("alice", "mine", 12)),
        ]
    );
    // Both are in the history a v2 login catches up from.
    h.text(
        new,
        r#"{"type":"login","id":"l","username":"nova","since":10,"epoch":"shared"}"#,
    );
    let request = only(&mut h);
    claimed(&mut h, &request, Claim::Fresh, "nova");
    let history = h.drain().pop().unwrap();
    let Out::Send(_, history) = history else {
        panic!()
    };
    assert!(
        history.contains(r#""seq":11"#) && history.contains(r#""seq":12"#),
        "{history}"
    );
}

#[test]
fn a_user_leaves_only_when_the_store_says_no_node_holds_the_name() {
    let mut h = node();
    let watcher = h.open_v2();
    h.login(watcher, "watcher");
    let request = only(&mut h);
    claimed(&mut h, &request, Claim::Fresh, "watcher");
    let _ = h.drain();
    let alice = joined(&mut h, "alice");
    h.close(alice);
    let request = only(&mut h);
    let Request::Disconnect(_, disconnect) = &request else {
        panic!("{request:?}");
    };
    assert_eq!(
        *disconnect,
        Disconnect {
            key: "alice".into(),
            display: "alice".into(),
            reason: LeaveReason::Disconnected
        }
    );
    // Still on another node: nobody is told anything.
    released(&mut h, &request, false);
    assert_eq!(h.drain(), []);

    let bob = joined(&mut h, "bob");
    h.close(bob);
    let request = only(&mut h);
    released(&mut h, &request, true);
    assert_eq!(
        h.drain(),
        [send(
            watcher,
            &format!(
                r#"{{"type":"logoutBroadcast","id":"*","username":"bob","reason":"disconnected","timestamp":{EPOCH_MS}}}"#
            )
        )]
    );
    assert_eq!(
        h.events(),
        [Event::Left {
            username: "bob".into(),
            location: "127.0.0.1".into(),
            reason: LeaveReason::Disconnected
        }]
    );
}

#[test]
fn what_other_nodes_did_reaches_this_nodes_connections() {
    let mut h = node();
    let old = joined(&mut h, "olga");
    let new = h.open_v2();
    h.login(new, "nova");
    let request = only(&mut h);
    claimed(&mut h, &request, Claim::Fresh, "nova");
    let _ = h.drain();
    let alice = joined(&mut h, "alice"); // alice on this node too
    h.server.handle_remote(
        Remote::Joined {
            username: "carol".into(),
            location: "10.0.0.3".into(),
            timestamp: EPOCH_MS,
        },
        h.now,
    );
    let out = h.drain();
    assert_eq!(out[0], send(old, &login_broadcast("carol", "10.0.0.3")));
    assert_eq!(out.len(), 3);

    // alice logged out on another node: logged out here too, and told.
    h.server.handle_remote(
        Remote::LoggedOut {
            key: Arc::from("alice"),
            username: "alice".into(),
        },
        h.now,
    );
    let leave = format!(
        r#"{{"type":"logoutBroadcast","id":"*","username":"alice","reason":"logout","timestamp":{EPOCH_MS}}}"#
    );
    assert_eq!(h.drain(), [send(new, &leave)]);
    assert_eq!(h.server.username(alice), None);
    h.server.handle_remote(
        Remote::Left {
            username: "dave".into(),
            reason: LeaveReason::Evicted,
        },
        h.now,
    );
    assert_eq!(h.drain().len(), 1);
}

#[test]
fn list_users_asks_the_store_and_logout_tells_it() {
    let mut h = node();
    let alice = h.open_v2();
    h.login(alice, "alice");
    let request = only(&mut h);
    claimed(&mut h, &request, Claim::Fresh, "alice");
    let _ = h.drain();
    h.text(alice, r#"{"type":"listUsers","id":"u"}"#);
    let request = only(&mut h);
    let Request::Online(ticket) = request else {
        panic!("{request:?}");
    };
    let online = vec![("bob".into(), 2), ("alice".into(), 1), ("Carol".into(), 1)];
    h.answer(ticket.answer(Ok(online)));
    assert_eq!(
        h.drain(),
        [send(
            alice,
            r#"{"type":"userList","id":"*","replyTo":"u","users":[{"username":"alice","connections":1},{"username":"bob","connections":2},{"username":"Carol","connections":1}]}"#
        )]
    );
    h.text(alice, r#"{"type":"logout","id":"o"}"#);
    let request = only(&mut h);
    let Request::Write(_, logout) = request else {
        panic!("{request:?}");
    };
    assert_eq!(
        logout,
        Write::Logout {
            key: "alice".into(),
            display: "alice".into()
        }
    );
    assert_eq!(h.drain().len(), 1); // its own logoutBroadcast: the confirmation
}

#[test]
fn a_node_lists_users_by_name_as_a_single_node_does() {
    let mut h = node();
    let alice = h.open_v2();
    h.login(alice, "alice");
    let request = only(&mut h);
    claimed(&mut h, &request, Claim::Fresh, "alice");
    let _ = h.drain();
    h.text(alice, r#"{"type":"listUsers","id":"u"}"#);
    let Request::Online(ticket) = only(&mut h) else {
        panic!("not an online request");
    };
    // By letters, not by key: the key spells 0 as O, which sorts after 9.
    let online = vec![
        ("user09".into(), 1),
        ("user00".into(), 1),
        ("alice".into(), 1),
    ];
    h.answer(ticket.answer(Ok(online)));
    assert_eq!(
        h.drain(),
        [send(
            alice,
            r#"{"type":"userList","id":"*","replyTo":"u","users":[{"username":"alice","connections":1},{"username":"user00","connections":1},{"username":"user09","connections":1}]}"#
        )]
    );
}

#[test]
fn the_node_says_which_names_its_connections_hold_as_the_store_counts_them() {
    let mut h = node();
    assert_eq!(h.server.last_ticket(), 0);
    let laptop = h.open_v2();
    h.login(laptop, "Alice");
    let reserve = only(&mut h);
    // What held_names reflects: every request up to the latest asked.
    assert_eq!(h.server.last_ticket(), reserve.ticket());
    // Not held until the store says so.
    assert_eq!(h.server.held_names(), []);
    claimed(&mut h, &reserve, Claim::Fresh, "Alice");
    let _ = h.drain();
    let secret = h.secret_of(laptop);
    let phone = h.open();
    h.login_with_secret(phone, "alice", &secret);
    let reclaim = only(&mut h);
    claimed(&mut h, &reclaim, Claim::Reclaimed, "Alice");
    let bob = joined(&mut h, "bob");
    // A login the store refuses holds nothing.
    let guess = h.open();
    h.login_with_secret(guess, "bob", "wrong");
    let taken = only(&mut h);
    claimed(&mut h, &taken, Claim::Taken, "bob");
    let _ = h.drain();
    let held = |h: &Harness| -> Vec<(String, String, SecretHash, usize)> {
        let names = h.server.held_names();
        names
            .into_iter()
            .map(|n| {
                (
                    n.key.to_string(),
                    n.display.to_string(),
                    n.secret,
                    n.connections,
                )
            })
            .collect()
    };
    let alice = |connections| {
        let hash = SecretHash::of(&secret);
        ("alice".to_owned(), "Alice".to_owned(), hash, connections)
    };
    let bob_hash = SecretHash::of(&h.secret_of(bob));
    let bob_held = ("bob".to_owned(), "bob".to_owned(), bob_hash, 1);
    assert_eq!(held(&h), [alice(2), bob_held.clone()]);

    // A connection that closes no longer counts; a name logged out on
    // another node, or here, is held no more.
    h.close(phone);
    let _ = h.writes();
    assert_eq!(held(&h), [alice(1), bob_held]);
    h.server.handle_remote(
        Remote::LoggedOut {
            key: Arc::from("bob"),
            username: "bob".into(),
        },
        h.now,
    );
    assert_eq!(held(&h), [alice(1)]);
    h.text(laptop, r#"{"type":"logout","id":"o"}"#);
    assert_eq!(held(&h), []);
}

/// What `wschat_logged_in_users` shows on a node (issue 21, item 11): the
/// names this node's connections hold, each once however many hold it;
/// names idle in the store are not this node's to count.
#[test]
fn a_node_counts_the_names_its_connections_hold_as_logged_in_users() {
    let mut h = node();
    assert!(h.server.is_cluster_node());
    let alice = joined(&mut h, "alice");
    let secret = h.secret_of(alice);
    let phone = h.open();
    h.login_with_secret(phone, "alice", &secret);
    let reclaim = only(&mut h);
    claimed(&mut h, &reclaim, Claim::Reclaimed, "alice");
    let bob = joined(&mut h, "bob");
    let counts = |h: &Harness| (h.server.logged_in_count(), h.server.idle_login_count());
    assert_eq!(counts(&h), (2, 0));
    h.close(phone);
    let _ = h.writes();
    assert_eq!(counts(&h), (2, 0));
    h.close(bob);
    let disconnect = only(&mut h);
    released(&mut h, &disconnect, true);
    assert_eq!(counts(&h), (1, 0));
    h.close(alice);
    let _ = h.writes();
    assert_eq!(counts(&h), (0, 0));
}
