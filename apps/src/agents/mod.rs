//! The Agent Console: your TaskGraphs, the selected one's DAG with live node states, and
//! the selected node's arguments, result, error and log; approve, retry, cancel.

mod detail;
mod view;

pub(crate) use detail::detail;

use std::collections::HashMap;

use aether_proto::ErrorBody;
use aether_proto::api::Event as _;
use aether_proto::api::agent::{self, Graph, GraphState, GraphSummary, NodeState};
use serde_json::{Value, json};

use app_kit::widgets::ListWindow;
use app_kit::{
    Answer, App, AppKind, Effect, Event, Hint, Key, KeyCode, Level, Registration, Replies,
    Requests, Ticket, hint,
};

/// Log lines kept per graph.
const LOG_LINES: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Focus {
    #[default]
    Graphs,
    Nodes,
}

/// The registry's entry for this app.
pub const APP: AppKind = AppKind::of(&Registration {
    name: "agents",
    title: "Agent Console",
    manifest: "agents",
    standalone: true,
    launcher_key: Some('a'),
    opens: &[],
    launch: |_| Box::new(Agents::new()),
    restore: |state| Box::new(Agents::restore(state)),
});

#[derive(Default)]
pub struct Agents {
    requests: Requests<Msg>,
    events: Option<Ticket>,
    graphs: Vec<GraphSummary>,
    graph_list: ListWindow,
    /// The selected graph, kept current by its events.
    graph: Option<Graph>,
    node_list: ListWindow,
    /// Each node's depth in the DAG (its longest path from a root), in node order.
    depths: Vec<usize>,
    log: Vec<String>,
    focus: Focus,
    message: Option<(Level, String)>,
    /// The graph to select when the list arrives (a restored session).
    want: Option<String>,
    /// The list has come at least once.
    loaded: bool,
}

/// A step of a graph: (graph id, node id).
type Step = (String, String);

