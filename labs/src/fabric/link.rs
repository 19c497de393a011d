//! The state of one direction of a link ("bytes sent by A to B") and of a node pair.
//!
//! A direction is shared by every proxied connection that carries bytes that way: node A's
//! requests on proxy(A->B) *and* A's replies on proxy(B->A). Each pump subscribes to its mode, so
//! a change reaches connections that are already open without any per-byte polling.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// One end of a link: a broker node, or "the clients" (the workload, a user's tool).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
#[ts(rename = "LinkEnd")]
pub enum Endpoint {
    Node(i32),
    Client,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Node(id) => write!(f, "node {id}"),
            Endpoint::Client => write!(f, "clients"),
        }
    }
}

/// What happens to the bytes of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case", tag = "kind", content = "ms")]
#[ts(rename = "LinkMode")]
pub enum Mode {
    /// Forwarded as they arrive.
    Pass,
    /// Forwarded after this many milliseconds, in order; throughput is kept (a delay line).
    Delay(u64),
    /// Read and discarded: the connection stays up but nothing arrives, like a dropped route.
    Blackhole,
    /// Connections carrying this direction are reset and new ones are refused.
    Reset,
    /// A toxic (latency with jitter, bandwidth, slicer, limit-data, timeout): see `toxic.rs`.
    Toxic(super::toxic::Toxic),
}

/// One direction: its mode and how many bytes went through it.
#[derive(Debug)]
pub(crate) struct Direction {
    mode: watch::Sender<Mode>,
    bytes: AtomicU64,
}

impl Direction {
    pub(crate) fn new() -> Direction {
        Direction { mode: watch::Sender::new(Mode::Pass), bytes: AtomicU64::new(0) }
    }

    pub(crate) fn mode(&self) -> Mode {
        *self.mode.borrow()
    }

    /// Changes the mode; pumps of open connections see it at once through their receivers.
    pub(crate) fn set(&self, mode: Mode) {
        self.mode.send_if_modified(|m| {
            let changed = *m != mode;
            *m = mode;
            changed
        });
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Mode> {
        self.mode.subscribe()
    }

    /// Counted once per forwarded chunk (never per byte).
    pub(crate) fn add_bytes(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Connection counters: of an (unordered) endpoint pair, over both proxies between them, and of
/// one proxy's own connections (a [`Dialed`]).
#[derive(Debug, Default)]
pub(crate) struct ConnectionCounts {
    open: AtomicU64,
    total: AtomicU64,
}

impl ConnectionCounts {
    /// Counts a connection as open until the returned guard is dropped.
    pub(crate) fn open(&self) -> OpenGuard<'_> {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        OpenGuard(self)
    }

    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.open.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed))
    }
}

pub(crate) struct OpenGuard<'a>(&'a ConnectionCounts);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One proxy's connections as the side that dials them sees them, whatever the modes of the two
/// directions their bytes travel: they can be cut (live ones reset, new ones closed as soon as
/// accepted) or severed once (live ones reset, new ones forwarded). This is the dialer's view a
/// direction cannot express: node A's own connections to B healed while B's to A stay cut.
#[derive(Debug)]
pub(crate) struct Dialed {
    gate: watch::Sender<Gate>,
    pub(crate) connections: ConnectionCounts,
}

/// What a route lets through; pumps watch it like a direction's mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Gate {
    pub cut: bool,
    /// Bumped by every sever: a connection opened under an older value is reset.
    pub severs: u64,
}

impl Dialed {
    pub(crate) fn new() -> Dialed {
        Dialed { gate: watch::Sender::new(Gate::default()), connections: ConnectionCounts::default() }
    }

    pub(crate) fn set_cut(&self, cut: bool) {
        self.gate.send_if_modified(|g| std::mem::replace(&mut g.cut, cut) != cut);
    }

    /// Resets the live connections; returns how many were open.
    pub(crate) fn sever(&self) -> u64 {
        let open = self.connections.counts().0;
        self.gate.send_modify(|g| g.severs += 1);
        open
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Gate> {
        self.gate.subscribe()
    }
}

/// A link as the UI shows it: one entry per endpoint pair, both directions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(rename = "LinkView")]
pub struct LinkState {
    pub from: Endpoint,
    pub to: Endpoint,
    /// Mode of the bytes `from` sends to `to`.
    pub mode: Mode,
    /// Mode of the bytes `to` sends to `from`.
    pub reverse_mode: Mode,
    /// Bytes forwarded from `from` to `to` (all connections, since the fabric started).
    pub bytes_forwarded: u64,
    /// Bytes forwarded from `to` to `from`.
    pub bytes_returned: u64,
    /// Connections open between the two right now.
    pub connections: u64,
    /// Connections accepted between the two since the fabric started.
    pub connections_total: u64,
}
