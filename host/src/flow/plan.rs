//! `ferry plan`: what `ferry run` would do to a flow's clusters, read from the live clusters
//! without writing anything.
//!
//! This module owns gathering a [`FlowPlan`] and its pure assembly. Every decision in it is
//! made by the functions `run` applies, so the plan cannot drift from what `run` does: the
//! topic selection and remote names ([`topics::Selector::decide`]), the topic creations and
//! partition additions ([`topics::changes`]), the config operations per remote topic
//! ([`configs::topic_ops`]), the ACLs to create ([`acls::missing_acls`]) and the groups the
//! leader checkpoints ([`leader::select_groups`]). The plugins are loaded as `run` loads them
//! (policy, name filters). Only reads reach the clusters: metadata, DescribeConfigs,
//! DescribeAcls and ListConsumerGroups; no topic, ACL, configuration or offset is written, and
//! no bookkeeping topic is created.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rdkafka::admin::ConfigEntry;
use serde::Serialize;

use super::settings::{acls, configs};
use super::topics::{self, Decision, Selector, TopicChange};
use super::{NameFilters, leader, lease};
use crate::config::{Config, Flow};
use crate::kafka::ffi::{self, NativeError};
use crate::kafka::resources::{ConfigOp, TopicAcl};
use crate::kafka::{Admin, AdminCallError};
use crate::plugins::{PluginError, Policy};

/// Topics per DescribeConfigs request (as the config sync).
const BATCH: usize = 100;

/// What `ferry run` would do for one flow, as `ferry plan` prints it (`--json` is this value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FlowPlan {
    /// The flow (`source->target`).
    pub(crate) flow: String,
    /// The source cluster alias.
    pub(crate) source: String,
    /// The target cluster alias.
    pub(crate) target: String,
    /// Every source topic, by name: mirrored under which remote name, or excluded by which
    /// rule.
    pub(crate) topics: Vec<TopicLine>,
    /// Remote topics to create.
    pub(crate) create_topics: Vec<CreateTopic>,
    /// Remote topics with fewer partitions than their source.
    pub(crate) add_partitions: Vec<AddPartitions>,
    /// The configuration changes of the config sync, per remote topic; `None` when
    /// `sync_topic_configs` is off.
    pub(crate) configs: Option<Vec<ConfigChange>>,
    /// The ACLs the ACL sync would create on the target; `None` when `sync_topic_acls` is off.
    pub(crate) acls: Option<Vec<AclLine>>,
    /// The source groups and whether each is checkpointed; `None` when `emit_checkpoints` is
    /// off.
    pub(crate) groups: Option<GroupsPlan>,
}

/// One source topic's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TopicLine {
    /// The source topic.
    pub(crate) topic: String,
    /// Its partitions.
    pub(crate) partitions: i32,
    /// The remote topic, when mirrored.
    pub(crate) remote: Option<String>,
    /// The rule that excluded it (`topics`, `topics_exclude`, `topic_filter`, `internal`,
    /// `cycle`, `reserved`, `remote_taken`, `plugin_failed`), when not mirrored.
    pub(crate) excluded_by: Option<&'static str>,
    /// The exclusion in words.
    pub(crate) reason: Option<String>,
}

/// A remote topic to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CreateTopic {
    /// The source topic.
    pub(crate) topic: String,
    /// The remote topic.
    pub(crate) remote: String,
    /// Its partitions (the source's).
    pub(crate) partitions: i32,
}

/// Partitions to add to a remote topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AddPartitions {
    /// The source topic.
    pub(crate) topic: String,
    /// The remote topic.
    pub(crate) remote: String,
    /// Its partitions now.
    pub(crate) from: i32,
    /// The source's partitions.
    pub(crate) to: i32,
}

/// The config sync's changes to one remote topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ConfigChange {
    /// The source topic.
    pub(crate) topic: String,
    /// The remote topic.
    pub(crate) remote: String,
    /// Properties set (name → value).
    pub(crate) set: BTreeMap<String, String>,
    /// Topic overrides removed (back to the target's default).
    pub(crate) reset: Vec<String>,
}

