//! Calling a tool, shared by the agents (a graph's node) and the AI (`ai.chat`'s model):
//! a bus request made as the app that asked, through the same permission check that app's
//! own request would pass; and checking a tool's arguments. `vm.run` waits for the
//! program's end and gives its output; `ai.generate` answers whole.

use std::time::{Duration, Instant};

use aether_proto::api::vm::{self, JobState, JobsAnswer};
use aether_proto::api::{Call as _, agent, sys};
use aether_proto::frame::to_data;
use aether_proto::{ErrorBody, ErrorCode, Topic};
use base64::Engine;
use serde_json::{Value, json};

use tokio_util::sync::CancellationToken;

use crate::services::{OnBehalf, Requester};

/// Who makes a tool call, as far as a graph it starts is concerned.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// May a graph this call starts run writes and programs without asking? Only if the
    /// graph making the call may (a model's calls never may).
    pub auto_approve: bool,
    /// The graph making the call.
    pub parent: Option<String>,
}

/// Run `tool` with `args` (references already resolved) within `timeout`. `cancel` stops
/// the call at once (a program it started is killed).
pub async fn call(
    requester: &Requester,
    on: &OnBehalf,
    context: &Context,
    tool: &str,
    mut args: Value,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Value, ErrorBody> {
    if args.is_null() {
        args = json!({});
    }
    text_where_text_is_taken(tool, &mut args);
    check_args(tool, &args).map_err(|msg| ErrorBody::new(ErrorCode::BadFrame, msg))?;
    if tool == aether_proto::api::ai::Generate::TOPIC
        && let Some(fields) = args.as_object_mut()
    {
        fields.insert("stream".into(), Value::Bool(false));
    }
    if cancel.is_cancelled() {
        return Err(cancelled());
    }
    match tool {
        vm::Run::TOPIC => run_program(requester, on, args, timeout, cancel).await,
        agent::Run::TOPIC => run_graph(requester, on, context, args, timeout, cancel).await,
        agent::APPROVE => Ok(json!({ "approved": true })),
        topic => tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(cancelled()),
            result = request(requester, on, topic, &args, timeout) => result,
        },
    }
}

async fn request(
    requester: &Requester,
    on: &OnBehalf,
    topic: &str,
    args: &Value,
    timeout: Duration,
) -> Result<Value, ErrorBody> {
    let topic =
        Topic::parse(topic).map_err(|e| ErrorBody::new(ErrorCode::BadTopic, e.to_string()))?;
    let answer = requester
        .request_as_raw(on, &topic, to_data(args), timeout)
        .await?;
    serde_json::from_str(answer.get()).map_err(|e| {
        ErrorBody::new(
            ErrorCode::Internal,
            format!("an answer that is not JSON: {e}"),
        )
    })
}

/// Start the program, wait for its end (asking `vm.jobs` with a widening pause), and give
/// its exit and output. A non-zero exit fails the node, with the end of its stderr.
async fn run_program(
    requester: &Requester,
    on: &OnBehalf,
    args: Value,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Value, ErrorBody> {
    let mut run: vm::Run = serde_json::from_value(args)
        .map_err(|e| ErrorBody::new(ErrorCode::BadFrame, e.to_string()))?;
    // The node's timeout is the program's deadline unless it names a shorter one.
    let deadline_ms = timeout.as_millis().min(u64::MAX as u128) as u64;
    run.timeout_ms = Some(run.timeout_ms.map_or(deadline_ms, |t| t.min(deadline_ms)));
    let started: vm::RunAnswer = requester
        .request_as(on, &run, Duration::from_secs(30))
        .await?;
    let job = started.job;
    let give_up = Instant::now() + timeout + Duration::from_secs(10);
    let mut pause = Duration::from_millis(20);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = requester
                    .request_as(on, &vm::Kill { job: job.clone() }, Duration::from_secs(5))
                    .await;
                return Err(cancelled());
            }
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_millis(500));
        let answer: JobsAnswer = requester
            .request_as(
                on,
                &vm::Jobs {
                    job: Some(job.clone()),
                },
                Duration::from_secs(10),
            )
            .await?;
        let JobsAnswer::One(detail) = answer else {
            continue;
        };
        if let JobState::Finished {
            ending,
            code,
            error,
            micros,
        } = detail.summary.status
        {
            let (stdout, stderr) = output(&detail.output);
            let result = json!({
                "job": job, "ending": ending, "code": code, "error": error,
                "micros": micros, "stdout": stdout, "stderr": stderr,
            });
            return match (ending, code) {
                (vm::Ending::Exited, Some(0)) => Ok(result),
                _ => {
                    let tail: String = stderr
                        .chars()
                        .rev()
                        .take(300)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    Err(ErrorBody::new(
                        ErrorCode::Cancelled,
                        format!(
                            "the program ended: {} (code {}){}{}",
                            serde_json::to_value(ending)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default(),
                            code.map_or("none".into(), |c| c.to_string()),
                            error.map(|e| format!(": {e}")).unwrap_or_default(),
                            if tail.trim().is_empty() {
                                String::new()
                            } else {
                                format!("; stderr: {}", tail.trim())
                            }
                        ),
                    ))
                }
            };
        }
        if Instant::now() > give_up {
            let _ = requester
                .request_as(on, &vm::Kill { job: job.clone() }, Duration::from_secs(5))
                .await;
            return Err(ErrorBody::new(
                ErrorCode::Timeout,
                format!("the program ran past the node's {} s", timeout.as_secs()),
            ));
        }
    }
}

