//! `aetherctl`: every bus operation from a shell.
//!
//! Exit codes: 0 ok, 1 the daemon said no (its code is printed), 2 usage,
//! 3 cannot connect; `vm run` exits with its program's code.

/// `println!` that ends the program quietly when its reader has gone (`aetherctl … | head`),
/// as Unix tools do (exit status 141, as if by SIGPIPE), instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod account;
mod agent;
mod ai;
mod apps;
mod bus;
mod chat;
mod connect;
mod daemon;
mod fs;
mod output;
mod perms;
mod publish;
mod rules;
mod session;
mod token;
mod vm;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::json;

use aether_proto::api::Call;
use aether_proto::client::{AppHandle, ClientError, Endpoint};
use aether_proto::{ErrorBody, ErrorCode};

/// Script the Aether bus from a shell.
#[derive(Parser)]
#[command(
    version,
    about,
    after_help = "Exit codes: 0 ok, 1 the daemon said no, 2 usage, 3 cannot connect \
                  (`vm run`: its program's exit code)."
)]
struct Cli {
    /// Daemon endpoint: ws://HOST:PORT/, wss://HOST:PORT/ or unix:/path (default: the local
    /// daemon's socket).
    #[arg(long, global = true, env = "AETHER_URL", hide_env_values = true)]
    url: Option<String>,
    /// For wss://: a PEM file of the certificate(s) to trust, such as a daemon's self-signed
    /// one (default: the system's trusted roots).
    #[arg(long, global = true, env = "AETHER_CA_CERT", value_name = "PEM")]
    ca_cert: Option<std::path::PathBuf>,
    /// Sign in with this token instead of the saved one.
    #[arg(long, global = true, env = "AETHER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The app to act as (default: cli, or the app an app-bound token is bound to).
    #[arg(long, global = true)]
    app: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    /// How long to wait for each answer from the daemon, in ms.
    #[arg(
        long,
        global = true,
        env = "AETHER_REQUEST_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    request_timeout_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Account(account::AccountCommand),
    /// Manage users (admin).
    #[command(subcommand)]
    User(account::UserCommand),
    /// Mint, list and revoke your tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    #[command(flatten)]
    Bus(bus::BusCommand),
    /// Show apps and their permissions.
    #[command(subcommand)]
    Perms(perms::PermsCommand),
    /// The daemon itself.
    #[command(subcommand)]
    Daemon(daemon::DaemonCommand),
    /// Your files: ls, cat, put, get, rm, mv, cp, mkdir, stat, watch.
    #[command(subcommand)]
    Fs(fs::FsCommand),
    /// Run WASI programs in the sandbox: run, ps, kill.
    #[command(subcommand)]
    Vm(vm::VmCommand),
    /// Telemetry rules: on an event, send a request built from it.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Saved desktop sessions: list, load, save, delete.
    #[command(subcommand)]
    Session(session::SessionCommand),
    /// Recent permission denials (admin).
    Audit(daemon::Audit),
    /// The AI: status (providers, usage), ask (streams the answer), embed.
    #[command(subcommand)]
    Ai(ai::AiCommand),
    /// TaskGraphs: plan, run FILE, list, status, watch, cancel, approve, retry.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Apps: catalog, info, install (asks your consent; --yes for scripts), update,
    /// uninstall, list.
    #[command(subcommand)]
    Apps(apps::AppsCommand),
    /// Chat: rooms, create, join, leave, invite, dm, send, tail, history.
    #[command(subcommand)]
    Chat(chat::ChatCommand),
    /// Presence: set (away, back, a status text), list.
    #[command(subcommand)]
    Presence(chat::PresenceCommand),
}

/// Why a command failed, and so its exit code.
#[derive(Debug)]
pub enum Failure {
    Daemon(ErrorBody),
    Usage(String),
    Connect(String),
    /// The program `vm run` ran exited with this code (1 to 255); it said why itself.
    Program(u8),
    /// What was followed ended without success: a graph `failed` or `cancelled`.
    Ended {
        what: String,
        how: String,
        why: String,
    },
}

impl Failure {
    pub fn from_client(e: ClientError) -> Failure {
        match e.clone() {
            ClientError::Daemon(body) => Failure::Daemon(body),
            ClientError::Timeout(after) => Failure::Daemon(ErrorBody::new(
                ErrorCode::Timeout,
                format!("no answer within {after:?}"),
            )),
            ClientError::TooLarge { .. } => {
                Failure::Usage(format!("{e}; send files with `aetherctl fs put`"))
            }
            ClientError::Decode(msg) | ClientError::Protocol(msg) => {
                Failure::Daemon(ErrorBody::new(ErrorCode::Internal, msg))
            }
            other => Failure::Connect(other.to_string()),
        }
    }

