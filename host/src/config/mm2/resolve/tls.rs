//! A cluster's TLS settings: Java's trust store and key store keys (`ssl.truststore.*`,
//! `ssl.keystore.*`, `ssl.key.password`) and `ssl.endpoint.identification.algorithm`, each
//! from `<alias>.<key>`, else the top-level key, read into librdkafka's.
//!
//! This module owns how a Java store becomes librdkafka settings:
//!
//! | MM2 (Java) | librdkafka |
//! |---|---|
//! | PEM trust store file (`ssl.truststore.location`) | `ssl.ca.location` |
//! | `ssl.truststore.certificates` (PEM text) | `ssl.ca.pem` |
//! | PKCS12 key store (`ssl.keystore.location`, `ssl.keystore.password`) | `ssl.keystore.location`, `ssl.keystore.password` |
//! | PEM key store file (key and certificate chain) | `ssl.certificate.location` and `ssl.key.location` (the same file), `ssl.key.password` |
//! | `ssl.keystore.certificate.chain`, `ssl.keystore.key` (PEM text) | `ssl.certificate.pem`, `ssl.key.pem`, `ssl.key.password` |
//! | `ssl.endpoint.identification.algorithm` `https` / empty | `https` / `none` |
//!
//! librdkafka reads CA certificates from PEM only, so a PKCS12 trust store is refused with the
//! `openssl pkcs12 ... -nokeys` command that converts it (Ferry converts no file itself: the
//! converted file is the operator's to keep); a JKS store (trust or key) is refused with the
//! `keytool -importkeystore` command. A store's format is read from the file when it can be
//! read (Java's JKS type also opens PKCS12 files), else from `ssl.*.type`, else from the file
//! name, else Java's default, JKS. Relative paths are relative to the working directory, as in
//! Java.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Resolver;
use crate::config::{Sensitive, Ssl};

/// The format of a Java key store or trust store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreFormat {
    Pem,
    Pkcs12,
    /// JKS or JCEKS: Java only.
    Jks,
}

