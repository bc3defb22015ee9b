//! The embedded store: names, secrets (hashed), the latest messages and the
//! `seq` counter in one redb file, so that a restart forgets nothing.
//!
//! One thread owns the database. It takes every write the core task has
//! queued, applies them all in one transaction and commits it (fsync'd)
//! before reporting their outcomes, so durability costs one fsync per batch,
//! not per message. It numbers appended messages itself, from the counter it
//! commits with them: a batch that fails leaves no gap in the numbering.
//!
//! Nothing unreadable is ever overwritten: a store that cannot be opened
//! (not a directory, not readable, damaged, written by a newer wschat, a
//! symbolic link, or held by another running chat-server) stops
//! chat-server before it serves, with one line naming the path, the
//! problem and what to do, and leaves the file as it was (a damaged store
//! is found by a check that writes nothing: see `check`). A start that
//! fails removes what it created (see `files`).

mod check;
mod files;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use redb::backends::FileBackend;
use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition};
use smol::channel::{Receiver, Sender};
use tracing::{info, warn};

use super::metrics::Metrics;
use super::readiness::{Check, Readiness};
use super::seam::Reply;
use crate::id;
use crate::server::{
    Answer, Failed, Request, SecretHash, Snapshot, StoredMessage, StoredName, Write,
};

/// The store's file in the data directory.
pub const FILE_NAME: &str = "wschat.redb";

/// The layout of the tables below; a store with a higher one was written by
/// a newer wschat and is not touched.
const FORMAT: u64 = 1;

/// `format`, `last_seq`, `alive_at`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// `epoch`.
const META_TEXT: TableDefinition<&str, &str> = TableDefinition::new("meta_text");
/// Key → (display, SHA-256 of the secret, expiry in ms since the Unix
/// epoch, or 0 while a connection holds the name).
const NAMES: TableDefinition<&str, (&str, &[u8], u64)> = TableDefinition::new("names");
/// `seq` → (id, timestamp, username, text).
const MESSAGES: TableDefinition<u64, (&str, u64, &str, &str)> = TableDefinition::new("messages");

/// Writes taken into one transaction at most.
const MAX_BATCH: usize = 4096;

/// redb's page cache: the data of a chat (a thousand messages, a hundred
/// thousand names) fits; the default (1 GiB) would be an idle server's
/// largest cost.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// What to do when the data directory cannot be used.
const TRY_ANOTHER: &str = "give one it may create and write with --data-dir DIR, or keep nothing on disk with --in-memory";

/// Why the store could not be opened. Each names the path, and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("data directory {0}: not a directory; {TRY_ANOTHER}")]
    NotADirectory(PathBuf),
    #[error(
        "{what} {path}: a symbolic link, not followed (what it points to would be made \
         private, or written); put the real one in its place, or give the real directory as \
         --data-dir DIR"
    )]
    SymbolicLink { what: &'static str, path: PathBuf },
    /// The operating system's error is part of the message (one line),
    /// hence no `source`.
    #[error("cannot {tried} {path}: {error}; {TRY_ANOTHER}")]
    Io {
        /// What was tried: "create the data directory", ….
        tried: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error(
        "store {0}: in use by another running chat-server; stop it, or give this one another \
         --data-dir DIR"
    )]
    Locked(PathBuf),
    #[error(
        "store {path}: written by a newer wschat (format {found}; this one reads {FORMAT}); \
         not touched"
    )]
    Newer { path: PathBuf, found: u64 },
    #[error("store {path}: cannot be read ({detail}); not touched: move it away to start afresh")]
    Unreadable { path: PathBuf, detail: String },
}

/// An open store: its writer thread, fed through `writes`.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) path: PathBuf,
    /// `None` after a failed commit, until it is opened again: redb refuses
    /// every transaction after an I/O error until then.
    db: Option<Database>,
    last_seq: u64,
    history_size: usize,
}

