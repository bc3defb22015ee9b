//! Resident memory of a process, from `/proc/PID/status`.

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
    fn reads_its_own_rss() {
        assert!(own_rss_kib().is_some_and(|kib| kib > 0));
        assert!(vm_rss_kib(std::process::id()).is_some());
    }
}