impl Resolver<'_> {
    /// The TLS settings of cluster `alias`, whose protocol uses TLS: the PEM files as [`Ssl`],
    /// the other properties into `librdkafka`. `Some(None)` when nothing is set (librdkafka then
    /// verifies brokers with the system's CA certificates, as Java does with its default trust
    /// store), `None` when a setting is wrong (reported).
    pub(super) fn tls(
        &mut self,
        alias: &str,
        librdkafka: &mut BTreeMap<String, String>,
    ) -> Option<Option<Ssl>> {
        let mut ssl = Ssl {
            ca_location: None,
            certificate_location: None,
            key_location: None,
            key_password: None,
        };
        let mut properties: Vec<(String, &'static str, String)> = Vec::new();
        let truststore = self.truststore(alias, &mut ssl, &mut properties);
        let keystore = self.keystore(alias, &mut ssl, &mut properties);
        let mut ok = truststore.is_some() && keystore.is_some();
        if let Some((key, value)) = self.client_key(alias, "ssl.endpoint.identification.algorithm")
        {
            if value.is_empty() {
                properties.push((
                    key,
                    "ssl.endpoint.identification.algorithm",
                    "none".to_owned(),
                ));
            } else if value.eq_ignore_ascii_case("https") {
                properties.push((
                    key,
                    "ssl.endpoint.identification.algorithm",
                    "https".to_owned(),
                ));
            } else {
                self.report(
                    &key,
                    format!(
                        "expected `https` or an empty value (no hostname verification), not `{value}`"
                    ),
                );
                ok = false;
            }
        }
        for (key, property, value) in properties {
            if self.librdkafka(&key, property, &value) {
                librdkafka.insert(property.to_owned(), value);
            } else {
                ok = false;
            }
        }
        let any = ssl.ca_location.is_some()
            || ssl.certificate_location.is_some()
            || ssl.key_location.is_some()
            || ssl.key_password.is_some();
        ok.then_some(any.then_some(ssl))
    }

    /// `ssl.truststore.*`; `None` when wrong (reported).
    fn truststore(
        &mut self,
        alias: &str,
        ssl: &mut Ssl,
        properties: &mut Vec<(String, &'static str, String)>,
    ) -> Option<()> {
        let location = self.peek_client_key(alias, "ssl.truststore.location");
        let certificates = self.peek_client_key(alias, "ssl.truststore.certificates");
        let store_type = self.peek_client_key(alias, "ssl.truststore.type");
        match (location, certificates) {
            (Some(_), Some((key, _))) => {
                self.report(
                    &key,
                    "set either `ssl.truststore.location` or `ssl.truststore.certificates`, not both",
                );
                None
            }
            (Some((key, path)), None) => {
                self.used.insert(key.clone());
                self.take_store_type(store_type.as_ref());
                match self.store_format(&path, store_type.as_ref())? {
                    StoreFormat::Pem => {
                        ssl.ca_location = Some(PathBuf::from(&path));
                        self.skip_client_key(
                            alias,
                            "ssl.truststore.password",
                            "a PEM trust store has no password",
                        );
                        Some(())
                    }
                    StoreFormat::Pkcs12 => {
                        let pem = with_extension(&path, "pem");
                        self.report(
                            &key,
                            format!(
                                "`{path}` is a PKCS12 trust store, which librdkafka cannot read (it reads CA certificates from PEM only): convert it with `openssl pkcs12 -in {path} -nokeys -out {pem}`, then set `{key}={pem}` and `{}=PEM`",
                                sibling(&key, "ssl.truststore.type")
                            ),
                        );
                        None
                    }
                    StoreFormat::Jks => {
                        let p12 = with_extension(&path, "p12");
                        let pem = with_extension(&path, "pem");
                        self.report(
                            &key,
                            format!(
                                "`{path}` is a JKS trust store, which librdkafka cannot read: convert it with `keytool -importkeystore -srckeystore {path} -destkeystore {p12} -deststoretype PKCS12`, then `openssl pkcs12 -in {p12} -nokeys -out {pem}`, and set `{key}={pem}` and `{}=PEM`",
                                sibling(&key, "ssl.truststore.type")
                            ),
                        );
                        None
                    }
                }
            }
            (None, Some((key, text))) => {
                self.used.insert(key.clone());
                if !self.pem_type(store_type.as_ref(), &key) {
                    return None;
                }
                match normalize_pem(&text) {
                    Ok(pem) => properties.push((key, "ssl.ca.pem", pem)),
                    Err(message) => {
                        self.report(&key, message);
                        return None;
                    }
                }
                self.skip_client_key(
                    alias,
                    "ssl.truststore.password",
                    "a PEM trust store has no password",
                );
                Some(())
            }
            (None, None) => {
                for name in ["ssl.truststore.type", "ssl.truststore.password"] {
                    self.skip_client_key(
                        alias,
                        name,
                        "no trust store is set (`ssl.truststore.location`)",
                    );
                }
                Some(())
            }
        }
    }

    /// `ssl.keystore.*` and `ssl.key.password`; `None` when wrong (reported).
    fn keystore(
        &mut self,
        alias: &str,
        ssl: &mut Ssl,
        properties: &mut Vec<(String, &'static str, String)>,
    ) -> Option<()> {
        let location = self.peek_client_key(alias, "ssl.keystore.location");
        let chain = self.peek_client_key(alias, "ssl.keystore.certificate.chain");
        let private_key = self.peek_client_key(alias, "ssl.keystore.key");
        let store_type = self.peek_client_key(alias, "ssl.keystore.type");
        let password = self.peek_client_key(alias, "ssl.keystore.password");
        let key_password = self.peek_client_key(alias, "ssl.key.password");
        if let (Some(_), Some((key, _))) = (&location, chain.as_ref().or(private_key.as_ref())) {
            self.report(
                key,
                "set either `ssl.keystore.location` or `ssl.keystore.certificate.chain` and `ssl.keystore.key`, not both",
            );
            return None;
        }
        if let Some((key, path)) = location {
            self.used.insert(key.clone());
            self.take_store_type(store_type.as_ref());
            return match self.store_format(&path, store_type.as_ref())? {
                StoreFormat::Pkcs12 => {
                    properties.push((key.clone(), "ssl.keystore.location", path));
                    if let Some((password_key, value)) = &password {
                        self.used.insert(password_key.clone());
                        properties.push((
                            password_key.clone(),
                            "ssl.keystore.password",
                            value.clone(),
                        ));
                    }
                    match (&key_password, &password) {
                        (None, _) => Some(()),
                        (Some((key_password_key, value)), Some((_, store_password)))
                            if value == store_password =>
                        {
                            // librdkafka opens the key with the store's password, which this is.
                            self.used.insert(key_password_key.clone());
                            Some(())
                        }
                        (Some((key_password_key, _)), _) => {
                            self.report(
                                key_password_key,
                                "librdkafka decrypts a PKCS12 key store's key with `ssl.keystore.password`, and this key password differs from it: export the key store again with one password",
                            );
                            None
                        }
                    }
                }
                StoreFormat::Pem => {
                    // A PEM key store file holds the private key and the certificate chain;
                    // OpenSSL finds each in the same file.
                    ssl.certificate_location = Some(PathBuf::from(&path));
                    ssl.key_location = Some(PathBuf::from(&path));
                    self.key_password(alias, ssl, key_password);
                    Some(())
                }
                StoreFormat::Jks => {
                    let p12 = with_extension(&path, "p12");
                    self.report(
                        &key,
                        format!(
                            "`{path}` is a JKS key store, which librdkafka cannot read: convert it with `keytool -importkeystore -srckeystore {path} -destkeystore {p12} -deststoretype PKCS12` (give the key the store's password), then set `{key}={p12}` and `{}=PKCS12`",
                            sibling(&key, "ssl.keystore.type")
                        ),
                    );
                    None
                }
            };
        }
        match (chain, private_key) {
            (Some((chain_key, chain)), Some((private_key_key, private_key))) => {
                self.used.insert(chain_key.clone());
                self.used.insert(private_key_key.clone());
                if !self.pem_type(store_type.as_ref(), &chain_key) {
                    return None;
                }
                let chain =
                    normalize_pem(&chain).map_err(|message| self.report(&chain_key, message));
                let private_key = normalize_pem(&private_key)
                    .map_err(|message| self.report(&private_key_key, message));
                properties.push((chain_key, "ssl.certificate.pem", chain.ok()?));
                properties.push((private_key_key, "ssl.key.pem", private_key.ok()?));
                self.key_password(alias, ssl, key_password);
                Some(())
            }
            (Some((key, _)), None) | (None, Some((key, _))) => {
                self.report(
                    &key,
                    "a PEM key store needs both `ssl.keystore.certificate.chain` and `ssl.keystore.key`",
                );
                None
            }
            (None, None) => {
                for name in [
                    "ssl.keystore.type",
                    "ssl.keystore.password",
                    "ssl.key.password",
                ] {
                    self.skip_client_key(
                        alias,
                        name,
                        "no key store is set (`ssl.keystore.location`)",
                    );
                }
                Some(())
            }
        }
    }

    /// `ssl.key.password` of a PEM key store, and the reason `ssl.keystore.password` is not used.
    fn key_password(&mut self, alias: &str, ssl: &mut Ssl, key_password: Option<(String, String)>) {
        if let Some((key, value)) = key_password {
            self.used.insert(key);
            ssl.key_password = Some(Sensitive::new(value));
        }
        self.skip_client_key(
            alias,
            "ssl.keystore.password",
            "a PEM key store's private key is decrypted with `ssl.key.password`",
        );
    }

    fn take_store_type(&mut self, store_type: Option<&(String, String)>) {
        if let Some((key, _)) = store_type {
            self.used.insert(key.clone());
        }
    }

    /// Whether the declared type of a store given as PEM text is PEM (or not declared), as
    /// Kafka requires; reported on `key` otherwise.
    fn pem_type(&mut self, store_type: Option<&(String, String)>, key: &str) -> bool {
        match store_type {
            Some((type_key, value)) if !value.eq_ignore_ascii_case("PEM") => {
                self.report(
                    type_key,
                    format!("must be PEM when `{key}` gives the store as PEM text, not `{value}`"),
                );
                false
            }
            Some((type_key, _)) => {
                self.used.insert(type_key.clone());
                true
            }
            None => true,
        }
    }

    /// The format of the store at `path`: its content when the file can be read, else the
    /// declared type, else its extension, else Java's default (JKS). `None` when the declared
    /// type is unknown (reported).
    fn store_format(
        &mut self,
        path: &str,
        store_type: Option<&(String, String)>,
    ) -> Option<StoreFormat> {
        let declared = match store_type {
            None => None,
            Some((key, value)) => match value.to_ascii_uppercase().as_str() {
                "PEM" => Some(StoreFormat::Pem),
                "PKCS12" => Some(StoreFormat::Pkcs12),
                "JKS" | "JCEKS" => Some(StoreFormat::Jks),
                _ => {
                    self.report(
                        key,
                        format!("unsupported store type `{value}` (expected PEM, PKCS12 or JKS)"),
                    );
                    return None;
                }
            },
        };
        let read = std::fs::read(path).ok().and_then(|bytes| sniff(&bytes));
        Some(
            read.or(declared)
                .or_else(|| by_extension(path))
                .unwrap_or(StoreFormat::Jks),
        )
    }
}

/// The format of a store's content, when it shows: JKS and JCEKS magic numbers, PEM armour, or
/// the DER sequence a PKCS12 file starts with.
fn sniff(bytes: &[u8]) -> Option<StoreFormat> {
    const JKS_MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];
    const JCEKS_MAGIC: [u8; 4] = [0xCE, 0xCE, 0xCE, 0xCE];
    if bytes.starts_with(&JKS_MAGIC) || bytes.starts_with(&JCEKS_MAGIC) {
        Some(StoreFormat::Jks)
    } else if bytes.windows(11).any(|window| window == b"-----BEGIN ") {
        Some(StoreFormat::Pem)
    } else if bytes.first() == Some(&0x30) {
        Some(StoreFormat::Pkcs12)
    } else {
        None
    }
}

fn by_extension(path: &str) -> Option<StoreFormat> {
    let extension = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "jks" | "jceks" | "keystore" | "truststore" => Some(StoreFormat::Jks),
        "p12" | "pfx" | "pkcs12" => Some(StoreFormat::Pkcs12),
        "pem" | "crt" | "cer" | "key" => Some(StoreFormat::Pem),
        _ => None,
    }
}