impl Store {
    /// Opens the store in `dir` (created, owner-only, if missing), keeping
    /// the latest `history_size` messages, and reads what it holds. A
    /// store that exists is checked whole before anything writes to it
    /// (see `check`); what this call created is removed if it fails.
    pub(crate) fn open(dir: &Path, history_size: usize) -> Result<(Store, Snapshot), StoreError> {
        // Messages name the directory wherever chat-server was started.
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        let mut created = files::Created::default();
        files::data_dir(&dir, &mut created)?;
        let path = dir.join(FILE_NAME);
        let (file, new) = files::store_file(&path, &mut created)?;
        let (db, snapshot) = if new {
            let db = open_database(&path, FileBackend::new(file), false)?;
            initialise(&db).map_err(|e| unreadable(&path, e))?;
            let snapshot = read_guarded(&db, &path, history_size)?;
            (db, snapshot)
        } else {
            let copy = file.try_clone().map_err(|error| StoreError::Io {
                tried: "open the store",
                path: path.clone(),
                error,
            })?;
            let scratch = check::Scratch::new(copy).map_err(|error| StoreError::Io {
                tried: "look at the store",
                path: path.clone(),
                error,
            })?;
            let checked = open_database(&path, scratch, true)?;
            let snapshot = read_guarded(&checked, &path, history_size)?;
            check::without_panicking(|| drop(checked)).map_err(|said| damaged(&path, &said))?;
            (
                open_database(&path, FileBackend::new(file), false)?,
                snapshot,
            )
        };
        created.keep();
        let store = Store {
            path,
            db: Some(db),
            last_seq: snapshot.last_seq,
            history_size,
        };
        Ok((store, snapshot))
    }

    /// Runs the writer on a thread of its own until `writes` is closed and
    /// drained; each batch's outcomes go to `outcomes`. Returns the thread,
    /// to join (everything queued is committed before it ends). Each
    /// commit's time goes to `metrics`; while commits fail, and once the
    /// thread has ended, `readiness` says the store is not saving.
    pub(crate) fn spawn(
        self,
        writes: Receiver<Vec<Request>>,
        outcomes: Sender<Vec<Reply>>,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
    ) -> io::Result<thread::JoinHandle<()>> {
        thread::Builder::new()
            .name("chat-store".into())
            .spawn(move || {
                // On every way out, a panic included.
                let _stopped = Stopped(&readiness);
                self.run(writes, outcomes, &metrics, &readiness)
            })
    }

    fn run(
        mut self,
        writes: Receiver<Vec<Request>>,
        outcomes: Sender<Vec<Reply>>,
        metrics: &Metrics,
        readiness: &Readiness,
    ) {
        let mut failing = false;
        while let Ok(mut batch) = writes.recv_blocking() {
            while batch.len() < MAX_BATCH {
                match writes.try_recv() {
                    Ok(more) => batch.extend(more),
                    Err(_) => break,
                }
            }
            let started = Instant::now();
            let result = self.commit(&batch);
            metrics.store_committed(started.elapsed());
            match (&result, failing) {
                (Err(e), false) => {
                    warn!(store = %self.path.display(), "cannot save: {e}; logins and messages \
                          are refused until saving works again");
                    readiness.fail(Check::Store, format!("the store cannot save: {e}"));
                    failing = true;
                }
                (Ok(_), true) => {
                    info!(store = %self.path.display(), "saving works again");
                    readiness.pass(Check::Store);
                    failing = false;
                }
                _ => {}
            }
            tracing::trace!(writes = batch.len(), elapsed = ?started.elapsed(), "committed");
            let outcomes_of_batch: Vec<Reply> = match result {
                Ok(answers) => answers.into_iter().map(Reply::Answer).collect(),
                Err(e) => {
                    let error = Failed(e.to_string());
                    batch
                        .iter()
                        .map(|request| Reply::Answer(request.fail(error.clone())))
                        .collect()
                }
            };
            // The core task is gone at shutdown: nothing is left to answer.
            let _ = outcomes.send_blocking(outcomes_of_batch);
        }
    }

    /// Applies `batch` in one transaction; the answer to each request (an
    /// append's gives its `seq`). After a failure the database is closed,
    /// and opened again (repaired if need be) for the next batch.
    fn commit(&mut self, batch: &[Request]) -> Result<Vec<Answer>, redb::Error> {
        let db = match self.db.take() {
            Some(db) => db,
            None => Database::builder()
                .set_cache_size(CACHE_BYTES)
                .open(&self.path)?,
        };
        let result = self.commit_to(&db, batch);
        if result.is_ok() {
            self.db = Some(db);
        }
        result
    }

