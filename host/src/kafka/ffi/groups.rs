//! Consumer groups: ListConsumerGroups, DescribeConsumerGroups, and the pipelined
//! ListConsumerGroupOffsets / AlterConsumerGroupOffsets spread over several clients.

use std::collections::HashMap;
use std::ptr;

use rdkafka::ClientContext;
use rdkafka::client::Client;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka_sys::bindings as sys;

use crate::kafka::REQUEST_TIMEOUT;
use crate::kafka::resources::{GroupCommit, GroupDescription, GroupMember, GroupOffset};

use super::{
    Event, NativeError, Options, POLL_GRACE, Queue, admin_queue, c_string, error_result,
    next_event, owned_string, request, wrong_event,
};

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
