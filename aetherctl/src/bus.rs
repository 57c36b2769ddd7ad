//! Raw bus traffic on any topic: pub, sub, req.

use std::io::Write;

use clap::Subcommand;
use futures_util::StreamExt;
use serde_json::{Value, json};

use aether_proto::client::AppHandle;
use aether_proto::frame::to_data;
use aether_proto::{ErrorBody, ErrorCode};

use crate::Failure;
use crate::output::{parse_data, print_value};

#[derive(Subcommand)]
pub enum BusCommand {
    /// Publish JSON data on a topic.
    Pub {
        topic: String,
        /// JSON data; `-` reads it from stdin; omitted means null.
        data: Option<String>,
    },
    /// Print deliveries on a pattern as JSON lines until Ctrl-C or --count.
    Sub {
        pattern: String,
        #[arg(long)]
        count: Option<u64>,
    },
    /// Send a request and print the answer.
    Req {
        topic: String,
        /// JSON data; `-` reads it from stdin; omitted means null.
        data: Option<String>,
    },
}

pub async fn run(command: &BusCommand, app: &AppHandle, json: bool) -> Result<(), Failure> {
    match command {
        BusCommand::Pub { topic, data } => {
            let data = parse_data(data.as_deref())?;
            app.publish_acked(topic, to_data(&data))
                .await
                .map_err(Failure::from_client)?;
            if json {
                outln!("{}", json!({"published": topic}));
            }
        }
        BusCommand::Sub { pattern, count } => subscribe(app, pattern, *count).await?,
        BusCommand::Req { topic, data } => {
            let data = parse_data(data.as_deref())?;
            let raw = app
                .request_raw(topic, to_data(&data), None)
                .await
                .map_err(Failure::from_client)?;
            let answer: Value = serde_json::from_str(raw.get())
                .map_err(|e| Failure::Daemon(ErrorBody::new(ErrorCode::Internal, e.to_string())))?;
            print_value(json, &answer);
        }
    }
    Ok(())
}

/// Print deliveries on `pattern` as JSON lines, until Ctrl-C, `count` of them, or a closed pipe.
pub async fn subscribe(app: &AppHandle, pattern: &str, count: Option<u64>) -> Result<(), Failure> {
    let mut sub = app.subscribe(pattern).await.map_err(Failure::from_client)?;
    let mut seen = 0;
    let stdout = std::io::stdout();
    while count.is_none_or(|n| seen < n) {
        let next = tokio::select! {
            msg = sub.next() => msg,
            _ = tokio::signal::ctrl_c() => break,
        };
        let Some(msg) = next else {
            return Err(Failure::Connect("the daemon closed the connection".into()));
        };
        let data: Value = serde_json::from_str(msg.data.get()).unwrap_or(Value::Null);
        let line = json!({"topic": msg.topic, "from": msg.from, "data": data});
        let mut out = stdout.lock();
        // A closed pipe (e.g. `| head`) ends the subscription quietly.
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            break;
        }
        seen += 1;
    }
    Ok(())
}
