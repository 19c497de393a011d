//! How much one connection's requests in progress may hold: at most so many requests, and so many
//! bytes of their frames. Past either bound the connection's reader waits for room, reads nothing
//! more, and TCP pushes back on the sender; a client or peer can make a node hold only this much.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct ConnectionBudget {
    requests: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    max_bytes: usize,
}

/// One request's share of the budget, returned when dropped.
pub struct Admitted {
    _request: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

impl ConnectionBudget {
    pub fn new(max_requests: usize, max_bytes: usize) -> ConnectionBudget {
        ConnectionBudget {
            requests: Arc::new(Semaphore::new(max_requests)),
            bytes: Arc::new(Semaphore::new(max_bytes)),
            max_bytes,
        }
    }

    /// Waits until a request whose frame has `frame_len` bytes fits. A frame larger than the whole
    /// byte budget is admitted alone.
    pub async fn admit(&self, frame_len: usize) -> Admitted {
        // Neither semaphore is ever closed.
        let request = Arc::clone(&self.requests).acquire_owned().await.expect("never closed");
        let bytes = frame_len.clamp(1, self.max_bytes).min(u32::MAX as usize) as u32;
        let bytes = Arc::clone(&self.bytes).acquire_many_owned(bytes).await.expect("never closed");
        Admitted { _request: request, _bytes: bytes }
    }
}
