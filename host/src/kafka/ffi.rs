//! The librdkafka calls rdkafka 0.39 does not wrap: the admin calls describe topic ACLs, create
//! ACLs, incremental AlterConfigs (KIP-339), list groups, describe a group, and list and alter
//! consumer group offsets, issued on an existing [`Admin`]'s client handle; a client's cached high
//! watermark of a partition ([`cached_high_watermark`], no request); and, in debug builds, a
//! fabricated fatal producer error for tests ([`inject_fatal_error`]).
//!
//! One of the host's two reviewed places with `unsafe` code (the other loads precompiled
//! plugins, `plugins/engine.rs`). Every call follows one pattern
//! ([`request`]): a private result queue (`rd_kafka_queue_new`), admin options with a request
//! timeout, the request, one `rd_kafka_queue_poll` for its result event, and owned Rust values
//! copied out of the event before it is destroyed. Every librdkafka object is held by a guard
//! that destroys it on drop, so no path leaks one. librdkafka copies the request arguments (ACL
//! bindings, config resources, options) when the request is enqueued, so they may be destroyed
//! as soon as the call returns. The public functions are safe, run on the blocking pool and
//! return owned values.
//!
//! rdkafka's legacy `alter_configs` is deliberately not used: it replaces a topic's whole dynamic
//! configuration, wiping target-only settings.
//!
//! A librdkafka 2.12 quirk to know: the DescribeAcls response's top-level error code (e.g.
//! SECURITY_DISABLED from a broker without an authorizer, or an authorisation failure) is read
//! but not reported; such a cluster answers with an empty list of ACLs.

#![allow(
    unsafe_code,
    reason = "the FFI boundary to librdkafka's admin API; each block states why it is sound"
)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char};
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::client::Client;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka_sys::bindings as sys;

use super::resources::{
    ConfigOp, GroupCommit, GroupDescription, GroupMember, GroupOffset, Operation, PatternType,
    Permission, TopicAcl,
};
use super::{Admin, REQUEST_TIMEOUT};

/// How long to wait for a result event beyond the request timeout (librdkafka always emits one,
/// `_TIMED_OUT` at the latest, once the request timeout passed).
const POLL_GRACE: Duration = Duration::from_secs(5);

/// Size of the buffers librdkafka writes argument errors into.
const ERRSTR_SIZE: usize = 512;

/// Errors of the native admin calls. The caller adds the cluster.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NativeError {
    /// librdkafka or the broker reported an error, for the request or for one item of it.
    #[error("{code:?}: {message}")]
    Failed {
        /// The error code.
        code: RDKafkaErrorCode,
        /// librdkafka's or the broker's message.
        message: String,
    },
    /// No result event arrived in time.
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
    /// An argument librdkafka refused (e.g. a name with a NUL byte).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The blocking task did not complete (the runtime is shutting down).
    #[error("the request was cancelled")]
    Cancelled,
}

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

/// Applies `changes` (topic name, operations) with IncrementalAlterConfigs. Each topic's
/// operations are applied atomically; topics succeed or fail independently. Returns one result
/// per topic, in order.
///
/// # Errors
/// When the request as a whole fails or times out.
pub(crate) async fn alter_topic_configs(
    admin: &Arc<Admin>,
    changes: Vec<(String, Vec<ConfigOp>)>,
) -> Result<Vec<Result<(), NativeError>>, NativeError> {
    let admin = Arc::clone(admin);
    blocking(move || alter_topic_configs_blocking(admin.client(), &changes)).await
}

