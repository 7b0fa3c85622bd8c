//! Which source topics a flow mirrors, and keeping their remote topics in place.
//!
//! The selection is MM2's `MirrorSourceConnector#shouldReplicateTopic` (`docs/mm2-facts.md`, "Topic selection"):
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
use crate::config::Flow;
use crate::events::{CallsSeen, Events};
use crate::kafka::Admin;
use crate::plugins::{NameFilter, PluginError, Policy, PolicySlot, Slot};
use crate::replication::catalog::{Catalog, MirroredTopic};

/// How often, and how far apart, the target's metadata is read again until created topics
/// and partitions are visible.
const METADATA_ATTEMPTS: usize = 20;
const METADATA_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

/// Cycle detection gives up after this many hops (a hostile policy could loop forever).
const MAX_HOPS: usize = 64;

/// Decides whether a source topic is mirrored by a flow, and under which remote name.
pub(crate) struct Selector<'a> {
    /// The flow's configuration.
    pub(crate) flow: &'a Flow,
    /// Ferry's bookkeeping topics of the flow (positions, task leases): never mirrored.
    pub(crate) reserved: [&'a str; 2],
    /// The flow's topic filter plugin, if any.
    pub(crate) topic_filter: Option<&'a Slot<NameFilter>>,
    /// The policy answering every naming question.
    pub(crate) policy: &'a Policy,
}

impl<'a> Selector<'a> {
    /// The selector of `context`'s flow with `policy`.
    pub(crate) fn of(context: &'a FlowContext, policy: &'a Policy) -> Selector<'a> {
        Selector {
            flow: &context.tasks.flow,
            reserved: [&context.tasks.positions_topic, &context.lease_topic],
            topic_filter: context.name_filters.topics.as_deref(),
            policy,
        }
    }

    /// MM2's `shouldReplicateTopic`, plus a host guard (Kafka's own `__` topics and Ferry's
    /// bookkeeping topics are never mirrored, whatever a plugin answers): why `topic` is not
    /// mirrored, the first rule that excludes it in MM2's order, or `None` when it is.
    pub(crate) fn exclusion(&self, topic: &str) -> Result<Option<Exclusion>, PluginError> {
        let flow = self.flow;
        if topic.starts_with("__") || self.reserved.contains(&topic) {
            return Ok(Some(Exclusion::Reserved));
        }
        let unselected = if !flow.topics.matches(topic) {
            Some(Exclusion::Topics)
        } else if flow.topics_exclude.matches(topic) {
            Some(Exclusion::TopicsExclude)
        } else {
            match self.topic_filter {
                Some(filter) if !filter.current().allows(topic)? => Some(Exclusion::TopicFilter),
                _ => None,
            }
        };
        if let Some(reason) = unselected {
            // MM2 mirrors heartbeats topics whatever `topics` says.
            let heartbeat =
                flow.heartbeats_replication && self.policy.is_heartbeats_topic(topic)?;
            if !heartbeat {
                return Ok(Some(reason));
            }
        }
        if self.policy.is_internal_topic(topic)? {
            return Ok(Some(Exclusion::Internal));
        }
        if self.is_cycle(topic)? {
            return Ok(Some(Exclusion::Cycle));
        }
        Ok(None)
    }

    /// MM2's `isCycle`: whether any hop in the topic's alias chain is the target cluster.
    pub(crate) fn is_cycle(&self, topic: &str) -> Result<bool, PluginError> {
        let target = self.flow.target.as_str();
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

    /// The wanted (source → remote name, partitions) map from source metadata. A topic the
    /// policy fails on, and the second of two topics mapping to one remote name, are left out
    /// (logged).
    pub(crate) fn select(
        &self,
        source_topics: &HashMap<String, i32>,
    ) -> BTreeMap<String, (String, i32)> {
        wanted(self.decide(source_topics))
    }

    /// The decision on every source topic (name → partitions): mirrored under which remote
    /// name, or excluded by which rule. [`Selector::select`] (what `run` mirrors) and `ferry
    /// plan` (what it prints) both read it. A policy failure and a second source topic mapping
    /// to a remote name already taken are logged.
    pub(crate) fn decide(
        &self,
        source_topics: &HashMap<String, i32>,
    ) -> BTreeMap<String, Decision> {
        let source_alias = self.flow.source.as_str();
        let mut decisions = BTreeMap::new();
        let mut remote_owner: HashMap<String, String> = HashMap::new();
        let mut names: Vec<&String> = source_topics.keys().collect();
        names.sort();
        if let Some(filter) = self.topic_filter {
            // One guest call for every topic not asked before; `exclusion` then reads the
            // cache.
            let candidates: Vec<&str> = names
                .iter()
                .map(|name| name.as_str())
                .filter(|name| {
                    self.flow.topics.matches(name) && !self.flow.topics_exclude.matches(name)
                })
                .collect();
            if let Err(error) = filter.current().allows_all(&candidates) {
                tracing::error!(error = %crate::error_chain(&error),
                    "The topic filter plugin failed; new topics wait until it answers.");
            }
        }
        for topic in names {
            let partitions = source_topics.get(topic).copied().unwrap_or(0);
            let decision = self.exclusion(topic).and_then(|exclusion| match exclusion {
                Some(exclusion) => Ok(Err(exclusion)),
                None => self.policy.format_remote_topic(source_alias, topic).map(Ok),
            });
            let outcome = match decision {
                Ok(Ok(remote)) => match remote_owner.get(&remote) {
                    Some(owner) => {
                        tracing::error!(topic, other = %owner, remote = %remote,
                            "Two source topics map to one remote topic; not mirroring the second.");
                        Err(Exclusion::RemoteTaken {
                            remote,
                            by: owner.clone(),
                        })
                    }
                    None => {
                        remote_owner.insert(remote.clone(), topic.clone());
                        Ok(remote)
                    }
                },
                Ok(Err(exclusion)) => Err(exclusion),
                Err(error) => {
                    let error = crate::error_chain(&error);
                    tracing::error!(topic, error = %error,
                        "The policy plugin failed; not mirroring this topic until it answers.");
                    Err(Exclusion::PluginFailed(error))
                }
            };
            decisions.insert(
                topic.clone(),
                Decision {
                    partitions,
                    outcome,
                },
            );
        }
        decisions
    }
}

