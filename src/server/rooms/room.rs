//! One room or direct conversation as data: its settings, members, bans,
//! invites, and the ring of its latest messages and notices.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::super::history::Said;
use super::super::presence::Presence;
use super::super::snapshot::StoredMessage;
use crate::protocol::{Act, Role, ServerMessage};

/// A room (`#name`) or a direct conversation (`@a\nb`).
#[derive(Debug)]
pub(crate) struct Room {
    /// `#Name` as first created; for a DM `@A\nB`, the parties' names in
    /// the order of their keys (so each side can show the other's).
    pub(crate) display: Arc<str>,
    /// The owner's name key.
    pub(crate) owner: Option<Arc<str>>,
    pub(crate) invite_only: bool,
    pub(crate) topic: Option<Arc<str>>,
    pub(crate) epoch: Arc<str>,
    /// By name key.
    pub(crate) members: HashMap<Arc<str>, Member>,
    /// Name key → until (ms since the Unix epoch; `None`: for good).
    pub(crate) bans: HashMap<Arc<str>, Option<u64>>,
    /// Name keys invited.
    pub(crate) invites: HashSet<Arc<str>>,
    pub(crate) log: Log,
    /// The pacing of `member` notices, as v2 presence's (see
    /// `membership`); created by the first notice.
    pub(in crate::server) member_notices: Option<Presence>,
}

/// A name in a room.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// The name as everyone sees it.
    pub(crate) display: Arc<str>,
    pub(crate) role: Role,
    /// Until when it may not speak (`Some(u64::MAX)`: for good).
    pub(crate) muted_until: Option<u64>,
}

impl Member {
    pub(in crate::server) fn is_muted(&self, now_ms: u64) -> bool {
        self.muted_until.is_some_and(|until| until > now_ms)
    }
}

impl Room {
    pub(in crate::server) fn new(display: Arc<str>, epoch: Arc<str>, capacity: usize) -> Room {
        Room {
            display,
            owner: None,
            invite_only: false,
            topic: None,
            epoch,
            members: HashMap::new(),
            bans: HashMap::new(),
            invites: HashSet::new(),
            log: Log::new(capacity),
            member_notices: None,
        }
    }

    /// Whether `key` is banned at `now_ms` (an expired ban no longer is).
    pub(in crate::server) fn ban_of(&self, key: &str, now_ms: u64) -> Option<Option<u64>> {
        self.bans
            .get(key)
            .copied()
            .filter(|until| until.is_none_or(|until| until > now_ms))
    }
}

/// What a moderation act says, as kept in the room's history: the `text`
/// of its `Append` is this object as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NoticeBody {
    pub(crate) act: Act,
    pub(crate) by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) until: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) invite_only: Option<bool>,
}

/// One message or notice of a room, as kept.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) said: Said,
    /// `Some`: a moderation notice (`said.message` is its JSON).
    pub(crate) notice: Option<Box<NoticeBody>>,
}

impl Entry {
    /// The frame of this entry as seen in `room` (its name on the wire
    /// for the recipient); `reply_to` marks the sender's own copy.
    pub(in crate::server) fn message<'a>(
        &'a self,
        room: &'a str,
        reply_to: Option<&'a str>,
    ) -> ServerMessage<'a> {
        match &self.notice {
            None => ServerMessage::TextBroadcast {
                id: (&*self.said.id).into(),
                reply_to: reply_to.map(Into::into),
                username: (*self.said.username).into(),
                message: (&*self.said.message).into(),
                seq: Some(self.said.seq),
                timestamp: Some(self.said.timestamp),
                room: Some(room.into()),
            },
            Some(body) => ServerMessage::Notice {
                id: (&*self.said.id).into(),
                room: room.into(),
                seq: self.said.seq,
                timestamp: self.said.timestamp,
                act: body.act,
                by: (*body.by).into(),
                username: body.username.as_deref().map(Into::into),
                reason: body.reason.as_deref().map(Into::into),
                until: body.until,
                topic: body.topic.as_deref().map(Into::into),
                invite_only: body.invite_only,
            },
        }
    }

    /// Its encoded length in a room named "" (add the room's name). A
    /// message's is counted without encoding it (a store of millions of
    /// messages is measured at start-up); a notice's is encoded.
    fn measure(&mut self) {
        self.said.encoded_len = match self.notice {
            Some(_) => self.message("", None).encoded_len(),
            None => text_broadcast_len(&self.said),
        };
    }

    /// A stored message, back as an entry (`None`: a notice that does not
    /// decode).
    pub(in crate::server) fn restore(stored: StoredMessage) -> Option<Entry> {
        let notice = if stored.notice {
            Some(Box::new(serde_json::from_str(&stored.text).ok()?))
        } else {
            None
        };
        let mut entry = Entry {
            said: Said {
                id: stored.id.into(),
                username: stored.username.into(),
                message: stored.text.into(),
                seq: stored.seq,
                timestamp: stored.timestamp,
                encoded_len: 0,
            },
            notice,
        };
        entry.measure();
        Some(entry)
    }
}

