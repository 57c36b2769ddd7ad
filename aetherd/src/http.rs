//! The HTTP side of the gateway's listeners: the WebSocket upgrade, `/metrics`
//! and `/healthz`. The request head is read and parsed here (httparse) so one
//! port serves both; after a 101 the socket becomes a WebSocket.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::metrics::MetricsPage;

/// Larger request heads are refused.
const MAX_HEAD: usize = 16 * 1024;

fn find_end_of_head(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: &str,
    content_type: &str,
    body: &str,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// Read the request head; None when the peer left or sent too much (then answered).
async fn read_head<S>(stream: &mut S) -> io::Result<Option<(Vec<u8>, usize)>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    loop {
        if let Some(end) = find_end_of_head(&buf) {
            return Ok(Some((buf, end)));
        }
        if buf.len() > MAX_HEAD {
            respond(
                stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "request head too large\n",
            )
            .await?;
            return Ok(None);
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(None);
        }
    }
}

/// Read one request: upgrade it to a WebSocket, or answer it and return None.
pub async fn accept<S>(
    mut stream: S,
    config: WebSocketConfig,
    metrics: &MetricsPage,
) -> io::Result<Option<WebSocketStream<S>>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some((buf, head_len)) = read_head(&mut stream).await? else {
        return Ok(None);
    };
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(
        request.parse(&buf[..head_len]),
        Ok(httparse::Status::Complete(_))
    ) {
        respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            "malformed HTTP request\n",
        )
        .await?;
        return Ok(None);
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    };
    let method = request.method.unwrap_or_default();
    if header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        let key = header("sec-websocket-key");
        let version = header("sec-websocket-version");
        // A client may already have sent its first frames behind the request head.
        let early = buf[head_len..].to_vec();
        return upgrade(stream, method, key, version, early, config).await;
    }
    route(
        &mut stream,
        method,
        request.path.unwrap_or_default(),
        metrics,
    )
    .await?;
    Ok(None)
}

/// Answer the WebSocket handshake, or say why not.
async fn upgrade<S>(
    mut stream: S,
    method: &str,
    key: Option<&str>,
    version: Option<&str>,
    early: Vec<u8>,
    config: WebSocketConfig,
) -> io::Result<Option<WebSocketStream<S>>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(key) = key else {
        let body = "missing Sec-WebSocket-Key\n";
        respond(&mut stream, "400 Bad Request", "text/plain", body).await?;
        return Ok(None);
    };
    if method != "GET" || version != Some("13") {
        let body = "WebSocket upgrades need GET and Sec-WebSocket-Version: 13\n";
        respond(&mut stream, "426 Upgrade Required", "text/plain", body).await?;
        return Ok(None);
    }
    let accept_key = derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept_key}\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).await?;
    let ws = WebSocketStream::from_partially_read(stream, early, Role::Server, Some(config)).await;
    Ok(Some(ws))
}

/// The plain HTTP routes.
async fn route<S>(stream: &mut S, method: &str, path: &str, metrics: &MetricsPage) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    match (method, path) {
        ("GET", "/metrics") => {
            let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
            respond(stream, "200 OK", kind, &metrics.render()).await
        }
        ("GET", "/healthz") => respond(stream, "200 OK", "text/plain", "ok\n").await,
        ("GET", _) => {
            let body = "not found: try /metrics or a WebSocket upgrade\n";
            respond(stream, "404 Not Found", "text/plain", body).await
        }
        _ => {
            let body = "only GET is served\n";
            respond(stream, "405 Method Not Allowed", "text/plain", body).await
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn head_end() {
        assert_eq!(
            super::find_end_of_head(b"GET / HTTP/1.1\r\n\r\nxx"),
            Some(18)
        );
        assert_eq!(super::find_end_of_head(b"GET / HTTP/1.1\r\n"), None);
    }
}
