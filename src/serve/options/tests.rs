use super::*;

fn parse(args: &[&str]) -> Result<Options, clap::Error> {
    Options::parse_ignoring_env(std::iter::once("chat-server").chain(args.iter().copied()))
}

#[test]
fn the_core_defaults_are_the_flags_defaults() {
    assert_eq!(Options::default().config(), Config::default());
    let small = parse(&["--send-queue-bytes", "65536"]).unwrap().config();
    assert_eq!(small.reply_max_bytes, 16384);
    let defaults = Options::default();
    assert_eq!(defaults.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
    assert_eq!(defaults.flush_interval, Duration::from_millis(5));
    assert_eq!(defaults.allowed_origins, AllowedOrigins::SameHost);
    let any = parse(&["--allowed-origins", "*"]).unwrap();
    assert_eq!(any.allowed_origins, AllowedOrigins::Any);
}

#[test]
fn every_flag_has_an_environment_variable_and_a_documented_default() {
    for arg in Options::command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if ["help", "version"].contains(&long) {
            continue;
        }
        assert!(
            arg.get_env().is_some(),
            "--{long} has no environment variable"
        );
        let optional = [
            "tls-cert",
            "tls-key",
            "admin-listen",
            "redis-url",
            "operators",
        ]
        .contains(&long);
        // A switch (such as --in-memory) is simply off unless given.
        let switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
        assert_eq!(
            arg.get_default_values().is_empty(),
            optional || switch,
            "--{long}"
        );
    }
}

#[test]
fn the_admin_endpoints_and_the_log_format_read_as_documented() {
    let defaults = Options::default();
    assert_eq!(
        (defaults.admin_listen, defaults.log_format),
        (None, LogFormat::Text)
    );
    let o = parse(&["--admin-listen", "127.0.0.1:9090", "--log-format", "json"]).unwrap();
    assert_eq!(
        o.admin_listen,
        Some(SocketAddr::from(([127, 0, 0, 1], 9090)))
    );
    assert_eq!(o.log_format, LogFormat::Json);
}

#[test]
fn listen_takes_a_host_name() {
    let local = parse(&["--listen", "localhost:0"]).unwrap().listen;
    assert!(local.ip().is_loopback(), "{local}");
    for bad in ["localhost", "nowhere.invalid:80", "127.0.0.1:99999"] {
        let e = parse(&["--listen", bad]).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{bad}");
        assert!(e.to_string().contains("--listen"), "{bad}: {e}");
    }
}

#[test]
fn eviction_before_the_first_ping_is_refused() {
    let o = parse(&["--ping-interval", "60s", "--evict-after", "30s"]).unwrap();
    assert_eq!(
        o.check().unwrap_err().to_string(),
        "--evict-after (30s) must be longer than --ping-interval (60s): a silent \
         connection would be closed before it was ever pinged"
    );
    let same = parse(&["--ping-interval", "1m", "--evict-after", "60s"]).unwrap();
    assert!(same.check().is_err());
    assert_eq!(Options::default().check(), Ok(()));
}

#[test]
fn durations_read_like_humans_write_them() {
    let o = parse(&["--ping-interval", "250ms", "--evict-after", "1m 30s"]).unwrap();
    assert_eq!(o.ping_interval, Duration::from_millis(250));
    assert_eq!(o.evict_after, Duration::from_secs(90));
}

#[test]
fn bad_values_are_usage_errors_naming_the_flag() {
    for args in [
        &["--ping-interval", "soon"][..],
        &["--ping-interval", "0s"],
        &["--max-frame-bytes", "12"],
        &["--send-queue-bytes", "0"],
        &["--message-rate", "lots"],
        &["--login-timeout", "never"],
        &["--listen", "nowhere"],
        &["--max-connections", "10k"],
        &["--max-connections", "many"],
        &["--max-connections-per-ip", "1.5"],
        &["--allowed-origins", "chat.example.com"],
        &["--allowed-origins", "https://chat.example.com/"],
        &["--allowed-origins", ""],
        &["--handshake-timeout", "0s"],
        &["--handshake-timeout", "later"],
        &["--admin-listen", "nowhere"],
        &["--log-format", "xml"],
        &["--trusted-proxies", "10.0.0.0/33"],
        &["--trusted-proxies", ""],
        &["--client-ip-header", "x-real-ip"],
    ] {
        let e = parse(args).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{args:?}");
        assert!(e.to_string().contains(args[0]), "{args:?}: {e}");
    }
}

