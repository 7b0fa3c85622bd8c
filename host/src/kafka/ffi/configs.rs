//! Topic configs: IncrementalAlterConfigs (KIP-339), never the legacy AlterConfigs.

use std::collections::HashMap;
use std::ptr;
use std::sync::Arc;

use rdkafka::ClientContext;
use rdkafka::client::Client;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka_sys::bindings as sys;

use crate::kafka::Admin;
use crate::kafka::resources::ConfigOp;

use super::{NativeError, blocking, c_string, owned_string, request, wrong_event};

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
