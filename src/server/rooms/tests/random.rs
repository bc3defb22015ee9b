//! Random traffic.

use super::*;

/// Random v3 traffic from a few names on several devices, with and without
/// a store (whose answers sometimes fail): nothing panics, and who is in
/// which room agrees both ways (rooms → members, names → rooms).
#[test]
fn random_traffic_never_panics_and_keeps_memberships_consistent() {
    use rand::RngExt;

    use crate::server::Request;

    let names = ["ann", "bob", "cat"];
    let rooms = [
        "#a", "#B", "#lobby", "@ann", "@bob", "@cat", "@zed", "nope", "#",
    ];
    for seed in 0..6u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut core = if seed % 2 == 0 {
            Core::new(config())
        } else {
            let now = Instant::now();
            let wall = UNIX_EPOCH + Duration::from_millis(EPOCH_MS);
            let snapshot = crate::server::Snapshot::default();
            Core {
                server: Server::restore(config(), StdRng::seed_from_u64(seed), snapshot, wall, now),
                now,
                secrets: Default::default(),
            }
        };
        let mut conns = Vec::new();
        let mut seq = 0;
        for step in 0..3000 {
            let pick = |rng: &mut StdRng, of: &[&'static str]| of[rng.random_range(0..of.len())];
            let room = pick(&mut rng, &rooms);
            let name = pick(&mut rng, &names);
            let n = rng.random_range(0..40u64);
            let json = match rng.random_range(0..22) {
                0 if conns.len() < 8 => {
                    let version = if n % 3 == 0 { Version::V2 } else { Version::V3 };
                    conns.push(core.open(version));
                    continue;
                }
                1 if !conns.is_empty() => {
                    let conn = conns.swap_remove(rng.random_range(0..conns.len()));
                    core.server.handle_close(conn, core.now);
                    continue;
                }
                2 => {
                    core.skip(Duration::from_secs(n * 20));
                    continue;
                }
                3 => {
                    let secret = core.secrets.get(name).cloned().unwrap_or_default();
                    let rooms = format!(r#"[{{"room":"{room}","since":{n},"epoch":"x"}}]"#);
                    format!(
                        r#"{{"type":"login","id":"l","username":"{name}","secret":"{secret}","rooms":{rooms}}}"#
                    )
                }
                4 => format!(
                    r#"{{"type":"join","id":"j","room":"{room}","inviteOnly":{}}}"#,
                    n % 2 == 0
                ),
                5 => format!(r#"{{"type":"part","id":"p","room":"{room}","reason":"r"}}"#),
                6 | 7 => format!(
                    r#"{{"type":"textFromUser","id":"m","room":"{room}","text":"hi {name}"}}"#
                ),
                8 => r#"{"type":"listRooms","id":"r"}"#.to_owned(),
                9 => format!(r#"{{"type":"listMembers","id":"x","room":"{room}"}}"#),
                10 => format!(
                    r#"{{"type":"history","id":"h","room":"{room}","before":{n},"limit":{}}}"#,
                    n % 7
                ),
                11 => format!(r#"{{"type":"read","id":"r","room":"{room}","seq":{n}}}"#),
                12 => format!(r#"{{"type":"topic","id":"t","room":"{room}","topic":"t{n}"}}"#),
                13 => format!(
                    r#"{{"type":"mode","id":"o","room":"{room}","inviteOnly":{}}}"#,
                    n % 2 == 0
                ),
                14 => format!(
                    r#"{{"type":"ban","id":"b","room":"{room}","username":"{name}","seconds":{n}}}"#
                ),
                15 => format!(r#"{{"type":"kick","id":"k","room":"{room}","username":"{name}"}}"#),
                16 => format!(r#"{{"type":"mute","id":"m","room":"{room}","username":"{name}"}}"#),
                17 => format!(r#"{{"type":"op","id":"o","room":"{room}","username":"{name}"}}"#),
                18 => {
                    format!(r#"{{"type":"invite","id":"i","room":"{room}","username":"{name}"}}"#)
                }
                19 => format!(r#"{{"type":"unban","id":"u","room":"{room}","username":"{name}"}}"#),
                20 => r#"{"type":"logout","id":"o"}"#.to_owned(),
                _ => format!(r#"{{"type":"textFromUser","id":"m","text":"lobby {step}"}}"#),
            };
            if conns.is_empty() {
                continue;
            }
            let conn = conns[rng.random_range(0..conns.len())];
            core.send(conn, &json);
            while let Some(request) = core.server.poll_request() {
                let fail = rng.random_range(0..10) == 0;
                let answer = match &request {
                    _ if fail => request.fail(crate::server::Failed("disk full".into())),
                    Request::Write(ticket, _) => ticket.answer(Ok(())),
                    Request::Append(ticket, _) => {
                        seq += 1;
                        ticket.answer(Ok(seq))
                    }
                    other => other.fail(crate::server::Failed("no".into())),
                };
                core.server.handle_answer(answer, core.now);
            }
            for (to, frame) in core.drain() {
                if to == conn && frame["type"] == "loginMessage" {
                    let secret = frame["secret"].as_str().unwrap_or_default().to_owned();
                    core.secrets.insert(name.to_owned(), secret);
                }
            }
            let rooms = &core.server.rooms;
            for (key, room) in &rooms.by_key {
                for name in room.members.keys() {
                    assert!(
                        rooms.of_name.get(name).is_some_and(|r| r.contains(key)),
                        "seed {seed} step {step}"
                    );
                }
            }
            for (name, keys) in &rooms.of_name {
                for key in keys {
                    assert!(
                        rooms
                            .by_key
                            .get(key)
                            .is_some_and(|r| r.members.contains_key(name)),
                        "seed {seed} step {step}"
                    );
                }
            }
        }
    }
}
