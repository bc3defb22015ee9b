//! Every node's messages reach the core in `seq` order, each exactly once.
//!
//! A message's `seq` comes to this node by up to three ways, in any order:
//! the reply to its own append (this node's messages), the subscription
//! (every node's messages, this node's own echoed back), and the history
//! (what the subscription lost: pub/sub is at-most-once). The sequencer
//! holds what comes early and hands the core each `seq` once, in order:
//! this node's own as the outcome of its append (which acknowledges it to
//! its sender), the others' as `Remote::Message`.
//!
//! What is missing is known exactly: Redis publishes in `seq` order on one
//! channel and the subscription delivers in that order, so once `seq` N has
//! been heard every earlier one was heard too, or lost. A missing one below
//! the highest heard is this node's own whose reply has not come yet, or
//! lost: so gaps are fetched from the history only while no append of this
//! node is in flight (the driver has at most one batch in flight, and asks
//! between batches). An echo of this node's own message with no reply to
//! claim it (the reply was lost with the connection, though Redis took the
//! message) goes to the core like another node's message.
//!
//! Joins, leaves and logouts heard on the subscription keep their place
//! among the messages: one heard after message N reaches the core after it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tracing::warn;

use super::requests::{Answer, Append, Failed, Remote, StoredMessage, Ticket, ToCore};

#[derive(Debug)]
pub(crate) struct Sequencer {
    /// The next `seq` to hand the core.
    next: u64,
    /// The highest `seq` heard on the subscription, or known to exist when
    /// it was (re)made: every `seq` up to it was published.
    heard: u64,
    held: BTreeMap<u64, Held>,
    /// Other events (and answers held for one), each after the `seq`
    /// heard before it.
    events: VecDeque<(u64, ToCore)>,
    /// The room numbered (`None`: the lobby): its entries reach the core as
    /// `Remote::RoomEntry`, the lobby's as `Remote::Message`.
    room: Option<Arc<str>>,
}

#[derive(Debug)]
enum Held {
    /// This node's own, its reply come: the ticket to answer.
    Own(Ticket<Append>),
    /// Another node's.
    Other(StoredMessage),
    /// This node's own, heard or fetched before (or without) its reply.
    Echo(StoredMessage),
    /// Not in the history when it was fetched (trimmed, or lost with
    /// Redis's data): skipped.
    Lost,
}

impl Sequencer {
    /// Starts after `last_seq`, the latest message the core has.
    pub(crate) fn new(last_seq: u64) -> Sequencer {
        Sequencer {
            next: last_seq + 1,
            heard: last_seq,
            held: BTreeMap::new(),
            events: VecDeque::new(),
            room: None,
        }
    }

    /// The sequencer of `room`'s entries, after `last_seq`.
    pub(crate) fn for_room(room: Arc<str>, last_seq: u64) -> Sequencer {
        Sequencer {
            room: Some(room),
            ..Sequencer::new(last_seq)
        }
    }

    /// Nothing held, nothing waiting to be handed on.
    pub(crate) fn idle(&self) -> bool {
        self.held.is_empty() && self.events.is_empty()
    }

    /// The latest `seq` handed to the core.
    pub(crate) fn delivered(&self) -> u64 {
        self.next - 1
    }

    /// The reply to this node's append `ticket`: it took `seq`. Answers
    /// straight away (as a failure) if `seq` was somehow handed on already,
    /// so that nothing is broadcast twice.
    pub(crate) fn appended(
        &mut self,
        ticket: Ticket<Append>,
        seq: u64,
        out: &mut VecDeque<ToCore>,
    ) {
        if seq < self.next {
            let error = Failed(format!("message {seq} was delivered before its reply came"));
            return out.push_back(ToCore::Answer(ticket.answer(Err(error))));
        }
        self.held.insert(seq, Held::Own(ticket));
    }

    /// A message heard on the subscription; `own` when this node said it.
    pub(crate) fn published(&mut self, message: StoredMessage, own: bool) {
        self.heard = self.heard.max(message.seq);
        self.hold(message, own);
    }

    /// What the history held from `from` to `to` (inclusive): what is not
    /// there is gone for good, and skipped.
    pub(crate) fn filled(&mut self, from: u64, to: u64, messages: Vec<(StoredMessage, bool)>) {
        for (message, own) in messages {
            if (from..=to).contains(&message.seq) {
                self.hold(message, own);
            }
        }
        let mut lost = 0;
        for seq in from.max(self.next)..=to {
            self.held.entry(seq).or_insert_with(|| {
                lost += 1;
                Held::Lost
            });
        }
        if lost > 0 {
            warn!(
                "{lost} messages between {from} and {to} are no longer in Redis's history \
                 (trimmed, or lost with Redis's data): this node's clients will not see them"
            );
        }
    }

