//! chat-loadgen: the wschat load generator.
//!
//! Drives a running `chat-server` on loopback with many real protocol-v1,
//! v2 or v3 clients and prints one `key=value` summary line per run; see
//! docs/BENCHMARKS.md for the modes, the fields and the measured figures.
//!
//! It is a feature-gated binary rather than an example so that integration
//! tests can run it through `CARGO_BIN_EXE_chat-loadgen`, exactly as a
//! benchmark script does, and so that `cargo install` ships it next to the
//! server it measures.
//!
//! Exit status: 0 when the run completed, 1 when it hit a deadline (the
//! summary line is printed either way) or could not start, 2 on bad usage.

mod accept;
mod common;
mod fanout;
mod fdlimit;
mod idle;
mod latency;
mod ledger;
mod net;
mod procfs;
mod rooms;
mod runtime;
mod summary;
mod wire;

use clap::{Parser, Subcommand};

use crate::summary::{Status, Summary};

#[derive(Debug, Parser)]
#[command(version, about = "Load generator for chat-server (loopback only)")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// N logged-in clients, S of them sending at a fixed total rate; reports
    /// delivered messages/s, latency percentiles and lost messages.
    Fanout(fanout::FanoutArgs),
    /// N logged-in clients that only answer pings; reports the server's RSS
    /// per connection (needs --server-pid).
    Idle(idle::IdleArgs),
    /// Opens and logs in connections as fast as the server takes them;
    /// reports connections/s, login latency and the join storm.
    Accept(accept::AcceptArgs),
    /// R rooms of M members, each member saying a message in its room every
    /// interval; reports deliveries/s, latency percentiles and what each
    /// room's members missed. Speaks protocol v3 (offers `wschat.v3`;
    /// leave out --protocol).
    Rooms(rooms::RoomsArgs),
    /// C clients create R rooms, then fill them to M members; reports the
    /// server's RSS per room and per membership (needs --server-pid).
    /// Speaks protocol v3 (offers `wschat.v3`; leave out --protocol).
    RoomsIdle(rooms::idle::RoomsIdleArgs),
}

fn main() {
    let cli = Cli::parse();
    let outcome = smol::block_on(async {
        anyhow::Ok(match cli.mode {
            Mode::Fanout(args) => {
                let report = fanout::run(args).await?;
                (report.status, report.to_summary())
            }
            Mode::Idle(args) => {
                let report = idle::run(args).await?;
                (report.status, report.to_summary())
            }
            Mode::Accept(args) => {
                let report = accept::run(args).await?;
                (report.status, report.to_summary())
            }
            Mode::Rooms(args) => {
                let report = rooms::run(args).await?;
                (report.status, report.to_summary())
            }
            Mode::RoomsIdle(args) => {
                let report = rooms::idle::run(args).await?;
                (report.status, report.to_summary())
            }
        })
    });
    let code = match outcome {
        Ok((status, summary)) => {
            print_line(&summary);
            i32::from(status != Status::Ok)
        }
        Err(error) => {
            eprintln!("chat-loadgen: {error:#}");
            1
        }
    };
    // Exiting closes every client socket at once; see `runtime`.
    std::process::exit(code);
}

fn print_line(summary: &Summary) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{summary}").ok();
    stdout.flush().ok();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_report_reads_back_from_its_own_line() {
        let fanout = fanout::FanoutReport {
            status: Status::Ok,
            protocol: wire::Protocol::V1,
            clients: 1000,
            logged_in: 1000,
            failed: 0,
            senders: 10,
            rate: 500.0,
            duration_s: 10.0,
            text_bytes: 100,
            sent: 5000,
            offered_per_s: 500.0,
            receivers: 1000,
            expected: 5_000_000,
            delivered: 4_999_999,
            lost: 1,
            delivered_per_s: 498_765.4,
            p50_us: Some(1234),
            p99_us: Some(56_789),
            p999_us: Some(99_999),
            max_us: Some(123_456),
            acked: 4_999,
            acked_per_s: 498.7,
            ack_p50_us: Some(1_500),
            ack_p99_us: None,
            out_of_order: 0,
            unexpected: 0,
            closed: 0,
            errors: 0,
            max_send_lag_us: 321,
            setup_s: 2.5,
            drain_s: 0.1,
            server_cpu_s: Some(9.87),
            loadgen_cpu_s: Some(6.5),
            server_rss_kib: Some(45_678),
            loadgen_rss_kib: None,
        };
        let line = fanout.to_summary().to_string();
        assert!(line.starts_with("loadgen mode=fanout status=ok protocol=v1 clients=1000 "));
        let back = fanout::FanoutReport::from_summary(&line.parse().unwrap());
        assert_eq!(back, Ok(fanout));

        let idle = idle::IdleReport {
            status: Status::Timeout,
            protocol: wire::Protocol::V2,
            clients: 19_000,
            logged_in: 18_000,
            failed: 3,
            setup_s: 120.0,
            hold_s: 0.0,
            pings: 0,
            closed: 1,
            errors: 0,
            server_rss_before_kib: Some(4000),
            server_rss_after_kib: None,
            server_rss_held_kib: None,
            server_bytes_per_conn: None,
            loadgen_rss_kib: Some(300_000),
        };
        let line = idle.to_summary().to_string();
        assert!(line.starts_with("loadgen mode=idle status=timeout protocol=v2 "));
        assert_eq!(
            idle::IdleReport::from_summary(&line.parse().unwrap()),
            Ok(idle)
        );

        let accept = accept::AcceptReport {
            status: Status::Ok,
            protocol: wire::Protocol::V2,
            connections: 2000,
            keep_open: true,
            opened: 2000,
            failed: 0,
            elapsed_s: 0.4,
            per_s: 5000.0,
            p50_us: Some(900),
            p99_us: Some(4000),
            p999_us: Some(9000),
            max_us: Some(12_000),
            handshake_p50_us: Some(300),
            handshake_p99_us: Some(2000),
            join_frames: 2_001_000,
            joins_heard: 2_345_678,
            join_s: Some(1.5),
            join_frames_per_s: Some(1_334_000.0),
            closed: 0,
            server_cpu_s: None,
            loadgen_cpu_s: Some(0.25),
            server_rss_kib: None,
            loadgen_rss_kib: Some(20_000),
        };
        let line = accept.to_summary().to_string();
        assert!(line.contains(" protocol=v2 "), "{line}");
        assert!(
            line.contains(" join_frames=2001000 joins_heard=2345678 "),
            "{line}"
        );
        assert_eq!(
            accept::AcceptReport::from_summary(&line.parse().unwrap()),
            Ok(accept.clone())
        );
        // A line of another mode is refused, not misread.
        assert!(fanout::FanoutReport::from_summary(&line.parse().unwrap()).is_err());
    }
}
