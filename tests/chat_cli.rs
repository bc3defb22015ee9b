//! chat-cli in scripting mode against a real chat-server on 127.0.0.1.
#![cfg(all(feature = "cli", feature = "server"))]

mod clients;
mod net;

use std::fs;
use std::net::TcpListener;

use clients::{Cli, Proxy, Server, chat_cli, chatting, run_script, state_dir};
use serde_json::Value;

#[test]
fn piped_lines_are_sent_echoed_and_the_client_exits_0() {
    let server = Server::start(&[]);
    let state = state_dir();
    let out = run_script(
        state.path(),
        &[&server.url(), "--name", "bot"],
        "hi\nthere\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, ["bot (you): hi", "bot (you): there"]);
    assert_eq!(out.stderr, Vec::<String>::new());
}

#[test]
fn two_clients_exchange_messages_and_see_each_other_join() {
    let server = Server::start(&[]);
    let url = server.url();
    let (mut alice, _alice_state) = chatting(&server, "alice", "anyone here?");
    let bob_state = state_dir();

    // Through the environment this time.
    let mut bob = {
        let mut command = chat_cli(bob_state.path(), &[]);
        command.env("CHAT_URL", &url).env("CHAT_NAME", "bob");
        Cli::from_command(command)
    };
    alice.expect_stdout("* bob joined from 127.0.0.1");
    bob.send("hi alice");
    alice.expect_stdout("bob: hi alice");
    bob.expect_stdout("bob (you): hi alice");
    alice.send("hi bob");
    bob.expect_stdout("alice: hi bob");

    let bob = bob.finish();
    assert!(bob.status.success(), "{bob:?}");
    assert!(!bob.stdout.iter().any(|l| l.contains("anyone here?")));
    let alice = alice.finish();
    assert!(alice.status.success(), "{alice:?}");
    assert_eq!(alice.stderr, Vec::<String>::new());
}

#[test]
fn a_taken_name_exits_2_with_a_clear_reason() {
    let server = Server::start(&[]);
    let (mut holder, _holder_state) = chatting(&server, "alice", "mine");

    let other = state_dir();
    let out = run_script(
        other.path(),
        &[&server.url(), "--name", "Alice"],
        "let me in\n",
    );
    // As for a --name refused before connecting: the argument must change.
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        out.stderr,
        ["chat-cli: the name 'Alice' is taken; pick another or wait until it is released"]
    );
    assert_eq!(out.stdout, Vec::<String>::new());
    holder.send("still mine");
    holder.expect_stdout("alice (you): still mine");
    assert!(holder.finish().status.success());
}

#[test]
fn a_restarted_client_reclaims_its_name_with_the_saved_secret() {
    let server = Server::start(&[]);
    let url = server.url();
    let state = state_dir();
    let first = run_script(state.path(), &[&url, "--name", "carol"], "one\n");
    assert!(first.status.success(), "{first:?}");

    let secrets = state.path().join("wschat/secrets.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&secrets)
            .expect("secrets saved")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let saved: Value = serde_json::from_str(&fs::read_to_string(&secrets).unwrap()).unwrap();
    assert!(saved["servers"][&url]["carol"].is_string(), "{saved}");

    // The server still holds the name (its TTL is minutes): only the saved
    // secret gets it back.
    let again = run_script(state.path(), &[&url, "--name", "carol"], "two\n");
    assert!(again.status.success(), "{again:?}");
    assert_eq!(again.stdout, ["carol (you): two"]);

    let stranger = state_dir();
    let out = run_script(stranger.path(), &[&url, "--name", "carol"], "three\n");
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    // On another machine, the secret in a file gets the name; it is saved
    // there too.
    let secret = saved["servers"][&url]["carol"].as_str().unwrap().to_owned();
    let laptop = state_dir();
    let secret_file = laptop.path().join("carol.secret");
    fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let out = run_script(
        laptop.path(),
        &[
            &url,
            "--name",
            "carol",
            "--secret-file",
            secret_file.to_str().unwrap(),
        ],
        "from the laptop\n",
    );
    assert!(out.status.success(), "{out:?}");
    let on_laptop = fs::read_to_string(laptop.path().join("wschat/secrets.json")).unwrap();
    assert!(on_laptop.contains(&secret), "{on_laptop}");

    // CHAT_SECRET overrides the saved one.
    let mut command = chat_cli(state.path(), &[&url, "--name", "carol"]);
    command.env("CHAT_SECRET", "wrong");
    let mut cli = Cli::from_command(command);
    cli.send("four");
    let out = cli.finish();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr[0].contains("the secret given for it does not match"),
        "{out:?}"
    );
}

