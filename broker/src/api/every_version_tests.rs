//! Every registered API at every advertised version answers a response that encodes.
//!
//! kafka-protocol refuses to encode a field that a version does not have, so a handler that sets
//! one unconditionally would close the client's connection at that version. This test drives a
//! real node (tempdir, port 0) through all of them, including error answers.

use bytes::BytesMut;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{dispatch, Reply, RequestContext, REGISTERED};
use crate::config::Config;
use crate::node::Node;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn sample_request(key: ApiKey, v: i16) -> RequestKind {
    let t = TopicName(s("t"));
    match key {
        ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ApiKey::Metadata => {
            // Authorized operations asked for where the version has the flags.
            RequestKind::Metadata(
                MetadataRequest::default()
                    .with_topics(Some(vec![
                        metadata_request::MetadataRequestTopic::default().with_name(Some(t))
                    ]))
                    .with_include_topic_authorized_operations(v >= 8)
                    .with_include_cluster_authorized_operations((8..=10).contains(&v)),
            )
        }
        ApiKey::Produce => RequestKind::Produce(
            ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
                produce_request::TopicProduceData::default().with_name(t).with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(crate::log::test_batches::batch(3))),
                    // An unknown partition exercises the error fields too.
                    produce_request::PartitionProduceData::default()
                        .with_index(9)
                        .with_records(Some(crate::log::test_batches::batch(1))),
                ]),
            ]),
        ),
        ApiKey::Fetch => {
            RequestKind::Fetch(FetchRequest::default().with_max_bytes(1 << 20).with_topics(vec![
                fetch_request::FetchTopic::default().with_topic(t).with_partitions(vec![
                fetch_request::FetchPartition::default().with_partition(0).with_partition_max_bytes(1 << 20),
                fetch_request::FetchPartition::default().with_partition(0).with_fetch_offset(1_000_000),
            ]),
            ]))
        }
        ApiKey::ListOffsets => RequestKind::ListOffsets(ListOffsetsRequest::default().with_topics(vec![
            list_offsets_request::ListOffsetsTopic::default().with_name(t).with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1),
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(5)
                    .with_timestamp(-2),
            ]),
        ])),
        ApiKey::CreateTopics => RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![
                create_topics_request::CreatableTopic::default()
                    .with_name(TopicName(s(&format!("created-v{v}"))))
                    .with_num_partitions(1)
                    .with_replication_factor(1),
                create_topics_request::CreatableTopic::default()
                    .with_name(TopicName(s("bad name")))
                    .with_num_partitions(1)
                    .with_replication_factor(1),
            ])),
        ApiKey::DeleteTopics if v >= 6 => {
            RequestKind::DeleteTopics(DeleteTopicsRequest::default().with_topics(vec![
                delete_topics_request::DeleteTopicState::default().with_name(Some(TopicName(s("missing")))),
            ]))
        }
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(
            DeleteTopicsRequest::default().with_topic_names(vec![TopicName(s("missing"))]),
        ),
        ApiKey::DeleteRecords => {
            RequestKind::DeleteRecords(DeleteRecordsRequest::default().with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default().with_name(t).with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default().with_offset(-1),
                    delete_records_request::DeleteRecordsPartition::default().with_partition_index(9),
                ]),
            ]))
        }
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("missing"))]),
        ),
        ApiKey::InitProducerId => RequestKind::InitProducerId(
            InitProducerIdRequest::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1),
        ),
        ApiKey::FindCoordinator if v >= 4 => RequestKind::FindCoordinator(
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g")]),
        ),
        ApiKey::FindCoordinator => {
            RequestKind::FindCoordinator(FindCoordinatorRequest::default().with_key(s("g")))
        }
        // An empty group id is refused at once: the error answer must encode at every version.
        ApiKey::JoinGroup => RequestKind::JoinGroup(
            JoinGroupRequest::default().with_session_timeout_ms(10_000).with_protocol_type(s("consumer")),
        ),
        ApiKey::SyncGroup => RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id(1)
                .with_member_id(s("m")),
        ),
        ApiKey::Heartbeat => RequestKind::Heartbeat(
            HeartbeatRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id(1)
                .with_member_id(s("m")),
        ),
        ApiKey::LeaveGroup if v >= 3 => RequestKind::LeaveGroup(
            LeaveGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_members(vec![leave_group_request::MemberIdentity::default().with_member_id(s("m"))]),
        ),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(
            LeaveGroupRequest::default().with_group_id(GroupId(s("g"))).with_member_id(s("m")),
        ),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(GroupId(s("simple")))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(t)
                    .with_partitions(vec![offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_committed_offset(1)])]),
        ),
        ApiKey::OffsetFetch if v >= 8 => {
            RequestKind::OffsetFetch(OffsetFetchRequest::default().with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(s("simple")))
                    .with_topics(Some(vec![offset_fetch_request::OffsetFetchRequestTopics::default()
                        .with_name(t)
                        .with_partition_indexes(vec![0])])),
            ]))
        }
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(
            OffsetFetchRequest::default().with_group_id(GroupId(s("simple"))).with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(t)
                    .with_partition_indexes(vec![0]),
            ])),
        ),
        ApiKey::CreatePartitions => {
            RequestKind::CreatePartitions(CreatePartitionsRequest::default().with_topics(vec![
                // Grows "t", then asks for a topic that does not exist (the error fields).
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(t)
                    .with_count(i32::from(v) + 3),
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(TopicName(s("missing")))
                    .with_count(2),
            ]))
        }
        ApiKey::DescribeCluster => {
            // v1+ asks for the brokers' endpoints (type 1), as clients do.
            RequestKind::DescribeCluster(
                DescribeClusterRequest::default()
                    .with_endpoint_type(if v >= 1 { 1 } else { 0 })
                    .with_include_cluster_authorized_operations(true),
            )
        }
        ApiKey::DescribeConfigs => {
            RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t")),
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(s("1")),
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("missing")),
            ]))
        }
        ApiKey::AlterConfigs => {
            RequestKind::AlterConfigs(AlterConfigsRequest::default().with_resources(vec![
                alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_configs(vec![alter_configs_request::AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_value(Some(s("1000")))]),
                alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(s("1")),
            ]))
        }
        ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_configs(vec![incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(s("cleanup.policy"))
                        .with_config_operation(2)
                        .with_value(Some(s("compact")))]),
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_configs(vec![incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(s("no.such.config"))
                        .with_value(Some(s("1")))]),
            ]),
        ),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(
            DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(s("simple"))])
                .with_include_authorized_operations(v >= 3),
        ),
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::OffsetForLeaderEpoch => {
            RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default().with_topics(vec![
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(t)
                    .with_partitions(vec![
                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                            .with_leader_epoch(0),
                    ]),
            ]))
        }
        // A valid binding and one Kafka refuses (MATCH is a filter type only).
        ApiKey::CreateAcls => RequestKind::CreateAcls(CreateAclsRequest::default().with_creations(vec![
            create_acls_request::AclCreation::default()
                .with_resource_type(2)
                .with_resource_name(s("t"))
                .with_resource_pattern_type(4)
                .with_principal(s("User:a"))
                .with_host(s("*"))
                .with_operation(3)
                .with_permission_type(3),
            create_acls_request::AclCreation::default()
                .with_resource_type(2)
                .with_resource_name(s("t"))
                .with_resource_pattern_type(2)
                .with_principal(s("User:a"))
                .with_host(s("*"))
                .with_operation(3)
                .with_permission_type(3),
        ])),
        // Created at the version before: a non-empty answer.
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(
            DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(2)
                .with_resource_name_filter(Some(s("t")))
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_operation(1)
                .with_permission_type(1),
        ),
        // One filter that matches and one refused (unknown operation 0).
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(DeleteAclsRequest::default().with_filters(vec![
            delete_acls_request::DeleteAclsFilter::default()
                .with_resource_type_filter(2)
                .with_pattern_type_filter(1)
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_operation(1)
                .with_permission_type(1),
            delete_acls_request::DeleteAclsFilter::default()
                .with_resource_type_filter(2)
                .with_pattern_type_filter(1)
                .with_operation(0)
                .with_permission_type(1),
        ])),
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(
            OffsetDeleteRequest::default().with_group_id(GroupId(s("simple"))).with_topics(vec![
                offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(t)
                    .with_partitions(vec![offset_delete_request::OffsetDeleteRequestPartition::default()
                        .with_partition_index(0)]),
            ]),
        ),
        ApiKey::DescribeUserScramCredentials => RequestKind::DescribeUserScramCredentials(
            DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                describe_user_scram_credentials_request::UserName::default().with_name(s("alice")),
            ])),
        ),
        ApiKey::AlterUserScramCredentials => RequestKind::AlterUserScramCredentials(
            AlterUserScramCredentialsRequest::default()
                .with_deletions(vec![alter_user_scram_credentials_request::ScramCredentialDeletion::default(
                )
                .with_name(s("alice"))
                .with_mechanism(1)])
                .with_upsertions(vec![
                    alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                        .with_name(s("bob"))
                        .with_mechanism(2)
                        .with_iterations(8192),
                ]),
        ),
        other => panic!("no sample request for {other:?}: add one when registering a handler"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registered_version_answers_an_encodable_response() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        kafka_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    let node = Node::start(config).await.unwrap();
    let state = std::sync::Arc::clone(node.state());
    state.topology.create_topic(&state, "t", 1, None, Default::default(), None).await.unwrap();
    let mut checked = 0;
    for spec in REGISTERED {
        for v in spec.min..=spec.max {
            let ctx = RequestContext {
                api_version: v,
                client_id: "every-version".into(),
                client_host: "127.0.0.1".into(),
            };
            let response = match dispatch(&state, ctx, sample_request(spec.key, v)) {
                Reply::Now(r) => r,
                Reply::Later(f) => f.await,
                Reply::LaterHolding(f) => f.await.0,
                Reply::NoResponse => panic!("{:?} v{v} gave no response", spec.key),
            };
            let mut buf = BytesMut::new();
            response
                .encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("{:?} v{v} response does not encode: {e}", spec.key));
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} api/version pairs checked");
    node.shutdown().await.unwrap();
}
