use super::*;

#[test]
fn the_rooms_report_reads_back_from_its_own_line() {
    let report = RoomsReport {
        status: Status::Ok,
        protocol: "v3".into(),
        rooms: 1000,
        members: 10,
        clients: 10_000,
        logged_in: 10_000,
        failed: 0,
        joined: 9_999,
        join_failed: 1,
        interval_s: 2.0,
        duration_s: 20.0,
        text_bytes: 100,
        sent: 99_990,
        offered_per_s: 4999.5,
        expected: 999_900,
        delivered: 999_898,
        lost: 2,
        rooms_with_loss: 1,
        delivered_per_s: 49_990.1,
        p50_us: Some(900),
        p99_us: Some(40_000),
        p999_us: Some(80_000),
        max_us: Some(120_000),
        acked: 99_990,
        ack_p50_us: Some(800),
        ack_p99_us: None,
        out_of_order: 3,
        unexpected: 0,
        seq_breaks: 2,
        closed: 0,
        errors: 1,
        max_send_lag_us: 250,
        setup_s: 12.5,
        drain_s: 0.1,
        server_cpu_s: Some(17.25),
        loadgen_cpu_s: Some(9.5),
        server_rss_kib: Some(300_000),
        loadgen_rss_kib: None,
    };
    let line = report.to_summary().to_string();
    assert!(
        line.starts_with("loadgen mode=rooms status=ok protocol=v3 rooms=1000 members=10 "),
        "{line}"
    );
    assert!(
        line.contains(" lost=2 rooms_with_loss=1 ") && line.contains(" p99_us=40000 "),
        "{line}"
    );
    let back = RoomsReport::from_summary(&line.parse().unwrap());
    assert_eq!(back, Ok(report));
    // A fanout line is not a rooms one.
    let fanout = "loadgen mode=fanout status=ok".parse().unwrap();
    assert!(RoomsReport::from_summary(&fanout).is_err());
}
