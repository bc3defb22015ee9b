//! The load generator against the real `chat-server`: each mode, run small,
//! stops by itself and reports what happened in a line that parses.
//!
//! Every child process is killed by a guard, every wait has a limit, and
//! nothing here asserts how fast anything was.

#![cfg(all(feature = "loadgen", feature = "server"))]

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

// The summary format, shared with the binary so that the tests read the
// line exactly as the load generator defines it.
#[allow(dead_code, unused_imports)]
#[path = "../src/bin/chat-loadgen/summary.rs"]
mod summary;

use summary::Summary;

mod net;

use net::ServerProcess;

/// A child process killed when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Runs chat-loadgen to completion (killing it after `limit`) and returns
/// its exit status and its parsed summary line.
fn loadgen(args: &[&str], limit: Duration) -> (ExitStatus, Summary) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-loadgen"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start chat-loadgen");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut child = Reaped(child);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for chat-loadgen") {
            break status;
        }
        assert!(
            started.elapsed() < limit,
            "chat-loadgen {args:?} did not stop by itself within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    stdout.read_to_string(&mut out).expect("read stdout");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("loadgen ")).collect();
    assert_eq!(lines.len(), 1, "exactly one summary line in {out:?}");
    (status, lines[0].parse().expect("the summary line parses"))
}

/// Runs `chat-loadgen MODE --protocol PROTOCOL --server ADDR --timeout 60s
/// EXTRA…`, allowing it 90 s to stop by itself.
fn run(mode: &str, protocol: &str, addr: &str, extra: &[&str]) -> (ExitStatus, Summary) {
    let common = [
        mode,
        "--protocol",
        protocol,
        "--server",
        addr,
        "--timeout",
        "60s",
    ];
    loadgen(&[&common[..], extra].concat(), Duration::from_secs(90))
}

fn get<T: summary::Field>(summary: &Summary, key: &'static str) -> T {
    summary
        .get(key)
        .unwrap_or_else(|e| panic!("{e} in `{summary}`"))
}

/// Both protocol versions, as `--protocol` takes them.
const PROTOCOLS: [&str; 2] = ["v1", "v2"];

fn fanout_delivers_every_message_to_every_client_and_stops(protocol: &str) {
    // Senders go faster than a person types: no rate limit for a benchmark.
    let server = ServerProcess::start(&["--message-rate", "0"]);
    let (addr, pid) = (server.addr.to_string(), server.pid().to_string());
    let (status, summary) = run(
        "fanout",
        protocol,
        &addr,
        &[
            "--server-pid",
            &pid,
            "--clients",
            "20",
            "--senders",
            "3",
            "--rate",
            "300",
            "--duration",
            "500ms",
            "--drain",
            "10s",
            "--source-ips",
            "4",
        ],
    );
    assert!(status.success(), "{status} `{summary}`");
    assert_eq!(get::<String>(&summary, "status"), "ok");
    assert_eq!(get::<String>(&summary, "protocol"), protocol);
    assert_eq!(get::<usize>(&summary, "logged_in"), 20);
    assert_eq!(get::<usize>(&summary, "receivers"), 20);
    // 300/s for 0.5 s, whatever the timing: the schedule fixes the count.
    assert_eq!(get::<u64>(&summary, "sent"), 150);
    assert_eq!(get::<u64>(&summary, "expected"), 150 * 20);
    assert_eq!(get::<u64>(&summary, "delivered"), 150 * 20);
    assert_eq!(get::<u64>(&summary, "lost"), 0);
    assert_eq!(get::<u64>(&summary, "out_of_order"), 0);
    // v2's history and logoutBroadcast are understood, not errors.
    assert_eq!(get::<u64>(&summary, "errors"), 0);
    assert!(get::<Option<u64>>(&summary, "p99_us").is_some());
    assert!(get::<Option<u64>>(&summary, "server_rss_kib").is_some());
}

#[test]
fn fanout_v1_delivers_every_message_to_every_client_and_stops() {
    fanout_delivers_every_message_to_every_client_and_stops("v1");
}

#[test]
fn fanout_v2_delivers_every_message_to_every_client_and_stops() {
    fanout_delivers_every_message_to_every_client_and_stops("v2");
}

