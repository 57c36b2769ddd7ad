//! One graph's driver: start what is ready, apply outcomes, take commands, settle the
//! graph's state; write each change before acting on it, then publish it.

use std::sync::Arc;

use aether_proto::api::agent::{self, Effect, GraphEventKind, GraphEvents, GraphState, NodeState};
use aether_proto::{ErrorBody, ErrorCode};
use futures_util::FutureExt;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::stored::{self, GraphRun};
use super::{Agents, ask, backoff, refs, retryable, spec};
use crate::services::OnBehalf;
use crate::services::tools;

pub enum Command {
    Approve {
        node: String,
        /// For a node of unknown outcome: the result to count it done with.
        result: Option<Value>,
        answer: oneshot::Sender<Result<agent::Changed, ErrorBody>>,
    },
    Retry {
        node: String,
        answer: oneshot::Sender<Result<agent::Changed, ErrorBody>>,
    },
    Cancel {
        answer: oneshot::Sender<Result<agent::Changed, ErrorBody>>,
    },
}

/// A node's try, as it ended: the node, which try it was, what came of it.
type Outcome = (usize, u32, Result<Value, ErrorBody>);

impl Agents {
    pub(super) async fn driver(
        self: Arc<Self>,
        mut run: GraphRun,
        on: OnBehalf,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        let mut calls: JoinSet<Outcome> = JoinSet::new();
        let mut waits: JoinSet<usize> = JoinSet::new();
        // Cancelling the graph stops its calls (and kills a program one started).
        let mut cancel = CancellationToken::new();
        loop {
            if !run.state.is_over() {
                self.start_ready(&mut run, &on, &mut calls, &cancel).await;
            }
            self.settle(&mut run, &on).await;
            if calls.is_empty() && waits.is_empty() && run.state.is_over() {
                // Leave only with no command queued: one sent now finds no driver and
                // starts another.
                let mut live = self.live.lock();
                if commands.is_empty() {
                    live.remove(&run.id);
                    return;
                }
            }
            tokio::select! {
                Some(joined) = calls.join_next(), if !calls.is_empty() => {
                    if let Ok((index, attempt, result)) = joined
                        // A try cancelled and since run again: its outcome is stale.
                        && run.nodes[index].attempts == attempt
                    {
                        self.finished(&mut run, &on, index, result, &mut waits).await;
                    }
                }
                Some(joined) = waits.join_next(), if !waits.is_empty() => {
                    if let Ok(index) = joined
                        && run.nodes[index].state == NodeState::Retrying
                    {
                        self.set(&mut run, &on, index, NodeState::Pending).await;
                    }
                }
                Some(command) = commands.recv() => {
                    self.obey(&mut run, &on, command, &mut cancel, &mut waits).await;
                }
                _ = self.shutdown.cancelled() => {
                    // Running nodes stay `running` in the store: the next start decides.
                    calls.abort_all();
                    self.live.lock().remove(&run.id);
                    return;
                }
            }
        }
    }

