//! What Redis answered the link's batches, heartbeats and JOINs, and what
//! each answer means for this node: the core's answers, a rejoin after
//! Redis forgot this node, the rebuilding window after it lost the
//! cluster's keys.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;
use tracing::{debug, error, info, warn};

use super::super::events::{Joined, number, single, text};
use super::super::requests::{Answer, Call, Failed, Remote, ToCore, answer_of, secret_claimed};
use super::super::room_events::room_of;
use super::super::room_scripts::REFUSED;
use super::super::scripts::{LOST, REBUILDING};
use super::{JoinName, Phase, RedisLink, State, Status};
use crate::protocol::LeaveReason;
use crate::server::Write;

/// A room, this node's refused epoch for it, and the refusals' answers.
type RefusedCreation = (Arc<str>, Arc<str>, Vec<Answer>);

impl RedisLink {
    /// The answers to a batch: each request's outcome, this node's
    /// messages through the sequencer. While settling before a JOIN, the
    /// names given count in `joining`.
    pub(super) fn replied(
        &mut self,
        batch: Vec<Call>,
        values: Vec<Value>,
        mut joining: Option<&mut Vec<JoinName>>,
        now: Instant,
    ) {
        let mut errors = 0;
        let mut values = values.into_iter();
        // A refused creation of a room and the rest of its run of writes.
        let mut creation: Option<RefusedCreation> = None;
        for call in batch {
            let value = values.next().unwrap_or(Value::Nil);
            if !is_error(&value, REFUSED) {
                self.hold_refusal(creation.take(), now);
            }
            if is_error(&value, LOST) {
                self.forgot();
                let error = Failed(format!(
                    "Redis at {} lost the cluster's keys: registering again",
                    self.place
                ));
                self.to_core.push_back(ToCore::Answer(call.fail(error)));
                continue;
            }
            if is_error(&value, REBUILDING) {
                let error = Failed("the cluster is registering again what it holds".into());
                self.to_core.push_back(ToCore::Answer(call.fail(error)));
                continue;
            }
            if is_error(&value, REFUSED) {
                // A race another node won (see `room_scripts`): the core
                // takes its change back.
                let why = match &value {
                    Value::ServerError(e) => e.details().unwrap_or("refused").to_owned(),
                    _ => String::new(),
                };
                let answer = call.fail(Failed(why));
                match (&call, &mut creation) {
                    (
                        Call::RoomWrite {
                            write: Write::Room { room, epoch, .. },
                            ..
                        },
                        _,
                    ) => {
                        self.hold_refusal(creation.take(), now);
                        creation = Some((room.clone(), epoch.clone(), vec![answer]));
                    }
                    (Call::RoomWrite { write, .. }, Some((room, _, answers)))
                        if room_of(write) == Some(&*room) =>
                    {
                        answers.push(answer)
                    }
                    _ => {
                        self.hold_refusal(creation.take(), now);
                        self.to_core.push_back(ToCore::Answer(answer));
                    }
                }
                continue;
            }
            if let Value::ServerError(e) = &value {
                if !self.failing_calls {
                    warn!("Redis at {} refused a request: {e}", self.place);
                }
                errors += 1;
                let error = Failed(format!("Redis: {e}"));
                self.to_core.push_back(ToCore::Answer(call.fail(error)));
                continue;
            }
            if released_rooms(&call, &value)
                && let Call::Reserve { key, .. } | Call::Logout { key, .. } = &call
            {
                // Before the answer: the name's new holder starts with
                // none of the earlier one's rooms.
                let write = Write::Release { key: key.clone() };
                self.to_core.push_back(ToCore::Remote(Remote::Write(write)));
                self.releases.push_back(key.clone());
            }
            let Some(answer) = answer_of(&call, &value) else {
                if !self.failing_calls {
                    warn!("Redis at {}: an unexpected answer {value:?}", self.place);
                }
                errors += 1;
                let error = Failed("an unexpected answer from Redis".into());
                self.to_core.push_back(ToCore::Answer(call.fail(error)));
                continue;
            };
            if let Some((secret, display)) = secret_claimed(&call, &answer) {
                let Call::Reserve { key, .. } = &call else {
                    continue;
                };
                if let Some(names) = joining.as_deref_mut() {
                    match names.iter_mut().find(|n| n.key == *key) {
                        Some(name) => name.connections += 1,
                        None => names.push(JoinName {
                            key: key.clone(),
                            display: display.clone(),
                            secret: secret.to_owned(),
                            connections: 1,
                        }),
                    }
                }
                let hash = secret.to_owned();
                self.secrets.learn(key.clone(), hash, self.questions);
            }
            match (answer, &call) {
                (Answer::Appended(ticket, Ok(seq)), Call::RoomAppend { room, .. }) => {
                    self.rooms.appended(room, ticket, seq, &mut self.to_core)
                }
                (Answer::Appended(ticket, Ok(seq)), _) => {
                    self.sequencer.appended(ticket, seq, &mut self.to_core)
                }
                (answer, _) => self.to_core.push_back(ToCore::Answer(answer)),
            }
        }
        self.hold_refusal(creation, now);
        if errors == 0 && self.failing_calls {
            info!("Redis at {} takes requests again", self.place);
        }
        self.failing_calls = errors > 0;
    }

