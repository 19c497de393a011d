//! One TCP proxy: a loopback listener that forwards every accepted connection to its upstream,
//! each direction through a pump governed by that direction's [`Mode`].
//!
//! Pass mode is a plain read/write loop over a large buffer: no copying into queues, no per-byte
//! work, one atomic add per chunk. Only Delay mode and toxics queue chunks (with their due time).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::link::{ConnectionCounts, Dialed, Direction, Gate, Mode};
use super::toxic::Toxic;

/// Read buffer per direction and connection: large enough that bulk transfers move in few
/// syscalls, small enough for hundreds of connections.
const BUF_BYTES: usize = 256 * 1024;
/// Most bytes a delayed direction holds before it stops reading (TCP backpressure takes over).
const MAX_QUEUED_BYTES: usize = 32 * 1024 * 1024;
/// A dead upstream must not hold the client's connection open for long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What a proxy forwards and which directions govern it.
pub(crate) struct ProxyRoute {
    pub upstream: SocketAddr,
    /// Bytes from the connecting side to the upstream.
    pub up: Arc<Direction>,
    /// Bytes from the upstream back to the connecting side.
    pub down: Arc<Direction>,
    pub pair: Arc<ConnectionCounts>,
    /// This proxy's own connections (cut or severed as the dialer sees them).
    pub dialed: Dialed,
}

/// Accepts until `shutdown`; every connection gets its own task, owned here: once `shutdown`
/// fires this returns only after every connection task has ended (each ends on it too).
pub(crate) async fn run(listener: TcpListener, route: Arc<ProxyRoute>, shutdown: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        // Ended connections leave the set, so it holds only the open ones.
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((client, _)) => {
                let route = Arc::clone(&route);
                let shutdown = shutdown.clone();
                connections.spawn(async move {
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = serve(client, &route) => {}
                    }
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning on the error.
                tracing::warn!(upstream = %route.upstream, error = %e, "fabric proxy accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// How a pump ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The sender closed its side and everything was forwarded; the other direction goes on.
    Eof,
    /// The link was reset, or a blackhole left a hole in the stream: drop the whole connection.
    Reset,
    /// A socket error: the connection is gone either way.
    Failed,
    /// `limit_data` reached: both sides are closed normally (FIN), so what was sent arrives.
    Closed,
}

async fn serve(client: TcpStream, route: &ProxyRoute) {
    let mut gate = route.dialed.subscribe();
    let joined = *gate.borrow_and_update();
    if joined.cut {
        // A cut route: the dialer sees its connection closed as soon as it is accepted.
        return;
    }
    if route.up.mode() == Mode::Reset || route.down.mode() == Mode::Reset {
        // Refuse: an RST right after accept is what a peer behind a rejecting firewall sees.
        abort_fd(client.as_raw_fd());
        return;
    }
    let server = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(route.upstream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(upstream = %route.upstream, error = %e, "fabric upstream refused");
            return;
        }
        Err(_) => return,
    };
    // Small Kafka/Raft frames must not wait for Nagle on either hop.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let _open = (route.pair.open(), route.dialed.connections.open());
    let fds = (client.as_raw_fd(), server.as_raw_fd());
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, &route.up);
    let down = pump(sr, cw, &route.down);
    let reset = reset_requested(&route.up, &route.down, gate, joined.severs);
    tokio::pin!(up, down, reset);
    let (mut up_done, mut down_done) = (false, false);
    let abort = loop {
        tokio::select! {
            // A pump blocked in a write would not see a Reset; this arm does.
            _ = &mut reset => break true,
            end = &mut up, if !up_done => match end {
                End::Eof => up_done = true,
                End::Reset => break true,
                End::Failed | End::Closed => break false,
            },
            end = &mut down, if !down_done => match end {
                End::Eof => down_done = true,
                End::Reset => break true,
                End::Failed | End::Closed => break false,
            },
        }
        if up_done && down_done {
            break false;
        }
    };
    if abort {
        // The halves still own the fds here; they close (with RST) when dropped below.
        abort_fd(fds.0);
        abort_fd(fds.1);
    }
}

/// Completes when either direction of the connection is set to Reset, or its route is cut or
/// severed after the connection was opened (under `severs`).
async fn reset_requested(up: &Direction, down: &Direction, mut gate: watch::Receiver<Gate>, severs: u64) {
    let (mut a, mut b) = (up.subscribe(), down.subscribe());
    loop {
        if *a.borrow_and_update() == Mode::Reset || *b.borrow_and_update() == Mode::Reset {
            return;
        }
        let g = *gate.borrow_and_update();
        if g.cut || g.severs != severs {
            return;
        }
        tokio::select! {
            r = a.changed() => if r.is_err() { return },
            r = b.changed() => if r.is_err() { return },
            r = gate.changed() => if r.is_err() { return },
        }
    }
}

/// SO_LINGER 0: the coming close sends RST, so the peer sees a reset, not a graceful end.
fn abort_fd(fd: RawFd) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: fd is an open socket owned by a value that is still alive in the caller; the
    // option struct outlives the call.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// One direction of one connection: its mode and what it holds back.
struct Pump<'a> {
    dir: &'a Direction,
    mode: Mode,
    toxic: ToxicState,
    /// Delay line: chunks with the instant they are due. Only used by Delay mode and toxics, and
    /// while draining it after a switch back to Pass (so bytes never overtake each other).
    queue: VecDeque<(Instant, Vec<u8>)>,
    queued: usize,
    /// Bytes (or a FIN) were swallowed by a blackhole: the stream has a hole, so it can never
    /// resume; the connection is reset when the blackhole lifts and the peers reconnect cleanly.
    holed: bool,
    eof: bool,
}

