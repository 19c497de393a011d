//! The one error type of the `labs` library.
//!
//! Every variant names what was being done, so the binary can print it as-is (it wraps these in
//! `anyhow` only at the edge).

use std::path::PathBuf;

/// Everything that can go wrong inside the lab engine.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The broker (or peer) executable is not where we looked.
    #[error("{what} binary not found at {path}: {hint}")]
    BinaryNotFound { what: &'static str, path: PathBuf, hint: String },

    /// A child process could not be started, or died before it was ready.
    #[error("{what}: {detail}")]
    Process { what: String, detail: String },

    /// Something did not happen within its bound.
    #[error("timed out after {secs:.1}s while {what}")]
    Timeout { what: String, secs: f64 },

    /// A Kafka client operation failed (topic creation, produce, consume).
    #[error("kafka client error while {what}: {source}")]
    Kafka {
        what: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },

    /// A bad `--cases` filter or other invalid bench option.
    #[error("invalid {what}: {detail}")]
    InvalidArgument { what: &'static str, detail: String },

    /// The broker's HTTP telemetry answered something we could not read.
    #[error("telemetry at {addr}: {detail}")]
    Telemetry { addr: String, detail: String },

    #[error("i/o error while {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("json error while {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// A port the lab needs is taken; `holder` names the process when it can be found.
    #[error("port {port} ({what}) is already in use{holder}")]
    PortInUse { port: u16, what: String, holder: String },

    /// A clusterlab-broker from an earlier run still runs on a data dir this lab wants.
    #[error(
        "a clusterlab-broker from an earlier run is still running: pid {pid} on data dir {data_dir}; \
         stop it first (kill {pid})"
    )]
    StaleBroker { pid: i32, data_dir: PathBuf },

    /// An operation named a node id the lab does not have.
    #[error("no node {id} in this lab (nodes are 1..={nodes})")]
    UnknownNode { id: i32, nodes: usize },

    /// An operation that does not fit the node's current state (e.g. corrupting a running node).
    #[error("node {id}: {detail}")]
    NodeState { id: i32, detail: String },

    #[error("histogram error: {0}")]
    Histogram(String),

    /// An imported timeline has a bad line.
    #[error("{what}, line {line}: {detail}")]
    Import { what: String, line: usize, detail: String },

    /// A chart could not be drawn.
    #[error("chart {what}: {detail}")]
    Chart { what: String, detail: String },

    /// A drill file is wrong: where, and what was expected.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Drill { file: PathBuf, line: usize, column: usize, message: String },
}

impl LabError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
        let what = what.into();
        move |source| LabError::Io { what, source }
    }

    pub(crate) fn kafka(what: impl Into<String>) -> impl FnOnce(rdkafka::error::KafkaError) -> LabError {
        let what = what.into();
        move |source| LabError::Kafka { what, source }
    }
}

pub type Result<T, E = LabError> = std::result::Result<T, E>;
