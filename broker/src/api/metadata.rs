//! Metadata: brokers, topics and partition leaders.
//!
//! Single node: it leads everything. Cluster: every node lists all brokers and the leaders it
//! knows from its own replicas' Raft state (leader epoch = Raft term), so a client bootstrapped
//! on any node finds every leader.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, topic_name, ApiSpec, RequestContext};
use crate::cluster::metadata::TopicAssignment;
use crate::cluster::Cluster;
use crate::state::NodeState;
use crate::topics::TopicInfo;

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
    let (brokers, controller, topics) = match &node.cluster {
        None => single_node(node, requested, allow_create, v),
        Some(c) => cluster(node, c, requested, allow_create, v).await,
    };
    let mut r = MetadataResponse::default().with_brokers(brokers).with_topics(topics);
    if v >= 2 {
        r = r.with_cluster_id(Some(str_bytes(CLUSTER_ID)));
    }
    if v >= 1 {
        r = r.with_controller_id(BrokerId(controller));
    }
    r
}

type Parts = (Vec<MetadataResponseBroker>, i32, Vec<MetadataResponseTopic>);

fn broker(id: i32, addr: std::net::SocketAddr) -> MetadataResponseBroker {
    MetadataResponseBroker::default()
        .with_node_id(BrokerId(id))
        .with_host(str_bytes(addr.ip().to_string()))
        .with_port(addr.port() as i32)
}

fn unknown(name: &str, code: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default().with_name(Some(topic_name(name))).with_error_code(code.code())
}

fn single_node(node: &NodeState, requested: Option<Vec<String>>, allow_create: bool, v: i16) -> Parts {
    let id = node.config.node_id;
    let describe = |t: &TopicInfo| {
        let partitions = (0..t.partitions).map(|p| partition(p, Some((id, 0)), vec![id], v)).collect();
        topic(&t.name, t.id, partitions, v)
    };
    let topics = match requested {
        None => node.topics.list().iter().map(describe).collect(),
        Some(names) => names
            .iter()
            .map(|name| match node.topic_or_create(name, allow_create) {
                Ok(t) => describe(&t),
                Err((code, _)) => unknown(name, code),
            })
            .collect(),
    };
    (vec![broker(id, node.advertised())], id, topics)
}

/// How long a Metadata request waits for a restarted node's metadata to catch up before it
/// answers with what it has (unknown topics then say LEADER_NOT_AVAILABLE, which clients retry).
const METADATA_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(5);

async fn cluster(
    node: &NodeState,
    c: &Cluster,
    requested: Option<Vec<String>>,
    allow_create: bool,
    v: i16,
) -> Parts {
    let ready = c.wait_metadata_ready(METADATA_CATCH_UP).await;
    // Brokers this node can reach now, as Kafka lists only brokers with a live registration.
    // A client forgets a node missing from the list (librdkafka >= 2.10 drops its handle) and
    // meets it afresh once it is listed again; a handle kept across a kill carries a reconnect
    // back-off that librdkafka keeps doubling for as long as attempts are < 10 s apart, which
    // a stock client then waits out (4-6 s) when that node becomes the new leader.
    let brokers = c
        .kafka_addrs
        .iter()
        .filter(|(id, _)| c.reachable(**id))
        .map(|(id, addr)| broker(*id as i32, *addr))
        .collect();
    let controller = c.controller_leader().map_or(-1, |l| l as i32);
    let describe = |name: &str, a: &TopicAssignment| {
        let partitions = a
            .replicas
            .iter()
            .enumerate()
            .map(|(p, replicas)| {
                let leader = c.partition_leader(name, p as i32).map(|(l, epoch)| (l as i32, epoch));
                partition(p as i32, leader, replicas.iter().map(|r| *r as i32).collect(), v)
            })
            .collect();
        topic(name, a.id, partitions, v)
    };
    let mut topics = Vec::new();
    match requested {
        None => {
            for (name, a) in &c.metadata().topics {
                topics.push(describe(name, a));
            }
        }
        Some(names) => {
            for name in names {
                let existing = c.metadata().topics.get(&name).cloned();
                let assignment = match existing {
                    Some(a) => Ok(a),
                    None if allow_create && ready => {
                        match c
                            .create_topic(&name, node.config.default_partitions, Default::default(), None)
                            .await
                        {
                            // Created by someone else meanwhile: that is success too.
                            Err((ResponseError::TopicAlreadyExists, _)) => c
                                .metadata()
                                .topics
                                .get(&name)
                                .cloned()
                                .ok_or((ResponseError::LeaderNotAvailable, String::new())),
                            other => other,
                        }
                    }
                    None if !ready => Err((ResponseError::LeaderNotAvailable, String::new())),
                    None => Err((ResponseError::UnknownTopicOrPartition, String::new())),
                };
                topics.push(match assignment {
                    Ok(a) => describe(&name, &a),
                    Err((code, _)) => unknown(&name, code),
                });
            }
        }
    }
    (brokers, controller, topics)
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
