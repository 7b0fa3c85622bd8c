//! The Java client keys of an MM2 file (`<alias>.consumer.<key>`, `<alias>.producer.<key>`,
//! `<alias>.admin.<key>` and their `<source>-><target>.` forms) and the librdkafka property each
//! becomes in the cluster's per-role table, or why it cannot.
//!
//! This module owns that table, and nothing else: one [`client_key`] match, each unmapped key
//! with its reason, so that the mapping can be read (and reviewed) in one place. Which cluster
//! and role a key belongs to, and MM2's precedence, are `resolve::roles`'s.

use crate::config::ClientRole;

/// What a Java client key of one role becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientKey {
    /// The librdkafka property of that name, with the value converted.
    Map(&'static str, Convert),
    /// A connection or security key (`bootstrap.servers`, `security.protocol`, `ssl.*`,
    /// `sasl.*`): Ferry's clients of a cluster share the cluster's own value.
    Cluster,
    /// `compression.<codec>.level`: librdkafka's `compression.level`, when `<codec>` is the
    /// role's `compression.type`.
    CompressionLevel(&'static str),
    /// Not used, and why.
    Unused(&'static str),
}

/// How a Java value becomes a librdkafka value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Convert {
    /// Unchanged.
    Same,
    /// Bytes to kilobytes, rounded up (`buffer.memory` → `queue.buffering.max.kbytes`).
    BytesToKbytes,
    /// Java's `-1` (the operating system's default) is librdkafka's `0`.
    OsDefault,
    /// `earliest` or `latest`; Java's `none` has no counterpart.
    OffsetReset,
    /// 1 to 5 requests in flight: the most an idempotent producer allows.
    InFlight,
}

impl Convert {
    /// The librdkafka value of the Java `value`, or why there is none. Messages quote the
    /// value: none of these keys holds a secret.
    pub(super) fn apply(self, value: &str) -> Result<String, String> {
        let integer = || {
            value
                .parse::<i64>()
                .map_err(|_| format!("expected an integer, not `{value}`"))
        };
        match self {
            Self::Same => Ok(value.to_owned()),
            Self::BytesToKbytes => match u64::try_from(integer()?) {
                Ok(bytes) if bytes > 0 => Ok(bytes.div_ceil(1024).to_string()),
                _ => Err(format!("must be greater than 0, not {value}")),
            },
            Self::OsDefault => match integer()? {
                -1 => Ok("0".to_owned()),
                bytes => Ok(bytes.to_string()),
            },
            Self::OffsetReset => match value.to_ascii_lowercase().as_str() {
                "earliest" => Ok("earliest".to_owned()),
                "latest" => Ok("latest".to_owned()),
                "none" => Err(
                    "`none` is not supported: a partition without a stored position starts at `earliest` (mm2's default) or `latest`"
                        .to_owned(),
                ),
                _ => Err(format!(
                    "expected `earliest` or `latest`, not `{value}`"
                )),
            },
            Self::InFlight => match integer()? {
                requests @ 1..=5 => Ok(requests.to_string()),
                requests => Err(format!(
                    "must be between 1 and 5 (ferry's producers are idempotent, which allows at most 5), not {requests}"
                )),
            },
        }
    }
}

/// What the Java client key `name` of `role` becomes in librdkafka.
pub(super) fn client_key(role: ClientRole, name: &str) -> ClientKey {
    use ClientKey::{Cluster, CompressionLevel, Map, Unused};
    use ClientRole::{Admin, Consumer, Producer};
    use Convert::{BytesToKbytes, InFlight, OffsetReset, OsDefault, Same};
    if matches!(name, "bootstrap.servers" | "security.protocol")
        || name.starts_with("ssl.")
        || name.starts_with("sasl.")
    {
        return Cluster;
    }
    match (role, name) {
        // Every role.
        (_, "client.id") => Map("client.id", Same),
        (_, "retry.backoff.ms") => Map("retry.backoff.ms", Same),
        (_, "retry.backoff.max.ms") => Map("retry.backoff.max.ms", Same),
        (_, "reconnect.backoff.ms") => Map("reconnect.backoff.ms", Same),
        (_, "reconnect.backoff.max.ms") => Map("reconnect.backoff.max.ms", Same),
        (_, "connections.max.idle.ms") => Map("connections.max.idle.ms", Same),
        (_, "socket.connection.setup.timeout.ms") => {
            Map("socket.connection.setup.timeout.ms", Same)
        }
        (_, "send.buffer.bytes") => Map("socket.send.buffer.bytes", OsDefault),
        (_, "receive.buffer.bytes") => Map("socket.receive.buffer.bytes", OsDefault),
        (_, "metadata.max.age.ms") => Map("metadata.max.age.ms", Same),
        (_, "client.dns.lookup") => Map("client.dns.lookup", Same),
        // librdkafka's producer request timeout has the Java name; its consumers and admin
        // clients time requests out with `socket.timeout.ms`.
        (Producer, "request.timeout.ms") => Map("request.timeout.ms", Same),
        (Consumer | Admin, "request.timeout.ms") => Map("socket.timeout.ms", Same),
        (_, "socket.connection.setup.timeout.max.ms") => {
            Unused("librdkafka has no upper bound for its connection setup timeout")
        }
        (_, "default.api.timeout.ms") => {
            Unused("ferry sets its own timeout on every call it makes (10 s)")
        }
        (_, "group.id" | "group.instance.id") => {
            Unused("ferry sets its clients' consumer groups itself")
        }
        (_, "interceptor.classes") => Unused("java client interceptors cannot run in ferry"),
        (_, "key.serializer" | "value.serializer" | "key.deserializer" | "value.deserializer") => {
            Unused("ferry copies record bytes unchanged")
        }
        (_, "metric.reporters" | "auto.include.jmx.reporter" | "enable.metrics.push") => {
            Unused("ferry exports its own metrics")
        }
        (_, name) if name.starts_with("metrics.") => Unused("ferry exports its own metrics"),

        // Consumers.
        (Consumer, "fetch.max.bytes") => Map("fetch.max.bytes", Same),
        (Consumer, "max.partition.fetch.bytes") => Map("max.partition.fetch.bytes", Same),
        (Consumer, "fetch.min.bytes") => Map("fetch.min.bytes", Same),
        (Consumer, "fetch.max.wait.ms") => Map("fetch.wait.max.ms", Same),
        (Consumer, "isolation.level") => Map("isolation.level", Same),
        (Consumer, "auto.offset.reset") => Map("auto.offset.reset", OffsetReset),
        (Consumer, "check.crcs") => Map("check.crcs", Same),
        (Consumer, "client.rack") => Map("client.rack", Same),
        (Consumer, "max.poll.interval.ms") => Map("max.poll.interval.ms", Same),
        (Consumer, "max.poll.records") => Unused(
            "librdkafka has no per-poll record limit; ferry reads up to 1000 records per batch",
        ),
        (Consumer, "enable.auto.commit" | "auto.commit.interval.ms") => Unused(
            "ferry never commits source offsets to kafka: it stores positions after the target acknowledged (mm2 forces it off too)",
        ),
        (Consumer, "session.timeout.ms" | "heartbeat.interval.ms") => Unused(
            "mm2's consumers join no group; ferry's task-lease group keeps its own session timeout (6 s)",
        ),
        (
            Consumer,
            "partition.assignment.strategy" | "group.protocol" | "group.remote.assignor",
        ) => Unused("ferry assigns its consumers' partitions itself"),
        (Consumer, "exclude.internal.topics" | "allow.auto.create.topics") => {
            Unused("ferry's consumers never subscribe to topics; ferry creates the topics it needs")
        }

        // Producers.
        (Producer, "linger.ms") => Map("linger.ms", Same),
        (Producer, "batch.size") => Map("batch.size", Same),
        (Producer, "compression.type") => Map("compression.type", Same),
        (Producer, "compression.gzip.level") => CompressionLevel("gzip"),
        (Producer, "compression.lz4.level") => CompressionLevel("lz4"),
        (Producer, "compression.zstd.level") => CompressionLevel("zstd"),
        (Producer, "buffer.memory") => Map("queue.buffering.max.kbytes", BytesToKbytes),
        (Producer, "max.request.size") => Map("message.max.bytes", Same),
        (Producer, "delivery.timeout.ms") => Map("delivery.timeout.ms", Same),
        (Producer, "max.in.flight.requests.per.connection") => {
            Map("max.in.flight.requests.per.connection", InFlight)
        }
        (Producer, "acks" | "enable.idempotence") => Unused(
            "ferry's producers are always idempotent with acks=all, which keeps every partition's order",
        ),
        (Producer, "retries") => Unused(
            "ferry's idempotent producers retry until `delivery.timeout.ms`; set that instead",
        ),
        (Producer, "max.block.ms") => Unused(
            "ferry never blocks on a full producer queue: it caps the records in flight (`max_in_flight`)",
        ),
        (Producer, "transactional.id" | "transaction.timeout.ms") => Unused(
            "with exactly-once on, ferry gives each task's producer its own transactional.id (`<group_id>.task-<n>`) and a 30 s transaction timeout",
        ),
        (Producer, name) if name.starts_with("partitioner.") => {
            Unused("ferry writes each record to its source partition number")
        }
        (Producer, "metadata.max.idle.ms") => {
            Unused("librdkafka keeps the metadata of every topic it produces to")
        }

        // Admin clients.
        (Admin, "retries") => Unused("ferry retries failed admin calls itself"),

        _ => Unused("no librdkafka equivalent known to ferry"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::librdkafka::check_property;

    /// Every mapped key is a librdkafka property of this build.
    #[test]
    fn mapped_keys_exist_in_librdkafka() {
        let samples = [
            ("client.id", "x"),
            ("retry.backoff.ms", "100"),
            ("retry.backoff.max.ms", "1000"),
            ("reconnect.backoff.ms", "100"),
            ("reconnect.backoff.max.ms", "1000"),
            ("connections.max.idle.ms", "0"),
            ("socket.connection.setup.timeout.ms", "30000"),
            ("send.buffer.bytes", "-1"),
            ("receive.buffer.bytes", "65536"),
            ("metadata.max.age.ms", "1000"),
            ("client.dns.lookup", "use_all_dns_ips"),
            ("request.timeout.ms", "30000"),
            ("fetch.max.bytes", "1000"),
            ("max.partition.fetch.bytes", "1000"),
            ("fetch.min.bytes", "1"),
            ("fetch.max.wait.ms", "100"),
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "latest"),
            ("check.crcs", "true"),
            ("client.rack", "r1"),
            ("max.poll.interval.ms", "300000"),
            ("linger.ms", "5"),
            ("batch.size", "16384"),
            ("compression.type", "zstd"),
            ("buffer.memory", "33554432"),
            ("max.request.size", "1048576"),
            ("delivery.timeout.ms", "120000"),
            ("max.in.flight.requests.per.connection", "5"),
        ];
        for role in ClientRole::ALL {
            for (name, value) in samples {
                if let ClientKey::Map(key, convert) = client_key(role, name) {
                    let value = convert.apply(value).unwrap();
                    check_property(key, &value).unwrap_or_else(|error| panic!("{key}: {error}"));
                }
            }
        }
    }

    #[test]
    fn table() {
        let check = |role, name, expected: ClientKey| {
            assert_eq!(client_key(role, name), expected, "{role}.{name}");
        };
        check(
            ClientRole::Consumer,
            "fetch.max.wait.ms",
            ClientKey::Map("fetch.wait.max.ms", Convert::Same),
        );
        check(
            ClientRole::Admin,
            "request.timeout.ms",
            ClientKey::Map("socket.timeout.ms", Convert::Same),
        );
        check(
            ClientRole::Producer,
            "request.timeout.ms",
            ClientKey::Map("request.timeout.ms", Convert::Same),
        );
        check(
            ClientRole::Producer,
            "buffer.memory",
            ClientKey::Map("queue.buffering.max.kbytes", Convert::BytesToKbytes),
        );
        check(
            ClientRole::Consumer,
            "ssl.keystore.location",
            ClientKey::Cluster,
        );
        check(ClientRole::Producer, "sasl.jaas.config", ClientKey::Cluster);
        assert!(matches!(
            client_key(ClientRole::Consumer, "max.poll.records"),
            ClientKey::Unused(_)
        ));
        assert!(matches!(
            client_key(ClientRole::Producer, "acks"),
            ClientKey::Unused(_)
        ));
        // A producer key given to a consumer has no meaning there.
        assert!(matches!(
            client_key(ClientRole::Consumer, "linger.ms"),
            ClientKey::Unused(_)
        ));
    }

    #[test]
    fn conversions() {
        let check = |convert: Convert, value: &str, expected: Result<&str, &str>| {
            let found = convert.apply(value);
            match expected {
                Ok(expected) => assert_eq!(found.as_deref(), Ok(expected), "{value}"),
                Err(part) => assert!(
                    found.as_ref().is_err_and(|message| message.contains(part)),
                    "{value}: {found:?}"
                ),
            }
        };
        check(Convert::BytesToKbytes, "33554432", Ok("32768"));
        check(Convert::BytesToKbytes, "1025", Ok("2"));
        check(Convert::BytesToKbytes, "0", Err("greater than 0"));
        check(Convert::OsDefault, "-1", Ok("0"));
        check(Convert::OsDefault, "131072", Ok("131072"));
        check(Convert::OsDefault, "x", Err("expected an integer, not `x`"));
        check(Convert::OffsetReset, "Latest", Ok("latest"));
        check(Convert::OffsetReset, "none", Err("`none` is not supported"));
        check(Convert::InFlight, "5", Ok("5"));
        check(Convert::InFlight, "6", Err("at most 5"));
    }
}
