//! One module per Kafka API: a small handler from typed request to typed response.
//!
//! `REGISTERED` is the routing table: the connection looks a request's key up here, rejects
//! versions outside the range, and `api_versions` answers from the same table, so what we
//! advertise is exactly what we serve.

use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_protocol::messages::{RequestKind, ResponseKind};

pub use crate::registry::{ApiSpec, Registry};
use crate::state::NodeState;

pub mod alter_configs;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_user_scram_credentials;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;
pub mod unsupported;

/// Every handler's spec. Order does not matter; a duplicate key is a start-up error.
pub const REGISTERED: &[ApiSpec] = &[
    api_versions::SPEC,
    metadata::SPEC,
    produce::SPEC,
    fetch::SPEC,
    list_offsets::SPEC,
    create_topics::SPEC,
    create_partitions::SPEC,
    describe_configs::SPEC,
    alter_configs::SPEC,
    incremental_alter_configs::SPEC,
    describe_cluster::SPEC,
    delete_topics::SPEC,
    delete_records::SPEC,
    delete_groups::SPEC,
    init_producer_id::SPEC,
    find_coordinator::SPEC,
    join_group::SPEC,
    sync_group::SPEC,
    heartbeat::SPEC,
    leave_group::SPEC,
    offset_commit::SPEC,
    offset_delete::SPEC,
    offset_fetch::SPEC,
    describe_groups::SPEC,
    list_groups::SPEC,
    offset_for_leader_epoch::SPEC,
    create_acls::SPEC,
    describe_acls::SPEC,
    delete_acls::SPEC,
    describe_user_scram_credentials::SPEC,
    alter_user_scram_credentials::SPEC,
];

/// What the connection needs to know about the request besides its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub api_version: i16,
    pub client_id: String,
    pub client_host: String,
}

/// How a handler answers: at once, after some waiting, or not at all (`acks=0` produce).
// A Reply lives for one request and is moved once; boxing the common immediate answer would
// cost an allocation per response to save stack bytes.
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    Now(ResponseKind),
    Later(BoxFuture<'static, ResponseKind>),
    NoResponse,
}

fn later<F>(future: F) -> Reply
where
    F: std::future::Future<Output = ResponseKind> + Send + 'static,
{
    Reply::Later(Box::pin(future))
}

