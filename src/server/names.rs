//! Who decides names, and where what must outlive the process goes: the
//! ways a core keeps names, as data.
//!
//! - A single node decides names itself ([`Names::Local`]): its `logins`
//!   table holds every reservation, idle ones expire on its own timers, and
//!   past `max_held_names` the longest idle is released early. With a store
//!   (`Server::restore`) every fact also leaves as a request through the
//!   seam; without one (`Server::new`) nothing is kept and every write is
//!   settled at once.
//! - One node of a cluster asks a shared store ([`Names::Shared`], see
//!   `cluster`): the store decides, and keeps names for every node.
//!
//! The single node's way of claiming, releasing and expiring names lives
//! here; the cluster's in `cluster`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::CryptoRng;

use super::cluster::Shared;
use super::login::Asked;
use super::logins::{Claim, Login, Logins};
use super::seam::{PendingLogin, Seam, Ticket, Write};
use super::snapshot::StoredName;
use super::timers::Timer;
use super::{Event, Limit, Server};
use crate::id;
use crate::protocol::LeaveReason;

/// Who decides names.
#[derive(Debug)]
pub(super) enum Names {
    /// This node decides.
    Local(Local),
    /// A store shared by several nodes decides.
    Shared(Shared),
}

/// A single node's names.
#[derive(Debug, Default)]
pub(super) struct Local {
    /// Every reservation, held or idle.
    pub(super) logins: Logins,
    /// Where facts go to be made durable (`Server::restore`); `None`
    /// (`Server::new`): nothing is kept.
    pub(super) store: Option<Seam>,
}

impl Names {
    /// A single node that keeps what it decides in a store.
    pub(super) fn with_store() -> Names {
        Names::Local(Local {
            logins: Logins::default(),
            store: Some(Seam::default()),
        })
    }

    /// One node of a cluster.
    pub(super) fn shared() -> Names {
        Names::Shared(Shared::default())
    }

    /// The seam to the store, if there is a store.
    pub(super) fn seam(&self) -> Option<&Seam> {
        match self {
            Names::Local(local) => local.store.as_ref(),
            Names::Shared(shared) => Some(&shared.seam),
        }
    }

    pub(super) fn seam_mut(&mut self) -> Option<&mut Seam> {
        match self {
            Names::Local(local) => local.store.as_mut(),
            Names::Shared(shared) => Some(&mut shared.seam),
        }
    }

    /// The reservations of a single node.
    pub(super) fn logins(&self) -> Option<&Logins> {
        match self {
            Names::Local(local) => Some(&local.logins),
            Names::Shared(_) => None,
        }
    }

    pub(super) fn logins_mut(&mut self) -> Option<&mut Logins> {
        match self {
            Names::Local(local) => Some(&mut local.logins),
            Names::Shared(_) => None,
        }
    }
}

impl<R: CryptoRng> Server<R> {
    /// Asks the driver to make `write` durable (a server with a store);
    /// `None` when nothing is kept and the fact is settled already.
    pub(super) fn record(&mut self, write: Write) -> Option<Ticket<Write>> {
        self.names.seam_mut().map(|seam| seam.write(write))
    }

    /// Takes back the names a store held at start-up: those whose TTL ran
    /// out meanwhile are released, those in use when the server stopped
    /// count as released at `alive_at`, the last instant it was known alive.
    pub(super) fn restore_names(
        &mut self,
        mut names: Vec<StoredName>,
        alive_at: Option<u64>,
        now: Instant,
    ) {
        let wall_now = self.timestamp(now);
        let ttl = u64::try_from(self.config.login_ttl.as_millis()).unwrap_or(u64::MAX);
        let stopped = alive_at.unwrap_or(wall_now);
        // Oldest first, so that the idle queue is in the order they expire.
        names.sort_by_key(|n| n.expires_at.unwrap_or(stopped.saturating_add(ttl)));
        for name in names {
            let key: Arc<str> = name.key.into();
            let expires_at = match name.expires_at {
                Some(at) => at,
                None => {
                    let at = stopped.saturating_add(ttl);
                    self.record(Write::Idle {
                        key: key.clone(),
                        expires_at: at,
                    });
                    at
                }
            };
            if expires_at <= wall_now {
                self.record(Write::Release { key });
                continue;
            }
            let at = now + Duration::from_millis(expires_at - wall_now);
            let Some(logins) = self.names.logins_mut() else {
                return; // only a single node restores names
            };
            let serial = logins.restore(key.clone(), name.display.into(), name.secret, at);
            self.timers.schedule(at, Timer::LoginExpiry { key, serial });
        }
        self.release_over_ceiling();
    }

