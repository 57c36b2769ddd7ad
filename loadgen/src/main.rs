//! `aether-loadgen`: drive a real `aetherd` over WebSockets on loopback, with
//! permission checks on, and report delivered msgs/s and latency percentiles.
//!
//! By default it starts its own daemon (the `aetherd` next to this binary) on a
//! temporary data dir, so the daemon runs in its own process as in production.
//! Clients speak the wire protocol directly (no JSON parsing per delivery beyond
//! finding the timestamp) so the generator measures the daemon, not itself.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use futures_util::SinkExt;
use hdrhistogram::Histogram;
use tokio_tungstenite::tungstenite::Message;

use aether_proto::client::{AetherClient, ClientOptions, Endpoint};
use aether_proto::frame::Auth;
use bus::{Bus, Event, Receiver, Sender, open_aether, payload};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Every throughput and latency scenario in turn, then idle connections.
    All,
    /// Closed-loop throughput, 1 publisher to N subscribers.
    Throughput,
    /// Latency at a fixed offered rate.
    Latency,
    /// Hold many idle signed-in connections and report the daemon's memory.
    Idle,
    /// The file system: 256 MiB each way, listing 10,000 files, searching 10,000 files.
    Vfs,
    /// Compute: warm start to first output byte, kill at deadline, stdout throughput, cache.
    Vm,
    /// The throughput runs side by side against nats-server (TCP and WebSocket), if installed.
    Nats,
    /// Agents: executor overhead per node (1,000 no-op nodes), resuming 100 graphs after kill -9.
    Agents,
    /// AI: a streamed piece's latency from a scripted provider's write to the client.
    AiStream,
    /// Apps: installing a 1 MB bundle from a local catalog; a guest's bus request round trip.
    Apps,
    /// Chat: a message to a room of 1,000 connected members; a history page of a 1,000,000-message room.
    Chat,
    /// Many short connections (sign in, subscribe, publish, leave), 500 at a time: the
    /// daemon's memory before, at the peak, and what it keeps once they are gone.
    Churn,
}

#[derive(Parser)]
#[command(about = "Load generator for the Aether bus")]
struct Args {
    #[arg(long, value_enum, default_value = "all")]
    scenario: Scenario,
    /// Subscriber counts to run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,100")]
    subscribers: Vec<usize>,
    /// Seconds per measured run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Payload size in bytes (the `data` object, padded).
    #[arg(long, default_value_t = 256)]
    payload: usize,
    /// Subscriber counts for the latency scenario.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    latency_subscribers: Vec<usize>,
    /// Offered rate for the latency scenario, msgs/s.
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    /// Messages in flight (published but not yet received by the slowest subscriber).
    #[arg(long, default_value_t = 2_000)]
    window: u64,
    /// Idle connections to hold.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// The daemon binary to start (default: `aetherd` next to this binary).
    #[arg(long)]
    aetherd: Option<PathBuf>,
}

fn spawn(binary: &std::path::Path, home: &std::path::Path, port: u16) -> anyhow::Result<Child> {
    let child = Command::new(binary)
        .env("AETHER_HOME", home)
        .env("RUST_LOG", "warn")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("the daemon did not listen on port {port} within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child)
}

/// A daemon in its own process on a temporary data dir.
pub struct DaemonProcess {
    child: Child,
    binary: PathBuf,
    _home: tempfile::TempDir,
    pub port: u16,
    socket: PathBuf,
}

impl DaemonProcess {
    pub fn start(binary: Option<PathBuf>) -> anyhow::Result<DaemonProcess> {
        DaemonProcess::start_with_config(binary, "")
    }

    /// A daemon whose `config.toml` is `config` (none when empty).
    pub fn start_with_config(
        binary: Option<PathBuf>,
        config: &str,
    ) -> anyhow::Result<DaemonProcess> {
        let binary = binary.unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|dir| dir.join("aetherd")))
                .unwrap_or_else(|| PathBuf::from("aetherd"))
        });
        let home = tempfile::tempdir()?;
        if !config.is_empty() {
            std::fs::write(home.path().join("config.toml"), config)?;
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = spawn(&binary, home.path(), port)?;
        let socket = home.path().join("run/aetherd.sock");
        Ok(DaemonProcess {
            child,
            binary,
            _home: home,
            port,
            socket,
        })
    }

    /// Stop and start again on the same data dir and port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        self.child = spawn(&self.binary, self._home.path(), self.port)?;
        Ok(())
    }

    /// Stop it without warning (kill -9), to change its data while it is down.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Start it again after [`DaemonProcess::stop`], on the same data dir and port.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        self.child = spawn(&self.binary, self._home.path(), self.port)?;
        Ok(())
    }

    /// Its data dir.
    pub fn home(&self) -> &std::path::Path {
        self._home.path()
    }

    pub fn socket_path(&self) -> PathBuf {
        self.socket.clone()
    }

    fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Nanoseconds since the run's start; the payload carries it for latency.
