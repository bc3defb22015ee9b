//! The reservation of names: who holds which name, with which secret, and
//! until when.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use subtle::ConstantTimeEq;

/// One reserved name.
#[derive(Debug)]
pub(crate) struct Login {
    /// The name as first typed; what everyone sees.
    pub(crate) display: Arc<str>,
    secret: String,
    /// Open connections holding this login; it never expires while > 0.
    connections: usize,
    /// Set when the last connection closed.
    expires_at: Option<Instant>,
    /// Distinguishes this reservation from a later one of the same name, so
    /// a stale expiry timer cannot release the newer one.
    pub(crate) serial: u64,
}

impl Login {
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }

    fn is_expired(&self, now: Instant) -> bool {
        self.connections == 0 && self.expires_at.is_some_and(|at| at <= now)
    }
}

/// The outcome of asking for a name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The name was free (or its reservation had expired): a new login.
    Fresh,
    /// The right secret for a held name: the same login joins.
    Reclaimed,
    /// Held, and the secret was missing or wrong.
    Taken,
}

#[derive(Debug, Default)]
pub(crate) struct Logins {
    by_key: HashMap<Arc<str>, Login>,
    next_serial: u64,
}

impl Logins {
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
    ) -> (Claim, &Login) {
        let held = self.by_key.get(key).filter(|l| !l.is_expired(now));
        let claim = match (held, secret) {
            (None, _) => Claim::Fresh,
            (Some(login), Some(given))
                if bool::from(login.secret.as_bytes().ct_eq(given.as_bytes())) =>
            {
                Claim::Reclaimed
            }
            (Some(_), _) => Claim::Taken,
        };
        if claim == Claim::Fresh {
            self.next_serial += 1;
            let key: Arc<str> = key.into();
            let login = Login {
                display: display.into(),
                secret: new_secret(),
                connections: 0,
                expires_at: None,
                serial: self.next_serial,
            };
            self.by_key.insert(key, login);
        }
        let login = self
            .by_key
            .get_mut(key)
            .expect("the login was found or inserted above");
        if claim != Claim::Taken {
            login.connections += 1;
            login.expires_at = None;
        }
        (claim, login)
    }

    /// One connection holding `key` closed. Returns when the login expires
    /// if that was its last connection.
    pub(crate) fn release(
        &mut self,
        key: &str,
        now: Instant,
        ttl: std::time::Duration,
    ) -> Option<(Instant, u64)> {
        let login = self.by_key.get_mut(key)?;
        login.connections = login.connections.saturating_sub(1);
        if login.connections > 0 {
            return None;
        }
        let at = now + ttl;
        login.expires_at = Some(at);
        Some((at, login.serial))
    }

    /// Removes the login of `key` if it has expired by `now`, whether or not
    /// its expiry timer has fired yet.
    pub(crate) fn take_expired(&mut self, key: &str, now: Instant) -> Option<Login> {
        if self.by_key.get(key)?.is_expired(now) {
            self.by_key.remove(key)
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
        self.by_key.remove(key)
    }

    /// Releases `key` at once (a v2 `logout`): the name is free and the
    /// secret worthless.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Login> {
        self.by_key.remove(key)
    }

    /// Everyone with at least one open connection, with how many, ordered by
    /// name so the answer does not depend on hashing.
    pub(crate) fn online(&self) -> Vec<(Arc<str>, usize)> {
        let mut online: Vec<(&Arc<str>, &Login)> = self
            .by_key
            .iter()
            .filter(|(_, login)| login.connections > 0)
            .collect();
        online.sort_unstable_by(|a, b| a.0.cmp(b.0));
        online
            .into_iter()
            .map(|(_, login)| (login.display.clone(), login.connections))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }
}
