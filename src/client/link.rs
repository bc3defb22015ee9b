//! The connection: connecting, logging in, staying online (keepalive),
//! losing it and trying again. Each state of the link owns the data that
//! only it needs, so that a login's leftovers cannot outlive it.

use std::time::Instant;

use rand::Rng;

use super::v3::LoginRooms;
use super::{Action, Client, ClientConfig, Event, Exit, Line, seconds};
use crate::id;
use crate::protocol::{ClientMessage, SUBPROTOCOL_V2, SUBPROTOCOL_V3, Version};

/// What chat-cli offers in its handshake: v3, and v2 for a server that
/// does not speak v3 (a node of a cluster, an older server).
pub const OFFER_V3: &str = "wschat.v3, wschat.v2";

/// The state of the connection.
#[derive(Debug)]
pub(super) enum Link {
    /// `Action::Connect` is out; login must be answered by `deadline`.
    Connecting {
        deadline: Instant,
    },
    /// Connected; the login is sent.
    LoggingIn(LoggingIn),
    /// Logged in.
    Online(Online),
    /// Disconnected; the next attempt is at `retry_at`.
    Waiting {
        retry_at: Instant,
    },
    /// Waiting for the user to give a name: none was given, or the one
    /// typed at the prompt was refused. With `open`, the connection made
    /// before asking is still up, and the login goes on it.
    AskingName {
        open: bool,
    },
    Done,
}

/// A login sent and not answered yet.
#[derive(Debug)]
pub(super) struct LoggingIn {
    /// Connecting plus logging in must be done by then.
    pub(super) deadline: Instant,
    /// v2: the `since` this login sent.
    pub(super) since: Option<u64>,
    /// A `loginBroadcast` with our own name that came while logging in: our
    /// own join (dropped on success) or, if the login fails, someone else's.
    pub(super) held_join: Option<Line>,
    /// v2: the name and secret of a `loginMessage`, until the `history`
    /// that follows it completes the login.
    pub(super) accepted: Option<Accepted>,
    /// v2: what the server said while we were logging in, with its `seq`,
    /// shown after the catch-up so that everything appears in order.
    pub(super) held: Vec<(Option<u64>, Line)>,
    /// The connection was made before the user gave the name: the server
    /// may have closed it meanwhile (its own login timeout), so losing it
    /// before an answer means connecting again, not failing.
    pub(super) opened_before_name: bool,
    /// v3: what `rooms` said, applied once the login completes.
    pub(super) rooms: Option<LoginRooms>,
}

/// v2: what a `loginMessage` said.
#[derive(Debug)]
pub(super) struct Accepted {
    pub(super) username: String,
    pub(super) secret: String,
}

/// Logged in on this connection.
#[derive(Debug)]
pub(super) struct Online {
    /// When the login succeeded: a connection up this long is stable.
    pub(super) up_since: Instant,
    pub(super) last_heard: Instant,
    /// A keepalive ping is out, sent then.
    pub(super) ping_sent: Option<Instant>,
    /// v2: our `logout`, waiting for the server to confirm it.
    pub(super) logout: Option<Logout>,
    /// v2: the id of the `listUsers` sent after logging in to fill the
    /// roster; its answer is not shown (a `/who`'s is).
    pub(super) roster_request: Option<String>,
}

/// v2: a `logout` sent.
#[derive(Debug)]
pub(super) struct Logout {
    pub(super) id: String,
    /// When to stop waiting for the server to confirm it.
    pub(super) deadline: Instant,
}

/// Reconnecting after a connection was lost: spans the attempts (each a
/// `Connecting`, maybe a `LoggingIn`, then a `Waiting`) until one stays up.
#[derive(Debug, Default)]
pub(super) struct Retries {
    /// Failed attempts since the last stable connection.
    pub(super) failures: u32,
    /// Why the last attempt failed, once said: the same failure again is
    /// not said again.
    pub(super) last_said: Option<String>,
}

impl Link {
    /// A connection is open, or being opened.
    pub(super) fn is_connected(&self) -> bool {
        matches!(
            self,
            Link::Connecting { .. }
                | Link::LoggingIn(_)
                | Link::Online(_)
                | Link::AskingName { open: true }
        )
    }

