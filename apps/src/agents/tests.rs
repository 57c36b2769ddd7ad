use serde_json::json;

use super::*;
use crate::snapshot_sizes;
use crate::testing::{answer, draw, request_on};
use app_kit::Key;

fn graph_json(state: &str) -> Value {
    json!({ "id": "g1", "name": "summarize notes", "state": state, "app": "terminal",
        "created_ms": 0, "updated_ms": 0, "auto_approve": false, "nodes": [
        { "id": "read", "tool": "vfs.read", "args": { "path": "/notes.txt" }, "needs": [],
          "state": "done", "attempts": 1, "result": { "data": "milk" } },
        { "id": "sum", "tool": "ai.generate", "args": { "prompt": "Summarize: ${read.data}" },
          "needs": ["read"], "state": "running", "attempts": 2, "error": null },
        { "id": "save", "tool": "vfs.write", "args": { "path": "/summary.md", "data": "${sum.text}" },
          "needs": ["sum"], "state": "pending", "attempts": 0 },
    ]})
}

/// A console showing graph g1, its list answered and the graph loaded.
fn opened() -> Agents {
    let mut agents = Agents::new();
    let effects = agents.start();
    assert!(matches!(&effects[0], Effect::Subscribe { pattern, .. } if pattern == "agent.graph.>"));
    let (list, _) = request_on(&effects, "agent.list");
    let effects = answer(
        &mut agents,
        list,
        json!({ "graphs": [
            { "id": "g1", "name": "summarize notes", "state": "running", "app": "terminal",
              "updated_ms": 0, "counts": { "done": 1 } },
            { "id": "g0", "name": "tidy", "state": "failed", "app": "cli", "updated_ms": 0, "counts": {} },
        ]}),
    );
    let (get, data) = request_on(&effects, "agent.get");
    assert_eq!(data["id"], "g1");
    answer(&mut agents, get, graph_json("running"));
    agents
}

fn event(agents: &mut Agents, kind: &str, data: Value) -> Vec<Effect> {
    let ticket = agents.events.unwrap();
    agents.update(Event::Delivery {
        ticket,
        topic: format!("agent.graph.g1.{kind}"),
        data,
    })
}

#[test]
fn the_dag_shows_live_node_states() {
    let mut agents = opened();
    assert_eq!(agents.depths, [0, 1, 2]);
    event(
        &mut agents,
        "node",
        json!({ "node": "sum", "state": "done", "attempt": 2, "result": { "text": "Buy milk." } }),
    );
    event(
        &mut agents,
        "node",
        json!({ "node": "save", "state": "approval", "attempt": 0, "ask": {
            "action": "Replace /summary.md (2.0 KB) with 9 bytes of new content",
            "args": { "path": "/summary.md", "data": "Buy milk." } } }),
    );
    event(&mut agents, "state", json!({ "state": "waiting" }));
    event(
        &mut agents,
        "log",
        json!({ "line": "sum: timeout; trying again in 0.3 s" }),
    );
    agents.update(Event::Key(Key::plain(KeyCode::Tab)));
    agents.update(Event::Key(Key::char('j')));
    agents.update(Event::Key(Key::char('j')));
    snapshot_sizes!("agents_waiting", &agents);
    // `a` reviews first: what the step does in words, then its arguments in full.
    let effects = agents.update(Event::Key(Key::char('a')));
    let [
        Effect::Review {
            ticket,
            question,
            detail,
            options,
        },
    ] = effects.as_slice()
    else {
        panic!("a review: {effects:?}");
    };
    assert!(
        question.contains("Replace /summary.md (2.0 KB)"),
        "{question}"
    );
    assert!(detail.contains("data: Buy milk."), "{detail}");
    assert_eq!(options[0], "Allow");
    let (_, data) = request_on(
        &agents.update(Event::Chose {
            ticket: *ticket,
            index: Some(0),
        }),
        "agent.approve",
    );
    assert_eq!(data, json!({ "id": "g1", "node": "save" }));
    let graph = agents.graph.as_ref().unwrap();
    assert_eq!(graph.state, GraphState::Waiting);
    assert_eq!(graph.nodes[1].result, Some(json!({ "text": "Buy milk." })));
}

