//! `aetherctl vm`: run WASI programs in the daemon's sandbox, output streamed live.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Subcommand;
use futures_util::StreamExt;
use serde_json::{Value, json};

use aether_proto::client::{AppHandle, Subscription};
use aether_proto::{ErrorBody, ErrorCode};

use crate::Failure;

#[derive(Subcommand)]
pub enum VmCommand {
    /// Run a program: a local .wasm file (uploaded to /.aether/run/), a path in your files,
    /// or with --installed an app's entry. Its stdout and stderr stream here; aetherctl exits
    /// with its exit code.
    Run {
        #[arg(required_unless_present = "installed", conflicts_with = "installed")]
        file: Option<String>,
        /// Run the entry module of this installed app instead of a file.
        #[arg(long, value_name = "APP")]
        installed: Option<String>,
        /// Kill it after this long.
        #[arg(long)]
        timeout_ms: Option<u64>,
        #[arg(long)]
        memory_mb: Option<u32>,
        #[arg(long)]
        output_kb: Option<u32>,
        /// Environment variables for the program, NAME=VALUE.
        #[arg(long = "env", value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// Arguments for the program (after --).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Your running and recent jobs.
    Ps,
    /// Stop a job.
    Kill { job: String },
}

pub async fn run(
    command: &VmCommand,
    app: &AppHandle,
    json_out: bool,
    timeout: Duration,
) -> Result<(), Failure> {
    match command {
        VmCommand::Ps => {
            let answer = crate::request(app, "vm.jobs", json!({}), timeout).await?;
            if json_out {
                println!("{answer}");
            } else {
                for job in answer["jobs"].as_array().into_iter().flatten() {
                    let status = &job["status"];
                    let detail = match status["state"].as_str() {
                        Some("finished") => format!(
                            "finished: {} {}",
                            status["ending"].as_str().unwrap_or("?"),
                            status["code"]
                                .as_i64()
                                .map(|c| format!("(code {c})"))
                                .unwrap_or_default()
                        ),
                        other => other.unwrap_or("?").to_owned(),
                    };
                    println!(
                        "{}  {:<30} {detail}",
                        job["job"].as_str().unwrap_or("?"),
                        job["path"].as_str().unwrap_or("?")
                    );
                }
            }
            Ok(())
        }
        VmCommand::Kill { job } => {
            let answer = crate::request(app, "vm.kill", json!({ "job": job }), timeout).await?;
            if json_out {
                println!("{answer}");
            } else {
                println!("killing {job}");
            }
            Ok(())
        }
        VmCommand::Run {
            file,
            installed,
            timeout_ms,
            memory_mb,
            output_kb,
            env,
            args,
        } => {
            let path = match file {
                Some(file) => Some(upload_if_local(app, file, timeout).await?),
                None => None,
            };
            let mut vars = serde_json::Map::new();
            for pair in env {
                let Some((key, value)) = pair.split_once('=') else {
                    return Err(Failure::Usage(format!("--env {pair:?} is not NAME=VALUE")));
                };
                vars.insert(key.to_owned(), json!(value));
            }
            let piped = !std::io::stdin().is_terminal();
            // Subscribe first: no output can be missed between the start and the subscription.
            let mut events = app
                .subscribe("vm.job.>")
                .await
                .map_err(Failure::from_client)?;
            let ask = json!({ "path": path, "installed": installed, "args": args, "env": vars, "timeout_ms": timeout_ms,
                              "memory_mb": memory_mb, "output_kb": output_kb, "keep_stdin_open": piped });
            let started = crate::request(app, "vm.run", ask, timeout).await?;
            let job = started["job"].as_str().unwrap_or_default().to_owned();
            if piped {
                feed_stdin(app, &job, timeout).await?;
            }
            follow(&mut events, &job, json_out).await
        }
    }
}

/// A local file is uploaded to `/.aether/run/` first; anything else names a file in the VFS.
async fn upload_if_local(
    app: &AppHandle,
    file: &str,
    timeout: Duration,
) -> Result<String, Failure> {
    if !Path::new(file).is_file() {
        return Ok(file.to_owned());
    }
    let name = Path::new(file)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("program.wasm");
    let remote = format!("/.aether/run/{name}");
    let bytes = std::fs::read(file).map_err(|e| Failure::io(Path::new(file), e))?;
    let write = json!({ "path": remote, "data": BASE64.encode(bytes), "encoding": "base64", "parents": true });
    crate::request(app, "vfs.write", write, timeout).await?;
    Ok(remote)
}

/// Send our stdin to the job in chunks, then close it.
async fn feed_stdin(app: &AppHandle, job: &str, timeout: Duration) -> Result<(), Failure> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| Failure::Usage(format!("stdin: {e}")))?;
    let text =
        String::from_utf8(input).map_err(|_| Failure::Usage("stdin must be UTF-8 text".into()))?;
    let mut rest = text.as_str();
    loop {
        let mut cut = rest.len().min(32 * 1024);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (chunk, tail) = rest.split_at(cut);
        let close = tail.is_empty();
        crate::request(
            app,
            "vm.stdin",
            json!({ "job": job, "data": chunk, "close": close }),
            timeout,
        )
        .await?;
        if close {
            return Ok(());
        }
        rest = tail;
    }
}

/// Print the job's output as it arrives; exit with its code.
async fn follow(events: &mut Subscription, job: &str, json_out: bool) -> Result<(), Failure> {
    let prefix = format!("vm.job.{job}.");
    while let Some(msg) = events.next().await {
        let Some(kind) = msg.topic.strip_prefix(&prefix) else {
            continue;
        };
        let data: Value = serde_json::from_str(msg.data.get()).unwrap_or(Value::Null);
        if json_out {
            println!("{}", json!({ "event": kind, "data": data }));
        }
        match kind {
            "stdout" | "stderr" if !json_out => {
                let text = data["data"].as_str().unwrap_or_default();
                let bytes = if data["encoding"] == "base64" {
                    BASE64.decode(text).unwrap_or_default()
                } else {
                    text.as_bytes().to_vec()
                };
                let written = if kind == "stdout" {
                    std::io::stdout()
                        .write_all(&bytes)
                        .and_then(|_| std::io::stdout().flush())
                } else {
                    std::io::stderr().write_all(&bytes)
                };
                if written.is_err() {
                    return Ok(());
                }
            }
            "exit" => {
                let code = data["code"].as_i64();
                return match (data["ending"].as_str(), code) {
                    (Some("exited"), Some(0)) => Ok(()),
                    (Some("exited"), Some(code)) => std::process::exit(code.clamp(1, 255) as i32),
                    (ending, _) => Err(Failure::Daemon(ErrorBody::new(
                        ErrorCode::Cancelled,
                        format!(
                            "the program ended: {} ({})",
                            ending.unwrap_or("?"),
                            data["error"].as_str().unwrap_or("no detail")
                        ),
                    ))),
                };
            }
            _ => {}
        }
    }
    Err(Failure::Connect("the daemon closed the connection".into()))
}