#[test]
fn idle_clients_answer_pings_and_the_server_rss_is_reported() {
    // With pings every 100 ms and eviction after 1 s of silence, a client
    // that did not answer would be closed well within the 2 s hold.
    let server = ServerProcess::start(&["--ping-interval", "100ms", "--evict-after", "1s"]);
    let (addr, pid) = (server.addr.to_string(), server.pid().to_string());
    for protocol in PROTOCOLS {
        let (status, summary) = run(
            "idle",
            protocol,
            &addr,
            &["--server-pid", &pid, "--clients", "30", "--hold", "2s"],
        );
        assert!(status.success(), "{status} `{summary}`");
        assert_eq!(get::<String>(&summary, "protocol"), protocol);
        assert_eq!(get::<usize>(&summary, "logged_in"), 30);
        assert_eq!(get::<usize>(&summary, "closed"), 0);
        assert_eq!(get::<u64>(&summary, "errors"), 0);
        assert!(get::<u64>(&summary, "pings") > 0, "`{summary}`");
        assert!(get::<Option<u64>>(&summary, "server_rss_held_kib").is_some());
        assert!(get::<Option<u64>>(&summary, "server_bytes_per_conn").is_some());
    }
}

#[test]
fn accept_counts_logins_and_the_join_storm() {
    let server = ServerProcess::start(&[]);
    let addr = server.addr.to_string();
    for protocol in PROTOCOLS {
        let (status, summary) = run(
            "accept",
            protocol,
            &addr,
            &["--connections", "60", "--concurrency", "6"],
        );
        assert!(status.success(), "{status} `{summary}`");
        assert_eq!(get::<String>(&summary, "protocol"), protocol);
        assert_eq!(get::<usize>(&summary, "opened"), 60);
        assert_eq!(get::<usize>(&summary, "failed"), 0);
        // Each connection hears at least its own login and at most everyone's.
        let join_frames: u64 = get(&summary, "join_frames");
        assert!((60..=60 * 60).contains(&join_frames), "`{summary}`");
        // A frame tells of one join at least (a presence summary, of many).
        let joins_heard: u64 = get(&summary, "joins_heard");
        assert!(joins_heard >= join_frames, "`{summary}`");
        if protocol == "v1" {
            assert_eq!(joins_heard, join_frames, "`{summary}`");
        }
        assert!(get::<Option<f64>>(&summary, "join_s").is_some());
        assert!(get::<Option<u64>>(&summary, "p99_us").is_some());

        let (status, summary) = run(
            "accept",
            protocol,
            &addr,
            &["--connections", "30", "--close-after-login"],
        );
        assert!(status.success(), "{status} `{summary}`");
        assert_eq!(get::<String>(&summary, "protocol"), protocol);
        assert_eq!(get::<usize>(&summary, "opened"), 30);
        assert_eq!(get::<Option<f64>>(&summary, "join_s"), None);
    }
}

#[test]
fn more_clients_than_the_open_file_limit_allows_are_refused_up_front() {
    // No server needed: the limit is checked before the first connection.
    let out = Command::new(env!("CARGO_BIN_EXE_chat-loadgen"))
        .args(["idle", "--server", "127.0.0.1:9", "--clients", "100000000"])
        .stdin(Stdio::null())
        .output()
        .expect("run chat-loadgen");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("open-file limit"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("loadgen "));
}

#[test]
fn without_a_server_it_reports_failure_and_stops() {
    // Bind a port and close it again: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    for mode in [&["fanout", "--senders", "1"][..], &["idle"]] {
        let args = [
            mode,
            &["--server", &addr, "--clients", "5", "--timeout", "20s"],
        ]
        .concat();
        let (status, summary) = loadgen(&args, Duration::from_secs(60));
        assert!(!status.success());
        assert_eq!(get::<String>(&summary, "status"), "failed");
        assert_eq!(get::<usize>(&summary, "failed"), 5);
    }
}

#[test]
fn paced_presence_shrinks_a_v2_join_storm_and_the_barrier_is_heard_in_a_summary() {
    // One notice a second: 60 logins at once come to each v2 client as a
    // handful of frames, the barrier's login among the names of the last.
    let server = ServerProcess::start(&["--presence-rate", "1", "--presence-burst", "1"]);
    let (status, summary) = run(
        "accept",
        "v2",
        &server.addr.to_string(),
        &["--connections", "60", "--concurrency", "6"],
    );
    assert!(status.success(), "{status} `{summary}`");
    assert_eq!(get::<usize>(&summary, "opened"), 60);
    let join_frames: u64 = get(&summary, "join_frames");
    let joins_heard: u64 = get(&summary, "joins_heard");
    // Unpaced, 60 clients would hear ~1,800 joins in as many frames.
    assert!(joins_heard >= 60 * 59 / 2, "`{summary}`");
    assert!(join_frames * 4 < joins_heard, "`{summary}`");
    assert!(get::<Option<f64>>(&summary, "join_s").is_some());
}

