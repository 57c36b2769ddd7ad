//! `aetherctl`: every bus operation from a shell.
//!
//! Exit codes: 0 ok, 1 the daemon said no (its code is printed), 2 usage,
//! 3 cannot connect.

mod connect;
mod fs;
mod vm;

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use serde_json::{Value, json};

use aether_proto::client::{AetherClient, AppHandle, ClientError};
use aether_proto::frame::{Auth, to_data};
use aether_proto::{ErrorBody, ErrorCode};

/// Script the Aether bus from a shell.
#[derive(Parser)]
#[command(
    version,
    about,
    after_help = "Exit codes: 0 ok, 1 the daemon said no, 2 usage, 3 cannot connect."
)]
struct Cli {
    /// Daemon endpoint: ws://HOST:PORT/ or unix:/path (default: the local daemon's socket).
    #[arg(long, global = true, env = "AETHER_URL", hide_env_values = true)]
    url: Option<String>,
    /// Sign in with this token instead of the saved one.
    #[arg(long, global = true, env = "AETHER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The app to act as (default: cli, or the app an app-bound token is bound to).
    #[arg(long, global = true)]
    app: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Request timeout in milliseconds.
    #[arg(long, global = true, default_value_t = 10_000)]
    timeout_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in with a password and save a token for this endpoint.
    Login {
        #[arg(long)]
        user: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Forget the saved token for this endpoint.
    Logout,
    /// Who the daemon says you are.
    Whoami,
    /// Manage users (admin).
    #[command(subcommand)]
    User(UserCommand),
    /// Mint tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Publish JSON data on a topic.
    Pub {
        topic: String,
        /// JSON data; `-` reads it from stdin; omitted means null.
        data: Option<String>,
    },
    /// Print deliveries on a pattern as JSON lines until Ctrl-C or --count.
    Sub {
        pattern: String,
        #[arg(long)]
        count: Option<u64>,
    },
    /// Send a request and print the answer.
    Req {
        topic: String,
        /// JSON data; `-` reads it from stdin; omitted means null.
        data: Option<String>,
    },
    /// Show apps and their permissions.
    #[command(subcommand)]
    Perms(PermsCommand),
    /// The daemon itself.
    #[command(subcommand)]
    Daemon(DaemonCommand),
    /// Your files: ls, cat, put, get, rm, mv, cp, mkdir, stat, watch.
    #[command(subcommand)]
    Fs(fs::FsCommand),
    /// Run WASI programs in the sandbox: run, ps, kill.
    #[command(subcommand)]
    Vm(vm::VmCommand),
    /// Telemetry rules: on an event, send a request built from it.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Recent permission denials (admin).
    Audit {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is prompted, or read with --password-stdin.
    Add {
        name: String,
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        password_stdin: bool,
    },
    List,
    /// Change a password (your own, or anyone's as admin).
    Passwd {
        name: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a token; with --app it can only act as that app.
    Create {
        /// Bind the token to this app: it can act as nothing else.
        #[arg(long)]
        app: Option<String>,
        /// A note to recognize the token by.
        #[arg(long)]
        label: Option<String>,
        /// Lifetime in seconds (default 30 days; never longer than the token you sign in with).
        #[arg(long)]
        ttl_secs: Option<i64>,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Your rules, with how often each ran and failed.
    List,
    /// Add a rule. Template variables in --data: {{path}} {{dir}} {{name}} {{stem}} {{topic}} {{user}} {{app}}.
    ///
    /// Example: back up every Markdown file when it is written:
    ///   aetherctl rules add --on telemetry.vfs.write --glob '*.md' --request vfs.copy \
    ///     --data '{"from":"{{path}}","to":"{{dir}}/{{stem}}.bak","overwrite":true}'
    Add {
        /// The telemetry events to react to (a pattern, e.g. telemetry.vfs.write).
        #[arg(long)]
        on: String,
        /// Only events whose path matches this glob (e.g. '*.md').
        #[arg(long)]
        glob: Option<String>,
        /// The request to send (a topic the acting app may request).
        #[arg(long)]
        request: String,
        /// The request's data, JSON with template variables.
        #[arg(long)]
        data: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a rule.
    Rm { id: i64 },
}

#[derive(Subcommand)]
enum PermsCommand {
    /// One app's capabilities and the topics they open, or every app.
    Show { app: Option<String> },
}

#[derive(Subcommand)]
enum DaemonCommand {
    /// Counters, uptime, where it listens.
    Status,
    /// Stop the daemon gracefully (admin).
    Stop,
}

/// Why a command failed, and so its exit code.
#[derive(Debug)]
pub enum Failure {
    Daemon(ErrorBody),
    Usage(String),
    Connect(String),
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
            Failure::Daemon(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Connect(_) => 3,
        }
    }
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
            match &failure {
                Failure::Daemon(body) if json => {
                    println!(
                        "{}",
                        json!({ "error": { "code": body.code, "msg": body.msg } })
                    );
                }
                Failure::Daemon(body) => eprintln!("aetherctl: {}: {}", body.code, body.msg),
                Failure::Usage(msg) => eprintln!("aetherctl: {msg}"),
                Failure::Connect(msg) => eprintln!("aetherctl: cannot connect: {msg}"),
            }
            ExitCode::from(failure.exit_code())
        }
    }
}

/// Parse command-line JSON data; `-` reads stdin.
fn parse_data(data: Option<String>) -> Result<Value, Failure> {
    let text = match data.as_deref() {
        None => return Ok(Value::Null),
        Some("-") => std::io::read_to_string(std::io::stdin())
            .map_err(|e| Failure::Usage(format!("stdin: {e}")))?,
        Some(text) => text.to_owned(),
    };
    serde_json::from_str(&text).map_err(|e| {
        let looks_structured = text.trim_start().starts_with(['{', '[', '"']);
        let hint = if looks_structured {
            String::new()
        } else {
            format!("; to send a string, quote it: '\"{}\"'", text.trim())
        };
        Failure::Usage(format!("data must be JSON ({e}){hint}"))
    })
}

fn read_password(from_stdin: bool, prompt: &str) -> Result<String, Failure> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::Usage(format!("stdin: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)
            .map_err(|e| Failure::Usage(format!("cannot read the password: {e}")))?
    } else {
        return Err(Failure::Usage(
            "no terminal to ask for a password: use --password-stdin".into(),
        ));
    };
    if password.is_empty() {
        return Err(Failure::Usage("the password is empty".into()));
    }
    Ok(password)
}

fn print_value(json: bool, value: &Value) {
    if json {
        println!("{value}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    }
}

async fn request(
    app: &AppHandle,
    topic: &str,
    data: Value,
    timeout: Duration,
) -> Result<Value, Failure> {
    let raw = app
        .request_raw(topic, to_data(&data), Some(timeout))
        .await
        .map_err(Failure::from_client)?;
    serde_json::from_str(raw.get())
        .map_err(|e| Failure::Daemon(ErrorBody::new(ErrorCode::Internal, e.to_string())))
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let (endpoint, autostart) = connect::endpoint(cli.url.as_deref())?;
    let timeout = Duration::from_millis(cli.timeout_ms);
    let options = connect::options(timeout);
    if let Command::Logout = cli.command {
        let had = connect::forget_token(&endpoint)?;
        println!(
            "{}",
            if had {
                "signed out"
            } else {
                "no saved token for this endpoint"
            }
        );
        return Ok(());
    }
    if let Command::Login {
        user,
        password_stdin,
    } = &cli.command
    {
        let password = read_password(*password_stdin, &format!("Password for {user}: "))?;
        let auth = Auth::Password {
            user: user.clone(),
            password,
        };
        let client = connect::connect(&endpoint, auth, options, autostart).await?;
        let app = client.app(cli.app.as_deref().unwrap_or("cli"));
        let answer = request(
            &app,
            "sys.token.create",
            json!({"label": "aetherctl login"}),
            timeout,
        )
        .await?;
        let token = answer["token"].as_str().unwrap_or_default();
        connect::save_token(&endpoint, token)?;
        if cli.json {
            println!(
                "{}",
                json!({"user": user, "endpoint": endpoint.to_string(), "expires_at": answer["expires_at"]})
            );
        } else {
            println!("signed in to {endpoint} as {user}");
        }
        return Ok(());
    }
    let auth = connect::auth_for(&endpoint, cli.token.clone()).await?;
    // Asking about or stopping the daemon must not start one.
    let is_daemon_command = matches!(cli.command, Command::Daemon(_));
    let client =
        match connect::connect(&endpoint, auth, options, autostart && !is_daemon_command).await {
            Ok(client) => client,
            Err(Failure::Connect(_)) if is_daemon_command && connect::nobody_listens(&endpoint) => {
                if matches!(cli.command, Command::Daemon(DaemonCommand::Stop)) {
                    println!("no daemon is running at {endpoint}");
                    return Ok(());
                }
                return Err(Failure::Connect(format!(
                    "no daemon is running at {endpoint}"
                )));
            }
            Err(e) => return Err(e),
        };
    // An app-bound token can act only as its app: make that the default.
    let app_id = cli
        .app
        .clone()
        .or_else(|| client.welcome().app.clone())
        .unwrap_or_else(|| "cli".to_owned());
    let app = client.app(&app_id);
    let result = execute(&cli, &client, &app, timeout).await;
    if result.is_ok()
        && matches!(cli.command, Command::Daemon(DaemonCommand::Stop))
        && let aether_proto::client::Endpoint::Unix(socket) = &endpoint
    {
        connect::wait_gone(socket, Duration::from_secs(10))?;
    }
    result
}

async fn execute(
    cli: &Cli,
    client: &AetherClient,
    app: &AppHandle,
    timeout: Duration,
) -> Result<(), Failure> {
    let json = cli.json;
    match &cli.command {
        Command::Login { .. } | Command::Logout => unreachable!("handled before connecting"),
        Command::Whoami => {
            let answer = request(app, "sys.whoami", Value::Null, timeout).await?;
            if json {
                println!("{answer}");
            } else {
                let user = &answer["user"];
                let mut line = format!(
                    "{} (id {})",
                    user["name"].as_str().unwrap_or("?"),
                    user["id"]
                );
                if user["admin"] == true {
                    line.push_str(", admin");
                }
                if user["guest"] == true {
                    line.push_str(", guest");
                }
                line.push_str(&format!(
                    ", acting as app {}",
                    answer["app"].as_str().unwrap_or("?")
                ));
                if let Some(bound) = answer["bound_app"].as_str() {
                    line.push_str(&format!(" (token bound to {bound})"));
                }
                println!("{line}");
            }
        }
        Command::User(UserCommand::Add {
            name,
            admin,
            password_stdin,
        }) => {
            let password = read_password(*password_stdin, &format!("Password for {name}: "))?;
            let answer = request(
                app,
                "sys.user.add",
                json!({"name": name, "password": password, "admin": admin}),
                timeout,
            )
            .await?;
            if json {
                println!("{answer}");
            } else {
                println!("added user {name} (id {})", answer["id"]);
            }
        }
        Command::User(UserCommand::List) => {
            let answer = request(app, "sys.user.list", Value::Null, timeout).await?;
            if json {
                println!("{answer}");
            } else {
                for user in answer["users"].as_array().into_iter().flatten() {
                    let mut flags = vec![];
                    if user["admin"] == true {
                        flags.push("admin");
                    }
                    if user["guest"] == true {
                        flags.push("guest");
                    }
                    if user["has_password"] == false {
                        flags.push("no password");
                    }
                    println!(
                        "{:<20} {}",
                        user["name"].as_str().unwrap_or("?"),
                        flags.join(", ")
                    );
                }
            }
        }
        Command::User(UserCommand::Passwd {
            name,
            password_stdin,
        }) => {
            let password = read_password(*password_stdin, "New password: ")?;
            let answer = request(
                app,
                "sys.user.passwd",
                json!({"name": name, "password": password}),
                timeout,
            )
            .await?;
            if json {
                println!("{answer}");
            } else {
                println!(
                    "password changed for {}",
                    answer["name"].as_str().unwrap_or("?")
                );
            }
        }
        Command::Token(TokenCommand::Create {
            app: bound,
            label,
            ttl_secs,
        }) => {
            let answer = request(
                app,
                "sys.token.create",
                json!({"app": bound, "label": label, "ttl_secs": ttl_secs}),
                timeout,
            )
            .await?;
            if json {
                println!("{answer}");
            } else {
                println!("{}", answer["token"].as_str().unwrap_or_default());
            }
        }
        Command::Pub { topic, data } => {
            let data = parse_data(data.clone())?;
            app.publish_acked(topic, to_data(&data))
                .await
                .map_err(Failure::from_client)?;
            if json {
                println!("{}", json!({"published": topic}));
            }
        }
        Command::Sub { pattern, count } => subscribe(app, pattern, *count).await?,
        Command::Req { topic, data } => {
            let data = parse_data(data.clone())?;
            let answer = request(app, topic, data, timeout).await?;
            print_value(json, &answer);
        }
        Command::Perms(PermsCommand::Show { app: shown }) => {
            let answer = request(app, "sys.perms.show", json!({"app": shown}), timeout).await?;
            if json {
                println!("{answer}");
            } else {
                print_perms(&answer);
            }
        }
        Command::Daemon(DaemonCommand::Status) => {
            let answer = request(app, "sys.stats", Value::Null, timeout).await?;
            if json {
                println!("{answer}");
            } else {
                print_status(&answer);
            }
        }
        Command::Daemon(DaemonCommand::Stop) => {
            let answer = request(app, "sys.daemon.stop", Value::Null, timeout).await?;
            if json {
                println!("{answer}");
            } else {
                println!("daemon (pid {}) is stopping", answer["pid"]);
            }
        }
        Command::Fs(command) => fs::run(command, app, json, timeout).await?,
        Command::Vm(command) => vm::run(command, app, json, timeout).await?,
        Command::Rules(RulesCommand::List) => {
            let answer = request(app, "telemetry.rules.list", Value::Null, timeout).await?;
            if json {
                println!("{answer}");
            } else {
                for rule in answer["rules"].as_array().into_iter().flatten() {
                    let glob = rule["glob"]
                        .as_str()
                        .map(|g| format!(" {g}"))
                        .unwrap_or_default();
                    println!(
                        "#{} {} [{}] on {}{glob} -> {} (ran {}, failed {}){}",
                        rule["id"],
                        rule["name"].as_str().unwrap_or("?"),
                        rule["app"].as_str().unwrap_or("?"),
                        rule["on"].as_str().unwrap_or("?"),
                        rule["request"]["topic"].as_str().unwrap_or("?"),
                        rule["runs"],
                        rule["failures"],
                        rule["last_error"]
                            .as_str()
                            .map(|e| format!("; last error: {e}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        Command::Rules(RulesCommand::Add {
            on,
            glob,
            request: topic,
            data,
            name,
        }) => {
            let data = parse_data(data.clone())?;
            let ask = json!({ "on": on, "glob": glob, "name": name, "request": { "topic": topic, "data": data } });
            let answer = request(app, "telemetry.rules.add", ask, timeout).await?;
            if json {
                println!("{answer}");
            } else {
                println!(
                    "added rule #{} (acts as app {})",
                    answer["id"],
                    answer["app"].as_str().unwrap_or("?")
                );
            }
        }
        Command::Rules(RulesCommand::Rm { id }) => {
            let answer = request(app, "telemetry.rules.rm", json!({ "id": id }), timeout).await?;
            print_value(json, &answer);
        }
        Command::Audit { limit } => {
            let answer = request(app, "sys.audit.list", json!({"limit": limit}), timeout).await?;
            if json {
                println!("{answer}");
            } else {
                for e in answer["entries"].as_array().into_iter().flatten() {
                    let at =
                        std::time::UNIX_EPOCH + Duration::from_secs(e["at"].as_u64().unwrap_or(0));
                    println!(
                        "{} {}/{} {} {}: {}",
                        humantime::format_rfc3339_seconds(at),
                        e["user"].as_str().unwrap_or("?"),
                        e["app"].as_str().unwrap_or("?"),
                        e["op"].as_str().unwrap_or("?"),
                        e["topic"].as_str().unwrap_or("?"),
                        e["reason"].as_str().unwrap_or("?")
                    );
                }
            }
        }
    }
    client.close();
    Ok(())
}

pub(crate) async fn subscribe(
    app: &AppHandle,
    pattern: &str,
    count: Option<u64>,
) -> Result<(), Failure> {
    let mut sub = app.subscribe(pattern).await.map_err(Failure::from_client)?;
    let mut seen = 0;
    let stdout = std::io::stdout();
    while count.is_none_or(|n| seen < n) {
        let next = tokio::select! {
            msg = sub.next() => msg,
            _ = tokio::signal::ctrl_c() => break,
        };
        let Some(msg) = next else {
            return Err(Failure::Connect("the daemon closed the connection".into()));
        };
        let data: Value = serde_json::from_str(msg.data.get()).unwrap_or(Value::Null);
        let line = json!({"topic": msg.topic, "from": msg.from, "data": data});
        let mut out = stdout.lock();
        // A closed pipe (e.g. `| head`) ends the subscription quietly.
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            break;
        }
        seen += 1;
    }
    Ok(())
}

fn print_perms(answer: &Value) {
    if let Some(apps) = answer["apps"].as_array() {
        for app in apps {
            let caps: Vec<&str> = app["capabilities"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            println!(
                "{:<10} {:<18} {}",
                app["id"].as_str().unwrap_or("?"),
                app["name"].as_str().unwrap_or("?"),
                caps.join(", ")
            );
        }
        for error in answer["errors"].as_array().into_iter().flatten() {
            println!("skipped: {}", error.as_str().unwrap_or("?"));
        }
        return;
    }
    let manifest = &answer["app"];
    println!(
        "{} ({} {})",
        manifest["id"].as_str().unwrap_or("?"),
        manifest["name"].as_str().unwrap_or("?"),
        manifest["version"].as_str().unwrap_or("?")
    );
    println!(
        "  own namespace: {} (pub, sub, serve, req)",
        answer["own_namespace"].as_str().unwrap_or("?")
    );
    for grant in answer["grants"].as_array().into_iter().flatten() {
        let ops: Vec<&str> = grant["ops"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "  {:<16} {:<22} {:<10} because: {}",
            grant["capability"].as_str().unwrap_or("?"),
            grant["topic"].as_str().unwrap_or("?"),
            ops.join(","),
            grant["reason"].as_str().unwrap_or("?")
        );
    }
}

fn print_status(answer: &Value) {
    let hub = &answer["hub"];
    println!(
        "aetherd {} up {} s",
        answer["version"].as_str().unwrap_or("?"),
        answer["uptime_secs"]
    );
    if let Some(pid) = answer["pid"].as_u64() {
        println!("pid          {pid}");
    }
    if let Some(socket) = answer["socket"].as_str() {
        println!("socket       {socket}");
    }
    match answer["tcp"].as_str() {
        Some(tcp) => println!("tcp          ws://{tcp}/"),
        None => println!("tcp          off"),
    }
    if let Some(dir) = answer["data_dir"].as_str() {
        println!("data         {dir}");
    }
    println!("connections  {}", hub["connections"]);
    println!("subscribers  {}", hub["subscriptions"]);
    println!(
        "messages     {} published, {} delivered, {} dropped, {} slow consumers",
        hub["published"], hub["delivered"], hub["dropped"], hub["slow_consumers"]
    );
    println!(
        "requests     {} ({} pending, {} without responders, {} timed out)",
        hub["requests"], hub["pending_requests"], hub["no_responders"], hub["timeouts"]
    );
    println!("apps         {}", answer["apps"]);
    for error in answer["manifest_errors"].as_array().into_iter().flatten() {
        println!("skipped      {}", error.as_str().unwrap_or("?"));
    }
}
