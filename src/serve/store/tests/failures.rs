//! The store's unit tests of failed writes and crashes, in rooms too.

use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::StorageBackend;

use super::super::*;
use super::rooms::{apply, open, room, say, seqs, texts};
use super::write;

/// A store's file whose writes fail while `failing` is set, as on a full
/// disk.
#[derive(Debug)]
struct Failing {
    file: redb::backends::FileBackend,
    failing: Arc<AtomicBool>,
}

impl Failing {
    fn check(&self) -> Result<(), redb::BackendError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(io::Error::other("no space left (a test)").into());
        }
        Ok(())
    }
}

impl StorageBackend for Failing {
    fn len(&self) -> Result<u64, redb::BackendError> {
        self.file.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), redb::BackendError> {
        self.file.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), redb::BackendError> {
        self.check()?;
        self.file.set_len(len)
    }
    fn sync_data(&self) -> Result<(), redb::BackendError> {
        self.check()?;
        self.file.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), redb::BackendError> {
        self.check()?;
        self.file.write(offset, data)
    }
    fn close(&self) -> Result<(), redb::BackendError> {
        self.file.close()
    }
}

#[test]
fn a_failed_batch_leaves_no_gap_in_any_room() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    apply(&mut store, vec![room("#a", None)]);
    drop(store.db.take());
    let failing = Arc::new(AtomicBool::new(false));
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&store.path)
        .unwrap();
    let backend = Failing {
        file: redb::backends::FileBackend::new(file),
        failing: failing.clone(),
    };
    store.db = Some(Database::builder().create_with_backend(backend).unwrap());
    let answers = store.commit(&[say(1, Some("#a"), "a1", false)]);
    assert_eq!(seqs(&answers.unwrap()), [Ok(1)]);

    failing.store(true, Ordering::SeqCst);
    let batch = [
        say(1, Some("#a"), "lost", false),
        say(2, None, "lost too", false),
        write(3, room("#b", None)),
    ];
    assert!(store.commit(&batch).is_err());
    failing.store(false, Ordering::SeqCst);
    // Opened again from its file, as after any failed commit.
    let answers = store.commit(&[say(1, Some("#a"), "a2", false), say(2, None, "l1", false)]);
    assert_eq!(seqs(&answers.unwrap()), [Ok(2), Ok(1)]);
    drop(store);
    let (_store, snapshot) = open(dir.path());
    let keys: Vec<&str> = snapshot.rooms.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["#a"]);
    assert_eq!(texts(&snapshot.rooms[0].messages), [(1, "a1"), (2, "a2")]);
    assert_eq!(texts(&snapshot.messages), [(1, "l1")]);
}

/// Where [`a_crash_loses_nothing_acknowledged_in_any_room`]'s child writes.
const CRASH_DIR: &str = "WSCHAT_STORE_CRASH_DIR";

/// The child of [`a_crash_loses_nothing_acknowledged_in_any_room`]: says
/// messages in two rooms and the lobby, in batches, until it is killed,
/// printing each one's `seq` once it is committed. Does nothing when run
/// by itself.
#[test]
#[ignore = "run by a_crash_loses_nothing_acknowledged_in_any_room"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR) else {
        return;
    };
    let (mut store, snapshot) = Store::open_keeping(Path::new(&dir), 100_000, 100_000).unwrap();
    if snapshot.rooms.is_empty() {
        apply(&mut store, vec![room("#a", None), room("@a\nb", None)]);
    }
    let rooms = [Some("#a"), Some("@a\nb"), None];
    let mut out = io::stdout().lock();
    for n in 0u64.. {
        let batch: Vec<Request> = (0..1 + n % 7)
            .map(|i| {
                let room = rooms[((n + i) % 3) as usize];
                say(i, room, &format!("{}-{n}-{i}", std::process::id()), false)
            })
            .collect();
        let answers = store.commit(&batch).unwrap();
        for (request, seq) in batch.iter().zip(seqs(&answers)) {
            let Request::Append(_, append) = request else {
                unreachable!()
            };
            let room = append
                .room
                .as_deref()
                .unwrap_or("#lobby")
                .replace('\n', "|");
            writeln!(out, "acked {room} {} {}", seq.unwrap(), append.text).unwrap();
        }
        out.flush().unwrap();
    }
}

#[test]
fn a_crash_loses_nothing_acknowledged_in_any_room() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: Vec<(String, u64, String)> = Vec::new();
    for round in 0..6 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "serve::store::tests::failures::crash_child"])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env(CRASH_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let wanted = 40 + round * 37;
        for line in lines.map_while(Result::ok) {
            let Some(said) = line.strip_prefix("acked ") else {
                continue;
            };
            let mut fields = said.splitn(3, ' ');
            let (room, seq, text) = (fields.next(), fields.next(), fields.next());
            let (Some(room), Some(seq), Some(text)) = (room, seq, text) else {
                panic!("{line}")
            };
            acked.push((
                room.replace('|', "\n"),
                seq.parse().unwrap(),
                text.to_owned(),
            ));
            if acked.len() >= wanted * (round + 1) {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL, in the middle of a commit or not
        child.wait().unwrap();
    }

    let (_store, snapshot) = Store::open_keeping(dir.path(), 100_000, 100_000).unwrap();
    let mut held: Vec<(String, u64, String)> = snapshot
        .messages
        .iter()
        .map(|m| ("#lobby".to_owned(), m.seq, m.text.clone()))
        .collect();
    for room in &snapshot.rooms {
        let seqs: Vec<u64> = room.messages.iter().map(|m| m.seq).collect();
        let numbered: Vec<u64> = (1..=room.last_seq).collect();
        assert_eq!(seqs, numbered, "{}: no gap", room.key);
        held.extend(
            room.messages
                .iter()
                .map(|m| (room.key.clone(), m.seq, m.text.clone())),
        );
    }
    for message in &acked {
        assert!(
            held.contains(message),
            "{message:?} acknowledged, then lost"
        );
    }
    assert!(acked.len() >= 6 * 40);
}
