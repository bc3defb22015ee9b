//! The core task's inbox: what connections tell the core task ([`Input`]),
//! and the handle a connection's task and the core task share ([`Conn`]:
//! its outbox and, once the core has seen it open, its id).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use async_tungstenite::tungstenite::{Bytes, Utf8Bytes};
use smol::channel::{self, Receiver, Sender};

use super::outbox::Outbox;
use super::proxied::Peer;
use crate::{ConnectionId, Version};

/// Inputs that may wait for the core task before readers are held back.
const CAPACITY: usize = 4096;

/// A new inbox: the connections' end and the core task's.
pub(crate) fn channel() -> (Sender<Input>, Receiver<Input>) {
    channel::bounded(CAPACITY)
}

/// One connection, as the core task and the connection's task both see it.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) peer: Peer,
    /// Set by the core task when it has seen the connection open.
    pub(crate) id: OnceLock<ConnectionId>,
    pub(crate) outbox: Outbox,
    /// Bytes handed to the kernel: a stalled writer is told from a slow one
    /// by this, and `/metrics` sums it.
    pub(crate) sent: AtomicU64,
    /// Bytes read from the kernel, for `/metrics`.
    pub(crate) received: AtomicU64,
}

/// What connections tell the core task.
#[derive(Debug)]
pub(crate) enum Input {
    /// A WebSocket handshake completed, negotiating `version`.
    Open {
        conn: Arc<Conn>,
        location: String,
        version: Version,
    },
    /// A frame arrived.
    Frame { conn: Arc<Conn>, frame: InFrame },
    /// The connection is gone, whoever closed it.
    Closed { conn: Arc<Conn> },
    /// Close everyone with 1001, now and whoever connects from now on.
    Shutdown,
    /// Hand the store what is left to save, and stop.
    Finish,
}

/// A received frame, owning its bytes.
#[derive(Debug)]
pub(crate) enum InFrame {
    Text(Utf8Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
}
