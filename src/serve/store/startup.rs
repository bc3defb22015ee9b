//! The start-up benchmark of issue 22: a store of 100,000 names, 10,000
//! rooms and 1,000,000 memberships, written through the store's own code
//! (`Store::commit`), then opened as chat-server opens it (the whole check,
//! the read of the snapshot, the open for writing), timed. Run it in
//! release, by itself:
//!
//! ```text
//! cargo test --release --no-default-features --features server --lib \
//!     serve::store::startup -- --ignored --nocapture
//! ```
//!
//! `WSCHAT_STARTUP_DIR=DIR` writes the store to DIR (a new directory) and
//! keeps it, to time `chat-server --data-dir DIR` on it;
//! `WSCHAT_STARTUP_READS=1` adds a read marker to every membership.

use std::fs;
use std::time::{Duration, Instant};

use super::*;
use crate::protocol::Role;
use crate::server::{Append, SecretHash, Ticket, Write};

const NAMES: usize = 100_000;
const ROOMS: usize = 10_000;
const MEMBERS_PER_ROOM: usize = 100;
const MESSAGES_PER_ROOM: usize = 20;
/// Requests committed in one transaction while the store is written.
const BATCH: usize = 50_000;
const LOBBY_HISTORY: usize = 1000;
const ROOM_HISTORY: usize = 500;

fn name(n: usize) -> String {
    format!("name{n:06}")
}

fn room(r: usize) -> String {
    format!("#room{r:05}")
}

/// Commits `requests` in batches.
fn write_all(store: &mut Store, requests: impl Iterator<Item = Request>) {
    let mut batch = Vec::with_capacity(BATCH);
    for request in requests {
        batch.push(request);
        if batch.len() == BATCH {
            store.commit(&batch).unwrap();
            batch.clear();
        }
    }
    store.commit(&batch).unwrap();
}

#[test]
#[ignore = "a benchmark: run it in release, with --nocapture (see the module)"]
fn startup_with_100k_names_10k_rooms_1m_memberships() {
    let temporary = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("WSCHAT_STARTUP_DIR")
        .map_or_else(|| temporary.path().join("data"), PathBuf::from);
    let with_reads = std::env::var_os("WSCHAT_STARTUP_READS").is_some();
    let ticket = Ticket::for_tests;
    let (mut store, _) = Store::open_keeping(&dir, LOBBY_HISTORY, ROOM_HISTORY).unwrap();

    let started = Instant::now();
    write_all(
        &mut store,
        (0..NAMES).flat_map(|n| {
            let claim = Write::Claim {
                key: name(n).into(),
                display: name(n).into(),
                secret: SecretHash::of(&name(n)),
            };
            // Held for years, so that chat-server started on the store
            // releases none of them.
            let idle = Write::Idle {
                key: name(n).into(),
                expires_at: 4_000_000_000_000,
            };
            [claim, idle].map(|write| Request::Write(ticket(1), write))
        }),
    );
    // Room r has the names r·100 … r·100 + 99 (each name is in ten
    // rooms), the first its owner, every tenth an operator.
    write_all(
        &mut store,
        (0..ROOMS).flat_map(|r| {
            let settings = Write::Room {
                room: room(r).into(),
                display: room(r).into(),
                owner: Some(name(r * MEMBERS_PER_ROOM % NAMES).into()),
                invite_only: r % 3 == 0,
                topic: (r % 2 == 0).then(|| format!("the topic of {}", room(r)).into()),
                epoch: format!("epoch{r:011}").into(),
            };
            let members = (0..MEMBERS_PER_ROOM).flat_map(move |m| {
                let who: Arc<str> = name((r * MEMBERS_PER_ROOM + m) % NAMES).into();
                let role = match m {
                    0 => Role::Owner,
                    m if m % 10 == 0 => Role::Operator,
                    _ => Role::Member,
                };
                let member = Write::Member {
                    room: room(r).into(),
                    name: who.clone(),
                    role,
                    muted_until: (m % 50 == 7).then_some(1_900_000_000_000),
                };
                let read = Write::Read {
                    name: who,
                    room: room(r).into(),
                    seq: (m % MESSAGES_PER_ROOM) as u64,
                };
                std::iter::once(member).chain(with_reads.then_some(read))
            });
            std::iter::once(settings)
                .chain(members)
                .map(move |write| Request::Write(ticket(1), write))
        }),
    );
    write_all(
        &mut store,
        (0..ROOMS * MESSAGES_PER_ROOM).map(|i| {
            let append = Append {
                room: Some(room(i % ROOMS).into()),
                id: format!("id{i:022}").into(),
                timestamp: 1_765_000_000_000 + i as u64,
                username: name(i % NAMES).into(),
                text: format!("message {i}, of an ordinary length for a chat").into(),
                notice: false,
            };
            Request::Append(Ticket::for_tests(1), append)
        }),
    );
    let written = started.elapsed();
    let path = store.path.to_path_buf();
    drop(store);
    let size = fs::metadata(&path).unwrap().len();
    println!(
        "written in {written:.1?}: {NAMES} names, {ROOMS} rooms, {} memberships{}, {} \
         room messages; {path:?} is {:.1} MiB",
        ROOMS * MEMBERS_PER_ROOM,
        if with_reads {
            " with a read marker each"
        } else {
            ""
        },
        ROOMS * MESSAGES_PER_ROOM,
        size as f64 / (1024.0 * 1024.0),
    );

    for run in 1..=3 {
        let started = Instant::now();
        let (store, snapshot) = Store::open_keeping(&dir, LOBBY_HISTORY, ROOM_HISTORY).unwrap();
        let opened = started.elapsed();
        let read = {
            let started = Instant::now();
            let again = read_guarded(store.db.as_ref().unwrap(), &path, store.keep).unwrap();
            let read = started.elapsed();
            assert_eq!(again.rooms.len(), ROOMS);
            read
        };
        let memberships: usize = snapshot.rooms.iter().map(|r| r.members.len()).sum();
        let messages: usize = snapshot.rooms.iter().map(|r| r.messages.len()).sum();
        assert_eq!(snapshot.names.len(), NAMES);
        assert_eq!(memberships, ROOMS * MEMBERS_PER_ROOM);
        assert_eq!(messages, ROOMS * MESSAGES_PER_ROOM);
        let dropping = Instant::now();
        drop((store, snapshot));
        println!(
            "run {run}: open {} (check, read, open for writing); the read alone {}; \
             dropping the snapshot {}",
            ms(opened),
            ms(read),
            ms(dropping.elapsed()),
        );
    }
}

fn ms(elapsed: Duration) -> String {
    format!("{} ms", elapsed.as_millis())
}
