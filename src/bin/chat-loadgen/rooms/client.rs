//! One member of the rooms mode: it logs in, joins its room, hears and
//! times what is said there, and (from a task on the punctual thread)
//! speaks on schedule.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use smol::Timer;

use super::Shared;
use super::plan::SeqTrack;
use super::v3::{self, JOIN_ID, RoomEar, RoomHeard};
use crate::common::{Barrier, Counters, Ctx, Ending, not_logged_in};
use crate::latency::Pending;
use crate::ledger::Ledger;
use crate::net::{Ws, WsSender};
use crate::wire::Stamp;

/// One client's side, read by the coordinator at the end.
#[derive(Debug)]
pub struct Member {
    pub logged_in: bool,
    /// Its join was answered `joined`: from then on it hears its room.
    pub joined: bool,
    pub closed: bool,
    /// Per member of its room (by slot), what it heard of each.
    pub ledger: Ledger,
    pub seq: SeqTrack,
    pub last_delivery_nanos: u64,
    pub errors: u64,
    /// Latencies not yet in the shared histograms.
    pending: Pending,
    pub acked: u64,
}

const LATENCY_BATCH: usize = 64;

impl Member {
    pub fn new(members: usize) -> Self {
        Member {
            logged_in: false,
            joined: false,
            closed: false,
            ledger: Ledger::new(members),
            seq: SeqTrack::default(),
            last_delivery_nanos: 0,
            errors: 0,
            pending: Pending::default(),
            acked: 0,
        }
    }

    pub fn flush(&mut self, shared: &Shared) {
        (self.pending).flush(&shared.latencies, &shared.ack_latencies);
    }

    /// Notes a `textBroadcast` heard in `room`, `now` nanoseconds after the
    /// run's epoch. Returns whether it was a delivery of one of this room's
    /// stamped messages (what the drain counts).
    pub fn hear_said(
        &mut self,
        me: usize,
        in_my_room: bool,
        seq: Option<u64>,
        stamp: Option<Stamp>,
        shared: &Shared,
        now: u64,
    ) -> bool {
        if in_my_room && let Some(seq) = seq {
            self.seq.note(seq);
        }
        let Some(stamp) = stamp else {
            return false;
        };
        let layout = shared.layout;
        let slot = in_my_room
            .then(|| layout.slot_in(layout.room_of(me), stamp.sender as usize))
            .flatten();
        let Some(slot) = slot else {
            // Said in another room, or by no member of this one.
            self.ledger.record(usize::MAX, stamp.seq);
            return false;
        };
        self.ledger.record(slot, stamp.seq);
        self.last_delivery_nanos = now;
        let latency_us = now.saturating_sub(stamp.sent_nanos) / 1000;
        let own = stamp.sender as usize == me;
        self.acked += u64::from(own);
        if self.pending.push(latency_us, own, LATENCY_BATCH) {
            self.flush(shared);
        }
        true
    }
}

pub fn lock(member: &Mutex<Member>) -> MutexGuard<'_, Member> {
    member.lock().unwrap_or_else(|e| e.into_inner())
}

/// Client `n`: connect, log in, join its room, then read until the run
/// ends; once in, it speaks from a task of its own.
pub async fn client(n: usize, ctx: Arc<Ctx>, shared: Arc<Shared>, member: Arc<Mutex<Member>>) {
    let counters = &shared.counters;
    let room = super::plan::room_name(&ctx.run, shared.layout.room_of(n));
    let ws: Ws = match ctx.open_and_log_in(n).await {
        Ok(ws) => ws,
        Err(error) => return counters.fail(format_args!("{error:#}")),
    };
    let ear = RoomEar::new(&ctx.barrier_name());
    let mut barrier = Barrier::default();
    let mut refused = None;
    let (sender, mut frames) = ws.split();
    let mut sender = Some(sender);
    let mut ending = Ending::default();
    let mut join_answered = false;
    while let Some(next) = frames.next().await {
        ending.note(&next);
        let Ok(Message::Text(text)) = next else {
            continue;
        };
        match ear.hear(&text) {
            RoomHeard::Said {
                room: said_in,
                seq,
                stamp,
            } => {
                let now = shared.epoch.elapsed().as_nanos() as u64;
                let in_my_room = said_in == room;
                let delivered = lock(&member).hear_said(n, in_my_room, seq, stamp, &shared, now);
                if delivered {
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
            RoomHeard::Lobby(heard) => barrier.note(&heard, counters),
            RoomHeard::LoginMessage => {
                lock(&member).logged_in = true;
                Counters::bump(&counters.logged_in);
                if let Some(ws) = sender.as_mut()
                    && ws
                        .send(Message::text(v3::join(JOIN_ID, &room)))
                        .await
                        .is_err()
                {
                    break;
                }
            }
            RoomHeard::Membership {
                room: joined,
                change,
                reply_to,
            } if reply_to.as_deref() == Some(JOIN_ID) && !join_answered => {
                join_answered = true;
                if change == "joined" && joined == room {
                    lock(&member).joined = true;
                    Counters::bump(&shared.joined);
                    if let Some(ws) = sender.take() {
                        Counters::bump(&shared.speakers);
                        let speaking = speak(n, ws, room.clone(), shared.clone());
                        ctx.rt.spawn_punctual(speaking).detach();
                    }
                } else {
                    shared.join_failed(format_args!("join {room} answered {change} of {joined}"));
                }
            }
            RoomHeard::Membership { .. } | RoomHeard::Other => {}
            RoomHeard::Error { code, reply_to } => {
                lock(&member).errors += 1;
                if reply_to.as_deref() == Some(JOIN_ID) && !join_answered {
                    join_answered = true;
                    let name = ctx.username(n);
                    shared.join_failed(format_args!("join {room} as {name} refused: {code}"));
                }
                refused.get_or_insert(code.into_owned());
            }
            RoomHeard::Garbage => lock(&member).errors += 1,
        }
    }
    let mut member = lock(&member);
    member.closed = true;
    if member.logged_in {
        if !join_answered {
            shared.join_failed("the connection ended before the join was answered");
        }
        counters.close(ending.as_str());
    } else {
        counters.fail(not_logged_in(&ctx.username(n), refused));
    }
}

/// Member `n` speaking in `room`: waits for the start, then says each
/// message at its due time.
async fn speak(n: usize, mut ws: WsSender, room: String, shared: Arc<Shared>) {
    let t0 = *shared.start.wait().await;
    for k in 0.. {
        let Some(due) = shared.schedule.due(n, k) else {
            break;
        };
        let due = t0 + due;
        Timer::at(due).await;
        let lag_us = due.elapsed().as_micros().try_into().unwrap_or(u64::MAX);
        shared.max_send_lag_us.fetch_max(lag_us, Ordering::Relaxed);
        let stamp = Stamp {
            sender: n as u32,
            seq: k,
            sent_nanos: due.duration_since(shared.epoch).as_nanos() as u64,
        };
        let text = stamp.to_text(shared.text_bytes);
        // Counted before sending, so that no member can hear a number
        // beyond the count.
        shared.sent[n].store(k + 1, Ordering::Relaxed);
        if ws
            .send(Message::text(v3::say(k, &room, &text)))
            .await
            .is_err()
        {
            break;
        }
    }
    Counters::bump(&shared.speakers_done);
}