/// A room's numbering and its latest messages.
#[derive(Debug)]
pub(crate) struct Log {
    ring: VecDeque<Entry>,
    capacity: usize,
    /// `seq` of the latest message or notice (0 before the first).
    pub(crate) last_seq: u64,
}

impl Log {
    pub(in crate::server) fn new(capacity: usize) -> Log {
        Log {
            ring: VecDeque::new(),
            capacity,
            last_seq: 0,
        }
    }

    pub(in crate::server) fn next_seq(&self) -> u64 {
        self.last_seq + 1
    }

    pub(in crate::server) fn push(&mut self, mut entry: Entry) {
        self.last_seq = self.last_seq.max(entry.said.seq);
        if self.capacity == 0 {
            return;
        }
        if entry.said.encoded_len == 0 {
            entry.measure();
        }
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(entry);
    }

    pub(in crate::server) fn entries(&self) -> &VecDeque<Entry> {
        &self.ring
    }

    /// The `seq` of the oldest entry held.
    pub(in crate::server) fn first_held(&self) -> Option<u64> {
        self.ring.front().map(|e| e.said.seq)
    }
}

/// Which entries of a ring a `history` page holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) range: std::ops::Range<usize>,
    pub(crate) complete: bool,
}

/// Which way a page reads from its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// The latest entries.
    Latest,
    /// Entries before this `seq`, the closest to it kept.
    Before(u64),
    /// Entries after this `seq`, the closest to it kept.
    After(u64),
}

/// A page of a ring in `seq` order: at most `limit` entries and `max_bytes`
/// (each entry costs `cost(i)` and a comma), read from `bound`. `complete`
/// when it reaches the end of the ring in that direction.
pub(in crate::server) fn page(
    len: usize,
    seq_at: impl Fn(usize) -> u64,
    cost: impl Fn(usize) -> usize,
    bound: Bound,
    limit: usize,
    max_bytes: usize,
) -> Page {
    // The first index whose seq is >= s.
    let position = |s: u64| {
        let (mut low, mut high) = (0, len);
        while low < high {
            let mid = (low + high) / 2;
            if seq_at(mid) < s {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    };
    match bound {
        Bound::Latest | Bound::Before(_) => {
            let end = match bound {
                Bound::Before(before) => position(before),
                _ => len,
            };
            let mut start = end;
            let mut bytes = 0;
            while start > 0 && end - start < limit {
                bytes += cost(start - 1) + 1;
                if bytes > max_bytes {
                    break;
                }
                start -= 1;
            }
            Page {
                range: start..end,
                complete: start == 0,
            }
        }
        Bound::After(after) => {
            let start = position(after.saturating_add(1));
            let mut end = start;
            let mut bytes = 0;
            while end < len && end - start < limit {
                bytes += cost(end) + 1;
                if bytes > max_bytes {
                    break;
                }
                end += 1;
            }
            Page {
                range: start..end,
                complete: end == len,
            }
        }
    }
}

/// The length of `said`'s `textBroadcast` in a room named "", without
/// `replyTo`, as serde_json encodes it.
fn text_broadcast_len(said: &Said) -> usize {
    const FIXED: usize =
        r#"{"type":"textBroadcast","id":,"username":,"message":,"seq":,"timestamp":,"room":""}"#
            .len();
    FIXED
        + json_string_len(&said.id)
        + json_string_len(&said.username)
        + json_string_len(&said.message)
        + digits(said.seq)
        + digits(said.timestamp)
}

/// The length of `text` as a JSON string, quotes included, as serde_json
/// escapes it: `"` and `\` and the control characters \b \f \n \r \t
/// take two bytes, other control characters six (`\u00XX`).
fn json_string_len(text: &str) -> usize {
    2 + text
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | 0x08 | 0x0C | b'\n' | b'\r' | b'\t' => 2,
            0x00..=0x1F => 6,
            _ => 1,
        })
        .sum::<usize>()
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_measured_as_it_is_encoded() {
        let texts = [
            "",
            "plain",
            "q\"uote\\back",
            "\u{1}\u{8}\n\t\u{1f}\u{7f}",
            "é🦀\u{2028}",
        ];
        for (n, text) in texts.iter().enumerate() {
            let said = Said {
                id: "V1StGXR8_Z5jdHi6B-myT".into(),
                username: format!("n{text}").into(),
                message: (*text).into(),
                seq: [0, 9, 10, 99_999, u64::MAX][n],
                timestamp: [0, 1, 1_700_000_000_000, 5, u64::MAX][n],
                encoded_len: 0,
            };
            let entry = Entry {
                said: said.clone(),
                notice: None,
            };
            assert_eq!(
                text_broadcast_len(&said),
                entry.message("", None).encoded_len(),
                "{text:?}"
            );
        }
    }
}
