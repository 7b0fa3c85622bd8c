//! Administrative calls on one cluster that rdkafka wraps: metadata, topic and partition
//! creation, topic configs. The calls rdkafka 0.39 lacks are in `kafka::ffi`, on the same
//! client's handle.

use std::collections::HashMap;

use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigEntry, ConfigResource, NewPartitions, NewTopic,
    OwnedResourceSpecifier, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::{Client, DefaultClientContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::REQUEST_TIMEOUT;
use crate::config::Cluster;

/// Errors of administrative calls.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminCallError {
    /// A client could not be created.
    #[error("creating a client for {cluster} failed")]
    Client {
        cluster: String,
        #[source]
        source: KafkaError,
    },
    /// A metadata request failed.
    #[error("reading metadata of {cluster} failed")]
    Metadata {
        cluster: String,
        #[source]
        source: KafkaError,
    },
    /// Creating a topic failed.
    #[error("creating topic `{topic}` on {cluster} failed: {code}")]
    CreateTopic {
        cluster: String,
        topic: String,
        code: RDKafkaErrorCode,
    },
    /// Adding partitions failed.
    #[error("adding partitions to `{topic}` on {cluster} failed: {code}")]
    CreatePartitions {
        cluster: String,
        topic: String,
        code: RDKafkaErrorCode,
    },
    /// The request itself failed.
    #[error("admin request to {cluster} failed")]
    Request {
        cluster: String,
        #[source]
        source: KafkaError,
    },
}

/// `replication_factor = 0`, Ferry's default: as many replicas as the cluster can give, up to 3.
pub(crate) const AUTO_REPLICATION: i16 = 0;

/// How a topic Ferry creates is replicated: the factor (-1: the broker's
/// `default.replication.factor`) and the `min.insync.replicas` the topic gets, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Replication {
    /// The replication factor.
    pub(crate) factor: i16,
    /// `min.insync.replicas` set on the topic.
    pub(crate) min_insync: Option<i16>,
}

impl Replication {
    /// The replication of `asked` (-1, [`AUTO_REPLICATION`], or a factor) on a cluster of
    /// `brokers` brokers: auto is the smaller of 3 and the broker count; a factor of 3 or more
    /// gets `min.insync.replicas = 2`, so that an acknowledged record is on two brokers and one
    /// broker may be lost without stopping writes.
    pub(crate) fn resolve(asked: i16, brokers: usize) -> Replication {
        let factor = if asked == AUTO_REPLICATION {
            i16::try_from(brokers.clamp(1, 3)).unwrap_or(1)
        } else {
            asked
        };
        Replication {
            factor,
            min_insync: (factor >= 3).then_some(2),
        }
    }
}

/// Administrative access to one cluster: metadata, topic and partition creation, topic configs.
/// The calls rdkafka does not wrap (ACLs, incremental config changes) are in `kafka::ffi`, on
/// this client's handle.
pub(crate) struct Admin {
    name: String,
    client: AdminClient<DefaultClientContext>,
}

impl Admin {
    /// Creates an admin client with the cluster's [`super::admin_client`] settings; `name` is the
    /// cluster alias used in messages.
    pub(crate) fn new(name: &str, cluster: &Cluster) -> Result<Admin, AdminCallError> {
        let client =
            super::admin_client(cluster)
                .create()
                .map_err(|source| AdminCallError::Client {
                    cluster: name.to_owned(),
                    source,
                })?;
        Ok(Admin {
            name: name.to_owned(),
            client,
        })
    }

    /// The cluster alias used in messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The underlying client, for `kafka::ffi`'s librdkafka calls on its handle.
    pub(crate) fn client(&self) -> &Client<DefaultClientContext> {
        self.client.inner()
    }

    /// The configuration entries of each of `topics`, by topic name.
    ///
    /// rdkafka 0.39 drops per-resource errors: a topic whose configuration could not be read
    /// (deleted meanwhile, not authorised) comes back with no entries, whereas every existing
    /// topic has dozens. Callers treat an empty list as "unknown".
    pub(crate) async fn describe_topic_configs(
        &self,
        topics: &[&str],
    ) -> Result<HashMap<String, Vec<ConfigEntry>>, AdminCallError> {
        let specifiers: Vec<ResourceSpecifier<'_>> = topics
            .iter()
            .copied()
            .map(ResourceSpecifier::Topic)
            .collect();
        let results = self
            .client
            .describe_configs(&specifiers, &admin_options())
            .await
            .map_err(|source| AdminCallError::Request {
                cluster: self.name.clone(),
                source,
            })?;
        Ok(results
            .into_iter()
            .filter_map(|result| match result.ok()? {
                ConfigResource {
                    specifier: OwnedResourceSpecifier::Topic(topic),
                    entries,
                } => Some((topic, entries)),
                ConfigResource { .. } => None,
            })
            .collect())
    }

