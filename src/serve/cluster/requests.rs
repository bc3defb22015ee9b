//! The one place where the Redis link meets the core's seam: the core's
//! requests become script [`Call`]s, each keeping its request's typed
//! ticket, so that a script's answer can only become the [`Answer`] of its
//! own kind; what the link tells the core becomes the core task's
//! [`Reply`]s. Everything else in `cluster` speaks in its own terms.

use std::fmt::Write as _;
use std::sync::Arc;

use redis::Value;

use super::super::seam::Reply;
use super::events::{number, text};
use super::room_events::room_of;
use crate::protocol::LeaveReason;
pub(crate) use crate::server::{
    Answer, Append, Claim, Failed, HeldName, Remote, StoredMessage, Ticket,
};
use crate::server::{Disconnect, Online, Request, Reserve, SecretHash, Write};

/// One script run for one request of the core (one EVALSHA each, in the
/// pipeline of its batch). Secrets are SHA-256 hashes in hex, as Redis
/// keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Reserve {
        ticket: Ticket<Reserve>,
        key: Arc<str>,
        display: Arc<str>,
        /// The hash of the secret offered, or "".
        offered: String,
        fresh: String,
        location: Arc<str>,
        timestamp: u64,
    },
    Disconnect {
        ticket: Ticket<Disconnect>,
        key: Arc<str>,
        reason: LeaveReason,
    },
    Logout {
        ticket: Ticket<Write>,
        key: Arc<str>,
        display: Arc<str>,
        /// The holder's (filled in by the link, which knows it), so that
        /// a stale logout never frees someone else's name.
        secret: String,
    },
    Online {
        ticket: Ticket<Online>,
    },
    Append {
        ticket: Ticket<Append>,
        id: Arc<str>,
        timestamp: u64,
        username: Arc<str>,
        text: Arc<str>,
    },
    /// A room write (a `Release` too: its cascade through the rooms).
    RoomWrite {
        ticket: Ticket<Write>,
        write: Write,
    },
    /// An entry of a room (`Append { room: Some(..) }`), numbered in it.
    RoomAppend {
        ticket: Ticket<Append>,
        room: Arc<str>,
        id: Arc<str>,
        timestamp: u64,
        username: Arc<str>,
        text: Arc<str>,
        notice: bool,
    },
}

impl Call {
    /// Bob's lobby message number `n` ("hi"), for the link's unit tests.
    #[cfg(test)]
    pub(crate) fn test_append(n: u64) -> Call {
        Call::Append {
            ticket: Ticket::for_tests(n),
            id: format!("m{n}").into(),
            timestamp: 1700,
            username: "Bob".into(),
            text: "hi".into(),
        }
    }

    /// The number of the request it runs for (requests are numbered in the
    /// order the core asked them).
    pub(crate) fn number(&self) -> u64 {
        match self {
            Call::Reserve { ticket, .. } => ticket.get(),
            Call::Disconnect { ticket, .. } => ticket.get(),
            Call::Logout { ticket, .. } => ticket.get(),
            Call::Online { ticket } => ticket.get(),
            Call::Append { ticket, .. } => ticket.get(),
            Call::RoomWrite { ticket, .. } => ticket.get(),
            Call::RoomAppend { ticket, .. } => ticket.get(),
        }
    }

    /// Its request failed, for `error`.
    pub(crate) fn fail(&self, error: Failed) -> Answer {
        match self {
            Call::Reserve { ticket, .. } => ticket.answer(Err(error)),
            Call::Disconnect { ticket, .. } => ticket.answer(Err(error)),
            Call::Logout { ticket, .. } => ticket.answer(Err(error)),
            Call::Online { ticket } => ticket.answer(Err(error)),
            Call::Append { ticket, .. } => ticket.answer(Err(error)),
            Call::RoomWrite { ticket, .. } => ticket.answer(Err(error)),
            Call::RoomAppend { ticket, .. } => ticket.answer(Err(error)),
        }
    }
}

