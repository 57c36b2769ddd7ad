//! Where a daemon listens: a WebSocket URL over TCP, or a Unix socket path.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

/// A byte stream a WebSocket can run over.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `ws://host:port/`
    Tcp { url: String, authority: String },
    /// `wss://host:port/`: WebSocket over TLS.
    Tls {
        url: String,
        authority: String,
        host: String,
    },
    /// `unix:/path/to/socket` (or a bare absolute path)
    Unix(PathBuf),
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        for (scheme, port) in [("ws://", 80), ("wss://", 443)] {
            let Some(rest) = s.strip_prefix(scheme) else {
                continue;
            };
            let authority = rest.split('/').next().unwrap_or_default();
            if authority.is_empty() {
                return Err(format!("{s:?} has no host:port"));
            }
            // `[::1]:7470`, `host:7470` or a bare host with the scheme's port.
            let (host, authority) = match authority.rsplit_once(':') {
                Some((host, port)) if !port.contains(']') => (host, authority.to_owned()),
                _ => (authority, format!("{authority}:{port}")),
            };
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let url = s.to_owned();
            return Ok(if port == 80 {
                Endpoint::Tcp { url, authority }
            } else {
                Endpoint::Tls {
                    url,
                    authority,
                    host,
                }
            });
        }
        let path = s
            .strip_prefix("unix://")
            .or_else(|| s.strip_prefix("unix:"))
            .unwrap_or(s);
        if path.starts_with('/') {
            Ok(Endpoint::Unix(PathBuf::from(path)))
        } else {
            Err(format!(
                "{s:?} is not an endpoint: use ws://HOST:PORT/, wss://HOST:PORT/ or unix:/path/to/socket"
            ))
        }
    }

    /// Open the byte stream; for `wss://`, trusting `ca_certs` (a PEM file) or the
    /// system's roots.
    pub(crate) async fn open(
        &self,
        ca_certs: Option<&Path>,
    ) -> std::io::Result<(String, Box<dyn Io>)> {
        match self {
            Endpoint::Tcp { url, authority } => {
                let stream = TcpStream::connect(authority.as_str()).await?;
                stream.set_nodelay(true)?;
                Ok((url.clone(), Box::new(stream)))
            }
            Endpoint::Tls {
                url,
                authority,
                host,
            } => {
                let connector = tls_connector(ca_certs)?;
                let name = ServerName::try_from(host.clone()).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
                })?;
                let stream = TcpStream::connect(authority.as_str()).await?;
                stream.set_nodelay(true)?;
                let stream = connector.connect(name, stream).await?;
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

/// A TLS client trusting the certificates in `ca_certs`, or else the system's roots.
fn tls_connector(ca_certs: Option<&Path>) -> std::io::Result<tokio_rustls::TlsConnector> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let mut roots = rustls::RootCertStore::empty();
    match ca_certs {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| invalid(format!("{}: {e}", path.display())))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(invalid(format!("{} holds no certificate", path.display())));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(invalid(
                    "no trusted root certificates on this system: name the daemon's certificate (--ca-cert)".into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { url, .. } | Endpoint::Tls { url, .. } => f.write_str(url),
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
        assert!(matches!(
            Endpoint::parse("wss://localhost:7471/"),
            Ok(Endpoint::Tls { authority, host, .. }) if authority == "localhost:7471" && host == "localhost"
        ));
        assert!(matches!(
            Endpoint::parse("wss://example.org/"),
            Ok(Endpoint::Tls { authority, .. }) if authority == "example.org:443"
        ));
        assert!(matches!(
            Endpoint::parse("ws://[::1]:7470/"),
            Ok(Endpoint::Tcp { authority, .. }) if authority == "[::1]:7470"
        ));
        assert!(Endpoint::parse("http://x").is_err());
        assert!(Endpoint::parse("ws:///").is_err());
    }
}
