//! Checking a store before anything writes to it.
//!
//! redb trusts the file it opens: a plain open of a damaged file may panic
//! inside it (an `unreachable!` in a b-tree page it decodes, an unwrap of
//! a UTF-8 key), and even a clean open writes to the file (it marks it as
//! in use, so that a crash is repaired). So the store is first opened with
//! redb's full check (every page's checksum, the allocator state rebuilt)
//! over [`Scratch`], which reads the file and keeps every write in memory:
//! the file is not changed by the check, whatever it finds. Only once the
//! check and the read of everything the core starts from have passed is the
//! file opened for writing.
//!
//! The check catches redb's panics ([`without_panicking`]) as a last
//! resort: redb documents that its check reports a damaged file where a
//! plain open may panic, but it decodes pages with `unreachable!` and
//! `unwrap`, and a panic would stop chat-server with a backtrace instead of
//! one line. Nothing of a database that panicked is used afterwards.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fs::File;
use std::ops::Bound;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, Once};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// The unit of [`Scratch`]'s copies: redb's page size.
const BLOCK: u64 = 4096;

/// A store's file, read as it is, with every write kept in memory: what
/// redb's check and repair write never reaches the file. File locks are
/// taken on the file, so a store that another chat-server holds is
/// refused as in use, and none can write while this reads.
#[derive(Debug)]
pub(super) struct Scratch {
    file: FileBackend,
    state: Mutex<Written>,
}

#[derive(Debug)]
struct Written {
    /// The length as redb sees it.
    len: u64,
    /// Bytes from here on are not the file's (it was shortened, then
    /// grown again): zeros, unless written.
    file_len: u64,
    /// Blocks written, whole: block number → bytes.
    blocks: HashMap<u64, Vec<u8>>,
}

impl Scratch {
    pub(super) fn new(file: File) -> std::io::Result<Scratch> {
        let len = file.metadata()?.len();
        Ok(Scratch {
            file: FileBackend::new(file),
            state: Mutex::new(Written {
                len,
                file_len: len,
                blocks: HashMap::new(),
            }),
        })
    }

    fn written(&self) -> std::sync::MutexGuard<'_, Written> {
        // A panic while holding it leaves whole blocks behind: still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `out.len()` bytes at `offset`, within one block, as written.
    fn read_block(
        &self,
        written: &Written,
        offset: u64,
        out: &mut [u8],
    ) -> Result<(), BackendError> {
        let block = offset / BLOCK;
        if let Some(bytes) = written.blocks.get(&block) {
            let start = (offset % BLOCK) as usize;
            out.copy_from_slice(&bytes[start..start + out.len()]);
            return Ok(());
        }
        out.fill(0);
        let from_file = written
            .file_len
            .saturating_sub(offset)
            .min(out.len() as u64) as usize;
        if from_file > 0 {
            self.file.read(offset, &mut out[..from_file])?;
        }
        Ok(())
    }
}

impl StorageBackend for Scratch {
    fn len(&self) -> Result<u64, BackendError> {
        Ok(self.written().len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BackendError> {
        let written = self.written();
        let end = offset.checked_add(out.len() as u64);
        if end.is_none_or(|end| end > written.len) {
            return Err(BackendError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end of the store",
            )));
        }
        let mut done = 0;
        while done < out.len() {
            let at = offset + done as u64;
            let n = ((BLOCK - at % BLOCK) as usize).min(out.len() - done);
            self.read_block(&written, at, &mut out[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), BackendError> {
        let mut written = self.written();
        if len < written.len {
            written.blocks.retain(|block, _| block * BLOCK < len);
            let cut = (len % BLOCK) as usize;
            if let Some(bytes) = written.blocks.get_mut(&(len / BLOCK)) {
                bytes[cut..].fill(0);
            }
            written.file_len = written.file_len.min(len);
        }
        written.len = len;
        Ok(())
    }

    fn sync_data(&self) -> Result<(), BackendError> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        let mut written = self.written();
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let block = at / BLOCK;
            let start = (at % BLOCK) as usize;
            let n = (BLOCK as usize - start).min(data.len() - done);
            if !written.blocks.contains_key(&block) {
                let mut bytes = vec![0; BLOCK as usize];
                self.read_block(&written, block * BLOCK, &mut bytes)?;
                written.blocks.insert(block, bytes);
            }
            let bytes = written.blocks.get_mut(&block).expect("inserted above");
            bytes[start..start + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        written.len = written.len.max(offset + data.len() as u64);
        Ok(())
    }

    fn close(&self) -> Result<(), BackendError> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

thread_local! {
    /// Set while [`without_panicking`] runs on this thread.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// What the last panic caught on this thread said.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

static QUIET_HOOK: Once = Once::new();

/// Runs `f`; a panic inside it is returned as what it said (and where),
/// instead of being printed and unwinding further. Panics elsewhere, on
/// other threads or outside `f`, go to the hook that was there before.
pub(super) fn without_panicking<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    QUIET_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.get() {
                let said = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                let at = info.location().map(|l| {
                    let file = l.file().rsplit('/').next().unwrap_or(l.file());
                    format!(" at {file}:{}", l.line())
                });
                CAUGHT.set(Some(format!("{said}{}", at.unwrap_or_default())));
            } else {
                previous(info);
            }
        }));
    });
    let was = CATCHING.replace(true);
    // Nothing `f` touched is used after a panic: unwind safety holds.
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.set(was);
    result.map_err(|_| CAUGHT.take().unwrap_or_else(|| "a panic".into()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn scratch_writes_never_reach_the_file() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let original: Vec<u8> = (0..3 * BLOCK + 100).map(|i| i as u8).collect();
        file.write_all(&original).unwrap();
        let scratch = Scratch::new(file.reopen().unwrap()).unwrap();
        scratch.write(BLOCK - 2, &[9; 4]).unwrap();
        let mut out = [0; 6];
        scratch.read(BLOCK - 3, &mut out).unwrap();
        assert_eq!(
            out,
            [
                original[BLOCK as usize - 3],
                9,
                9,
                9,
                9,
                original[BLOCK as usize + 2]
            ]
        );
        // Shortened, then grown: zeros where the file's bytes were.
        scratch.set_len(BLOCK + 1).unwrap();
        scratch.set_len(2 * BLOCK).unwrap();
        let mut tail = [1; 8];
        scratch.read(BLOCK, &mut tail).unwrap();
        assert_eq!(tail, [9, 0, 0, 0, 0, 0, 0, 0]);
        assert!(scratch.read(2 * BLOCK - 1, &mut [0; 2]).is_err());
        assert_eq!(std::fs::read(file.path()).unwrap(), original);
    }

    #[test]
    fn a_panic_is_caught_quietly_with_what_it_said() {
        let said = without_panicking(|| -> u8 { panic!("boom {}", 1) }).unwrap_err();
        assert!(said.starts_with("boom 1 at check.rs:"), "{said}");
        assert_eq!(without_panicking(|| 7), Ok(7));
    }
}
