//! The chat core alone, without sockets: what one message costs the server.
//!
//! `cargo bench --bench core`. Target (issue 2): one `textFromUser`
//! broadcast to 1,000 logged-in connections in at most 20 µs, decode,
//! encode-once and draining every action included.
//!
//! Each case is measured twice: in wall-clock time (criterion's default) and
//! in the CPU time of the benchmark thread ("cpu" ids). The machine is
//! shared with other builds, and wall-clock figures then include the time
//! the thread spent preempted; CPU time does not.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{SeedableRng, rngs::StdRng};
use wschat::{Action, ClientMessage, Config, ConnectionId, Inbound, Server, Version};

const TEXT_FROM_USER: &[u8] =
    br#"{"type":"textFromUser","id":"V1StGXR8_Z5jdHi6B-myT","text":"hello everyone, how is it going?"}"#;

/// A core with `n` logged-in connections, every action drained.
fn chat_with(n: usize, now: Instant) -> (Server<StdRng>, Vec<ConnectionId>) {
    // Every connection comes from one address: the limit of new names per
    // address would refuse all but the first few logins.
    let config = Config {
        new_names_per_minute: 0,
        ..Config::default()
    };
    let mut server = Server::new(config, StdRng::seed_from_u64(1));
    let conns: Vec<_> = (0..n)
        .map(|i| {
            let conn = server.handle_open("127.0.0.1", Version::V1, now);
            let login = format!(r#"{{"type":"login","id":"l","username":"user{i}"}}"#);
            server.handle_frame(conn, Inbound::Text(login.as_bytes()), now);
            while server.poll_action().is_some() {}
            conn
        })
        .collect();
    while server.poll_event().is_some() {}
    (server, conns)
}

fn broadcast(c: &mut Criterion) {
    const RECIPIENTS: usize = 1_000;
    let mut now = Instant::now();
    let (mut server, conns) = chat_with(RECIPIENTS, now);
    let sender = conns[RECIPIENTS / 2];
    // The sender keeps to the default message rate (5 a second), so every
    // message passes the limit's check and is broadcast.
    let interval = Duration::from_secs(1) / server.config().message_rate;

    let mut group = c.benchmark_group("broadcast");
    group.throughput(Throughput::Elements(1));
    let mut one_broadcast = || {
        now += interval;
        server.handle_frame(sender, Inbound::Text(black_box(TEXT_FROM_USER)), now);
        let mut sent = 0;
        while let Some(action) = server.poll_action() {
            if let Action::Send { frame, .. } = black_box(action) {
                sent += frame.bytes().len();
            }
        }
        sent
    };
    group.bench_function("textFromUser to 1000 connections", |b| {
        b.iter(&mut one_broadcast)
    });
    group.bench_function("textFromUser to 1000 connections (cpu)", |b| {
        b.iter_custom(|iters| cpu_time_of(iters, &mut one_broadcast))
    });
    group.finish();

    // Check once, outside the timing, that the loop above did the work.
    server.handle_frame(sender, Inbound::Text(TEXT_FROM_USER), now + interval);
    let mut actions = 0;
    while server.poll_action().is_some() {
        actions += 1;
    }
    assert_eq!(actions, RECIPIENTS);
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(TEXT_FROM_USER.len() as u64));
    let one_decode = || ClientMessage::decode(black_box(TEXT_FROM_USER));
    group.bench_function("textFromUser", |b| b.iter(one_decode));
    group.bench_function("textFromUser (cpu)", |b| {
        b.iter_custom(|iters| cpu_time_of(iters, one_decode))
    });
    group.finish();
    assert!(matches!(
        ClientMessage::decode(TEXT_FROM_USER),
        Ok(ClientMessage::TextFromUser { .. })
    ));
}

/// CPU time this thread spends running `routine` `iters` times.
fn cpu_time_of<T>(iters: u64, mut routine: impl FnMut() -> T) -> Duration {
    let start = thread_cpu_time();
    for _ in 0..iters {
        black_box(routine());
    }
    thread_cpu_time() - start
}

#[allow(unsafe_code)] // clock_gettime has no safe wrapper in libc
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

criterion_group!(benches, broadcast, decode);
criterion_main!(benches);
