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
use crate::gateway::{self, Gateway};
use crate::hub::Hub;
use crate::identity::Identity;
use crate::metrics::MetricsPage;
use crate::perms::{InstalledSink, Perms, PermsView, Service};
use crate::services::{self, Bus, Seat};
use crate::session::Sessions;
use crate::store::Store;

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

pub struct Daemon {
    shutdown: CancellationToken,
    tracker: TaskTracker,
    tcp_addr: Option<SocketAddr>,
    socket_path: PathBuf,
    _watcher: Option<notify::RecommendedWatcher>,
    /// Held while the daemon lives: one daemon per data dir.
    _lock: std::fs::File,
}

/// The name of the lock file in the data dir; it holds the running daemon's pid.
pub const LOCK_FILE: &str = "aetherd.lock";

/// One daemon per data dir: two would share one store, one socket and the users' files.
/// The lock (flock) goes with the process, so a daemon killed with -9 leaves none behind.
fn single_instance(data_dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // A daemon that was just killed may hold its lock a moment longer while the kernel
    // closes its files (its socket may already be gone): give it a second to let go.
    let deadline = Instant::now() + Duration::from_secs(1);
    let locked = loop {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => break other,
        }
    };
    match locked {
        Ok(()) => {
            file.set_len(0)?;
            file.seek(std::io::SeekFrom::Start(0))?;
            write!(file, "{}", std::process::id())?;
            Ok(file)
        }
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            anyhow::bail!(
                "another aetherd (pid {}) already runs on {}: one daemon per data dir \
                 (stop it with `aetherctl daemon stop`, or give this one its own AETHER_HOME)",
                pid.trim(),
                data_dir.display()
            )
        }
        Err(e) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
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

/// Give each service its seat on the bus and only the parts of the daemon it uses.
/// The TCP listener, if any: one asked for must bind; the default may fail (another
/// daemon on the port) and the Unix socket still works.
async fn listen_tcp(listen: &Listen) -> anyhow::Result<Option<TcpListener>> {
    Ok(match listen {
        Listen::Off => None,
        Listen::Explicit(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?,
        ),
        Listen::Default(addr) => match TcpListener::bind(addr).await {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::warn!("not listening on TCP {addr} ({e}); the Unix socket still works");
                None
            }
        },
    })
}

fn start_services(
    config: &Config,
    bus: &Bus,
    identity: &Identity,
    store: &Store,
    audit: &AuditLog,
    shutdown: &CancellationToken,
    tcp_addr: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let sys = services::sys::Sys {
        identity: identity.clone(),
        perms: PermsView::new(bus.perms.clone()),
        hub: bus.hub.stats(),
        audit: audit.clone(),
        shutdown: shutdown.clone(),
        started: Instant::now(),
        tcp_addr,
        tls: config.tls.is_some(),
        token_ttl_days: config.limits.token_ttl_days,
        socket_path: config.socket_path(),
        data_dir: config.data_dir.clone(),
    };
    services::sys::start(Seat::join(bus, Service::Sys)?, sys);
    let vfs = services::vfs::Places {
        roots: config.user_roots(),
        scratch: config.vfs_scratch_dir(),
        index: config.data_dir.join("index"),
    };
    services::vfs::start(Seat::join(bus, Service::Vfs)?, vfs, config.vfs.clone())?;
    services::telemetry::start(Seat::join(bus, Service::Telemetry)?, store.clone())?;
    services::session::start(Seat::join(bus, Service::Session)?, store.clone());
    services::ai::start(
        Seat::join(bus, Service::Ai)?,
        config.ai.clone(),
        store.clone(),
    )?;
    let compute = services::compute::Places {
        roots: config.user_roots(),
        modules: config.data_dir.join("modules"),
        manifests: config.manifests_dir.clone(),
    };
    services::compute::start(
        Seat::join(bus, Service::Compute)?,
        compute,
        config.compute.clone(),
    )?;
    services::apps::start(
        Seat::join(bus, Service::Apps)?,
        services::apps::Places {
            apps: config.data_dir.join("apps"),
        },
        &config.apps,
        store.clone(),
        identity.clone(),
        InstalledSink::new(bus.perms.clone()),
    )?;
    services::chat::start(
        Seat::join(bus, Service::Chat)?,
        store.clone(),
        identity.clone(),
    );
    // Last: graphs resumed at start call the services above.
    services::agent::start(Seat::join(bus, Service::Agent)?, store.clone());
    Ok(())
}

impl Daemon {
    pub async fn start(config: Config) -> anyhow::Result<Daemon> {
        config.validate()?;
        private_dir(&config.data_dir)?;
        let lock = single_instance(&config.data_dir)?;
        // Before any client can see the daemon: one that starts it again (after a crash, or
        // `daemon stop`) gives it this environment, not its own.
        if let Some(vars) = &config.started_with
            && let Err(e) = record_environment(&config.data_dir, vars)
        {
            tracing::warn!("cannot record the daemon's environment: {e}");
        }
        seed_manifests(&config.manifests_dir)?;
        let store = Store::open(&config.db_path())?;
        let identity = Identity::new(store.clone(), config.auth.clone());
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
        let tcp = listen_tcp(&config.listen).await?;
        let tcp_addr = tcp.as_ref().and_then(|l| l.local_addr().ok());
        let tls = match &config.tls {
            Some(files) => Some(crate::tls::acceptor(&files.cert, &files.key)?),
            None => None,
        };
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let bus = Bus {
            hub: Hub::new(),
            perms,
            metrics: Arc::default(),
            shutdown: shutdown.clone(),
            tasks: tracker.clone(),
        };
        start_services(
            &config, &bus, &identity, &store, &audit, &shutdown, tcp_addr,
        )?;
        let gateway = Arc::new(Gateway {
            sessions: Arc::new(Sessions {
                hub: bus.hub.clone(),
                perms: bus.perms.clone(),
                limits: config.limits.clone(),
                shutdown: shutdown.clone(),
            }),
            identity,
            owner: config.owner.clone(),
            guest: config.guest,
            local_uid: rustix::process::geteuid().as_raw(),
            metrics: MetricsPage {
                hub: bus.hub.clone(),
                metrics: bus.metrics.clone(),
            },
        });
        tracker.spawn(gateway::serve_unix(unix, gateway.clone(), tracker.clone()));
        if let Some(tcp) = tcp {
            tracker.spawn(gateway::serve_tcp(
                tcp,
                tls.clone(),
                gateway,
                tracker.clone(),
            ));
        }
        let socket_path = config.socket_path();
        tracing::info!(
            socket = %socket_path.display(),
            tcp = %tcp_addr.map_or("off".to_owned(), |a| a.to_string()),
            tls = tls.is_some(),
            data = %config.data_dir.display(),
            "aetherd {} ready",
            env!("CARGO_PKG_VERSION")
        );
        Ok(Daemon {
            shutdown,
            tracker,
            tcp_addr,
            socket_path,
            _watcher: watcher,
            _lock: lock,
        })
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// Cancelling this stops the daemon gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Run until shutdown is requested, then say bye to every client and stop.
    pub async fn wait(self) {
        self.shutdown.cancelled().await;
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
        self.shutdown.cancel();
        self.wait().await;
    }
}

/// Write the record owner-only (it may hold a provider's key), whole or not at all.
fn record_environment(
    data_dir: &std::path::Path,
    vars: &std::collections::BTreeMap<String, String>,
) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = aether_proto::paths::daemon_env_file(data_dir);
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(
        serde_json::to_string_pretty(vars)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)
}
