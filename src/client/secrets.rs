//! Login secrets remembered per (server, name), so the same person gets the
//! same name back after a restart. This is the file's format and lookup;
//! reading and writing the file is the driver's job.
//!
//! A server can have several addresses (`ws://localhost:8080` and
//! `ws://127.0.0.1:8080`, the nodes of a cluster), and a secret is filed
//! under the address it was used at. To tell that two addresses are one
//! server, the store keeps, per address, the `epoch` its server named its
//! message store by at the last login there: one store, one epoch (a
//! cluster's nodes share theirs). A secret saved at one address is sent to
//! another only when both named the same store; otherwise it stays where
//! it was saved (a secret is a bearer token: sending it to an unrelated
//! server would hand that server's operator the name), and the address it
//! was saved for is only named to the user.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::name_key;

/// The secrets a user holds, keyed by server URL, then by name as the
/// server compares names (so "Alice" finds the secret saved for "alice").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretStore {
    /// Format version, so a later one can migrate.
    version: u32,
    servers: BTreeMap<String, BTreeMap<String, String>>,
    /// Per server URL, the `epoch` of its message store at the last login
    /// there. Absent from files of before; a chat-cli of before ignores it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    epochs: BTreeMap<String, String>,
}

/// What is saved for a name, as seen from one address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Saved {
    /// The secret saved for this address.
    pub secret: Option<String>,
    /// None saved for this address, but one for another address of the
    /// same server (both named the same store): to send, and to file for
    /// this address once it works.
    pub same_server: Option<SavedAt>,
    /// Other addresses with a secret for this name that may or may not be
    /// this server (one of them never told chat-cli its store): named when
    /// the name is refused as taken.
    pub elsewhere: Vec<String>,
}

/// A secret and the address it was saved for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedAt {
    pub address: String,
    pub secret: String,
}

/// The file is not a secrets file this version understands.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

impl SecretStore {
    const VERSION: u32 = 1;

