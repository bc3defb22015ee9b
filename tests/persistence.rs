//! Nothing lost on restart (issue 13), over real processes: the server is
//! killed (SIGKILL) in the middle of heavy traffic at random moments and
//! started again on the same data directory; every message it acknowledged
//! is there with its `seq`, numbering goes on, names come back with their
//! secrets, a name whose TTL ran out while it was down is free, a store
//! that cannot be used stops it with one line, and a failing disk refuses
//! messages until it works again.
#![cfg(all(feature = "server", target_os = "linux"))]

mod net;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use net::*;
use rand::RngExt;
use serde_json::json;

/// A v2 client that never panics on a lost connection: the senders of the
/// crash test run until the server dies under them.
struct Sender {
    client: Client,
    name: String,
}

impl Sender {
    fn connect(addr: SocketAddr, name: &str) -> Option<Sender> {
        Some(Sender {
            client: Client::try_connect_v2(addr)?,
            name: name.to_owned(),
        })
    }

    /// Logs in (reclaiming with `secret` if given); the secret.
    fn login(&mut self, secret: Option<&str>) -> Option<String> {
        let mut login = json!({"type": "login", "id": "l", "username": self.name});
        if let Some(secret) = secret {
            login["secret"] = secret.into();
        }
        self.client.try_send_json(login)?;
        let reply = self.client.try_reply_to("l")?;
        reply["secret"].as_str().map(str::to_owned)
    }

    /// Says `text` and waits for its acknowledgement: its `seq`.
    fn say(&mut self, id: &str, text: &str) -> Option<u64> {
        self.client
            .try_send_json(json!({"type": "textFromUser", "id": id, "text": text}))?;
        let ack = self.client.try_reply_to(id)?;
        (ack["type"] == "textBroadcast").then(|| ack["seq"].as_u64())?
    }
}

/// Logs a fresh v2 observer in with `since`; the history it is sent, as
/// seq → (username, text), and whether it is complete.
fn history_since(
    addr: SocketAddr,
    name: &str,
    since: u64,
) -> (BTreeMap<u64, (String, String)>, bool) {
    let mut observer = Client::connect_v2(addr);
    observer.send_json(json!({"type": "login", "id": "l", "username": name, "since": since}));
    let history = observer.recv_type("history");
    let messages = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let seq = m["seq"].as_u64().unwrap();
            let said = (
                m["username"].as_str().unwrap().to_owned(),
                m["message"].as_str().unwrap().to_owned(),
            );
            (seq, said)
        })
        .collect();
    (messages, history["complete"] == true)
}

const SENDERS: usize = 20;
/// Each sender's most messages per round, so that one catch-up (bounded in
/// bytes) holds a whole round.
const PER_ROUND: usize = 60;