fn now_ns(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

struct Report {
    delivered: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
    slow_consumer: bool,
    /// A subscriber's connection ended before the run did, and why.
    ended: Option<String>,
}

/// What a run's publisher and readers share.
#[derive(Clone)]
struct RunState {
    base: Instant,
    received: Arc<Vec<AtomicU64>>,
    stop: Arc<AtomicBool>,
    slow: Arc<AtomicBool>,
    /// Why a subscriber stopped early (its connection closed or failed): the run stops
    /// and says so, rather than waiting for messages that cannot come.
    ended: Arc<std::sync::Mutex<Option<String>>>,
    measuring: Arc<AtomicBool>,
    /// Readers say when they made progress, so a publisher whose window is full waits
    /// instead of spinning (on two cores a spinning publisher starves the bus it measures).
    progress: Arc<tokio::sync::Notify>,
}

impl RunState {
    fn end(&self, why: String) {
        if let Ok(mut ended) = self.ended.lock() {
            ended.get_or_insert(why);
        }
    }

    fn has_ended(&self) -> bool {
        self.ended.lock().map_or(true, |e| e.is_some())
    }
}

/// Reader `i`: counts what arrives and records latency while measuring.
fn spawn_reader(
    mut receiver: Receiver,
    i: usize,
    state: RunState,
) -> tokio::task::JoinHandle<Histogram<u64>> {
    tokio::spawn(async move {
        let mut histogram =
            Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).expect("bounds");
        let mut stamps = Vec::with_capacity(1024);
        while !state.stop.load(Ordering::Relaxed) {
            let next =
                tokio::time::timeout(Duration::from_millis(200), receiver.next(&mut stamps)).await;
            let Ok(next) = next else { continue };
            match next {
                Ok(Event::Messages) => {
                    state.received[i].fetch_add(stamps.len() as u64, Ordering::Relaxed);
                    state.progress.notify_one();
                    if state.measuring.load(Ordering::Relaxed) {
                        let now = now_ns(state.base);
                        for ts in &stamps {
                            let _ = histogram.record(now.saturating_sub(*ts).max(1_000));
                        }
                    }
                    stamps.clear();
                }
                Ok(Event::Slow) => {
                    state.slow.store(true, Ordering::Relaxed);
                    break;
                }
                Ok(Event::Closed) | Err(_) if state.stop.load(Ordering::Relaxed) => break,
                Ok(Event::Closed) => {
                    state.end(format!("subscriber {i}: the server closed the connection"));
                    break;
                }
                Err(e) => {
                    state.end(format!("subscriber {i}: {e:#}"));
                    break;
                }
            }
        }
        histogram
    })
}

/// One publisher, `n` subscribers. With `rate` the publisher is paced (open loop);
/// without, it keeps at most `window` messages ahead of the slowest subscriber.
/// What the slowest reader has received: how far the publisher may run ahead of it.
fn min_received(received: &[AtomicU64]) -> u64 {
    received
        .iter()
        .map(|r| r.load(Ordering::Relaxed))
        .min()
        .unwrap_or(0)
}

/// What all the readers have received.
fn total_received(received: &[AtomicU64]) -> u64 {
    received.iter().map(|r| r.load(Ordering::Relaxed)).sum()
}