/// Routes a decoded request to its handler. Synchronous handlers answer `Now`; handlers that
/// wait (fsync, long poll, rebalance) return a future that the connection polls concurrently.
pub fn dispatch(node: &Arc<NodeState>, ctx: RequestContext, request: RequestKind) -> Reply {
    let n = Arc::clone(node);
    match request {
        RequestKind::ApiVersions(r) => {
            Reply::Now(ResponseKind::ApiVersions(api_versions::handle(&n, &ctx, r)))
        }
        RequestKind::Metadata(r) => {
            later(async move { ResponseKind::Metadata(metadata::handle(&n, &ctx, r).await) })
        }
        RequestKind::Produce(r) => produce::handle(&n, &ctx, r),
        RequestKind::Fetch(r) => later(async move { ResponseKind::Fetch(fetch::handle(&n, &ctx, r).await) }),
        RequestKind::ListOffsets(r) => {
            Reply::Now(ResponseKind::ListOffsets(list_offsets::handle(&n, &ctx, r)))
        }
        RequestKind::CreateTopics(r) => {
            later(async move { ResponseKind::CreateTopics(create_topics::handle(&n, &ctx, r).await) })
        }
        RequestKind::CreatePartitions(r) => {
            later(async move { ResponseKind::CreatePartitions(create_partitions::handle(&n, &ctx, r).await) })
        }
        RequestKind::DescribeCluster(r) => {
            Reply::Now(ResponseKind::DescribeCluster(describe_cluster::handle(&n, &ctx, r)))
        }
        RequestKind::DescribeConfigs(r) => {
            Reply::Now(ResponseKind::DescribeConfigs(describe_configs::handle(&n, &ctx, r)))
        }
        RequestKind::AlterConfigs(r) => {
            later(async move { ResponseKind::AlterConfigs(alter_configs::handle(&n, &ctx, r).await) })
        }
        RequestKind::IncrementalAlterConfigs(r) => later(async move {
            ResponseKind::IncrementalAlterConfigs(incremental_alter_configs::handle(&n, &ctx, r).await)
        }),
        RequestKind::DeleteTopics(r) => {
            later(async move { ResponseKind::DeleteTopics(delete_topics::handle(&n, &ctx, r).await) })
        }
        RequestKind::DeleteRecords(r) => {
            later(async move { ResponseKind::DeleteRecords(delete_records::handle(&n, &ctx, r).await) })
        }
        RequestKind::DeleteGroups(r) => {
            later(async move { ResponseKind::DeleteGroups(delete_groups::handle(&n, &ctx, r).await) })
        }
        RequestKind::CreateAcls(r) => {
            later(async move { ResponseKind::CreateAcls(create_acls::handle(&n, &ctx, r).await) })
        }
        RequestKind::DescribeAcls(r) => {
            later(async move { ResponseKind::DescribeAcls(describe_acls::handle(&n, &ctx, r).await) })
        }
        RequestKind::DeleteAcls(r) => {
            later(async move { ResponseKind::DeleteAcls(delete_acls::handle(&n, &ctx, r).await) })
        }
        RequestKind::DescribeUserScramCredentials(r) => Reply::Now(
            ResponseKind::DescribeUserScramCredentials(describe_user_scram_credentials::handle(&n, &ctx, r)),
        ),
        RequestKind::AlterUserScramCredentials(r) => Reply::Now(ResponseKind::AlterUserScramCredentials(
            alter_user_scram_credentials::handle(&n, &ctx, r),
        )),
        RequestKind::InitProducerId(r) => {
            later(async move { ResponseKind::InitProducerId(init_producer_id::handle(&n, &ctx, r).await) })
        }
        RequestKind::FindCoordinator(r) => {
            Reply::Now(ResponseKind::FindCoordinator(find_coordinator::handle(&n, &ctx, r)))
        }
        RequestKind::JoinGroup(r) => {
            later(async move { ResponseKind::JoinGroup(join_group::handle(&n, &ctx, r).await) })
        }
        RequestKind::SyncGroup(r) => {
            later(async move { ResponseKind::SyncGroup(sync_group::handle(&n, &ctx, r).await) })
        }
        RequestKind::Heartbeat(r) => Reply::Now(ResponseKind::Heartbeat(heartbeat::handle(&n, &ctx, r))),
        RequestKind::LeaveGroup(r) => Reply::Now(ResponseKind::LeaveGroup(leave_group::handle(&n, &ctx, r))),
        RequestKind::OffsetCommit(r) => offset_commit::handle(&n, &ctx, r),
        RequestKind::OffsetDelete(r) => {
            later(async move { ResponseKind::OffsetDelete(offset_delete::handle(&n, &ctx, r).await) })
        }
        RequestKind::OffsetFetch(r) => {
            later(async move { ResponseKind::OffsetFetch(offset_fetch::handle(&n, &ctx, r).await) })
        }
        RequestKind::DescribeGroups(r) => {
            Reply::Now(ResponseKind::DescribeGroups(describe_groups::handle(&n, &ctx, r)))
        }
        RequestKind::ListGroups(r) => Reply::Now(ResponseKind::ListGroups(list_groups::handle(&n, &ctx, r))),
        RequestKind::OffsetForLeaderEpoch(r) => {
            Reply::Now(ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(&n, &ctx, r)))
        }
        // The registry only lets registered keys through, so this is unreachable in practice;
        // answering nothing would hang the client, so say so loudly instead.
        other => {
            tracing::error!(request = ?std::mem::discriminant(&other), "request routed without a handler");
            Reply::NoResponse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registered_table_is_valid_and_has_every_required_api() {
        let registry = Registry::new(REGISTERED).unwrap();
        assert_eq!(registry.iter().count(), 31);
    }

    #[test]
    fn a_duplicate_registration_is_refused() {
        let err = Registry::new(&[api_versions::SPEC, api_versions::SPEC]).unwrap_err();
        assert!(err.to_string().contains("registered twice"), "{err}");
    }
}

/// Kafka strings from Rust strings.
pub(crate) fn str_bytes(s: impl Into<String>) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.into())
}

pub(crate) fn topic_name(s: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(str_bytes(s))
}

#[cfg(test)]
mod every_version_tests;