#[test]
fn a_secret_on_the_command_line_is_refused_and_the_ways_to_give_one_are_said() {
    let state = state_dir();
    let out = chat_cli(
        state.path(),
        &["ws://127.0.0.1:1", "--name", "bot", "--secret", "s3cr3t"],
    )
    .stdin(std::process::Stdio::null())
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--secret is not accepted"), "{stderr}");
    assert!(stderr.contains("CHAT_SECRET"), "{stderr}");
    assert!(stderr.contains("--secret-file"), "{stderr}");

    // An empty or missing secret file is an error, not an empty secret.
    let empty = state.path().join("empty");
    fs::write(&empty, "\n").unwrap();
    for file in [empty, state.path().join("missing")] {
        let out = run_script(
            state.path(),
            &[
                "ws://127.0.0.1:1",
                "--name",
                "bot",
                "--secret-file",
                file.to_str().unwrap(),
            ],
            "",
        );
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_eq!(out.stderr.len(), 1, "{out:?}");
        assert!(out.stderr[0].contains(file.to_str().unwrap()), "{out:?}");
    }
}

#[test]
fn json_mode_redacts_the_secret_unless_asked() {
    let server = Server::start(&[]);
    let state = state_dir();
    let out = run_script(
        state.path(),
        &[&server.url(), "--name", "eve", "--json"],
        "x\n",
    );
    assert!(out.status.success(), "{out:?}");
    let saved = fs::read_to_string(state.path().join("wschat/secrets.json")).unwrap();
    let saved: Value = serde_json::from_str(&saved).unwrap();
    let secret = saved["servers"][&server.url()]["eve"].as_str().unwrap();
    let login: Value = serde_json::from_str(&out.stdout[1]).unwrap();
    assert_eq!(login["type"], "loginMessage");
    assert_eq!(login["secret"], "<redacted>");
    assert!(
        out.stdout.iter().all(|line| !line.contains(secret)),
        "{out:?}"
    );

    let out = run_script(
        state.path(),
        &[&server.url(), "--name", "eve", "--json", "--show-secret"],
        "y\n",
    );
    assert!(out.status.success(), "{out:?}");
    let login: Value = serde_json::from_str(&out.stdout[1]).unwrap();
    assert_eq!(login["secret"], secret);
}

#[cfg(unix)]
#[test]
fn a_state_directory_readable_by_others_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(&[]);
    let state = state_dir();
    let dir = state.path().join("wschat");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let out = run_script(state.path(), &[&server.url(), "--name", "gus"], "hi\n");
    assert!(out.status.success(), "{out:?}");
    let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert_eq!(
        out.stderr,
        [format!(
            "chat-cli: {} was readable by others (mode 0755); it is now 0700",
            dir.display()
        )]
    );
    // Private already: nothing to say.
    let again = run_script(state.path(), &[&server.url(), "--name", "gus"], "hi\n");
    assert_eq!(again.stderr, Vec::<String>::new(), "{again:?}");
}