/// What the selection decided on one source topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The source topic's partitions.
    pub(crate) partitions: i32,
    /// The remote topic's name, or why the topic is not mirrored.
    pub(crate) outcome: Result<String, Exclusion>,
}

/// Why a source topic is not mirrored: the rule that excluded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exclusion {
    /// A Kafka `__` topic or one of the flow's bookkeeping topics (positions, task leases).
    Reserved,
    /// No pattern of `topics` matches it.
    Topics,
    /// A pattern of `topics_exclude` matches it.
    TopicsExclude,
    /// The `topic_filter` plugin refused it.
    TopicFilter,
    /// The policy calls it an internal topic (MM2's `isInternalTopic`: checkpoints, offset
    /// syncs, MM2's own `mm2-*` topics...).
    Internal,
    /// A hop of its alias chain is the target cluster (MM2's `isCycle`).
    Cycle,
    /// An earlier source topic (in name order) maps to the same remote topic.
    RemoteTaken {
        /// The remote topic.
        remote: String,
        /// The source topic that has it.
        by: String,
    },
    /// A plugin failed answering; retried at the next refresh.
    PluginFailed(String),
}

impl Exclusion {
    /// The rule's name as `ferry plan` prints it: the configuration key where there is one.
    pub(crate) fn rule(&self) -> &'static str {
        match self {
            Exclusion::Reserved => "reserved",
            Exclusion::Topics => "topics",
            Exclusion::TopicsExclude => "topics_exclude",
            Exclusion::TopicFilter => "topic_filter",
            Exclusion::Internal => "internal",
            Exclusion::Cycle => "cycle",
            Exclusion::RemoteTaken { .. } => "remote_taken",
            Exclusion::PluginFailed(_) => "plugin_failed",
        }
    }
}

impl std::fmt::Display for Exclusion {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exclusion::Reserved => formatter.write_str("a Kafka or Ferry bookkeeping topic"),
            Exclusion::Topics => formatter.write_str("no pattern of `topics` matches"),
            Exclusion::TopicsExclude => formatter.write_str("matched by `topics_exclude`"),
            Exclusion::TopicFilter => formatter.write_str("refused by the `topic_filter` plugin"),
            Exclusion::Internal => formatter.write_str("an internal topic for the policy"),
            Exclusion::Cycle => formatter.write_str("a remote topic of the target (cycle)"),
            Exclusion::RemoteTaken { remote, by } => {
                write!(
                    formatter,
                    "`{remote}` is already the remote topic of `{by}`"
                )
            }
            Exclusion::PluginFailed(error) => write!(formatter, "a plugin failed: {error}"),
        }
    }
}

/// The mirrored topics of `decisions`: source → (remote name, partitions).
pub(crate) fn wanted(decisions: BTreeMap<String, Decision>) -> BTreeMap<String, (String, i32)> {
    decisions
        .into_iter()
        .filter_map(|(topic, decision)| {
            Some((topic, (decision.outcome.ok()?, decision.partitions)))
        })
        .collect()
}

