//! # wschat
//!
//! A WebSocket group chat, wire-compatible with the original TypeScript
//! proof of concept and its web frontend. This library is its sans-IO heart:
//!
//! - [`protocol`]: the JSON messages of wire protocol v1, decoded strictly
//!   and totally (any bytes in, a message or a described error out);
//! - [`Server`]: the chat state machine. It takes frames and clock ticks and
//!   asks for frames, pings and closes in return. It never touches a socket
//!   or a clock, so it runs under smol (`chat-server`), plain threads
//!   (`examples/threaded_server.rs`) or a test's virtual clock alike.
//! - [`client`]: the chat client's state machine behind `chat-cli` (login,
//!   saved secrets, reconnecting, commands, display lines), driven the same way.
//!
//! ## The run loop
//!
//! A driver feeds the core what happened, performs what it asks, and wakes it
//! at [`Server::poll_timeout`]. Here a virtual clock stands in for real time:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use rand::{SeedableRng, rngs::StdRng};
//! use wschat::{Action, CloseCode, Config, Inbound, Server, Version};
//!
//! let mut now = Instant::now();
//! let mut server = Server::new(Config::default(), StdRng::seed_from_u64(1));
//!
//! // A socket finished its WebSocket handshake; it says something.
//! let alice = server.handle_open("127.0.0.1", Version::V1, now);
//! server.handle_frame(alice, Inbound::Text(br#"{"type":"login","id":"1","username":"alice"}"#), now);
//!
//! // Perform what the core asks: here, two frames for alice. Frames are lent
//! // (every recipient of a broadcast borrows the same bytes); copy to keep.
//! let mut sent = Vec::new();
//! while let Some(action) = server.poll_action() {
//!     match action {
//!         Action::Send { to, frame } => sent.push((to, frame.as_str().to_owned())),
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! while let Some(_event) = server.poll_event() {} // log it, count it…
//! assert!(sent[0].1.starts_with(r#"{"type":"loginBroadcast""#));
//! assert!(sent[1].1.starts_with(r#"{"type":"loginMessage""#));
//!
//! // Nothing more comes from alice. Sleep until the core's next deadline,
//! // again and again: pings go out, then the silent socket is evicted.
//! let mut closed = None;
//! while closed.is_none() {
//!     now = server.poll_timeout().expect("a connection is open");
//!     server.handle_timeout(now);
//!     while let Some(action) = server.poll_action() {
//!         if let Action::Close { code, reason, .. } = action {
//!             closed = Some((code, reason));
//!         }
//!     }
//! }
//! assert_eq!(closed, Some((CloseCode::NORMAL, "ping timeout")));
//! ```

#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
pub mod config;
pub mod id;
pub mod protocol;
#[cfg(feature = "server")]
pub mod serve;
pub mod server;
pub mod text;
#[cfg(any(feature = "server", feature = "cli"))]
pub mod tls;
pub mod username;

pub use config::Config;
pub use protocol::{ClientMessage, DecodeError, ErrorCode, ServerMessage, Version};
pub use server::{Action, CloseCode, ConnectionId, Event, Frame, Inbound, Limit, Server};