    /// Partition counts of every topic of the cluster. Blocking: call from a blocking context.
    pub(crate) fn topic_partitions(&self) -> Result<HashMap<String, i32>, AdminCallError> {
        let metadata = self
            .client
            .inner()
            .fetch_metadata(None, REQUEST_TIMEOUT)
            .map_err(|source| AdminCallError::Metadata {
                cluster: self.name.clone(),
                source,
            })?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|topic| topic.error().is_none())
            .map(|topic| (topic.name().to_owned(), topic.partitions().len() as i32))
            .collect())
    }

    /// Whether the cluster answers a metadata request within `timeout` (readiness checks).
    pub(crate) async fn answers(
        self: &std::sync::Arc<Self>,
        timeout: std::time::Duration,
    ) -> Result<(), AdminCallError> {
        self.brokers_within(timeout).await.map(|_| ())
    }

    /// The number of brokers the cluster's metadata lists.
    pub(crate) async fn broker_count(self: &std::sync::Arc<Self>) -> Result<usize, AdminCallError> {
        self.brokers_within(REQUEST_TIMEOUT).await
    }

    /// How topics asked with replication factor `asked` are created on this cluster
    /// ([`Replication::resolve`]; only auto asks for the broker count).
    pub(crate) async fn replication(
        self: &std::sync::Arc<Self>,
        asked: i16,
    ) -> Result<Replication, AdminCallError> {
        let brokers = if asked == AUTO_REPLICATION {
            self.broker_count().await?
        } else {
            0
        };
        Ok(Replication::resolve(asked, brokers))
    }

    /// One metadata request (within `timeout`, on the blocking pool): the brokers it lists.
    async fn brokers_within(
        self: &std::sync::Arc<Self>,
        timeout: std::time::Duration,
    ) -> Result<usize, AdminCallError> {
        let admin = std::sync::Arc::clone(self);
        let cluster = self.name.clone();
        tokio::task::spawn_blocking(move || {
            admin
                .client
                .inner()
                .fetch_metadata(None, timeout)
                .map(|metadata| metadata.brokers().len())
                .map_err(|source| AdminCallError::Metadata {
                    cluster: admin.name.clone(),
                    source,
                })
        })
        .await
        .unwrap_or_else(|_| {
            Err(AdminCallError::Request {
                cluster,
                source: KafkaError::Canceled,
            })
        })
    }

    /// [`Admin::topic_partitions`] on the blocking pool, for async callers.
    pub(crate) async fn topic_partitions_async(
        self: &std::sync::Arc<Self>,
    ) -> Result<HashMap<String, i32>, AdminCallError> {
        let admin = std::sync::Arc::clone(self);
        let cluster = self.name.clone();
        tokio::task::spawn_blocking(move || admin.topic_partitions())
            .await
            .unwrap_or_else(|_| {
                Err(AdminCallError::Request {
                    cluster,
                    source: KafkaError::Canceled,
                })
            })
    }

    /// Creates `topic` replicated as `replication` (its `min.insync.replicas` unless `configs`
    /// sets one); an existing topic is not an error.
    pub(crate) async fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
        replication: Replication,
        configs: &[(&str, &str)],
    ) -> Result<(), AdminCallError> {
        let mut new_topic = NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(i32::from(replication.factor)),
        );
        for (key, value) in configs {
            new_topic = new_topic.set(key, value);
        }
        let min_insync = replication.min_insync.map(|count| count.to_string());
        if let Some(count) = &min_insync
            && !configs.iter().any(|(key, _)| *key == "min.insync.replicas")
        {
            new_topic = new_topic.set("min.insync.replicas", count);
        }
        let results = self
            .client
            .create_topics([&new_topic], &admin_options())
            .await;
        self.check(
            results,
            RDKafkaErrorCode::TopicAlreadyExists,
            |cluster, topic, code| AdminCallError::CreateTopic {
                cluster,
                topic,
                code,
            },
        )
    }

    /// Grows `topic` to `partitions` partitions. Growing to the current count is not an error.
    pub(crate) async fn grow_partitions(
        &self,
        topic: &str,
        partitions: i32,
    ) -> Result<(), AdminCallError> {
        let count = usize::try_from(partitions).unwrap_or(0);
        let request = NewPartitions::new(topic, count);
        let results = self
            .client
            .create_partitions([&request], &admin_options())
            .await;
        self.check(
            results,
            RDKafkaErrorCode::InvalidPartitions,
            |cluster, topic, code| AdminCallError::CreatePartitions {
                cluster,
                topic,
                code,
            },
        )
    }

    /// Turns the per-topic results of an admin request into one result; `harmless` is the
    /// error code that means "already done" (the call is idempotent).
    fn check(
        &self,
        results: rdkafka::error::KafkaResult<Vec<rdkafka::admin::TopicResult>>,
        harmless: RDKafkaErrorCode,
        error: impl Fn(String, String, RDKafkaErrorCode) -> AdminCallError,
    ) -> Result<(), AdminCallError> {
        let results = results.map_err(|source| AdminCallError::Request {
            cluster: self.name.clone(),
            source,
        })?;
        for result in results {
            if let Err((topic, code)) = result
                && code != harmless
            {
                return Err(error(self.name.clone(), topic, code));
            }
        }
        Ok(())
    }
}

fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .operation_timeout(Some(REQUEST_TIMEOUT))
        .request_timeout(Some(REQUEST_TIMEOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_up_to_three_replicas_and_three_get_a_min_isr_of_two() {
        let resolve = |asked, brokers| {
            let replication = Replication::resolve(asked, brokers);
            (replication.factor, replication.min_insync)
        };
        assert_eq!(resolve(AUTO_REPLICATION, 1), (1, None));
        assert_eq!(resolve(AUTO_REPLICATION, 2), (2, None));
        assert_eq!(resolve(AUTO_REPLICATION, 3), (3, Some(2)));
        assert_eq!(resolve(AUTO_REPLICATION, 9), (3, Some(2)));
        assert_eq!(resolve(AUTO_REPLICATION, 0), (1, None), "no broker listed");
        assert_eq!(resolve(-1, 9), (-1, None), "the broker's default");
        assert_eq!(resolve(2, 9), (2, None));
        assert_eq!(resolve(5, 1), (5, Some(2)), "fixed factors are kept");
    }
}