async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, NativeError> + Send + 'static,
) -> Result<T, NativeError> {
    tokio::task::spawn_blocking(call)
        .await
        .unwrap_or(Err(NativeError::Cancelled))
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

fn alter_topic_configs_blocking<C: ClientContext>(
    client: &Client<C>,
    changes: &[(String, Vec<ConfigOp>)],
) -> Result<Vec<Result<(), NativeError>>, NativeError> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let mut resources = ConfigResources(Vec::with_capacity(changes.len()));
    for (topic, ops) in changes {
        let topic = c_string(topic)?;
        // SAFETY: `topic` is NUL-terminated and copied by librdkafka.
        let resource = unsafe {
            sys::rd_kafka_ConfigResource_new(
                sys::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                topic.as_ptr(),
            )
        };
        if resource.is_null() {
            return Err(NativeError::InvalidArgument(format!(
                "topic {topic:?} is not a config resource name"
            )));
        }
        resources.0.push(resource);
        for op in ops {
            let (name, op_type, value) = match op {
                ConfigOp::Set { name, value } => (
                    name,
                    sys::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                    Some(c_string(value)?),
                ),
                ConfigOp::Delete { name } => (
                    name,
                    sys::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE,
                    None,
                ),
            };
            let name = c_string(name)?;
            let value_ptr = value.as_ref().map_or(ptr::null(), |value| value.as_ptr());
            // SAFETY: `resource` is live (owned by `resources`); name and value are
            // NUL-terminated and copied; a null value is allowed with DELETE only, which is the
            // only case passing it.
            let error = unsafe {
                sys::rd_kafka_ConfigResource_add_incremental_config(
                    resource,
                    name.as_ptr(),
                    op_type,
                    value_ptr,
                )
            };
            if !error.is_null() {
                // SAFETY: the caller owns a returned error: read it, then destroy it once.
                let message = unsafe {
                    let message = owned_string(sys::rd_kafka_error_string(error));
                    sys::rd_kafka_error_destroy(error);
                    message
                };
                return Err(NativeError::InvalidArgument(message));
            }
        }
    }
    let event = request(
        client,
        sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
        |handle, options, queue| {
            // SAFETY: `resources` holds `len` live resources until the result event arrived;
            // librdkafka copies them and the options.
            unsafe {
                sys::rd_kafka_IncrementalAlterConfigs(
                    handle,
                    resources.0.as_mut_ptr(),
                    resources.0.len(),
                    options,
                    queue,
                )
            }
        },
    )?;
    // SAFETY: `event` is a live event; the accessor returns null for another event type.
    let result = unsafe { sys::rd_kafka_event_IncrementalAlterConfigs_result(event.0) };
    if result.is_null() {
        return Err(wrong_event("IncrementalAlterConfigs"));
    }
    let mut count = 0;
    // SAFETY: `result` is non-null and lives as long as `event`.
    let results =
        unsafe { sys::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count) };
    let results = if results.is_null() {
        &[][..]
    } else {
        // SAFETY: an array of `count` resource pointers owned by `event`, which outlives it.
        unsafe { std::slice::from_raw_parts(results, count) }
    };
    let mut by_topic = HashMap::with_capacity(results.len());
    for &resource in results {
        // SAFETY: a live resource owned by `event`; name and error string are NUL-terminated
        // (or null) and owned by it, copied before `event` is destroyed.
        let (topic, code, message) = unsafe {
            (
                owned_string(sys::rd_kafka_ConfigResource_name(resource)),
                sys::rd_kafka_ConfigResource_error(resource),
                owned_string(sys::rd_kafka_ConfigResource_error_string(resource)),
            )
        };
        let outcome = if code == sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            Ok(())
        } else {
            Err(NativeError::Failed {
                code: code.into(),
                message,
            })
        };
        by_topic.insert(topic, outcome);
    }
    Ok(changes
        .iter()
        .map(|(topic, _)| {
            by_topic.remove(topic).unwrap_or_else(|| {
                Err(NativeError::Failed {
                    code: RDKafkaErrorCode::Fail,
                    message: "no result for this topic in the response".to_owned(),
                })
            })
        })
        .collect())
}

