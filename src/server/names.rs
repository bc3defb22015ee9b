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

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::CryptoRng;

use super::cluster::Shared;
use super::logins::{Asked, Claim, Login, Logins};
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

    /// A cluster node's names.
    pub(super) fn shared_mut(&mut self) -> Option<&mut Shared> {
        match self {
            Names::Shared(shared) => Some(shared),
            Names::Local(_) => None,
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
    ///
    /// Each is held under its key by today's name rule (see `settle_keys`
    /// and `move_keys`), so that names saved under an older rule keep their
    /// owners.
    pub(super) fn restore_names(
        &mut self,
        names: Vec<StoredName>,
        alive_at: Option<u64>,
        now: Instant,
    ) {
        let wall_now = self.timestamp(now);
        let ttl = u64::try_from(self.config.login_ttl.as_millis()).unwrap_or(u64::MAX);
        let stopped = alive_at.unwrap_or(wall_now);
        let in_use_until = stopped.saturating_add(ttl);
        let (mut names, dropped) = settle_keys(names);
        let moved_to = self.move_keys(&names, dropped, |name| {
            let expires_at = name.expires_at.unwrap_or(in_use_until);
            (expires_at > wall_now).then_some(expires_at)
        });
        // Oldest first, so that the idle queue is in the order they expire.
        names.sort_by_key(|(_, n)| n.expires_at.unwrap_or(in_use_until));
        for (key, name) in names {
            let key: Arc<str> = key.into();
            let rekeyed = *key != name.key;
            let expires_at = name.expires_at.unwrap_or(in_use_until);
            if name.expires_at.is_none() && !rekeyed {
                self.record(Write::Idle {
                    key: key.clone(),
                    expires_at,
                });
            }
            if expires_at <= wall_now {
                // Released where it was saved: nothing was written under a
                // new key for it.
                if !moved_to.contains(&name.key) {
                    self.record(Write::Release {
                        key: name.key.into(),
                    });
                }
                continue;
            }
            let at = now + Duration::from_millis(expires_at - wall_now);
            let Some(logins) = self.names.logins_mut() else {
                return; // only a single node restores names
            };
            let serial = logins.restore(key.clone(), name.display.into(), name.secret, at);
            self.timers.schedule(at, Timer::LoginExpiry { key, serial });
        }
        self.release_over_ceiling(now);
    }

    /// Writes the moves of the names held on (`expires_at` says until when,
    /// `None`: not held) whose key changed, and the release of the saved
    /// keys of `dropped` names. Returns the keys names moved to.
    ///
    /// A name moves with its new claim and its idle time first, and the
    /// release of its saved key last, so that a crash in between loses
    /// nothing (the next restore settles the duplicate). A claim overwrites
    /// whatever was saved under its key: so a key a name moves to is never
    /// released, and a name saved under it moves first.
    fn move_keys(
        &mut self,
        names: &[(String, StoredName)],
        dropped: Vec<String>,
        expires_at: impl Fn(&StoredName) -> Option<u64>,
    ) -> HashSet<String> {
        let moves: Vec<(&str, &StoredName, u64)> = names
            .iter()
            .filter(|(key, name)| *key != name.key)
            .filter_map(|(key, name)| Some((key.as_str(), name, expires_at(name)?)))
            .collect();
        let moved_to: HashSet<String> = moves.iter().map(|(key, ..)| (*key).to_owned()).collect();
        for key in dropped {
            if !moved_to.contains(&key) {
                self.record(Write::Release { key: key.into() });
            }
        }
        for at in move_order(&moves) {
            let (key, name, expires_at) = moves[at];
            let key: Arc<str> = key.into();
            self.record(Write::Claim {
                key: key.clone(),
                display: name.display.as_str().into(),
                secret: name.secret,
            });
            self.record(Write::Idle { key, expires_at });
            if !moved_to.contains(&name.key) {
                self.record(Write::Release {
                    key: name.key.as_str().into(),
                });
            }
        }
        moved_to
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
            let key: Arc<str> = name.key.as_str().into();
            self.record(Write::Release { key: key.clone() });
            self.forget_name(&key, now);
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
        self.release_over_ceiling(now);
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
            self.record(Write::Release { key: key.clone() });
            self.forget_name(&key, now);
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
    fn release_over_ceiling(&mut self, now: Instant) {
        let max = self.config.max_held_names;
        while let Some((key, login)) = self
            .names
            .logins_mut()
            .and_then(|logins| logins.over_ceiling(max))
        {
            self.released_early(key, login, now);
        }
    }

    /// `login` was released before its TTL, over `max_held_names`.
    fn released_early(&mut self, key: Arc<str>, login: Login, now: Instant) {
        self.events.push_back(Event::LoginEvicted {
            username: login.display,
        });
        self.record(Write::Release { key: key.clone() });
        self.forget_name(&key, now);
    }
}

/// The names a store saved, each with its key by today's name rule
/// (`username::key_of_stored`; issue 21), which may not be the key it was
/// saved under; and the saved keys of the names to release: those the rule
/// now refuses, and of names that are now one, all but the one used last
/// (one in use counts as latest).
fn settle_keys(names: Vec<StoredName>) -> (Vec<(String, StoredName)>, Vec<String>) {
    // Idle names all wait the same TTL, so the later expiry was used later.
    // Among equals, the one already saved under the key stays (fewer
    // writes), then the lowest saved key (an order that does not depend on
    // the store's).
    let rank = |key: &str, name: &StoredName| {
        (
            name.expires_at.unwrap_or(u64::MAX),
            name.key == key,
            std::cmp::Reverse(name.key.clone()),
        )
    };
    let mut kept: BTreeMap<String, StoredName> = BTreeMap::new();
    let mut dropped = Vec::new();
    for name in names {
        let Ok(key) = crate::username::key_of_stored(&name.display) else {
            dropped.push(name.key);
            continue;
        };
        match kept.entry(key) {
            Entry::Vacant(entry) => {
                entry.insert(name);
            }
            Entry::Occupied(mut entry) => {
                let loser = if rank(entry.key(), &name) > rank(entry.key(), entry.get()) {
                    std::mem::replace(entry.get_mut(), name)
                } else {
                    name
                };
                dropped.push(loser.key);
            }
        }
    }
    (kept.into_iter().collect(), dropped)
}

/// The order to write `moves` (new key, name) in: each after the move of
/// the name saved under the key it moves to, whose row its claim
/// overwrites. (Names that would swap keys, which no rule change so far
/// makes, are written in an arbitrary order.)
fn move_order(moves: &[(&str, &StoredName, u64)]) -> Vec<usize> {
    let saved_under: HashMap<&str, usize> = moves
        .iter()
        .enumerate()
        .map(|(at, (_, name, _))| (name.key.as_str(), at))
        .collect();
    let mut placed = vec![false; moves.len()];
    let mut order = Vec::with_capacity(moves.len());
    for start in 0..moves.len() {
        // This move, the one saved where it moves to, and so on: the last
        // goes first.
        let mut chain = Vec::new();
        let mut next = Some(start);
        while let Some(at) = next.filter(|&at| !placed[at]) {
            placed[at] = true;
            chain.push(at);
            next = saved_under.get(moves[at].0).copied();
        }
        order.extend(chain.into_iter().rev());
    }
    order
}
