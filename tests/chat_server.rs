//! `chat-server` over real sockets on 127.0.0.1: the original frontend's
//! message flow, fan-out order, every error code, limits, slow readers,
//! eviction and graceful shutdown.
#![cfg(feature = "server")]

mod net;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use clap::CommandFactory;
use net::*;
use serde_json::json;
use tungstenite::Message;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use wschat::serve::{ChatServer, Options};

const ID_LEN: usize = 21;
const SECRET_LEN: usize = 24;

#[test]
fn the_original_frontends_flow_works_field_by_field() {
    let server = ServerProcess::start(&[]);
    let mut ids = HashSet::new();
    let mut fresh_id = |value: &serde_json::Value| {
        let id = assert_random_id(value, ID_LEN);
        assert!(ids.insert(id.clone()), "id {id} sent twice");
    };
    // Someone who has the page open but has not logged in.
    let mut watcher = Client::connect(server.addr);
    let mut alice = Client::connect_to(server.addr, "/any/path?x=1");

    alice.send_text(r#"{"type":"textFromUser","id":"m0","text":"hi before login"}"#);
    let text = alice.recv_text();
    assert_eq!(keys(&text), ["type", "error", "id", "description"]);
    let error: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error["type"], "errorMessage");
    assert_eq!(error["error"], "messagingWhileNotLoggedIn");
    fresh_id(&error["id"]);
    assert!(!error["description"].as_str().unwrap().is_empty());

    // The frontend logs in on open, without a secret the first time.
    alice.send_text(r#"{"type":"login","id":"l1","username":"alice"}"#);
    for client in [&mut alice, &mut watcher] {
        let text = client.recv_text();
        assert_eq!(keys(&text), ["type", "id", "username", "location"]);
        let broadcast: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(broadcast["type"], "loginBroadcast");
        assert_random_id(&broadcast["id"], ID_LEN);
        assert_eq!(broadcast["username"], "alice");
        assert_eq!(broadcast["location"], "127.0.0.1");
    }
    let text = alice.recv_text();
    assert_eq!(
        keys(&text),
        ["type", "id", "username", "location", "secret"]
    );
    let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(reply["type"], "loginMessage");
    fresh_id(&reply["id"]);
    assert_eq!(reply["username"], "alice");
    assert_eq!(reply["location"], "127.0.0.1");
    let secret = assert_random_id(&reply["secret"], SECRET_LEN);

    alice.send_text(r#"{"type":"textFromUser","id":"m1","text":"hello world"}"#);
    for client in [&mut alice, &mut watcher] {
        let text = client.recv_text();
        assert_eq!(keys(&text), ["type", "id", "username", "message"]);
        let broadcast: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(broadcast["type"], "textBroadcast");
        assert_random_id(&broadcast["id"], ID_LEN);
        assert_eq!(broadcast["username"], "alice");
        assert_eq!(broadcast["message"], "hello world");
    }

    // The connection drops; the frontend reconnects and logs in again with
    // the secret it stored, extra fields and all.
    alice.ws.close(None).unwrap();
    while alice.ws.read().is_ok() {}
    let mut alice = Client::connect(server.addr);
    alice.send_json(
        json!({"type": "login", "id": "l2", "username": "alice", "secret": secret, "extra": [1]}),
    );
    let broadcast = watcher.recv_json();
    assert_eq!(broadcast["type"], "loginBroadcast");
    assert_eq!(broadcast["username"], "alice");
    assert_eq!(alice.recv_json()["type"], "loginBroadcast");
    let reply = alice.recv_json();
    assert_eq!(reply["type"], "loginMessage");
    fresh_id(&reply["id"]);
    assert_eq!(
        reply["secret"],
        secret.as_str(),
        "reclaiming keeps the secret"
    );

    // The same person on a second device.
    let mut phone = Client::connect(server.addr);
    phone.send_json(json!({"type": "login", "id": "l3", "username": "alice", "secret": secret}));
    assert_eq!(phone.recv_type("loginMessage")["secret"], secret.as_str());

    phone.send_text(r#"{"type":"textFromUser","id":"m2","text":"from my phone"}"#);
    for client in [&mut alice, &mut watcher, &mut phone] {
        let broadcast = client.recv_type("textBroadcast");
        assert_eq!(broadcast["username"], "alice");
        assert_eq!(broadcast["message"], "from my phone");
    }
}

#[test]
fn every_client_sees_every_broadcast_in_the_same_order() {
    // Each client sends its 25 messages at once: no rate limit here.
    let server = ServerProcess::start(&["--message-rate", "0"]);
    const CLIENTS: usize = 4;
    const MESSAGES: usize = 25;
    let mut clients: Vec<Client> = (0..CLIENTS).map(|_| Client::connect(server.addr)).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.login(&format!("user{i}"));
    }
    let threads: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            thread::spawn(move || {
                for n in 0..MESSAGES {
                    client.say(&format!("user{i} #{n}"));
                }
                let seen: Vec<String> = (0..CLIENTS * MESSAGES)
                    .map(|_| {
                        client.recv_type("textBroadcast")["message"]
                            .as_str()
                            .unwrap()
                            .to_owned()
                    })
                    .collect();
                (client, seen)
            })
        })
        .collect();
    let results: Vec<(Client, Vec<String>)> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();

    let first = &results[0].1;
    for (_, seen) in &results {
        assert_eq!(seen, first, "every client sees the same order");
    }
    for i in 0..CLIENTS {
        let mine: Vec<&String> = first
            .iter()
            .filter(|m| m.starts_with(&format!("user{i} ")))
            .collect();
        let sent: Vec<String> = (0..MESSAGES).map(|n| format!("user{i} #{n}")).collect();
        assert_eq!(mine, sent.iter().collect::<Vec<_>>(), "sender order kept");
    }
}

