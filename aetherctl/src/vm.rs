//! `aetherctl vm`: run WASI programs in the daemon's sandbox, output streamed live.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Subcommand;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use aether_proto::api::Event as _;
use aether_proto::api::vfs;
use aether_proto::api::vm::{self, Ending, JobState, JobSummary, JobsAnswer};
use aether_proto::client::{AppHandle, Subscription};
use aether_proto::frame::Msg;
use aether_proto::{ErrorBody, ErrorCode};

use crate::output::{name_of, print_answer, print_json};
use crate::{Failure, call};

/// The most `vm.run` takes in its `stdin` field (it must fit the pipe before the job starts).
const RUN_STDIN_MAX: usize = 60 * 1024;
/// Input per `vm.stdin` request after that.
const STDIN_CHUNK: usize = 32 * 1024;

#[derive(Subcommand)]
pub enum VmCommand {
    /// Run a program: a local .wasm file (uploaded to /.aether/run/), a path in your files,
    /// or with --installed an app's entry. Its stdout and stderr stream here; aetherctl exits
    /// with its exit code. Piped stdin is the program's input (UTF-8 text).
    Run {
        #[arg(required_unless_present = "installed", conflicts_with = "installed")]
        file: Option<String>,
        /// Run the entry module of this installed app instead of a file.
        #[arg(long, value_name = "APP")]
        installed: Option<String>,
        /// The job's deadline in ms: it is stopped then (default: the app's or the daemon's).
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

pub async fn run(command: &VmCommand, app: &AppHandle, json: bool) -> Result<(), Failure> {
    match command {
        VmCommand::Ps => ps(app, json).await,
        VmCommand::Kill { job } => {
            let killing = call(app, &vm::Kill { job: job.clone() }).await?;
            print_answer(json, &killing, |_| format!("killing {job}"));
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
            let ask = vm::Run {
                installed: installed.clone(),
                args: args.clone(),
                env: parse_env(env)?,
                timeout_ms: *timeout_ms,
                memory_mb: *memory_mb,
                output_kb: *output_kb,
                ..Default::default()
            };
            run_program(app, file.as_deref(), ask, json).await
        }
    }
}

async fn ps(app: &AppHandle, json: bool) -> Result<(), Failure> {
    let answer = call(app, &vm::Jobs::default()).await?;
    if json {
        print_json(&answer);
        return Ok(());
    }
    match &answer {
        JobsAnswer::All { jobs } => jobs.iter().for_each(|job| outln!("{}", job_line(job))),
        JobsAnswer::One(detail) => outln!("{}", job_line(&detail.summary)),
    }
    Ok(())
}

fn job_line(job: &JobSummary) -> String {
    let detail = match &job.status {
        JobState::Finished { ending, code, .. } => format!(
            "finished: {} {}",
            name_of(ending),
            code.map(|c| format!("(code {c})")).unwrap_or_default()
        ),
        JobState::Queued => "queued".to_owned(),
        JobState::Running => "running".to_owned(),
    };
    format!("{}  {:<30} {detail}", job.job, job.path)
}

fn parse_env(pairs: &[String]) -> Result<HashMap<String, String>, Failure> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => Ok((key.to_owned(), value.to_owned())),
            None => Err(Failure::Usage(format!("--env {pair:?} is not NAME=VALUE"))),
        })
        .collect()
}

/// Start the program with our stdin as its input, print its output, end with its exit code.
///
/// Piped input goes in `vm.run` itself when it fits, so a program that ends at once still
/// had it, and nothing is sent after it ended. More goes in with `vm.stdin` while the
/// output is printed.
async fn run_program(
    app: &AppHandle,
    file: Option<&str>,
    mut ask: vm::Run,
    json: bool,
) -> Result<(), Failure> {
    // All of it before anything runs: input that is not text is refused up front.
    let input = if std::io::stdin().is_terminal() {
        None
    } else {
        Some(read_stdin().await?)
    };
    if let Some(file) = file {
        ask.path = Some(upload_if_local(app, file).await?);
    }
    let rest = match &input {
        Some(text) => {
            let (first, rest) = text.split_at(text.floor_char_boundary(RUN_STDIN_MAX));
            ask.stdin = Some(first.to_owned());
            ask.keep_stdin_open = !rest.is_empty();
            rest
        }
        None => "",
    };
    // Subscribe first: no output can be missed between the start and the subscription.
    let mut events = app
        .subscribe(vm::JobEvents::PATTERN)
        .await
        .map_err(Failure::from_client)?;
    let started = call(app, &ask).await?;
    let job = started.job.as_str();
    if rest.is_empty() {
        return follow(&mut events, job, json).await;
    }
    // A write to stdin waits for the program to read, but never past the job's end.
    let within = Duration::from_millis(started.limits.timeout_ms) + Duration::from_secs(10);
    let feed = feed_stdin(app, job, rest, within);
    let follow = follow(&mut events, job, json);
    tokio::pin!(feed, follow);
    let mut fed = false;
    let mut feed_failure = None;
    loop {
        tokio::select! {
            result = &mut feed, if !fed => {
                fed = true;
                if let Err(failure) = result {
                    // The program would go on with part of its input: stop it, say why.
                    let _ = app.request(&vm::Kill { job: job.to_owned() }).await;
                    feed_failure = Some(failure);
                }
            }
            ended = &mut follow => return feed_failure.map_or(ended, Err),
        }
    }
}

