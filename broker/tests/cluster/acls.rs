//! ACL admin APIs in a cluster, over the wire with kafka-protocol's codec (librdkafka's admin
//! client in the rdkafka crate has no ACL calls): bindings created through one node are listed
//! by every node, deleted through another by Kafka's filter rules, and survive a restart of the
//! whole cluster (they live in the controller's log). Every served version is exercised.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    ApiKey, CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::admin::round_trip;
use crate::harness::{unique, Cluster};
use crate::wait::wait_for;

const TOPIC: i8 = 2;
const ANY: i8 = 1;
const MATCH: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const ALLOW: i8 = 3;
const VERSIONS: std::ops::RangeInclusive<i16> = 1..=3;
const TIMEOUT: Duration = Duration::from_secs(20);

/// (resource name, pattern type, principal, operation), the fields these tests vary.
type Acl = (String, i8, String, i8);

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn creation(name: &str, pattern: i8, principal: &str, operation: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(TOPIC)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(operation)
        .with_permission_type(ALLOW)
}

/// Every binding on TOPIC resources that a MATCH filter on `name` selects, as node `id` lists them.
fn describe(c: &Cluster, id: i32, name: &str, version: i16) -> Result<BTreeSet<Acl>> {
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(TOPIC)
        .with_resource_name_filter(Some(s(name)))
        .with_pattern_type_filter(MATCH)
        // The codec's defaults are empty strings, which match nothing: None matches any.
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(ANY);
    let r: DescribeAclsResponse = round_trip(&c.bootstrap(id), ApiKey::DescribeAcls, version, &request)?;
    ensure!(
        r.error_code == 0,
        "DescribeAcls v{version} on node {id}: {:?} {:?}",
        r.error_code,
        r.error_message
    );
    let mut acls = BTreeSet::new();
    for res in r.resources {
        ensure!(res.resource_type == TOPIC, "a TOPIC filter listed {res:?}");
        for a in res.acls {
            ensure!(a.host.as_str() == "*" && a.permission_type == ALLOW, "{a:?}");
            acls.insert((
                res.resource_name.to_string(),
                res.pattern_type,
                a.principal.to_string(),
                a.operation,
            ));
        }
    }
    Ok(acls)
}

/// Waits until every running node lists `expected` for `name` (they apply the controller log
/// each at its own pace), at every version.
fn every_node_lists(c: &mut Cluster, name: &str, expected: &BTreeSet<Acl>) -> Result<()> {
    for id in c.running() {
        for v in VERSIONS {
            let mut seen = BTreeSet::new();
            wait_for(&format!("node {id} to list {expected:?} at v{v}"), TIMEOUT, || {
                seen = describe(c, id, name, v)?;
                Ok((seen == *expected).then_some(()))
            })
            .with_context(|| format!("node {id} lists {seen:?}"))?;
        }
    }
    Ok(())
}

