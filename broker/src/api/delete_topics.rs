//! DeleteTopics (by name; v6 may also name topics by id, which we look up).

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, topic_name, ApiSpec, RequestContext};
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::DeleteTopics, min: 1, max: 6 };

pub async fn handle(
    node: &NodeState,
    ctx: &RequestContext,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let mut names: Vec<Option<String>> = req.topic_names.iter().map(|n| Some(n.to_string())).collect();
    for t in &req.topics {
        let name = t.name.as_ref().map(|n| n.to_string()).or_else(|| {
            node.topics
                .list()
                .into_iter()
                .find(|i| uuid::Uuid::from_bytes(i.id) == t.topic_id)
                .map(|i| i.name)
        });
        names.push(name);
    }
    let mut responses = Vec::with_capacity(names.len());
    for name in names {
        let Some(name) = name else {
            responses
                .push(DeletableTopicResult::default().with_error_code(ResponseError::UnknownTopicId.code()));
            continue;
        };
        let r = DeletableTopicResult::default().with_name(Some(topic_name(&name)));
        let deleted = node.topology.delete_topic(node, &name).await;
        responses.push(match deleted {
            Ok(()) => r,
            Err((code, msg)) if ctx.api_version >= 5 => {
                r.with_error_code(code.code()).with_error_message(Some(str_bytes(msg)))
            }
            Err((code, _)) => r.with_error_code(code.code()),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