#[cfg(feature = "cluster")]
#[test]
fn fanout_spreads_clients_over_a_clusters_nodes_and_adds_up_their_cpu() {
    let redis = net::redis::RedisServer::start();
    let url = redis.url();
    let nodes: Vec<ServerProcess> = (0..3)
        .map(|_| ServerProcess::start(&["--redis-url", &url, "--message-rate", "0"]))
        .collect();
    // Each listens at once, and lets clients in once started from Redis.
    for node in &nodes {
        node.wait_for_log(|l| l.contains(": this is node "))
            .expect("the node joined Redis");
    }
    let mut args = vec!["fanout".to_owned(), "--protocol".into(), "v2".into()];
    for node in &nodes {
        args.extend(["--server".into(), node.addr.to_string()]);
        args.extend(["--server-pid".into(), node.pid().to_string()]);
    }
    args.extend(
        [
            "--clients",
            "30",
            "--senders",
            "3",
            "--rate",
            "150",
            "--duration",
            "500ms",
            "--drain",
            "10s",
            "--timeout",
            "60s",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, summary) = loadgen(&args, Duration::from_secs(90));
    assert!(status.success(), "{status} `{summary}`");
    assert_eq!(get::<String>(&summary, "status"), "ok");
    assert_eq!(get::<u64>(&summary, "sent"), 75);
    // Every client hears every message, whichever node either is on, in
    // each sender's order, once.
    assert_eq!(get::<u64>(&summary, "delivered"), 75 * 30);
    assert_eq!(get::<u64>(&summary, "lost"), 0);
    assert_eq!(get::<u64>(&summary, "out_of_order"), 0);
    assert_eq!(get::<u64>(&summary, "errors"), 0);
    assert!(get::<Option<f64>>(&summary, "server_cpu_s").is_some());
    // Clients were spread over the nodes: each node logged some in.
    for node in &nodes {
        assert!(
            node.has_logged(|l| l.contains("joined")),
            "{}",
            node.log_text()
        );
    }
}

mod fake_v3;

use fake_v3::Faults;

/// Runs the rooms mode small against `addr`: 3 rooms of 4 members, each
/// saying a message every 200 ms for 1 s.
fn rooms(addr: &str, pid: Option<u32>, extra: &[&str]) -> (ExitStatus, Summary) {
    let pid = pid.map(|pid| pid.to_string());
    let mut args = vec![
        "rooms",
        "--server",
        addr,
        "--timeout",
        "60s",
        "--rooms",
        "3",
        "--members",
        "4",
        "--interval",
        "200ms",
        "--duration",
        "1s",
        "--drain",
        "10s",
        "--source-ips",
        "2",
    ];
    if let Some(pid) = &pid {
        args.extend(["--server-pid", pid]);
    }
    args.extend(extra);
    loadgen(&args, Duration::from_secs(90))
}

/// What a clean small rooms run reports, whoever the server is.
fn assert_rooms_delivered_everything(status: ExitStatus, summary: &Summary) {
    assert!(status.success(), "{status} `{summary}`");
    assert_eq!(get::<String>(summary, "status"), "ok");
    assert_eq!(get::<String>(summary, "protocol"), "v3");
    assert_eq!(get::<usize>(summary, "logged_in"), 12);
    assert_eq!(get::<usize>(summary, "joined"), 12);
    assert_eq!(get::<usize>(summary, "join_failed"), 0);
    // Every 200 ms for 1 s, the first within the first 200 ms: 5 each.
    assert_eq!(get::<u64>(summary, "sent"), 12 * 5);
    // Each room's 20 messages to its 4 members, the sender included.
    assert_eq!(get::<u64>(summary, "expected"), 3 * 20 * 4);
    assert_eq!(get::<u64>(summary, "delivered"), 3 * 20 * 4);
    assert_eq!(get::<u64>(summary, "acked"), 12 * 5);
    for zero in ["lost", "out_of_order", "unexpected", "seq_breaks", "errors"] {
        assert_eq!(get::<u64>(summary, zero), 0, "{zero} in `{summary}`");
    }
    assert_eq!(get::<usize>(summary, "rooms_with_loss"), 0);
    assert!(get::<Option<u64>>(summary, "p99_us").is_some());
}

#[test]
fn rooms_hears_every_message_of_each_room_from_a_v3_stand_in() {
    let server = fake_v3::FakeV3::start(Faults::default());
    let (status, summary) = rooms(&server.addr.to_string(), Some(std::process::id()), &[]);
    assert_rooms_delivered_everything(status, &summary);
    assert!(get::<Option<u64>>(&summary, "server_rss_kib").is_some());
}

#[test]
fn rooms_goes_on_when_the_lobby_does_not_tell_the_barriers_login() {
    let server = fake_v3::FakeV3::start(Faults {
        quiet_lobby: true,
        ..Faults::default()
    });
    let addr = server.addr.to_string();
    let (status, summary) = rooms(&addr, None, &["--barrier-timeout", "500ms"]);
    assert_rooms_delivered_everything(status, &summary);
}

#[test]
fn rooms_notices_a_delivery_the_server_dropped() {
    // Delivery 15 is the 3rd of the 4th message: room 0's second.
    let server = fake_v3::FakeV3::start(Faults {
        drop_delivery: Some(15),
        ..Faults::default()
    });
    let (status, summary) = rooms(&server.addr.to_string(), None, &[]);
    assert!(status.success(), "{status} `{summary}`");
    assert_eq!(get::<u64>(&summary, "expected"), 3 * 20 * 4);
    assert_eq!(get::<u64>(&summary, "delivered"), 3 * 20 * 4 - 1);
    assert_eq!(get::<u64>(&summary, "lost"), 1);
    assert_eq!(get::<usize>(&summary, "rooms_with_loss"), 1);
    assert_eq!(get::<u64>(&summary, "out_of_order"), 0);
    // The member that missed it saw its room's numbering jump.
    assert_eq!(get::<u64>(&summary, "seq_breaks"), 1);
}

#[test]
fn rooms_without_a_v3_server_reports_failure_and_stops() {
    // A server that speaks v1 and v2 only does not select wschat.v3.
    let server = fake_v3::FakeV3::start(Faults {
        no_v3: true,
        ..Faults::default()
    });
    let (status, summary) = rooms(&server.addr.to_string(), None, &[]);
    assert!(!status.success());
    assert_eq!(get::<String>(&summary, "status"), "failed");
    assert_eq!(get::<usize>(&summary, "failed"), 12);
}

#[test]
fn rooms_fails_when_every_join_is_refused() {
    let server = fake_v3::FakeV3::start(Faults {
        refuse_joins: true,
        ..Faults::default()
    });
    let (status, summary) = rooms(&server.addr.to_string(), None, &[]);
    assert!(!status.success(), "{status} `{summary}`");
    assert_eq!(get::<String>(&summary, "status"), "failed");
    assert_eq!(get::<usize>(&summary, "logged_in"), 12);
    assert_eq!(get::<usize>(&summary, "join_failed"), 12);
    assert_eq!(get::<u64>(&summary, "sent"), 0);
}

#[test]
fn rooms_idle_fails_when_every_join_is_refused() {
    let server = fake_v3::FakeV3::start(Faults {
        refuse_joins: true,
        ..Faults::default()
    });
    let (status, summary) = loadgen(
        &[
            "rooms-idle",
            "--server",
            &server.addr.to_string(),
            "--timeout",
            "60s",
            "--clients",
            "3",
            "--rooms",
            "3",
            "--members",
            "2",
            "--settle",
            "10ms",
        ],
        Duration::from_secs(90),
    );
    assert!(!status.success(), "{status} `{summary}`");
    assert_eq!(get::<String>(&summary, "status"), "failed");
    assert_eq!(get::<usize>(&summary, "created"), 0);
    assert_eq!(get::<usize>(&summary, "join_failed"), 3 + 3);
}

#[test]
fn rooms_hears_every_message_of_each_room_from_chat_server() {
    let server =
        ServerProcess::start(&["--message-rate", "0", "--rooms-per-address-per-minute", "0"]);
    let (status, summary) = rooms(&server.addr.to_string(), Some(server.pid()), &[]);
    assert_rooms_delivered_everything(status, &summary);
}

#[test]
fn rooms_idle_creates_and_fills_the_rooms_and_reads_the_rss_between() {
    let server = fake_v3::FakeV3::start(Faults::default());
    let pid = std::process::id().to_string();
    let (status, summary) = loadgen(
        &[
            "rooms-idle",
            "--server",
            &server.addr.to_string(),
            "--server-pid",
            &pid,
            "--timeout",
            "60s",
            "--clients",
            "6",
            "--rooms",
            "14",
            "--members",
            "3",
            "--settle",
            "50ms",
        ],
        Duration::from_secs(90),
    );
    assert!(status.success(), "{status} `{summary}`");
    assert_eq!(get::<String>(&summary, "status"), "ok");
    assert_eq!(get::<usize>(&summary, "logged_in"), 6);
    assert_eq!(get::<usize>(&summary, "created"), 14);
    assert_eq!(get::<usize>(&summary, "memberships_added"), 14 * 2);
    assert_eq!(get::<usize>(&summary, "join_failed"), 0);
    assert_eq!(get::<u64>(&summary, "errors"), 0);
    for read in [
        "server_rss_logged_in_kib",
        "server_rss_created_kib",
        "server_rss_filled_kib",
        "server_bytes_per_room",
        "server_bytes_per_membership",
    ] {
        assert!(
            get::<Option<u64>>(&summary, read).is_some(),
            "{read} in `{summary}`"
        );
    }
}
