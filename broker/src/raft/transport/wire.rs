//! The bytes on a Raft peer connection.
//!
//! A frame is `[u32 big-endian body length][bincode body]`; the body is one [`Envelope`]. Every
//! envelope names its group, so one connection per peer carries the RPCs of all groups, and its
//! `id` pairs a reply with the request that caused it (replies may come back in any order).

use std::io;

use bincode::Options;
use bytes::Bytes;
use openraft::error::{InstallSnapshotError, RaftError};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use crate::error::BrokerError;
use crate::raft::typ::{
    AppendEntriesRequest, AppendEntriesResponse, Command, CommandResult, GroupId, InstallSnapshotRequest,
    InstallSnapshotResponse, NodeId, VoteRequest, VoteResponse,
};

/// Largest body accepted or sent. A length above it is a protocol error (or garbage), and refusing
/// it before allocating keeps a bad peer from making us reserve gigabytes.
pub const MAX_FRAME_LEN: usize = 64 * 1024 * 1024;

/// One message on a peer connection.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// Chosen by the requester, unique per connection; the reply carries the same id.
    pub id: u64,
    /// The sending node: any frame from a peer is a sign of life (liveness.rs).
    pub from: NodeId,
    pub group: GroupId,
    pub body: Body,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Body {
    Request(RaftRequest),
    Reply(RaftReply),
}

/// What one Raft node asks another about one group.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftRequest {
    AppendEntries(AppendEntriesRequest),
    Vote(VoteRequest),
    InstallSnapshot(InstallSnapshotRequest),
    /// Node-level: "start an election now for each of these groups" (leadership hand-off).
    /// One message for all the groups a node hands to one peer: at 10,000 partitions a stopping
    /// node's 3,000 requests of one group each, each a task on a peer saturated by load, mostly
    /// timed out before they were answered. Answered at once, like a heartbeat.
    Elect {
        groups: Vec<GroupId>,
    },
    /// Propose a command on the peer, which leads the group (a controller command reaching a
    /// follower is forwarded this way).
    Propose(Command),
    /// Node-level: "I am alive", once per interval for all groups (the envelope's group is
    /// ignored), with how long the sender has been up. Answered at once, ahead of other requests.
    Heartbeat {
        from: NodeId,
        up_ms: u64,
        /// The version of the sender's leaderships (`leader_directory.rs`).
        leads: LeadsVersion,
    },
    /// Node-level, sent when a heartbeat's answer asked for it: every group the sender leads
    /// that the receiver hosts no replica of, as of `version`. Replaces the previous list whole.
    Leads {
        from: NodeId,
        version: LeadsVersion,
        groups: Vec<LeadEntry>,
    },
    /// Node-level pre-vote: "for each of these groups, do you follow a leader you can still
    /// hear?" Asked before campaigning, so a node that merely lost sight of a leader others
    /// still follow does not depose it.
    LeaderQuery {
        from: NodeId,
        groups: Vec<GroupId>,
    },
}

impl RaftRequest {
    /// Short name for logs and error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            RaftRequest::AppendEntries(_) => "append_entries",
            RaftRequest::Vote(_) => "vote",
            RaftRequest::InstallSnapshot(_) => "install_snapshot",
            RaftRequest::Elect { .. } => "elect",
            RaftRequest::Propose(_) => "propose",
            RaftRequest::Heartbeat { .. } => "heartbeat",
            RaftRequest::LeaderQuery { .. } => "leader_query",
            RaftRequest::Leads { .. } => "leads",
        }
    }
}

/// The answer to a [`RaftRequest`]; each variant mirrors the request of the same name.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftReply {
    AppendEntries(Result<AppendEntriesResponse, RaftError<NodeId>>),
    Vote(Result<VoteResponse, RaftError<NodeId>>),
    InstallSnapshot(Result<InstallSnapshotResponse, RaftError<NodeId, InstallSnapshotError>>),
    /// One answer per group of a [`RaftRequest::Elect`], in its order: the campaign started,
    /// or why not.
    Elected(Vec<Result<(), String>>),
    /// The committed command's result, or why it did not commit.
    Proposed(Result<CommandResult, String>),
    /// The peer does not host this group (not created yet, or already removed).
    NoSuchGroup(String),
    /// `send_leads`: the receiver holds another version of the sender's leaderships.
    HeartbeatAck {
        send_leads: bool,
    },
    LeadsTaken,
    /// One answer per group of a [`RaftRequest::LeaderQuery`], in its order.
    Leaders(Vec<LeaderAnswer>),
}

/// Which of its runs, and how many leadership changes into it, a node's announcement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadsVersion {
    pub started_us: u64,
    pub changes: u64,
}

/// One partition group its sender leads, in `term`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadEntry {
    pub topic: String,
    pub partition: i32,
    pub term: u64,
}

