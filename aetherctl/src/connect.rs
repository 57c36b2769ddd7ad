//! Finding the daemon and signing in; the saved tokens and starting a local daemon
//! are `aether_local`'s, shared with the desktop.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aether_local as local;
use aether_proto::client::{AetherClient, ClientOptions, Endpoint};
use aether_proto::frame::Auth;

use crate::Failure;

pub fn save_token(endpoint: &Endpoint, token: &str) -> Result<(), Failure> {
    local::save_token(endpoint, token).map_err(|e| Failure::Usage(e.to_string()))
}

/// Forget the saved token; true if there was one.
pub fn forget_token(endpoint: &Endpoint) -> Result<bool, Failure> {
    local::forget_token(endpoint).map_err(|e| Failure::Usage(e.to_string()))
}

/// The endpoint to use: `--url`, else the local daemon's socket.
pub fn endpoint(url: Option<&str>) -> Result<(Endpoint, bool), Failure> {
    match url {
        Some(url) => Endpoint::parse(url)
            .map(|e| (e, false))
            .map_err(Failure::Usage),
        None => Ok((local::default_endpoint(), true)),
    }
}

/// The credentials to sign in with: a token given, a saved token, else local sign-in.
pub async fn auth_for(endpoint: &Endpoint, token: Option<String>) -> Result<Auth, Failure> {
    if let Some(token) = token {
        return Ok(Auth::Token { token });
    }
    if let Some(token) = local::saved_token(endpoint) {
        return Ok(Auth::Token { token });
    }
    if endpoint.is_unix() {
        return Ok(Auth::Local);
    }
    // Say what is really wrong: nothing listening beats "not signed in".
    if let Endpoint::Tcp { authority, .. } = endpoint
        && let Err(e) = tokio::net::TcpStream::connect(authority.as_str()).await
    {
        return Err(Failure::Connect(format!("{endpoint}: {e}")));
    }
    Err(Failure::Connect(format!(
        "not signed in to {endpoint}: run `aetherctl --url {endpoint} login`, or pass --token"
    )))
}

pub fn options(timeout: Duration, ca_certs: Option<PathBuf>) -> ClientOptions {
    ClientOptions {
        client_name: format!("aetherctl/{}", env!("CARGO_PKG_VERSION")),
        request_timeout: timeout,
        reconnect: false,
        ca_certs,
        ..ClientOptions::default()
    }
}

/// Connect; for the default local socket, start a daemon first if none answers.
pub async fn connect(
    endpoint: &Endpoint,
    auth: Auth,
    options: ClientOptions,
    autostart: bool,
) -> Result<AetherClient, Failure> {
    local::connect(endpoint, auth, options, autostart, "aetherctl")
        .await
        .map_err(Failure::from_client)
}

pub use local::nobody_listens;

/// Wait until the daemon behind `socket` has gone (it removes its socket on exit).
pub fn wait_gone(socket: &Path, timeout: Duration) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    while socket.exists() && std::os::unix::net::UnixStream::connect(socket).is_ok() {
        if Instant::now() > deadline {
            return Err(Failure::Connect(format!(
                "the daemon still answers on {} after {timeout:?}",
                socket.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
