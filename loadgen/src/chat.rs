//! Chat, against a daemon in its own process: a message to a room of 1,000 connected members
//! (guests, each on its own WebSocket) until every one has it, and a history page from a room
//! of 1,000,000 messages (written into the store while the daemon is stopped).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::Value;

use aether_proto::api::{Call, chat};
use aether_proto::client::{AetherClient, AppHandle, ClientOptions, Endpoint};
use aether_proto::frame::Auth;

use crate::DaemonProcess;

const MEMBERS: usize = 1_000;
const MESSAGES: usize = 50;
const HISTORY: i64 = 1_000_000;

async fn call<C: Call>(app: &AppHandle, call: &C) -> anyhow::Result<C::Answer> {
    Ok(app
        .request_within(call, Some(Duration::from_secs(60)))
        .await?)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub async fn run() -> anyhow::Result<()> {
    let mut daemon = DaemonProcess::start_with_config(None, "guest = true\n")?;
    let owner = AetherClient::connect(
        &Endpoint::Unix(daemon.socket_path()),
        Auth::Local,
        ClientOptions::default(),
    )
    .await?;
    let chat = owner.app("chat");
    let create = chat::Create {
        room: "bench".into(),
        ..chat::Create::default()
    };
    call(&chat, &create).await?;
    fan_out(&daemon, &chat).await?;
    owner.close();

    // A room of a million messages, written while the daemon is down.
    daemon.stop()?;
    let db = daemon.home().join("aether.db");
    fill_history(&db).context("writing a million messages")?;
    daemon.start_again()?;
    let owner = AetherClient::connect(
        &Endpoint::Unix(daemon.socket_path()),
        Auth::Local,
        ClientOptions::default(),
    )
    .await?;
    let chat = owner.app("chat");
    let mut pages = vec![];
    for i in 0..200i64 {
        // The newest page, then pages from all over the room.
        let before = if i == 0 {
            None
        } else {
            Some(((i * 4_999) % HISTORY + 1) as u64)
        };
        let asked = Instant::now();
        let ask = chat::History {
            room: "big".into(),
            before,
            limit: Some(50),
            ..chat::History::default()
        };
        let page = call(&chat, &ask).await?;
        pages.push(asked.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(!page.messages.is_empty(), "an empty page before {before:?}");
    }
    pages.sort_by(f64::total_cmp);
    println!(
        "chat history, a 50-message page from a room of {HISTORY} messages, 200 pages over the WebSocket: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        quantile(&pages, 0.5),
        quantile(&pages, 0.99),
        pages[pages.len() - 1]
    );
    Ok(())
}

/// 1,000 members, each its own connection; the owner posts; every member's receipt is timed.
async fn fan_out(daemon: &DaemonProcess, owner_chat: &AppHandle) -> anyhow::Result<()> {
    let endpoint =
        Endpoint::parse(&format!("ws://127.0.0.1:{}/", daemon.port)).map_err(anyhow::Error::msg)?;
    let sent: Arc<Sent> = Arc::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<f64>();
    let mut members = vec![];
    for _ in 0..MEMBERS {
        let client =
            AetherClient::connect(&endpoint, Auth::Guest, ClientOptions::default()).await?;
        let chat = client.app("chat");
        call(
            &chat,
            &chat::Join {
                room: "bench".into(),
            },
        )
        .await?;
        let mut sub = chat.subscribe("chat.room.bench.message").await?;
        let (sent, tx) = (sent.clone(), tx.clone());
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let arrived = Instant::now();
                let Ok(message) = serde_json::from_str::<Value>(msg.data.get()) else {
                    continue;
                };
                let Some(n) = message["text"]
                    .as_str()
                    .and_then(|t| t.strip_prefix("bench "))
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    continue;
                };
                if let Some(at) = sent.get(n) {
                    let _ = tx.send(arrived.duration_since(at).as_secs_f64() * 1e3);
                }
            }
        });
        members.push(client);
    }
    drop(tx);
    let mut all = Vec::with_capacity(MEMBERS * MESSAGES);
    let mut last = vec![];
    for n in 0..MESSAGES {
        sent.set(n, Instant::now());
        call(
            owner_chat,
            &chat::Post {
                room: "bench".into(),
                text: format!("bench {n}"),
                reply_to: None,
            },
        )
        .await?;
        // Every member has it before the next (and the rate limit: 10 a second).
        let mut got = 0;
        let mut slowest: f64 = 0.0;
        while got < MEMBERS {
            let ms = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .context("a member did not get the message within 30 s")?
                .context("members gone")?;
            slowest = slowest.max(ms);
            all.push(ms);
            got += 1;
        }
        last.push(slowest);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    all.sort_by(f64::total_cmp);
    last.sort_by(f64::total_cmp);
    println!(
        "chat fan-out, a message to a room of {MEMBERS} connected members ({MESSAGES} messages, {} deliveries): per delivery p50 {:.2} ms, p99 {:.2} ms; until the last member has it p50 {:.2} ms, p99 {:.2} ms",
        all.len(),
        quantile(&all, 0.5),
        quantile(&all, 0.99),
        quantile(&last, 0.5),
        quantile(&last, 0.99)
    );
    for client in members {
        client.close();
    }
    Ok(())
}

/// Room `big` with a million messages, written straight into the store.
fn fill_history(db: &std::path::Path) -> anyhow::Result<()> {
    let mut conn = rusqlite::Connection::open(db)?;
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO chat_rooms (name, private, created_by, created_ms, last_seq)
         VALUES ('big', 0, 1, 0, ?1)",
        [HISTORY],
    )?;
    tx.execute(
        "INSERT INTO chat_members (room, user_id, joined_ms, last_read) VALUES ('big', 1, 0, 0)",
        [],
    )?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO chat_messages (room, seq, user_id, text, at_ms) VALUES ('big', ?1, 1, ?2, ?1)",
        )?;
        for seq in 1..=HISTORY {
            insert.execute(rusqlite::params![
                seq,
                format!("message number {seq} of the big room")
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// When each message was sent, by number.
#[derive(Default)]
struct Sent(std::sync::Mutex<Vec<Option<Instant>>>);

impl Sent {
    fn set(&self, n: usize, at: Instant) {
        let mut sent = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if sent.len() <= n {
            sent.resize(n + 1, None);
        }
        sent[n] = Some(at);
    }

    fn get(&self, n: usize) -> Option<Instant> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(n)
            .copied()
            .flatten()
    }
}
