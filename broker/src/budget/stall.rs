//! How slowly a client may send a frame or take its answers. A frame holds its share of the
//! node's byte budget from its length on, and an answer from when it is built until written: a
//! client that stops half-way keeps that share, and a few such clients stop the node reading
//! every other connection. So both directions must make progress: no byte for the stall limit,
//! or slower than the minimum rate past it, closes the connection.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::error::{BrokerError, Result};

/// How long one read of a frame's body or one write of answers may wait without a byte moving
/// (and never longer than `connections_max_idle_ms`). 30 s is Kafka's and librdkafka's default
/// `request.timeout.ms`: by then the client has given up on those answers.
pub const STALL_LIMIT: Duration = Duration::from_secs(30);
/// The slowest a client may send a frame or take its answers, beyond the stall limit: `n` bytes
/// must have moved within the limit plus `n` at this rate. Without it, a client moving one byte
/// just inside every stall limit kept its share of the budget forever. 64 KiB/s is a 512 kbit/s
/// link: a 64 MiB answer gets about 17 minutes.
pub const MIN_BYTES_PER_SEC: u64 = 64 * 1024;

/// When `len` bytes must have moved at the latest.
fn deadline(len: usize, stall_limit: Duration) -> Instant {
    Instant::now() + stall_limit + Duration::from_secs_f64(len as f64 / MIN_BYTES_PER_SEC as f64)
}

/// Reads a frame's body of `len` bytes unless the client sends no byte of it for `stall_limit`,
/// or sends it slower than [`MIN_BYTES_PER_SEC`] past the limit.
pub async fn read_body_unless_stalled<R>(r: &mut R, len: usize, stall_limit: Duration) -> Result<Bytes>
where
    R: AsyncRead + Unpin,
{
    let deadline = deadline(len, stall_limit);
    let mut body = BytesMut::zeroed(len);
    let mut filled = 0;
    while filled < len {
        let until = deadline.min(Instant::now() + stall_limit);
        match tokio::time::timeout_at(until, r.read(&mut body[filled..])).await {
            Ok(Ok(0)) => {
                return Err(BrokerError::Frame(format!(
                    "frame announced {len} bytes but the stream ended after {filled}"
                )))
            }
            Ok(Ok(n)) => filled += n,
            Ok(Err(e)) => return Err(BrokerError::Frame(format!("reading a {len}-byte frame: {e}"))),
            Err(_) => {
                return Err(BrokerError::FrameStalled {
                    len,
                    received: filled,
                    limit: stall_limit,
                    min_bytes_per_sec: MIN_BYTES_PER_SEC,
                })
            }
        }
    }
    Ok(body.freeze())
}

pub enum Written {
    All,
    /// The client closed or reset the connection.
    Closed(std::io::Error),
    /// No byte was taken for the stall limit, or too few past it.
    Stalled,
}

/// Writes all of `out` unless one write waits `stall_limit` with the socket taking no byte, or
/// the client takes it slower than [`MIN_BYTES_PER_SEC`] (past the stall limit). Each `write`
/// returns as soon as the socket takes some bytes and the next one has the whole limit again,
/// so a client reading a 50 MiB fetch answer slowly but steadily is not cut off.
pub async fn write_unless_stalled<W>(w: &mut W, mut out: &[u8], stall_limit: Duration) -> Written
where
    W: AsyncWrite + Unpin,
{
    let deadline = deadline(out.len(), stall_limit);
    while !out.is_empty() {
        let until = deadline.min(Instant::now() + stall_limit);
        match tokio::time::timeout_at(until, w.write(out)).await {
            Ok(Ok(0)) => return Written::Closed(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => out = &out[n..],
            Ok(Err(e)) => return Written::Closed(e),
            Err(_) => return Written::Stalled,
        }
    }
    Written::All
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stall limit times a lack of progress, not the whole write: a reader taking 64 KiB
    /// every 100 ms gets 1 MiB over 1.6 s with a limit of 300 ms; one that stops is given up on.
    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_is_written_to_and_a_stopped_one_given_up_on() {
        let limit = Duration::from_millis(300);
        let answer = vec![7u8; 1 << 20];
        let (mut w, mut r) = tokio::io::duplex(64 << 10);
        let slow_reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 << 10];
            let mut got = 0;
            while got < 1 << 20 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                got += r.read(&mut buf).await.unwrap();
            }
            r // kept open, read no more
        });
        let started = Instant::now();
        assert!(matches!(write_unless_stalled(&mut w, &answer, limit).await, Written::All));
        assert!(started.elapsed() > limit * 4, "the reader was not slow: {:?}", started.elapsed());
        let _r = slow_reader.await.unwrap();
        let started = Instant::now();
        assert!(matches!(write_unless_stalled(&mut w, &answer, limit).await, Written::Stalled));
        assert!(started.elapsed() >= limit, "given up on after {:?}", started.elapsed());
    }

    /// A reader taking one byte just inside every stall limit is given up on once the answer
    /// is late at the minimum read rate: 4 KiB with a 300 ms limit by 362 ms.
    #[tokio::test(start_paused = true)]
    async fn a_reader_taking_a_byte_per_stall_limit_is_given_up_on() {
        let limit = Duration::from_millis(300);
        let answer = vec![7u8; 4096];
        let (mut w, mut r) = tokio::io::duplex(1);
        let trickle = tokio::spawn(async move {
            let mut byte = [0u8; 1];
            while r.read(&mut byte).await.is_ok_and(|n| n == 1) {
                tokio::time::sleep(limit - Duration::from_millis(10)).await;
            }
        });
        let started = Instant::now();
        assert!(matches!(write_unless_stalled(&mut w, &answer, limit).await, Written::Stalled));
        let late = limit + Duration::from_secs_f64(4096.0 / MIN_BYTES_PER_SEC as f64);
        let took = started.elapsed();
        assert!(took >= late && took < late + limit, "given up on after {took:?}, expected {late:?}");
        drop(w);
        trickle.await.unwrap();
    }

    /// A frame's body sent slowly but steadily is read whole; one whose sender holds back the
    /// last byte is given up on at the stall limit, naming how much had arrived.
    #[tokio::test(start_paused = true)]
    async fn a_slow_sender_is_read_and_a_stopped_one_given_up_on() {
        let limit = Duration::from_millis(300);
        let (mut r, mut w) = tokio::io::duplex(64 << 10);
        let sender = tokio::spawn(async move {
            for _ in 0..16 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                w.write_all(&[1u8; 64 << 10]).await.unwrap();
            }
            w.write_all(&[2u8; 99]).await.unwrap();
            w // kept open, sends no more
        });
        let started = Instant::now();
        let body = read_body_unless_stalled(&mut r, 1 << 20, limit).await.unwrap();
        assert_eq!(body.len(), 1 << 20);
        assert!(started.elapsed() > limit * 4, "the sender was not slow: {:?}", started.elapsed());
        let _w = sender.await.unwrap();
        let err = read_body_unless_stalled(&mut r, 100, limit).await.unwrap_err().to_string();
        assert!(err.contains("99 bytes of a 100-byte frame arrived"), "{err}");
    }
}
