//! `agent.*` and the executor. Each running graph has one driver task that owns its state:
//! it starts the nodes whose needs are done (as many at once as the user's share allows),
//! applies their outcomes, and takes the user's commands (approve, retry, cancel). Every
//! change is written to the store before it acts and then published as an event. At
//! start-up, graphs that were running resume: finished nodes stay finished, a node that
//! was running runs again if its tool may safely repeat, and otherwise waits for the user
//! with its outcome unknown.

mod ask;
mod exec;
mod plan;
mod refs;
mod spec;
mod stored;

/// What fuzzing reaches of the agents: a graph's check, references, and the ask's words.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::ask::words;
    pub use super::refs::resolve;
    pub use super::spec::check;
    pub use crate::services::tools::text_where_text_is_taken;
}

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aether_proto::api::Call as _;
use aether_proto::api::agent::{self, NodeState};
use aether_proto::{ErrorBody, ErrorCode};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::exec::Command;
use self::stored::GraphRun;
use super::{Handler, Incoming, OnBehalf, Publisher, Requester, Seat};
use crate::store::Store;

/// Nodes one user may have running at once, across all their graphs.
const NODES_PER_USER: usize = 4;
/// Graphs one user may have live (running or waiting) at once.
const GRAPHS_PER_USER: usize = 32;
/// Graphs `agent.list` gives.
const LIST_LIMIT: usize = 200;

pub struct Agents {
    store: Store,
    requester: Requester,
    publisher: Publisher,
    /// The live graphs' drivers, by graph id.
    live: parking_lot::Mutex<HashMap<String, Live>>,
    /// Held while a driver is started for a graph that had none, so two commands
    /// arriving together start one.
    starting: tokio::sync::Mutex<()>,
    /// Each user's share of running nodes.
    shares: parking_lot::Mutex<HashMap<i64, Arc<Semaphore>>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

struct Live {
    user_id: i64,
    commands: mpsc::UnboundedSender<Command>,
}

pub fn start(seat: Seat, store: Store) {
    let agents = Arc::new(Agents {
        store,
        requester: seat.requester(),
        publisher: seat.publisher(),
        live: parking_lot::Mutex::default(),
        starting: tokio::sync::Mutex::new(()),
        shares: parking_lot::Mutex::default(),
        shutdown: seat.shutdown(),
        tasks: seat.tasks(),
    });
    // Graphs are taken up before any request is served: a command for one must find
    // its driver, not start a second.
    let tasks = agents.tasks.clone();
    tasks.spawn(async move {
        if let Err(e) = agents.resume().await {
            tracing::error!("cannot resume agent graphs: {e:#}");
        }
        seat.run(agents);
    });
}

impl Handler for Agents {
    async fn handle(self: &Arc<Self>, request: &Incoming) -> super::Reply {
        let user_id = request.caller.user_id;
        match request.topic.as_str() {
            agent::Plan::TOPIC => {
                request
                    .call(|ask| async move {
                        plan::plan(&self.requester, &request.on_behalf(), ask).await
                    })
                    .await
            }
            agent::Run::TOPIC => {
                request
                    .call(|ask: agent::Run| self.run(request.on_behalf(), ask.graph, ask.parent))
                    .await
            }
            agent::Get::TOPIC => {
                request
                    .call(|ask: agent::Get| async move {
                        stored::load(&self.store, user_id, &ask.id)
                            .await
                            .map_err(internal)?
                            .map(|run| run.view())
                            .ok_or_else(|| no_graph(&ask.id))
                    })
                    .await
            }
            agent::List::TOPIC => {
                request
                    .call(|_: agent::List| async move {
                        Ok(agent::Listed {
                            graphs: stored::list(&self.store, user_id, LIST_LIMIT)
                                .await
                                .map_err(internal)?,
                        })
                    })
                    .await
            }
            agent::Cancel::TOPIC => {
                request
                    .call(|ask: agent::Cancel| {
                        self.command(request.on_behalf(), ask.id, |answer| Command::Cancel {
                            answer,
                        })
                    })
                    .await
            }
            agent::Approve::TOPIC => {
                request
                    .call(|ask: agent::Approve| {
                        let (node, result) = (ask.node, ask.result);
                        self.command(request.on_behalf(), ask.id, move |answer| {
                            Command::Approve {
                                node: node.clone(),
                                result: result.clone(),
                                answer,
                            }
                        })
                    })
                    .await
            }
            agent::Retry::TOPIC => {
                request
                    .call(|ask: agent::Retry| {
                        let node = ask.node;
                        self.command(request.on_behalf(), ask.id, move |answer| Command::Retry {
                            node: node.clone(),
                            answer,
                        })
                    })
                    .await
            }
            _ => Err(request.unknown()),
        }
    }
}

impl Agents {
    async fn run(
        self: &Arc<Self>,
        on: OnBehalf,
        spec: agent::GraphSpec,
        parent: Option<String>,
    ) -> Result<agent::Started, ErrorBody> {
        let checked = spec::check(&spec)?;
        let user_id = on.caller.user_id;
        // A graph started by a graph never has more freedom than its parent.
        let mut auto_approve = spec.auto_approve;
        if let Some(parent) = &parent {
            let started_by = stored::load(&self.store, user_id, parent)
                .await
                .map_err(internal)?
                .filter(|p| !p.state.is_over())
                .ok_or_else(|| {
                    ErrorBody::new(
                        ErrorCode::NotFound,
                        format!("`parent`: you have no live graph {parent}"),
                    )
                })?;
            auto_approve &= started_by.auto_approve;
        }
        let id = format!("g{:012x}", rand::random::<u64>() >> 16);
        // The count and the place are taken under one lock: concurrent runs cannot pass
        // the limit together.
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut live = self.live.lock();
            let mine = live.values().filter(|l| l.user_id == user_id).count();
            if mine >= GRAPHS_PER_USER {
                return Err(ErrorBody::new(
                    ErrorCode::RateLimited,
                    format!(
                        "you have {mine} graphs running or waiting, the most at once; \
                         cancel one or let one finish"
                    ),
                ));
            }
            live.insert(
                id.clone(),
                Live {
                    user_id,
                    commands: tx,
                },
            );
        }
        let run = GraphRun::new(
            id.clone(),
            user_id,
            on.app.clone(),
            &spec.name,
            auto_approve,
            parent.clone(),
            checked,
        );
        if let Err(e) = stored::insert(&self.store, &run).await {
            self.live.lock().remove(&id);
            return Err(internal(e));
        }
        // Watchers learn of the graph (and which graph started it) before its nodes move.
        self.publisher.publish(
            &on,
            &agent::GraphEvents::topic_of(&id, agent::GraphEventKind::State),
            &agent::StateEvent {
                state: run.state,
                error: None,
                parent,
            },
        );
        let agents = self.clone();
        self.tasks
            .spawn(async move { agents.driver(run, on, rx).await });
        Ok(agent::Started {
            topic: agent::GraphEvents::of(&id),
            id,
        })
    }

