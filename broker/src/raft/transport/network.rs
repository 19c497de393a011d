//! openraft's view of the transport: one network factory per group, all sharing the per-peer
//! connections of one [`Transport`].

use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::{BasicNode, EntryPayload};

use super::wire::{RaftReply, RaftRequest};
use super::Transport;
use crate::error::BrokerError;
use crate::raft::trace::{term_runs, Outcome, TraceKind};
use crate::raft::typ::{
    AppendEntriesRequest, AppendEntriesResponse, Command, Entry, GroupId, InstallSnapshotRequest,
    InstallSnapshotResponse, NodeId, TypeConfig, VoteRequest, VoteResponse,
};
use crate::telemetry::now_ns;
use std::time::Instant;

/// Most payload bytes one AppendEntries may carry. openraft 0.9 gives every AppendEntries one
/// heartbeat interval (50 ms by default) to come back, fsync on the follower included, and
/// re-sends the same range after a timeout. A follower that fell behind was sent up to 300
/// entries of up to 1 MB each (a librdkafka batch of 1 KiB messages): a request that could never
/// finish in time, so replication of that group stopped (a 1 KiB benchmark stalled for 120 s).
/// Above this budget the request is refused with a hint, and openraft sends fewer entries.
const APPEND_BUDGET_BYTES: usize = 2 * 1024 * 1024;

/// How long a replication stream waits after its peer was unreachable (or did not host the
/// group), try after try, until an answer resets it: openraft's default is a flat 500 ms. Most
/// such failures are brief: a peer whose process has not opened its port yet at start-up, a
/// group its follower creates a few ms after its leader, a peer restarted a moment ago. A
/// leader then waited half a second before its first append reached a node that had been
/// there all along, so a client that asked that node for the controller waited too (3 fresh
/// nodes, topic created and all led after spawn: 600-650 ms in 2 of 5 starts with openraft's
/// back-off, 193-291 ms in 10 of 10 with this one). Retries
/// to a peer that stays away settle at the old rate after 350 ms; each costs little, as the
/// transport fails them at once while its own dial back-off runs (`client.rs`).
const REPLICATION_FIRST_BACKOFFS_MS: [u64; 3] = [50, 100, 200];
const REPLICATION_BACKOFF_MS: u64 = 500;

fn payload_bytes(entry: &Entry) -> usize {
    match &entry.payload {
        EntryPayload::Normal(Command::Batch(b) | Command::Controller(b)) => b.len(),
        // Blank and membership entries are a few dozen bytes.
        _ => 64,
    }
}

/// `Some(entries that fit)` when `entries` exceed the budget and can be split.
fn entries_hint(entries: &[Entry]) -> Option<u64> {
    let total: usize = entries.iter().map(payload_bytes).sum();
    if entries.len() <= 1 || total <= APPEND_BUDGET_BYTES {
        return None;
    }
    let mut fit = 0usize;
    let mut bytes = 0usize;
    for e in entries {
        bytes += payload_bytes(e);
        if fit > 0 && bytes > APPEND_BUDGET_BYTES {
            break;
        }
        fit += 1;
    }
    Some(fit.max(1) as u64)
}

/// Creates the [`GroupNetwork`]s of one group's `Raft`.
#[derive(Clone)]
pub struct GroupNetworkFactory {
    pub(super) transport: Arc<Transport>,
    pub(super) group: GroupId,
}

impl RaftNetworkFactory<TypeConfig> for GroupNetworkFactory {
    type Network = GroupNetwork;

    /// `_node.addr` is ignored on purpose: peer addresses come from the transport's config, so
    /// the lab can route them through its proxies whatever the membership says.
    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> GroupNetwork {
        GroupNetwork { transport: self.transport.clone(), group: self.group.clone(), target }
    }
}

