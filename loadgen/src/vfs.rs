//! File system speeds through the WebSocket on loopback: bulk transfer each way,
//! listing a large directory, and full-text search.

use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Value, json};

use aether_proto::client::{AetherClient, AppHandle, ClientOptions, Endpoint};
use aether_proto::frame::{Auth, to_data};

const CHUNK: usize = 1 << 20;
const WINDOW: usize = 8;
const BULK: usize = 256 << 20;
const FILES: usize = 10_000;

async fn call(app: &AppHandle, topic: &str, data: Value) -> anyhow::Result<Value> {
    let raw = app
        .request_raw(topic, to_data(&data), Some(Duration::from_secs(60)))
        .await?;
    Ok(serde_json::from_str(raw.get())?)
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

pub async fn run(port: u16, token: &str) -> anyhow::Result<()> {
    let endpoint =
        Endpoint::parse(&format!("ws://127.0.0.1:{port}/")).map_err(anyhow::Error::msg)?;
    let auth = Auth::Token {
        token: token.to_owned(),
    };
    let client = AetherClient::connect(&endpoint, auth, ClientOptions::default()).await?;
    let files = client.app("files");
    bulk(&files).await?;
    listing(&files).await?;
    search(&files).await?;
    Ok(())
}

/// Upload then download 256 MiB in 1 MiB base64 chunks, 8 in flight.
async fn bulk(files: &AppHandle) -> anyhow::Result<()> {
    let data: Vec<u8> = (0..BULK).map(|i| (i * 7 % 251) as u8).collect();
    let started = Instant::now();
    let first = json!({ "path": "/bulk.bin", "data": BASE64.encode(&data[..CHUNK]), "encoding": "base64", "more": true });
    let upload = call(files, "vfs.write", first).await?["upload"]
        .as_str()
        .context("no upload id")?
        .to_owned();
    let mut in_flight = FuturesUnordered::new();
    for offset in (CHUNK..BULK).step_by(CHUNK) {
        let chunk = json!({ "path": "/bulk.bin", "upload": upload, "offset": offset, "encoding": "base64",
                            "data": BASE64.encode(&data[offset..offset + CHUNK]), "more": true });
        in_flight.push(call(files, "vfs.write", chunk));
        if in_flight.len() >= WINDOW {
            in_flight.next().await.context("chunk")??;
        }
    }
    while let Some(done) = in_flight.next().await {
        done?;
    }
    let commit =
        json!({ "path": "/bulk.bin", "upload": upload, "offset": BULK, "data": "", "more": false });
    call(files, "vfs.write", commit).await?;
    let up = started.elapsed();

    let started = Instant::now();
    let mut received = Vec::with_capacity(BULK);
    let mut pending = std::collections::VecDeque::new();
    let mut next = 0;
    loop {
        while pending.len() < WINDOW && next < BULK {
            let read = json!({ "path": "/bulk.bin", "offset": next, "length": CHUNK, "encoding": "base64" });
            let files = files.clone();
            pending.push_back(tokio::spawn(
                async move { call(&files, "vfs.read", read).await },
            ));
            next += CHUNK;
        }
        let Some(task) = pending.pop_front() else {
            break;
        };
        let answer = task.await??;
        received.extend(BASE64.decode(answer["data"].as_str().context("no data")?)?);
    }
    let down = started.elapsed();
    anyhow::ensure!(
        received == data,
        "the downloaded file differs from the uploaded one"
    );
    let mb = BULK as f64 / 1e6;
    println!(
        "vfs bulk: 256 MiB up in {:.2} s = {:.0} MB/s; down in {:.2} s = {:.0} MB/s (verified byte for byte)",
        up.as_secs_f64(),
        mb / up.as_secs_f64(),
        down.as_secs_f64(),
        mb / down.as_secs_f64()
    );
    Ok(())
}

const WORDS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "report", "budget", "design",
    "kernel", "socket", "window", "editor", "agent",
];

/// Some plain text with a word mix that differs per file.
fn text(i: usize) -> String {
    let mut out = String::new();
    let mut x = i as u64 * 2_654_435_761 + 1;
    for line in 0..20 {
        for _ in 0..12 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.push_str(WORDS[(x % WORDS.len() as u64) as usize]);
            out.push(' ');
        }
        out.push_str(&format!("line{line} file{i}\n"));
    }
    out
}

/// Write 10,000 files into one directory, then time listing it.
async fn listing(files: &AppHandle) -> anyhow::Result<()> {
    call(files, "vfs.mkdir", json!({ "path": "/many" })).await?;
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    for i in 0..FILES {
        in_flight.push(call(
            files,
            "vfs.write",
            json!({ "path": format!("/many/f{i:05}.txt"), "data": text(i) }),
        ));
        if in_flight.len() >= 64 {
            in_flight.next().await.context("write")??;
        }
    }
    while let Some(done) = in_flight.next().await {
        done?;
    }
    let wrote = started.elapsed();
    let mut times = vec![];
    for _ in 0..20 {
        let started = Instant::now();
        let answer = call(files, "vfs.list", json!({ "path": "/many" })).await?;
        times.push(started.elapsed());
        anyhow::ensure!(
            answer["entries"].as_array().map(Vec::len) == Some(FILES),
            "listing is short"
        );
    }
    times.sort();
    println!(
        "vfs list: {FILES} files written in {:.1} s ({:.0} writes/s); listing them: p50 {:.1} ms, max {:.1} ms (20 runs)",
        wrote.as_secs_f64(),
        FILES as f64 / wrote.as_secs_f64(),
        percentile(&times, 0.5),
        percentile(&times, 1.0)
    );
    Ok(())
}

/// Search the 10,000 files once the index has caught up.
async fn search(files: &AppHandle) -> anyhow::Result<()> {
    // The index commits shortly after a burst of writes: wait until every file is searchable.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let answer = call(
            files,
            "vfs.search",
            json!({ "query": "line19", "limit": 200 }),
        )
        .await?;
        if answer["hits"].as_array().map(Vec::len) == Some(200) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the index did not catch up within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let queries = [
        "kernel",
        "budget AND report",
        "\"alpha bravo\"",
        "socket OR window",
        "file4242",
        "zulu -xray",
    ];
    let mut times = vec![];
    for round in 0..20 {
        for query in queries {
            let started = Instant::now();
            let answer = call(files, "vfs.search", json!({ "query": query, "limit": 20 })).await?;
            times.push(started.elapsed());
            if round == 0 && query == "file4242" {
                let top = &answer["hits"][0];
                anyhow::ensure!(top["path"] == "/many/f04242.txt", "wrong top hit: {top}");
            }
        }
    }
    times.sort();
    println!(
        "vfs search over {FILES} files: p50 {:.1} ms, p99 {:.1} ms ({} queries, 20 hits each with line and snippet)",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.len()
    );
    Ok(())
}
