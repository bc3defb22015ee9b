use super::*;

fn err(input: &str) -> String {
    ClientMessage::decode(input.as_bytes())
        .unwrap_err()
        .description()
        .to_owned()
}

#[test]
fn decodes_login_with_and_without_secret_ignoring_extra_fields() {
    assert_eq!(
        ClientMessage::decode(br#"{"type":"login","id":"l1","username":"alice","x":[1]}"#),
        Ok(ClientMessage::Login {
            id: "l1".into(),
            username: "alice".into(),
            secret: None,
            since: None,
            epoch: None,
            rooms: None
        })
    );
    assert_eq!(
        ClientMessage::decode(br#"{"id":"l1","username":"a","secret":"s","type":"login"}"#),
        Ok(ClientMessage::Login {
            id: "l1".into(),
            username: "a".into(),
            secret: Some("s".into()),
            since: None,
            epoch: None,
            rooms: None
        })
    );
}

#[test]
fn describes_each_kind_of_bad_input() {
    assert_eq!(
        err(r#"{"type":"login","id":"l1"}"#),
        r#"missing field "username""#
    );
    assert_eq!(
        err(r#"{"type":"shout","id":"l1"}"#),
        concat!(
            r#"unknown variant "shout", expected one of "login", "textFromUser", "listUsers", "logout", "#,
            r#""join", "part", "listRooms", "listMembers", "history", "read", "topic", "mode", "#,
            r#""invite", "kick", "ban", "unban", "mute", "unmute", "op", "deop""#
        )
    );
    assert_eq!(err(r#"{"id":"l1"}"#), r#"missing field "type""#);
    assert_eq!(
        err(r#"{"type":"textFromUser","id":7,"text":"x"}"#),
        r#"invalid type: integer "7", expected a string"#
    );
    assert_eq!(err("null"), "expected a JSON object with a \"type\" field");
    assert_eq!(err("[1,2]"), "expected a JSON object with a \"type\" field");
    assert_eq!(err("   "), "empty frame: expected a JSON object");
    assert!(
        err("hello").starts_with("not valid JSON: "),
        "{}",
        err("hello")
    );
    assert!(err("{\"type\":").starts_with("not valid JSON: "));
}

#[test]
fn v1_connections_are_told_of_v1_types_only() {
    let v1 = |input: &str| {
        ClientMessage::decode_for(input.as_bytes(), Version::V1)
            .unwrap_err()
            .description()
            .to_owned()
    };
    let expected = r#"unknown variant "listUsers", expected "login" or "textFromUser""#;
    assert_eq!(v1(r#"{"type":"listUsers","id":"u"}"#), expected);
    assert_eq!(
        v1(r#"{"type":"shout","id":"u"}"#),
        r#"unknown variant "shout", expected "login" or "textFromUser""#
    );
    assert!(ClientMessage::decode_for(br#"{"type":"logout","id":"o"}"#, Version::V2).is_ok());
}

#[test]
fn v2_connections_are_told_of_v2_types_only_and_ignore_v3_fields() {
    let v2 = |input: &str| ClientMessage::decode_for(input.as_bytes(), Version::V2);
    let expected =
        r#"unknown variant "join", expected one of "login", "textFromUser", "listUsers", "logout""#;
    assert_eq!(
        v2(r##"{"type":"join","id":"j","room":"#dev"}"##)
            .unwrap_err()
            .description(),
        expected
    );
    assert_eq!(
        v2(r#"{"type":"shout","id":"j"}"#)
            .unwrap_err()
            .description(),
        r#"unknown variant "shout", expected one of "login", "textFromUser", "listUsers", "logout""#
    );
    // `room` means nothing to v2, whatever it holds: the lobby.
    for room in [r##""#dev""##, "7", "null"] {
        let text = format!(r#"{{"type":"textFromUser","id":"m","text":"hi","room":{room}}}"#);
        assert_eq!(
            v2(&text),
            Ok(ClientMessage::TextFromUser {
                id: "m".into(),
                text: "hi".into(),
                room: None
            })
        );
    }
    let v3 = ClientMessage::decode_for(
        br#"{"type":"textFromUser","id":"m","text":"hi","room":"@bob"}"#,
        Version::V3,
    );
    assert!(matches!(v3, Ok(ClientMessage::TextFromUser { room: Some(r), .. }) if r == "@bob"));
}

#[test]
fn every_v3_message_round_trips() {
    let inputs = [
        r##"{"type":"login","id":"l","username":"a","rooms":[{"room":"#dev","epoch":"e","since":4}]}"##,
        r##"{"type":"join","id":"j","room":"#dev","inviteOnly":true}"##,
        r##"{"type":"part","id":"p","room":"#dev","reason":"bye"}"##,
        r#"{"type":"listRooms","id":"r"}"#,
        r##"{"type":"listMembers","id":"m","room":"#dev"}"##,
        r##"{"type":"history","id":"h","room":"#dev","before":120,"limit":50}"##,
        r##"{"type":"read","id":"r","room":"#dev","seq":8}"##,
        r##"{"type":"topic","id":"t","room":"#dev","topic":"builds"}"##,
        r##"{"type":"mode","id":"o","room":"#dev","inviteOnly":false}"##,
        r##"{"type":"invite","id":"i","room":"#dev","username":"carol"}"##,
        r##"{"type":"kick","id":"k","room":"#dev","username":"carol","reason":"spam"}"##,
        r##"{"type":"ban","id":"b","room":"#dev","username":"carol","seconds":60}"##,
        r##"{"type":"unban","id":"u","room":"#dev","username":"carol"}"##,
        r##"{"type":"mute","id":"m","room":"#dev","username":"carol","seconds":60}"##,
        r##"{"type":"unmute","id":"u","room":"#dev","username":"carol"}"##,
        r##"{"type":"op","id":"o","room":"#dev","username":"carol"}"##,
        r##"{"type":"deop","id":"d","room":"#dev","username":"carol"}"##,
    ];
    for input in inputs {
        let message = ClientMessage::decode_for(input.as_bytes(), Version::V3)
            .unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(String::from_utf8(message.encode()).unwrap(), input);
        assert!(
            ClientMessage::decode_for(input.as_bytes(), Version::V2).is_err()
                || message.kind() == "login"
        );
    }
}

#[test]
fn v1_ignores_since_whatever_it_holds_and_v2_types_it() {
    let login = br#"{"type":"login","id":"l","username":"a","since":"yesterday"}"#;
    assert_eq!(
        ClientMessage::decode_for(login, Version::V1),
        Ok(ClientMessage::Login {
            id: "l".into(),
            username: "a".into(),
            secret: None,
            since: None,
            epoch: None,
            rooms: None
        })
    );
    assert_eq!(
        ClientMessage::decode_for(login, Version::V2)
            .unwrap_err()
            .description(),
        r#"invalid type: string "yesterday", expected u64"#
    );
    // Other faults of a v1 login are still reported.
    let bad = br#"{"type":"login","id":"l","since":"x"}"#;
    assert_eq!(
        ClientMessage::decode_for(bad, Version::V1)
            .unwrap_err()
            .description(),
        r#"missing field "username""#
    );
}

#[test]
fn the_encoded_length_is_the_encoding_s() {
    let msg = ServerMessage::TextBroadcast {
        id: "i".into(),
        reply_to: None,
        username: "u".into(),
        message: "\u{1}\"é".into(),
        seq: Some(7),
        timestamp: Some(1),
        room: None,
    };
    assert_eq!(msg.encoded_len(), msg.encode().len());
}

#[test]
fn negotiation_selects_v2_only_when_offered() {
    assert_eq!(Version::negotiate([]), (Version::V1, None));
    assert_eq!(Version::negotiate(["chat, superchat"]), (Version::V1, None));
    assert_eq!(
        Version::negotiate(["chat", "x, wschat.v2"]),
        (Version::V2, Some(SUBPROTOCOL_V2))
    );
}

#[test]
fn invalid_utf8_and_deep_nesting_are_errors_not_panics() {
    assert!(ClientMessage::decode(b"{\"type\":\"login\",\"id\":\"\xff\"}").is_err());
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(ClientMessage::decode(deep.as_bytes()).is_err());
}

#[test]
fn encodes_keys_in_the_original_order() {
    let msg = ServerMessage::ErrorMessage {
        error: ErrorCode::LoginTaken,
        id: "x".into(),
        reply_to: None,
        description: Some("taken".into()),
    };
    assert_eq!(
        String::from_utf8(msg.encode()).unwrap(),
        r#"{"type":"errorMessage","error":"loginTaken","id":"x","description":"taken"}"#
    );
    let msg = ServerMessage::LoginMessage {
        id: "i".into(),
        reply_to: None,
        username: "u".into(),
        location: "l".into(),
        secret: "s".into(),
    };
    assert_eq!(
        String::from_utf8(msg.encode()).unwrap(),
        r#"{"type":"loginMessage","id":"i","username":"u","location":"l","secret":"s"}"#
    );
}

#[test]
fn the_epoch_follows_reply_to_in_history_and_since_in_login() {
    let history = ServerMessage::History {
        id: "h".into(),
        reply_to: "l1".into(),
        epoch: Some("k3J".into()),
        messages: vec![],
        complete: true,
        room: None,
    };
    assert_eq!(
        String::from_utf8(history.encode()).unwrap(),
        r#"{"type":"history","id":"h","replyTo":"l1","epoch":"k3J","messages":[],"complete":true}"#
    );
    let login = ClientMessage::Login {
        id: "l2".into(),
        username: "alice".into(),
        secret: Some("s".into()),
        since: Some(41),
        epoch: Some("k3J".into()),
        rooms: None,
    };
    assert_eq!(
        String::from_utf8(login.encode()).unwrap(),
        r#"{"type":"login","id":"l2","username":"alice","secret":"s","since":41,"epoch":"k3J"}"#
    );
    // Older servers send none, and a client may send none.
    let old = br#"{"type":"history","id":"h","replyTo":"l1","messages":[],"complete":true}"#;
    assert!(matches!(
        ServerMessage::decode(old),
        Ok(ServerMessage::History { epoch: None, .. })
    ));
}

#[test]
fn server_messages_round_trip_and_unknown_codes_decode() {
    let msg = ServerMessage::TextBroadcast {
        id: "i".into(),
        reply_to: Some("m1".into()),
        username: "u".into(),
        message: "héllo \"quoted\"".into(),
        seq: Some(7),
        timestamp: Some(1_700_000_000_000),
        room: None,
    };
    assert_eq!(ServerMessage::decode(&msg.encode()), Ok(msg));
    assert_eq!(
        ServerMessage::decode(br#"{"type":"errorMessage","error":"tooFunny","id":"i"}"#),
        Ok(ServerMessage::ErrorMessage {
            error: ErrorCode::Unknown,
            id: "i".into(),
            reply_to: None,
            description: None
        })
    );
}
