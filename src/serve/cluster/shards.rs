//! Several Redis shards (`--redis-url` given more than once): which one
//! holds what, sans IO.
//!
//! The first URL is the *home*: names, presence, nodes and heartbeats, the
//! lobby (its numbering, history and room rows) stay there, as on a
//! cluster of one Redis. Every other room (a direct conversation too)
//! lives on one shard, chosen by rendezvous hashing: the shard whose id
//! scores highest with the room's key ([`score`]). Each shard keeps its own
//! directory (`wschat:rooms`) and each name's ties (`wschat:{u:KEY}:rooms`)
//! for its own rooms; so a name released on the home is released on every
//! other shard too (the driver sends it there, see `Cluster`).
//!
//! Each shard holds its id (`wschat:shard`, set once by the first node to
//! reach it) and the cluster's list of ids, home first (`wschat:shards`,
//! written once): a node whose `--redis-url` list reaches other ids, or
//! another home, refuses to start ([`check_ids`]), so two nodes never
//! place one room on two shards. Adding a shard would move the rooms it
//! scores highest for (about 1/n of them): not built.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::requests::{Answer, Call, Failed};
use super::room_events::room_of;
use super::room_scripts::LOBBY;

/// A shard's id (a random string, set once with SET NX).
pub(crate) const SHARD_ID: &str = "wschat:shard";
/// The cluster's shard ids, home first, one a line (set once with SET NX).
pub(crate) const SHARD_LIST: &str = "wschat:shards";

/// FNV-1a, 64 bits: a stable hash (the same on every node and every
/// version; the tests pin its values).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// The rendezvous score of `room` on the shard `shard` (its id): FNV-1a 64
/// of `shard`, a 0 byte and `room`, then SplitMix64's finalizer (FNV's low
/// avalanche would make similar ids score alike).
pub(crate) fn score(shard: &str, room: &str) -> u64 {
    let mut bytes = Vec::with_capacity(shard.len() + 1 + room.len());
    bytes.extend_from_slice(shard.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(room.as_bytes());
    let mut z = fnv1a64(&bytes);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Where rooms live: the shards' ids, in this node's `--redis-url` order
/// (the home first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    ids: Vec<String>,
}

/// The home shard's index.
pub(crate) const HOME: usize = 0;

impl Placement {
    pub(crate) fn new(ids: Vec<String>) -> Placement {
        Placement { ids }
    }

    /// The index of the shard holding `room` (a room key): the lobby's is
    /// the home; any other, the shard with the highest score (ties, which
    /// take a 64-bit collision, go to the greater id: never to the order
    /// of the list).
    pub(crate) fn shard_of(&self, room: &str) -> usize {
        if room == LOBBY || self.ids.len() <= 1 {
            return HOME;
        }
        self.ids
            .iter()
            .enumerate()
            .max_by_key(|(_, id)| (score(id, room), id.as_str()))
            .map_or(HOME, |(i, _)| i)
    }

    /// The shard a request of the core goes to: a room's write or entry to
    /// its room's, anything else (names, presence, the lobby, a name's
    /// release) to the home. (A release reaches the other shards apart:
    /// see [`released_by`].)
    pub(crate) fn route(&self, call: &Call) -> usize {
        match room_of_call(call) {
            Some(room) => self.shard_of(room),
            None => HOME,
        }
    }
}

/// A batch of the core's requests, routed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Routed {
    /// Each shard's requests (and answers given without Redis, home's),
    /// in the order the core asked.
    pub(crate) per_shard: Vec<Vec<Result<Call, Answer>>>,
    /// Requests for rooms on a shard out of reach, refused at once saying
    /// so.
    pub(crate) refused: Vec<Answer>,
    /// Names the core released: the other shards drop their rows too.
    pub(crate) released: Vec<Arc<str>>,
}

