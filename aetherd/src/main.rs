//! `aetherd`: start the Aether daemon.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use aetherd::Daemon;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use aetherd::config::{self, Config};

/// The Aether daemon: bus, gateway, permissions and services.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Data dir (default: $AETHER_HOME, else the XDG data dir + /aether).
    #[arg(long, env = "AETHER_HOME")]
    home: Option<PathBuf>,
    /// TCP address for WebSocket clients, or `off` (default 127.0.0.1:7470).
    #[arg(long)]
    listen: Option<String>,
    /// Allow anonymous guest users.
    #[arg(long)]
    guest: bool,
    /// Serve TCP clients over TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Allow plain ws:// on an address other than loopback (when something else encrypts it).
    #[arg(long)]
    allow_plaintext: bool,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    raise_fd_limit();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("aetherd: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aetherd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut config = Config::load(args.home)?;
    if let Some(listen) = args.listen {
        config.listen = config::parse_listen(&listen)?;
    }
    config.guest |= args.guest;
    config.allow_plaintext |= args.allow_plaintext;
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(config::TlsFiles { cert, key });
    }
    config.validate()?;
    config.started_with = Some(started_with(&config));
    // Watched before the socket exists: a SIGTERM as soon as a client sees the daemon stops
    // it gracefully, never by the signal's default.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let daemon = Daemon::start(config).await?;
    let shutdown = daemon.shutdown_token();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = interrupt.recv() => tracing::info!("SIGINT"),
        }
        shutdown.cancel();
    });
    daemon.wait().await;
    Ok(())
}

/// Each client is a file descriptor: use the whole hard limit, not the soft default.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let Some(max) = limit.maximum
        && limit.current.is_some_and(|current| current < max)
    {
        let raised = rustix::process::Rlimit {
            current: Some(max),
            maximum: Some(max),
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!("cannot raise the open-file limit: {e}");
        }
    }
}

/// The variables that configure the daemon, as it was started: its own (`AETHER_*`), the
/// providers' (`GEMINI_*`, `OPENAI_*`, and each `api_key_env` the config names) and logging.
fn started_with(config: &Config) -> std::collections::BTreeMap<String, String> {
    let named: Vec<&str> = config
        .ai
        .providers
        .iter()
        .filter_map(|p| p.api_key_env.as_deref())
        .collect();
    std::env::vars()
        .filter(|(name, _)| {
            aether_proto::paths::configures_daemon(name) || named.contains(&name.as_str())
        })
        .collect()
}
