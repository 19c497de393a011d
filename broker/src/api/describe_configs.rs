//! DescribeConfigs: a topic's configs (every Kafka topic config, set or default) and this
//! broker's: its static settings (read-only: from its flags and config file) and Kafka's dynamic
//! broker configs, set or default (`broker_configs`).

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, ApiSpec, RequestContext};
use crate::broker_configs::{self, DYNAMIC};
use crate::state::NodeState;
use crate::topic_config::{self, ValueKind, TOPIC_CONFIGS};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::DescribeConfigs, min: 1, max: 4 };

/// ConfigResource types (Kafka's `ConfigResource.Type`).
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// `config_source` codes.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

struct Entry {
    name: String,
    value: String,
    kind: ValueKind,
    source: i8,
    read_only: bool,
}

pub fn handle(
    node: &NodeState,
    ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let name = r.resource_name.to_string();
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name);
            let entries = match r.resource_type {
                RESOURCE_TOPIC => topic_entries(node, &name),
                RESOURCE_BROKER => broker_entries(node, &name),
                other => {
                    Err((ResponseError::InvalidRequest, format!("resource type {other} has no configs here")))
                }
            };
            match entries {
                Ok(entries) => {
                    let keys =
                        r.configuration_keys.map(|k| k.iter().map(|s| s.to_string()).collect::<Vec<_>>());
                    let configs = entries
                        .into_iter()
                        .filter(|e| keys.as_ref().is_none_or(|k| k.contains(&e.name)))
                        .map(|e| encode(ctx.api_version, e))
                        .collect();
                    base.with_configs(configs)
                }
                Err((code, msg)) => {
                    base.with_error_code(code.code()).with_error_message(Some(str_bytes(msg)))
                }
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn encode(version: i16, e: Entry) -> DescribeConfigsResourceResult {
    let r = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(e.name))
        .with_value(Some(str_bytes(e.value)))
        .with_read_only(e.read_only)
        .with_config_source(e.source);
    if version >= 3 {
        r.with_config_type(e.kind.code())
    } else {
        r
    }
}

fn topic_entries(node: &NodeState, topic: &str) -> Result<Vec<Entry>, (ResponseError, String)> {
    let configs = node
        .topic_configs(topic)
        .ok_or_else(|| (ResponseError::UnknownTopicOrPartition, format!("topic '{topic}' does not exist")))?;
    Ok(TOPIC_CONFIGS
        .iter()
        .map(|d| Entry {
            name: d.name.to_string(),
            value: topic_config::value_of(&configs, d).to_string(),
            kind: d.kind,
            source: if configs.contains_key(d.name) { SOURCE_TOPIC } else { SOURCE_DEFAULT },
            read_only: false,
        })
        .collect())
}

fn broker_entries(node: &NodeState, id: &str) -> Result<Vec<Entry>, (ResponseError, String)> {
    broker_configs::check_resource(&node.config, id, false)?;
    let statics = broker_configs::static_configs(&node.config).into_iter().map(|(name, value, kind)| Entry {
        name: name.to_string(),
        value,
        kind,
        source: SOURCE_STATIC_BROKER,
        read_only: true,
    });
    let set = node.dynamic_configs.get();
    let dynamics = DYNAMIC.defs.iter().map(|d| Entry {
        name: d.name.to_string(),
        value: topic_config::value_of(&set, d).to_string(),
        kind: d.kind,
        source: if set.contains_key(d.name) { SOURCE_DYNAMIC_BROKER } else { SOURCE_DEFAULT },
        read_only: false,
    });
    Ok(statics.chain(dynamics).collect())
}
