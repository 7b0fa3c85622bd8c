//! How an operator changes a running Ferry: the admin HTTP endpoint and the plugin file
//! watcher. Both hot-swap plugins through `flow::swap`; this module owns only the
//! transport (routes, authentication, polling files).
//!
//! Routes (JSON answers):
//! - `GET /status`: every flow's policy and chain, with active and draining versions.
//! - `POST /flows/<source>/<target>/plugins/<name>`: swaps a filter, transform or name filter.
//!   The body is the new component; an empty body reads the configured file again. `<name>` is
//!   the file name, or the position (the chain from 0, then the name filters).
//! - `POST /flows/<source>/<target>/policy[?dry_run=true][&force=true]`: swaps the naming
//!   policy, or with `dry_run` only shows the diff of remote names.
//!
//! Security: with a token (`FERRY_ADMIN_TOKEN`), every request must carry
//! `Authorization: Bearer <token>`. Without a token the endpoint only binds a loopback address
//! (anyone who can run a process on the host can already replace the plugin files).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Serialize;

use crate::flow::swap::{FlowPlugins, PolicyRequest, SwapError, Watched};
use crate::http::{Reply, reply};

/// The largest component an upload may carry (a Python component is ~18 MiB).
const MAX_UPLOAD: usize = 128 << 20;

/// How often the watcher looks at plugin files. A change is applied once the file's size and
/// modification time stayed the same for one more look, so a file still being written is not
/// loaded half way.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// Errors starting the admin endpoint.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Without a token the endpoint must stay on loopback.
    #[error(
        "the admin endpoint binds {0}, which is not a loopback address: set FERRY_ADMIN_TOKEN (clients send `Authorization: Bearer <token>`) or bind 127.0.0.1"
    )]
    NoToken(SocketAddr),
    /// The address could not be bound.
    #[error("binding the admin endpoint to {address} failed")]
    Bind {
        /// `--admin-bind`.
        address: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Checks that `address` may be served with `token`.
///
/// # Errors
/// [`AdminError::NoToken`].
pub fn check_bind(address: SocketAddr, token: Option<&str>) -> Result<(), AdminError> {
    if token.is_none() && !address.ip().is_loopback() {
        return Err(AdminError::NoToken(address));
    }
    Ok(())
}

/// Serves the admin endpoint on `address` for `flows`. Returns the bound address.
///
/// # Errors
/// [`AdminError`].
pub(crate) async fn serve(
    address: SocketAddr,
    token: Option<String>,
    flows: Vec<Arc<FlowPlugins>>,
) -> Result<SocketAddr, AdminError> {
    check_bind(address, token.as_deref())?;
    let state = Arc::new((token, flows));
    crate::http::serve(address, "admin", move |request| {
        let state = Arc::clone(&state);
        async move {
            let (token, flows) = &*state;
            handle(request, token.as_deref(), flows).await
        }
    })
    .await
    .map_err(|source| AdminError::Bind { address, source })
}

async fn handle(
    request: Request<Incoming>,
    token: Option<&str>,
    flows: &[Arc<FlowPlugins>],
) -> Reply {
    if let Some(token) = token
        && !authorized(&request, token)
    {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let path: Vec<String> = request
        .uri()
        .path()
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(percent_decode)
        .collect();
    let query = request.uri().query().unwrap_or("").to_owned();
    let method = request.method().clone();
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    match (method, segments.as_slice()) {
        (Method::GET, ["status"]) => json(
            StatusCode::OK,
            &flows.iter().map(|flow| flow.status()).collect::<Vec<_>>(),
        ),
        (Method::POST, ["flows", source, target, "plugins", name]) => {
            let Some(flow) = find(flows, source, target) else {
                return unknown_flow(source, target);
            };
            let index = match flow.stage_index(name) {
                Ok(index) => index,
                Err(failure) => return swap_error(&failure),
            };
            let upload = match body(request).await {
                Ok(upload) => upload,
                Err(answer) => return answer,
            };
            match flow.swap_stage(index, upload).await {
                Ok(swap) => json(StatusCode::OK, &swap),
                Err(failure) => swap_error(&failure),
            }
        }
        (Method::POST, ["flows", source, target, "policy"]) => {
            let Some(flow) = find(flows, source, target) else {
                return unknown_flow(source, target);
            };
            let flag = |name: &str| {
                query.split('&').any(|pair| {
                    pair == name || pair == format!("{name}=true") || pair == format!("{name}=1")
                })
            };
            let request_kind = PolicyRequest {
                dry_run: flag("dry_run"),
                force: flag("force"),
            };
            let upload = match body(request).await {
                Ok(upload) => upload,
                Err(answer) => return answer,
            };
            match flow.swap_policy(upload, request_kind).await {
                Ok(swap) => json(StatusCode::OK, &swap),
                Err(failure) => swap_error(&failure),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "routes: GET /status; POST /flows/<source>/<target>/plugins/<name>; POST /flows/<source>/<target>/policy[?dry_run=true][&force=true]",
        ),
    }
}

fn find<'a>(
    flows: &'a [Arc<FlowPlugins>],
    source: &str,
    target: &str,
) -> Option<&'a Arc<FlowPlugins>> {
    flows.iter().find(|flow| flow.is(source, target))
}

fn unknown_flow(source: &str, target: &str) -> Reply {
    error(
        StatusCode::NOT_FOUND,
        &format!("no running flow {source}->{target}"),
    )
}

/// Compares the bearer token without stopping at the first difference.
fn authorized(request: &Request<Incoming>, token: &str) -> bool {
    let Some(given) = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return false;
    };
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0_u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// The uploaded component, `None` for an empty body (read the file again).
async fn body(request: Request<Incoming>) -> Result<Option<Vec<u8>>, Reply> {
    match Limited::new(request.into_body(), MAX_UPLOAD)
        .collect()
        .await
    {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            Ok((!bytes.is_empty()).then(|| bytes.to_vec()))
        }
        Err(failure) => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("reading the upload failed (at most {MAX_UPLOAD} bytes): {failure}"),
        )),
    }
}

