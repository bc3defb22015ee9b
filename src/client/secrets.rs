//! Login secrets remembered per (server, name), so the same person gets the
//! same name back after a restart. This is the file's format and lookup;
//! reading and writing the file is the driver's job.

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

    pub fn set(&mut self, server: &str, name: &str, secret: &str) {
        self.servers
            .entry(server_key(server).to_owned())
            .or_default()
            .insert(name_key(name), secret.to_owned());
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
