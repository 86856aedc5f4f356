//! The listening socket and its connections. HTTP/1.1 only: no client of
//! the REST Proxy API needs HTTP/2, and hyper's HTTP/2 server would be one
//! more set of limits to keep (h2c was served before, with hyper's
//! defaults). Each request head must arrive within the header timeout;
//! hyper starts the same clock when a keep-alive connection waits for its
//! next request, so it is the idle timeout too. Open connections are
//! capped: one over the cap is answered 503 at once and closed, so idle or
//! slow sockets cannot take the descriptors that librdkafka and the AWS
//! clients need (the cap is kept below the process's descriptor limit).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower_http::normalize_path::NormalizePath;

use crate::errors::ProxyError;
use crate::metrics::{Metrics, Refusal};

/// The limits of [`serve`]; their defaults and flags are
/// `IngestConfig`'s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// Descriptors kept free of client connections: librdkafka's sockets to
/// every broker (the producer, the admin client, 64 consumer instances),
/// the AWS clients' pools, log files.
pub(crate) const RESERVED_DESCRIPTORS: u64 = 512;

/// How long a stopping server lets its requests finish (they are bounded
/// anyway by the body and delivery timeouts and the 30 s long poll).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(40);

/// Connections over the cap being answered at once; beyond this many they
/// are closed without an answer, so answering cannot itself pile up.
const REFUSING_AT_ONCE: usize = 64;

/// The connection cap the process can keep: `wanted`, lowered (with a
/// warning that names the fix) when the descriptor limit leaves too few.
pub(crate) fn connection_cap(wanted: usize, descriptor_limit: Option<u64>) -> usize {
    let Some(limit) = descriptor_limit else { return wanted };
    let room = limit.saturating_sub(RESERVED_DESCRIPTORS).max(1) as usize;
    if wanted <= room {
        return wanted;
    }
    tracing::warn!(
        wanted,
        serving = room,
        descriptor_limit = limit,
        "the open-file limit leaves room for only {room} client connections; raise it (`ulimit -n`, or LimitNOFILE= in the systemd unit) to serve --max-connections {wanted}"
    );
    room
}

/// The process's open-file limit (the soft one, which is what applies).
pub(crate) fn descriptor_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE).ok().map(|(soft, _hard)| soft)
}

/// Accept connections and serve `app` on them until `shutdown` resolves,
/// then let the requests in flight finish (for [`SHUTDOWN_GRACE`] at most).
pub(crate) async fn serve(
    listener: TcpListener,
    app: NormalizePath<Router>,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(REFUSING_AT_ONCE));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    metrics.accept_error(&e);
                    // Out of descriptors (or another resource): accepting
                    // again at once would spin; connections wait in the
                    // backlog meanwhile.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = connections.clone().try_acquire_owned() else {
            metrics.refused(Refusal::ConnectionLimit, &format_args!("{peer}: {} connections open", limits.max_connections));
            if let Ok(permit) = refusing.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    answer_over_capacity(stream).await;
                    drop(permit);
                });
            }
            continue;
        };
        // Answers are small: do not hold them back for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone())));
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _open = metrics.connection_opened();
            if let Err(e) = conn.await {
                note_connection_error(&metrics, peer, &e);
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still running after {SHUTDOWN_GRACE:?} of shutdown were cut off");
    }
    Ok(())
}

fn note_connection_error(metrics: &Metrics, peer: SocketAddr, e: &hyper::Error) {
    if e.is_timeout() {
        metrics.refused(Refusal::HeaderTimeout, &format_args!("{peer}: no complete request head in time"));
    } else {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

/// The answer to a connection over the cap, as bytes: the connection is
/// closed after it, so no request needs to be read.
static OVER_CAPACITY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let error = ProxyError::overloaded("connections");
    let body = serde_json::to_vec(&error.body()).expect("a JSON value serializes");
    let mut bytes = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        error.status().as_u16(),
        error.status().canonical_reason().unwrap_or(""),
        crate::errors::CONTENT_TYPE_V2,
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&body);
    bytes
});

/// Write the 503, then read what the client sent for a moment before
/// closing: closing with unread bytes resets the connection, and the client
/// would see a reset instead of the answer.
async fn answer_over_capacity(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&OVER_CAPACITY).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut read = 0;
        while read < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => read += n,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_the_reserved_descriptors_free() {
        assert_eq!(connection_cap(4096, Some(65536)), 4096);
        assert_eq!(connection_cap(4096, Some(1024)), 1024 - RESERVED_DESCRIPTORS as usize);
        assert_eq!(connection_cap(4096, None), 4096, "no limit known: as asked");
        assert_eq!(connection_cap(10, Some(100)), 1, "never 0, which would refuse everyone");
    }

    #[test]
    fn the_answer_over_the_cap_is_a_complete_retriable_http_response() {
        let text = String::from_utf8(OVER_CAPACITY.clone()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{head}");
        assert!(head.contains("\r\nRetry-After: 1\r\n") && head.contains("\r\nConnection: close\r\n"), "{head}");
        assert!(head.contains(&format!("\r\nContent-Length: {}", body.len())), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error_code"], 50301, "{body}");
    }
}
