//! Who may open a WebSocket, and how many connections the server holds.
//!
//! Two stages, each bounded in all and per peer address (an IPv6 address
//! per /64, as the core's limits count: one host is usually given a whole
//! /64):
//! - from `accept`, a connection is *in its handshake* (TLS, the request
//!   head, the upgrade) until it is upgraded or answered. Past the bound on
//!   handshakes it is closed at once, before it costs more than its file
//!   descriptor for an instant: connections that never send a byte cannot
//!   pile up until the process runs out of descriptors;
//! - at the upgrade, the allowed Origins and the bound on WebSocket
//!   connections (`--max-connections`, `--max-connections-per-ip`): past
//!   them, an HTTP 403 or 503, so a refused peer costs no more than its
//!   request.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use async_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

use super::refused_origins::{RefusedOrigins, Report};

/// The `--allowed-origins` setting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowedOrigins {
    /// The page's own origin: `http://` or `https://` and the request's
    /// `Host` (the default, written `self`), or none. Any other site's page
    /// is refused, so that it cannot make its visitors' browsers connect.
    #[default]
    SameHost,
    /// Any Origin, or none (`*`, as the original did).
    Any,
    /// Only these origins (`scheme://host[:port]`, lowercase), or none.
    Only(Vec<String>),
}

impl AllowedOrigins {
    /// Whether a handshake with this `Origin` header, asking for `host`
    /// (its `Host` header), may proceed. A request without an Origin is
    /// not from a browser, which always sends it on a WebSocket upgrade;
    /// any other program can send what it likes anyway, so refusing it
    /// would protect nothing.
    pub fn allows(&self, origin: Option<&HeaderValue>, host: Option<&HeaderValue>) -> bool {
        match (self, origin) {
            (AllowedOrigins::Any, _) | (_, None) => true,
            (AllowedOrigins::Only(list), Some(origin)) => list
                .iter()
                .any(|allowed| allowed.as_bytes().eq_ignore_ascii_case(origin.as_bytes())),
            (AllowedOrigins::SameHost, Some(origin)) => {
                host.is_some_and(|host| is_own_origin(origin.as_bytes(), host.as_bytes()))
            }
        }
    }
}

/// Whether `origin` is `http://HOST` or `https://HOST`, `HOST` being the
/// request's `Host` (without regard to case, or to a default port written
/// on one side only).
fn is_own_origin(origin: &[u8], host: &[u8]) -> bool {
    let origin = origin.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    let (authority, default_port): (&[u8], &[u8]) =
        if let Some(a) = origin.strip_prefix(b"https://") {
            (a, b":443")
        } else if let Some(a) = origin.strip_prefix(b"http://") {
            (a, b":80")
        } else {
            return false;
        };
    let bare =
        |text: &'_ [u8]| -> Vec<u8> { text.strip_suffix(default_port).unwrap_or(text).to_vec() };
    !authority.is_empty() && bare(authority) == bare(&host)
}

impl FromStr for AllowedOrigins {
    type Err = String;

    /// `self` for the page's own origin, `*` for any; otherwise origins
    /// separated by commas.
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "*" => return Ok(AllowedOrigins::Any),
            "self" => return Ok(AllowedOrigins::SameHost),
            _ => {}
        }
        let origins = text
            .split(',')
            .map(|origin| parse_origin(origin.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowedOrigins::Only(origins))
    }
}

impl fmt::Display for AllowedOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowedOrigins::SameHost => f.write_str("self"),
            AllowedOrigins::Any => f.write_str("*"),
            AllowedOrigins::Only(list) => f.write_str(&list.join(",")),
        }
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing more.
fn parse_origin(origin: &str) -> Result<String, String> {
    let expected = "(expected origins such as https://chat.example.com, or self, or *)";
    let Some((scheme, host)) = origin.split_once("://") else {
        return Err(format!("{origin:?} has no scheme {expected}"));
    };
    let well_formed = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !host.is_empty()
        && !host.contains(['/', '?', '#', '@', ' ', ',']);
    if !well_formed {
        return Err(format!("{origin:?} is not an origin {expected}"));
    }
    Ok(origin.to_ascii_lowercase())
}

