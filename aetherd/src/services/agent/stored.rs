//! Graphs in the store: written whole when they start, then one row per change, always
//! before the change acts (write-ahead), so what the store says is where a restarted
//! daemon picks up.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aether_proto::api::agent::{Ask, Graph, GraphState, GraphSummary, Node, NodeState};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::spec::Checked;
use crate::identity::{Caller, Credential, users};
use crate::store::Store;

/// A graph as the executor holds it.
#[derive(Debug, Clone)]
pub struct GraphRun {
    pub id: String,
    pub user_id: i64,
    pub app: String,
    pub name: String,
    pub auto_approve: bool,
    /// The graph whose node started this one.
    pub parent: Option<String>,
    pub state: GraphState,
    pub error: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub nodes: Vec<NodeRun>,
    pub index: HashMap<String, usize>,
}

#[derive(Debug, Clone)]
pub struct NodeRun {
    pub id: String,
    pub tool: String,
    pub args: Value,
    pub needs: Vec<usize>,
    pub retries: u32,
    pub timeout: Duration,
    pub state: NodeState,
    pub attempts: u32,
    pub approved: bool,
    pub result: Option<Value>,
    pub error: Option<String>,
    /// What it would do, while it waits for the user.
    pub ask: Option<Ask>,
}

/// The default time one try of a node may take.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a node may ask for.
pub const MAX_NODE_TIMEOUT: Duration = Duration::from_secs(3600);

impl GraphRun {
    pub fn new(
        id: String,
        user_id: i64,
        app: String,
        spec_name: &str,
        auto_approve: bool,
        parent: Option<String>,
        checked: Vec<Checked>,
    ) -> GraphRun {
        let index: HashMap<String, usize> = checked
            .iter()
            .enumerate()
            .map(|(i, c)| (c.spec.id.clone(), i))
            .collect();
        let nodes = checked
            .into_iter()
            .map(|c| NodeRun {
                needs: c.needs.iter().map(|n| index[n]).collect(),
                id: c.spec.id,
                tool: c.spec.tool,
                args: c.spec.args,
                retries: c.spec.retries.unwrap_or(2).min(20),
                timeout: c
                    .spec
                    .timeout_ms
                    .filter(|&ms| ms > 0)
                    .map(Duration::from_millis)
                    .unwrap_or(NODE_TIMEOUT)
                    .min(MAX_NODE_TIMEOUT),
                state: NodeState::Pending,
                attempts: 0,
                approved: false,
                result: None,
                error: None,
                ask: None,
            })
            .collect();
        let now = now_ms();
        GraphRun {
            id,
            user_id,
            app,
            name: spec_name.to_owned(),
            auto_approve,
            parent,
            state: GraphState::Running,
            error: None,
            created_ms: now,
            updated_ms: now,
            nodes,
            index,
        }
    }