    /// Start a driver for `run` (which must not have one).
    fn drive(self: &Arc<Self>, run: GraphRun, on: OnBehalf) -> mpsc::UnboundedSender<Command> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.live.lock().insert(
            run.id.clone(),
            Live {
                user_id: run.user_id,
                commands: tx.clone(),
            },
        );
        let agents = self.clone();
        self.tasks
            .spawn(async move { agents.driver(run, on, rx).await });
        tx
    }

    fn share(&self, user_id: i64) -> Arc<Semaphore> {
        self.shares
            .lock()
            .entry(user_id)
            .or_insert_with(|| Arc::new(Semaphore::new(NODES_PER_USER)))
            .clone()
    }

    /// Send a command to the graph's driver, starting one for a graph that has none
    /// (a finished graph may be retried).
    async fn command(
        self: &Arc<Self>,
        on: OnBehalf,
        id: String,
        make: impl Fn(oneshot::Sender<Result<agent::Changed, ErrorBody>>) -> Command,
    ) -> Result<agent::Changed, ErrorBody> {
        let user_id = on.caller.user_id;
        // A driver may end just as the command is sent: then try again.
        for _ in 0..3 {
            let sender = match self.live.lock().get(&id) {
                Some(live) if live.user_id == user_id => Some(live.commands.clone()),
                Some(_) => return Err(no_graph(&id)),
                None => None,
            };
            let sender = match sender {
                Some(sender) => sender,
                None => {
                    let _starting = self.starting.lock().await;
                    if self.live.lock().contains_key(&id) {
                        continue;
                    }
                    let run = stored::load(&self.store, user_id, &id)
                        .await
                        .map_err(internal)?
                        .ok_or_else(|| no_graph(&id))?;
                    // The graph goes on as the app that started it, whoever steers it.
                    let on = OnBehalf {
                        app: run.app.clone(),
                        ..on.clone()
                    };
                    self.drive(run, on)
                }
            };
            let (answer, answered) = oneshot::channel();
            if sender.send(make(answer)).is_ok()
                && let Ok(result) = answered.await
            {
                return result;
            }
        }
        Err(ErrorBody::new(
            ErrorCode::Unavailable,
            "the graph is busy; try again",
        ))
    }

    /// At start-up: take up every graph that was running or waiting.
    async fn resume(self: &Arc<Self>) -> anyhow::Result<()> {
        let graphs = stored::unfinished(&self.store).await?;
        let count = graphs.len();
        for (mut run, caller) in graphs {
            let on = OnBehalf {
                app: run.app.clone(),
                caller,
                origin: None,
            };
            for index in 0..run.nodes.len() {
                let node = &run.nodes[index];
                let again = match node.state {
                    NodeState::Running => {
                        spec::effect(&node.tool, &node.args) != agent::Effect::Once
                    }
                    NodeState::Retrying => true,
                    _ => continue,
                };
                if again {
                    run.nodes[index].state = NodeState::Pending;
                } else {
                    // What it was doing, for the user who decides.
                    let args = exec::resolved(&run, index).unwrap_or_else(|_| node.args.clone());
                    let tool = node.tool.clone();
                    let ask = ask::ask(&self.requester, &on, &tool, &args).await;
                    let node = &mut run.nodes[index];
                    node.state = NodeState::Unknown;
                    node.ask = Some(ask);
                    node.error = Some(
                        "the daemon stopped while this ran, and running it again could repeat \
                         what it did: agent.retry runs it again, agent.approve counts it as \
                         done (with `result` as its result, if later nodes use it)"
                            .into(),
                    );
                }
                let node = &run.nodes[index];
                if let Err(e) = stored::save_node(&self.store, &run.id, node).await {
                    tracing::error!("graph {}: cannot store node {}: {e:#}", run.id, node.id);
                }
            }
            self.drive(run, on);
        }
        if count > 0 {
            tracing::info!("resumed {count} agent graphs");
        }
        Ok(())
    }
}

fn no_graph(id: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::NotFound, format!("you have no graph {id}"))
}

fn internal(e: anyhow::Error) -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, format!("{e:#}"))
}

/// Failures worth another try.
fn retryable(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Timeout
            | ErrorCode::Unavailable
            | ErrorCode::RateLimited
            | ErrorCode::NoResponders
    )
}

/// The wait before try `attempt + 1`: exponential from 250 ms, at most 30 s, with jitter.
fn backoff(attempt: u32) -> Duration {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempt.saturating_sub(1) as usize)
        .unwrap_or(Duration::from_secs(30))
}
