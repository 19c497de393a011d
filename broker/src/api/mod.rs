//! One module per Kafka API: a small handler from typed request to typed response.
//!
//! `REGISTERED` is the routing table: the connection looks a request's key up here, rejects
//! versions outside the range, and `api_versions` answers from the same table, so what we
//! advertise is exactly what we serve.

use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_protocol::messages::{RequestKind, ResponseKind};

use crate::budget::AnswerBytes;
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
    /// An answer built in memory (a fetch's records), with its bytes held in the node's budget
    /// until the connection has written it.
    LaterHolding(BoxFuture<'static, (ResponseKind, Option<AnswerBytes>)>),
    NoResponse,
}

fn later<F>(future: F) -> Reply
where
    F: std::future::Future<Output = ResponseKind> + Send + 'static,
{
    Reply::Later(Box::pin(future))
}

/// Routes a decoded request to its handler, in three kinds: handlers that answer at once,
/// handlers that wait (fsync, long poll, rebalance, a Raft commit) and return a future that the
/// connection polls concurrently, and handlers that choose for themselves (`acks=0` produce
/// answers nothing).
macro_rules! routes {
    (now { $($now:ident => $now_mod:ident,)* }
     later { $($later:ident => $later_mod:ident,)* }
     own { $($own:ident => $own_mod:ident,)* }) => {
        pub fn dispatch(node: &Arc<NodeState>, ctx: RequestContext, request: RequestKind) -> Reply {
            let n = Arc::clone(node);
            match request {
                $(RequestKind::$now(r) => Reply::Now(ResponseKind::$now($now_mod::handle(&n, &ctx, r))),)*
                $(RequestKind::$later(r) => {
                    later(async move { ResponseKind::$later($later_mod::handle(&n, &ctx, r).await) })
                })*
                $(RequestKind::$own(r) => $own_mod::handle(&n, &ctx, r),)*
                // The registry only lets registered keys through, so this is unreachable in
                // practice; answering nothing would hang the client, so say so loudly instead.
                other => {
                    tracing::error!(request = ?std::mem::discriminant(&other), "request routed without a handler");
                    Reply::NoResponse
                }
            }
        }
    };
}

routes! {
    now {
        ApiVersions => api_versions,
        ListOffsets => list_offsets,
        DescribeCluster => describe_cluster,
        DescribeConfigs => describe_configs,
        DescribeUserScramCredentials => describe_user_scram_credentials,
        AlterUserScramCredentials => alter_user_scram_credentials,
        FindCoordinator => find_coordinator,
        Heartbeat => heartbeat,
        LeaveGroup => leave_group,
        DescribeGroups => describe_groups,
        ListGroups => list_groups,
        OffsetForLeaderEpoch => offset_for_leader_epoch,
    }
    later {
        Metadata => metadata,
        CreateTopics => create_topics,
        CreatePartitions => create_partitions,
        AlterConfigs => alter_configs,
        IncrementalAlterConfigs => incremental_alter_configs,
        DeleteTopics => delete_topics,
        DeleteRecords => delete_records,
        DeleteGroups => delete_groups,
        CreateAcls => create_acls,
        DescribeAcls => describe_acls,
        DeleteAcls => delete_acls,
        InitProducerId => init_producer_id,
        JoinGroup => join_group,
        SyncGroup => sync_group,
        OffsetDelete => offset_delete,
        OffsetFetch => offset_fetch,
    }
    own {
        Produce => produce,
        Fetch => fetch,
        OffsetCommit => offset_commit,
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
