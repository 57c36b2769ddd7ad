//! Goals: a line that starts with `?` (or names no command) goes to `agent.plan`; the plan
//! is shown and confirmed in a dialog, then run as a TaskGraph whose progress prints here
//! as it happens (the Agent Console shows the same graph). Steps that write or run a
//! program ask first, in a review that says what the step does in words and then shows its
//! arguments in full; so do the steps of a graph one of the plan's steps starts. Ctrl-C
//! cancels the graph.

use aether_proto::api::Event as _;
use aether_proto::api::agent::{self, GraphSpec, GraphState, NodeState};
use aether_proto::{ErrorBody, ErrorCode};
use serde_json::Value;

use super::{Msg, Terminal};
use app_kit::{Answer, Effect};

/// A goal on its way: planned, confirmed, run.
pub(crate) struct PlanRun {
    stage: Stage,
    /// The plan, once made: a step that asks is described from it.
    spec: Option<GraphSpec>,
    /// The command the line would have been, when it was not one.
    not_a_command: Option<String>,
    /// Events of graphs not known yet (`agent.run` may answer after the first ones).
    early: Vec<(String, Value)>,
    /// Graphs the plan's steps started (and theirs): their steps ask here too.
    nested: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Planning,
    Confirming,
    Starting,
    Running(String),
}

/// What the goal's requests and dialogs come back as.
pub enum GoalMsg {
    Planned(Answer<agent::Plan>),
    /// Run this plan?
    Confirmed(Box<GraphSpec>, bool),
    Ran(Answer<agent::Run>),
    /// The choice in the review asking to allow a step.
    Allow {
        graph: String,
        node: String,
        choice: Option<usize>,
    },
    /// The choice in the review asking what to do with a step whose outcome is unknown.
    Unknown {
        graph: String,
        node: String,
        choice: Option<usize>,
    },
    /// approve / cancel / retry sent: only a failure prints.
    Quiet(&'static str, Result<(), ErrorBody>),
}

impl GoalMsg {
    /// The user's answer to a dialog, not the daemon's to a request.
    pub fn is_dialog(&self) -> bool {
        matches!(
            self,
            GoalMsg::Confirmed(..) | GoalMsg::Allow { .. } | GoalMsg::Unknown { .. }
        )
    }
}

/// approve, cancel or retry: only whether it worked comes back.
fn quietly<C: aether_proto::api::Call>(
    term: &mut Terminal,
    what: &'static str,
    call: &C,
) -> Vec<Effect> {
    term.call(call, move |answer| {
        Msg::Goal(GoalMsg::Quiet(what, answer.map(|_| ())))
    })
}

const EARLY_EVENTS: usize = 256;

impl PlanRun {
    /// What the prompt says while a goal is on its way.
    pub fn prompt(&self) -> &'static str {
        match self.stage {
            Stage::Planning => "[planning… Ctrl-C drops it] ",
            Stage::Confirming => "[plan: answer the dialog] ",
            Stage::Starting | Stage::Running(_) => "[plan running; Ctrl-C cancels it] ",
        }
    }
}

/// Ask the AI to plan `goal`.
pub(super) fn plan(term: &mut Terminal, goal: &str, not_a_command: Option<&str>) -> Vec<Effect> {
    let goal = goal.trim();
    if goal.is_empty() {
        term.out
            .error("?: say what you want done, e.g. `? summarize /notes.txt into /summary.md`");
        return Vec::new();
    }
    if let Some(command) = not_a_command {
        term.out.note(&format!(
            "{command}: not a command (`help` lists them); asking the AI to plan the line as a goal"
        ));
    } else {
        term.out.note(&format!("planning: {goal}"));
    }
    term.plan = Some(PlanRun {
        stage: Stage::Planning,
        spec: None,
        not_a_command: not_a_command.map(str::to_owned),
        early: Vec::new(),
        nested: Vec::new(),
    });
    let mut effects = Vec::new();
    if term.agent_events.is_none() {
        let (ticket, listen) = term.requests.subscribe(agent::EVENTS);
        term.agent_events = Some(ticket);
        effects.push(listen);
    }
    let call = agent::Plan {
        goal: goal.to_owned(),
        provider: None,
    };
    effects.extend(term.call(&call, |answer| Msg::Goal(GoalMsg::Planned(answer))));
    effects
}