/// An ACL binding to create on the target (always LITERAL, on a remote topic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AclLine {
    /// The remote topic.
    pub(crate) topic: String,
    /// The principal.
    pub(crate) principal: String,
    /// The host.
    pub(crate) host: String,
    /// The operation (`READ`, `DESCRIBE`...).
    pub(crate) operation: String,
    /// `ALLOW` or `DENY`.
    pub(crate) permission: String,
}

/// The source groups as the leader selects them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct GroupsPlan {
    /// Whether the checkpointed groups' offsets are also committed on the target
    /// (`sync_group_offsets`).
    pub(crate) offsets_synced: bool,
    /// Every source group, by name.
    pub(crate) groups: Vec<GroupLine>,
}

/// One source group's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct GroupLine {
    /// The group.
    pub(crate) group: String,
    /// Whether it is checkpointed.
    pub(crate) checkpointed: bool,
    /// The rule that excluded it (`groups`, `groups_exclude`, `group_filter`,
    /// `plugin_failed`), when not checkpointed.
    pub(crate) excluded_by: Option<&'static str>,
}

/// Errors gathering a plan.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PlanError {
    /// A cluster named by the flow is missing (validation prevents this).
    #[error("flow {flow} names unknown cluster `{cluster}`")]
    UnknownCluster {
        /// The flow.
        flow: String,
        /// The cluster.
        cluster: String,
    },
    /// Metadata or configurations could not be read.
    #[error("flow {flow}")]
    Admin {
        /// The flow.
        flow: String,
        /// The cause (it names the cluster).
        #[source]
        source: Box<AdminCallError>,
    },
    /// ACLs or groups could not be read.
    #[error("flow {flow}: {what} failed")]
    Native {
        /// The flow.
        flow: String,
        /// What was read.
        what: String,
        /// The cause.
        #[source]
        source: NativeError,
    },
    /// A name filter plugin could not be loaded.
    #[error("flow {flow}: a name filter could not be loaded")]
    Plugin {
        /// The flow.
        flow: String,
        /// The cause, naming the plugin.
        #[source]
        source: PluginError,
    },
}

/// Reads both clusters of `flow` and returns what `ferry run` would do, writing nothing.
/// `policy` is the flow's loaded policy; the name filters are loaded into its engine.
///
/// # Errors
/// When a cluster cannot be read or a name filter does not load.
pub(crate) async fn gather(
    config: &Config,
    flow: &Flow,
    policy: Arc<Policy>,
) -> Result<FlowPlan, PlanError> {
    let id = flow.id.to_string();
    let admin = |name: &crate::config::ClusterName| -> Result<Arc<Admin>, PlanError> {
        let cluster = config
            .clusters
            .get(name)
            .ok_or_else(|| PlanError::UnknownCluster {
                flow: id.clone(),
                cluster: name.to_string(),
            })?;
        Admin::new(name.as_str(), cluster)
            .map(Arc::new)
            .map_err(|source| admin_error(&id, source))
    };
    let (source, target) = (admin(&flow.source)?, admin(&flow.target)?);
    let source_topics = source
        .topic_partitions_async()
        .await
        .map_err(|error| admin_error(&id, error))?;
    let target_topics = target
        .topic_partitions_async()
        .await
        .map_err(|error| admin_error(&id, error))?;
    let engine = policy.engine().clone();
    let filters =
        tokio::task::block_in_place(|| NameFilters::load(&engine, flow)).map_err(|source| {
            PlanError::Plugin {
                flow: id.clone(),
                source,
            }
        })?;
    let positions_topic = flow.positions_topic.clone();
    let lease_topic = lease::lease_topic(flow.source.as_str());
    let decisions = tokio::task::block_in_place(|| {
        Selector {
            flow,
            reserved: [positions_topic.as_str(), lease_topic.as_str()],
            topic_filter: filters.topics.as_deref(),
            policy: &policy,
        }
        .decide(&source_topics)
    });
    let mut plan = assemble(flow, &decisions, &target_topics);
    let wanted = topics::wanted(decisions);
    if flow.sync_topic_configs.is_some() {
        plan.configs = Some(
            config_changes(flow, &filters, &wanted, &target_topics, &source, &target)
                .await
                .map_err(|error| admin_error(&id, error))?,
        );
    }
    if flow.sync_topic_acls.is_some() {
        plan.acls = Some(acl_lines(&wanted, &source, &target).await.map_err(
            |(what, source)| PlanError::Native {
                flow: id.clone(),
                what,
                source,
            },
        )?);
    }
    if flow.emit_checkpoints.is_some() {
        let admin = Arc::clone(&source);
        let listed = tokio::task::spawn_blocking(move || ffi::list_groups(admin.client()))
            .await
            .unwrap_or(Err(NativeError::Cancelled))
            .map_err(|source| PlanError::Native {
                flow: id.clone(),
                what: format!("listing the consumer groups of {}", flow.source),
                source,
            })?;
        let filter = filters.groups.as_ref().map(|slot| slot.current());
        let names = listed.into_iter().map(|(name, _state)| name).collect();
        let decided =
            tokio::task::block_in_place(|| leader::select_groups(flow, filter.as_deref(), names));
        plan.groups = Some(groups_plan(flow, decided));
    }
    Ok(plan)
}

