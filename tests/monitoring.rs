//! Operating `chat-server` over real sockets on 127.0.0.1: `/healthz`,
//! `/readyz` and `/metrics` on the chat's port or on `--admin-listen`,
//! what a scrape counts after a scripted session (read with a Prometheus
//! text parser), readiness while draining, request heads that are too
//! large, too slow or malformed, and JSON logs.
#![cfg(feature = "server")]

mod net;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use net::*;
use prometheus_parse::Value;
use serde_json::json;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PLAIN_TEXT: &str = "text/plain; charset=utf-8";

/// A scrape of `/metrics`, parsed.
struct Scrape(prometheus_parse::Scrape);

impl Scrape {
    fn of(addr: SocketAddr) -> Scrape {
        let answer = http_get(addr, "/metrics");
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.header("Content-Type"), Some(PROMETHEUS_TEXT));
        Scrape::parse(&answer.body)
    }

    fn parse(text: &str) -> Scrape {
        let lines = text.lines().map(|line| Ok(line.to_owned()));
        Scrape(prometheus_parse::Scrape::parse(lines).expect("the Prometheus text format"))
    }

    /// Every sample of the metrics named, as `name{label="value",…}` (labels
    /// sorted) → value. Histograms are left out.
    fn view(&self, names: &[&str]) -> BTreeMap<String, f64> {
        let mut view = BTreeMap::new();
        for sample in self
            .0
            .samples
            .iter()
            .filter(|s| names.contains(&&*s.metric))
        {
            let value = match sample.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                _ => continue,
            };
            view.insert(key(&sample.metric, &sample.labels), value);
        }
        view
    }

    /// The one value of `name` with exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted = series(name, labels);
        *self
            .view(&[name])
            .get(&wanted)
            .unwrap_or_else(|| panic!("no {wanted} in the scrape"))
    }

    /// The value of `name` with no labels, which must be a counter.
    fn counter(&self, name: &str) -> f64 {
        let sample = self.0.samples.iter().find(|s| s.metric == name);
        match sample.map(|s| &s.value) {
            Some(Value::Counter(v)) => *v,
            other => panic!("{name} is not a counter: {other:?}"),
        }
    }

    /// The number of observations of histogram `name`.
    fn histogram_count(&self, name: &str) -> f64 {
        let sample = self.0.samples.iter().find(|s| s.metric == name);
        match sample.map(|s| &s.value) {
            Some(Value::Histogram(buckets)) => buckets
                .iter()
                .find(|b| b.less_than == f64::INFINITY)
                .map(|b| b.count)
                .expect("a +Inf bucket"),
            other => panic!("{name} is not a histogram: {other:?}"),
        }
    }
}

fn key(name: &str, labels: &prometheus_parse::Labels) -> String {
    let mut pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (&**k, &**v)).collect();
    pairs.sort();
    series(name, &pairs)
}

