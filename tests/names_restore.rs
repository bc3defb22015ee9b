//! Names saved under an older key rule keep working after a restart (issue
//! 21): each is held under its key by today's rule, names that are now one
//! are settled (the one used last stays), and names today's rule refuses
//! are released.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use wschat::Config;
use wschat::server::{Request, SecretHash, Snapshot, StoredName, Write};

fn key(name: &str) -> Arc<str> {
    name.into()
}

fn stored(key: &str, display: &str, secret: &str, expires_at: Option<u64>) -> StoredName {
    StoredName {
        key: key.into(),
        display: display.into(),
        secret: SecretHash::of(secret),
        expires_at,
    }
}

/// The writes requested so far, without the `Alive`s, each reported
/// durable.
fn settle(h: &mut Harness) -> Vec<Write> {
    let mut facts = Vec::new();
    for request in h.writes() {
        match request {
            Request::Write(_, Write::Alive { .. }) => {}
            Request::Write(ticket, write) => {
                h.answer(ticket.answer(Ok(())));
                facts.push(write);
            }
            other => panic!("not a plain write: {other:?}"),
        }
    }
    facts
}

#[test]
fn names_saved_under_old_keys_are_rekeyed_and_their_owners_log_in_with_their_secrets() {
    let (mallory, strasse, twin, hidden) = (
        "m".repeat(24),
        "s".repeat(24),
        "t".repeat(24),
        "h".repeat(24),
    );
    let snapshot = Snapshot {
        epoch: "e".into(),
        names: vec![
            // "mallory" is keyed "rnallory" now (m and rn look alike).
            stored("mallory", "mallory", &mallory, Some(EPOCH_MS + 60_000)),
            // In use when the server stopped, so used last: it stays.
            stored("stra\u{df}e", "Stra\u{df}e", &strasse, None),
            // One name with the above now, idle: released.
            stored("strasse", "STRASSE", &twin, Some(EPOCH_MS + 30_000)),
            // Hides a character that shows as nothing: refused today.
            stored(
                "alice\u{34f}",
                "alice\u{34f}",
                &hidden,
                Some(EPOCH_MS + 60_000),
            ),
            // Same key as before: written as before.
            stored("bob", "bob", &twin, Some(EPOCH_MS + 90_000)),
        ],
        alive_at: Some(EPOCH_MS),
        ..Snapshot::default()
    };
    let mut h = Harness::restored(Config::default(), snapshot);
    assert_eq!(
        settle(&mut h),
        [
            // The twin's row is not released but overwritten, by the
            // claim of the name that stayed (below).
            Write::Release {
                key: key("alice\u{34f}")
            },
            // Oldest first; each new claim and its idle time before the
            // old key is released.
            Write::Claim {
                key: key("rnallory"),
                display: key("mallory"),
                secret: SecretHash::of(&mallory),
            },
            Write::Idle {
                key: key("rnallory"),
                expires_at: EPOCH_MS + 60_000
            },
            Write::Release {
                key: key("mallory")
            },
            Write::Claim {
                key: key("strasse"),
                display: key("Stra\u{df}e"),
                secret: SecretHash::of(&strasse),
            },
            Write::Idle {
                key: key("strasse"),
                expires_at: EPOCH_MS + 600_000
            },
            Write::Release {
                key: key("stra\u{df}e")
            },
        ]
    );
    assert_eq!(h.server.login_count(), 3);
    // Their owners log in with the secrets they had, as they type them.
    for (typed, secret, shown) in [
        ("mallory", &mallory, "mallory"),
        ("STRASSE", &strasse, "Stra\u{df}e"),
        ("bob", &twin, "bob"),
    ] {
        let conn = h.open();
        h.login_with_secret(conn, typed, secret);
        let in_use = settle(&mut h);
        assert!(
            matches!(&in_use[..], [Write::InUse { .. }]),
            "{typed}: {in_use:?}"
        );
        let out = format!("{:?}", h.drain());
        assert!(
            out.contains("loginMessage") && out.contains(shown),
            "{typed}: {out}"
        );
    }
    // The twin's secret does not take the name that stayed; the refused
    // name is free for its look-alike.
    let conn = h.open();
    h.login_with_secret(conn, "strasse", &twin);
    assert!(format!("{:?}", h.drain()).contains("loginTaken"));
    let conn = h.open();
    h.login(conn, "alice");
    let claim = settle(&mut h);
    assert!(
        matches!(&claim[..], [Write::Claim { key, .. }] if &**key == "alice"),
        "{claim:?}"
    );
}

#[test]
fn a_rekeyed_name_whose_ttl_ran_out_while_down_is_released_under_its_old_key() {
    let snapshot = Snapshot {
        epoch: "e".into(),
        names: vec![stored(
            "mallory",
            "mallory",
            &"m".repeat(24),
            Some(EPOCH_MS - 1),
        )],
        alive_at: Some(EPOCH_MS),
        ..Snapshot::default()
    };
    let mut h = Harness::restored(Config::default(), snapshot);
    assert_eq!(
        settle(&mut h),
        [Write::Release {
            key: key("mallory")
        }]
    );
    assert_eq!(h.server.login_count(), 0);
}

/// The rows a store holds after `writes`, from `names` (key and display).
fn applied(names: &[StoredName], writes: &[Write]) -> BTreeMap<String, String> {
    let mut rows: BTreeMap<String, String> = names
        .iter()
        .map(|n| (n.key.clone(), n.display.clone()))
        .collect();
    for write in writes {
        match write {
            Write::Claim { key, display, .. } => {
                rows.insert(key.to_string(), display.to_string());
            }
            Write::Release { key } => {
                rows.remove(&**key);
            }
            _ => {}
        }
    }
    rows
}

#[test]
fn a_name_saved_where_another_moves_to_moves_first_and_no_move_loses_a_name() {
    // Saved by some other rule: "zed" under the key "rnallory", the key
    // "mallory" moves to today. "zed" must move (to "zed") before
    // "mallory"'s claim overwrites its row, and "rnallory" must not be
    // released after that claim (nor when "zed" ran out while down).
    for (zed_expires_at, kept) in [
        (
            EPOCH_MS + 90_000,
            &[("rnallory", "mallory"), ("zed", "zed")][..],
        ),
        (EPOCH_MS - 1, &[("rnallory", "mallory")][..]),
    ] {
        let names = vec![
            stored(
                "mallory",
                "mallory",
                &"m".repeat(24),
                Some(EPOCH_MS + 60_000),
            ),
            stored("rnallory", "zed", &"z".repeat(24), Some(zed_expires_at)),
        ];
        let snapshot = Snapshot {
            epoch: "e".into(),
            names: names.clone(),
            alive_at: Some(EPOCH_MS),
            ..Snapshot::default()
        };
        let mut h = Harness::restored(Config::default(), snapshot);
        let writes = settle(&mut h);
        // Whichever prefix of the writes is durable when the server
        // crashes, every name held on is saved (under the old key, the new
        // one, or both)...
        for end in 0..=writes.len() {
            let rows = applied(&names, &writes[..end]);
            assert!(
                kept.iter()
                    .all(|(_, shown)| rows.values().any(|d| d == shown)),
                "after {:?}: {rows:?}",
                &writes[..end]
            );
        }
        // ... and in the end under its new key only.
        let rows = applied(&names, &writes);
        let expected: BTreeMap<String, String> = kept
            .iter()
            .map(|(key, shown)| ((*key).to_owned(), (*shown).to_owned()))
            .collect();
        assert_eq!(rows, expected, "{writes:?}");
        assert_eq!(h.server.login_count(), kept.len());
    }
}
