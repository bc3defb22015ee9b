//! Applying the core's requests to the tables of one write transaction.
//!
//! Every write is an upsert or a removal that may find nothing: applied
//! again after a crash, or out of the order a reader expects, it leaves the
//! same rows. [`BY_NAME`] is kept with the rows it indexes, so that a
//! released name takes its rows with it without a scan of any table.

use redb::{ReadableTable, Table, Value, WriteTransaction};

use super::tables::{
    BANS, BY_NAME, INVITES, LEFT_LOBBY, LOBBY, LOBBY_NOTICES, MEMBERS, MESSAGES, META, NAMES,
    READS, ROOM_MESSAGES, ROOM_SEQS, ROOMS, RoomMessage, RoomRow, Ties, after, parties, role_code,
};
use crate::server::{Append, Failed, Write};

type PairTable<'tx, V> = Table<'tx, (&'static str, &'static str), V>;

/// How many messages are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Keep {
    /// The lobby's latest messages (`history_size`).
    pub(super) lobby: usize,
    /// Each room's and direct conversation's (`room_history`).
    pub(super) room: usize,
}

/// Every table, open in one write transaction.
pub(super) struct Tables<'tx> {
    pub(super) meta: Table<'tx, &'static str, u64>,
    names: Table<'tx, &'static str, (&'static str, &'static [u8], u64)>,
    messages: Table<'tx, u64, (&'static str, u64, &'static str, &'static str)>,
    lobby_notices: Table<'tx, u64, ()>,
    rooms: Table<'tx, &'static str, RoomRow>,
    room_seqs: Table<'tx, &'static str, u64>,
    room_messages: Table<'tx, (&'static str, u64), RoomMessage>,
    members: PairTable<'tx, (u8, Option<u64>)>,
    bans: PairTable<'tx, Option<u64>>,
    invites: PairTable<'tx, ()>,
    reads: PairTable<'tx, u64>,
    left_lobby: Table<'tx, &'static str, ()>,
    by_name: PairTable<'tx, u8>,
}

