//! Which source topics a flow mirrors, and keeping their remote topics in place.
//!
//! The selection is MM2's `MirrorSourceConnector#shouldReplicateTopic` (reference §2.5):
//! `(topics ∧ ¬topics_exclude ∨ heartbeats topic) ∧ ¬internal ∧ ¬cycle`, with every naming
//! question answered by the flow's policy plugin. The topic manager runs it every refresh
//! interval, creates missing remote topics with the source's partition count and the configured
//! replication factor, grows remote topics whose source grew, and publishes the result as a
//! [`Catalog`] that task workers follow. Plugin calls happen here, on the metadata path, and are
//! cached by the plugin host; workers never call a plugin per record.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::watch;

use super::FlowContext;
use super::swap::PolicySlot;
use crate::kafka::Admin;
use crate::plugins::{PluginError, Policy};

/// The topics a flow mirrors now, published to task workers.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Catalog {
    /// Mirrored topics, sorted by source name.
    pub(crate) topics: Vec<MirroredTopic>,
}

/// One mirrored topic.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct MirroredTopic {
    /// The topic's name on the source cluster.
    pub(crate) source: Arc<str>,
    /// The remote topic's name on the target cluster, from the policy.
    pub(crate) remote: Arc<str>,
    /// Partitions that exist on both sides (source partition N goes to remote partition N).
    pub(crate) partitions: i32,
}

/// How often, and how far apart, the target's metadata is read again until created topics
/// and partitions are visible.
const METADATA_ATTEMPTS: usize = 20;
const METADATA_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

/// Cycle detection gives up after this many hops (a hostile policy could loop forever).
const MAX_HOPS: usize = 64;

/// Decides whether a source topic is mirrored by a flow.
pub(crate) struct Selector<'a> {
    pub(crate) context: &'a FlowContext,
    pub(crate) policy: &'a Policy,
}

impl Selector<'_> {
    /// MM2's `shouldReplicateTopic`, plus a host guard: Kafka's own `__` topics and Ferry's
    /// bookkeeping topics are never mirrored, whatever a plugin answers.
    pub(crate) fn should_replicate(&self, topic: &str) -> Result<bool, PluginError> {
        let flow = &self.context.flow;
        if topic.starts_with("__")
            || topic == self.context.positions_topic
            || topic == self.context.lease_topic
        {
            return Ok(false);
        }
        let selected = flow.topics.matches(topic)
            && !flow.topics_exclude.matches(topic)
            && match &self.context.name_filters.topics {
                Some(filter) => filter.current().allows(topic)?,
                None => true,
            };
        let heartbeat = flow.heartbeats_replication && self.policy.is_heartbeats_topic(topic)?;
        if !(selected || heartbeat) || self.policy.is_internal_topic(topic)? {
            return Ok(false);
        }
        Ok(!self.is_cycle(topic)?)
    }

    /// MM2's `isCycle`: whether any hop in the topic's alias chain is the target cluster.
    pub(crate) fn is_cycle(&self, topic: &str) -> Result<bool, PluginError> {
        let target = self.context.flow.target.as_str();
        let mut current = topic.to_owned();
        for _ in 0..MAX_HOPS {
            match self.policy.topic_source(&current)? {
                None => return Ok(false),
                Some(source) if source == target => return Ok(true),
                Some(_) => {}
            }
            match self.policy.upstream_topic(&current)? {
                Some(upstream) if upstream != current => current = upstream,
                _ => return Ok(false),
            }
        }
        tracing::warn!(
            topic,
            "Cycle detection gave up after {MAX_HOPS} hops; not mirroring."
        );
        Ok(true)
    }
}

/// Computes the wanted (source → remote name, partitions) map from source metadata.
pub(super) fn select(
    context: &FlowContext,
    policy: &Policy,
    source_topics: &HashMap<String, i32>,
) -> BTreeMap<String, (String, i32)> {
    let selector = Selector { context, policy };
    let source_alias = context.flow.source.as_str();
    let mut selected = BTreeMap::new();
    let mut remote_owner: HashMap<String, String> = HashMap::new();
    let mut names: Vec<&String> = source_topics.keys().collect();
    names.sort();
    if let Some(filter) = &context.name_filters.topics {
        // One guest call for every topic not asked before; `should_replicate` then reads the
        // cache.
        let candidates: Vec<&str> = names
            .iter()
            .map(|name| name.as_str())
            .filter(|name| {
                context.flow.topics.matches(name) && !context.flow.topics_exclude.matches(name)
            })
            .collect();
        if let Err(error) = filter.current().allows_all(&candidates) {
            tracing::error!(error = %crate::error_chain(&error),
                "The topic filter plugin failed; new topics wait until it answers.");
        }
    }
    for topic in names {
        let partitions = source_topics.get(topic).copied().unwrap_or(0);
        let decision = selector.should_replicate(topic).and_then(|replicate| {
            replicate
                .then(|| policy.format_remote_topic(source_alias, topic))
                .transpose()
        });
        match decision {
            Ok(None) => {}
            Ok(Some(remote)) => {
                if let Some(owner) = remote_owner.get(&remote) {
                    tracing::error!(topic, other = %owner, remote = %remote,
                        "Two source topics map to one remote topic; not mirroring the second.");
                    continue;
                }
                remote_owner.insert(remote.clone(), topic.clone());
                selected.insert(topic.clone(), (remote, partitions));
            }
            Err(error) => {
                tracing::error!(topic, error = %crate::error_chain(&error),
                    "The policy plugin failed; not mirroring this topic until it answers.");
            }
        }
    }
    selected
}