// The library API that embedders build on (tests otherwise run the binary).
#[test]
fn an_in_process_server_shuts_down_as_gracefully_as_on_sigterm() {
    let options = Options {
        listen: ([127, 0, 0, 1], 0).into(),
        threads: std::num::NonZeroUsize::new(1),
        in_memory: true,
        ..Options::default()
    };
    let server = ChatServer::bind(options).unwrap().spawn().unwrap();
    let mut alice = Client::connect(server.local_addr());
    alice.login("alice");
    let shutdown = thread::spawn(move || server.shutdown());
    let (code, reason, _) = alice.recv_close();
    assert_eq!((code, reason.as_str()), (1001, "server shutting down"));
    shutdown.join().unwrap().unwrap();
}

#[test]
fn each_error_code_reaches_only_the_offender() {
    let server = ServerProcess::start(&["--max-message-chars", "10"]);
    let mut alice = Client::connect(server.addr);
    let mut bob = Client::connect(server.addr);
    let mut eve = Client::connect(server.addr);
    let alice_secret = alice.login("alice");
    bob.recv_type("loginBroadcast");
    eve.recv_type("loginBroadcast");

    let expect_error = |client: &mut Client, input: Message, code: &str| {
        client.ws.send(input.clone()).unwrap();
        let reply = client.recv_json();
        assert_eq!(reply["type"], "errorMessage", "{input:?}");
        assert_eq!(reply["error"], code, "{input:?}");
        assert!(!reply["description"].as_str().unwrap().is_empty());
    };
    let text = |json: serde_json::Value| Message::text(json.to_string());

    expect_error(
        &mut eve,
        text(json!({"type": "textFromUser", "id": "1", "text": "hi"})),
        "messagingWhileNotLoggedIn",
    );
    expect_error(
        &mut eve,
        text(json!({"type": "login", "id": "2", "username": ""})),
        "invalidUsername",
    );
    expect_error(
        &mut eve,
        text(json!({"type": "login", "id": "3", "username": "alice"})),
        "loginTaken",
    );
    expect_error(
        &mut eve,
        text(json!({"type": "login", "id": "4", "username": "ALICE", "secret": "guess"})),
        "loginTaken",
    );
    expect_error(
        &mut alice,
        text(json!({"type": "login", "id": "5", "username": "alice", "secret": alice_secret})),
        "alreadyLoggedIn",
    );
    expect_error(&mut alice, Message::binary(vec![1, 2, 3]), "bytesReceived");
    expect_error(
        &mut alice,
        text(json!({"type": "shout", "id": "6"})),
        "invalidJson",
    );
    expect_error(
        &mut alice,
        text(json!({"type": "textFromUser", "id": "7", "text": "   "})),
        "emptyMessage",
    );
    expect_error(
        &mut alice,
        text(json!({"type": "textFromUser", "id": "8", "text": "eleven char"})),
        "messageTooLong",
    );

    // None of that reached bob; alice can still talk.
    alice.say("still here");
    for client in [&mut alice, &mut bob] {
        let json = client.recv_json();
        assert_eq!(json["type"], "textBroadcast");
        assert_eq!(json["message"], "still here");
    }
}

