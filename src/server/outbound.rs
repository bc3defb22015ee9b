//! The queue of actions the core hands out, and the frames they share.
//!
//! A broadcast to n connections is n queued entries of 32 bytes that name
//! one frame by index; `poll_action` lends the frame out. So a broadcast
//! costs no reference-count traffic in the core at all: two atomic
//! operations per recipient (clone, then drop) used to be half its cost. A
//! driver that must keep the bytes clones them, once per recipient at most.

use std::borrow::Cow;
use std::collections::VecDeque;

use bytes::Bytes;

use super::{Action, CloseCode, ConnectionId, Frame};

#[derive(Debug, Default)]
pub(super) struct Outbound {
    queue: VecDeque<Queued>,
    /// Every frame and payload a queued entry names. Emptied whenever the
    /// queue has been drained, when nothing can borrow from it any more.
    frames: Vec<Frame>,
    /// Some entry may name a connection closed since it was queued, so
    /// `pop` must check each target until the queue empties. Usually
    /// false: a driver drains after every input.
    may_be_stale: bool,
}

/// A frame in [`Outbound`], by index.
#[derive(Debug, Clone, Copy)]
pub(super) struct FrameRef(u32);

#[derive(Debug)]
struct Queued {
    to: ConnectionId,
    what: What,
}

#[derive(Debug)]
enum What {
    Send(FrameRef),
    Ping(FrameRef),
    Pong(FrameRef),
    Close(CloseCode, &'static str),
}

impl Outbound {
    /// Called before an input is handled: with nothing queued, nothing
    /// names the frames kept so far (a driver that drains exactly the
    /// actions it expects never sees `pop` return `None`).
    pub(super) fn start_input(&mut self) {
        if self.queue.is_empty() {
            self.frames.clear();
        }
    }

    /// Keeps `frame` until the queue is drained, for entries to name.
    pub(super) fn add(&mut self, frame: Frame) -> FrameRef {
        // More frames than entries could ever be queued is impossible.
        let index = u32::try_from(self.frames.len()).unwrap_or(u32::MAX);
        self.frames.push(frame);
        FrameRef(index)
    }

    /// Makes room for `additional` more entries at once.
    pub(super) fn reserve(&mut self, additional: usize) {
        self.queue.reserve(additional);
    }

    #[inline]
    pub(super) fn send(&mut self, to: ConnectionId, frame: FrameRef) {
        self.push(to, What::Send(frame));
    }

    pub(super) fn send_new(&mut self, to: ConnectionId, frame: Frame) {
        let frame = self.add(frame);
        self.send(to, frame);
    }

    pub(super) fn ping(&mut self, to: ConnectionId, payload: Bytes) {
        let payload = self.add(Frame(payload));
        self.push(to, What::Ping(payload));
    }

    pub(super) fn pong(&mut self, to: ConnectionId, payload: Bytes) {
        let payload = self.add(Frame(payload));
        self.push(to, What::Pong(payload));
    }

    pub(super) fn close(&mut self, to: ConnectionId, code: CloseCode, reason: &'static str) {
        self.push(to, What::Close(code, reason));
    }

    /// A connection closed: entries already queued for it must not be
    /// handed out. Checked at drain time, so closing stays O(1).
    pub(super) fn connection_closed(&mut self) {
        self.may_be_stale |= !self.queue.is_empty();
    }

    /// The next action, skipping frames and pings for connections that are
    /// no longer open.
    // Inlined into the driver's drain loop, the action is built in registers:
    // returned through memory, each read of it stalled on the writes just
    // made (store-to-load forwarding fails across differently sized stores),
    // which cost as much as everything else in a broadcast together.
    #[inline(always)]
    pub(super) fn pop(&mut self, is_open: impl Fn(ConnectionId) -> bool) -> Option<Action<'_>> {
        let next = if self.may_be_stale {
            self.pop_open(is_open)
        } else {
            self.queue.pop_front()
        };
        let Some(Queued { to, what }) = next else {
            self.frames.clear();
            return None;
        };
        Some(match what {
            What::Send(frame) => Action::Send {
                to,
                frame: Cow::Borrowed(self.frame(frame)),
            },
            What::Ping(payload) => Action::Ping {
                to,
                payload: self.frame(payload).0.clone(),
            },
            What::Pong(payload) => Action::Pong {
                to,
                payload: self.frame(payload).0.clone(),
            },
            What::Close(code, reason) => Action::Close { to, code, reason },
        })
    }

    /// The next entry that is a close or is for an open connection.
    #[cold]
    fn pop_open(&mut self, is_open: impl Fn(ConnectionId) -> bool) -> Option<Queued> {
        while let Some(queued) = self.queue.pop_front() {
            if self.queue.is_empty() {
                self.may_be_stale = false;
            }
            if matches!(queued.what, What::Close(..)) || is_open(queued.to) {
                return Some(queued);
            }
        }
        self.may_be_stale = false;
        None
    }

    #[inline]
    fn push(&mut self, to: ConnectionId, what: What) {
        self.queue.push_back(Queued { to, what });
    }

    fn frame(&self, frame: FrameRef) -> &Frame {
        &self.frames[frame.0 as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(serial: u32) -> ConnectionId {
        ConnectionId { serial, slot: 0 }
    }

    fn frame(text: &'static str) -> Frame {
        Frame(Bytes::from_static(text.as_bytes()))
    }

    #[test]
    fn recipients_of_one_frame_borrow_the_same_bytes() {
        let mut out = Outbound::default();
        let shared = out.add(frame("hi"));
        out.send(conn(1), shared);
        out.send(conn(2), shared);
        let mut pointers = Vec::new();
        while let Some(action) = out.pop(|_| true) {
            let Action::Send { to, frame } = action else {
                panic!("{action:?}")
            };
            assert!(matches!(frame, Cow::Borrowed(_)));
            pointers.push((to, frame.bytes().as_ptr()));
        }
        assert_eq!(pointers.len(), 2);
        assert_eq!(pointers[0].1, pointers[1].1);
        assert_eq!((pointers[0].0, pointers[1].0), (conn(1), conn(2)));
    }

    #[test]
    fn frames_are_let_go_once_nothing_is_queued() {
        let mut out = Outbound::default();
        for _ in 0..100 {
            out.start_input();
            out.send_new(conn(1), frame("x"));
            // Drained exactly: `pop` never gets to say `None`.
            assert!(out.pop(|_| true).is_some());
        }
        assert_eq!(out.frames.len(), 1);
        assert!(out.pop(|_| true).is_none());
        assert!(out.frames.is_empty());
    }

    #[test]
    fn stale_entries_are_skipped_but_closes_are_kept() {
        let mut out = Outbound::default();
        out.send_new(conn(1), frame("to a closed one"));
        out.ping(conn(1), Bytes::from_static(b"p"));
        out.close(conn(1), CloseCode::NORMAL, "bye");
        out.send_new(conn(2), frame("to an open one"));
        out.connection_closed();
        let open = |to: ConnectionId| to == conn(2);
        let mut got = Vec::new();
        while let Some(action) = out.pop(open) {
            got.push(action.into_owned());
        }
        assert_eq!(
            got,
            [
                Action::Close {
                    to: conn(1),
                    code: CloseCode::NORMAL,
                    reason: "bye"
                },
                Action::Send {
                    to: conn(2),
                    frame: Cow::Owned(frame("to an open one"))
                },
            ]
        );
        assert!(!out.may_be_stale);
    }
}