/// Every consumer group of the cluster with its state (`Empty`, `Stable`, `Dead`, ...), with
/// one ListConsumerGroups request (librdkafka asks every broker; no DescribeGroups, unlike
/// rdkafka's `fetch_group_list`, which describes every group).
///
/// # Errors
/// When the request fails, or any broker answered with an error (a partial listing would make
/// groups look absent).
pub(crate) fn list_groups<C: ClientContext>(
    client: &Client<C>,
) -> Result<Vec<(String, String)>, NativeError> {
    let event = request(
        client,
        sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS,
        |handle, options, queue| {
            // SAFETY: live handle, options and queue; librdkafka copies the options.
            unsafe { sys::rd_kafka_ListConsumerGroups(handle, options, queue) }
        },
    )?;
    // SAFETY: `event` is live; the accessor returns null for another event type.
    let result = unsafe { sys::rd_kafka_event_ListConsumerGroups_result(event.0) };
    if result.is_null() {
        return Err(wrong_event("ListConsumerGroups"));
    }
    let mut error_count = 0;
    // SAFETY: `result` is non-null and lives as long as `event`.
    let errors =
        unsafe { sys::rd_kafka_ListConsumerGroups_result_errors(result, &mut error_count) };
    if !errors.is_null() && error_count > 0 {
        // SAFETY: an array of `error_count` live errors owned by `event`.
        let first = unsafe { *errors };
        // SAFETY: a live error owned by `event`.
        unsafe { error_result(first) }?;
    }
    let mut count = 0;
    // SAFETY: `result` is non-null and lives as long as `event`.
    let listings = unsafe { sys::rd_kafka_ListConsumerGroups_result_valid(result, &mut count) };
    if listings.is_null() {
        return Ok(Vec::new());
    }
    // SAFETY: an array of `count` listings owned by `event`, which outlives it.
    let listings = unsafe { std::slice::from_raw_parts(listings, count) };
    Ok(listings
        .iter()
        .map(|&listing| {
            // SAFETY: a live listing owned by `event`; the strings are copied.
            unsafe {
                (
                    owned_string(sys::rd_kafka_ConsumerGroupListing_group_id(listing)),
                    owned_string(sys::rd_kafka_consumer_group_state_name(
                        sys::rd_kafka_ConsumerGroupListing_state(listing),
                    )),
                )
            }
        })
        .collect())
}

/// The state and members of consumer group `group`, with each member's assignment, with one
/// DescribeConsumerGroups request. A group that does not exist is answered as `Dead` with no
/// members, as Kafka does.
///
/// # Errors
/// When the request fails or times out, or the broker answered with an error for the group.
pub(crate) fn describe_group<C: ClientContext>(
    client: &Client<C>,
    group: &str,
) -> Result<GroupDescription, NativeError> {
    let name = c_string(group)?;
    let mut names = [name.as_ptr()];
    let event = request(
        client,
        sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
        |handle, options, queue| {
            // SAFETY: `names` holds one NUL-terminated name that lives until the result event
            // arrived; librdkafka copies the names and the options.
            unsafe {
                sys::rd_kafka_DescribeConsumerGroups(
                    handle,
                    names.as_mut_ptr(),
                    names.len(),
                    options,
                    queue,
                )
            }
        },
    )?;
    // SAFETY: `event` is live; the accessor returns null for another event type.
    let result = unsafe { sys::rd_kafka_event_DescribeConsumerGroups_result(event.0) };
    if result.is_null() {
        return Err(wrong_event("DescribeConsumerGroups"));
    }
    let mut count = 0;
    // SAFETY: `result` is non-null and lives as long as `event`.
    let groups = unsafe { sys::rd_kafka_DescribeConsumerGroups_result_groups(result, &mut count) };
    if groups.is_null() || count == 0 {
        return Err(missing_result(group));
    }
    // SAFETY: an array of `count` (> 0) descriptions owned by `event`, which outlives it.
    let description = unsafe { *groups };
    // SAFETY: a live description owned by `event`, and so is its error (or null).
    match unsafe { error_result(sys::rd_kafka_ConsumerGroupDescription_error(description)) } {
        Ok(()) => {}
        // Newer brokers answer an unknown group so; older ones as `Dead`, below.
        Err(NativeError::Failed {
            code: RDKafkaErrorCode::GroupIdNotFound,
            ..
        }) => {
            return Ok(GroupDescription {
                group: group.to_owned(),
                state: "Dead".to_owned(),
                members: Vec::new(),
            });
        }
        Err(error) => return Err(error),
    }
    // SAFETY: a live description owned by `event`; the strings are copied.
    let (group_id, state, member_count) = unsafe {
        (
            owned_string(sys::rd_kafka_ConsumerGroupDescription_group_id(description)),
            owned_string(sys::rd_kafka_consumer_group_state_name(
                sys::rd_kafka_ConsumerGroupDescription_state(description),
            )),
            sys::rd_kafka_ConsumerGroupDescription_member_count(description),
        )
    };
    let mut members = Vec::with_capacity(member_count);
    for index in 0..member_count {
        // SAFETY: `index` is below the member count; the member, its strings, its assignment
        // and the assignment's partition list are owned by `event` and copied before it is
        // destroyed (`partitions_of` copies the list).
        let member = unsafe {
            let member = sys::rd_kafka_ConsumerGroupDescription_member(description, index);
            if member.is_null() {
                continue;
            }
            let assignment = sys::rd_kafka_MemberDescription_assignment(member);
            let partitions = if assignment.is_null() {
                Vec::new()
            } else {
                partitions_of(sys::rd_kafka_MemberAssignment_partitions(assignment))
            };
            GroupMember {
                member_id: owned_string(sys::rd_kafka_MemberDescription_consumer_id(member)),
                client_id: owned_string(sys::rd_kafka_MemberDescription_client_id(member)),
                host: owned_string(sys::rd_kafka_MemberDescription_host(member)),
                assignment: partitions
                    .into_iter()
                    .map(|partition| (partition.topic, partition.partition))
                    .collect(),
            }
        };
        members.push(member);
    }
    Ok(GroupDescription {
        group: group_id,
        state,
        members,
    })
}

