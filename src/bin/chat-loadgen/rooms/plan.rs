//! Who is in which room, when each member speaks, and the accounts at the
//! end: the rooms mode's logic, free of I/O so that tests can drive it
//! with made-up deliveries.
//!
//! Client `n` is member `n % members` of room `n / members`. Each member
//! speaks every `interval`; the members' first messages are spread evenly
//! over the first interval, room by room within a slot, so that both the
//! whole load and each room's are even: the members of one room speak
//! `interval / members` apart.

use std::time::Duration;

use crate::ledger::{Ledger, Tally};

/// Rooms of a fixed size, filled by consecutive clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub rooms: usize,
    pub members: usize,
}

impl Layout {
    pub fn clients(&self) -> usize {
        self.rooms * self.members
    }

    /// The room client `n` is in.
    pub fn room_of(&self, client: usize) -> usize {
        client / self.members
    }

    /// Client `n`'s place among its room's members.
    pub fn slot_of(&self, client: usize) -> usize {
        client % self.members
    }

    /// The clients of `room`.
    pub fn members_of(&self, room: usize) -> std::ops::Range<usize> {
        room * self.members..(room + 1) * self.members
    }

    /// The slot in `room` of the client numbered `sender`, if it is one
    /// of the room's (a stamp from elsewhere is a delivery to the wrong room).
    pub fn slot_in(&self, room: usize, sender: usize) -> Option<usize> {
        self.members_of(room)
            .contains(&sender)
            .then(|| self.slot_of(sender))
    }
}

/// The name of room `room` of run `run`: `#lg-<run>-r<room>`, a valid
/// user name after the `#` (at most 23 characters with the longest tag).
pub fn room_name(run: &str, room: usize) -> String {
    format!("#{}", crate::common::username(run, format_args!("r{room}")))
}

/// When each member speaks.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub layout: Layout,
    pub interval: Duration,
    pub duration: Duration,
}

impl Schedule {
    /// When message `k` of client `n` is due, after the start; `None`
    /// once that is past the duration.
    pub fn due(&self, client: usize, k: u64) -> Option<Duration> {
        let Layout { rooms, members } = self.layout;
        let position = self.layout.slot_of(client) * rooms + self.layout.room_of(client);
        // In whole nanoseconds: `interval × (k + position / clients)`.
        let clients = (rooms * members) as u128;
        let slots = u128::from(k) * clients + position as u128;
        let nanos = self.interval.as_nanos() * slots / clients;
        let due = Duration::from_nanos(u64::try_from(nanos).ok()?);
        (due < self.duration).then_some(due)
    }
}

/// What one member heard in its room's numbering: each delivery's `seq`
/// should be the previous one's plus one, since every message said in the
/// room is one of ours and every member hears them all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqTrack {
    last: Option<u64>,
    /// Deliveries whose `seq` did not follow the previous one's.
    pub breaks: u64,
}

impl SeqTrack {
    pub fn note(&mut self, seq: u64) {
        if self.last.is_some_and(|last| seq != last + 1) {
            self.breaks += 1;
        }
        self.last = Some(seq);
    }
}

/// The whole run's delivery figures, room by room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomsTally {
    /// Every room's [`Tally`] added up; `expected` is, per room, its
    /// messages times its members when sending began.
    pub total: Tally,
    /// Rooms where some member missed some message.
    pub rooms_with_loss: usize,
}

