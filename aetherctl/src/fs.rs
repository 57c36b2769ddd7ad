//! `aetherctl fs`: your files in the daemon, from a shell.
//!
//! Large transfers go in chunks, several in flight at once; a progress bar
//! shows on a terminal. Downloads pin the version of the first chunk, so a file
//! that changes mid-download is reported instead of saved half old, half new.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Subcommand;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use aether_proto::client::AppHandle;
use aether_proto::{ErrorBody, ErrorCode};

use crate::Failure;

/// Raw bytes per chunk (base64 makes a frame a third larger).
const CHUNK: usize = 1 << 20;
/// Chunks in flight at once.
const WINDOW: usize = 4;

#[derive(Subcommand)]
pub enum FsCommand {
    /// List a directory.
    Ls {
        #[arg(default_value = "/")]
        path: String,
    },
    /// Print a file to stdout.
    Cat { path: String },
    /// Upload a local file (`-` for stdin) to a path.
    Put {
        local: String,
        remote: String,
        /// Replace only if the file is still at this version.
        #[arg(long)]
        if_version: Option<String>,
        /// Create missing parent directories.
        #[arg(short, long)]
        parents: bool,
    },
    /// Download a file to a local path (`-` for stdout).
    Get { remote: String, local: String },
    /// Remove a file, or a directory with -r.
    Rm {
        path: String,
        #[arg(short, long)]
        recursive: bool,
    },
    /// Move or rename.
    Mv {
        from: String,
        to: String,
        #[arg(long)]
        overwrite: bool,
    },
    /// Copy a file or a directory tree.
    Cp {
        from: String,
        to: String,
        #[arg(long)]
        overwrite: bool,
    },
    /// Make a directory.
    Mkdir {
        path: String,
        #[arg(short, long)]
        parents: bool,
    },
    /// Size, kind, modification time and version.
    Stat { path: String },
    /// Full-text search over your files (tantivy query syntax: AND, OR, -word, "a phrase").
    Search {
        query: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// How much of your quota your files use.
    Usage,
    /// Print file events as JSON lines until Ctrl-C or --count.
    Watch {
        #[arg(long)]
        count: Option<u64>,
    },
}

fn daemon_err(msg: impl Into<String>) -> Failure {
    Failure::Daemon(ErrorBody::new(ErrorCode::Internal, msg))
}

async fn call(
    app: &AppHandle,
    topic: &str,
    data: Value,
    timeout: Duration,
) -> Result<Value, Failure> {
    crate::request(app, topic, data, timeout).await
}

fn progress(total: u64, label: &str) -> ProgressBar {
    // Only on a terminal, and only when it is worth looking at.
    if !std::io::stderr().is_terminal() || total < 4 * CHUNK as u64 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_owned());
    bar
}

