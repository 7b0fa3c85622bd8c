//! Topic ACLs: DescribeAcls and CreateAcls, and the mapping of librdkafka's ACL enums to
//! `kafka::resources`.

use std::ffi::c_char;
use std::ptr;
use std::sync::Arc;

use rdkafka::ClientContext;
use rdkafka::client::Client;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka_sys::bindings as sys;

use crate::kafka::Admin;
use crate::kafka::resources::{Operation, PatternType, Permission, TopicAcl};

use super::{
    ERRSTR_SIZE, NativeError, blocking, c_string, error_result, errstr_text, owned_string, request,
    wrong_event,
};

/// Every topic ACL of the cluster (`ResourceType.TOPIC`, any name, any pattern type).
///
/// # Errors
/// When the request fails or times out. A cluster without an authorizer answers with no ACLs
/// (see the module docs).
pub(crate) async fn describe_topic_acls(admin: &Arc<Admin>) -> Result<Vec<TopicAcl>, NativeError> {
    let admin = Arc::clone(admin);
    blocking(move || describe_topic_acls_blocking(admin.client())).await
}

/// Creates `acls` (topic resources). Returns one result per ACL, in order: creating an ACL that
/// exists is not an error.
///
/// # Errors
/// When the request as a whole fails or times out.
pub(crate) async fn create_acls(
    admin: &Arc<Admin>,
    acls: Vec<TopicAcl>,
) -> Result<Vec<Result<(), NativeError>>, NativeError> {
    let admin = Arc::clone(admin);
    blocking(move || create_acls_blocking(admin.client(), &acls)).await
}

fn describe_topic_acls_blocking<C: ClientContext>(
    client: &Client<C>,
) -> Result<Vec<TopicAcl>, NativeError> {
    let mut errstr = [0 as c_char; ERRSTR_SIZE];
    // SAFETY: null name, principal and host mean "any" in a filter; `errstr` is a writable
    // buffer of `ERRSTR_SIZE` bytes that librdkafka NUL-terminates.
    let filter = unsafe {
        sys::rd_kafka_AclBindingFilter_new(
            sys::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
            ptr::null(),
            sys::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_ANY,
            ptr::null(),
            ptr::null(),
            sys::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_ANY,
            sys::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ANY,
            errstr.as_mut_ptr(),
            ERRSTR_SIZE,
        )
    };
    let filter = AclBindings::owning(filter, &errstr)?;
    let event = request(
        client,
        sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBEACLS,
        |handle, options, queue| {
            // SAFETY: every pointer is live (guards held by the caller until the result event
            // arrived); librdkafka copies the filter and options.
            unsafe { sys::rd_kafka_DescribeAcls(handle, filter.first(), options, queue) }
        },
    )?;
    // SAFETY: `event` is a live event; the accessor returns null for another event type.
    let result = unsafe { sys::rd_kafka_event_DescribeAcls_result(event.0) };
    if result.is_null() {
        return Err(wrong_event("DescribeAcls"));
    }
    let mut count = 0;
    // SAFETY: `result` is non-null and lives as long as `event`; `count` receives the length.
    let bindings = unsafe { sys::rd_kafka_DescribeAcls_result_acls(result, &mut count) };
    let bindings = if bindings.is_null() || count == 0 {
        &[][..]
    } else {
        // SAFETY: librdkafka returns an array of `count` binding pointers owned by `event`,
        // which outlives this slice.
        unsafe { std::slice::from_raw_parts(bindings, count) }
    };
    let mut acls = Vec::with_capacity(bindings.len());
    for &binding in bindings {
        // SAFETY: `binding` is a live binding owned by `event`; the string getters return
        // NUL-terminated strings owned by it (or null), copied by `owned_string` before `event`
        // is destroyed.
        let acl = unsafe {
            TopicAcl {
                topic: owned_string(sys::rd_kafka_AclBinding_name(binding)),
                pattern: pattern_from_native(sys::rd_kafka_AclBinding_resource_pattern_type(
                    binding,
                )),
                principal: owned_string(sys::rd_kafka_AclBinding_principal(binding)),
                host: owned_string(sys::rd_kafka_AclBinding_host(binding)),
                operation: operation_from_native(sys::rd_kafka_AclBinding_operation(binding)),
                permission: permission_from_native(sys::rd_kafka_AclBinding_permission_type(
                    binding,
                )),
            }
        };
        acls.push(acl);
    }
    Ok(acls)
}

