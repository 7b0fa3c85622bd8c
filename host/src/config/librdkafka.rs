//! The librdkafka properties a configuration may set: which ones Ferry owns, and asking
//! librdkafka whether it accepts a property and its value.
//!
//! This module owns the list of host-owned properties, shared by the `librdkafka`, `consumer`,
//! `producer` and `admin` tables of `ferry.toml` and by the client keys of an MM2 file, so that
//! both refuse the same keys for the same reasons. Its messages never quote a secret's value.

use rdkafka::error::KafkaError;

use super::is_secret_librdkafka_key;

/// Why a librdkafka property belongs to Ferry, if it does.
pub(crate) fn host_owned_key(key: &str) -> Option<&'static str> {
    match key.trim().to_ascii_lowercase().as_str() {
        "bootstrap.servers" | "metadata.broker.list" => {
            Some("Ferry sets it from `bootstrap_servers`")
        }
        "security.protocol" => Some("Ferry sets it from `security_protocol`"),
        "group.id" => Some("Ferry sets it from each flow's `group_id`"),
        "enable.auto.commit" | "enable.auto.offset.store" => Some(
            "Ferry stores source positions itself, only after the target acknowledged the records",
        ),
        "enable.idempotence" | "transactional.id" | "acks" | "request.required.acks" => {
            Some("Ferry chooses its producers' delivery guarantees itself")
        }
        "partitioner" => Some("Ferry writes each record to its source partition number"),
        "enable.partition.eof" | "partition.assignment.strategy" => {
            Some("Ferry's consumers depend on its own setting")
        }
        _ => None,
    }
}

/// Asks librdkafka whether it knows `key` and accepts `value`, so that a misspelt property or a
/// property this build lacks is reported when the file is read, with its line, rather than
/// when the first client is created.
pub(crate) fn check_property(key: &str, value: &str) -> Result<(), String> {
    let mut client_config = rdkafka::ClientConfig::new();
    client_config.set(key, value);
    match client_config.create_native_config() {
        Ok(_) => Ok(()),
        Err(KafkaError::ClientConfig(_, description, _, _))
            if description.contains("not supported in this build") =>
        {
            Err(format!(
                "`{key}` is not supported by this build of librdkafka"
            ))
        }
        Err(_) if is_secret_librdkafka_key(key) => {
            Err("rejected by librdkafka (the value is not shown because it is a secret)".to_owned())
        }
        Err(KafkaError::ClientConfig(_, description, _, _)) => Err(format!(
            "rejected by librdkafka: {}",
            super::validate::one_line(&description)
        )),
        Err(error) => Err(format!("rejected by librdkafka: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::check_property;

    /// This build fetches OAUTHBEARER tokens from OIDC token endpoints: librdkafka is built with
    /// a static libcurl (rdkafka's `curl-static` feature), over http:// and https://.
    #[test]
    fn this_build_supports_oidc() {
        for (key, value) in [
            ("sasl.oauthbearer.method", "oidc"),
            ("sasl.oauthbearer.client.id", "ferry"),
            ("sasl.oauthbearer.client.secret", "s3cret"),
            ("sasl.oauthbearer.scope", "kafka"),
            (
                "sasl.oauthbearer.token.endpoint.url",
                "http://127.0.0.1:1/token",
            ),
            ("https.ca.location", "probe"),
        ] {
            assert_eq!(check_property(key, value), Ok(()), "{key}");
        }
    }
}