/// An answer to one of the goal's requests.
pub(super) fn answered(term: &mut Terminal, msg: GoalMsg) -> Vec<Effect> {
    match msg {
        GoalMsg::Planned(answer) => match answer {
            Ok(planned) if term.plan.is_some() => {
                show_plan(term, &planned.graph, &planned.model);
                if let Some(run) = term.plan.as_mut() {
                    run.stage = Stage::Confirming;
                    run.spec = Some(planned.graph.clone());
                }
                let question = format!(
                    "Run the plan \"{}\" ({} steps)? Steps that write or run programs ask first.",
                    planned.graph.name,
                    planned.graph.nodes.len()
                );
                let graph = Box::new(planned.graph);
                let confirm = term.requests.confirm(question, move |yes| {
                    Msg::Goal(GoalMsg::Confirmed(graph, yes))
                });
                vec![confirm]
            }
            // Dropped with Ctrl-C meanwhile.
            Ok(_) => Vec::new(),
            Err(e) => {
                let run = term.plan.take();
                let message = match (run.and_then(|r| r.not_a_command), e.code) {
                    // A typo with no AI about: a short word, not the whole how-to.
                    (Some(command), ErrorCode::Unavailable) => format!(
                        "{command}: no such command (`help` lists them); no AI is set up to \
                         plan it as a goal (`? goal` says how)"
                    ),
                    (Some(command), _) => format!(
                        "{command}: no such command, and it could not be planned: {}",
                        e.msg
                    ),
                    (None, ErrorCode::Forbidden) => {
                        format!("plan: {} (this app may not plan)", e.msg)
                    }
                    (None, _) => format!("plan: {}", e.msg),
                };
                term.out.error(&message);
                Vec::new()
            }
        },
        GoalMsg::Ran(answer) => match answer {
            Ok(started) => {
                term.out.note(&format!(
                    "running as graph {} (the Agent Console shows it too)",
                    started.id
                ));
                let early = match term.plan.as_mut() {
                    Some(run) => {
                        run.stage = Stage::Running(started.id.clone());
                        std::mem::take(&mut run.early)
                    }
                    None => Vec::new(),
                };
                let mut effects = Vec::new();
                for (topic, data) in early {
                    effects.extend(on_event(term, &topic, data));
                }
                effects
            }
            Err(e) => {
                term.plan = None;
                term.out.error(&format!("plan: {}", e.msg));
                Vec::new()
            }
        },
        GoalMsg::Quiet(what, answer) => {
            if let Err(e) = answer {
                term.out.error(&format!("{what}: {}", e.msg));
            }
            Vec::new()
        }
        dialog => decided(term, dialog),
    }
}

