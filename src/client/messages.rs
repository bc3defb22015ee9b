//! The user's messages: sending them as the window and the server's pace
//! allow, confirming them (by `replyTo` on v2, by their echo on v1),
//! handling their refusal, and ending once they are all accounted for.

use std::time::Instant;

use rand::Rng;

use super::link::Link;
use super::{
    Action, Client, Exit, Line, Mode, describe, is_lobby, outbox, pacing, plural, seconds,
};
use crate::id;
use crate::protocol::{ClientMessage, ErrorCode, Version};

impl<R: Rng> Client<R> {
    /// `textBroadcast`: someone said something; maybe our own message,
    /// confirmed.
    pub(super) fn on_text_broadcast(
        &mut self,
        username: &str,
        message: &str,
        reply_to: Option<&str>,
        (room, seq): (Option<&str>, Option<u64>),
        timestamp: Option<u64>,
        now: Instant,
    ) {
        let own = self.display_name.as_deref() == Some(username);
        let confirmed = match (self.version, reply_to) {
            (Version::V2 | Version::V3, Some(id)) => self.outbox.answered(id).is_some(),
            (Version::V2 | Version::V3, None) => false,
            (Version::V1, _) => own && self.outbox.confirm_text(message),
        };
        self.roster.add(username);
        let line = Line::from_text(username, message, own, timestamp).mentioning(self.username());
        match room.filter(|room| !is_lobby(Some(room))) {
            Some(room) => self.on_room_text(room, seq, username, line),
            None => {
                let line = self.lobby_line(seq, username, line);
                self.show_live(seq, line);
            }
        }
        if confirmed {
            self.saved_again();
            // Progress: a script's wait at the end starts again.
            if self.ending.is_some() {
                self.ending = Some(now + self.config.linger);
            }
            self.flush();
            self.check_ending();
        }
    }

    /// `errorMessage`: the server refused something: the login while
    /// logging in, else a message of ours, a request, or our logout.
    pub(super) fn on_error(
        &mut self,
        code: ErrorCode,
        reply_to: Option<&str>,
        description: Option<&str>,
        now: Instant,
    ) {
        match self.link {
            Link::LoggingIn(_) => self.login_refused(code, description, now),
            Link::Online(_) => self.refused_online(code, reply_to, description, now),
            _ => {}
        }
    }

    /// The server refused something while we are logged in.
    fn refused_online(
        &mut self,
        code: ErrorCode,
        reply_to: Option<&str>,
        description: Option<&str>,
        now: Instant,
    ) {
        if let Link::Online(online) = &mut self.link
            && let Some(logout) = &online.logout
            && reply_to == Some(logout.id.as_str())
        {
            // Not logged in any more: released from elsewhere already.
            online.logout = None;
            self.show(Line::Status("logged out".into()));
            return self.leave(Exit::Success);
        }
        if self.room_request_refused(code, reply_to, description) {
            return;
        }
        let about_a_message = matches!(
            code,
            ErrorCode::EmptyMessage
                | ErrorCode::MessageTooLong
                | ErrorCode::MessagingWhileNotLoggedIn
                | ErrorCode::RateLimited
                | ErrorCode::Unavailable
                | ErrorCode::Unknown
        );
        // Whether the error is about one of our messages, and the one it
        // took out of flight.
        let (about_ours, refused) = match self.version {
            Version::V2 | Version::V3 => {
                let refused = reply_to.and_then(|id| self.outbox.answered(id));
                (refused.is_some(), refused)
            }
            // v1 cannot say which: the oldest in flight, if any.
            Version::V1 if about_a_message => (true, self.outbox.refuse_oldest()),
            Version::V1 => (false, None),
        };
        if code == ErrorCode::RateLimited
            && let Some(sent) = refused
        {
            return self.too_fast(sent, description, now);
        }
        if code == ErrorCode::Unavailable
            && let Some(sent) = refused
        {
            return self.not_saved(sent, now);
        }
        let refused_one = refused.is_some();
        let description = describe(code, description);
        let line = if about_ours {
            format!("your message was not sent: {description}")
        } else if about_a_message {
            format!("the server refused: {description}")
        } else {
            format!("the server did not understand chat-cli ({description}); please report this")
        };
        self.show_server(Line::Error(line));
        if refused_one {
            self.undelivered += 1;
            self.flush();
            self.check_ending();
        }
    }

