//! The reservation of names: who holds which name, with which secret, and
//! until when.
//!
//! Secrets are kept only as SHA-256 hashes: a secret is 144 random bits,
//! so a plain hash cannot be reversed by guessing, and nothing the server
//! holds (or will store on disk) gives a name away. A reclaiming login gets
//! back the secret it gave; only a fresh one is told a new secret.
//!
//! Names held without any open connection are counted, and past a ceiling
//! the one idle longest is released early: otherwise a host that connects,
//! logs in and leaves in a loop would hold names (and memory) without bound.
//! Idle logins all wait the same TTL, so they expire in the order they went
//! idle: a queue in that order finds the longest idle at its front.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ConnectionId;
use crate::username::Username;

/// What was decided of a name a login asked for, by this node or by a
/// shared store (`Answer::Claimed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// It was free: reserved now, with the new secret.
    Fresh,
    /// It was held, and the secret offered was its own.
    Reclaimed,
    /// It is held, and no secret or a wrong one was offered.
    Taken,
}

/// A name this node's open connections hold (`Server::held_names`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldName {
    /// The name's key (see `Username::key`).
    pub key: Arc<str>,
    /// The name as everyone sees it.
    pub display: Arc<str>,
    /// The hash of its secret.
    pub secret: SecretHash,
    /// How many of this node's connections hold it (at least one).
    pub connections: usize,
}

/// The SHA-256 of a login secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    pub fn of(secret: &str) -> SecretHash {
        SecretHash(Sha256::digest(secret.as_bytes()).into())
    }

    /// Whether `secret` is the one hashed, in constant time.
    fn matches(&self, secret: &str) -> bool {
        bool::from(SecretHash::of(secret).0.ct_eq(&self.0))
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash(…)")
    }
}

/// One reserved name.
#[derive(Debug)]
pub(crate) struct Login {
    /// The name as first typed; what everyone sees.
    pub(crate) display: Arc<str>,
    pub(crate) secret: SecretHash,
    /// Open connections holding this login; it never expires while > 0.
    pub(crate) connections: usize,
    /// Set when the last connection closed.
    pub(crate) expires_at: Option<Instant>,
    /// Distinguishes this reservation from a later one of the same name, so
    /// a stale expiry timer cannot release the newer one.
    pub(crate) serial: u64,
    /// Names this login's current spell without a connection in the idle
    /// queue (see `Logins::idle`).
    idle_spell: u64,
}

impl Login {
    fn is_expired(&self, now: Instant) -> bool {
        self.connections == 0 && self.expires_at.is_some_and(|at| at <= now)
    }
}

/// What a claim gave.
#[derive(Debug)]
pub(crate) struct Claimed {
    pub(crate) claim: Claim,
    /// The name as everyone sees it.
    pub(crate) display: Arc<str>,
    /// The secret to tell the claimant (none when `Taken`).
    pub(crate) secret: String,
    /// Its hash, as kept.
    pub(crate) hash: SecretHash,
    /// Whether no connection held the login before this claim.
    pub(crate) was_idle: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Logins {
    by_key: HashMap<Arc<str>, Login>,
    next_serial: u64,
    /// Logins as they went idle, oldest first, as (key, idle spell).
    /// Entries of spells since ended (the login was reclaimed, released or
    /// went idle again later) are stale and skipped.
    idle: VecDeque<(Arc<str>, u64)>,
    next_spell: u64,
    /// Logins with no open connection.
    idle_count: usize,
}

impl Logins {
    /// Whether `key` is reserved at `now` (an expired reservation is not).
    pub(crate) fn is_held(&self, key: &str, now: Instant) -> bool {
        self.by_key.get(key).is_some_and(|l| !l.is_expired(now))
    }