    fn commit_to(&mut self, db: &Database, batch: &[Request]) -> Result<Vec<Answer>, redb::Error> {
        let tx = db.begin_write()?;
        let mut last_seq = self.last_seq;
        let mut answers = Vec::with_capacity(batch.len());
        {
            let mut meta = tx.open_table(META)?;
            let mut names = tx.open_table(NAMES)?;
            let mut messages = tx.open_table(MESSAGES)?;
            for request in batch {
                let answer =
                    match request {
                        Request::Write(ticket, write) => {
                            match write {
                                Write::Claim {
                                    key,
                                    display,
                                    secret,
                                } => {
                                    names.insert(&**key, (&**display, &secret.0[..], 0))?;
                                }
                                Write::InUse { key } => set_expiry(&mut names, key, 0)?,
                                Write::Idle { key, expires_at } => {
                                    // 0 means "in use": an instant that old is past anyway.
                                    set_expiry(&mut names, key, (*expires_at).max(1))?;
                                }
                                Write::Release { key } => {
                                    names.remove(&**key)?;
                                }
                                Write::Alive { at } => {
                                    meta.insert("alive_at", *at)?;
                                }
                                // Only a cluster's core asks this, of its shared store.
                                Write::Logout { .. } => {}
                                // v3: rooms are not kept yet.
                                Write::Room { .. }
                                | Write::Member { .. }
                                | Write::Unmember { .. }
                                | Write::Ban { .. }
                                | Write::Unban { .. }
                                | Write::Invite { .. }
                                | Write::Uninvite { .. }
                                | Write::Read { .. }
                                | Write::DropRoom { .. } => {
                                    answers.push(ticket.answer(Err(Failed(
                                        "this store keeps no rooms yet".into(),
                                    ))));
                                    continue;
                                }
                            }
                            ticket.answer(Ok(()))
                        }
                        Request::Append(ticket, append) if append.room.is_some() => {
                            ticket.answer(Err(Failed("this store keeps no rooms yet".into())))
                        }
                        Request::Append(ticket, append) => {
                            last_seq += 1;
                            let message = (
                                &*append.id,
                                append.timestamp,
                                &*append.username,
                                &*append.text,
                            );
                            messages.insert(last_seq, message)?;
                            if let Some(old) = last_seq.checked_sub(self.history_size as u64) {
                                messages.remove(old)?;
                            }
                            ticket.answer(Ok(last_seq))
                        }
                        // Only a cluster's core asks these, of its shared store.
                        Request::Reserve(..) | Request::Disconnect(..) | Request::Online(_) => {
                            request.fail(Failed("the embedded store decides no names".into()))
                        }
                    };
                answers.push(answer);
            }
            meta.insert("last_seq", last_seq)?;
        }
        tx.commit()?;
        self.last_seq = last_seq;
        Ok(answers)
    }
}

/// Marks the store as not saving when the writer's thread ends.
struct Stopped<'r>(&'r Readiness);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.fail(Check::Store, "the store has stopped");
    }
}

/// Sets the expiry of `key`, if it is still reserved (its claim may have
/// failed to be saved).
fn set_expiry(
    names: &mut redb::Table<&str, (&str, &[u8], u64)>,
    key: &str,
    expires_at: u64,
) -> Result<(), redb::Error> {
    let entry = names.get(key)?.map(|guard| {
        let (display, secret, _) = guard.value();
        (display.to_owned(), secret.to_vec())
    });
    if let Some((display, secret)) = entry {
        names.insert(key, (display.as_str(), secret.as_slice(), expires_at))?;
    }
    Ok(())
}

/// A new store: its format and a fresh epoch, committed at once.
fn initialise(db: &Database) -> Result<(), redb::Error> {
    let mut rng = StdRng::try_from_rng(&mut SysRng)
        .map_err(|e| redb::Error::Io(io::Error::other(e.to_string())))?;
    let epoch = id::epoch(&mut rng);
    let tx = db.begin_write()?;
    {
        let mut meta = tx.open_table(META)?;
        meta.insert("format", FORMAT)?;
        meta.insert("last_seq", 0)?;
        tx.open_table(META_TEXT)?.insert("epoch", epoch.as_str())?;
        tx.open_table(NAMES)?;
        tx.open_table(MESSAGES)?;
    }
    tx.commit()?;
    Ok(())
}

