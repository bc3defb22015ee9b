//! Files chat-cli keeps between runs, in the user's state directory
//! (`$XDG_STATE_HOME/wschat`, or `~/.local/state/wschat`): the saved login
//! secrets and the line history.

use std::env;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::client::SecretStore;

/// `$XDG_STATE_HOME/wschat`, or `~/.local/state/wschat` (the XDG default).
/// A relative `XDG_STATE_HOME` is ignored, as the spec says.
pub fn state_dir() -> Option<PathBuf> {
    let base = env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
        .or_else(|| {
            env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".local/state"))
        })?;
    Some(base.join("wschat"))
}

/// Why the secrets file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a secrets file chat-cli understands: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "{path} is readable by others (mode {mode:04o}) and could not be made private: {source}"
    )]
    Loose {
        path: PathBuf,
        mode: u32,
        source: io::Error,
    },
}

/// The file of saved login secrets: JSON, mode 0600, replaced atomically.
#[derive(Debug, Clone)]
pub struct SecretsFile {
    path: PathBuf,
}

impl SecretsFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SecretsFile { path: path.into() }
    }

    /// `secrets.json` in the state directory.
    pub fn in_state_dir() -> Option<Self> {
        state_dir().map(|dir| SecretsFile::new(dir.join("secrets.json")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved secrets; none yet if the file does not exist.
    pub fn load(&self) -> Result<SecretStore, StateError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(SecretStore::new()),
            Err(source) => {
                return Err(StateError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        SecretStore::parse(&bytes).map_err(|e| StateError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }

    /// Saves `secret` for (server, name). The file is read again first, so
    /// what another chat-cli saved meanwhile is kept. A corrupt file is
    /// moved aside to `secrets.json.corrupt` (and said so in the returned
    /// note) rather than lost or left blocking every later save.
    pub fn save(
        &self,
        server: &str,
        name: &str,
        secret: &str,
    ) -> Result<Option<String>, StateError> {
        self.update(|store| {
            store.set(server, name, secret);
            true
        })
    }

    /// Saves the epoch of the store `server` named, if it changed.
    pub fn save_epoch(&self, server: &str, epoch: &str) -> Result<Option<String>, StateError> {
        self.update(|store| store.set_epoch(server, epoch))
    }

    /// Reads the file, changes it with `change`, and writes it if `change`
    /// says it changed anything.
    fn update(
        &self,
        change: impl FnOnce(&mut SecretStore) -> bool,
    ) -> Result<Option<String>, StateError> {
        let mut note = None;
        let mut store = match self.load() {
            Ok(store) => store,
            Err(StateError::Corrupt { .. }) => {
                let aside = self.path.with_extension("json.corrupt");
                fs::rename(&self.path, &aside).map_err(|source| self.write_error(source))?;
                note = Some(format!(
                    "moved the unreadable {} aside to {}",
                    self.path.display(),
                    aside.display()
                ));
                SecretStore::new()
            }
            Err(e) => return Err(e),
        };
        if !change(&mut store) {
            return Ok(note);
        }
        self.write(store.to_json().as_bytes())
            .map_err(|source| self.write_error(source))?;
        Ok(note)
    }

    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let name = self
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("secrets.json");
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&temp); // left by a crash, perhaps
        let result = (|| {
            let mut file = create_private_file(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temp, &self.path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    fn write_error(&self, source: io::Error) -> StateError {
        StateError::Write {
            path: self.path.clone(),
            source,
        }
    }
}

/// The secret in the first line of `path` (`--secret-file`), without
/// surrounding whitespace.
pub fn read_secret_file(path: &Path) -> Result<String, StateError> {
    let text = fs::read_to_string(path).map_err(|source| StateError::Read {
        path: path.to_owned(),
        source,
    })?;
    let secret = text.lines().next().unwrap_or_default().trim();
    if secret.is_empty() {
        return Err(StateError::Corrupt {
            path: path.to_owned(),
            reason: "its first line is empty".into(),
        });
    }
    Ok(secret.to_owned())
}

/// Makes an existing state directory readable by the user alone (0700),
/// so that the secrets and the history inside cannot be read by others
/// whatever their own modes. A note when it had to be tightened; an error
/// when it is too loose and could not be.
pub fn keep_private(dir: &Path) -> Result<Option<String>, StateError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match fs::metadata(dir) {
            Ok(meta) => meta.permissions().mode() & 0o777,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: dir.to_owned(),
                    source,
                });
            }
        };
        if mode & 0o077 == 0 {
            return Ok(None);
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|source| {
            StateError::Loose {
                path: dir.to_owned(),
                mode,
                source,
            }
        })?;
        Ok(Some(format!(
            "{} was readable by others (mode {mode:04o}); it is now 0700",
            dir.display()
        )))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(None)
    }
}

/// Where the line history is kept.
pub fn history_path() -> Option<PathBuf> {
    state_dir().map(|dir| dir.join("history"))
}

/// Creates `dir` (and its parents) readable by the user alone.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates a new file only the user can read and write (0600).
fn create_private_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_with_mode_0600_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = SecretsFile::new(dir.path().join("wschat/secrets.json"));
        assert_eq!(file.load().unwrap(), SecretStore::new());
        assert_eq!(file.save("ws://h:1", "alice", "s1").unwrap(), None);
        file.save("ws://h:1", "bob", "s2").unwrap();
        let store = file.load().unwrap();
        assert_eq!(store.get("ws://h:1", "alice"), Some("s1"));
        assert_eq!(store.get("ws://h:1", "bob"), Some("s2"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(file.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir_mode = fs::metadata(dir.path().join("wschat"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o777, 0o700);
        }
        // No temporary file left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("wschat"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secrets.json"]);
    }

    #[test]
    fn a_corrupt_file_is_reported_then_moved_aside_on_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        fs::write(&path, "{ half a file").unwrap();
        let file = SecretsFile::new(&path);
        let error = file.load().unwrap_err().to_string();
        assert!(error.contains("is not a secrets file"), "{error}");
        let note = file.save("ws://h:1", "alice", "s1").unwrap().unwrap();
        assert!(note.contains("secrets.json.corrupt"), "{note}");
        assert_eq!(
            fs::read_to_string(dir.path().join("secrets.json.corrupt")).unwrap(),
            "{ half a file"
        );
        assert_eq!(file.load().unwrap().get("ws://h:1", "alice"), Some("s1"));
    }

    #[test]
    fn an_unreadable_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: unreadable as a file.
        let path = dir.path().join("secrets.json");
        fs::create_dir(&path).unwrap();
        let file = SecretsFile::new(&path);
        assert!(matches!(file.load(), Err(StateError::Read { .. })));
        assert!(file.save("ws://h:1", "alice", "s").is_err());
    }
}