    pub fn view(&self) -> Graph {
        Graph {
            id: self.id.clone(),
            name: self.name.clone(),
            state: self.state,
            app: self.app.clone(),
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            error: self.error.clone(),
            auto_approve: self.auto_approve,
            parent: self.parent.clone(),
            nodes: self
                .nodes
                .iter()
                .map(|n| Node {
                    id: n.id.clone(),
                    tool: n.tool.clone(),
                    args: n.args.clone(),
                    needs: n.needs.iter().map(|&i| self.nodes[i].id.clone()).collect(),
                    state: n.state,
                    attempts: n.attempts,
                    result: n.result.clone(),
                    error: n.error.clone(),
                    ask: n.ask.clone(),
                })
                .collect(),
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_value(Value::String(text.to_owned())).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Store a new graph and all its nodes, in one transaction.
pub async fn insert(store: &Store, run: &GraphRun) -> anyhow::Result<()> {
    let run = run.clone();
    store
        .call(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO agent_graphs(id, user_id, app, name, auto_approve, state, error, created_ms, updated_ms, parent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?7, ?8)",
                params![run.id, run.user_id, run.app, run.name, run.auto_approve, name(&run.state), run.created_ms, run.parent],
            )?;
            {
                let mut insert = tx.prepare(
                    "INSERT INTO agent_nodes(graph_id, seq, id, tool, args, needs, retries, timeout_ms, state)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                for (seq, node) in run.nodes.iter().enumerate() {
                    let needs: Vec<&str> = node.needs.iter().map(|&i| run.nodes[i].id.as_str()).collect();
                    insert.execute(params![
                        run.id,
                        seq as i64,
                        node.id,
                        node.tool,
                        node.args.to_string(),
                        serde_json::to_string(&needs)?,
                        node.retries,
                        node.timeout.as_millis() as i64,
                        name(&node.state),
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
}

/// Write one node's state (and the graph's time) before acting on it.
pub async fn save_node(store: &Store, graph: &str, node: &NodeRun) -> anyhow::Result<()> {
    let (graph, node) = (graph.to_owned(), node.clone());
    store
        .call(move |c| {
            c.execute(
                "UPDATE agent_nodes SET state = ?3, attempts = ?4, approved = ?5, result = ?6, error = ?7, ask = ?8
                 WHERE graph_id = ?1 AND id = ?2",
                params![
                    graph,
                    node.id,
                    name(&node.state),
                    node.attempts,
                    node.approved,
                    node.result.as_ref().map(Value::to_string),
                    node.error,
                    node.ask.as_ref().map(|a| serde_json::to_string(a).unwrap_or_default()),
                ],
            )?;
            c.execute(
                "UPDATE agent_graphs SET updated_ms = ?2 WHERE id = ?1",
                params![graph, now_ms()],
            )?;
            Ok(())
        })
        .await
}

pub async fn save_graph(store: &Store, run: &GraphRun) -> anyhow::Result<()> {
    let (id, state, error) = (run.id.clone(), name(&run.state), run.error.clone());
    store
        .call(move |c| {
            c.execute(
                "UPDATE agent_graphs SET state = ?2, error = ?3, updated_ms = ?4 WHERE id = ?1",
                params![id, state, error, now_ms()],
            )?;
            Ok(())
        })
        .await
}

fn load_in(c: &Connection, id: &str) -> anyhow::Result<Option<GraphRun>> {
    let head = c
        .query_row(
            "SELECT user_id, app, name, auto_approve, state, error, created_ms, updated_ms, parent
             FROM agent_graphs WHERE id = ?1",
            params![id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                    parse::<GraphState>(&r.get::<_, String>(4)?)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, Option<String>>(8)?,
                ))
            },
        )
        .optional()?;
    let Some((user_id, app, name, auto_approve, state, error, created_ms, updated_ms, parent)) =
        head
    else {
        return Ok(None);
    };
    let mut query = c.prepare(
        "SELECT id, tool, args, needs, retries, timeout_ms, state, attempts, approved, result, error, ask
         FROM agent_nodes WHERE graph_id = ?1 ORDER BY seq",
    )?;
    let rows = query.query_map(params![id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, u32>(4)?,
            r.get::<_, i64>(5)?,
            parse::<NodeState>(&r.get::<_, String>(6)?)?,
            r.get::<_, u32>(7)?,
            r.get::<_, bool>(8)?,
            r.get::<_, Option<String>>(9)?,
            r.get::<_, Option<String>>(10)?,
            r.get::<_, Option<String>>(11)?,
        ))
    })?;
    let rows = rows.collect::<Result<Vec<_>, _>>()?;
    let index: HashMap<String, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.0.clone(), i))
        .collect();
    let mut nodes = Vec::with_capacity(rows.len());
    for (
        node_id,
        tool,
        args,
        needs,
        retries,
        timeout_ms,
        state,
        attempts,
        approved,
        result,
        error,
        ask,
    ) in rows
    {
        let needs: Vec<String> = serde_json::from_str(&needs)?;
        nodes.push(NodeRun {
            needs: needs.iter().filter_map(|n| index.get(n).copied()).collect(),
            id: node_id,
            tool,
            args: serde_json::from_str(&args)?,
            retries,
            timeout: Duration::from_millis(timeout_ms.max(0) as u64),
            state,
            attempts,
            approved,
            result: result.map(|r| serde_json::from_str(&r)).transpose()?,
            error,
            // An ask that no longer reads is only a description lost: never an error.
            ask: ask.and_then(|a| serde_json::from_str(&a).ok()),
        });
    }
    Ok(Some(GraphRun {
        id: id.to_owned(),
        user_id,
        app,
        name,
        auto_approve,
        parent,
        state,
        error,
        created_ms,
        updated_ms,
        nodes,
        index,
    }))
}

/// One graph, if it is this user's.
pub async fn load(store: &Store, user_id: i64, id: &str) -> anyhow::Result<Option<GraphRun>> {
    let id = id.to_owned();
    let run = store.call(move |c| load_in(c, &id)).await?;
    Ok(run.filter(|r| r.user_id == user_id))
}

/// Graphs that were running or waiting when the daemon stopped, with who they act for.
pub async fn unfinished(store: &Store) -> anyhow::Result<Vec<(GraphRun, Arc<Caller>)>> {
    store
        .call(|c| {
            let mut query = c.prepare(
                "SELECT id FROM agent_graphs WHERE state IN ('running', 'waiting') ORDER BY created_ms",
            )?;
            let ids = query
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(run) = load_in(c, &id)?
                    && let Some(users::User {
                        name: user,
                        admin,
                        guest,
                        ..
                    }) = users::by_id(c, run.user_id)?
                {
                    let caller = Caller {
                        user_id: run.user_id,
                        user,
                        admin,
                        guest,
                        bound_app: Some(run.app.clone()),
                        token_expires_at: None,
                        token_id: None,
                        credential: Credential::Token,
                        connection: 0,
                        delegated: true,
                    };
                    out.push((run, Arc::new(caller)));
                }
            }
            Ok(out)
        })
        .await
}

/// This user's graphs, newest first (at most `limit`).
pub async fn list(store: &Store, user_id: i64, limit: usize) -> anyhow::Result<Vec<GraphSummary>> {
    store
        .call(move |c| {
            let mut query = c.prepare(
                "SELECT id, name, state, app, updated_ms, parent FROM agent_graphs
                 WHERE user_id = ?1 ORDER BY created_ms DESC, id DESC LIMIT ?2",
            )?;
            let graphs = query
                .query_map(params![user_id, limit as i64], |r| {
                    Ok(GraphSummary {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        state: parse(&r.get::<_, String>(2)?)?,
                        app: r.get(3)?,
                        updated_ms: r.get(4)?,
                        counts: BTreeMap::new(),
                        parent: r.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut counts = c.prepare(
                "SELECT state, count(*) FROM agent_nodes WHERE graph_id = ?1 GROUP BY state",
            )?;
            let mut out = Vec::with_capacity(graphs.len());
            for mut graph in graphs {
                graph.counts = counts
                    .query_map(params![graph.id], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as usize))
                    })?
                    .collect::<Result<_, _>>()?;
                out.push(graph);
            }
            Ok(out)
        })
        .await
}
