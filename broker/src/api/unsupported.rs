//! The answer to a request for an API this broker does not serve.
//!
//! Clients read ApiVersions and do not send what is not listed, but one that does (or a tool
//! probing) gets an error it can read, not a dropped connection: the API's own response with
//! UNSUPPORTED_VERSION in its top-level error code (UNSUPPORTED_SASL_MECHANISM for a SASL
//! handshake: the lab speaks plaintext), or, where the response has errors only per entry, that
//! code for every entry the request named. The share-group APIs of that second kind, and a
//! version too old to have the field, have no such answer; the connection then closes with a
//! warning naming the API.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;

/// Lists `ApiKey::$api => $response` pairs whose response has a top-level `error_code`.
macro_rules! with_top_level_error {
    ($key:expr, $code:expr, $($api:ident => $response:ident),* $(,)?) => {
        match $key {
            $(ApiKey::$api => Some(ResponseKind::$api($response::default().with_error_code($code))),)*
            _ => None,
        }
    };
}

/// The error response for a request of `key` at `version` whose body is `body`.
pub fn answer(key: ApiKey, version: i16, body: &mut Bytes) -> Option<ResponseKind> {
    top_level(key).or_else(|| per_entry(RequestKind::decode(key, body, version).ok()?))
}

/// The error response for `key`, if its response type has a top-level error code.
fn top_level(key: ApiKey) -> Option<ResponseKind> {
    if key == ApiKey::SaslHandshake {
        let code = ResponseError::UnsupportedSaslMechanism.code();
        return Some(ResponseKind::SaslHandshake(SaslHandshakeResponse::default().with_error_code(code)));
    }
    let code = ResponseError::UnsupportedVersion.code();
    with_top_level_error!(key, code,
        AddPartitionsToTxn => AddPartitionsToTxnResponse,
        AddOffsetsToTxn => AddOffsetsToTxnResponse,
        EndTxn => EndTxnResponse,
        DescribeLogDirs => DescribeLogDirsResponse,
        SaslAuthenticate => SaslAuthenticateResponse,
        CreateDelegationToken => CreateDelegationTokenResponse,
        RenewDelegationToken => RenewDelegationTokenResponse,
        ExpireDelegationToken => ExpireDelegationTokenResponse,
        DescribeDelegationToken => DescribeDelegationTokenResponse,
        ElectLeaders => ElectLeadersResponse,
        AlterPartitionReassignments => AlterPartitionReassignmentsResponse,
        ListPartitionReassignments => ListPartitionReassignmentsResponse,
        DescribeClientQuotas => DescribeClientQuotasResponse,
        DescribeQuorum => DescribeQuorumResponse,
        UpdateFeatures => UpdateFeaturesResponse,
        ListTransactions => ListTransactionsResponse,
        ConsumerGroupHeartbeat => ConsumerGroupHeartbeatResponse,
        GetTelemetrySubscriptions => GetTelemetrySubscriptionsResponse,
        PushTelemetry => PushTelemetryResponse,
        ListConfigResources => ListConfigResourcesResponse,
        ShareGroupHeartbeat => ShareGroupHeartbeatResponse,
        ShareFetch => ShareFetchResponse,
        ShareAcknowledge => ShareAcknowledgeResponse,
        AlterShareGroupOffsets => AlterShareGroupOffsetsResponse,
        DeleteShareGroupOffsets => DeleteShareGroupOffsetsResponse,
        // Between brokers and controllers: nothing here speaks them.
        Vote => VoteResponse,
        BeginQuorumEpoch => BeginQuorumEpochResponse,
        EndQuorumEpoch => EndQuorumEpochResponse,
        AlterPartition => AlterPartitionResponse,
        Envelope => EnvelopeResponse,
        FetchSnapshot => FetchSnapshotResponse,
        BrokerRegistration => BrokerRegistrationResponse,
        BrokerHeartbeat => BrokerHeartbeatResponse,
        UnregisterBroker => UnregisterBrokerResponse,
        AllocateProducerIds => AllocateProducerIdsResponse,
        ControllerRegistration => ControllerRegistrationResponse,
        AssignReplicasToDirs => AssignReplicasToDirsResponse,
        AddRaftVoter => AddRaftVoterResponse,
        RemoveRaftVoter => RemoveRaftVoterResponse,
        UpdateRaftVoter => UpdateRaftVoterResponse,
    )
}