    /// Claims `key` for one more connection. `new_secret` is only called for
    /// a fresh login. Expiry is judged at `now`, so the answer does not depend
    /// on when `handle_timeout` last ran.
    pub(crate) fn claim(
        &mut self,
        key: &str,
        display: &str,
        secret: Option<&str>,
        now: Instant,
        new_secret: impl FnOnce() -> String,
    ) -> Claimed {
        let held = self.by_key.get(key).filter(|l| !l.is_expired(now));
        let claim = match (held, secret) {
            (None, _) => Claim::Fresh,
            (Some(login), Some(given)) if login.secret.matches(given) => Claim::Reclaimed,
            (Some(_), _) => Claim::Taken,
        };
        let secret = match (claim, secret) {
            (Claim::Fresh, _) => {
                let secret = new_secret();
                self.put(key.into(), display.into(), SecretHash::of(&secret));
                secret
            }
            (Claim::Reclaimed, Some(given)) => given.to_owned(),
            _ => String::new(),
        };
        let login = self
            .by_key
            .get_mut(key)
            .expect("the login was found or inserted above");
        let was_idle = login.connections == 0;
        if claim != Claim::Taken {
            if login.connections == 0 && claim == Claim::Reclaimed {
                self.idle_count -= 1;
            }
            login.connections += 1;
            login.expires_at = None;
        }
        Claimed {
            claim,
            display: login.display.clone(),
            secret,
            hash: login.secret,
            was_idle,
        }
    }

    /// Reserves `key` afresh, for a connection about to hold it,
    /// replacing any earlier (expired) reservation.
    fn put(&mut self, key: Arc<str>, display: Arc<str>, secret: SecretHash) -> &mut Login {
        self.remove(&key);
        self.next_serial += 1;
        let login = Login {
            display,
            secret,
            connections: 0,
            expires_at: None,
            serial: self.next_serial,
            idle_spell: 0,
        };
        self.by_key.entry(key).insert_entry(login).into_mut()
    }

    /// Reserves `key` as a store held it: idle, until `expires_at`.
    pub(crate) fn restore(
        &mut self,
        key: Arc<str>,
        display: Arc<str>,
        secret: SecretHash,
        expires_at: Instant,
    ) -> u64 {
        self.next_spell += 1;
        let spell = self.next_spell;
        let login = self.put(key.clone(), display, secret);
        login.expires_at = Some(expires_at);
        login.idle_spell = spell;
        let serial = login.serial;
        self.idle_count += 1;
        self.idle.push_back((key, spell));
        serial
    }

    /// One connection holding `key` closed. Returns when the login expires
    /// if that was its last connection.
    pub(crate) fn release(
        &mut self,
        key: &Arc<str>,
        now: Instant,
        ttl: Duration,
    ) -> Option<(Instant, u64)> {
        let login = self.by_key.get_mut(key)?;
        if login.connections == 0 {
            return None; // not held by any connection: nothing to release
        }
        login.connections -= 1;
        if login.connections > 0 {
            return None;
        }
        let at = now + ttl;
        login.expires_at = Some(at);
        self.next_spell += 1;
        login.idle_spell = self.next_spell;
        let serial = login.serial;
        self.idle_count += 1;
        self.idle.push_back((key.clone(), self.next_spell));
        self.compact();
        Some((at, serial))
    }

    /// The idle login that has waited longest, released, if more than `max`
    /// logins are idle (`max` 0: no ceiling).
    pub(crate) fn over_ceiling(&mut self, max: usize) -> Option<(Arc<str>, Login)> {
        if max == 0 || self.idle_count <= max {
            return None;
        }
        while let Some((key, spell)) = self.idle.pop_front() {
            if self.is_current(&key, spell) {
                let login = self.remove(&key)?;
                return Some((key, login));
            }
        }
        None
    }

    /// Removes the login of `key` if it has expired by `now`, whether or not
    /// its expiry timer has fired yet.
    pub(crate) fn take_expired(&mut self, key: &str, now: Instant) -> Option<Login> {
        if self.by_key.get(key)?.is_expired(now) {
            self.remove(key)
        } else {
            None
        }
    }