async fn run_pubsub(bus: &Bus, n: usize, args: &Args, rate: Option<u64>) -> anyhow::Result<Report> {
    let pad = "x".repeat(args.payload.saturating_sub(24));
    let state = RunState {
        base: Instant::now(),
        received: Arc::new((0..n).map(|_| AtomicU64::new(0)).collect()),
        stop: Arc::default(),
        slow: Arc::default(),
        ended: Arc::default(),
        measuring: Arc::default(),
        progress: Arc::default(),
    };
    let mut readers = vec![];
    for i in 0..n {
        readers.push(spawn_reader(
            Receiver::connect(bus).await?,
            i,
            state.clone(),
        ));
    }
    let mut publisher = Sender::connect(bus).await?;
    let RunState {
        base,
        received,
        stop,
        slow,
        measuring,
        progress,
        ..
    } = state.clone();

    // Warm up for a second, then measure.
    let warmup = Duration::from_secs(1);
    let measure = Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut measured_from: Option<(Instant, u64)> = None;
    let interval = rate.map(|r| Duration::from_nanos(1_000_000_000 / r.max(1)));
    loop {
        let now = Instant::now();
        if measured_from.is_none() && now - started >= warmup {
            measuring.store(true, Ordering::Relaxed);
            measured_from = Some((now, total_received(&received)));
        }
        if let Some((from, _)) = measured_from
            && now - from >= measure
        {
            break;
        }
        if slow.load(Ordering::Relaxed) || state.has_ended() {
            break;
        }
        match interval {
            Some(interval) => {
                // Open loop: send what the schedule says is due, then sleep a little.
                let due = ((now - started).as_nanos() / interval.as_nanos()) as u64;
                while sent < due {
                    publisher.feed(&payload(now_ns(base), &pad)).await?;
                    sent += 1;
                }
                publisher.flush().await?;
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            None => {
                let ahead = sent - min_received(&received);
                if ahead >= args.window {
                    tokio::select! {
                        _ = progress.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(1)) => {}
                    }
                    continue;
                }
                let burst = (args.window - ahead).min(256);
                for _ in 0..burst {
                    publisher.feed(&payload(now_ns(base), &pad)).await?;
                }
                sent += burst;
                publisher.flush().await?;
            }
        }
    }
    let (from, received_before) = measured_from.unwrap_or((started, 0));
    let elapsed = from.elapsed();
    let delivered = total_received(&received) - received_before;
    stop.store(true, Ordering::Relaxed);
    let mut latency = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).expect("bounds");
    for reader in readers {
        latency.add(reader.await?)?;
    }
    publisher.close().await;
    Ok(Report {
        delivered,
        elapsed,
        latency,
        slow_consumer: slow.load(Ordering::Relaxed),
        ended: state.ended.lock().ok().and_then(|e| e.clone()),
    })
}

fn print_report(label: &str, report: &Report) {
    let per_sec = report.delivered as f64 / report.elapsed.as_secs_f64();
    let ms = |q: f64| report.latency.value_at_quantile(q) as f64 / 1e6;
    println!(
        "{label:<34} delivered {:>10} in {:>5.2} s = {:>10.0} msgs/s | latency p50 {:>7.3} ms p99 {:>7.3} ms p99.9 {:>7.3} ms{}",
        report.delivered,
        report.elapsed.as_secs_f64(),
        per_sec,
        ms(0.50),
        ms(0.99),
        ms(0.999),
        match (&report.ended, report.slow_consumer) {
            (_, true) => " (a subscriber was dropped as slow)".to_owned(),
            (Some(why), false) => format!(" (stopped early: {why})"),
            (None, false) => String::new(),
        }
    );
}

