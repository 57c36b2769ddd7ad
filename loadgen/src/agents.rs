//! Agents and AI, against a daemon in its own process: the executor's overhead per node
//! (no-op `sys.ping` nodes, in parallel and in a chain), resuming 100 interrupted graphs
//! after a kill -9, and how long a streamed piece takes from the provider (a scripted one
//! on 127.0.0.1) to the client.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use aether_fixtures::fake_llm::{FakeLlm, Reply};
use aether_proto::api::{Call, agent, ai, sys};
use aether_proto::client::{AetherClient, AppHandle, ClientOptions, Endpoint, Subscription};
use aether_proto::frame::Auth;

use crate::DaemonProcess;

async fn call<C: Call>(app: &AppHandle, call: &C) -> anyhow::Result<C::Answer> {
    Ok(app
        .request_within(call, Some(Duration::from_secs(60)))
        .await?)
}

/// A graph's spec from its JSON form (as a user writes one in a file).
fn graph(spec: Value) -> anyhow::Result<agent::Run> {
    Ok(agent::Run::new(serde_json::from_value(spec)?))
}

async fn owner(daemon: &DaemonProcess) -> anyhow::Result<AetherClient> {
    Ok(AetherClient::connect(
        &Endpoint::Unix(daemon.socket_path()),
        Auth::Local,
        ClientOptions::default(),
    )
    .await?)
}