impl Placement {
    /// Routes a batch; `down[i]` names shard `i` if it cannot be reached
    /// now. The core needs no order of answers across shards (each is
    /// matched by its ticket, and shards share no room): only each
    /// shard's requests keep their order.
    pub(crate) fn route_batch(
        &self,
        calls: impl IntoIterator<Item = Result<Call, Answer>>,
        down: &[Option<&str>],
    ) -> Routed {
        let mut routed = Routed {
            per_shard: down.iter().map(|_| Vec::new()).collect(),
            ..Routed::default()
        };
        for call in calls {
            let call = match call {
                Ok(call) => call,
                Err(answer) => {
                    routed.per_shard[HOME].push(Err(answer));
                    continue;
                }
            };
            if let Some(key) = released_by(&call) {
                routed.released.push(key.into());
            }
            let index = self.route(&call).min(down.len().saturating_sub(1));
            if let (true, Some(Some(name)), Some(room)) =
                (down.len() > 1, down.get(index), room_of_call(&call))
            {
                let told = unreachable_room(room, index, down.len());
                let why = format!("{name}: not reached");
                routed.refused.push(call.fail(Failed::telling(&why, &told)));
                continue;
            }
            routed.per_shard[index].push(Ok(call));
        }
        routed
    }
}

/// The room a request is for, if any (the lobby's messages have none).
pub(crate) fn room_of_call(call: &Call) -> Option<&str> {
    match call {
        Call::RoomWrite { write, .. } => room_of(write).map(|room| &**room),
        Call::RoomAppend { room, .. } => Some(room),
        _ => None,
    }
}

/// The name a request of the core releases (`Write::Release`): its rooms'
/// rows go on every shard.
pub(crate) fn released_by(call: &Call) -> Option<&str> {
    match call {
        Call::RoomWrite {
            write: crate::server::Write::Release { key },
            ..
        } => Some(key),
        _ => None,
    }
}

/// What a user is told of a request for `room` on an unreachable shard
/// `index` (the URL is for `/readyz` and the log, not for users).
pub(crate) fn unreachable_room(room: &str, index: usize, shards: usize) -> String {
    let room = if room.starts_with('@') {
        "this direct conversation"
    } else {
        room
    };
    format!(
        "{room} is on a Redis shard that cannot be reached (shard {} of {shards})",
        index + 1
    )
}

/// The list of ids as [`SHARD_LIST`] keeps it.
pub(crate) fn encode_list(ids: &[String]) -> String {
    ids.join("\n")
}

