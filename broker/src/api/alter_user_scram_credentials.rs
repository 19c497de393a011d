//! AlterUserScramCredentials: the lab serves no SASL (plaintext on loopback, decision 35) and
//! keeps no SCRAM credentials, so it refuses to store one rather than pretend: an upsertion
//! answers UNSUPPORTED_SASL_MECHANISM with that reason, and a deletion RESOURCE_NOT_FOUND (no
//! credential exists), Kafka's answer for deleting a credential a user does not have. Kafka's
//! request checks come first: an empty name is UNACCEPTABLE_CREDENTIAL, a mechanism other than
//! SCRAM-SHA-256 (1) or SCRAM-SHA-512 (2) UNSUPPORTED_SASL_MECHANISM, and a user named twice
//! DUPLICATE_RESOURCE. One result per user, in the order first named.

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey};
use kafka_protocol::ResponseError;

use super::{str_bytes, ApiSpec, RequestContext};
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::AlterUserScramCredentials, min: 0, max: 0 };

pub fn handle(
    _node: &NodeState,
    _ctx: &RequestContext,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // (user, mechanism, is an upsertion), deletions first as Kafka lists them.
    let asked: Vec<(String, i8, bool)> =
        (req.deletions.iter().map(|d| (d.name.to_string(), d.mechanism, false)))
            .chain(req.upsertions.iter().map(|u| (u.name.to_string(), u.mechanism, true)))
            .collect();
    let mut users: Vec<&str> = Vec::new();
    for (name, _, _) in &asked {
        if !users.contains(&name.as_str()) {
            users.push(name);
        }
    }
    let results = users
        .into_iter()
        .map(|user| {
            let mine: Vec<&(String, i8, bool)> = asked.iter().filter(|a| a.0 == user).collect();
            let (code, message) = outcome(user, &mine);
            AlterUserScramCredentialsResult::default()
                .with_user(str_bytes(user.to_string()))
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(message)))
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

fn outcome(user: &str, alterations: &[&(String, i8, bool)]) -> (ResponseError, String) {
    if user.is_empty() {
        return (ResponseError::UnacceptableCredential, "a SCRAM user name may not be empty".into());
    }
    if let Some((_, mechanism, _)) = alterations.iter().find(|a| !(1..=2).contains(&a.1)) {
        return (
            ResponseError::UnsupportedSaslMechanism,
            format!("unknown SCRAM mechanism {mechanism} (1: SCRAM-SHA-256, 2: SCRAM-SHA-512)"),
        );
    }
    if alterations.len() > 1 {
        return (ResponseError::DuplicateResource, format!("user {user:?} is altered more than once"));
    }
    if alterations[0].2 {
        (
            ResponseError::UnsupportedSaslMechanism,
            "this lab serves no SASL (plaintext on loopback) and stores no SCRAM credentials".into(),
        )
    } else {
        (ResponseError::ResourceNotFound, format!("user {user:?} has no SCRAM credential to delete"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_gets_kafkas_code_for_what_was_asked() {
        let d = |n: &str, m: i8| (n.to_string(), m, false);
        let u = |n: &str, m: i8| (n.to_string(), m, true);
        let code = |alterations: &[(String, i8, bool)]| {
            let refs: Vec<&(String, i8, bool)> = alterations.iter().collect();
            outcome(&alterations[0].0, &refs).0
        };
        assert_eq!(code(&[u("", 1)]), ResponseError::UnacceptableCredential);
        assert_eq!(code(&[u("a", 3)]), ResponseError::UnsupportedSaslMechanism);
        assert_eq!(code(&[d("a", 1), u("a", 2)]), ResponseError::DuplicateResource);
        assert_eq!(code(&[d("a", 1)]), ResponseError::ResourceNotFound);
        let (refused, why) = outcome("a", &[&u("a", 1)]);
        assert_eq!(refused, ResponseError::UnsupportedSaslMechanism);
        assert!(why.contains("no SASL"), "{why}");
    }
}
