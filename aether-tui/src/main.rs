//! `aether`: the tiled terminal desktop. It connects to the local daemon (starting it
//! when none runs) or a remote one, restores the user's last workspace, and runs.
//! Flags and connecting only; the desktop is the library's.

use aether_tui::{app, commands, config, term};

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aether_local as local;
use aether_proto::client::{ClientOptions, Endpoint};
use aether_proto::frame::Auth;
use clap::Parser;

/// The Aether desktop: tiled windows over the daemon's bus.
#[derive(Parser)]
#[command(name = "aether", version)]
struct Cli {
    /// The daemon to use (default: the local one, started if need be), e.g. wss://host:7878.
    #[arg(long, env = "AETHER_URL")]
    url: Option<String>,
    /// Sign in with this token (default: the one `aetherctl login` saved for the URL).
    #[arg(long, env = "AETHER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// For wss://: a PEM file of the certificates to trust.
    #[arg(long, env = "AETHER_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// The settings file (default: ~/.config/aether/desktop.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// `dark`, `light`, or a theme file.
    #[arg(long)]
    theme: Option<String>,
    /// Start from the default layout instead of the saved one.
    #[arg(long)]
    fresh: bool,
    /// Print the desktop's commands (for key bindings in the settings file) and exit.
    #[arg(long)]
    list_commands: bool,
}

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    let cli = Cli::parse();
    if cli.list_commands {
        for info in commands::all() {
            println!("{:<20} {}", info.name, info.doc);
        }
        return ExitCode::SUCCESS;
    }
    let config_path = cli.config.clone().unwrap_or_else(config::default_path);
    let config = match config::Config::load(&config_path, cli.theme.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("aether: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    // Before the runtime's threads: reading the local offset is sound only while the
    // process has one thread (UTC when it cannot be read).
    let utc_offset_s = time::UtcOffset::current_local_offset().map_or(0, |o| o.whole_seconds());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("aether: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let client = match connect(&cli).await {
            Ok(client) => client,
            Err(e) => {
                eprintln!("aether: {e}");
                return ExitCode::from(3);
            }
        };
        let options = app::Options {
            fresh: cli.fresh,
            // The local daemon (the one we would autostart) is started again if it dies.
            revive: cli.url.is_none().then(local::default_endpoint),
            started,
            utc_offset_s,
        };
        let prepared = app::prepare(&client, &config, &options).await;
        match app::run(client, config, options, prepared).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                term::leave();
                eprintln!("aether: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn connect(cli: &Cli) -> Result<aether_proto::client::AetherClient, String> {
    let (endpoint, autostart) = match &cli.url {
        Some(url) => (Endpoint::parse(url)?, false),
        None => (local::default_endpoint(), true),
    };
    let auth = match (cli.token.clone(), local::saved_token(&endpoint)) {
        (Some(token), _) | (None, Some(token)) => Auth::Token { token },
        (None, None) if endpoint.is_unix() => Auth::Local,
        (None, None) => {
            return Err(format!(
                "not signed in to {endpoint}: run `aetherctl --url {endpoint} login` once, or pass --token"
            ));
        }
    };
    let options = ClientOptions {
        client_name: format!("aether/{}", env!("CARGO_PKG_VERSION")),
        request_timeout: Duration::from_secs(10),
        reconnect: true,
        ca_certs: cli.ca_cert.clone(),
        ..ClientOptions::default()
    };
    local::connect(&endpoint, auth, options, autostart, "aether")
        .await
        .map_err(|e| e.to_string())
}

/// Logs go to a file only when asked (`AETHER_TUI_LOG=path`): the screen is the desktop's.
fn init_logging() {
    let Some(path) = std::env::var_os("AETHER_TUI_LOG") else {
        return;
    };
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AETHER_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .try_init();
}