impl<'tx> Tables<'tx> {
    /// Opens every table, creating those missing.
    pub(super) fn open(tx: &'tx WriteTransaction) -> Result<Tables<'tx>, redb::Error> {
        Ok(Tables {
            meta: tx.open_table(META)?,
            names: tx.open_table(NAMES)?,
            messages: tx.open_table(MESSAGES)?,
            lobby_notices: tx.open_table(LOBBY_NOTICES)?,
            rooms: tx.open_table(ROOMS)?,
            room_seqs: tx.open_table(ROOM_SEQS)?,
            room_messages: tx.open_table(ROOM_MESSAGES)?,
            members: tx.open_table(MEMBERS)?,
            bans: tx.open_table(BANS)?,
            invites: tx.open_table(INVITES)?,
            reads: tx.open_table(READS)?,
            left_lobby: tx.open_table(LEFT_LOBBY)?,
            by_name: tx.open_table(BY_NAME)?,
        })
    }

    /// Records `write`. Only a cluster's shared store acts on `Logout`.
    pub(super) fn write(&mut self, write: &Write) -> Result<(), redb::Error> {
        match write {
            Write::Claim {
                key,
                display,
                secret,
            } => {
                self.names.insert(&**key, (&**display, &secret.0[..], 0))?;
            }
            Write::InUse { key } => self.set_expiry(key, 0)?,
            // 0 means "in use": an instant that old is past anyway.
            Write::Idle { key, expires_at } => self.set_expiry(key, (*expires_at).max(1))?,
            Write::Release { key } => self.release(key)?,
            Write::Alive { at } => {
                self.meta.insert("alive_at", *at)?;
            }
            Write::Logout { .. } => {}
            Write::Room { room, topic, .. } if &**room == LOBBY => {
                self.lobby_row(topic.as_deref())?;
            }
            Write::Room {
                room,
                display,
                owner,
                invite_only,
                topic,
                epoch,
            } => {
                let row = (
                    &**display,
                    owner.as_deref(),
                    *invite_only,
                    topic.as_deref(),
                    &**epoch,
                );
                self.room(room, row)?;
            }
            Write::Member {
                room,
                name,
                muted_until: None,
                ..
            } if &**room == LOBBY => {
                self.left_lobby.remove(&**name)?;
            }
            // A lobby mute (see `Write::Member`): `Some(0)` lifts it.
            Write::Member {
                room,
                name,
                muted_until: Some(0),
                ..
            } if &**room == LOBBY => {
                self.members.remove((LOBBY, &**name))?;
                self.untie(name, LOBBY, Ties::MEMBER)?;
            }
            Write::Unmember { room, name, .. } if &**room == LOBBY => {
                self.left_lobby.insert(&**name, ())?;
            }
            Write::Member {
                room,
                name,
                role,
                muted_until,
            } => {
                if &**room == LOBBY {
                    self.ensure_lobby_row()?; // a lobby mute
                }
                let pair = (&**room, &**name);
                self.members
                    .insert(pair, (role_code(*role), *muted_until))?;
                self.tie(name, room, Ties::MEMBER)?;
            }
            Write::Unmember { room, name, .. } => {
                self.members.remove((&**room, &**name))?;
                self.untie(name, room, Ties::MEMBER)?;
            }
            Write::Ban { room, name, until } => {
                if &**room == LOBBY {
                    self.ensure_lobby_row()?;
                }
                self.bans.insert((&**room, &**name), *until)?;
            }
            Write::Unban { room, name } => {
                self.bans.remove((&**room, &**name))?;
            }
            Write::Invite { room, name } => {
                self.invites.insert((&**room, &**name), ())?;
                self.tie(name, room, Ties::INVITED)?;
            }
            Write::Uninvite { room, name } => {
                self.invites.remove((&**room, &**name))?;
                self.untie(name, room, Ties::INVITED)?;
            }
            Write::Read { name, room, seq } => {
                self.reads.insert((&**room, &**name), *seq)?;
                self.tie(name, room, Ties::READ)?;
            }
            Write::DropRoom { room } => self.drop_room(room)?,
        }
        Ok(())
    }

    /// Numbers and keeps `append`: the lobby's from `lobby_seq` (advanced),
    /// a room's from its own counter. A room never created (or dropped)
    /// keeps nothing: that append alone fails.
    pub(super) fn append(
        &mut self,
        append: &Append,
        lobby_seq: &mut u64,
        keep: Keep,
    ) -> Result<Result<u64, Failed>, redb::Error> {
        let Some(room) = append.room.as_deref() else {
            *lobby_seq += 1;
            let seq = *lobby_seq;
            let message = (
                &*append.id,
                append.timestamp,
                &*append.username,
                &*append.text,
            );
            self.messages.insert(seq, message)?;
            if append.notice {
                self.lobby_notices.insert(seq, ())?;
            }
            if let Some(old) = seq.checked_sub(keep.lobby as u64) {
                self.messages.remove(old)?;
                self.lobby_notices.remove(old)?;
            }
            return Ok(Ok(seq));
        };
        let Some(last) = self.room_seqs.get(room)?.map(|seq| seq.value()) else {
            return Ok(Err(Failed(format!(
                "no room {room:?} to keep a message in: it was never created, or it is gone"
            ))));
        };
        let seq = last + 1;
        self.room_seqs.insert(room, seq)?;
        let message = (
            &*append.id,
            append.timestamp,
            &*append.username,
            &*append.text,
            append.notice,
        );
        self.room_messages.insert((room, seq), message)?;
        // A range, not the one message that fell out: `room_history` may
        // have been lowered since the last start.
        if let Some(old) = seq.checked_sub(keep.room as u64) {
            self.room_messages
                .retain_in((room, 0)..=(room, old), |_, _| false)?;
        }
        Ok(Ok(seq))
    }

    /// Sets the expiry of `key`, if it is still reserved (its claim may
    /// have failed to be saved).
    fn set_expiry(&mut self, key: &str, expires_at: u64) -> Result<(), redb::Error> {
        let entry = self.names.get(key)?.map(|guard| {
            let (display, secret, _) = guard.value();
            (display.to_owned(), secret.to_vec())
        });
        if let Some((display, secret)) = entry {
            self.names
                .insert(key, (display.as_str(), secret.as_slice(), expires_at))?;
        }
        Ok(())
    }

    /// A room's settings: created with no message yet, or changed (its
    /// messages and members stay).
    fn room(
        &mut self,
        room: &str,
        row: <RoomRow as Value>::SelfType<'_>,
    ) -> Result<(), redb::Error> {
        let owner = row.1;
        let before = self.rooms.insert(room, row)?.map(|old| {
            let (_, owner, ..) = old.value();
            owner.map(str::to_owned)
        });
        match before {
            None => {
                if self.room_seqs.get(room)?.is_none() {
                    self.room_seqs.insert(room, 0)?;
                }
                if let Some((a, b)) = parties(room) {
                    self.tie(a, room, Ties::PARTY)?;
                    self.tie(b, room, Ties::PARTY)?;
                }
            }
            Some(Some(old)) if Some(old.as_str()) != owner => {
                self.untie(&old, room, Ties::OWNER)?;
            }
            Some(_) => {}
        }
        if let Some(owner) = owner {
            self.tie(owner, room, Ties::OWNER)?;
        }
        Ok(())
    }

    /// The lobby's row of [`ROOMS`]: its topic only (never a room's: no
    /// `seq` counter, no ties), so that its bans and mutes are loaded with
    /// it as the room `#lobby`.
    fn lobby_row(&mut self, topic: Option<&str>) -> Result<(), redb::Error> {
        self.rooms.insert(LOBBY, (LOBBY, None, false, topic, ""))?;
        Ok(())
    }

    /// The lobby's row, if it has none yet (a ban or mute needs it to be
    /// loaded; the core writes it first anyway).
    fn ensure_lobby_row(&mut self) -> Result<(), redb::Error> {
        if self.rooms.get(LOBBY)?.is_none() {
            self.lobby_row(None)?;
        }
        Ok(())
    }

    /// A room and every row of it are gone; bans too.
    fn drop_room(&mut self, room: &str) -> Result<(), redb::Error> {
        let owner = self.rooms.remove(room)?.and_then(|old| {
            let (_, owner, ..) = old.value();
            owner.map(str::to_owned)
        });
        if let Some(owner) = owner {
            self.untie(&owner, room, Ties::OWNER)?;
        }
        if let Some((a, b)) = parties(room) {
            self.untie(a, room, Ties::PARTY)?;
            self.untie(b, room, Ties::PARTY)?;
        }
        self.room_seqs.remove(room)?;
        self.room_messages
            .retain_in((room, 0)..=(room, u64::MAX), |_, _| false)?;
        let end = after(room);
        for name in take_room(&mut self.members, room, &end)? {
            self.untie(&name, room, Ties::MEMBER)?;
        }
        for name in take_room(&mut self.invites, room, &end)? {
            self.untie(&name, room, Ties::INVITED)?;
        }
        for name in take_room(&mut self.reads, room, &end)? {
            self.untie(&name, room, Ties::READ)?;
        }
        take_room(&mut self.bans, room, &end)?;
        Ok(())
    }

    /// A name is free again: it takes its memberships, its lobby "left"
    /// mark, invites, read markers and direct conversations with it; its
    /// bans stay, and a room it owned has no owner any more.
    fn release(&mut self, key: &str) -> Result<(), redb::Error> {
        self.names.remove(key)?;
        self.left_lobby.remove(key)?;
        let end = after(key);
        let ties = self
            .by_name
            .extract_if((key, "")..(end.as_str(), ""), |_, _| true)?
            .map(|entry| {
                let (pair, ties) = entry?;
                Ok((pair.value().1.to_owned(), Ties(ties.value())))
            })
            .collect::<Result<Vec<(String, Ties)>, redb::Error>>()?;
        for (room, ties) in ties {
            let pair = (room.as_str(), key);
            if ties.has(Ties::PARTY) {
                self.drop_room(&room)?;
                continue;
            }
            if ties.has(Ties::MEMBER) {
                self.members.remove(pair)?;
            }
            if ties.has(Ties::INVITED) {
                self.invites.remove(pair)?;
            }
            if ties.has(Ties::READ) {
                self.reads.remove(pair)?;
            }
            if ties.has(Ties::OWNER) {
                self.disown(&room)?;
            }
        }
        Ok(())
    }

    /// `room` has no owner any more.
    fn disown(&mut self, room: &str) -> Result<(), redb::Error> {
        let row = self.rooms.get(room)?.map(|row| {
            let (display, _, invite_only, topic, epoch) = row.value();
            let topic = topic.map(str::to_owned);
            (display.to_owned(), invite_only, topic, epoch.to_owned())
        });
        if let Some((display, invite_only, topic, epoch)) = row {
            let row = (
                display.as_str(),
                None,
                invite_only,
                topic.as_deref(),
                epoch.as_str(),
            );
            self.rooms.insert(room, row)?;
        }
        Ok(())
    }

    /// Notes in [`BY_NAME`] that `tie` binds `name` to `room`.
    fn tie(&mut self, name: &str, room: &str, tie: Ties) -> Result<(), redb::Error> {
        let old = self
            .by_name
            .get((name, room))?
            .map_or(0, |ties| ties.value());
        if old & tie.0 != tie.0 {
            self.by_name.insert((name, room), old | tie.0)?;
        }
        Ok(())
    }

    /// Notes in [`BY_NAME`] that `tie` no longer binds `name` to `room`.
    fn untie(&mut self, name: &str, room: &str, tie: Ties) -> Result<(), redb::Error> {
        let Some(old) = self.by_name.get((name, room))?.map(|ties| ties.value()) else {
            return Ok(());
        };
        match old & !tie.0 {
            0 => {
                self.by_name.remove((name, room))?;
            }
            left if left != old => {
                self.by_name.insert((name, room), left)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Removes the rows of `room` (`end`: [`after`] it) from a table keyed by
/// (room, name); the names they were of.
fn take_room<V: Value + 'static>(
    table: &mut PairTable<'_, V>,
    room: &str,
    end: &str,
) -> Result<Vec<String>, redb::Error> {
    table
        .extract_if((room, "")..(end, ""), |_, _| true)?
        .map(|entry| {
            let (pair, _) = entry?;
            Ok(pair.value().1.to_owned())
        })
        .collect()
}
