//! ApiVersions: the answer is generated from the registry, never written by hand.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, ResponseKind};
use kafka_protocol::ResponseError;

use super::{ApiSpec, Registry, RequestContext};
use crate::state::NodeState;

/// v3 is what librdkafka 2.x sends; v4 adds nothing we use.
pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::ApiVersions, min: 0, max: 3 };

pub fn handle(node: &NodeState, _ctx: &RequestContext, _req: ApiVersionsRequest) -> ApiVersionsResponse {
    answer(&node.registry, 0)
}

/// The v0 answer for a request whose version we do not know.
pub fn unsupported(registry: &Registry) -> ResponseKind {
    ResponseKind::ApiVersions(answer(registry, ResponseError::UnsupportedVersion.code()))
}

fn answer(registry: &Registry, error_code: i16) -> ApiVersionsResponse {
    let api_keys = registry
        .iter()
        .map(|s| {
            ApiVersion::default().with_api_key(s.key as i16).with_min_version(s.min).with_max_version(s.max)
        })
        .collect();
    // Everything else stays at its default so that no optional tagged field is sent: older
    // librdkafka (Debian's kcat) cannot parse some of them.
    ApiVersionsResponse::default().with_error_code(error_code).with_api_keys(api_keys)
}
