//! `agent.*`: TaskGraphs. A graph is a DAG of nodes; each node calls one tool, and every
//! tool is a bus request made as the app that started the graph, so the permission check
//! that app passes is the only one there is. Graphs are stored before anything runs and
//! every state change is written before it acts, so a restarted daemon resumes them.
//!
//! A node's `args` may refer to earlier nodes' results: a string that is exactly
//! `${node}` or `${node.path.to.field}` becomes that value (any JSON type); `${…}` inside
//! a longer string is replaced by the value as text. A path step is a field name or a list
//! index (`${list.entries.0.name}`). Referring to a node makes it a dependency; `after`
//! adds dependencies without referring. Write `$${` for a literal `${`.
//!
//! Live events, on your namespace: `agent.graph.<id>.state` (the graph's state),
//! `agent.graph.<id>.node` (a node's state, attempt, error and result) and
//! `agent.graph.<id>.log` (a line of what happened).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Call, ai, calls, sys, vfs, vm};

super::event::id_events! {
    /// A graph's events: `agent.graph.<id>.state` ([`StateEvent`]), `.node` ([`NodeEvent`])
    /// and `.log` ([`LogEvent`]).
    GraphEvents, GraphEvent, GraphEventKind, "agent.graph",
    { State => "state", Node => "node", Log => "log" }
}

/// Where graphs' events go.
pub const EVENTS: &str = <GraphEvents as super::Event>::PATTERN;
/// The most nodes one graph may have.
pub const MAX_NODES: usize = 1000;
/// The most bytes a graph's spec may take as JSON.
pub const MAX_SPEC_BYTES: usize = 1 << 20;

/// The tools a node may call: bus requests, each built from the [`Call`] it makes (its
/// topic, its arguments' schema and check), plus `approve` (a gate that waits for the user).
/// The one list of tools: the checker, the planner and the AI's tool calling read it.
pub const TOOLS: &[ToolInfo] = &[
    ToolInfo::call::<vfs::Read>(Effect::Reads),
    ToolInfo::call::<vfs::List>(Effect::Reads),
    ToolInfo::call::<vfs::Stat>(Effect::Reads),
    ToolInfo::call::<vfs::Search>(Effect::Reads),
    ToolInfo::call::<vfs::Write>(Effect::Idempotent),
    ToolInfo::call::<vfs::Mkdir>(Effect::Idempotent),
    ToolInfo::call::<vfs::Remove>(Effect::Once),
    ToolInfo::call::<vfs::Move>(Effect::Once),
    ToolInfo::call::<vfs::Copy>(Effect::Idempotent),
    ToolInfo::call::<vm::Run>(Effect::Once),
    ToolInfo::call::<ai::Generate>(Effect::Reads),
    ToolInfo::call::<sys::Ping>(Effect::Reads),
    ToolInfo {
        name: APPROVE,
        effect: Effect::Reads,
        schema: None,
        check: check_approve,
    },
    // Another graph, run to its end: what it does is its own nodes' business.
    ToolInfo::call::<Run>(Effect::Once),
];

/// The tool that waits for the user's yes.
pub const APPROVE: &str = "approve";

fn check_approve(args: &Value) -> Result<(), String> {
    match args.get("question") {
        Some(Value::String(_)) => Ok(()),
        _ => Err("bad arguments for approve: `question` (text) is missing".into()),
    }
}

/// What running a tool does to the world, which decides two things: whether the policy
/// asks before it runs, and whether it may simply run again after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Reads only: safe to repeat, never asks.
    Reads,
    /// Changes files, but doing it twice leaves them as doing it once (a whole-file write).
    Idempotent,
    /// Doing it twice may differ (a program's run, a move): after a crash mid-call its
    /// outcome is unknown, and the user decides.
    Once,
}

#[derive(Debug, Clone, Copy)]
pub struct ToolInfo {
    pub name: &'static str,
    pub effect: Effect,
    /// The JSON Schema of its arguments (its request type); None for `approve`.
    schema: Option<fn() -> Value>,
    /// Do these arguments read as its request?
    check: fn(&Value) -> Result<(), String>,
}