    /// A refused creation's answers wait for the winning creation (see
    /// [`RoomSequencers`](super::super::rooms::RoomSequencers)).
    fn hold_refusal(&mut self, creation: Option<RefusedCreation>, now: Instant) {
        if let Some((room, epoch, answers)) = creation {
            self.rooms.refused_creation(&room, epoch, answers, now);
        }
    }

    /// The heartbeat's answer: `{1 if this node was not registered, nodes
    /// swept}`.
    pub(super) fn beaten(&mut self, value: Value) {
        let Value::Array(values) = value else {
            return debug!("heartbeat: unexpected answer {value:?}");
        };
        let absent = values.first().and_then(number) == Some(1);
        let swept = values.get(1).and_then(number).unwrap_or(0);
        if swept > 0 {
            info!(
                "swept {}: their users left",
                crate::serve::counted(swept, "dead node")
            );
        }
        if absent
            && let State::Up {
                phase: Phase::Ready { rejoin, .. },
                ..
            } = &mut self.state
        {
            warn!(
                "Redis counted this node as gone (no heartbeat for {:?}): registering its \
                 names again",
                self.settings.node_timeout,
            );
            *rejoin = true;
        }
    }

    /// A script answered [`LOST`]: Redis does not know this node any more.
    /// It registers again what it holds once nothing is in flight (a JOIN
    /// under way already does); not ready until then.
    pub(super) fn forgot(&mut self) {
        let State::Up { phase, .. } = &mut self.state else {
            return;
        };
        if let Phase::Ready { rejoin, .. } = phase {
            *rejoin = true;
        }
        if !std::mem::replace(&mut self.forgotten, true) {
            warn!(
                "Redis at {} does not know this node any more: it lost the cluster's keys \
                 (FLUSHALL, eviction under maxmemory, a failover to an empty replica) or \
                 swept this node; registering again what it holds, refusing new names and \
                 messages until the cluster has",
                self.place
            );
            let reason = format!(
                "Redis at {} does not know this node (it lost the cluster's keys?): \
                 registering again",
                self.place
            );
            self.status.push_back(Status::Rebuilding(reason));
        }
    }

    /// Registered again after a loss; the other nodes have `left` to do
    /// the same, and Redis refuses new names and messages meanwhile.
    pub(super) fn rebuilding(&mut self, left: Duration, now: Instant) {
        if self.rebuilt_at.is_none() {
            warn!(
                "Redis at {} lost the cluster's keys: this node registered again what it \
                 holds; new names and messages are refused for {left:.1?} while every node does",
                self.place,
            );
        }
        self.rebuilt_at = Some(now + left);
        let reason = format!(
            "Redis at {} lost the cluster's keys: rebuilding the cluster's state",
            self.place
        );
        self.status.push_back(Status::Rebuilding(reason));
    }

    /// The JOIN script's answer after a (re)connect: how long the cluster
    /// is still rebuilding after a loss.
    pub(super) fn rejoined(
        &mut self,
        value: Option<Value>,
        names: Vec<JoinName>,
    ) -> Result<Duration, String> {
        let value = single(value.into_iter().collect())?;
        if let Value::Array(answer) = &value
            && answer.len() == 1
        {
            let found = answer.first().and_then(text).unwrap_or_default();
            if self.other_epoch.replace(found.clone()).as_ref() == Some(&found) {
                return Err(format!("Redis holds epoch {found}")); // said already
            }
            error!(
                "Redis at {} holds another chat (epoch {found}; this node serves epoch {}): it \
                 lost its data and another node started afresh meanwhile. Restart this node to \
                 join that chat; until then it refuses logins and messages",
                self.place, self.epoch
            );
            return Err(format!("Redis holds epoch {found}"));
        }
        let joined = Joined::read(&value).ok_or("an unexpected answer to joining")?;
        self.sequencer.published_up_to(joined.seq);
        for key in joined.conflicts {
            // Someone else holds it now: this node's holders lose it.
            let Some(name) = names.iter().find(|n| *n.key == *key) else {
                continue;
            };
            warn!(
                "{} was taken by someone else while Redis was out of reach",
                name.display
            );
            self.secrets.take(&key);
            self.sequencer.event(Remote::LoggedOut {
                key: name.key.clone(),
                username: name.display.clone(),
            });
        }
        for username in joined.gone {
            self.sequencer.event(Remote::Left {
                username: username.into(),
                reason: LeaveReason::Disconnected,
            });
        }
        Ok(Duration::from_millis(joined.rebuilding))
    }
}

/// Whether RESERVE's or LOGOUT's answer says the name's rooms were
/// released with it.
fn released_rooms(call: &Call, value: &Value) -> bool {
    match (call, value) {
        (Call::Reserve { .. }, Value::Array(answer)) => {
            answer.get(2).and_then(text).as_deref() == Some("1")
        }
        (Call::Logout { .. }, value) => number(value) == Some(2),
        _ => false,
    }
}

/// Whether `value` is a script's error with this `code`.
pub(super) fn is_error(value: &Value, code: &str) -> bool {
    matches!(value, Value::ServerError(e) if e.code() == code)
}
