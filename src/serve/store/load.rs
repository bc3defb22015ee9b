//! Reading everything the core starts from, in one read transaction.
//!
//! Start-up reads every membership, so each table is read in one pass in
//! key order: a room's members, bans and invites come together (their keys
//! start with the room's), and are handed to the room found by walking the
//! list of rooms (in the same order) forward, not by a lookup per row.

use std::path::Path;

use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition, TableError,
};

use super::apply::Keep;
use super::tables::{
    BANS, INVITES, LEFT_LOBBY, LOBBY_NOTICES, MEMBERS, MESSAGES, META, META_TEXT, NAMES, READS,
    ROOM_MESSAGES, ROOM_SEQS, ROOMS, role_of,
};
use super::{FORMAT, StoreError, damaged};
use crate::server::{
    SecretHash, Snapshot, StoredMember, StoredMessage, StoredName, StoredRead, StoredRoom,
};

/// The oldest format read (and brought up to [`FORMAT`] on open).
pub(super) const OLDEST_FORMAT: u64 = 1;

/// Everything the core starts from.
pub(super) fn read(db: &Database, path: &Path, keep: Keep) -> Result<Snapshot, StoreError> {
    let unreadable = |detail: String| match detail.strip_prefix("DB corrupted: ") {
        Some(what) => damaged(path, what),
        None => StoreError::Unreadable {
            path: path.to_owned(),
            detail,
        },
    };
    let tx = db.begin_read().map_err(|e| unreadable(e.to_string()))?;
    let meta = tx
        .open_table(META)
        .map_err(|_| unreadable("not a wschat store: it has no meta table".into()))?;
    let number = |name: &str| -> Result<Option<u64>, StoreError> {
        let value = meta.get(name).map_err(|e| unreadable(e.to_string()))?;
        Ok(value.map(|v| v.value()))
    };
    match number("format")? {
        Some(OLDEST_FORMAT..=FORMAT) => {}
        Some(found) if found > FORMAT => {
            return Err(StoreError::Newer {
                path: path.to_owned(),
                found,
            });
        }
        found => return Err(unreadable(format!("unknown format {found:?}"))),
    }
    let last_seq = number("last_seq")?.unwrap_or(0);
    let alive_at = number("alive_at")?;
    let epoch = tx
        .open_table(META_TEXT)
        .and_then(|t| Ok(t.get("epoch")?.map(|e| e.value().to_owned())))
        .map_err(|e| unreadable(e.to_string()))?
        .ok_or_else(|| unreadable("it has no epoch".into()))?;
    let mut snapshot = Snapshot {
        epoch,
        last_seq,
        alive_at,
        ..Snapshot::default()
    };
    read_rows(&tx, keep, &mut snapshot).map_err(|e| match e {
        Bad::Redb(e) => unreadable(e.to_string()),
        Bad::Row(what) => damaged(path, &what),
    })?;
    Ok(snapshot)
}

/// Why the rows could not be read.
enum Bad {
    Redb(redb::Error),
    /// A row no wschat writes.
    Row(String),
}

impl<E: Into<redb::Error>> From<E> for Bad {
    fn from(e: E) -> Bad {
        Bad::Redb(e.into())
    }
}

fn read_rows(tx: &ReadTransaction, keep: Keep, snapshot: &mut Snapshot) -> Result<(), Bad> {
    let names = tx.open_table(NAMES)?;
    snapshot.names.reserve(names.len()? as usize);
    for entry in names.iter()? {
        let (key, value) = entry?;
        let (display, secret, expires_at) = value.value();
        let Ok(secret) = <[u8; 32]>::try_from(secret) else {
            continue; // not a SHA-256: not a secret anyone can give
        };
        snapshot.names.push(StoredName {
            key: key.value().to_owned(),
            display: display.to_owned(),
            secret: SecretHash(secret),
            expires_at: (expires_at != 0).then_some(expires_at),
        });
    }

    let first = snapshot.last_seq.saturating_sub(keep.lobby as u64) + 1;
    let notices: Vec<u64> = match optional(tx, LOBBY_NOTICES)? {
        Some(table) => table
            .range(first..)?
            .map(|entry| Ok(entry?.0.value()))
            .collect::<Result<_, Bad>>()?,
        None => Vec::new(),
    };
    for entry in tx.open_table(MESSAGES)?.range(first..)? {
        let (seq, value) = entry?;
        let (id, timestamp, username, text) = value.value();
        let seq = seq.value();
        snapshot.messages.push(StoredMessage {
            seq,
            id: id.to_owned(),
            timestamp,
            username: username.to_owned(),
            text: text.to_owned(),
            notice: notices.binary_search(&seq).is_ok(),
        });
    }

    if let Some(left) = optional(tx, LEFT_LOBBY)? {
        snapshot.left_lobby.reserve(left.len()? as usize);
        for entry in left.iter()? {
            snapshot.left_lobby.push(entry?.0.value().to_owned());
        }
    }
    if let Some(reads) = optional(tx, READS)? {
        snapshot.reads.reserve(reads.len()? as usize);
        for entry in reads.iter()? {
            let (pair, seq) = entry?;
            let (room, name) = pair.value();
            snapshot.reads.push(StoredRead {
                name: name.to_owned(),
                room: room.to_owned(),
                seq: seq.value(),
            });
        }
    }
    snapshot.rooms = read_rooms(tx, keep)?;
    Ok(())
}