    /// Everything up to `seq` has been published (read when the
    /// subscription was made again): what was not heard is to be fetched.
    pub(crate) fn published_up_to(&mut self, seq: u64) {
        self.heard = self.heard.max(seq);
    }

    /// Another node's join, leave or logout, heard on the subscription.
    pub(crate) fn event(&mut self, remote: Remote) {
        self.events.push_back((self.heard, ToCore::Remote(remote)));
    }

    /// `answer` goes to the core after every entry and event heard so far.
    pub(crate) fn answer_after_heard(&mut self, answer: Answer) {
        self.events.push_back((self.heard, ToCore::Answer(answer)));
    }

    fn hold(&mut self, message: StoredMessage, own: bool) {
        if message.seq < self.next {
            return; // handed on already
        }
        let held = if own {
            Held::Echo(message)
        } else {
            Held::Other(message)
        };
        // A reply already come wins over its echo.
        self.held.entry(held_seq(&held)).or_insert(held);
    }

    /// The `seq`s to fetch from the history, if some were lost: only asked
    /// while no append of this node is in flight (see the module's doc).
    pub(crate) fn gap(&self) -> Option<(u64, u64)> {
        (self.next <= self.heard && !self.held.contains_key(&self.next))
            .then_some((self.next, self.heard))
    }

    /// Hands on, in order, all that can go: stops at a gap, and at an
    /// echo of this node's own while an append is `in_flight` (its reply
    /// may be on the way).
    pub(crate) fn release(&mut self, in_flight: bool, out: &mut VecDeque<ToCore>) {
        loop {
            while let Some((after, _)) = self.events.front()
                && *after < self.next
            {
                if let Some((_, event)) = self.events.pop_front() {
                    out.push_back(event);
                }
            }
            let Some(entry) = self.held.first_entry() else {
                return;
            };
            if *entry.key() != self.next || (in_flight && matches!(entry.get(), Held::Echo(_))) {
                return;
            }
            let seq = *entry.key();
            match entry.remove() {
                Held::Own(ticket) => out.push_back(ToCore::Answer(ticket.answer(Ok(seq)))),
                Held::Other(message) | Held::Echo(message) => {
                    let remote = match &self.room {
                        None => Remote::Message(message),
                        Some(room) => Remote::RoomEntry {
                            room: room.clone(),
                            message,
                        },
                    };
                    out.push_back(ToCore::Remote(remote))
                }
                Held::Lost => {}
            }
            self.next += 1;
        }
    }
}

