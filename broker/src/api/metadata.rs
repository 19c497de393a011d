//! Metadata: brokers, topics and partition leaders. A single node leads every partition.

use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse};

use super::{str_bytes, topic_name, ApiSpec, RequestContext};
use crate::state::NodeState;
use crate::topics::TopicInfo;

/// v12 is the newest that still names topics; v13 changes nothing we need.
pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::Metadata, min: 0, max: 12 };

/// The cluster id every client sees.
pub const CLUSTER_ID: &str = "clusterlab";

pub fn handle(node: &NodeState, ctx: &RequestContext, req: MetadataRequest) -> MetadataResponse {
    let advertised = node.advertised();
    let node_id = node.config.node_id;
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(node_id))
        .with_host(str_bytes(advertised.ip().to_string()))
        .with_port(advertised.port() as i32);

    // v0: an empty list means "all topics"; v1+: null means all, empty means none.
    let requested: Option<Vec<String>> = match req.topics {
        None => None,
        Some(t) if t.is_empty() && ctx.api_version == 0 => None,
        Some(t) => Some(t.into_iter().filter_map(|t| t.name.map(|n| n.to_string())).collect()),
    };
    // Before v4 the client could not opt out of auto-creation.
    let allow_create = ctx.api_version < 4 || req.allow_auto_topic_creation;
    let topics = match requested {
        None => node.topics.list().iter().map(|t| describe(t, node_id, ctx.api_version)).collect(),
        Some(names) => names
            .iter()
            .map(|name| match node.topic_or_create(name, allow_create) {
                Ok(t) => describe(&t, node_id, ctx.api_version),
                Err((code, _)) => MetadataResponseTopic::default().with_name(Some(topic_name(name))).with_error_code(code.code()),
            })
            .collect(),
    };
    let mut r = MetadataResponse::default().with_brokers(vec![broker]).with_topics(topics);
    if ctx.api_version >= 2 {
        r = r.with_cluster_id(Some(str_bytes(CLUSTER_ID)));
    }
    if ctx.api_version >= 1 {
        r = r.with_controller_id(BrokerId(node_id));
    }
    r
}

/// `version` gates fields: the codec refuses to encode a field the version does not have.
fn describe(t: &TopicInfo, node_id: i32, version: i16) -> MetadataResponseTopic {
    let partitions = (0..t.partitions)
        .map(|p| {
            let p = MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(node_id))
                .with_replica_nodes(vec![BrokerId(node_id)])
                .with_isr_nodes(vec![BrokerId(node_id)]);
            if version >= 7 { p.with_leader_epoch(0) } else { p }
        })
        .collect();
    let topic = MetadataResponseTopic::default().with_name(Some(topic_name(&t.name))).with_partitions(partitions);
    if version >= 10 { topic.with_topic_id(uuid::Uuid::from_bytes(t.id)) } else { topic }
}