fn create_acls_blocking<C: ClientContext>(
    client: &Client<C>,
    acls: &[TopicAcl],
) -> Result<Vec<Result<(), NativeError>>, NativeError> {
    if acls.is_empty() {
        return Ok(Vec::new());
    }
    let mut bindings = AclBindings(Vec::with_capacity(acls.len()));
    for acl in acls {
        let name = c_string(&acl.topic)?;
        let principal = c_string(&acl.principal)?;
        let host = c_string(&acl.host)?;
        let mut errstr = [0 as c_char; ERRSTR_SIZE];
        // SAFETY: the strings are NUL-terminated and live across the call (librdkafka copies
        // them); `errstr` is a writable buffer of `ERRSTR_SIZE` bytes.
        let binding = unsafe {
            sys::rd_kafka_AclBinding_new(
                sys::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                name.as_ptr(),
                pattern_to_native(acl.pattern),
                principal.as_ptr(),
                host.as_ptr(),
                operation_to_native(acl.operation),
                permission_to_native(acl.permission),
                errstr.as_mut_ptr(),
                ERRSTR_SIZE,
            )
        };
        if binding.is_null() {
            return Err(NativeError::InvalidArgument(errstr_text(&errstr)));
        }
        bindings.0.push(binding);
    }
    let event = request(
        client,
        sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEACLS,
        |handle, options, queue| {
            // SAFETY: `bindings` holds `len` live bindings until the result event arrived;
            // librdkafka copies them and the options.
            unsafe {
                sys::rd_kafka_CreateAcls(
                    handle,
                    bindings.0.as_mut_ptr(),
                    bindings.0.len(),
                    options,
                    queue,
                )
            }
        },
    )?;
    // SAFETY: `event` is a live event; the accessor returns null for another event type.
    let result = unsafe { sys::rd_kafka_event_CreateAcls_result(event.0) };
    if result.is_null() {
        return Err(wrong_event("CreateAcls"));
    }
    let mut count = 0;
    // SAFETY: `result` is non-null and lives as long as `event`.
    let results = unsafe { sys::rd_kafka_CreateAcls_result_acls(result, &mut count) };
    let results = if results.is_null() {
        &[][..]
    } else {
        // SAFETY: an array of `count` result pointers owned by `event`, which outlives it.
        unsafe { std::slice::from_raw_parts(results, count) }
    };
    // The broker answers creations in request order.
    let mut outcomes = Vec::with_capacity(acls.len());
    for index in 0..acls.len() {
        let Some(&acl_result) = results.get(index) else {
            outcomes.push(Err(NativeError::Failed {
                code: RDKafkaErrorCode::Fail,
                message: "no result for this ACL in the response".to_owned(),
            }));
            continue;
        };
        // SAFETY: `acl_result` is a live result owned by `event`, and so is its error (or
        // null), which is read before `event` is destroyed.
        let outcome = unsafe { error_result(sys::rd_kafka_acl_result_error(acl_result)) };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Destroys ACL bindings (and binding filters, the same type) this module created.
struct AclBindings(Vec<*mut sys::rd_kafka_AclBinding_t>);

impl AclBindings {
    /// Takes ownership of one new binding, or returns librdkafka's message when it is null.
    fn owning(
        binding: *mut sys::rd_kafka_AclBinding_t,
        errstr: &[c_char],
    ) -> Result<AclBindings, NativeError> {
        if binding.is_null() {
            return Err(NativeError::InvalidArgument(errstr_text(errstr)));
        }
        Ok(AclBindings(vec![binding]))
    }

    /// The first binding (the filter of a describe request).
    fn first(&self) -> *mut sys::rd_kafka_AclBinding_t {
        self.0.first().copied().unwrap_or(ptr::null_mut())
    }
}

impl Drop for AclBindings {
    fn drop(&mut self) {
        for &binding in &self.0 {
            // SAFETY: created by `rd_kafka_AclBinding(Filter)_new`, non-null, destroyed once.
            unsafe { sys::rd_kafka_AclBinding_destroy(binding) }
        }
    }
}

fn pattern_from_native(pattern: sys::rd_kafka_ResourcePatternType_t) -> PatternType {
    use sys::rd_kafka_ResourcePatternType_t as Native;
    match pattern {
        Native::RD_KAFKA_RESOURCE_PATTERN_LITERAL => PatternType::Literal,
        Native::RD_KAFKA_RESOURCE_PATTERN_PREFIXED => PatternType::Prefixed,
        Native::RD_KAFKA_RESOURCE_PATTERN_MATCH => PatternType::Match,
        Native::RD_KAFKA_RESOURCE_PATTERN_ANY => PatternType::Any,
        _ => PatternType::Unknown,
    }
}

fn pattern_to_native(pattern: PatternType) -> sys::rd_kafka_ResourcePatternType_t {
    use sys::rd_kafka_ResourcePatternType_t as Native;
    match pattern {
        PatternType::Literal => Native::RD_KAFKA_RESOURCE_PATTERN_LITERAL,
        PatternType::Prefixed => Native::RD_KAFKA_RESOURCE_PATTERN_PREFIXED,
        PatternType::Match => Native::RD_KAFKA_RESOURCE_PATTERN_MATCH,
        PatternType::Any => Native::RD_KAFKA_RESOURCE_PATTERN_ANY,
        PatternType::Unknown => Native::RD_KAFKA_RESOURCE_PATTERN_UNKNOWN,
    }
}

/// librdkafka's operations and ours, one to one.
const OPERATIONS: [(sys::rd_kafka_AclOperation_t, Operation); 13] = {
    use sys::rd_kafka_AclOperation_t as Native;
    [
        (Native::RD_KAFKA_ACL_OPERATION_UNKNOWN, Operation::Unknown),
        (Native::RD_KAFKA_ACL_OPERATION_ANY, Operation::Any),
        (Native::RD_KAFKA_ACL_OPERATION_ALL, Operation::All),
        (Native::RD_KAFKA_ACL_OPERATION_READ, Operation::Read),
        (Native::RD_KAFKA_ACL_OPERATION_WRITE, Operation::Write),
        (Native::RD_KAFKA_ACL_OPERATION_CREATE, Operation::Create),
        (Native::RD_KAFKA_ACL_OPERATION_DELETE, Operation::Delete),
        (Native::RD_KAFKA_ACL_OPERATION_ALTER, Operation::Alter),
        (Native::RD_KAFKA_ACL_OPERATION_DESCRIBE, Operation::Describe),
        (
            Native::RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION,
            Operation::ClusterAction,
        ),
        (
            Native::RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS,
            Operation::DescribeConfigs,
        ),
        (
            Native::RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS,
            Operation::AlterConfigs,
        ),
        (
            Native::RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE,
            Operation::IdempotentWrite,
        ),
    ]
};

fn operation_from_native(operation: sys::rd_kafka_AclOperation_t) -> Operation {
    OPERATIONS
        .iter()
        .find(|(native, _)| *native == operation)
        .map_or(Operation::Unknown, |(_, ours)| *ours)
}

fn operation_to_native(operation: Operation) -> sys::rd_kafka_AclOperation_t {
    OPERATIONS
        .iter()
        .find(|(_, ours)| *ours == operation)
        .map_or(
            sys::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_UNKNOWN,
            |(native, _)| *native,
        )
}

fn permission_from_native(permission: sys::rd_kafka_AclPermissionType_t) -> Permission {
    use sys::rd_kafka_AclPermissionType_t as Native;
    match permission {
        Native::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW => Permission::Allow,
        Native::RD_KAFKA_ACL_PERMISSION_TYPE_DENY => Permission::Deny,
        Native::RD_KAFKA_ACL_PERMISSION_TYPE_ANY => Permission::Any,
        _ => Permission::Unknown,
    }
}

fn permission_to_native(permission: Permission) -> sys::rd_kafka_AclPermissionType_t {
    use sys::rd_kafka_AclPermissionType_t as Native;
    match permission {
        Permission::Allow => Native::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
        Permission::Deny => Native::RD_KAFKA_ACL_PERMISSION_TYPE_DENY,
        Permission::Any => Native::RD_KAFKA_ACL_PERMISSION_TYPE_ANY,
        Permission::Unknown => Native::RD_KAFKA_ACL_PERMISSION_TYPE_UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_round_trips() {
        for (native, ours) in OPERATIONS {
            assert_eq!(operation_from_native(native), ours);
            assert_eq!(operation_to_native(ours), native);
        }
    }
}