    /// Removes the login if reservation `serial` of `key` has expired.
    pub(crate) fn expire(&mut self, key: &str, serial: u64, now: Instant) -> Option<Login> {
        let login = self.by_key.get(key)?;
        if login.serial != serial || !login.is_expired(now) {
            return None;
        }
        self.remove(key)
    }

    /// Whether reservation `serial` of `key` is idle and expires at `at`:
    /// whether an expiry timer set for then is still wanted.
    pub(crate) fn expires_then(&self, key: &str, serial: u64, at: Instant) -> bool {
        self.by_key.get(key).is_some_and(|login| {
            login.serial == serial && login.connections == 0 && login.expires_at == Some(at)
        })
    }

    /// Releases `key` at once (a v2 `logout`, or an expiry): the name is
    /// free and the secret worthless.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Login> {
        let login = self.by_key.remove(key)?;
        if login.connections == 0 {
            self.idle_count -= 1;
        }
        Some(login)
    }

    /// Everyone with at least one open connection, with how many, ordered by
    /// name as readers expect (`username::fold`: by letters, not by key,
    /// which spells "user00" as "userOO"), so the answer does not depend
    /// on hashing.
    pub(crate) fn online(&self) -> Vec<(Arc<str>, usize)> {
        let mut online: Vec<(&Arc<str>, &Login)> = self
            .by_key
            .iter()
            .filter(|(_, login)| login.connections > 0)
            .collect();
        online.sort_by_cached_key(|(_, login)| crate::username::fold(&login.display));
        online
            .into_iter()
            .map(|(_, login)| (login.display.clone(), login.connections))
            .collect()
    }

    /// The names held by at least one open connection, ordered by key.
    pub(crate) fn held(&self) -> Vec<HeldName> {
        let mut held: Vec<HeldName> = self
            .by_key
            .iter()
            .filter(|(_, login)| login.connections > 0)
            .map(|(key, login)| HeldName {
                key: key.clone(),
                display: login.display.clone(),
                secret: login.secret,
                connections: login.connections,
            })
            .collect();
        held.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        held
    }

    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    /// The name keyed `key` as everyone sees it, if reserved.
    pub(crate) fn display(&self, key: &str) -> Option<Arc<str>> {
        self.by_key.get(key).map(|login| login.display.clone())
    }

    /// Whether an open connection holds `key`.
    pub(crate) fn is_online(&self, key: &str) -> bool {
        self.by_key.get(key).is_some_and(|l| l.connections > 0)
    }

    /// Every reservation: key, display name, whether online.
    pub(crate) fn all(&self) -> impl Iterator<Item = (&Arc<str>, &Arc<str>, bool)> {
        self.by_key
            .iter()
            .map(|(key, login)| (key, &login.display, login.connections > 0))
    }

    /// Logins held with no open connection.
    pub(crate) fn idle_len(&self) -> usize {
        self.idle_count
    }

    /// Drops stale entries once they outnumber the live ones, so that a name
    /// reclaimed and released again and again cannot grow the queue.
    fn compact(&mut self) {
        if self.idle.len() > 2 * self.idle_count + 64 {
            let mut idle = std::mem::take(&mut self.idle);
            idle.retain(|(key, spell)| self.is_current(key, *spell));
            self.idle = idle;
        }
    }

    /// Whether the idle queue's entry (`key`, `spell`) is the login's
    /// current spell without a connection.
    fn is_current(&self, key: &str, spell: u64) -> bool {
        self.by_key
            .get(key)
            .is_some_and(|l| l.idle_spell == spell && l.connections == 0)
    }
}

/// A login asked for, valid and within the limit of wrong secrets: whether
/// its name is free is for this node (`names`) or the shared store
/// (`cluster`) to decide.
pub(super) struct Asked<'a> {
    pub(super) conn: ConnectionId,
    pub(super) reply_to: Option<&'a str>,
    pub(super) name: Username,
    /// The secret given, to reclaim the name.
    pub(super) secret: Option<&'a str>,
    pub(super) since: Option<u64>,
    /// What the per-address limits count the connection under.
    pub(super) address: Arc<str>,
}

