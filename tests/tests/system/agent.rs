//! `agent.*`: hand-written TaskGraphs run with no AI configured; references carry results
//! forward; writes wait for approval unless the graph opts out; failures skip what follows
//! and can be retried; a tool the app may not use fails its node clearly; bad graphs are
//! refused; cancel works during a retry wait; one user's big graph leaves another's alone.
//! (kill -9 and resume: `aetherd/tests/durability.rs`.)

use std::time::{Duration, Instant};

use aether_proto::ErrorCode;
use aether_proto::api::agent::{self, GraphSpec, GraphState, NodeState};
use aether_proto::api::vfs;
use aether_proto::client::AppHandle;
use aether_tests::{TestDaemon, expect_code, next_msg, wait_for};
use serde_json::{Value, json};

fn spec(value: Value) -> GraphSpec {
    serde_json::from_value(value).expect("a graph spec")
}

async fn run(app: &AppHandle, graph: Value) -> String {
    app.request(&agent::Run::new(spec(graph)))
        .await
        .unwrap_or_else(|e| panic!("agent.run failed: {e}"))
        .id
}

async fn get(app: &AppHandle, id: &str) -> agent::Graph {
    app.request(&agent::Get { id: id.into() }).await.unwrap()
}

async fn until(app: &AppHandle, id: &str, state: GraphState) -> agent::Graph {
    wait_for(
        &format!("graph {id} to be {state:?}"),
        Duration::from_secs(10),
        async || Some(get(app, id).await).filter(|g| g.state == state),
    )
    .await
}

/// `/spin.wasm`: a program that runs until it is killed or its deadline.
async fn put_spin(cli: &AppHandle) {
    use base64::Engine;
    let spin = wat::parse_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../guests/wat/spin.wat"
    ))
    .unwrap();
    cli.request(&vfs::Write {
        path: "/spin.wasm".into(),
        data: base64::engine::general_purpose::STANDARD.encode(spin),
        encoding: vfs::Encoding::Base64,
        ..Default::default()
    })
    .await
    .unwrap();
}

fn node<'a>(graph: &'a agent::Graph, id: &str) -> &'a agent::Node {
    graph.nodes.iter().find(|n| n.id == id).unwrap()
}

