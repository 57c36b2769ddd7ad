//! The local daemon as every client finds it: its socket, the tokens saved per
//! endpoint, and starting it in the background when nothing answers. Shared by
//! `aetherctl` and the desktop, so both sign in the same way. Process management lives
//! here, not in `aether-proto`, whose client only speaks the protocol.

use std::collections::BTreeMap;
use std::io::{self, ErrorKind};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aether_proto::client::{AetherClient, ClientError, ClientOptions, Endpoint};
use aether_proto::frame::Auth;
use aether_proto::paths;

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

fn store_credentials(credentials: &Credentials) -> io::Result<()> {
    let path = credentials_path();
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(named)?;
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
        .map_err(named)?;
    io::Write::write_all(&mut file, text.as_bytes()).map_err(named)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(named)?;
    std::fs::rename(&tmp, &path).map_err(named)
}

/// The token saved for this endpoint by a `login`.
pub fn saved_token(endpoint: &Endpoint) -> Option<String> {
    load_credentials().tokens.remove(&endpoint.to_string())
}

pub fn save_token(endpoint: &Endpoint, token: &str) -> io::Result<()> {
    let mut credentials = load_credentials();
    credentials
        .tokens
        .insert(endpoint.to_string(), token.to_owned());
    store_credentials(&credentials)
}

/// Forget the saved token; true if there was one.
pub fn forget_token(endpoint: &Endpoint) -> io::Result<bool> {
    let mut credentials = load_credentials();
    let had = credentials.tokens.remove(&endpoint.to_string()).is_some();
    if had {
        store_credentials(&credentials)?;
    }
    Ok(had)
}

/// The local daemon's socket.
pub fn default_endpoint() -> Endpoint {
    Endpoint::Unix(paths::default_socket())
}

/// True when nothing listens on a Unix socket (so starting a daemon there is right).
pub fn nobody_listens(endpoint: &Endpoint) -> bool {
    match endpoint {
        Endpoint::Unix(path) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => false,
            Err(e) => matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused),
        },
        Endpoint::Tcp { .. } | Endpoint::Tls { .. } => false,
    }
}

/// Connect; when `autostart` and nothing listens on the Unix socket, start a daemon
/// first (`who` names the client in what it prints).
pub async fn connect(
    endpoint: &Endpoint,
    auth: Auth,
    options: ClientOptions,
    autostart: bool,
    who: &str,
) -> Result<AetherClient, ClientError> {
    match AetherClient::connect(endpoint, auth.clone(), options.clone()).await {
        Ok(client) => Ok(client),
        Err(ClientError::Connect { reason, .. }) if autostart && nobody_listens(endpoint) => {
            start_daemon(endpoint, &reason, who).map_err(|reason| ClientError::Connect {
                endpoint: endpoint.to_string(),
                reason,
            })?;
            AetherClient::connect(endpoint, auth, options).await
        }
        Err(e) => Err(e),
    }
}

/// The `aetherd` next to this binary, else the one on PATH, else (in a checkout, after
/// `cargo run --bin aether`) the workspace's, built now.
fn daemon_binary(who: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("where am I: {e}"))?;
    let beside = exe.with_file_name("aetherd");
    if beside.exists() {
        return Ok(beside);
    }
    if let Some(found) = daemon_on_path() {
        return Ok(found);
    }
    build_in_checkout(&exe, &beside, who)
}

fn daemon_on_path() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("aetherd"))
        .find(|path| path.is_file())
}