/// UNSUPPORTED_VERSION for every topic, partition, group or id the request named, where the
/// response has no top-level error code.
fn per_entry(request: RequestKind) -> Option<ResponseKind> {
    let code = ResponseError::UnsupportedVersion.code();
    Some(match request {
        RequestKind::TxnOffsetCommit(r) => ResponseKind::TxnOffsetCommit(txn_offset_commit(r, code)),
        RequestKind::DescribeProducers(r) => ResponseKind::DescribeProducers(describe_producers(r, code)),
        RequestKind::DescribeTransactions(r) => {
            use describe_transactions_response::TransactionState as S;
            let states = r.transactional_ids.into_iter().map(|id| S::default().with_transactional_id(id));
            let states = states.map(|s| s.with_error_code(code)).collect();
            ResponseKind::DescribeTransactions(
                DescribeTransactionsResponse::default().with_transaction_states(states),
            )
        }
        RequestKind::ConsumerGroupDescribe(r) => {
            use consumer_group_describe_response::DescribedGroup as G;
            let groups =
                r.group_ids.into_iter().map(|id| G::default().with_group_id(id).with_error_code(code));
            ResponseKind::ConsumerGroupDescribe(
                ConsumerGroupDescribeResponse::default().with_groups(groups.collect()),
            )
        }
        RequestKind::DescribeTopicPartitions(r) => {
            use describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic as T;
            let topics =
                r.topics.into_iter().map(|t| T::default().with_name(Some(t.name)).with_error_code(code));
            ResponseKind::DescribeTopicPartitions(
                DescribeTopicPartitionsResponse::default().with_topics(topics.collect()),
            )
        }
        RequestKind::AlterClientQuotas(r) => ResponseKind::AlterClientQuotas(alter_client_quotas(r, code)),
        RequestKind::AlterReplicaLogDirs(r) => {
            ResponseKind::AlterReplicaLogDirs(alter_replica_log_dirs(r, code))
        }
        RequestKind::WriteTxnMarkers(r) => ResponseKind::WriteTxnMarkers(write_txn_markers(r, code)),
        _ => return None,
    })
}

fn txn_offset_commit(r: TxnOffsetCommitRequest, code: i16) -> TxnOffsetCommitResponse {
    use txn_offset_commit_response::{
        TxnOffsetCommitResponsePartition as P, TxnOffsetCommitResponseTopic as T,
    };
    let topics = r.topics.into_iter().map(|t| {
        let parts = t.partitions.iter().map(|p| P::default().with_partition_index(p.partition_index));
        T::default().with_name(t.name).with_partitions(parts.map(|p| p.with_error_code(code)).collect())
    });
    TxnOffsetCommitResponse::default().with_topics(topics.collect())
}

fn describe_producers(r: DescribeProducersRequest, code: i16) -> DescribeProducersResponse {
    use describe_producers_response::{PartitionResponse as P, TopicResponse as T};
    let topics = r.topics.into_iter().map(|t| {
        let parts = t.partition_indexes.iter().map(|i| P::default().with_partition_index(*i));
        T::default().with_name(t.name).with_partitions(parts.map(|p| p.with_error_code(code)).collect())
    });
    DescribeProducersResponse::default().with_topics(topics.collect())
}

fn alter_client_quotas(r: AlterClientQuotasRequest, code: i16) -> AlterClientQuotasResponse {
    use alter_client_quotas_response::{EntityData as D, EntryData as E};
    let entries = r.entries.into_iter().map(|e| {
        let entity = e
            .entity
            .into_iter()
            .map(|d| D::default().with_entity_type(d.entity_type).with_entity_name(d.entity_name));
        E::default().with_entity(entity.collect()).with_error_code(code)
    });
    AlterClientQuotasResponse::default().with_entries(entries.collect())
}

fn alter_replica_log_dirs(r: AlterReplicaLogDirsRequest, code: i16) -> AlterReplicaLogDirsResponse {
    use alter_replica_log_dirs_response::{
        AlterReplicaLogDirPartitionResult as P, AlterReplicaLogDirTopicResult as T,
    };
    let results = r.dirs.into_iter().flat_map(|d| d.topics).map(|t| {
        let parts = t.partitions.iter().map(|i| P::default().with_partition_index(*i).with_error_code(code));
        T::default().with_topic_name(t.name).with_partitions(parts.collect())
    });
    AlterReplicaLogDirsResponse::default().with_results(results.collect())
}

fn write_txn_markers(r: WriteTxnMarkersRequest, code: i16) -> WriteTxnMarkersResponse {
    use write_txn_markers_response::{
        WritableTxnMarkerPartitionResult as P, WritableTxnMarkerResult as M,
        WritableTxnMarkerTopicResult as T,
    };
    let markers = r.markers.into_iter().map(|m| {
        let topics = m.topics.into_iter().map(|t| {
            let parts = t
                .partition_indexes
                .iter()
                .map(|i| P::default().with_partition_index(*i).with_error_code(code));
            T::default().with_name(t.name).with_partitions(parts.collect())
        });
        M::default().with_producer_id(m.producer_id).with_topics(topics.collect())
    });
    WriteTxnMarkersResponse::default().with_markers(markers.collect())
}
