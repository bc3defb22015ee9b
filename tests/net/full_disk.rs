//! chat-server on a disk that is full, as far as it can tell, and the
//! space coming back: for tests of a store that cannot write.

#![allow(unsafe_code)] // setrlimit, signal and prlimit have no safe wrappers

use std::os::unix::process::CommandExt;
use std::process::Command;

use super::ServerProcess;

/// Starts chat-server with a store that may not grow its files past
/// `limit` bytes: writes fail with EFBIG (SIGXFSZ, whose default would kill
/// it, is ignored, as an ignored signal stays ignored across exec). The
/// directory must outlive the server.
pub fn start_on_a_full_disk(limit: u64) -> (ServerProcess, tempfile::TempDir) {
    let data = tempfile::tempdir().expect("a temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--message-rate",
            "0",
            "--data-dir",
        ])
        .arg(data.path().join("data"));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let rlimit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &rlimit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    (ServerProcess::spawn(command), data)
}

/// Space comes back: the server may grow its files again.
pub fn free_space(server: &ServerProcess) {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit reads the struct it is given, for a child of ours.
    let rc = unsafe {
        libc::prlimit(
            server.pid() as i32,
            libc::RLIMIT_FSIZE,
            &unlimited,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}