impl Asked<'_> {
    /// The address to count a wrong secret against, if one was given.
    pub(super) fn guesser(&self) -> Option<Arc<str>> {
        self.secret.map(|_| self.address.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(n: u8) -> impl FnOnce() -> String {
        move || format!("secret-{n}")
    }

    #[test]
    fn a_secret_is_kept_only_as_its_hash_and_reclaims_the_name() {
        let now = Instant::now();
        let mut logins = Logins::default();
        let fresh = logins.claim("a", "A", None, now, secret(1));
        assert_eq!(
            (fresh.claim, fresh.secret.as_str()),
            (Claim::Fresh, "secret-1")
        );
        assert_eq!(logins.by_key["a"].secret, SecretHash::of("secret-1"));
        let taken = logins.claim("a", "a", Some("secret-2"), now, secret(9));
        assert_eq!((taken.claim, taken.secret.as_str()), (Claim::Taken, ""));
        let again = logins.claim("a", "a", Some("secret-1"), now, secret(9));
        assert_eq!((again.claim, &*again.display), (Claim::Reclaimed, "A"));
        assert_eq!(again.secret, "secret-1");
    }

    #[test]
    fn past_the_ceiling_the_longest_idle_login_goes_first() {
        let now = Instant::now();
        let ttl = Duration::from_secs(600);
        let mut logins = Logins::default();
        let keys: Vec<Arc<str>> = ["a", "b", "c"].map(Arc::from).into();
        for (n, key) in keys.iter().enumerate() {
            logins.claim(key, key, None, now, secret(n as u8));
        }
        // b goes idle first, then a, then c; b comes back and leaves again.
        for key in [&keys[1], &keys[0], &keys[2]] {
            logins.release(key, now, ttl);
        }
        let b = logins.claim("b", "b", Some("secret-1"), now, secret(9));
        assert_eq!(b.claim, Claim::Reclaimed);
        logins.release(&keys[1], now, ttl);
        assert_eq!(logins.idle_len(), 3);
        assert!(logins.over_ceiling(3).is_none());
        assert_eq!(&*logins.over_ceiling(1).unwrap().0, "a");
        assert_eq!(&*logins.over_ceiling(1).unwrap().0, "c");
        assert!(logins.over_ceiling(1).is_none());
        assert!(logins.over_ceiling(0).is_none());
        assert_eq!((logins.len(), logins.idle_len()), (1, 1));
    }

    #[test]
    fn the_idle_count_follows_every_way_in_and_out() {
        let now = Instant::now();
        let ttl = Duration::from_secs(1);
        let mut logins = Logins::default();
        let a: Arc<str> = "a".into();
        logins.claim("a", "a", None, now, secret(1));
        logins.claim("a", "a", Some("secret-1"), now, secret(9));
        logins.release(&a, now, ttl);
        assert_eq!(logins.idle_len(), 0);
        let (at, serial) = logins.release(&a, now, ttl).unwrap();
        assert_eq!(logins.idle_len(), 1);
        assert!(logins.expire("a", serial, at).is_some());
        assert_eq!(logins.idle_len(), 0);
        logins.claim("a", "a", None, now, secret(2));
        logins.release(&a, now, ttl);
        // Expired, then claimed afresh by someone else.
        logins.claim("a", "a", None, now + ttl, secret(3));
        assert_eq!(logins.idle_len(), 0);
        logins.remove("a");
        assert_eq!((logins.len(), logins.idle_len()), (0, 0));
        for _ in 0..1000 {
            logins.claim("a", "a", Some("secret-4"), now, secret(4));
            logins.release(&a, now, ttl);
        }
        assert!(logins.idle.len() < 200, "{}", logins.idle.len());
    }
}