/// `name{a="1",b="2"}`, or `name` alone.
fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels = labels.to_vec();
    labels.sort();
    if labels.is_empty() {
        return name.to_owned();
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// Scrapes `addr` until the metrics named show exactly `expected` (the
/// core and the connections count as they go, so a client may see its
/// answer a moment before the count); fails with the difference.
fn assert_settles(addr: SocketAddr, names: &[&str], expected: &[(String, f64)]) -> Scrape {
    let expected: BTreeMap<String, f64> = expected.iter().cloned().collect();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let scrape = Scrape::of(addr);
        let seen = scrape.view(names);
        if seen == expected {
            return scrape;
        }
        if Instant::now() > deadline {
            assert_eq!(seen, expected, "what the scrape shows, and what it should");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn at(name: &str, labels: &[(&str, &str)], value: f64) -> (String, f64) {
    (series(name, labels), value)
}

/// The metric names README's "Monitoring" section lists.
fn documented_metrics() -> Vec<String> {
    let readme = include_str!("../README.md");
    let section = readme
        .split("\n## Monitoring")
        .nth(1)
        .expect("a Monitoring section in README.md");
    let section = section.split("\n## ").next().unwrap_or(section);
    // Each list item names its metrics first: `wschat_a{label}`, `wschat_b`: …
    let items = section.split("\n- ").skip(1);
    let names = items.flat_map(|item| {
        let head = item.split(": ").next().unwrap_or_default();
        head.split('`')
            .filter(|part| part.starts_with("wschat_"))
            .map(|name| name.split('{').next().unwrap_or(name).to_owned())
            .collect::<Vec<_>>()
    });
    names.collect()
}

#[test]
fn each_endpoint_answers_with_its_status_type_and_body() {
    let server = ServerProcess::start(&[]);
    let healthz = http_get(server.addr, "/healthz");
    assert_eq!(
        (
            healthz.status,
            healthz.header("Content-Type"),
            &*healthz.body
        ),
        (200, Some(PLAIN_TEXT), "ok\n")
    );
    let readyz = http_get(server.addr, "/readyz");
    assert_eq!(
        (readyz.status, readyz.header("Content-Type"), &*readyz.body),
        (200, Some(PLAIN_TEXT), "ready\n")
    );
    for answer in [&healthz, &readyz] {
        assert_eq!(answer.header("Cache-Control"), Some("no-store"));
    }

    // Every metric the README lists is there, with its type, once there is
    // something to show in each: a connection closed, a request refused.
    let mut client = Client::connect(server.addr);
    close_from_client(&mut client);
    let refused = http(server.addr, "NOT HTTP\r\n\r\n");
    assert_eq!(refused.status, 400);
    let scrape = Scrape::of(server.addr);
    let documented = documented_metrics();
    assert!(documented.len() >= 15, "{documented:?}");
    let typed = |name: &str| {
        let sample = scrape.0.samples.iter().find(|s| s.metric == *name);
        sample.map(|s| match s.value {
            Value::Counter(_) => "counter",
            Value::Gauge(_) => "gauge",
            Value::Histogram(_) => "histogram",
            _ => "untyped",
        })
    };
    for name in &documented {
        let expected = match name {
            n if n.ends_with("_total") => "counter",
            n if n.ends_with("_seconds") => "histogram",
            _ => "gauge",
        };
        assert_eq!(typed(name), Some(expected), "{name}");
    }
    // ... and nothing it does not list.
    let mut shown: Vec<&str> = scrape.0.docs.keys().map(String::as_str).collect();
    shown.sort();
    let mut listed: Vec<&str> = documented.iter().map(String::as_str).collect();
    listed.sort();
    assert_eq!(shown, listed, "README's list and /metrics differ");
    assert_eq!(
        scrape.value(
            "wschat_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    // HEAD: the same answer without its body.
    let head = http(server.addr, "HEAD /metrics HTTP/1.1\r\nHost: chat\r\n\r\n");
    assert_eq!((head.status, &*head.body), (200, ""));
    assert_eq!(head.header("Content-Type"), Some(PROMETHEUS_TEXT));
    let length: usize = head.header("Content-Length").unwrap().parse().unwrap();
    assert!(length > 1000, "{length}");

    // A scraper that asks for OpenMetrics gets it.
    let open = http(
        server.addr,
        "GET /metrics HTTP/1.1\r\nHost: chat\r\nAccept: application/openmetrics-text;\
         version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n\r\n",
    );
    assert_eq!(open.header("Content-Type"), Some(OPENMETRICS_TEXT));
    assert!(open.body.ends_with("# EOF\n"), "{}", open.body);
    assert!(open.body.contains("\n# TYPE wschat_messages counter\n"));

    let missing = http_get(server.addr, "/healthz/");
    assert_eq!(
        (missing.status, missing.header("Content-Type")),
        (404, Some(PLAIN_TEXT))
    );
    assert!(missing.body.starts_with("not found"), "{}", missing.body);
    let post = http(
        server.addr,
        "POST /readyz HTTP/1.1\r\nHost: chat\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(
        (post.status, post.header("Allow")),
        (405, Some("GET, HEAD"))
    );
}

/// Closes from the client's side with 1000, reading what is still on its
/// way until the server hangs up.
fn close_from_client(client: &mut Client) {
    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    client.ws.close(Some(bye)).expect("send a Close");
    while let Ok(message) = client.ws.read() {
        client.texts_received += u64::from(message.is_text());
    }
}

/// Reads until `client` has seen its own message `text` come back.
fn read_until_echo(client: &mut Client, text: &str) {
    while client.recv_type("textBroadcast")["message"] != text {}
}

#[test]
fn a_scrape_after_a_session_shows_exactly_what_the_session_did() {
    let server = ServerProcess::start(&[
        "--login-timeout",
        "2s",
        "--max-frame-bytes",
        "1024",
        "--message-rate",
        "1",
        "--message-burst",
        "3",
    ]);
    // carol never logs in: one error, then closed for it.
    let mut carol = Client::connect(server.addr);
    carol.send_json(json!({"type": "textFromUser", "id": "c1", "text": "hi?"}));
    assert_eq!(
        carol.recv_type("errorMessage")["error"],
        "messagingWhileNotLoggedIn"
    );

    // alice (v1) says two things and leaves.
    let mut alice = Client::connect(server.addr);
    alice.login("alice");
    alice.say("one");
    alice.say("two");
    read_until_echo(&mut alice, "one");
    read_until_echo(&mut alice, "two");
    close_from_client(&mut alice);

    // bob (v2) says one thing, one empty thing, then sends too much.
    let mut bob = Client::connect_v2(server.addr);
    bob.login("bob");
    bob.say("three");
    read_until_echo(&mut bob, "three");
    bob.say("  ");
    assert_eq!(bob.recv_type("errorMessage")["error"], "emptyMessage");
    bob.send_text(&"x".repeat(2000));
    let (code, reason, _) = bob.recv_close();
    assert_eq!((code, reason.as_str()), (1009, "message too big"));

    // dave (v1) sends his login and three messages at once: past the burst
    // of three frames, the last is refused.
    let mut dave = Client::connect(server.addr);
    for frame in [
        json!({"type": "login", "id": "d0", "username": "dave"}),
        json!({"type": "textFromUser", "id": "d1", "text": "four"}),
        json!({"type": "textFromUser", "id": "d2", "text": "five"}),
        json!({"type": "textFromUser", "id": "d3", "text": "six"}),
    ] {
        dave.ws.write(Message::text(frame.to_string())).unwrap();
    }
    dave.ws.flush().unwrap();
    let (mut echoes, mut limited) = (0, false);
    while echoes < 2 || !limited {
        let json = dave.recv_json();
        match json["type"].as_str() {
            Some("textBroadcast") if json["username"] == "dave" => echoes += 1,
            Some("errorMessage") => {
                assert_eq!(json["error"], "rateLimited", "{json}");
                limited = true;
            }
            _ => {}
        }
    }

    let (code, reason, _) = carol.recv_close();
    assert_eq!((code, reason.as_str()), (1008, "login timeout"));

    // Every frame queued to anyone was read by someone: deliveries are the
    // frames the four clients received.
    let delivered: u64 = [&alice, &bob, &carol, &dave]
        .iter()
        .map(|c| c.texts_received)
        .sum();
    let names = [
        "wschat_connections",
        "wschat_connections_opened_total",
        "wschat_connections_closed_total",
        "wschat_handshakes_refused_total",
        "wschat_logged_in_users",
        "wschat_held_names",
        "wschat_logins_total",
        "wschat_messages_total",
        "wschat_deliveries_total",
        "wschat_errors_total",
        "wschat_rate_limited_total",
        "wschat_send_queue_bytes",
        "wschat_requests_in_flight",
    ];
    let error = |code: &'static str, n: f64| at("wschat_errors_total", &[("error", code)], n);
    let expected = [
        at("wschat_connections", &[("protocol", "v1")], 1.0),
        at("wschat_connections", &[("protocol", "v2")], 0.0),
        at("wschat_connections", &[("protocol", "v3")], 0.0),
        at(
            "wschat_connections_opened_total",
            &[("protocol", "v1")],
            3.0,
        ),
        at(
            "wschat_connections_opened_total",
            &[("protocol", "v2")],
            1.0,
        ),
        at(
            "wschat_connections_opened_total",
            &[("protocol", "v3")],
            0.0,
        ),
        at(
            "wschat_connections_closed_total",
            &[("code", "1000"), ("reason", "closed by peer")],
            1.0,
        ),
        at(
            "wschat_connections_closed_total",
            &[("code", "1009"), ("reason", "message too big")],
            1.0,
        ),
        at(
            "wschat_connections_closed_total",
            &[("code", "1008"), ("reason", "login timeout")],
            1.0,
        ),
        at("wschat_logged_in_users", &[], 1.0),
        at("wschat_held_names", &[], 2.0),
        at("wschat_logins_total", &[("name", "new")], 3.0),
        at("wschat_logins_total", &[("name", "reclaimed")], 0.0),
        at("wschat_messages_total", &[], 5.0),
        at("wschat_deliveries_total", &[], delivered as f64),
        error("messagingWhileNotLoggedIn", 1.0),
        error("emptyMessage", 1.0),
        error("rateLimited", 1.0),
        error("loginTaken", 0.0),
        error("alreadyLoggedIn", 0.0),
        error("bytesReceived", 0.0),
        error("invalidJson", 0.0),
        error("invalidUsername", 0.0),
        error("messageTooLong", 0.0),
        error("unavailable", 0.0),
        error("invalidRoom", 0.0),
        error("noSuchUser", 0.0),
        error("notAMember", 0.0),
        error("forbidden", 0.0),
        error("banned", 0.0),
        error("muted", 0.0),
        error("limitReached", 0.0),
        at("wschat_rate_limited_total", &[("limit", "messages")], 1.0),
        at(
            "wschat_rate_limited_total",
            &[("limit", "login_failures")],
            0.0,
        ),
        at("wschat_rate_limited_total", &[("limit", "new_names")], 0.0),
        at("wschat_send_queue_bytes", &[], 0.0),
        at("wschat_requests_in_flight", &[], 0.0),
    ];
    let scrape = assert_settles(server.addr, &names, &expected);
    assert!(delivered >= 12, "{delivered}");

    // Bytes both ways, at least the four upgrades' (about 200 bytes each);
    // and the store committed what was said, timed.
    assert!(scrape.counter("wschat_received_bytes_total") > 800.0);
    assert!(scrape.counter("wschat_sent_bytes_total") > 800.0);
    assert!(scrape.histogram_count("wschat_core_step_seconds") > 0.0);
    assert!(scrape.histogram_count("wschat_store_commit_seconds") > 0.0);
}

#[test]
fn readyz_turns_503_from_the_start_of_a_shutdown_while_connections_drain() {
    let mut server =
        ServerProcess::start(&["--shutdown-timeout", "3s", "--admin-listen", "127.0.0.1:0"]);
    let admin = server.admin_addr();
    assert_eq!(http_get(admin, "/readyz").status, 200);
    // A client that will not answer our Close holds the drain open.
    let mut stubborn = Client::connect(server.addr);
    stubborn.login("stubborn");

    server.terminate();
    let started = Instant::now();
    let mut readyz = http_get(admin, "/readyz");
    while readyz.status == 200 && started.elapsed() < TIMEOUT {
        thread::sleep(Duration::from_millis(10));
        readyz = http_get(admin, "/readyz");
    }
    assert_eq!(
        (readyz.status, &*readyz.body),
        (503, "not ready: shutting down\n")
    );
    // Alive all the same, and so say probes on the chat's port, which
    // refuses anyone new meanwhile.
    assert_eq!(http_get(admin, "/healthz").status, 200);
    assert!(
        server
            .wait_for_log(|l| l
                .trim_end()
                .ends_with("shutting down: closing 1 connection"))
            .is_some()
    );
    let upgrade = http(
        server.addr,
        "GET / HTTP/1.1\r\nHost: chat\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    assert_eq!(upgrade.status, 503, "{upgrade:?}");
    let metrics = Scrape::of(admin);
    assert_eq!(
        metrics.value("wschat_handshakes_refused_total", &[("status", "503")]),
        1.0
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the window closed early"
    );
    assert_eq!(server.wait_exit().code(), Some(0), "{}", server.log_text());
    assert!(server.has_logged(|l| l.contains("shutdown timeout: dropping 1 connections")));
    drop(stubborn);
}

#[test]
fn readyz_is_served_on_the_chat_port_while_draining_too() {
    let mut server = ServerProcess::start(&["--shutdown-timeout", "3s"]);
    let mut stubborn = Client::connect(server.addr);
    stubborn.login("stubborn");
    server.terminate();
    let started = Instant::now();
    let mut readyz = http_get(server.addr, "/readyz");
    while readyz.status == 200 && started.elapsed() < TIMEOUT {
        thread::sleep(Duration::from_millis(10));
        readyz = http_get(server.addr, "/readyz");
    }
    // The chat's port says whether, not why (the reasons are on --admin-listen).
    assert_eq!((readyz.status, &*readyz.body), (503, "not ready\n"));
    assert_eq!(http_get(server.addr, "/healthz").status, 200);
    assert_eq!(server.wait_exit().code(), Some(0), "{}", server.log_text());
    drop(stubborn);
}

#[test]
fn admin_listen_moves_the_endpoints_off_the_chat_port() {
    let server = ServerProcess::start(&["--admin-listen", "127.0.0.1:0"]);
    let admin = server.admin_addr();
    assert_ne!(admin, server.addr);
    for path in ["/healthz", "/readyz", "/metrics"] {
        let on_chat = http_get(server.addr, path);
        assert_eq!(on_chat.status, 404, "{path} on the chat port");
        assert_eq!(
            http_get(admin, path).status,
            200,
            "{path} on the admin port"
        );
    }
    assert_eq!(http_get(admin, "/healthz").body, "ok\n");
    // The admin port serves nothing else: no web client, no chat.
    assert_eq!(http_get(admin, "/").status, 404);
    assert_eq!(http_get(server.addr, "/").status, 200);
    let post = http(
        admin,
        "POST /metrics HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    let head = http(admin, "HEAD /readyz HTTP/1.1\r\nHost: admin\r\n\r\n");
    assert_eq!((head.status, &*head.body), (200, ""));

    // The original frontend upgrades on any path, these included.
    let mut alice = Client::connect_to(server.addr, "/metrics");
    alice.login("alice");
    let mut bob = Client::connect_to(server.addr, "/some/page.html");
    bob.login("bob");
    alice.say("still a chat");
    assert_eq!(bob.recv_type("textBroadcast")["message"], "still a chat");
    let scrape = Scrape::of(admin);
    assert_eq!(
        scrape.value("wschat_connections", &[("protocol", "v1")]),
        2.0
    );
}

/// Sends `bytes`, then reads the answer until the server hangs up.
fn answer_to(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut tcp = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    tcp.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer)
        .expect("an answer, then a hang-up");
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn heads_too_large_too_slow_or_malformed_get_431_408_400_on_both_ports() {
    let server =
        ServerProcess::start(&["--handshake-timeout", "1s", "--admin-listen", "127.0.0.1:0"]);
    let admin = server.admin_addr();
    // Exactly the cap, with no end: all of it is read, so the answer is not
    // lost to a reset for unread bytes.
    let mut too_large = b"GET / HTTP/1.1\r\nX-Padding: ".to_vec();
    too_large.resize(8 * 1024, b'a');
    let malformed = b"\x16\x03\x01\x02\x00 not HTTP\r\n\r\n";
    let slow = b"GET /healthz HTTP/1.1\r\nHost: x\r\n";
    let bad_upgrade = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                        Sec-WebSocket-Version: 13\r\n\r\n";
    for addr in [server.addr, admin] {
        for (bytes, status) in [
            (&too_large[..], "431"),
            (&malformed[..], "400"),
            (&slow[..], "408"),
        ] {
            let answer = answer_to(addr, bytes);
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status} ")),
                "{addr}: {answer:?}"
            );
        }
    }
    let answer = answer_to(server.addr, bad_upgrade);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer:?}");

    // Counted on the chat port (the admin port's own are not handshakes),
    // and the chat carries on.
    let expected = [
        at("wschat_handshakes_refused_total", &[("status", "400")], 2.0),
        at("wschat_handshakes_refused_total", &[("status", "408")], 1.0),
        at("wschat_handshakes_refused_total", &[("status", "431")], 1.0),
    ];
    assert_settles(admin, &["wschat_handshakes_refused_total"], &expected);
    let mut alice = Client::connect(server.addr);
    alice.login("alice");
    assert!(!server.log_text().contains("panicked"));
}

#[test]
fn json_logs_carry_the_fields_of_the_text_logs() {
    let mut server = ServerProcess::start(&["--log-format", "json"]);
    let mut alice = Client::connect(server.addr);
    alice.login("alice");
    server.terminate();
    alice.recv_close();
    assert_eq!(server.wait_exit().code(), Some(0));
    let log = server.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(lines.len() >= 5, "{log}");
    for line in &lines {
        for field in ["timestamp", "level", "target", "message"] {
            assert!(line[field].is_string(), "no {field} in {line}");
        }
    }
    let joined = lines
        .iter()
        .find(|l| l["message"] == "joined")
        .unwrap_or_else(|| panic!("no joined line in {log}"));
    assert_eq!(joined["level"], "INFO");
    assert_eq!(joined["username"], "alice");
    assert_eq!(joined["fresh"], true);
    assert_eq!(joined["peer"], alice.local_addr.to_string());
    assert!(
        joined["conn"].as_str().is_some_and(|c| c.starts_with('c')),
        "{joined}"
    );
}
