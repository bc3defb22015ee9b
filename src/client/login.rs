//! Logging in: the server's answer (`loginMessage`, then on v2 the
//! catch-up `history` that completes the login), a refused login, the
//! secret to keep, and where the client stands in the server's numbering.

use std::time::Instant;

use rand::Rng;

use super::link::{Accepted, Link, Online};
use super::{
    Action, Client, ClientConfig, Event, Exit, Line, Mode, OnNameRefused, Saved, describe,
    is_lobby, plural,
};
use crate::id;
use crate::protocol::{ClientMessage, EPOCH_MAX_CHARS, ErrorCode, ServerMessage, Version};

/// v2: how far into the server's numbered messages the client has seen.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// The highest `seq` seen; the next login's `since`. A message at or
    /// below it has been shown already.
    pub(super) last_seq: Option<u64>,
    /// The numbering `last_seq` belongs to (the `epoch` of the last
    /// `history`), sent with `since`; `None` from a server that sends none.
    pub(super) epoch: Option<String>,
}

impl Seen {
    /// Whether a message numbered `seq` is new (and if so, remember it).
    /// v1 messages have no number and are always new.
    pub(super) fn fresh(&mut self, seq: Option<u64>) -> bool {
        let Some(seq) = seq else {
            return true;
        };
        if self.last_seq.is_some_and(|last| seq <= last) {
            return false;
        }
        self.last_seq = Some(seq);
        true
    }
}

/// What a catch-up says besides its messages.
struct Reading {
    /// Its `seq` numbers count from another start than those seen before.
    renumbered: bool,
    /// Messages we asked for are no longer held.
    missed: bool,
}

impl<R: Rng> Client<R> {
    /// A name, after [`Event::AskName`], with the secret saved for it if
    /// any: logs in with it.
    pub fn handle_name(&mut self, name: &str, saved_secret: Option<String>, now: Instant) {
        let saved = Saved {
            secret: saved_secret,
            ..Saved::default()
        };
        self.handle_name_saved(name, saved, now);
    }

    /// A name, after [`Event::AskName`], with what is saved for it
    /// (`SecretStore::lookup`): logs in with it, on the connection made
    /// before asking if it is still up, else on a new one.
    pub fn handle_name_saved(&mut self, name: &str, saved: Saved, now: Instant) {
        let Link::AskingName { open } = self.link else {
            return;
        };
        self.config.username = name.to_owned();
        self.config.set_saved(saved);
        self.secret = first_secret(&self.config);
        self.saved_secret = self.config.saved_secret.clone();
        if open {
            self.log_in(now + self.config.login_timeout, true);
        } else {
            self.connect(now);
        }
    }

    /// `loginMessage`: the server accepted the login. On v1 that is all;
    /// on v2 the `history` that follows completes it.
    pub(super) fn on_login_message(&mut self, username: String, secret: String, now: Instant) {
        let Link::LoggingIn(login) = &mut self.link else {
            return;
        };
        match self.version {
            Version::V2 | Version::V3 => login.accepted = Some(Accepted { username, secret }),
            Version::V1 => {
                let returning = self.been_online();
                self.logged_in(username, secret, now);
                if !returning {
                    // `--room` or `--to` cannot be done here: said (a
                    // script ends) before anything is sent.
                    self.rooms_after_login(None, false);
                    if self.is_finished() {
                        return;
                    }
                }
                // A v2 connection dropped, and the server came back
                // speaking v1: no history will tell.
                for text in self.outbox.take_unchecked() {
                    self.maybe_lost(&text);
                }
                self.flush();
                self.check_ending();
            }
        }
    }

    /// `history`: on v2, the catch-up that completes a login.
    pub(super) fn on_history(
        &mut self,
        messages: Vec<ServerMessage<'_>>,
        complete: bool,
        epoch: Option<&str>,
        room: Option<&str>,
        now: Instant,
    ) {
        if let Some(room) = room.filter(|room| !is_lobby(Some(room))) {
            if self.is_online() {
                self.on_room_history(room, messages, complete, epoch);
            }
            return;
        }
        if matches!(self.link, Link::LoggingIn(_)) {
            // Longer than the protocol allows: not an epoch to trust.
            let epoch = epoch
                .filter(|e| e.chars().count() <= EPOCH_MAX_CHARS)
                .map(str::to_owned);
            self.caught_up(messages, complete, epoch, now);
        }
    }

