//! The buses the pub/sub workload runs against: `aetherd` over WebSocket, and
//! for comparison nats-server over plain TCP and over its WebSocket listener.
//! Each side speaks its wire protocol directly, so the generator measures the
//! server, not a client library.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

pub type Ws = WebSocketStream<TcpStream>;

const SUBJECT: &str = "app.cli.bench";

#[derive(Clone)]
pub enum Bus {
    Aether { port: u16, token: String },
    NatsTcp { port: u16 },
    NatsWs { port: u16 },
}

impl Bus {
    pub fn label(&self) -> &'static str {
        match self {
            Bus::Aether { .. } => "aetherd ws",
            Bus::NatsTcp { .. } => "nats-server tcp",
            Bus::NatsWs { .. } => "nats-server ws",
        }
    }
}

/// What a read brought.
pub enum Event {
    /// Zero or more bench messages (their timestamps were pushed).
    Messages,
    /// The server dropped us as a slow consumer.
    Slow,
    Closed,
}

async fn ws_connect(port: u16) -> anyhow::Result<Ws> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(64 * 1024);
    let (ws, _) =
        client_async_with_config(format!("ws://127.0.0.1:{port}/"), stream, Some(config)).await?;
    Ok(ws)
}

pub async fn next_text(ws: &mut Ws) -> anyhow::Result<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | None => bail!("connection closed"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

/// An aetherd connection, signed in with a token. It batches: several frames per
/// WebSocket message each way, one per line, as NATS clients put several operations
/// in one write.
pub async fn open_aether(port: u16, token: &str) -> anyhow::Result<Ws> {
    let mut ws = ws_connect(port).await?;
    let hello = serde_json::json!({"t": "hello", "v": 1, "auth": {"kind": "token", "token": token}, "batch": true});
    ws.send(Message::text(hello.to_string())).await?;
    let welcome = next_text(&mut ws).await?;
    if !welcome.contains("\"welcome\"") {
        bail!("sign-in refused: {welcome}");
    }
    Ok(ws)
}

/// Read the `"ts":N` the publisher wrote, without parsing the whole message.
pub fn timestamp(text: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(text, b"\"ts\":")? + 5;
    let digits = &text[at..];
    let end = digits
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// The bench payload: the same JSON object on every bus.
pub fn payload(ts: u64, pad: &str) -> String {
    format!(r#"{{"ts":{ts},"pad":"{pad}"}}"#)
}

/// NATS protocol bytes as they arrive, split into operations.
#[derive(Default)]
pub struct NatsParser {
    buf: Vec<u8>,
}

#[derive(Default)]
struct Parsed {
    pings: usize,
    pongs: usize,
    error: Option<String>,
}

impl NatsParser {
    fn feed(&mut self, bytes: &[u8], stamps: &mut Vec<u64>) -> Parsed {
        self.buf.extend_from_slice(bytes);
        let mut parsed = Parsed::default();
        let mut at = 0;
        while let Some(eol) = memchr::memmem::find(&self.buf[at..], b"\r\n") {
            let line = &self.buf[at..at + eol];
            if line.starts_with(b"MSG ") {
                let len: usize = std::str::from_utf8(line)
                    .ok()
                    .and_then(|l| l.rsplit(' ').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let body = at + eol + 2;
                if self.buf.len() < body + len + 2 {
                    break;
                }
                if let Some(ts) = timestamp(&self.buf[body..body + len]) {
                    stamps.push(ts);
                }
                at = body + len + 2;
                continue;
            }
            if line == b"PING" {
                parsed.pings += 1;
            } else if line == b"PONG" {
                parsed.pongs += 1;
            } else if line.starts_with(b"-ERR") {
                parsed.error = Some(String::from_utf8_lossy(line).into_owned());
            }
            at += eol + 2;
        }
        self.buf.drain(..at);
        parsed
    }
}

/// A NATS connection over TCP or WebSocket.
pub enum NatsLink {
    Tcp(BufWriter<TcpStream>),
    Ws(Box<Ws>),
}

impl NatsLink {
    async fn connect(bus: &Bus) -> anyhow::Result<NatsLink> {
        Ok(match bus {
            Bus::NatsTcp { port } => {
                let stream = TcpStream::connect(("127.0.0.1", *port)).await?;
                stream.set_nodelay(true)?;
                NatsLink::Tcp(BufWriter::with_capacity(256 << 10, stream))
            }
            Bus::NatsWs { port } => NatsLink::Ws(Box::new(ws_connect(*port).await?)),
            Bus::Aether { .. } => bail!("not a NATS bus"),
        })
    }

    /// Queue protocol bytes (one WebSocket message per call).
    async fn feed(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        match self {
            NatsLink::Tcp(stream) => stream.write_all(&bytes).await?,
            NatsLink::Ws(ws) => ws.feed(Message::binary(bytes)).await?,
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            NatsLink::Tcp(stream) => stream.flush().await?,
            NatsLink::Ws(ws) => ws.flush().await?,
        }
        Ok(())
    }

    /// The next bytes from the server; empty when it closed.
    async fn read(&mut self, scratch: &mut [u8]) -> anyhow::Result<Vec<u8>> {
        match self {
            NatsLink::Tcp(stream) => {
                let n = stream.get_mut().read(scratch).await?;
                Ok(scratch[..n].to_vec())
            }
            NatsLink::Ws(ws) => loop {
                match ws.next().await {
                    Some(Ok(Message::Binary(b))) => return Ok(b.to_vec()),
                    Some(Ok(Message::Text(t))) => return Ok(t.as_bytes().to_vec()),
                    Some(Ok(Message::Close(_))) | None => return Ok(vec![]),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                }
            },
        }
    }

    /// Say hello (and subscribe), then wait for the PONG that proves the server has it all.
    async fn handshake(&mut self, parser: &mut NatsParser, subscribe: bool) -> anyhow::Result<()> {
        let mut hello = br#"CONNECT {"verbose":false,"pedantic":false,"protocol":1}"#.to_vec();
        hello.extend_from_slice(b"\r\n");
        if subscribe {
            hello.extend_from_slice(format!("SUB {SUBJECT} 1\r\n").as_bytes());
        }
        hello.extend_from_slice(b"PING\r\n");
        self.feed(hello).await?;
        self.flush().await?;
        let mut scratch = vec![0; 64 << 10];
        loop {
            let bytes = self.read(&mut scratch).await?;
            if bytes.is_empty() {
                bail!("nats-server closed the connection during the handshake");
            }
            let parsed = parser.feed(&bytes, &mut vec![]);
            if let Some(error) = parsed.error {
                bail!("nats-server refused: {error}");
            }
            if parsed.pongs > 0 {
                return Ok(());
            }
        }
    }
}

/// A subscriber on any bus.
pub enum Receiver {
    Aether(Ws),
    Nats {
        link: NatsLink,
        parser: NatsParser,
        scratch: Vec<u8>,
    },
}

impl Receiver {
    pub async fn connect(bus: &Bus) -> anyhow::Result<Receiver> {
        match bus {
            Bus::Aether { port, token } => {
                let mut ws = open_aether(*port, token).await?;
                let sub = serde_json::json!({"t": "sub", "id": 1, "app": "cli", "topic": SUBJECT});
                ws.send(Message::text(sub.to_string())).await?;
                let ok = next_text(&mut ws).await?;
                if !ok.contains("\"ok\"") {
                    bail!("subscribe refused: {ok}");
                }
                Ok(Receiver::Aether(ws))
            }
            _ => {
                let mut link = NatsLink::connect(bus).await?;
                let mut parser = NatsParser::default();
                link.handshake(&mut parser, true).await?;
                Ok(Receiver::Nats {
                    link,
                    parser,
                    scratch: vec![0; 256 << 10],
                })
            }
        }
    }

    /// Read what arrives next, pushing the timestamps of bench messages.
    pub async fn next(&mut self, stamps: &mut Vec<u64>) -> anyhow::Result<Event> {
        match self {
            Receiver::Aether(ws) => match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    for frame in text.as_bytes().split(|b| *b == b'\n') {
                        if let Some(ts) = timestamp(frame) {
                            stamps.push(ts);
                        } else if frame.windows(13).any(|w| w == b"slow_consumer") {
                            return Ok(Event::Slow);
                        }
                    }
                    Ok(Event::Messages)
                }
                Some(Ok(_)) => Ok(Event::Messages),
                _ => Ok(Event::Closed),
            },
            Receiver::Nats {
                link,
                parser,
                scratch,
            } => {
                let bytes = link.read(scratch).await?;
                if bytes.is_empty() {
                    return Ok(Event::Closed);
                }
                let parsed = parser.feed(&bytes, stamps);
                if let Some(error) = parsed.error {
                    return Ok(if error.to_lowercase().contains("slow consumer") {
                        Event::Slow
                    } else {
                        Event::Closed
                    });
                }
                for _ in 0..parsed.pings {
                    link.feed(b"PONG\r\n".to_vec()).await?;
                    link.flush().await?;
                }
                Ok(Event::Messages)
            }
        }
    }
}

/// The publisher on any bus.
pub enum Sender {
    Aether { ws: Box<Ws>, batch: String },
    Nats { link: NatsLink, batch: Vec<u8> },
}

impl Sender {
    pub async fn connect(bus: &Bus) -> anyhow::Result<Sender> {
        match bus {
            Bus::Aether { port, token } => Ok(Sender::Aether {
                ws: Box::new(open_aether(*port, token).await?),
                batch: String::with_capacity(256 << 10),
            }),
            _ => {
                let mut link = NatsLink::connect(bus).await?;
                link.handshake(&mut NatsParser::default(), false).await?;
                Ok(Sender::Nats {
                    link,
                    batch: Vec::with_capacity(256 << 10),
                })
            }
        }
    }

    /// Queue one message; both buses get the messages queued until `flush` in one
    /// WebSocket message (aetherd: one frame per line; NATS: its operations).
    pub async fn feed(&mut self, payload: &str) -> anyhow::Result<()> {
        match self {
            Sender::Aether { batch, .. } => {
                if !batch.is_empty() {
                    batch.push('\n');
                }
                batch.push_str(&format!(
                    r#"{{"t":"pub","app":"cli","topic":"{SUBJECT}","data":{payload}}}"#
                ));
            }
            Sender::Nats { batch, .. } => {
                batch.extend_from_slice(
                    format!("PUB {SUBJECT} {}\r\n{payload}\r\n", payload.len()).as_bytes(),
                );
            }
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Sender::Aether { ws, batch } => {
                if !batch.is_empty() {
                    ws.feed(Message::text(std::mem::take(batch))).await?;
                }
                ws.flush().await?
            }
            Sender::Nats { link, batch } => {
                if !batch.is_empty() {
                    link.feed(std::mem::take(batch)).await?;
                }
                link.flush().await?;
            }
        }
        Ok(())
    }

    pub async fn close(self) {
        if let Sender::Aether { mut ws, .. } = self {
            let _ = (*ws).close(None).await;
        }
    }
}

/// nats-server in its own process, with a TCP and a WebSocket listener on loopback.
pub struct NatsServer {
    child: Child,
    _dir: tempfile::TempDir,
    pub tcp_port: u16,
    pub ws_port: u16,
}

impl NatsServer {
    /// Start `nats-server` from PATH; None when it is not installed.
    pub fn start() -> anyhow::Result<Option<NatsServer>> {
        let free = || -> anyhow::Result<u16> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        let (tcp_port, ws_port) = (free()?, free()?);
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("nats.conf");
        std::fs::write(
            &config,
            format!(
                "host: 127.0.0.1\nport: {tcp_port}\nwebsocket {{\n  host: 127.0.0.1\n  port: {ws_port}\n  no_tls: true\n}}\n"
            ),
        )?;
        let child = match Command::new("nats-server")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context("cannot start nats-server"),
        };
        let server = NatsServer {
            child,
            _dir: dir,
            tcp_port,
            ws_port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in [tcp_port, ws_port] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if Instant::now() > deadline {
                    bail!("nats-server did not listen on {port} within 10 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(Some(server))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_messages_split_anywhere_are_parsed() {
        let wire = b"INFO {}\r\nMSG app.cli.bench 1 15\r\n{\"ts\":42,\"p\":1}\r\nPING\r\nMSG app.cli.bench 1 8\r\n{\"ts\":7}\r\n";
        for split in 0..wire.len() {
            let (mut parser, mut stamps) = (NatsParser::default(), vec![]);
            let first = parser.feed(&wire[..split], &mut stamps);
            let second = parser.feed(&wire[split..], &mut stamps);
            assert_eq!(stamps, [42, 7], "split at {split}");
            assert_eq!(first.pings + second.pings, 1);
        }
    }
}
