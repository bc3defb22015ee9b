//! The open-file limit: each client socket is a file descriptor, so 19,000
//! idle clients need the soft `RLIMIT_NOFILE` raised (often 1024 by
//! default) up to the hard one (20,000 on the benchmark machine).

use std::io;

use anyhow::ensure;

/// Descriptors the load generator needs besides its client sockets: stdio,
/// the reactor's epoll and notifier, /proc reads, one in flight per
/// connecting client beyond the count (a failed dial closes it), and slack.
const RESERVED: libc::rlim_t = 64;

/// Raises the soft open-file limit to the hard one, then checks that
/// `sockets` client sockets fit under it.
pub fn ensure_room_for(sockets: usize) -> anyhow::Result<()> {
    let (limit, hard) = raise_to_hard_limit()?;
    let needed = (sockets as libc::rlim_t).saturating_add(RESERVED);
    ensure!(
        needed <= limit,
        "{sockets} client sockets need about {needed} file descriptors, but the open-file \
         limit is {limit} (hard limit {hard}): raise it with `ulimit -n`, or open fewer"
    );
    Ok(())
}

/// Sets the soft `RLIMIT_NOFILE` to the hard one when it is lower; returns
/// the soft limit now in force and the hard one. A hard limit the kernel
/// will not grant as a soft one (`RLIM_INFINITY` beyond `fs.nr_open`)
/// leaves the soft limit as it was.
#[allow(unsafe_code)] // getrlimit/setrlimit have no safe wrapper in libc
pub fn raise_to_hard_limit() -> io::Result<(libc::rlim_t, libc::rlim_t)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_one_and_bounds_the_sockets() {
        let (soft, hard) = raise_to_hard_limit().unwrap();
        assert!(soft >= 1, "{soft}");
        // Raised to the hard limit unless that is unlimited (nr_open caps it).
        assert!(soft == hard || hard == libc::RLIM_INFINITY, "{soft} {hard}");
        assert_eq!(raise_to_hard_limit().unwrap(), (soft, hard));
        assert!(ensure_room_for(0).is_ok() || soft < RESERVED);
        let too_many = ensure_room_for(soft as usize).unwrap_err().to_string();
        assert!(too_many.contains("ulimit -n"), "{too_many}");
    }
}