    /// Start every node whose needs are done; gates (approval) are decided here too.
    async fn start_ready(
        &self,
        run: &mut GraphRun,
        on: &OnBehalf,
        calls: &mut JoinSet<Outcome>,
        cancel: &CancellationToken,
    ) {
        let mut changed = true;
        while changed {
            changed = false;
            for index in 0..run.nodes.len() {
                let node = &run.nodes[index];
                if node.state != NodeState::Pending
                    || !node
                        .needs
                        .iter()
                        .all(|&n| run.nodes[n].state == NodeState::Done)
                {
                    continue;
                }
                let effect = spec::effect(&node.tool, &node.args);
                let gate = node.tool == agent::APPROVE;
                // Filled in first: the user approves what will run, not a template.
                let args = match resolved(run, index) {
                    Ok(args) => args,
                    Err(why) => {
                        self.fail(run, on, index, why).await;
                        changed = true;
                        continue;
                    }
                };
                let node = &run.nodes[index];
                if !node.approved && (gate || (!run.auto_approve && effect != Effect::Reads)) {
                    let tool = node.tool.clone();
                    run.nodes[index].ask = Some(ask::ask(&self.requester, on, &tool, &args).await);
                    self.set(run, on, index, NodeState::Approval).await;
                    continue;
                }
                run.nodes[index].ask = None;
                if gate {
                    run.nodes[index].result = Some(json!({ "approved": true }));
                    self.set(run, on, index, NodeState::Done).await;
                    changed = true;
                    continue;
                }
                run.nodes[index].attempts += 1;
                run.nodes[index].error = None;
                // Written before the call: after a crash, the store knows it may have run.
                self.set(run, on, index, NodeState::Running).await;
                let node = &run.nodes[index];
                let (tool, timeout, attempt) = (node.tool.clone(), node.timeout, node.attempts);
                // A graph this node starts gets no more freedom than this one.
                let context = tools::Context {
                    auto_approve: run.auto_approve,
                    parent: Some(run.id.clone()),
                };
                let (requester, on, share, cancel) = (
                    self.requester.clone(),
                    on.clone(),
                    self.share(run.user_id),
                    cancel.clone(),
                );
                calls.spawn(async move {
                    let turn = tokio::select! {
                        biased;
                        _ = cancel.cancelled() => None,
                        turn = share.acquire_owned() => turn.ok(),
                    };
                    let Some(_turn) = turn else {
                        return (
                            index,
                            attempt,
                            Err(ErrorBody::new(ErrorCode::Cancelled, "cancelled")),
                        );
                    };
                    // A tool that panics fails its node instead of leaving it running.
                    let call =
                        tools::call(&requester, &on, &context, &tool, args, timeout, &cancel);
                    let result = std::panic::AssertUnwindSafe(call)
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| {
                            Err(ErrorBody::new(
                                ErrorCode::Internal,
                                "the tool failed unexpectedly",
                            ))
                        });
                    (index, attempt, result)
                });
            }
        }
    }

    async fn finished(
        &self,
        run: &mut GraphRun,
        on: &OnBehalf,
        index: usize,
        result: Result<Value, ErrorBody>,
        waits: &mut JoinSet<usize>,
    ) {
        if run.nodes[index].state != NodeState::Running {
            return;
        }
        match result {
            Ok(value) => {
                run.nodes[index].result = Some(value);
                self.set(run, on, index, NodeState::Done).await;
            }
            Err(error)
                if retryable(error.code)
                    && run.nodes[index].attempts <= run.nodes[index].retries =>
            {
                let node = &mut run.nodes[index];
                node.error = Some(error.msg.clone());
                let wait = backoff(node.attempts);
                self.log(
                    run,
                    on,
                    format!(
                        "{}: {} ({}); trying again in {:.1} s",
                        run.nodes[index].id,
                        error.msg,
                        error.code,
                        wait.as_secs_f32()
                    ),
                );
                self.set(run, on, index, NodeState::Retrying).await;
                waits.spawn(async move {
                    tokio::time::sleep(wait).await;
                    index
                });
            }
            Err(error) => {
                self.fail(run, on, index, format!("{}: {}", error.code, error.msg))
                    .await
            }
        }
    }

    /// The node failed for good: so do what waits for it.
    async fn fail(&self, run: &mut GraphRun, on: &OnBehalf, index: usize, why: String) {
        self.log(run, on, format!("{} failed: {why}", run.nodes[index].id));
        run.nodes[index].error = Some(why);
        self.set(run, on, index, NodeState::Failed).await;
        self.skip_dependents(run, on, index).await;
    }

    async fn skip_dependents(&self, run: &mut GraphRun, on: &OnBehalf, index: usize) {
        let mut stack = vec![index];
        while let Some(at) = stack.pop() {
            for i in 0..run.nodes.len() {
                let node = &run.nodes[i];
                if node.needs.contains(&at)
                    && matches!(node.state, NodeState::Pending | NodeState::Approval)
                {
                    self.set(run, on, i, NodeState::Skipped).await;
                    stack.push(i);
                }
            }
        }
    }

    /// The graph's state from its nodes'; written and published when it changes.
    async fn settle(&self, run: &mut GraphRun, on: &OnBehalf) {
        if run.state == GraphState::Cancelled {
            return;
        }
        let any = |states: &[NodeState]| run.nodes.iter().any(|n| states.contains(&n.state));
        let (state, error) = if any(&[NodeState::Running, NodeState::Retrying]) {
            (GraphState::Running, None)
        } else if any(&[NodeState::Approval, NodeState::Unknown]) {
            (GraphState::Waiting, None)
        } else if run.nodes.iter().all(|n| n.state == NodeState::Done) {
            (GraphState::Done, None)
        } else if any(&[NodeState::Pending]) {
            // Pending nodes with every need done are started at once; these wait on
            // nodes that will not finish until the user acts.
            (GraphState::Waiting, None)
        } else {
            let failed = run
                .nodes
                .iter()
                .find(|n| matches!(n.state, NodeState::Failed | NodeState::Cancelled));
            (
                GraphState::Failed,
                failed.map(|n| {
                    format!(
                        "node {} failed: {}",
                        n.id,
                        n.error.as_deref().unwrap_or("no detail")
                    )
                }),
            )
        };
        if state != run.state || error != run.error {
            run.state = state;
            run.error = error;
            self.save_graph(run, on).await;
        }
    }

    async fn obey(
        &self,
        run: &mut GraphRun,
        on: &OnBehalf,
        command: Command,
        cancel: &mut CancellationToken,
        waits: &mut JoinSet<usize>,
    ) {
        match command {
            Command::Cancel { answer } => {
                let result = if run.state.is_over() {
                    Err(over(run))
                } else {
                    // Calls in flight end at once; their outcomes are ignored.
                    cancel.cancel();
                    waits.abort_all();
                    for i in 0..run.nodes.len() {
                        if !matches!(
                            run.nodes[i].state,
                            NodeState::Done | NodeState::Failed | NodeState::Skipped
                        ) {
                            self.set(run, on, i, NodeState::Cancelled).await;
                        }
                    }
                    run.state = GraphState::Cancelled;
                    run.error = Some("cancelled".into());
                    self.save_graph(run, on).await;
                    Ok(changed(run))
                };
                let _ = answer.send(result);
            }
            Command::Approve {
                node,
                result: given,
                answer,
            } => {
                let result = self.approve(run, on, &node, given).await;
                let _ = answer.send(result);
            }
            Command::Retry { node, answer } => {
                let result = match run.index.get(&node).copied() {
                    None => Err(no_node(run, &node)),
                    Some(i) => match run.nodes[i].state {
                        // It waits for a node that will not finish by itself: say which.
                        _ if blocked_by(run, i).is_some() => {
                            let blocker = blocked_by(run, i).unwrap_or_default();
                            Err(ErrorBody::new(
                                ErrorCode::Conflict,
                                format!(
                                    "node {node} waits for {blocker}, which did not finish: \
                                     retry {blocker} (what waits for it runs again with it)"
                                ),
                            ))
                        }
                        NodeState::Failed
                        | NodeState::Skipped
                        | NodeState::Cancelled
                        | NodeState::Unknown => {
                            // A cancelled graph taken up again gets calls that can run.
                            if cancel.is_cancelled() {
                                *cancel = CancellationToken::new();
                            }
                            self.reopen(run, on, i).await;
                            run.state = GraphState::Running;
                            run.error = None;
                            self.save_graph(run, on).await;
                            Ok(changed(run))
                        }
                        state => Err(ErrorBody::new(
                            ErrorCode::Conflict,
                            format!(
                                "node {node} cannot be retried: it is {} (only failed, skipped, \
                                 cancelled and unknown nodes are)",
                                state_name(state)
                            ),
                        )),
                    },
                };
                let _ = answer.send(result);
            }
        }
    }

    /// `agent.approve`: a node waiting for approval may run; one of unknown outcome counts
    /// as done, with the result given (or `assumed_done`), if what follows can use it.
    async fn approve(
        &self,
        run: &mut GraphRun,
        on: &OnBehalf,
        node: &str,
        given: Option<Value>,
    ) -> Result<agent::Changed, ErrorBody> {
        match run.index.get(node).copied() {
            None => Err(no_node(run, node)),
            Some(i) => match run.nodes[i].state {
                NodeState::Approval if given.is_some() => Err(ErrorBody::new(
                    ErrorCode::BadFrame,
                    format!(
                        "node {node} waits for approval: `result` is only for a node \
                         whose outcome is unknown"
                    ),
                )),
                NodeState::Approval => {
                    run.nodes[i].approved = true;
                    self.set(run, on, i, NodeState::Pending).await;
                    Ok(changed(run))
                }
                NodeState::Unknown => {
                    let done_with = given.unwrap_or_else(|| json!({ "assumed_done": true }));
                    match unmet_reference(run, i, &done_with) {
                        Some(why) => Err(ErrorBody::new(ErrorCode::Conflict, why)),
                        None => {
                            run.nodes[i].result = Some(done_with);
                            run.nodes[i].error = None;
                            run.nodes[i].ask = None;
                            self.set(run, on, i, NodeState::Done).await;
                            Ok(changed(run))
                        }
                    }
                }
                state => Err(ErrorBody::new(
                    ErrorCode::Conflict,
                    format!(
                        "node {node} is not waiting for approval: it is {}",
                        state_name(state)
                    ),
                )),
            },
        }
    }

    /// Make a node and everything after it that did not run pending again.
    async fn reopen(&self, run: &mut GraphRun, on: &OnBehalf, index: usize) {
        run.nodes[index].error = None;
        self.set(run, on, index, NodeState::Pending).await;
        let mut stack = vec![index];
        while let Some(at) = stack.pop() {
            for i in 0..run.nodes.len() {
                if run.nodes[i].needs.contains(&at)
                    && matches!(
                        run.nodes[i].state,
                        NodeState::Skipped | NodeState::Cancelled
                    )
                {
                    run.nodes[i].error = None;
                    self.set(run, on, i, NodeState::Pending).await;
                    stack.push(i);
                }
            }
        }
    }

    /// Change a node's state: write it, then say so.
    async fn set(&self, run: &mut GraphRun, on: &OnBehalf, index: usize, state: NodeState) {
        run.nodes[index].state = state;
        let node = &run.nodes[index];
        if let Err(e) = stored::save_node(&self.store, &run.id, node).await {
            tracing::error!("graph {}: cannot store node {}: {e:#}", run.id, node.id);
        }
        let event = agent::NodeEvent {
            node: node.id.clone(),
            state,
            attempt: node.attempts,
            error: node.error.clone(),
            result: (state == NodeState::Done)
                .then(|| node.result.clone())
                .flatten(),
            ask: matches!(state, NodeState::Approval | NodeState::Unknown)
                .then(|| node.ask.clone())
                .flatten(),
        };
        self.publisher.publish(
            on,
            &GraphEvents::topic_of(&run.id, GraphEventKind::Node),
            &event,
        );
    }

    async fn save_graph(&self, run: &mut GraphRun, on: &OnBehalf) {
        run.updated_ms = stored::now_ms();
        if let Err(e) = stored::save_graph(&self.store, run).await {
            tracing::error!("graph {}: cannot store its state: {e:#}", run.id);
        }
        let event = agent::StateEvent {
            state: run.state,
            error: run.error.clone(),
            parent: None,
        };
        self.publisher.publish(
            on,
            &GraphEvents::topic_of(&run.id, GraphEventKind::State),
            &event,
        );
    }

    fn log(&self, run: &GraphRun, on: &OnBehalf, line: String) {
        self.publisher.publish(
            on,
            &GraphEvents::topic_of(&run.id, GraphEventKind::Log),
            &agent::LogEvent { line },
        );
    }
}

