//! Apps, against a daemon in its own process: installing a 1 MB bundle from a local catalog
//! (request to answer = committed and runnable, then the first run's start), and a guest
//! program's bus request through the `aether` host interface (`sys.ping`, timed inside the
//! guest with WASI's monotonic clock, so only the round trip counts).

use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use aether_fixtures::bundles;
use aether_proto::api::{Call, Event as _, apps, vm};
use aether_proto::client::{AetherClient, AppHandle, ClientOptions, Endpoint, Subscription};
use aether_proto::frame::Auth;

use crate::DaemonProcess;

/// Requests the guest makes; the first `WARM_UP` are not counted.
const PINGS: usize = 20_000;
const WARM_UP: usize = 1_000;

async fn call<C: Call>(app: &AppHandle, call: &C) -> anyhow::Result<C::Answer> {
    Ok(app
        .request_within(call, Some(Duration::from_secs(60)))
        .await?)
}

/// Install a catalog app that asks for nothing.
fn install(id: &str) -> apps::Install {
    let source = apps::Source {
        id: Some(id.to_owned()),
        ..apps::Source::default()
    };
    apps::Install::of(source, vec![])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// A WASI command carrying `bytes` of incompressible data: its bundle is about that large.
fn big_module(bytes: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut data = String::with_capacity(bytes * 3);
    for _ in 0..bytes {
        // xorshift: cheap noise gzip cannot shrink.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.push_str(&format!("\\{:02x}", state as u8));
    }
    let pages = bytes.div_ceil(65536) + 1;
    wat::parse_str(format!(
        r#"(module (memory (export "memory") {pages}) (data (i32.const 0) "{data}")
            (func (export "_start")))"#
    ))
    .expect("a valid module")
}

/// A command that pings the bus `PINGS` times and writes each round trip (ns, u64 LE) to stdout.
fn ping_module() -> Vec<u8> {
    let buffer = 1024;
    let pages = (buffer + PINGS * 8).div_ceil(65536) + 1;
    wat::parse_str(format!(
        r#"(module
  (import "aether" "request" (func $req (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") {pages})
  (data (i32.const 64) "sys.ping")
  (data (i32.const 128) "{{}}")
  (func (export "_start") (local $i i32) (local $t0 i64)
    (loop $again
      (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 16)))
      (local.set $t0 (i64.load (i32.const 16)))
      (drop (call $req (i32.const 64) (i32.const 8) (i32.const 128) (i32.const 2) (i32.const 0)))
      (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 16)))
      (i64.store (i32.add (i32.const {buffer}) (i32.mul (local.get $i) (i32.const 8)))
        (i64.sub (i64.load (i32.const 16)) (local.get $t0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const {PINGS}))))
    (i32.store (i32.const 0) (i32.const {buffer}))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        len = PINGS * 8,
    ))
    .expect("a valid module")
}

/// Run an installed app to its end; its stdout bytes.
async fn run_installed(
    app: &AppHandle,
    events: &mut Subscription,
    id: &str,
) -> anyhow::Result<(Duration, Vec<u8>)> {
    let asked = Instant::now();
    let run = vm::Run {
        installed: Some(id.to_owned()),
        output_kb: Some(4096),
        ..vm::Run::default()
    };
    let started = call(app, &run).await?;
    let started_in = asked.elapsed();
    let job = started.job;
    let mut out = vec![];
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(120), events.next_msg())
            .await
            .context("no job event within 120 s")?
            .context("subscription closed")?;
        let kind = match vm::JobEvents::parse(&msg.topic) {
            Some(event) if event.id == job.as_str() => event.kind.as_str(),
            _ => continue,
        };
        let data: Value = serde_json::from_str(msg.data.get())?;
        match kind {
            "stdout" => {
                let text = data["data"].as_str().unwrap_or_default();
                if data["encoding"] == "base64" {
                    out.extend(BASE64.decode(text)?);
                } else {
                    out.extend_from_slice(text.as_bytes());
                }
            }
            "exit" => {
                anyhow::ensure!(data["code"] == 0, "{id} did not exit cleanly: {data}");
                return Ok((started_in, out));
            }
            _ => {}
        }
    }
}

pub async fn run() -> anyhow::Result<()> {
    let catalog = tempfile::tempdir()?;
    let manifest = bundles::manifest("big", "1.0.0", &[]);
    let big = bundles::bundle(&manifest, &big_module(1 << 20));
    let pinger = bundles::manifest("pinger", "1.0.0", &[]);
    let ping = bundles::bundle(&pinger, &ping_module());
    bundles::write_catalog(
        catalog.path(),
        &[(&manifest, &big, None), (&pinger, &ping, None)],
    );
    let config = format!(
        "[apps]\ncatalogs = [{:?}]\n",
        catalog.path().display().to_string()
    );
    let daemon = DaemonProcess::start_with_config(None, &config)?;
    let client = AetherClient::connect(
        &Endpoint::Unix(daemon.socket_path()),
        Auth::Local,
        ClientOptions::default(),
    )
    .await?;
    let app = client.app("cli");
    let mut events = app.subscribe("vm.job.>").await?;

    // Install the 1 MB bundle again and again (uninstalled in between, so each is a new install).
    let mut installs = vec![];
    let mut first_run = None;
    for round in 0..20 {
        let asked = Instant::now();
        call(&app, &install("big")).await?;
        installs.push(ms(asked.elapsed()));
        if round == 0 {
            let (started_in, _) = run_installed(&app, &mut events, "big").await?;
            first_run = Some((ms(asked.elapsed()), ms(started_in)));
        }
        call(&app, &apps::Uninstall { id: "big".into() }).await?;
    }
    installs.sort_by(f64::total_cmp);
    println!(
        "apps install, a {} byte bundle from a local catalog (request to answer: checked, written, committed, runnable), 20 runs: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        big.len(),
        quantile(&installs, 0.5),
        quantile(&installs, 0.99),
        installs[installs.len() - 1]
    );
    if let Some((total, start)) = first_run {
        println!(
            "apps install then first vm.run started (module compiled): {total:.1} ms, of which vm.run {start:.1} ms"
        );
    }

    call(&app, &install("pinger")).await?;
    let (_, out) = run_installed(&app, &mut events, "pinger").await?;
    anyhow::ensure!(out.len() == PINGS * 8, "{} bytes of timings", out.len());
    let mut trips: Vec<f64> = out
        .chunks_exact(8)
        .skip(WARM_UP)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()) as f64 / 1e3)
        .collect();
    trips.sort_by(f64::total_cmp);
    println!(
        "apps host interface: a guest's sys.ping round trip, {} warm calls: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        trips.len(),
        quantile(&trips, 0.5),
        quantile(&trips, 0.99),
        trips[trips.len() - 1]
    );
    Ok(())
}