#[test]
fn a_crash_in_heavy_traffic_loses_no_acknowledged_message_nor_name() {
    let mut server = ServerProcess::start(&[
        "--message-rate",
        "0",
        "--new-names-per-minute",
        "0",
        "--history-size",
        "10000",
    ]);
    let names: Vec<String> = (0..SENDERS).map(|i| format!("sender{i:02}")).collect();
    let mut secrets: Vec<Option<String>> = vec![None; SENDERS];
    let mut rng = rand::rng();
    let started = Instant::now();
    let mut last_seq = 0;
    for round in 0..4 {
        // 20 senders, each saying its messages one after another as fast as
        // they are acknowledged, until the server dies under them.
        let addr = server.addr;
        let acks = Arc::new(AtomicUsize::new(0));
        let senders: Vec<_> = (0..SENDERS)
            .map(|i| {
                let name = names[i].clone();
                let secret = secrets[i].clone();
                let acks = acks.clone();
                thread::spawn(move || {
                    let mut acked = Vec::new();
                    let Some(mut sender) = Sender::connect(addr, &name) else {
                        return (None, acked);
                    };
                    let Some(secret) = sender.login(secret.as_deref()) else {
                        return (None, acked);
                    };
                    for n in 0..PER_ROUND {
                        let text = format!("{name} round {round} #{n}");
                        match sender.say(&format!("m{n}"), &text) {
                            Some(seq) => {
                                acked.push((seq, text));
                                acks.fetch_add(1, Ordering::SeqCst);
                            }
                            None => break,
                        }
                    }
                    (Some(secret), acked)
                })
            })
            .collect();
        // The crash: at a random moment while they talk (or, in the last
        // round, a SIGTERM, which must lose nothing either), once they are
        // seen talking: a loaded machine may take longer than the moment
        // to connect them.
        let deadline = Instant::now() + TIMEOUT;
        while acks.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "round {round}: nothing said");
            thread::sleep(Duration::from_millis(5));
        }
        thread::sleep(Duration::from_millis(rng.random_range(30..250)));
        let graceful = round == 3;
        if graceful {
            server.terminate();
            assert_eq!(server.wait_exit().code(), Some(0), "{}", server.log_text());
        } else {
            server.kill();
        }
        let mut acked: Vec<(u64, String, String)> = Vec::new();
        for (i, sender) in senders.into_iter().enumerate() {
            let (secret, said) = sender.join().unwrap();
            if let Some(secret) = secret {
                secrets[i] = Some(secret);
            }
            acked.extend(
                said.into_iter()
                    .map(|(seq, text)| (seq, names[i].clone(), text)),
            );
        }
        assert!(
            !acked.is_empty(),
            "round {round}: nothing was said before the crash"
        );

        server.restart();
        // Every acknowledged message is there, with its seq; the numbering
        // has no gap and goes on from before the crash.
        let (history, _) = history_since(server.addr, &format!("observer{round}"), last_seq);
        for (seq, name, text) in &acked {
            assert_eq!(
                history.get(seq),
                Some(&(name.clone(), text.clone())),
                "round {round}: acknowledged #{seq} lost or renumbered"
            );
        }
        let seqs: Vec<u64> = history.keys().copied().collect();
        let expected: Vec<u64> = (last_seq + 1..=last_seq + seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "round {round}: the numbering has a gap");
        last_seq = seqs.last().copied().unwrap_or(last_seq);
        let mut next = Sender::connect(server.addr, &format!("next{round}")).unwrap();
        next.login(None).unwrap();
        assert_eq!(next.say("n", "after the restart"), Some(last_seq + 1));
        last_seq += 1;
        drop(next);

        // The names are held, and come back with their secrets.
        for (i, name) in names.iter().enumerate() {
            let Some(secret) = &secrets[i] else { continue };
            let mut impostor = Client::connect(server.addr);
            impostor.send_json(json!({"type": "login", "id": "l", "username": name}));
            assert_eq!(
                impostor.recv_type("errorMessage")["error"],
                "loginTaken",
                "{name}"
            );
            let mut owner = Sender::connect(server.addr, name).unwrap();
            assert_eq!(
                owner.login(Some(secret)).as_deref(),
                Some(secret.as_str()),
                "{name}"
            );
        }
    }
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// Every file under `dir`, read whole.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    files
}

#[test]
fn the_data_files_hold_no_secret_and_are_private() {
    let server = ServerProcess::start(&[]);
    let mut secrets = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let mut client = Client::connect(server.addr);
        secrets.push(client.login(name));
    }
    let mut alice = Client::connect(server.addr);
    alice.send_json(json!({"type": "login", "id": "l", "username": "alice", "secret": secrets[0]}));
    alice.recv_type("loginMessage");
    let data = server.data_dir().unwrap().join("data");
    let files = files_under(&data);
    assert!(!files.is_empty());
    for (path, bytes) in &files {
        for secret in &secrets {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{} holds a secret in plaintext", path.display());
        }
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    for (path, _) in &files {
        assert_eq!(mode(path), 0o600, "{}", path.display());
    }
}

#[test]
fn a_name_whose_ttl_ran_out_while_the_server_was_down_is_free() {
    const TTL: Duration = Duration::from_secs(2);
    let mut server = ServerProcess::start(&["--login-ttl", "2s"]);
    // The server was last known alive when it started (the next time it
    // says so is 30 s on), at the latest now.
    let alive = Instant::now();
    let mut alice = Client::connect(server.addr);
    let old_secret = alice.login("alice");
    let mut bob = Client::connect(server.addr);
    bob.login("bob");
    // alice leaves a TTL after the server was last known alive, so that
    // the two ways a name's TTL runs out while it is down end apart: bob's
    // connection counts as closed when the server was last known alive,
    // alice's TTL counts from her leaving.
    thread::sleep(TTL.saturating_sub(alive.elapsed()));
    let left = Instant::now();
    drop(alice);
    server
        .wait_for_log(|l| l.contains("left") && l.contains("alice"))
        .expect("alice's leaving logged");
    let seen_left = Instant::now();
    // A message acknowledged after it: her leaving is saved too.
    bob.say("saved");
    while bob.recv_type("textBroadcast")["message"] != "saved" {}
    server.kill();

    // Restarted within her TTL: bob's name is free, alice's still held.
    server.restart();
    let held = login_answer(server.addr, "alice");
    assert!(
        left.elapsed() < TTL,
        "restarted too slowly to tell: {:?} after alice left",
        left.elapsed()
    );
    assert_eq!(held["error"], "loginTaken", "{held}");
    let free = login_answer(server.addr, "bob");
    assert_eq!(free["type"], "loginMessage", "{free}");
    server.kill();
    // Killed before her TTL ran out: not released while it ran.
    assert!(
        left.elapsed() < TTL,
        "{:?} after alice left",
        left.elapsed()
    );

    // Restarted once it ran out: free.
    thread::sleep((seen_left + TTL).saturating_duration_since(Instant::now()));
    server.restart();
    let free = login_answer(server.addr, "alice");
    assert_eq!(free["type"], "loginMessage", "{free}");
    assert_ne!(free["secret"], old_secret.as_str());
}