/// The high watermark of `topic` / `partition` as the client last saw it in a fetch response
/// (no request is sent); `None` before the first fetch or for a partition it does not fetch.
pub(crate) fn cached_high_watermark<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = CString::new(topic).ok()?;
    let (mut low, mut high) = (-1_i64, -1_i64);
    // SAFETY: a live client handle, a NUL-terminated topic name and two writable integers;
    // librdkafka only reads its own cached state.
    let code = unsafe {
        sys::rd_kafka_get_watermark_offsets(
            client.native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (code == sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}

/// Fault injection for tests (debug builds only): makes `client`, an idempotent producer,
/// raise a fatal error now, as the broker's OUT_OF_ORDER_SEQUENCE_NUMBER would; its queued and
/// in-flight records then fail with `_FATAL`, and every later send is refused.
/// librdkafka's `rd_kafka_test_fatal_error` exists for this: a real broker gives no practical
/// way to cause a fatal idempotent-producer error. Returns whether librdkafka raised it.
#[cfg(debug_assertions)]
pub(crate) fn inject_fatal_error<C: ClientContext>(client: &Client<C>, reason: &str) -> bool {
    let Ok(reason) = CString::new(reason) else {
        return false;
    };
    // SAFETY: a live client handle and a NUL-terminated reason, which librdkafka copies.
    let code = unsafe {
        sys::rd_kafka_test_fatal_error(
            client.native_ptr(),
            sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
            reason.as_ptr(),
        )
    };
    code == sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
}

/// Requests of one kind in flight at once on a queue (bounds what librdkafka holds): a new one
/// is issued as each answer comes in.
const PIPELINE: usize = 256;

/// What one pipelined group request answered, by group name.
type GroupResults = HashMap<String, Result<Vec<GroupOffset>, NativeError>>;

/// The committed offsets of each of `groups`, in order (every partition the group committed;
/// no entry for a partition without a commit). librdkafka takes one group per
/// ListConsumerGroupOffsets request, so one request per group is issued, up to [`PIPELINE`]
/// of them in flight at once on one queue of each client, the groups spread over `clients`
/// ([`spread`]): no client per group, no round trip per group.
///
/// # Errors
/// Per group: the group's error (e.g. the coordinator is loading, not authorised). As a
/// whole: an argument librdkafka refused.
pub(crate) fn list_group_offsets<C: ClientContext>(
    clients: &[&Client<C>],
    groups: &[String],
) -> Result<Vec<Result<Vec<GroupOffset>, NativeError>>, NativeError> {
    spread(clients, groups, list_group_offsets_on)
}

fn list_group_offsets_on<C: ClientContext>(
    client: &Client<C>,
    groups: &[String],
) -> Result<Vec<Result<Vec<GroupOffset>, NativeError>>, NativeError> {
    let mut outcomes = pipelined(
        client,
        sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
        groups,
        |group, options, queue| {
            let name = c_string(group)?;
            // SAFETY: `name` is NUL-terminated and copied; a null partition list asks for
            // every committed partition.
            let mut request =
                unsafe { sys::rd_kafka_ListConsumerGroupOffsets_new(name.as_ptr(), ptr::null()) };
            if request.is_null() {
                return Err(NativeError::InvalidArgument(format!(
                    "group {group:?} is not a group name"
                )));
            }
            // SAFETY: one live request object, options and queue; librdkafka copies what it
            // needs when the request is enqueued, so the object is destroyed right after.
            unsafe {
                sys::rd_kafka_ListConsumerGroupOffsets(
                    client.native_ptr(),
                    &mut request,
                    1,
                    options.0,
                    queue.0,
                );
                sys::rd_kafka_ListConsumerGroupOffsets_destroy(request);
            }
            Ok(())
        },
        |event| {
            // SAFETY: `event` is live; the accessor returns null for another event type.
            let result = unsafe { sys::rd_kafka_event_ListConsumerGroupOffsets_result(event.0) };
            if result.is_null() {
                return Err(wrong_event("ListConsumerGroupOffsets"));
            }
            let mut count = 0;
            // SAFETY: `result` is non-null and lives as long as `event`.
            let array =
                unsafe { sys::rd_kafka_ListConsumerGroupOffsets_result_groups(result, &mut count) };
            Ok((array, count))
        },
    )?;
    Ok(groups
        .iter()
        .map(|group| {
            outcomes
                .remove(group)
                .unwrap_or_else(|| Err(missing_result(group)))
        })
        .collect())
}

/// Commits `offsets` (topic, partition, offset) to each group, in order, with
/// AlterConsumerGroupOffsets (one request per group, pipelined and spread over `clients` as in
/// [`list_group_offsets`]). The broker refuses a commit into a group that has members
/// (`UNKNOWN_MEMBER_ID`), so an active group is never changed.
///
/// # Errors
/// Per group: the group's error, or the first partition the broker refused. As a whole: an
/// argument librdkafka refused.
pub(crate) fn alter_group_offsets<C: ClientContext>(
    clients: &[&Client<C>],
    commits: &[GroupCommit],
) -> Result<Vec<Result<(), NativeError>>, NativeError> {
    spread(clients, commits, alter_group_offsets_on)
}

fn alter_group_offsets_on<C: ClientContext>(
    client: &Client<C>,
    commits: &[GroupCommit],
) -> Result<Vec<Result<(), NativeError>>, NativeError> {
    let mut outcomes = pipelined(
        client,
        sys::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS,
        commits,
        |(group, offsets), options, queue| {
            let name = c_string(group)?;
            let list = PartitionList::with(offsets)?;
            // SAFETY: `name` and `list` are live and copied by librdkafka.
            let mut request =
                unsafe { sys::rd_kafka_AlterConsumerGroupOffsets_new(name.as_ptr(), list.0) };
            if request.is_null() {
                return Err(NativeError::InvalidArgument(format!(
                    "group {group:?} or its offsets were refused"
                )));
            }
            // SAFETY: as in `list_group_offsets`.
            unsafe {
                sys::rd_kafka_AlterConsumerGroupOffsets(
                    client.native_ptr(),
                    &mut request,
                    1,
                    options.0,
                    queue.0,
                );
                sys::rd_kafka_AlterConsumerGroupOffsets_destroy(request);
            }
            Ok(())
        },
        |event| {
            // SAFETY: `event` is live; the accessor returns null for another event type.
            let result = unsafe { sys::rd_kafka_event_AlterConsumerGroupOffsets_result(event.0) };
            if result.is_null() {
                return Err(wrong_event("AlterConsumerGroupOffsets"));
            }
            let mut count = 0;
            // SAFETY: `result` is non-null and lives as long as `event`.
            let array = unsafe {
                sys::rd_kafka_AlterConsumerGroupOffsets_result_groups(result, &mut count)
            };
            Ok((array, count))
        },
    )?;
    Ok(commits
        .iter()
        .map(|(group, _)| match outcomes.remove(group) {
            Some(Ok(partitions)) => match partitions
                .into_iter()
                .find_map(|offset: GroupOffset| offset.error)
            {
                Some(code) => Err(NativeError::Failed {
                    code,
                    message: code.to_string(),
                }),
                None => Ok(()),
            },
            Some(Err(error)) => Err(error),
            None => Err(missing_result(group)),
        })
        .collect())
}

/// Splits `items` into one contiguous share per client and runs `call(client, share)` for the
/// shares side by side, each on its own thread; the results come back in the order of `items`.
/// A broker answers the requests of one connection one after another, so a few connections
/// (one per client) are answered sooner than one.
fn spread<C: ClientContext, T: Sync, R: Send>(
    clients: &[&Client<C>],
    items: &[T],
    call: impl Fn(&Client<C>, &[T]) -> Result<Vec<R>, NativeError> + Sync,
) -> Result<Vec<R>, NativeError> {
    let Some(first) = clients.first() else {
        return Err(NativeError::InvalidArgument(
            "no client to send requests with".to_owned(),
        ));
    };
    if clients.len() == 1 || items.len() < 2 * PIPELINE {
        return call(first, items);
    }
    let share = items.len().div_ceil(clients.len());
    let call = &call;
    std::thread::scope(|scope| {
        let running: Vec<_> = items
            .chunks(share)
            .zip(clients)
            .map(|(items, client)| scope.spawn(move || call(client, items)))
            .collect();
        let mut results = Vec::with_capacity(items.len());
        for thread in running {
            let answered = thread.join().unwrap_or_else(|_| {
                Err(NativeError::InvalidArgument(
                    "a thread sending group requests panicked".to_owned(),
                ))
            })?;
            results.extend(answered);
        }
        Ok(results)
    })
}

fn missing_result(group: &str) -> NativeError {
    NativeError::Failed {
        code: RDKafkaErrorCode::Fail,
        message: format!("no result for group `{group}` in the response"),
    }
}

/// Issues one request of `operation` per item (`issue(item, options, queue)`) on one result
/// queue, up to [`PIPELINE`] in flight: each answer lets the next request go. Collects the
/// group results of every answer (`groups_of(event)` returns its array of them). Stops,
/// leaving the rest unanswered, when no answer comes within the request timeout (librdkafka
/// answers every request by then, with a timeout error if need be).
fn pipelined<C: ClientContext, T>(
    client: &Client<C>,
    operation: sys::rd_kafka_admin_op_t,
    items: &[T],
    mut issue: impl FnMut(&T, &Options, &Queue) -> Result<(), NativeError>,
    groups_of: impl Fn(&Event) -> Result<(*mut *const sys::rd_kafka_group_result_t, usize), NativeError>,
) -> Result<GroupResults, NativeError> {
    let mut outcomes = GroupResults::with_capacity(items.len());
    if items.is_empty() {
        return Ok(outcomes);
    }
    let (queue, options) = admin_queue(client, operation)?;
    let mut waiting = items.iter();
    let mut in_flight = 0_usize;
    for item in waiting.by_ref().take(PIPELINE) {
        issue(item, &options, &queue)?;
        in_flight += 1;
    }
    while in_flight > 0 {
        let event = match next_event(&queue, REQUEST_TIMEOUT + POLL_GRACE) {
            Ok(event) => Some(event),
            Err(NativeError::NoAnswer(_)) => return Ok(outcomes),
            // A request-level error belongs to one request, whose group is not named in it.
            Err(_) => None,
        };
        in_flight -= 1;
        if let Some(item) = waiting.next() {
            issue(item, &options, &queue)?;
            in_flight += 1;
        }
        let Some(event) = event else {
            continue;
        };
        let (array, count) = groups_of(&event)?;
        if array.is_null() {
            continue;
        }
        // SAFETY: an array of `count` group results owned by `event`, which outlives it.
        let results = unsafe { std::slice::from_raw_parts(array, count) };
        for &result in results {
            // SAFETY: a live group result owned by `event`; its name, error and partitions
            // are owned by it and copied before `event` is destroyed.
            let (name, outcome) = unsafe {
                let name = owned_string(sys::rd_kafka_group_result_name(result));
                let outcome = error_result(sys::rd_kafka_group_result_error(result))
                    .map(|()| partitions_of(sys::rd_kafka_group_result_partitions(result)));
                (name, outcome)
            };
            outcomes.insert(name, outcome);
        }
    }
    Ok(outcomes)
}

/// Copies a partition list out of librdkafka.
///
/// # Safety
/// `list` is null or a live partition list, not destroyed during the call.
unsafe fn partitions_of(list: *const sys::rd_kafka_topic_partition_list_t) -> Vec<GroupOffset> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: a live list by the caller's contract: `elems` holds `cnt` elements.
    let elements = unsafe {
        let count = usize::try_from((*list).cnt).unwrap_or(0);
        if (*list).elems.is_null() || count == 0 {
            return Vec::new();
        }
        std::slice::from_raw_parts((*list).elems, count)
    };
    elements
        .iter()
        .map(|element| {
            let metadata = if element.metadata.is_null() || element.metadata_size == 0 {
                String::new()
            } else {
                // SAFETY: `metadata_size` bytes at `metadata`, owned by the list.
                let bytes = unsafe {
                    std::slice::from_raw_parts(element.metadata.cast::<u8>(), element.metadata_size)
                };
                String::from_utf8_lossy(bytes).into_owned()
            };
            GroupOffset {
                // SAFETY: the topic is a NUL-terminated string owned by the list.
                topic: unsafe { owned_string(element.topic) },
                partition: element.partition,
                offset: element.offset,
                metadata,
                error: (element.err != sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
                    .then(|| RDKafkaErrorCode::from(element.err)),
            }
        })
        .collect()
}

/// An owned partition list with offsets set, destroyed on drop.
struct PartitionList(*mut sys::rd_kafka_topic_partition_list_t);

impl PartitionList {
    fn with(offsets: &[(String, i32, i64)]) -> Result<PartitionList, NativeError> {
        let size = std::os::raw::c_int::try_from(offsets.len()).unwrap_or(std::os::raw::c_int::MAX);
        // SAFETY: creates an empty list owned by the guard.
        let list = PartitionList(unsafe { sys::rd_kafka_topic_partition_list_new(size) });
        if list.0.is_null() {
            return Err(NativeError::InvalidArgument(
                "librdkafka refused to create a partition list".to_owned(),
            ));
        }
        for (topic, partition, offset) in offsets {
            let topic = c_string(topic)?;
            // SAFETY: `list` is live; the topic is copied; the returned element is owned by
            // the list and written before anything else touches it.
            unsafe {
                let element =
                    sys::rd_kafka_topic_partition_list_add(list.0, topic.as_ptr(), *partition);
                if element.is_null() {
                    return Err(NativeError::InvalidArgument(format!(
                        "partition {partition} of {topic:?} was refused"
                    )));
                }
                (*element).offset = *offset;
            }
        }
        Ok(list)
    }
}

impl Drop for PartitionList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by `rd_kafka_topic_partition_list_new`, destroyed only here.
            unsafe { sys::rd_kafka_topic_partition_list_destroy(self.0) }
        }
    }
}