/// What a peer knows of one group's leadership.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LeaderAnswer {
    /// The peer does not host the group (yet).
    NoSuchGroup,
    /// The peer follows (or is) a leader it can hear: do not campaign.
    Led { leader: NodeId, term: u64 },
    /// The peer knows no live leader; `last_log` lets the asker pick the most up-to-date
    /// candidate, `quiet_ms` (since the peer's copy of the group last changed, `u64::MAX` if
    /// the peer never knew a leader of its term) tells it how long the peer will still refuse
    /// votes under openraft's leader lease.
    Leaderless { term: u64, last_log: Option<(u64, u64)>, quiet_ms: u64 },
}

/// The one bincode configuration of the wire: fixed-width integers (cheap to encode, and the
/// length prefix already bounds the body), a size limit so a hostile length field inside the body
/// cannot trigger a huge allocation, and no trailing bytes (a sign of a framing bug).
fn codec() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(MAX_FRAME_LEN as u64)
        .reject_trailing_bytes()
}

/// Encodes `envelope` as a complete frame (length prefix included), refusing oversized bodies.
pub fn encode_frame(envelope: &Envelope) -> Result<Bytes, BrokerError> {
    let refused = |e: bincode::Error| {
        let kind = body_kind(&envelope.body);
        match *e {
            bincode::ErrorKind::SizeLimit => BrokerError::Frame(format!(
                "raft {kind} message exceeds the {MAX_FRAME_LEN}-byte frame limit"
            )),
            other => BrokerError::Frame(format!("cannot encode raft {kind} message: {other}")),
        }
    };
    // Sized first (which only adds up lengths, stopping at the codec's limit, so an oversized
    // message is refused without building any of it), then written once into a buffer of that
    // size: grown on the way, an AppendEntries of many records was copied at every doubling
    // (3 % of a cluster's CPU at 1,000 busy partitions, with the page faults of each new block).
    let body_len = codec().serialized_size(envelope).map_err(refused)? as usize;
    let mut buf = Vec::with_capacity(4 + body_len);
    buf.extend_from_slice(&(body_len as u32).to_be_bytes());
    codec().serialize_into(&mut buf, envelope).map_err(refused)?;
    debug_assert_eq!(buf.len(), 4 + body_len, "bincode's size and its output agree");
    Ok(Bytes::from(buf))
}

/// Decodes one frame body (without its length prefix).
pub fn decode_body(body: &[u8]) -> Result<Envelope, BrokerError> {
    codec()
        .deserialize(body)
        .map_err(|e| BrokerError::Frame(format!("undecodable raft frame of {} bytes: {e}", body.len())))
}

fn body_kind(body: &Body) -> &'static str {
    match body {
        Body::Request(r) => r.kind(),
        Body::Reply(_) => "reply",
    }
}

/// Reads one frame body. `Ok(None)` means the peer closed cleanly between frames.
/// An oversized length is `InvalidData`: the stream cannot be resynchronised, so callers close it.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Option<Vec<u8>>> {
    let Some(len) = read_frame_len(reader).await? else { return Ok(None) };
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await?;
    Ok(Some(body))
}

/// Reads a frame's length, checked against [`MAX_FRAME_LEN`]; `Ok(None)`: a clean close. Apart
/// from the body, so that the accepting side can admit a frame's bytes before holding them.
pub async fn read_frame_len<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Option<usize>> {
    let mut len_buf = [0u8; 4];
    // Read the first byte separately so EOF *between* frames is told apart from a cut-off frame.
    if reader.read(&mut len_buf[..1]).await? == 0 {
        return Ok(None);
    }
    reader.read_exact(&mut len_buf[1..]).await?;
    let len = u32::from_be_bytes(len_buf) as usize;
    if len > MAX_FRAME_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame length {len} exceeds the {MAX_FRAME_LEN}-byte limit"),
        ));
    }
    Ok(Some(len))
}

/// Writes queued frames until the queue closes. Frames already queued are written back to back
/// and flushed once, so a burst of small RPCs costs one syscall rather than one each. After the
/// first frame the writer yields once, so that other groups' tasks ready on this node can queue
/// theirs into the same write: at 1,000 busy groups a node pair otherwise carried about one
/// entry per send, and each send costs a syscall here and a wakeup at the peer.
pub async fn write_frames<W: AsyncWrite + Unpin>(
    mut frames: mpsc::Receiver<Bytes>,
    writer: W,
) -> io::Result<()> {
    let mut writer = BufWriter::new(writer);
    while let Some(frame) = frames.recv().await {
        writer.write_all(&frame).await?;
        tokio::task::yield_now().await;
        while let Ok(more) = frames.try_recv() {
            writer.write_all(&more).await?;
        }
        writer.flush().await?;
    }
    Ok(())
}