/// Whether the shards this node reached (`ours`: `(place, id)` in
/// `--redis-url` order) are the cluster's (`listed`: a shard's
/// [`SHARD_LIST`], home first): the same home and the same set. `Err`
/// says which differ.
pub(crate) fn check_ids(ours: &[(String, String)], listed: &str) -> Result<(), String> {
    let listed: Vec<&str> = listed.lines().filter(|id| !id.is_empty()).collect();
    let mine: BTreeSet<&str> = ours.iter().map(|(_, id)| id.as_str()).collect();
    let theirs: BTreeSet<&str> = listed.iter().copied().collect();
    let home = ours.first().map(|(_, id)| id.as_str());
    if mine == theirs && home == listed.first().copied() {
        return Ok(());
    }
    let mut why = Vec::new();
    for (place, id) in ours {
        if !theirs.contains(id.as_str()) {
            why.push(format!(
                "{place} (shard {id}) is not one of the cluster's shards"
            ));
        }
    }
    for id in theirs.difference(&mine) {
        why.push(format!("the cluster's shard {id} is not among --redis-url"));
    }
    if why.is_empty() {
        why.push(format!(
            "the cluster's home shard is {}, not the first --redis-url ({})",
            listed.first().unwrap_or(&"none"),
            ours.first().map_or("none", |(place, _)| place.as_str()),
        ));
    }
    Err(format!(
        "--redis-url names other Redis shards than the cluster's (listed in {SHARD_LIST}: {}): \
         {}. Give every node the same --redis-url list, the home first; moving rooms to \
         another set of shards is not supported",
        listed.join(", "),
        why.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::server::{Ticket, Write};

    #[test]
    fn the_hash_never_changes() {
        // FNV-1a 64's published test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        // Rooms placed by an earlier version stay where they are.
        assert_eq!(score("s1", "#dev"), 0x878d_e5b2_bbdd_921a);
        assert_eq!(score("s2", "#dev"), 0xc38e_40f1_0479_85b7);
    }

    fn placement(n: usize) -> Placement {
        Placement::new((1..=n).map(|i| format!("shard{i}")).collect())
    }

    #[test]
    fn the_lobby_is_home_and_rooms_spread_over_every_shard() {
        let two = placement(2);
        assert_eq!(two.shard_of(LOBBY), HOME);
        let rooms: Vec<String> = (0..1000).map(|i| format!("#room{i}")).collect();
        let on_second = rooms.iter().filter(|r| two.shard_of(r) == 1).count();
        assert!((400..600).contains(&on_second), "{on_second} of 1000");
        // One shard: all at home, as before shards.
        assert!(rooms.iter().all(|r| placement(1).shard_of(r) == HOME));
    }

    #[test]
    fn placement_does_not_depend_on_the_order_of_the_other_shards() {
        let ids = ["home", "b", "c"].map(str::to_owned);
        let one = Placement::new(ids.to_vec());
        let other = Placement::new(vec![ids[0].clone(), ids[2].clone(), ids[1].clone()]);
        for i in 0..200 {
            let room = format!("#r{i}");
            assert_eq!(
                ids[one.shard_of(&room)],
                other.ids[other.shard_of(&room)],
                "{room}"
            );
        }
    }

    #[test]
    fn adding_a_shard_moves_only_the_rooms_it_wins() {
        let (two, three) = (placement(2), placement(3));
        let rooms: Vec<String> = (0..900).map(|i| format!("#room{i}")).collect();
        let mut moved = 0;
        for room in &rooms {
            let now = three.shard_of(room);
            if now == 2 {
                moved += 1;
            } else {
                assert_eq!(now, two.shard_of(room), "{room} moved between old shards");
            }
        }
        assert!((200..400).contains(&moved), "{moved} of 900 moved");
    }

    #[test]
    fn requests_go_to_their_rooms_shard_and_the_rest_home() {
        let two = placement(2);
        let room: Arc<str> = (0..)
            .map(|i| format!("#r{i}"))
            .find(|r| two.shard_of(r) == 1)
            .unwrap()
            .into();
        let append = |room: &Arc<str>| Call::RoomAppend {
            ticket: Ticket::for_tests(1),
            room: room.clone(),
            id: "m".into(),
            timestamp: 1,
            username: "Bob".into(),
            text: "hi".into(),
            notice: false,
        };
        let write = |write| Call::RoomWrite {
            ticket: Ticket::for_tests(2),
            write,
        };
        assert_eq!(two.route(&append(&room)), 1);
        assert_eq!(two.route(&append(&LOBBY.into())), HOME);
        let join = Write::Member {
            room: room.clone(),
            name: "bob".into(),
            role: crate::protocol::Role::Member,
            muted_until: None,
        };
        assert_eq!(two.route(&write(join)), 1);
        let lobby_ban = Write::Ban {
            room: LOBBY.into(),
            name: "bob".into(),
            until: None,
        };
        assert_eq!(two.route(&write(lobby_ban)), HOME);
        let release = write(Write::Release { key: "bob".into() });
        assert_eq!(two.route(&release), HOME);
        assert_eq!(released_by(&release), Some("bob"));
        let online = Call::Online {
            ticket: Ticket::for_tests(3),
        };
        assert_eq!(two.route(&online), HOME);
        assert_eq!(released_by(&online), None);
    }

    #[test]
    fn a_batch_keeps_each_shards_order_and_a_room_out_of_reach_is_refused_saying_so() {
        let two = placement(2);
        let far: Arc<str> = (0..)
            .map(|i| format!("#r{i}"))
            .find(|r| two.shard_of(r) == 1)
            .unwrap()
            .into();
        let entry = |n: u64, room: &Arc<str>| Call::RoomAppend {
            ticket: Ticket::for_tests(n),
            room: room.clone(),
            id: format!("m{n}").into(),
            timestamp: 1,
            username: "Bob".into(),
            text: "hi".into(),
            notice: false,
        };
        let lobby: Arc<str> = LOBBY.into();
        let release = Call::RoomWrite {
            ticket: Ticket::for_tests(3),
            write: Write::Release { key: "eve".into() },
        };
        let settled = Ticket::<Write>::for_tests(5).answer(Ok(()));
        let batch = || {
            vec![
                Ok(entry(1, &far)),
                Ok(entry(2, &lobby)),
                Ok(release.clone()),
                Ok(entry(4, &far)),
                Err(settled.clone()),
            ]
        };
        let up = two.route_batch(batch(), &[None, None]);
        assert_eq!(
            up,
            Routed {
                per_shard: vec![
                    vec![
                        Ok(entry(2, &lobby)),
                        Ok(release.clone()),
                        Err(settled.clone())
                    ],
                    vec![Ok(entry(1, &far)), Ok(entry(4, &far))],
                ],
                refused: vec![],
                released: vec!["eve".into()],
            }
        );
        // The second shard out of reach: its room's entries are refused at
        // once, with what their senders are told; the rest goes on.
        let down = two.route_batch(batch(), &[None, Some("redis shard 2 (redis://b)")]);
        let told = "redis shard 2 (redis://b): not reached; the user is told: \
                    #r0 is on a Redis shard that cannot be reached (shard 2 of 2)"
            .replace("#r0", &far);
        let refused =
            |n| Ticket::<crate::server::Append>::for_tests(n).answer(Err(Failed(told.clone())));
        assert_eq!(
            down,
            Routed {
                per_shard: vec![
                    vec![Ok(entry(2, &lobby)), Ok(release.clone()), Err(settled)],
                    vec![],
                ],
                refused: vec![refused(1), refused(4)],
                released: vec!["eve".into()],
            }
        );
        let Some(Answer::Appended(_, Err(failed))) = down.refused.first() else {
            panic!("{down:?}");
        };
        assert_eq!(failed.told(), Some(unreachable_room(&far, 1, 2).as_str()));
    }

    #[test]
    fn a_node_with_other_shards_is_refused_and_told_which() {
        let ours = |ids: &[&str]| -> Vec<(String, String)> {
            ids.iter()
                .map(|id| (format!("redis://{id}"), (*id).to_owned()))
                .collect()
        };
        assert_eq!(check_ids(&ours(&["a", "b"]), "a\nb"), Ok(()));
        // The order of the others does not place rooms.
        assert_eq!(check_ids(&ours(&["a", "c", "b"]), "a\nb\nc"), Ok(()));
        let e = check_ids(&ours(&["a"]), "a\nb").unwrap_err();
        assert!(e.contains("shard b is not among --redis-url"), "{e}");
        let e = check_ids(&ours(&["a", "x"]), "a\nb").unwrap_err();
        assert!(e.contains("redis://x (shard x) is not one of"), "{e}");
        let e = check_ids(&ours(&["b", "a"]), "a\nb").unwrap_err();
        assert!(
            e.contains("home shard is a, not the first --redis-url (redis://b)"),
            "{e}"
        );
    }

    #[test]
    fn users_are_told_the_room_and_the_shard_not_its_address() {
        assert_eq!(
            unreachable_room("#dev", 1, 2),
            "#dev is on a Redis shard that cannot be reached (shard 2 of 2)"
        );
        assert!(unreachable_room("@a\nb", 1, 2).starts_with("this direct conversation is"));
    }
}
