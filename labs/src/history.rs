//! Client operations as a Jepsen-style history: every operation is recorded when it is invoked
//! and again when it completes as `ok`, `fail` (certainly did not happen) or `info`
//! (indeterminate: it may or may not have happened — a timeout, a dropped connection).
//!
//! This is the one record shared by the workload (which writes it), the checker (which judges
//! it), the timeline (which shows it) and the exports (EDN, CSV, JSON Lines).

use serde::{Deserialize, Serialize};

/// Invocation or completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// What the client did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// Produce one message; `value` is its unique payload.
    Send,
    /// One message delivered to a consumer; `value`, `partition`, `offset` say what was read.
    Poll,
    /// A group member's committed offset acknowledged by the group coordinator: `partition`,
    /// and `offset` = the next offset the group will read there.
    Commit,
    /// A group member was assigned `partition` (a rebalance finished); its next poll there
    /// starts from the group's committed offset.
    Assign,
}

/// One history entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Op {
    /// Position in the history (assigned by `History::push`).
    pub index: u64,
    /// Which client (producer or consumer instance) did it.
    pub process: u32,
    /// Wall-clock Unix nanoseconds, comparable with broker telemetry.
    pub time_ns: u64,
    #[serde(rename = "type")]
    pub op_type: OpType,
    #[serde(rename = "f")]
    pub kind: OpKind,
    pub topic: String,
    /// The unique payload (every sent value is distinct within a run).
    pub value: Option<String>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    /// For completions: time since the matching invocation.
    pub latency_ns: Option<u64>,
    /// For `fail` / `info`: what the client reported.
    pub error: Option<String>,
}

impl Op {
    /// A new operation of `kind` by `process`, not yet placed in a history.
    pub fn new(process: u32, op_type: OpType, kind: OpKind, topic: &str) -> Op {
        Op {
            index: 0,
            process,
            time_ns: now_ns(),
            op_type,
            kind,
            topic: topic.to_string(),
            value: None,
            partition: None,
            offset: None,
            latency_ns: None,
            error: None,
        }
    }

    pub fn value(mut self, v: impl Into<String>) -> Op {
        self.value = Some(v.into());
        self
    }

    pub fn at(mut self, partition: i32, offset: i64) -> Op {
        self.partition = Some(partition);
        self.offset = Some(offset);
        self
    }

    pub fn time(mut self, time_ns: u64) -> Op {
        self.time_ns = time_ns;
        self
    }

    pub fn latency(mut self, ns: u64) -> Op {
        self.latency_ns = Some(ns);
        self
    }

    pub fn error(mut self, e: impl Into<String>) -> Op {
        self.error = Some(e.into());
        self
    }
}

/// An ordered list of operations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub ops: Vec<Op>,
}

impl History {
    pub fn push(&mut self, mut op: Op) -> u64 {
        op.index = self.ops.len() as u64;
        self.ops.push(op);
        self.ops.len() as u64 - 1
    }
}

/// Wall-clock Unix nanoseconds.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