#[test]
fn non_json_and_null_get_invalid_json_and_everyone_carries_on() {
    let server = ServerProcess::start(&[]);
    let mut rude = Client::connect(server.addr);
    let mut alice = Client::connect(server.addr);
    let mut bob = Client::connect(server.addr);
    alice.login("alice");
    bob.login("bob");
    rude.recv_type("loginBroadcast");
    rude.recv_type("loginBroadcast");
    alice.recv_type("loginBroadcast"); // bob's

    for input in ["hello", "null", "", "[1,2]", "{\"type\":"] {
        rude.send_text(input);
        let reply = rude.recv_json();
        assert_eq!(reply["type"], "errorMessage", "{input:?}");
        assert_eq!(reply["error"], "invalidJson", "{input:?}");
    }
    alice.say("did anything happen?");
    for client in [&mut rude, &mut alice, &mut bob] {
        let json = client.recv_json();
        assert_eq!(json["type"], "textBroadcast");
        assert_eq!(json["message"], "did anything happen?");
    }
    rude.login("rude");
    rude.say("sorry");
    assert_eq!(bob.recv_type("textBroadcast")["message"], "sorry");
}

#[test]
fn a_protocol_violation_closes_only_that_connection() {
    let server = ServerProcess::start(&["--max-frame-bytes", "1024"]);
    let mut alice = Client::connect(server.addr);
    let mut big = Client::connect(server.addr);
    let mut garbled = Client::connect(server.addr);
    alice.login("alice");
    big.login("big");
    garbled.recv_type("loginBroadcast");

    big.say(&"x".repeat(2000));
    let (code, _, _) = big.recv_close();
    assert_eq!(code, 1009);

    let not_utf8 = Frame::message(&b"{\"\xff\"}"[..], OpCode::Data(Data::Text), true);
    garbled.ws.send(Message::Frame(not_utf8)).unwrap();
    let (code, _, _) = garbled.recv_close();
    assert_eq!(code, 1007);

    alice.say("still fine");
    assert_eq!(alice.recv_type("textBroadcast")["message"], "still fine");
    let mut late = Client::connect(server.addr);
    late.login("late");
    late.say("me too");
    assert_eq!(alice.recv_type("textBroadcast")["message"], "me too");
}

