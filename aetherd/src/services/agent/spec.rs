//! Checking a graph before anything of it runs: names, tools, each node's arguments
//! against its tool's request type, references to nodes that exist, no cycles, a size
//! limit. What passes is a graph whose every node knows what it waits for.

use std::collections::{BTreeSet, HashMap};

use aether_proto::api::agent::{self, Effect, GraphSpec, MAX_NODES, NodeSpec};
use aether_proto::{ErrorBody, ErrorCode};
use petgraph::graph::DiGraph;
use serde_json::Value;

use super::refs;
use crate::services::tools::check_args;

/// A node of a checked graph: its spec and every node it waits for.
#[derive(Debug, Clone)]
pub struct Checked {
    pub spec: NodeSpec,
    pub needs: Vec<String>,
}

/// Check `spec`; the nodes in the order written, each with what it needs.
pub fn check(spec: &GraphSpec) -> Result<Vec<Checked>, ErrorBody> {
    if spec.name.trim().is_empty() || spec.name.len() > 200 {
        return Err(bad(
            "the graph's `name` must have 1 to 200 characters".into()
        ));
    }
    if spec.nodes.is_empty() {
        return Err(bad("the graph has no nodes".into()));
    }
    if spec.nodes.len() > MAX_NODES {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!(
                "the graph has {} nodes; at most {MAX_NODES}",
                spec.nodes.len()
            ),
        ));
    }
    let mut index = HashMap::new();
    for (i, node) in spec.nodes.iter().enumerate() {
        let valid = !node.id.is_empty()
            && node.id.len() <= 64
            && node
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        if !valid {
            return Err(bad(format!(
                "node id {:?}: use 1 to 64 letters, digits, `_` or `-`",
                node.id
            )));
        }
        if index.insert(node.id.as_str(), i).is_some() {
            return Err(bad(format!("two nodes are called {:?}", node.id)));
        }
    }
    let mut checked = Vec::with_capacity(spec.nodes.len());
    for node in &spec.nodes {
        let at = |msg: String| bad(format!("node {:?}: {msg}", node.id));
        if agent::tool(&node.tool).is_none() {
            let known: Vec<&str> = agent::TOOLS.iter().map(|t| t.name).collect();
            return Err(at(format!(
                "no tool {:?}; the tools are {}",
                node.tool,
                known.join(", ")
            )));
        }
        let references = refs::references(&node.args).map_err(at)?;
        if references.is_empty() {
            check_args(&node.tool, &node.args).map_err(at)?;
        } else if !node.args.is_object() && node.tool != agent::APPROVE {
            return Err(at("`args` must be an object".into()));
        }
        let mut needs = BTreeSet::new();
        for name in references
            .iter()
            .map(|r| r.node.as_str())
            .chain(node.after.iter().map(String::as_str))
        {
            if !index.contains_key(name) {
                return Err(at(format!("it refers to {name:?}, which is not a node")));
            }
            if name == node.id {
                return Err(at("it refers to itself".into()));
            }
            needs.insert(name.to_owned());
        }
        checked.push(Checked {
            spec: node.clone(),
            needs: needs.into_iter().collect(),
        });
    }
    no_cycles(&checked, &index)?;
    Ok(checked)
}

/// A DAG, or the name of a node on a cycle.
fn no_cycles(nodes: &[Checked], index: &HashMap<&str, usize>) -> Result<(), ErrorBody> {
    let mut graph = DiGraph::<(), ()>::with_capacity(nodes.len(), nodes.len());
    let ids: Vec<_> = nodes.iter().map(|_| graph.add_node(())).collect();
    for (i, node) in nodes.iter().enumerate() {
        for need in &node.needs {
            graph.add_edge(ids[index[need.as_str()]], ids[i], ());
        }
    }
    petgraph::algo::toposort(&graph, None)
        .map(|_| ())
        .map_err(|cycle| {
            let node = &nodes[cycle.node_id().index()].spec.id;
            bad(format!(
                "the graph has a cycle through node {node:?}: a node cannot wait for itself"
            ))
        })
}

