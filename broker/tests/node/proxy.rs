//! The broker tests' one TCP proxy: a loopback listener that forwards every connection to an
//! upstream and can cut them. Node tests put one in front of a broker's Kafka listener (the broker
//! advertises it, so clients see dropped connections mid-request and must retry); cluster tests
//! put one on every directed Raft link i->j (`cluster/links.rs`).
//!
//! Cuts are per connection as dialed through this proxy: both directions of every live connection
//! are shut down, and while cut new ones are accepted and closed at once. The lab's fabric
//! (`labs::fabric`) models links per direction of bytes instead; broker tests need the
//! dialer's view (a deposed leader's own connections healed while its peers' stay cut), and the
//! broker crate cannot depend on the lab that depends on it.
//!
//! Plain threads and blocking sockets, so it works whatever runtime (if any) a test uses.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Result;

/// Both sockets of one proxied connection, and whether its pumps have ended.
struct Pair {
    client: TcpStream,
    server: TcpStream,
    done: Arc<AtomicBool>,
}

impl Pair {
    fn shut(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }
}

pub struct Proxy {
    pub addr: SocketAddr,
    upstream: Arc<OnceLock<SocketAddr>>,
    cut: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<Pair>>>,
}

impl Proxy {
    /// Binds first (so a broker can be told to advertise this address) and accepts at once;
    /// connections are closed until `forward_to` names the upstream.
    pub fn bind() -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let proxy = Proxy {
            addr: listener.local_addr()?,
            upstream: Arc::default(),
            cut: Arc::default(),
            closed: Arc::default(),
            live: Arc::default(),
        };
        let (upstream, cut, closed, live) =
            (proxy.upstream.clone(), proxy.cut.clone(), proxy.closed.clone(), proxy.live.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if closed.load(Ordering::Acquire) {
                    break;
                }
                let Ok(client) = conn else { continue };
                // Cut or not forwarding yet: the dialer sees its connection closed.
                let Some(&to) = upstream.get().filter(|_| !cut.load(Ordering::Acquire)) else { continue };
                let Ok(server) = TcpStream::connect(to) else { continue };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) else { continue };
                let pair = Pair { client: c, server: s, done: Arc::default() };
                let done = pair.done.clone();
                {
                    let mut live = live.lock().unwrap_or_else(|p| p.into_inner());
                    live.retain(|p| !p.done.load(Ordering::Acquire));
                    live.push(pair);
                }
                if cut.load(Ordering::Acquire) {
                    // Cut while this connection was being set up.
                    let _ = client.shutdown(Shutdown::Both);
                    let _ = server.shutdown(Shutdown::Both);
                    continue;
                }
                pump(&client, &server, done.clone());
                pump(&server, &client, done);
            }
        });
        Ok(proxy)
    }

    /// A proxy forwarding to `upstream` from the start.
    pub fn start(upstream: SocketAddr) -> Result<Proxy> {
        let proxy = Proxy::bind()?;
        proxy.forward_to(upstream);
        Ok(proxy)
    }

    /// Starts forwarding accepted connections to `upstream` (the first call wins).
    pub fn forward_to(&self, upstream: SocketAddr) {
        let _ = self.upstream.set(upstream);
    }

    /// Cuts every live connection and refuses new ones (`true`), or accepts again (`false`).
    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Release);
        if cut {
            self.sever_all();
        }
    }

    /// Shuts both sides of every live connection down (new ones are still forwarded); returns
    /// how many were cut.
    pub fn sever_all(&self) -> usize {
        let live = std::mem::take(&mut *self.live.lock().unwrap_or_else(|p| p.into_inner()));
        let open = live.iter().filter(|p| !p.done.load(Ordering::Acquire)).count();
        for pair in &live {
            pair.shut();
        }
        open
    }
}

/// Copies `from` -> `to` on a thread until either side closes, then shuts both down.
fn pump(from: &TcpStream, to: &TcpStream, done: Arc<AtomicBool>) {
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
        done.store(true, Ordering::Release);
    });
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        self.set_cut(true);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop so it sees `closed`
    }
}