fn admin_error(flow: &str, source: AdminCallError) -> PlanError {
    PlanError::Admin {
        flow: flow.to_owned(),
        source: Box::new(source),
    }
}

/// The plan's topic part: every source topic's decision, and the target changes
/// [`topics::changes`] makes of them (the settings and groups are left unset).
pub(crate) fn assemble(
    flow: &Flow,
    decisions: &BTreeMap<String, Decision>,
    target_topics: &HashMap<String, i32>,
) -> FlowPlan {
    let topics = decisions
        .iter()
        .map(|(topic, decision)| {
            let (remote, excluded_by, reason) = match &decision.outcome {
                Ok(remote) => (Some(remote.clone()), None, None),
                Err(exclusion) => (None, Some(exclusion.rule()), Some(exclusion.to_string())),
            };
            TopicLine {
                topic: topic.clone(),
                partitions: decision.partitions,
                remote,
                excluded_by,
                reason,
            }
        })
        .collect();
    let wanted = topics::wanted(decisions.clone());
    let (mut create_topics, mut add_partitions) = (Vec::new(), Vec::new());
    for change in topics::changes(&wanted, target_topics) {
        match change {
            TopicChange::Create {
                topic,
                remote,
                partitions,
            } => create_topics.push(CreateTopic {
                topic: topic.to_owned(),
                remote: remote.to_owned(),
                partitions,
            }),
            TopicChange::Grow {
                topic,
                remote,
                from,
                to,
            } => add_partitions.push(AddPartitions {
                topic: topic.to_owned(),
                remote: remote.to_owned(),
                from,
                to,
            }),
        }
    }
    FlowPlan {
        flow: flow.id.to_string(),
        source: flow.source.to_string(),
        target: flow.target.to_string(),
        topics,
        create_topics,
        add_partitions,
        configs: None,
        acls: None,
        groups: None,
    }
}

/// The config sync's operations per mirrored topic: against the remote topic's configuration
/// when it exists, against none when `run` would create it first (a new topic has no
/// overrides, so only SETs remain).
async fn config_changes(
    flow: &Flow,
    filters: &NameFilters,
    wanted: &BTreeMap<String, (String, i32)>,
    target_topics: &HashMap<String, i32>,
    source: &Admin,
    target: &Admin,
) -> Result<Vec<ConfigChange>, AdminCallError> {
    let filter = filters
        .config_properties
        .as_ref()
        .map(|slot| slot.current());
    let mirrored: Vec<(&String, &String)> = wanted
        .iter()
        .map(|(topic, (remote, _))| (topic, remote))
        .collect();
    let mut changes = Vec::new();
    for batch in mirrored.chunks(BATCH) {
        let sources: Vec<&str> = batch.iter().map(|(topic, _)| topic.as_str()).collect();
        let remotes: Vec<&str> = batch
            .iter()
            .map(|(_, remote)| remote.as_str())
            .filter(|remote| target_topics.contains_key(*remote))
            .collect();
        let source_configs = source.describe_topic_configs(&sources).await?;
        let target_configs = if remotes.is_empty() {
            HashMap::new()
        } else {
            target.describe_topic_configs(&remotes).await?
        };
        for (topic, remote) in batch {
            let Some(source_entries @ [_, ..]) =
                source_configs.get(topic.as_str()).map(Vec::as_slice)
            else {
                continue;
            };
            let target_entries: &[ConfigEntry] = if target_topics.contains_key(remote.as_str()) {
                match target_configs.get(remote.as_str()).map(Vec::as_slice) {
                    // Unreadable: the config sync skips it too.
                    None | Some([]) => continue,
                    Some(entries) => entries,
                }
            } else {
                &[]
            };
            let ops = tokio::task::block_in_place(|| {
                configs::topic_ops(flow, filter.as_deref(), source_entries, target_entries)
            });
            if let Some(change) = config_change(topic, remote, ops) {
                changes.push(change);
            }
        }
    }
    Ok(changes)
}

