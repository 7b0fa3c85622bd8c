//! The operator's MM2 file (issue 3) runs unchanged against SASL_PLAINTEXT/PLAIN clusters with
//! an authorizer, with TLS added (SASL_SSL, SCRAM-SHA-512; issue 13) against their TLS
//! listeners, and with OAUTHBEARER (OIDC client credentials; issue 13) against their
//! OAUTHBEARER listeners and a token endpoint of the test: its placeholder credentials
//! `your_user`/`your_password` are a super user of the test harness (`scripts/kafka-local start
//! --sasl`, which also generates the test CA), and so is `ferry`, the tokens' principal.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::support::{self, Ferry, TempDir, TokenEndpoint};

/// The runs below are one deployment: the same flow (`clusterA->clusterB`, topics
/// `prod.*.global`) on the same clusters, in one flow group. Run together, each would mirror the
/// others' topics and share their tasks, and a test could pass on what another process copied.
/// So they take turns.
static DEPLOYMENT: Mutex<()> = Mutex::new(());

fn deployment_turn() -> MutexGuard<'static, ()> {
    // A failed test poisons the lock; the next one may still run.
    DEPLOYMENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits until `ferry` alone has mirrored `expected` records to `remote`, and checks that it
/// held tasks to do so (the copy is its own).
fn wait_for_own_copy(ferry: &mut Ferry, b: &str, remote: &str, expected: i64) {
    support::wait_until(Duration::from_secs(120), "all records mirrored", || {
        ferry.assert_running();
        support::record_count(b, remote) >= expected
    });
    assert!(
        ferry.tasks_held() > 0,
        "the records were mirrored while this process held no task:\n{}",
        ferry.log_text()
    );
}

