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

use app_kit::app::{
    App, AppKind, Effect, Event, Hint, Level, Payload, Registration, Ticket, Tickets, decode, hint,
};
use app_kit::key::{Key, KeyCode};
use app_kit::widgets::ListWindow;

/// Log lines kept per graph.
const LOG_LINES: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Focus {
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

pub struct Agents {
    tickets: Tickets,
    pending: HashMap<Ticket, Pending>,
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

#[derive(Debug, Clone)]
enum Pending {
    List,
    Get(String),
    ConfirmCancel(String),
    /// The review of a step that waits for approval, or whose outcome is unknown.
    Review {
        graph: String,
        node: String,
        unknown: bool,
    },
    /// The result to count a step of unknown outcome done with.
    DoneWith {
        graph: String,
        node: String,
    },
    /// approve, retry, cancel: the answer only says whether it worked.
    Command(&'static str),
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Saved {
    graph: Option<String>,
}

impl Agents {
    pub fn new() -> Agents {
        Agents {
            tickets: Tickets::default(),
            pending: HashMap::new(),
            events: None,
            graphs: Vec::new(),
            graph_list: ListWindow::default(),
            graph: None,
            node_list: ListWindow::default(),
            depths: Vec::new(),
            log: Vec::new(),
            focus: Focus::Graphs,
            message: None,
            want: None,
            loaded: false,
        }
    }

    pub fn restore(state: &Value) -> Agents {
        let saved: Saved = serde_json::from_value(state.clone()).unwrap_or_default();
        Agents {
            want: saved.graph,
            ..Agents::new()
        }
    }

    fn request<C: aether_proto::api::Call>(&mut self, pending: Pending, call: &C) -> Vec<Effect> {
        let ticket = self.tickets.issue();
        self.pending.insert(ticket, pending);
        vec![Effect::request(ticket, call)]
    }

    fn refresh(&mut self) -> Vec<Effect> {
        self.request(Pending::List, &agent::List {})
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
        self.request(Pending::Get(id.clone()), &agent::Get { id })
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
                    let ticket = self.tickets.issue();
                    let id = graph.id.clone();
                    let question = format!("Cancel the graph \"{}\" ({id})?", graph.name);
                    self.pending.insert(ticket, Pending::ConfirmCancel(id));
                    return vec![Effect::Confirm { ticket, question }];
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
            let pending = Pending::Review {
                graph: graph.id.clone(),
                node: node.id.clone(),
                unknown,
            };
            let ticket = self.tickets.issue();
            self.pending.insert(ticket, pending);
            return vec![Effect::Review {
                ticket,
                question,
                detail: detail(&args),
                options,
            }];
        }
        let (id, node) = (graph.id.clone(), node.id.clone());
        if approve {
            self.request(
                Pending::Command("approve"),
                &agent::Approve {
                    id,
                    node,
                    result: None,
                },
            )
        } else {
            self.request(Pending::Command("retry"), &agent::Retry { id, node })
        }
    }

    fn on_answer(&mut self, pending: Pending, result: Result<Payload, ErrorBody>) -> Vec<Effect> {
        match pending {
            Pending::List => match decode::<agent::List>(result) {
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
            Pending::Get(id) => match decode::<agent::Get>(result) {
                Ok(graph) => {
                    self.depths = depths(&graph);
                    self.node_list = ListWindow::default();
                    self.graph = Some(graph);
                }
                Err(e) => self.say(Level::Error, format!("graph {id}: {}", e.msg)),
            },
            Pending::Command(what) => match result {
                Ok(_) => self.message = None,
                Err(e) => self.say(Level::Warn, format!("{what}: {}", e.msg)),
            },
            Pending::ConfirmCancel(_) | Pending::Review { .. } | Pending::DoneWith { .. } => {}
        }
        Vec::new()
    }

    /// The user's choice in a step's review.
    fn on_review(
        &mut self,
        graph: String,
        node: String,
        unknown: bool,
        choice: Option<usize>,
    ) -> Vec<Effect> {
        let approve = |agents: &mut Agents, graph: String, node: String, result: Option<Value>| {
            agents.request(
                Pending::Command("approve"),
                &agent::Approve {
                    id: graph,
                    node,
                    result,
                },
            )
        };
        match (unknown, choice) {
            (false, Some(0)) | (true, Some(1)) => approve(self, graph, node, None),
            (true, Some(0)) => {
                self.request(Pending::Command("retry"), &agent::Retry { id: graph, node })
            }
            (true, Some(2)) => {
                let ticket = self.tickets.issue();
                self.pending.insert(
                    ticket,
                    Pending::DoneWith {
                        graph,
                        node: node.clone(),
                    },
                );
                vec![Effect::Prompt {
                    ticket,
                    question: format!(
                        "The result to count {node} done with, as JSON (what later steps \
                         refer to must be in it), e.g. {{\"stdout\": \"ok\"}}"
                    ),
                    initial: String::new(),
                    secret: false,
                }]
            }
            _ => Vec::new(),
        }
    }

    fn say(&mut self, level: Level, text: impl Into<String>) {
        self.message = Some((level, text.into()));
    }

    /// A graph's event: the open graph is updated in place; a graph not in the list
    /// (just started) brings the list up to date.
    fn on_event(&mut self, topic: &str, data: Value) -> Vec<Effect> {
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

impl Default for Agents {
    fn default() -> Self {
        Agents::new()
    }
}

impl App for Agents {
    fn kind(&self) -> AppKind {
        APP
    }

    fn title(&self) -> String {
        match &self.graph {
            Some(graph) => format!("Agents: {}", graph.name),
            None => "Agents".to_owned(),
        }
    }

    fn start(&mut self) -> Vec<Effect> {
        let ticket = self.tickets.issue();
        self.events = Some(ticket);
        let mut effects = vec![Effect::Subscribe {
            ticket,
            pattern: agent::EVENTS.to_owned(),
        }];
        effects.extend(self.refresh());
        effects
    }

    fn update(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Answer { ticket, result } => match self.pending.remove(&ticket) {
                Some(pending) => self.on_answer(pending, result),
                None => Vec::new(),
            },
            Event::Delivery {
                ticket,
                topic,
                data,
            } if Some(ticket) == self.events => self.on_event(&topic, data),
            Event::SubscribeFailed { error, .. } => {
                self.say(Level::Error, format!("live updates are off: {}", error.msg));
                Vec::new()
            }
            Event::Confirmed { ticket, yes } => match self.pending.remove(&ticket) {
                Some(Pending::ConfirmCancel(id)) if yes => {
                    self.request(Pending::Command("cancel"), &agent::Cancel { id })
                }
                _ => Vec::new(),
            },
            Event::Chose { ticket, index } => match self.pending.remove(&ticket) {
                Some(Pending::Review {
                    graph,
                    node,
                    unknown,
                }) => self.on_review(graph, node, unknown, index),
                _ => Vec::new(),
            },
            Event::Prompted { ticket, text } => match self.pending.remove(&ticket) {
                Some(Pending::DoneWith { graph, node }) => match text {
                    Some(text) => match serde_json::from_str::<Value>(&text) {
                        Ok(result) => self.request(
                            Pending::Command("approve"),
                            &agent::Approve {
                                id: graph,
                                node,
                                result: Some(result),
                            },
                        ),
                        Err(e) => {
                            self.say(Level::Warn, format!("that result is not JSON: {e}"));
                            Vec::new()
                        }
                    },
                    None => Vec::new(),
                },
                _ => Vec::new(),
            },
            Event::Reconnected => {
                // What changed while away came with no event.
                let mut effects = self.refresh();
                if let Some(graph) = &self.graph {
                    let id = graph.id.clone();
                    effects.extend(self.request(Pending::Get(id.clone()), &agent::Get { id }));
                }
                effects
            }
            _ => Vec::new(),
        }
    }

    fn view(
        &self,
        area: ratatui::layout::Rect,
        buf: &mut ratatui::buffer::Buffer,
        cx: &app_kit::app::ViewCx,
    ) {
        view::render(self, area, buf, cx)
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
