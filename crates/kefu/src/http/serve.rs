//! The HTTP/1.1 server under the router: plain TCP or TLS (rustls), with limits a public server
//! needs that `axum::serve` does not set: a deadline for a request's headers (slowloris), a cap on
//! their size, and one for the TLS handshake.
//!
//! Every connection is told the client's address (`ConnectInfo`), for the per-address limits.

use std::{future::Future, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{Router, body::Body, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
};
use tokio_rustls::TlsAcceptor;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

/// A request's headers must arrive within this long after its first byte (or after the previous
/// request on the connection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's line and headers together: larger ones are answered `431`.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// A TLS client must finish its handshake within this long.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an accept error (out of descriptors, say) pauses accepting.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The certificate chain and key of `--tls-cert` and `--tls-key`, as PEM files.
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing the TLS certificate {}", cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no certificate (PEM, BEGIN CERTIFICATE)",
        cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the TLS key {} (PEM)", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS key does not match the certificate")?;
    // HTTP/1.1 only: WebSocket upgrades need it, and every client speaks it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting and returns, leaving
/// the open connections to [`OpenConnections::close`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> OpenConnections {
    let open = OpenConnections {
        tracker: TaskTracker::new(),
        closing: CancellationToken::new(),
        dropping: CancellationToken::new(),
    };
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection; pausing");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (app, http, tls) = (app.clone(), http.clone(), tls.clone());
        let (closing, dropping) = (open.closing.clone(), open.dropping.clone());
        open.tracker.spawn(async move {
            let served = async {
                match tls {
                    None => serve_connection(tcp, peer, app, &http, closing).await,
                    Some(tls) => {
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                            Ok(Ok(stream)) => {
                                serve_connection(stream, peer, app, &http, closing).await;
                            }
                            Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                            Err(_) => tracing::debug!("TLS handshake timed out"),
                        }
                    }
                }
            };
            tokio::select! {
                () = served => {}
                () = dropping.cancelled() => {}
            }
        });
    }
    open
}

async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    http: &http1::Builder,
    closing: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let app = app.clone();
        async move {
            if head_bytes(&request) > MAX_HEADER_BYTES {
                return Ok(headers_too_large());
            }
            request.extensions_mut().insert(ConnectInfo(peer));
            if request.uri().path().starts_with(SOCKET_IO_PATH) {
                unshare_head(&mut request);
            }
            app.oneshot(request.map(Body::new)).await
        }
    });
    let connection = http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = closing.cancelled() => {
            // Finish the request in flight, then close.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = served {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// The size of a request's line and headers as sent (give or take the spaces around colons).
///
/// hyper's own cap is the size of its read buffer, checked before each read: headers that arrive
/// in one large write are read in one go past it, so the cap is checked again here.
fn head_bytes<B>(request: &hyper::Request<B>) -> usize {
    let line = request.method().as_str().len()
        + request
            .uri()
            .path_and_query()
            .map_or(1, |p| p.as_str().len())
        + " HTTP/1.1\r\n".len()
        + 1;
    request.headers().iter().fold(line, |total, (name, value)| {
        total + name.as_str().len() + value.len() + ": \r\n".len()
    }) + "\r\n".len()
}

/// `431`, in the protocol's error shape, and the connection is closed.
fn headers_too_large() -> hyper::Response<Body> {
    let body = format!(
        r#"{{"error":{{"code":"too_large","message":"the request's headers are over {} KiB"}}}}"#,
        MAX_HEADER_BYTES / 1024
    );
    let mut response = hyper::Response::new(Body::from(body));
    *response.status_mut() = hyper::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    response
}

/// The Socket.IO endpoint, whose requests' heads live as long as their sessions.
const SOCKET_IO_PATH: &str = "/socket.io/";

/// Copies a request's URI and header values out of hyper's read buffer.
///
/// hyper parses without copying: the URI and every header value are slices of the connection's
/// read buffer, so while any of them is alive the whole buffer (8 KiB or more) is. The Socket.IO
/// server keeps the request head of each session for the session's life, which made that buffer
/// the largest part of an idle connection's memory (docs/benchmarks.md). The copies take a few
/// hundred bytes.
fn unshare_head<B>(request: &mut hyper::Request<B>) {
    use hyper::header::{HeaderMap, HeaderValue};
    if let Ok(uri) = request.uri().to_string().parse() {
        *request.uri_mut() = uri;
    }
    let shared = std::mem::take(request.headers_mut());
    let mut copied = HeaderMap::with_capacity(shared.len());
    let mut name = None;
    for (key, value) in shared {
        // `into_iter` names a header once, before the first of its values.
        name = key.or(name);
        let Some(name) = &name else { continue };
        let sensitive = value.is_sensitive();
        let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or(value);
        copy.set_sensitive(sensitive);
        copied.append(name.clone(), copy);
    }
    *request.headers_mut() = copied;
}

/// The connections still open after the listener stopped.
pub struct OpenConnections {
    tracker: TaskTracker,
    /// Asks each connection to finish its request in flight and close.
    closing: CancellationToken,
    /// Drops the connections still open.
    dropping: CancellationToken,
}

impl OpenConnections {
    /// Lets each connection finish its request in flight and close, for at most `grace`; the
    /// ones still open then are dropped. Upgraded connections (WebSocket) are not waited for:
    /// they belong to the Socket.IO server, which closes them itself.
    pub async fn close(self, grace: Duration) {
        self.closing.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::info!("dropping requests still open after {grace:?}");
            self.dropping.cancel();
            self.tracker.wait().await;
        }
    }
}
