//! Moderation (protocol v3): every act, done by whom may do it and refused
//! to whom may not; roles; server operators (`Config::operators`); bans and
//! mutes that run out on the virtual clock. Every act is a `notice` to the
//! room, numbered with its messages and kept in its history.

#[path = "common/rooms.rs"]
mod rooms;

use rooms::*;
use serde_json::{Value, json};
use wschat::{Config, ConnectionId};

/// A notice as every member sees it; `fields` adds the act's own.
fn notice(seq: u64, at: u64, act: &str, by: &str, fields: Value) -> Value {
    let mut frame = json!({"type": "notice", "id": "*", "room": "#mod", "seq": seq,
        "timestamp": at, "act": act, "by": by});
    if let (Some(f), Value::Object(fields)) = (frame.as_object_mut(), fields) {
        f.extend(fields);
    }
    frame
}

struct Room {
    w: World,
    /// Owner, operator, member, and a name not in the room.
    olive: ConnectionId,
    oscar: ConnectionId,
    mia: ConnectionId,
    xena: ConnectionId,
}

/// `#mod`: olive owns it, oscar is an operator (notice 1), mia a member;
/// xena is online but not in it.
fn room_with(config: Config) -> Room {
    let mut w = World::new(config);
    let olive = w.user("olive");
    let oscar = w.user("oscar");
    let mia = w.user("mia");
    let xena = w.user("xena");
    w.join(olive, "#mod");
    w.join(oscar, "#mod");
    w.join(mia, "#mod");
    let out = w.act(olive, "op", "#mod", json!({"username": "oscar"}));
    assert_out(
        &out,
        [olive, oscar, mia]
            .map(|c| {
                send(
                    c,
                    notice(1, t(0), "op", "olive", json!({"username": "oscar"})),
                )
            })
            .to_vec(),
    );
    Room {
        w,
        olive,
        oscar,
        mia,
        xena,
    }
}

fn room() -> Room {
    room_with(config())
}

/// `out` without the `member` frames telling that `name` left: a kick or a
/// ban may also be told as a leave (the contract neither asks nor forbids
/// it).
fn without_leave(out: &[Out], name: &str) -> Vec<Out> {
    out.iter()
        .filter(|o| {
            !o.frame().is_some_and(|f| {
                f["type"] == "member" && f["username"] == name && f["change"] == "left"
            })
        })
        .cloned()
        .collect()
}

/// Everyone in the room gets `frame`.
fn to_all(conns: &[ConnectionId], frame: Value) -> Vec<Out> {
    conns.iter().map(|&c| send(c, frame.clone())).collect()
}

