//! The one place where the Redis link meets the core's seam: the core's
//! requests become script [`Call`]s, the scripts' answers become outcomes,
//! and what the link tells the core becomes the core task's [`Reply`]s.
//! Everything else in `cluster` speaks in its own terms.

use std::fmt::Write as _;
use std::sync::Arc;

use redis::Value;

use super::super::seam::Reply;
use super::events::{number, text};
use crate::protocol::LeaveReason;
pub(crate) use crate::server::held::HeldName;
pub(crate) use crate::server::{Claim, Failed, Outcome, Remote, StoredMessage, Ticket};
use crate::server::{Request, SecretHash};

/// One script run for one request of the core (one EVALSHA each, in the
/// pipeline of its batch). Secrets are SHA-256 hashes in hex, as Redis
/// keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Reserve {
        key: Arc<str>,
        display: Arc<str>,
        /// The hash of the secret offered, or "".
        offered: String,
        fresh: String,
        location: Arc<str>,
        timestamp: u64,
    },
    Disconnect {
        key: Arc<str>,
        reason: LeaveReason,
    },
    Logout {
        key: Arc<str>,
        display: Arc<str>,
        /// The holder's (filled in by the link, which knows it), so that
        /// a stale logout never frees someone else's name.
        secret: String,
    },
    Online,
    Append {
        id: Arc<str>,
        timestamp: u64,
        username: Arc<str>,
        text: Arc<str>,
    },
}

/// A request of the core as a script call, or its outcome when it needs
/// none (a cluster's core asks none of the embedded store's requests).
pub(crate) fn call_of(request: Request) -> Result<Call, Outcome> {
    Ok(match request {
        Request::Reserve {
            key,
            display,
            offered,
            fresh,
            location,
            timestamp,
        } => Call::Reserve {
            key,
            display,
            offered: offered.as_ref().map(hex).unwrap_or_default(),
            fresh: hex(&fresh),
            location,
            timestamp,
        },
        Request::Disconnect { key, reason, .. } => Call::Disconnect { key, reason },
        Request::Logout { key, display } => Call::Logout {
            key,
            display,
            secret: String::new(),
        },
        Request::Online => Call::Online,
        Request::Append {
            id,
            timestamp,
            username,
            text,
        } => Call::Append {
            id,
            timestamp,
            username,
            text,
        },
        Request::Claim { .. }
        | Request::InUse { .. }
        | Request::Idle { .. }
        | Request::Release { .. }
        | Request::Alive { .. } => return Err(Outcome::Done),
    })
}

/// What the script's answer `value` to `call` means to the core; `None`
/// when it is not an answer to it.
pub(crate) fn outcome_of(call: &Call, value: &Value) -> Option<Outcome> {
    Some(match call {
        Call::Reserve { .. } => {
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
            Outcome::Claimed { claim, display }
        }
        Call::Disconnect { .. } => Outcome::Released {
            gone: number(value)? == 1,
        },
        Call::Logout { .. } => Outcome::Done,
        Call::Online => {
            let Value::Array(flat) = value else {
                return None;
            };
            let online = flat
                .chunks_exact(2)
                .filter_map(|pair| Some((text(&pair[0])?.into(), number(&pair[1])? as usize)))
                .collect();
            Outcome::Online(online)
        }
        Call::Append { .. } => Outcome::Appended {
            seq: number(value)?,
        },
    })
}

/// The secret a reserve's `outcome` gave this node's connection, if it
/// was given the name.
pub(crate) fn secret_claimed<'c>(call: &'c Call, outcome: &Outcome) -> Option<&'c str> {
    match (call, outcome) {
        (
            Call::Reserve { fresh, .. },
            Outcome::Claimed {
                claim: Claim::Fresh,
                ..
            },
        ) => Some(fresh),
        (
            Call::Reserve { offered, .. },
            Outcome::Claimed {
                claim: Claim::Reclaimed,
                ..
            },
        ) => Some(offered),
        _ => None,
    }
}

/// What the link tells the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToCore {
    /// The outcome of a request.
    Outcome(Ticket, Result<Outcome, Failed>),
    /// What another node did.
    Remote(Remote),
    /// Which names does this node hold? Answered with
    /// `RedisLink::handle_held_names`, with this number.
    HeldNamesWanted(u64),
}

impl ToCore {
    /// As the core task takes it; a question comes with where to answer.
    pub(crate) fn into_reply(
        self,
        answer: &smol::channel::Sender<(Vec<HeldName>, Option<Ticket>)>,
    ) -> Reply {
        match self {
            ToCore::Outcome(ticket, outcome) => Reply::Outcome(ticket, outcome),
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