pub async fn run(
    command: &FsCommand,
    app: &AppHandle,
    json_out: bool,
    timeout: Duration,
) -> Result<(), Failure> {
    match command {
        FsCommand::Ls { path } => {
            let answer = call(app, "vfs.list", json!({ "path": path }), timeout).await?;
            if json_out {
                println!("{answer}");
                return Ok(());
            }
            for entry in answer["entries"].as_array().into_iter().flatten() {
                let kind = entry["kind"].as_str().unwrap_or("?");
                let suffix = if kind == "dir" { "/" } else { "" };
                println!(
                    "{:>12}  {}  {}{suffix}",
                    if kind == "dir" {
                        "-".into()
                    } else {
                        entry["size"].to_string()
                    },
                    format_ms(entry["modified_ms"].as_i64().unwrap_or(0)),
                    entry["name"].as_str().unwrap_or("?")
                );
            }
        }
        FsCommand::Cat { path } => {
            let mut stdout = std::io::stdout().lock();
            download(
                app,
                path,
                timeout,
                &mut |bytes| stdout.write_all(bytes),
                &ProgressBar::hidden(),
            )
            .await?;
            stdout
                .flush()
                .map_err(|e| Failure::Usage(format!("stdout: {e}")))?;
        }
        FsCommand::Put {
            local,
            remote,
            if_version,
            parents,
        } => {
            let answer = upload(app, local, remote, if_version.clone(), *parents, timeout).await?;
            if json_out {
                println!("{answer}");
            } else {
                println!(
                    "{} ({} bytes, version {})",
                    remote,
                    answer["size"],
                    answer["version"].as_str().unwrap_or("?")
                );
            }
        }
        FsCommand::Get { remote, local } => {
            if local == "-" {
                let mut stdout = std::io::stdout().lock();
                download(
                    app,
                    remote,
                    timeout,
                    &mut |b| stdout.write_all(b),
                    &ProgressBar::hidden(),
                )
                .await?;
                return Ok(());
            }
            let target = PathBuf::from(local);
            let temp = temp_beside(&target);
            let mut file = std::fs::File::create(&temp).map_err(|e| Failure::io(&temp, e))?;
            let stat = call(app, "vfs.stat", json!({ "path": remote }), timeout).await?;
            let bar = progress(stat["size"].as_u64().unwrap_or(0), "get");
            let result = download(app, remote, timeout, &mut |b| file.write_all(b), &bar).await;
            bar.finish_and_clear();
            if let Err(e) = result.and_then(|_| file.sync_all().map_err(|e| Failure::io(&temp, e)))
            {
                let _ = std::fs::remove_file(&temp);
                return Err(e);
            }
            std::fs::rename(&temp, &target).map_err(|e| Failure::io(&target, e))?;
        }
        FsCommand::Rm { path, recursive } => {
            let answer = call(
                app,
                "vfs.remove",
                json!({ "path": path, "recursive": recursive }),
                timeout,
            )
            .await?;
            print_answer(json_out, &answer, || format!("removed {path}"));
        }
        FsCommand::Mv {
            from,
            to,
            overwrite,
        } => {
            let answer = call(
                app,
                "vfs.move",
                json!({ "from": from, "to": to, "overwrite": overwrite }),
                timeout,
            )
            .await?;
            print_answer(json_out, &answer, || format!("{from} -> {to}"));
        }
        FsCommand::Cp {
            from,
            to,
            overwrite,
        } => {
            let answer = call(
                app,
                "vfs.copy",
                json!({ "from": from, "to": to, "overwrite": overwrite }),
                timeout,
            )
            .await?;
            print_answer(json_out, &answer, || format!("{from} -> {to}"));
        }
        FsCommand::Mkdir { path, parents } => {
            let answer = call(
                app,
                "vfs.mkdir",
                json!({ "path": path, "parents": parents }),
                timeout,
            )
            .await?;
            print_answer(json_out, &answer, || format!("{path}/"));
        }
        FsCommand::Stat { path } => {
            let answer = call(app, "vfs.stat", json!({ "path": path }), timeout).await?;
            if json_out {
                println!("{answer}");
            } else {
                println!("path      {}", answer["path"].as_str().unwrap_or("?"));
                println!("kind      {}", answer["kind"].as_str().unwrap_or("?"));
                println!("size      {}", answer["size"]);
                println!(
                    "modified  {}",
                    format_ms(answer["modified_ms"].as_i64().unwrap_or(0))
                );
                if let Some(version) = answer["version"].as_str() {
                    println!("version   {version}");
                }
            }
        }
        FsCommand::Search { query, limit } => {
            let answer = call(
                app,
                "vfs.search",
                json!({ "query": query, "limit": limit }),
                timeout,
            )
            .await?;
            if json_out {
                println!("{answer}");
                return Ok(());
            }
            for hit in answer["hits"].as_array().into_iter().flatten() {
                let line = hit["line"]
                    .as_u64()
                    .map(|l| format!(":{l}"))
                    .unwrap_or_default();
                println!(
                    "{}{line}: {}",
                    hit["path"].as_str().unwrap_or("?"),
                    hit["snippet"].as_str().unwrap_or_default()
                );
            }
        }
        FsCommand::Usage => {
            let answer = call(app, "vfs.usage", json!({}), timeout).await?;
            if json_out {
                println!("{answer}");
                return Ok(());
            }
            let number = |key: &str| answer[key].as_u64().unwrap_or(0);
            println!(
                "{} of {} used, {} of {} files",
                indicatif::HumanBytes(number("bytes")),
                indicatif::HumanBytes(number("quota_bytes")),
                number("files"),
                number("quota_files")
            );
        }
        FsCommand::Watch { count } => crate::subscribe(app, "vfs.events.>", *count).await?,
    }
    Ok(())
}

fn print_answer(json_out: bool, answer: &Value, human: impl FnOnce() -> String) {
    if json_out {
        println!("{answer}");
    } else {
        println!("{}", human());
    }
}

fn temp_beside(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.aether-part"))
}

