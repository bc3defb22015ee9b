//! Messages on their way out: queued until they can be sent, in flight
//! until the server confirms them, and — on v2, after a dropped connection —
//! unchecked until the catch-up `history` tells whether they arrived.
//!
//! v2 confirms by id: the sender's copy of its `textBroadcast` (or an
//! `errorMessage`) carries `replyTo`. v1 has no acknowledgements, but the
//! server answers every `textFromUser` in order, either by broadcasting it
//! (the sender gets its own copy) or with an `errorMessage`, so the oldest
//! message in flight is confirmed by the next echo of our own name with the
//! same text, or refused by the next message-related error.

use std::collections::VecDeque;

/// A message sent under the client's message `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) id: String,
    pub(crate) text: String,
    /// v3: the room or DM it goes to; `None`: the lobby.
    pub(crate) room: Option<String>,
    /// Its place in the order the messages were typed.
    order: u64,
}

/// A message waiting to be sent.
#[derive(Debug)]
struct Queued {
    order: u64,
    text: String,
    room: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    /// In the order typed: a message sent again goes back to its place.
    queued: VecDeque<Queued>,
    /// The `order` of the next message pushed.
    next_order: u64,
    in_flight: VecDeque<Sent>,
    /// In flight when a v2 connection dropped: maybe delivered, maybe not,
    /// until the next login's `history` says.
    unchecked: Vec<Sent>,
    /// Most messages queued at once; more are refused.
    capacity: usize,
    /// Most messages in flight at once; the rest wait in the queue, which
    /// paces a fast script to the server's pace.
    window: usize,
}

/// The queue is full; the message was not taken.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Full;

/// What the catch-up after a reconnect says about the unchecked messages.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Checked {
    /// In the history: delivered before the drop.
    pub(crate) delivered: Vec<String>,
    /// Not in a complete history: never arrived. Queued again, first.
    pub(crate) resent: Vec<String>,
    /// Not in an incomplete history: nobody can tell any more.
    pub(crate) unknown: Vec<String>,
}

impl Outbox {
    pub(crate) fn new(capacity: usize, window: usize) -> Self {
        Outbox {
            queued: VecDeque::new(),
            next_order: 0,
            in_flight: VecDeque::new(),
            unchecked: Vec::new(),
            capacity: capacity.max(1),
            window: window.max(1),
        }
    }

    #[cfg(test)]
    pub(crate) fn push(&mut self, text: String) -> Result<(), Full> {
        self.push_to(text, None)
    }

    /// v3: a message for `room` (`None`: the lobby).
    pub(crate) fn push_to(&mut self, text: String, room: Option<String>) -> Result<(), Full> {
        if self.queued.len() >= self.capacity {
            return Err(Full);
        }
        self.queued.push_back(Queued {
            order: self.next_order,
            text,
            room,
        });
        self.next_order += 1;
        Ok(())
    }

    /// Most messages in flight at once from now on.
    pub(crate) fn set_window(&mut self, window: usize) {
        self.window = window.max(1);
    }

    /// A message sent once (refused as too fast, or never received before
    /// a drop) goes again, in its place: after those typed before it,
    /// before those typed after it.
    pub(crate) fn send_again(&mut self, sent: Sent) {
        let at = self
            .queued
            .partition_point(|queued| queued.order < sent.order);
        self.queued.insert(
            at,
            Queued {
                order: sent.order,
                text: sent.text,
                room: sent.room,
            },
        );
    }

    pub(crate) fn has_room(&self) -> bool {
        self.queued.len() < self.capacity
    }

    /// The next message to send, if the window allows, under the id `id()`
    /// draws; it is now in flight.
    pub(crate) fn next_to_send(&mut self, id: impl FnOnce() -> String) -> Option<Sent> {
        if self.in_flight.len() >= self.window {
            return None;
        }
        let Queued { order, text, room } = self.queued.pop_front()?;
        let sent = Sent {
            id: id(),
            text,
            room,
            order,
        };
        self.in_flight.push_back(sent.clone());
        Some(sent)
    }

    /// v1: an echo of our own message arrived; confirms the oldest in
    /// flight if it has this text.
    pub(crate) fn confirm_text(&mut self, text: &str) -> bool {
        if self.in_flight.front().is_some_and(|sent| sent.text == text) {
            self.in_flight.pop_front();
            return true;
        }
        false
    }

    /// v2: the server answered the message sent under `id`, by
    /// broadcasting it or refusing it. The message, if it was ours in flight.
    pub(crate) fn answered(&mut self, id: &str) -> Option<Sent> {
        let at = self.in_flight.iter().position(|sent| sent.id == id)?;
        self.in_flight.remove(at)
    }

    /// v1: the server refused a message: the oldest in flight.
    pub(crate) fn refuse_oldest(&mut self) -> Option<Sent> {
        self.in_flight.pop_front()
    }