    /// The server refused our message `text` as sent too fast: send it
    /// again, first, once the server allows, then one at a time.
    fn too_fast(&mut self, sent: outbox::Sent, description: Option<&str>, now: Instant) {
        if self.send_again_later(sent, description, now) {
            let limit = pacing::the_limit(description.unwrap_or_default());
            let line = match limit {
                "" => "sending slower: the server limits how fast messages may be sent".into(),
                limit => format!("sending slower: the server limits messages ({limit})"),
            };
            self.show(Line::Status(line));
        }
    }

    /// Puts `sent` back first in line, to be sent again when `description`
    /// says (a second if it says nothing), then one at a time; whether
    /// this is the first such wait, to be said.
    fn send_again_later(
        &mut self,
        sent: outbox::Sent,
        description: Option<&str>,
        now: Instant,
    ) -> bool {
        self.outbox.send_again(sent);
        self.outbox.set_window(1);
        let (resume_at, first) = self.pacing.limited(description, now);
        // Waiting as asked is not a lack of progress.
        if let Some(ending) = self.ending {
            self.ending = Some(ending.max(resume_at + self.config.linger));
        }
        first
    }

    /// The server could not save our message `sent` (its store is failing)
    /// and did not send it: send it again, first, in a second, then one at
    /// a time, saying so once.
    fn not_saved(&mut self, sent: outbox::Sent, now: Instant) {
        // Said once per outage, whatever the pacing said before.
        let _ = self.send_again_later(sent, None, now);
        if !std::mem::replace(&mut self.store_failing, true) {
            let line = "the server cannot save messages right now; yours will be sent again";
            self.show(Line::Status(line.into()));
        }
    }

    /// A message of ours was saved: if the server could not save one
    /// before, say that it can again (interactive: a script's exit status
    /// already says whether everything was delivered).
    fn saved_again(&mut self) {
        if std::mem::take(&mut self.store_failing) && self.config.mode == Mode::Interactive {
            self.show(Line::Status("the server saves messages again".into()));
        }
    }

    /// A message that may or may not have reached the server.
    pub(super) fn maybe_lost(&mut self, text: &str) {
        self.undelivered += 1;
        self.show(Line::Error(format!(
            "the connection dropped before the server confirmed this message; \
             it may not have been delivered: {text}"
        )));
    }

    /// Queues a message typed (or read) for the current room, and sends
    /// it if it can.
    pub(super) fn say(&mut self, text: String) {
        let room = self.rooms.target();
        self.say_to(text, room);
    }

    /// Queues a message for `room` (`None`: the lobby), and sends it if it
    /// can.
    pub(super) fn say_to(&mut self, text: String, room: Option<String>) {
        match self.outbox.push_to(text, room) {
            Ok(()) if self.is_online() => self.flush(),
            Ok(()) => {
                if self.been_online() && self.config.mode == Mode::Interactive {
                    self.show(Line::Status(format!(
                        "not connected: your message will be sent when the connection is back \
                         ({} waiting)",
                        self.outbox.queued()
                    )));
                }
            }
            Err(outbox::Full) => {
                self.undelivered += 1;
                self.show(Line::Error(format!(
                    "not sent: the connection is down and {} are already waiting",
                    plural(self.outbox.queued(), "message", "messages")
                )));
            }
        }
    }

