//! The embedded store: names, secrets (hashed), the latest messages and the
//! `seq` counter of the lobby and of every room, memberships, bans, invites
//! and read markers in one redb file, so that a restart forgets nothing.
//!
//! One thread owns the database. It takes every write the core task has
//! queued, applies them all in one transaction and commits it (fsync'd)
//! before reporting their outcomes, so durability costs one fsync per batch,
//! not per message. It numbers appended messages itself, from the counter it
//! commits with them (one per room): a batch that fails leaves no gap in the
//! numbering.
//!
//! Nothing unreadable is ever overwritten: a store that cannot be opened
//! (not a directory, not readable, damaged, written by a newer wschat, a
//! symbolic link, or held by another running chat-server) stops
//! chat-server before it serves, with one line naming the path, the
//! problem and what to do, and leaves the file as it was (a damaged store
//! is found by a check that writes nothing: see `check`). A start that
//! fails removes what it created (see `files`).

mod apply;
mod check;
mod files;
mod load;
#[cfg(test)]
mod startup;
mod tables;
#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use redb::backends::FileBackend;
use redb::{Database, DatabaseError, ReadableTable};
use smol::channel::{Receiver, Sender};
use tracing::{info, warn};

use self::apply::{Keep, Tables};
use self::tables::META_TEXT;
use super::metrics::Metrics;
use super::readiness::{Check, Readiness};
use super::seam::Reply;
use crate::id;
use crate::server::{Answer, Failed, Request, Snapshot};

/// The store's file in the data directory.
pub const FILE_NAME: &str = "wschat.redb";

/// The layout of the tables (see `tables`); a store with a higher one was
/// written by a newer wschat and is not touched, one with a lower one is
/// brought up to it when opened.
const FORMAT: u64 = 2;

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
    /// Boxed: a `Store` waits in an enum of the start-up's (`Backend`).
    pub(crate) path: Box<Path>,
    /// `None` after a failed commit, until it is opened again: redb refuses
    /// every transaction after an I/O error until then.
    db: Option<Database>,
    /// The lobby's.
    last_seq: u64,
    keep: Keep,
}

impl Store {
    /// [`Store::open_keeping`], keeping as many of each room's messages as
    /// `Config`'s default `room_history`.
    #[cfg(test)]
    pub(crate) fn open(dir: &Path, history_size: usize) -> Result<(Store, Snapshot), StoreError> {
        let room_history = crate::Config::default().room_history;
        Store::open_keeping(dir, history_size, room_history)
    }

    /// Opens the store in `dir` (created, owner-only, if missing), keeping
    /// the lobby's latest `history_size` messages and each room's latest
    /// `room_history`, and reads what it holds. A store that exists is
    /// checked whole before anything writes to it (see `check`), then
    /// brought up to this [`FORMAT`]; what this call created is removed if
    /// it fails.
    pub(crate) fn open_keeping(
        dir: &Path,
        history_size: usize,
        room_history: usize,
    ) -> Result<(Store, Snapshot), StoreError> {
        let keep = Keep {
            lobby: history_size,
            room: room_history,
        };
        // Messages name the directory wherever chat-server was started.
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        let mut created = files::Created::default();
        files::data_dir(&dir, &mut created)?;
        let path = dir.join(FILE_NAME);
        let (file, new) = files::store_file(&path, &mut created)?;
        let (db, snapshot) = if new {
            let db = open_database(&path, FileBackend::new(file), false)?;
            initialise(&db).map_err(|e| unreadable(&path, e))?;
            let snapshot = read_guarded(&db, &path, keep)?;
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
            let snapshot = read_guarded(&checked, &path, keep)?;
            check::without_panicking(|| drop(checked)).map_err(|said| damaged(&path, &said))?;
            let db = open_database(&path, FileBackend::new(file), false)?;
            upgrade(&db).map_err(|e| unreadable(&path, e))?;
            (db, snapshot)
        };
        created.keep();
        let store = Store {
            path: path.into(),
            db: Some(db),
            last_seq: snapshot.last_seq,
            keep,
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
            let mut tables = Tables::open(&tx)?;
            for request in batch {
                answers.push(match request {
                    Request::Write(ticket, write) => {
                        tables.write(write)?;
                        ticket.answer(Ok(()))
                    }
                    Request::Append(ticket, append) => {
                        ticket.answer(tables.append(append, &mut last_seq, self.keep)?)
                    }
                    // Only a cluster's core asks these, of its shared store.
                    Request::Reserve(..) | Request::Disconnect(..) | Request::Online(_) => {
                        request.fail(Failed("the embedded store decides no names".into()))
                    }
                });
            }
            tables.meta.insert("last_seq", last_seq)?;
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

/// A new store: its format, every table and a fresh epoch, committed at
/// once.
fn initialise(db: &Database) -> Result<(), redb::Error> {
    let mut rng = StdRng::try_from_rng(&mut SysRng)
        .map_err(|e| redb::Error::Io(io::Error::other(e.to_string())))?;
    let epoch = id::epoch(&mut rng);
    let tx = db.begin_write()?;
    {
        let mut tables = Tables::open(&tx)?;
        tables.meta.insert("format", FORMAT)?;
        tables.meta.insert("last_seq", 0)?;
        tx.open_table(META_TEXT)?.insert("epoch", epoch.as_str())?;
    }
    tx.commit()?;
    Ok(())
}

/// A store of an older format (read already) gets the tables it lacks and
/// this [`FORMAT`]; no row of it changes.
fn upgrade(db: &Database) -> Result<(), redb::Error> {
    let tx = db.begin_write()?;
    {
        let mut tables = Tables::open(&tx)?;
        let format = tables.meta.get("format")?.map(|format| format.value());
        if format == Some(FORMAT) {
            return Ok(()); // dropping `tx` aborts it: nothing was written
        }
        tables.meta.insert("format", FORMAT)?;
    }
    tx.commit()?;
    Ok(())
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

/// [`load::read`], with a panic inside redb reported as damage.
fn read_guarded(db: &Database, path: &Path, keep: Keep) -> Result<Snapshot, StoreError> {
    check::without_panicking(|| load::read(db, path, keep)).map_err(|said| damaged(path, &said))?
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