/// A result queue and admin options with the request timeout, for requests of `operation`.
fn admin_queue<C: ClientContext>(
    client: &Client<C>,
    operation: sys::rd_kafka_admin_op_t,
) -> Result<(Queue, Options), NativeError> {
    let handle = client.native_ptr();
    // SAFETY: `handle` is the live client handle; `client` is borrowed for this whole call.
    let queue = Queue(unsafe { sys::rd_kafka_queue_new(handle) });
    // SAFETY: as above; `operation` is a valid admin operation.
    let options = Options(unsafe { sys::rd_kafka_AdminOptions_new(handle, operation) });
    if options.0.is_null() || queue.0.is_null() {
        return Err(NativeError::InvalidArgument(
            "librdkafka refused to create admin options or a queue".to_owned(),
        ));
    }
    let timeout_ms = i32::try_from(REQUEST_TIMEOUT.as_millis()).unwrap_or(i32::MAX);
    let mut errstr = [0 as c_char; ERRSTR_SIZE];
    // SAFETY: `options` is live; `errstr` is a writable buffer of `ERRSTR_SIZE` bytes.
    let code = unsafe {
        sys::rd_kafka_AdminOptions_set_request_timeout(
            options.0,
            timeout_ms,
            errstr.as_mut_ptr(),
            ERRSTR_SIZE,
        )
    };
    if code != sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        return Err(NativeError::InvalidArgument(errstr_text(&errstr)));
    }
    Ok((queue, options))
}