    pub fn io(path: &Path, e: std::io::Error) -> Failure {
        Failure::Usage(format!("{}: {e}", path.display()))
    }

    fn exit_code(&self) -> u8 {
        match self {
            Failure::Daemon(_) | Failure::Ended { .. } => 1,
            Failure::Usage(_) => 2,
            Failure::Connect(_) => 3,
            Failure::Program(code) => *code,
        }
    }

    fn report(&self, json: bool) {
        match self {
            Failure::Daemon(body) if json => {
                outln!(
                    "{}",
                    json!({ "error": { "code": body.code, "msg": body.msg } })
                );
            }
            Failure::Daemon(body) => eprintln!("aetherctl: {}: {}", body.code, body.msg),
            Failure::Usage(msg) => eprintln!("aetherctl: {msg}"),
            Failure::Connect(msg) => eprintln!("aetherctl: cannot connect: {msg}"),
            Failure::Program(_) => {}
            Failure::Ended { what, how, why } if json => {
                outln!("{}", json!({ "ended": how, "what": what, "error": why }));
            }
            Failure::Ended { what, how, why } => eprintln!("aetherctl: {what} {how}: {why}"),
        }
    }
}

/// Send a call of the typed API with the request timeout; decode its answer.
pub async fn call<C: Call>(app: &AppHandle, call: &C) -> Result<C::Answer, Failure> {
    app.request(call).await.map_err(Failure::from_client)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("aetherctl: {e}");
            return ExitCode::from(3);
        }
    };
    let json = cli.json;
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.report(json);
            ExitCode::from(failure.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Apps(command) = &cli.command
        && let Some(done) = command.offline(cli.json)
    {
        return done;
    }
    let (endpoint, autostart) = connect::endpoint(cli.url.as_deref())?;
    let options = connect::options(
        Duration::from_millis(cli.request_timeout_ms),
        cli.ca_cert.clone(),
    );
    match &cli.command {
        Command::Account(account::AccountCommand::Logout) => return account::logout(&endpoint),
        Command::Account(account::AccountCommand::Login(login)) => {
            let acting = cli.app.as_deref().unwrap_or("cli");
            return account::login(login, &endpoint, options, autostart, acting, cli.json).await;
        }
        _ => {}
    }
    let auth = connect::auth_for(&endpoint, cli.token.clone()).await?;
    // Asking about or stopping the daemon must not start one.
    let client = match &cli.command {
        Command::Daemon(command) => {
            match daemon::connect(command, &endpoint, auth, options).await? {
                Some(client) => client,
                None => return Ok(()),
            }
        }
        _ => connect::connect(&endpoint, auth, options, autostart).await?,
    };
    // An app-bound token can act only as its app: make that the default.
    let app_id = cli
        .app
        .clone()
        .or_else(|| client.welcome().app.clone())
        .unwrap_or_else(|| "cli".to_owned());
    let app = client.app(&app_id);
    let result = execute(&cli.command, &app, cli.json).await;
    client.close();
    if result.is_ok()
        && matches!(cli.command, Command::Daemon(daemon::DaemonCommand::Stop))
        && let Endpoint::Unix(socket) = &endpoint
    {
        connect::wait_gone(socket, Duration::from_secs(10))?;
    }
    result
}

async fn execute(command: &Command, app: &AppHandle, json: bool) -> Result<(), Failure> {
    match command {
        Command::Account(command) => account::run(command, app, json).await,
        Command::User(command) => account::run_user(command, app, json).await,
        Command::Token(command) => token::run(command, app, json).await,
        Command::Bus(command) => bus::run(command, app, json).await,
        Command::Perms(command) => perms::run(command, app, json).await,
        Command::Daemon(command) => daemon::run(command, app, json).await,
        Command::Fs(command) => fs::run(command, app, json).await,
        Command::Vm(command) => vm::run(command, app, json).await,
        Command::Rules(command) => rules::run(command, app, json).await,
        Command::Session(command) => session::run(command, app, json).await,
        Command::Audit(audit) => daemon::audit(audit, app, json).await,
        Command::Ai(command) => ai::run(command, app, json).await,
        Command::Agent(command) => agent::run(command, app, json).await,
        Command::Apps(command) => apps::run(command, app, json).await,
        Command::Chat(command) => chat::run(command, app, json).await,
        Command::Presence(command) => chat::run_presence(command, app, json).await,
    }
}
