//! v3: how rooms read: moderation acts as sentences, a room in `/rooms`,
//! where unread messages wait.

use super::plural;
use crate::protocol::{Act, Role, RoomState, ServerMessage};

/// ": REASON", or nothing.
pub(super) fn because(reason: Option<&str>) -> String {
    match reason.filter(|r| !r.trim().is_empty()) {
        Some(reason) => format!(": {reason}"),
        None => String::new(),
    }
}

/// How long from `from` to `until` (ms), said plainly: "for 2 h".
fn for_how_long(from: u64, until: Option<u64>) -> String {
    let Some(until) = until else {
        return "for good".into();
    };
    let seconds = until.saturating_sub(from).div_ceil(1000);
    let how_long = match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => plural((s / 86_400) as usize, "day", "days"),
        s if s >= 7200 || (s >= 3600 && s % 3600 == 0) => format!("{} h", s.div_ceil(3600)),
        s if s >= 120 => format!("{} min", s.div_ceil(60)),
        s => format!("{s} s"),
    };
    format!("for {how_long}")
}

/// A moderation act in words: "alice banned bob from #dev for 2 h".
pub(super) fn notice_text(room: &str, message: &ServerMessage<'_>) -> String {
    let ServerMessage::Notice {
        act,
        by,
        username,
        reason,
        until,
        topic,
        invite_only,
        timestamp,
        ..
    } = message
    else {
        return String::new();
    };
    let whom = username.as_deref().unwrap_or("someone");
    let reason = because(reason.as_deref());
    match act {
        Act::Topic => match topic.as_deref().filter(|t| !t.is_empty()) {
            Some(topic) => format!("{by} set the topic of {room}: {topic}"),
            None => format!("{by} cleared the topic of {room}"),
        },
        Act::Mode if invite_only.unwrap_or(false) => format!("{by} made {room} invite-only"),
        Act::Mode => format!("{by} made {room} public"),
        Act::Invite => format!("{by} invited {whom} to {room}"),
        Act::Kick => format!("{by} removed {whom} from {room}{reason}"),
        Act::Ban => format!(
            "{by} banned {whom} from {room} {}{reason}",
            for_how_long(*timestamp, *until)
        ),
        Act::Unban => format!("{by} lifted the ban on {whom} in {room}"),
        Act::Mute => format!(
            "{by} muted {whom} in {room} {}{reason}",
            for_how_long(*timestamp, *until)
        ),
        Act::Unmute => format!("{by} unmuted {whom} in {room}"),
        Act::Op => format!("{by} made {whom} an operator of {room}"),
        Act::Deop => format!("{by} made {whom} a plain member of {room}"),
        Act::Unknown => format!("{by} did something chat-cli does not know in {room}"),
    }
}

/// One room in `/rooms`: "#dev (you: owner) 3 members, 2 unread: builds".
pub(super) fn room_summary(state: &RoomState<'_>) -> String {
    let mut text = state.room.to_string();
    if let Some(other) = state.room.strip_prefix('@') {
        text.push_str(&format!(" (direct messages with {other})"));
    } else {
        match state.role {
            Some(Role::Owner) => text.push_str(" (yours: owner)"),
            Some(Role::Operator) => text.push_str(" (joined: operator)"),
            Some(Role::Member) => text.push_str(" (joined)"),
            None => {}
        }
        text.push_str(&format!(" {}", plural(state.members, "member", "members")));
        if state.invite_only {
            text.push_str(", invite-only");
        }
    }
    if state.unread > 0 {
        text.push_str(&format!(", {} unread", state.unread));
        if state.mentioned {
            text.push_str(" (mentions you)");
        }
    }
    if let Some(topic) = state.topic.as_deref().filter(|t| !t.is_empty()) {
        text.push_str(&format!(" — {topic}"));
    }
    text
}