/// UTC, to the second.
fn format_ms(ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Read a file chunk by chunk, pinned to the version of the first chunk.
async fn download(
    app: &AppHandle,
    path: &str,
    timeout: Duration,
    sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    bar: &ProgressBar,
) -> Result<(), Failure> {
    let first = call(
        app,
        "vfs.read",
        json!({ "path": path, "length": CHUNK, "encoding": "base64" }),
        timeout,
    )
    .await?;
    let size = first["size"].as_u64().unwrap_or(0);
    let version = first["version"].as_str().unwrap_or_default().to_owned();
    let mut write = |answer: &Value| -> Result<u64, Failure> {
        let bytes = BASE64
            .decode(answer["data"].as_str().unwrap_or_default())
            .map_err(|e| daemon_err(format!("the daemon sent bad base64: {e}")))?;
        sink(&bytes).map_err(|e| Failure::Usage(format!("writing the output: {e}")))?;
        bar.inc(bytes.len() as u64);
        Ok(bytes.len() as u64)
    };
    let mut offset = write(&first)?;
    if first["eof"] == true {
        return Ok(());
    }
    // Keep WINDOW reads in flight; write them in order as they complete.
    let mut pending = std::collections::VecDeque::new();
    let mut next = offset;
    loop {
        while pending.len() < WINDOW && next < size {
            let request = json!({ "path": path, "offset": next, "length": CHUNK, "encoding": "base64", "if_version": version });
            let app = app.clone();
            pending.push_back(tokio::spawn(async move {
                call(&app, "vfs.read", request, timeout).await
            }));
            next += CHUNK as u64;
        }
        let Some(task) = pending.pop_front() else {
            break;
        };
        let answer = task.await.map_err(|e| daemon_err(e.to_string()))??;
        offset += write(&answer)?;
    }
    if offset != size {
        return Err(daemon_err(format!(
            "expected {size} bytes, received {offset}"
        )));
    }
    Ok(())
}

/// Write a file: in one frame when small, else as a pipelined chunked upload.
async fn upload(
    app: &AppHandle,
    local: &str,
    remote: &str,
    if_version: Option<String>,
    parents: bool,
    timeout: Duration,
) -> Result<Value, Failure> {
    let mut reader: Box<dyn Read> = if local == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(local).map_err(|e| Failure::io(Path::new(local), e))?)
    };
    let total = if local == "-" {
        0
    } else {
        std::fs::metadata(local).map(|m| m.len()).unwrap_or(0)
    };
    let read_chunk = |reader: &mut dyn Read| -> Result<Vec<u8>, Failure> {
        let mut buf = Vec::with_capacity(CHUNK);
        reader
            .take(CHUNK as u64)
            .read_to_end(&mut buf)
            .map_err(|e| Failure::Usage(format!("{local}: {e}")))?;
        Ok(buf)
    };
    let first = read_chunk(&mut reader)?;
    let base = json!({ "path": remote, "if_version": if_version, "parents": parents, "encoding": "base64" });
    if first.len() < CHUNK {
        let mut request = base;
        request["data"] = json!(BASE64.encode(&first));
        return call(app, "vfs.write", request, timeout).await;
    }
    let bar = progress(total, "put");
    let mut request = base;
    request["data"] = json!(BASE64.encode(&first));
    request["more"] = json!(true);
    let started = call(app, "vfs.write", request, timeout).await?;
    let upload = started["upload"].as_str().unwrap_or_default().to_owned();
    bar.inc(first.len() as u64);
    let mut offset = first.len() as u64;
    let mut in_flight = FuturesUnordered::new();
    loop {
        let chunk = read_chunk(&mut reader)?;
        if chunk.is_empty() {
            break;
        }
        let len = chunk.len() as u64;
        let request = json!({ "path": remote, "upload": upload, "offset": offset, "data": BASE64.encode(&chunk), "encoding": "base64", "more": true });
        let app = app.clone();
        in_flight.push(async move { call(&app, "vfs.write", request, timeout).await.map(|_| len) });
        offset += len;
        if in_flight.len() >= WINDOW
            && let Some(done) = in_flight.next().await
        {
            bar.inc(done?);
        }
    }
    while let Some(done) = in_flight.next().await {
        bar.inc(done?);
    }
    bar.finish_and_clear();
    // Every chunk is in: an empty last chunk commits the file.
    let commit =
        json!({ "path": remote, "upload": upload, "offset": offset, "data": "", "more": false });
    call(app, "vfs.write", commit, timeout).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::format_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::format_ms(1_795_557_269_453), "2026-11-24T21:54:29Z");
    }
}
