//! A loopback TCP proxy that can sever every live connection on demand.
//!
//! The broker advertises the proxy's address, so clients reach the broker only through it; severing
//! makes librdkafka see dropped connections mid-request, which is what forces producer retries.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub struct Proxy {
    pub addr: SocketAddr,
    listener: Option<TcpListener>,
    live: Arc<Mutex<Vec<AbortHandle>>>,
    accept_task: Option<AbortHandle>,
}

impl Proxy {
    /// Binds first (so the broker can be told to advertise this address), forwards later.
    pub async fn bind() -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok(Proxy { addr, listener: Some(listener), live: Arc::default(), accept_task: None })
    }

    /// Starts forwarding every accepted connection to `upstream`.
    pub fn forward_to(&mut self, upstream: SocketAddr) {
        let listener = self.listener.take().expect("forward_to called once");
        let live = Arc::clone(&self.live);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let pipe = tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                let mut live = live.lock().unwrap_or_else(|p| p.into_inner());
                live.retain(|h| !h.is_finished());
                live.push(pipe.abort_handle());
            }
        });
        self.accept_task = Some(task.abort_handle());
    }

    /// Drops both sides of every live connection; returns how many were cut.
    pub fn sever_all(&self) -> usize {
        let handles: Vec<AbortHandle> =
            std::mem::take(&mut *self.live.lock().unwrap_or_else(|p| p.into_inner()));
        let live = handles.iter().filter(|h| !h.is_finished()).count();
        for h in handles {
            h.abort(); // aborting the task drops its sockets, closing both connections
        }
        live
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.sever_all();
        if let Some(t) = self.accept_task.take() {
            t.abort();
        }
    }
}
