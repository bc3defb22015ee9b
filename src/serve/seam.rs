//! The core task's seam to its backend (see `backend`): the core asks
//! ([`Request`], each with its typed ticket); the backend answers each
//! request ([`Answer`]), and in a cluster also tells what the other nodes did.
//! The core task sends its requests in one batch per loop turn and takes
//! the replies in the order the core must handle them.
//!
//! Apart from `backend`, which chooses and starts a backend, so that the
//! backends (`store`, `cluster`) and the core task import these types from
//! a module that imports none of them.

use smol::channel::{self, Receiver, Sender};

use crate::server::{Answer, HeldName, Remote, Request};

/// The core's requests of one loop turn, in the order it made them.
pub(crate) type Requests = Vec<Request>;

/// The core task's end of the seam to its backend.
#[derive(Debug)]
pub(crate) struct Seam {
    pub(crate) requests: Sender<Requests>,
    pub(crate) replies: Receiver<Vec<Reply>>,
}

/// What a backend tells the core.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The answer to a request.
    Answer(Answer),
    /// What another node of a cluster did.
    #[cfg_attr(
        not(feature = "cluster"),
        allow(dead_code, reason = "only Redis tells")
    )]
    Remote(Remote),
    /// A cluster's link asks which names this node holds (to register them
    /// again): answered on the channel given, after every request asked so
    /// far has been handed on, with the last one's number.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code, reason = "only Redis asks"))]
    HeldNamesWanted(Sender<(Vec<HeldName>, u64)>),
}

/// The seam's two ends: the core task's, and the backend's (the requests
/// it is handed, where its replies go).
pub(crate) fn pair() -> (Seam, Receiver<Requests>, Sender<Vec<Reply>>) {
    let (requests, handed) = channel::unbounded();
    let (replies, answered) = channel::unbounded();
    let seam = Seam {
        requests,
        replies: answered,
    };
    (seam, handed, replies)
}