/// Build `aetherd` into this binary's cargo target dir, when this binary was built from
/// a checkout of the workspace (as `cargo run --bin aether` does).
fn build_in_checkout(exe: &Path, beside: &Path, who: &str) -> Result<PathBuf, String> {
    let not_found = || {
        "no aetherd beside this binary or on PATH (build it: cargo build --release --bin aetherd)"
            .to_owned()
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .filter(|dir| dir.join("aetherd/Cargo.toml").is_file())
        .ok_or_else(not_found)?;
    let profile_dir = exe.parent().ok_or_else(not_found)?;
    let target_dir = profile_dir
        .parent()
        .filter(|dir| dir.join("CACHEDIR.TAG").is_file())
        .ok_or_else(not_found)?;
    let release = profile_dir
        .file_name()
        .is_some_and(|name| name == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("{who}: building the daemon first (cargo build --bin aetherd); this happens once");
    let mut build = Command::new(cargo);
    build
        .current_dir(workspace)
        .args(["build", "--bin", "aetherd"])
        .env("CARGO_TARGET_DIR", target_dir);
    if release {
        build.arg("--release");
    }
    let status = build
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() || !beside.exists() {
        return Err(format!("building aetherd failed ({status})"));
    }
    Ok(beside.to_owned())
}

fn start_daemon(endpoint: &Endpoint, why: &str, who: &str) -> Result<(), String> {
    let Endpoint::Unix(_) = endpoint else {
        return Err(why.to_owned());
    };
    let binary = daemon_binary(who)?;
    let log_path = log_path(endpoint);
    eprintln!(
        "{who}: no daemon answered; starting {} (log: {})",
        binary.display(),
        log_path.display()
    );
    spawn_daemon(endpoint, &binary)
}

/// Start the local daemon again after it went away under a running client (which must
/// not print: the screen may be a full-screen desktop). Only when nothing listens on the
/// socket and a built `aetherd` is at hand; never builds one. Returns its log's path.
pub fn restart_daemon(endpoint: &Endpoint) -> Result<PathBuf, String> {
    if !nobody_listens(endpoint) {
        return Err("something listens on the socket again".into());
    }
    let exe = std::env::current_exe().map_err(|e| format!("where am I: {e}"))?;
    let beside = exe.with_file_name("aetherd");
    let binary = if beside.exists() {
        beside
    } else {
        daemon_on_path().ok_or("no aetherd beside this binary or on PATH")?
    };
    spawn_daemon(endpoint, &binary)?;
    Ok(log_path(endpoint))
}

fn log_path(endpoint: &Endpoint) -> PathBuf {
    let dir = match endpoint {
        Endpoint::Unix(socket) => socket.parent().unwrap_or(Path::new("/tmp")),
        _ => Path::new("/tmp"),
    };
    dir.join("aetherd.log")
}

/// The environment the daemon last started with, in place of this client's own variables
/// of the kinds that configure it: a desktop with the AI keys and a shell without them start
/// the same daemon. With no record yet (the first start), the client's own are used.
fn with_recorded_environment(command: &mut Command) {
    let path = paths::daemon_env_file(&paths::data_dir());
    let Some(recorded) = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<BTreeMap<String, String>>(&text).ok())
    else {
        return;
    };
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str()
            && (paths::configures_daemon(name) || recorded.contains_key(name))
        {
            command.env_remove(name);
        }
    }
    for (name, value) in recorded {
        command.env(name, value);
    }
}

/// Start `binary` as the daemon on the Unix socket and wait until it listens.
fn spawn_daemon(endpoint: &Endpoint, binary: &Path) -> Result<(), String> {
    let Endpoint::Unix(socket) = endpoint else {
        return Err("only a local daemon can be started".into());
    };
    let log_path = log_path(endpoint);
    let log_dir = log_path.parent().unwrap_or(Path::new("/tmp"));
    let io_err = |path: &Path, e: io::Error| format!("{}: {e}", path.display());
    std::fs::create_dir_all(log_dir).map_err(|e| io_err(log_dir, e))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| io_err(&log_path, e))?;
    let mut command = Command::new(binary);
    with_recorded_environment(&mut command);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        // Its own process group: a Ctrl-C meant for the client must not stop the daemon.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the daemon exited at start ({status}); see {}",
                log_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "the daemon did not open {} within 15 s; see {}",
        socket.display(),
        log_path.display()
    ))
}
