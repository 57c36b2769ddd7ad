//! Where a daemon listens: a WebSocket URL over TCP, or a Unix socket path.

use std::fmt;
use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

/// A byte stream a WebSocket can run over.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `ws://host:port/`
    Tcp { url: String, authority: String },
    /// `unix:/path/to/socket` (or a bare absolute path)
    Unix(PathBuf),
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        if let Some(rest) = s.strip_prefix("ws://") {
            let authority = rest.split('/').next().unwrap_or_default();
            if authority.is_empty() {
                return Err(format!("{s:?} has no host:port"));
            }
            let authority = if authority.contains(':') {
                authority.to_owned()
            } else {
                format!("{authority}:80")
            };
            return Ok(Endpoint::Tcp {
                url: s.to_owned(),
                authority,
            });
        }
        if s.starts_with("wss://") {
            return Err(
                "wss:// is not supported yet: tunnel over SSH, or use the Unix socket".into(),
            );
        }
        let path = s
            .strip_prefix("unix://")
            .or_else(|| s.strip_prefix("unix:"))
            .unwrap_or(s);
        if path.starts_with('/') {
            Ok(Endpoint::Unix(PathBuf::from(path)))
        } else {
            Err(format!(
                "{s:?} is not an endpoint: use ws://HOST:PORT/ or unix:/path/to/socket"
            ))
        }
    }

    pub(crate) async fn open(&self) -> std::io::Result<(String, Box<dyn Io>)> {
        match self {
            Endpoint::Tcp { url, authority } => {
                let stream = TcpStream::connect(authority.as_str()).await?;
                stream.set_nodelay(true)?;
                Ok((url.clone(), Box::new(stream)))
            }
            Endpoint::Unix(path) => {
                let stream = UnixStream::connect(path).await?;
                Ok(("ws://localhost/".to_owned(), Box::new(stream)))
            }
        }
    }

    pub fn is_unix(&self) -> bool {
        matches!(self, Endpoint::Unix(_))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { url, .. } => f.write_str(url),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert!(matches!(
            Endpoint::parse("ws://127.0.0.1:7470/"),
            Ok(Endpoint::Tcp { authority, .. }) if authority == "127.0.0.1:7470"
        ));
        assert_eq!(
            Endpoint::parse("unix:/run/a.sock"),
            Ok(Endpoint::Unix("/run/a.sock".into()))
        );
        assert_eq!(
            Endpoint::parse("/run/a.sock"),
            Ok(Endpoint::Unix("/run/a.sock".into()))
        );
        assert!(Endpoint::parse("http://x").is_err());
        assert!(Endpoint::parse("ws:///").is_err());
    }
}