/// Connections in their handshake at once, at most, however large
/// `--max-connections` is: a handshake takes milliseconds, so this many at
/// once is a storm of reconnects already.
const MOST_HANDSHAKES: usize = 1024;

/// Without `--max-connections-per-ip`, one address may hold this share of
/// the handshakes (one eighth), and never fewer than
/// [`LEAST_HANDSHAKES_PER_ADDRESS`] (unless that is all there are).
const HANDSHAKE_SHARE_PER_ADDRESS: usize = 8;
const LEAST_HANDSHAKES_PER_ADDRESS: usize = 16;

/// How many connections may be open, as the flags say (0: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// WebSocket connections in all (`--max-connections`).
    pub(crate) connections: usize,
    /// WebSocket connections per address (`--max-connections-per-ip`).
    pub(crate) per_address: usize,
    /// Connections in their handshake, in all.
    pub(crate) handshakes: usize,
    /// Connections in their handshake, per address.
    pub(crate) handshakes_per_address: usize,
}

impl Limits {
    /// The bounds on handshakes follow from the flags: as many as
    /// `--max-connections` (up to [`MOST_HANDSHAKES`]), so that the
    /// descriptors the chat's port can hold stay within twice that; per
    /// address, `--max-connections-per-ip`, or else a share of them.
    pub(crate) fn new(connections: usize, per_address: usize) -> Limits {
        let handshakes = connections.min(MOST_HANDSHAKES);
        let handshakes_per_address = match (per_address, handshakes) {
            (0, 0) => 0,
            (0, all) => (all / HANDSHAKE_SHARE_PER_ADDRESS)
                .max(LEAST_HANDSHAKES_PER_ADDRESS)
                .min(all),
            (per_address, _) => per_address,
        };
        Limits {
            connections,
            per_address,
            handshakes,
            handshakes_per_address,
        }
    }

    /// The most connections the chat's port holds at once (0: no bound).
    pub(crate) fn most_open(&self) -> usize {
        match (self.connections, self.handshakes) {
            (0, _) | (_, 0) => 0,
            (connections, handshakes) => connections + handshakes,
        }
    }
}

/// The limits, and the connections counted against them.
#[derive(Debug)]
pub(crate) struct Admission {
    origins: AllowedOrigins,
    limits: Limits,
    counts: Mutex<Counts>,
    refused_origins: Mutex<RefusedOrigins>,
}

#[derive(Debug, Default)]
struct Counts {
    handshakes: usize,
    open: usize,
    /// Only addresses with something counted; none when no limit is per
    /// address.
    per_address: HashMap<IpAddr, PerAddress>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct PerAddress {
    handshakes: usize,
    open: usize,
}

/// The address under which `ip` is counted: an IPv4 address (mapped or
/// not) as itself, an IPv6 address as its /64.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(ip) => {
            let [a, b, c, d, ..] = ip.segments();
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Why a connection was closed at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Crowded {
    #[error("{0} connections are in their handshake")]
    Handshakes(usize),
    #[error("{0} connections from this address are in their handshake")]
    HandshakesFromAddress(usize),
}

/// What a [`Slot`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Handshake,
    Open,
}

/// A connection counted against the limits until this is dropped: in its
/// handshake ([`Admission::arrive`]) or upgraded ([`Admission::admit`]).
#[derive(Debug)]
pub(crate) struct Slot {
    admission: Arc<Admission>,
    key: IpAddr,
    stage: Stage,
    /// Counted against its address's bound too.
    per_address: bool,
}

impl Admission {
    pub(crate) fn new(origins: AllowedOrigins, limits: Limits) -> Self {
        Admission {
            origins,
            limits,
            counts: Mutex::default(),
            refused_origins: Mutex::default(),
        }
    }

    pub(crate) fn origins(&self) -> &AllowedOrigins {
        &self.origins
    }

