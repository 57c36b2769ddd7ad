use serde_json::json;

use super::*;
use crate::snapshot_sizes;
use crate::testing::{answer, draw, request_on, requests};
use app_kit::Key;

fn enter(term: &mut Terminal, line: &str) -> Vec<Effect> {
    for c in line.chars() {
        term.update(Event::Key(Key::char(c)));
    }
    term.update(Event::Key(Key::plain(KeyCode::Enter)))
}

fn started() -> Terminal {
    let mut term = Terminal::new("/");
    let effects = term.start();
    assert!(matches!(&effects[0], Effect::Subscribe { pattern, .. } if pattern == "vm.job.>"));
    term
}

fn job_event(term: &mut Terminal, job: &str, kind: &str, data: Value) -> Vec<Effect> {
    let ticket = term.events.unwrap();
    term.update(Event::Delivery {
        ticket,
        topic: format!("vm.job.{job}.{kind}"),
        data,
    })
}

fn out(seq: u64, stream: &str, data: &str) -> Value {
    json!({ "seq": seq, "stream": stream, "encoding": "utf8", "data": data })
}

#[test]
fn ls_and_cd_are_vfs_requests() {
    let mut term = started();
    let effects = enter(&mut term, "ls");
    let (ls, data) = request_on(&effects, "vfs.list");
    assert_eq!(data["path"], "/");
    answer(
        &mut term,
        ls,
        json!({ "path": "/", "entries": [
            { "name": "docs", "kind": "dir", "size": 0, "modified_ms": 0 },
            { "name": "hello.wasm", "kind": "file", "size": 63092, "modified_ms": 0 },
        ]}),
    );
    let effects = enter(&mut term, "cd docs");
    let (cd, data) = request_on(&effects, "vfs.stat");
    assert_eq!(data["path"], "/docs");
    answer(
        &mut term,
        cd,
        json!({ "path": "/docs", "kind": "dir", "size": 0, "modified_ms": 0, "version": null }),
    );
    assert_eq!(term.cwd(), "/docs");
    snapshot_sizes!("terminal_ls_cd", &term);
}

#[test]
fn lines_typed_while_a_command_waits_run_after_it() {
    let mut term = started();
    let effects = enter(&mut term, "cd docs");
    let (cd, _) = request_on(&effects, "vfs.stat");
    assert!(enter(&mut term, "cat a.txt").is_empty(), "waits for cd");
    let effects = answer(
        &mut term,
        cd,
        json!({ "path": "/docs", "kind": "dir", "size": 0, "modified_ms": 0, "version": null }),
    );
    let (_, data) = request_on(&effects, "vfs.read");
    assert_eq!(data["path"], "/docs/a.txt", "resolved in the new folder");
}

#[test]
fn a_program_streams_output_live_and_takes_input() {
    let mut term = started();
    let effects = enter(&mut term, "run /bin/echo.wasm --loud");
    let (run, data) = request_on(&effects, "vm.run");
    assert_eq!(
        data,
        json!({ "path": "/bin/echo.wasm", "args": ["--loud"], "keep_stdin_open": true })
    );
    // Output may come before the answer to vm.run.
    job_event(&mut term, "j1", "stdout", out(0, "stdout", "ready\n"));
    answer(
        &mut term,
        run,
        json!({ "job": "j1", "topic": "vm.job.j1", "cached": true,
        "limits": { "timeout_ms": 1000, "memory_mb": 64, "output_kb": 64, "files": "read-only" } }),
    );
    assert_eq!(term.busy().as_deref(), Some("echo.wasm"));
    let effects = enter(&mut term, "ping");
    let (_, data) = request_on(&effects, "vm.stdin");
    assert_eq!(data, json!({ "job": "j1", "data": "ping\n" }));
    job_event(
        &mut term,
        "j1",
        "stdout",
        out(1, "stdout", "\u{1b}[32mping\u{1b}[0m\npart"),
    );
    job_event(
        &mut term,
        "j1",
        "stderr",
        out(2, "stderr", "warning: loud\n"),
    );
    snapshot_sizes!("terminal_running", &term);
    job_event(
        &mut term,
        "j1",
        "exit",
        json!({ "job": "j1", "ending": "exited", "code": 0, "error": null, "micros": 1500 }),
    );
    assert!(term.busy().is_none());
    let screen = draw(&term, 80, 24, true);
    assert!(
        screen.contains("part") && screen.contains("[done in 1.5 ms]"),
        "{screen}"
    );
}