    /// The connection is gone: what was in flight may or may not have
    /// arrived.
    pub(crate) fn take_in_flight(&mut self) -> Vec<String> {
        self.in_flight.drain(..).map(|sent| sent.text).collect()
    }

    /// The v2 connection is gone: keep what was in flight to check against
    /// the next login's `history`.
    pub(crate) fn park_in_flight(&mut self) {
        self.unchecked.extend(self.in_flight.drain(..));
    }

    /// The unchecked messages, for when no `history` will come (the client
    /// quits, or the server now speaks v1).
    pub(crate) fn take_unchecked(&mut self) -> Vec<String> {
        self.unchecked.drain(..).map(|sent| sent.text).collect()
    }

    pub(crate) fn unchecked(&self) -> usize {
        self.unchecked.len()
    }

    /// Settles the unchecked messages against `own`, the texts of our own
    /// messages in the catch-up (oldest first), which is `complete` or not.
    /// The server handled our messages in the order sent, so they are
    /// matched in order; those never received go back to the queue, in
    /// their place, ahead of anything typed while offline.
    pub(crate) fn check<'a>(
        &mut self,
        own: impl IntoIterator<Item = &'a str>,
        complete: bool,
    ) -> Checked {
        // A room's own catch-up tells of its messages (`check_room`).
        let (lobby, rooms): (Vec<Sent>, Vec<Sent>) = std::mem::take(&mut self.unchecked)
            .into_iter()
            .partition(|sent| sent.room.is_none());
        self.unchecked = rooms;
        self.settle(lobby, own, complete)
    }

    /// v3: the rooms (not the lobby) of the unchecked messages.
    pub(crate) fn unchecked_rooms(&self) -> Vec<String> {
        let mut rooms: Vec<String> = Vec::new();
        for room in self.unchecked.iter().filter_map(|sent| sent.room.as_ref()) {
            if !rooms.contains(room) {
                rooms.push(room.clone());
            }
        }
        rooms
    }

    /// v3: as [`check`](Self::check), for the unchecked messages of the
    /// room `is_room` recognises, against that room's catch-up.
    pub(crate) fn check_room<'a>(
        &mut self,
        is_room: impl Fn(&str) -> bool,
        own: impl IntoIterator<Item = &'a str>,
        complete: bool,
    ) -> Checked {
        let (mine, others): (Vec<Sent>, Vec<Sent>) = std::mem::take(&mut self.unchecked)
            .into_iter()
            .partition(|sent| sent.room.as_deref().is_some_and(&is_room));
        self.unchecked = others;
        self.settle(mine, own, complete)
    }

    /// Settles `unchecked` against `own`, in order (see `check`).
    fn settle<'a>(
        &mut self,
        unchecked: Vec<Sent>,
        own: impl IntoIterator<Item = &'a str>,
        complete: bool,
    ) -> Checked {
        let own: Vec<&str> = own.into_iter().collect();
        let mut from = 0;
        let mut checked = Checked::default();
        for sent in unchecked {
            match own[from..].iter().position(|said| *said == sent.text) {
                Some(at) => {
                    from += at + 1;
                    checked.delivered.push(sent.text);
                }
                None if complete => {
                    checked.resent.push(sent.text.clone());
                    self.send_again(sent);
                }
                None => checked.unknown.push(sent.text),
            }
        }
        checked
    }

    /// The texts not known to have reached the server and not on their way
    /// now: unchecked after a drop, then queued, in order.
    pub(crate) fn waiting(&self) -> Vec<&str> {
        self.unchecked
            .iter()
            .map(|sent| sent.text.as_str())
            .chain(self.queued.iter().map(|queued| queued.text.as_str()))
            .collect()
    }

    /// Every message not confirmed yet, in the order typed: unchecked after
    /// a drop, in flight, queued.
    /// Each with the room it goes to (`None`: the lobby).
    pub(crate) fn pending(&self) -> Vec<(&str, Option<&str>)> {
        let mut sent: Vec<(u64, &str, Option<&str>)> = self
            .unchecked
            .iter()
            .chain(&self.in_flight)
            .map(|sent| (sent.order, sent.text.as_str(), sent.room.as_deref()))
            .chain(
                self.queued
                    .iter()
                    .map(|q| (q.order, q.text.as_str(), q.room.as_deref())),
            )
            .collect();
        sent.sort_by_key(|(order, ..)| *order);
        sent.into_iter()
            .map(|(_, text, room)| (text, room))
            .collect()
    }

    /// Takes what waits to be sent, in order.
    pub(crate) fn take_queued(&mut self) -> Vec<String> {
        self.queued.drain(..).map(|queued| queued.text).collect()
    }

    /// Drops what waits to be sent; how many there were.
    pub(crate) fn clear_queued(&mut self) -> usize {
        let count = self.queued.len();
        self.queued.clear();
        count
    }

    pub(crate) fn queued(&self) -> usize {
        self.queued.len()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.in_flight.is_empty() && self.unchecked.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("m{n}")
        }
    }

    #[test]
    fn sends_within_the_window_and_confirms_in_order() {
        let mut id = ids();
        let mut outbox = Outbox::new(3, 2);
        for text in ["a", "b", "c"] {
            outbox.push(text.into()).unwrap();
        }
        assert_eq!(outbox.push("d".into()), Err(Full));
        assert!(!outbox.has_room());
        assert_eq!(outbox.next_to_send(&mut id).unwrap().text, "a");
        assert_eq!(outbox.next_to_send(&mut id).unwrap().text, "b");
        assert_eq!(outbox.next_to_send(&mut id), None, "window of 2");
        assert!(
            !outbox.confirm_text("b"),
            "only the oldest can be confirmed"
        );
        assert!(outbox.confirm_text("a"));
        assert_eq!(outbox.next_to_send(&mut id).unwrap().text, "c");
        assert_eq!(
            outbox.refuse_oldest().map(|sent| sent.text).as_deref(),
            Some("b")
        );
        assert_eq!(outbox.take_in_flight(), vec!["c".to_owned()]);
        assert!(outbox.is_empty());
    }

    #[test]
    fn v2_answers_are_matched_by_id_whatever_the_text() {
        let mut id = ids();
        let mut outbox = Outbox::new(3, 3);
        for text in ["same", "same", "other"] {
            outbox.push(text.into()).unwrap();
        }
        let sent: Vec<Sent> = (0..3)
            .map(|_| outbox.next_to_send(&mut id).unwrap())
            .collect();
        assert_eq!(
            outbox.answered("m2").map(|sent| sent.text).as_deref(),
            Some("same")
        );
        assert_eq!(outbox.answered("m2"), None, "answered once");
        assert_eq!(outbox.answered("nope"), None);
        assert_eq!(outbox.in_flight(), 2);
        assert_eq!(
            outbox.take_in_flight(),
            [sent[0].text.clone(), sent[2].text.clone()]
        );
    }

    #[test]
    fn a_catch_up_settles_what_was_in_flight_at_a_drop() {
        let mut id = ids();
        let mut outbox = Outbox::new(10, 10);
        for text in ["a", "b", "c", "d"] {
            outbox.push(text.into()).unwrap();
        }
        for _ in 0..3 {
            outbox.next_to_send(&mut id);
        }
        outbox.park_in_flight();
        assert_eq!((outbox.unchecked(), outbox.queued()), (3, 1));
        assert!(!outbox.is_empty());
        // "a" arrived, "b" was refused (its error lost), "c" never arrived.
        let checked = outbox.check(["x", "a", "y"], true);
        assert_eq!(
            checked,
            Checked {
                delivered: vec!["a".into()],
                resent: vec!["b".into(), "c".into()],
                unknown: vec![],
            }
        );
        assert_eq!(outbox.unchecked(), 0);
        // Resent first, then what was typed meanwhile.
        let order: Vec<String> = (0..3)
            .map(|_| outbox.next_to_send(&mut id).unwrap().text)
            .collect();
        assert_eq!(order, ["b", "c", "d"]);
    }

    #[test]
    fn messages_sent_again_keep_their_order_ahead_of_new_ones() {
        let mut id = ids();
        let mut outbox = Outbox::new(10, 3);
        for text in ["a", "b", "c", "d"] {
            outbox.push(text.into()).unwrap();
        }
        for _ in 0..3 {
            outbox.next_to_send(&mut id);
        }
        assert!(outbox.confirm_text("a"));
        // "b" and "c" refused in the order sent.
        for _ in 0..2 {
            let sent = outbox.refuse_oldest().unwrap();
            outbox.send_again(sent);
        }
        outbox.set_window(1);
        assert_eq!(outbox.next_to_send(&mut id).unwrap().text, "b");
        assert_eq!(outbox.next_to_send(&mut id), None, "window of 1");
        // "b" refused again: still first.
        let sent = outbox.answered(&outbox_id(&outbox)).unwrap();
        outbox.send_again(sent);
        let order: Vec<String> = (0..3)
            .map(|_| {
                let sent = outbox.next_to_send(&mut id).unwrap();
                assert!(outbox.confirm_text(&sent.text));
                sent.text
            })
            .collect();
        assert_eq!(order, ["b", "c", "d"]);
        assert!(outbox.is_empty());
    }

    fn outbox_id(outbox: &Outbox) -> String {
        outbox.in_flight.front().unwrap().id.clone()
    }

    #[test]
    fn an_incomplete_catch_up_cannot_tell() {
        let mut id = ids();
        let mut outbox = Outbox::new(10, 10);
        for text in ["a", "b"] {
            outbox.push(text.into()).unwrap();
            outbox.next_to_send(&mut id);
        }
        outbox.park_in_flight();
        let checked = outbox.check(["b"], false);
        assert_eq!(checked.delivered, ["b"]);
        assert_eq!(checked.unknown, ["a"]);
        assert!(checked.resent.is_empty());
        assert!(outbox.is_empty());
    }
}