/// The user answered one of the goal's dialogs (a review dismissed counts as no).
pub(super) fn decided(term: &mut Terminal, msg: GoalMsg) -> Vec<Effect> {
    match msg {
        GoalMsg::Confirmed(graph, true) => {
            if let Some(run) = term.plan.as_mut() {
                run.stage = Stage::Starting;
            }
            let call = agent::Run::new(*graph);
            term.call(&call, |answer| Msg::Goal(GoalMsg::Ran(answer)))
        }
        GoalMsg::Confirmed(_, false) => {
            term.plan = None;
            term.out.note("the plan was not run");
            Vec::new()
        }
        GoalMsg::Allow {
            graph,
            node,
            choice: Some(0),
        }
        | GoalMsg::Unknown {
            graph,
            node,
            choice: Some(1),
        } => approve(term, graph, node),
        GoalMsg::Unknown {
            graph,
            node,
            choice: Some(0),
        } => quietly(term, "run it again", &agent::Retry { id: graph, node }),
        GoalMsg::Allow { node, .. } | GoalMsg::Unknown { node, .. } => {
            term.out
                .note(&format!("{node} not allowed: cancelling the plan"));
            let Some(Stage::Running(ours)) = term.plan.as_ref().map(|p| p.stage.clone()) else {
                return Vec::new();
            };
            // The plan's own graph: cancelling it cancels the graphs its steps started.
            quietly(term, "cancel", &agent::Cancel { id: ours })
        }
        GoalMsg::Planned(_) | GoalMsg::Ran(_) | GoalMsg::Quiet(..) => Vec::new(),
    }
}

fn approve(term: &mut Terminal, graph: String, node: String) -> Vec<Effect> {
    let call = agent::Approve {
        id: graph,
        node,
        result: None,
    };
    quietly(term, "approve", &call)
}

/// Ctrl-C: drop a plan being made, cancel one running. False when there is none.
pub(super) fn interrupt(term: &mut Terminal) -> Option<Vec<Effect>> {
    let stage = term.plan.as_ref()?.stage.clone();
    Some(match stage {
        Stage::Running(graph) => {
            term.out.note(&format!("^C: cancelling graph {graph}"));
            quietly(term, "cancel", &agent::Cancel { id: graph })
        }
        Stage::Planning | Stage::Confirming | Stage::Starting => {
            term.out.note("^C: the plan is dropped");
            term.plan = None;
            Vec::new()
        }
    })
}

fn show_plan(term: &mut Terminal, graph: &GraphSpec, model: &str) {
    let mut lines = vec![format!(
        "plan \"{}\" ({} steps, by {model}):",
        graph.name,
        graph.nodes.len()
    )];
    for (i, node) in graph.nodes.iter().enumerate() {
        lines.push(format!(
            "  {}. {}: {} {}",
            i + 1,
            node.id,
            node.tool,
            summary(&node.args, 60)
        ));
    }
    term.out.note(&lines.join("\n"));
}

