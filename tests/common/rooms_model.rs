//! A model of a store for the rooms tests: it applies what the core asked
//! to save (`World::saved`), as ROOMS.md says each write means, and gives
//! back the `Snapshot` a store would, so that a test can restart the core
//! from it. Used with `#[path = "common/rooms_model.rs"] mod rooms_model;`.
#![allow(dead_code)]

use wschat::server::{
    Request, Snapshot, StoredMember, StoredMessage, StoredName, StoredRead, StoredRoom, Write,
};

/// The snapshot a store holding `saved` gives at `now_ms`, keeping
/// `history_size` lobby messages and `room_history` of each room.
pub fn snapshot_of(
    epoch: &str,
    saved: &[(Request, Option<u64>)],
    history_size: usize,
    room_history: usize,
    now_ms: u64,
) -> Snapshot {
    let mut s = Snapshot {
        epoch: epoch.into(),
        alive_at: Some(now_ms),
        ..Snapshot::default()
    };
    for (request, seq) in saved {
        match request {
            Request::Write(_, write) => apply(&mut s, write),
            Request::Append(_, append) => {
                let seq = seq.expect("an append saved has its seq");
                let message = StoredMessage {
                    seq,
                    id: append.id.to_string(),
                    timestamp: append.timestamp,
                    username: append.username.to_string(),
                    text: append.text.to_string(),
                    notice: append.notice,
                };
                match &append.room {
                    None => {
                        s.last_seq = seq;
                        s.messages.push(message);
                        let excess = s.messages.len().saturating_sub(history_size);
                        s.messages.drain(..excess);
                    }
                    Some(key) => {
                        let room = room(&mut s, key);
                        room.last_seq = seq;
                        room.messages.push(message);
                        let excess = room.messages.len().saturating_sub(room_history);
                        room.messages.drain(..excess);
                    }
                }
            }
            other => panic!("not a single server's request: {other:?}"),
        }
    }
    s
}

fn room<'a>(s: &'a mut Snapshot, key: &str) -> &'a mut StoredRoom {
    let at = s
        .rooms
        .iter()
        .position(|r| r.key == key)
        .unwrap_or_else(|| panic!("a write for room {key:?} before its Room"));
    &mut s.rooms[at]
}

fn apply(s: &mut Snapshot, write: &Write) {
    match write {
        Write::Claim {
            key,
            display,
            secret,
        } => {
            s.names.retain(|n| n.key != **key);
            s.names.push(StoredName {
                key: key.to_string(),
                display: display.to_string(),
                secret: *secret,
                expires_at: None,
            });
        }
        Write::InUse { key } => {
            for n in s.names.iter_mut().filter(|n| n.key == **key) {
                n.expires_at = None;
            }
        }
        Write::Idle { key, expires_at } => {
            for n in s.names.iter_mut().filter(|n| n.key == **key) {
                n.expires_at = Some(*expires_at);
            }
        }
        Write::Release { key } | Write::Logout { key, .. } => {
            let key: &str = key;
            s.names.retain(|n| n.key != key);
            s.left_lobby.retain(|n| n != key);
            s.reads.retain(|r| r.name != key);
            s.rooms.retain(|r| {
                !(r.key.starts_with('@') && r.key[1..].split('\n').any(|party| party == key))
            });
            for room in &mut s.rooms {
                room.members.retain(|m| m.name != key);
                room.invites.retain(|n| n != key);
                if room.owner.as_deref() == Some(key) {
                    room.owner = None;
                }
            }
        }
        Write::Alive { at } => s.alive_at = Some(*at),
        Write::Room {
            room: key,
            display,
            owner,
            invite_only,
            topic,
            epoch,
        } => {
            let stored = match s.rooms.iter_mut().find(|r| r.key == **key) {
                Some(stored) => stored,
                None => {
                    s.rooms.push(StoredRoom {
                        key: key.to_string(),
                        ..StoredRoom::default()
                    });
                    s.rooms.last_mut().unwrap()
                }
            };
            stored.display = display.to_string();
            stored.owner = owner.as_deref().map(str::to_owned);
            stored.invite_only = *invite_only;
            stored.topic = topic.as_deref().map(str::to_owned);
            stored.epoch = epoch.to_string();
        }
        Write::Member {
            room: key,
            name,
            role,
            muted_until,
        } => {
            if **key == *"#lobby" {
                s.left_lobby.retain(|n| n != &**name);
                return;
            }
            let room = room(s, key);
            room.members.retain(|m| m.name != **name);
            room.members.push(StoredMember {
                name: name.to_string(),
                role: *role,
                muted_until: *muted_until,
            });
        }
        Write::Unmember {
            room: key, name, ..
        } => {
            if **key == *"#lobby" {
                s.left_lobby.push(name.to_string());
                return;
            }
            room(s, key).members.retain(|m| m.name != **name);
        }
        Write::Ban {
            room: key,
            name,
            until,
        } => {
            let room = room(s, key);
            room.bans.retain(|(n, _)| n != &**name);
            room.bans.push((name.to_string(), *until));
        }
        Write::Unban { room: key, name } => {
            room(s, key).bans.retain(|(n, _)| n != &**name);
        }
        Write::Invite { room: key, name } => {
            let room = room(s, key);
            room.invites.retain(|n| n != &**name);
            room.invites.push(name.to_string());
        }
        Write::Uninvite { room: key, name } => {
            room(s, key).invites.retain(|n| n != &**name);
        }
        Write::Read {
            name,
            room: key,
            seq,
        } => {
            s.reads.retain(|r| !(r.name == **name && r.room == **key));
            s.reads.push(StoredRead {
                name: name.to_string(),
                room: key.to_string(),
                seq: *seq,
            });
        }
        Write::DropRoom { room: key } => s.rooms.retain(|r| r.key != **key),
    }
}
