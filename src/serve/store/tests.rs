//! The store's unit tests: those of format 1 here, as they were; those of
//! rooms (format 2) in `rooms`, and of failed writes and crashes in
//! `failures`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use super::*;
use crate::Config;
use crate::server::{Append, SecretHash, StoredName, Ticket, Write};

pub(super) fn write(number: u64, write: Write) -> Request {
    Request::Write(Ticket::for_tests(number), write)
}

pub(super) fn append(number: u64, text: &str) -> Request {
    let append = Append {
        id: "i".into(),
        timestamp: 1,
        username: "u".into(),
        text: text.into(),
        notice: false,
        room: None,
    };
    Request::Append(Ticket::for_tests(number), append)
}

#[test]
fn what_is_committed_is_read_back_and_numbered_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, snapshot) = Store::open(dir.path(), 2).unwrap();
    assert_eq!(
        (snapshot.last_seq, snapshot.epoch.len()),
        (0, id::EPOCH_LEN)
    );
    let key: Arc<str> = "alice".into();
    let batch = [
        write(
            1,
            Write::Claim {
                key: key.clone(),
                display: "Alice".into(),
                secret: SecretHash::of("s"),
            },
        ),
        append(2, "one"),
        append(3, "two"),
        append(4, "three"),
        write(
            5,
            Write::Idle {
                key: key.clone(),
                expires_at: 99,
            },
        ),
        write(6, Write::Alive { at: 7 }),
    ];
    let answers = store.commit(&batch).unwrap();
    let seqs: Vec<Option<u64>> = answers
        .iter()
        .map(|answer| match answer {
            Answer::Appended(_, Ok(seq)) => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [None, Some(1), Some(2), Some(3), None, None]);
    assert!(answers.iter().all(|answer| answer.error().is_none()));
    drop(store);

    let (_store, again) = Store::open(dir.path(), 2).unwrap();
    assert_eq!(again.epoch, snapshot.epoch);
    assert_eq!((again.last_seq, again.alive_at), (3, Some(7)));
    let texts: Vec<&str> = again.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["two", "three"]);
    assert_eq!(
        again.names,
        [StoredName {
            key: "alice".into(),
            display: "Alice".into(),
            secret: SecretHash::of("s"),
            expires_at: Some(99),
        }]
    );
}

#[test]
fn a_restore_moves_a_name_saved_under_its_key_of_before_issue_21() {
    use std::time::{Duration, SystemTime};

    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), 2).unwrap();
    let wall_ms = 1_700_000_000_000;
    let claim = Write::Claim {
        key: "mallory".into(),
        display: "mallory".into(),
        secret: SecretHash::of("s"),
    };
    let idle = Write::Idle {
        key: "mallory".into(),
        expires_at: wall_ms + 60_000,
    };
    store.commit(&[write(1, claim), write(2, idle)]).unwrap();
    drop(store);

    let (mut store, snapshot) = Store::open(dir.path(), 2).unwrap();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_millis(wall_ms);
    let rng = StdRng::seed_from_u64(1);
    let mut core =
        crate::server::Server::restore(Config::default(), rng, snapshot, wall, Instant::now());
    let requests: Vec<Request> = std::iter::from_fn(|| core.poll_request()).collect();
    store.commit(&requests).unwrap();
    drop(store);

    let (_store, again) = Store::open(dir.path(), 2).unwrap();
    assert_eq!(
        again.names,
        [StoredName {
            key: "rnallory".into(),
            display: "mallory".into(),
            secret: SecretHash::of("s"),
            expires_at: Some(wall_ms + 60_000),
        }]
    );
}

#[test]
fn the_files_are_private_and_hold_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut store, _) = Store::open(&data, 10).unwrap();
    let claim = Write::Claim {
        key: "bob".into(),
        display: "bob".into(),
        secret: SecretHash::of("the-secret-itself"),
    };
    store.commit(&[write(1, claim)]).unwrap();
    drop(store);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join(FILE_NAME)), 0o600);
    let bytes = fs::read(data.join(FILE_NAME)).unwrap();
    let secret = b"the-secret-itself";
    assert!(!bytes.windows(secret.len()).any(|w| w == secret));
}

#[test]
fn what_cannot_be_read_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, "x").unwrap();
    assert!(matches!(
        Store::open(&file, 10),
        Err(StoreError::NotADirectory(_))
    ));
    let damaged = dir.path().join("damaged");
    fs::create_dir(&damaged).unwrap();
    fs::write(damaged.join(FILE_NAME), vec![7u8; 10_000]).unwrap();
    let error = Store::open(&damaged, 10).unwrap_err();
    assert!(matches!(error, StoreError::Unreadable { .. }), "{error}");
    assert_eq!(
        fs::read(damaged.join(FILE_NAME)).unwrap(),
        vec![7u8; 10_000]
    );

    let held = dir.path().join("held");
    let (_open, _) = Store::open(&held, 10).unwrap();
    let error = Store::open(&held, 10).unwrap_err();
    assert!(matches!(error, StoreError::Locked(_)), "{error}");
}

mod failures;
mod rooms;
