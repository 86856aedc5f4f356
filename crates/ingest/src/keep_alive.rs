//! Keep-alive connections survive early answers.
//!
//! A handler may answer before it has read the request body (415, 413, 429,
//! the catch-all 404, a GET with a body). hyper then stops reading the
//! connection and closes it after the answer, without saying so: a
//! keep-alive client writes its next request into a closed socket and loses
//! it. This layer sits in front of every route: after the handler answers,
//! whatever it left of the body is read and discarded (bounded in bytes and
//! time, never buffered), so the connection can carry the next request; when
//! that is not possible, the answer carries `Connection: close`, so the
//! client knows to open a new connection.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// How much of an unread body is drained to keep its connection open.
#[derive(Debug, Clone, Copy)]
pub struct DrainLimits {
    /// Bodies whose unread rest is longer are not read: the connection closes.
    pub max_bytes: u64,
    /// How long the rest may take to arrive; a slower client's connection closes.
    pub max_wait: Duration,
}

/// The request body as the handler sees it. The body itself stays shared
/// with [`drain_unread_body`], which reads what the handler left.
struct SharedBody(Arc<Mutex<Body>>);

impl HttpBody for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut body = self.0.lock().expect("body lock is never poisoned");
        Pin::new(&mut *body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.lock().expect("body lock is never poisoned").is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.lock().expect("body lock is never poisoned").size_hint()
    }
}

/// Middleware: see the module docs.
pub async fn drain_unread_body(State(limits): State<DrainLimits>, req: Request, next: Next) -> Response {
    // With `Expect: 100-continue` the client sends the body only when asked;
    // an answer given without reading it means the body never comes, and
    // asking for it now would only waste the client's upload.
    let expects_continue = req.headers().get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (parts, body) = req.into_parts();
    let shared = Arc::new(Mutex::new(body));
    let mut resp = next.run(Request::from_parts(parts, Body::new(SharedBody(shared.clone())))).await;

    let rest = std::mem::take(&mut *shared.lock().expect("body lock is never poisoned"));
    if rest.is_end_stream() {
        return resp;
    }
    let drainable = !expects_continue && rest.size_hint().upper().is_none_or(|n| n <= limits.max_bytes);
    if drainable && tokio::time::timeout(limits.max_wait, discard(rest, limits.max_bytes)).await == Ok(true) {
        return resp;
    }
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Read the body to its end, keeping nothing; false when it is longer than
/// `max_bytes` or fails.
async fn discard(mut body: Body, max_bytes: u64) -> bool {
    let mut seen = 0u64;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        match frame {
            Ok(frame) => {
                seen += frame.data_ref().map_or(0, |d| d.len() as u64);
                if seen > max_bytes {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::post;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A router that answers `/early` without reading the body and
    /// `/read` after reading it, behind the layer.
    async fn serve(limits: DrainLimits) -> std::net::SocketAddr {
        serve_router(routes().layer(axum::middleware::from_fn_with_state(limits, drain_unread_body))).await
    }

    fn routes() -> Router {
        Router::new()
            .route("/early", post(|| async { (StatusCode::UNSUPPORTED_MEDIA_TYPE, "early") }))
            .route("/read", post(|body: Bytes| async move { format!("read {}", body.len()) }))
            .fallback(|| async { (StatusCode::NOT_FOUND, "none") })
    }

    async fn serve_router(app: Router) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    /// One answer read off the connection: status, headers (lower-case
    /// names) and body. None when the server closed the connection first.
    async fn read_answer(conn: &mut TcpStream) -> Option<(u16, Vec<(String, String)>, String)> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk)).await.expect("an answer in time") {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> =
            lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
        let len: usize = headers.iter().find(|(k, _)| k == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
        while buf.len() < head_end + len {
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed inside a body");
            buf.extend_from_slice(&chunk[..n]);
        }
        Some((status, headers, String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned()))
    }

    fn says_close(headers: &[(String, String)]) -> bool {
        headers.iter().any(|(k, v)| k == "connection" && v.eq_ignore_ascii_case("close"))
    }

    const LIMITS: DrainLimits = DrainLimits { max_bytes: 1 << 20, max_wait: Duration::from_secs(2) };

    /// A bad request whose body arrives after its headers, so the handler
    /// answers before any of it is read: the case that lost the next request.
    async fn early_answer_with_late_body(addr: std::net::SocketAddr, path: &str) -> (TcpStream, u16, Vec<(String, String)>) {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let body = "x".repeat(5000);
        conn.write_all(format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        conn.write_all(body.as_bytes()).await.unwrap();
        let (status, headers, _) = read_answer(&mut conn).await.expect("the early answer");
        (conn, status, headers)
    }

    /// Why the layer exists: without it, hyper closes such a connection
    /// after the answer without saying so, and the next request is lost.
    #[tokio::test]
    async fn without_the_layer_the_next_request_is_lost() {
        let addr = serve_router(routes()).await;
        let (mut conn, status, headers) = early_answer_with_late_body(addr, "/early").await;
        assert_eq!(status, 415);
        assert!(!says_close(&headers), "hyper gives no notice: {headers:?}");
        let _ = conn.write_all(b"POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc").await;
        assert!(read_answer(&mut conn).await.is_none(), "hyper kept the connection: the layer may no longer be needed");
    }

    #[tokio::test]
    async fn an_early_answer_keeps_the_connection_for_the_next_request() {
        let addr = serve(LIMITS).await;
        for path in ["/early", "/no-such-route"] {
            let (mut conn, status, headers) = early_answer_with_late_body(addr, path).await;
            assert!(status == 415 || status == 404, "{path}: {status}");
            assert!(!says_close(&headers), "{path}: a drainable body keeps the connection");

            conn.write_all(b"POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc").await.unwrap();
            let (status, _, body) = read_answer(&mut conn).await.expect("the next request on the same connection is answered");
            assert_eq!((status, body.as_str()), (200, "read 3"), "{path}");
        }
    }

    /// A body too large to drain: the answer says the connection closes,
    /// so a client never writes its next request into it.
    #[tokio::test]
    async fn an_undrainable_body_gets_connection_close() {
        let addr = serve(DrainLimits { max_bytes: 1000, max_wait: Duration::from_secs(2) }).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nxyz").await.unwrap();
        let (status, headers, _) = read_answer(&mut conn).await.expect("the early answer");
        assert_eq!(status, 415);
        assert!(says_close(&headers), "{headers:?}");

        // A client that stalls mid-body: the answer also says close.
        let addr = serve(DrainLimits { max_bytes: 1 << 20, max_wait: Duration::from_millis(200) }).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nxyz").await.unwrap();
        let (_, headers, _) = read_answer(&mut conn).await.expect("the early answer");
        assert!(says_close(&headers), "{headers:?}");
    }

    /// Bodies the handler reads are untouched, and the connection is reused.
    #[tokio::test]
    async fn read_bodies_pass_through() {
        let addr = serve(LIMITS).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        for _ in 0..3 {
            conn.write_all(b"POST /read HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                .await
                .unwrap();
            let (status, headers, body) = read_answer(&mut conn).await.expect("answered");
            assert_eq!((status, body.as_str()), (200, "read 5"));
            assert!(!says_close(&headers));
        }
    }
}