#[test]
fn retry_cancel_and_refusals_are_clear() {
    let mut agents = opened();
    agents.update(Event::Key(Key::plain(KeyCode::Enter)));
    let (retry, _) = request_on(&agents.update(Event::Key(Key::char('r'))), "agent.retry");
    agents.update(Event::Answer {
        ticket: retry,
        result: Err(aether_proto::ErrorBody::new(
            aether_proto::ErrorCode::Conflict,
            "node read cannot be retried: it is done",
        )),
    });
    assert!(draw(&agents, 80, 24, true).contains("retry: node read cannot be retried"));
    let effects = agents.update(Event::Key(Key::char('c')));
    let Some(Effect::Confirm { ticket, question }) = effects.first().cloned() else {
        panic!("{effects:?}");
    };
    assert!(question.contains("summarize notes"));
    let (_, data) = request_on(
        &agents.update(Event::Confirmed { ticket, yes: true }),
        "agent.cancel",
    );
    assert_eq!(data["id"], "g1");
}

#[test]
fn a_new_graph_refreshes_the_list_and_empty_says_how_to_start() {
    let mut agents = Agents::new();
    let (list, _) = request_on(&agents.start(), "agent.list");
    answer(&mut agents, list, json!({ "graphs": [] }));
    snapshot_sizes!("agents_empty", &agents);
    let ticket = agents.events.unwrap();
    let effects = agents.update(Event::Delivery {
        ticket,
        topic: "agent.graph.g9.state".into(),
        data: json!({ "state": "running" }),
    });
    request_on(&effects, "agent.list");
    // The session keeps the open graph.
    let agents = opened();
    let restored = Agents::restore(&agents.save());
    assert_eq!(restored.want.as_deref(), Some("g1"));
}

#[test]
fn a_narrow_console_shows_one_column_at_a_time() {
    let mut agents = opened();
    let screen = draw(&agents, 30, 12, true);
    assert!(
        screen.contains("summarize notes") && screen.contains("tidy"),
        "{screen}"
    );
    agents.update(Event::Key(Key::plain(KeyCode::Enter)));
    let screen = draw(&agents, 30, 12, true);
    assert!(
        screen.contains("read") && screen.contains("vfs.read"),
        "{screen}"
    );
    let mut empty = Agents::new();
    let (list, _) = request_on(&empty.start(), "agent.list");
    answer(&mut empty, list, json!({ "graphs": [] }));
    let screen = draw(&empty, 30, 12, true);
    assert!(screen.contains("No graphs yet. Type `? your"), "{screen}");
}

#[test]
fn a_step_of_unknown_outcome_is_run_again_or_counted_done_with_a_result() {
    let mut agents = opened();
    event(
        &mut agents,
        "node",
        json!({ "node": "sum", "state": "unknown", "attempt": 1, "ask": {
            "action": "Ask the AI: \"Summarize: milk\"", "args": { "prompt": "Summarize: milk" } } }),
    );
    agents.update(Event::Key(Key::plain(KeyCode::Tab)));
    agents.update(Event::Key(Key::char('j')));
    let review = |agents: &mut Agents| {
        let effects = agents.update(Event::Key(Key::char('a')));
        match effects.as_slice() {
            [
                Effect::Review {
                    ticket, options, ..
                },
            ] => (*ticket, options.clone()),
            _ => panic!("a review: {effects:?}"),
        }
    };
    let (ticket, options) = review(&mut agents);
    assert_eq!(
        options,
        [
            "Run it again",
            "Count it as done",
            "Count it as done with a result…"
        ]
    );
    request_on(
        &agents.update(Event::Chose {
            ticket,
            index: Some(0),
        }),
        "agent.retry",
    );
    let (ticket, _) = review(&mut agents);
    let effects = agents.update(Event::Chose {
        ticket,
        index: Some(2),
    });
    let [Effect::Prompt { ticket, .. }] = effects.as_slice() else {
        panic!("a prompt: {effects:?}");
    };
    let (_, data) = request_on(
        &agents.update(Event::Prompted {
            ticket: *ticket,
            text: Some(r#"{"text": "by hand"}"#.into()),
        }),
        "agent.approve",
    );
    assert_eq!(
        data,
        json!({ "id": "g1", "node": "sum", "result": { "text": "by hand" } })
    );
}
