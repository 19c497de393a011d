//! ACL bindings, as Kafka's CreateAcls / DescribeAcls / DeleteAcls see them: stored, described
//! and deleted exactly as a Kafka broker with an authorizer does, but never enforced (the lab
//! speaks plaintext on loopback and has no principals; every request is allowed).
//!
//! A single node keeps them in `acls.json` (the store's atomic metadata write); a cluster keeps
//! them in the controller's metadata, so every node answers the same. The rules here (what a
//! binding may hold, what a filter matches) are Kafka's `AclControlManager.validateNewAcl`,
//! `validateFilter`, `ResourcePatternFilter.matches` and `AccessControlEntryFilter.matches`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::log::LogStore;

const ACLS_FILE: &str = "acls.json";

/// Kafka's enum codes (`ResourceType`, `PatternType`, `AclOperation`, `AclPermissionType`).
pub mod code {
    pub const ANY: i8 = 1;
    /// Resource types: TOPIC 2, GROUP 3, CLUSTER 4, TRANSACTIONAL_ID 5, DELEGATION_TOKEN 6, USER 7.
    pub const RESOURCE_TYPES: std::ops::RangeInclusive<i8> = 2..=7;
    pub const MATCH: i8 = 2;
    pub const LITERAL: i8 = 3;
    pub const PREFIXED: i8 = 4;
    /// Operations: ALL 2, READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8,
    /// CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12,
    /// CREATE_TOKENS 13, DESCRIBE_TOKENS 14.
    pub const OPERATIONS: std::ops::RangeInclusive<i8> = 2..=14;
    /// Permissions: DENY 2, ALLOW 3.
    pub const PERMISSIONS: std::ops::RangeInclusive<i8> = 2..=3;
}

/// The `authorized_operations` bit sets that Metadata, DescribeCluster and DescribeGroups
/// answer when a client asks for them: bit *n* is operation code *n*. Nothing is enforced here
/// (decision 35), so every client may do every operation Kafka defines for the resource type
/// (as Kafka 3.x lists them for a principal a `*` ALLOW ALL binding covers).
pub mod authorized {
    const fn bits(ops: &[i8]) -> i32 {
        let mut out = 0;
        let mut i = 0;
        while i < ops.len() {
            out |= 1 << ops[i];
            i += 1;
        }
        out
    }
    /// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
    pub const TOPIC: i32 = bits(&[3, 4, 5, 6, 7, 8, 10, 11]);
    /// CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
    /// IDEMPOTENT_WRITE.
    pub const CLUSTER: i32 = bits(&[5, 7, 8, 9, 10, 11, 12]);
    /// READ, DELETE, DESCRIBE (Kafka 3.x; 4.0 adds the group configs' two).
    pub const GROUP: i32 = bits(&[3, 6, 8]);
}

/// Kafka's literal wildcard resource name: a LITERAL "*" binding applies to every name.
const WILDCARD: &str = "*";

/// One stored ACL: a resource pattern and an access control entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// What DescribeAcls and DeleteAcls select with; `None` names match any value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

/// The stored bindings: ordered (every node lists them alike) and without duplicates (creating
/// one that exists succeeds and changes nothing, as in Kafka).
pub type AclSet = BTreeSet<AclBinding>;

impl AclBinding {
    /// Kafka's checks on a new binding; the message is the INVALID_REQUEST answer's.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !code::RESOURCE_TYPES.contains(&self.resource_type) {
            return Err(format!("invalid resource type {}", self.resource_type));
        }
        if !matches!(self.pattern_type, code::LITERAL | code::PREFIXED) {
            return Err(format!("invalid pattern type {}: LITERAL or PREFIXED only", self.pattern_type));
        }
        if !code::OPERATIONS.contains(&self.operation) {
            return Err(format!("invalid operation {}", self.operation));
        }
        if !code::PERMISSIONS.contains(&self.permission) {
            return Err(format!("invalid permission type {}: DENY or ALLOW only", self.permission));
        }
        if self.resource_name.is_empty() {
            return Err("resource name should not be empty".into());
        }
        if !self.principal.contains(':') {
            return Err(format!(
                "could not parse principal from `{}` (no colon separates the principal type from its name)",
                self.principal
            ));
        }
        Ok(())
    }
}

