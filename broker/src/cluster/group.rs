//! One running Raft group on this node: its openraft instance, its log, and an ordered proposer.
//!
//! Proposals go through one task per group so they reach openraft in the order they were
//! made — the order the connection read them — which is what keeps a producer's pipelined
//! batches in sequence. The task only hands the command over (`client_write_ff`); waiting for
//! the commit happens elsewhere, so proposals still pipeline.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::BasicNode;
use tokio::sync::{mpsc, oneshot};

use crate::error::{BrokerError, Result};
use crate::log::{LogStore, PartitionLog};
use crate::raft::log_store::GroupLogStore;
use crate::raft::state_machine::{Applier, GroupStateMachine};
use crate::raft::transport::Transport;
use crate::raft::typ::{Command, CommandResult, GroupId, NodeId, Raft, RaftMetrics};

/// Why a proposal did not commit.
#[derive(Debug, Clone, PartialEq)]
pub enum ProposeError {
    /// Another node leads the group (or none does right now).
    NotLeader {
        leader: Option<NodeId>,
    },
    /// The group is shutting down.
    Stopped,
    Failed(String),
}

type ProposalReply = oneshot::Sender<std::result::Result<CommandResult, ProposeError>>;

/// A started group.
pub struct GroupHandle {
    pub id: GroupId,
    pub raft: Raft,
    pub log: Arc<PartitionLog>,
    pub voters: BTreeSet<NodeId>,
    /// A leader silent from its majority for longer than this is isolated.
    lease_ms: u64,
    proposals: mpsc::UnboundedSender<(Command, ProposalReply)>,
}

impl GroupHandle {
    /// Starts the group's Raft instance over `log` and initializes it with `voters` if it is
    /// pristine. Every voter may initialize: with the same membership that is safe, and it means a
    /// group forms even when some of its nodes are down at creation time.
    pub async fn start(
        id: GroupId,
        node_id: NodeId,
        voters: BTreeSet<NodeId>,
        log: Arc<PartitionLog>,
        store: Arc<LogStore>,
        applier: Arc<dyn Applier>,
        transport: &Arc<Transport>,
        config: Arc<openraft::Config>,
    ) -> Result<Arc<GroupHandle>> {
        // Twice the node's own max election timeout: by then the followers have surely elected
        // someone else, and a brief stall under load is not mistaken for isolation.
        let lease_ms = config.election_timeout_max * 2;
        let log_store = GroupLogStore::new(id.clone(), Arc::clone(&log), store);
        let state_machine = GroupStateMachine::new(Arc::clone(&log), applier);
        let network = transport.network_factory(id.clone());
        let election_timeout_max = config.election_timeout_max;
        let raft = Raft::new(node_id, config, network, log_store, state_machine)
            .await
            .map_err(|e| BrokerError::Invalid(format!("starting raft group {id}: {e}")))?;
        if log.entry_count() == 0 {
            let members: BTreeMap<NodeId, BasicNode> =
                voters.iter().map(|v| (*v, BasicNode::default())).collect();
            match raft.initialize(members).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(BrokerError::Invalid(format!("initializing raft group {id}: {e}"))),
            }
            // The group's first membership must outlive a power cut under any fsync policy, or
            // a node would come back with a vote but no members and never elect again.
            let appended = raft
                .wait(Some(std::time::Duration::from_secs(5)))
                .log_index(Some(0), "first membership entry")
                .await;
            if let Err(e) = appended {
                tracing::warn!(group = %id, error = %e, "first membership entry not seen in the log yet");
            }
            log.sync().await.map_err(|e| BrokerError::Invalid(format!("syncing the first entry of {id}: {e}")))?;
        } else {
            listen_before_campaigning(&raft, node_id, election_timeout_max);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_proposer(raft.clone(), rx));
        tracing::info!(group = %id, node_id, voters = ?voters, "raft group started");
        Ok(Arc::new(GroupHandle { id, raft, log, voters, lease_ms, proposals: tx }))
    }

    /// Queues a command; the receiver resolves when it is committed and applied (or fails).
    /// Synchronous on purpose: callers enqueue in arrival order without awaiting anything.
    pub fn propose(
        &self,
        command: Command,
    ) -> oneshot::Receiver<std::result::Result<CommandResult, ProposeError>> {
        let (tx, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError((_, tx))) = self.proposals.send((command, tx)) {
            let _ = tx.send(Err(ProposeError::Stopped));
        }
        rx
    }

    /// A copy of the current metrics (never hold the watch borrow).
    pub fn metrics(&self) -> RaftMetrics {
        self.raft.metrics().borrow().clone()
    }

    /// The leader as this node knows it. This node counts as leader only once a majority has
    /// acknowledged it within its lease:
    /// - openraft 0.9 keeps a leader cut off from its majority in the Leader role (it has no
    ///   check-quorum step-down), but it cannot commit;
    /// - a restarted node whose last vote was its own comes back as Leader of that old term,
    ///   with a log that may lack what later leaders committed. Serving producers from it
    ///   answered OUT_OF_ORDER_SEQUENCE, which is fatal to an idempotent librdkafka producer.
    ///
    /// Either way clients must look elsewhere (or retry in a moment: a freshly elected leader
    /// is acknowledged within one round trip).
    pub fn leader(&self) -> Option<NodeId> {
        let m = self.raft.metrics().borrow().clone();
        match m.current_leader {
            Some(l) if l == m.id && !confirmed(&m, self.lease_ms) => None,
            other => other,
        }
    }

    pub fn is_leader(&self, node_id: NodeId) -> bool {
        self.leader() == Some(node_id)
    }

    /// The role to show: openraft's, except `IsolatedLeader` for a leader without a quorum.
    pub fn role(&self, m: &RaftMetrics) -> String {
        if isolated(m, self.lease_ms) {
            "IsolatedLeader".to_string()
        } else {
            format!("{:?}", m.state)
        }
    }

    /// Resolves once this node no longer leads the group (or is isolated from its majority).
    pub async fn leadership_lost(&self, node_id: NodeId) {
        let mut rx = self.raft.metrics();
        loop {
            if !self.is_leader(node_id) {
                return;
            }
            // Isolation is a matter of time passing, not only of metrics changing.
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(std::time::Duration::from_millis(self.lease_ms.max(50))) => {}
            }
        }
    }

    pub async fn stop(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(group = %self.id, error = %e, "raft group did not stop cleanly");
        }
    }
}

