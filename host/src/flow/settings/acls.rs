//! Topic ACL sync: MM2's `syncTopicAcls` (`docs/mm2-facts.md`, "Topic ACL sync").
//!
//! Every interval the source's topic ACLs are read (`ResourceType.TOPIC`, any pattern), those
//! that MM2 would copy are mapped to the remote topics, and the ones the target lacks are
//! created. Which ACLs are copied and how they are rewritten is [`target_acl`], a pure function:
//! only LITERAL bindings of mirrored topics, never ALLOW WRITE (only Ferry writes to remote
//! topics), ALLOW ALL downgraded to ALLOW READ, everything else (DENY, READ, DESCRIBE...) as is,
//! with the same principal and host. ACLs are never deleted from the target, as in MM2: removing
//! a source ACL leaves the remote topic's copy in place.

use std::collections::{BTreeSet, HashMap};

use rdkafka::types::RDKafkaErrorCode;

use super::{SettingsContext, SettingsError};
use crate::kafka::ffi;
pub(crate) use crate::kafka::resources::{Operation, PatternType, Permission, TopicAcl};

/// The ACL MM2 creates on the target for source ACL `acl`, or `None` when it is not copied.
/// `remote_names` maps each mirrored source topic to its remote topic.
///
/// MM2's `shouldReplicateAcl` and `targetAclBinding`: LITERAL bindings of mirrored topics only;
/// ALLOW WRITE is dropped; ALLOW ALL becomes ALLOW READ; the rest is copied unchanged with the
/// resource renamed. Bindings with an operation or permission this client cannot name are not
/// copied (the broker would refuse them).
pub(crate) fn target_acl(acl: &TopicAcl, remote_names: &HashMap<&str, &str>) -> Option<TopicAcl> {
    if acl.pattern != PatternType::Literal {
        return None;
    }
    let remote = remote_names.get(acl.topic.as_str())?;
    if matches!(acl.operation, Operation::Unknown | Operation::Any)
        || matches!(acl.permission, Permission::Unknown | Permission::Any)
    {
        return None;
    }
    let operation = match (acl.permission, acl.operation) {
        (Permission::Allow, Operation::Write) => return None,
        (Permission::Allow, Operation::All) => Operation::Read,
        (_, operation) => operation,
    };
    Some(TopicAcl {
        topic: (*remote).to_owned(),
        pattern: PatternType::Literal,
        principal: acl.principal.clone(),
        host: acl.host.clone(),
        operation,
        permission: acl.permission,
    })
}

/// The target ACLs to create: what [`target_acl`] makes of `source`, minus what the target
/// already has, sorted and without duplicates.
pub(crate) fn missing_acls(
    source: &[TopicAcl],
    target: &[TopicAcl],
    remote_names: &HashMap<&str, &str>,
) -> Vec<TopicAcl> {
    let existing: BTreeSet<&TopicAcl> = target.iter().collect();
    let wanted: BTreeSet<TopicAcl> = source
        .iter()
        .filter_map(|acl| target_acl(acl, remote_names))
        .collect();
    wanted
        .into_iter()
        .filter(|acl| !existing.contains(acl))
        .collect()
}

/// What one ACL sync did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AclSyncOutcome {
    /// ACLs created on the target.
    pub(crate) created: u64,
    /// ACLs the target refused (logged one by one).
    pub(crate) failed: u64,
    /// Whether the target has no authorizer (creations failed with SECURITY_DISABLED; not
    /// logged one by one).
    pub(crate) target_security_disabled: bool,
}