/// Creates missing remote topics, grows those with fewer partitions than their source, and
/// returns the catalog of topics that exist on both sides.
pub(crate) async fn refresh(
    context: &FlowContext,
    policy: &Arc<Policy>,
    source: &Arc<Admin>,
    target: &Arc<Admin>,
) -> Result<Catalog, crate::kafka::AdminError> {
    let source_topics = source.topic_partitions_async().await?;
    let wanted = {
        let policy = Arc::clone(policy);
        // Plugin calls may take up to the plugin deadline; keep them off the async workers.
        tokio::task::block_in_place(|| select(context, &policy, &source_topics))
    };
    let mut target_topics = target.topic_partitions_async().await?;
    let mut changed = false;
    for (topic, (remote, partitions)) in &wanted {
        match target_topics.get(remote) {
            None => {
                tracing::info!(topic, remote, partitions, "Creating remote topic.");
                match target
                    .create_topic(remote, *partitions, context.flow.replication_factor, &[])
                    .await
                {
                    Ok(()) => changed = true,
                    Err(error) => tracing::error!(error = %crate::error_chain(&error),
                        "Creating a remote topic failed; retrying at the next refresh."),
                }
            }
            Some(existing) if existing < partitions => {
                tracing::info!(
                    topic,
                    remote,
                    from = existing,
                    to = partitions,
                    "Adding partitions to remote topic."
                );
                match target.grow_partitions(remote, *partitions).await {
                    Ok(()) => changed = true,
                    Err(error) => tracing::error!(error = %crate::error_chain(&error),
                        "Adding partitions failed; retrying at the next refresh."),
                }
            }
            Some(_) => {}
        }
    }
    if changed {
        // A new topic shows in metadata only once the controller propagated it; without it
        // the catalog would leave the topic out until the next refresh (300 s in MM2 files).
        for _ in 0..METADATA_ATTEMPTS {
            target_topics = target.topic_partitions_async().await?;
            let visible = wanted.values().all(|(remote, partitions)| {
                target_topics
                    .get(remote)
                    .is_some_and(|existing| existing >= partitions)
            });
            if visible {
                break;
            }
            tokio::time::sleep(METADATA_RETRY).await;
        }
    }
    let topics = wanted
        .into_iter()
        .filter_map(|(topic, (remote, partitions))| {
            let existing = target_topics.get(&remote).copied()?;
            Some(MirroredTopic {
                source: Arc::from(topic.as_str()),
                remote: Arc::from(remote.as_str()),
                partitions: partitions.min(existing),
            })
        })
        .collect();
    Ok(Catalog { topics })
}

/// Refreshes the catalog every refresh interval and publishes changes. After the first refresh
/// it starts the flow's config and ACL syncs (`crate::sync`), which run until this task is
/// aborted. Runs until aborted.
pub(crate) async fn run_manager(
    context: Arc<FlowContext>,
    policy: Arc<PolicySlot>,
    source: Arc<Admin>,
    target: Arc<Admin>,
    catalog: watch::Sender<Arc<Catalog>>,
) {
    let flow = context.flow.id.to_string();
    let mut current = policy.current();
    let mut interval = tokio::time::interval(context.flow.refresh_topics_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut calls_seen, mut errors_seen) = (0, 0);
    // Dropping the set (when this task is aborted) aborts the syncs.
    let mut syncs = tokio::task::JoinSet::new();
    let mut syncs_started = false;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = context.refresh_now.notified() => {}
        }
        let latest = policy.current();
        if !Arc::ptr_eq(&latest, &current) {
            // A swapped policy: its counters start at zero.
            (calls_seen, errors_seen) = (0, 0);
            current = latest;
        }
        match refresh(&context, &current, &source, &target).await {
            Ok(fresh) => {
                context
                    .metrics
                    .topics_mirrored
                    .with_label_values(&[&flow])
                    .set(fresh.topics.len() as i64);
                catalog.send_if_modified(|current| {
                    if **current == fresh {
                        return false;
                    }
                    tracing::info!(topics = fresh.topics.len(), "Mirrored topics changed.");
                    *current = Arc::new(fresh);
                    true
                });
            }
            Err(error) => tracing::error!(error = %crate::error_chain(&error),
                "Refreshing topics failed; keeping the current topics."),
        }
        let (calls, errors) = (current.calls(), current.errors());
        let labels = [flow.as_str(), current.name()];
        context
            .metrics
            .plugin_calls
            .with_label_values(&labels)
            .inc_by(calls.saturating_sub(calls_seen));
        context
            .metrics
            .plugin_errors
            .with_label_values(&labels)
            .inc_by(errors.saturating_sub(errors_seen));
        (calls_seen, errors_seen) = (calls, errors);
        if !syncs_started {
            syncs_started = true;
            crate::sync::spawn(&mut syncs, &context, &source, &target);
        }
    }
}
