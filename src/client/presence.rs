//! Who is online: joins, leaves (our own logout's confirmation among
//! them), presence summaries, and the user list, which keep the roster for
//! tab completion and answer `/who`.

use std::borrow::Cow;
use std::collections::HashSet;

use rand::Rng;

use super::link::Link;
use super::{Client, Exit, Line, name_key, render};
use crate::protocol::{LeaveReason, UserPresence, Version};

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
        if self.still_online(username) {
            return; // shown online before the drop, and never shown leaving
        }
        self.say_gone(username);
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
        self.carried
            .retain(|name| name_key(name) != name_key(&username));
        self.gone
            .retain(|name| name_key(name) != name_key(&username));
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
            self.carried
                .retain(|carried| name_key(carried) != name_key(name));
            self.gone.retain(|gone| name_key(gone) != name_key(name));
        }
        // Those shown online before the drop did not join again.
        let before = joined.len();
        let joined: Vec<Cow<'_, str>> = joined
            .into_iter()
            .filter(|name| !self.still_online(name))
            .collect();
        let joined_count = joined_count.saturating_sub((before - joined.len()) as u64);
        for name in &joined {
            self.say_gone(name);
        }
        if joined_count == 0 && left_count == 0 {
            return;
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
        self.settle_carried(users);
        if let Link::Online(online) = &mut self.link
            && online.roster_request.as_deref() == Some(reply_to)
        {
            online.roster_request = None;
            return; // asked for completion, not by the user
        }
        let line = Line::Info(self.who_is_online(users));
        self.show_server(line);
    }

    /// The connection dropped: everyone shown online may still be, or not;
    /// remembered so that a join announced again (a restarted server's)
    /// is not shown twice without a leave between. v1 keeps no roster of
    /// who is online, only of who was seen.
    pub(super) fn carry_roster(&mut self) {
        if self.version == Version::V1 {
            return;
        }
        let me = name_key(self.username());
        self.carried = self
            .roster
            .names()
            .filter(|name| name_key(name) != me)
            .map(str::to_owned)
            .collect();
    }

    /// Whether `name` was shown online before the connection dropped and
    /// has not been heard of since; now it has (so once only).
    fn still_online(&mut self, name: &str) -> bool {
        let key = name_key(name);
        let before = self.carried.len();
        self.carried.retain(|carried| name_key(carried) != key);
        self.carried.len() != before
    }

    /// Back online, the server lists who is online: those shown online
    /// before the drop who are not any more are remembered, to be said to
    /// have left before they are shown joining again. (Not at once: the
    /// answer to the roster's own request shows nothing.)
    fn settle_carried(&mut self, users: &[UserPresence<'_>]) {
        if !self.is_online() || self.carried.is_empty() {
            return;
        }
        let online: HashSet<String> = users.iter().map(|user| name_key(&user.username)).collect();
        let carried = std::mem::take(&mut self.carried);
        self.gone.extend(
            carried
                .into_iter()
                .filter(|name| !online.contains(&name_key(name))),
        );
    }

    /// Before `name` is shown joining: if it went while we were away
    /// without a word, says so first.
    fn say_gone(&mut self, name: &str) {
        let key = name_key(name);
        let Some(at) = self.gone.iter().position(|gone| name_key(gone) == key) else {
            return;
        };
        let gone = self.gone.swap_remove(at);
        let line = Line::Status(format!(
            "{} left while you were away",
            render::shown_name(&gone)
        ));
        self.show_live(None, line);
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