/// Forwards one direction until EOF, error or a reset-worthy mode change.
async fn pump(mut r: OwnedReadHalf, mut w: OwnedWriteHalf, dir: &Direction) -> End {
    let mut modes = dir.subscribe();
    let mut p = Pump::new(dir, *modes.borrow_and_update());
    let mut buf = vec![0u8; BUF_BYTES];
    // One timer for the delay line, re-armed only when a chunk is queued: Pass mode creates no
    // timer per read.
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let close = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(close);
    loop {
        if p.eof && p.queue.is_empty() && !p.swallows() {
            let _ = w.shutdown().await;
            return End::Eof;
        }
        let due = p.queue.front().map(|(t, _)| *t);
        p.arm(due, timer.as_mut(), close.as_mut());
        let ended = tokio::select! {
            biased;
            changed = modes.changed() => match changed {
                Ok(()) => p.switch_to(*modes.borrow_and_update()),
                Err(_) => Some(End::Reset),
            },
            _ = &mut close, if p.toxic.close_at.is_some() => Some(End::Reset),
            _ = &mut timer, if due.is_some() => p.write_due(&mut w).await,
            read = r.read(&mut buf), if !p.eof && p.queued < MAX_QUEUED_BYTES => match read {
                Ok(0) => {
                    p.eof = true;
                    p.holed |= p.swallows();
                    None
                }
                Ok(n) => p.forward(&buf[..n], &mut w).await,
                Err(_) => Some(End::Failed),
            },
        };
        if let Some(end) = ended {
            return end;
        }
    }
}