    /// An upgrade with this `origin` was refused (403) at `now`: the line
    /// to log, at most one per origin a minute (see `refused_origins`).
    pub(crate) fn origin_refused(
        &self,
        origin: Option<&HeaderValue>,
        now: Instant,
    ) -> Option<Report> {
        let origin = origin?;
        let mut refused = self
            .refused_origins
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        refused.refused(origin.as_bytes(), now)
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Counts a connection from `ip` just accepted, in its handshake until
    /// the slot is dropped; or says which bound it is past (the connection
    /// is then closed at once). A connection from a trusted proxy counts
    /// only against the overall bound: it carries many clients, whose own
    /// addresses are known only once its request head is read.
    pub(crate) fn arrive(self: &Arc<Self>, ip: IpAddr, proxy: bool) -> Result<Slot, Crowded> {
        let limits = self.limits;
        let key = address_key(ip);
        let mut counts = self.lock();
        if limits.handshakes != 0 && counts.handshakes >= limits.handshakes {
            return Err(Crowded::Handshakes(limits.handshakes));
        }
        let per_address = limits.handshakes_per_address != 0 && !proxy;
        if per_address {
            let here = counts.per_address.entry(key).or_default();
            if here.handshakes >= limits.handshakes_per_address {
                return Err(Crowded::HandshakesFromAddress(
                    limits.handshakes_per_address,
                ));
            }
            here.handshakes += 1;
        }
        counts.handshakes += 1;
        Ok(Slot {
            admission: self.clone(),
            key,
            stage: Stage::Handshake,
            per_address,
        })
    }

    /// Counts a WebSocket connection from `ip`, or says which HTTP status
    /// refuses it: 403 for an `origin` not allowed (for a request to
    /// `host`), 503 past a connection limit.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        origin: Option<&HeaderValue>,
        host: Option<&HeaderValue>,
    ) -> Result<Slot, StatusCode> {
        if !self.origins.allows(origin, host) {
            return Err(StatusCode::FORBIDDEN);
        }
        let limits = self.limits;
        let key = address_key(ip);
        let mut counts = self.lock();
        if limits.connections != 0 && counts.open >= limits.connections {
            return Err(StatusCode::SERVICE_UNAVAILABLE);
        }
        if limits.per_address != 0 {
            let here = counts.per_address.entry(key).or_default();
            if here.open >= limits.per_address {
                return Err(StatusCode::SERVICE_UNAVAILABLE);
            }
            here.open += 1;
        }
        counts.open += 1;
        Ok(Slot {
            admission: self.clone(),
            key,
            stage: Stage::Open,
            per_address: limits.per_address != 0,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Slot {
    /// A trusted proxy's connection turned out to carry `client` (its PROXY
    /// header said so): from now on it counts against `client`'s share of
    /// the handshakes too, so that one client behind a load balancer that
    /// passes idle connections on cannot take every slot.
    pub(crate) fn count_from(&mut self, client: IpAddr) -> Result<(), Crowded> {
        let limits = self.admission.limits;
        if self.per_address || self.stage != Stage::Handshake || limits.handshakes_per_address == 0
        {
            return Ok(());
        }
        let key = address_key(client);
        let mut counts = self.admission.lock();
        let here = counts.per_address.entry(key).or_default();
        if here.handshakes >= limits.handshakes_per_address {
            if *here == PerAddress::default() {
                counts.per_address.remove(&key);
            }
            return Err(Crowded::HandshakesFromAddress(
                limits.handshakes_per_address,
            ));
        }
        here.handshakes += 1;
        drop(counts);
        self.key = key;
        self.per_address = true;
        Ok(())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.admission.lock();
        match self.stage {
            Stage::Handshake => counts.handshakes -= 1,
            Stage::Open => counts.open -= 1,
        }
        if !self.per_address {
            return;
        }
        if let Some(here) = counts.per_address.get_mut(&self.key) {
            match self.stage {
                Stage::Handshake => here.handshakes -= 1,
                Stage::Open => here.open -= 1,
            }
            if *here == PerAddress::default() {
                counts.per_address.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests;