/// Waits up to `wait` for the next result event on `queue`; a request-level error in the
/// event is returned as [`NativeError::Failed`].
fn next_event(queue: &Queue, wait: Duration) -> Result<Event, NativeError> {
    let wait_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: `queue` is live; the returned event (or null) is owned by the caller.
    let event = Event(unsafe { sys::rd_kafka_queue_poll(queue.0, wait_ms) });
    if event.0.is_null() {
        return Err(NativeError::NoAnswer(wait));
    }
    // SAFETY: `event` is a live event.
    let code = unsafe { sys::rd_kafka_event_error(event.0) };
    if code != sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        // SAFETY: as above; the string is owned by `event` and copied.
        let message = unsafe { owned_string(sys::rd_kafka_event_error_string(event.0)) };
        return Err(NativeError::Failed {
            code: code.into(),
            message,
        });
    }
    Ok(event)
}

/// Issues one admin request through `issue(handle, options, queue)` and waits for its result
/// event. A request-level error in the event is returned as [`NativeError::Failed`].
fn request<C: ClientContext>(
    client: &Client<C>,
    operation: sys::rd_kafka_admin_op_t,
    issue: impl FnOnce(
        *mut sys::rd_kafka_t,
        *const sys::rd_kafka_AdminOptions_t,
        *mut sys::rd_kafka_queue_t,
    ),
) -> Result<Event, NativeError> {
    let (queue, options) = admin_queue(client, operation)?;
    issue(client.native_ptr(), options.0, queue.0);
    next_event(&queue, REQUEST_TIMEOUT + POLL_GRACE)
}

