//! Compute speeds over the WebSocket: warm start to the first stdout byte at
//! the client, a runaway loop's kill latency, stdout throughput, and that a
//! restarted daemon does not recompile a known module.

use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use aether_proto::api::{Event as _, vm};
use aether_proto::client::{AetherClient, AppHandle, ClientOptions, Endpoint, Subscription};
use aether_proto::frame::{Auth, to_data};

use crate::DaemonProcess;

fn fixture(name: &str) -> anyhow::Result<Vec<u8>> {
    let path = format!("{}/../guests/wat/{name}.wat", env!("CARGO_MANIFEST_DIR"));
    Ok(wat::parse_file(&path)?)
}

async fn call(app: &AppHandle, topic: &str, data: Value) -> anyhow::Result<Value> {
    let raw = app
        .request_raw(topic, to_data(&data), Some(Duration::from_secs(60)))
        .await?;
    Ok(serde_json::from_str(raw.get())?)
}

async fn connect(
    port: u16,
    token: &str,
) -> anyhow::Result<(AetherClient, AppHandle, Subscription)> {
    let endpoint =
        Endpoint::parse(&format!("ws://127.0.0.1:{port}/")).map_err(anyhow::Error::msg)?;
    let client = AetherClient::connect(
        &endpoint,
        Auth::Token {
            token: token.to_owned(),
        },
        ClientOptions::default(),
    )
    .await?;
    let app = client.app("cli");
    let events = app.subscribe("vm.job.>").await?;
    Ok((client, app, events))
}

/// Wait for a job's events; returns (first stdout arrival, exit arrival, stdout bytes, exit data).
async fn follow(
    events: &mut Subscription,
    job: &str,
) -> anyhow::Result<(Option<Instant>, Instant, usize, Value)> {
    let (mut first, mut bytes) = (None, 0);
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), events.next_msg())
            .await
            .context("no event within 60 s")?
            .context("subscription closed")?;
        let kind = match vm::JobEvents::parse(&msg.topic) {
            Some(event) if event.id == job => event.kind.as_str(),
            _ => continue,
        };
        let data: Value = serde_json::from_str(msg.data.get())?;
        match kind {
            "stdout" => {
                first.get_or_insert_with(Instant::now);
                bytes += data["data"].as_str().map_or(0, str::len);
            }
            "exit" => return Ok((first, Instant::now(), bytes, data)),
            _ => {}
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub async fn run() -> anyhow::Result<()> {
    // The module cache must survive a restart, so this scenario restarts its own daemon.
    let mut daemon = DaemonProcess::start(None)?;
    let token = mint(&daemon).await?;
    let (_client, app, mut events) = connect(daemon.port, &token).await?;
    for name in ["hello", "spin", "blast"] {
        let write = json!({ "path": format!("/bin/{name}.wasm"), "data": BASE64.encode(fixture(name)?), "encoding": "base64", "parents": true });
        call(&app, "vfs.write", write).await?;
    }

    // Warm start: the module is compiled once, then each run is timed to its first stdout byte.
    let first = call(&app, "vm.run", json!({ "path": "/bin/hello.wasm" })).await?;
    follow(&mut events, first["job"].as_str().unwrap_or_default()).await?;
    let mut starts = vec![];
    for _ in 0..200 {
        let sent = Instant::now();
        let started = call(&app, "vm.run", json!({ "path": "/bin/hello.wasm" })).await?;
        let (first_byte, _, _, exit) =
            follow(&mut events, started["job"].as_str().unwrap_or_default()).await?;
        anyhow::ensure!(exit["code"] == 0, "hello failed: {exit}");
        starts.push(first_byte.context("no output")? - sent);
    }
    starts.sort();
    println!(
        "vm warm start to first stdout byte at the client: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (200 runs)",
        ms(starts[100]),
        ms(starts[197]),
        ms(starts[199])
    );

    // Runaway loops: how long past the deadline until the exit reaches the client.
    let mut overshoot = vec![];
    for _ in 0..20 {
        let sent = Instant::now();
        let started = call(
            &app,
            "vm.run",
            json!({ "path": "/bin/spin.wasm", "timeout_ms": 100 }),
        )
        .await?;
        let (_, ended, _, exit) =
            follow(&mut events, started["job"].as_str().unwrap_or_default()).await?;
        anyhow::ensure!(
            exit["ending"] == "timeout",
            "spin was not timed out: {exit}"
        );
        overshoot.push((ended - sent).saturating_sub(Duration::from_millis(100)));
    }
    overshoot.sort();
    println!(
        "vm runaway loop with a 100 ms deadline: exit at the client p50 {:.1} ms, max {:.1} ms after the deadline (20 runs)",
        ms(overshoot[10]),
        ms(overshoot[19])
    );

    // Stdout throughput: 50 MiB streamed to this client.
    let sent = Instant::now();
    let started = call(
        &app,
        "vm.run",
        json!({ "path": "/bin/blast.wasm", "output_kb": 64 * 1024 }),
    )
    .await?;
    let (_, ended, bytes, exit) =
        follow(&mut events, started["job"].as_str().unwrap_or_default()).await?;
    anyhow::ensure!(
        exit["code"] == 0 && bytes == 50 << 20,
        "blast: {bytes} bytes, {exit}"
    );
    println!(
        "vm stdout streaming: {} MiB to the client in {:.2} s = {:.0} MB/s",
        bytes >> 20,
        (ended - sent).as_secs_f64(),
        bytes as f64 / 1e6 / (ended - sent).as_secs_f64()
    );

    // Restart: the first run of a known module loads the cached compiled code.
    daemon.restart()?;
    let (_client, app, mut events) = connect(daemon.port, &token).await?;
    let sent = Instant::now();
    let started = call(
        &app,
        "vm.run",
        json!({ "path": "/bin/blast.wasm", "output_kb": 1 }),
    )
    .await?;
    let answered = sent.elapsed();
    follow(&mut events, started["job"].as_str().unwrap_or_default()).await?;
    println!(
        "vm after a daemon restart: first run of a known module answered in {:.1} ms with cached = {} (no recompile)",
        ms(answered),
        started["cached"]
    );
    Ok(())
}

/// A token for this scenario's own daemon, minted by its owner over the Unix socket.
async fn mint(daemon: &DaemonProcess) -> anyhow::Result<String> {
    let owner = AetherClient::connect(
        &Endpoint::Unix(daemon.socket_path()),
        Auth::Local,
        ClientOptions::default(),
    )
    .await?;
    let answer: Value = owner
        .app("cli")
        .request_json("sys.token.create", &json!({ "label": "loadgen vm" }))
        .await?;
    Ok(answer["token"].as_str().context("no token")?.to_owned())
}
