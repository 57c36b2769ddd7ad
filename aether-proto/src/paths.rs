//! Where a local daemon keeps its data and socket. The daemon and every client
//! compute these the same way, so `aetherctl` finds the daemon with no flags.
//! (Reads environment variables only; no I/O.)

use std::path::{Path, PathBuf};

/// The data dir: `$AETHER_HOME`, else the XDG data dir + `/aether`.
pub fn data_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("AETHER_HOME") {
        return PathBuf::from(home);
    }
    directories::BaseDirs::new()
        .map(|dirs| dirs.data_dir().join("aether"))
        .unwrap_or_else(|| PathBuf::from(".aether"))
}

/// The runtime dir for the socket: `<data>/run` when `AETHER_HOME` is set (so
/// instances stay apart), else `$XDG_RUNTIME_DIR/aether`, else `<data>/run`.
pub fn runtime_dir(data_dir: &Path) -> PathBuf {
    if std::env::var_os("AETHER_HOME").is_none()
        && let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR")
    {
        return PathBuf::from(dir).join("aether");
    }
    data_dir.join("run")
}

pub fn socket_path(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("aetherd.sock")
}

/// The socket of the default local daemon.
pub fn default_socket() -> PathBuf {
    socket_path(&runtime_dir(&data_dir()))
}

/// Where the daemon records the environment it was started with (names and values of the
/// variables [`configures_daemon`] picks): a client that starts it again gives it the same.
pub fn daemon_env_file(data_dir: &Path) -> PathBuf {
    data_dir.join("aetherd.env.json")
}

/// Does this environment variable configure the daemon: its own (`AETHER_*`, but not
/// `AETHER_HOME`, which says where it is), the AI providers' (`GEMINI_*`, `OPENAI_*`), or
/// its logging (`RUST_LOG`)?
pub fn configures_daemon(name: &str) -> bool {
    (name.starts_with("AETHER_") && name != "AETHER_HOME")
        || name.starts_with("GEMINI_")
        || name.starts_with("OPENAI_")
        || name == "RUST_LOG"
}