    pub fn new() -> Self {
        SecretStore {
            version: Self::VERSION,
            servers: BTreeMap::new(),
            epochs: BTreeMap::new(),
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let store: SecretStore =
            serde_json::from_slice(bytes).map_err(|e| ParseError(e.to_string()))?;
        if store.version != Self::VERSION {
            return Err(ParseError(format!(
                "format version {} is not the supported {}",
                store.version,
                Self::VERSION
            )));
        }
        Ok(store)
    }

    pub fn to_json(&self) -> String {
        // Maps of strings always serialize.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// The secret saved for `name` on `server`: under the name's key, or
    /// else under the key a chat-cli before issue 21 saved it by (so
    /// "mallory", keyed "rnallory" now, still finds its secret).
    pub fn get(&self, server: &str, name: &str) -> Option<&str> {
        let names = self.servers.get(server_key(server))?;
        names
            .get(&name_key(name))
            .or_else(|| names.get(&crate::username::legacy_key(name)))
            .map(String::as_str)
    }

    /// Saves `secret` for `name` at `server`, and at every other address
    /// known to be the same server, so that none of them keeps a secret
    /// the server has replaced.
    pub fn set(&mut self, server: &str, name: &str, secret: &str) {
        let mut addresses = self.same_server(server);
        addresses.push(server_key(server).to_owned());
        for address in addresses {
            self.servers
                .entry(address)
                .or_default()
                .insert(name_key(name), secret.to_owned());
        }
    }

    /// The epoch of the message store `server` named at the last login
    /// there.
    pub fn epoch(&self, server: &str) -> Option<&str> {
        self.epochs.get(server_key(server)).map(String::as_str)
    }

    /// Remembers the epoch `server` named its store by; whether that
    /// changed anything (if not, there is nothing to write).
    pub fn set_epoch(&mut self, server: &str, epoch: &str) -> bool {
        if self.epoch(server) == Some(epoch) {
            return false;
        }
        self.epochs
            .insert(server_key(server).to_owned(), epoch.to_owned());
        true
    }

    /// What to send for `name` at `server`, and which other addresses hold
    /// a secret for it: see [`Saved`].
    pub fn lookup(&self, server: &str, name: &str) -> Saved {
        let here = self.epoch(server);
        let mut saved = Saved {
            secret: self.get(server, name).map(str::to_owned),
            ..Saved::default()
        };
        for address in self.servers.keys() {
            if address == server_key(server) {
                continue;
            }
            let Some(secret) = self.get(address, name) else {
                continue;
            };
            match (here, self.epoch(address)) {
                (Some(here), Some(there)) if here == there => {
                    if saved.secret.is_none() && saved.same_server.is_none() {
                        saved.same_server = Some(SavedAt {
                            address: address.clone(),
                            secret: secret.to_owned(),
                        });
                    }
                }
                // Another store: another server, whose secret means
                // nothing here.
                (Some(_), Some(_)) => {}
                _ => saved.elsewhere.push(address.clone()),
            }
        }
        saved
    }

    /// The other addresses that named the same store as `server`.
    fn same_server(&self, server: &str) -> Vec<String> {
        let Some(epoch) = self.epoch(server) else {
            return Vec::new();
        };
        self.epochs
            .iter()
            .filter(|(address, theirs)| {
                address.as_str() != server_key(server) && theirs.as_str() == epoch
            })
            .map(|(address, _)| address.clone())
            .collect()
    }
}

/// `ws://host:8080/` and `ws://host:8080` are the same server.
fn server_key(url: &str) -> &str {
    url.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_secrets_by_server_and_name_as_the_server_compares_them() {
        let mut store = SecretStore::new();
        store.set("ws://h:1/", "Alice", "s1");
        store.set("ws://h:2", "alice", "s2");
        assert_eq!(store.get("ws://h:1", "alice"), Some("s1"));
        assert_eq!(store.get("ws://h:1/", "ALICE"), Some("s1"));
        assert_eq!(store.get("ws://h:2", "Alice"), Some("s2"));
        assert_eq!(store.get("ws://h:3", "alice"), None);
        assert_eq!(store.get("ws://h:1", "bob"), None);
        store.set("ws://h:1", "alice", "s3");
        assert_eq!(store.get("ws://h:1", "Alice"), Some("s3"));
    }

    #[test]
    fn finds_secrets_saved_under_the_keys_of_before_issue_21() {
        // As a chat-cli keyed names then: lower case.
        let old = r#"{"version": 1, "servers": {"ws://h:1": {"mallory": "s1", "stra\u00dfe": "s2", "bob": "s3"}}}"#;
        let mut store = SecretStore::parse(old.as_bytes()).unwrap();
        assert_eq!(store.get("ws://h:1", "Mallory"), Some("s1"));
        assert_eq!(store.get("ws://h:1", "Stra\u{df}e"), Some("s2"));
        assert_eq!(store.get("ws://h:1", "bob"), Some("s3"));
        assert_eq!(store.get("ws://h:1", "STRASSE"), None); // never saved as such
        // A secret saved since, under today's key, comes first.
        store.set("ws://h:1", "mallory", "s4");
        assert_eq!(store.get("ws://h:1", "mallory"), Some("s4"));
    }

    #[test]
    fn a_secret_goes_to_another_address_only_when_both_named_the_same_store() {
        let mut store = SecretStore::new();
        store.set("ws://localhost:1", "ivy", "s1");
        // Nothing known of 127.0.0.1 yet: the secret stays at localhost,
        // which is only named.
        let seen = store.lookup("ws://127.0.0.1:1", "Ivy");
        assert_eq!(seen.secret, None);
        assert_eq!(seen.same_server, None);
        assert_eq!(seen.elsewhere, ["ws://localhost:1"]);
        // localhost named its store; 127.0.0.1 still did not.
        assert!(store.set_epoch("ws://localhost:1/", "E1"));
        assert!(!store.set_epoch("ws://localhost:1", "E1"));
        assert_eq!(
            store.lookup("ws://127.0.0.1:1", "ivy").elsewhere,
            ["ws://localhost:1"]
        );
        // 127.0.0.1 names the same store: the same server.
        store.set_epoch("ws://127.0.0.1:1", "E1");
        let seen = store.lookup("ws://127.0.0.1:1", "ivy");
        assert_eq!(
            seen.same_server,
            Some(SavedAt {
                address: "ws://localhost:1".into(),
                secret: "s1".into()
            })
        );
        assert_eq!((seen.secret, seen.elsewhere), (None, vec![]));
        // Another store: another server, neither used nor named.
        store.set_epoch("ws://other:1", "E2");
        let seen = store.lookup("ws://other:1", "ivy");
        assert_eq!(seen, Saved::default());
        // A secret saved at one address is filed for every address of the
        // same server, and for no other.
        store.set("ws://127.0.0.1:1", "ivy", "s2");
        assert_eq!(store.get("ws://localhost:1", "ivy"), Some("s2"));
        assert_eq!(store.get("ws://other:1", "ivy"), None);
        assert_eq!(
            store.lookup("ws://localhost:1", "ivy"),
            Saved {
                secret: Some("s2".into()),
                ..Saved::default()
            }
        );
    }

    #[test]
    fn a_file_of_before_epochs_reads_and_one_without_epochs_is_written_as_before() {
        let old = r#"{"version": 1, "servers": {"ws://h:1": {"bob": "s3"}}}"#;
        let mut store = SecretStore::parse(old.as_bytes()).unwrap();
        assert_eq!(store.epoch("ws://h:1"), None);
        assert!(!store.to_json().contains("epochs"));
        store.set_epoch("ws://h:1", "E");
        let json = store.to_json();
        assert!(json.contains("\"epochs\""), "{json}");
        assert_eq!(SecretStore::parse(json.as_bytes()).unwrap(), store);
    }

    #[test]
    fn round_trips_and_refuses_what_it_does_not_understand() {
        let mut store = SecretStore::new();
        store.set("ws://h:1", "alice", "s1");
        let json = store.to_json();
        assert_eq!(SecretStore::parse(json.as_bytes()).unwrap(), store);
        assert!(SecretStore::parse(b"{not json").is_err());
        assert!(SecretStore::parse(b"[]").is_err());
        let newer = json.replace("\"version\": 1", "\"version\": 2");
        assert!(
            SecretStore::parse(newer.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("version 2")
        );
    }
}
