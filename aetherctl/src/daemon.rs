//! The daemon itself: daemon status|stop, and its audit log of denials.

use clap::{Args, Subcommand};

use aether_proto::api::sys;
use aether_proto::client::{AetherClient, AppHandle, ClientOptions, Endpoint};
use aether_proto::frame::Auth;

use crate::output::{format_secs, print_answer, print_json, print_with};
use crate::{Failure, call, connect};

#[derive(Subcommand)]
pub enum DaemonCommand {
    /// Counters, uptime, where it listens.
    Status,
    /// Stop the daemon gracefully (admin).
    Stop,
}

#[derive(Args)]
pub struct Audit {
    #[arg(long, default_value_t = 20)]
    limit: u32,
}

/// Connect without starting a daemon. `None`: there is nothing to stop, and that was said.
pub async fn connect(
    command: &DaemonCommand,
    endpoint: &Endpoint,
    auth: Auth,
    options: ClientOptions,
) -> Result<Option<AetherClient>, Failure> {
    match connect::connect(endpoint, auth, options, false).await {
        Ok(client) => Ok(Some(client)),
        Err(Failure::Connect(_)) if connect::nobody_listens(endpoint) => {
            if let DaemonCommand::Stop = command {
                outln!("no daemon is running at {endpoint}");
                return Ok(None);
            }
            Err(Failure::Connect(format!(
                "no daemon is running at {endpoint}"
            )))
        }
        Err(e) => Err(e),
    }
}

pub async fn run(command: &DaemonCommand, app: &AppHandle, json: bool) -> Result<(), Failure> {
    match command {
        DaemonCommand::Status => {
            let stats = call(app, &sys::Stats {}).await?;
            print_with(json, &stats, print_status);
        }
        DaemonCommand::Stop => {
            let stopping = call(app, &sys::DaemonStop {}).await?;
            print_answer(json, &stopping, |stopping| {
                format!("daemon (pid {}) is stopping", stopping.pid)
            });
        }
    }
    Ok(())
}

pub async fn audit(audit: &Audit, app: &AppHandle, json: bool) -> Result<(), Failure> {
    let ask = sys::AuditList {
        limit: Some(audit.limit),
    };
    let answer = call(app, &ask).await?;
    if json {
        print_json(&answer);
        return Ok(());
    }
    for e in &answer.entries {
        outln!(
            "{} {}/{} {} {}: {}",
            format_secs(e.at),
            e.user.as_deref().unwrap_or("?"),
            e.app.as_deref().unwrap_or("?"),
            e.op,
            e.topic,
            e.reason
        );
    }
    Ok(())
}

fn print_status(stats: &sys::StatsAnswer) {
    let hub = &stats.hub;
    outln!("aetherd {} up {} s", stats.version, stats.uptime_secs);
    if let Some(pid) = stats.pid {
        outln!("pid          {pid}");
    }
    if let Some(socket) = &stats.socket {
        outln!("socket       {socket}");
    }
    match &stats.tcp {
        Some(tcp) => outln!("tcp          ws://{tcp}/"),
        None => outln!("tcp          off"),
    }
    if let Some(dir) = &stats.data_dir {
        outln!("data         {dir}");
    }
    outln!("connections  {}", hub.connections);
    outln!("subscribers  {}", hub.subscriptions);
    outln!(
        "messages     {} published, {} delivered, {} dropped, {} slow consumers",
        hub.published,
        hub.delivered,
        hub.dropped,
        hub.slow_consumers
    );
    outln!(
        "requests     {} ({} pending, {} without responders, {} timed out)",
        hub.requests,
        hub.pending_requests,
        hub.no_responders,
        hub.timeouts
    );
    outln!("apps         {}", stats.apps);
    for error in &stats.manifest_errors {
        outln!("skipped      {error}");
    }
}