/// The roles in `#mod`'s member list, as `conn` asks.
fn roles(w: &mut World, conn: ConnectionId) -> Vec<(String, String, bool)> {
    let out = w.ask(
        conn,
        json!({"type": "listMembers", "id": "lm", "room": "#mod"}),
    );
    let mut roles: Vec<(String, String, bool)> = one(&out, conn, "memberList")["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
                m["muted"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    roles.sort();
    roles
}

fn role(name: &str, role: &str) -> (String, String, bool) {
    (name.to_owned(), role.to_owned(), false)
}

#[test]
fn an_operator_sets_the_topic_and_a_member_may_not() {
    let Room {
        mut w,
        olive,
        oscar,
        mia,
        ..
    } = room();
    let out = w.act(mia, "topic", "#mod", json!({"topic": "mine"}));
    assert_refused(&out, mia, "forbidden", "a", "");
    w.advance(ms(250));
    let out = w.act(oscar, "topic", "#mod", json!({"topic": "builds"}));
    assert_out(
        &out,
        to_all(
            &[olive, oscar, mia],
            notice(2, t(250), "topic", "oscar", json!({"topic": "builds"})),
        ),
    );
    let out = w.ask(mia, json!({"type": "listRooms", "id": "lr"}));
    let state = &states(&one(&out, mia, "roomList"))["#mod"];
    assert_eq!(
        (&state["topic"], &state["lastSeq"]),
        (&json!("builds"), &json!(2))
    );
    // Notices are kept with the messages, in one numbering.
    assert_eq!(w.said(mia, "#mod", "nice"), 3);
    let out = w.ask(mia, json!({"type": "history", "id": "h", "room": "#mod"}));
    let history = one(&out, mia, "history");
    assert_eq!(history_entries(&history), ["1:<op>", "2:<topic>", "3:nice"]);
    assert_eq!(
        history["messages"][1],
        notice(2, t(250), "topic", "oscar", json!({"topic": "builds"}))
    );
}

#[test]
fn an_operator_makes_a_room_invite_only_and_invites_and_the_invite_is_used_once() {
    let Room {
        mut w,
        olive,
        oscar,
        mia,
        xena,
    } = room();
    let out = w.act(mia, "mode", "#mod", json!({"inviteOnly": true}));
    assert_refused(&out, mia, "forbidden", "a", "");
    let out = w.act(oscar, "mode", "#mod", json!({"inviteOnly": true}));
    assert_out(
        &out,
        to_all(
            &[olive, oscar, mia],
            notice(2, t(0), "mode", "oscar", json!({"inviteOnly": true})),
        ),
    );
    let out = w.ask(xena, json!({"type": "join", "id": "j", "room": "#mod"}));
    assert_refused(&out, xena, "forbidden", "j", "#mod is invite-only");
    // A member may not invite; an operator may, and the invited name is told.
    let out = w.act(mia, "invite", "#mod", json!({"username": "xena"}));
    assert_refused(&out, mia, "forbidden", "a", "");
    let out = w.act(oscar, "invite", "#mod", json!({"username": "xena"}));
    let mut expected = to_all(
        &[olive, oscar, mia],
        notice(3, t(0), "invite", "oscar", json!({"username": "xena"})),
    );
    expected.push(send(
        xena,
        json!({"type": "membership", "id": "*", "room": "#mod", "change": "invited", "by": "oscar"}),
    ));
    assert_out(&out, expected);
    w.join(xena, "#mod");
    // The invite was used: out again, xena needs a new one.
    w.ask(xena, json!({"type": "part", "id": "p", "room": "#mod"}));
    let out = w.ask(xena, json!({"type": "join", "id": "j", "room": "#mod"}));
    assert_refused(&out, xena, "forbidden", "j", "#mod is invite-only");
    // Inviting a name that is not held.
    let out = w.act(oscar, "invite", "#mod", json!({"username": "nobody"}));
    assert_refused(&out, oscar, "noSuchUser", "a", "");
    // Public again: anyone may join.
    w.act(olive, "mode", "#mod", json!({"inviteOnly": false}));
    w.join(xena, "#mod");
}

#[test]
fn an_operator_kicks_a_member_with_a_reason_who_may_come_back() {
    let Room {
        mut w,
        olive,
        oscar,
        mia,
        xena,
    } = room();
    let mia_laptop = w.device("mia", mia);
    let _ = w.drain();
    let out = w.act(mia, "kick", "#mod", json!({"username": "oscar"}));
    assert_refused(&out, mia, "forbidden", "a", "");
    let out = w.act(
        oscar,
        "kick",
        "#mod",
        json!({"username": "mia", "reason": "off topic"}),
    );
    let kicked = json!({"type": "membership", "id": "*", "room": "#mod", "change": "kicked",
        "by": "oscar", "reason": "off topic"});
    let kick = notice(
        2,
        t(0),
        "kick",
        "oscar",
        json!({"username": "mia", "reason": "off topic"}),
    );
    let mut stayed = per_conn(&without_leave(&out, "mia"));
    for conn in [mia, mia_laptop] {
        let got = stayed.remove(&conn).unwrap_or_default();
        assert!(got.contains(&send(conn, kicked.clone())), "{got:#?}");
        assert!(
            got.iter()
                .all(|o| *o == send(conn, kicked.clone()) || *o == send(conn, kick.clone())),
            "{got:#?}"
        );
    }
    let stayed: Vec<Out> = stayed.into_values().flatten().collect();
    assert_out(&stayed, to_all(&[olive, oscar], kick));
    assert_eq!(
        roles(&mut w, olive),
        [role("olive", "owner"), role("oscar", "operator")]
    );
    // Kicking a name that is not in the room.
    let out = w.act(oscar, "kick", "#mod", json!({"username": "xena"}));
    let [Out::Send(_, frame)] = &out[..] else {
        panic!("{out:#?}")
    };
    assert_eq!(frame["type"], "errorMessage", "{frame}");
    let _ = xena;
    // A kick is not a ban.
    w.join(mia_laptop, "#mod");
}

#[test]
fn a_ban_for_a_while_keeps_a_name_out_until_it_runs_out() {
    let Room {
        mut w,
        olive,
        oscar,
        mia,
        ..
    } = room();
    let out = w.act(mia, "ban", "#mod", json!({"username": "oscar"}));
    assert_refused(&out, mia, "forbidden", "a", "");
    w.advance(secs(1));
    let out = w.act(
        oscar,
        "ban",
        "#mod",
        json!({"username": "mia", "seconds": 60, "reason": "spam"}),
    );
    let ban = notice(
        2,
        t(1000),
        "ban",
        "oscar",
        json!({"username": "mia", "reason": "spam", "until": t(61_000)}),
    );
    let banned = json!({"type": "membership", "id": "*", "room": "#mod", "change": "banned",
        "by": "oscar", "reason": "spam", "until": t(61_000)});
    let mut got = per_conn(&without_leave(&out, "mia"));
    let mia_got = got.remove(&mia).unwrap_or_default();
    assert!(mia_got.contains(&send(mia, banned)), "{mia_got:#?}");
    assert_out(
        &got.into_values().flatten().collect::<Vec<_>>(),
        to_all(&[olive, oscar], ban),
    );
    w.advance(secs(30));
    let out = w.ask(mia, json!({"type": "join", "id": "j", "room": "#mod"}));
    // The description says until when.
    let description = assert_refused(&out, mia, "banned", "j", "until");
    assert!(
        description.contains(&t(61_000).to_string()) || description.contains("31 s"),
        "{description}"
    );
    let out = w.say(mia, "#mod", "let me back");
    assert_refused(&out, mia, "notAMember", "m", "you are not in #mod");
    // It runs out on the clock.
    w.advance(secs(30));
    w.join(mia, "#mod");
}

#[test]
fn a_ban_for_good_lasts_until_lifted_and_unban_lifts_it() {
    let Room {
        mut w,
        olive,
        oscar,
        mia,
        xena,
    } = room();
    // A name not in the room may be banned too (kept out before it comes).
    let out = w.act(oscar, "ban", "#mod", json!({"username": "xena"}));
    assert_out(
        &out,
        vec![
            send(
                olive,
                notice(2, t(0), "ban", "oscar", json!({"username": "xena"})),
            ),
            send(
                oscar,
                notice(2, t(0), "ban", "oscar", json!({"username": "xena"})),
            ),
            send(
                mia,
                notice(2, t(0), "ban", "oscar", json!({"username": "xena"})),
            ),
            send(
                xena,
                json!({"type": "membership", "id": "*", "room": "#mod", "change": "banned", "by": "oscar"}),
            ),
        ],
    );
    w.advance(secs(86_400 * 2));
    let out = w.ask(xena, json!({"type": "join", "id": "j", "room": "#mod"}));
    assert_refused(&out, xena, "banned", "j", "");
    let out = w.act(mia, "unban", "#mod", json!({"username": "xena"}));
    assert_refused(&out, mia, "forbidden", "a", "");
    let at = w.now_ms();
    let out = w.act(oscar, "unban", "#mod", json!({"username": "xena"}));
    assert_out(
        &out,
        to_all(
            &[olive, oscar, mia],
            notice(3, at, "unban", "oscar", json!({"username": "xena"})),
        ),
    );
    w.join(xena, "#mod");
}

#[test]
fn a_muted_member_may_read_but_not_say_until_the_mute_runs_out_or_is_lifted() {
    let Room {
        mut w,
        olive,
        oscar,
        mia,
        ..
    } = room();
    let out = w.act(mia, "mute", "#mod", json!({"username": "oscar"}));
    assert_refused(&out, mia, "forbidden", "a", "");
    let out = w.act(
        oscar,
        "mute",
        "#mod",
        json!({"username": "mia", "seconds": 30}),
    );
    assert_out(
        &out,
        to_all(
            &[olive, oscar, mia],
            notice(
                2,
                t(0),
                "mute",
                "oscar",
                json!({"username": "mia", "until": t(30_000)}),
            ),
        ),
    );
    let out = w.say(mia, "#mod", "can I?");
    assert_refused(&out, mia, "muted", "m", "");
    assert_eq!(
        roles(&mut w, olive),
        [
            ("mia".into(), "member".into(), true),
            role("olive", "owner"),
            role("oscar", "operator")
        ]
    );
    // Still reads.
    let out = w.say(olive, "#mod", "you can read this");
    assert_eq!(one(&out, mia, "textBroadcast")["seq"], 3);
    // Runs out on the clock.
    w.advance(secs(30));
    assert_eq!(w.said(mia, "#mod", "free again"), 4);
    // For good, then lifted.
    let out = w.act(oscar, "mute", "#mod", json!({"username": "mia"}));
    assert_eq!(
        one(&out, olive, "notice"),
        notice(5, t(30_000), "mute", "oscar", json!({"username": "mia"}))
    );
    w.advance(secs(86_400));
    let out = w.say(mia, "#mod", "still?");
    assert_refused(&out, mia, "muted", "m", "");
    let out = w.act(mia, "unmute", "#mod", json!({"username": "mia"}));
    assert_refused(&out, mia, "forbidden", "a", "");
    let out = w.act(oscar, "unmute", "#mod", json!({"username": "mia"}));
    let at = w.now_ms();
    assert_out(
        &out,
        to_all(
            &[olive, oscar, mia],
            notice(6, at, "unmute", "oscar", json!({"username": "mia"})),
        ),
    );
    assert_eq!(w.said(mia, "#mod", "thanks"), 7);
}

#[test]
fn only_the_owner_makes_and_unmakes_operators() {
    let Room {
        mut w,
        olive,
        oscar,
        mia,
        ..
    } = room();
    let out = w.act(oscar, "op", "#mod", json!({"username": "mia"}));
    assert_refused(&out, oscar, "forbidden", "a", "");
    let out = w.act(mia, "op", "#mod", json!({"username": "mia"}));
    assert_refused(&out, mia, "forbidden", "a", "");
    let out = w.act(olive, "op", "#mod", json!({"username": "mia"}));
    assert_out(
        &out,
        to_all(
            &[olive, oscar, mia],
            notice(2, t(0), "op", "olive", json!({"username": "mia"})),
        ),
    );
    assert_eq!(
        roles(&mut w, mia),
        [
            role("mia", "operator"),
            role("olive", "owner"),
            role("oscar", "operator")
        ]
    );
    // An operator may not deop another; the owner may.
    let out = w.act(mia, "deop", "#mod", json!({"username": "oscar"}));
    assert_refused(&out, mia, "forbidden", "a", "");
    let out = w.act(olive, "deop", "#mod", json!({"username": "oscar"}));
    assert_out(
        &out,
        to_all(
            &[olive, oscar, mia],
            notice(3, t(0), "deop", "olive", json!({"username": "oscar"})),
        ),
    );
    // oscar is a member now, and may no longer act.
    let out = w.act(oscar, "topic", "#mod", json!({"topic": "x"}));
    assert_refused(&out, oscar, "forbidden", "a", "");
    // The owner cannot be made an operator (it is more), nor deopped.
    let out = w.act(olive, "op", "#mod", json!({"username": "olive"}));
    assert_refused(&out, olive, "forbidden", "a", "");
    let out = w.act(olive, "deop", "#mod", json!({"username": "olive"}));
    assert_refused(&out, olive, "forbidden", "a", "");
    assert_eq!(roles(&mut w, olive)[1], role("olive", "owner"));
}

#[test]
fn an_operator_cannot_touch_the_owner_or_a_server_operator() {
    let Room {
        mut w,
        oscar,
        olive,
        ..
    } = room_with(Config {
        operators: vec!["Sam".into()],
        ..config()
    });
    let sam = w.user("sam");
    w.join(sam, "#mod");
    for (act, fields) in [
        ("kick", json!({"username": "olive"})),
        ("ban", json!({"username": "olive"})),
        ("mute", json!({"username": "olive"})),
        ("deop", json!({"username": "olive"})),
        ("kick", json!({"username": "sam"})),
        ("ban", json!({"username": "sam"})),
        ("mute", json!({"username": "sam", "seconds": 5})),
        ("deop", json!({"username": "sam"})),
    ] {
        let out = w.act(oscar, act, "#mod", fields.clone());
        assert_refused(&out, oscar, "forbidden", "a", "");
        let _ = olive;
    }
    // Nothing was done.
    let out = w.ask(oscar, json!({"type": "history", "id": "h", "room": "#mod"}));
    assert_eq!(history_entries(&one(&out, oscar, "history")), ["1:<op>"]);
}

#[test]
fn a_server_operator_moderates_every_room() {
    let Room {
        mut w,
        olive,
        oscar,
        mia,
        xena,
    } = room_with(Config {
        operators: vec!["Sam".into()],
        ..config()
    });
    let sam = w.user("sam");
    w.join(sam, "#mod");
    let _ = w.drain();
    // In a room it does not own and was never made operator of.
    let out = w.act(sam, "kick", "#mod", json!({"username": "mia"}));
    let kick = notice(2, t(0), "kick", "sam", json!({"username": "mia"}));
    let mut got = per_conn(&without_leave(&out, "mia"));
    got.remove(&mia);
    assert_out(
        &got.into_values().flatten().collect::<Vec<_>>(),
        to_all(&[olive, oscar, sam], kick),
    );
    let out = w.act(sam, "topic", "#mod", json!({"topic": "by the server"}));
    assert_eq!(
        one(&out, olive, "notice"),
        notice(3, t(0), "topic", "sam", json!({"topic": "by the server"}))
    );
    let _ = xena;
}

#[test]
fn a_server_operator_moderates_the_lobby_and_v1_v2_see_nothing_of_it() {
    let mut w = World::new(Config {
        operators: vec!["Sam".into()],
        ..config()
    });
    let old = w.user_v("oldie", wschat::Version::V1);
    let mid = w.user_v("middy", wschat::Version::V2);
    let sam = w.user("sam");
    let mia = w.user("mia");
    let xena = w.user("xena");
    let _ = (old, mid);
    // The lobby, which nobody owns: a mute there works like anywhere (the
    // harness fails on any v3 frame to the v1 and v2 connections).
    let out = w.act(xena, "mute", "#lobby", json!({"username": "mia"}));
    assert_refused(&out, xena, "forbidden", "a", "");
    let out = w.act(
        sam,
        "mute",
        "#lobby",
        json!({"username": "xena", "seconds": 10}),
    );
    let mute = one(&out, mia, "notice");
    assert_eq!(
        (
            &mute["room"],
            &mute["act"],
            &mute["by"],
            &mute["username"],
            &mute["until"]
        ),
        (
            &json!("#lobby"),
            &json!("mute"),
            &json!("sam"),
            &json!("xena"),
            &json!(t(10_000))
        )
    );
    let out = w.say(xena, "#lobby", "hello?");
    assert_refused(&out, xena, "muted", "m", "");
    w.advance(secs(10));
    w.said(xena, "#lobby", "hello!");
}

#[test]
fn acts_naming_a_name_that_is_not_held_are_no_such_user() {
    let Room { mut w, oscar, .. } = room();
    for act in ["kick", "ban", "unban", "mute", "unmute", "invite"] {
        let out = w.act(oscar, act, "#mod", json!({"username": "ghost"}));
        assert_refused(&out, oscar, "noSuchUser", "a", "");
    }
}

#[test]
fn a_server_operator_kicks_and_bans_from_the_lobby_and_sets_its_topic() {
    let mut w = World::new(Config {
        operators: vec!["Sam".into()],
        ..config()
    });
    let old = w.user_v("oldie", wschat::Version::V1);
    let mid = w.user_v("middy", wschat::Version::V2);
    let sam = w.user("sam");
    let mia = w.user("mia");
    let _ = w.drain();
    let out = w.act(sam, "topic", "#lobby", json!({"topic": "welcome"}));
    let topic = one(&out, mia, "notice");
    assert_eq!(
        (&topic["room"], &topic["act"], &topic["topic"]),
        (&json!("#lobby"), &json!("topic"), &json!("welcome"))
    );
    let out = w.ask(mia, json!({"type": "listRooms", "id": "lr"}));
    assert_eq!(
        states(&one(&out, mia, "roomList"))["#lobby"]["topic"],
        "welcome"
    );
    // A kick takes the name out of the lobby; it may come back.
    let out = w.act(
        sam,
        "kick",
        "#lobby",
        json!({"username": "mia", "reason": "calm down"}),
    );
    assert!(
        frames(&out, mia)
            .iter()
            .any(|f| f["type"] == "membership" && f["change"] == "kicked" && f["room"] == "#lobby"),
        "{out:#?}"
    );
    let out = w.ask(
        old,
        json!({"type": "textFromUser", "id": "m", "text": "quiet now"}),
    );
    assert!(frames(&out, mia).is_empty(), "{out:#?}");
    w.join(mia, "#lobby");
    // A ban keeps it out until it runs out.
    w.act(
        sam,
        "ban",
        "#lobby",
        json!({"username": "mia", "seconds": 60}),
    );
    let out = w.ask(mia, json!({"type": "join", "id": "j", "room": "#lobby"}));
    assert_refused(&out, mia, "banned", "j", "until");
    w.advance(secs(60));
    w.join(mia, "#lobby");
    // v1 and v2 saw none of it (the harness fails on any v3 frame to them),
    // and their numbering has no gap.
    let out = w.ask(
        old,
        json!({"type": "textFromUser", "id": "m", "text": "next"}),
    );
    assert_eq!(one(&out, mid, "textBroadcast")["seq"], 2);
}
