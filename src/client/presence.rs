//! Who is online: joins, leaves (our own logout's confirmation among
//! them), presence summaries, and the user list, which keep the roster for
//! tab completion and answer `/who`.

use std::borrow::Cow;

use rand::Rng;

use super::link::Link;
use super::{Client, Exit, Line, name_key, render};
use crate::protocol::{LeaveReason, UserPresence};

impl<R: Rng> Client<R> {
    /// `loginBroadcast`: someone logged in; maybe our own join, held while
    /// logging in until the login tells whose it is.
    pub(super) fn on_login_broadcast(
        &mut self,
        username: &str,
        location: &str,
        timestamp: Option<u64>,
    ) {
        let ours = name_key(username) == name_key(&self.config.username);
        self.roster.add(username);
        let line = Line::Joined {
            own: self.display_name.as_deref() == Some(username),
            name: username.to_owned(),
            location: location.to_owned(),
            at: timestamp,
        };
        match &mut self.link {
            Link::LoggingIn(login) if ours && login.held_join.is_none() => {
                login.held_join = Some(line);
            }
            _ => self.show_live(None, line),
        }
    }

    /// v2 `logoutBroadcast`: a user left; if it is us logging out, the
    /// server confirmed it.
    pub(super) fn on_logout_broadcast(&mut self, username: String, reason: LeaveReason, at: u64) {
        self.roster.remove(&username);
        let ours = self
            .display_name
            .as_deref()
            .is_some_and(|me| name_key(me) == name_key(&username));
        if !ours {
            return self.show_live(
                None,
                Line::Left {
                    name: username,
                    reason,
                    at,
                },
            );
        }
        if reason != LeaveReason::Logout {
            return; // an old connection of ours went away; we are still here
        }
        let confirmed = match &mut self.link {
            Link::Online(online) => online.logout.take().is_some(),
            _ => false,
        };
        if confirmed {
            self.show(Line::Status(format!(
                "logged out: the name {username} is free"
            )));
            self.leave(Exit::Success);
        } else {
            self.leave(Exit::Failure(format!(
                "logged out from another connection: the name '{username}' was released"
            )));
        }
    }

    /// v2 `presence`: many joined or left at once.
    pub(super) fn on_presence(
        &mut self,
        joined: Vec<Cow<'_, str>>,
        joined_count: u64,
        left: Vec<Cow<'_, str>>,
        left_count: u64,
        timestamp: u64,
    ) {
        for name in &joined {
            self.roster.add(name);
        }
        for name in &left {
            self.roster.remove(name);
        }
        let names = |names: Vec<Cow<'_, str>>| names.into_iter().map(Cow::into_owned).collect();
        let line = Line::Presence {
            joined: names(joined),
            joined_count,
            left: names(left),
            left_count,
            at: timestamp,
        };
        self.show_live(None, line);
    }

    /// v2 `userList`: everyone online, for the roster and, when the user
    /// asked (`/who`), to show.
    pub(super) fn on_user_list(&mut self, users: &[UserPresence<'_>], reply_to: &str) {
        self.roster
            .replace(users.iter().map(|user| &*user.username));
        if let Link::Online(online) = &mut self.link
            && online.roster_request.as_deref() == Some(reply_to)
        {
            online.roster_request = None;
            return; // asked for completion, not by the user
        }
        let line = Line::Info(self.who_is_online(users));
        self.show_server(line);
    }

    /// The text of `/who`'s answer.
    fn who_is_online(&self, users: &[UserPresence<'_>]) -> String {
        let me = self.display_name.as_deref();
        let names: Vec<String> = users
            .iter()
            .map(|user| {
                let you = me == Some(&*user.username);
                let name = render::shown_name(&user.username);
                match (you, user.connections) {
                    (true, 1) => format!("{name} (you)"),
                    (true, n) => format!("{name} (you, {n} devices)"),
                    (false, n) if n > 1 => format!("{name} ({n} devices)"),
                    (false, _) => name.into_owned(),
                }
            })
            .collect();
        format!("online ({}): {}", users.len(), names.join(", "))
    }
}
