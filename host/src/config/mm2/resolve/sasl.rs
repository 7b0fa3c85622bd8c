//! A cluster's SASL settings: `sasl.mechanism` and `sasl.jaas.config` (PLAIN and SCRAM
//! credentials), and for OAUTHBEARER the OIDC client credentials of Kafka's
//! `OAuthBearerLoginCallbackHandler` (`sasl.login.callback.handler.class`,
//! `sasl.oauthbearer.token.endpoint.url`, the JAAS `clientId`, `clientSecret`, `scope` and
//! `extension_<name>` options), each from `<alias>.<key>`, else the top-level key.
//!
//! This module owns which SASL mechanisms an MM2 file may use with Ferry, the check that the
//! JAAS login module matches the mechanism, and the librdkafka properties of OIDC
//! (`sasl.oauthbearer.method=oidc` and its `sasl.oauthbearer.*` properties). Its messages never
//! quote a JAAS option's value.

use std::collections::BTreeMap;

use super::Resolver;
use crate::config::mm2::jaas::{
    Jaas, OAUTHBEARER_LOGIN_MODULE, PLAIN_LOGIN_MODULE, SCRAM_LOGIN_MODULE, parse_jaas,
};
use crate::config::{Sasl, SaslMechanism, Sensitive};

/// Kafka's login callback handler for OIDC client credentials (Kafka 3.4 and later).
const OIDC_CALLBACK_HANDLER: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler";
/// Its deprecated name (Kafka 3.1 to 3.3), which Kafka 3.8 still accepts.
const OIDC_CALLBACK_HANDLER_OLD: &str =
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler";

/// The mechanism of `sasl.mechanism`.
#[derive(Clone, Copy)]
enum Mechanism {
    /// PLAIN or SCRAM: a username and a password.
    Password(SaslMechanism),
    /// OAUTHBEARER.
    OAuthBearer,
}