/// The HTTP status a failed swap answers with: 404 unknown plugin; 409 a request that cannot
/// apply as asked (ambiguous name, a builtin, a refused policy rename); 422 a version that did
/// not load or failed the canary; 503 the cluster could not be asked.
fn swap_status(failure: &SwapError) -> StatusCode {
    match failure {
        SwapError::UnknownPlugin { .. } => StatusCode::NOT_FOUND,
        SwapError::Ambiguous { .. } | SwapError::Builtin { .. } | SwapError::Refused { .. } => {
            StatusCode::CONFLICT
        }
        SwapError::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        SwapError::Metadata { .. } | SwapError::Join(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn swap_error(failure: &SwapError) -> Reply {
    let status = swap_status(failure);
    #[derive(Serialize)]
    struct Answer<'a> {
        error: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        diff: Option<&'a crate::flow::swap::PolicyDiff>,
    }
    json(
        status,
        &Answer {
            error: crate::error_chain(failure),
            diff: match failure {
                SwapError::Refused { diff } => Some(diff),
                _ => None,
            },
        },
    )
}

fn error(status: StatusCode, message: &str) -> Reply {
    json(status, &serde_json::json!({ "error": message }))
}

fn json(status: StatusCode, value: &impl Serialize) -> Reply {
    match serde_json::to_vec_pretty(value) {
        Ok(mut body) => {
            body.push(b'\n');
            reply(status, "application/json", body)
        }
        Err(failure) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            failure.to_string().into_bytes(),
        ),
    }
}

/// Decodes `%XX` escapes (a flow's cluster names and plugin file names are plain, but a client
/// may escape them).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let escaped = (byte == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(value) => {
                decoded.push(value);
                index += 3;
            }
            None => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// A watched file's size and modification time.
type Stamp = Option<(u64, SystemTime)>;

fn stamp(path: &Path) -> Stamp {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.len(), metadata.modified().ok()?))
}

/// Every 500 ms: forgets the replaced versions no task holds any more (the `draining` metric),
/// and, with `watch_files`, polls the files the flows' plugins came from and swaps a plugin
/// whose file changed (and then stayed the same for one more look). Runs until the runtime
/// stops. A failed swap is logged and counted; the file is tried again when it changes again.
pub(crate) fn watch(flows: Vec<Arc<FlowPlugins>>, watch_files: bool) {
    struct File {
        flow: Arc<FlowPlugins>,
        watched: Watched,
        seen: Stamp,
        pending: Option<Stamp>,
    }
    let mut files: Vec<File> = flows
        .iter()
        .filter(|_| watch_files)
        .flat_map(|flow| {
            flow.watched().into_iter().map(|watched| File {
                flow: Arc::clone(flow),
                seen: stamp(watched.path()),
                watched,
                pending: None,
            })
        })
        .collect();
    if watch_files {
        tracing::info!(
            files = files.len(),
            interval_ms = WATCH_INTERVAL.as_millis() as u64,
            "Watching plugin files for hot swap."
        );
    }
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(WATCH_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            for flow in &flows {
                flow.prune_draining();
            }
            for file in &mut files {
                let path = file.watched.path().to_path_buf();
                let now = stamp(&path);
                if now == file.seen {
                    file.pending = None;
                    continue;
                }
                if file.pending != Some(now) {
                    file.pending = Some(now);
                    continue;
                }
                file.seen = now;
                file.pending = None;
                let Ok(bytes) = std::fs::read(&path) else {
                    tracing::warn!(path = %path.display(), "A watched plugin file cannot be read; keeping the running version.");
                    continue;
                };
                let digest = crate::plugins::short_digest(&bytes);
                match &file.watched {
                    Watched::Stage(index, _) => {
                        if file.flow.stage_digest(*index).as_deref() == Some(digest.as_str()) {
                            continue;
                        }
                        tracing::info!(path = %path.display(), version = %digest, "Plugin file changed; swapping.");
                        // The outcome is logged and counted by the swap itself.
                        let _ = file.flow.swap_stage(*index, Some(bytes)).await;
                    }
                    Watched::Policy(_) => {
                        if file.flow.policy_digest() == digest {
                            continue;
                        }
                        tracing::info!(path = %path.display(), version = %digest, "Policy file changed; swapping unless it renames mirrored topics.");
                        let _ = file
                            .flow
                            .swap_policy(Some(bytes), PolicyRequest::default())
                            .await;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::{check_bind, percent_decode};

    #[test]
    fn without_a_token_only_loopback_is_served() {
        assert!(check_bind("127.0.0.1:7071".parse().unwrap(), None).is_ok());
        assert!(check_bind("[::1]:7071".parse().unwrap(), None).is_ok());
        let refused = check_bind("0.0.0.0:7071".parse().unwrap(), None).unwrap_err();
        assert!(
            refused.to_string().contains("FERRY_ADMIN_TOKEN"),
            "{refused}"
        );
        assert!(check_bind("0.0.0.0:7071".parse().unwrap(), Some("secret")).is_ok());
    }

    #[test]
    fn decodes_escapes() {
        assert_eq!(
            percent_decode("drop%2Dby%2dheader.wasm"),
            "drop-by-header.wasm"
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
