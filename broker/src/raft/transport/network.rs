//! openraft's view of the transport: one network factory per group, all sharing the per-peer
//! connections of one [`Transport`].

use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::BasicNode;

use super::wire::{RaftReply, RaftRequest};
use super::Transport;
use crate::error::BrokerError;
use crate::raft::typ::{
    AppendEntriesRequest, AppendEntriesResponse, GroupId, InstallSnapshotRequest,
    InstallSnapshotResponse, NodeId, TypeConfig, VoteRequest, VoteResponse,
};

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
        GroupNetwork {
            transport: self.transport.clone(),
            group: self.group.clone(),
            target,
        }
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
        let reply = self
            .transport
            .request(self.target, self.group.clone(), req, ttl)
            .await;
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
            Err(err @ BrokerError::PeerUnreachable { .. }) => {
                Err(RPCError::Unreachable(Unreachable::new(&err)))
            }
            Err(err) => Err(RPCError::Network(NetworkError::new(&err))),
        }
    }

    /// A reply of the wrong kind means a broken peer; report it as a network failure.
    // The error type is openraft's, fixed by the `RaftNetwork` signatures.
    #[allow(clippy::result_large_err)]
    fn mismatched<T, E: std::error::Error>(
        &self,
        expected: &str,
        got: &RaftReply,
    ) -> RpcResult<T, E> {
        let err = BrokerError::Frame(format!(
            "peer {} answered a {expected} request for group {} with {got:?}",
            self.target, self.group
        ));
        Err(RPCError::Network(NetworkError::new(&err)))
    }

    fn remote<E: std::error::Error>(
        &self,
        err: RaftError<NodeId, E>,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        RPCError::RemoteError(RemoteError::new(self.target, err))
    }
}

impl RaftNetwork<TypeConfig> for GroupNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse> {
        let entries = rpc.entries.len() as u64;
        match self
            .send(
                RPCTypes::AppendEntries,
                RaftRequest::AppendEntries(rpc),
                &option,
            )
            .await?
        {
            RaftReply::AppendEntries(Ok(resp)) => Ok(resp),
            RaftReply::AppendEntries(Err(e)) => Err(self.remote(e)),
            other => {
                tracing::warn!(peer = self.target, group = %self.group, entries, "unexpected append_entries reply");
                self.mismatched("append_entries", &other)
            }
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse, InstallSnapshotError> {
        match self
            .send(
                RPCTypes::InstallSnapshot,
                RaftRequest::InstallSnapshot(rpc),
                &option,
            )
            .await?
        {
            RaftReply::InstallSnapshot(Ok(resp)) => Ok(resp),
            RaftReply::InstallSnapshot(Err(e)) => Err(self.remote(e)),
            other => self.mismatched("install_snapshot", &other),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest, option: RPCOption) -> RpcResult<VoteResponse> {
        match self
            .send(RPCTypes::Vote, RaftRequest::Vote(rpc), &option)
            .await?
        {
            RaftReply::Vote(Ok(resp)) => Ok(resp),
            RaftReply::Vote(Err(e)) => Err(self.remote(e)),
            other => self.mismatched("vote", &other),
        }
    }
}
