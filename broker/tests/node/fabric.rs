//! The lab's link fabric (`labs::fabric`, decision 41) in a test, whatever runtime (if any) the
//! test uses: the fabric's proxies run on a small runtime of their own, dropped with it.
//!
//! Node tests put the fabric's client proxy in front of a broker's Kafka listener (the broker
//! advertises it, so clients see their connections severed mid-request and must retry);
//! cluster tests dial every Raft link i->j through it (`cluster/links.rs`).

use std::net::{SocketAddr, TcpListener};

use anyhow::{Context, Result};
use labs::fabric::{Fabric, NodeTarget};

pub struct TestFabric {
    fabric: Fabric,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestFabric {
    pub fn start(targets: &[NodeTarget]) -> Result<TestFabric> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-fabric")
            .enable_all()
            .build()?;
        // `block_on` may not run inside a test's own runtime; a plain thread may.
        let fabric = std::thread::scope(|s| s.spawn(|| runtime.block_on(Fabric::new(targets))).join())
            .map_err(|_| anyhow::anyhow!("starting the fabric panicked"))??;
        Ok(TestFabric { fabric, runtime: Some(runtime) })
    }

    /// A fabric with one client proxy in front of a broker that will listen on the returned
    /// Kafka address (reserved until the proxy is bound, then free for the broker to take).
    pub fn for_one_broker() -> Result<(TestFabric, SocketAddr)> {
        let held = TcpListener::bind("127.0.0.1:0")?;
        let kafka = held.local_addr()?;
        // One node has no Raft links: its Raft address is never dialed.
        let fabric = TestFabric::start(&[NodeTarget { id: 1, raft: kafka, kafka }])?;
        Ok((fabric, kafka))
    }

    /// The address clients use for `node` (what the broker advertises).
    pub fn client_proxy(&self, node: i32) -> Result<SocketAddr> {
        self.fabric.client_proxy(node).with_context(|| format!("no client proxy for node {node}"))
    }
}

impl std::ops::Deref for TestFabric {
    type Target = Fabric;
    fn deref(&self) -> &Fabric {
        &self.fabric
    }
}

impl Drop for TestFabric {
    fn drop(&mut self) {
        // Ends every proxy task and closes its connections, without waiting: a test's own
        // runtime may not block in a drop.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