/// Computes the wanted (source → remote name, partitions) map of `context`'s flow.
pub(super) fn select(
    context: &FlowContext,
    policy: &Policy,
    source_topics: &HashMap<String, i32>,
) -> BTreeMap<String, (String, i32)> {
    Selector::of(context, policy).select(source_topics)
}

/// A change the topic manager makes on the target for a wanted remote topic.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TopicChange<'a> {
    /// Create `remote` with `partitions` partitions (the source's count).
    Create {
        /// The source topic.
        topic: &'a str,
        /// The remote topic.
        remote: &'a str,
        /// Its partitions.
        partitions: i32,
    },
    /// Grow `remote` from `from` to `to` partitions (the source grew).
    Grow {
        /// The source topic.
        topic: &'a str,
        /// The remote topic.
        remote: &'a str,
        /// Its partitions now.
        from: i32,
        /// The source's partitions.
        to: i32,
    },
}

/// What must change on the target so that every wanted remote topic exists with at least its
/// source's partitions. A remote topic with more partitions is left alone (Kafka cannot shrink
/// a topic; the extra partitions get no records).
pub(crate) fn changes<'a>(
    wanted: &'a BTreeMap<String, (String, i32)>,
    target_topics: &HashMap<String, i32>,
) -> Vec<TopicChange<'a>> {
    wanted
        .iter()
        .filter_map(
            |(topic, (remote, partitions))| match target_topics.get(remote) {
                None => Some(TopicChange::Create {
                    topic,
                    remote,
                    partitions: *partitions,
                }),
                Some(existing) if existing < partitions => Some(TopicChange::Grow {
                    topic,
                    remote,
                    from: *existing,
                    to: *partitions,
                }),
                Some(_) => None,
            },
        )
        .collect()
}

/// The catalog: the wanted topics whose remote topic exists, with the partitions both sides
/// have (source partition N goes to remote partition N).
pub(crate) fn catalog(
    wanted: BTreeMap<String, (String, i32)>,
    target_topics: &HashMap<String, i32>,
) -> Catalog {
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
    Catalog { topics }
}

/// Creates missing remote topics, grows those with fewer partitions than their source, and
/// returns the catalog of topics that exist on both sides.
pub(crate) async fn refresh(
    context: &FlowContext,
    policy: &Arc<Policy>,
    source: &Arc<Admin>,
    target: &Arc<Admin>,
) -> Result<Catalog, crate::kafka::AdminCallError> {
    let source_topics = source.topic_partitions_async().await?;
    let wanted = {
        let policy = Arc::clone(policy);
        // Plugin calls may take up to the plugin deadline; keep them off the async workers.
        tokio::task::block_in_place(|| select(context, &policy, &source_topics))
    };
    let mut target_topics = target.topic_partitions_async().await?;
    let mut changed = false;
    for change in changes(&wanted, &target_topics) {
        match change {
            TopicChange::Create {
                topic,
                remote,
                partitions,
            } => {
                tracing::info!(topic, remote, partitions, "Creating remote topic.");
                match target
                    .create_topic(remote, partitions, context.remote_replication, &[])
                    .await
                {
                    Ok(()) => changed = true,
                    Err(error) => tracing::error!(error = %crate::error_chain(&error),
                        "Creating a remote topic failed; retrying at the next refresh."),
                }
            }
            TopicChange::Grow {
                topic,
                remote,
                from,
                to,
            } => {
                tracing::info!(
                    topic,
                    remote,
                    from,
                    to,
                    "Adding partitions to remote topic."
                );
                match target.grow_partitions(remote, to).await {
                    Ok(()) => changed = true,
                    Err(error) => tracing::error!(error = %crate::error_chain(&error),
                        "Adding partitions failed; retrying at the next refresh."),
                }
            }
        }
    }
    if changed {
        // A new topic shows in metadata only once the controller propagated it; without it
        // the catalog would leave the topic out until the next refresh (300 s in MM2 files).
        for _ in 0..METADATA_ATTEMPTS {
            target_topics = target.topic_partitions_async().await?;
            if changes(&wanted, &target_topics).is_empty() {
                break;
            }
            tokio::time::sleep(METADATA_RETRY).await;
        }
    }
    Ok(catalog(wanted, &target_topics))
}

