use aether_proto::{ErrorBody, ErrorCode};
use serde_json::json;

use super::*;
use crate::snapshot_sizes;
use crate::testing::{answer, draw, request_on, requests};
use app_kit::Key;

/// A program window for `todo`, its name known and its subscription in place: the
/// `vm.run` request it then made.
fn started() -> (Program, Ticket) {
    let mut program = Program::new("todo");
    let effects = program.start();
    let Some(Effect::Subscribe { ticket, pattern }) = effects.first().cloned() else {
        panic!("{effects:?}");
    };
    assert_eq!(pattern, "vm.job.>");
    // Nothing runs before the output has somewhere to go.
    assert!(
        requests(&effects)
            .iter()
            .all(|(_, topic, _)| *topic != "vm.run")
    );
    let (list, _) = request_on(&effects, "apps.list");
    answer(
        &mut program,
        list,
        json!({ "apps": [{ "id": "todo", "name": "To-do", "version": "1.0.0", "built_in": false,
                           "runnable": true, "capabilities": ["vfs_read"] }] }),
    );
    let (run, data) = request_on(&program.update(Event::Subscribed { ticket }), "vm.run");
    assert_eq!(
        data,
        json!({ "installed": "todo", "keep_stdin_open": true })
    );
    (program, run)
}

fn event(program: &mut Program, job: &str, kind: &str, data: Value) {
    let ticket = program.events.unwrap();
    program.update(Event::Delivery {
        ticket,
        topic: format!("vm.job.{job}.{kind}"),
        data,
    });
}

fn out(program: &mut Program, job: &str, stream: &str, text: &str) {
    event(
        program,
        job,
        stream,
        json!({ "seq": 0, "stream": stream, "encoding": "utf8", "data": text }),
    );
}

fn run_answer(job: &str) -> Value {
    json!({ "job": job, "topic": format!("vm.job.{job}"), "cached": true,
        "limits": { "timeout_ms": 3600000, "memory_mb": 32, "output_kb": 1024, "files": "read-write" } })
}

fn typed(program: &mut Program, line: &str) -> Vec<Effect> {
    for c in line.chars() {
        program.update(Event::Key(Key::char(c)));
    }
    program.update(Event::Key(Key::plain(KeyCode::Enter)))
}

#[test]
fn it_runs_shows_its_output_live_and_takes_input() {
    let (mut program, run) = started();
    // Output that comes before `vm.run` answers is kept, and another job's is not shown.
    out(&mut program, "j7", "stdout", "To-do: 2 items in /todo.md\n");
    out(&mut program, "j3", "stdout", "someone else's program\n");
    answer(&mut program, run, run_answer("j7"));
    out(&mut program, "j7", "stdout", "todo> ");
    let effects = typed(&mut program, "add buy milk");
    let (_, data) = request_on(&effects, "vm.stdin");
    assert_eq!(data, json!({ "job": "j7", "data": "add buy milk\n" }));
    out(&mut program, "j7", "stdout", "added 3: buy milk\n");
    out(
        &mut program,
        "j7",
        "stderr",
        "warning: /todo.md changed on disk\n",
    );
    out(&mut program, "j7", "stdout", "todo> ");
    typed(&mut program, "list");
    out(
        &mut program,
        "j7",
        "stdout",
        "1 [ ] call Ada\n2 [x] water plants\n3 [ ] buy milk\ntodo> ",
    );
    for c in "done 3".chars() {
        program.update(Event::Key(Key::char(c)));
    }
    assert_eq!(program.title(), "To-do");
    assert_eq!(program.busy().as_deref(), Some("To-do"));
    snapshot_sizes!("program_running", &program);
    let screen = draw(&program, 80, 24, true);
    assert!(!screen.contains("someone else's"), "{screen}");
    assert!(screen.contains("todo> add buy milk"), "{screen}");
    // Its unfinished prompt leads the input line, once.
    assert!(screen.contains("todo> done 3"), "{screen}");
    assert_eq!(screen.matches("todo>").count(), 3, "{screen}");
}

#[test]
fn ctrl_d_closes_its_input_and_ctrl_c_stops_it() {
    let (mut program, run) = started();
    answer(&mut program, run, run_answer("j1"));
    let (_, data) = request_on(&program.update(Event::Key(Key::ctrl('d'))), "vm.stdin");
    assert_eq!(data, json!({ "job": "j1", "data": "", "close": true }));
    assert!(requests(&typed(&mut program, "more")).is_empty());
    let (_, data) = request_on(&program.update(Event::Key(Key::ctrl('c'))), "vm.kill");
    assert_eq!(data, json!({ "job": "j1" }));
}

#[test]
fn after_it_exits_enter_runs_it_again() {
    let (mut program, run) = started();
    answer(&mut program, run, run_answer("j1"));
    out(&mut program, "j1", "stdout", "todo> ");
    typed(&mut program, "quit");
    out(&mut program, "j1", "stdout", "bye\n");
    event(
        &mut program,
        "j1",
        "exit",
        json!({ "job": "j1", "ending": "exited", "code": 0, "error": null, "micros": 5400 }),
    );
    assert_eq!(program.busy(), None);
    snapshot_sizes!("program_exited", &program);
    let (_, data) = request_on(
        &program.update(Event::Key(Key::plain(KeyCode::Enter))),
        "vm.run",
    );
    assert_eq!(data["installed"], "todo");
    assert_eq!(program.run, Run::Starting);
    // The session keeps which app it runs.
    let back = Program::restore(&program.save());
    assert_eq!(back.id, "todo");
}

#[test]
fn a_refusal_is_shown_and_enter_tries_again() {
    let (mut program, run) = started();
    program.update(Event::Answer {
        ticket: run,
        result: Err(ErrorBody::new(
            ErrorCode::NotFound,
            "no app \"todo\" is installed for you",
        )),
    });
    snapshot_sizes!("program_error", &program);
    request_on(
        &program.update(Event::Key(Key::plain(KeyCode::Enter))),
        "vm.run",
    );
}

#[test]
fn stale_answers_and_a_lost_subscription() {
    let (mut program, run) = started();
    answer(&mut program, run, run_answer("j1"));
    // The same ticket again is not waited for: dropped.
    answer(&mut program, run, run_answer("j2"));
    assert!(matches!(&program.run, Run::Running { job, .. } if job == "j1"));
    // A resubscription does not run it twice.
    let ticket = program.events.unwrap();
    assert!(program.update(Event::Subscribed { ticket }).is_empty());
    // Without its output subscription it does not run, and says why.
    let mut lost = Program::new("todo");
    let effects = lost.start();
    let Some(Effect::Subscribe { ticket, .. }) = effects.first().cloned() else {
        panic!("{effects:?}");
    };
    lost.update(Event::SubscribeFailed {
        ticket,
        error: ErrorBody::new(
            ErrorCode::Forbidden,
            "terminal may not subscribe to vm.job.>",
        ),
    });
    assert!(draw(&lost, 80, 24, true).contains("output cannot be shown: terminal may not"));
    // Enter subscribes again first.
    let effects = lost.update(Event::Key(Key::plain(KeyCode::Enter)));
    assert!(
        matches!(effects.as_slice(), [Effect::Subscribe { .. }]),
        "{effects:?}"
    );
}
