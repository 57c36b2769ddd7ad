//! `aetherctl fs`: your files in the daemon, from a shell.
//!
//! Large transfers go in chunks, several in flight at once; a progress bar
//! shows on a terminal. Downloads pin the version of the first chunk, so a file
//! that changes mid-download is reported instead of saved half old, half new.

use std::collections::VecDeque;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Subcommand;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use indicatif::{ProgressBar, ProgressStyle};

use aether_proto::api::vfs::{self, Encoding, Kind, WriteAnswer};
use aether_proto::client::AppHandle;
use aether_proto::{ErrorBody, ErrorCode};

use crate::output::{format_ms, name_of, print_answer, print_json};
use crate::{Failure, call};

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
        /// Rank by meaning as well as by words (needs an AI provider with embeddings).
        #[arg(long)]
        semantic: bool,
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

pub async fn run(command: &FsCommand, app: &AppHandle, json: bool) -> Result<(), Failure> {
    match command {
        FsCommand::Ls { path } => ls(app, path, json).await?,
        FsCommand::Cat { path } => {
            let mut stdout = std::io::stdout().lock();
            let mut sink = |bytes: &[u8]| stdout.write_all(bytes);
            download(app, path, &mut sink, &ProgressBar::hidden()).await?;
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
            let answer = upload(app, local, remote, if_version.clone(), *parents).await?;
            print_answer(json, &answer, |answer| match answer {
                WriteAnswer::Committed { size, version, .. } => {
                    format!("{remote} ({size} bytes, version {version})")
                }
                WriteAnswer::Uploading { received, .. } => {
                    format!("{remote} ({received} bytes received, not committed)")
                }
            });
        }
        FsCommand::Get { remote, local } => get(app, remote, local).await?,
        FsCommand::Rm { path, recursive } => {
            let ask = vfs::Remove {
                path: path.clone(),
                recursive: *recursive,
            };
            let removed = call(app, &ask).await?;
            print_answer(json, &removed, |_| format!("removed {path}"));
        }
        FsCommand::Mv {
            from,
            to,
            overwrite,
        } => {
            let ask = vfs::Move {
                from: from.clone(),
                to: to.clone(),
                overwrite: *overwrite,
            };
            let moved = call(app, &ask).await?;
            print_answer(json, &moved, |_| format!("{from} -> {to}"));
        }
        FsCommand::Cp {
            from,
            to,
            overwrite,
        } => {
            let ask = vfs::Copy {
                from: from.clone(),
                to: to.clone(),
                overwrite: *overwrite,
            };
            let copied = call(app, &ask).await?;
            print_answer(json, &copied, |_| format!("{from} -> {to}"));
        }
        FsCommand::Mkdir { path, parents } => {
            let ask = vfs::Mkdir {
                path: path.clone(),
                parents: *parents,
            };
            let made = call(app, &ask).await?;
            print_answer(json, &made, |_| format!("{path}/"));
        }
        FsCommand::Stat { path } => stat(app, path, json).await?,
        FsCommand::Search {
            query,
            limit,
            semantic,
        } => search(app, query, *limit, *semantic, json).await?,
        FsCommand::Usage => {
            let usage = call(app, &vfs::Usage {}).await?;
            print_answer(json, &usage, |usage| {
                format!(
                    "{} of {} used, {} of {} files",
                    indicatif::HumanBytes(usage.bytes),
                    indicatif::HumanBytes(usage.quota_bytes),
                    usage.files,
                    usage.quota_files
                )
            });
        }
        FsCommand::Watch { count } => crate::bus::subscribe(app, vfs::EVENTS, *count).await?,
    }
    Ok(())
}

async fn ls(app: &AppHandle, path: &str, json: bool) -> Result<(), Failure> {
    let listing = call(app, &vfs::List { path: path.into() }).await?;
    if json {
        print_json(&listing);
        return Ok(());
    }
    for entry in &listing.entries {
        let (size, suffix) = match entry.kind {
            Kind::Dir => ("-".to_owned(), "/"),
            _ => (entry.size.to_string(), ""),
        };
        outln!(
            "{size:>12}  {}  {}{suffix}",
            format_ms(entry.modified_ms),
            entry.name
        );
    }
    Ok(())
}

async fn stat(app: &AppHandle, path: &str, json: bool) -> Result<(), Failure> {
    let stat = call(app, &vfs::Stat { path: path.into() }).await?;
    if json {
        print_json(&stat);
        return Ok(());
    }
    outln!("path      {}", stat.path);
    outln!("kind      {}", name_of(&stat.kind));
    outln!("size      {}", stat.size);
    outln!("modified  {}", format_ms(stat.modified_ms));
    if let Some(version) = &stat.version {
        outln!("version   {version}");
    }
    Ok(())
}