    /// Sends what the window allows.
    pub(super) fn flush(&mut self) {
        if !self.is_online() || self.logging_out() || self.pacing.is_paused() {
            return;
        }
        if self.pacing.is_slow() && self.outbox.queued() == 0 && self.outbox.in_flight() == 0 {
            self.pacing.drained();
            self.outbox.set_window(self.config.window);
        }
        let rng = &mut self.rng;
        while let Some(sent) = self.outbox.next_to_send(|| id::message_id(rng)) {
            if sent.room.is_some() && self.version != Version::V3 {
                // Its room would be ignored: it would land in the lobby.
                let _ = self.outbox.answered(&sent.id);
                self.undelivered += 1;
                self.events
                    .push_back(super::Event::Line(Line::Error(format!(
                        "not sent: this server has no rooms or direct messages: {}",
                        sent.text
                    ))));
                continue;
            }
            let message = ClientMessage::TextFromUser {
                id: sent.id,
                text: sent.text,
                room: sent.room,
            };
            let text = String::from_utf8(message.encode()).unwrap_or_default();
            self.actions.push_back(Action::Send(text));
        }
    }

    /// Leaves: at once, or once the server has confirmed the messages on
    /// their way (waiting at most `linger`). Messages that were never sent,
    /// or whose fate a dropped connection left unknown, are shown and make
    /// it a failure.
    pub(super) fn quit(&mut self, now: Instant) {
        // What was read is worth telling the user's other devices.
        self.send_reads();
        self.quit_logged_in = self.config.mode == Mode::Interactive && self.been_online();
        for text in self.outbox.take_unchecked() {
            self.maybe_lost(&text);
        }
        let queued = self.outbox.take_queued();
        for text in &queued {
            self.show(Line::Error(format!("not sent: {text}")));
        }
        self.undelivered += queued.len();
        if self.outbox.in_flight() > 0 && self.is_online() {
            // Sent a moment ago, most likely: its echo is on its way.
            self.ending = Some(now + self.config.linger);
            return self.check_ending();
        }
        self.leave_as_delivered();
    }

    /// Interactive, once finished by `/quit` or Ctrl-D after a login (not
    /// `/logout`): a line saying that the name stays reserved, and for how
    /// long, for the driver to show last. The server does not say its
    /// login TTL: chat-server's default is assumed, and said to be one.
    pub fn farewell(&self) -> Option<Line> {
        if !self.is_finished() || !self.quit_logged_in {
            return None;
        }
        let name = self.username();
        let line = match self.version {
            Version::V1 => format!(
                "bye: the server keeps the name {name} reserved for a while \
                 (chat-server: 10 minutes); log in as {name} again from this chat-cli to keep it"
            ),
            Version::V2 | Version::V3 => format!(
                "bye: the name {name} stays yours for 10 minutes (chat-server's default login \
                 TTL; the server may be set otherwise); log in as {name} again from this \
                 chat-cli before then to keep it"
            ),
        };
        Some(Line::Status(line))
    }

    /// Leaves with success if every message was delivered, else saying how
    /// many were not.
    fn leave_as_delivered(&mut self) {
        let exit = match self.undelivered {
            0 => Exit::Success,
            n => Exit::Failure(format!(
                "{} not delivered",
                plural(n, "message was", "messages were")
            )),
        };
        self.leave(exit);
    }

    /// A script whose input ended finishes once everything is confirmed.
    pub(super) fn check_ending(&mut self) {
        if self.ending.is_none()
            || !self.been_online()
            || !self.outbox.is_empty()
            || self.logging_out()
        {
            return;
        }
        self.leave_as_delivered();
    }

    /// The wait at the end ran out before the server confirmed everything.
    pub(super) fn give_up_ending(&mut self) {
        let pending = self.outbox.queued() + self.outbox.in_flight() + self.outbox.unchecked();
        if self.config.mode == Mode::Interactive {
            for text in self.outbox.take_in_flight() {
                self.show(Line::Error(format!(
                    "the server did not confirm this message; it may not have been \
                     delivered: {text}"
                )));
            }
        }
        self.leave(Exit::Failure(format!(
            "gave up after {}: the server did not confirm {}",
            seconds(self.config.linger),
            plural(pending, "message", "messages")
        )));
    }
}