#[test]
fn the_client_reconnects_after_the_server_restarts() {
    let mut server = Server::start(&[]);
    let port = server.port();
    // Through a proxy, which counts dave's attempts and answers each alike
    // while the server is down.
    let proxy = Proxy::start(port);
    let state = state_dir();
    let mut dave = Cli::spawn(state.path(), &[&proxy.url(), "--name", "dave"]);
    dave.send("before");
    dave.expect_stdout("dave (you): before");

    server.kill();
    dave.expect_stderr("connection lost");
    // Down for a while: several attempts fail alike, and that is said once.
    // (The first connection, then three attempts: the third came, so the
    // first two had failed.)
    proxy.wait_tried(1 + 3);
    let server = Server::start_on(port, &[]);
    dave.expect_stderr("back online as dave");
    let failures: Vec<&String> = dave
        .stderr_seen
        .iter()
        .filter(|l| l.contains("could not reconnect"))
        .collect();
    assert_eq!(failures.len(), 1, "{:?}", dave.stderr_seen);
    dave.send("after");
    dave.expect_stdout("dave (you): after");

    // Someone else can see it is the same dave.
    let other = state_dir();
    let out = run_script(other.path(), &[&server.url(), "--name", "dave"], "x\n");
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    let dave = dave.finish();
    assert!(dave.status.success(), "{dave:?}");
}

#[test]
fn the_urls_scheme_is_case_insensitive() {
    let server = Server::start(&[]);
    let state = state_dir();
    let url = server.url().replacen("ws://", "WS://", 1);
    let out = run_script(state.path(), &[&url, "--name", "caps"], "hi\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, ["caps (you): hi"]);
}

#[test]
fn message_text_cannot_turn_a_line_around() {
    let server = Server::start(&[]);
    let (mut watcher, _watcher_state) = chatting(&server, "watcher", "ready");
    let sender_state = state_dir();
    // U+202E makes the rest read right to left: "pay 10$" would show as "$01 yap".
    let out = run_script(
        sender_state.path(),
        &[&server.url(), "--name", "mallory"],
        "\u{202e}$01 yap\n",
    );
    assert!(out.status.success(), "{out:?}");
    watcher.expect_stdout("mallory: \u{fffd}$01 yap");
    assert!(watcher.finish().status.success());
}

#[test]
fn json_mode_prints_each_server_message_as_one_json_line() {
    let server = Server::start(&[]);
    let state = state_dir();
    let out = run_script(
        state.path(),
        &[&server.url(), "--name", "eve", "--json"],
        "x\n",
    );
    assert!(out.status.success(), "{out:?}");
    let types: Vec<String> = out
        .stdout
        .iter()
        .map(|line| {
            let message: Value = serde_json::from_str(line).expect("a JSON line");
            message["type"].as_str().expect("a type").to_owned()
        })
        .collect();
    // chat-server speaks protocol v3 to chat-cli: its `rooms` follows
    // `loginMessage` (docs/PROTOCOL.md, "Catch-up per room at login").
    assert_eq!(
        types,
        [
            "loginBroadcast",
            "loginMessage",
            "rooms",
            "history",
            "textBroadcast"
        ]
    );
}

#[test]
fn no_server_means_exit_1_with_one_line() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let state = state_dir();
    let url = format!("ws://127.0.0.1:{port}");
    let out = run_script(state.path(), &[&url, "--name", "bot"], "hi\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(out.stderr.len(), 1, "{out:?}");
    assert!(
        out.stderr[0].starts_with(&format!("chat-cli: could not connect to {url}: ")),
        "{out:?}"
    );
}

#[test]
fn a_web_server_that_is_not_chat_server_is_said_to_be_no_chat_server() {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    // Another web server on that port: no WebSocket at this path.
    let web = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        reader.get_mut().write_all(answer.as_bytes()).unwrap();
    });
    let state = state_dir();
    let out = run_script(state.path(), &[&url, "--name", "bot"], "hi\n");
    web.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        [format!(
            "chat-cli: could not connect to {url}: the server refused the WebSocket upgrade \
             with HTTP 404 Not Found; check that chat-server is running at that address"
        )]
    );
}

