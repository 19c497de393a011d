//! Two transports in one process over real loopback sockets: A (node 1) dials B (node 2), which
//! serves a fake router. No sleeps for synchronisation: waits are bounded polls or I/O.
//! This file holds the fixtures; `round_trip` the happy paths, `failures` the broken ones.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::{join_all, BoxFuture};
use openraft::error::RPCError;
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::{BasicNode, CommittedLeaderId, EntryPayload, LogId, Vote};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::wire::{self, Body};
use super::*;

mod failures;
mod round_trip;
use crate::raft::typ::{
    AppendEntriesRequest, AppendEntriesResponse, Command, Entry, VoteRequest, VoteResponse,
};

const TTL: Duration = Duration::from_secs(10);

/// Hosts the controller and partition `t-0`; never answers for topic `hang`, and answers
/// everything for topic `liar` with a reply of the wrong kind.
#[derive(Default)]
struct FakeRouter {
    appended: Mutex<Vec<Command>>,
}

impl GroupRouter for Arc<FakeRouter> {
    fn handle(&self, group: GroupId, request: RaftRequest) -> BoxFuture<'static, RaftReply> {
        let this = self.clone();
        Box::pin(async move {
            match &group {
                GroupId::Controller => {}
                GroupId::Partition { topic, .. } if topic == "t" => {}
                GroupId::Partition { topic, .. } if topic == "hang" => futures::future::pending().await,
                // A lying peer: an answer of the wrong kind to everything.
                GroupId::Partition { topic, .. } if topic == "liar" => return RaftReply::LeadsTaken,
                other => return RaftReply::NoSuchGroup(format!("{other} not hosted")),
            }
            match request {
                RaftRequest::Vote(req) => RaftReply::Vote(Ok(VoteResponse {
                    vote: req.vote,
                    vote_granted: true,
                    last_log_id: req.last_log_id,
                })),
                RaftRequest::AppendEntries(req) => {
                    let last = req.entries.last().map(|e| e.log_id);
                    for entry in req.entries {
                        if let EntryPayload::Normal(cmd) = entry.payload {
                            this.appended.lock().unwrap().push(cmd);
                        }
                    }
                    RaftReply::AppendEntries(Ok(AppendEntriesResponse::PartialSuccess(last)))
                }
                RaftRequest::InstallSnapshot(req) => {
                    RaftReply::InstallSnapshot(Ok(crate::raft::typ::InstallSnapshotResponse {
                        vote: req.vote,
                    }))
                }
                RaftRequest::Elect { groups } => RaftReply::Elected(groups.iter().map(|_| Ok(())).collect()),
                RaftRequest::Propose(_) => {
                    RaftReply::Proposed(Err("the fake router proposes nothing".into()))
                }
                RaftRequest::Heartbeat { .. } => RaftReply::HeartbeatAck { send_leads: false },
                RaftRequest::Leads { .. } => RaftReply::LeadsTaken,
                RaftRequest::LeaderQuery { groups, .. } => {
                    RaftReply::Leaders(groups.iter().map(|_| LeaderAnswer::NoSuchGroup).collect())
                }
            }
        })
    }
}

fn vote_req(term: u64) -> VoteRequest {
    VoteRequest { vote: Vote::new(term, 1), last_log_id: Some(log_id(term, 7)) }
}

fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn partition(topic: &str) -> GroupId {
    GroupId::Partition { topic: topic.to_string(), partition: 0 }
}

/// Node 2 serving on `listener` with a fresh fake router.
fn serve_b(listener: TcpListener) -> (Arc<Transport>, Arc<FakeRouter>) {
    let router = Arc::new(FakeRouter::default());
    let b = Transport::new(2, BTreeMap::new());
    b.clone().serve(listener, Arc::new(router.clone()));
    (b, router)
}

async fn start_b() -> (Arc<Transport>, Arc<FakeRouter>, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (b, router) = serve_b(listener);
    (b, router, addr)
}

fn client_a(b_addr: SocketAddr) -> Arc<Transport> {
    Transport::new(1, BTreeMap::from([(2, b_addr)]))
}

async fn vote(a: &Transport, group: GroupId, term: u64, ttl: Duration) -> Result<RaftReply, BrokerError> {
    a.request(2, group, RaftRequest::Vote(vote_req(term)), ttl).await
}

/// Polls `cond` until it holds or `limit` passes.
async fn eventually<F: Future<Output = bool>>(limit: Duration, mut cond: impl FnMut() -> F) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond().await {
            return true;
        }
        // Poll interval only; correctness does not depend on it.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// Waits until the server closes `stream` (EOF or reset), reading whatever it sends first.
async fn assert_closed_by_server(mut stream: TcpStream) {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "server kept the connection open");
}