async fn read_stdin() -> Result<String, Failure> {
    let read = tokio::task::spawn_blocking(|| {
        let mut input = Vec::new();
        std::io::stdin().read_to_end(&mut input).map(|_| input)
    })
    .await
    .map_err(|e| Failure::Usage(format!("stdin: {e}")))?;
    let input = read.map_err(|e| Failure::Usage(format!("stdin: {e}")))?;
    String::from_utf8(input).map_err(|_| Failure::Usage("stdin must be UTF-8 text".into()))
}

/// A local file is uploaded to `/.aether/run/` first; anything else names a file in the VFS.
async fn upload_if_local(app: &AppHandle, file: &str) -> Result<String, Failure> {
    if !Path::new(file).is_file() {
        return Ok(file.to_owned());
    }
    let name = Path::new(file)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("program.wasm");
    let remote = format!("/.aether/run/{name}");
    let bytes = std::fs::read(file).map_err(|e| Failure::io(Path::new(file), e))?;
    let write = vfs::Write {
        path: remote.clone(),
        data: BASE64.encode(bytes),
        encoding: vfs::Encoding::Base64,
        parents: true,
        ..Default::default()
    };
    call(app, &write).await?;
    Ok(remote)
}

/// Send the rest of our stdin to the job in chunks, the last one closing it. A `conflict`
/// means the program no longer reads its input (it ended, or closed it): nothing is lost
/// by stopping, its output and exit code still come.
async fn feed_stdin(
    app: &AppHandle,
    job: &str,
    mut rest: &str,
    within: Duration,
) -> Result<(), Failure> {
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.floor_char_boundary(STDIN_CHUNK));
        let ask = vm::Stdin {
            job: job.to_owned(),
            data: chunk.to_owned(),
            close: tail.is_empty(),
        };
        match app.request_within(&ask, Some(within)).await {
            Ok(answer) if !answer.open => return Ok(()),
            Ok(_) => rest = tail,
            Err(e) if e.code() == Some(ErrorCode::Conflict) => return Ok(()),
            Err(e) => return Err(Failure::from_client(e)),
        }
    }
    Ok(())
}

fn decode<T: DeserializeOwned>(msg: &Msg) -> Result<T, Failure> {
    Subscription::decode(msg).map_err(Failure::from_client)
}

/// Print the job's output as it arrives; end with its exit code.
async fn follow(events: &mut Subscription, job: &str, json: bool) -> Result<(), Failure> {
    while let Some(msg) = events.next().await {
        let kind = match vm::JobEvents::parse(&msg.topic) {
            Some(event) if event.id == job => event.kind.as_str(),
            _ => continue,
        };
        if json {
            let data: Value = serde_json::from_str(msg.data.get()).unwrap_or(Value::Null);
            outln!("{}", json!({ "event": kind, "data": data }));
        }
        match kind {
            "stdout" | "stderr" if !json => {
                let chunk: vm::OutputChunk = decode(&msg)?;
                if write_output(&chunk).is_err() {
                    // A closed pipe (e.g. `| head`): stop quietly.
                    return Ok(());
                }
            }
            "exit" => return exit_result(&decode(&msg)?),
            _ => {}
        }
    }
    Err(Failure::Connect("the daemon closed the connection".into()))
}

fn write_output(chunk: &vm::OutputChunk) -> std::io::Result<()> {
    let bytes = if chunk.encoding == "base64" {
        BASE64.decode(&chunk.data).unwrap_or_default()
    } else {
        chunk.data.as_bytes().to_vec()
    };
    if chunk.stream == "stderr" {
        std::io::stderr().write_all(&bytes)
    } else {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&bytes).and_then(|_| stdout.flush())
    }
}

/// The program's exit code becomes ours; any other ending is an error that says why.
fn exit_result(exit: &vm::Exit) -> Result<(), Failure> {
    match (exit.ending, exit.code) {
        (Ending::Exited, Some(0)) => Ok(()),
        (Ending::Exited, Some(code)) => Err(Failure::Program(code.clamp(1, 255) as u8)),
        (ending, _) => Err(Failure::Daemon(ErrorBody::new(
            ErrorCode::Cancelled,
            format!(
                "the program ended: {} ({})",
                name_of(&ending),
                exit.error.as_deref().unwrap_or("no detail")
            ),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(ending: Ending, code: Option<i32>) -> vm::Exit {
        vm::Exit {
            job: "j1".into(),
            ending,
            code,
            error: Some("no exit within 300 ms".into()),
            micros: 1,
        }
    }

    #[test]
    fn the_programs_exit_code_becomes_aetherctls() {
        assert!(exit_result(&exit(Ending::Exited, Some(0))).is_ok());
        assert!(matches!(
            exit_result(&exit(Ending::Exited, Some(3))),
            Err(Failure::Program(3))
        ));
        assert!(matches!(
            exit_result(&exit(Ending::Exited, Some(-1))),
            Err(Failure::Program(1))
        ));
        match exit_result(&exit(Ending::Timeout, None)) {
            Err(Failure::Daemon(body)) => {
                assert_eq!(body.code, ErrorCode::Cancelled);
                assert!(body.msg.contains("timeout"), "{}", body.msg);
            }
            other => panic!("{other:?}"),
        }
    }
}
