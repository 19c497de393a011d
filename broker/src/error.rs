//! The one error type of the broker library.
//!
//! Kafka-level failures (unknown topic, not leader, out-of-order sequence) are *not* errors here:
//! they travel as error codes inside responses. A `BrokerError` means "this operation, connection
//! or start-up cannot go on", and its message says what was touched and where.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::group_id::GroupId;

/// Everything that can fail inside the broker library.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A configuration file or flag has a bad value.
    #[error("config {source_name}: {message}")]
    Config { source_name: String, message: String },

    /// A listener could not bind because something else holds the port.
    /// This is the seed report's multi-node failure: say it plainly instead of failing later.
    #[error(
        "{listener} port {port} is already in use (tried to bind {addr}); \
         stop the process holding it or choose another port"
    )]
    PortInUse { listener: &'static str, addr: SocketAddr, port: u16 },

    /// Another process holds the data directory lock.
    #[error("data dir {dir} is locked by another broker process ({holder}); two processes must never share a data dir")]
    DataDirLocked { dir: PathBuf, holder: String },

    /// A file-system operation failed; `op` says what we were doing ("append to segment", "fsync").
    #[error("{op} {path}: {source}")]
    Io {
        op: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A stored entry failed its length or CRC check.
    #[error("corrupt log entry in {file} at byte {position}: {reason}")]
    Corrupt { file: PathBuf, position: u64, reason: String },

    /// A client sent bytes that are not a Kafka request we can decode; the connection is closed.
    #[error("malformed frame: {0}")]
    Frame(String),

    /// The data dir was written by a broker this one cannot continue from; `reason` says why
    /// and what to do.
    #[error("data dir {dir}: {reason}")]
    IncompatibleDataDir { dir: PathBuf, reason: String },

    /// A consumer-group or topic operation was given an argument it cannot accept.
    #[error("invalid request: {0}")]
    Invalid(String),

    /// The broker's own step failed where no input was at fault (a task panicked, a value of
    /// ours did not serialize): a bug to report, with what was being done.
    #[error("internal failure: {0}")]
    Internal(String),

    /// A Raft group could not start, be initialized or replicate; `step` names what failed.
    #[error("raft group {group}: {step} failed: {reason}")]
    Raft { group: GroupId, step: &'static str, reason: String },

    /// State persisted by a previous run (e.g. committed offsets) cannot be read back;
    /// `what` names the state, `reason` what is wrong with it.
    #[error("persisted {what} cannot be loaded: {reason}")]
    CorruptState { what: String, reason: String },

    /// The node is shutting down and no longer accepts this work.
    #[error("the node is shutting down")]
    ShuttingDown,

    /// This node does not (or no longer) coordinate consumer groups: in a cluster only the
    /// controller leader does, and only once it has applied its own term's first entry.
    #[error("not the group coordinator: {0}")]
    NotCoordinator(String),

    /// A client took no byte of its answers for `limit`, or took them slower than the minimum
    /// read rate: its connection is closed so that the requests waiting behind them give back
    /// their share of the node's byte budget.
    #[error(
        "the client took no byte of its answers for {limit:?}, or took them slower than \
         {min_bytes_per_sec} bytes/s (write stall limit)"
    )]
    ClientStalled { limit: std::time::Duration, min_bytes_per_sec: u64 },

    /// No byte of a frame's body arrived for `limit`, or it arrived slower than the minimum rate
    /// (from a Kafka client or a Raft peer): the frame held its share of the node's byte budget
    /// from its length on.
    #[error(
        "{received} bytes of a {len}-byte frame arrived, then no byte for {limit:?}, or they \
         arrived slower than {min_bytes_per_sec} bytes/s (read stall limit)"
    )]
    FrameStalled { len: usize, received: usize, limit: std::time::Duration, min_bytes_per_sec: u64 },

    /// A Raft peer could not be reached (connect refused, connection lost, backing off);
    /// openraft treats this as "retry later".
    #[error("raft peer {peer} at {addr} unreachable: {reason}")]
    PeerUnreachable { peer: u64, addr: String, reason: String },

    /// A Raft RPC got no reply within its time-to-live.
    #[error("raft {rpc} to peer {peer} for group {group} got no reply within {timeout:?}")]
    RpcTimeout { peer: u64, group: GroupId, rpc: &'static str, timeout: std::time::Duration },
}

impl BrokerError {
    /// Shorthand for an I/O error with the operation and path that failed.
    pub fn io(op: impl Into<String>, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BrokerError::Io { op: op.into(), path: path.into(), source }
    }
}

/// Result alias used across the broker library.
pub type Result<T, E = BrokerError> = std::result::Result<T, E>;
