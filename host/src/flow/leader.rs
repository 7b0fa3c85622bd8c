//! The flow duties of the process that owns task 0: heartbeats, checkpoints and group offset
//! sync (MM2's heartbeat and checkpoint connectors).
//!
//! Exactly one process runs them, because exactly one owns task 0 (`lease`); they move with
//! that task. One thread runs the duties on their own intervals:
//!
//! * **Heartbeats** (`docs/mm2-facts.md`, "Internal records"): a record keyed `(source, target)` with the current time,
//!   to partition 0 of the target's heartbeats topic, every heartbeat interval. Like MM2's
//!   reverse herder, it also writes `(target, source)` into the *source* cluster's heartbeats
//!   topic when no flow of this process runs the other way, so that the flow mirrors it as
//!   `<source>.heartbeats`, which MM2's `RemoteClusterUtils` uses to find upstream clusters.
//! * **Checkpoints** ("Checkpoints"): reads the positions topic, then the offset-syncs topic, into
//!   one run-length [`OffsetIndex`] per partition; lists the source groups that `groups` selects
//!   (one ListConsumerGroups request) and reads their committed offsets (pipelined on one admin
//!   client, `kafka::ffi`); translates each exactly, up to the larger of the stored position
//!   and the latest offset sync; writes a checkpoint when it is newer than the last one
//!   ([`CheckpointState`]).
//! * **Group offset sync** ("Group offset sync"): commits the latest checkpointed offsets to the same group on
//!   the target, only while that group has no members there, and only partitions where the
//!   target's committed offset is lower. The target groups' states and offsets are read in the
//!   same round, right before committing (never from an earlier snapshot, which is MM2's
//!   KAFKA-19794 race), and the broker refuses commits from a non-member into a group with
//!   members.
//!
//! Reading positions before syncs matters: a task stores a position only after the syncs
//! written before it were acknowledged, so every run boundary below a position read here is in
//! the syncs read after it; and a sync is written only after its record and every earlier run
//! boundary, so the latest sync bounds what is replicated too.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::client::{Client, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::FlowContext;
use crate::config::Cluster;
use crate::events::{CallsSeen, Events};
use crate::kafka::ffi::{self, NativeError};
use crate::kafka::resources::GroupOffset;
use crate::kafka::{Admin, AdminCallError};
use crate::mm2::records::{Checkpoint, Heartbeat, OffsetSync};
use crate::mm2::translation::{CheckpointState, OffsetIndex};
use crate::replication::positions::{PositionReader, PositionsError};
use crate::replication::supervisor::{Backoff, Supervised};

/// How long one read of an internal topic, or one group request, may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Runs kept per partition in the offset index (16 bytes each).
const MAX_RUNS: usize = 1 << 16;

