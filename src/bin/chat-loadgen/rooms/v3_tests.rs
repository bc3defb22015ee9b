//! Frames recorded from docs/PROTOCOL.md's v3 example, and variations.

use super::*;

const BARRIER: &str = "lg-x-barrier";

fn heard(frame: &str) -> RoomHeard<'_> {
    RoomEar::new(BARRIER).hear(frame)
}

fn stamp(sender: u32, seq: u64) -> Stamp {
    Stamp {
        sender,
        seq,
        sent_nanos: 1_000_000 + seq,
    }
}

#[test]
fn what_we_say_is_v3_json() {
    let value = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
    assert_eq!(
        value(&join("j", "#lg-x-r7")),
        serde_json::json!({"type": "join", "id": "j", "room": "#lg-x-r7"})
    );
    let text = stamp(3, 4).to_text(40);
    let said = say(4, "#lg-x-r0", &text);
    assert!(said.starts_with(r#"{"type":"textFromUser","#), "{said}");
    assert_eq!(
        value(&said),
        serde_json::json!({"type": "textFromUser", "id": "4", "room": "#lg-x-r0", "text": text})
    );
}

#[test]
fn hears_a_stamped_message_in_a_room_with_its_seq() {
    let text = stamp(12, 5).to_text(100);
    // As the example's textBroadcast: room last, after seq and timestamp.
    let frame = format!(
        r##"{{"type":"textBroadcast","id":"0St","username":"lg-x-12","message":"{text}","seq":8,"timestamp":1764326390000,"room":"#lg-x-r1"}}"##
    );
    assert_eq!(
        heard(&frame),
        RoomHeard::Said {
            room: "#lg-x-r1".into(),
            seq: Some(8),
            stamp: Some(stamp(12, 5)),
        }
    );
    // The sender's own copy (replyTo), keys in any order.
    let own = format!(
        r##"{{"room":"#lg-x-r1","seq":9,"replyTo":"5","type":"textBroadcast","id":"K2f","username":"lg-x-12","message":"{text}","timestamp":1}}"##
    );
    assert!(matches!(heard(&own), RoomHeard::Said { seq: Some(9), .. }));
    // A message of a person, and one of the lobby (no room).
    let person = r##"{"type":"textBroadcast","id":"K2f","replyTo":"m1","username":"alice","message":"yes, 12:30","seq":2,"timestamp":1764326403000,"room":"@bob"}"##;
    assert_eq!(
        heard(person),
        RoomHeard::Said {
            room: "@bob".into(),
            seq: Some(2),
            stamp: None
        }
    );
    let lobby =
        format!(r##"{{"type":"textBroadcast","id":"i","username":"u","message":"{text}"}}"##);
    assert_eq!(
        heard(&lobby),
        RoomHeard::Said {
            room: LOBBY.into(),
            seq: None,
            stamp: Some(stamp(12, 5))
        }
    );
}

#[test]
fn hears_the_answer_to_a_join() {
    let joined = r##"{"type":"membership","id":"M1","replyTo":"j","room":"#ops","change":"joined","state":{"room":"#ops","inviteOnly":true,"members":1,"role":"owner","epoch":"Pw","lastSeq":0,"readSeq":0,"unread":0,"mentioned":false}}"##;
    assert_eq!(
        heard(joined),
        RoomHeard::Membership {
            room: "#ops".into(),
            change: "joined".into(),
            reply_to: Some("j".into()),
        }
    );
    let refused = r##"{"type":"errorMessage","error":"limitReached","id":"E1","replyTo":"j","description":"at most 10 new rooms a minute from one address"}"##;
    assert_eq!(
        heard(refused),
        RoomHeard::Error {
            code: "limitReached".into(),
            reply_to: Some("j".into())
        }
    );
    let kicked = r##"{"type":"membership","id":"M2","room":"#ops","change":"kicked","by":"alice","reason":"wrong room"}"##;
    assert!(matches!(
        heard(kicked),
        RoomHeard::Membership { reply_to: None, .. }
    ));
}

#[test]
fn hears_the_login_and_the_lobbys_join_notices() {
    let login = r##"{"type":"loginMessage","id":"Zq0","replyTo":"l","username":"alice","location":"127.0.0.1","secret":"AvxU"}"##;
    assert_eq!(heard(login), RoomHeard::LoginMessage);
    let barrier = format!(
        r##"{{"type":"loginBroadcast","id":"i","username":"{BARRIER}","location":"127.0.0.3","timestamp":1}}"##
    );
    assert_eq!(
        heard(&barrier),
        RoomHeard::Lobby(Heard::LoginBroadcast { barrier: true })
    );
    let summary = format!(
        r##"{{"type":"presence","id":"P","joined":["lg-x-9","{BARRIER}"],"joinedCount":900}}"##
    );
    assert_eq!(
        heard(&summary),
        RoomHeard::Lobby(Heard::Presence {
            barrier: true,
            joined: 900
        })
    );
    // Should a v3 server tell the lobby's joins as `member` frames.
    let member = |username: &str, change: &str| {
        format!(
            r##"{{"type":"member","id":"m","room":"#lobby","username":"{username}","change":"{change}","timestamp":1}}"##
        )
    };
    assert_eq!(
        heard(&member(BARRIER, "joined")),
        RoomHeard::Lobby(Heard::LoginBroadcast { barrier: true })
    );
    for other in [member("lg-x-1", "joined"), member(BARRIER, "left")] {
        assert_eq!(
            heard(&other),
            RoomHeard::Lobby(Heard::LoginBroadcast { barrier: false }),
            "{other}"
        );
    }
}

#[test]
fn what_follows_a_login_and_the_rest_of_v3_is_other() {
    for frame in [
        r##"{"type":"rooms","id":"R1","replyTo":"l1","rooms":[{"room":"#dev","topic":"builds","inviteOnly":false,"members":3,"role":"owner","epoch":"Xq","lastSeq":8,"readSeq":7,"unread":1,"mentioned":true,"recovered":true}],"changes":[{"room":"@bob","change":"joined"}]}"##,
        r##"{"type":"history","id":"H1","replyTo":"l1","room":"#dev","epoch":"Xq","messages":[{"type":"textBroadcast","id":"0St","username":"bob","message":"lg 1 2 3 x","seq":8,"timestamp":1764326390000,"room":"#dev"}],"complete":true}"##,
        r##"{"type":"member","room":"#lg-x-r1","username":"lg-x-11","change":"joined","timestamp":1}"##,
        r##"{"type":"notice","id":"N1","room":"#ops","seq":1,"timestamp":1764326402000,"act":"invite","by":"alice","username":"carol"}"##,
        r##"{"type":"readMarker","id":"W1","replyTo":"r1","room":"#dev","seq":8}"##,
        r##"{"type":"logoutBroadcast","id":"i","username":"u","reason":"disconnected","timestamp":1}"##,
        r##"{"type":"somethingNew","extra":[1,{"a":null}]}"##,
    ] {
        assert_eq!(heard(frame), RoomHeard::Other, "{frame}");
    }
}

#[test]
fn malformed_frames_are_garbage_not_panics() {
    for frame in [
        "",
        "null",
        "[1]",
        r##"{"type":"textBroadcast""##,
        r##"{"type":"textBroadcast","id":"i"}"##,
        r##"{"type":"textBroadcast","message":7}"##,
        r##"{"type":"membership","room":"#x"}"##,
        r##"{"type":"membership","room":"#x","change":"joined","seq":"one"}"##,
        r##"{"id":"no type"}"##,
    ] {
        assert_eq!(heard(frame), RoomHeard::Garbage, "{frame}");
    }
    // An errorMessage without a code still is one.
    assert!(matches!(
        heard(r##"{"type":"errorMessage","id":"E"}"##),
        RoomHeard::Error { reply_to: None, .. }
    ));
}