/// Refreshes the catalog every refresh interval (and when `refresh_now` is notified) and
/// publishes changes. Runs until aborted.
pub(crate) async fn run_manager(
    context: Arc<FlowContext>,
    policy: Arc<PolicySlot>,
    source: Arc<Admin>,
    target: Arc<Admin>,
    catalog: watch::Sender<Arc<Catalog>>,
) {
    let flow = context.tasks.flow.id.to_string();
    let events = Events::new(&context.tasks.metrics, &context.tasks.flow.id);
    let mut interval = tokio::time::interval(context.tasks.flow.refresh_topics_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut policy_calls, mut filter_calls) = (CallsSeen::default(), CallsSeen::default());
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = context.refresh_now.notified() => {}
        }
        let current = policy.current();
        match refresh(&context, &current, &source, &target).await {
            Ok(fresh) => {
                context
                    .tasks
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
        events.plugin_calls_so_far(
            current.name(),
            Arc::as_ptr(&current) as usize,
            (current.calls(), current.errors()),
            &mut policy_calls,
        );
        if let Some(slot) = &context.name_filters.topics {
            let filter = slot.current();
            events.plugin_calls_so_far(
                filter.name(),
                Arc::as_ptr(&filter) as usize,
                (filter.calls(), filter.errors()),
                &mut filter_calls,
            );
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;

    use super::*;
    use crate::plugins::Engine;

    /// The first flow of a file with `extra` in its `[[flows]]` table (also for `plan`'s tests).
    pub(in crate::flow) fn flow(extra: &str) -> Flow {
        let text = format!(
            "[clusters.clusterA]\nbootstrap_servers = \"127.0.0.1:1\"\n\
             [clusters.clusterB]\nbootstrap_servers = \"127.0.0.1:2\"\n\
             [[flows]]\nsource = \"clusterA\"\ntarget = \"clusterB\"\n{extra}"
        );
        let mut config = crate::config::parse(&text, Path::new("ferry.toml"))
            .unwrap_or_else(|errors| panic!("{errors}"));
        config.flows.remove(0)
    }

    /// Topic name → partition count (also for `plan`'s tests).
    pub(in crate::flow) fn topics(list: &[(&str, i32)]) -> HashMap<String, i32> {
        list.iter()
            .map(|(name, partitions)| ((*name).to_owned(), *partitions))
            .collect()
    }

    fn select(flow: &Flow, source: &[(&str, i32)]) -> Vec<(String, String, i32)> {
        let engine = Engine::new().unwrap();
        let policy =
            Policy::load(&engine, &flow.policy.uses, &flow.plugin_init(&flow.policy)).unwrap();
        let selector = Selector {
            flow,
            reserved: [
                "mm2-offsets.clusterA.internal",
                "ferry-tasks.clusterA.internal",
            ],
            topic_filter: None,
            policy: &policy,
        };
        selector
            .select(&topics(source))
            .into_iter()
            .map(|(topic, (remote, partitions))| (topic, remote, partitions))
            .collect()
    }

    #[test]
    fn selection_follows_mm2_rules_with_the_default_policy() {
        let flow = flow("topics = [\"prod.*.global$\"]\n");
        let selected = select(
            &flow,
            &[
                ("prod.orders.global", 8),
                ("prod.orders.local", 8),
                ("clusterB.prod.orders.global", 3),
                ("heartbeats", 1),
                ("__consumer_offsets", 50),
                ("mm2-offsets.clusterA.internal", 25),
            ],
        );
        assert_eq!(
            selected,
            [
                ("heartbeats".into(), "clusterA.heartbeats".into(), 1),
                (
                    "prod.orders.global".into(),
                    "clusterA.prod.orders.global".into(),
                    8
                ),
            ],
            "a remote topic of the target is a cycle; heartbeats are mirrored; internal and \
             reserved topics never are"
        );
    }

    #[test]
    fn changes_create_missing_topics_and_grow_smaller_ones_only() {
        let wanted: BTreeMap<String, (String, i32)> =
            [("a", "A.a", 3), ("b", "A.b", 8), ("c", "A.c", 2)]
                .into_iter()
                .map(|(topic, remote, partitions)| {
                    (topic.to_owned(), (remote.to_owned(), partitions))
                })
                .collect();
        let target = topics(&[("A.b", 4), ("A.c", 6)]);
        assert_eq!(
            changes(&wanted, &target),
            [
                TopicChange::Create {
                    topic: "a",
                    remote: "A.a",
                    partitions: 3
                },
                TopicChange::Grow {
                    topic: "b",
                    remote: "A.b",
                    from: 4,
                    to: 8
                },
            ]
        );
        let catalog = catalog(wanted, &target);
        let listed: Vec<(&str, &str, i32)> = catalog
            .topics
            .iter()
            .map(|topic| (&*topic.source, &*topic.remote, topic.partitions))
            .collect();
        assert_eq!(
            listed,
            [("b", "A.b", 4), ("c", "A.c", 2)],
            "only topics on both sides, with the partitions both have"
        );
    }
}
