//! Wires the parts together: start-up in dependency order, and graceful shutdown.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::AuditLog;
use crate::config::{Config, Listen};
use crate::hub::Hub;
use crate::identity::Identity;
use crate::perms::Perms;
use crate::store::Store;
use crate::{gateway, services};

/// The manifests of the built-in apps, written to the manifests dir on first start.
pub const BUILTIN_MANIFESTS: &[(&str, &str)] = &[
    ("agents.json", include_str!("../../manifests/agents.json")),
    ("chat.json", include_str!("../../manifests/chat.json")),
    ("cli.json", include_str!("../../manifests/cli.json")),
    ("desktop.json", include_str!("../../manifests/desktop.json")),
    ("editor.json", include_str!("../../manifests/editor.json")),
    ("files.json", include_str!("../../manifests/files.json")),
    ("store.json", include_str!("../../manifests/store.json")),
    (
        "terminal.json",
        include_str!("../../manifests/terminal.json"),
    ),
];

/// What every connection and service shares.
pub struct Shared {
    pub config: Config,
    pub hub: Arc<Hub>,
    pub perms: Arc<Perms>,
    pub identity: Identity,
    pub store: Store,
    pub audit: AuditLog,
    pub shutdown: CancellationToken,
    pub started: Instant,
    /// The uid the daemon runs as: Unix-socket peers with it are the local owner.
    pub local_uid: u32,
    /// Where TCP clients connect, if anywhere.
    pub tcp_addr: Option<SocketAddr>,
}

pub struct Daemon {
    shared: Arc<Shared>,
    tracker: TaskTracker,
    tcp_addr: Option<SocketAddr>,
    socket_path: PathBuf,
    _watcher: Option<notify::RecommendedWatcher>,
}

fn private_dir(path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", path.display()))
}

/// Write each built-in manifest that is not there yet; never overwrite a user's edit.
fn seed_manifests(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in BUILTIN_MANIFESTS {
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}

impl Daemon {
    pub async fn start(config: Config) -> anyhow::Result<Daemon> {
        config.validate()?;
        private_dir(&config.data_dir)?;
        seed_manifests(&config.manifests_dir)?;
        let store = Store::open(&config.db_path())?;
        let identity = Identity::new(store.clone());
        identity.ensure_owner(&config.owner)?;
        let audit = AuditLog::start(store.clone());
        let perms = Perms::load(&config.manifests_dir, audit.clone());
        let watcher = match perms.watch() {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                tracing::warn!("manifests will not reload on change: {e}");
                None
            }
        };
        let unix = gateway::bind_unix(&config.socket_path()).await?;
        let tcp = match &config.listen {
            Listen::Off => None,
            Listen::Explicit(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?,
            ),
            Listen::Default(addr) => match TcpListener::bind(addr).await {
                Ok(listener) => Some(listener),
                Err(e) => {
                    tracing::warn!(
                        "not listening on TCP {addr} ({e}); the Unix socket still works"
                    );
                    None
                }
            },
        };
        let tcp_addr = tcp.as_ref().and_then(|l| l.local_addr().ok());
        let shared = Arc::new(Shared {
            config,
            hub: Hub::new(),
            perms,
            identity,
            store,
            audit,
            shutdown: CancellationToken::new(),
            started: Instant::now(),
            local_uid: rustix::process::geteuid().as_raw(),
            tcp_addr,
        });
        services::sys::start(shared.clone())?;
        services::vfs::start(shared.clone())?;
        services::telemetry::start(shared.clone())?;
        services::compute::start(shared.clone())?;
        let tracker = TaskTracker::new();
        tracker.spawn(gateway::serve_unix(unix, shared.clone(), tracker.clone()));
        if let Some(tcp) = tcp {
            tracker.spawn(gateway::serve_tcp(tcp, shared.clone(), tracker.clone()));
        }
        let socket_path = shared.config.socket_path();
        tracing::info!(
            socket = %socket_path.display(),
            tcp = %tcp_addr.map_or("off".to_owned(), |a| a.to_string()),
            data = %shared.config.data_dir.display(),
            "aetherd {} ready",
            env!("CARGO_PKG_VERSION")
        );
        Ok(Daemon {
            shared,
            tracker,
            tcp_addr,
            socket_path,
            _watcher: watcher,
        })
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Cancelling this stops the daemon gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    /// Run until shutdown is requested, then say bye to every client and stop.
    pub async fn wait(self) {
        self.shared.shutdown.cancelled().await;
        tracing::info!("shutting down");
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(5), self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close within 5 s");
        }
        let _ = std::fs::remove_file(&self.socket_path);
        tracing::info!("stopped");
    }

    pub async fn stop(self) {
        self.shared.shutdown.cancel();
        self.wait().await;
    }
}
