//! The core's requests waiting for their pipeline, and when they go: group
//! commit for appends.
//!
//! Redis spends more on a script call than on the messages it carries
//! (issue 23, on a 2-core box: ~50 µs of CPU a call, its reply and its
//! event written to every node, against ~10 µs a lobby message), so a
//! node sending one message per call spends most of Redis's CPU on calls.
//! A pipeline of nothing but appends (lobby or room messages) therefore
//! goes out at most once every [`APPEND_PACE`]: the appends that come
//! meanwhile ride together, one script call per run. Anything else
//! queued (a login, a room write, a logout) goes at once and takes the
//! waiting appends with it, in the core's order. A node quieter than one
//! pipeline per pace never waits: its first append after a pause goes at
//! once; an append never waits more than one pace for its turn.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::super::requests::Call;

/// Pipelines of appends alone go out at most this often. 10 ms, measured
/// (docs/BENCHMARKS.md, issue 23): at 5,000 messages a second over three
/// nodes a call then carries ~16 lobby messages, and Redis spends ~11 µs
/// of CPU a message instead of ~47 (2 ms: ~3 a call; 5 ms: ~8 a call,
/// ~19 µs), for ~5 ms more median latency and ~10 ms at most, which no
/// one in a chat notices. A constant, not an option: only a node sending
/// more than 100 pipelines a second waits at all, and at most until
/// [`FULL`] messages wait.
pub(crate) const APPEND_PACE: Duration = Duration::from_millis(10);

/// So many appends waiting go at once: past this, one more message in a
/// call saves Redis next to nothing (its cost per call is that of a few
/// messages), and a busier node should not wait the whole pace.
pub(super) const FULL: usize = 64;

/// Requests sent in one pipeline at most (whole batches of the core: more
/// wait for the next).
pub(super) const MAX_BATCH: usize = 1024;

/// The core's requests waiting to be sent, in its batches and order.
pub(super) struct Outbox {
    batches: VecDeque<Vec<Call>>,
    /// Requests waiting.
    waiting: usize,
    /// Of them, requests that are not appends: these go at once.
    urgent: usize,
    /// When the oldest of them came.
    since: Option<Instant>,
    /// When the last pipeline went out.
    last_sent: Option<Instant>,
    pace: Duration,
}

impl Outbox {
    pub(super) fn new(pace: Duration) -> Outbox {
        Outbox {
            batches: VecDeque::new(),
            waiting: 0,
            urgent: 0,
            since: None,
            last_sent: None,
            pace,
        }
    }

    /// A batch of the core's requests, come at `now`.
    pub(super) fn push(&mut self, batch: Vec<Call>, now: Instant) {
        if batch.is_empty() {
            return;
        }
        self.since.get_or_insert(now);
        self.waiting += batch.len();
        self.urgent += batch.iter().filter(|call| !is_append(call)).count();
        self.batches.push_back(batch);
    }

    /// When what waits is due, if anything waits: at once for anything
    /// but appends (or [`FULL`] of them), else one pace after the last
    /// pipeline (at once if that is past).
    #[must_use]
    pub(super) fn due_at(&self) -> Option<Instant> {
        let since = self.since?;
        if self.urgent > 0 || self.waiting >= FULL {
            Some(since)
        } else {
            Some(self.last_sent.map_or(since, |at| since.max(at + self.pace)))
        }
    }

    /// Nothing waits for company any more (the node is stopping: what the
    /// core handed on goes to Redis, as the embedded store saves it all).
    pub(super) fn hurry(&mut self) {
        self.pace = Duration::ZERO;
    }

    /// Whether requests wait.
    pub(super) fn is_empty(&self) -> bool {
        self.waiting == 0
    }

    /// The next pipeline's requests if they are due at `now` (whole
    /// batches, up to [`MAX_BATCH`] unless one batch is larger).
    pub(super) fn take_due(&mut self, now: Instant) -> Option<Vec<Call>> {
        if self.due_at()? > now {
            return None;
        }
        let mut calls = Vec::new();
        while calls.len() < MAX_BATCH
            && let Some(more) = self.batches.pop_front()
        {
            calls.extend(more);
        }
        self.recount();
        self.last_sent = Some(now);
        Some(calls)
    }

    /// The requests numbered `as_of` or lower, taken out (they were asked
    /// before the core's answer to a question; see `handle_held_names`).
    pub(super) fn take_up_to(&mut self, as_of: u64) -> Vec<Call> {
        let mut before = Vec::new();
        while let Some(batch) = self.batches.front_mut() {
            let split = batch.partition_point(|call| call.number() <= as_of);
            before.extend(batch.drain(..split));
            if !batch.is_empty() {
                break;
            }
            self.batches.pop_front();
        }
        self.recount();
        before
    }

    /// Everything waiting, taken out (to fail it).
    pub(super) fn take_all(&mut self) -> Vec<Call> {
        let all = self.batches.drain(..).flatten().collect();
        self.recount();
        all
    }

    fn recount(&mut self) {
        self.waiting = self.batches.iter().map(Vec::len).sum();
        self.urgent = self
            .batches
            .iter()
            .flatten()
            .filter(|c| !is_append(c))
            .count();
        if self.waiting == 0 {
            self.since = None;
        }
    }
}