impl Resolver<'_> {
    /// The SASL settings of cluster `alias`, whose protocol (read from `protocol_key`) is a SASL
    /// one: `Some(Some(_))` for PLAIN and SCRAM credentials, `Some(None)` for OAUTHBEARER (whose
    /// properties go into `librdkafka`), `None` when a setting is wrong (reported).
    pub(super) fn sasl(
        &mut self,
        alias: &str,
        protocol_key: &str,
        librdkafka: &mut BTreeMap<String, String>,
    ) -> Option<Option<Sasl>> {
        const EXPECTED: &str = "expected one of: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER";
        let (mechanism_key, mechanism) = match self.client_key(alias, "sasl.mechanism") {
            Some((key, value)) => {
                let mechanism = if value.eq_ignore_ascii_case("OAUTHBEARER") {
                    Some(Mechanism::OAuthBearer)
                } else {
                    SaslMechanism::from_name(&value).map(Mechanism::Password)
                };
                if mechanism.is_none() {
                    self.report(
                        &key,
                        format!("unsupported SASL mechanism `{value}` ({EXPECTED})"),
                    );
                }
                (key, mechanism)
            }
            None => {
                self.report(
                    protocol_key,
                    format!(
                        "`{alias}.sasl.mechanism` is missing, and kafka's default GSSAPI is not supported ({EXPECTED})"
                    ),
                );
                (protocol_key.to_owned(), None)
            }
        };
        let Some((jaas_key, jaas_value)) = self.client_key(alias, "sasl.jaas.config") else {
            let what = match mechanism {
                Some(Mechanism::OAuthBearer) => {
                    "the OAuthBearerLoginModule with clientId and clientSecret"
                }
                _ => "a username and password",
            };
            self.report(
                protocol_key,
                format!("a SASL protocol needs `{alias}.sasl.jaas.config` with {what}"),
            );
            return None;
        };
        let jaas = parse_jaas(&jaas_value)
            .map_err(|message| self.report(&jaas_key, message))
            .ok()?;
        let expected_module = match mechanism? {
            Mechanism::Password(SaslMechanism::Plain) => PLAIN_LOGIN_MODULE,
            Mechanism::Password(SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512) => {
                SCRAM_LOGIN_MODULE
            }
            Mechanism::OAuthBearer => OAUTHBEARER_LOGIN_MODULE,
        };
        if jaas.module != expected_module {
            let mechanism_name = self
                .peek(&mechanism_key)
                .map_or_else(String::new, |(_, value)| value);
            self.report(
                &jaas_key,
                format!(
                    "login module `{}` does not match sasl.mechanism {mechanism_name} (expected {expected_module})",
                    jaas.module
                ),
            );
            return None;
        }
        match mechanism? {
            Mechanism::Password(mechanism) => {
                let (username, password) = jaas
                    .credentials()
                    .map_err(|message| self.report(&jaas_key, message))
                    .ok()?;
                Some(Some(Sasl {
                    mechanism,
                    username,
                    password: Sensitive::new(password),
                }))
            }
            Mechanism::OAuthBearer => {
                let properties = self.oidc(alias, &mechanism_key, &jaas_key, &jaas)?;
                for (mm2_key, property, value) in properties {
                    // librdkafka checks each value (e.g. the token endpoint url).
                    if !self.librdkafka(&mm2_key, property, &value) {
                        return None;
                    }
                    librdkafka.insert(property.to_owned(), value);
                }
                Some(None)
            }
        }
    }

    /// The librdkafka properties of OIDC client credentials, each with the MM2 key it comes
    /// from; `None` when a setting is missing or wrong (reported).
    fn oidc(
        &mut self,
        alias: &str,
        mechanism_key: &str,
        jaas_key: &str,
        jaas: &Jaas,
    ) -> Option<Vec<(String, &'static str, String)>> {
        let mut ok = true;
        match self.client_key(alias, "sasl.login.callback.handler.class") {
            Some((_, class))
                if class == OIDC_CALLBACK_HANDLER || class == OIDC_CALLBACK_HANDLER_OLD => {}
            Some((key, class)) => {
                self.report(
                    &key,
                    format!(
                        "unsupported login callback handler `{class}` (expected {OIDC_CALLBACK_HANDLER}, which fetches tokens with OIDC client credentials)"
                    ),
                );
                ok = false;
            }
            None => {
                self.report(
                    mechanism_key,
                    format!(
                        "OAUTHBEARER without `{alias}.sasl.login.callback.handler.class` uses kafka's unsecured development tokens, which ferry does not support: for OIDC client credentials set it to {OIDC_CALLBACK_HANDLER}, with `{alias}.sasl.oauthbearer.token.endpoint.url`"
                    ),
                );
                ok = false;
            }
        }
        let url = match self.client_key(alias, "sasl.oauthbearer.token.endpoint.url") {
            Some((key, url)) if url.starts_with("http://") || url.starts_with("https://") => {
                Some((key, url))
            }
            Some((key, _)) => {
                self.report(
                    &key,
                    "expected an http:// or https:// url (librdkafka fetches tokens from the endpoint; a file:// token is not supported)",
                );
                None
            }
            None => {
                if ok {
                    self.report(
                        mechanism_key,
                        format!(
                            "OIDC client credentials need `{alias}.sasl.oauthbearer.token.endpoint.url`"
                        ),
                    );
                }
                None
            }
        };
        let mut properties = vec![
            (
                mechanism_key.to_owned(),
                "sasl.mechanism",
                "OAUTHBEARER".to_owned(),
            ),
            (
                mechanism_key.to_owned(),
                "sasl.oauthbearer.method",
                "oidc".to_owned(),
            ),
        ];
        match (jaas.option("clientId"), jaas.option("clientSecret")) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                properties.push((
                    jaas_key.to_owned(),
                    "sasl.oauthbearer.client.id",
                    id.to_owned(),
                ));
                properties.push((
                    jaas_key.to_owned(),
                    "sasl.oauthbearer.client.secret",
                    secret.to_owned(),
                ));
            }
            _ => {
                self.report(
                    jaas_key,
                    "the OAuthBearerLoginModule needs non-empty `clientId` and `clientSecret` options for OIDC client credentials",
                );
                ok = false;
            }
        }
        if let Some(scope) = jaas.option("scope").filter(|scope| !scope.is_empty()) {
            properties.push((
                jaas_key.to_owned(),
                "sasl.oauthbearer.scope",
                scope.to_owned(),
            ));
        }
        let mut extensions = Vec::new();
        for (name, value) in &jaas.options {
            if let Some(extension) = name.strip_prefix("extension_") {
                if extension.contains([',', '=']) || value.contains([',', '=']) {
                    self.report(
                        jaas_key,
                        format!(
                            "option `{name}`: librdkafka's sasl.oauthbearer.extensions cannot hold `,` or `=` in an extension"
                        ),
                    );
                    ok = false;
                } else {
                    extensions.push(format!("{extension}={value}"));
                }
            } else if name.starts_with("ssl.") {
                self.report(
                    jaas_key,
                    format!(
                        "option `{name}`: tls settings of the token endpoint are not supported; librdkafka checks it against the system's ca certificates"
                    ),
                );
                ok = false;
            }
        }
        if !extensions.is_empty() {
            properties.push((
                jaas_key.to_owned(),
                "sasl.oauthbearer.extensions",
                extensions.join(","),
            ));
        }
        let (url_key, url) = url?;
        properties.push((url_key, "sasl.oauthbearer.token.endpoint.url", url));
        ok.then_some(properties)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::collections::HashMap;

    use crate::config::mm2::properties::parse_properties;
    use crate::config::mm2::resolve::Resolver;
    use crate::config::mm2::tests::{errors, resolve};
    use crate::config::{ClientRole, ClusterName, SaslMechanism, SecurityProtocol};

    const BASE: &str = "clusters = A, B\nA.bootstrap.servers = a:9093\nB.bootstrap.servers = b:9092\nA->B.enabled = true\n";

    const OIDC: &str = "A.security.protocol = SASL_SSL
