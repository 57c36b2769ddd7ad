//! `agent.plan`: a goal becomes a graph through the AI. The model is asked for JSON in the
//! graph's shape (structured output), and what it gives is checked exactly as a
//! hand-written graph is; if the check fails, the model is told why once and asked again.

use std::time::Duration;

use aether_proto::api::agent::{self, GraphSpec, MAX_GOAL_BYTES};
use aether_proto::api::ai::{self, GenerateAnswer};
use aether_proto::{ErrorBody, ErrorCode};
use serde_json::{Value, json};

use super::spec;
use crate::services::{OnBehalf, Requester};

/// Tries (the first, and one after telling the model what was wrong).
const ATTEMPTS: usize = 2;
const PLAN_TIMEOUT: Duration = Duration::from_secs(180);

const SYSTEM: &str = "You plan tasks for Aether, a terminal operating environment. You turn the \
user's goal into a task graph: JSON with a short `name` and a list of `nodes`. Each node has a \
unique `id` (letters, digits, _ or -), a `tool`, and `args` for it. A node may use an earlier \
node's result in its args: a string that is exactly \"${id.field}\" becomes that value; inside \
a longer string it is inserted as text (\"${read.data}\"); list items by index (\"${list.entries.0.name}\"). \
Referring to a node makes the node wait for it; `after` lists more nodes to wait for. Use only \
these tools, with exactly these args:\n\
- vfs.read {path}: a file; result {data, size}\n\
- vfs.list {path}: a folder; result {entries: [{name, kind, size}]}\n\
- vfs.stat {path}: result {kind, size, modified_ms}\n\
- vfs.search {query}: full-text search of the user's files; result {hits: [{path, line, text}]}\n\
- vfs.write {path, data}: write a whole text file; result {path, size}\n\
- vfs.mkdir {path, parents?}\n\
- vfs.remove {path, recursive?}\n\
- vfs.move {from, to} and vfs.copy {from, to}\n\
- vm.run {path, args?}: run a WebAssembly program from the user's files; result {code, stdout, stderr}\n\
- ai.generate {prompt, system?}: ask a language model; result {text}\n\
- approve {question}: wait for the user to say yes\n\
Paths are absolute, in the user's files (\"/notes/todo.md\"). Keep the graph small: the fewest \
nodes that reach the goal. Answer with the JSON only.";

/// The shape asked of the model: the graph, with the tools named.
fn schema() -> Value {
    let tools: Vec<&str> = agent::TOOLS.iter().map(|t| t.name).collect();
    json!({
        "type": "object",
        "properties": {
            "name": { "type": "string" },
            "nodes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": { "type": "string" },
                        "tool": { "type": "string", "enum": tools },
                        "args": { "type": "object" },
                        "after": { "type": "array", "items": { "type": "string" } },
                    },
                    "required": ["id", "tool", "args"],
                },
            },
        },
        "required": ["name", "nodes"],
    })
}

pub async fn plan(
    requester: &Requester,
    on: &OnBehalf,
    ask: agent::Plan,
) -> Result<agent::Planned, ErrorBody> {
    let goal = ask.goal.trim();
    if goal.is_empty() {
        return Err(ErrorBody::new(ErrorCode::BadFrame, "the goal is empty"));
    }
    if goal.len() > MAX_GOAL_BYTES {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!("the goal is {} bytes; at most {MAX_GOAL_BYTES}", goal.len()),
        ));
    }
    let mut prompt = format!("Goal: {goal}");
    let mut why = String::new();
    for _ in 0..ATTEMPTS {
        let request = ai::Generate {
            prompt: prompt.clone(),
            system: Some(SYSTEM.into()),
            provider: ask.provider.clone(),
            schema: Some(schema()),
            stream: false,
            ..Default::default()
        };
        // As the app that asked: it needs `ai_access`, like any other AI request.
        let answer = requester.request_as(on, &request, PLAN_TIMEOUT).await?;
        let GenerateAnswer::Done(done) = answer else {
            return Err(ErrorBody::new(
                ErrorCode::Internal,
                "ai.generate streamed when asked not to",
            ));
        };
        let json = done.json.unwrap_or(Value::Null);
        match checked(json) {
            Ok(graph) => {
                return Ok(agent::Planned {
                    graph,
                    provider: done.provider,
                    model: done.model,
                });
            }
            Err(problem) => {
                why = problem;
                prompt = format!(
                    "Goal: {goal}\n\nYour last plan was refused: {why}. Answer with a corrected plan."
                );
            }
        }
    }
    Err(ErrorBody::new(
        ErrorCode::Unavailable,
        format!("the AI did not make a valid plan: {why}"),
    ))
}

/// The model's JSON as a graph that passes the same check as a hand-written one. Planned
/// graphs always ask before writes and programs.
fn checked(json: Value) -> Result<GraphSpec, String> {
    let mut graph: GraphSpec =
        serde_json::from_value(json).map_err(|e| format!("it is not a graph ({e})"))?;
    graph.auto_approve = false;
    for node in &mut graph.nodes {
        if node.args.is_null() {
            node.args = json!({});
        }
    }
    spec::check(&graph).map_err(|e| e.msg)?;
    Ok(graph)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_models_plan_is_checked_like_any_graph() {
        let good = json!({ "name": "n", "nodes": [
            { "id": "a", "tool": "vfs.list", "args": { "path": "/" } },
            { "id": "b", "tool": "sys.ping", "args": null },
        ]});
        assert!(!checked(good).unwrap().auto_approve);
        let unknown =
            json!({ "name": "n", "nodes": [{ "id": "a", "tool": "rm -rf", "args": {} }] });
        assert!(checked(unknown).unwrap_err().contains("no tool"));
        let cycle = json!({ "name": "n", "nodes": [
            { "id": "a", "tool": "sys.ping", "args": {}, "after": ["a"] }] });
        assert!(checked(cycle).is_err());
        assert!(
            checked(json!("just words"))
                .unwrap_err()
                .contains("not a graph")
        );
    }
}
