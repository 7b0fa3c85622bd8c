//! The librdkafka calls rdkafka 0.39 does not wrap: the admin calls describe topic ACLs, create
//! ACLs, incremental AlterConfigs (KIP-339), list groups, describe a group, and list and alter
//! consumer group offsets, issued on an existing [`Admin`](crate::kafka::Admin)'s client
//! handle; a client's cached high watermark of a partition ([`cached_high_watermark`], no
//! request); a wake-up when a producer's delivery reports or a consumer's records arrive
//! ([`Wakeup`], [`QueueHook`]); and, in
//! debug builds, a fabricated fatal producer error for tests ([`inject_fatal_error`]).
//!
//! The calls are split by what they touch: `acls.rs`, `configs.rs` (topic configs) and
//! `groups.rs` (consumer groups and their offsets); this file holds the pattern they share,
//! the guards and the two calls that are no admin request. `wakeup.rs` is no request either: a
//! callback hooked on a client's queue.
//!
//! One of the host's two reviewed places with `unsafe` code (the other loads precompiled
//! plugins, `plugins/engine.rs`). Every admin call follows one pattern
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

use std::ffi::{CStr, CString, c_char};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::client::Client;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka_sys::bindings as sys;

use crate::kafka::REQUEST_TIMEOUT;

mod acls;
mod configs;
mod groups;
mod wakeup;

pub(crate) use acls::{create_acls, describe_topic_acls};
pub(crate) use configs::alter_topic_configs;
pub(crate) use groups::{alter_group_offsets, describe_group, list_group_offsets, list_groups};
pub(crate) use wakeup::{QueueHook, Wakeup};

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

async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, NativeError> + Send + 'static,
) -> Result<T, NativeError> {
    tokio::task::spawn_blocking(call)
        .await
        .unwrap_or(Err(NativeError::Cancelled))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_buffers_stop_at_the_first_nul() {
        let mut buffer = [0 as c_char; 8];
        for (slot, byte) in buffer.iter_mut().zip(b"bad\0x") {
            *slot = *byte as c_char;
        }
        assert_eq!(errstr_text(&buffer), "bad");
    }
}
