//! One connection's outbound queue, bounded in bytes.
//!
//! The core task pushes without ever waiting; the connection's writer takes
//! everything queued at once. A push that would exceed the bound is refused,
//! and the core task then closes that connection: a slow reader costs at
//! most its bound in memory and never delays anyone else.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use async_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};
use smol::future;

use crate::CloseCode;

/// A frame waiting to be written.
#[derive(Debug, Clone)]
pub(crate) enum Outgoing {
    /// JSON text; broadcasts share one allocation among all recipients.
    Text(Utf8Bytes),
    Ping(Bytes),
}

impl Outgoing {
    /// What the frame counts against the bound.
    pub(crate) fn len(&self) -> usize {
        match self {
            Outgoing::Text(text) => text.len(),
            Outgoing::Ping(payload) => payload.len(),
        }
    }

    pub(crate) fn into_message(self) -> Message {
        match self {
            Outgoing::Text(text) => Message::Text(text),
            Outgoing::Ping(payload) => Message::Ping(payload),
        }
    }
}

/// Why and how a connection is being closed by us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closing {
    pub(crate) code: CloseCode,
    pub(crate) reason: &'static str,
    /// Drop what is still queued instead of delivering it first.
    discard: bool,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue is full.
    Overflow,
    /// The connection is closing or gone: the frame is dropped.
    Closing,
}

/// What the writer should do next.
#[derive(Debug)]
pub(crate) enum Next {
    /// Everything queued, in order.
    Frames(VecDeque<Outgoing>),
    /// Nothing more to send: send this Close.
    Close(Closing),
}

#[derive(Debug)]
pub(crate) struct Outbox {
    limit: usize,
    /// Bytes pushed and not yet handed to the WebSocket, including those of
    /// the batch the writer is working through.
    queued: AtomicUsize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Outgoing>,
    closing: Option<Closing>,
    /// The connection is gone; pushes are dropped.
    finished: bool,
    /// The connection task, when it waits for frames or an abort.
    waker: Option<Waker>,
}

impl Outbox {
    pub(crate) fn new(limit: usize) -> Self {
        Outbox {
            limit,
            queued: AtomicUsize::new(0),
            state: Mutex::default(),
        }
    }

    /// Queues a frame. Refused when it would take the queue past its bound,
    /// unless the queue is empty: a single frame always fits, so a bound
    /// smaller than a large message cannot close an idle reader. Frames for
    /// a closing connection are dropped (`Refused::Closing`).
    ///
    /// Returns the writer's waker when the writer is waiting for this frame.
    /// The caller wakes it once it has queued everything it has at hand, so
    /// the writer finds a whole batch.
    pub(crate) fn push(&self, frame: Outgoing) -> Result<Option<Waker>, Refused> {
        let mut state = self.lock();
        if state.closing.is_some() || state.finished {
            return Err(Refused::Closing);
        }
        let len = frame.len();
        let queued = self.queued.load(Ordering::Acquire);
        if queued > 0 && queued + len > self.limit {
            return Err(Refused::Overflow);
        }
        self.queued.fetch_add(len, Ordering::AcqRel);
        state.frames.push_back(frame);
        Ok(state.waker.take())
    }

    /// Closes the connection once everything already queued is sent.
    pub(crate) fn close(&self, code: CloseCode, reason: &'static str) {
        self.set_closing(Closing {
            code,
            reason,
            discard: false,
        });
    }

    /// Closes the connection now, dropping whatever is queued.
    pub(crate) fn abort(&self, code: CloseCode, reason: &'static str) {
        self.set_closing(Closing {
            code,
            reason,
            discard: true,
        });
    }