/// Start another graph as the same app and wait for its end; its nodes' results are the
/// result. Cancelling this node cancels that graph.
async fn run_graph(
    requester: &Requester,
    on: &OnBehalf,
    context: &Context,
    args: Value,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Value, ErrorBody> {
    let mut run: agent::Run = serde_json::from_value(args)
        .map_err(|e| ErrorBody::new(ErrorCode::BadFrame, e.to_string()))?;
    // Never more freedom than the caller: its writes and programs ask as themselves.
    run.graph.auto_approve &= context.auto_approve;
    run.parent = context.parent.clone();
    let started = requester
        .request_as(on, &run, Duration::from_secs(30))
        .await?;
    let id = started.id;
    let give_up = Instant::now() + timeout;
    let mut pause = Duration::from_millis(20);
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                let _ = requester
                    .request_as(on, &agent::Cancel { id: id.clone() }, Duration::from_secs(5))
                    .await;
                return Err(cancelled());
            }
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_millis(500));
        let graph = requester
            .request_as(on, &agent::Get { id: id.clone() }, Duration::from_secs(10))
            .await?;
        match graph.state {
            agent::GraphState::Done => {
                let results: serde_json::Map<String, Value> = graph
                    .nodes
                    .into_iter()
                    .map(|n| (n.id, n.result.unwrap_or(Value::Null)))
                    .collect();
                return Ok(json!({ "id": id, "results": results }));
            }
            state if state.is_over() => {
                return Err(ErrorBody::new(
                    ErrorCode::Cancelled,
                    format!(
                        "graph {id} ended {}: {}",
                        serde_json::to_value(state)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        graph.error.unwrap_or_else(|| "no detail".into())
                    ),
                ));
            }
            _ if Instant::now() > give_up => {
                let _ = requester
                    .request_as(
                        on,
                        &agent::Cancel { id: id.clone() },
                        Duration::from_secs(5),
                    )
                    .await;
                return Err(ErrorBody::new(
                    ErrorCode::Timeout,
                    format!(
                        "graph {id} ran past the node's {} s; it was cancelled",
                        timeout.as_secs()
                    ),
                ));
            }
            _ => {}
        }
    }
}

fn cancelled() -> ErrorBody {
    ErrorBody::new(ErrorCode::Cancelled, "cancelled")
}

/// A job's output chunks as text, per stream.
fn output(chunks: &[vm::OutputChunk]) -> (String, String) {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for chunk in chunks {
        let bytes = if chunk.encoding == "base64" {
            base64::engine::general_purpose::STANDARD
                .decode(&chunk.data)
                .unwrap_or_default()
        } else {
            chunk.data.as_bytes().to_vec()
        };
        if chunk.stream == "stderr" {
            stderr.extend(bytes);
        } else {
            stdout.extend(bytes);
        }
    }
    (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Does `args` read as `tool`'s request?
pub fn check_args(tool: &str, args: &Value) -> Result<(), String> {
    let ping = tool == sys::Ping::TOPIC;
    if !ping && !args.is_object() {
        return Err(format!("the arguments of {tool} must be a JSON object"));
    }
    match agent::tool(tool) {
        // `sys.ping` takes nothing at all as well as `{}`.
        Some(_) if ping && args.is_null() => Ok(()),
        Some(info) => info.check(args),
        None => Err(format!("no tool {tool:?}")),
    }
}

/// Where the tool takes text but a whole reference gave a list, an object, a number or
/// true/false, the value is written as text: lists and objects as JSON (pretty-printed),
/// the rest as JSON's own spelling. `"data": "${list.entries}"` writes the list as JSON.
pub fn text_where_text_is_taken(tool: &str, args: &mut Value) {
    let Some(schema) = agent::tool_schema(tool) else {
        return;
    };
    let (Some(properties), Some(fields)) = (
        schema.get("properties").and_then(Value::as_object),
        args.as_object_mut(),
    ) else {
        return;
    };
    for (name, value) in fields.iter_mut() {
        if matches!(value, Value::String(_) | Value::Null) {
            continue;
        }
        let takes_text = properties
            .get(name)
            .and_then(|p| p.get("type"))
            .is_some_and(|t| match t {
                Value::String(t) => t == "string",
                Value::Array(ts) => {
                    ts.iter().any(|t| t == "string")
                        && !ts.iter().any(|t| t == "array" || t == "object")
                }
                _ => false,
            });
        if takes_text {
            let text = match &*value {
                Value::Array(_) | Value::Object(_) => {
                    serde_json::to_string_pretty(&*value).unwrap_or_default()
                }
                other => other.to_string(),
            };
            *value = Value::String(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_where_text_is_taken_is_written_as_json() {
        let mut args = json!({ "path": "/index.json", "data": [{ "name": "a" }] });
        assert!(check_args("vfs.write", &args).is_err());
        text_where_text_is_taken("vfs.write", &mut args);
        check_args("vfs.write", &args).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(args["data"].as_str().unwrap()).unwrap(),
            json!([{ "name": "a" }])
        );
        let mut number = json!({ "path": "/n", "data": 42, "append": true });
        text_where_text_is_taken("vfs.write", &mut number);
        assert_eq!(
            number,
            json!({ "path": "/n", "data": "42", "append": true })
        );
        // A field that takes a list keeps it.
        let mut run = json!({ "path": "/p.wasm", "args": ["a", "b"] });
        text_where_text_is_taken("vm.run", &mut run);
        assert_eq!(run["args"], json!(["a", "b"]));
    }
}
