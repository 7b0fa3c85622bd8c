//! A test OIDC token endpoint: [`TokenEndpoint`], a small HTTP/1.1 server on a loopback port
//! that answers the client-credentials requests of librdkafka's `sasl.oauthbearer.method=oidc`
//! with an unsigned JWT, which the OAUTHBEARER listeners of `scripts/kafka-local start --sasl`
//! accept (Kafka's unsecured validator). It counts the requests it answered and refused.
//!
//! A request is answered only when it is what an OIDC client-credentials client sends: `POST`,
//! `Authorization: Basic base64(client_id:client_secret)` with the expected credentials, and a
//! form body `grant_type=client_credentials&scope=<scope>`. Anything else gets a 401.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the endpoint saw, shared with its thread.
#[derive(Default)]
struct Counts {
    answered: AtomicUsize,
    refused: AtomicUsize,
    stop: AtomicBool,
}

/// A running token endpoint on `127.0.0.1`, stopped on drop.
pub struct TokenEndpoint {
    /// `http://127.0.0.1:<port>/token`.
    pub url: String,
    address: std::net::SocketAddr,
    counts: Arc<Counts>,
    thread: Option<JoinHandle<()>>,
}

impl TokenEndpoint {
    /// Starts an endpoint that gives tokens for principal `subject` (the JWT's `sub`) to the
    /// client `client_id`/`client_secret` asking for `scope`.
    pub fn start(
        client_id: &str,
        client_secret: &str,
        scope: &str,
        subject: &str,
    ) -> TokenEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let expected_auth = format!(
            "Basic {}",
            base64(format!("{client_id}:{client_secret}").as_bytes(), STANDARD)
        );
        let expected_body = format!("grant_type=client_credentials&scope={scope}");
        let subject = subject.to_owned();
        let thread_counts = Arc::clone(&counts);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_counts.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let answered = serve(stream, &expected_auth, &expected_body, &subject);
                let count = if answered {
                    &thread_counts.answered
                } else {
                    &thread_counts.refused
                };
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        TokenEndpoint {
            url: format!("http://{address}/token"),
            address,
            counts,
            thread: Some(thread),
        }
    }

    /// How many requests got a token.
    pub fn answered(&self) -> usize {
        self.counts.answered.load(Ordering::SeqCst)
    }

    /// How many requests were refused (wrong method, credentials or body).
    pub fn refused(&self) -> usize {
        self.counts.refused.load(Ordering::SeqCst)
    }
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        self.counts.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so that the thread sees the flag and ends.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request from `stream` and answers it; whether it got a token.
fn serve(stream: TcpStream, expected_auth: &str, expected_body: &str, subject: &str) -> bool {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return false;
    }
    let (mut authorization, mut length) = (String::new(), 0_usize);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "authorization" => authorization = value.trim().to_owned(),
                "content-length" => length = value.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return false;
    }
    let ok = request_line.starts_with("POST /token ")
        && authorization == expected_auth
        && body == expected_body.as_bytes();
    let (status, body) = if ok {
        let token = unsigned_jwt(subject, 3600);
        (
            "200 OK",
            format!(r#"{{"access_token":"{token}","token_type":"bearer","expires_in":3600}}"#),
        )
    } else {
        (
            "401 Unauthorized",
            r#"{"error":"invalid_client"}"#.to_owned(),
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = &stream;
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    ok
}

/// An unsigned JWT (`{"alg":"none"}`, empty signature) for `subject`, valid `lifetime_s`
/// seconds from now, with the claims librdkafka (`sub`, `exp`) and Kafka's unsecured
/// validator (`sub`, `exp`, `iat`) read.
fn unsigned_jwt(subject: &str, lifetime_s: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = base64(br#"{"alg":"none","typ":"JWT"}"#, URL_SAFE);
    let claims = format!(
        r#"{{"sub":"{subject}","iat":{now},"exp":{},"scope":"kafka"}}"#,
        now + lifetime_s
    );
    format!("{header}.{}.", base64(claims.as_bytes(), URL_SAFE))
}

/// The standard base64 alphabet, with `=` padding (HTTP Basic authentication).
const STANDARD: (&[u8; 64], bool) = (
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    true,
);
/// The URL-safe alphabet, unpadded (JWT).
const URL_SAFE: (&[u8; 64], bool) = (
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    false,
);

fn base64(bytes: &[u8], (alphabet, pad): (&[u8; 64], bool)) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0_u32, |n, (i, byte)| n | (u32::from(*byte) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
        }
        if pad {
            out.push_str(&"=="[..3 - chunk.len()]);
        }
    }
    out
}

#[test]
fn base64_matches_rfc_4648() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(plain.as_bytes(), STANDARD), encoded);
        assert_eq!(
            base64(plain.as_bytes(), URL_SAFE),
            encoded.trim_end_matches('=')
        );
    }
    assert_eq!(base64(&[0xfb, 0xff], URL_SAFE), "-_8");
}