#[test]
fn ctrl_c_kills_the_running_program() {
    let mut term = started();
    let (run, _) = request_on(&enter(&mut term, "spin.wasm"), "vm.run");
    answer(
        &mut term,
        run,
        json!({ "job": "j2", "topic": "vm.job.j2", "cached": false,
        "limits": { "timeout_ms": 1000, "memory_mb": 64, "output_kb": 64, "files": "none" } }),
    );
    let effects = term.update(Event::Key(Key::ctrl('c')));
    let (_, data) = request_on(&effects, "vm.kill");
    assert_eq!(data, json!({ "job": "j2" }));
    job_event(
        &mut term,
        "j2",
        "exit",
        json!({ "job": "j2", "ending": "killed", "code": null, "error": null, "micros": 2_000_000 }),
    );
    let screen = draw(&term, 80, 24, true);
    assert!(screen.contains("[stopped after 2.00 s]"), "{screen}");
}

#[test]
fn bad_lines_get_clear_errors() {
    let mut term = started();
    // No command: the line is planned as a goal; with no AI that fails, and says both.
    let (plan, data) = request_on(&enter(&mut term, "frobnicate now"), "agent.plan");
    assert_eq!(data["goal"], "frobnicate now");
    term.update(Event::Answer {
        ticket: plan,
        result: Err(aether_proto::ErrorBody::new(
            aether_proto::ErrorCode::Unavailable,
            "no AI provider is configured",
        )),
    });
    assert!(term.busy().is_none());
    assert!(enter(&mut term, "cat 'unclosed").is_empty());
    assert!(enter(&mut term, "mv onlyone").is_empty());
    let (cat, _) = request_on(&enter(&mut term, "cat /nope"), "vfs.read");
    term.update(Event::Answer {
        ticket: cat,
        result: Err(aether_proto::ErrorBody::new(
            aether_proto::ErrorCode::NotFound,
            "no such file: /nope",
        )),
    });
    let (run, _) = request_on(&enter(&mut term, "run /x.wasm"), "vm.run");
    term.update(Event::Answer {
        ticket: run,
        result: Err(aether_proto::ErrorBody::new(
            aether_proto::ErrorCode::Forbidden,
            "app terminal lacks vm_run",
        )),
    });
    assert!(term.busy().is_none());
    snapshot_sizes!("terminal_errors", &term);
}

#[test]
fn history_and_tab_completion() {
    let mut term = started();
    enter(&mut term, "help");
    enter(&mut term, "clear");
    term.update(Event::Key(Key::plain(KeyCode::Up)));
    term.update(Event::Key(Key::plain(KeyCode::Up)));
    assert_eq!(term.input.text(), "help");
    term.update(Event::Key(Key::plain(KeyCode::Down)));
    term.update(Event::Key(Key::plain(KeyCode::Down)));
    assert_eq!(term.input.text(), "");
    for c in "ca".chars() {
        term.update(Event::Key(Key::char(c)));
    }
    term.update(Event::Key(Key::plain(KeyCode::Tab)));
    assert_eq!(term.input.text(), "cat ");
    for c in "do".chars() {
        term.update(Event::Key(Key::char(c)));
    }
    let effects = term.update(Event::Key(Key::plain(KeyCode::Tab)));
    let (list, data) = request_on(&effects, "vfs.list");
    assert_eq!(data["path"], "/");
    answer(
        &mut term,
        list,
        json!({ "path": "/", "entries": [
            { "name": "docs", "kind": "dir", "size": 0, "modified_ms": 0 },
            { "name": "x", "kind": "file", "size": 0, "modified_ms": 0 },
        ]}),
    );
    assert_eq!(term.input.text(), "cat docs/");
    assert_eq!(term.save()["history"], json!(["help", "clear"]));
}

