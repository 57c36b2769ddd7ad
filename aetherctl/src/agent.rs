//! TaskGraphs from a shell: agent run FILE | list | status ID | watch ID | cancel | approve | retry.

use std::path::PathBuf;

use clap::Subcommand;
use futures_util::StreamExt;
use serde_json::{Value, json};

use aether_proto::api::Event as _;
use aether_proto::api::agent::{self, GraphSpec, GraphState};
use aether_proto::client::AppHandle;

use crate::output::{format_ms, print_answer, print_json};
use crate::{Failure, call};

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Run a graph written in a JSON file (`-` for stdin); with --watch, follow it to the end.
    Run {
        file: String,
        /// Follow the graph's events until it is over (exit 1 unless it is done).
        #[arg(long)]
        watch: bool,
    },
    /// Turn a goal into a graph through the AI, and print it (run it with `agent run`).
    Plan {
        /// The goal, in words.
        #[arg(required = true)]
        goal: Vec<String>,
        #[arg(long)]
        provider: Option<String>,
    },
    /// Your graphs, newest first.
    List,
    /// A graph's nodes: state, attempts, error or result.
    Status {
        id: String,
    },
    /// Follow a graph's events until it is over (exit 1 unless it is done).
    Watch {
        id: String,
    },
    Cancel {
        id: String,
    },
    /// Approve a node that waits for it, or count a node of unknown outcome as done.
    Approve {
        id: String,
        node: String,
        /// For a node of unknown outcome: the result (JSON) to count it done with, when
        /// later nodes use its result.
        #[arg(long)]
        result: Option<String>,
    },
    /// Run a failed, skipped, cancelled or unknown node again.
    Retry {
        id: String,
        node: String,
    },
}

/// `agent run FILE [--watch]`: start the graph; with `--watch`, follow it to its end.
async fn run_graph(app: &AppHandle, file: &str, watch: bool, json: bool) -> Result<(), Failure> {
    let graph = read_spec(file)?;
    // Subscribe first, so nothing is missed between the start and the watch.
    let mut events = match watch {
        true => Some(
            app.subscribe(agent::EVENTS)
                .await
                .map_err(Failure::from_client)?,
        ),
        false => None,
    };
    let started = call(
        app,
        &agent::Run {
            graph,
            parent: None,
        },
    )
    .await?;
    match events.as_mut() {
        Some(events) => follow(app, events, &started.id, json).await,
        None => {
            print_answer(json, &started, |s| s.id.clone());
            Ok(())
        }
    }
}