    fn set_closing(&self, closing: Closing) {
        let mut state = self.lock();
        if state.closing.is_some() || state.finished {
            return;
        }
        state.closing = Some(closing);
        if closing.discard {
            state.frames = VecDeque::new();
        }
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The connection is gone: drop what is queued and refuse the rest.
    pub(crate) fn finish(&self) {
        let mut state = self.lock();
        state.finished = true;
        state.frames = VecDeque::new();
        state.waker = None;
    }

    /// Whether we have started closing (the core no longer knows this
    /// connection).
    pub(crate) fn is_closing(&self) -> bool {
        self.lock().closing.is_some()
    }

    /// Waits for frames and takes all of them, or for the close once none
    /// are left. The queue's allocation goes with the frames: an idle
    /// connection's queue holds none.
    pub(crate) async fn next(&self) -> Next {
        future::poll_fn(|cx| {
            let mut state = self.lock();
            if !state.frames.is_empty() {
                return Poll::Ready(Next::Frames(std::mem::take(&mut state.frames)));
            }
            if let Some(closing) = state.closing {
                return Poll::Ready(Next::Close(closing));
            }
            state.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Resolves once the connection is aborted, so a writer blocked on a
    /// peer that does not read can give up on the rest of its batch.
    pub(crate) async fn aborted(&self) {
        future::poll_fn(|cx| {
            let mut state = self.lock();
            if state.closing.is_some_and(|c| c.discard) {
                return Poll::Ready(());
            }
            state.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Bytes waiting to be written (for `/metrics`).
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// The close we started, if we did: its code and reason.
    pub(crate) fn closing(&self) -> Option<(CloseCode, &'static str)> {
        self.lock().closing.map(|c| (c.code, c.reason))
    }

    /// The writer handed `bytes` of taken frames to the WebSocket.
    pub(crate) fn sent(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Ordering::AcqRel);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; recover rather than spread a
        // poison that cannot mean a broken queue.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &'static str) -> Outgoing {
        Outgoing::Text(Utf8Bytes::from_static(s))
    }

    /// What the writer gets next: the texts of the frames, or the close.
    fn take(outbox: &Outbox) -> (Option<Closing>, Vec<String>) {
        match smol::block_on(outbox.next()) {
            Next::Frames(frames) => {
                let texts = frames
                    .into_iter()
                    .map(|f| match f {
                        Outgoing::Text(t) => t.to_string(),
                        Outgoing::Ping(_) => "<ping>".into(),
                    })
                    .collect();
                (None, texts)
            }
            Next::Close(closing) => (Some(closing), vec![]),
        }
    }

    #[test]
    fn overflows_past_its_bound_but_always_takes_one_frame() {
        let outbox = Outbox::new(10);
        assert!(outbox.push(text("0123456789abc")).is_ok());
        assert!(matches!(outbox.push(text("x")), Err(Refused::Overflow)));
        assert_eq!(take(&outbox), (None, vec!["0123456789abc".into()]));
        // Taken but not yet written still counts.
        assert!(matches!(outbox.push(text("x")), Err(Refused::Overflow)));
        outbox.sent(13);
        assert!(outbox.push(text("0123456")).is_ok());
        assert!(outbox.push(text("789")).is_ok());
        assert!(matches!(outbox.push(text("a")), Err(Refused::Overflow)));
    }

    #[test]
    fn close_delivers_what_is_queued_first_and_abort_drops_it() {
        let outbox = Outbox::new(100);
        outbox.push(text("a")).unwrap();
        outbox.close(CloseCode::GOING_AWAY, "bye");
        assert_eq!(outbox.push(text("late")).err(), Some(Refused::Closing));
        assert_eq!(take(&outbox), (None, vec!["a".into()]));
        let closing = Closing {
            code: CloseCode::GOING_AWAY,
            reason: "bye",
            discard: false,
        };
        assert_eq!(take(&outbox), (Some(closing), vec![]));

        let outbox = Outbox::new(100);
        outbox.push(text("a")).unwrap();
        outbox.abort(CloseCode::POLICY, "too slow");
        outbox.close(CloseCode::GOING_AWAY, "bye"); // the first close wins
        assert!(
            matches!(take(&outbox), (Some(c), v) if c.code == CloseCode::POLICY && v.is_empty())
        );
        smol::block_on(outbox.aborted());
    }

    #[test]
    fn a_waiting_writer_is_handed_its_waker_on_push() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::{Context, Wake, Waker};

        #[derive(Default)]
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: std::sync::Arc<Self>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }

        // The writer waits on an empty outbox: its waker is kept.
        let outbox = Outbox::new(100);
        let count = std::sync::Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut next = std::pin::pin!(outbox.next());
        assert!(next.as_mut().poll(&mut cx).is_pending());
        // The push hands that waker back, for the core task to wake once
        // its batch is queued; a second push has none to hand.
        let handed = outbox
            .push(text("hi"))
            .unwrap()
            .expect("the writer's waker");
        assert!(outbox.push(text("there")).unwrap().is_none());
        handed.wake();
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        let Poll::Ready(Next::Frames(frames)) = next.as_mut().poll(&mut cx) else {
            panic!("the writer gets what was pushed");
        };
        assert_eq!(frames.len(), 2);
    }
}