/// Every room, with what is kept of it, in key order.
fn read_rooms(tx: &ReadTransaction, keep: Keep) -> Result<Vec<StoredRoom>, Bad> {
    let Some(table) = optional(tx, ROOMS)? else {
        return Ok(Vec::new()); // format 1
    };
    let seqs = tx.open_table(ROOM_SEQS)?;
    let messages = tx.open_table(ROOM_MESSAGES)?;
    let mut rooms = Vec::with_capacity(table.len()? as usize);
    for entry in table.iter()? {
        let (key, row) = entry?;
        let key = key.value();
        let (display, owner, invite_only, topic, epoch) = row.value();
        let last_seq = seqs.get(key)?.map_or(0, |seq| seq.value());
        let first = last_seq.saturating_sub(keep.room as u64) + 1;
        let mut kept = Vec::new();
        for entry in messages.range((key, first)..=(key, u64::MAX))? {
            let (at, value) = entry?;
            let (id, timestamp, username, text, notice) = value.value();
            kept.push(StoredMessage {
                seq: at.value().1,
                id: id.to_owned(),
                timestamp,
                username: username.to_owned(),
                text: text.to_owned(),
                notice,
            });
        }
        rooms.push(StoredRoom {
            key: key.to_owned(),
            display: display.to_owned(),
            owner: owner.map(str::to_owned),
            invite_only,
            topic: topic.map(str::to_owned),
            epoch: epoch.to_owned(),
            last_seq,
            messages: kept,
            ..StoredRoom::default()
        });
    }

    let mut walk = Walk::default();
    for entry in tx.open_table(MEMBERS)?.iter()? {
        let (pair, value) = entry?;
        let (room, name) = pair.value();
        let (role, muted_until) = value.value();
        let role = role_of(role).ok_or_else(|| Bad::Row(format!("a member's role {role}")))?;
        if let Some(room) = walk.to(&mut rooms, room) {
            room.members.push(StoredMember {
                name: name.to_owned(),
                role,
                muted_until,
            });
        }
    }
    let mut walk = Walk::default();
    for entry in tx.open_table(BANS)?.iter()? {
        let (pair, until) = entry?;
        let (room, name) = pair.value();
        if let Some(room) = walk.to(&mut rooms, room) {
            room.bans.push((name.to_owned(), until.value()));
        }
    }
    let mut walk = Walk::default();
    for entry in tx.open_table(INVITES)?.iter()? {
        let (pair, _) = entry?;
        let (room, name) = pair.value();
        if let Some(room) = walk.to(&mut rooms, room) {
            room.invites.push(name.to_owned());
        }
    }
    Ok(rooms)
}

/// A table of format 2, missing from a store of format 1 until it is
/// opened for writing.
fn optional<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<Option<ReadOnlyTable<K, V>>, Bad> {
    match tx.open_table(table) {
        Ok(table) => Ok(Some(table)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A walk through rooms sorted by key, to the room of each row of a table
/// read in the same order.
#[derive(Default)]
struct Walk {
    at: usize,
}

impl Walk {
    /// The room `key`, if it exists (a row of a room that does not has no
    /// place in the snapshot).
    fn to<'r>(&mut self, rooms: &'r mut [StoredRoom], key: &str) -> Option<&'r mut StoredRoom> {
        while rooms
            .get(self.at)
            .is_some_and(|room| room.key.as_str() < key)
        {
            self.at += 1;
        }
        rooms.get_mut(self.at).filter(|room| room.key == key)
    }
}
