//! A WebSocket spoken byte by byte over TCP, for what a well-behaved client library will
//! not send: reserved bits, unmasked frames, reserved opcodes, broken control frames, bad
//! UTF-8, and a frame larger than the daemon takes, sent while reading what comes back.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TEXT: u8 = 0x1;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const CONTINUATION: u8 = 0x0;

pub struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A frame as the daemon sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    Text(Value),
    /// A Close frame's code and reason.
    Close(u16, String),
    Other(u8),
    /// The connection ended (EOF) without a Close.
    Ended,
    /// The connection was reset.
    Reset,
}

impl Wire {
    /// Connect and upgrade to a WebSocket.
    pub async fn connect(addr: SocketAddr) -> Wire {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the upgrade was not answered");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                assert!(head.starts_with("HTTP/1.1 101"), "{head}");
                buf.drain(..end + 4);
                return Wire { stream, buf };
            }
        }
    }

    /// Send one frame as given: `first` is the first byte (FIN, RSV bits, opcode).
    pub async fn send_raw(&mut self, first: u8, masked: bool, payload: &[u8]) {
        let mut frame = vec![first];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => frame.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                frame.push(mask_bit | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(mask_bit | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            let key = [0x12, 0x34, 0x56, 0x78];
            frame.extend_from_slice(&key);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            frame.extend_from_slice(payload);
        }
        let _ = self.stream.write_all(&frame).await;
    }

    /// A final, masked frame of `opcode`.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.send_raw(0x80 | opcode, true, payload).await;
    }

    pub async fn send_json(&mut self, value: &Value) {
        self.send(TEXT, value.to_string().as_bytes()).await;
    }

    /// Sign in with a token; the answer must be `welcome`.
    pub async fn hello(&mut self, token: &str) {
        self.send_json(&serde_json::json!({ "t": "hello", "v": 1,
            "auth": { "kind": "token", "token": token } }))
            .await;
        match self.next().await {
            Got::Text(welcome) if welcome["t"] == "welcome" => {}
            other => panic!("no welcome: {other:?}"),
        }
    }

    /// The next frame from the daemon (within 5 s).
    pub async fn next(&mut self) -> Got {
        tokio::time::timeout(Duration::from_secs(5), self.read_frame())
            .await
            .expect("a frame (or the end) within 5 s")
    }

    async fn fill(&mut self, want: usize) -> Result<(), Got> {
        let mut chunk = [0u8; 16 * 1024];
        while self.buf.len() < want {
            match self.stream.read(&mut chunk).await {
                Ok(0) => return Err(Got::Ended),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Err(Got::Reset),
                Err(_) => return Err(Got::Ended),
            }
        }
        Ok(())
    }

    async fn read_frame(&mut self) -> Got {
        if let Err(end) = self.fill(2).await {
            return end;
        }
        let opcode = self.buf[0] & 0x0f;
        let (len, head) = match self.buf[1] & 0x7f {
            126 => {
                if let Err(end) = self.fill(4).await {
                    return end;
                }
                (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
            }
            127 => {
                if let Err(end) = self.fill(10).await {
                    return end;
                }
                let mut n = [0u8; 8];
                n.copy_from_slice(&self.buf[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            n => (n as usize, 2),
        };
        if let Err(end) = self.fill(head + len).await {
            return end;
        }
        let payload: Vec<u8> = self.buf.drain(..head + len).skip(head).collect();
        match opcode {
            TEXT => Got::Text(serde_json::from_slice(&payload).expect("a JSON frame")),
            CLOSE if payload.len() >= 2 => Got::Close(
                u16::from_be_bytes([payload[0], payload[1]]),
                String::from_utf8_lossy(&payload[2..]).into_owned(),
            ),
            CLOSE => Got::Close(1005, String::new()),
            other => Got::Other(other),
        }
    }

    /// Frames until a Close (returned with what came before it), or the end.
    pub async fn until_close(&mut self) -> (Vec<Value>, Got) {
        let mut texts = Vec::new();
        loop {
            match self.next().await {
                Got::Text(value) => texts.push(value),
                Got::Other(_) => {}
                end => return (texts, end),
            }
        }
    }

    /// After a Close: the daemon ends the connection (EOF), not with a reset.
    pub async fn expect_eof(&mut self) {
        let mut chunk = [0u8; 1024];
        let end = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match self.stream.read(&mut chunk).await {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
        })
        .await
        .expect("the daemon ends the connection");
        end.expect("a clean end, not a reset");
    }

    /// Write `bytes` while reading what comes back, as a client sending a big frame does:
    /// what was read, and whether the connection was reset.
    pub async fn send_while_reading(&mut self, bytes: &[u8]) -> (Vec<u8>, bool) {
        let (mut read_half, mut write_half) = self.stream.split();
        let mut got = std::mem::take(&mut self.buf);
        let mut reset = false;
        let reading = async {
            let mut chunk = [0u8; 16 * 1024];
            loop {
                match tokio::time::timeout(Duration::from_secs(5), read_half.read(&mut chunk)).await
                {
                    Ok(Ok(0)) | Err(_) => break,
                    Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
                    Ok(Err(_)) => {
                        reset = true;
                        break;
                    }
                }
            }
        };
        let writing = async {
            for piece in bytes.chunks(64 * 1024) {
                if write_half.write_all(piece).await.is_err() {
                    break;
                }
            }
        };
        tokio::join!(reading, writing);
        (got, reset)
    }
}
