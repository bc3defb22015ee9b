//! Peer addresses as the per-address limits count them. An IPv4 address is
//! one host; an IPv6 host is usually given a whole /64, so counting IPv6 per
//! address would let one host act as 2^64 addresses (and fill every table
//! kept per address). IPv6 addresses therefore count per /64 prefix.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

/// The key under which `location` (a peer's IP address as text, or
/// anything else a driver passed, such as "unknown") is counted.
pub(crate) fn key(location: &str) -> Arc<str> {
    match location.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V6(ip)) => {
            let [a, b, c, d, ..] = ip.segments();
            format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0)).into()
        }
        Ok(IpAddr::V4(ip)) => ip.to_string().into(),
        Err(_) => location.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_ipv4_per_address() {
        assert_eq!(&*key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:1:2:3"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(&*key("192.0.2.7"), "192.0.2.7");
        assert_eq!(&*key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(&*key("unknown"), "unknown");
    }
}