/// Destroys a result queue. librdkafka reference-counts queues, so a request still in flight
/// when its queue handle is dropped (after [`NativeError::NoAnswer`]) stays safe.
struct Queue(*mut sys::rd_kafka_queue_t);

impl Drop for Queue {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by `rd_kafka_queue_new` and destroyed only here.
            unsafe { sys::rd_kafka_queue_destroy(self.0) }
        }
    }
}

/// Destroys admin options.
struct Options(*mut sys::rd_kafka_AdminOptions_t);

impl Drop for Options {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by `rd_kafka_AdminOptions_new` and destroyed only here.
            unsafe { sys::rd_kafka_AdminOptions_destroy(self.0) }
        }
    }
}

/// Destroys a result event, and with it everything read from it.
struct Event(*mut sys::rd_kafka_event_t);

impl Drop for Event {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: returned by `rd_kafka_queue_poll`, owned here and destroyed only here.
            unsafe { sys::rd_kafka_event_destroy(self.0) }
        }
    }
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

/// Destroys config resources this module created.
struct ConfigResources(Vec<*mut sys::rd_kafka_ConfigResource_t>);

impl Drop for ConfigResources {
    fn drop(&mut self) {
        for &resource in &self.0 {
            // SAFETY: created by `rd_kafka_ConfigResource_new`, non-null, destroyed once.
            unsafe { sys::rd_kafka_ConfigResource_destroy(resource) }
        }
    }
}