A.sasl.mechanism = OAUTHBEARER
A.sasl.login.callback.handler.class = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler
A.sasl.oauthbearer.token.endpoint.url = https://idp.example.com/oauth2/token
A.sasl.jaas.config = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"mm2\" clientSecret=\"oidc-s3cret\" scope=\"kafka\" extension_logicalCluster=\"lkc-1\";
";

    /// The OIDC settings, as the resolver builds them (whether or not this build of
    /// librdkafka can use them).
    #[test]
    fn oauthbearer_oidc_maps_to_librdkafka() {
        let text = format!("{BASE}{OIDC}");
        let (props, errors) = parse_properties(&text);
        assert!(errors.is_empty());
        let provided = HashMap::new();
        let mut resolver = Resolver::new(&props, &provided);
        let jaas =
            crate::config::mm2::jaas::parse_jaas(&props["A.sasl.jaas.config"].value).unwrap();
        let properties = resolver
            .oidc("A", "A.sasl.mechanism", "A.sasl.jaas.config", &jaas)
            .unwrap();
        assert!(resolver.errors.is_empty(), "{:?}", resolver.errors);
        let found: BTreeMap<&str, (&str, &str)> = properties
            .iter()
            .map(|(key, property, value)| (*property, (key.as_str(), value.as_str())))
            .collect();
        let expected: BTreeMap<&str, (&str, &str)> = [
            ("sasl.mechanism", ("A.sasl.mechanism", "OAUTHBEARER")),
            ("sasl.oauthbearer.method", ("A.sasl.mechanism", "oidc")),
            ("sasl.oauthbearer.client.id", ("A.sasl.jaas.config", "mm2")),
            (
                "sasl.oauthbearer.client.secret",
                ("A.sasl.jaas.config", "oidc-s3cret"),
            ),
            ("sasl.oauthbearer.scope", ("A.sasl.jaas.config", "kafka")),
            (
                "sasl.oauthbearer.extensions",
                ("A.sasl.jaas.config", "logicalCluster=lkc-1"),
            ),
            (
                "sasl.oauthbearer.token.endpoint.url",
                (
                    "A.sasl.oauthbearer.token.endpoint.url",
                    "https://idp.example.com/oauth2/token",
                ),
            ),
        ]
        .into();
        assert_eq!(found, expected);
        for key in [
            "A.sasl.login.callback.handler.class",
            "A.sasl.oauthbearer.token.endpoint.url",
        ] {
            assert!(resolver.used.contains(key), "{key}");
        }
    }

    /// The whole file: every client of the cluster (librdkafka is built with libcurl, rdkafka's
    /// `curl-static` feature) gets the OIDC properties, and only the OIDC ones; the secret is
    /// never in the cluster's `Debug` output.
    #[test]
    fn oauthbearer_file_maps_to_librdkafka_oidc() {
        let text = format!("{BASE}{OIDC}");
        let (config, _) = resolve(&text);
        let cluster = &config.clusters[&ClusterName::new("A").unwrap()];
        assert_eq!(cluster.security_protocol, SecurityProtocol::SaslSsl);
        assert!(cluster.sasl.is_none());
        let expected = [
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.oauthbearer.method", "oidc"),
            ("sasl.oauthbearer.client.id", "mm2"),
            ("sasl.oauthbearer.client.secret", "oidc-s3cret"),
            ("sasl.oauthbearer.scope", "kafka"),
            ("sasl.oauthbearer.extensions", "logicalCluster=lkc-1"),
            (
                "sasl.oauthbearer.token.endpoint.url",
                "https://idp.example.com/oauth2/token",
            ),
        ];
        for role in [
            ClientRole::Consumer,
            ClientRole::Producer,
            ClientRole::Admin,
        ] {
            let client = cluster.client_config(role);
            for (property, value) in expected {
                assert_eq!(client.get(property), Some(value), "{role:?}: {property}");
            }
            for property in ["sasl.username", "sasl.password", "sasl.oauthbearer.config"] {
                assert_eq!(client.get(property), None, "{role:?}: {property}");
            }
        }
        assert!(!format!("{cluster:?}").contains("oidc-s3cret"));
        // The other cluster has no SASL at all.
        let other = &config.clusters[&ClusterName::new("B").unwrap()];
        assert_eq!(
            other
                .client_config(ClientRole::Consumer)
                .get("sasl.mechanism"),
            None
        );
    }

    /// An http:// token endpoint (a local or in-cluster identity provider) is accepted as is.
    #[test]
    fn oauthbearer_http_token_endpoint_is_accepted() {
        let text = format!("{BASE}{OIDC}").replace(
            "https://idp.example.com/oauth2/token",
            "http://127.0.0.1:8080/token",
        );
        let (config, _) = resolve(&text);
        let cluster = &config.clusters[&ClusterName::new("A").unwrap()];
        assert_eq!(
            cluster
                .client_config(ClientRole::Producer)
                .get("sasl.oauthbearer.token.endpoint.url"),
            Some("http://127.0.0.1:8080/token")
        );
    }

    /// A `file://` token (or anything but an http(s) url) is refused at its key.
    #[test]
    fn oauthbearer_token_endpoint_must_be_http() {
        let text = format!("{BASE}{OIDC}").replace(
            "https://idp.example.com/oauth2/token",
            "file:///var/run/token",
        );
        let found = errors(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].key, "A.sasl.oauthbearer.token.endpoint.url");
        assert!(found[0].message.contains("http://"), "{}", found[0].message);
    }

    #[test]
    fn oauthbearer_needs_the_oidc_handler_and_credentials() {
        let text = format!(
            "{BASE}A.security.protocol = SASL_SSL\nA.sasl.mechanism = OAUTHBEARER\n\
             A.sasl.jaas.config = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientSecret=\"oidc-s3cret\";\n"
        );
        let found = errors(&text);
        let keys: Vec<(&str, Option<usize>)> = found
            .iter()
            .map(|error| (error.key.as_str(), error.line))
            .collect();
        assert_eq!(
            keys,
            [
                ("A.sasl.mechanism", Some(6)),
                ("A.sasl.jaas.config", Some(7))
            ]
        );
        assert!(found[0].message.contains("unsecured development tokens"));
        assert!(found[1].message.contains("`clientId` and `clientSecret`"));
        assert!(
            found
                .iter()
                .all(|error| !error.message.contains("oidc-s3cret"))
        );
    }

    #[test]
    fn scram_over_tls_and_unsupported_mechanisms() {
        let (config, _) = resolve(&format!(
            "{BASE}security.protocol = SASL_SSL\nsasl.mechanism = SCRAM-SHA-256\n\
             sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"p\";\n"
        ));
        for cluster in config.clusters.values() {
            assert_eq!(cluster.security_protocol, SecurityProtocol::SaslSsl);
            assert_eq!(
                cluster.sasl.as_ref().unwrap().mechanism,
                SaslMechanism::ScramSha256
            );
        }
        let found = errors(&format!(
            "{BASE}A.security.protocol = SASL_PLAINTEXT\nA.sasl.mechanism = GSSAPI\n\
             A.sasl.jaas.config = com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true;\n"
        ));
        assert_eq!(found[0].key, "A.sasl.mechanism");
        assert!(
            found[0].message.contains("OAUTHBEARER"),
            "{}",
            found[0].message
        );
    }
}