/// The plan line of `ops` on `remote`; `None` without any.
fn config_change(topic: &str, remote: &str, ops: Vec<ConfigOp>) -> Option<ConfigChange> {
    if ops.is_empty() {
        return None;
    }
    let mut change = ConfigChange {
        topic: topic.to_owned(),
        remote: remote.to_owned(),
        set: BTreeMap::new(),
        reset: Vec::new(),
    };
    for op in ops {
        match op {
            ConfigOp::Set { name, value } => {
                change.set.insert(name, value);
            }
            ConfigOp::Delete { name } => change.reset.push(name),
        }
    }
    Some(change)
}

/// The ACLs the ACL sync would create for the mirrored topics `wanted`.
async fn acl_lines(
    wanted: &BTreeMap<String, (String, i32)>,
    source: &Arc<Admin>,
    target: &Arc<Admin>,
) -> Result<Vec<AclLine>, (String, NativeError)> {
    let remote_names: HashMap<&str, &str> = wanted
        .iter()
        .map(|(topic, (remote, _))| (topic.as_str(), remote.as_str()))
        .collect();
    let read = |admin: &Arc<Admin>| {
        let what = format!("reading the topic ACLs of {}", admin.name());
        let admin = Arc::clone(admin);
        async move {
            ffi::describe_topic_acls(&admin)
                .await
                .map_err(|error| (what, error))
        }
    };
    let source_acls = read(source).await?;
    let target_acls = read(target).await?;
    Ok(
        acls::missing_acls(&source_acls, &target_acls, &remote_names)
            .into_iter()
            .map(acl_line)
            .collect(),
    )
}

/// An ACL as the plan prints it: Kafka's names (`READ`, `ALLOW`).
fn acl_line(acl: TopicAcl) -> AclLine {
    let upper = |debug: String| {
        // `DescribeConfigs` → `DESCRIBE_CONFIGS`, Kafka's spelling.
        let mut name = String::new();
        for (index, character) in debug.chars().enumerate() {
            if character.is_uppercase() && index > 0 {
                name.push('_');
            }
            name.push(character.to_ascii_uppercase());
        }
        name
    };
    AclLine {
        topic: acl.topic,
        principal: acl.principal,
        host: acl.host,
        operation: upper(format!("{:?}", acl.operation)),
        permission: upper(format!("{:?}", acl.permission)),
    }
}