#[tokio::test]
async fn a_hand_written_graph_runs_with_no_ai_and_carries_results_forward() {
    let daemon = TestDaemon::start().await;
    let client = daemon.owner().await;
    let cli = client.app("cli");
    cli.request(&vfs::Write {
        path: "/notes.txt".into(),
        data: "remember the milk".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut events = cli.subscribe(agent::EVENTS).await.unwrap();
    let id = run(
        &cli,
        json!({ "name": "copy notes", "auto_approve": true, "nodes": [
            { "id": "list", "tool": "vfs.list", "args": { "path": "/" } },
            { "id": "read", "tool": "vfs.read", "args": { "path": "/${list.entries.0.name}" } },
            { "id": "copy", "tool": "vfs.write",
              "args": { "path": "/copy.txt", "data": "${read.data} (${read.size} bytes)" } },
            { "id": "ping", "tool": "sys.ping", "after": ["copy"] },
        ]}),
    )
    .await;
    let graph = until(&cli, &id, GraphState::Done).await;
    assert!(
        graph
            .nodes
            .iter()
            .all(|n| n.state == NodeState::Done && n.attempts == 1)
    );
    assert_eq!(node(&graph, "copy").needs, ["read"]);
    let copied = cli
        .request(&vfs::Read {
            path: "/copy.txt".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(copied.data, "remember the milk (17 bytes)");
    // Live events: each node's states, then the graph's.
    let mut seen = Vec::new();
    while !seen.contains(&("state".to_owned(), "done".to_owned())) {
        let msg = next_msg(&mut events).await;
        let data: Value = serde_json::from_str(msg.data.get()).unwrap();
        let kind = msg.topic.rsplit('.').next().unwrap().to_owned();
        let what = match kind.as_str() {
            "node" => format!(
                "{}:{}",
                data["node"].as_str().unwrap(),
                data["state"].as_str().unwrap()
            ),
            _ => data["state"].as_str().unwrap_or_default().to_owned(),
        };
        seen.push((kind, what));
    }
    assert!(
        seen.contains(&("node".into(), "read:running".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("node".into(), "read:done".into())),
        "{seen:?}"
    );
    let listed = cli.request(&agent::List {}).await.unwrap();
    assert_eq!(listed.graphs[0].id, id);
    assert_eq!(listed.graphs[0].counts.get("done"), Some(&4));
}

#[tokio::test]
async fn writes_wait_for_approval_unless_the_graph_opts_out() {
    let daemon = TestDaemon::start().await;
    let cli = daemon.owner().await.app("cli");
    let id = run(
        &cli,
        json!({ "name": "careful", "nodes": [
            { "id": "look", "tool": "vfs.list", "args": { "path": "/" } },
            { "id": "write", "tool": "vfs.write", "args": { "path": "/a.txt", "data": "x" }, "after": ["look"] },
        ]}),
    )
    .await;
    let graph = until(&cli, &id, GraphState::Waiting).await;
    assert_eq!(
        node(&graph, "look").state,
        NodeState::Done,
        "reads never ask"
    );
    assert_eq!(node(&graph, "write").state, NodeState::Approval);
    let msg = expect_code(
        cli.request(&agent::Approve {
            id: id.clone(),
            node: "look".into(),
            result: None,
        })
        .await,
        ErrorCode::Conflict,
    );
    assert!(
        msg.contains("not waiting for approval: it is done"),
        "{msg}"
    );
    expect_code(
        cli.request(&agent::Approve {
            id: id.clone(),
            node: "nope".into(),
            result: None,
        })
        .await,
        ErrorCode::NotFound,
    );
    cli.request(&agent::Approve {
        id: id.clone(),
        node: "write".into(),
        result: None,
    })
    .await
    .unwrap();
    until(&cli, &id, GraphState::Done).await;
    // Another user cannot see or steer it.
    daemon.add_user("eve", "correct horse battery").await;
    let eve = daemon
        .sign_in("eve", "correct horse battery")
        .await
        .app("cli");
    expect_code(
        eve.request(&agent::Get { id: id.clone() }).await,
        ErrorCode::NotFound,
    );
    expect_code(
        eve.request(&agent::Cancel { id }).await,
        ErrorCode::NotFound,
    );
}

#[tokio::test]
async fn a_failure_skips_what_follows_and_retry_runs_it_again() {
    let daemon = TestDaemon::start().await;
    let cli = daemon.owner().await.app("cli");
    let id = run(
        &cli,
        json!({ "name": "needs a file", "auto_approve": true, "nodes": [
            { "id": "read", "tool": "vfs.read", "args": { "path": "/later.txt" } },
            { "id": "write", "tool": "vfs.write", "args": { "path": "/out.txt", "data": "${read.data}!" } },
            { "id": "field", "tool": "vfs.write", "args": { "path": "/x.txt", "data": "${read.nope}" } },
        ]}),
    )
    .await;
    let graph = until(&cli, &id, GraphState::Failed).await;
    let read = node(&graph, "read");
    assert_eq!(read.state, NodeState::Failed);
    assert_eq!(read.attempts, 1, "not_found is not worth retrying");
    assert!(
        read.error.as_deref().unwrap().contains("not_found"),
        "{read:?}"
    );
    assert_eq!(node(&graph, "write").state, NodeState::Skipped);
    assert!(graph.error.unwrap().contains("node read failed"));
    // Retrying a node that did not fail is refused; retrying the failed one goes on.
    cli.request(&vfs::Write {
        path: "/later.txt".into(),
        data: "here".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    expect_code(
        cli.request(&agent::Retry {
            id: id.clone(),
            node: "nope".into(),
        })
        .await,
        ErrorCode::NotFound,
    );
    let msg = expect_code(
        cli.request(&agent::Retry {
            id: id.clone(),
            node: "write".into(),
        })
        .await,
        ErrorCode::Conflict,
    );
    assert!(
        msg.contains("waits for read") && msg.contains("retry read"),
        "{msg}"
    );
    cli.request(&agent::Retry {
        id: id.clone(),
        node: "read".into(),
    })
    .await
    .unwrap();
    let graph = until(&cli, &id, GraphState::Failed).await;
    assert_eq!(node(&graph, "write").state, NodeState::Done);
    let field = node(&graph, "field");
    assert_eq!(field.state, NodeState::Failed, "{field:?}");
    assert!(
        field.error.as_deref().unwrap().contains("no \"nope\""),
        "{field:?}"
    );
    let out = cli
        .request(&vfs::Read {
            path: "/out.txt".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(out.data, "here!");
}

#[tokio::test]
async fn a_tool_the_app_may_not_use_fails_its_node_and_is_audited() {
    let daemon = TestDaemon::start().await;
    let client = daemon.owner().await;
    // The Agent Console's manifest reads files but may not write them.
    let console = client.app("agents");
    let id = run(
        &console,
        json!({ "name": "overreach", "auto_approve": true, "nodes": [
            { "id": "write", "tool": "vfs.write", "args": { "path": "/a.txt", "data": "x" } },
        ]}),
    )
    .await;
    let graph = until(&console, &id, GraphState::Failed).await;
    let write = node(&graph, "write");
    assert!(
        write.error.as_deref().unwrap().contains("forbidden")
            && write.error.as_deref().unwrap().contains("vfs_write"),
        "{write:?}"
    );
    let audit: Value = client
        .app("cli")
        .request_json("sys.audit.list", &json!({}))
        .await
        .unwrap();
    assert!(
        audit.to_string().contains("vfs.write"),
        "the denial is audited: {audit}"
    );
}

#[tokio::test]
async fn bad_graphs_are_refused_before_anything_runs() {
    let daemon = TestDaemon::start().await;
    let cli = daemon.owner().await.app("cli");
    let cycle = json!({ "name": "loop", "nodes": [
        { "id": "a", "tool": "sys.ping", "after": ["b"] },
        { "id": "b", "tool": "sys.ping", "after": ["a"] },
    ]});
    let msg = expect_code(
        cli.request(&agent::Run::new(spec(cycle))).await,
        ErrorCode::BadFrame,
    );
    assert!(msg.contains("cycle"), "{msg}");
    // Arguments that are a list (serde would read one as a struct) are refused too.
    let listed =
        json!({ "name": "x", "nodes": [{ "id": "a", "tool": "ai.generate", "args": ["hi"] }] });
    let msg = expect_code(
        cli.request(&agent::Run::new(spec(listed))).await,
        ErrorCode::BadFrame,
    );
    assert!(msg.contains("must be a JSON object"), "{msg}");
    let unknown = json!({ "name": "x", "nodes": [{ "id": "a", "tool": "sys.user.add" }] });
    expect_code(
        cli.request(&agent::Run::new(spec(unknown))).await,
        ErrorCode::BadFrame,
    );
    let missing = json!({ "name": "x", "nodes": [
        { "id": "a", "tool": "vfs.read", "args": { "path": "${ghost.path}" } }] });
    let msg = expect_code(
        cli.request(&agent::Run::new(spec(missing))).await,
        ErrorCode::BadFrame,
    );
    assert!(msg.contains("\"ghost\""), "{msg}");
    let nodes: Vec<Value> = (0..10_000)
        .map(|i| json!({ "id": format!("n{i}"), "tool": "sys.ping" }))
        .collect();
    expect_code(
        cli.request(&agent::Run::new(spec(
            json!({ "name": "huge", "nodes": nodes }),
        )))
        .await,
        ErrorCode::TooLarge,
    );
    let raw = cli
        .request_json::<_, Value>("agent.run", &json!({ "graph": { "name": 5 } }))
        .await;
    expect_code(raw, ErrorCode::BadFrame);
    assert!(
        cli.request(&agent::List {})
            .await
            .unwrap()
            .graphs
            .is_empty()
    );
}

#[tokio::test]
async fn cancel_during_a_retry_wait_stops_the_graph() {
    // With no AI configured, ai.generate is `unavailable`: worth retrying, so it waits.
    let daemon = TestDaemon::start().await;
    let cli = daemon.owner().await.app("cli");
    let id = run(
        &cli,
        json!({ "name": "patient", "nodes": [
            { "id": "ask", "tool": "ai.generate", "args": { "prompt": "hi" }, "retries": 10 },
            { "id": "after", "tool": "sys.ping", "after": ["ask"] },
        ]}),
    )
    .await;
    wait_for("a retry wait", Duration::from_secs(5), async || {
        Some(get(&cli, &id).await).filter(|g| node(g, "ask").state == NodeState::Retrying)
    })
    .await;
    let changed = cli
        .request(&agent::Cancel { id: id.clone() })
        .await
        .unwrap();
    assert_eq!(changed.state, GraphState::Cancelled);
    let graph = get(&cli, &id).await;
    assert_eq!(node(&graph, "ask").state, NodeState::Cancelled);
    assert_eq!(node(&graph, "after").state, NodeState::Cancelled);
    assert!(
        node(&graph, "ask")
            .error
            .as_deref()
            .unwrap()
            .contains("AI provider")
    );
    expect_code(
        cli.request(&agent::Cancel { id }).await,
        ErrorCode::Conflict,
    );
}

#[tokio::test]
async fn a_thousand_node_graph_runs_to_the_end_and_another_users_graph_is_not_held_up() {
    let daemon = TestDaemon::start().await;
    let cli = daemon.owner().await.app("cli");
    daemon.add_user("bea", "correct horse battery").await;
    let bea = daemon
        .sign_in("bea", "correct horse battery")
        .await
        .app("cli");
    let nodes: Vec<Value> = (0..agent::MAX_NODES)
        .map(|i| json!({ "id": format!("n{i}"), "tool": "sys.ping" }))
        .collect();
    let big = run(&cli, json!({ "name": "big", "nodes": nodes })).await;
    let asked = Instant::now();
    let small = run(
        &bea,
        json!({ "name": "small", "nodes": [{ "id": "p", "tool": "sys.ping" }] }),
    )
    .await;
    until(&bea, &small, GraphState::Done).await;
    let small_took = asked.elapsed();
    let graph = wait_for("the big graph", Duration::from_secs(60), async || {
        Some(get(&cli, &big).await).filter(|g| g.state == GraphState::Done)
    })
    .await;
    assert!(graph.nodes.iter().all(|n| n.state == NodeState::Done));
    assert!(
        small_took < Duration::from_secs(2),
        "bea's one node waited {small_took:?} behind 1,000 of another user's"
    );
}

/// An OpenAI-style stream whose text is `json`, as structured output comes.
fn plan_reply(json: Value) -> aether_tests::fake_llm::Reply {
    aether_tests::fake_llm::Reply::events([
        json!({ "choices": [{ "index": 0, "delta": { "content": json.to_string() } }] }),
        json!({ "choices": [{ "index": 0, "delta": {}, "finish_reason": "stop" }],
                "usage": { "prompt_tokens": 100, "completion_tokens": 40 } }),
    ])
}

#[tokio::test]
async fn a_goal_becomes_a_checked_plan_and_a_bad_plan_is_sent_back_once() {
    use aether_tests::fake_llm::FakeLlm;
    let fake = FakeLlm::start().await;
    let good = json!({ "name": "tidy notes", "nodes": [
        { "id": "list", "tool": "vfs.list", "args": { "path": "/notes" } },
        { "id": "save", "tool": "vfs.write", "args": { "path": "/index.md", "data": "${list.entries}" } },
    ]});
    // First a plan with an unknown tool, then a good one; then twice a node waiting for itself.
    fake.then(plan_reply(json!({ "name": "x", "nodes": [{ "id": "a", "tool": "shell", "args": {} }] })))
        .then(plan_reply(good.clone()))
        .then(plan_reply(json!({ "name": "x", "nodes": [{ "id": "a", "tool": "sys.ping", "args": {}, "after": ["a"] }] })))
        .then(plan_reply(json!({ "name": "x", "nodes": [{ "id": "a", "tool": "sys.ping", "args": {}, "after": ["a"] }] })));
    let url = fake.url("/v1");
    let daemon = TestDaemon::start_with(move |c| {
        c.ai.providers.push(aetherd::config::AiProvider {
            name: "local".into(),
            kind: aether_proto::api::ai::ProviderKind::Openai,
            base_url: Some(url),
            model: "planner".into(),
            embed_model: None,
            api_key_env: None,
            api_key: None,
        });
    })
    .await;
    let cli = daemon.owner().await.app("cli");
    let planned = cli
        .request(&agent::Plan {
            goal: "index my notes".into(),
            provider: None,
        })
        .await
        .unwrap();
    assert_eq!(planned.graph.nodes.len(), 2);
    assert!(
        !planned.graph.auto_approve,
        "planned graphs ask before writes"
    );
    let seen = fake.seen();
    assert!(
        seen[0].body["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("index my notes")
    );
    assert_eq!(seen[0].body["response_format"]["type"], "json_schema");
    let second = seen[1].body["messages"][1]["content"].as_str().unwrap();
    assert!(
        second.contains("refused") && second.contains("no tool"),
        "{second}"
    );
    // The plan runs like any graph: the write waits for approval.
    let id = run(&cli, serde_json::to_value(&planned.graph).unwrap()).await;
    let graph = until(&cli, &id, GraphState::Failed).await;
    assert!(
        node(&graph, "list")
            .error
            .as_deref()
            .unwrap()
            .contains("not_found")
    );
    let msg = expect_code(
        cli.request(&agent::Plan {
            goal: "loop forever".into(),
            provider: None,
        })
        .await,
        ErrorCode::Unavailable,
    );
    assert!(
        msg.contains("did not make a valid plan") && msg.contains("itself"),
        "{msg}"
    );
    expect_code(
        cli.request(&agent::Plan {
            goal: " ".into(),
            provider: None,
        })
        .await,
        ErrorCode::BadFrame,
    );
}

#[tokio::test]
async fn with_no_ai_planning_says_so_and_hand_written_graphs_still_run() {
    let daemon = TestDaemon::start().await;
    let cli = daemon.owner().await.app("cli");
    let msg = expect_code(
        cli.request(&agent::Plan {
            goal: "anything".into(),
            provider: None,
        })
        .await,
        ErrorCode::Unavailable,
    );
    assert!(msg.contains("no AI provider is configured"), "{msg}");
    let id = run(
        &cli,
        json!({ "name": "by hand", "nodes": [{ "id": "p", "tool": "sys.ping" }] }),
    )
    .await;
    until(&cli, &id, GraphState::Done).await;
}

#[tokio::test]
async fn the_summarize_rule_writes_a_summary_beside_a_written_file_and_never_loops() {
    use aether_proto::api::telemetry;
    use aether_tests::fake_llm::FakeLlm;
    let fake = FakeLlm::start().await;
    fake.then(plan_reply_text("# a.txt\n- milk\n- bread"));
    let url = fake.url("/v1");
    let daemon = TestDaemon::start_with(move |c| {
        c.ai.providers.push(aetherd::config::AiProvider {
            name: "local".into(),
            kind: aether_proto::api::ai::ProviderKind::Openai,
            base_url: Some(url),
            model: "writer".into(),
            embed_model: None,
            api_key_env: None,
            api_key: None,
        });
    })
    .await;
    let cli = daemon.owner().await.app("cli");
    // Every file: the summary it writes would match too, were its origin not the rule.
    let rule = telemetry::preset("summarize", "*").unwrap();
    cli.request(&rule).await.unwrap();
    cli.request(&vfs::Write {
        path: "/notes/a.txt".into(),
        data: "milk, bread".into(),
        parents: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let summary = wait_for("the summary", Duration::from_secs(10), async || {
        cli.request(&vfs::Read {
            path: "/notes/a.summary.md".into(),
            ..Default::default()
        })
        .await
        .ok()
    })
    .await;
    assert_eq!(summary.data, "# a.txt\n- milk\n- bread\n");
    let asked = &fake.seen()[0].body["messages"][1]["content"];
    assert!(asked.as_str().unwrap().contains("milk, bread"), "{asked}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fake.seen().len(),
        1,
        "the summary's own write started nothing"
    );
    let graphs = cli.request(&agent::List {}).await.unwrap().graphs;
    assert_eq!(graphs.len(), 1);
    assert_eq!(graphs[0].name, "summarize a.txt");
}

/// An OpenAI-style stream of plain text.
fn plan_reply_text(text: &str) -> aether_tests::fake_llm::Reply {
    aether_tests::fake_llm::Reply::events([
        json!({ "choices": [{ "index": 0, "delta": { "content": text } }] }),
        json!({ "choices": [{ "index": 0, "delta": {}, "finish_reason": "stop" }] }),
    ])
}

#[tokio::test]
async fn cancelling_a_graph_kills_the_program_a_node_is_running() {
    use aether_proto::api::vm;
    let daemon = TestDaemon::start().await;
    let cli = daemon.owner().await.app("cli");
    put_spin(&cli).await;
    let id = run(
        &cli,
        json!({ "name": "forever", "auto_approve": true, "nodes": [
            { "id": "spin", "tool": "vm.run", "args": { "path": "/spin.wasm" }, "timeout_ms": 60000 },
        ]}),
    )
    .await;
    let job = wait_for(
        "the program to run",
        Duration::from_secs(10),
        async || match cli.request(&vm::Jobs::default()).await.ok()? {
            vm::JobsAnswer::All { jobs } => jobs
                .into_iter()
                .find(|j| j.status == vm::JobState::Running)
                .map(|j| j.job),
            _ => None,
        },
    )
    .await;
    cli.request(&agent::Cancel { id: id.clone() })
        .await
        .unwrap();
    let ending = wait_for(
        "the program to be killed",
        Duration::from_secs(10),
        async || match cli
            .request(&vm::Jobs {
                job: Some(job.clone()),
            })
            .await
            .ok()?
        {
            vm::JobsAnswer::One(detail) => match detail.summary.status {
                vm::JobState::Finished { ending, .. } => Some(ending),
                _ => None,
            },
            _ => None,
        },
    )
    .await;
    assert_eq!(ending, vm::Ending::Killed);
    assert_eq!(get(&cli, &id).await.state, GraphState::Cancelled);
}

#[tokio::test]
async fn a_node_may_run_another_graph_and_use_its_results() {
    let daemon = TestDaemon::start().await;
    let cli = daemon.owner().await.app("cli");
    let id = run(
        &cli,
        json!({ "name": "outer", "auto_approve": true, "nodes": [
            { "id": "inner", "tool": "agent.run", "args": { "graph": {
                "name": "inner", "auto_approve": true, "nodes": [
                    { "id": "w", "tool": "vfs.write", "args": { "path": "/inner.txt", "data": "from inside" } },
                ] } } },
            { "id": "r", "tool": "vfs.read", "args": { "path": "${inner.results.w.path}" } },
        ]}),
    )
    .await;
    let graph = until(&cli, &id, GraphState::Done).await;
    assert_eq!(
        node(&graph, "r").result.as_ref().unwrap()["data"],
        "from inside"
    );
    let listed = cli.request(&agent::List {}).await.unwrap();
    assert_eq!(
        listed.graphs.len(),
        2,
        "the inner graph is a graph of its own"
    );
    // A failing inner graph fails the node that ran it, saying why.
    let id = run(
        &cli,
        json!({ "name": "outer2", "auto_approve": true, "nodes": [
            { "id": "inner", "tool": "agent.run", "args": { "graph": {
                "name": "inner2", "nodes": [
                    { "id": "r", "tool": "vfs.read", "args": { "path": "/missing" } },
                ] } } },
        ]}),
    )
    .await;
    let graph = until(&cli, &id, GraphState::Failed).await;
    let error = node(&graph, "inner").error.clone().unwrap();
    assert!(
        error.contains("ended failed") && error.contains("not_found"),
        "{error}"
    );
}

#[tokio::test]
async fn a_nested_graph_never_has_more_freedom_than_its_parent() {
    let daemon = TestDaemon::start().await;
    let cli = daemon.owner().await.app("cli");
    cli.request(&vfs::Write {
        path: "/docs/keep.txt".into(),
        data: "precious".into(),
        parents: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut events = cli.subscribe(agent::EVENTS).await.unwrap();
    // The outer graph asks; the graph its step starts claims it need not.
    let id = run(
        &cli,
        json!({ "name": "outer", "nodes": [
            { "id": "sub", "tool": "agent.run", "args": { "graph": {
                "name": "inner", "auto_approve": true, "nodes": [
                    { "id": "rm", "tool": "vfs.remove", "args": { "path": "/docs", "recursive": true } },
                ] } } },
        ]}),
    )
    .await;
    let graph = until(&cli, &id, GraphState::Waiting).await;
    let ask = node(&graph, "sub")
        .ask
        .clone()
        .expect("the step says what it does");
    assert!(
        ask.action.contains("Start the graph \"inner\"")
            && ask
                .action
                .contains("rm: Remove /docs, and everything in it"),
        "{}",
        ask.action
    );
    cli.request(&agent::Approve {
        id: id.clone(),
        node: "sub".into(),
        result: None,
    })
    .await
    .unwrap();
    // The inner graph starts, names its parent, and asks before removing anything.
    let inner = wait_for(
        "the inner graph to wait for approval",
        Duration::from_secs(10),
        async || {
            let listed = cli.request(&agent::List {}).await.ok()?;
            let inner = listed.graphs.into_iter().find(|g| g.id != id)?;
            Some(get(&cli, &inner.id).await).filter(|g| g.state == GraphState::Waiting)
        },
    )
    .await;
    assert_eq!(inner.parent.as_deref(), Some(id.as_str()));
    assert!(
        !inner.auto_approve,
        "a graph started by a graph that asks, asks"
    );
    let rm = node(&inner, "rm");
    assert_eq!(rm.state, NodeState::Approval);
    assert_eq!(
        rm.ask.as_ref().unwrap().action,
        "Remove the folder /docs and everything in it"
    );
    assert!(
        cli.request(&vfs::Stat {
            path: "/docs/keep.txt".into()
        })
        .await
        .is_ok(),
        "nothing was removed without its own approval"
    );
    // Watchers heard of the inner graph, and of its parent, as it started.
    let started = wait_for(
        "the inner graph's start",
        Duration::from_secs(5),
        async || {
            let msg = next_msg(&mut events).await;
            (msg.topic == format!("agent.graph.{}.state", inner.id))
                .then(|| serde_json::from_str::<agent::StateEvent>(msg.data.get()).unwrap())
        },
    )
    .await;
    assert_eq!(started.parent.as_deref(), Some(id.as_str()));
    cli.request(&agent::Approve {
        id: inner.id.clone(),
        node: "rm".into(),
        result: None,
    })
    .await
    .unwrap();
    until(&cli, &id, GraphState::Done).await;
    expect_code(
        cli.request(&vfs::Stat {
            path: "/docs".into(),
        })
        .await,
        ErrorCode::NotFound,
    );
    // A client that names a parent that is not a live graph of its own is refused.
    let mut stray = agent::Run::new(spec(
        json!({ "name": "x", "nodes": [{ "id": "p", "tool": "sys.ping" }] }),
    ));
    stray.parent = Some("g000000000000".into());
    expect_code(cli.request(&stray).await, ErrorCode::NotFound);
}

#[tokio::test]
async fn an_approval_shows_the_write_in_words_with_references_filled_in() {
    let daemon = TestDaemon::start().await;
    let cli = daemon.owner().await.app("cli");
    for (path, data) in [
        ("/notes/a.md", "old notes"),
        ("/draft.txt", "Meeting notes. We agreed to ship on Friday."),
    ] {
        cli.request(&vfs::Write {
            path: path.into(),
            data: data.into(),
            parents: true,
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let mut events = cli.subscribe(agent::EVENTS).await.unwrap();
    let id = run(
        &cli,
        json!({ "name": "notes", "nodes": [
            { "id": "read", "tool": "vfs.read", "args": { "path": "/draft.txt" } },
            { "id": "save", "tool": "vfs.write", "args": { "path": "/notes/a.md", "data": "${read.data}" } },
        ]}),
    )
    .await;
    let graph = until(&cli, &id, GraphState::Waiting).await;
    let ask = node(&graph, "save").ask.clone().unwrap();
    assert!(
        ask.action
            .starts_with("Replace /notes/a.md (9 bytes) with 43 bytes of new content"),
        "{}",
        ask.action
    );
    assert!(
        ask.action.contains("It starts: \"Meeting notes."),
        "{}",
        ask.action
    );
    assert_eq!(
        ask.args["data"], "Meeting notes. We agreed to ship on Friday.",
        "the arguments in full, not the template"
    );
    // The event that says it waits carries the same.
    let event = wait_for("the approval event", Duration::from_secs(5), async || {
        let msg = next_msg(&mut events).await;
        let event: agent::NodeEvent = serde_json::from_str(msg.data.get()).ok()?;
        (event.state == NodeState::Approval).then_some(event)
    })
    .await;
    assert_eq!(event.ask, Some(ask));
}

#[tokio::test]
async fn the_readme_graph_writes_a_list_as_json_and_a_failed_graph_says_failed() {
    let daemon = TestDaemon::start().await;
    let cli = daemon.owner().await.app("cli");
    for name in ["a.md", "b.md"] {
        cli.request(&vfs::Write {
            path: format!("/notes/{name}"),
            data: "x".into(),
            parents: true,
            ..Default::default()
        })
        .await
        .unwrap();
    }
    // As in the README.
    let id = run(
        &cli,
        json!({ "name": "index notes", "nodes": [
            { "id": "list", "tool": "vfs.list", "args": { "path": "/notes" } },
            { "id": "save", "tool": "vfs.write", "args": { "path": "/index.json", "data": "${list.entries}" } },
        ]}),
    )
    .await;
    until(&cli, &id, GraphState::Waiting).await;
    cli.request(&agent::Approve {
        id: id.clone(),
        node: "save".into(),
        result: None,
    })
    .await
    .unwrap();
    until(&cli, &id, GraphState::Done).await;
    let index = cli
        .request(&vfs::Read {
            path: "/index.json".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let entries: Value = serde_json::from_str(&index.data).expect("the list as JSON");
    let names: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.md", "b.md"]);
}

#[tokio::test]
async fn a_step_of_unknown_outcome_is_run_again_or_counted_done_with_a_result() {
    let mut daemon = TestDaemon::start().await;
    let cli = daemon.owner().await.app("cli");
    put_spin(&cli).await;
    let id = run(
        &cli,
        json!({ "name": "stopped", "auto_approve": true, "nodes": [
            { "id": "spin", "tool": "vm.run", "args": { "path": "/spin.wasm" }, "timeout_ms": 60000 },
            { "id": "after", "tool": "vfs.write",
              "args": { "path": "/out.txt", "data": "said: ${spin.stdout}" } },
        ]}),
    )
    .await;
    wait_for("the program to run", Duration::from_secs(10), async || {
        Some(get(&cli, &id).await).filter(|g| node(g, "spin").state == NodeState::Running)
    })
    .await;
    daemon.restart().await;
    let cli = daemon.owner().await.app("cli");
    let graph = until(&cli, &id, GraphState::Waiting).await;
    let spin = node(&graph, "spin");
    assert_eq!(spin.state, NodeState::Unknown);
    assert!(
        spin.ask
            .as_ref()
            .unwrap()
            .action
            .starts_with("Run the program /spin.wasm"),
        "{:?}",
        spin.ask
    );
    // Counting it done with no result would leave `after` unable to run: refused, saying why.
    let msg = expect_code(
        cli.request(&agent::Approve {
            id: id.clone(),
            node: "spin".into(),
            result: None,
        })
        .await,
        ErrorCode::Conflict,
    );
    assert!(
        msg.contains("node after refers to ${spin.stdout}") && msg.contains("agent.retry"),
        "{msg}"
    );
    assert_eq!(
        node(&get(&cli, &id).await, "spin").state,
        NodeState::Unknown
    );
    // With a result that has what `after` uses, the graph goes on.
    cli.request(&agent::Approve {
        id: id.clone(),
        node: "spin".into(),
        result: Some(json!({ "stdout": "done by hand" })),
    })
    .await
    .unwrap();
    until(&cli, &id, GraphState::Done).await;
    let out = cli
        .request(&vfs::Read {
            path: "/out.txt".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(out.data, "said: done by hand");
}