/// The answer to a v2 login as `name` without a secret: a `loginMessage`
/// or an `errorMessage`.
fn login_answer(addr: SocketAddr, name: &str) -> serde_json::Value {
    let mut client = Client::connect_v2(addr);
    client.send_json(json!({"type": "login", "id": "l", "username": name}));
    client.reply_to("l")
}

#[test]
fn a_store_that_cannot_be_used_stops_the_server_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_chat-server");
    let refuse = |data: &Path, setup: &dyn Fn(&mut Command)| -> String {
        let mut command = Command::new(exe);
        command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .stdin(Stdio::null());
        setup(&mut command);
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("chat-server: "))
            .collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(!stderr.contains("listening on"), "{stderr}");
        lines[0].to_owned()
    };
    let nothing = |_: &mut Command| {};

    // A file where the directory should be.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let line = refuse(&file, &nothing);
    assert!(
        line.contains(&*file.to_string_lossy()) && line.contains("not a directory"),
        "{line}"
    );

    // A damaged store: refused, and left as it was.
    let damaged = dir.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    let store = damaged.join(wschat::serve::STORE_FILE_NAME);
    std::fs::write(&store, vec![0x5a; 4096]).unwrap();
    let line = refuse(&damaged, &nothing);
    assert!(
        line.contains(&*store.to_string_lossy()) && line.contains("cannot be read"),
        "{line}"
    );
    assert_eq!(std::fs::read(&store).unwrap(), vec![0x5a; 4096]);

    // A store of a newer format.
    let newer = dir.path().join("newer");
    std::fs::create_dir(&newer).unwrap();
    {
        let db = redb::Database::create(newer.join(wschat::serve::STORE_FILE_NAME)).unwrap();
        let tx = db.begin_write().unwrap();
        let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
        tx.open_table(meta).unwrap().insert("format", 99).unwrap();
        tx.commit().unwrap();
    }
    let line = refuse(&newer, &nothing);
    assert!(
        line.contains("newer wschat") && line.contains("format 99"),
        "{line}"
    );

    // One that another running chat-server holds.
    let held = dir.path().join("held");
    let _running = ServerProcess::start(&["--data-dir", held.to_str().unwrap()]);
    let line = refuse(&held, &nothing);
    assert!(
        line.contains("in use by another running chat-server"),
        "{line}"
    );

    // One its user may not read (the tests run as root, who may read
    // anything: the server runs as nobody here).
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let line = refuse(&private.join("data"), &|c: &mut Command| {
        c.uid(65534).gid(65534);
    });
    assert!(line.contains("ermission denied"), "{line}");
}

#[test]
fn a_failing_disk_refuses_messages_and_service_resumes_by_itself() {
    // The server may not grow its files past 2 MB: a full disk, as far as
    // it can tell. The limit is raised again later, as space is freed.
    let (server, _data) = net::full_disk::start_on_a_full_disk(2 * 1024 * 1024);
    let mut alice = Sender::connect(server.addr, "alice").unwrap();
    alice.login(None).unwrap();
    let mut bob = Client::connect(server.addr);
    bob.login("bob");
    // Big messages fill the allowed size quickly; each is acknowledged
    // until a write fails, then refused with `unavailable`.
    let big = "x".repeat(3900);
    let mut refused = None;
    for n in 0..2000 {
        let id = format!("m{n}");
        alice
            .client
            .send_json(json!({"type": "textFromUser", "id": id, "text": big}));
        let reply = alice.client.reply_to(&id);
        if reply["type"] == "errorMessage" {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("a write failed once the file could not grow");
    assert_eq!(refused["error"], "unavailable");
    assert!(
        refused["description"]
            .as_str()
            .unwrap()
            .contains("could not save")
    );
    assert!(
        server.has_logged(|l| l.contains("cannot save")),
        "{}",
        server.log_text()
    );
    // Logins are refused too (the name cannot be saved).
    let mut carol = Client::connect_v2(server.addr);
    carol.send_json(json!({"type": "login", "id": "l", "username": "carol"}));
    assert_eq!(carol.reply_to("l")["error"], "unavailable");

    // Space comes back: the next message goes through, by itself.
    net::full_disk::free_space(&server);
    let seq = alice.say("again", "the disk has room again");
    assert!(seq.is_some(), "{}", server.log_text());
    assert!(server.has_logged(|l| l.contains("saving works again")));
    loop {
        let json = bob.recv_type("textBroadcast");
        if json["message"] == "the disk has room again" {
            break;
        }
    }
}