    /// A login on a single node, valid and within the limit of wrong
    /// secrets: this node decides whether the name is free, reclaimed with
    /// its secret, or taken. With a store, the login is announced once its
    /// claim is durable, and the connection's frames wait meanwhile.
    pub(super) fn claim_locally(&mut self, asked: Asked<'_>, now: Instant) {
        let guesser = asked.guesser();
        let Asked {
            conn,
            reply_to,
            name,
            secret,
            since,
            address,
        } = asked;
        let Some(logins) = self.names.logins_mut() else {
            return;
        };
        // A reservation that ran out before a timer released it (the driver
        // woke late) is released here, and reported like any other expiry.
        let expired = logins.take_expired(&name.key, now);
        let fresh = !logins.is_held(&name.key, now);
        if let Some(expired) = expired {
            self.events.push_back(Event::LoginExpired {
                username: expired.display,
            });
            self.record(Write::Release {
                key: name.key.as_str().into(),
            });
        }
        if fresh && let Err(wait) = self.new_names.check(&address, now) {
            return self.refuse_login(conn, reply_to, Limit::NewNames, wait);
        }
        let Some(logins) = self.names.logins_mut() else {
            return;
        };
        let rng = &mut self.rng;
        let claimed = logins.claim(&name.key, &name.display, secret, now, || id::secret(rng));
        let (claim, display) = (claimed.claim, claimed.display);
        if claim == Claim::Fresh {
            self.new_names.took(&address, now);
        }
        if claim == Claim::Taken {
            return self.refuse_taken(conn, reply_to, display, guesser, now);
        }
        let key: Arc<str> = name.key.into();
        let Some(connection) = self.connections.get_mut(conn) else {
            return; // handle_frame checked the connection
        };
        connection.login = Some((key.clone(), display.clone()));
        connection.login_deadline = None;
        let write = match claim {
            Claim::Fresh => Some(Write::Claim {
                key: key.clone(),
                display: display.clone(),
                secret: claimed.hash,
            }),
            _ if claimed.was_idle => Some(Write::InUse { key: key.clone() }),
            _ => None,
        };
        let pending = PendingLogin {
            conn,
            reply_to: reply_to.map(str::to_owned),
            since,
            fresh: claim == Claim::Fresh,
            key,
            display,
            secret: claimed.secret,
        };
        match write.and_then(|write| self.record(write)) {
            Some(ticket) => {
                if let Some(connection) = self.connections.get_mut(conn) {
                    connection.login_pending = true;
                }
                if let Some(seam) = self.names.seam_mut() {
                    seam.logins.insert(ticket, pending);
                }
            }
            None => self.announce_login(pending, now),
        }
    }

    /// A connection of a single node holding `key` closed: the name waits
    /// out its TTL if that was its last connection, and everyone is told
    /// the user left, unless the login was never announced (still being
    /// saved).
    pub(super) fn release_locally(
        &mut self,
        key: Arc<str>,
        display: Arc<str>,
        location: Arc<str>,
        announced: bool,
        leave: LeaveReason,
        now: Instant,
    ) {
        let ttl = self.config.login_ttl;
        let Some(logins) = self.names.logins_mut() else {
            return;
        };
        let Some((at, serial)) = logins.release(&key, now, ttl) else {
            return; // another connection still holds it
        };
        self.went_idle(key, at, serial, now);
        if announced {
            if !self.shutting_down {
                self.broadcast_leave(&display, leave, &[], now);
            }
            self.events.push_back(Event::Left {
                username: display,
                location,
                reason: leave,
            });
        }
        self.release_over_ceiling();
    }

    /// A login that could not be saved is given back: a fresh one as if it
    /// had never been, a reclaimed one goes idle again.
    pub(super) fn give_back(&mut self, key: Arc<str>, fresh: bool, now: Instant) {
        let ttl = self.config.login_ttl;
        let Some(logins) = self.names.logins_mut() else {
            return;
        };
        if let Some((at, serial)) = logins.release(&key, now, ttl) {
            if fresh {
                // Never announced, never saved: as if it had not happened.
                logins.remove(&key);
            } else {
                self.went_idle(key, at, serial, now);
            }
        }
    }

    /// The expiry timer of reservation `serial` of `key` came due.
    pub(super) fn expire_login(&mut self, key: Arc<str>, serial: u64, now: Instant) {
        let Some(logins) = self.names.logins_mut() else {
            return;
        };
        if let Some(login) = logins.expire(&key, serial, now) {
            self.events.push_back(Event::LoginExpired {
                username: login.display,
            });
            self.record(Write::Release { key });
        }
    }

    /// Reservation `serial` of `key` went idle at `now`, until `at`: its
    /// expiry is timed and recorded.
    fn went_idle(&mut self, key: Arc<str>, at: Instant, serial: u64, now: Instant) {
        self.timers.schedule(
            at,
            Timer::LoginExpiry {
                key: key.clone(),
                serial,
            },
        );
        let expires_at = self.expires_at(now);
        self.record(Write::Idle { key, expires_at });
    }

    /// When a login that goes idle at `now` expires, in wall-clock ms.
    fn expires_at(&self, now: Instant) -> u64 {
        let ttl = u64::try_from(self.config.login_ttl.as_millis()).unwrap_or(u64::MAX);
        self.timestamp(now).saturating_add(ttl)
    }

    /// Releases the longest idle names while more than `max_held_names`
    /// are idle.
    fn release_over_ceiling(&mut self) {
        let max = self.config.max_held_names;
        while let Some((key, login)) = self
            .names
            .logins_mut()
            .and_then(|logins| logins.over_ceiling(max))
        {
            self.released_early(key, login);
        }
    }

    /// `login` was released before its TTL, over `max_held_names`.
    fn released_early(&mut self, key: Arc<str>, login: Login) {
        self.events.push_back(Event::LoginEvicted {
            username: login.display,
        });
        self.record(Write::Release { key });
    }
}
