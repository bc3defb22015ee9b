//! What the kernel says about a process: resident memory from
//! `/proc/PID/status`, CPU time from `/proc/PID/stat`.

use std::time::Duration;

/// `VmRSS` of process `pid` in KiB, or `None` if it cannot be read.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    parse_vm_rss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// `VmRSS` of this process in KiB.
pub fn own_rss_kib() -> Option<u64> {
    parse_vm_rss(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// Reads the `VmRSS:  1234 kB` line of a status file.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib = line.trim().strip_suffix("kB")?;
    kib.trim().parse().ok()
}

/// User + system CPU time of process `pid`, all threads, or `None`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    parse_cpu_time(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// User + system CPU time of this process.
pub fn own_cpu_time() -> Option<Duration> {
    parse_cpu_time(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Reads `utime` and `stime` (fields 14 and 15) of a stat line. They count
/// USER_HZ ticks, which Linux fixes at 100 per second for user space.
pub fn parse_cpu_time(stat: &str) -> Option<Duration> {
    // The command name (field 2) is in parentheses and may hold anything,
    // spaces and parentheses included: count fields after the last `)`.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// CPU seconds a process spends from now until [`CpuMeter::seconds`].
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    pid: Option<u32>,
    start: Option<Duration>,
}

impl CpuMeter {
    /// Meters process `pid`, or this process when `None`.
    pub fn start(pid: Option<u32>) -> Self {
        CpuMeter {
            pid,
            start: Self::read(pid),
        }
    }

    fn read(pid: Option<u32>) -> Option<Duration> {
        match pid {
            Some(pid) => cpu_time(pid),
            None => own_cpu_time(),
        }
    }

    /// CPU seconds since `start`, with two decimals.
    pub fn seconds(&self) -> Option<f64> {
        let spent = Self::read(self.pid)?.checked_sub(self.start?)?;
        Some((spent.as_secs_f64() * 100.0).round() / 100.0)
    }
}

/// CPU seconds several processes spend together from now (the nodes of a
/// cluster and their Redis), until [`CpuMeters::seconds`].
#[derive(Debug, Clone)]
pub struct CpuMeters(Vec<CpuMeter>);

impl CpuMeters {
    pub fn start(pids: &[u32]) -> Self {
        CpuMeters(pids.iter().map(|&pid| CpuMeter::start(Some(pid))).collect())
    }

    /// Their CPU seconds in all; `None` without processes, or if one of
    /// them cannot be read.
    pub fn seconds(&self) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        let total: Option<f64> = self.0.iter().map(CpuMeter::seconds).sum();
        total.map(|s| (s * 100.0).round() / 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_from_a_status_file() {
        let status = "Name:\tchat-server\nVmPeak:\t  99999 kB\nVmRSS:\t    8124 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(8124));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\tlots\n"), None);
    }

    #[test]
    fn reads_cpu_time_from_a_stat_line_whatever_the_command_name() {
        let stat = "4242 (chat (server) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_cpu_time(stat), Some(Duration::from_millis(3250)));
        assert_eq!(parse_cpu_time("4242 (x) S 1"), None);
        assert!(own_cpu_time().is_some());
    }

    #[test]
    fn reads_its_own_rss() {
        assert!(own_rss_kib().is_some_and(|kib| kib > 0));
        assert!(vm_rss_kib(std::process::id()).is_some());
    }

    #[test]
    fn several_processes_cpu_adds_up() {
        assert_eq!(CpuMeters::start(&[]).seconds(), None);
        let own = std::process::id();
        assert!(CpuMeters::start(&[own, own]).seconds().is_some());
        assert_eq!(CpuMeters::start(&[own, u32::MAX]).seconds(), None);
    }
}