/// `examples/connect-mirror-maker.properties` with only the addresses made local and, for the
/// one-broker clusters, every replication factor set to 1 (the issue allows both edits). Its
/// SASL lines are kept as written.
fn operator_file(a: &str, b: &str) -> String {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/connect-mirror-maker.properties"
    );
    std::fs::read_to_string(example)
        .unwrap()
        .lines()
        .map(|line| match line.split_once('=') {
            Some((key, _)) if key.trim() == "clusterA.bootstrap.servers" => {
                format!("clusterA.bootstrap.servers = {a}")
            }
            Some((key, _)) if key.trim() == "clusterB.bootstrap.servers" => {
                format!("clusterB.bootstrap.servers = {b}")
            }
            Some((key, _)) if key.trim().ends_with("replication.factor") => {
                format!("{} = 1", key.trim())
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Acceptance (issue 3): the file runs unchanged with SASL: a `prod.*.global` topic is mirrored
/// to `clusterA.prod.*.global` exactly, and its topic ACL follows (the file enables
/// `sync.topic.acls`).
#[test]
fn operators_mm2_file_runs_with_sasl() {
    let _turn = deployment_turn();
    let clusters = support::sasl_clusters();
    let text = operator_file(&clusters.a, &clusters.b);
    assert!(text.contains("username=\"your_user\" password=\"your_password\""));
    let topic = format!("prod.{}.global", support::unique("op"));
    let remote = format!("clusterA.{topic}");
    let (partitions, per_partition) = (4, 2_000);
    support::create_topic(&clusters.a, &topic, partitions);
    support::produce(&clusters.a, &topic, partitions, 0..per_partition);
    support::acl_command(
        &clusters.a,
        &[
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            &topic,
        ],
    );

    let dir = TempDir::new("mm2-sasl");
    let file = dir.0.join("connect-mirror-maker.properties");
    std::fs::write(&file, &text).unwrap();
    let mut ferry = Ferry::start_mm2(&file, &dir, "ferry");
    let expected = i64::from(partitions) * per_partition as i64;
    wait_for_own_copy(&mut ferry, &clusters.b, &remote, expected);
    support::wait_until(Duration::from_secs(60), "the topic ACL follows", || {
        support::acls(&clusters.b).iter().any(|acl| {
            acl.name == remote && acl.principal == "User:alice" && acl.operation == "READ"
        })
    });
    let log = ferry.log_text();
    assert!(
        log.contains("config.storage.topic"),
        "unused keys are not listed:\n{log}"
    );
    assert!(!log.contains("your_password"), "secret in the log");
    ferry.terminate();
    let comparison = support::compare(
        &support::read_all(&clusters.b, &remote),
        partitions,
        per_partition,
    );
    assert_eq!(
        (comparison.lost, comparison.duplicates, comparison.received),
        (0, 0, expected as u64)
    );
}

/// The operator's file as a secured deployment writes it: TLS listeners, SASL_SSL with
/// SCRAM-SHA-512, the CA as a truststore of `truststore` lines. Everything else unchanged.
fn operator_file_with_tls(truststore: &[(&str, String)]) -> String {
    let clusters = support::sasl_clusters();
    let mut text = operator_file(&clusters.a_tls, &clusters.b_tls)
        .lines()
        .map(|line| {
            let line = line.replace("SASL_PLAINTEXT", "SASL_SSL");
            let line = line.replace("sasl.mechanism=PLAIN", "sasl.mechanism=SCRAM-SHA-512");
            line.replace(
                "org.apache.kafka.common.security.plain.PlainLoginModule",
                "org.apache.kafka.common.security.scram.ScramLoginModule",
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    for alias in ["clusterA", "clusterB"] {
        for (key, value) in truststore {
            text.push_str(&format!("\n{alias}.{key} = {value}"));
        }
        text.push_str(&format!(
            "\n{alias}.ssl.endpoint.identification.algorithm = https"
        ));
    }
    text.push('\n');
    text
}

/// Acceptance (issue 13): the operator's file with TLS added (SASL_SSL, SCRAM-SHA-512, a PEM
/// truststore, host name verification on) runs unchanged against TLS listeners: a
/// `prod.*.global` topic is mirrored exactly, and no secret reaches the log.
#[test]
fn operators_mm2_file_runs_with_sasl_ssl_and_scram() {
    let _turn = deployment_turn();
    let clusters = support::sasl_clusters();
    let text = operator_file_with_tls(&[
        (
            "ssl.truststore.location",
            clusters.ca_pem.display().to_string(),
        ),
        ("ssl.truststore.type", "PEM".to_owned()),
    ]);
    assert!(text.contains("security.protocol=SASL_SSL"), "{text}");
    assert!(text.contains("sasl.mechanism=SCRAM-SHA-512"), "{text}");
    let topic = format!("prod.{}.global", support::unique("tls"));
    let remote = format!("clusterA.{topic}");
    let (partitions, per_partition) = (3, 1_000);
    // Set up and read back over the SASL_PLAINTEXT listener; Ferry uses only the TLS ones.
    support::create_topic(&clusters.a, &topic, partitions);
    support::produce(&clusters.a, &topic, partitions, 0..per_partition);

    let dir = TempDir::new("mm2-tls");
    let file = dir.0.join("connect-mirror-maker.properties");
    std::fs::write(&file, &text).unwrap();
    let mut ferry = Ferry::start_mm2(&file, &dir, "ferry");
    let expected = i64::from(partitions) * per_partition as i64;
    wait_for_own_copy(&mut ferry, &clusters.b, &remote, expected);
    let log = ferry.log_text();
    assert!(!log.contains("your_password"), "secret in the log");
    ferry.terminate();
    let comparison = support::compare(
        &support::read_all(&clusters.b, &remote),
        partitions,
        per_partition,
    );
    assert_eq!(
        (comparison.lost, comparison.duplicates, comparison.received),
        (0, 0, expected as u64)
    );
}

/// A JKS or PKCS12 truststore, which librdkafka cannot read (it takes CA certificates as PEM),
/// is refused before any cluster is contacted, naming the key and the conversion that makes it
/// usable, without printing the store password.
#[test]
fn jks_and_pkcs12_truststores_are_refused_with_the_conversion_to_run() {
    let clusters = support::sasl_clusters();
    for (store, kind, conversion) in [
        (&clusters.truststore_jks, "JKS", "keytool"),
        (&clusters.truststore_p12, "PKCS12", "openssl pkcs12"),
    ] {
        let text = operator_file_with_tls(&[
            ("ssl.truststore.location", store.display().to_string()),
            ("ssl.truststore.type", kind.to_owned()),
            (
                "ssl.truststore.password",
                clusters.truststore_password.clone(),
            ),
        ]);
        let dir = TempDir::new("mm2-truststore");
        let file = dir.0.join("connect-mirror-maker.properties");
        std::fs::write(&file, &text).unwrap();
        let (code, stderr) =
            support::ferry_command(&["validate", "--mm2", file.to_str().unwrap(), "--offline"]);
        assert_eq!(code, 2, "{kind}: {stderr}");
        assert!(
            stderr.contains("ssl.truststore.location"),
            "{kind}: {stderr}"
        );
        assert!(stderr.contains(conversion), "{kind}: {stderr}");
        assert!(
            !stderr.contains(&clusters.truststore_password),
            "{kind}: the store password was printed: {stderr}"
        );
    }
}

/// The operator's file with its SASL lines as an OIDC deployment writes them: OAUTHBEARER with
/// Kafka's `OAuthBearerLoginCallbackHandler`, the token endpoint `token_url` and the client
/// credentials `ferry`/`ferry-secret` (scope `kafka`) in the JAAS line. Everything else unchanged.
fn operator_file_with_oauthbearer(token_url: &str) -> String {
    let clusters = support::sasl_clusters();
    let mut text = String::new();
    for line in operator_file(&clusters.a_oauth, &clusters.b_oauth).lines() {
        let Some((key, _)) = line.split_once('=') else {
            text.push_str(line);
            text.push('\n');
            continue;
        };
        let key = key.trim();
        match key.split_once('.') {
            Some((alias, "sasl.mechanism")) => {
                text.push_str(&format!(
                    "{alias}.sasl.mechanism=OAUTHBEARER\n\
                     {alias}.sasl.login.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler\n\
                     {alias}.sasl.oauthbearer.token.endpoint.url={token_url}\n"
                ));
            }
            Some((alias, "sasl.jaas.config")) => {
                text.push_str(&format!(
                    "{alias}.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"ferry\" clientSecret=\"ferry-secret\" scope=\"kafka\";\n"
                ));
            }
            _ => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text
}

/// Acceptance (issue 13): the operator's file with OAUTHBEARER (OIDC client credentials) runs
/// unchanged against the OAUTHBEARER listeners: librdkafka fetches its tokens from the test's
/// token endpoint (client id and secret as HTTP Basic credentials, the scope in the form), a
/// `prod.*.global` topic is mirrored exactly, and the client secret never reaches the log.
#[test]
fn operators_mm2_file_runs_with_oauthbearer_oidc() {
    let _turn = deployment_turn();
    let clusters = support::sasl_clusters();
    let endpoint = TokenEndpoint::start("ferry", "ferry-secret", "kafka", "ferry");
    let text = operator_file_with_oauthbearer(&endpoint.url);
    for expected in [
        "clusterA.sasl.mechanism=OAUTHBEARER",
        "clusterB.sasl.mechanism=OAUTHBEARER",
        "clusterA.security.protocol=SASL_PLAINTEXT",
        "clientSecret=\"ferry-secret\"",
    ] {
        assert!(text.contains(expected), "{expected}:\n{text}");
    }
    assert!(!text.contains("PlainLoginModule"), "{text}");
    let topic = format!("prod.{}.global", support::unique("oauth"));
    let remote = format!("clusterA.{topic}");
    let (partitions, per_partition) = (3, 1_000);
    // Set up and read back over the SASL_PLAINTEXT/PLAIN listener; Ferry uses only the
    // OAUTHBEARER ones.
    support::create_topic(&clusters.a, &topic, partitions);
    support::produce(&clusters.a, &topic, partitions, 0..per_partition);

    let dir = TempDir::new("mm2-oauth");
    let file = dir.0.join("connect-mirror-maker.properties");
    std::fs::write(&file, &text).unwrap();
    let (code, stderr) =
        support::ferry_command(&["validate", "--mm2", file.to_str().unwrap(), "--offline"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("ferry-secret"), "secret printed: {stderr}");

    let mut ferry = Ferry::start_mm2(&file, &dir, "ferry");
    let expected = i64::from(partitions) * per_partition as i64;
    wait_for_own_copy(&mut ferry, &clusters.b, &remote, expected);
    ferry.terminate();
    let log = std::fs::read_to_string(dir.0.join("ferry.log")).unwrap();
    assert!(!log.contains("ferry-secret"), "secret in the log:\n{log}");
    let (answered, refused) = (endpoint.answered(), endpoint.refused());
    drop(endpoint);
    println!("token endpoint: {answered} token(s) issued, {refused} request(s) refused");
    assert!(answered > 0, "no token was fetched from the endpoint");
    assert_eq!(
        refused, 0,
        "requests without the client credentials or scope"
    );
    let comparison = support::compare(
        &support::read_all(&clusters.b, &remote),
        partitions,
        per_partition,
    );
    println!(
        "oauthbearer: {} received, {} lost, {} duplicated",
        comparison.received, comparison.lost, comparison.duplicates
    );
    assert_eq!(
        (comparison.lost, comparison.duplicates, comparison.received),
        (0, 0, expected as u64)
    );
}