/// A restarted node hears from the current leader before it may campaign.
///
/// openraft 0.9 keeps no time for a vote restored from disk, so a restarted follower campaigns
/// at its first election tick — usually before the leader's connection to it is back (its
/// reconnect back-off grew while the node was down). Without pre-vote that bumps the term and
/// deposes a healthy leader: every restart in a drill cost an extra election. So elections stay
/// off until a leader other than this node is heard from, or three election timeouts pass (the
/// leader may really be gone, e.g. every node restarted after a power cut).
fn listen_before_campaigning(raft: &Raft, node_id: NodeId, election_timeout_max_ms: u64) {
    raft.runtime_config().elect(false);
    let raft = raft.clone();
    let listen = std::time::Duration::from_millis(election_timeout_max_ms * 3);
    tokio::spawn(async move {
        let heard = raft
            .wait(Some(listen))
            .metrics(|m| m.current_leader.is_some_and(|l| l != node_id), "a leader heard after restart")
            .await;
        tracing::debug!(node_id, heard_leader = heard.is_ok(), "elections enabled after restart");
        raft.runtime_config().elect(true);
    });
}

/// A leader whose last acknowledgement from a majority is older than its lease.
fn isolated(m: &RaftMetrics, lease_ms: u64) -> bool {
    m.state == openraft::ServerState::Leader && m.millis_since_quorum_ack.is_some_and(|ms| ms > lease_ms)
}

/// A leader a majority has acknowledged within its lease (a single voter acknowledges itself).
fn confirmed(m: &RaftMetrics, lease_ms: u64) -> bool {
    m.state == openraft::ServerState::Leader && m.millis_since_quorum_ack.is_some_and(|ms| ms <= lease_ms)
}

async fn run_proposer(raft: Raft, mut rx: mpsc::UnboundedReceiver<(Command, ProposalReply)>) {
    while let Some((command, reply)) = rx.recv().await {
        match raft.client_write_ff(command).await {
            Ok(pending) => {
                tokio::spawn(async move {
                    let outcome = match pending.await {
                        Ok(Ok(response)) => Ok(response.data),
                        Ok(Err(ClientWriteError::ForwardToLeader(f))) => {
                            Err(ProposeError::NotLeader { leader: f.leader_id })
                        }
                        Ok(Err(e)) => Err(ProposeError::Failed(e.to_string())),
                        // openraft dropped the responder: it is shutting down or lost leadership.
                        Err(_) => Err(ProposeError::NotLeader { leader: None }),
                    };
                    let _ = reply.send(outcome);
                });
            }
            Err(_) => {
                let _ = reply.send(Err(ProposeError::Stopped));
            }
        }
    }
}