/// Sends one group's RPCs to one peer over the shared connection.
pub struct GroupNetwork {
    transport: Arc<Transport>,
    group: GroupId,
    target: NodeId,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl GroupNetwork {
    async fn send<E: std::error::Error>(
        &self,
        action: RPCTypes,
        req: RaftRequest,
        option: &RPCOption,
    ) -> RpcResult<RaftReply, E> {
        let ttl = option.hard_ttl();
        let reply = self.transport.request(self.target, self.group.clone(), req, ttl).await;
        match reply {
            Ok(RaftReply::NoSuchGroup(reason)) => {
                // The group may not exist there *yet*; Unreachable makes openraft back off and retry.
                let err = BrokerError::PeerUnreachable {
                    peer: self.target,
                    addr: self.transport.peer_addr(self.target),
                    reason: format!("does not host group {}: {reason}", self.group),
                };
                Err(RPCError::Unreachable(Unreachable::new(&err)))
            }
            Ok(reply) => Ok(reply),
            Err(BrokerError::RpcTimeout { timeout, .. }) => Err(RPCError::Timeout(Timeout {
                action,
                id: self.transport.node_id(),
                target: self.target,
                timeout,
            })),
            // openraft backs off only after Unreachable and retries any other error at once, so
            // every failure of the transport (peer down, transport closed, frame refused) is one:
            // none of them goes away by asking again at once.
            Err(err) => Err(RPCError::Unreachable(Unreachable::new(&err))),
        }
    }

    /// A reply of the wrong kind means a broken or lying peer. Asked again at once it would answer
    /// the same, so it is reported as unreachable, which makes openraft back off (as a network
    /// error it retried at once, a replication stream spinning against the peer).
    // The error type is openraft's, fixed by the `RaftNetwork` signatures.
    #[allow(clippy::result_large_err)]
    fn mismatched<T, E: std::error::Error>(&self, expected: &str, got: &RaftReply) -> RpcResult<T, E> {
        let err = BrokerError::Frame(format!(
            "peer {} answered a {expected} request for group {} with {got:?}",
            self.target, self.group
        ));
        Err(RPCError::Unreachable(Unreachable::new(&err)))
    }

    fn remote<E: std::error::Error>(
        &self,
        err: RaftError<NodeId, E>,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        RPCError::RemoteError(RemoteError::new(self.target, err))
    }
}

impl RaftNetwork<TypeConfig> for GroupNetwork {
    fn backoff(&self) -> Backoff {
        let schedule =
            REPLICATION_FIRST_BACKOFFS_MS.into_iter().chain(std::iter::repeat(REPLICATION_BACKOFF_MS));
        Backoff::new(schedule.map(std::time::Duration::from_millis))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse> {
        if let Some(hint) = entries_hint(&rpc.entries) {
            tracing::debug!(
                peer = self.target,
                group = %self.group,
                entries = rpc.entries.len(),
                hint,
                "append_entries over the byte budget; asking for fewer entries"
            );
            return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(hint)));
        }
        let entries = rpc.entries.len() as u64;
        let trace = self.transport.trace();
        // What the trace says about the request, taken before the request is moved, and only
        // when the group is watched (the runs of terms walk the entries).
        let sent = trace.is_watched(&self.group).then(|| AppendSummary::of(&rpc));
        let (sent_ns, started) = (now_ns(), Instant::now());
        let result = match self.send(RPCTypes::AppendEntries, RaftRequest::AppendEntries(rpc), &option).await
        {
            Ok(RaftReply::AppendEntries(Ok(resp))) => Ok(resp),
            Ok(RaftReply::AppendEntries(Err(e))) => Err(self.remote(e)),
            Ok(other) => {
                tracing::warn!(peer = self.target, group = %self.group, entries, "unexpected append_entries reply");
                self.mismatched("append_entries", &other)
            }
            Err(e) => Err(e),
        };
        let outcome = match &result {
            Ok(AppendEntriesResponse::Success) => Outcome::Ok,
            Ok(AppendEntriesResponse::PartialSuccess(m)) => {
                Outcome::PartialSuccess { matched: m.map(|l| l.index) }
            }
            Ok(AppendEntriesResponse::Conflict) => Outcome::Conflict,
            Ok(AppendEntriesResponse::HigherVote(v)) => Outcome::HigherVote { term: v.leader_id().term },
            Err(e) => rpc_failure(e),
        };
        let failed = result.is_err();
        let event = sent.map(|s| TraceKind::Append {
            to: self.target,
            term: s.term,
            prev: s.prev,
            entries: s.entries,
            terms: s.terms,
            leader_commit: s.leader_commit,
            outcome,
            rtt_us: started.elapsed().as_micros() as u64,
        });
        trace.append(&self.group, sent_ns, entries, failed, event);
        result
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse, InstallSnapshotError> {
        match self.send(RPCTypes::InstallSnapshot, RaftRequest::InstallSnapshot(rpc), &option).await? {
            RaftReply::InstallSnapshot(Ok(resp)) => Ok(resp),
            RaftReply::InstallSnapshot(Err(e)) => Err(self.remote(e)),
            other => self.mismatched("install_snapshot", &other),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest, option: RPCOption) -> RpcResult<VoteResponse> {
        let (term, candidate) = (rpc.vote.leader_id().term, rpc.vote.leader_id().voted_for());
        let last_log = rpc.last_log_id.map(|l| (l.leader_id.term, l.index));
        let (sent_ns, started) = (now_ns(), Instant::now());
        let result = match self.send(RPCTypes::Vote, RaftRequest::Vote(rpc), &option).await {
            Ok(RaftReply::Vote(Ok(resp))) => Ok(resp),
            Ok(RaftReply::Vote(Err(e))) => Err(self.remote(e)),
            Ok(other) => self.mismatched("vote", &other),
            Err(e) => Err(e),
        };
        let outcome = match &result {
            Ok(resp) => vote_outcome(term, candidate, last_log, resp),
            Err(e) => rpc_failure(e),
        };
        let rtt_us = started.elapsed().as_micros() as u64;
        let kind = TraceKind::Vote { to: self.target, term, last_log, outcome, rtt_us };
        self.transport.trace().vote(&self.group, sent_ns, kind);
        result
    }
}

/// The parts of an AppendEntries the trace shows.
struct AppendSummary {
    term: u64,
    prev: Option<(u64, u64)>,
    entries: Option<(u64, u64)>,
    terms: Vec<(u64, u64)>,
    leader_commit: Option<u64>,
}

impl AppendSummary {
    fn of(rpc: &AppendEntriesRequest) -> AppendSummary {
        AppendSummary {
            term: rpc.vote.leader_id().term,
            prev: rpc.prev_log_id.map(|l| (l.leader_id.term, l.index)),
            entries: rpc
                .entries
                .first()
                .zip(rpc.entries.last())
                .map(|(a, b)| (a.log_id.index, b.log_id.index)),
            terms: term_runs(rpc.entries.iter().map(|e| e.log_id.leader_id.term)),
            leader_commit: rpc.leader_commit.map(|l| l.index),
        }
    }
}

/// Why a voter answered as it did, from what openraft 0.9 returns: its vote after the request
/// and its last log id. Refusals without a higher term or a longer log are the leader lease (the
/// voter still heard its leader within `election_timeout_max`).
fn vote_outcome(
    term: u64,
    candidate: Option<NodeId>,
    last_log: Option<(u64, u64)>,
    resp: &VoteResponse,
) -> Outcome {
    let theirs = resp.vote.leader_id().term;
    let their_log = resp.last_log_id.map(|l| (l.leader_id.term, l.index));
    if resp.vote_granted {
        Outcome::Ok
    } else if theirs > term {
        Outcome::HigherVote { term: theirs }
    } else if their_log > last_log {
        Outcome::Refused { reason: "its log is more up to date".into(), term: theirs }
    } else {
        let reason = match resp.vote.leader_id().voted_for() {
            Some(v) if theirs == term && Some(v) != candidate => {
                format!("already voted for n{v} in term {term}")
            }
            _ => "it still hears its leader (lease)".to_string(),
        };
        Outcome::Refused { reason, term: theirs }
    }
}

fn rpc_failure<E: std::error::Error>(e: &RPCError<NodeId, BasicNode, RaftError<NodeId, E>>) -> Outcome {
    match e {
        RPCError::Timeout(_) => Outcome::Timeout,
        RPCError::Unreachable(u) => Outcome::Unreachable { reason: u.to_string() },
        other => Outcome::Error { reason: other.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId};

    fn batch(index: u64, bytes: usize) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Command::Batch(bytes::Bytes::from(vec![0u8; bytes]))),
        }
    }

    #[test]
    fn append_budget_splits_big_requests_and_keeps_small_ones() {
        let mb = 1024 * 1024;
        assert_eq!(entries_hint(&[batch(1, 10), batch(2, 10)]), None, "small requests go as they are");
        assert_eq!(entries_hint(&[batch(1, 5 * mb)]), None, "a single entry cannot be split");
        let big: Vec<Entry> = (1..=300).map(|i| batch(i, mb)).collect();
        assert_eq!(entries_hint(&big), Some(2), "300 x 1 MiB asks for what fits in 2 MiB");
        assert_eq!(
            entries_hint(&[batch(1, 3 * mb), batch(2, 10)]),
            Some(1),
            "an oversized first entry goes alone"
        );
    }
}