#[test]
fn connection_limits_and_origins_read_as_documented() {
    let o = parse(&[
        "--max-connections",
        "0",
        "--max-connections-per-ip",
        "8",
        "--allowed-origins",
        "https://chat.example.com, http://localhost:8000",
        "--handshake-timeout",
        "1s",
    ])
    .unwrap();
    assert_eq!((o.max_connections, o.max_connections_per_ip), (0, 8));
    assert_eq!(
        o.allowed_origins,
        AllowedOrigins::Only(vec![
            "https://chat.example.com".into(),
            "http://localhost:8000".into()
        ])
    );
    assert_eq!(o.handshake_timeout, Duration::from_secs(1));
}

#[test]
fn proxies_read_as_documented() {
    let defaults = Options::default();
    assert!(defaults.trusted_proxies.is_empty());
    assert_eq!(defaults.client_ip_header, ClientIpHeader::XForwardedFor);
    assert!(!defaults.proxy_protocol);
    let o = parse(&[
        "--trusted-proxies",
        "127.0.0.1, 10.0.0.0/8,fd00::/8",
        "--client-ip-header",
        "forwarded",
        "--proxy-protocol",
    ])
    .unwrap();
    assert_eq!(
        o.trusted_proxies.to_string(),
        "127.0.0.1/32,10.0.0.0/8,fd00::/8"
    );
    assert_eq!(o.client_ip_header, ClientIpHeader::Forwarded);
    assert!(o.proxy_protocol);
    assert_eq!(o.check(), Ok(()));
    let alone = parse(&["--proxy-protocol"]).unwrap();
    assert_eq!(alone.check(), Err(OptionsError::ProxyProtocolUntrusted));
}