pub async fn run(command: &AgentCommand, app: &AppHandle, json: bool) -> Result<(), Failure> {
    match command {
        AgentCommand::Run { file, watch } => run_graph(app, file, *watch, json).await,
        AgentCommand::Plan { goal, provider } => {
            let planned = call(
                app,
                &agent::Plan {
                    goal: goal.join(" "),
                    provider: provider.clone(),
                },
            )
            .await?;
            if json {
                print_json(&planned);
            } else {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&planned.graph).unwrap_or_default()
                );
            }
            Ok(())
        }
        AgentCommand::List => {
            let listed = call(app, &agent::List {}).await?;
            print_answer(json, &listed, |l| {
                l.graphs
                    .iter()
                    .map(|g| {
                        let counts: Vec<String> =
                            g.counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
                        format!(
                            "{}  {:<9} {:<28} {}  {}",
                            g.id,
                            state_name(g.state),
                            g.name,
                            format_ms(g.updated_ms),
                            counts.join(", ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        AgentCommand::Status { id } => {
            let graph = call(app, &agent::Get { id: id.clone() }).await?;
            print_answer(json, &graph, describe);
            Ok(())
        }
        AgentCommand::Watch { id } => {
            let mut events = app
                .subscribe(agent::EVENTS)
                .await
                .map_err(Failure::from_client)?;
            follow(app, &mut events, id, json).await
        }
        AgentCommand::Cancel { id } => changed(app, &agent::Cancel { id: id.clone() }, json).await,
        AgentCommand::Approve { id, node, result } => {
            let result = match result {
                Some(text) => Some(
                    serde_json::from_str(text)
                        .map_err(|e| Failure::Usage(format!("--result must be JSON ({e})")))?,
                ),
                None => None,
            };
            let ask = agent::Approve {
                id: id.clone(),
                node: node.clone(),
                result,
            };
            changed(app, &ask, json).await
        }
        AgentCommand::Retry { id, node } => {
            let ask = agent::Retry {
                id: id.clone(),
                node: node.clone(),
            };
            changed(app, &ask, json).await
        }
    }
}

/// cancel, approve, retry: send it, and say the graph's state after.
async fn changed<C: aether_proto::api::Call<Answer = agent::Changed>>(
    app: &AppHandle,
    ask: &C,
    json: bool,
) -> Result<(), Failure> {
    let changed = call(app, ask).await?;
    print_answer(json, &changed, |c| {
        format!("{}: {}", c.id, state_name(c.state))
    });
    Ok(())
}

fn read_spec(file: &str) -> Result<GraphSpec, Failure> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| Failure::Usage(format!("stdin: {e}")))?
    } else {
        let path = PathBuf::from(file);
        std::fs::read_to_string(&path)
            .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?
    };
    serde_json::from_str(&text).map_err(|e| Failure::Usage(format!("{file} is not a graph: {e}")))
}

fn state_name<T: serde::Serialize>(state: T) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn describe(graph: &agent::Graph) -> String {
    let mut out = vec![format!(
        "{}  {}  {}{}",
        graph.id,
        graph.name,
        state_name(graph.state),
        graph
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    )];
    for node in &graph.nodes {
        let detail = match (&node.error, &node.result) {
            (Some(error), _) => error.clone(),
            (None, Some(result)) => {
                let text = result.to_string();
                text.chars().take(80).collect()
            }
            _ => String::new(),
        };
        out.push(format!(
            "  {:<16} {:<12} {:<9} try {}  {}",
            node.id,
            node.tool,
            state_name(node.state),
            node.attempts,
            detail
        ));
    }
    out.join("\n")
}

/// Print the graph's events until it is over; its end decides the exit code.
async fn follow(
    app: &AppHandle,
    events: &mut aether_proto::client::Subscription,
    id: &str,
    json: bool,
) -> Result<(), Failure> {
    // It may have ended before the subscription: look once first.
    let graph = call(app, &agent::Get { id: id.to_owned() }).await?;
    if graph.state.is_over() {
        if json {
            print_json(&graph);
        } else {
            outln!("{}", describe(&graph));
        }
        return ended(&graph.id, graph.state, graph.error);
    }
    while let Some(msg) = events.next().await {
        let kind = match agent::GraphEvents::parse(&msg.topic) {
            Some(event) if event.id == id => event.kind.as_str(),
            _ => continue,
        };
        let data: Value = serde_json::from_str(msg.data.get()).unwrap_or(Value::Null);
        if json {
            outln!("{}", json!({ "event": kind, "data": data }));
        } else {
            match kind {
                "node" => {
                    outln!(
                        "{:<16} {}{}",
                        data["node"].as_str().unwrap_or_default(),
                        data["state"].as_str().unwrap_or_default(),
                        data["error"]
                            .as_str()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    );
                    // What a step that waits for you would do: in words, then exactly.
                    if let Ok(ask) = serde_json::from_value::<agent::Ask>(data["ask"].clone()) {
                        for line in ask.action.lines() {
                            outln!("  | {line}");
                        }
                        let args = serde_json::to_string_pretty(&ask.args).unwrap_or_default();
                        for line in args.lines() {
                            outln!("  | {line}");
                        }
                    }
                }
                "log" => outln!("  {}", data["line"].as_str().unwrap_or_default()),
                "state" => outln!("graph {id}: {}", data["state"].as_str().unwrap_or_default()),
                _ => {}
            }
        }
        if kind == "state" {
            let state: agent::StateEvent = serde_json::from_value(data)
                .map_err(|e| Failure::Usage(format!("a bad state event: {e}")))?;
            if state.state.is_over() {
                return ended(id, state.state, state.error);
            }
            if state.state == GraphState::Waiting && !json {
                outln!(
                    "  waiting for you: aetherctl agent approve {id} NODE (or agent status {id})"
                );
            }
        }
    }
    Err(Failure::Connect("the daemon closed the connection".into()))
}

fn ended(id: &str, state: GraphState, error: Option<String>) -> Result<(), Failure> {
    match state {
        GraphState::Done => Ok(()),
        _ => Err(Failure::Ended {
            what: format!("graph {id}"),
            how: state_name(state),
            why: error.unwrap_or_else(|| "no detail".into()),
        }),
    }
}
