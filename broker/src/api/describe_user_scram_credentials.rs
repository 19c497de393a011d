//! DescribeUserScramCredentials: which SCRAM credentials users have. The lab serves no SASL
//! (plaintext on loopback, decision 35), so no user has any: a named user answers
//! RESOURCE_NOT_FOUND, as Kafka answers for a user without credentials, and "every user" is an
//! empty list. A name asked for twice answers DUPLICATE_RESOURCE, as Kafka's does.

use kafka_protocol::messages::describe_user_scram_credentials_response::DescribeUserScramCredentialsResult;
use kafka_protocol::messages::{
    ApiKey, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::ResponseError;

use super::{str_bytes, ApiSpec, RequestContext};
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::DescribeUserScramCredentials, min: 0, max: 0 };

pub fn handle(
    _node: &NodeState,
    _ctx: &RequestContext,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let names: Vec<String> = req.users.unwrap_or_default().into_iter().map(|u| u.name.to_string()).collect();
    let results = names
        .iter()
        .enumerate()
        .filter(|(i, name)| !names[..*i].contains(name))
        .map(|(_, name)| {
            let (code, message) = if names.iter().filter(|n| *n == name).count() > 1 {
                (ResponseError::DuplicateResource, format!("user {name:?} is asked for more than once"))
            } else {
                (
                    ResponseError::ResourceNotFound,
                    format!("user {name:?} has no SCRAM credentials: this lab serves no SASL"),
                )
            };
            DescribeUserScramCredentialsResult::default()
                .with_user(str_bytes(name.clone()))
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(message)))
        })
        .collect();
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
