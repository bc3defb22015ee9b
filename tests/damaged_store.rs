//! A start that cannot use its data directory (issue 21, items 3, 4 and
//! 12), over the real binary: a damaged store is refused in one line and
//! left byte for byte as it was; a symbolic link in the data directory is
//! refused and what it points to left alone; a data directory that cannot
//! be written says what was tried, where, why and what to do; and a start
//! that fails leaves nothing behind.
#![cfg(all(feature = "server", target_os = "linux"))]

mod net;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use net::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use wschat::serve::STORE_FILE_NAME;

/// Runs chat-server with `args` (and `setup`) until it exits, killing it
/// if it has not within `TIMEOUT`: its status and its stderr.
fn run_to_exit(args: &[&str], setup: impl FnOnce(&mut Command)) -> (ExitStatus, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    setup(&mut command);
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chat-server {args:?} did not exit");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

/// The one `chat-server: …` line of a start that failed (exit status 1,
/// no panic, never listening).
fn refusal(args: &[&str], setup: impl FnOnce(&mut Command)) -> String {
    let (status, stderr) = run_to_exit(args, setup);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("chat-server: "))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    lines[0].to_owned()
}

fn sha256(path: &Path) -> String {
    let digest = Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// A store cleanly closed after holding names and long messages: a file
/// of more than `at_least` bytes.
fn a_clean_store(data: &Path, at_least: u64) -> PathBuf {
    let data_dir = data.to_str().unwrap();
    let server = ServerProcess::start(&[
        "--data-dir",
        data_dir,
        "--message-rate",
        "100000",
        "--message-burst",
        "100000",
        "--new-names-per-minute",
        "100000",
        "--new-names-burst",
        "100000",
    ]);
    let text = "x".repeat(3000);
    let mut client = Client::connect_v2(server.addr);
    client.send_json(json!({"type": "login", "id": "l", "username": "alice"}));
    client.reply_to("l");
    for i in 0..200 {
        let id = format!("m{i}");
        client.send_json(json!({"type": "textFromUser", "id": id, "text": text}));
        assert_eq!(client.reply_to(&id)["type"], "textBroadcast");
    }
    for i in 0..50 {
        let mut other = Client::connect_v2(server.addr);
        other.send_json(json!({"type": "login", "id": "l", "username": format!("user{i}")}));
        other.reply_to("l");
    }
    drop(client);
    server.terminate();
    let mut server = server;
    assert!(server.wait_exit().success());
    let store = data.join(STORE_FILE_NAME);
    let len = std::fs::metadata(&store).unwrap().len();
    assert!(len > at_least, "the store has only {len} bytes");
    store
}

#[test]
fn a_damaged_store_is_refused_in_one_line_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let clean = a_clean_store(&dir.path().join("clean"), 300_000 + 4096);
    for offset in [8192u64, 200_000, 300_000] {
        let data = dir.path().join(format!("damaged-at-{offset}"));
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        let store = data.join(STORE_FILE_NAME);
        std::fs::copy(&clean, &store).unwrap();
        {
            use std::os::unix::fs::FileExt;
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&store)
                .unwrap();
            file.write_all_at(&[0xa5; 4096], offset).unwrap();
        }
        let before = sha256(&store);
        // Twice: a start must not change what the next one finds.
        for _ in 0..2 {
            let line = refusal(
                &[
                    "--listen",
                    "127.0.0.1:0",
                    "--data-dir",
                    data.to_str().unwrap(),
                ],
                |_| {},
            );
            assert!(
                line.contains(&*store.to_string_lossy()) && line.contains("damaged"),
                "at {offset}: {line}"
            );
            assert_eq!(sha256(&store), before, "at {offset}: the store was changed");
        }
    }
    // The clean one still opens, and is whole.
    let server = ServerProcess::start(&["--data-dir", dir.path().join("clean").to_str().unwrap()]);
    assert!(server.has_logged(|l| l.contains("51 names") && l.contains("200 messages")));
}

#[test]
fn a_symbolic_link_in_the_data_directory_is_refused_and_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::write(&elsewhere, "precious").unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o644)).unwrap();

    // The store's file a link to a file elsewhere.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = data.join(STORE_FILE_NAME);
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let line = refusal_of_data_dir(&data);
    assert!(
        line.contains(&*link.to_string_lossy()) && line.contains("symbolic link"),
        "{line}"
    );
    assert_eq!(mode(&elsewhere), 0o644);
    assert_eq!(std::fs::read(&elsewhere).unwrap(), b"precious");

    // The data directory a link to a directory elsewhere, readable by all.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).unwrap();
    let linked = dir.path().join("linked");
    std::os::unix::fs::symlink(&other, &linked).unwrap();
    let line = refusal_of_data_dir(&linked);
    assert!(
        line.contains(&*linked.to_string_lossy()) && line.contains("symbolic link"),
        "{line}"
    );
    assert_eq!(mode(&other), 0o755);
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 0);
}

/// The one line of a start on `data_dir` that must refuse it.
fn refusal_of_data_dir(data_dir: &std::path::Path) -> String {
    let dir = data_dir.to_str().unwrap();
    refusal(&["--listen", "127.0.0.1:0", "--data-dir", dir], |_| {})
}

#[test]
fn a_start_whose_port_is_taken_leaves_no_data_directory() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("new").join("data");
    let line = refusal(
        &["--listen", &addr, "--data-dir", data.to_str().unwrap()],
        |_| {},
    );
    assert!(line.contains(&addr) && line.contains("--listen"), "{line}");
    assert!(!dir.path().join("new").exists(), "{line}");
}

#[test]
fn a_data_directory_it_may_not_write_says_where_why_and_what_to_do() {
    // The tests run as root, who may write anywhere: the server runs as
    // nobody here, in a directory only root may write.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |c: &mut Command| {
        c.uid(65534).gid(65534).current_dir(dir.path());
    };
    // The default data directory, relative to the working directory.
    let line = refusal(&["--listen", "127.0.0.1:0"], as_nobody);
    let wanted = dir.path().join("wschat-data");
    assert!(line.contains(&*wanted.to_string_lossy()), "{line}");
    assert_eq!(line.matches("ermission denied").count(), 1, "{line}");
    assert!(line.contains("create"), "{line}");
    assert!(
        line.contains("--data-dir DIR") && line.contains("--in-memory"),
        "{line}"
    );
    assert!(!wanted.exists());
}
