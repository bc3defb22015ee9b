//! Issue 21, items 2, 7, 8 and 9, over real sockets on 127.0.0.x: who may
//! connect and how many (connections counted from accept, the open-file
//! limit), what `/readyz` tells the public, and which web pages' origins
//! may open a WebSocket by default. Item 8 (per /64) is a unit test of
//! `serve::admission`: loopback has one IPv6 address.
#![cfg(all(feature = "server", target_os = "linux"))]

mod net;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use net::*;
use serde_json::json;

/// `chat-server --listen 127.0.0.1:0 --in-memory ARGS` whose open-file
/// limit is `soft` (and `hard`) from the start, as `ulimit -n` would set it.
#[allow(unsafe_code)] // setrlimit has no safe wrapper in libc
fn under_file_limit(soft: u64, hard: u64, args: &[&str]) -> ServerProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    command
        .args(["--listen", "127.0.0.1:0", "--in-memory"])
        .args(args);
    // SAFETY: only an async-signal-safe call between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    ServerProcess::spawn(command)
}

/// The soft open-file limit of process `pid`, from /proc/PID/limits.
fn soft_file_limit(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files in /proc/PID/limits");
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

/// Descriptors process `pid` has open.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// A TCP connection to `addr` from `from` (another loopback address).
fn tcp_from(from: [u8; 4], addr: SocketAddr, timeout: Duration) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    socket.connect_timeout(&addr.into(), timeout).unwrap();
    let tcp = TcpStream::from(socket);
    tcp.set_read_timeout(Some(timeout)).unwrap();
    tcp.set_write_timeout(Some(timeout)).unwrap();
    tcp
}

/// Sends a WebSocket upgrade with `Host: HOST` and the `extra` header
/// lines; the status of the answer.
fn upgrade_status(addr: SocketAddr, host: &str, extra: &str) -> u16 {
    let mut tcp = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    tcp.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") && tcp.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

// Item 2: 300 idle connections from one address, under an open-file limit
// of 256, kept a real client out: the server accepted until it ran out of
// descriptors ("accept failed: Too many open files") and the real client
// waited in the backlog until it gave up.
#[test]
fn idle_connections_from_one_address_do_not_keep_a_real_client_out() {
    let server = under_file_limit(
        256,
        256,
        &[
            "--max-connections",
            "50",
            "--max-connections-per-ip",
            "5",
            // The idle ones outlive the test, so only their number counts.
            "--handshake-timeout",
            "60s",
        ],
    );
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect_timeout(&server.addr, TIMEOUT).expect("connect"))
        .collect();
    let started = Instant::now();
    let tcp = tcp_from([127, 0, 0, 2], server.addr, Duration::from_secs(5));
    let mut real = Client::over_tcp(tcp, &format!("ws://{}/", server.addr));
    real.login("real");
    real.say("still served");
    let echo = real.recv_type("textBroadcast");
    assert_eq!(echo["message"], "still served");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "served only after {:?}",
        started.elapsed()
    );
    // The idle ones were closed at accept, all but 5 of them, and the
    // server never ran out of descriptors.
    assert!(
        server
            .wait_for_log(|l| l.contains("closed at accept"))
            .is_some()
    );
    let open = open_files(server.pid());
    assert!(open < 100, "{open} descriptors open");
    assert!(
        !server.has_logged(|l| l.contains("Too many open files")),
        "{}",
        server.log_text()
    );
    drop(idle);
}