async fn idle(daemon: &DaemonProcess, token: &str, count: usize) -> anyhow::Result<()> {
    let before = daemon.rss_kib().unwrap_or(0);
    let mut held = Vec::with_capacity(count);
    let started = Instant::now();
    for chunk in 0..count.div_ceil(100) {
        let mut opening = vec![];
        for _ in 0..100.min(count - chunk * 100) {
            let token = token.to_owned();
            let port = daemon.port;
            opening.push(tokio::spawn(async move { open_aether(port, &token).await }));
        }
        for task in opening {
            held.push(task.await??);
        }
    }
    let opened = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = daemon.rss_kib().unwrap_or(0);
    println!(
        "idle: {} signed-in connections opened in {:.1} s; daemon RSS {:.1} MiB before, {:.1} MiB with them held ({:.1} KiB per connection)",
        held.len(),
        opened.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / held.len().max(1) as f64
    );
    // Prove they are alive: the last one still answers a ping.
    if let Some(ws) = held.last_mut() {
        ws.send(Message::text(r#"{"t":"ping","id":1}"#)).await?;
        let pong = bus::next_text(ws).await?;
        anyhow::ensure!(
            pong.contains("pong"),
            "an idle connection did not answer: {pong}"
        );
    }
    Ok(())
}

/// `count` short connections, 500 at a time, each signing in, subscribing, publishing four
/// messages of `pad` bytes (at least 4 KiB; `--payload` for more) and leaving: what the daemon's memory does with connections that come
/// and go (what its allocator gives back once they are gone).
async fn churn(
    daemon: &DaemonProcess,
    token: &str,
    count: usize,
    pad: usize,
) -> anyhow::Result<()> {
    const AT_ONCE: usize = 500;
    let before = daemon.rss_kib().unwrap_or(0);
    let mut peak = before;
    let started = Instant::now();
    let payload = "x".repeat(pad.max(4096));
    for wave in 0..count.div_ceil(AT_ONCE) {
        let mut running = vec![];
        for i in 0..AT_ONCE.min(count - wave * AT_ONCE) {
            let (token, port, payload) = (token.to_owned(), daemon.port, payload.clone());
            running.push(tokio::spawn(async move {
                let mut ws = open_aether(port, &token).await?;
                let topic = aether_proto::api::app_topic("cli", &format!("churn{i}"));
                ws.send(Message::text(format!(
                    r#"{{"t":"sub","id":1,"app":"cli","topic":"{topic}"}}"#
                )))
                .await?;
                for n in 0..4 {
                    ws.send(Message::text(format!(
                        r#"{{"t":"pub","app":"cli","topic":"{topic}","data":{{"n":{n},"pad":"{payload}"}}}}"#
                    )))
                    .await?;
                }
                ws.send(Message::text(r#"{"t":"ping","id":2}"#)).await?;
                while !bus::next_text(&mut ws).await?.contains("pong") {}
                ws.close(None).await?;
                anyhow::Ok(())
            }));
        }
        for task in running {
            task.await??;
        }
        peak = peak.max(daemon.rss_kib().unwrap_or(0));
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = daemon.rss_kib().unwrap_or(0);
    println!(
        "churn: {count} short connections ({} B messages) in {:.1} s; daemon RSS {:.1} MiB before, {:.1} MiB at the peak, {:.1} MiB kept 5 s after",
        payload.len(),
        took.as_secs_f64(),
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        after as f64 / 1024.0,
    );
    Ok(())
}

/// The same closed-loop runs against aetherd and nats-server, one after the other.
async fn compare_with_nats(aether: &Bus, args: &Args) -> anyhow::Result<()> {
    let Some(nats) = bus::NatsServer::start()? else {
        bail!("nats-server is not on PATH (Debian: apt install nats-server)");
    };
    let buses = [
        aether.clone(),
        Bus::NatsTcp {
            port: nats.tcp_port,
        },
        Bus::NatsWs { port: nats.ws_port },
    ];
    for &n in &args.subscribers {
        for bus in &buses {
            let report = run_pubsub(bus, n, args, None).await?;
            print_report(&format!("{} 1 -> {n}", bus.label()), &report);
        }
    }
    Ok(())
}

/// Thousands of idle connections need thousands of file descriptors.
fn raise_fd_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    let _ = setrlimit(Resource::Nofile, raised);
}

mod agents;
mod apps;
mod bus;
mod chat;
mod vfs;
mod vm;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    raise_fd_limit();
    let daemon = DaemonProcess::start(args.aetherd.clone())?;
    // The owner signs in over the Unix socket and mints a token for the TCP clients.
    let owner = AetherClient::connect(
        &Endpoint::Unix(daemon.socket.clone()),
        Auth::Local,
        ClientOptions::default(),
    )
    .await
    .context("owner sign-in")?;
    let answer: serde_json::Value = owner
        .app("cli")
        .request_json("sys.token.create", &serde_json::json!({"label": "loadgen"}))
        .await?;
    let token = answer["token"].as_str().context("no token")?.to_owned();
    println!(
        "aether-loadgen: daemon pid {} on 127.0.0.1:{}, payload {} B, permission checks on, {} s per run",
        daemon.child.id(),
        daemon.port,
        args.payload,
        args.seconds
    );
    let scenarios: &[Scenario] = match args.scenario {
        Scenario::All => &[Scenario::Throughput, Scenario::Latency, Scenario::Idle],
        Scenario::Throughput => &[Scenario::Throughput],
        Scenario::Latency => &[Scenario::Latency],
        Scenario::Idle => &[Scenario::Idle],
        Scenario::Vfs => &[Scenario::Vfs],
        Scenario::Vm => &[Scenario::Vm],
        Scenario::Nats => &[Scenario::Nats],
        Scenario::Agents => &[Scenario::Agents],
        Scenario::AiStream => &[Scenario::AiStream],
        Scenario::Apps => &[Scenario::Apps],
        Scenario::Chat => &[Scenario::Chat],
        Scenario::Churn => &[Scenario::Churn],
    };
    let aether = Bus::Aether {
        port: daemon.port,
        token: token.clone(),
    };
    for scenario in scenarios {
        match scenario {
            Scenario::Throughput => {
                for &n in &args.subscribers {
                    let report = run_pubsub(&aether, n, &args, None).await?;
                    print_report(&format!("throughput 1 -> {n}"), &report);
                }
            }
            Scenario::Latency => {
                for &n in &args.latency_subscribers {
                    let report = run_pubsub(&aether, n, &args, Some(args.rate)).await?;
                    print_report(
                        &format!("latency 1 -> {n} at {} msgs/s offered", args.rate),
                        &report,
                    );
                }
            }
            Scenario::Idle => idle(&daemon, &token, args.connections).await?,
            Scenario::Vfs => vfs::run(daemon.port, &token).await?,
            Scenario::Vm => vm::run().await?,
            Scenario::Nats => compare_with_nats(&aether, &args).await?,
            Scenario::Agents => agents::run().await?,
            Scenario::AiStream => agents::ai_stream().await?,
            Scenario::Apps => apps::run().await?,
            Scenario::Chat => chat::run().await?,
            Scenario::Churn => churn(&daemon, &token, args.connections, args.payload).await?,
            Scenario::All => {}
        }
    }
    Ok(())
}