/// A value on one line, cut to `max` characters.
fn summary(value: &Value, max: usize) -> String {
    let text = value.to_string();
    if text.chars().count() <= max {
        text
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// A graph's event: progress of ours prints; a step that asks becomes a dialog.
pub(super) fn on_event(term: &mut Terminal, topic: &str, data: Value) -> Vec<Effect> {
    let Some(agent::GraphEvent { id: graph, kind }) = agent::GraphEvents::parse(topic) else {
        return Vec::new();
    };
    let kind = kind.as_str();
    let Some(run) = term.plan.as_mut() else {
        return Vec::new();
    };
    let ours = match &run.stage {
        Stage::Running(ours) => ours.clone(),
        Stage::Starting => {
            if run.early.len() < EARLY_EVENTS {
                run.early.push((topic.to_owned(), data));
            }
            return Vec::new();
        }
        _ => return Vec::new(),
    };
    if graph != ours {
        // A graph one of ours started says so as it starts: from then on it is ours too.
        if kind == "state"
            && let Ok(event) = serde_json::from_value::<agent::StateEvent>(data.clone())
            && let Some(parent) = event.parent
            && (parent == ours || run.nested.contains(&parent))
            && !run.nested.iter().any(|g| g == graph)
        {
            run.nested.push(graph.to_owned());
            return Vec::new();
        }
        if !run.nested.iter().any(|g| g == graph) {
            return Vec::new();
        }
        // Of a nested graph only the steps that wait for the user show here.
        return match serde_json::from_value::<agent::NodeEvent>(data) {
            Ok(event)
                if kind == "node"
                    && matches!(event.state, NodeState::Approval | NodeState::Unknown) =>
            {
                node_event(term, graph, event)
            }
            _ => Vec::new(),
        };
    }
    match kind {
        "node" => {
            let Ok(event) = serde_json::from_value::<agent::NodeEvent>(data) else {
                return Vec::new();
            };
            node_event(term, graph, event)
        }
        "log" => Vec::new(),
        "state" => {
            let Ok(event) = serde_json::from_value::<agent::StateEvent>(data) else {
                return Vec::new();
            };
            match event.state {
                GraphState::Done => {
                    term.out.note("[plan done]");
                    term.plan = None;
                }
                GraphState::Failed | GraphState::Cancelled => {
                    let why = event.error.unwrap_or_else(|| "no detail".into());
                    term.out.error(&format!("[plan ended: {why}]"));
                    term.plan = None;
                }
                GraphState::Running | GraphState::Waiting => {}
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn node_event(term: &mut Terminal, graph: &str, event: agent::NodeEvent) -> Vec<Effect> {
    let node = &event.node;
    match event.state {
        NodeState::Running => term.out.note(&format!("▸ {node}…")),
        NodeState::Done => {
            term.out.note(&format!("✓ {node}"));
            // What a person wants to see of a step's result: text it made, output it printed.
            if let Some(result) = &event.result {
                for field in ["text", "stdout"] {
                    if let Some(text) = result.get(field).and_then(Value::as_str)
                        && !text.trim().is_empty()
                    {
                        term.out.print(text.trim_end());
                    }
                }
            }
        }
        NodeState::Retrying => term.out.note(&format!(
            "↻ {node}: {}; trying again",
            event.error.as_deref().unwrap_or("failed")
        )),
        NodeState::Failed => term.out.error(&format!(
            "✗ {node}: {}",
            event.error.as_deref().unwrap_or("failed")
        )),
        NodeState::Approval | NodeState::Unknown => {
            let (graph, node) = (graph.to_owned(), node.clone());
            // What the step does, in words then exactly; from the daemon, which filled in
            // its references and looked at the files it touches.
            let (action, detail) = match &event.ask {
                Some(ask) => (ask.action.clone(), crate::agents::detail(&ask.args)),
                None => {
                    let step = term
                        .plan
                        .as_ref()
                        .and_then(|p| p.spec.as_ref())
                        .and_then(|spec| spec.nodes.iter().find(|n| n.id == node));
                    (
                        step.map(|n| format!("{} {}", n.tool, summary(&n.args, 120)))
                            .unwrap_or_default(),
                        step.map(|n| crate::agents::detail(&n.args))
                            .unwrap_or_default(),
                    )
                }
            };
            let of_graph = match term.plan.as_ref().map(|p| &p.stage) {
                Some(Stage::Running(ours)) if *ours != graph => {
                    format!(" of graph {graph}, which a step of the plan started")
                }
                _ => String::new(),
            };
            let (question, options, unknown) = match event.state {
                NodeState::Unknown => (
                    format!(
                        "Step {node}{of_graph} was running when the daemon stopped: it may or \
                         may not have happened.\n{action}"
                    ),
                    vec![
                        "Run it again".to_owned(),
                        "Count it as done".to_owned(),
                        "Cancel the plan".to_owned(),
                    ],
                    true,
                ),
                _ => (
                    format!("Allow step {node}{of_graph}?\n{action}"),
                    vec!["Allow".to_owned(), "Don't: cancel the plan".to_owned()],
                    false,
                ),
            };
            let review = term
                .requests
                .review(question, detail, options, move |choice| {
                    Msg::Goal(match unknown {
                        true => GoalMsg::Unknown {
                            graph,
                            node,
                            choice,
                        },
                        false => GoalMsg::Allow {
                            graph,
                            node,
                            choice,
                        },
                    })
                });
            return vec![review];
        }
        NodeState::Pending | NodeState::Skipped | NodeState::Cancelled => {}
    }
    Vec::new()
}
