//! The link fabric: a lab-owned TCP proxy on every path between the nodes and to the clients, so
//! every link can be delayed, cut one way, blackholed, reset or given a toxic (`toxic.rs`: latency
//! with jitter, bandwidth, slicer, limit-data, timeout) while the brokers keep running.
//!
//! - Node links: node i reaches node j's Raft listener through proxy(i->j) (one per ordered pair).
//! - Client links: one proxy per node in front of its Kafka listener; brokers advertise it, so
//!   clients (and brokers forwarding clients) go through it.
//!
//! A *direction* "a->b" is every byte a sends to b, whatever connection carries it: a's requests on
//! proxy(a->b) and a's replies on proxy(b->a). Cutting a->b therefore silences a towards b
//! completely while b's bytes still reach a.

mod link;
mod proxy;
#[cfg(test)]
mod tests;
mod toxic;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use link::{ConnectionCounts, Dialed, Direction};
pub use link::{Endpoint, LinkState, Mode};
use proxy::ProxyRoute;
pub use toxic::Toxic;

use crate::error::{LabError, Result};

/// Where a node really listens (the proxies forward there).
#[derive(Debug, Clone, Copy)]
pub struct NodeTarget {
    pub id: i32,
    pub raft: SocketAddr,
    pub kafka: SocketAddr,
}

/// All proxies of a lab. [`Fabric::stop`] (or dropping it) stops every proxy and closes every
/// proxied connection.
pub struct Fabric {
    nodes: Vec<i32>,
    directions: HashMap<(Endpoint, Endpoint), Arc<Direction>>,
    pairs: BTreeMap<(Endpoint, Endpoint), Arc<ConnectionCounts>>,
    raft_proxies: HashMap<(i32, i32), SocketAddr>,
    client_proxies: BTreeMap<i32, SocketAddr>,
    /// Every proxy by (the side that dials it, the side it reaches).
    routes: HashMap<(Endpoint, Endpoint), Arc<ProxyRoute>>,
    shutdown: CancellationToken,
    /// Every proxy's accept loop (each owning its connections' tasks): they end on `shutdown`,
    /// and `stop` waits for them.
    proxies: Mutex<JoinSet<()>>,
}

/// The canonical key of an unordered pair: nodes in id order, clients last.
fn pair_key(a: Endpoint, b: Endpoint) -> (Endpoint, Endpoint) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

impl Fabric {
    /// Binds one loopback proxy per ordered node pair and one client proxy per node, each on a
    /// free port chosen by the kernel (so no port can be taken between choosing and binding),
    /// and starts forwarding. Upstreams need not be up yet: a connection to a dead upstream is
    /// closed, as a direct one would be refused.
    pub async fn new(targets: &[NodeTarget]) -> Result<Fabric> {
        let shutdown = CancellationToken::new();
        let mut fabric = Fabric {
            nodes: targets.iter().map(|t| t.id).collect(),
            directions: HashMap::new(),
            pairs: BTreeMap::new(),
            raft_proxies: HashMap::new(),
            client_proxies: BTreeMap::new(),
            routes: HashMap::new(),
            shutdown: shutdown.clone(),
            proxies: Mutex::new(JoinSet::new()),
        };
        let mut ends: Vec<Endpoint> = targets.iter().map(|t| Endpoint::Node(t.id)).collect();
        ends.push(Endpoint::Client);
        for &a in &ends {
            for &b in &ends {
                if a != b && !(a == Endpoint::Client && b == Endpoint::Client) {
                    fabric.directions.insert((a, b), Arc::new(Direction::new()));
                    fabric.pairs.entry(pair_key(a, b)).or_default();
                }
            }
        }
        for from in targets {
            for to in targets.iter().filter(|t| t.id != from.id) {
                let addr =
                    fabric.spawn_proxy(Endpoint::Node(from.id), Endpoint::Node(to.id), to.raft).await?;
                fabric.raft_proxies.insert((from.id, to.id), addr);
            }
            let addr = fabric.spawn_proxy(Endpoint::Client, Endpoint::Node(from.id), from.kafka).await?;
            fabric.client_proxies.insert(from.id, addr);
        }
        tracing::info!(
            nodes = ?fabric.nodes,
            proxies = fabric.raft_proxies.len() + fabric.client_proxies.len(),
            "link fabric up"
        );
        Ok(fabric)
    }