/// One ACL sync of the flow's mirrored topics.
///
/// # Errors
/// When the source or target ACLs cannot be read or the create request fails as a whole.
/// Refusals of single ACLs are logged and counted in the outcome.
pub(crate) async fn sync_acls(context: &SettingsContext) -> Result<AclSyncOutcome, SettingsError> {
    let catalog = context.catalog();
    let remote_names: HashMap<&str, &str> = catalog
        .topics
        .iter()
        .map(|topic| (&*topic.source, &*topic.remote))
        .collect();
    if remote_names.is_empty() {
        return Ok(AclSyncOutcome::default());
    }
    let source = ffi::describe_topic_acls(&context.source)
        .await
        .map_err(|source| SettingsError::DescribeAcls {
            cluster: context.source.name().to_owned(),
            source,
        })?;
    if !source
        .iter()
        .any(|acl| target_acl(acl, &remote_names).is_some())
    {
        return Ok(AclSyncOutcome::default());
    }
    let target = ffi::describe_topic_acls(&context.target)
        .await
        .map_err(|source| SettingsError::DescribeAcls {
            cluster: context.target.name().to_owned(),
            source,
        })?;
    let missing = missing_acls(&source, &target, &remote_names);
    if missing.is_empty() {
        return Ok(AclSyncOutcome::default());
    }
    let results = ffi::create_acls(&context.target, missing.clone())
        .await
        .map_err(|source| SettingsError::CreateAcls {
            cluster: context.target.name().to_owned(),
            source,
        })?;
    let mut outcome = AclSyncOutcome::default();
    for (acl, result) in missing.iter().zip(results) {
        match result {
            Ok(()) => {
                outcome.created += 1;
                tracing::info!(flow = %context.flow, cluster = %context.target.name(), acl = %acl,
                    "Created topic ACL on the target.");
            }
            Err(ffi::NativeError::Failed {
                code: RDKafkaErrorCode::SecurityDisabled,
                ..
            }) => outcome.target_security_disabled = true,
            Err(error) => {
                outcome.failed += 1;
                tracing::warn!(flow = %context.flow, cluster = %context.target.name(), acl = %acl,
                    error = %crate::error_chain(&error),
                    "Creating a topic ACL on the target failed; retrying at the next ACL sync.");
            }
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        topic: &str,
        pattern: PatternType,
        principal: &str,
        operation: Operation,
        permission: Permission,
    ) -> TopicAcl {
        TopicAcl {
            topic: topic.to_owned(),
            pattern,
            principal: principal.to_owned(),
            host: "*".to_owned(),
            operation,
            permission,
        }
    }

    fn literal(topic: &str, operation: Operation, permission: Permission) -> TopicAcl {
        acl(
            topic,
            PatternType::Literal,
            "User:alice",
            operation,
            permission,
        )
    }

    fn check(source: TopicAcl, expected: Option<TopicAcl>) {
        let remote_names = HashMap::from([("orders", "A.orders")]);
        assert_eq!(target_acl(&source, &remote_names), expected, "{source}");
    }

    #[test]
    fn allow_read_is_copied_to_the_remote_topic() {
        check(
            literal("orders", Operation::Read, Permission::Allow),
            Some(literal("A.orders", Operation::Read, Permission::Allow)),
        );
    }

    #[test]
    fn allow_write_is_not_copied() {
        check(literal("orders", Operation::Write, Permission::Allow), None);
    }

    #[test]
    fn allow_all_becomes_allow_read() {
        check(
            literal("orders", Operation::All, Permission::Allow),
            Some(literal("A.orders", Operation::Read, Permission::Allow)),
        );
    }

    #[test]
    fn deny_is_copied_as_is_even_for_write_and_all() {
        for operation in [Operation::Write, Operation::All, Operation::Describe] {
            check(
                literal("orders", operation, Permission::Deny),
                Some(literal("A.orders", operation, Permission::Deny)),
            );
        }
    }

    #[test]
    fn other_allowed_operations_are_copied_as_is() {
        for operation in [
            Operation::Describe,
            Operation::DescribeConfigs,
            Operation::Alter,
            Operation::Delete,
        ] {
            check(
                literal("orders", operation, Permission::Allow),
                Some(literal("A.orders", operation, Permission::Allow)),
            );
        }
    }

    #[test]
    fn principal_and_host_are_kept() {
        let mut source = acl(
            "orders",
            PatternType::Literal,
            "User:bob",
            Operation::Read,
            Permission::Allow,
        );
        source.host = "10.0.0.7".to_owned();
        let mut expected = source.clone();
        expected.topic = "A.orders".to_owned();
        check(source, Some(expected));
    }

    #[test]
    fn prefixed_and_unmirrored_topics_are_not_copied() {
        check(
            acl(
                "orders",
                PatternType::Prefixed,
                "User:alice",
                Operation::Read,
                Permission::Allow,
            ),
            None,
        );
        check(
            literal("payments", Operation::Read, Permission::Allow),
            None,
        );
    }

    #[test]
    fn unknown_operations_and_permissions_are_not_copied() {
        check(
            literal("orders", Operation::Unknown, Permission::Allow),
            None,
        );
        check(
            literal("orders", Operation::Read, Permission::Unknown),
            None,
        );
    }

    #[test]
    fn only_missing_acls_are_created_once_each() {
        let remote_names = HashMap::from([("orders", "A.orders"), ("refunds", "A.refunds")]);
        let source = [
            literal("orders", Operation::Read, Permission::Allow),
            // ALLOW ALL and ALLOW READ map to the same target ACL: created once.
            literal("orders", Operation::All, Permission::Allow),
            literal("orders", Operation::Describe, Permission::Deny),
            literal("refunds", Operation::Read, Permission::Allow),
        ];
        let target = [
            literal("A.refunds", Operation::Read, Permission::Allow),
            // Target-only ACLs are left alone.
            literal("A.orders", Operation::Write, Permission::Deny),
        ];
        assert_eq!(
            missing_acls(&source, &target, &remote_names),
            [
                literal("A.orders", Operation::Read, Permission::Allow),
                literal("A.orders", Operation::Describe, Permission::Deny),
            ]
        );
    }
}