/// What the app's asks come back as.
pub enum Msg {
    Listed(Answer<agent::List>),
    Got(String, Answer<agent::Get>),
    /// Cancel this graph?
    Cancel(String, bool),
    /// The choice in the review of a step that waits for approval (or, `unknown`, whose
    /// outcome is unknown).
    Reviewed {
        step: Step,
        unknown: bool,
        choice: Option<usize>,
    },
    /// The result to count a step of unknown outcome done with, as typed.
    DoneWith(Step, Option<String>),
    /// approve, retry, cancel: the answer only says whether it worked.
    Commanded(&'static str, Result<(), ErrorBody>),
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Saved {
    graph: Option<String>,
}

impl Agents {
    pub fn new() -> Agents {
        Agents::default()
    }

    pub fn restore(state: &Value) -> Agents {
        let saved: Saved = serde_json::from_value(state.clone()).unwrap_or_default();
        Agents {
            want: saved.graph,
            ..Agents::new()
        }
    }

    fn refresh(&mut self) -> Vec<Effect> {
        vec![self.requests.call(&agent::List {}, Msg::Listed)]
    }

    fn get(&mut self, id: String) -> Effect {
        let call = agent::Get { id: id.clone() };
        self.requests.call(&call, |answer| Msg::Got(id, answer))
    }

    /// approve, retry or cancel: only whether it worked comes back.
    fn command<C: aether_proto::api::Call>(&mut self, what: &'static str, call: &C) -> Vec<Effect> {
        let ask = self.requests.call(call, move |answer: Answer<C>| {
            Msg::Commanded(what, answer.map(|_| ()))
        });
        vec![ask]
    }

    fn approve(&mut self, (id, node): Step, result: Option<Value>) -> Vec<Effect> {
        self.command("approve", &agent::Approve { id, node, result })
    }

    fn open_selected(&mut self) -> Vec<Effect> {
        let Some(id) = self
            .graphs
            .get(self.graph_list.selected)
            .map(|g| g.id.clone())
        else {
            return Vec::new();
        };
        if self.graph.as_ref().is_some_and(|g| g.id == id) {
            return Vec::new();
        }
        self.log.clear();
        vec![self.get(id)]
    }

    fn selected_node(&self) -> Option<&agent::Node> {
        self.graph
            .as_ref()
            .and_then(|g| g.nodes.get(self.node_list.selected))
    }

    fn on_key(&mut self, key: Key) -> Vec<Effect> {
        match key.code {
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = match self.focus {
                    Focus::Graphs if self.graph.is_some() => Focus::Nodes,
                    _ => Focus::Graphs,
                };
            }
            KeyCode::Enter | KeyCode::Right | KeyCode::Char('l')
                if self.focus == Focus::Graphs && self.graph.is_some() =>
            {
                self.focus = Focus::Nodes;
            }
            KeyCode::Left | KeyCode::Char('h') | KeyCode::Esc => self.focus = Focus::Graphs,
            KeyCode::Down | KeyCode::Char('j') => return self.move_by(1),
            KeyCode::Up | KeyCode::Char('k') => return self.move_by(-1),
            KeyCode::PageDown => return self.move_by(10),
            KeyCode::PageUp => return self.move_by(-10),
            KeyCode::Char('a') => return self.node_command(true),
            KeyCode::Char('r') => return self.node_command(false),
            KeyCode::Char('c') => {
                if let Some(graph) = &self.graph
                    && !graph.state.is_over()
                {
                    let id = graph.id.clone();
                    let question = format!("Cancel the graph \"{}\" ({id})?", graph.name);
                    let ask = self.requests.confirm(question, |yes| Msg::Cancel(id, yes));
                    return vec![ask];
                }
            }
            KeyCode::Char('R') | KeyCode::F(5) => return self.refresh(),
            _ => {}
        }
        Vec::new()
    }

    fn move_by(&mut self, delta: isize) -> Vec<Effect> {
        match self.focus {
            Focus::Graphs => {
                self.graph_list.move_by(delta, self.graphs.len());
                self.open_selected()
            }
            Focus::Nodes => {
                let len = self.graph.as_ref().map_or(0, |g| g.nodes.len());
                self.node_list.move_by(delta, len);
                Vec::new()
            }
        }
    }

    /// `a`: review the selected node (what it does in words, then its arguments in full)
    /// and approve it; `r`: retry it.
    fn node_command(&mut self, approve: bool) -> Vec<Effect> {
        let (Some(graph), Some(node)) = (self.graph.as_ref(), self.selected_node()) else {
            return Vec::new();
        };
        if approve && matches!(node.state, NodeState::Approval | NodeState::Unknown) {
            let unknown = node.state == NodeState::Unknown;
            let (action, args) = match &node.ask {
                Some(ask) => (ask.action.clone(), ask.args.clone()),
                None => (format!("{} (as written)", node.tool), node.args.clone()),
            };
            let question = if unknown {
                format!(
                    "Step {} was running when the daemon stopped: it may or may not have \
                     happened.\n{action}",
                    node.id
                )
            } else {
                format!("Allow step {}?\n{action}", node.id)
            };
            let options = if unknown {
                vec![
                    "Run it again".to_owned(),
                    "Count it as done".to_owned(),
                    "Count it as done with a result…".to_owned(),
                ]
            } else {
                vec!["Allow".to_owned(), "Not now".to_owned()]
            };
            let step = (graph.id.clone(), node.id.clone());
            let review = self
                .requests
                .review(question, detail(&args), options, move |choice| {
                    Msg::Reviewed {
                        step,
                        unknown,
                        choice,
                    }
                });
            return vec![review];
        }
        let (id, node) = (graph.id.clone(), node.id.clone());
        if approve {
            self.approve((id, node), None)
        } else {
            self.command("retry", &agent::Retry { id, node })
        }
    }

    /// The user's choice in a step's review.
    fn on_review(&mut self, step: Step, unknown: bool, choice: Option<usize>) -> Vec<Effect> {
        match (unknown, choice) {
            (false, Some(0)) | (true, Some(1)) => self.approve(step, None),
            (true, Some(0)) => {
                let (id, node) = step;
                self.command("retry", &agent::Retry { id, node })
            }
            (true, Some(2)) => {
                let question = format!(
                    "The result to count {} done with, as JSON (what later steps \
                     refer to must be in it), e.g. {{\"stdout\": \"ok\"}}",
                    step.1
                );
                let ask = self
                    .requests
                    .prompt(question, "", false, |text| Msg::DoneWith(step, text));
                vec![ask]
            }
            _ => Vec::new(),
        }
    }

    fn say(&mut self, level: Level, text: impl Into<String>) {
        self.message = Some((level, text.into()));
    }

    /// A graph's event: the open graph is updated in place; a graph not in the list
    /// (just started) brings the list up to date.
    fn on_delivery(&mut self, topic: &str, data: Value) -> Vec<Effect> {
        let Some(agent::GraphEvent { id, kind }) = agent::GraphEvents::parse(topic) else {
            return Vec::new();
        };
        let kind = kind.as_str();
        if kind == "state"
            && let Ok(event) = serde_json::from_value::<agent::StateEvent>(data.clone())
        {
            match self.graphs.iter_mut().find(|g| g.id == id) {
                Some(summary) => summary.state = event.state,
                None => return self.refresh(),
            }
        }
        let Some(graph) = self.graph.as_mut().filter(|g| g.id == id) else {
            return Vec::new();
        };
        match kind {
            "node" => {
                if let Ok(event) = serde_json::from_value::<agent::NodeEvent>(data)
                    && let Some(node) = graph.nodes.iter_mut().find(|n| n.id == event.node)
                {
                    node.state = event.state;
                    node.attempts = event.attempt;
                    node.error = event.error;
                    node.ask = event.ask;
                    if event.state == NodeState::Done {
                        node.result = event.result;
                    }
                }
            }
            "state" => {
                if let Ok(event) = serde_json::from_value::<agent::StateEvent>(data) {
                    graph.state = event.state;
                    graph.error = event.error;
                }
            }
            "log" => {
                if let Some(line) = data.get("line").and_then(Value::as_str) {
                    self.log.push(line.to_owned());
                    if self.log.len() > LOG_LINES {
                        self.log.remove(0);
                    }
                }
            }
            _ => {}
        }
        Vec::new()
    }
}

/// Each node's depth: 0 for a node that waits for none, else one more than the deepest
/// node it waits for.
fn depths(graph: &Graph) -> Vec<usize> {
    let index: HashMap<&str, usize> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut depth = vec![None; graph.nodes.len()];
    fn of(
        i: usize,
        graph: &Graph,
        index: &HashMap<&str, usize>,
        depth: &mut Vec<Option<usize>>,
        guard: usize,
    ) -> usize {
        if let Some(d) = depth[i] {
            return d;
        }
        // The daemon refuses cycles; the guard keeps a bad answer from recursing forever.
        if guard > graph.nodes.len() {
            return 0;
        }
        let d = graph.nodes[i]
            .needs
            .iter()
            .filter_map(|n| index.get(n.as_str()))
            .map(|&j| of(j, graph, index, depth, guard + 1) + 1)
            .max()
            .unwrap_or(0);
        depth[i] = Some(d);
        d
    }
    (0..graph.nodes.len())
        .map(|i| of(i, graph, &index, &mut depth, 0))
        .collect()
}

impl Replies for Agents {
    app_kit::replies_through!(requests: Msg);