fn held_seq(held: &Held) -> u64 {
    match held {
        Held::Other(m) | Held::Echo(m) => m.seq,
        // Never asked: only messages are held by `hold`.
        Held::Own(_) | Held::Lost => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::protocol::LeaveReason;
    use crate::server::Answer;

    fn message(seq: u64) -> StoredMessage {
        StoredMessage {
            seq,
            id: format!("m{seq}"),
            timestamp: 1_000 + seq,
            username: "bob".into(),
            text: format!("text {seq}"),
            notice: false,
        }
    }

    fn ticket(n: u64) -> Ticket<Append> {
        Ticket::for_tests(n)
    }

    /// What `release` hands on, as short strings: `own:SEQ`, `msg:SEQ`,
    /// `left:NAME`.
    fn released(s: &mut Sequencer, in_flight: bool) -> Vec<String> {
        let mut out = VecDeque::new();
        s.release(in_flight, &mut out);
        out.iter().map(describe).collect()
    }

    fn describe(reply: &ToCore) -> String {
        match reply {
            ToCore::Answer(Answer::Appended(ticket, Ok(seq))) => {
                format!("own:{seq}:t{}", ticket.get())
            }
            ToCore::Answer(other) => format!("{other:?}"),
            ToCore::Remote(Remote::Message(m)) => format!("msg:{}", m.seq),
            ToCore::Remote(Remote::Left { username, .. }) => format!("left:{username}"),
            ToCore::Remote(other) => format!("{other:?}"),
            ToCore::HeldNamesWanted(query) => format!("held?{query}"),
        }
    }

    #[test]
    fn own_replies_and_other_nodes_messages_interleave_in_seq_order() {
        let mut s = Sequencer::new(10);
        let mut out = VecDeque::new();
        // 12 is ours; 11 and 13 come from other nodes, 13 first.
        s.published(message(13), false);
        s.appended(ticket(1), 12, &mut out);
        assert!(out.is_empty());
        assert_eq!(released(&mut s, false), Vec::<String>::new());
        s.published(message(11), false);
        assert_eq!(released(&mut s, false), ["msg:11", "own:12:t1", "msg:13"]);
        assert_eq!(s.delivered(), 13);
        // Our echo of 12 comes late: dropped.
        s.published(message(12), true);
        assert_eq!(released(&mut s, false), Vec::<String>::new());
        assert_eq!(s.gap(), None);
    }

    #[test]
    fn an_echo_waits_for_its_reply_while_an_append_is_in_flight() {
        let mut s = Sequencer::new(0);
        s.published(message(1), true);
        assert_eq!(released(&mut s, true), Vec::<String>::new());
        let mut out = VecDeque::new();
        s.appended(ticket(7), 1, &mut out);
        // The reply claims it: acknowledged, not broadcast as another's.
        assert_eq!(released(&mut s, false), ["own:1:t7"]);
    }

    #[test]
    fn an_echo_with_no_reply_goes_on_as_a_message_once_nothing_is_in_flight() {
        let mut s = Sequencer::new(0);
        s.published(message(1), true);
        s.published(message(2), false);
        assert_eq!(released(&mut s, true), Vec::<String>::new());
        assert_eq!(released(&mut s, false), ["msg:1", "msg:2"]);
    }

    #[test]
    fn what_the_subscription_lost_is_fetched_and_what_the_history_lost_skipped() {
        let mut s = Sequencer::new(4);
        s.published(message(5), false);
        s.published(message(9), false);
        assert_eq!(released(&mut s, false), ["msg:5"]);
        assert_eq!(s.gap(), Some((6, 9)));
        // The history has 7 and 8 (and 9 again); 6 is gone.
        s.filled(
            6,
            9,
            vec![(message(7), false), (message(8), true), (message(9), false)],
        );
        assert_eq!(released(&mut s, false), ["msg:7", "msg:8", "msg:9"]);
        assert_eq!(s.delivered(), 9);
        assert_eq!(s.gap(), None);
    }

    #[test]
    fn a_gap_above_what_was_heard_is_still_on_its_way() {
        let mut s = Sequencer::new(0);
        let mut out = VecDeque::new();
        // Our reply says 3: 1 and 2 were said elsewhere and are in transit.
        s.appended(ticket(1), 3, &mut out);
        assert_eq!(s.gap(), None);
        assert_eq!(released(&mut s, false), Vec::<String>::new());
        // A new subscription learns that everything up to 3 was published.
        s.published_up_to(3);
        assert_eq!(s.gap(), Some((1, 3)));
        s.filled(
            1,
            3,
            vec![(message(1), false), (message(2), false), (message(3), true)],
        );
        assert_eq!(released(&mut s, false), ["msg:1", "msg:2", "own:3:t1"]);
    }

    #[test]
    fn events_keep_their_place_among_messages() {
        let mut s = Sequencer::new(0);
        let left = |name: &str| Remote::Left {
            username: Arc::from(name),
            reason: LeaveReason::Disconnected,
        };
        s.event(left("early"));
        s.published(message(2), false);
        s.event(left("after-2"));
        // 1 (ours) is in flight: the leave heard after 2 waits for it.
        assert_eq!(released(&mut s, true), ["left:early"]);
        let mut out = VecDeque::new();
        s.appended(ticket(1), 1, &mut out);
        assert_eq!(
            released(&mut s, false),
            ["own:1:t1", "msg:2", "left:after-2"]
        );
    }

    #[test]
    fn a_reply_for_a_seq_already_handed_on_is_refused_not_broadcast_twice() {
        let mut s = Sequencer::new(0);
        s.published(message(1), true);
        assert_eq!(released(&mut s, false), ["msg:1"]);
        let mut out = VecDeque::new();
        s.appended(ticket(2), 1, &mut out);
        assert_eq!(out.len(), 1);
        assert!(
            matches!(out[0], ToCore::Answer(Answer::Appended(_, Err(_)))),
            "{out:?}"
        );
    }
}