/// What running this node does to the world: a write that appends or patches is not
/// idempotent even though a whole-file write is.
pub fn effect(tool: &str, args: &Value) -> Effect {
    let base = agent::tool(tool).map_or(Effect::Once, |t| t.effect);
    // Judged before references are filled in: anything but a plain `false` may append.
    let partial = args
        .get("append")
        .is_some_and(|v| !v.is_null() && *v != Value::Bool(false))
        || args.get("offset").is_some_and(|v| !v.is_null())
        || args.get("upload").is_some_and(|v| !v.is_null());
    if tool == <aether_proto::api::vfs::Write as aether_proto::api::Call>::TOPIC && partial {
        Effect::Once
    } else {
        base
    }
}

fn bad(msg: String) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadFrame, msg)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn graph(nodes: Value) -> GraphSpec {
        serde_json::from_value(json!({ "name": "t", "nodes": nodes })).unwrap()
    }

    #[test]
    fn a_good_graph_knows_what_each_node_waits_for() {
        let nodes = check(&graph(json!([
            { "id": "a", "tool": "vfs.list", "args": { "path": "/" } },
            { "id": "b", "tool": "sys.ping" },
            { "id": "c", "tool": "vfs.write", "after": ["b"],
              "args": { "path": "/out", "data": "${a.entries.0.name}" } },
        ])))
        .unwrap();
        assert_eq!(nodes[2].needs, ["a", "b"]);
        assert!(nodes[0].needs.is_empty());
    }

    #[test]
    fn bad_graphs_are_refused_naming_the_node() {
        let cases = [
            (json!([]), "no nodes"),
            (json!([{ "id": "a b", "tool": "sys.ping" }]), "node id"),
            (
                json!([{ "id": "a", "tool": "sys.ping" }, { "id": "a", "tool": "sys.ping" }]),
                "two nodes",
            ),
            (json!([{ "id": "a", "tool": "sys.user.add" }]), "no tool"),
            (
                json!([{ "id": "a", "tool": "vfs.read", "args": { "paht": "/x" } }]),
                "bad arguments",
            ),
            (
                json!([{ "id": "a", "tool": "vfs.read", "args": { "path": "${zz.x}" } }]),
                "not a node",
            ),
            (
                json!([{ "id": "a", "tool": "vfs.read", "args": { "path": "${a.x}" } }]),
                "itself",
            ),
            (
                json!([
                    { "id": "a", "tool": "sys.ping", "after": ["b"] },
                    { "id": "b", "tool": "sys.ping", "after": ["a"] },
                ]),
                "cycle",
            ),
            (
                json!([{ "id": "a", "tool": "approve", "args": {} }]),
                "question",
            ),
        ];
        for (nodes, says) in cases {
            let err = check(&graph(nodes.clone())).unwrap_err();
            assert_eq!(err.code, ErrorCode::BadFrame, "{nodes}");
            assert!(err.msg.contains(says), "{nodes}: {}", err.msg);
        }
        let many: Vec<Value> = (0..10_000)
            .map(|i| json!({ "id": format!("n{i}"), "tool": "sys.ping" }))
            .collect();
        assert_eq!(
            check(&graph(Value::Array(many))).unwrap_err().code,
            ErrorCode::TooLarge
        );
    }

    #[test]
    fn appends_are_not_idempotent() {
        let whole = json!({ "path": "/a", "data": "x" });
        let append = json!({ "path": "/a", "data": "x", "append": true });
        assert_eq!(effect("vfs.write", &whole), Effect::Idempotent);
        assert_eq!(effect("vfs.write", &append), Effect::Once);
        let maybe = json!({ "path": "/a", "data": "x", "append": "${flag}" });
        assert_eq!(effect("vfs.write", &maybe), Effect::Once);
        assert_eq!(effect("vfs.read", &whole), Effect::Reads);
    }
}
