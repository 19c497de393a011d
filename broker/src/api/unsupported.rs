//! The answer to a request for an API this broker does not serve.
//!
//! Clients read ApiVersions and do not send what is not listed, but one that does (or a tool
//! probing) gets an error it can read, not a dropped connection: the API's own response with
//! UNSUPPORTED_VERSION in its top-level error code (UNSUPPORTED_SASL_MECHANISM for a SASL
//! handshake: the lab speaks plaintext). APIs whose responses carry errors only per topic or
//! partition, and versions too old to have the top-level code, have no such answer; the
//! connection then closes with a warning naming the API, as before.

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

/// The error response for `key`, if its response type has a top-level error code.
pub fn answer(key: ApiKey) -> Option<ResponseKind> {
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
    )
}
