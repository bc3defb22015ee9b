//! The ring of recent messages that v2 clients catch up from.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::protocol::ServerMessage;

/// One message as said, kept for catch-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Said {
    pub(crate) id: Arc<str>,
    pub(crate) username: Arc<str>,
    pub(crate) message: Arc<str>,
    pub(crate) seq: u64,
    pub(crate) timestamp: u64,
    /// The length of its v2 `textBroadcast`, as a `history` carries it.
    pub(crate) encoded_len: usize,
}

impl Said {
    /// The `textBroadcast` of this message, as a connection speaking v2 (or
    /// not) sees it; `reply_to` marks the sender's own copy.
    pub(crate) fn message<'a>(&'a self, reply_to: Option<&'a str>, v2: bool) -> ServerMessage<'a> {
        ServerMessage::TextBroadcast {
            id: (&*self.id).into(),
            reply_to: reply_to.map(Into::into),
            username: (*self.username).into(),
            message: (&*self.message).into(),
            seq: v2.then_some(self.seq),
            timestamp: v2.then_some(self.timestamp),
            room: None,
        }
    }
}

/// Which messages a catch-up gets.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CatchUp<'a> {
    pub(crate) messages: Vec<&'a Said>,
    pub(crate) complete: bool,
}

#[derive(Debug)]
pub(crate) struct History {
    ring: VecDeque<Said>,
    capacity: usize,
    /// `seq` of the latest message ever said (0 before the first).
    last_seq: u64,
}

impl History {
    pub(crate) fn new(capacity: usize) -> Self {
        History {
            ring: VecDeque::new(),
            capacity,
            last_seq: 0,
        }
    }

    /// Starts from what a store held: the latest `seq` ever given, and the
    /// latest messages, oldest first.
    pub(crate) fn restore(&mut self, last_seq: u64, messages: Vec<super::StoredMessage>) {
        self.last_seq = last_seq;
        let keep = messages.len().saturating_sub(self.capacity);
        for stored in messages.into_iter().skip(keep) {
            let mut said = Said {
                id: stored.id.into(),
                username: stored.username.into(),
                message: stored.text.into(),
                seq: stored.seq,
                timestamp: stored.timestamp,
                encoded_len: 0,
            };
            said.encoded_len = said.message(None, true).encoded_len();
            self.last_seq = self.last_seq.max(said.seq);
            self.ring.push_back(said);
        }
    }

    /// The messages held after `seq`, oldest first.
    pub(crate) fn said_after(&self, seq: u64) -> impl Iterator<Item = &Said> {
        let skip = self.ring.partition_point(|said| said.seq <= seq);
        self.ring.range(skip..)
    }

    /// Every message held, oldest first.
    pub(crate) fn ring(&self) -> &VecDeque<Said> {
        &self.ring
    }

    /// The `seq` the next message gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.last_seq + 1
    }

    pub(crate) fn push(&mut self, said: Said) {
        self.last_seq = said.seq;
        if self.capacity == 0 {
            return;
        }
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(said);
    }

    /// Messages after `since`, newest kept first when `max_bytes` of
    /// encoded messages would be exceeded. A `since` the server never reached (it restarted,
    /// or the client is confused) gets everything held, marked incomplete.
    pub(crate) fn after(&self, since: u64, max_bytes: usize) -> CatchUp<'_> {
        if since > self.last_seq {
            return self.newest(self.ring.len(), max_bytes, false);
        }
        let wanted = (self.last_seq - since) as usize;
        let held = wanted.min(self.ring.len());
        self.newest(held, max_bytes, held == wanted)
    }

    /// The latest `count` messages (a newcomer's context).
    pub(crate) fn latest(&self, count: usize, max_bytes: usize) -> CatchUp<'_> {
        let count = count.min(self.ring.len());
        self.newest(count, max_bytes, true)
    }

    fn newest(&self, count: usize, max_bytes: usize, complete: bool) -> CatchUp<'_> {
        let mut bytes = 0;
        let mut messages: Vec<&Said> = self
            .ring
            .iter()
            .rev()
            .take(count)
            .take_while(|said| {
                bytes += said.encoded_len + 1; // and a comma
                bytes <= max_bytes
            })
            .collect();
        let complete = complete && messages.len() == count;
        messages.reverse();
        CatchUp { messages, complete }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(capacity: usize, count: u64) -> History {
        let mut history = History::new(capacity);
        for seq in 1..=count {
            history.push(Said {
                id: format!("i{seq}").into(),
                username: "u".into(),
                message: format!("m{seq}").into(),
                seq,
                timestamp: seq,
                encoded_len: 3,
            });
        }
        history
    }

    fn seqs(catch_up: &CatchUp<'_>) -> Vec<u64> {
        catch_up.messages.iter().map(|s| s.seq).collect()
    }

    #[test]
    fn catch_up_inside_at_the_edge_and_beyond_the_ring() {
        let history = ring(3, 5); // holds 3, 4, 5
        let inside = history.after(3, usize::MAX);
        assert_eq!((seqs(&inside), inside.complete), (vec![4, 5], true));
        let edge = history.after(2, usize::MAX);
        assert_eq!((seqs(&edge), edge.complete), (vec![3, 4, 5], true));
        let beyond = history.after(1, usize::MAX);
        assert_eq!((seqs(&beyond), beyond.complete), (vec![3, 4, 5], false));
        let current = history.after(5, usize::MAX);
        assert_eq!((seqs(&current), current.complete), (vec![], true));
        let future = history.after(9, usize::MAX);
        assert_eq!((seqs(&future), future.complete), (vec![3, 4, 5], false));
    }

    #[test]
    fn the_byte_budget_keeps_the_newest_and_marks_the_rest_missing() {
        let history = ring(10, 5); // each message costs 3 bytes, and a comma
        let budget = history.after(0, 9);
        assert_eq!((seqs(&budget), budget.complete), (vec![4, 5], false));
        let latest = history.latest(2, usize::MAX);
        assert_eq!((seqs(&latest), latest.complete), (vec![4, 5], true));
    }

    #[test]
    fn a_zero_capacity_ring_still_counts() {
        let history = ring(0, 4);
        assert_eq!(history.next_seq(), 5);
        let catch_up = history.after(2, usize::MAX);
        assert_eq!((seqs(&catch_up), catch_up.complete), (vec![], false));
    }
}
