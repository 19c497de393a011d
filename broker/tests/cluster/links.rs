//! Test-local TCP proxies for the directed Raft links of a cluster: node i dials proxy(i->j),
//! which forwards to node j's Raft listener. A link can be cut (new connections are accepted and
//! dropped at once, live ones are shut down both ways) and healed.
//!
//! Plain threads and blocking sockets, so the proxies work whatever runtime (if any) a test uses.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;

struct Link {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Link {
    fn start(upstream: SocketAddr) -> Result<Link> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let cut = Arc::new(AtomicBool::new(false));
        let closed = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c, z, l) = (cut.clone(), closed.clone(), live.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if z.load(Ordering::Acquire) {
                    break;
                }
                let Ok(client) = conn else { continue };
                if c.load(Ordering::Acquire) {
                    drop(client); // black hole: the dialer sees its connection closed
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    let mut live = l.lock().unwrap_or_else(|p| p.into_inner());
                    if let (Ok(a), Ok(b)) = (client.try_clone(), server.try_clone()) {
                        live.push(a);
                        live.push(b);
                    }
                }
                if c.load(Ordering::Acquire) {
                    // Cut while this connection was being set up.
                    let _ = client.shutdown(Shutdown::Both);
                    let _ = server.shutdown(Shutdown::Both);
                    continue;
                }
                pipe(&client, &server);
                pipe(&server, &client);
            }
        });
        Ok(Link { addr, cut, closed, live })
    }

    fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Release);
        if cut {
            let live = std::mem::take(&mut *self.live.lock().unwrap_or_else(|p| p.into_inner()));
            for s in live {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Copies `from` -> `to` on a thread until either side closes, then shuts both down.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else { return };
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}

impl Drop for Link {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        self.set_cut(true);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop so it sees `closed`
    }
}

/// Every directed link i->j of a cluster.
pub struct Links {
    links: BTreeMap<(i32, i32), Link>,
}

impl Links {
    pub fn start(raft: &BTreeMap<i32, SocketAddr>) -> Result<Links> {
        let mut links = BTreeMap::new();
        for &i in raft.keys() {
            for (&j, &addr) in raft {
                if i != j {
                    links.insert((i, j), Link::start(addr)?);
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
