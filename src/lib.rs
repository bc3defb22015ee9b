//! # wschat
//!
//! A WebSocket group chat, wire-compatible with the original TypeScript
//! proof of concept and its web frontend. This library is its sans-IO heart:
//!
//! - [`protocol`]: the JSON messages of wire protocols v1, v2 and v3, decoded
//!   strictly and totally (any bytes in, a message or a described error
//!   out);
//! - [`Server`]: the chat state machine, speaking v1, v2 and v3 (each
//!   connection its own; v3 adds rooms and direct messages). It takes
//!   frames and clock ticks and asks for frames, pings and closes in
//!   return; what must outlive the process leaves through a typed
//!   request/answer seam. It never touches a socket or a clock, so it
//!   runs under smol (`chat-server`), plain threads
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
//!
//! ## With a store
//!
//! A core started from what a store holds ([`Server::restore`]) hands the
//! facts that must outlive the process to the driver as requests, and
//! answers a login or a message only once the driver reports its request
//! durable. chat-server's store commits them in groups on a thread of its
//! own; here a `Vec` stands in for it.
//!
//! The seam is typed: each [`Request`](server::Request) carries a ticket of
//! its own kind, and the [`Answer`](server::Answer) given back to
//! [`Server::handle_answer`] is built from that ticket with that kind's
//! result (an append's `seq`, a plain write's `()`, …), so a request cannot
//! be answered with another's result:
//!
//! ```
//! use std::time::{Instant, SystemTime};
//! use rand::{SeedableRng, rngs::StdRng};
//! use wschat::server::{Request, Snapshot, Write};
//! use wschat::{Action, Config, Inbound, Server, Version};
//!
//! let now = Instant::now();
//! let snapshot = Snapshot { epoch: "k3J".into(), last_seq: 41, ..Snapshot::default() };
//! let rng = StdRng::seed_from_u64(1);
//! let mut server = Server::restore(Config::default(), rng, snapshot, SystemTime::now(), now);
//! let mut saved = Vec::new(); // the store
//!
//! let alice = server.handle_open("127.0.0.1", Version::V2, now);
//! server.handle_frame(alice, Inbound::Text(br#"{"type":"login","id":"l","username":"alice"}"#), now);
//! server.handle_frame(alice, Inbound::Text(br#"{"type":"textFromUser","id":"m","text":"hi"}"#), now);
//! assert!(server.poll_action().is_none(), "nothing is answered before it is saved");
//!
//! // Make each request durable, in order, and report it; the store numbers
//! // what it appends. Answering may ask for more (the message, held until
//! // the login was saved): loop until none is left.
//! let mut seq = 41;
//! while let Some(request) = server.poll_request() {
//!     let answer = match &request {
//!         Request::Write(ticket, _) => ticket.answer(Ok(())),
//!         Request::Append(ticket, _) => { seq += 1; ticket.answer(Ok(seq)) }
//!         // Asked only of a cluster's shared store, which decides names.
//!         other => other.fail(wschat::server::Failed("not a cluster".into())),
//!     };
//!     saved.push(request);
//!     server.handle_answer(answer, now);
//! }
//! let mut frames = Vec::new();
//! while let Some(action) = server.poll_action() {
//!     if let Action::Send { frame, .. } = action {
//!         frames.push(frame.as_str().to_owned());
//!     }
//! }
//! // The login's answer and history, then the message, numbered 42.
//! assert!(frames[1].contains(r#""type":"loginMessage""#));
//! assert!(frames[2].contains(r#""epoch":"k3J""#));
//! assert!(frames[3].contains(r#""replyTo":"m""#) && frames[3].contains(r#""seq":42"#));
//! assert!(saved.iter().any(|r| matches!(r, Request::Write(_, Write::Claim { .. }))));
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
