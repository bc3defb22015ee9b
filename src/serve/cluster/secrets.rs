//! The secret of each name this node's connections were given, learnt from
//! Redis's answers: LOGOUT and JOIN need it, and the core keeps none. Which
//! names are still held is the core's to say (`Server::held_names`): the
//! secrets of names it no longer holds are forgotten whenever it is asked,
//! and it is asked once their number has doubled since.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::requests::HeldName;

/// Secrets remembered before the core is first asked which are still held.
const FIRST_PRUNE: usize = 1024;

#[derive(Debug)]
pub(crate) struct Secrets {
    by_key: HashMap<Arc<str>, Secret>,
    /// Past this many, the core is to be asked which are still held.
    prune_at: usize,
}

#[derive(Debug)]
struct Secret {
    /// The SHA-256 of the secret, in hex.
    hash: String,
    /// The questions asked of the core before it was learnt: the answer to
    /// an earlier one does not know it.
    learnt: u64,
}

impl Secrets {
    pub(crate) fn new() -> Secrets {
        Secrets {
            by_key: HashMap::new(),
            prune_at: FIRST_PRUNE,
        }
    }

    /// Redis gave `key` with `hash`, after `questions` questions.
    pub(crate) fn learn(&mut self, key: Arc<str>, hash: String, questions: u64) {
        let learnt = questions;
        self.by_key.insert(key, Secret { hash, learnt });
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.by_key.get(key).map(|s| s.hash.as_str())
    }

    /// The name was freed (logged out, or taken by someone else).
    pub(crate) fn take(&mut self, key: &str) -> Option<String> {
        self.by_key.remove(key).map(|s| s.hash)
    }

    /// Whether it is time to ask the core which names it still holds.
    pub(crate) fn wants_pruning(&self) -> bool {
        self.by_key.len() > self.prune_at
    }

    /// Forgets the names the core no longer holds, as it answered
    /// `question`; those learnt since it was asked stay.
    pub(crate) fn prune(&mut self, question: u64, held: &[HeldName]) {
        let held: HashSet<&str> = held.iter().map(|h| &*h.key).collect();
        self.by_key
            .retain(|key, secret| secret.learnt >= question || held.contains(&**key));
        self.prune_at = (self.by_key.len() * 2).max(FIRST_PRUNE);
    }
}