    /// The login succeeded: online, secret saved, and the user told.
    fn logged_in(&mut self, username: String, secret: String, now: Instant) {
        self.link = Link::Online(Online {
            up_since: now,
            last_heard: now,
            ping_sent: None,
            logout: None,
            roster_request: None,
        });
        if self.saved_secret.as_deref() != Some(secret.as_str()) {
            self.events.push_back(Event::SecretIssued {
                username: username.clone(),
                secret: secret.clone(),
            });
            self.saved_secret = Some(secret.clone());
        }
        self.secret = Some(secret);
        if self.version == Version::V1 {
            self.carried.clear(); // no userList will settle them
            self.gone.clear();
        }
        let status = if self.been_online() {
            match self.outbox.queued() {
                0 => Some(format!("back online as {username}")),
                n => Some(format!(
                    "back online as {username}; sending {}",
                    plural(n, "queued message", "queued messages")
                )),
            }
        } else if self.config.mode == Mode::Interactive {
            let v1 = match self.version {
                Version::V1 => {
                    " (this server speaks protocol v1: no catch-up after a dropped connection, \
                     no /who, no /logout)"
                }
                Version::V2 | Version::V3 => "",
            };
            Some(format!(
                "connected to {} as {username}; /help lists the commands{v1}",
                self.config.server
            ))
        } else {
            None
        };
        if let Some(status) = status {
            self.show(Line::Status(status));
        }
        self.display_name = Some(username);
    }

