//! The gateway's plain-HTTP side: /metrics, /healthz, and refusals of bad requests.

use aether_tests::TestDaemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Send raw bytes, read the whole response (the daemon closes after answering).
async fn exchange(d: &TestDaemon, request: &[u8]) -> String {
    let addr = d.daemon().tcp_addr().unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut response),
    );
    read.await.expect("the daemon answers and closes").unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_text() {
    let d = TestDaemon::start().await;
    // Traffic first, so the counters and a service histogram have something in them.
    let owner = d.owner().await;
    let _: serde_json::Value = owner
        .app("cli")
        .request_json("sys.ping", &serde_json::json!({}))
        .await
        .unwrap();
    let response = exchange(&d, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.contains("aether_bus_requests_total"), "{response}");
    assert!(response.contains("aether_connections 1"), "{response}");
    assert!(
        response
            .contains(r#"aether_service_request_seconds_count{topic="sys.ping",outcome="ok"} 1"#),
        "{response}"
    );
    assert!(response.trim_end().ends_with("# EOF"), "{response}");
}

#[tokio::test]
async fn health_unknown_paths_and_bad_requests() {
    let d = TestDaemon::start().await;
    let ok = exchange(&d, b"GET /healthz HTTP/1.1\r\n\r\n").await;
    assert!(
        ok.starts_with("HTTP/1.1 200 OK") && ok.ends_with("ok\n"),
        "{ok}"
    );
    let missing = exchange(&d, b"GET /nope HTTP/1.1\r\n\r\n").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let post = exchange(&d, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    let garbage = exchange(&d, b"\x00\x01 not http at all\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    let mut huge = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 20_000));
    let too_big = exchange(&d, &huge).await;
    assert!(too_big.starts_with("HTTP/1.1 431"), "{too_big}");
    let old_ws = exchange(
        &d,
        b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    )
    .await;
    assert!(old_ws.starts_with("HTTP/1.1 426"), "{old_ws}");
    // The daemon is unharmed: a client still signs in.
    let owner = d.owner().await;
    let _: serde_json::Value = owner
        .app("cli")
        .request_json("sys.ping", &serde_json::json!({}))
        .await
        .unwrap();
}