#[test]
fn pasted_lines_are_entered_one_by_one() {
    let mut term = started();
    let effects = term.update(Event::Paste("pwd\nls\nhal".into()));
    assert_eq!(requests(&effects).len(), 1, "ls asks; pwd does not");
    assert_eq!(term.input.text(), "hal");
}

#[test]
fn long_output_lines_wrap_instead_of_being_cut() {
    let mut term = started();
    let tail = "the end of a long line";
    term.out.print(&format!("{}{tail}", "ab".repeat(60)));
    let screen = draw(&term, 40, 10, true);
    assert!(screen.contains(tail), "{screen}");
    // A line of 100,000 characters fills the window without hiding the prompt.
    term.out.print(&"x".repeat(100_000));
    let screen = draw(&term, 40, 10, true);
    let rows: Vec<&str> = screen.lines().collect();
    assert!(rows[8].contains("xxxxxxxx"), "{screen}");
    assert!(rows[9].contains("/ $"), "{screen}");
}

#[test]
fn a_program_opened_from_elsewhere_runs_and_a_folder_becomes_the_cwd() {
    let mut term = started();
    let effects = term.update(Event::OpenPath {
        path: "/examples/hello.wasm".into(),
        line: None,
    });
    let (run, data) = request_on(&effects, "vm.run");
    assert_eq!(data["path"], "/examples/hello.wasm");
    // A second one while the first is starting waits its turn.
    let effects = term.update(Event::OpenPath {
        path: "/examples/ticker.wasm".into(),
        line: None,
    });
    assert!(requests(&effects).is_empty());
    assert!(draw(&term, 80, 24, true).contains("runs when the current program ends"));
    answer(
        &mut term,
        run,
        json!({ "job": "j1", "topic": "vm.job.j1", "cached": true,
        "limits": { "timeout_ms": 1000, "memory_mb": 64, "output_kb": 64, "files": "read-only" } }),
    );
    let effects = job_event(
        &mut term,
        "j1",
        "exit",
        json!({ "job": "j1", "ending": "exited", "code": 0, "error": null, "micros": 10 }),
    );
    let (_, data) = request_on(&effects, "vm.run");
    assert_eq!(data["path"], "/examples/ticker.wasm");
    term.update(Event::OpenPath {
        path: "/docs/".into(),
        line: None,
    });
    assert_eq!(term.cwd(), "/docs");
}

#[test]
fn after_a_reconnect_a_program_lost_with_the_daemon_ends_and_the_prompt_returns() {
    let mut term = started();
    let (run, _) = request_on(&enter(&mut term, "run /examples/ticker.wasm"), "vm.run");
    answer(
        &mut term,
        run,
        json!({ "job": "j1", "topic": "vm.job.j1", "cached": true,
        "limits": { "timeout_ms": 1000, "memory_mb": 64, "output_kb": 64, "files": "read-only" } }),
    );
    assert!(term.busy().is_some());
    let (check, data) = request_on(&term.update(Event::Reconnected), "vm.jobs");
    assert_eq!(data, json!({ "job": "j1" }));
    term.update(Event::Answer {
        ticket: check,
        result: Err(aether_proto::ErrorBody::new(
            aether_proto::ErrorCode::NotFound,
            "no job j1",
        )),
    });
    assert!(term.busy().is_none());
    let screen = draw(&term, 80, 24, true);
    assert!(screen.contains("the daemon restarted"), "{screen}");
    assert!(screen.contains("/ $"), "{screen}");
}