impl AclFilter {
    /// Kafka refuses a filter with an unknown value in any field (ANY and MATCH are known).
    pub fn validate(&self) -> std::result::Result<(), String> {
        let known = |v: i8, range: std::ops::RangeInclusive<i8>| v == code::ANY || range.contains(&v);
        if !known(self.resource_type, code::RESOURCE_TYPES) {
            return Err(format!("unknown resource type filter {}", self.resource_type));
        }
        if !(code::ANY..=code::PREFIXED).contains(&self.pattern_type) {
            return Err(format!("unknown pattern type filter {}", self.pattern_type));
        }
        if !known(self.operation, code::OPERATIONS) {
            return Err(format!("unknown operation filter {}", self.operation));
        }
        if !known(self.permission, code::PERMISSIONS) {
            return Err(format!("unknown permission type filter {}", self.permission));
        }
        Ok(())
    }

    /// Kafka's matching: ANY matches every value; a MATCH pattern with a name selects the
    /// bindings that would apply to that name (the literal one, the literal wildcard "*", and
    /// every prefix of it); any other pattern type selects exactly that type and name.
    pub fn matches(&self, b: &AclBinding) -> bool {
        self.matches_pattern(b) && self.matches_entry(b)
    }

    fn matches_pattern(&self, b: &AclBinding) -> bool {
        if self.resource_type != code::ANY && self.resource_type != b.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, code::ANY | code::MATCH) && self.pattern_type != b.pattern_type {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type == code::ANY || self.pattern_type == b.pattern_type {
            return *name == b.resource_name;
        }
        match b.pattern_type {
            code::LITERAL => *name == b.resource_name || b.resource_name == WILDCARD,
            code::PREFIXED => name.starts_with(&b.resource_name),
            _ => false,
        }
    }

    fn matches_entry(&self, b: &AclBinding) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == code::ANY || self.operation == b.operation)
            && (self.permission == code::ANY || self.permission == b.permission)
    }
}

/// Adds bindings (already validated); ones already stored stay as they are.
pub fn create(set: &mut AclSet, bindings: &[AclBinding]) {
    set.extend(bindings.iter().cloned());
}

/// The bindings each filter matches, in the set's order.
pub fn describe(set: &AclSet, filter: &AclFilter) -> Vec<AclBinding> {
    set.iter().filter(|b| filter.matches(b)).cloned().collect()
}

/// Removes what the filters match and returns, per filter, the bindings it matched (as Kafka
/// does, a binding two filters match is listed under both, and removed once).
pub fn delete(set: &mut AclSet, filters: &[AclFilter]) -> Vec<Vec<AclBinding>> {
    let matched: Vec<Vec<AclBinding>> = filters.iter().map(|f| describe(set, f)).collect();
    for b in matched.iter().flatten() {
        set.remove(b);
    }
    matched
}

/// A single node's bindings, persisted in `acls.json` before a change is acknowledged.
pub struct Acls {
    store: Arc<LogStore>,
    set: Mutex<AclSet>,
}

impl Acls {
    pub fn load(store: Arc<LogStore>) -> Result<Acls> {
        let set: AclSet = store.read_json_meta(ACLS_FILE, "ACL file")?.unwrap_or_default();
        Ok(Acls { store, set: Mutex::new(set) })
    }

    pub fn create(&self, bindings: &[AclBinding]) -> Result<()> {
        let mut set = self.lock();
        let mut next = set.clone();
        create(&mut next, bindings);
        self.persist(&next)?;
        *set = next;
        Ok(())
    }

    pub fn describe(&self, filter: &AclFilter) -> Vec<AclBinding> {
        describe(&self.lock(), filter)
    }

    pub fn delete(&self, filters: &[AclFilter]) -> Result<Vec<Vec<AclBinding>>> {
        let mut set = self.lock();
        let mut next = set.clone();
        let matched = delete(&mut next, filters);
        if next.len() != set.len() {
            self.persist(&next)?;
        }
        *set = next;
        Ok(matched)
    }