/// Node `index`'s arguments with the results they refer to filled in.
pub(super) fn resolved(run: &GraphRun, index: usize) -> Result<Value, String> {
    let results = |name: &str| {
        run.index
            .get(name)
            .and_then(|&i| run.nodes[i].result.clone())
    };
    let mut args = refs::resolve(&run.nodes[index].args, &results)?;
    tools::text_where_text_is_taken(&run.nodes[index].tool, &mut args);
    Ok(args)
}

/// Why counting node `index` done with `result` would leave a node after it unable to
/// run: the first reference into it that `result` does not have.
fn unmet_reference(run: &GraphRun, index: usize, result: &Value) -> Option<String> {
    let id = &run.nodes[index].id;
    for node in run.nodes.iter().filter(|n| n.needs.contains(&index)) {
        let Ok(references) = refs::references(&node.args) else {
            continue;
        };
        for reference in references.iter().filter(|r| &r.node == id) {
            if let Err(why) = refs::lookup(reference, &|_| Some(result.clone())) {
                return Some(format!(
                    "node {} refers to {}: {why}. Give node {id} a result that has it \
                     (`result` in agent.approve), or run it again (agent.retry)",
                    node.id,
                    reference.written()
                ));
            }
        }
    }
    None
}

/// A node `index` waits for that is failed, cancelled or of unknown outcome (so will
/// not finish unless retried itself), if any.
fn blocked_by(run: &GraphRun, index: usize) -> Option<String> {
    let mut stack = run.nodes[index].needs.clone();
    let mut seen = std::collections::HashSet::new();
    while let Some(at) = stack.pop() {
        if !seen.insert(at) {
            continue;
        }
        let node = &run.nodes[at];
        match node.state {
            NodeState::Failed | NodeState::Cancelled | NodeState::Unknown => {
                return Some(node.id.clone());
            }
            NodeState::Skipped => stack.extend(node.needs.iter().copied()),
            _ => {}
        }
    }
    None
}

fn changed(run: &GraphRun) -> agent::Changed {
    agent::Changed {
        id: run.id.clone(),
        state: run.state,
    }
}

fn over(run: &GraphRun) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::Conflict,
        format!("graph {} is already over: {:?}", run.id, run.state).to_lowercase(),
    )
}

fn no_node(run: &GraphRun, node: &str) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::NotFound,
        format!("graph {} has no node {node:?}", run.id),
    )
}

fn state_name(state: NodeState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