/// A request of the core as a script call, or its answer when it needs
/// none (a cluster's core asks none of the embedded store's writes).
pub(crate) fn call_of(request: Request) -> Result<Call, Answer> {
    Ok(match request {
        Request::Reserve(
            ticket,
            Reserve {
                key,
                display,
                offered,
                fresh,
                location,
                timestamp,
            },
        ) => Call::Reserve {
            ticket,
            key,
            display,
            offered: offered.as_ref().map(hex).unwrap_or_default(),
            fresh: hex(&fresh),
            location,
            timestamp,
        },
        Request::Disconnect(ticket, Disconnect { key, reason, .. }) => Call::Disconnect {
            ticket,
            key,
            reason,
        },
        Request::Write(ticket, Write::Logout { key, display }) => Call::Logout {
            ticket,
            key,
            display,
            secret: String::new(),
        },
        Request::Online(ticket) => Call::Online { ticket },
        Request::Write(ticket, write)
            if room_of(&write).is_some() || matches!(write, Write::Release { .. }) =>
        {
            Call::RoomWrite { ticket, write }
        }
        Request::Append(
            ticket,
            Append {
                room: Some(room),
                id,
                timestamp,
                username,
                text,
                notice,
            },
        ) => Call::RoomAppend {
            ticket,
            room,
            id,
            timestamp,
            username,
            text,
            notice,
        },
        Request::Append(
            ticket,
            Append {
                id,
                timestamp,
                username,
                text,
                ..
            },
        ) => Call::Append {
            ticket,
            id,
            timestamp,
            username,
            text,
        },
        Request::Write(ticket, _) => return Err(ticket.answer(Ok(()))),
    })
}

/// What the script's answer `value` to `call` means to the core; `None`
/// when it is not an answer to it.
pub(crate) fn answer_of(call: &Call, value: &Value) -> Option<Answer> {
    Some(match call {
        Call::Reserve { ticket, .. } => {
            let Value::Array(answer) = value else {
                return None;
            };
            let claim = match text(answer.first()?)?.as_str() {
                "fresh" => Claim::Fresh,
                "reclaimed" => Claim::Reclaimed,
                "taken" => Claim::Taken,
                _ => return None,
            };
            let display: Arc<str> = text(answer.get(1)?)?.into();
            ticket.answer(Ok((claim, display)))
        }
        Call::Disconnect { ticket, .. } => ticket.answer(Ok(number(value)? == 1)),
        Call::Logout { ticket, .. } => ticket.answer(Ok(())),
        Call::Online { ticket } => {
            let Value::Array(flat) = value else {
                return None;
            };
            let online = flat
                .chunks_exact(2)
                .filter_map(|pair| Some((text(&pair[0])?.into(), number(&pair[1])? as usize)))
                .collect();
            ticket.answer(Ok(online))
        }
        Call::Append { ticket, .. } | Call::RoomAppend { ticket, .. } => {
            ticket.answer(Ok(number(value)?))
        }
        Call::RoomWrite { ticket, .. } => ticket.answer(Ok(())),
    })
}

/// The secret a reserve's `answer` gave this node's connection, and the
/// name as everyone sees it, if it was given the name.
pub(crate) fn secret_claimed<'c>(call: &'c Call, answer: &Answer) -> Option<(&'c str, Arc<str>)> {
    match (call, answer) {
        (Call::Reserve { fresh, .. }, Answer::Claimed(_, Ok((Claim::Fresh, display)))) => {
            Some((fresh, display.clone()))
        }
        (Call::Reserve { offered, .. }, Answer::Claimed(_, Ok((Claim::Reclaimed, display)))) => {
            Some((offered, display.clone()))
        }
        _ => None,
    }
}

/// What the link tells the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToCore {
    /// The answer to a request.
    Answer(Answer),
    /// What another node did.
    Remote(Remote),
    /// Which names does this node hold? Answered with
    /// `RedisLink::handle_held_names`, with this number.
    HeldNamesWanted(u64),
}

impl ToCore {
    /// As the core task takes it; a question comes with where to answer.
    pub(crate) fn into_reply(self, answer: &smol::channel::Sender<(Vec<HeldName>, u64)>) -> Reply {
        match self {
            ToCore::Answer(answer) => Reply::Answer(answer),
            ToCore::Remote(remote) => Reply::Remote(remote),
            ToCore::HeldNamesWanted(_) => Reply::HeldNamesWanted(answer.clone()),
        }
    }
}

pub(crate) fn hex(hash: &SecretHash) -> String {
    let mut out = String::with_capacity(64);
    for byte in hash.0 {
        let _ = write!(out, "{byte:02x}");
    }
    out
}
