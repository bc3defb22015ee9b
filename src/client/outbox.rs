//! Messages on their way out: queued until they can be sent, then in
//! flight until the server confirms them.
//!
//! v1 has no acknowledgements, but the server answers every `textFromUser`
//! in order, either by broadcasting it (the sender gets its own copy) or
//! with an `errorMessage`. So the oldest message in flight is confirmed by
//! the next echo of our own name with the same text, or refused by the
//! next message-related error.

use std::collections::VecDeque;

#[derive(Debug)]
pub(crate) struct Outbox {
    queued: VecDeque<String>,
    in_flight: VecDeque<String>,
    /// Most messages queued at once; more are refused.
    capacity: usize,
    /// Most messages in flight at once; the rest wait in the queue, which
    /// paces a fast script to the server's pace.
    window: usize,
}

/// The queue is full; the message was not taken.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Full;

impl Outbox {
    pub(crate) fn new(capacity: usize, window: usize) -> Self {
        Outbox {
            queued: VecDeque::new(),
            in_flight: VecDeque::new(),
            capacity: capacity.max(1),
            window: window.max(1),
        }
    }

    pub(crate) fn push(&mut self, text: String) -> Result<(), Full> {
        if self.queued.len() >= self.capacity {
            return Err(Full);
        }
        self.queued.push_back(text);
        Ok(())
    }

    pub(crate) fn has_room(&self) -> bool {
        self.queued.len() < self.capacity
    }

    /// The next message to send, if the window allows; it is now in flight.
    pub(crate) fn next_to_send(&mut self) -> Option<String> {
        if self.in_flight.len() >= self.window {
            return None;
        }
        let text = self.queued.pop_front()?;
        self.in_flight.push_back(text.clone());
        Some(text)
    }

    /// An echo of our own message arrived: confirms the oldest in flight
    /// if it has this text.
    pub(crate) fn confirm(&mut self, text: &str) -> bool {
        if self.in_flight.front().is_some_and(|t| t == text) {
            self.in_flight.pop_front();
            return true;
        }
        false
    }

    /// The server refused a message: the oldest in flight.
    pub(crate) fn refuse(&mut self) -> Option<String> {
        self.in_flight.pop_front()
    }

    /// The connection is gone: what was in flight may or may not have
    /// arrived.
    pub(crate) fn take_in_flight(&mut self) -> Vec<String> {
        self.in_flight.drain(..).collect()
    }

    pub(crate) fn queued(&self) -> usize {
        self.queued.len()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.in_flight.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_within_the_window_and_confirms_in_order() {
        let mut outbox = Outbox::new(3, 2);
        for text in ["a", "b", "c"] {
            outbox.push(text.into()).unwrap();
        }
        assert_eq!(outbox.push("d".into()), Err(Full));
        assert!(!outbox.has_room());
        assert_eq!(outbox.next_to_send().as_deref(), Some("a"));
        assert_eq!(outbox.next_to_send().as_deref(), Some("b"));
        assert_eq!(outbox.next_to_send(), None, "window of 2");
        assert!(!outbox.confirm("b"), "only the oldest can be confirmed");
        assert!(outbox.confirm("a"));
        assert_eq!(outbox.next_to_send().as_deref(), Some("c"));
        assert_eq!(outbox.refuse().as_deref(), Some("b"));
        assert_eq!(outbox.take_in_flight(), vec!["c".to_owned()]);
        assert!(outbox.is_empty());
    }
}
