//! Delivery accounting for the fanout mode, kept free of I/O so that it can
//! be tested with made-up sequences.
//!
//! Sender `s` numbers its messages 0, 1, 2, … The server keeps each
//! connection's frames in order, so a receiver expects every sender's
//! numbers to arrive consecutively. A jump forward is a gap (messages not
//! delivered); a number at or below one already seen is out of order (a
//! duplicate or a late arrival, which a correct server never produces).
//!
//! At the end, every receiver that was logged in before the first send
//! should hold every message each sender sent, itself included: v1 echoes a
//! `textBroadcast` to its sender too. What is missing is lost, whether the
//! server dropped it, closed the receiver, or had not delivered it when the
//! drain period after the last send ran out.

use std::ops::Range;

/// What one receiver saw of one sender.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Track {
    /// The next number expected: every number below it arrived, except
    /// those in `gaps`.
    next: u64,
    /// Numbers jumped over, in increasing order. Empty in a clean run, so
    /// keeping them costs nothing, and they make the final count exact
    /// whatever the senders' final counts turn out to be.
    gaps: Vec<Range<u64>>,
    /// Deliveries at or below a number already seen.
    out_of_order: u64,
}

impl Track {
    /// Distinct in-order deliveries of numbers below `limit`.
    fn delivered_below(&self, limit: u64) -> u64 {
        let skipped: u64 = self
            .gaps
            .iter()
            .map(|gap| gap.end.min(limit).saturating_sub(gap.start))
            .sum();
        self.next.min(limit) - skipped
    }
}

/// What one receiver saw, per sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    tracks: Vec<Track>,
    /// Deliveries naming a sender outside `0..senders`.
    strangers: u64,
}

impl Ledger {
    pub fn new(senders: usize) -> Self {
        Ledger {
            tracks: vec![Track::default(); senders],
            strangers: 0,
        }
    }

    /// Records that message `seq` of `sender` arrived.
    pub fn record(&mut self, sender: usize, seq: u64) {
        let Some(track) = self.tracks.get_mut(sender) else {
            self.strangers += 1;
            return;
        };
        if seq < track.next {
            track.out_of_order += 1;
            return;
        }
        if seq > track.next {
            track.gaps.push(track.next..seq);
        }
        track.next = seq + 1;
    }
}

/// The whole run's delivery figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages the senders sent.
    pub sent: u64,
    /// `sent × receivers`: one delivery per message per receiver.
    pub expected: u64,
    /// Distinct, in-order deliveries of sent messages.
    pub delivered: u64,
    /// `expected - delivered`.
    pub lost: u64,
    /// Deliveries that broke the per-sender order (duplicates or late).
    pub out_of_order: u64,
    /// Deliveries naming an unknown sender or a number never sent.
    pub unexpected: u64,
}

impl std::ops::AddAssign for Tally {
    /// Adds up the accounts of separate groups (the rooms of the rooms mode).
    fn add_assign(&mut self, other: Tally) {
        self.sent += other.sent;
        self.expected += other.expected;
        self.delivered += other.delivered;
        self.lost += other.lost;
        self.out_of_order += other.out_of_order;
        self.unexpected += other.unexpected;
    }
}

impl Tally {
    /// Settles the accounts: `sent[s]` is how many messages sender `s`
    /// sent (numbered `0..sent[s]`), `receivers` what each receiver saw.
    pub fn settle<'a>(sent: &[u64], receivers: impl IntoIterator<Item = &'a Ledger>) -> Tally {
        let per_receiver: u64 = sent.iter().sum();
        let mut tally = Tally {
            sent: per_receiver,
            ..Tally::default()
        };
        for ledger in receivers {
            tally.expected += per_receiver;
            tally.unexpected += ledger.strangers;
            for (sender, track) in ledger.tracks.iter().enumerate() {
                let sent = sent.get(sender).copied().unwrap_or(0);
                let delivered = track.delivered_below(sent);
                tally.delivered += delivered;
                tally.unexpected += track.delivered_below(u64::MAX) - delivered;
                tally.out_of_order += track.out_of_order;
            }
        }
        tally.lost = tally.expected - tally.delivered;
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(senders: usize, deliveries: &[(usize, u64)]) -> Ledger {
        let mut ledger = Ledger::new(senders);
        for &(sender, seq) in deliveries {
            ledger.record(sender, seq);
        }
        ledger
    }

    #[test]
    fn everything_delivered_means_nothing_lost() {
        let a = ledger(2, &[(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]);
        let b = ledger(2, &[(1, 0), (0, 0), (1, 1), (0, 1), (0, 2)]);
        let tally = Tally::settle(&[3, 2], [&a, &b]);
        assert_eq!(
            tally,
            Tally {
                sent: 5,
                expected: 10,
                delivered: 10,
                lost: 0,
                out_of_order: 0,
                unexpected: 0
            }
        );
    }

    #[test]
    fn a_missing_delivery_in_the_middle_is_lost() {
        let whole = ledger(1, &[(0, 0), (0, 1), (0, 2), (0, 3)]);
        let holed = ledger(1, &[(0, 0), (0, 2), (0, 3)]);
        let tally = Tally::settle(&[4], [&whole, &holed]);
        assert_eq!((tally.expected, tally.delivered, tally.lost), (8, 7, 1));
    }

    #[test]
    fn a_missing_tail_is_lost_too() {
        // The drain period ran out before the last two arrived.
        let short = ledger(1, &[(0, 0), (0, 1)]);
        let tally = Tally::settle(&[4], [&short]);
        assert_eq!((tally.expected, tally.delivered, tally.lost), (4, 2, 2));
    }

    #[test]
    fn a_receiver_that_saw_nothing_lost_everything() {
        let silent = ledger(2, &[]);
        let tally = Tally::settle(&[3, 4], [&silent]);
        assert_eq!((tally.expected, tally.lost), (7, 7));
    }

    #[test]
    fn duplicates_do_not_make_up_for_losses() {
        let dup = ledger(1, &[(0, 0), (0, 0), (0, 2), (0, 1)]);
        let tally = Tally::settle(&[3], [&dup]);
        assert_eq!((tally.delivered, tally.lost, tally.out_of_order), (2, 1, 2));
    }

    #[test]
    fn deliveries_nobody_sent_are_unexpected_not_delivered() {
        let odd = ledger(1, &[(0, 0), (0, 1), (0, 5), (7, 0)]);
        let tally = Tally::settle(&[2], [&odd]);
        assert_eq!((tally.delivered, tally.lost, tally.unexpected), (2, 0, 2));
    }
}
