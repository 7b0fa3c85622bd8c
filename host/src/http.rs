//! The one HTTP/1 server loop of the host, shared by the metrics endpoint (`crate::metrics`)
//! and the admin endpoint (`crate::admin`): bind, accept, one task per connection.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A response with a body.
pub(crate) type Reply = Response<Full<Bytes>>;

/// Binds `address` and answers every request with `handler` until the runtime stops. Returns
/// the bound address (useful with port 0).
///
/// # Errors
/// When the address cannot be bound.
pub(crate) async fn serve<H, F>(
    address: SocketAddr,
    what: &'static str,
    handler: H,
) -> std::io::Result<SocketAddr>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(connection) => connection,
                Err(error) => {
                    tracing::warn!(%error, endpoint = what, "Accepting a connection failed.");
                    continue;
                }
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let answer = handler(request);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                if let Err(error) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%error, endpoint = what, "Connection ended with an error.");
                }
            });
        }
    });
    Ok(bound)
}

/// A response of `status` with `body` of `content_type`.
pub(crate) fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