    /// v2: the `history` after `loginMessage` completes the login. Shows
    /// what was said while we were away (each `seq` once), settles the
    /// messages a dropped connection left unconfirmed, then shows what
    /// came while logging in and sends what waits.
    fn caught_up(
        &mut self,
        messages: Vec<ServerMessage<'_>>,
        complete: bool,
        epoch: Option<String>,
        now: Instant,
    ) {
        let Link::LoggingIn(login) = &mut self.link else {
            return;
        };
        let Some(Accepted { username, secret }) = login.accepted.take() else {
            return; // no loginMessage before it: not ours to act on
        };
        let login_since = login.since;
        let held = std::mem::take(&mut login.held);
        let login_rooms = login.rooms.take();
        let returning = self.been_online();
        self.returning = returning;
        let Reading { renumbered, missed } =
            self.read_catch_up(login_since, &messages, complete, epoch.as_deref());
        if renumbered {
            // The numbers seen belong to a numbering that is gone: every
            // message of the new one is new to us.
            self.seen.last_seq = Some(0);
        }
        if let Some(epoch) = &epoch
            && self.seen.epoch.as_ref() != Some(epoch)
        {
            // Before the secret is saved, so that it is filed for every
            // address of this server.
            self.events.push_back(Event::ServerStore(epoch.clone()));
        }
        self.seen.epoch = epoch;
        // A name claimed afresh (a secret other than the one we sent) has a
        // new owner: what was said under it before is someone else's, bar
        // our own messages that a dropped connection left unconfirmed.
        let new_owner = self.secret.as_deref() != Some(secret.as_str());
        let mut lines = Vec::new();
        let mut own = Vec::new();
        for message in messages {
            let ServerMessage::TextBroadcast {
                username: from,
                message,
                seq,
                timestamp,
                ..
            } = message
            else {
                continue;
            };
            if !self.seen.fresh(seq) {
                continue;
            }
            let is_own = from == username;
            lines.push((from.into_owned(), message.into_owned(), is_own, timestamp));
            if is_own {
                own.push(lines.len() - 1);
            }
        }
        // From now on every login asks for what came after what we saw;
        // an empty catch-up for a newcomer means nothing was said yet.
        self.seen.last_seq.get_or_insert(0);
        let checked = self
            .outbox
            .check(own.iter().map(|&at| lines[at].1.as_str()), complete);
        if new_owner {
            // Ours are those the check matched, in order, as it did.
            let mut delivered = checked.delivered.iter().peekable();
            for &at in &own {
                let line = &mut lines[at];
                line.2 = delivered.next_if(|text| **text == line.1).is_some();
            }
        }
        let lines: Vec<Line> = lines
            .into_iter()
            .map(|(from, message, own, at)| {
                Line::from_text(&from, &message, own, at).mentioning(&username)
            })
            .collect();
        self.logged_in(username, secret, now);
        if returning && renumbered {
            self.show(Line::Status(
                "the server's message store is new: messages said before it are gone".into(),
            ));
        }
        if returning && missed {
            self.show(Line::Status(
                "some messages were missed while you were away: the server no longer holds them"
                    .into(),
            ));
        }
        // A script prints what is said while it takes part; the context a
        // newcomer gets is for people.
        if returning || self.config.mode == Mode::Interactive {
            // A person sees where the replayed messages end and the live
            // ones begin; a script's output stays one message a line.
            let divide = self.config.mode == Mode::Interactive
                && !self.config.output.is_json()
                && !lines.is_empty();
            if divide {
                let count = lines.len();
                self.show(Line::Divider(if returning {
                    format!(
                        "{} while you were away",
                        plural(count, "message", "messages")
                    )
                } else {
                    plural(count, "earlier message", "earlier messages")
                }));
            }
            for line in lines {
                let line = self.labelled(None, String::new(), line);
                self.show_server(line);
            }
            if divide {
                self.show(Line::Divider("now".into()));
            }
        }
        self.show_checked(checked);
        for (seq, line) in held {
            if self.seen.fresh(seq) {
                self.show_now(line);
            }
        }
        self.rooms_after_login(login_rooms, returning);
        if self.is_finished() {
            return;
        }
        // Names to complete: everyone online now (what is said from now on
        // keeps it current).
        if self.config.mode == Mode::Interactive && !self.config.output.is_json() {
            let id = id::message_id(&mut self.rng);
            self.send(&ClientMessage::ListUsers { id: id.clone() });
            if let Link::Online(online) = &mut self.link {
                online.roster_request = Some(id);
            }
        }
        self.flush();
        self.check_ending();
    }

