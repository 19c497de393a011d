//! How much requests in progress may hold. Per connection: at most so many requests, and so many
//! bytes of their frames. A node's Kafka connections also share one byte budget, because a
//! per-connection bound alone lets a node hold `max_connections` times it. Past any bound the
//! connection's reader waits for room, reads nothing more, and TCP pushes back on the sender; a
//! client or peer can make a node hold only this much. Fetch answers, built in memory, take
//! their bytes from the same node budget until they are written ([`AnswerBytes`]).

pub mod stall;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes of frames in progress, at most. A frame larger than the whole budget is admitted alone
/// (it takes every byte), so no frame the connection accepted waits forever.
pub struct ByteBudget {
    bytes: Arc<Semaphore>,
    max_bytes: usize,
}

impl ByteBudget {
    /// `max_bytes` must be at least 1.
    pub fn new(max_bytes: usize) -> ByteBudget {
        let max_bytes = max_bytes.min(Semaphore::MAX_PERMITS);
        ByteBudget { bytes: Arc::new(Semaphore::new(max_bytes)), max_bytes }
    }

    async fn take(&self, frame_len: usize) -> OwnedSemaphorePermit {
        let bytes = frame_len.clamp(1, self.max_bytes).min(u32::MAX as usize) as u32;
        Arc::clone(&self.bytes).acquire_many_owned(bytes).await.expect("never closed")
    }

    /// Room for an answer of `len` bytes built in memory, if there is some now. An answer
    /// larger than half the budget takes half: the requests in progress, its own among them,
    /// hold frames of the budget, so the whole of it would never be free. Never queued behind
    /// (or ahead of) waiting frames: a waiter stays queued while its connection's writer is
    /// stalled, and would stop every connection's reading until the stall limit.
    pub fn try_take_answer(&self, len: usize, gauge: &Arc<AtomicUsize>) -> Option<AnswerBytes> {
        let permit = Arc::clone(&self.bytes).try_acquire_many_owned(self.answer_permits(len)).ok()?;
        Some(AnswerBytes::new(permit, gauge, len))
    }

    fn answer_permits(&self, len: usize) -> u32 {
        len.clamp(1, (self.max_bytes / 2).max(1)).min(u32::MAX as usize) as u32
    }
}

/// The bytes of one answer built in memory, held in the node's budget and counted in a gauge
/// until the answer has been written (dropped then, or with its connection).
pub struct AnswerBytes {
    _permit: OwnedSemaphorePermit,
    gauge: Arc<AtomicUsize>,
    len: usize,
}

impl AnswerBytes {
    fn new(permit: OwnedSemaphorePermit, gauge: &Arc<AtomicUsize>, len: usize) -> AnswerBytes {
        gauge.fetch_add(len, Ordering::Relaxed);
        AnswerBytes { _permit: permit, gauge: Arc::clone(gauge), len }
    }
}

impl Drop for AnswerBytes {
    fn drop(&mut self) {
        self.gauge.fetch_sub(self.len, Ordering::Relaxed);
    }
}

pub struct ConnectionBudget {
    requests: Arc<Semaphore>,
    bytes: ByteBudget,
    /// The node's byte budget, shared with its other connections of the same kind.
    node: Option<Arc<ByteBudget>>,
}

/// One request's share of the budgets, returned when dropped.
pub struct Admitted {
    _request: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
    _node: Option<OwnedSemaphorePermit>,
}

impl ConnectionBudget {
    pub fn new(max_requests: usize, max_bytes: usize) -> ConnectionBudget {
        ConnectionBudget {
            requests: Arc::new(Semaphore::new(max_requests)),
            bytes: ByteBudget::new(max_bytes),
            node: None,
        }
    }

    /// The same, and a request is admitted only when `node` has room for it too.
    pub fn within(self, node: Arc<ByteBudget>) -> ConnectionBudget {
        ConnectionBudget { node: Some(node), ..self }
    }

    /// Waits until a request whose frame has `frame_len` bytes fits.
    pub async fn admit(&self, frame_len: usize) -> Admitted {
        // The connection's own room first: a connection waiting for its own requests to finish
        // then holds none of the node's bytes, which other connections could be using.
        let request = Arc::clone(&self.requests).acquire_owned().await.expect("never closed");
        let bytes = self.bytes.take(frame_len).await;
        let node = match &self.node {
            Some(node) => Some(node.take(frame_len).await),
            None => None,
        };
        Admitted { _request: request, _bytes: bytes, _node: node }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn connections_share_the_node_budget() {
        let node = Arc::new(ByteBudget::new(100));
        let a = ConnectionBudget::new(10, 1000).within(Arc::clone(&node));
        let b = ConnectionBudget::new(10, 1000).within(Arc::clone(&node));
        let first = a.admit(60).await;
        // Either connection alone has room for 40 more bytes, the node does not.
        assert!(b.admit(60).now_or_never().is_none(), "b admitted past the node's budget");
        assert!(a.admit(60).now_or_never().is_none(), "a admitted past the node's budget");
        let _fits = b.admit(40).now_or_never().expect("40 bytes fit beside 60");
        drop(first);
        assert!(b.admit(60).now_or_never().is_some(), "the node's room came back when a's request ended");
    }

    #[tokio::test]
    async fn an_answer_larger_than_half_the_budget_takes_half_beside_the_frames() {
        let node = Arc::new(ByteBudget::new(100));
        let gauge = Arc::new(AtomicUsize::new(0));
        let conn = ConnectionBudget::new(10, 1000).within(Arc::clone(&node));
        let frame = conn.admit(10).await;
        let answer = node.try_take_answer(500, &gauge).expect("half the budget is free beside a frame");
        assert_eq!(gauge.load(Ordering::Relaxed), 500, "the gauge counts the answer's own bytes");
        assert!(node.try_take_answer(41, &gauge).is_none(), "room for 40 bytes only");
        let _small = node.try_take_answer(40, &gauge).expect("40 bytes fit");
        drop((answer, frame));
        assert_eq!(gauge.load(Ordering::Relaxed), 40, "the written answer is uncounted");
        assert!(conn.admit(60).now_or_never().is_some(), "the answer's room came back");
    }

    #[tokio::test]
    async fn a_frame_larger_than_the_node_budget_is_admitted_alone() {
        let node = Arc::new(ByteBudget::new(100));
        let a = ConnectionBudget::new(10, 1000).within(Arc::clone(&node));
        let b = ConnectionBudget::new(10, 1000).within(node);
        let small = b.admit(1).await;
        assert!(a.admit(500).now_or_never().is_none(), "admitted beside another request");
        drop(small);
        let _large = a.admit(500).now_or_never().expect("admitted alone once the node is idle");
        assert!(b.admit(1).now_or_never().is_none(), "admitted beside the large frame");
    }
}