// Item 2: the open-file limit was never raised, so the default
// --max-connections (10,000) could not be reached under the usual 1,024,
// and nothing said so.
#[test]
fn the_open_file_limit_is_raised_to_the_hard_one_and_a_shortfall_is_said() {
    let server = under_file_limit(256, 2048, &[]);
    assert_eq!(soft_file_limit(server.pid()), 2048);
    let warning = server
        .wait_for_log(|l| l.contains("cannot be reached"))
        .unwrap_or_else(|| panic!("no warning: {}", server.log_text()));
    assert!(warning.contains("--max-connections 10000"), "{warning}");
    assert!(warning.contains("open-file limit is 2048"), "{warning}");
    assert!(warning.contains("WARN"), "{warning}");

    // Room enough: no warning.
    let roomy = under_file_limit(256, 2048, &["--max-connections", "500"]);
    assert_eq!(soft_file_limit(roomy.pid()), 2048);
    let mut client = Client::connect(roomy.addr);
    client.login("alice");
    assert!(
        !roomy.has_logged(|l| l.contains("cannot be reached")),
        "{}",
        roomy.log_text()
    );
}

/// A server whose store cannot grow its file past its size at start (a
/// full disk, as far as it can tell), made to fail a commit: its /readyz
/// then has a reason that quotes an I/O error.
#[allow(unsafe_code)] // setrlimit and signal have no safe wrappers in libc
fn with_a_failing_disk(args: &[&str]) -> (ServerProcess, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    command
        .args(["--listen", "127.0.0.1:0", "--message-rate", "0"])
        .args(args)
        .arg("--data-dir")
        .arg(data.path().join("data"));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 2 * 1024 * 1024,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = ServerProcess::spawn(command);
    let mut alice = Client::connect_v2(server.addr);
    alice.send_json(json!({"type": "login", "id": "l", "username": "alice"}));
    assert_ne!(alice.reply_to("l")["type"], "errorMessage");
    let big = "x".repeat(3900);
    for n in 0..2000 {
        let id = format!("m{n}");
        alice.send_json(json!({"type": "textFromUser", "id": id, "text": big}));
        if alice.reply_to(&id)["type"] == "errorMessage" {
            return (server, data);
        }
    }
    panic!("no commit failed: {}", server.log_text());
}

// Item 7: /readyz on the public port told strangers why the node was not
// ready: the Redis host and port, the store's I/O errors.
#[test]
fn readyz_tells_the_public_only_the_status_and_the_operator_why() {
    let (public, _data) = with_a_failing_disk(&[]);
    let readyz = http_get(public.addr, "/readyz");
    assert_eq!((readyz.status, &*readyz.body), (503, "not ready\n"));

    let (operator, _data) = with_a_failing_disk(&["--admin-listen", "127.0.0.1:0"]);
    let readyz = http_get(operator.admin_addr(), "/readyz");
    assert_eq!(readyz.status, 503);
    assert!(
        readyz
            .body
            .starts_with("not ready: the store cannot save: ")
            && readyz.body.contains("os error"),
        "{}",
        readyz.body
    );
}

// Item 9: --allowed-origins was `*` by default: any site's page could make
// its visitors' browsers connect.
#[test]
fn by_default_only_the_pages_own_origin_and_non_browsers_may_connect() {
    let server = ServerProcess::start(&[]);
    let host = server.addr.to_string();
    for (origin, expected) in [
        (None, 101),
        (Some(format!("http://{host}")), 101),
        (Some(format!("https://{host}")), 101),
        (Some("https://evil.example".to_owned()), 403),
        (Some(format!("http://{host}.evil.example")), 403),
        (Some("null".to_owned()), 403),
    ] {
        let extra = origin
            .as_ref()
            .map_or(String::new(), |o| format!("Origin: {o}\r\n"));
        assert_eq!(
            upgrade_status(server.addr, &host, &extra),
            expected,
            "{origin:?}"
        );
    }
    // The page is another site's whatever Host is asked for.
    let evil = "Origin: http://evil.example\r\n";
    assert_eq!(upgrade_status(server.addr, "evil.example:80", evil), 101);
    assert_eq!(upgrade_status(server.addr, &host, evil), 403);

    let any = ServerProcess::start(&["--allowed-origins", "*"]);
    let host = any.addr.to_string();
    assert_eq!(
        upgrade_status(any.addr, &host, "Origin: https://evil.example\r\n"),
        101
    );
}