    /// What the catch-up for our `since` says: whether it comes from
    /// another numbering than the one we counted in (the numbers seen mean
    /// nothing any more), and whether messages were missed.
    ///
    /// A server that names its numbering (`epoch`) says so: it then
    /// answered as for `since: 0`, and `complete` is about its own
    /// numbering. One that does not (older servers) shows a renumbering
    /// only when our `since` is beyond what it ever counted: it sends
    /// everything it holds, marked incomplete although nothing of its own
    /// numbering is missing unless it no longer holds message 1. Once such
    /// a server has counted past our `since` again, a renumbering cannot
    /// be seen at all: only the epoch tells.
    fn read_catch_up(
        &self,
        login_since: Option<u64>,
        messages: &[ServerMessage<'_>],
        complete: bool,
        epoch: Option<&str>,
    ) -> Reading {
        let plain = Reading {
            renumbered: false,
            missed: !complete,
        };
        let Some(since) = login_since else {
            return plain; // a newcomer: nothing seen to forget
        };
        if let (Some(ours), Some(theirs)) = (self.seen.epoch.as_deref(), epoch) {
            return Reading {
                renumbered: ours != theirs,
                missed: !complete,
            };
        }
        let first = messages.iter().find_map(|m| match m {
            ServerMessage::TextBroadcast { seq, .. } => *seq,
            _ => None,
        });
        if !complete && first.is_none_or(|first| first <= since) {
            return Reading {
                renumbered: true,
                missed: first.is_some_and(|first| first > 1),
            };
        }
        plain
    }

    /// The server refused the login (or could not do it now).
    pub(super) fn login_refused(
        &mut self,
        code: ErrorCode,
        description: Option<&str>,
        now: Instant,
    ) {
        let held_join = match &mut self.link {
            Link::LoggingIn(login) => login.held_join.take(),
            _ => None,
        };
        if let Some(join) = held_join {
            self.show_server(join); // someone else's, after all
        }
        // The server cannot log anyone in right now (its store is
        // failing): once online before, wait and try again, as after a
        // dropped connection.
        if code == ErrorCode::Unavailable && self.been_online() {
            self.actions.push_back(Action::Close);
            let reason = format!(
                "the server could not log you in: {}",
                describe(code, description)
            );
            return self.lost(&reason, now);
        }
        let name = &self.config.username;
        let about_the_name = matches!(code, ErrorCode::LoginTaken | ErrorCode::InvalidUsername);
        let reason = match code {
            ErrorCode::LoginTaken if !self.config.saved_elsewhere.is_empty() => {
                taken_here_saved_elsewhere(
                    name,
                    self.secret.is_some(),
                    &self.config.saved_elsewhere,
                )
            }
            ErrorCode::LoginTaken if self.secret.is_some() => format!(
                "the name '{name}' is taken and the secret given for it does not match; \
                 pick another or wait until it is released"
            ),
            ErrorCode::LoginTaken => {
                format!("the name '{name}' is taken; pick another or wait until it is released")
            }
            ErrorCode::InvalidUsername => format!(
                "the server does not accept the name '{name}': {}",
                describe(code, description)
            ),
            _ => format!(
                "the server refused the login: {}",
                describe(code, description)
            ),
        };
        if !about_the_name || self.been_online() {
            return self.leave(Exit::Failure(reason));
        }
        match self.config.on_name_refused {
            OnNameRefused::AskAnother => {
                self.actions.push_back(Action::Close);
                self.link = Link::AskingName { open: false };
                // A secret given was for the name refused.
                self.config.given_secret = None;
                self.events.push_back(Event::AskName(Some(reason)));
            }
            OnNameRefused::Finish => self.leave(Exit::NameRefused(reason)),
        }
    }
}

/// The secret to send first: the one given, else the one saved for this
/// server, else the one saved for another address of the same server.
pub(super) fn first_secret(config: &ClientConfig) -> Option<String> {
    config
        .given_secret
        .clone()
        .or_else(|| config.saved_secret.clone())
        .or_else(|| config.same_server_secret.as_ref().map(|s| s.secret.clone()))
}

/// The name is taken here, and a secret for it is saved for another
/// address that may be this same server: chat-cli cannot tell (no login
/// there or here told it the server's store), and does not send a secret
/// to a server it was not saved for. Says where it is and what to do.
fn taken_here_saved_elsewhere(name: &str, secret_sent: bool, elsewhere: &[String]) -> String {
    let taken = if secret_sent {
        format!("the name '{name}' is taken here and the secret given for it does not match")
    } else {
        format!("the name '{name}' is taken here")
    };
    let first = elsewhere.first().map_or("", String::as_str);
    let (saved, one) = match elsewhere {
        [_] => (format!("a secret for it is saved for {first}"), "that is"),
        _ => (
            format!("secrets for it are saved for {}", elsewhere.join(", ")),
            "one of those is",
        ),
    };
    format!(
        "{taken}; {saved}, but chat-cli cannot tell whether {one} this server: if so (another \
         address of it, or another node of its cluster), connect there to keep your name \
         (chat-cli {first} --name {name}); if not, pick another name or wait until this one is \
         released"
    )
}

impl<R: Rng> Client<R> {
    /// Shows what became of messages a dropped connection left
    /// unconfirmed: sent again, or perhaps never delivered.
    pub(super) fn show_checked(&mut self, checked: super::outbox::Checked) {
        for text in checked.resent {
            self.show(Line::Status(format!(
                "the server never got this message before the connection dropped; \
                 sending it again: {text}"
            )));
        }
        for text in checked.unknown {
            self.undelivered += 1;
            self.show(Line::Error(format!(
                "the connection dropped before the server confirmed this message, and the server \
                 no longer holds the messages of that time: it may not have been delivered: {text}"
            )));
        }
    }
}
