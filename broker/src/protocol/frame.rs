//! Kafka frames: a big-endian i32 length followed by that many bytes. (Responses are framed where
//! they are written, several to a write: `connection::encode_response_frame`.)

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::budget::stall::{read_body_unless_stalled, STALL_LIMIT};
use crate::error::{BrokerError, Result};

/// Reads one frame, its body under the stall rule. `Ok(None)` means the peer closed the
/// connection cleanly between frames. An oversized or negative length is an error: the caller
/// closes this one connection. (A connection reads the length and the body apart, admitting the
/// frame between them.)
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, max_frame_bytes: u32) -> Result<Option<Bytes>> {
    match read_frame_len(reader, max_frame_bytes).await? {
        Some(len) => read_body_unless_stalled(reader, len, STALL_LIMIT).await.map(Some),
        None => Ok(None),
    }
}

/// Reads a frame's length, checked against `max_frame_bytes`; `Ok(None)`: a clean close. Apart
/// from its body, so that the connection can admit the frame's bytes before holding them.
pub async fn read_frame_len<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_frame_bytes: u32,
) -> Result<Option<usize>> {
    let mut len_buf = [0u8; 4];
    match reader.read_exact(&mut len_buf).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(BrokerError::Frame(format!("reading frame length: {e}"))),
    }
    let len = i32::from_be_bytes(len_buf);
    if len < 0 {
        return Err(BrokerError::Frame(format!("negative frame length {len}")));
    }
    if len as u32 > max_frame_bytes {
        return Err(BrokerError::Frame(format!(
            "frame of {len} bytes exceeds max_frame_bytes {max_frame_bytes}"
        )));
    }
    Ok(Some(len as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_a_frame_and_a_clean_close() {
        let mut data: &[u8] = &[0, 0, 0, 3, b'a', b'b', b'c'];
        assert_eq!(read_frame(&mut data, 1024).await.unwrap().unwrap().as_ref(), b"abc");
        assert!(read_frame(&mut data, 1024).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn rejects_oversized_negative_and_truncated_frames() {
        let mut big: &[u8] = &[0, 0, 0x10, 0];
        let err = read_frame(&mut big, 1024).await.unwrap_err().to_string();
        assert!(err.contains("exceeds max_frame_bytes 1024"), "{err}");
        let mut neg: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut neg, 1024).await.unwrap_err().to_string().contains("negative"));
        let mut short: &[u8] = &[0, 0, 0, 9, 1, 2];
        assert!(read_frame(&mut short, 1024).await.unwrap_err().to_string().contains("announced 9 bytes"));
    }
}