/// The groups part of the plan from the leader's decisions.
fn groups_plan(flow: &Flow, decided: Vec<(String, Option<leader::GroupExclusion>)>) -> GroupsPlan {
    GroupsPlan {
        offsets_synced: flow.sync_group_offsets.is_some(),
        groups: decided
            .into_iter()
            .map(|(group, exclusion)| GroupLine {
                group,
                checkpointed: exclusion.is_none(),
                excluded_by: exclusion.map(leader::GroupExclusion::rule),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::topics::tests::{flow, topics};
    use crate::kafka::resources::{Operation, PatternType, Permission};
    use crate::plugins::Engine;

    #[test]
    fn every_source_topic_is_listed_with_its_rule_and_the_target_changes() {
        let flow = flow(
            "topics = [\"orders.*\", \"payments\", \"clusterB.orders.x\"]\n\
             topics_exclude = [\"orders.secret\"]\n",
        );
        let engine = Engine::new().unwrap();
        let policy =
            Policy::load(&engine, &flow.policy.uses, &flow.plugin_init(&flow.policy)).unwrap();
        let decisions = Selector {
            flow: &flow,
            reserved: [
                "mm2-offsets.clusterA.internal",
                "ferry-tasks.clusterA.internal",
            ],
            topic_filter: None,
            policy: &policy,
        }
        .decide(&topics(&[
            ("orders.eu", 3),
            ("orders.us", 4),
            ("orders.secret", 1),
            ("payments", 2),
            ("logs", 1),
            ("clusterB.orders.x", 1),
            ("__consumer_offsets", 50),
            ("mm2-offsets.clusterA.internal", 25),
            ("orders.checkpoints.internal", 1),
        ]));
        let plan = assemble(
            &flow,
            &decisions,
            &topics(&[("clusterA.orders.us", 2), ("clusterA.payments", 2)]),
        );
        let lines: Vec<(&str, Option<&str>, Option<&str>)> = plan
            .topics
            .iter()
            .map(|line| {
                (
                    line.topic.as_str(),
                    line.remote.as_deref(),
                    line.excluded_by,
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                ("__consumer_offsets", None, Some("reserved")),
                ("clusterB.orders.x", None, Some("cycle")),
                ("logs", None, Some("topics")),
                ("mm2-offsets.clusterA.internal", None, Some("reserved")),
                ("orders.checkpoints.internal", None, Some("internal")),
                ("orders.eu", Some("clusterA.orders.eu"), None),
                ("orders.secret", None, Some("topics_exclude")),
                ("orders.us", Some("clusterA.orders.us"), None),
                ("payments", Some("clusterA.payments"), None),
            ]
        );
        assert_eq!(
            plan.create_topics,
            [CreateTopic {
                topic: "orders.eu".into(),
                remote: "clusterA.orders.eu".into(),
                partitions: 3
            }]
        );
        assert_eq!(
            plan.add_partitions,
            [AddPartitions {
                topic: "orders.us".into(),
                remote: "clusterA.orders.us".into(),
                from: 2,
                to: 4
            }]
        );
        // What `run` mirrors is what the plan lists as mirrored.
        let wanted = topics::wanted(decisions);
        let mirrored: Vec<&str> = plan
            .topics
            .iter()
            .filter(|line| line.remote.is_some())
            .map(|line| line.topic.as_str())
            .collect();
        assert_eq!(
            wanted.keys().map(String::as_str).collect::<Vec<_>>(),
            mirrored
        );
    }

    #[test]
    fn config_lines_split_sets_and_resets() {
        let ops = vec![
            ConfigOp::Set {
                name: "retention.ms".into(),
                value: "1".into(),
            },
            ConfigOp::Delete {
                name: "segment.ms".into(),
            },
        ];
        assert_eq!(
            config_change("a", "A.a", ops),
            Some(ConfigChange {
                topic: "a".into(),
                remote: "A.a".into(),
                set: BTreeMap::from([("retention.ms".into(), "1".into())]),
                reset: vec!["segment.ms".into()],
            })
        );
        assert_eq!(config_change("a", "A.a", Vec::new()), None);
    }

    #[test]
    fn acl_lines_use_kafkas_names() {
        let line = acl_line(TopicAcl {
            topic: "A.a".into(),
            pattern: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::DescribeConfigs,
            permission: Permission::Allow,
        });
        assert_eq!(
            (line.operation.as_str(), line.permission.as_str()),
            ("DESCRIBE_CONFIGS", "ALLOW")
        );
    }

    #[test]
    fn groups_follow_the_group_patterns() {
        let flow = flow("groups = [\"app-.*\"]\ngroups_exclude = [\"app-test\"]\n");
        let decided = leader::select_groups(
            &flow,
            None,
            vec!["other".into(), "app-test".into(), "app-one".into()],
        );
        let plan = groups_plan(&flow, decided);
        let lines: Vec<(&str, bool, Option<&str>)> = plan
            .groups
            .iter()
            .map(|line| (line.group.as_str(), line.checkpointed, line.excluded_by))
            .collect();
        assert_eq!(
            lines,
            [
                ("app-one", true, None),
                ("app-test", false, Some("groups_exclude")),
                ("other", false, Some("groups")),
            ]
        );
    }
}