#[test]
fn a_client_that_stops_reading_is_closed_and_slows_no_one() {
    // Room for 16 messages: ample for a reader that keeps up.
    let server = ServerProcess::start(&[
        "--max-message-chars",
        "16000",
        "--send-queue-bytes",
        "262144",
        // The sender floods on purpose: no rate limit here.
        "--message-rate",
        "0",
    ]);
    let mut sender = Client::connect(server.addr);
    let mut reader = Client::connect(server.addr);
    let mut sloth = Client::connect(server.addr);
    sender.login("sender");
    reader.login("reader");
    sloth.login("sloth");
    let sloth_port = format!("peer={}", sloth.local_addr);
    let is_sloth_closed = |l: &str| l.contains("too slow") && l.contains(&sloth_port);

    // The reader collects everything in its own thread until "done".
    let reader = thread::spawn(move || {
        let mut seen = Vec::new();
        loop {
            let json = reader.recv_type("textBroadcast");
            let message = json["message"].as_str().unwrap().to_owned();
            if message == "done" {
                return seen;
            }
            seen.push(message);
        }
    });

    // The sloth never reads. Kernel buffers absorb a few MB before its queue
    // fills, so send (in lockstep with our own echo) until the server says
    // it closed the sloth; the cap only turns a bug into a failure.
    let padding = "x".repeat(15_000);
    let mut sent = Vec::new();
    while !server.has_logged(is_sloth_closed) {
        assert!(sent.len() < 4000, "the sloth was never closed");
        let message = format!("{} {padding}", sent.len());
        sender.say(&message);
        assert_eq!(sender.recv_type("textBroadcast")["message"], message);
        sent.push(message);
    }
    sender.say("done");

    let seen = reader.join().unwrap();
    assert_eq!(seen.len(), sent.len(), "the reader got everything");
    assert!(seen == sent, "in order");

    let (code, reason, texts) = sloth.recv_close();
    assert_eq!((code, reason.as_str()), (1008, "too slow"));
    let got: Vec<String> = texts
        .iter()
        .map(|t| serde_json::from_str::<serde_json::Value>(t).unwrap())
        .filter(|j| j["type"] == "textBroadcast")
        .map(|j| j["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(got.len() < sent.len());
    assert_eq!(
        got[..],
        sent[..got.len()],
        "the sloth got a prefix, in order"
    );
}

#[test]
fn a_silent_client_is_evicted_and_its_name_freed_after_the_ttl() {
    let server = ServerProcess::start(&[
        "--ping-interval",
        "200ms",
        "--evict-after",
        "1s",
        "--login-ttl",
        "2s",
    ]);
    // tungstenite answers pings only while reading: this client never reads
    // until the end, so it never answers.
    let mut silent = Client::connect(server.addr);
    let silent_secret = silent.login("silent");

    let mut other = Client::connect(server.addr);
    let login = json!({"type": "login", "id": "l", "username": "silent"});
    other.send_json(login.clone());
    assert_eq!(other.recv_json()["error"], "loginTaken");
    // Free at about 1 s (eviction) + 2 s (TTL); poll until then.
    let deadline = Instant::now() + TIMEOUT;
    let reply = loop {
        assert!(Instant::now() < deadline, "the name was never freed");
        thread::sleep(Duration::from_millis(200));
        other.send_json(login.clone());
        let reply = other.recv_json();
        if reply["type"] == "errorMessage" {
            assert_eq!(reply["error"], "loginTaken");
            continue;
        }
        assert_eq!(reply["type"], "loginBroadcast");
        break other.recv_json();
    };
    assert_eq!(reply["type"], "loginMessage");
    assert_ne!(reply["secret"], silent_secret.as_str(), "a fresh login");

    let mut pings = 0;
    let close = loop {
        match silent.recv_any() {
            Message::Ping(_) => pings += 1,
            Message::Close(close) => break close.unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(pings > 0, "it was pinged before being evicted");
    assert_eq!(u16::from(close.code), 1000);
    assert_eq!(close.reason.as_str(), "ping timeout");
}

#[test]
fn a_close_that_is_never_answered_ends_in_a_dropped_connection() {
    let server = ServerProcess::start(&["--ping-interval", "200ms", "--evict-after", "1s"]);
    let tcp = TcpStream::connect(server.addr).unwrap();
    let mut raw = tcp.try_clone().unwrap();
    raw.set_read_timeout(Some(TIMEOUT)).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{}/", server.addr), tcp).unwrap();
    ws.send(Message::text(
        r#"{"type":"login","id":"l","username":"mute"}"#,
    ))
    .unwrap();
    // From here on, read raw bytes and never answer anything: no pong, so
    // the server evicts us, and no answer to its Close either.
    let mut bytes = Vec::new();
    raw.read_to_end(&mut bytes)
        .expect("the server hangs up in time");
    // Server frames are unmasked and, here, shorter than 64 KiB.
    let mut close = None;
    let mut rest = &bytes[..];
    while let [first, len, tail @ ..] = rest {
        let (len, tail) = match len {
            126 => (
                usize::from(u16::from_be_bytes([tail[0], tail[1]])),
                &tail[2..],
            ),
            len => (usize::from(*len), tail),
        };
        let (payload, next) = tail.split_at(len);
        if first & 0x0f == 0x8 {
            close = Some(payload.to_vec());
        }
        rest = next;
    }
    let close = close.expect("a Close frame before the hang-up");
    assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1000);
    assert_eq!(&close[2..], b"ping timeout");
}

#[test]
fn sigterm_closes_everyone_with_1001_and_exits_0() {
    let mut server = ServerProcess::start(&[]);
    let mut clients: Vec<Client> = (0..3).map(|_| Client::connect(server.addr)).collect();
    clients[0].login("alice");
    clients[1].login("bob");

    server.terminate();
    for client in &mut clients {
        let (code, reason, _) = client.recv_close();
        assert_eq!((code, reason.as_str()), (1001, "server shutting down"));
    }
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", server.log_text());
    assert!(!server.log_text().contains("panicked"));
}

#[test]
fn plain_http_gets_404_or_405_and_the_server_carries_on() {
    let server = ServerProcess::start(&[]);
    for (request, status) in [
        ("GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n", "404"),
        (
            "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
            "405",
        ),
    ] {
        let mut tcp = TcpStream::connect(server.addr).unwrap();
        tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
        tcp.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status} ")),
            "{response:?}"
        );
    }
    let mut client = Client::connect(server.addr);
    client.login("alice");
}

#[test]
fn help_lists_every_flag_and_bad_values_are_usage_errors() {
    let exe = env!("CARGO_BIN_EXE_chat-server");
    let help = Command::new(exe).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    // Every flag the server has, from its own definition, so that none can
    // be left out of this check.
    let mut checked = 0;
    for arg in Options::command().get_arguments() {
        let Some(long) = arg.get_long().filter(|l| !["help", "version"].contains(l)) else {
            continue;
        };
        // Hidden, and refused: --redis-url without the `cluster` feature.
        if arg.is_hide_set() {
            continue;
        }
        let env = arg
            .get_env()
            .unwrap_or_else(|| panic!("--{long} has no variable"));
        let env = env.to_str().unwrap();
        // A switch's line ends with its name; a flag's names its value next.
        let flag = match arg.get_action() {
            clap::ArgAction::SetTrue => format!("--{long}"),
            _ => format!("--{long} "),
        };
        match arg.get_default_values() {
            [default] => assert_flag_documented(&help, &flag, env, default.to_str().unwrap()),
            _ => {
                assert_flag_documented_without_default(&help, &flag, env);
            }
        }
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} flags");
    for (flag, mentions) in [("--tls-cert", "wss://"), ("--tls-key", "PKCS#8")] {
        let block = help
            .split("\n\n")
            .find(|b| b.lines().any(|l| l.trim_start().starts_with(flag)))
            .unwrap_or_else(|| panic!("{flag} missing from --help"));
        assert!(block.contains(mentions), "{block}");
    }

    let bad = Command::new(exe)
        .args(["--ping-interval", "soon"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--ping-interval"));
    let bad = Command::new(exe)
        .env("CHAT_SEND_QUEUE_BYTES", "lots")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--send-queue-bytes"));
}

#[test]
fn flags_that_cannot_work_together_are_refused_in_one_line() {
    let exe = env!("CARGO_BIN_EXE_chat-server");
    let bad = Command::new(exe)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--ping-interval",
            "30s",
            "--evict-after",
            "20s",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8(bad.stderr).unwrap();
    assert_eq!(
        stderr,
        "chat-server: --evict-after (20s) must be longer than --ping-interval (30s): a silent \
         connection would be closed before it was ever pinged\n"
    );
}

#[test]
fn listen_takes_a_host_name() {
    let mut server = ServerProcess::start_listening("localhost:0", &[]);
    assert!(server.addr.ip().is_loopback(), "{}", server.addr);
    let mut client = Client::connect(server.addr);
    client.login("alice");
    server.terminate();
    let (code, _, _) = client.recv_close();
    assert_eq!(code, 1001);
    assert_eq!(server.wait_exit().code(), Some(0));
}

#[test]
fn at_the_default_log_level_joins_and_leaves_are_logged_without_secrets() {
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    command
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("data"))
        .env("RUST_LOG", "info");
    let server = ServerProcess::spawn(command);
    let mut alice = Client::connect(server.addr);
    let secret = alice.login("alice");
    drop(alice);
    let joined = server
        .wait_for_log(|l| l.contains("joined") && l.contains("alice"))
        .expect("a join logged at info");
    assert!(joined.contains("127.0.0.1"), "{joined}");
    let left = server
        .wait_for_log(|l| l.contains("left") && l.contains("alice"))
        .expect("a leave logged at info");
    assert!(left.contains("127.0.0.1"), "{left}");
    assert!(
        !server.log_text().contains(&secret),
        "{}",
        server.log_text()
    );
    assert!(!server.log_text().contains("DEBUG"));
}

#[test]
fn the_log_gives_the_web_client_s_address_beside_the_chat_s() {
    let server = ServerProcess::start(&["--in-memory"]);
    let page = format!("web client at http://{}/", server.addr);
    assert!(
        server.wait_for_log(|l| l.contains(&page)).is_some(),
        "no {page:?} in {}",
        server.log_text()
    );
}