impl RoomsTally {
    /// `sent[n]` is what client `n` said (numbered `0..sent[n]`);
    /// `heard(n)` what client `n` heard of its room, `None` for a client
    /// that was not a member when sending began.
    pub fn settle<'a>(
        layout: Layout,
        sent: &[u64],
        heard: impl Fn(usize) -> Option<&'a Ledger>,
    ) -> RoomsTally {
        let mut tally = RoomsTally::default();
        for room in 0..layout.rooms {
            let members = layout.members_of(room);
            let said = &sent[members.clone()];
            let room_tally = Tally::settle(said, members.filter_map(&heard));
            tally.rooms_with_loss += usize::from(room_tally.lost > 0);
            tally.total += room_tally;
        }
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: Layout = Layout {
        rooms: 3,
        members: 4,
    };

    #[test]
    fn consecutive_clients_fill_one_room_after_another() {
        assert_eq!(LAYOUT.clients(), 12);
        assert_eq!((LAYOUT.room_of(0), LAYOUT.slot_of(0)), (0, 0));
        assert_eq!((LAYOUT.room_of(5), LAYOUT.slot_of(5)), (1, 1));
        assert_eq!((LAYOUT.room_of(11), LAYOUT.slot_of(11)), (2, 3));
        assert_eq!(LAYOUT.members_of(1), 4..8);
        assert_eq!(LAYOUT.slot_in(1, 6), Some(2));
        assert_eq!(LAYOUT.slot_in(1, 3), None);
        assert_eq!(LAYOUT.slot_in(1, 8), None);
    }

    #[test]
    fn room_names_are_valid_names_after_the_hash() {
        let max = wschat::Config::default().max_username_chars;
        let name = room_name("abcdefghijkl", 999_999);
        assert_eq!(name, "#lg-abcdefghijkl-r999999");
        let bare = name.strip_prefix('#').unwrap();
        assert!(wschat::username::Username::parse(bare, max).is_ok());
    }

    #[test]
    fn the_load_is_even_over_the_interval_and_within_each_room() {
        let schedule = Schedule {
            layout: LAYOUT,
            interval: Duration::from_millis(1200),
            duration: Duration::from_millis(2400),
        };
        // Every client's first message in the first interval, 100 ms apart.
        let mut firsts: Vec<Duration> = (0..12).map(|n| schedule.due(n, 0).unwrap()).collect();
        firsts.sort();
        let expected: Vec<Duration> = (0..12).map(|i| Duration::from_millis(100 * i)).collect();
        assert_eq!(firsts, expected);
        // One room's members speak an interval / members apart.
        let room: Vec<Duration> = LAYOUT
            .members_of(1)
            .map(|n| schedule.due(n, 0).unwrap())
            .collect();
        let ms = |d: &Duration| d.as_millis();
        assert_eq!(
            room.iter().map(ms).collect::<Vec<_>>(),
            [100, 400, 700, 1000]
        );
        // Then every interval, until the duration.
        assert_eq!(schedule.due(5, 1), Some(Duration::from_millis(1600)));
        assert_eq!(schedule.due(5, 2), None);
        let messages = |n| (0..).take_while(|&k| schedule.due(n, k).is_some()).count();
        assert!((0..12).all(|n| messages(n) == 2));
    }

    #[test]
    fn a_member_missing_messages_counts_against_its_room_only() {
        let layout = Layout {
            rooms: 2,
            members: 2,
        };
        let heard = |deliveries: &[(usize, u64)]| {
            let mut ledger = Ledger::new(layout.members);
            for &(slot, seq) in deliveries {
                ledger.record(slot, seq);
            }
            ledger
        };
        // Room 0: clients 0 and 1 said 2 and 1; both heard all three.
        // Room 1: clients 2 and 3 said 1 each; client 3 missed client 2's
        // and heard client 3's own twice.
        let ledgers = [
            heard(&[(0, 0), (1, 0), (0, 1)]),
            heard(&[(1, 0), (0, 0), (0, 1)]),
            heard(&[(0, 0), (1, 0)]),
            heard(&[(1, 0), (1, 0)]),
        ];
        let tally = RoomsTally::settle(layout, &[2, 1, 1, 1], |n| ledgers.get(n));
        assert_eq!(tally.rooms_with_loss, 1);
        assert_eq!(
            tally.total,
            Tally {
                sent: 5,
                expected: 3 * 2 + 2 * 2,
                delivered: 3 * 2 + 2 + 1,
                lost: 1,
                out_of_order: 1,
                unexpected: 0,
            }
        );
        // A client that was no member expects nothing.
        let tally = RoomsTally::settle(layout, &[2, 1, 0, 1], |n| match n {
            2 => None,
            n => ledgers.get(n),
        });
        assert_eq!((tally.total.expected, tally.total.lost), (3 * 2 + 1, 0));
        assert_eq!(tally.rooms_with_loss, 0);
    }

    #[test]
    fn a_break_in_a_rooms_numbering_is_counted() {
        let mut track = SeqTrack::default();
        for seq in [4, 5, 6] {
            track.note(seq);
        }
        assert_eq!(track.breaks, 0);
        track.note(8);
        track.note(8);
        track.note(9);
        assert_eq!(track.breaks, 2);
    }
}
