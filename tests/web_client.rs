//! The web client that chat-server serves at `/` (issue 17), driven in a
//! real headless Chromium (Debian's `chromium`) by playwright-core: each test
//! starts a server on 127.0.0.1 and runs one scenario of
//! tests/browser/scenarios.mjs against it. Chromium and the node packages
//! are installed by tests/run.sh; without them these tests fail, never skip.
//!
//! Screenshots of the states a person sees land in
//! `target/tmp/web_client/*.png`.

mod net;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use net::{Client, ServerProcess};

/// The longest one scenario may take, browser start included.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

/// One browser at a time: the machine has two cores, and a scenario's
/// timings should not depend on how many others run beside it.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Where the screenshots go.
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web_client");
    std::fs::create_dir_all(&dir).expect("create the screenshot directory");
    dir
}

/// node with a script, in a process group of its own, so that Chromium and
/// everything else it starts can be killed with it.
fn node(args: &[&str]) -> Command {
    use std::os::unix::process::CommandExt;
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: run tests/run.sh (installs Chromium and \
         playwright-core, then runs cargo test)"
    );
    let mut command = Command::new("node");
    command.current_dir(&dir).args(args).process_group(0);
    command
}

/// A child in its own process group, killed with its group when dropped.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// Runs `scenario` against a chat-server started with `server_args`,
/// answering its requests (a server restart on the same port), and fails
/// with everything it printed and the server's log unless it passes.
fn run(scenario: &str, server_args: &[&str]) {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    run_on(scenario, ServerProcess::start(server_args));
}