/// A message (lobby or room): the requests that may wait for company.
fn is_append(call: &Call) -> bool {
    matches!(call, Call::Append { .. } | Call::RoomAppend { .. })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use redis::Value;

    use super::super::{Command, CommandId, RedisLink};
    use super::{APPEND_PACE, FULL};
    use crate::serve::cluster::Settings;
    use crate::serve::cluster::requests::{Call, Ticket};

    fn link(now: Instant) -> RedisLink {
        let settings = Settings {
            history_size: 100,
            login_ttl: Duration::from_secs(60),
            node_timeout: Duration::from_secs(10),
        };
        let joined = RedisLink::joined(
            "redis://test".into(),
            "me".into(),
            "E".into(),
            settings,
            10,
            now,
        );
        joined.0
    }

    fn append(n: u64) -> Call {
        Call::test_append(n)
    }

    fn commands(link: &mut RedisLink) -> Vec<Command> {
        std::iter::from_fn(|| link.poll_command()).collect()
    }

    fn calls(id: u64, calls: Vec<Call>) -> Vec<Command> {
        vec![Command::Calls {
            id: CommandId(id),
            calls,
        }]
    }

    /// Append 1 sent at `t0` and answered at once: the pace runs from `t0`.
    fn one_sent(t0: Instant) -> RedisLink {
        let mut link = link(t0);
        link.handle_requests([Ok(append(1))], t0);
        assert_eq!(commands(&mut link), calls(1, vec![append(1)]));
        link.handle_reply(CommandId(1), Ok(vec![Value::Int(11)]), t0);
        while link.poll_to_core().is_some() {}
        link
    }

    #[test]
    fn appends_of_a_busy_node_wait_for_one_pace_then_go_in_one_pipeline() {
        let t0 = Instant::now();
        let at = |pace: f64| t0 + APPEND_PACE.mul_f64(pace);
        let mut link = one_sent(t0);
        link.handle_requests([Ok(append(2))], at(0.25));
        link.handle_requests([Ok(append(3)), Ok(append(4))], at(0.5));
        assert_eq!(commands(&mut link), []);
        assert_eq!(link.poll_timeout(), Some(at(1.0)));
        link.handle_timeout(at(0.95)); // early: nothing
        assert_eq!(commands(&mut link), []);
        link.handle_timeout(at(1.0));
        assert_eq!(
            commands(&mut link),
            calls(2, vec![append(2), append(3), append(4)])
        );
    }

    #[test]
    fn at_the_finish_waiting_appends_go_at_once_and_the_link_is_busy_until_answered() {
        let t0 = Instant::now();
        let at = |pace: f64| t0 + APPEND_PACE.mul_f64(pace);
        let mut link = one_sent(t0);
        link.handle_requests([Ok(append(2)), Ok(append(3))], at(0.25));
        assert_eq!(commands(&mut link), []);
        assert!(link.busy(), "appends wait: the link is not done");
        link.handle_finish(at(0.3));
        assert_eq!(commands(&mut link), calls(2, vec![append(2), append(3)]));
        assert!(link.busy(), "their reply is due");
        let seqs = vec![Value::Int(12), Value::Int(13)];
        link.handle_reply(CommandId(2), Ok(seqs), at(0.4));
        assert!(!link.busy());
        // Anything the core handed on later goes at once too.
        link.handle_requests([Ok(append(4))], at(0.45));
        assert_eq!(commands(&mut link), calls(3, vec![append(4)]));
    }

    #[test]
    fn a_full_run_of_appends_goes_at_once() {
        let t0 = Instant::now();
        let at = |pace: f64| t0 + APPEND_PACE.mul_f64(pace);
        let mut link = one_sent(t0);
        let run: Vec<Call> = (2..=FULL as u64).map(append).collect();
        link.handle_requests(run.iter().cloned().map(Ok), at(0.25));
        assert_eq!(commands(&mut link), []);
        let last = append(FULL as u64 + 1);
        link.handle_requests([Ok(last.clone())], at(0.3));
        let mut full = run;
        full.push(last);
        assert_eq!(commands(&mut link), calls(2, full));
    }

    #[test]
    fn anything_but_an_append_goes_at_once_and_takes_the_waiting_appends() {
        let t0 = Instant::now();
        let at = |pace: f64| t0 + APPEND_PACE.mul_f64(pace);
        let mut link = one_sent(t0);
        link.handle_requests([Ok(append(2))], at(0.25));
        assert_eq!(commands(&mut link), []);
        let online = Call::Online {
            ticket: Ticket::for_tests(3),
        };
        link.handle_requests([Ok(online.clone())], at(0.3));
        assert_eq!(commands(&mut link), calls(2, vec![append(2), online]));
    }

    #[test]
    fn a_node_quieter_than_the_pace_never_waits_and_nothing_waits_on_a_reply() {
        let t0 = Instant::now();
        let at = |pace: f64| t0 + APPEND_PACE.mul_f64(pace);
        let mut link = one_sent(t0);
        // A pace after the last pipeline: at once.
        link.handle_requests([Ok(append(2))], at(1.25));
        assert_eq!(commands(&mut link), calls(2, vec![append(2)]));
        // While it is in flight, the next waits for its reply (no
        // timeout for it); the reply comes after a pace: at once.
        link.handle_requests([Ok(append(3))], at(1.5));
        assert_eq!(link.poll_timeout(), Some(t0 + Duration::from_secs(2)));
        link.handle_reply(CommandId(2), Ok(vec![Value::Int(12)]), at(2.3));
        assert_eq!(commands(&mut link), calls(3, vec![append(3)]));
    }
}