    /// When the link needs `handle_timeout`; `None` while it waits for
    /// nothing but the user, and once done.
    pub(super) fn deadline(&self, config: &ClientConfig) -> Option<Instant> {
        match self {
            Link::Connecting { deadline } | Link::LoggingIn(LoggingIn { deadline, .. }) => {
                Some(*deadline)
            }
            Link::Online(Online {
                last_heard,
                ping_sent: None,
                ..
            }) => Some(*last_heard + config.keepalive_idle),
            Link::Online(Online {
                ping_sent: Some(at),
                ..
            }) => Some(*at + config.keepalive_timeout),
            Link::Waiting { retry_at } => Some(*retry_at),
            Link::AskingName { .. } | Link::Done => None,
        }
    }
}

impl<R: Rng> Client<R> {
    // ---- inputs: the connection ----

    /// The WebSocket handshake of the connection asked for succeeded, and
    /// the server selected `subprotocol` (the `Sec-WebSocket-Protocol` of
    /// its `101` response, `None` without one): `wschat.v3` means v3,
    /// `wschat.v2` v2, anything else v1.
    ///
    /// Without a name yet, asks the user for one now that the server is
    /// known to be there.
    pub fn handle_connected(&mut self, subprotocol: Option<&str>, _now: Instant) {
        let Link::Connecting { deadline } = self.link else {
            return;
        };
        self.version = match subprotocol {
            Some(SUBPROTOCOL_V3) => Version::V3,
            Some(SUBPROTOCOL_V2) => Version::V2,
            _ => Version::V1,
        };
        if self.config.username.is_empty() {
            self.link = Link::AskingName { open: true };
            self.events.push_back(Event::AskName(None));
            return;
        }
        self.log_in(deadline, false);
    }

    /// Sends the login on the connection just made (or kept while the user
    /// chose a name).
    pub(super) fn log_in(&mut self, deadline: Instant, opened_before_name: bool) {
        let since = match self.version {
            Version::V2 | Version::V3 => self.seen.last_seq,
            Version::V1 => None,
        };
        self.link = Link::LoggingIn(LoggingIn {
            deadline,
            since,
            held_join: None,
            accepted: None,
            held: Vec::new(),
            opened_before_name,
            rooms: None,
        });
        let rooms = (self.version == Version::V3).then(|| self.rooms.since_list());
        let login = ClientMessage::Login {
            id: id::message_id(&mut self.rng),
            username: self.config.username.clone(),
            secret: self.secret.clone(),
            since,
            epoch: since.and(self.seen.epoch.clone()),
            rooms: rooms.filter(|rooms| !rooms.is_empty()),
        };
        self.send(&login);
    }

    /// The server completed the upgrade without selecting the subprotocol
    /// offered, and the WebSocket library gave up on that connection
    /// (tungstenite does, although RFC 6455 allows it): the server speaks
    /// v1 only. Connects again at once, offering nothing.
    pub fn handle_subprotocol_refused(&mut self, _now: Instant) {
        let Link::Connecting { .. } = self.link else {
            return;
        };
        self.offer = Version::V1;
        self.actions
            .push_back(Action::Connect { subprotocol: None });
    }

    /// A ping, a pong or any other frame arrived: the server is there.
    pub fn handle_activity(&mut self, now: Instant) {
        self.heard(now);
    }

    /// The connection (or the attempt to make one) failed or closed;
    /// `reason` says why, e.g. "connection refused".
    pub fn handle_disconnected(&mut self, reason: &str, now: Instant) {
        if let Link::AskingName { open } = &mut self.link {
            // Made before asking for the name: another is made once the
            // name is given.
            *open = false;
        } else if self.link.is_connected() {
            self.lost(reason, now);
        }
    }

    /// The connection could not be made because no chat server answered
    /// at the address: nothing listens there (the connection was refused),
    /// the host is unknown or unreachable, or the web server there refused
    /// the WebSocket upgrade. As [`handle_disconnected`], and before the
    /// first login the user is told to check that chat-server runs there.
    ///
    /// [`handle_disconnected`]: Self::handle_disconnected
    pub fn handle_unreachable(&mut self, reason: &str, now: Instant) {
        if self.been_online() {
            return self.handle_disconnected(reason, now);
        }
        let reason = format!("{reason}; check that chat-server is running at that address");
        self.handle_disconnected(&reason, now);
    }

    // ---- internals ----

    pub(super) fn connect(&mut self, now: Instant) {
        self.link = Link::Connecting {
            deadline: now + self.config.login_timeout,
        };
        let subprotocol = match self.offer {
            Version::V3 => Some(OFFER_V3),
            Version::V2 => Some(SUBPROTOCOL_V2),
            Version::V1 => None,
        };
        self.actions.push_back(Action::Connect { subprotocol });
    }