#[test]
fn tls_takes_both_files_or_neither() {
    let both = parse(&["--tls-cert", "cert.pem", "--tls-key", "key.pem"]).unwrap();
    assert_eq!(both.tls_cert, Some(PathBuf::from("cert.pem")));
    assert_eq!(both.tls_key, Some(PathBuf::from("key.pem")));
    for (given, missing) in [("--tls-cert", "--tls-key"), ("--tls-key", "--tls-cert")] {
        let e = parse(&[given, "file.pem"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert_eq!(e.exit_code(), 2);
        let message = e.to_string();
        let first = message.lines().next().unwrap_or_default();
        assert!(
            message.contains(&format!("{missing} <FILE>")),
            "{given}: {message}"
        );
        assert!(first.contains("required"), "{given}: {message}");
    }
}

#[cfg(not(feature = "cluster"))]
#[test]
fn without_the_cluster_feature_redis_url_is_hidden_and_refused_in_one_line() {
    let help = Options::command().render_long_help().to_string();
    assert!(!help.contains("redis"), "{help}");
    assert!(!help.contains("--node-timeout"), "{help}");
    let e = parse(&["--redis-url", "redis://127.0.0.1"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let message = e.to_string();
    assert!(message.contains("--redis-url"), "{message}");
    assert!(
        message.contains("built without the `cluster` feature"),
        "{message}"
    );
    // The environment variable too, which an unknown flag would not be.
    let command = Options::command();
    let from_env = command
        .get_arguments()
        .find(|a| a.get_long() == Some("redis-url"));
    assert_eq!(
        from_env.and_then(|a| a.get_env()),
        Some(std::ffi::OsStr::new("CHAT_REDIS_URL"))
    );
}

#[cfg(feature = "cluster")]
#[test]
fn redis_takes_the_place_of_the_data_directory() {
    let o = parse(&["--redis-url", "redis://127.0.0.1:6379/2"]).unwrap();
    assert_eq!(o.redis_url, ["redis://127.0.0.1:6379/2"]);
    // Several shards: the flag again, or a comma list; the home first.
    let o = parse(&[
        "--redis-url",
        "redis://a:1,redis://b:2",
        "--redis-url",
        "redis://c:3",
    ]);
    assert_eq!(
        o.unwrap().redis_url,
        ["redis://a:1", "redis://b:2", "redis://c:3"]
    );
    assert!(parse(&["--redis-url", "rediss://redis.example.com"]).is_ok());
    for other in [&["--in-memory"][..], &["--data-dir", "/var/lib/wschat"]] {
        let args = [&["--redis-url", "redis://127.0.0.1"][..], other].concat();
        let e = parse(&args).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict, "{e}");
        assert!(e.to_string().contains(other[0]), "{e}");
    }
    for bad in [
        "127.0.0.1:6379",
        "http://127.0.0.1",
        "redis://",
        "redis://h:port",
    ] {
        let e = parse(&["--redis-url", bad]).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{bad}");
        assert!(e.to_string().contains("--redis-url"), "{bad}: {e}");
    }
    let o = parse(&["--node-timeout", "3s"]).unwrap();
    assert_eq!(o.node_timeout, Duration::from_secs(3));
    assert_eq!(Options::default().node_timeout, DEFAULT_NODE_TIMEOUT);
}

#[test]
fn room_limits_read_as_documented_and_reach_the_core() {
    let defaults = Options::default().config();
    assert_eq!(
        (
            defaults.room_history,
            defaults.max_rooms_per_name,
            defaults.max_room_members,
            defaults.rooms_per_address_per_minute,
            defaults.max_rooms,
            defaults.new_dms_per_minute,
        ),
        (500, 100, 10_000, 10, 100_000, 10)
    );
    assert!(defaults.operators.is_empty());
    let config = parse(&[
        "--room-history",
        "7",
        "--max-rooms-per-name",
        "2",
        "--max-room-members",
        "3",
        "--rooms-per-address-per-minute",
        "0",
        "--max-rooms",
        "4",
        "--new-dms-per-minute",
        "5",
    ])
    .unwrap()
    .config();
    assert_eq!(
        (
            config.room_history,
            config.max_rooms_per_name,
            config.max_room_members,
            config.rooms_per_address_per_minute,
            config.max_rooms,
            config.new_dms_per_minute,
        ),
        (7, 2, 3, 0, 4, 5)
    );
    for flag in [
        "--room-history",
        "--max-rooms-per-name",
        "--max-room-members",
        "--rooms-per-address-per-minute",
        "--max-rooms",
        "--new-dms-per-minute",
    ] {
        for bad in ["many", "1.5", "1e3"] {
            let e = parse(&[flag, bad]).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{flag} {bad}");
            assert!(e.to_string().contains(flag), "{flag} {bad}: {e}");
        }
    }
}

#[test]
fn operators_are_user_names_separated_by_commas() {
    let o = parse(&["--operators", "alice, Bob,carol_2"]).unwrap();
    assert_eq!(o.config().operators, ["alice", "Bob", "carol_2"]);
    assert_eq!(Options::default().operators, None);
    let none = parse(&["--operators", ""]).unwrap();
    assert_eq!(none.operators, Some(Operators::default()));
    assert!(none.config().operators.is_empty());
    // Each refusal is a usage error on one line that names the flag and
    // says what is wrong with which name.
    for (bad, says) in [
        (
            "alice,bad name",
            "\"bad name\" is not a valid user name: the name contains a space",
        ),
        ("alice,,bob", "an empty name between commas"),
        ("alice,_under", "it must start with a letter"),
        ("alice,ALICE", "\"alice\" and \"ALICE\" are one name"),
    ] {
        let e = parse(&["--operators", bad]).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{bad}");
        let message = e.to_string();
        let first = message.lines().next().unwrap_or_default();
        assert!(first.contains("--operators"), "{bad}: {message}");
        assert!(first.contains(says), "{bad}: {message}");
    }
}