#[test]
fn a_goal_is_planned_confirmed_and_run_with_its_progress_shown() {
    let mut term = started();
    let effects = enter(&mut term, "? summarize /notes.txt into /summary.md");
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Subscribe { pattern, .. } if pattern == "agent.graph.>"))
    );
    let (plan, data) = request_on(&effects, "agent.plan");
    assert_eq!(data["goal"], "summarize /notes.txt into /summary.md");
    // Typed meanwhile: waits for the plan to end.
    assert!(requests(&enter(&mut term, "pwd")).is_empty());
    let graph = json!({ "name": "summarize notes", "auto_approve": false, "nodes": [
        { "id": "read", "tool": "vfs.read", "args": { "path": "/notes.txt" } },
        { "id": "sum", "tool": "ai.generate", "args": { "prompt": "Summarize: ${read.data}" } },
        { "id": "save", "tool": "vfs.write", "args": { "path": "/summary.md", "data": "${sum.text}" } },
    ]});
    let effects = answer(
        &mut term,
        plan,
        json!({ "graph": graph, "provider": "local", "model": "m1" }),
    );
    let Some(Effect::Confirm { ticket, question }) = effects.first().cloned() else {
        panic!("a confirmation: {effects:?}");
    };
    assert!(question.contains("3 steps"), "{question}");
    let effects = term.update(Event::Confirmed { ticket, yes: true });
    let (run, data) = request_on(&effects, "agent.run");
    assert_eq!(data["graph"]["name"], "summarize notes");
    // The first event may come before the answer.
    let agent_events = term.agent_events.unwrap();
    let event = |term: &mut Terminal, kind: &str, data: Value| {
        term.update(Event::Delivery {
            ticket: agent_events,
            topic: format!("agent.graph.g1.{kind}"),
            data,
        })
    };
    event(
        &mut term,
        "node",
        json!({ "node": "read", "state": "running", "attempt": 1 }),
    );
    answer(
        &mut term,
        run,
        json!({ "id": "g1", "topic": "agent.graph.g1" }),
    );
    event(
        &mut term,
        "node",
        json!({ "node": "read", "state": "done", "attempt": 1, "result": { "data": "x" } }),
    );
    event(
        &mut term,
        "node",
        json!({ "node": "sum", "state": "done", "attempt": 1,
        "result": { "text": "Buy milk.", "provider": "local", "model": "m1", "usage": { "input": 1, "output": 2 } } }),
    );
    let effects = event(
        &mut term,
        "node",
        json!({ "node": "save", "state": "approval", "attempt": 0, "ask": {
            "action": "Create /summary.md with 9 bytes\nIt starts: \"Buy milk.\"",
            "args": { "path": "/summary.md", "data": "Buy milk." } } }),
    );
    let Some(Effect::Review {
        ticket,
        question,
        detail,
        options,
    }) = effects.first().cloned()
    else {
        panic!("an approval: {effects:?}");
    };
    assert!(
        question.starts_with("Allow step save?\nCreate /summary.md with 9 bytes"),
        "{question}"
    );
    assert!(detail.starts_with("path: /summary.md"), "{detail}");
    assert_eq!(options, ["Allow", "Don't: cancel the plan"]);
    snapshot_sizes!("terminal_goal", &term);
    let (_, data) = request_on(
        &term.update(Event::Chose {
            ticket,
            index: Some(0),
        }),
        "agent.approve",
    );
    assert_eq!(data, json!({ "id": "g1", "node": "save" }));
    event(
        &mut term,
        "node",
        json!({ "node": "save", "state": "done", "attempt": 1, "result": {} }),
    );
    let effects = event(&mut term, "state", json!({ "state": "done" }));
    // The line typed meanwhile runs now.
    assert!(term.busy().is_none());
    let screen = draw(&term, 80, 24, true);
    assert!(
        screen.contains("Buy milk.") && screen.contains("[plan done]"),
        "{screen}"
    );
    assert!(effects.is_empty() && screen.contains("/ $ pwd"), "{screen}");
}

