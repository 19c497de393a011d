//! Inbound Raft traffic: node-level requests (heartbeats, leader queries, leaderships) answered
//! by the cluster, the rest handed to the group they name.

use futures::future::BoxFuture;

use super::Cluster;
use crate::raft::transport::{GroupRouter, RaftReply, RaftRequest};
use crate::raft::typ::GroupId;

/// Weak: the transport's connections must not keep a stopped cluster alive.
pub(super) struct Router(pub(super) std::sync::Weak<Cluster>);

impl GroupRouter for Router {
    fn handle(&self, group: GroupId, request: RaftRequest) -> BoxFuture<'static, RaftReply> {
        let cluster = self.0.upgrade();
        Box::pin(async move {
            let Some(cluster) = cluster else { return RaftReply::NoSuchGroup("node is stopping".into()) };
            // Node-level requests: the envelope's group is not theirs.
            match request {
                // The transport already told liveness about the frame (`on_heard`).
                RaftRequest::Heartbeat { from, up_ms, leads } => {
                    cluster.liveness.peer_up_for(from, up_ms);
                    return RaftReply::HeartbeatAck { send_leads: !cluster.directory.holds(from, leads) };
                }
                RaftRequest::Leads { from, version, groups } => {
                    cluster.take_leads(from, version, groups);
                    return RaftReply::LeadsTaken;
                }
                RaftRequest::LeaderQuery { groups, .. } => {
                    return RaftReply::Leaders(cluster.answer_leader_query(groups));
                }
                RaftRequest::Elect { groups } => {
                    return RaftReply::Elected(cluster.start_campaigns(groups).await)
                }
                _ => {}
            }
            let Some(handle) = cluster.group(&group) else {
                return RaftReply::NoSuchGroup(group.to_string());
            };
            match request {
                RaftRequest::AppendEntries(r) => {
                    RaftReply::AppendEntries(handle.raft.append_entries(r).await)
                }
                RaftRequest::Vote(r) => RaftReply::Vote(handle.raft.vote(r).await),
                RaftRequest::InstallSnapshot(r) => {
                    RaftReply::InstallSnapshot(handle.raft.install_snapshot(r).await)
                }
                RaftRequest::Propose(command) => {
                    let outcome = handle.propose(command).await;
                    RaftReply::Proposed(match outcome {
                        Ok(Ok(result)) => Ok(result),
                        Ok(Err(e)) => Err(format!("{e:?}")),
                        Err(_) => Err("proposal dropped".into()),
                    })
                }
                RaftRequest::Heartbeat { .. }
                | RaftRequest::Elect { .. }
                | RaftRequest::LeaderQuery { .. }
                | RaftRequest::Leads { .. } => {
                    unreachable!("node-level requests are answered above")
                }
            }
        })
    }
}