/// Errors that restart the leader's duties (after a back-off).
#[derive(Debug, thiserror::Error)]
pub(crate) enum LeaderError {
    /// A Kafka client could not be created or a request failed.
    #[error("{what} failed")]
    Kafka {
        what: String,
        #[source]
        source: Box<KafkaError>,
    },
    /// Reading positions failed.
    #[error("reading positions failed")]
    Positions(#[source] PositionsError),
    /// An internal topic could not be read to its end in time.
    #[error("reading `{topic}` did not reach its end within {timeout:?}")]
    Timeout { topic: String, timeout: Duration },
    /// An admin client could not be created.
    #[error("creating an admin client failed")]
    Admin(#[source] AdminCallError),
    /// The leader duties were asked to stop while waiting on a cluster (not a failure).
    #[error("stopped while waiting on a cluster")]
    Stopped,
    /// A group offsets request could not be issued.
    #[error("{what} failed")]
    Native {
        what: String,
        #[source]
        source: NativeError,
    },
}

/// Maps a failed librdkafka call made through `kafka::ffi` on `what`.
fn native(what: &str) -> impl FnOnce(NativeError) -> LeaderError {
    let what = what.to_owned();
    move |source| LeaderError::Native { what, source }
}

fn kafka(what: impl Into<String>) -> impl FnOnce(KafkaError) -> LeaderError {
    let what = what.into();
    move |source| LeaderError::Kafka {
        what,
        source: Box::new(source),
    }
}

/// How the leader duties restart after an error.
const BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(1),
    max: Duration::from_secs(30),
    healthy_after: Duration::from_secs(60),
};

/// Starts the leader duties of `context`'s flow on their own supervised thread.
///
/// # Errors
/// When the thread cannot be started.
pub(crate) fn spawn(context: Arc<FlowContext>) -> std::io::Result<Supervised> {
    let events = Events::new(&context.tasks.metrics, &context.tasks.flow.id);
    let span = tracing::info_span!("leader", flow = %context.tasks.flow.id);
    Supervised::spawn(
        "ferry-leader".to_owned(),
        span,
        BACKOFF,
        move |stop: &Arc<AtomicBool>| match Leader::start(&context, stop)
            .and_then(|mut leader| leader.run(stop))
        {
            Err(LeaderError::Stopped) => Ok(()),
            outcome => outcome,
        },
        move |error: &LeaderError, retry_in| events.leader_failed(error, retry_in),
    )
}

/// Reads partition 0 of a single-partition internal topic, continuing where it stopped.
struct PartitionReader {
    consumer: BaseConsumer,
    /// Asks for the watermarks ([`crate::kafka::watermark_client`]).
    watermarks: BaseConsumer,
    topic: String,
    next: i64,
}

impl PartitionReader {
    fn new(cluster: &Cluster, topic: &str) -> Result<PartitionReader, LeaderError> {
        let consumer: BaseConsumer = crate::kafka::plain_consumer(cluster)
            .create()
            .map_err(kafka(format!("creating a reader of `{topic}`")))?;
        let watermarks: BaseConsumer = crate::kafka::watermark_client(cluster)
            .create()
            .map_err(kafka(format!("creating a reader of `{topic}`")))?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, 0, Offset::Beginning)
            .map_err(kafka(format!("assigning `{topic}`")))?;
        consumer
            .assign(&list)
            .map_err(kafka(format!("assigning `{topic}`")))?;
        Ok(PartitionReader {
            consumer,
            watermarks,
            topic: topic.to_owned(),
            next: 0,
        })
    }