    async fn spawn_proxy(
        &mut self,
        initiator: Endpoint,
        target: Endpoint,
        upstream: SocketAddr,
    ) -> Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(LabError::io(format!("binding the fabric proxy {initiator} -> {target}")))?;
        let addr = listener.local_addr().map_err(LabError::io("reading a fabric proxy's address"))?;
        let route = Arc::new(ProxyRoute {
            upstream,
            up: Arc::clone(&self.directions[&(initiator, target)]),
            down: Arc::clone(&self.directions[&(target, initiator)]),
            pair: Arc::clone(&self.pairs[&pair_key(initiator, target)]),
            dialed: Dialed::new(),
        });
        self.routes.insert((initiator, target), Arc::clone(&route));
        // Owned by the fabric: its shutdown token (cancelled by `stop` and on drop) ends the
        // accept loop and every connection task.
        let proxies = self.proxies.get_mut().unwrap_or_else(|p| p.into_inner());
        proxies.spawn(proxy::run(listener, route, self.shutdown.clone()));
        Ok(addr)
    }

    /// Stops every proxy and closes every proxied connection; returns once their tasks have
    /// ended. Links are gone afterwards, so this is for a lab whose nodes have stopped.
    pub(crate) async fn stop(&self) {
        self.shutdown.cancel();
        let mut proxies = std::mem::take(&mut *self.proxies.lock().unwrap_or_else(|p| p.into_inner()));
        crate::tasks::join_all(&mut proxies, "the link fabric's proxies").await;
    }

    /// The address node `from` must dial to reach node `to`'s Raft listener.
    pub fn raft_proxy(&self, from: i32, to: i32) -> Option<SocketAddr> {
        self.raft_proxies.get(&(from, to)).copied()
    }

    /// The address clients use for node `node` (what the node advertises).
    pub fn client_proxy(&self, node: i32) -> Option<SocketAddr> {
        self.client_proxies.get(&node).copied()
    }

    /// Every client proxy, in node order.
    pub fn client_proxies(&self) -> Vec<SocketAddr> {
        self.client_proxies.values().copied().collect()
    }

    /// Sets what happens to the bytes `from` sends to `to`.
    pub fn set(&self, from: Endpoint, to: Endpoint, mode: Mode) -> Result<()> {
        // One reset path: the pumps and the accept loop already know `Mode::Reset`.
        let mode = if mode == Mode::Toxic(Toxic::Reset) { Mode::Reset } else { mode };
        let dir = self.directions.get(&(from, to)).ok_or_else(|| LabError::InvalidArgument {
            what: "link",
            detail: format!("there is no link {from} -> {to} (nodes are {:?})", self.nodes),
        })?;
        tracing::info!(%from, %to, ?mode, "link mode");
        dir.set(mode);
        Ok(())
    }

    fn route(&self, dialer: Endpoint, target: Endpoint) -> Result<&ProxyRoute> {
        self.routes.get(&(dialer, target)).map(|r| &**r).ok_or_else(|| LabError::InvalidArgument {
            what: "route",
            detail: format!(
                "no proxy carries connections from {dialer} to {target} (nodes are {:?})",
                self.nodes
            ),
        })
    }

    /// Cuts (`true`) or restores the connections `dialer` opens to `target`: live ones are reset
    /// and new ones closed as soon as accepted, whatever the modes of their bytes' directions.
    /// The connections `target` opens to `dialer` are untouched, so this can heal a node's own
    /// requests while its peers' requests to it stay cut (what [`Fabric::set`] cannot: a
    /// direction governs bytes on every connection).
    pub fn cut_dialed(&self, dialer: Endpoint, target: Endpoint, cut: bool) -> Result<()> {
        let route = self.route(dialer, target)?;
        tracing::info!(%dialer, %target, cut, "dialed connections");
        route.dialed.set_cut(cut);
        Ok(())
    }

    /// Resets every connection `dialer` has open to `target` once, as a dropped NAT entry would;
    /// new connections are forwarded. Returns how many were open.
    pub fn sever_dialed(&self, dialer: Endpoint, target: Endpoint) -> Result<u64> {
        let open = self.route(dialer, target)?.dialed.sever();
        tracing::info!(%dialer, %target, open, "dialed connections severed");
        Ok(open)
    }

    /// Both directions between `a` and `b`.
    fn set_both(&self, a: Endpoint, b: Endpoint, mode: Mode) -> Result<()> {
        self.set(a, b, mode)?;
        self.set(b, a, mode)
    }

    fn check_node(&self, id: i32) -> Result<()> {
        if self.nodes.contains(&id) {
            Ok(())
        } else {
            Err(LabError::UnknownNode { id, nodes: self.nodes.len() })
        }
    }

    /// Cuts `node` off from every other node, both ways (blackhole: its connections stay up and
    /// go silent, as behind a failed switch). Client links are left as they are: the clients
    /// still reach the isolated node, which is what makes stale reads and lost writes visible.
    pub fn isolate(&self, node: i32) -> Result<()> {
        self.check_node(node)?;
        for &other in self.nodes.iter().filter(|&&o| o != node) {
            self.set_both(Endpoint::Node(node), Endpoint::Node(other), Mode::Blackhole)?;
        }
        Ok(())
    }

    /// Cuts every link between `minority` and the other nodes, both ways; links inside each side
    /// are left as they are.
    pub fn split(&self, minority: &[i32]) -> Result<()> {
        for &m in minority {
            self.check_node(m)?;
        }
        for &m in minority {
            for &o in self.nodes.iter().filter(|o| !minority.contains(o)) {
                self.set_both(Endpoint::Node(m), Endpoint::Node(o), Mode::Blackhole)?;
            }
        }
        Ok(())
    }

    /// Drops everything `from` sends to `to`, while `to` still reaches `from`.
    pub fn one_way(&self, from: i32, to: i32) -> Result<()> {
        self.check_node(from)?;
        self.check_node(to)?;
        self.set(Endpoint::Node(from), Endpoint::Node(to), Mode::Blackhole)?;
        self.set(Endpoint::Node(to), Endpoint::Node(from), Mode::Pass)
    }

    /// `b` talks to both `a` and `c`; `a` and `c` cannot talk to each other.
    pub fn bridge(&self, a: i32, b: i32, c: i32) -> Result<()> {
        for id in [a, b, c] {
            self.check_node(id)?;
        }
        self.set_both(Endpoint::Node(a), Endpoint::Node(b), Mode::Pass)?;
        self.set_both(Endpoint::Node(b), Endpoint::Node(c), Mode::Pass)?;
        self.set_both(Endpoint::Node(a), Endpoint::Node(c), Mode::Blackhole)
    }

    /// Every direction back to Pass.
    pub fn heal_all(&self) {
        tracing::info!("fabric healed");
        for dir in self.directions.values() {
            dir.set(Mode::Pass);
        }
    }

    /// One entry per endpoint pair (node pairs in id order, then each node with the clients).
    pub fn links(&self) -> Vec<LinkState> {
        self.pairs
            .iter()
            .map(|(&(a, b), stats)| {
                // Clients sort last; show them as the sender side, the way a user thinks of it.
                let (from, to) = if b == Endpoint::Client { (b, a) } else { (a, b) };
                let (fwd, back) = (&self.directions[&(from, to)], &self.directions[&(to, from)]);
                let (connections, connections_total) = stats.counts();
                LinkState {
                    from,
                    to,
                    mode: fwd.mode(),
                    reverse_mode: back.mode(),
                    bytes_forwarded: fwd.bytes(),
                    bytes_returned: back.bytes(),
                    connections,
                    connections_total,
                }
            })
            .collect()
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
