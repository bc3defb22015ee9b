//! What the user types: messages, `/commands`, and the end of input.

use std::time::Instant;

use rand::Rng;

use super::command::{self, Effect, Input};
use super::link::{Link, Logout};
use super::{Client, Line, Mode, plural};
use crate::id;
use crate::protocol::{ClientMessage, Version};

impl<R: Rng> Client<R> {
    // ---- inputs: the user ----

    /// A line was typed (interactive) or read (script).
    pub fn handle_line(&mut self, line: &str, now: Instant) {
        if self.is_finished() || self.ending.is_some() {
            return;
        }
        if self.config.mode == Mode::Script {
            if !line.trim().is_empty() {
                self.say(line.to_owned());
            }
            return;
        }
        if self.logging_out() {
            return self.show(Line::Info(
                "logging out; waiting for the server to confirm".into(),
            ));
        }
        // "/quit again" means the very next line.
        let quit_asked = std::mem::take(&mut self.quit_asked);
        match command::parse(line) {
            Input::Nothing => {}
            Input::Say(text) => self.say(text.to_owned()),
            Input::Run(Effect::Help) => self.show(Line::Info(command::help())),
            Input::Run(Effect::Me(action)) => {
                let text = format!("* {} {action}", self.username());
                self.say(text);
            }
            Input::Run(Effect::Who) if self.version == Version::V3 => self.names(),
            Input::Run(Effect::Who) => self.who(),
            Input::Run(Effect::Logout) => self.log_out(now),
            Input::Run(Effect::Quit) => self.quit_typed(quit_asked, now),
            Input::Run(effect) => {
                let _ = self.room_command(effect);
            }
            Input::Usage { command, hint } => self.show(Line::Info(format!(
                "usage: {} ({hint})",
                command::usage(command)
            ))),
            Input::Unknown(name) => self.show(Line::Info(format!(
                "unknown command /{name}; /help lists the commands, //{name} sends it as a message"
            ))),
        }
        self.schedule_reads(now);
    }

    /// The input ended (Ctrl-D, or the end of a script's stdin).
    pub fn handle_end_of_input(&mut self, now: Instant) {
        if self.is_finished() || self.ending.is_some() {
            return;
        }
        match self.config.mode {
            Mode::Interactive if self.logging_out() => {} // it ends by itself
            Mode::Interactive => self.quit(now),
            Mode::Script => {
                // Not counting a wait the server asked for.
                let from = self.pacing.resume_at().map_or(now, |at| at.max(now));
                self.ending = Some(from + self.config.linger);
                self.check_ending();
            }
        }
    }

    // ---- internals ----

    /// `/quit`: leaves, unless messages still wait to be sent; then it
    /// says which and leaves only when typed again.
    fn quit_typed(&mut self, asked_before: bool, now: Instant) {
        let waiting = self.outbox.waiting();
        if waiting.is_empty() || asked_before {
            return self.quit(now);
        }
        self.quit_asked = true;
        let mut text = format!(
            "{} not sent yet (the connection is down):",
            plural(waiting.len(), "message is", "messages are")
        );
        for message in &waiting {
            text.push_str(&format!("\n  {message}"));
        }
        text.push_str(
            "\nthey are sent once the connection is back; /quit again leaves without them",
        );
        self.show(Line::Info(text));
    }

    /// Why a v2-only command cannot run now, if it cannot.
    fn v2_unavailable(&self, what: &str) -> Option<String> {
        if !self.is_online() {
            Some(format!(
                "not connected: {what} works once the connection is back"
            ))
        } else if self.version == Version::V1 {
            Some(format!(
                "this server speaks protocol v1, which has no {what}"
            ))
        } else {
            None
        }
    }

    /// `/who`: asks the server who is online (shown on its answer).
    pub(super) fn who(&mut self) {
        if let Some(why) = self.v2_unavailable("/who") {
            return self.show(Line::Info(why));
        }
        let message = ClientMessage::ListUsers {
            id: id::message_id(&mut self.rng),
        };
        self.send(&message);
    }

    /// `/logout`: releases the name at once, then leaves once the server
    /// confirms (its `logoutBroadcast` of our name).
    fn log_out(&mut self, now: Instant) {
        if let Some(why) = self.v2_unavailable("/logout") {
            let hint = match self.version {
                Version::V1 if self.is_online() => {
                    "; /quit leaves, and the server frees the name some minutes later"
                }
                _ => "; /quit leaves, keeping the name reserved for a while",
            };
            return self.show(Line::Info(format!("{why}{hint}")));
        }
        let unsent = self.outbox.clear_queued();
        if unsent > 0 {
            self.show(Line::Status(format!(
                "{} not sent",
                plural(unsent, "queued message was", "queued messages were")
            )));
        }
        let id = id::message_id(&mut self.rng);
        self.send(&ClientMessage::Logout { id: id.clone() });
        if let Link::Online(online) = &mut self.link {
            online.logout = Some(Logout {
                id,
                deadline: now + self.config.login_timeout,
            });
        }
    }
}