    /// Hands every record up to the current end to `handle(key, value)`; gives up with
    /// `Stopped` within half a second of `stop` being set.
    fn read_to_end(
        &mut self,
        stop: &AtomicBool,
        mut handle: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), LeaderError> {
        let deadline = Instant::now() + READ_TIMEOUT;
        let watermarks = &self.watermarks;
        let (low, high) = crate::kafka::until_stopped(deadline, stop, |slice| {
            watermarks.fetch_watermarks(&self.topic, 0, slice)
        })
        .ok_or(LeaderError::Stopped)?
        .map_err(kafka(format!("reading the end of `{}`", self.topic)))?;
        self.next = self.next.max(low);
        while self.next < high {
            if stop.load(Ordering::Acquire) {
                return Err(LeaderError::Stopped);
            }
            if Instant::now() >= deadline {
                return Err(LeaderError::Timeout {
                    topic: self.topic.clone(),
                    timeout: READ_TIMEOUT,
                });
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Err(error)) => return Err(kafka(format!("reading `{}`", self.topic))(error)),
                Some(Ok(message)) => {
                    self.next = message.offset() + 1;
                    if let (Some(key), Some(value)) = (message.key(), message.payload()) {
                        handle(key, value);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

struct Leader {
    context: Arc<FlowContext>,
    /// Set when the leader duties are asked to stop: reads and flushes that wait on a cluster
    /// give up on it.
    stop: Arc<AtomicBool>,
    flow: String,
    target_producer: BaseProducer,
    /// Writes the reverse heartbeats into the source cluster, when this flow emits them.
    source_producer: Option<BaseProducer>,
    positions: PositionReader,
    syncs: Option<PartitionReader>,
    indexes: HashMap<(String, i32), OffsetIndex>,
    checkpoints: CheckpointState,
    /// Read the source groups' offsets.
    source_admins: Admins,
    /// Read and commit the target groups' offsets.
    target_admins: Admins,
    /// What was reported of the group filter plugin's calls.
    group_filter_calls: CallsSeen,
    events: Events,
}

impl Leader {
    fn start(context: &Arc<FlowContext>, stop: &Arc<AtomicBool>) -> Result<Leader, LeaderError> {
        let flow = &context.tasks.flow;
        let producer = |cluster: &Cluster, what: &str| -> Result<BaseProducer, LeaderError> {
            crate::kafka::internal_producer(cluster)
                .create()
                .map_err(kafka(format!("creating a {what} producer")))
        };
        let source_producer = match context.source_heartbeats && flow.emit_heartbeats.is_some() {
            true => Some(producer(&context.tasks.source, "source heartbeat")?),
            false => None,
        };
        let syncs = match (&context.tasks.offset_syncs, flow.emit_checkpoints) {
            (Some(location), Some(_)) => {
                Some(PartitionReader::new(&location.cluster, &location.topic)?)
            }
            _ => None,
        };
        let mut checkpoints = CheckpointState::default();
        if syncs.is_some() {
            // Earlier checkpoints keep new ones monotonic across leader changes (MM2 3.8's
            // CheckpointStore, KAFKA-15905).
            let mut reader =
                PartitionReader::new(&context.tasks.target, &context.checkpoints_topic)?;
            reader.read_to_end(stop, |key, value| {
                if let Ok(checkpoint) = Checkpoint::decode(key, value) {
                    checkpoints.load(
                        &checkpoint.consumer_group_id,
                        &checkpoint.topic,
                        checkpoint.partition,
                        checkpoint.upstream_offset,
                        checkpoint.downstream_offset,
                    );
                }
            })?;
        }
        let positions = PositionReader::new(
            &context.tasks.target,
            &context.tasks.positions_topic,
            flow.source.as_str(),
        )
        .map_err(LeaderError::Positions)?;
        tracing::info!(
            heartbeats = ?flow.emit_heartbeats,
            checkpoints = ?flow.emit_checkpoints,
            group_offsets = ?flow.sync_group_offsets,
            "Flow leader duties started."
        );
        Ok(Leader {
            stop: Arc::clone(stop),
            flow: flow.id.to_string(),
            target_producer: producer(&context.tasks.target, "target")?,
            source_producer,
            positions,
            syncs,
            indexes: HashMap::new(),
            checkpoints,
            source_admins: Admins::new(flow.source.as_str(), &context.tasks.source)?,
            target_admins: Admins::new(flow.target.as_str(), &context.tasks.target)?,
            group_filter_calls: CallsSeen::default(),
            events: Events::new(&context.tasks.metrics, &flow.id),
            context: Arc::clone(context),
        })
    }

    fn run(&mut self, stop: &AtomicBool) -> Result<(), LeaderError> {
        let flow = self.context.tasks.flow.clone();
        let start = Instant::now();
        let mut next_heartbeat = start;
        let mut next_checkpoint = start;
        let mut next_group_sync = start;
        // Rounds start at a fixed rate (`interval` after the previous start, at once when a
        // round took longer), so that a group committed right after a listing waits one
        // interval, not an interval plus the rounds. Group offsets are synced from
        // checkpoints: the first round follows the first checkpoints.
        let mut checkpointed = false;
        while !stop.load(Ordering::Acquire) {
            let now = Instant::now();
            if let Some(interval) = flow.emit_heartbeats
                && now >= next_heartbeat
            {
                self.heartbeat();
                next_heartbeat = now + interval;
            }
            if let Some(interval) = flow.emit_checkpoints
                && self.syncs.is_some()
                && now >= next_checkpoint
            {
                self.checkpoint()?;
                checkpointed = true;
                next_checkpoint = now + interval;
            }
            if let Some(interval) = flow.sync_group_offsets
                && checkpointed
                && now >= next_group_sync
            {
                self.sync_group_offsets();
                next_group_sync = now + interval;
            }
            self.target_producer.poll(Duration::ZERO);
            if let Some(producer) = &self.source_producer {
                producer.poll(Duration::ZERO);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let flush = Duration::from_secs(5);
        if let Err(error) = self.target_producer.flush(flush) {
            tracing::warn!(%error, "Flushing checkpoints and heartbeats failed.");
        }
        Ok(())
    }

    fn heartbeat(&mut self) {
        let source = self.context.tasks.flow.source.as_str();
        let target = self.context.tasks.flow.target.as_str();
        let timestamp = now_ms();
        let topic = self.context.heartbeats_topic.as_str();
        let metrics = &self.context.tasks.metrics.heartbeats_written;
        let send = |producer: &BaseProducer, from: &str, to: &str| {
            let heartbeat = Heartbeat {
                source_cluster_alias: from.to_owned(),
                target_cluster_alias: to.to_owned(),
                timestamp,
            };
            let Ok(key) = heartbeat.key() else {
                return;
            };
            let value = heartbeat.value();
            let record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
                .partition(0)
                .key(&key[..])
                .payload(&value[..])
                .timestamp(timestamp);
            match producer.send(record) {
                Ok(()) => metrics.with_label_values(&[&self.flow, to]).inc(),
                Err((error, _)) => {
                    tracing::warn!(%error, cluster = to, "Writing a heartbeat failed.");
                }
            }
        };
        send(&self.target_producer, source, target);
        if let Some(producer) = &self.source_producer {
            send(producer, target, source);
        }
    }

    /// Reads the offset syncs written since the last call into the indexes.
    fn read_offset_syncs(&mut self) -> Result<(), LeaderError> {
        if let Some(reader) = &mut self.syncs {
            let indexes = &mut self.indexes;
            reader.read_to_end(&self.stop, |key, value| {
                match OffsetSync::decode(key, value) {
                    Ok(sync) => indexes
                        .entry((sync.topic, sync.partition))
                        .or_insert_with(|| OffsetIndex::new(MAX_RUNS))
                        .add(sync.upstream_offset, sync.downstream_offset),
                    Err(error) => tracing::warn!(%error, "Ignoring a malformed offset sync."),
                }
            })?;
        }
        Ok(())
    }

    /// The source groups selected by `groups` / `groups_exclude` and the group filter plugin.
    fn source_groups(&self) -> Result<Vec<String>, LeaderError> {
        let list = ffi::list_groups(self.source_admins.first.client())
            .map_err(native("listing the source's consumer groups"))?;
        let filter = self
            .context
            .name_filters
            .groups
            .as_ref()
            .map(|slot| slot.current());
        let names = list.into_iter().map(|(name, _state)| name).collect();
        Ok(
            select_groups(&self.context.tasks.flow, filter.as_deref(), names)
                .into_iter()
                .filter(|(_, exclusion)| exclusion.is_none())
                .map(|(group, _)| group)
                .collect(),
        )
    }

    fn checkpoint(&mut self) -> Result<(), LeaderError> {
        let started = Instant::now();
        let mut phases = Phases::new(started);
        let positions = self
            .positions
            .read_to_end_unless_stopped(READ_TIMEOUT, &self.stop)
            .map_err(|error| match error {
                PositionsError::Stopped { .. } => LeaderError::Stopped,
                error => LeaderError::Positions(error),
            })?
            .clone();
        phases.done("reading positions");
        self.read_offset_syncs()?;
        phases.done("reading offset syncs");
        let catalog = Arc::clone(&self.context.tasks.catalog.borrow());
        let groups = self.source_groups()?;
        phases.done("listing groups");
        if let Some(slot) = &self.context.name_filters.groups {
            let filter = slot.current();
            self.events.plugin_calls_so_far(
                filter.name(),
                Arc::as_ptr(&filter) as usize,
                (filter.calls(), filter.errors()),
                &mut self.group_filter_calls,
            );
        }
        let remote_names: HashMap<&str, &str> = catalog
            .topics
            .iter()
            .filter(|topic| topic.partitions > 0)
            .map(|topic| (&*topic.source, &*topic.remote))
            .collect();
        if remote_names.is_empty() {
            return Ok(());
        }
        let written = self
            .context
            .tasks
            .metrics
            .checkpoints_written
            .with_label_values(&[&self.flow]);
        let untranslatable = self
            .context
            .tasks
            .metrics
            .untranslatable_offsets
            .with_label_values(&[&self.flow]);
        let (group_count, written_before) = (groups.len(), written.get());
        let exactly_once = self.context.tasks.flow.exactly_once;
        // The checkpoints sent this round, with their creation times (MM2's checkpoint latency).
        let mut sent = Vec::new();
        // Every group's committed offsets, pipelined on one admin client.
        let committed = ffi::list_group_offsets(&self.source_admins.clients(), &groups)
            .map_err(native("listing the source groups' offsets"))?;
        phases.done("reading group offsets");
        for (group, committed) in groups.into_iter().zip(committed) {
            let committed = match committed {
                Ok(committed) => committed,
                Err(error) => {
                    tracing::warn!(error = %crate::error_chain(&error), group,
                        "Reading a group's offsets failed; it is checkpointed next time.");
                    continue;
                }
            };
            let listed_at = now_ms();
            for element in &committed {
                let upstream = element.offset;
                if upstream < 0 {
                    continue;
                }
                let (topic, partition) = (element.topic.as_str(), element.partition);
                let Some(index) = self.indexes.get(&(topic.to_owned(), partition)) else {
                    continue;
                };
                // How far the current copy is replicated and synced: the latest offset sync
                // (tasks write syncs far more often than positions, and store a position only
                // after the syncs before it, so checkpoints need not wait for a position
                // store; and when syncs cannot be written, positions run ahead of them but
                // translation must not). Exactly once, no further than the stored position
                // either: it is committed state, while a sync may describe records of a
                // transaction still open (or aborted), which no read_committed reader sees.
                let synced = index.last_synced();
                let last = match exactly_once {
                    true => positions
                        .get(&(topic.to_owned(), partition))
                        .copied()
                        .zip(synced)
                        .map(|(stored, synced)| stored.min(synced)),
                    false => synced,
                };
                let Some(last) = last else {
                    continue;
                };
                let Some(downstream) = index.translate(upstream, Some(last)) else {
                    untranslatable.inc();
                    tracing::debug!(
                        group,
                        topic,
                        partition,
                        upstream,
                        "The group's offset is older than the known offset history."
                    );
                    continue;
                };
                let Some(remote) = remote_names.get(topic) else {
                    continue;
                };
                if !self
                    .checkpoints
                    .offer(&group, remote, partition, upstream, downstream)
                {
                    continue;
                }
                let checkpoint = Checkpoint {
                    consumer_group_id: group.clone(),
                    topic: (*remote).to_owned(),
                    partition,
                    upstream_offset: upstream,
                    downstream_offset: downstream,
                    metadata: element.metadata.clone(),
                };
                let (Ok(key), Ok(value)) = (checkpoint.key(), checkpoint.value()) else {
                    continue;
                };
                let record: BaseRecord<'_, [u8], [u8]> =
                    BaseRecord::to(&self.context.checkpoints_topic)
                        .partition(0)
                        .key(&key[..])
                        .payload(&value[..])
                        .timestamp(listed_at);
                match self.target_producer.send(record) {
                    Ok(()) => {
                        written.inc();
                        tracing::debug!(%checkpoint, "Checkpoint written.");
                        sent.push((checkpoint, listed_at));
                    }
                    Err((error, _)) => {
                        tracing::warn!(%error, group, "Writing a checkpoint failed.");
                    }
                }
            }
        }
        let producer = &self.target_producer;
        crate::kafka::until_stopped(Instant::now() + READ_TIMEOUT, &self.stop, |slice| {
            producer.flush(slice)
        })
        .ok_or(LeaderError::Stopped)?
        .map_err(kafka("writing checkpoints"))?;
        // Every checkpoint of the round is acknowledged once the flush returns.
        let acknowledged = crate::metrics::now_ms();
        let flow = &self.context.tasks.flow;
        for (checkpoint, created) in sent {
            self.context.tasks.metrics.mm2.checkpoint_acknowledged(
                (flow.source.as_str(), flow.target.as_str()),
                &checkpoint.consumer_group_id,
                &checkpoint.topic,
                checkpoint.partition,
                created,
                acknowledged,
            );
        }
        phases.done("writing checkpoints");
        self.events.checkpoint_round(
            started.elapsed(),
            group_count,
            written.get().saturating_sub(written_before),
            &phases.took,
        );
        Ok(())
    }

    fn sync_group_offsets(&mut self) {
        let started = Instant::now();
        let mut phases = Phases::new(started);
        let flow = &self.context.tasks.flow;
        let groups: Vec<String> = self
            .checkpoints
            .groups()
            .into_iter()
            .filter(|group| {
                let filtered = match &self.context.name_filters.groups {
                    // Cached since the checkpoint round asked; an error skips the group this
                    // round.
                    Some(filter) => !filter.current().allows(group).unwrap_or(false),
                    None => false,
                };
                flow.groups.matches(group) && !flow.groups_exclude.matches(group) && !filtered
            })
            .collect();
        match self.sync_groups(&groups, &mut phases) {
            Ok(outcomes) => {
                for (group, outcome) in outcomes {
                    match outcome {
                        Ok(0) => {}
                        Ok(count) => self.events.group_offsets_synced(&group, count),
                        Err(error) => {
                            tracing::warn!(error = %crate::error_chain(&error), group,
                                "Syncing group offsets failed (the group may have become active on the target); retrying next time.");
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(error = %crate::error_chain(&error),
                    "Syncing group offsets failed; retrying next time.");
            }
        }
        self.events
            .group_sync_round(started.elapsed(), groups.len(), &phases.took);
    }

    /// Commits the latest checkpoints of each of `groups` to the same group on the target,
    /// when that group has no members, only where they are ahead of what it has committed
    /// there. The target's group states are listed once, then the idle groups' offsets are
    /// read and the commits sent, each pipelined on one admin client, right before committing;
    /// the broker refuses a commit into a group that has members by then. A group absent from
    /// the listing has committed nothing, so its offsets are not read. Returns the number of
    /// partitions committed per group that was considered.
    fn sync_groups(
        &self,
        groups: &[String],
        phases: &mut Phases,
    ) -> Result<Vec<GroupOutcome>, LeaderError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let listed = ffi::list_groups(self.target_admins.first.client())
            .map_err(native("listing the target's consumer groups"))?;
        let states: HashMap<String, String> = listed.into_iter().collect();
        phases.done("listing target groups");
        let mut existing = Vec::new();
        let mut absent = Vec::new();
        for group in groups {
            match states.get(group.as_str()) {
                Some(state) if !is_idle(state) => {
                    tracing::debug!(
                        group = group.as_str(),
                        state,
                        "The target group is active; its offsets are left alone."
                    );
                }
                Some(_) => existing.push(group.clone()),
                None => absent.push(group.clone()),
            }
        }
        let current = ffi::list_group_offsets(&self.target_admins.clients(), &existing)
            .map_err(native("listing the target groups' offsets"))?;
        phases.done("reading target group offsets");
        let mut outcomes = Vec::with_capacity(existing.len() + absent.len());
        let mut commits = Vec::new();
        let current = existing
            .into_iter()
            .zip(current)
            .chain(absent.into_iter().map(|group| (group, Ok(Vec::new()))));
        for (group, current) in current {
            match current {
                Ok(current) => {
                    let ahead = ahead_of(&self.checkpoints.group_offsets(&group), &current);
                    if !ahead.is_empty() {
                        commits.push((group, ahead));
                    }
                }
                Err(error) => outcomes.push((group, Err(error))),
            }
        }
        let results = ffi::alter_group_offsets(&self.target_admins.clients(), &commits)
            .map_err(native("committing the target groups' offsets"))?;
        phases.done("committing");
        for ((group, offsets), result) in commits.into_iter().zip(results) {
            outcomes.push((group, result.map(|()| offsets.len() as u64)));
        }
        Ok(outcomes)
    }
}

/// Why a source consumer group is not checkpointed (nor its offsets synced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupExclusion {
    /// No pattern of `groups` matches it.
    Groups,
    /// A pattern of `groups_exclude` matches it.
    GroupsExclude,
    /// The `group_filter` plugin refused it.
    GroupFilter,
    /// The `group_filter` plugin failed this round (logged).
    PluginFailed,
}

impl GroupExclusion {
    /// The rule's name as `ferry plan` prints it (the configuration key).
    pub(crate) fn rule(self) -> &'static str {
        match self {
            GroupExclusion::Groups => "groups",
            GroupExclusion::GroupsExclude => "groups_exclude",
            GroupExclusion::GroupFilter => "group_filter",
            GroupExclusion::PluginFailed => "plugin_failed",
        }
    }
}

/// The decision on each of the source groups `names`, sorted by name: checkpointed (`None`) or
/// excluded by which rule (`groups`, `groups_exclude`, then the group filter plugin `filter`,
/// asked once for every group the patterns let through). The leader checkpoints the groups
/// this selects, and `ferry plan` prints the same decisions.
pub(crate) fn select_groups(
    flow: &crate::config::Flow,
    filter: Option<&crate::plugins::NameFilter>,
    mut names: Vec<String>,
) -> Vec<(String, Option<GroupExclusion>)> {
    names.sort();
    let mut decided: Vec<(String, Option<GroupExclusion>)> = names
        .into_iter()
        .map(|name| {
            let exclusion = if !flow.groups.matches(&name) {
                Some(GroupExclusion::Groups)
            } else if flow.groups_exclude.matches(&name) {
                Some(GroupExclusion::GroupsExclude)
            } else {
                None
            };
            (name, exclusion)
        })
        .collect();
    if let Some(filter) = filter {
        let candidates: Vec<&str> = decided
            .iter()
            .filter(|(_, exclusion)| exclusion.is_none())
            .map(|(name, _)| name.as_str())
            .collect();
        let answers = match filter.allows_all(&candidates) {
            Ok(answers) => answers
                .into_iter()
                .map(|allowed| (!allowed).then_some(GroupExclusion::GroupFilter))
                .collect(),
            Err(error) => {
                tracing::error!(error = %crate::error_chain(&error),
                    "The group filter plugin failed; no group is checkpointed this round.");
                vec![Some(GroupExclusion::PluginFailed); candidates.len()]
            }
        };
        let mut answers = answers.into_iter();
        for (_, exclusion) in decided
            .iter_mut()
            .filter(|(_, exclusion)| exclusion.is_none())
        {
            *exclusion = answers.next().unwrap_or(Some(GroupExclusion::PluginFailed));
        }
    }
    decided
}

/// Admin clients of one cluster for group calls, each with its own connection to the group
/// coordinators, which answer the requests of one connection one after another
/// ([`ffi::list_group_offsets`] spreads the groups over them).
struct Admins {
    first: Admin,
    more: Vec<Admin>,
}

/// How many admin clients a leader keeps per cluster for group calls.
const GROUP_CLIENTS: usize = 3;

impl Admins {
    fn new(name: &str, cluster: &Cluster) -> Result<Admins, LeaderError> {
        let admin = || Admin::new(name, cluster).map_err(LeaderError::Admin);
        Ok(Admins {
            first: admin()?,
            more: (1..GROUP_CLIENTS)
                .map(|_| admin())
                .collect::<Result<_, _>>()?,
        })
    }

    fn clients(&self) -> Vec<&Client<DefaultClientContext>> {
        std::iter::once(&self.first)
            .chain(&self.more)
            .map(Admin::client)
            .collect()
    }
}

/// How long each step of a leader round took, in order.
struct Phases {
    took: Vec<(&'static str, Duration)>,
    last: Instant,
}

impl Phases {
    fn new(started: Instant) -> Phases {
        Phases {
            took: Vec::new(),
            last: started,
        }
    }

    /// The step `name` ended now.
    fn done(&mut self, name: &'static str) {
        let now = Instant::now();
        self.took.push((name, now - self.last));
        self.last = now;
    }
}

/// A group considered by a round of group offset sync, and how many partitions were committed
/// to it.
type GroupOutcome = (String, Result<u64, NativeError>);

/// Whether a target group in `state` (librdkafka's name of it) may be committed to from
/// outside: it has no members. A group absent from the listing does not exist yet, and is
/// idle too.
fn is_idle(state: &str) -> bool {
    matches!(state, "Empty" | "Dead")
}

/// The checkpointed offsets (`converted`: remote topic, partition, downstream offset) that are
/// ahead of what the target group committed (`current`), or where it committed nothing: a
/// group is never moved back.
fn ahead_of(converted: &[(String, i32, i64)], current: &[GroupOffset]) -> Vec<(String, i32, i64)> {
    let committed: HashMap<(&str, i32), i64> = current
        .iter()
        .filter(|offset| offset.offset >= 0)
        .map(|offset| ((offset.topic.as_str(), offset.partition), offset.offset))
        .collect();
    converted
        .iter()
        .filter(|(topic, partition, downstream)| {
            committed
                .get(&(topic.as_str(), *partition))
                .is_none_or(|committed| downstream > committed)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(topic: &str, partition: i32, offset: i64) -> GroupOffset {
        GroupOffset {
            topic: topic.to_owned(),
            partition,
            offset,
            metadata: String::new(),
            error: None,
        }
    }

    #[test]
    fn only_offsets_ahead_of_the_target_group_are_committed() {
        let converted = vec![
            ("A.t".to_owned(), 0, 10),
            ("A.t".to_owned(), 1, 20),
            ("A.t".to_owned(), 2, 30),
            ("A.u".to_owned(), 0, 5),
        ];
        let current = [
            offset("A.t", 0, 10),
            offset("A.t", 1, 25),
            offset("A.t", 2, 12),
            offset("A.u", 0, -1001),
        ];
        assert_eq!(
            ahead_of(&converted, &current),
            [("A.t".to_owned(), 2, 30), ("A.u".to_owned(), 0, 5)],
            "equal or ahead on the target: left alone; no commit there: committed"
        );
        assert_eq!(ahead_of(&converted, &[]), converted);
    }

    #[test]
    fn only_groups_without_members_are_idle() {
        assert!(is_idle("Empty"));
        assert!(is_idle("Dead"));
        for active in [
            "Stable",
            "PreparingRebalance",
            "CompletingRebalance",
            "Unknown",
        ] {
            assert!(!is_idle(active), "{active}");
        }
    }
}