/// Runs `scenario` against `server` (see `run`); the caller holds `ONE_BROWSER`.
fn run_on(scenario: &str, mut server: ServerProcess) {
    let url = format!("http://{}/", server.addr);
    let shots = screenshot_dir();
    let child = node(&["scenarios.mjs", scenario, &url, shots.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node (tests/run.sh installs it)");
    let mut child = Group(child);
    let mut stdin = child.0.stdin.take().unwrap();
    let (lines, from_node) = mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.0.stderr.take().unwrap();
    let errors = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let deadline = Instant::now() + SCENARIO_TIMEOUT;
    let mut transcript = Vec::new();
    let mut restarts = 0;
    let timed_out = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match from_node.recv_timeout(left) {
            Ok(line) if line == "@restart" => {
                // A crash and a restart on the same port: the new server
                // remembers nothing and numbers messages from 1 again.
                server.restart();
                restarts += 1;
                writeln!(stdin, "ok").expect("answer node");
                transcript.push(format!("(server restarted on {})", server.addr));
            }
            Ok(line) => transcript.push(line),
            Err(RecvTimeoutError::Disconnected) => break false,
            Err(RecvTimeoutError::Timeout) => break true,
        }
    };
    if timed_out {
        drop(child);
    } else {
        let status = child.0.wait().expect("wait for node");
        let errors = errors.join().unwrap_or_default();
        if status.success() {
            assert!(
                transcript
                    .iter()
                    .any(|l| l == &format!("scenario {scenario}: passed")),
                "{transcript:?}"
            );
            return;
        }
        panic!(
            "scenario {scenario} failed ({status}, {restarts} restarts):\n{}\n{errors}\n\
             --- server log ---\n{}",
            transcript.join("\n"),
            server.log_text()
        );
    }
    panic!(
        "scenario {scenario} did not finish within {SCENARIO_TIMEOUT:?}:\n{}\n--- server log ---\n{}",
        transcript.join("\n"),
        server.log_text()
    );
}

#[test]
fn two_pages_chat_both_ways() {
    run("two_pages_chat_both_ways", &[]);
}

#[test]
fn a_reload_keeps_the_name_and_log_out_frees_it() {
    run("reload_keeps_the_name", &[]);
}

#[test]
fn a_drop_and_a_server_restart_are_caught_up_with_nothing_shown_twice() {
    run("server_restart_catch_up", &[]);
}

#[test]
fn an_in_memory_servers_restart_is_a_new_history_said_once() {
    run("in_memory_restart_catch_up", &["--in-memory"]);
}

#[test]
fn against_a_server_without_epochs_a_restart_is_told_by_its_numbers() {
    // A restart that renumbers: only a server that keeps nothing does.
    run("server_without_epochs", &["--in-memory"]);
}

#[test]
fn markup_from_the_network_is_shown_as_text_and_no_script_runs() {
    run("xss_is_text", &[]);
}

#[test]
fn every_error_is_shown_next_to_where_it_happened() {
    run(
        "errors_are_shown_where_they_happened",
        &[
            "--max-message-chars",
            "20",
            "--message-rate",
            "2",
            "--message-burst",
            "6",
        ],
    );
}

/// The page's protocol logic (src/serve/web/chat.js) under node's own test
/// runner: catch-up, epochs, the outbox.
#[test]
fn the_page_logic_passes_its_unit_tests() {
    let output = Command::new("node")
        .current_dir(browser_dir())
        .args(["--test", "chat.test.mjs"])
        .output()
        .expect("run node (tests/run.sh installs it)");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The page lives at `/`; a WebSocket upgrade on any path, `/` included,
/// still goes to the chat (the original frontend's, v1), and a path the
/// page does not have is 404.
#[test]
fn the_page_and_the_chat_share_the_port() {
    let server = ServerProcess::start(&[]);
    let get = |request: &str| {
        let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
        tcp.set_read_timeout(Some(net::TIMEOUT)).unwrap();
        tcp.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).unwrap();
        response
    };
    let page = get("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(
        page.contains("Content-Type: text/html; charset=utf-8\r\n"),
        "{page}"
    );
    assert!(page.contains("Content-Security-Policy: default-src 'none'; script-src 'self';"));
    assert!(page.contains(r#"<label for="name">Name</label>"#), "{page}");
    let head = get("HEAD /app.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
    let missing = get("GET /app.jsx HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");

    let mut v1 = Client::connect_to(server.addr, "/");
    let mut other = Client::connect_to(server.addr, "/app.js");
    v1.login("alice");
    other.login("bob");
    v1.say("still v1 at /");
    let heard = other.recv_type("textBroadcast");
    assert_eq!(heard["message"], "still v1 at /");
    assert!(heard.get("seq").is_none(), "v1 has no seq: {heard}");
}

// --- rooms and direct messages (v3, issue 24): tests/browser/rooms-scenarios.mjs ---
// Each runs at 1280×800 and/or 390×844 and audits every screen it shows
// with axe-core (WCAG 2.1 A and AA: no serious or critical violation).

/// Rooms without a rate limit in the way of a scenario's pace.
const ROOMS_SERVER: &[&str] = &["--in-memory", "--message-rate", "0"];

#[test]
fn rooms_and_their_unread_counts_and_mentions_are_listed() {
    run("rooms_lists_unread_and_mentions", ROOMS_SERVER);
}

#[test]
fn on_a_phone_the_room_lists_are_behind_a_button() {
    run("rooms_on_a_phone", ROOMS_SERVER);
}

#[test]
fn a_direct_message_opens_from_the_online_list_and_from_the_message_field() {
    run("direct_messages", ROOMS_SERVER);
}

#[test]
fn moderation_from_the_message_field_and_a_members_menu_is_enforced_and_shown() {
    let server: Vec<&str> = [ROOMS_SERVER, &["--operators", "alice"]].concat();
    run("moderation", &server);
}

#[test]
fn the_open_room_is_remembered_across_a_reload() {
    // A store: the room and its messages outlive nothing but the page.
    run("remembered_room_across_a_reload", &["--message-rate", "0"]);
}

#[test]
fn two_pages_of_one_name_agree_on_what_is_read() {
    run("read_markers_agree_across_pages", ROOMS_SERVER);
}

#[test]
fn every_room_catches_up_once_after_a_drop_and_a_server_restart() {
    // A store: the restarted server keeps every room's numbering.
    run(
        "rooms_catch_up_after_a_drop_and_a_restart",
        &["--message-rate", "0"],
    );
}

#[test]
fn a_message_in_flight_in_a_room_at_a_drop_is_sent_again_or_found() {
    run(
        "in_flight_room_messages_are_settled_after_a_drop",
        ROOMS_SERVER,
    );
}

#[test]
fn earlier_messages_of_a_room_are_shown_on_demand() {
    run("earlier_messages_on_demand", ROOMS_SERVER);
}

/// A server that speaks v2 at most (`--max-protocol 2`: an older wschat, or
/// a cluster in a rolling upgrade): the page keeps to the lobby and shows no
/// rooms.
#[test]
fn a_server_speaking_v2_gets_the_lobby_only() {
    run(
        "a_v2_server_gets_the_lobby_only",
        &["--in-memory", "--max-protocol", "2"],
    );
}

/// The rooms logic of the page (src/serve/web/rooms.js) under node's own
/// test runner: the slash commands, unread counts, read markers, catch-up.
#[test]
fn the_rooms_logic_passes_its_unit_tests() {
    let output = Command::new("node")
        .current_dir(browser_dir())
        .args(["--test", "rooms.test.mjs"])
        .output()
        .expect("run node (tests/run.sh installs it)");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// --- issue 24, defects 1–5 of the page (branch web-defects) ----------------

/// Fast enough to fill a long history in a moment.
const FAST: &[&str] = &["--message-rate", "200", "--message-burst", "200"];

#[test]
fn the_page_fits_the_window_and_only_the_message_list_scrolls() {
    run("the_page_fits_the_window_and_only_the_log_scrolls", FAST);
}

#[test]
fn on_a_phone_the_conversation_follows_new_messages_and_says_when_they_wait_below() {
    run("on_a_phone_the_conversation_follows_new_messages", FAST);
}

#[test]
fn the_online_list_has_whoever_joined_and_talked() {
    run(
        "the_online_list_has_whoever_joined_and_talked",
        &["--presence-rate", "1", "--presence-burst", "1"],
    );
}

#[test]
fn actions_mentions_and_times_read_as_chat_cli_shows_them() {
    run("actions_mentions_and_times_read_as_in_chat_cli", &[]);
}

#[test]
fn a_page_whose_origin_is_refused_says_so_and_does_not_retry_in_a_loop() {
    run(
        "a_refused_origin_is_said_and_not_retried",
        &["--allowed-origins", "http://chat.example.com"],
    );
}

/// Defect 5, the server's side: an upgrade refused for its Origin is
/// logged, at most once a minute per origin (the line counts the refusals
/// since the last); the page's origin check answers as the upgrade would.
#[test]
fn refused_origins_are_logged_once_a_minute_each_and_the_page_can_ask() {
    let server = ServerProcess::start(&["--allowed-origins", "http://chat.example.com"]);
    let request = |text: String| {
        let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
        tcp.set_read_timeout(Some(net::TIMEOUT)).unwrap();
        tcp.write_all(text.as_bytes()).unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).unwrap();
        response
    };
    let upgrade = |origin: &str| {
        request(format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Origin: {origin}\r\n\r\n"
        ))
    };
    for _ in 0..3 {
        let refused = upgrade("http://evil.example");
        assert!(refused.starts_with("HTTP/1.1 403 "), "{refused}");
    }
    assert!(upgrade("http://other.example").starts_with("HTTP/1.1 403 "));
    let line = |origin: &'static str| {
        move |l: &str| {
            l.contains("origin is not allowed") && l.contains(&format!("origin={origin}"))
        }
    };
    let other = server.wait_for_log(line("http://other.example"));
    assert!(
        other.is_some_and(|l| l.contains("refused=1")),
        "{}",
        server.log_text()
    );
    let evil: Vec<String> = server
        .log_text()
        .lines()
        .filter(|l| line("http://evil.example")(l))
        .map(str::to_owned)
        .collect();
    assert_eq!(evil.len(), 1, "{}", server.log_text());
    assert!(
        evil[0].contains("refused=1") && evil[0].contains("WARN"),
        "{evil:?}"
    );

    let check = |origin: &str| {
        request(format!(
            "GET /origin-check?origin={origin} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        ))
    };
    assert!(check("http%3A%2F%2F127.0.0.1").starts_with("HTTP/1.1 403 "));
    assert!(check("http%3A%2F%2Fchat.example.com").starts_with("HTTP/1.1 200 "));
}
