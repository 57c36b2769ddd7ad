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

/// Read one request: upgrade it to a WebSocket, or answer it and return None.
pub async fn accept<S>(
    mut stream: S,
    config: WebSocketConfig,
    metrics: &MetricsPage,
) -> io::Result<Option<WebSocketStream<S>>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    let head_len = loop {
        if let Some(end) = find_end_of_head(&buf) {
            break end;
        }
        if buf.len() > MAX_HEAD {
            respond(
                &mut stream,
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
    let wants_websocket = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let method = request.method.unwrap_or_default();
    let path = request.path.unwrap_or_default();
    if wants_websocket {
        let Some(key) = header("sec-websocket-key") else {
            respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                "missing Sec-WebSocket-Key\n",
            )
            .await?;
            return Ok(None);
        };
        if method != "GET" || header("sec-websocket-version") != Some("13") {
            let body = "WebSocket upgrades need GET and Sec-WebSocket-Version: 13\n";
            respond(&mut stream, "426 Upgrade Required", "text/plain", body).await?;
            return Ok(None);
        }
        let accept_key = derive_accept_key(key.as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept_key}\r\n\r\n"
        );
        stream.write_all(response.as_bytes()).await?;
        // A client may already have sent its first frames behind the request head.
        let early = buf[head_len..].to_vec();
        let ws =
            WebSocketStream::from_partially_read(stream, early, Role::Server, Some(config)).await;
        return Ok(Some(ws));
    }
    match (method, path) {
        ("GET", "/metrics") => {
            let text = metrics.render();
            respond(
                &mut stream,
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                &text,
            )
            .await?;
        }
        ("GET", "/healthz") => respond(&mut stream, "200 OK", "text/plain", "ok\n").await?,
        ("GET", _) => {
            respond(
                &mut stream,
                "404 Not Found",
                "text/plain",
                "not found: try /metrics or a WebSocket upgrade\n",
            )
            .await?
        }
        _ => {
            respond(
                &mut stream,
                "405 Method Not Allowed",
                "text/plain",
                "only GET is served\n",
            )
            .await?
        }
    }
    Ok(None)
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