    pub(super) fn heard(&mut self, now: Instant) {
        if let Link::Online(online) = &mut self.link {
            online.last_heard = now;
            online.ping_sent = None;
        }
    }

    /// Our `logout`, while it waits for the server to confirm it.
    pub(super) fn logout(&self) -> Option<&Logout> {
        match &self.link {
            Link::Online(online) => online.logout.as_ref(),
            _ => None,
        }
    }

    pub(super) fn logging_out(&self) -> bool {
        self.logout().is_some()
    }

    /// The link's deadlines: the login's, the keepalive's, the next retry.
    pub(super) fn link_timeout(&mut self, now: Instant) {
        match &mut self.link {
            Link::Connecting { deadline } | Link::LoggingIn(LoggingIn { deadline, .. })
                if now >= *deadline =>
            {
                self.actions.push_back(Action::Close);
                let reason = format!("no answer within {}", seconds(self.config.login_timeout));
                self.lost(&reason, now);
            }
            Link::Online(Online {
                last_heard,
                ping_sent: ping_sent @ None,
                ..
            }) if now >= *last_heard + self.config.keepalive_idle => {
                *ping_sent = Some(now);
                self.actions.push_back(Action::Ping);
            }
            Link::Online(Online {
                ping_sent: Some(at),
                ..
            }) if now >= *at + self.config.keepalive_timeout => {
                self.actions.push_back(Action::Close);
                let reason = format!(
                    "the server did not answer a ping within {}",
                    seconds(self.config.keepalive_timeout)
                );
                self.lost(&reason, now);
            }
            Link::Waiting { retry_at } if now >= *retry_at => self.connect(now),
            _ => {}
        }
    }

    /// The connection is gone: give up before the first login, else retry.
    pub(super) fn lost(&mut self, reason: &str, now: Instant) {
        // What the connection held (a login's leftovers, a logout waited
        // for) goes with it.
        let was = std::mem::replace(&mut self.link, Link::Done);
        // Requests go unanswered with the connection.
        self.requests.clear();
        // The next connection's rate limit starts afresh.
        self.pacing.reconnected();
        if let Link::LoggingIn(LoggingIn {
            opened_before_name: true,
            ..
        }) = was
            && !self.been_online()
        {
            // Most likely the server gave up on it while the user typed.
            return self.connect(now);
        }
        if !self.been_online() {
            let reason = match was {
                Link::Connecting { .. } => {
                    format!("could not connect to {}: {reason}", self.config.server)
                }
                _ => format!(
                    "the connection to {} closed before the login was answered: {reason}",
                    self.config.server
                ),
            };
            return self.finish(Exit::Failure(reason));
        }
        if let Link::Online(Online {
            logout: Some(_), ..
        }) = was
        {
            return self.finish(Exit::Failure(format!(
                "the connection dropped before the server confirmed the logout ({reason}); \
                 the name may still be reserved"
            )));
        }
        if let Link::Online(Online { up_since, .. }) = was
            && now.saturating_duration_since(up_since) >= self.config.stable_after
        {
            self.retries.failures = 0;
        }
        if matches!(was, Link::Online(_)) {
            self.carry_roster();
        }
        match self.version {
            // The catch-up after the next login will tell.
            Version::V2 | Version::V3 => self.outbox.park_in_flight(),
            Version::V1 => {
                for text in self.outbox.take_in_flight() {
                    self.maybe_lost(&text);
                }
            }
        }
        let delay = self
            .config
            .backoff
            .delay(self.retries.failures, &mut self.rng);
        self.retries.failures = self.retries.failures.saturating_add(1);
        self.link = Link::Waiting {
            retry_at: now + delay,
        };
        // One line per change of state, not one per attempt: while the
        // server stays down for the same reason, nothing more is said until
        // it is back (or fails otherwise).
        let status = match was {
            Link::Online(_) => {
                self.retries.last_said = None;
                Some(format!(
                    "connection lost ({reason}); reconnecting in {}",
                    seconds(delay)
                ))
            }
            _ if self.retries.last_said.as_deref() == Some(reason) => None,
            _ => {
                self.retries.last_said = Some(reason.to_owned());
                Some(format!(
                    "could not reconnect ({reason}); still trying, at most {} apart",
                    seconds(self.config.backoff.max)
                ))
            }
        };
        if let Some(status) = status {
            self.show(Line::Status(status));
        }
        self.check_ending();
    }
}
