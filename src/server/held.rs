//! Which names this node's connections hold: what a shared store (a
//! cluster's Redis) must count for this node when it registers again after
//! losing its link. Read from the connections' logins, so that the driver
//! keeps no copy of its own.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Server, Ticket};

/// A name held by this node's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldName {
    /// The name's key (its case-folded form).
    pub key: Arc<str>,
    /// The name as everyone sees it.
    pub display: Arc<str>,
    /// How many of this node's connections hold it.
    pub connections: usize,
}

impl<R> Server<R> {
    /// The names this node's connections hold, each with how many hold it,
    /// in no particular order. A login counts from its store's answer (when
    /// the connection was given the name) until the connection closes or
    /// is logged out.
    pub fn held_names(&self) -> Vec<HeldName> {
        let mut held: HashMap<&Arc<str>, HeldName> = HashMap::new();
        for (_, connection) in &self.connections {
            if let Some((key, display)) = &connection.login {
                held.entry(key)
                    .or_insert_with(|| HeldName {
                        key: key.clone(),
                        display: display.clone(),
                        connections: 0,
                    })
                    .connections += 1;
            }
        }
        held.into_values().collect()
    }

    /// The latest request's ticket (`None` before the first): what
    /// [`held_names`](Self::held_names) reflects is every request up to
    /// it, as asked.
    pub fn last_ticket(&self) -> Option<Ticket> {
        (self.next_ticket > 0).then_some(Ticket(self.next_ticket))
    }
}