#[test]
fn a_name_that_could_pass_for_anothers_or_a_notice_is_refused() {
    let state = state_dir();
    for (name, why) in [
        (
            "alice (you)",
            "the name contains a space; join words with _, - or . instead",
        ),
        (
            "-- back online as",
            "the name starts with '-'; it must start with a letter, a digit or an emoji",
        ),
        // A value, even though it looks like a flag.
        (
            "-bot-",
            "the name starts with '-'; it must start with a letter, a digit or an emoji",
        ),
    ] {
        let out = chat_cli(state.path(), &["ws://127.0.0.1:1", "--name", name])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains(&format!("invalid --name: {why}")),
            "{stderr}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let state = state_dir();
    for args in [
        &["--name", "bot", "--bogus"][..],
        &[][..], // no name, and stdin is not a terminal
        &["http://127.0.0.1:1", "--name", "bot"][..],
        // Out of range: not port 80.
        &["ws://127.0.0.1:99999", "--name", "bot"][..],
        &["ws://127.0.0.1:0", "--name", "bot"][..],
        &["--name", ""][..],
    ] {
        let out = chat_cli(state.path(), args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty());
    }
    let help = chat_cli(state.path(), &["--help"]).output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    for topic in [
        "--name",
        "--secret-file",
        "CHAT_SECRET",
        "--json",
        "--show-secret",
        "CHAT_URL",
        "wss://",
        "--ca-file",
        "/me ACTION",
        "/who",
        "/logout",
        "wschat.v2",
        "protocol v1",
        "secrets.json",
        "NO_COLOR",
        "Exit status",
    ] {
        assert!(help.contains(topic), "--help lacks {topic}:\n{help}");
    }
}

#[test]
fn a_corrupt_secrets_file_is_reported_and_ignored() {
    let server = Server::start(&[]);
    let state = state_dir();
    fs::create_dir_all(state.path().join("wschat")).unwrap();
    fs::write(state.path().join("wschat/secrets.json"), "{ garbage").unwrap();
    let out = run_script(state.path(), &[&server.url(), "--name", "fred"], "hi\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, ["fred (you): hi"]);
    assert!(
        out.stderr
            .iter()
            .any(|l| l.contains("is not a secrets file")),
        "{out:?}"
    );
    assert!(
        out.stderr
            .iter()
            .any(|l| l.contains("moved the unreadable")),
        "{out:?}"
    );
    // A fresh file now holds the new secret.
    let again = run_script(state.path(), &[&server.url(), "--name", "fred"], "back\n");
    assert!(again.status.success(), "{again:?}");
    assert_eq!(again.stderr, Vec::<String>::new());
}

#[test]
fn a_long_script_is_paced_to_the_servers_rate_limit_and_loses_nothing() {
    // Default limits: 5 messages a second, 10 at once.
    let server = Server::start(&[]);
    let url = server.url();
    let (mut watcher, _watcher_state) = chatting(&server, "watcher", "ready");
    let bulk_state = state_dir();

    let numbers: Vec<String> = (1..=30).map(|n| n.to_string()).collect();
    let input: String = numbers.iter().map(|n| format!("{n}\n")).collect();
    let out = run_script(bulk_state.path(), &[&url, "--name", "bulk"], &input);
    assert!(out.status.success(), "{out:?}");
    let own: Vec<String> = numbers.iter().map(|n| format!("bulk (you): {n}")).collect();
    assert_eq!(out.stdout, own);
    // At most one quiet line about it, nothing per message.
    assert!(out.stderr.len() <= 1, "{out:?}");
    assert!(
        out.stderr.iter().all(|l| l.contains(
            "sending slower: the server limits messages \
             (too many messages: at most 5 a second, 10 at once)"
        )),
        "{out:?}"
    );

    watcher.expect_stdout("bulk: 30");
    let watcher = watcher.finish();
    assert!(watcher.status.success(), "{watcher:?}");
    let seen: Vec<&str> = watcher
        .stdout
        .iter()
        .filter_map(|l| l.strip_prefix("bulk: "))
        .collect();
    assert_eq!(seen, numbers);
}