#[test]
fn acls_are_stored_by_the_controller_matched_like_kafka_and_survive_a_restart() -> Result<()> {
    let mut c = Cluster::start(3)?;
    let ids = c.ids();
    let topic = unique("acl");
    let acl =
        |name: &str, pattern, principal: &str, op| (name.to_string(), pattern, principal.to_string(), op);

    // One creation per version through node 1 (the same binding twice is stored once), plus one
    // that Kafka refuses: MATCH is a filter type, not a binding's.
    let creations = [
        creation(&topic, LITERAL, "User:a", READ),
        creation(&topic[..4], PREFIXED, "User:b", WRITE),
        creation("*", LITERAL, "User:c", READ),
    ];
    for v in VERSIONS {
        let request = CreateAclsRequest::default()
            .with_creations(vec![creations[v as usize - 1].clone(), creation(&topic, MATCH, "User:x", READ)]);
        let r: CreateAclsResponse = round_trip(&c.bootstrap(ids[0]), ApiKey::CreateAcls, v, &request)?;
        ensure!(r.results.len() == 2, "CreateAcls v{v}: {r:?}");
        ensure!(r.results[0].error_code == 0, "CreateAcls v{v} refused a valid binding: {:?}", r.results[0]);
        ensure!(
            r.results[1].error_code == ResponseError::InvalidRequest.code(),
            "CreateAcls v{v} took a MATCH binding: {:?}",
            r.results[1]
        );
    }
    let other = unique("other");
    let r: CreateAclsResponse = round_trip(
        &c.bootstrap(ids[1]),
        ApiKey::CreateAcls,
        3,
        &CreateAclsRequest::default().with_creations(vec![
            creation(&other, LITERAL, "User:a", WRITE),
            creation(&topic, LITERAL, "User:a", READ),
        ]),
    )?;
    ensure!(r.results.iter().all(|x| x.error_code == 0), "{r:?}");

    // MATCH on the topic's name: its literal binding, the literal wildcard and the prefix.
    let all = BTreeSet::from([
        acl(&topic, LITERAL, "User:a", READ),
        acl(&topic[..4], PREFIXED, "User:b", WRITE),
        acl("*", LITERAL, "User:c", READ),
    ]);
    every_node_lists(&mut c, &topic, &all)?;
    every_node_lists(
        &mut c,
        &other,
        &BTreeSet::from([acl(&other, LITERAL, "User:a", WRITE), acl("*", LITERAL, "User:c", READ)]),
    )?;

    // Delete through node 2: a LITERAL filter takes exactly its name; an ANY-pattern filter on
    // principal User:b takes the prefixed binding; a filter with an unknown operation is refused.
    let filter = |name: Option<&str>, pattern: i8, principal: Option<&str>, op: i8| {
        DeleteAclsFilter::default()
            .with_resource_type_filter(TOPIC)
            .with_resource_name_filter(name.map(s))
            .with_pattern_type_filter(pattern)
            .with_principal_filter(principal.map(s))
            .with_host_filter(None)
            .with_operation(op)
            .with_permission_type(ANY)
    };
    let request = DeleteAclsRequest::default().with_filters(vec![
        filter(Some(&topic), LITERAL, None, ANY),
        filter(None, ANY, Some("User:b"), ANY),
        filter(None, ANY, None, 0),
    ]);
    let r: DeleteAclsResponse = round_trip(&c.bootstrap(ids[1]), ApiKey::DeleteAcls, 1, &request)?;
    ensure!(r.filter_results.len() == 3, "{r:?}");
    let names = |i: usize| -> Vec<(String, i8)> {
        r.filter_results[i]
            .matching_acls
            .iter()
            .map(|m| (m.resource_name.to_string(), m.pattern_type))
            .collect()
    };
    ensure!(r.filter_results[0].error_code == 0 && names(0) == [(topic.clone(), LITERAL)], "{r:?}");
    ensure!(r.filter_results[1].error_code == 0 && names(1) == [(topic[..4].to_string(), PREFIXED)], "{r:?}");
    ensure!(r.filter_results[2].error_code == ResponseError::InvalidRequest.code(), "{r:?}");
    let left = BTreeSet::from([acl("*", LITERAL, "User:c", READ)]);
    every_node_lists(&mut c, &topic, &left)?;

    // DeleteAcls at v2 and v3 (flexible versions) of something that is not there: no match.
    for v in [2, 3] {
        let request =
            DeleteAclsRequest::default().with_filters(vec![filter(Some("nothing"), LITERAL, None, ANY)]);
        let r: DeleteAclsResponse = round_trip(&c.bootstrap(ids[2]), ApiKey::DeleteAcls, v, &request)?;
        ensure!(r.filter_results.len() == 1 && r.filter_results[0].matching_acls.is_empty(), "v{v}: {r:?}");
    }

    // The whole cluster stops and starts again: the bindings come back from the controller log.
    for &id in &ids {
        c.stop(id)?;
    }
    c.start_nodes(&ids)?;
    every_node_lists(&mut c, &topic, &left)?;
    every_node_lists(
        &mut c,
        &other,
        &BTreeSet::from([acl(&other, LITERAL, "User:a", WRITE), acl("*", LITERAL, "User:c", READ)]),
    )
}