async fn search(
    app: &AppHandle,
    query: &str,
    limit: usize,
    semantic: bool,
    json: bool,
) -> Result<(), Failure> {
    let ask = vfs::Search {
        query: query.into(),
        limit: Some(limit),
        semantic,
    };
    let found = call(app, &ask).await?;
    if json {
        print_json(&found);
        return Ok(());
    }
    if let Some(note) = &found.semantic {
        eprintln!("{}", note.note);
    }
    for hit in &found.hits {
        let line = hit.line.map(|l| format!(":{l}")).unwrap_or_default();
        outln!("{}{line}: {}", hit.path, hit.snippet);
    }
    Ok(())
}

/// Download to a local file (through a temp file beside it), or to stdout for `-`.
async fn get(app: &AppHandle, remote: &str, local: &str) -> Result<(), Failure> {
    if local == "-" {
        let mut stdout = std::io::stdout().lock();
        let mut sink = |bytes: &[u8]| stdout.write_all(bytes);
        return download(app, remote, &mut sink, &ProgressBar::hidden()).await;
    }
    let target = PathBuf::from(local);
    let temp = temp_beside(&target);
    let mut file = std::fs::File::create(&temp).map_err(|e| Failure::io(&temp, e))?;
    let stat = call(
        app,
        &vfs::Stat {
            path: remote.into(),
        },
    )
    .await?;
    let bar = progress(stat.size, "get");
    let result = download(app, remote, &mut |b| file.write_all(b), &bar).await;
    bar.finish_and_clear();
    if let Err(e) = result.and_then(|_| file.sync_all().map_err(|e| Failure::io(&temp, e))) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::rename(&temp, &target).map_err(|e| Failure::io(&target, e))
}

fn temp_beside(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.aether-part"))
}

/// One chunk of a file, as base64.
fn read_chunk(path: &str, offset: u64, if_version: Option<String>) -> vfs::Read {
    vfs::Read {
        path: path.to_owned(),
        offset,
        length: Some(CHUNK),
        encoding: Encoding::Base64,
        if_version,
    }
}

/// Read a file chunk by chunk, pinned to the version of the first chunk.
async fn download(
    app: &AppHandle,
    path: &str,
    sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    bar: &ProgressBar,
) -> Result<(), Failure> {
    let first = call(app, &read_chunk(path, 0, None)).await?;
    let size = first.size;
    let mut write = |answer: &vfs::ReadAnswer| -> Result<u64, Failure> {
        let bytes = BASE64
            .decode(&answer.data)
            .map_err(|e| daemon_err(format!("the daemon sent bad base64: {e}")))?;
        sink(&bytes).map_err(|e| Failure::Usage(format!("writing the output: {e}")))?;
        bar.inc(bytes.len() as u64);
        Ok(bytes.len() as u64)
    };
    let mut offset = write(&first)?;
    if first.eof {
        return Ok(());
    }
    // Keep WINDOW reads in flight; write them in order as they complete.
    let mut pending = VecDeque::new();
    let mut next = offset;
    loop {
        while pending.len() < WINDOW && next < size {
            let ask = read_chunk(path, next, Some(first.version.clone()));
            let app = app.clone();
            pending.push_back(tokio::spawn(async move { call(&app, &ask).await }));
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
pub async fn upload(
    app: &AppHandle,
    local: &str,
    remote: &str,
    if_version: Option<String>,
    parents: bool,
) -> Result<WriteAnswer, Failure> {
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
    let ask = vfs::Write {
        path: remote.to_owned(),
        data: BASE64.encode(&first),
        encoding: Encoding::Base64,
        if_version,
        parents,
        more: first.len() == CHUNK,
        ..Default::default()
    };
    let started = call(app, &ask).await?;
    let upload = match started {
        WriteAnswer::Uploading { upload, .. } => upload,
        committed @ WriteAnswer::Committed { .. } => return Ok(committed),
    };
    let bar = progress(total, "put");
    bar.inc(first.len() as u64);
    let mut offset = first.len() as u64;
    let mut in_flight = FuturesUnordered::new();
    loop {
        let chunk = read_chunk(&mut reader)?;
        if chunk.is_empty() {
            break;
        }
        let len = chunk.len() as u64;
        let ask = vfs::Write {
            path: remote.to_owned(),
            data: BASE64.encode(&chunk),
            encoding: Encoding::Base64,
            upload: Some(upload.clone()),
            offset: Some(offset),
            more: true,
            ..Default::default()
        };
        let app = app.clone();
        in_flight.push(async move { call(&app, &ask).await.map(|_| len) });
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
    let commit = vfs::Write {
        path: remote.to_owned(),
        upload: Some(upload),
        offset: Some(offset),
        ..Default::default()
    };
    call(app, &commit).await
}
