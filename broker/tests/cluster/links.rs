//! The directed Raft links of a cluster through the lab's fabric: node i dials proxy(i->j),
//! which forwards to node j's Raft listener. A link is cut as its dialer sees it (live
//! connections reset, new ones closed at once) and healed, so a test can give a deposed leader
//! its own connections back while its peers' stay cut.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use labs::fabric::{Endpoint, NodeTarget};

use crate::fabric::TestFabric;

/// Every directed link i->j of a cluster.
pub struct Links {
    fabric: TestFabric,
    nodes: Vec<i32>,
}

impl Links {
    pub fn start(targets: &[NodeTarget]) -> Result<Links> {
        Ok(Links { fabric: TestFabric::start(targets)?, nodes: targets.iter().map(|t| t.id).collect() })
    }

    /// The address node `from` dials to reach node `to`.
    pub fn addr(&self, from: i32, to: i32) -> Result<SocketAddr> {
        self.fabric.raft_proxy(from, to).with_context(|| format!("no Raft link {from} -> {to}"))
    }

    /// Cuts (or heals) the one directed link `from` -> `to`: what `from` sends on connections it
    /// dials, and the answers to it.
    pub fn cut(&self, from: i32, to: i32, cut: bool) {
        self.fabric
            .cut_dialed(Endpoint::Node(from), Endpoint::Node(to), cut)
            .expect("a link between two nodes of the cluster");
    }

    /// Cuts (or heals) every link to and from `node`, both directions.
    pub fn isolate(&self, node: i32, cut: bool) {
        for &other in self.nodes.iter().filter(|&&o| o != node) {
            self.cut(node, other, cut);
            self.cut(other, node, cut);
        }
    }
}
