//! What a link does by its shard's role (see `shards`): the home's holds
//! names and the lobby, and says which names this node must release on
//! the other shards; a shard of rooms only registers this node (its room
//! scripts check it) but holds no name and carries no lobby.

use std::sync::Arc;

use super::super::requests::Remote;
use super::RedisLink;
use crate::server::Write;

impl RedisLink {
    /// A link to a shard of rooms only: it never asks the core which
    /// names it holds (it joins holding none), and leaves the releases it
    /// hears to the home, which told every core already.
    pub(crate) fn rooms_only(self) -> RedisLink {
        RedisLink {
            rooms_only: true,
            ..self
        }
    }

    /// A name released that this node must release on the other shards:
    /// those its own requests released (RESERVE, LOGOUT: it does so before
    /// its core hears the answer, so before anything the name's new holder
    /// asks), and those the sweep released (origin ""), which every node
    /// hears. Not another node's: that node does it, in its own order.
    #[must_use]
    pub(crate) fn poll_released(&mut self) -> Option<Arc<str>> {
        self.releases.pop_front()
    }

    /// Another node's write of no room (a release, the lobby's), heard
    /// from `origin` ("" for the sweep).
    pub(super) fn heard_nameful(&mut self, write: Write, origin: &str) {
        if self.rooms_only {
            return;
        }
        if let Write::Release { key } = &write
            && origin.is_empty()
        {
            self.releases.push_back(key.clone());
        }
        self.sequencer.event(Remote::Write(write));
    }

    /// What this link's Redis takes, as the log says it: a shard of rooms
    /// only takes no login.
    pub(super) fn what_it_takes(&self) -> &'static str {
        match self.rooms_only {
            true => "the requests of its rooms",
            false => "logins and messages",
        }
    }
}
