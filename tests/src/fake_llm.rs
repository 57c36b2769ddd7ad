//! A scripted stand-in for an AI provider's HTTP API on 127.0.0.1: each request gets the
//! next reply in the script (a JSON body with any status and headers, or server-sent
//! events written one by one with pauses, optionally cut off), and every request is
//! kept for the test to inspect. It speaks just enough HTTP/1.1 for reqwest: one request
//! per connection, the body ended by closing.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Json {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// `data:` events, each after its pause; `cut` closes mid-event, as a dropped
    /// connection would.
    Events {
        events: Vec<(Duration, String)>,
        cut: bool,
    },
    /// Accept and say nothing (a provider that hangs).
    Silence,
    /// This reply, after a pause (a slow model).
    Later(Duration, Box<Reply>),
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply::Json {
            status,
            headers: vec![],
            body: body.to_string(),
        }
    }

    pub fn events(events: impl IntoIterator<Item = Value>) -> Reply {
        Reply::Events {
            events: events
                .into_iter()
                .map(|e| (Duration::ZERO, e.to_string()))
                .collect(),
            cut: false,
        }
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    script: VecDeque<Reply>,
    seen: Vec<Seen>,
    /// When each streamed event was written, in order (for latency measurements).
    sent: Vec<std::time::Instant>,
}

pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeLlm {
    pub async fn start() -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, serving.clone()));
            }
        });
        FakeLlm { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT` plus `path` (e.g. `/v1`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn then(&self, reply: Reply) -> &Self {
        self.shared.lock().unwrap().script.push_back(reply);
        self
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().unwrap().seen.clone()
    }

    /// When each streamed event was written, across all replies, in order.
    pub fn sent_at(&self) -> Vec<std::time::Instant> {
        self.shared.lock().unwrap().sent.clone()
    }
}

async fn serve(mut stream: TcpStream, shared: Arc<Mutex<Shared>>) {
    let Some(seen) = read_request(&mut stream).await else {
        return;
    };
    let reply = {
        let mut shared = shared.lock().unwrap();
        shared.seen.push(seen);
        shared.script.pop_front()
    };
    let reply = reply.unwrap_or_else(|| {
        Reply::json(
            500,
            serde_json::json!({ "error": { "message": "the fake has no reply scripted" } }),
        )
    });
    let mut reply = reply;
    while let Reply::Later(pause, inner) = reply {
        tokio::time::sleep(pause).await;
        reply = *inner;
    }
    match reply {
        Reply::Json {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        }
        Reply::Events { events, cut } => {
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for (pause, data) in events {
                tokio::time::sleep(pause).await;
                let event = format!("data: {data}\n\n");
                if stream.write_all(event.as_bytes()).await.is_err() {
                    return;
                }
                let _ = stream.flush().await;
                shared.lock().unwrap().sent.push(std::time::Instant::now());
            }
            if cut {
                let _ = stream.write_all(b"data: {\"choi").await;
            }
        }
        Reply::Silence => {
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        Reply::Later(..) => {}
    }
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (method, path, headers, body_start) = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut slots);
        if let httparse::Status::Complete(len) = request.parse(&buf).ok()? {
            let headers: Vec<(String, String)> = request
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            break (
                request.method?.to_owned(),
                request.path?.to_owned(),
                headers,
                len,
            );
        }
    };
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < body_start + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&buf[body_start..]).unwrap_or(Value::Null);
    Some(Seen {
        method,
        path,
        headers,
        body,
    })
}