impl ToolInfo {
    /// The tool that makes the request `C`.
    const fn call<C: Call>(effect: Effect) -> ToolInfo {
        ToolInfo {
            name: C::TOPIC,
            effect,
            schema: Some(inline_schema::<C>),
            check: decode::<C>,
        }
    }

    /// Do `args` read as this tool's request?
    pub fn check(&self, args: &Value) -> Result<(), String> {
        (self.check)(args)
    }

    /// The JSON Schema of its arguments, self-contained (no `$ref`), for a model's
    /// function declarations.
    pub fn schema(&self) -> Option<Value> {
        self.schema.map(|schema| schema())
    }
}

fn decode<C: Call>(args: &Value) -> Result<(), String> {
    C::deserialize(args)
        .map(|_| ())
        .map_err(|e| format!("bad arguments for {}: {e}", C::TOPIC))
}

fn inline_schema<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft07()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut schema =
        serde_json::to_value(generator.into_root_schema_for::<T>()).unwrap_or(Value::Null);
    if let Some(fields) = schema.as_object_mut() {
        fields.remove("$schema");
        fields.remove("title");
        fields.remove("description");
    }
    schema
}

pub fn tool(name: &str) -> Option<&'static ToolInfo> {
    TOOLS.iter().find(|t| t.name == name)
}

/// The JSON Schema of a tool's arguments (its request type), self-contained (no `$ref`),
/// for a model's function declarations.
pub fn tool_schema(name: &str) -> Option<Value> {
    tool(name)?.schema()
}

/// A graph as written (by hand or by `agent.plan`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphSpec {
    pub name: String,
    pub nodes: Vec<NodeSpec>,
    /// Run writes and programs without asking first (default: ask before each).
    #[serde(default)]
    pub auto_approve: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Unique in the graph: letters, digits, `_` and `-`.
    pub id: String,
    /// One of [`TOOLS`].
    pub tool: String,
    /// The tool's request (with `${…}` references), or for `approve`, `{question}`.
    #[serde(default)]
    pub args: Value,
    /// Nodes that must be done first, besides those `args` refers to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Tries after the first when the tool fails in a way worth retrying (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// The longest one try may take (default 60 s; `vm.run` waits for the program).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GraphState {
    Running,
    /// Nothing can run until the user answers (an approval, an unknown outcome).
    Waiting,
    Done,
    Failed,
    Cancelled,
}