#[test]
fn ctrl_c_cancels_a_running_plan_and_no_drops_a_planned_one() {
    let mut term = started();
    let (plan, _) = request_on(&enter(&mut term, "?tidy up"), "agent.plan");
    let graph = json!({ "name": "tidy", "nodes": [{ "id": "p", "tool": "sys.ping" }] });
    let effects = answer(
        &mut term,
        plan,
        json!({ "graph": graph, "provider": "p", "model": "m" }),
    );
    let Some(Effect::Confirm { ticket, .. }) = effects.first().cloned() else {
        panic!("{effects:?}");
    };
    term.update(Event::Confirmed { ticket, yes: false });
    assert!(term.busy().is_none(), "not run");
    let (plan, _) = request_on(&enter(&mut term, "?again"), "agent.plan");
    run_planned(&mut term, plan, graph.clone(), "g7");
    let (_, data) = request_on(&term.update(Event::Key(Key::ctrl('c'))), "agent.cancel");
    assert_eq!(data["id"], "g7");
    assert!(enter(&mut term, "?").is_empty() || term.busy().is_some());
}

/// Answer the plan with `graph`, say yes, and answer its run with graph `id`.
fn run_planned(term: &mut Terminal, plan: app_kit::Ticket, graph: Value, id: &str) {
    let effects = answer(
        term,
        plan,
        json!({ "graph": graph, "provider": "p", "model": "m" }),
    );
    let Some(Effect::Confirm { ticket, .. }) = effects.first().cloned() else {
        panic!("{effects:?}");
    };
    let (run, _) = request_on(
        &term.update(Event::Confirmed { ticket, yes: true }),
        "agent.run",
    );
    answer(
        term,
        run,
        json!({ "id": id, "topic": format!("agent.graph.{id}") }),
    );
}

#[test]
fn the_steps_of_a_graph_a_plan_starts_ask_here_too() {
    let mut term = started();
    let (plan, _) = request_on(&enter(&mut term, "?clean up"), "agent.plan");
    let graph = json!({ "name": "clean", "nodes": [{ "id": "sub", "tool": "agent.run",
        "args": { "graph": { "name": "inner", "nodes": [] } } }] });
    run_planned(&mut term, plan, graph, "g1");
    let agent_events = term.agent_events.unwrap();
    let mut event = |graph: &str, kind: &str, data: Value| {
        term.update(Event::Delivery {
            ticket: agent_events,
            topic: format!("agent.graph.{graph}.{kind}"),
            data,
        })
    };
    // Another graph of the user's, not started by the plan: nothing here.
    event("g5", "state", json!({ "state": "running" }));
    assert!(
        event(
            "g5",
            "node",
            json!({ "node": "x", "state": "approval", "attempt": 0 })
        )
        .is_empty()
    );
    // The graph the plan's step started: its step asks, naming the graph.
    event("g2", "state", json!({ "state": "running", "parent": "g1" }));
    let effects = event(
        "g2",
        "node",
        json!({ "node": "rm", "state": "approval", "attempt": 0, "ask": {
            "action": "Remove the folder /docs and everything in it", "args": { "path": "/docs", "recursive": true } } }),
    );
    let Some(Effect::Review {
        ticket, question, ..
    }) = effects.first().cloned()
    else {
        panic!("a review: {effects:?}");
    };
    assert!(
        question.contains("Allow step rm of graph g2")
            && question.contains("Remove the folder /docs and everything in it"),
        "{question}"
    );
    let (_, data) = request_on(
        &term.update(Event::Chose {
            ticket,
            index: Some(0),
        }),
        "agent.approve",
    );
    assert_eq!(data, json!({ "id": "g2", "node": "rm" }));
    // No cancels the plan: its own graph, which cancels what it started.
    let effects = term.update(Event::Delivery {
        ticket: agent_events,
        topic: "agent.graph.g2.node".into(),
        data: json!({ "node": "rm2", "state": "approval", "attempt": 0 }),
    });
    let Some(Effect::Review { ticket, .. }) = effects.first().cloned() else {
        panic!("a review: {effects:?}");
    };
    let (_, data) = request_on(
        &term.update(Event::Chose {
            ticket,
            index: None,
        }),
        "agent.cancel",
    );
    assert_eq!(data["id"], "g1");
}
