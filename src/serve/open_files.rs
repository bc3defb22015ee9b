//! The open-file limit: every connection is a file descriptor, and the
//! usual soft limit (1,024) is far below what `--max-connections` allows
//! by default. At start the soft limit is raised to the hard one, and a
//! warning says so when the connection limits cannot be reached under it
//! (past it, `accept` fails until connections close).

use tracing::{debug, warn};

use super::admission::Limits;

/// Descriptors needed beside the chat's connections: the admin listener's
/// connections (64), the store or Redis, the reactor, the signal pipe,
/// stdio, and slack.
const RESERVED: u64 = 128;

/// Raises the soft open-file limit to the hard one, then warns if the
/// connections `limits` allow do not fit under it.
pub(crate) fn make_room_for(limits: Limits) {
    let (soft, hard) = match raise_to_hard_limit() {
        Ok(limits) => limits,
        Err(error) => {
            warn!("cannot read the open-file limit: {error}");
            return;
        }
    };
    if let Some(warning) = shortfall(limits, soft, hard) {
        warn!("{warning}");
    }
}

/// What to say when `limits` need more descriptors than `soft`.
fn shortfall(limits: Limits, soft: u64, hard: u64) -> Option<String> {
    let most_open = limits.most_open() as u64;
    if most_open == 0 {
        return None;
    }
    let needed = most_open.saturating_add(RESERVED);
    (needed > soft).then(|| {
        format!(
            "--max-connections {} cannot be reached: {} connections and {} more in their \
             handshake need about {needed} open files, but the open-file limit is {soft} \
             (hard limit {hard}); raise it (`ulimit -n`, or LimitNOFILE= under systemd) or \
             lower --max-connections",
            limits.connections, limits.connections, limits.handshakes
        )
    })
}

/// Sets the soft `RLIMIT_NOFILE` to the hard one when it is lower (to the
/// kernel's `fs.nr_open` when the hard one is unlimited); returns the soft
/// limit now in force and the hard one.
#[cfg(unix)]
#[allow(unsafe_code)] // getrlimit/setrlimit have no safe wrapper in libc
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every unix
fn raise_to_hard_limit() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut target = limit.rlim_max;
    if target == libc::RLIM_INFINITY {
        // The kernel grants no more than fs.nr_open as a soft limit.
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open").ok();
        if let Some(nr_open) = nr_open.and_then(|text| text.trim().parse().ok()) {
            target = nr_open;
        }
    }
    if limit.rlim_cur < target {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            debug!(
                "open-file limit raised from {} to {}",
                limit.rlim_cur, raised.rlim_cur
            );
            limit = raised;
        }
    }
    Ok((limit.rlim_cur as u64, limit.rlim_max as u64))
}

/// No such limit to raise: say it is unbounded.
#[cfg(not(unix))]
fn raise_to_hard_limit() -> std::io::Result<(u64, u64)> {
    Ok((u64::MAX, u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_only_when_the_limits_do_not_fit() {
        let defaults = Limits::new(10_000, 0);
        let warning = shortfall(defaults, 1024, 4096).unwrap();
        assert!(
            warning.starts_with(
                "--max-connections 10000 cannot be reached: 10000 connections and 1024 more"
            ),
            "{warning}"
        );
        assert!(
            warning.contains("limit is 1024 (hard limit 4096)"),
            "{warning}"
        );
        assert!(warning.contains("about 11152 open files"), "{warning}");
        assert_eq!(shortfall(defaults, 11_152, 11_152), None);
        assert_eq!(shortfall(Limits::new(50, 5), 256, 256), None);
        assert_eq!(shortfall(Limits::new(0, 0), 16, 16), None, "no limit");
    }

    #[cfg(unix)]
    #[test]
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every unix
    fn the_soft_limit_ends_at_the_hard_one() {
        let (soft, hard) = raise_to_hard_limit().unwrap();
        assert!(
            soft == hard || hard == libc::RLIM_INFINITY as u64,
            "{soft} {hard}"
        );
        assert_eq!(raise_to_hard_limit().unwrap(), (soft, hard));
    }
}