    fn on(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Listed(answer) => match answer {
                Ok(listed) => {
                    self.loaded = true;
                    self.graphs = listed.graphs;
                    if let Some(want) = self.want.take()
                        && let Some(i) = self.graphs.iter().position(|g| g.id == want)
                    {
                        self.graph_list.select(i, self.graphs.len());
                    }
                    self.graph_list
                        .select(self.graph_list.selected, self.graphs.len());
                    return self.open_selected();
                }
                Err(e) => self.say(Level::Error, e.msg),
            },
            Msg::Got(id, answer) => match answer {
                Ok(graph) => {
                    self.depths = depths(&graph);
                    self.node_list = ListWindow::default();
                    self.graph = Some(graph);
                }
                Err(e) => self.say(Level::Error, format!("graph {id}: {}", e.msg)),
            },
            Msg::Commanded(what, answer) => match answer {
                Ok(()) => self.message = None,
                Err(e) => self.say(Level::Warn, format!("{what}: {}", e.msg)),
            },
            Msg::Cancel(id, true) => return self.command("cancel", &agent::Cancel { id }),
            Msg::Cancel(_, false) => {}
            Msg::Reviewed {
                step,
                unknown,
                choice,
            } => return self.on_review(step, unknown, choice),
            Msg::DoneWith(step, Some(text)) => match serde_json::from_str::<Value>(&text) {
                Ok(result) => return self.approve(step, Some(result)),
                Err(e) => self.say(Level::Warn, format!("that result is not JSON: {e}")),
            },
            Msg::DoneWith(_, None) => {}
        }
        Vec::new()
    }

    fn on_event(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Delivery {
                ticket,
                topic,
                data,
            } if Some(ticket) == self.events => self.on_delivery(&topic, data),
            Event::SubscribeFailed { error, .. } => {
                self.say(Level::Error, format!("live updates are off: {}", error.msg));
                Vec::new()
            }
            Event::Reconnected => {
                // What changed while away came with no event.
                let mut effects = self.refresh();
                if let Some(graph) = &self.graph {
                    let id = graph.id.clone();
                    effects.push(self.get(id));
                }
                effects
            }
            _ => Vec::new(),
        }
    }
}

impl App for Agents {
    app_kit::app_plumbing!(APP);

    fn title(&self) -> String {
        match &self.graph {
            Some(graph) => format!("Agents: {}", graph.name),
            None => "Agents".to_owned(),
        }
    }

    fn start(&mut self) -> Vec<Effect> {
        let (ticket, listen) = self.requests.subscribe(agent::EVENTS);
        self.events = Some(ticket);
        let mut effects = vec![listen];
        effects.extend(self.refresh());
        effects
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            hint("↑ ↓ j k", "move"),
            hint(
                "Tab Enter",
                "between the graphs and the selected graph's nodes",
            ),
            hint(
                "a",
                "review the node and approve it (or run an unknown one again, or count it done)",
            ),
            hint(
                "r",
                "run the node again (failed, skipped, cancelled, unknown)",
            ),
            hint("c", "cancel the graph"),
            hint("R F5", "refresh"),
        ]
    }

    fn busy(&self) -> Option<String> {
        let running = self
            .graphs
            .iter()
            .filter(|g| g.state == GraphState::Running)
            .count();
        (running > 0).then(|| match running {
            1 => "1 graph".to_owned(),
            n => format!("{n} graphs"),
        })
    }

    fn save(&self) -> Value {
        json!(Saved {
            graph: self.graph.as_ref().map(|g| g.id.clone()),
        })
    }
}

#[cfg(test)]
mod tests;