/// `path` with its extension replaced, for the converted file a message suggests.
fn with_extension(path: &str, extension: &str) -> String {
    Path::new(path)
        .with_extension(extension)
        .to_string_lossy()
        .into_owned()
}

/// The key `name` written beside `key` (with the same alias prefix, or none).
fn sibling(key: &str, name: &str) -> String {
    match key.rsplit_once("ssl.") {
        Some((prefix, _)) => format!("{prefix}{name}"),
        None => name.to_owned(),
    }
}

/// PEM text as OpenSSL reads it: each `-----BEGIN <label>-----` block with its base64 body
/// in 64-character lines. Kafka accepts a block written on one line (a properties value joined
/// from continuation lines), OpenSSL does not. Messages never quote the text (it may be a key).
fn normalize_pem(text: &str) -> Result<String, String> {
    const BEGIN: &str = "-----BEGIN ";
    let mut normalized = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let Some(label_end) = after.find("-----") else {
            return Err("a `-----BEGIN` line is not closed by `-----`".to_owned());
        };
        let label = &after[..label_end];
        let body_start = label_end + 5;
        let end_line = format!("-----END {label}-----");
        let Some(body_end) = after[body_start..].find(&end_line) else {
            return Err(format!("the PEM block `{label}` has no `{end_line}` line"));
        };
        let body: String = after[body_start..body_start + body_end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        normalized.push_str(&format!("{BEGIN}{label}-----\n"));
        for line in body.as_bytes().chunks(64) {
            normalized.push_str(&String::from_utf8_lossy(line));
            normalized.push('\n');
        }
        normalized.push_str(&end_line);
        normalized.push('\n');
        rest = &after[body_start + body_end + end_line.len()..];
    }
    if normalized.is_empty() {
        Err("expected PEM text (`-----BEGIN ...-----`)".to_owned())
    } else {
        Ok(normalized)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::normalize_pem;
    use crate::config::mm2::tests::{errors, reason, resolve};
    use crate::config::{ClientRole, ClusterName};

    const BASE: &str = "clusters = A, B\nA.bootstrap.servers = a:9093\nB.bootstrap.servers = b:9092\nA->B.enabled = true\nA.security.protocol = SSL\n";

    /// A directory with stores of each format, unique to `test`.
    fn stores(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ferry-tls-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("ca.pem"),
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        // A PKCS12 file starts with a DER sequence; a JKS file with 0xFEEDFEED.
        std::fs::write(dir.join("truststore.p12"), [0x30, 0x82, 0x01, 0x00]).unwrap();
        std::fs::write(dir.join("keystore.bin"), [0x30, 0x82, 0x01, 0x00]).unwrap();
        std::fs::write(dir.join("truststore.jks"), [0xFE, 0xED, 0xFE, 0xED, 0, 0]).unwrap();
        // Named like PKCS12 and declared PKCS12, but JKS inside.
        std::fs::write(dir.join("mislabelled.p12"), [0xFE, 0xED, 0xFE, 0xED, 0, 0]).unwrap();
        dir
    }

    #[test]
    fn pem_truststore_and_pkcs12_keystore() {
        let dir = stores("pem-pkcs12");
        let dir = dir.display();
        let (config, unused) = resolve(&format!(
            "{BASE}A.ssl.truststore.location = {dir}/ca.pem\nA.ssl.truststore.type = PEM\n\
             A.ssl.truststore.password = unused\n\
             A.ssl.keystore.location = {dir}/keystore.bin\nA.ssl.keystore.type = PKCS12\n\
             A.ssl.keystore.password = ks-s3cret\nA.ssl.key.password = ks-s3cret\n\
             A.ssl.endpoint.identification.algorithm =\n"
        ));
        let cluster = &config.clusters[&ClusterName::new("A").unwrap()];
        let client = cluster.client_config(ClientRole::Admin);
        assert_eq!(client.get("security.protocol"), Some("ssl"));
        assert_eq!(
            client.get("ssl.ca.location"),
            Some(format!("{dir}/ca.pem").as_str())
        );
        assert_eq!(
            client.get("ssl.keystore.location"),
            Some(format!("{dir}/keystore.bin").as_str())
        );
        assert_eq!(client.get("ssl.keystore.password"), Some("ks-s3cret"));
        assert_eq!(
            client.get("ssl.endpoint.identification.algorithm"),
            Some("none")
        );
        assert_eq!(client.get("ssl.key.password"), None);
        assert!(!format!("{cluster:?}").contains("ks-s3cret"));
        let password = reason(&unused, "A.ssl.truststore.password").unwrap();
        assert_eq!(password.line, 8);
        assert!(password.reason.contains("no password"));
        assert_eq!(unused.len(), 1, "{unused:?}");
        // librdkafka accepts all of it (it opens the files only when a client starts).
        client.create_native_config().unwrap();
    }

    #[test]
    fn pem_keystore_file_and_pem_text() {
        let dir = stores("pem-text");
        let dir = dir.display();
        let (config, unused) = resolve(&format!(
            "{BASE}ssl.keystore.location = {dir}/ca.pem\nssl.key.password = kp\nssl.keystore.password = x\n\
             ssl.endpoint.identification.algorithm = HTTPS\n\
             B.security.protocol = SSL\n\
             B.ssl.truststore.certificates = -----BEGIN CERTIFICATE----- MIIB AAAA -----END CERTIFICATE-----\n\
             B.ssl.truststore.type = PEM\n"
        ));
        let a =
            config.clusters[&ClusterName::new("A").unwrap()].client_config(ClientRole::Consumer);
        assert_eq!(
            a.get("ssl.certificate.location"),
            Some(format!("{dir}/ca.pem").as_str())
        );
        assert_eq!(
            a.get("ssl.key.location"),
            Some(format!("{dir}/ca.pem").as_str())
        );
        assert_eq!(a.get("ssl.key.password"), Some("kp"));
        assert_eq!(
            a.get("ssl.endpoint.identification.algorithm"),
            Some("https")
        );
        let b =
            config.clusters[&ClusterName::new("B").unwrap()].client_config(ClientRole::Producer);
        assert_eq!(
            b.get("ssl.ca.pem"),
            Some("-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n")
        );
        // The top-level key store is A's and B's default; B has no key store of its own
        // only because it is the same one.
        assert_eq!(
            b.get("ssl.certificate.location"),
            Some(format!("{dir}/ca.pem").as_str())
        );
        let keystore_password = reason(&unused, "ssl.keystore.password").unwrap();
        assert!(keystore_password.reason.contains("ssl.key.password"));
    }

    #[test]
    fn pkcs12_truststore_and_jks_stores_name_their_conversion() {
        let dir = stores("conversions");
        let dir = dir.display();
        let found = errors(&format!(
            "{BASE}A.ssl.truststore.location = {dir}/truststore.p12\n\
             A.ssl.truststore.type = PKCS12\n\
             A.ssl.truststore.password = ts-s3cret\n\
             B.security.protocol = SASL_SSL\n\
             B.sasl.mechanism = PLAIN\n\
             B.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"p\";\n\
             B.ssl.truststore.location = {dir}/truststore.jks\n\
             B.ssl.keystore.location = {dir}/mislabelled.p12\n\
             B.ssl.keystore.type = PKCS12\n"
        ));
        let keys: Vec<(&str, Option<usize>)> = found
            .iter()
            .map(|error| (error.key.as_str(), error.line))
            .collect();
        assert_eq!(
            keys,
            [
                ("A.ssl.truststore.location", Some(6)),
                ("B.ssl.truststore.location", Some(12)),
                ("B.ssl.keystore.location", Some(13)),
            ]
        );
        assert_eq!(
            found[0].message,
            format!(
                "`{dir}/truststore.p12` is a PKCS12 trust store, which librdkafka cannot read (it reads CA certificates from PEM only): convert it with `openssl pkcs12 -in {dir}/truststore.p12 -nokeys -out {dir}/truststore.pem`, then set `A.ssl.truststore.location={dir}/truststore.pem` and `A.ssl.truststore.type=PEM`"
            )
        );
        assert!(
            found[1].message.contains(&format!(
                "`keytool -importkeystore -srckeystore {dir}/truststore.jks -destkeystore {dir}/truststore.p12 -deststoretype PKCS12`, then `openssl pkcs12 -in {dir}/truststore.p12 -nokeys -out {dir}/truststore.pem`"
            )),
            "{}",
            found[1].message
        );
        assert!(
            found[2].message.contains("is a JKS key store"),
            "{}",
            found[2].message
        );
        assert!(
            found
                .iter()
                .all(|error| !error.message.contains("ts-s3cret"))
        );
    }

    /// A store that cannot be read (a file of the machine Ferry runs on, checked on another) is
    /// taken for what its type or name says, else for Java's default JKS.
    #[test]
    fn unreadable_stores_follow_type_then_name() {
        let (config, _) = resolve(&format!(
            "{BASE}A.ssl.truststore.location = /nonexistent/ca.crt\n"
        ));
        let client =
            config.clusters[&ClusterName::new("A").unwrap()].client_config(ClientRole::Consumer);
        assert_eq!(client.get("ssl.ca.location"), Some("/nonexistent/ca.crt"));
        let found = errors(&format!(
            "{BASE}A.ssl.truststore.location = /nonexistent/truststore\n"
        ));
        assert!(
            found[0].message.contains("is a JKS trust store"),
            "{}",
            found[0].message
        );
        let found = errors(&format!(
            "{BASE}A.ssl.truststore.location = /nonexistent/truststore\nA.ssl.truststore.type = BKS\nA.ssl.endpoint.identification.algorithm = ldaps\n"
        ));
        let keys: Vec<&str> = found.iter().map(|error| error.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "A.ssl.truststore.type",
                "A.ssl.endpoint.identification.algorithm"
            ]
        );
    }

    #[test]
    fn tls_keys_of_a_plaintext_cluster_are_unused() {
        let (_, unused) = resolve(
            "clusters = A, B\nA.bootstrap.servers = a:9092\nB.bootstrap.servers = b:9092\nA->B.enabled = true\n\
             A.ssl.truststore.location = /x/ca.pem\nssl.keystore.location = /x/ks.p12\n",
        );
        assert!(
            reason(&unused, "A.ssl.truststore.location")
                .unwrap()
                .reason
                .contains("does not use TLS")
        );
        assert!(
            reason(&unused, "ssl.keystore.location")
                .unwrap()
                .reason
                .contains("uses TLS")
        );
    }

    #[test]
    fn pem_text_is_rewrapped_for_openssl() {
        let long = "A".repeat(70);
        assert_eq!(
            normalize_pem(&format!(
                "-----BEGIN PRIVATE KEY----- {long} -----END PRIVATE KEY-----"
            ))
            .unwrap(),
            format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n{}\n-----END PRIVATE KEY-----\n",
                &long[..64],
                &long[64..]
            )
        );
        assert!(normalize_pem("MIIB").is_err());
        assert!(normalize_pem("-----BEGIN CERTIFICATE----- MIIB").is_err());
    }
}