impl GraphState {
    pub fn is_over(self) -> bool {
        matches!(
            self,
            GraphState::Done | GraphState::Failed | GraphState::Cancelled
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    Pending,
    /// Waits for `agent.approve`.
    Approval,
    Running,
    /// Waiting to try again after a failure.
    Retrying,
    Done,
    Failed,
    /// A node it depends on failed or was cancelled.
    Skipped,
    Cancelled,
    /// It was running when the daemon stopped, and running it again might repeat an
    /// effect: `agent.retry` runs it again, `agent.approve` counts it as done.
    Unknown,
}

/// A graph as it stands.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Graph {
    pub id: String,
    pub name: String,
    pub state: GraphState,
    /// The app that started it: every tool call is made as this app.
    pub app: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub nodes: Vec<Node>,
    pub auto_approve: bool,
    /// The graph whose `agent.run` node started this one: it never has more freedom than
    /// that graph (`auto_approve` only if the parent has it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Node {
    pub id: String,
    pub tool: String,
    pub args: Value,
    /// Every node it waits for (from `after` and from its references).
    pub needs: Vec<String>,
    pub state: NodeState,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the node would do, for a person deciding (set while it waits for approval
    /// or its outcome is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<Ask>,
}

/// What a node waiting for the user would do: first in words, then exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ask {
    /// The action in words, one line a sentence: which file is replaced, created,
    /// removed or moved, which program runs with what, what a nested graph would do.
    pub action: String,
    /// The arguments the tool gets, references filled in: the whole of them.
    pub args: Value,
}

/// A graph's summary, for lists.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GraphSummary {
    pub id: String,
    pub name: String,
    pub state: GraphState,
    pub app: String,
    pub updated_ms: i64,
    /// How many nodes are in each state.
    pub counts: BTreeMap<String, usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// Run a graph: it is checked, stored, and started; the answer comes at once.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Run {
    pub graph: GraphSpec,
    /// The graph (of yours, still live) whose node starts this one, as the executor
    /// says when a node's tool is `agent.run`. The new graph gets no more freedom than
    /// it: `auto_approve` holds only if the parent's does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

impl Run {
    /// A graph of its own, started by no graph.
    pub fn new(graph: GraphSpec) -> Run {
        Run {
            graph,
            parent: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Started {
    pub id: String,
    /// `agent.graph.<id>`.
    pub topic: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Get {
    pub id: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct List {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Listed {
    /// Newest first.
    pub graphs: Vec<GraphSummary>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    pub id: String,
}

/// Approve a node that waits for it, or count a node of unknown outcome as done (with
/// `result` as its result; what refers into the result must find it there).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    pub id: String,
    pub node: String,
    /// For a node of unknown outcome only: the result it is counted as done with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

/// Run a failed, skipped, cancelled or unknown node again (and what depends on it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    pub id: String,
    pub node: String,
}

/// What `agent.cancel`, `agent.approve` and `agent.retry` answer: the graph afterwards.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Changed {
    pub id: String,
    pub state: GraphState,
}

/// `agent.graph.<id>.node`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NodeEvent {
    pub node: String,
    pub state: NodeState,
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Set when the node waits for approval or its outcome is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<Ask>,
}

/// `agent.graph.<id>.state`. A graph's first one (`running`) is published as it starts,
/// naming the graph that started it, if one did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StateEvent {
    pub state: GraphState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// `agent.graph.<id>.log`: a line of what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogEvent {
    pub line: String,
}

/// Turn a goal into a graph through the AI. The graph is checked like a hand-written one
/// and given back, not run: run it with `agent.run` (writes and programs still ask).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub goal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Planned {
    pub graph: GraphSpec,
    pub provider: String,
    pub model: String,
}

/// The longest goal `agent.plan` takes.
pub const MAX_GOAL_BYTES: usize = 16 * 1024;

calls! {
    Plan => Planned, "agent.plan";
    Run => Started, "agent.run";
    Get => Graph, "agent.get";
    List => Listed, "agent.list";
    Cancel => Changed, "agent.cancel";
    Approve => Changed, "agent.approve";
    Retry => Changed, "agent.retry";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_written_graph_reads() {
        let spec: GraphSpec = serde_json::from_str(
            r#"{"name":"n","nodes":[{"id":"a","tool":"vfs.read","args":{"path":"/x"}},
            {"id":"b","tool":"vfs.write","args":{"path":"/y","data":"${a.data}"},"retries":0}]}"#,
        )
        .unwrap();
        assert_eq!(spec.nodes[1].retries, Some(0));
        assert!(!spec.auto_approve);
        assert!(serde_json::from_str::<GraphSpec>(r#"{"name":"n","nodes":[],"x":1}"#).is_err());
    }

    #[test]
    fn tool_schemas_are_self_contained() {
        let write = tool_schema("vfs.write").unwrap();
        assert_eq!(write["type"], "object");
        assert!(write["properties"]["path"].is_object());
        assert!(!write.to_string().contains("$ref"), "{write}");
        assert!(tool_schema("approve").is_none());
    }

    #[test]
    fn every_tool_but_approve_is_a_topic() {
        for tool in TOOLS.iter().filter(|t| t.name != "approve") {
            assert!(crate::Topic::parse(tool.name).is_ok(), "{}", tool.name);
        }
        assert_eq!(tool("vm.run").map(|t| t.effect), Some(Effect::Once));
        assert!(tool("sys.user.add").is_none());
    }
}