/// Everything the core starts from.
fn read(db: &Database, path: &Path, history_size: usize) -> Result<Snapshot, StoreError> {
    let unreadable = |detail: String| match detail.strip_prefix("DB corrupted: ") {
        Some(what) => damaged(path, what),
        None => StoreError::Unreadable {
            path: path.to_owned(),
            detail,
        },
    };
    let tx = db.begin_read().map_err(|e| unreadable(e.to_string()))?;
    let meta = tx
        .open_table(META)
        .map_err(|_| unreadable("not a wschat store: it has no meta table".into()))?;
    let number = |name: &str| -> Result<Option<u64>, StoreError> {
        let value = meta.get(name).map_err(|e| unreadable(e.to_string()))?;
        Ok(value.map(|v| v.value()))
    };
    match number("format")? {
        Some(FORMAT) => {}
        Some(found) if found > FORMAT => {
            return Err(StoreError::Newer {
                path: path.to_owned(),
                found,
            });
        }
        found => return Err(unreadable(format!("unknown format {found:?}"))),
    }
    let last_seq = number("last_seq")?.unwrap_or(0);
    let alive_at = number("alive_at")?;
    let epoch = tx
        .open_table(META_TEXT)
        .and_then(|t| Ok(t.get("epoch")?.map(|e| e.value().to_owned())))
        .map_err(|e| unreadable(e.to_string()))?
        .ok_or_else(|| unreadable("it has no epoch".into()))?;
    let read_all = || -> Result<(Vec<StoredName>, Vec<StoredMessage>), redb::Error> {
        let mut names = Vec::new();
        for entry in tx.open_table(NAMES)?.iter()? {
            let (key, value) = entry?;
            let (display, secret, expires_at) = value.value();
            let Ok(secret) = <[u8; 32]>::try_from(secret) else {
                continue; // not a SHA-256: not a secret anyone can give
            };
            names.push(StoredName {
                key: key.value().to_owned(),
                display: display.to_owned(),
                secret: SecretHash(secret),
                expires_at: (expires_at != 0).then_some(expires_at),
            });
        }
        let first = last_seq.saturating_sub(history_size as u64) + 1;
        let mut messages = Vec::new();
        for entry in tx.open_table(MESSAGES)?.range(first..)? {
            let (seq, value) = entry?;
            let (id, timestamp, username, text) = value.value();
            messages.push(StoredMessage {
                seq: seq.value(),
                id: id.to_owned(),
                timestamp,
                username: username.to_owned(),
                text: text.to_owned(),
                notice: false,
            });
        }
        Ok((names, messages))
    };
    let (names, messages) = read_all().map_err(|e| unreadable(e.to_string()))?;
    Ok(Snapshot {
        epoch,
        last_seq,
        messages,
        names,
        alive_at,
        rooms: Vec::new(),
        reads: Vec::new(),
        left_lobby: Vec::new(),
    })
}

/// Opens a redb database on `backend` (the store at `path`), with redb's
/// whole check if `check` (see `check`).
fn open_database(
    path: &Path,
    backend: impl redb::StorageBackend,
    check: bool,
) -> Result<Database, StoreError> {
    let opened = check::without_panicking(|| {
        Database::builder()
            .set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(check)
            .create_with_backend(backend)
    })
    .map_err(|said| damaged(path, &said))?;
    opened.map_err(|e| match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            StoreError::Locked(path.to_owned())
        }
        DatabaseError::Storage(redb::StorageError::Io(error))
            if error.kind() != io::ErrorKind::InvalidData =>
        {
            StoreError::Io {
                tried: "read the store",
                path: path.to_owned(),
                error,
            }
        }
        DatabaseError::Storage(redb::StorageError::Corrupted(what)) => damaged(path, &what),
        other => unreadable(path, other.into()),
    })
}

/// [`read`], with a panic inside redb reported as damage.
fn read_guarded(db: &Database, path: &Path, history_size: usize) -> Result<Snapshot, StoreError> {
    check::without_panicking(|| read(db, path, history_size))
        .map_err(|said| damaged(path, &said))?
}

fn unreadable(path: &Path, e: redb::Error) -> StoreError {
    match e {
        redb::Error::Corrupted(what) => damaged(path, &what),
        e => StoreError::Unreadable {
            path: path.to_owned(),
            detail: e.to_string(),
        },
    }
}

fn damaged(path: &Path, what: &str) -> StoreError {
    StoreError::Unreadable {
        path: path.to_owned(),
        detail: format!("damaged: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use super::*;
    use crate::Config;
    use crate::server::{Append, Ticket};

    fn write(number: u64, write: Write) -> Request {
        Request::Write(Ticket::for_tests(number), write)
    }

    fn append(number: u64, text: &str) -> Request {
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
}
