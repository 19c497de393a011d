//! Test-local proxies for the directed Raft links of a cluster: node i dials proxy(i->j), which
//! forwards to node j's Raft listener. A link can be cut (its live connections are shut down and
//! new ones closed at once) and healed; see `node/proxy.rs` for why these are not the lab's
//! fabric.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::Result;

use crate::proxy::Proxy;

/// Every directed link i->j of a cluster.
pub struct Links {
    links: BTreeMap<(i32, i32), Proxy>,
}

impl Links {
    pub fn start(raft: &BTreeMap<i32, SocketAddr>) -> Result<Links> {
        let mut links = BTreeMap::new();
        for &i in raft.keys() {
            for (&j, &addr) in raft {
                if i != j {
                    links.insert((i, j), Proxy::start(addr)?);
                }
            }
        }
        Ok(Links { links })
    }

    /// The address node `from` dials to reach node `to`.
    pub fn addr(&self, from: i32, to: i32) -> SocketAddr {
        self.links[&(from, to)].addr
    }

    /// Cuts (or heals) the one directed link `from` -> `to`: what `from` sends on connections it
    /// dials, and the answers to it.
    pub fn cut(&self, from: i32, to: i32, cut: bool) {
        self.links[&(from, to)].set_cut(cut);
    }

    /// Cuts (or heals) every link to and from `node`, both directions.
    pub fn isolate(&self, node: i32, cut: bool) {
        for ((i, j), l) in &self.links {
            if *i == node || *j == node {
                l.set_cut(cut);
            }
        }
    }
}