    fn persist(&self, set: &AclSet) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(set).expect("ACL bindings serialize");
        self.store.write_meta(ACLS_FILE, &bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AclSet> {
        // Changes are swapped in whole after their write, so a poisoned lock holds a whole set.
        self.set.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: i8 = 2;
    const GROUP: i8 = 3;
    const READ: i8 = 3;
    const WRITE: i8 = 4;
    const ALLOW: i8 = 3;

    fn binding(name: &str, pattern: i8, principal: &str, op: i8) -> AclBinding {
        AclBinding {
            resource_type: TOPIC,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: principal.into(),
            host: "*".into(),
            operation: op,
            permission: ALLOW,
        }
    }

    fn filter(name: Option<&str>, pattern: i8) -> AclFilter {
        AclFilter {
            resource_type: TOPIC,
            resource_name: name.map(Into::into),
            pattern_type: pattern,
            principal: None,
            host: None,
            operation: code::ANY,
            permission: code::ANY,
        }
    }

    fn names(v: &[AclBinding]) -> Vec<(&str, i8)> {
        v.iter().map(|b| (b.resource_name.as_str(), b.pattern_type)).collect()
    }

    fn sample() -> AclSet {
        let mut set = AclSet::new();
        create(
            &mut set,
            &[
                binding("orders", code::LITERAL, "User:a", READ),
                binding("ord", code::PREFIXED, "User:b", WRITE),
                binding("*", code::LITERAL, "User:c", READ),
                binding("orders-eu", code::LITERAL, "User:a", READ),
            ],
        );
        set
    }

    #[test]
    fn match_selects_what_applies_to_a_name_and_literal_selects_exactly() {
        let set = sample();
        let by_match = describe(&set, &filter(Some("orders"), code::MATCH));
        assert_eq!(names(&by_match), [("*", 3), ("ord", 4), ("orders", 3)]);
        let literal = describe(&set, &filter(Some("orders"), code::LITERAL));
        assert_eq!(names(&literal), [("orders", 3)]);
        let prefixed = describe(&set, &filter(Some("orders"), code::PREFIXED));
        assert!(prefixed.is_empty(), "a PREFIXED filter names the prefix exactly: {prefixed:?}");
        let any_named = describe(&set, &filter(Some("ord"), code::ANY));
        assert_eq!(names(&any_named), [("ord", 4)]);
        assert_eq!(describe(&set, &filter(None, code::ANY)).len(), 4);
        assert_eq!(describe(&set, &filter(None, code::LITERAL)).len(), 3);
    }

    #[test]
    fn entry_fields_and_resource_type_narrow_the_match() {
        let set = sample();
        let mut f = filter(None, code::ANY);
        f.principal = Some("User:a".into());
        assert_eq!(describe(&set, &f).len(), 2);
        f.operation = WRITE;
        assert!(describe(&set, &f).is_empty());
        let mut g = filter(None, code::ANY);
        g.resource_type = GROUP;
        assert!(describe(&set, &g).is_empty());
        g.resource_type = code::ANY;
        g.host = Some("10.0.0.1".into());
        assert!(describe(&set, &g).is_empty(), "host is matched exactly, '*' is not a wildcard here");
    }

    #[test]
    fn delete_lists_matches_per_filter_and_creating_twice_stores_once() {
        let mut set = sample();
        create(&mut set, &[binding("orders", code::LITERAL, "User:a", READ)]);
        assert_eq!(set.len(), 4);
        let matched =
            delete(&mut set, &[filter(Some("orders"), code::LITERAL), filter(Some("orders"), code::MATCH)]);
        assert_eq!(names(&matched[0]), [("orders", 3)]);
        assert_eq!(matched[1].len(), 3, "the second filter sees the set as it was: {matched:?}");
        assert_eq!(names(&set.iter().cloned().collect::<Vec<_>>()), [("orders-eu", 3)]);
    }

    #[test]
    fn invalid_bindings_and_filters_are_refused() {
        assert!(binding("t", code::LITERAL, "User:a", READ).validate().is_ok());
        for bad in [
            binding("t", code::MATCH, "User:a", READ),
            binding("t", code::ANY, "User:a", READ),
            binding("t", code::LITERAL, "nocolon", READ),
            binding("", code::LITERAL, "User:a", READ),
            binding("t", code::LITERAL, "User:a", code::ANY),
            AclBinding { permission: code::ANY, ..binding("t", code::LITERAL, "User:a", READ) },
            AclBinding { resource_type: code::ANY, ..binding("t", code::LITERAL, "User:a", READ) },
        ] {
            assert!(bad.validate().is_err(), "{bad:?} accepted");
        }
        assert!(filter(None, code::MATCH).validate().is_ok());
        assert!(filter(None, 0).validate().is_err());
        assert!(AclFilter { operation: 0, ..filter(None, code::ANY) }.validate().is_err());
        assert!(AclFilter { resource_type: 9, ..filter(None, code::ANY) }.validate().is_err());
    }

    #[test]
    fn a_single_node_keeps_its_bindings_across_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = LogStore::open(dir.path(), crate::FsyncPolicy::Always, 1 << 20).unwrap();
        let acls = Acls::load(Arc::clone(&store)).unwrap();
        acls.create(&[
            binding("t", code::LITERAL, "User:a", READ),
            binding("u", code::PREFIXED, "User:b", WRITE),
        ])
        .unwrap();
        acls.delete(&[filter(Some("u"), code::PREFIXED)]).unwrap();
        drop(acls);
        let again = Acls::load(store).unwrap();
        assert_eq!(names(&again.describe(&filter(None, code::ANY))), [("t", 3)]);
    }
}