/// Copies a NUL-terminated string owned by librdkafka; null becomes "".
///
/// # Safety
/// `text` is null or points to a NUL-terminated string that lives during the call.
unsafe fn owned_string(text: *const c_char) -> String {
    if text.is_null() {
        return String::new();
    }
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// The text librdkafka wrote into an error buffer.
fn errstr_text(errstr: &[c_char]) -> String {
    let bytes: Vec<u8> = errstr
        .iter()
        .take_while(|&&byte| byte != 0)
        .map(|&byte| byte as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// An error object owned by a result, as a result.
///
/// # Safety
/// `error` is null or a live error object (not destroyed during the call).
unsafe fn error_result(error: *const sys::rd_kafka_error_t) -> Result<(), NativeError> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: non-null and live by the caller's contract; the string is copied.
    let (code, message) = unsafe {
        (
            sys::rd_kafka_error_code(error),
            owned_string(sys::rd_kafka_error_string(error)),
        )
    };
    if code == sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        return Ok(());
    }
    Err(NativeError::Failed {
        code: code.into(),
        message,
    })
}

fn c_string(text: &str) -> Result<CString, NativeError> {
    CString::new(text).map_err(|_| NativeError::InvalidArgument(format!("{text:?} contains NUL")))
}

fn wrong_event(request: &str) -> NativeError {
    NativeError::Failed {
        code: RDKafkaErrorCode::Fail,
        message: format!("the {request} request was answered with another event type"),
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

    #[test]
    fn error_buffers_stop_at_the_first_nul() {
        let mut buffer = [0 as c_char; 8];
        for (slot, byte) in buffer.iter_mut().zip(b"bad\0x") {
            *slot = *byte as c_char;
        }
        assert_eq!(errstr_text(&buffer), "bad");
    }
}
