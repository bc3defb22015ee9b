//! The data directory and the store's file: made private, never through a
//! symbolic link, and removed again if this start created them and then
//! failed.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tracing::warn;

use super::StoreError;

/// What this start created, removed again when dropped unless
/// [`Created::keep`] was called: a start that fails leaves nothing behind.
#[derive(Debug, Default)]
pub(super) struct Created {
    /// Directories made, the outermost first.
    dirs: Vec<PathBuf>,
    file: Option<PathBuf>,
}

impl Created {
    /// Everything stays: the start went on.
    pub(super) fn keep(mut self) {
        self.dirs.clear();
        self.file = None;
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            let _ = fs::remove_file(file);
        }
        // Only when empty: nothing but what was made here is removed.
        for dir in self.dirs.drain(..).rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Makes sure `dir` is a directory (created if missing) readable by its
/// owner only, without following a symbolic link at its end.
pub(super) fn data_dir(dir: &Path, created: &mut Created) -> Result<(), StoreError> {
    let failed = |tried, error| StoreError::Io {
        tried,
        path: dir.to_owned(),
        error,
    };
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => Err(StoreError::SymbolicLink {
            what: "data directory",
            path: dir.to_owned(),
        }),
        Ok(meta) if !meta.is_dir() => Err(StoreError::NotADirectory(dir.to_owned())),
        Ok(_) => {
            // Opened, not named again: what is made private is what was
            // looked at, even if a link took its place meanwhile.
            let opened = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
                .open(dir)
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::ELOOP) => StoreError::SymbolicLink {
                        what: "data directory",
                        path: dir.to_owned(),
                    },
                    _ => failed("open the data directory", e),
                })?;
            private(&opened, dir, 0o700).map_err(|e| failed("make private the data directory", e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut missing: Vec<PathBuf> = dir
                .ancestors()
                .take_while(|a| {
                    !a.as_os_str().is_empty()
                        && matches!(fs::symlink_metadata(a), Err(e) if e.kind() == io::ErrorKind::NotFound)
                })
                .map(Path::to_owned)
                .collect();
            missing.reverse();
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| failed("create the data directory", e))?;
            created.dirs = missing;
            Ok(())
        }
        Err(e) => Err(failed("look at the data directory", e)),
    }
}

/// The store's file at `path`, open for reading and writing and readable
/// by its owner only, and whether it was created (empty) here. A symbolic
/// link is refused, not followed.
pub(super) fn store_file(path: &Path, created: &mut Created) -> Result<(File, bool), StoreError> {
    let failed = |tried, error| StoreError::Io {
        tried,
        path: path.to_owned(),
        error,
    };
    let link = || StoreError::SymbolicLink {
        what: "store",
        path: path.to_owned(),
    };
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW);
    match options.open(path) {
        Ok(file) => {
            let meta = file
                .metadata()
                .map_err(|e| failed("look at the store", e))?;
            if !meta.is_file() {
                return Err(StoreError::Unreadable {
                    path: path.to_owned(),
                    detail: "not a regular file".into(),
                });
            }
            private(&file, path, 0o600).map_err(|e| failed("make private the store", e))?;
            Ok((file, false))
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(link()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Created empty and private; redb initialises an empty file.
            let file = options
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| match e.kind() {
                    // A link to nowhere: create_new does not follow it.
                    io::ErrorKind::AlreadyExists => link(),
                    _ => failed("create the store", e),
                })?;
            created.file = Some(path.to_owned());
            Ok((file, true))
        }
        Err(e) => Err(failed("open the store", e)),
    }
}

/// Makes `file` (at `path`) readable by its owner only, if it is not
/// already.
fn private(file: &File, path: &Path, mode: u32) -> io::Result<()> {
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        warn!(path = %path.display(), "made private (it was readable by others)");
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_failed_start_created_is_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("new/nested/data");
        let mut created = Created::default();
        data_dir(&data, &mut created).unwrap();
        let (_file, new) = store_file(&data.join("store"), &mut created).unwrap();
        assert!(new);
        drop(created);
        assert!(!dir.path().join("new").exists());
        assert!(dir.path().exists());

        let mut created = Created::default();
        data_dir(&data, &mut created).unwrap();
        store_file(&data.join("store"), &mut created).unwrap();
        created.keep();
        // Opened again: nothing of it is removed by a later failure.
        let mut again = Created::default();
        data_dir(&data, &mut again).unwrap();
        let (_file, new) = store_file(&data.join("store"), &mut again).unwrap();
        assert!(!new);
        drop(again);
        assert!(data.join("store").exists());
    }
}