impl<'a> Pump<'a> {
    fn new(dir: &'a Direction, mode: Mode) -> Pump<'a> {
        Pump {
            dir,
            mode,
            toxic: ToxicState::new(mode, dir),
            queue: VecDeque::new(),
            queued: 0,
            holed: false,
            eof: false,
        }
    }

    /// Points the delay-line timer at the first queued chunk's due time (`due`) and the close
    /// timer at a `timeout` toxic's instant, resetting each only when its instant changed.
    fn arm(&self, due: Option<Instant>, timer: Pin<&mut Sleep>, close: Pin<&mut Sleep>) {
        if let Some(d) = due.filter(|d| timer.deadline() != *d) {
            timer.reset(d);
        }
        if let Some(at) = self.toxic.close_at.filter(|at| close.deadline() != *at) {
            close.reset(at);
        }
    }

    /// Writes the first chunk of the delay line, now due.
    async fn write_due(&mut self, w: &mut OwnedWriteHalf) -> Option<End> {
        let (_, chunk) = self.queue.pop_front().expect("due implies a queued chunk");
        self.queued -= chunk.len();
        if w.write_all(&chunk).await.is_err() {
            return Some(End::Failed);
        }
        self.dir.add_bytes(chunk.len());
        None
    }

    /// Whether the direction swallows bytes now: a blackhole, or a `timeout` toxic on this
    /// connection.
    fn swallows(&self) -> bool {
        swallows(self.mode, &self.toxic)
    }

    /// A new mode; `Some` when the connection must end.
    fn switch_to(&mut self, new: Mode) -> Option<End> {
        self.toxic = ToxicState::new(new, self.dir);
        if new == Mode::Reset || (!swallows(new, &self.toxic) && self.holed) {
            return Some(End::Reset);
        }
        if swallows(new, &self.toxic) {
            // Bytes in flight vanish with the route.
            self.holed |= !self.queue.is_empty();
            self.queue.clear();
            self.queued = 0;
        }
        self.mode = new;
        None
    }

    /// What the mode does with one chunk read: written at once, queued with a due time,
    /// swallowed, or (limit_data) written up to the limit; `Some` when the connection must end.
    async fn forward(&mut self, chunk: &[u8], w: &mut OwnedWriteHalf) -> Option<End> {
        let n = chunk.len();
        let now = Instant::now();
        let last_due = self.queue.back().map_or(now, |(t, _)| *t);
        match self.mode {
            Mode::Pass if self.queue.is_empty() => {
                if w.write_all(chunk).await.is_err() {
                    return Some(End::Failed);
                }
                self.dir.add_bytes(n);
            }
            Mode::Pass => self.enqueue(now, chunk),
            Mode::Delay(ms) => self.enqueue(now + Duration::from_millis(ms), chunk),
            Mode::Blackhole => self.holed = true,
            Mode::Reset => return Some(End::Reset),
            Mode::Toxic(_) if self.swallows() => self.holed = true,
            Mode::Toxic(_) if self.toxic.data_left.is_some() => return self.limit_data(chunk, w).await,
            Mode::Toxic(t) => {
                let plan = if self.toxic.hits_chunk(t) {
                    t.schedule(now, last_due, n, self.toxic.roll())
                } else {
                    vec![(last_due, n)]
                };
                let mut at = 0;
                for (due, len) in plan {
                    self.enqueue(due, &chunk[at..at + len]);
                    at += len;
                }
            }
        }
        None
    }

    fn enqueue(&mut self, due: Instant, bytes: &[u8]) {
        self.queue.push_back((due, bytes.to_vec()));
        self.queued += bytes.len();
    }

    /// limit_data: what is within the limit goes out, then both sides are closed normally.
    async fn limit_data(&mut self, chunk: &[u8], w: &mut OwnedWriteHalf) -> Option<End> {
        let left = self.toxic.data_left.as_mut().expect("limit_data has a byte budget");
        let send = chunk.len().min(*left as usize);
        *left -= send as u64;
        let done = *left == 0;
        if w.write_all(&chunk[..send]).await.is_err() {
            return Some(End::Failed);
        }
        self.dir.add_bytes(send);
        if done {
            let _ = w.shutdown().await;
            return Some(End::Closed);
        }
        None
    }
}

/// Whether the direction swallows bytes now: a blackhole, or a `timeout` toxic on this connection.
fn swallows(mode: Mode, toxic: &ToxicState) -> bool {
    mode == Mode::Blackhole || toxic.close_at.is_some()
}

/// What a toxic means for one connection: per-connection toxics roll their toxicity once, when
/// the toxic reaches the connection; per-chunk toxics roll per chunk.
struct ToxicState {
    /// `timeout`: reset the connection at this instant (and swallow everything until then).
    close_at: Option<Instant>,
    /// `limit_data`: bytes this connection may still forward.
    data_left: Option<u64>,
    /// xorshift state for toxicity and jitter rolls; timing noise, so not tied to the run's seed.
    rng: u64,
}

impl ToxicState {
    fn new(mode: Mode, dir: &Direction) -> ToxicState {
        let mut state = ToxicState {
            close_at: None,
            data_left: None,
            // Distinct per connection and over time; zero would stick xorshift at zero.
            rng: (dir as *const Direction as u64) ^ crate::history::now_ns() | 1,
        };
        let Mode::Toxic(t) = mode else { return state };
        if t.per_connection() && state.roll() % 100 >= u64::from(t.percent()) {
            return state;
        }
        match t {
            Toxic::Timeout { ms, .. } if ms > 0 => {
                state.close_at = Some(Instant::now() + Duration::from_millis(ms));
            }
            // timeout:0 swallows until healed, like a blackhole.
            Toxic::Timeout { .. } => state.close_at = Some(Instant::now() + Duration::from_secs(86_400)),
            Toxic::LimitData { bytes, .. } => state.data_left = Some(bytes),
            _ => {}
        }
        state
    }

    fn roll(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn hits_chunk(&mut self, t: Toxic) -> bool {
        t.percent() >= 100 || self.roll() % 100 < u64::from(t.percent())
    }
}
