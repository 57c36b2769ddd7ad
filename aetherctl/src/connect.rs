//! Finding the daemon, signing in, saved credentials, and starting a local
//! daemon in the background when none answers.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aether_proto::client::{AetherClient, ClientError, ClientOptions, Endpoint};
use aether_proto::frame::Auth;
use aether_proto::paths;

use crate::Failure;

/// Saved login tokens, by endpoint.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Credentials {
    tokens: BTreeMap<String, String>,
}

fn credentials_path() -> PathBuf {
    paths::data_dir().join("cli-credentials.json")
}

fn load_credentials() -> Credentials {
    std::fs::read_to_string(credentials_path())
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

fn store_credentials(credentials: &Credentials) -> Result<(), Failure> {
    let path = credentials_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Failure::io(&path, e))?;
    }
    let text = serde_json::to_string_pretty(credentials).unwrap_or_default();
    // Owner-only from the first byte: the file holds bearer tokens.
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Failure::io(&tmp, e))?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| Failure::io(&tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Failure::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Failure::io(&path, e))
}

pub fn save_token(endpoint: &Endpoint, token: &str) -> Result<(), Failure> {
    let mut credentials = load_credentials();
    credentials
        .tokens
        .insert(endpoint.to_string(), token.to_owned());
    store_credentials(&credentials)
}

/// Forget the saved token; true if there was one.
pub fn forget_token(endpoint: &Endpoint) -> Result<bool, Failure> {
    let mut credentials = load_credentials();
    let had = credentials.tokens.remove(&endpoint.to_string()).is_some();
    if had {
        store_credentials(&credentials)?;
    }
    Ok(had)
}

/// The endpoint to use: `--url`, else the local daemon's socket.
pub fn endpoint(url: Option<&str>) -> Result<(Endpoint, bool), Failure> {
    match url {
        Some(url) => Endpoint::parse(url)
            .map(|e| (e, false))
            .map_err(Failure::Usage),
        None => Ok((Endpoint::Unix(paths::default_socket()), true)),
    }
}

/// The credentials to sign in with: a token given, a saved token, else local sign-in.
pub async fn auth_for(endpoint: &Endpoint, token: Option<String>) -> Result<Auth, Failure> {
    if let Some(token) = token {
        return Ok(Auth::Token { token });
    }
    if let Some(token) = load_credentials().tokens.get(&endpoint.to_string()) {
        return Ok(Auth::Token {
            token: token.clone(),
        });
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
    match AetherClient::connect(endpoint, auth.clone(), options.clone()).await {
        Ok(client) => Ok(client),
        Err(ClientError::Connect { reason, .. }) if autostart && nobody_listens(endpoint) => {
            start_daemon(endpoint, &reason)?;
            AetherClient::connect(endpoint, auth, options)
                .await
                .map_err(Failure::from_client)
        }
        Err(e) => Err(Failure::from_client(e)),
    }
}

pub fn nobody_listens(endpoint: &Endpoint) -> bool {
    match endpoint {
        Endpoint::Unix(path) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => false,
            Err(e) => matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused),
        },
        Endpoint::Tcp { .. } | Endpoint::Tls { .. } => false,
    }
}

/// The `aetherd` next to this binary, else the one on PATH.
fn daemon_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("aetherd")))
        .filter(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("aetherd"))
}

fn start_daemon(endpoint: &Endpoint, why: &str) -> Result<(), Failure> {
    let Endpoint::Unix(socket) = endpoint else {
        return Err(Failure::Connect(why.to_owned()));
    };
    let log_dir = socket.parent().unwrap_or(Path::new("/tmp"));
    std::fs::create_dir_all(log_dir).map_err(|e| Failure::io(log_dir, e))?;
    let log_path = log_dir.join("aetherd.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Failure::io(&log_path, e))?;
    let binary = daemon_binary();
    eprintln!(
        "aetherctl: no daemon answered; starting {} (log: {})",
        binary.display(),
        log_path.display()
    );
    let mut child = Command::new(&binary)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        // Its own process group: a Ctrl-C meant for aetherctl must not stop the daemon.
        .process_group(0)
        .spawn()
        .map_err(|e| Failure::Connect(format!("cannot start {}: {e}", binary.display())))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Failure::Connect(format!(
                "the daemon exited at start ({status}); see {}",
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(Failure::Connect(format!(
        "the daemon did not open {} within 15 s; see {}",
        socket.display(),
        log_path.display()
    )))
}

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
