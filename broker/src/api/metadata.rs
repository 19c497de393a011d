//! Metadata: brokers, topics and partition leaders.
//!
//! One answer for both topologies: a single node leads everything; in a cluster every node lists
//! the brokers it can reach and the leaders it knows from its own replicas' Raft state (leader
//! epoch = Raft term), so a client bootstrapped on any node finds every leader.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, topic_name, ApiSpec, RequestContext};
use crate::acls::authorized;
use crate::state::{NodeState, TopicPlacement};

/// v12 is the newest that still names topics; v13 changes nothing we need.
pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::Metadata, min: 0, max: 12 };

/// The cluster id every client sees.
pub const CLUSTER_ID: &str = "clusterlab";

pub async fn handle(node: &NodeState, ctx: &RequestContext, req: MetadataRequest) -> MetadataResponse {
    // v0: an empty list means "all topics"; v1+: null means all, empty means none.
    let requested: Option<Vec<String>> = match req.topics {
        None => None,
        Some(t) if t.is_empty() && ctx.api_version == 0 => None,
        Some(t) => Some(t.into_iter().filter_map(|t| t.name.map(|n| n.to_string())).collect()),
    };
    // Before v4 the client could not opt out of auto-creation.
    let allow_create =
        (ctx.api_version < 4 || req.allow_auto_topic_creation) && node.config.auto_create_topics;
    let v = ctx.api_version;
    let topology = &node.topology;
    let ready = topology.catalogue_ready().await;
    let brokers = topology.live_brokers(node).into_iter().map(|(id, addr)| broker(id, addr)).collect();
    let controller = topology.controller(node).unwrap_or(-1);
    let describe = |t: &TopicPlacement| {
        let partitions = (t.replicas.iter().enumerate())
            .map(|(p, replicas)| {
                partition(p as i32, topology.partition_leader(node, &t.name, p as i32), replicas.clone(), v)
            })
            .collect();
        let described = topic(&t.name, t.id, partitions, v);
        if v >= 8 && req.include_topic_authorized_operations {
            described.with_topic_authorized_operations(authorized::TOPIC)
        } else {
            described
        }
    };
    let topics = match requested {
        None => topology.topics(node).iter().map(describe).collect(),
        Some(names) => {
            let mut topics = Vec::with_capacity(names.len());
            for name in names {
                topics.push(match topology.topic_or_create(node, &name, allow_create, ready).await {
                    Ok(t) => describe(&t),
                    Err((code, _)) => unknown(&name, code),
                });
            }
            topics
        }
    };
    let mut r = MetadataResponse::default().with_brokers(brokers).with_topics(topics);
    if v >= 2 {
        r = r.with_cluster_id(Some(str_bytes(CLUSTER_ID)));
    }
    if v >= 1 {
        r = r.with_controller_id(BrokerId(controller));
    }
    if (8..=10).contains(&v) && req.include_cluster_authorized_operations {
        r = r.with_cluster_authorized_operations(authorized::CLUSTER);
    }
    r
}

fn broker(id: i32, addr: std::net::SocketAddr) -> MetadataResponseBroker {
    MetadataResponseBroker::default()
        .with_node_id(BrokerId(id))
        .with_host(str_bytes(addr.ip().to_string()))
        .with_port(addr.port() as i32)
}

fn unknown(name: &str, code: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default().with_name(Some(topic_name(name))).with_error_code(code.code())
}

/// `leader` = (node, epoch); None answers LEADER_NOT_AVAILABLE, which clients retry.
fn partition(
    index: i32,
    leader: Option<(i32, i32)>,
    replicas: Vec<i32>,
    v: i16,
) -> MetadataResponsePartition {
    let ids: Vec<BrokerId> = replicas.into_iter().map(BrokerId).collect();
    let mut p = MetadataResponsePartition::default()
        .with_partition_index(index)
        .with_replica_nodes(ids.clone())
        .with_isr_nodes(ids);
    match leader {
        Some((leader, epoch)) => {
            p = p.with_leader_id(BrokerId(leader));
            if v >= 7 {
                p = p.with_leader_epoch(epoch);
            }
        }
        None => p = p.with_leader_id(BrokerId(-1)).with_error_code(ResponseError::LeaderNotAvailable.code()),
    }
    p
}

/// `version` gates fields: the codec refuses to encode a field the version does not have.
fn topic(
    name: &str,
    id: [u8; 16],
    partitions: Vec<MetadataResponsePartition>,
    v: i16,
) -> MetadataResponseTopic {
    let topic =
        MetadataResponseTopic::default().with_name(Some(topic_name(name))).with_partitions(partitions);
    if v >= 10 {
        topic.with_topic_id(uuid::Uuid::from_bytes(id))
    } else {
        topic
    }
}