/// Wait for graph `id`'s `state` event saying it is over; its state.
async fn until_over(events: &mut Subscription, id: &str) -> anyhow::Result<String> {
    let topic = agent::GraphEvents::topic_of(id, agent::GraphEventKind::State);
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(120), events.next_msg())
            .await
            .context("no graph event within 120 s")?
            .context("subscription closed")?;
        if msg.topic != topic {
            continue;
        }
        let data: Value = serde_json::from_str(msg.data.get())?;
        let state = data["state"].as_str().unwrap_or_default().to_owned();
        if matches!(state.as_str(), "done" | "failed" | "cancelled") {
            return Ok(state);
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub async fn run() -> anyhow::Result<()> {
    let mut daemon = DaemonProcess::start(None)?;
    let client = owner(&daemon).await?;
    let app = client.app("cli");
    let mut events = app.subscribe("agent.graph.>").await?;
    node_overhead(&app, &mut events).await?;
    resume_after_kill(&mut daemon, client, events).await
}

/// 1,000 no-op nodes, independent (run four at a time, the user's share), then chained.
async fn node_overhead(app: &AppHandle, events: &mut Subscription) -> anyhow::Result<()> {
    for (shape, after) in [("independent", false), ("chained", true)] {
        let nodes: Vec<Value> = (0..1000)
            .map(|i| {
                let mut node = json!({ "id": format!("n{i}"), "tool": "sys.ping" });
                if after && i > 0 {
                    node["after"] = json!([format!("n{}", i - 1)]);
                }
                node
            })
            .collect();
        let started = Instant::now();
        let id = call(app, &graph(json!({ "name": shape, "nodes": nodes }))?)
            .await?
            .id;
        let state = until_over(events, &id).await?;
        anyhow::ensure!(state == "done", "the {shape} graph ended {state}");
        let took = started.elapsed();
        println!(
            "agents: 1,000 {shape} no-op nodes ran to the end in {:.0} ms: {:.3} ms per node (start, store, call, store, event)",
            ms(took),
            ms(took) / 1000.0
        );
    }
    Ok(())
}

/// 100 graphs interrupted mid-node, then kill -9 and a restart: how long until each runs
/// its node again.
async fn resume_after_kill(
    daemon: &mut DaemonProcess,
    client: AetherClient,
    events: Subscription,
) -> anyhow::Result<()> {
    let app = client.app("cli");
    // 100 graphs interrupted mid-node: each waits in a retry (an AI call with no provider
    // is `unavailable`, worth retrying). Four users run 25 each (a user may have 32 live).
    // kill -9, start again, and time until every one has run its node again.
    let endpoint =
        Endpoint::parse(&format!("ws://127.0.0.1:{}/", daemon.port)).map_err(anyhow::Error::msg)?;
    let mut runners = Vec::new();
    for u in 0..4 {
        let add = sys::UserAdd {
            name: format!("agent{u}"),
            password: RUNNERS_PASSWORD.to_owned(),
            admin: false,
        };
        call(&app, &add).await?;
        runners.push(sign_in(&endpoint, u).await?);
    }
    let mut ids = Vec::new();
    for i in 0..100 {
        let runner = runners[i % runners.len()].app("cli");
        let run = graph(json!({ "name": format!("interrupted {i}"), "nodes": [
            { "id": "ask", "tool": "ai.generate", "args": { "prompt": "hi" }, "retries": 20 },
        ]}))?;
        ids.push((i % runners.len(), call(&runner, &run).await?.id));
    }
    let attempts = |graph: &agent::Graph| graph.nodes.first().map_or(0, |n| n.attempts);
    let mut before = Vec::new();
    for (u, id) in &ids {
        let got = call(&runners[*u].app("cli"), &agent::Get { id: id.clone() }).await?;
        before.push(attempts(&got));
    }
    drop(events);
    drop(client);
    drop(runners);
    let restarted = Instant::now();
    daemon.restart()?;
    let listening = restarted.elapsed();
    let mut runners = Vec::new();
    for u in 0..4 {
        runners.push(sign_in(&endpoint, u).await?);
    }
    let mut waiting: HashSet<usize> = (0..ids.len()).collect();
    while !waiting.is_empty() {
        anyhow::ensure!(
            restarted.elapsed() < Duration::from_secs(30),
            "{} graphs did not resume within 30 s",
            waiting.len()
        );
        for i in waiting.clone() {
            let (u, id) = &ids[i];
            let got = call(&runners[*u].app("cli"), &agent::Get { id: id.clone() }).await?;
            if attempts(&got) > before[i] {
                waiting.remove(&i);
            }
        }
    }
    let resumed = restarted.elapsed();
    println!(
        "agents: 100 interrupted graphs all running again {:.0} ms after kill -9 and restart ({:.0} ms of it the daemon starting to listen; the rest resuming: {:.0} ms)",
        ms(resumed),
        ms(listening),
        ms(resumed - listening)
    );
    for (u, id) in &ids {
        let _ = call(&runners[*u].app("cli"), &agent::Cancel { id: id.clone() }).await;
    }
    Ok(())
}

const RUNNERS_PASSWORD: &str = "correct horse battery staple";

/// Runner `u` (`agent<u>`) signed in.
async fn sign_in(endpoint: &Endpoint, u: usize) -> anyhow::Result<AetherClient> {
    let auth = Auth::Password {
        user: format!("agent{u}"),
        password: RUNNERS_PASSWORD.to_owned(),
    };
    Ok(AetherClient::connect(endpoint, auth, ClientOptions::default()).await?)
}

/// A streamed answer's pieces, each timed from the provider's write to the client.
pub async fn ai_stream() -> anyhow::Result<()> {
    let fake = FakeLlm::start().await;
    const PIECES: usize = 200;
    let mut events: Vec<(Duration, String)> = (0..PIECES)
        .map(|i| {
            let chunk =
                json!({ "choices": [{ "index": 0, "delta": { "content": format!("<{i}>") } }] });
            (Duration::from_millis(10), chunk.to_string())
        })
        .collect();
    events.push((
        Duration::ZERO,
        json!({ "choices": [{ "index": 0, "delta": {}, "finish_reason": "stop" }] }).to_string(),
    ));
    fake.then(Reply::Events { events, cut: false });
    let config = format!(
        "[ai]\n[[ai.providers]]\nname = \"fake\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\n",
        fake.url("/v1")
    );
    let daemon = DaemonProcess::start_with_config(None, &config)?;
    let client = owner(&daemon).await?;
    let app = client.app("cli");
    let mut stream = app.subscribe("ai.stream.>").await?;
    call(
        &app,
        &ai::Generate {
            prompt: "count".into(),
            stream: true,
            ..Default::default()
        },
    )
    .await?;
    let mut arrived = Vec::with_capacity(PIECES);
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), stream.next_msg())
            .await
            .context("no piece within 30 s")?
            .context("subscription closed")?;
        let now = Instant::now();
        if msg.topic.ends_with(".delta") {
            arrived.push(now);
        } else {
            break;
        }
    }
    let sent = fake.sent_at();
    anyhow::ensure!(
        arrived.len() == PIECES,
        "{} of {PIECES} pieces arrived",
        arrived.len()
    );
    let mut latency: Vec<Duration> = arrived
        .iter()
        .zip(&sent)
        .map(|(got, put)| got.saturating_duration_since(*put))
        .collect();
    latency.sort();
    println!(
        "ai: a streamed piece from the provider's write to the client: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({PIECES} pieces, 10 ms apart)",
        ms(latency[PIECES / 2]),
        ms(latency[PIECES * 99 / 100]),
        ms(latency[PIECES - 1])
    );
    Ok(())
}
