//! The compute service: WASI programs from the user's files, output streamed
//! live, limits enforced, hostile programs contained.

use std::time::{Duration, Instant};

use aether_proto::ErrorCode;
use aether_proto::client::{AppHandle, ClientError, Subscription};
use aether_tests::{TestDaemon, expect_code};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../guests/wat/{name}.wat", env!("CARGO_MANIFEST_DIR"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn req(app: &AppHandle, topic: &str, data: Value) -> Result<Value, ClientError> {
    app.request_json(topic, &data).await
}

async fn put(app: &AppHandle, path: &str, bytes: &[u8]) {
    let write = json!({ "path": path, "data": BASE64.encode(bytes), "encoding": "base64", "parents": true });
    req(app, "vfs.write", write).await.unwrap();
}

/// What a job printed, and how it ended, with when each chunk arrived.
struct Finished {
    stdout: String,
    stderr: String,
    exit: Value,
    arrivals: Vec<Instant>,
    ended: Instant,
}

async fn wait_job(events: &mut Subscription, job: &str) -> Finished {
    let (mut stdout, mut stderr, mut arrivals) = (String::new(), String::new(), vec![]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout_at(deadline.into(), events.next_msg())
            .await
            .unwrap_or_else(|_| panic!("job {job} did not finish within 30 s"))
            .expect("subscription open");
        if !msg.topic.starts_with(&format!("vm.job.{job}.")) {
            continue;
        }
        let data: Value = Subscription::decode(&msg).unwrap();
        match msg.topic.rsplit('.').next().unwrap() {
            "stdout" => {
                arrivals.push(Instant::now());
                stdout.push_str(data["data"].as_str().unwrap());
            }
            "stderr" => stderr.push_str(data["data"].as_str().unwrap()),
            "exit" => {
                return Finished {
                    stdout,
                    stderr,
                    exit: data,
                    arrivals,
                    ended: Instant::now(),
                };
            }
            other => panic!("unexpected event {other}"),
        }
    }
}

async fn run(app: &AppHandle, events: &mut Subscription, ask: Value) -> Finished {
    let started = req(app, "vm.run", ask).await.unwrap();
    let job = started["job"].as_str().unwrap().to_owned();
    wait_job(events, &job).await
}

async fn setup(d: &TestDaemon) -> (aether_proto::client::AetherClient, Subscription) {
    let owner = d.owner().await;
    let cli = owner.app("cli");
    for name in [
        "hello",
        "exit3",
        "echo",
        "ticker",
        "spin",
        "membomb",
        "flood",
        "nostart",
        "badimport",
        "sleeper",
        "abssleep",
    ] {
        put(&cli, &format!("/bin/{name}.wasm"), &fixture(name)).await;
    }
    // Subscribed before any run: no output can be missed.
    let events = cli.subscribe("vm.job.>").await.unwrap();
    (owner, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_runs_with_its_args_and_its_output_streams() {
    let d = TestDaemon::start().await;
    let (owner, mut events) = setup(&d).await;
    let cli = owner.app("cli");
    let done = run(
        &cli,
        &mut events,
        json!({ "path": "/bin/hello.wasm", "args": ["one", "two"] }),
    )
    .await;
    assert_eq!(done.stdout, "hello from wasm\none\ntwo\n");
    assert_eq!(
        (done.exit["ending"].clone(), done.exit["code"].clone()),
        (json!("exited"), json!(0))
    );
    let done = run(&cli, &mut events, json!({ "path": "/bin/exit3.wasm" })).await;
    assert_eq!(done.stderr, "something failed\n");
    assert_eq!(done.exit["code"], 3);
    let done = run(
        &cli,
        &mut events,
        json!({ "path": "/bin/echo.wasm", "stdin": "ping\npong\n" }),
    )
    .await;
    assert_eq!(done.stdout, "ping\npong\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_arrives_while_the_program_runs() {
    let d = TestDaemon::start().await;
    let (owner, mut events) = setup(&d).await;
    let done = run(
        &owner.app("cli"),
        &mut events,
        json!({ "path": "/bin/ticker.wasm" }),
    )
    .await;
    assert_eq!(done.stdout.lines().count(), 10, "{}", done.stdout);
    // Ten ticks 100 ms apart: the first reached us long before the program ended.
    let first = done.arrivals[0];
    assert!(
        done.ended - first >= Duration::from_millis(700),
        "output was not streamed live"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_can_be_fed_and_closed_while_running() {
    let d = TestDaemon::start().await;
    let (owner, mut events) = setup(&d).await;
    let cli = owner.app("cli");
    let started = req(
        &cli,
        "vm.run",
        json!({ "path": "/bin/echo.wasm", "keep_stdin_open": true }),
    )
    .await
    .unwrap();
    let job = started["job"].as_str().unwrap().to_owned();
    req(&cli, "vm.stdin", json!({ "job": job, "data": "first\n" }))
        .await
        .unwrap();
    req(
        &cli,
        "vm.stdin",
        json!({ "job": job, "data": "last\n", "close": true }),
    )
    .await
    .unwrap();
    let done = wait_job(&mut events, &job).await;
    assert_eq!(done.stdout, "first\nlast\n");
    let m = expect_code(
        req(&cli, "vm.stdin", json!({ "job": job, "data": "x" })).await,
        ErrorCode::Conflict,
    );
    assert!(m.contains("finished"), "{m}");
    let m = expect_code(
        req(&cli, "vm.kill", json!({ "job": job })).await,
        ErrorCode::Conflict,
    );
    assert!(m.contains("already finished"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_programs_are_contained() {
    let d = TestDaemon::start().await;
    let (owner, mut events) = setup(&d).await;
    let cli = owner.app("cli");
    let started = Instant::now();
    let done = run(
        &cli,
        &mut events,
        json!({ "path": "/bin/spin.wasm", "timeout_ms": 300 }),
    )
    .await;
    assert_eq!(done.exit["ending"], "timeout", "{}", done.exit);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the loop was not stopped at its deadline"
    );
    let done = run(
        &cli,
        &mut events,
        json!({ "path": "/bin/membomb.wasm", "memory_mb": 16 }),
    )
    .await;
    assert_eq!(done.exit["ending"], "memory_limit", "{}", done.exit);
    assert!(
        done.exit["error"].as_str().unwrap().contains("16 MiB"),
        "{}",
        done.exit
    );
    let done = run(
        &cli,
        &mut events,
        json!({ "path": "/bin/flood.wasm", "output_kb": 256 }),
    )
    .await;
    assert_eq!(done.exit["ending"], "output_limit", "{}", done.exit);
    assert!(
        done.stdout.len() <= 256 * 1024,
        "output past the cap was delivered"
    );
    // Killing a running job.
    let spin = req(
        &cli,
        "vm.run",
        json!({ "path": "/bin/spin.wasm", "timeout_ms": 60000 }),
    )
    .await
    .unwrap();
    let job = spin["job"].as_str().unwrap().to_owned();
    req(&cli, "vm.kill", json!({ "job": job })).await.unwrap();
    let done = wait_job(&mut events, &job).await;
    assert_eq!(done.exit["ending"], "killed");
    // The daemon carries on.
    let done = run(&cli, &mut events, json!({ "path": "/bin/hello.wasm" })).await;
    assert_eq!(done.exit["code"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleeping_and_waiting_programs_stop_at_a_kill_or_their_deadline() {
    let d = TestDaemon::start().await;
    let (owner, mut events) = setup(&d).await;
    let cli = owner.app("cli");
    // An hour-long sleep in one host call, with a 300 ms deadline.
    let started = Instant::now();
    let ask = json!({ "path": "/bin/sleeper.wasm", "timeout_ms": 300 });
    let done = run(&cli, &mut events, ask).await;
    assert_eq!(done.exit["ending"], "timeout", "{}", done.exit);
    assert_eq!(done.stdout, "sleeping\n", "it never woke on its own");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the sleep outlived its deadline"
    );

    // Sleeps on absolute clocks: refused where the sandbox cannot cut them short, else cut.
    let started = Instant::now();
    let ask = json!({ "path": "/bin/abssleep.wasm", "timeout_ms": 300 });
    let done = run(&cli, &mut events, ask).await;
    assert_eq!(done.exit["ending"], "timeout", "{}", done.exit);
    assert_eq!(done.stdout, "refused\n");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the sleep outlived its deadline"
    );

    // Killed while asleep.
    let ask = json!({ "path": "/bin/sleeper.wasm", "timeout_ms": 600_000 });
    let job = req(&cli, "vm.run", ask).await.unwrap()["job"]
        .as_str()
        .unwrap()
        .to_owned();
    loop {
        let msg = events.next_msg().await.unwrap();
        if msg.topic == format!("vm.job.{job}.stdout") {
            break;
        }
    }
    let killed_at = Instant::now();
    req(&cli, "vm.kill", json!({ "job": job })).await.unwrap();
    let done = wait_job(&mut events, &job).await;
    assert_eq!(done.exit["ending"], "killed", "{}", done.exit);
    assert!(
        killed_at.elapsed() < Duration::from_secs(2),
        "the kill waited for the sleep"
    );

    // Blocked reading a stdin nobody writes to.
    let started = Instant::now();
    let ask = json!({ "path": "/bin/echo.wasm", "keep_stdin_open": true, "timeout_ms": 300 });
    let done = run(&cli, &mut events, ask).await;
    assert_eq!(done.exit["ending"], "timeout", "{}", done.exit);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the read outlived its deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_modules_are_refused_clearly() {
    let d = TestDaemon::start().await;
    let (owner, _events) = setup(&d).await;
    let cli = owner.app("cli");
    put(&cli, "/bin/notes.wasm", b"just some text").await;
    let hello = fixture("hello");
    put(&cli, "/bin/truncated.wasm", &hello[..hello.len() / 2]).await;
    put(&cli, "/bin/component.wasm", b"\0asm\x0d\x00\x01\x00rest").await;
    let cases = [
        ("/bin/notes.wasm", "not a WebAssembly module"),
        ("/bin/truncated.wasm", "not a valid module"),
        ("/bin/component.wasm", "component"),
        ("/bin/nostart.wasm", "_start"),
        ("/bin/badimport.wasm", "does not provide"),
    ];
    for (path, says) in cases {
        let m = expect_code(
            req(&cli, "vm.run", json!({ "path": path })).await,
            ErrorCode::BadFrame,
        );
        assert!(m.contains(says), "{path}: {m}");
    }
    expect_code(
        req(&cli, "vm.run", json!({ "path": "/bin/none.wasm" })).await,
        ErrorCode::NotFound,
    );
    expect_code(
        req(&cli, "vm.run", json!({ "path": "/../etc/x.wasm" })).await,
        ErrorCode::BadFrame,
    );
    expect_code(
        req(&cli, "vm.kill", json!({ "job": "jnope" })).await,
        ErrorCode::NotFound,
    );
    let m = expect_code(
        req(
            &cli,
            "vm.run",
            json!({ "path": "/bin/hello.wasm", "env": { "BAD=KEY": "x" } }),
        )
        .await,
        ErrorCode::BadFrame,
    );
    assert!(m.contains("env"), "{m}");
    // An app without vm_run may not run anything.
    expect_code(
        req(
            &owner.app("files"),
            "vm.run",
            json!({ "path": "/bin/hello.wasm" }),
        )
        .await,
        ErrorCode::Forbidden,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_jobs_is_queued_or_refused_and_others_carry_on() {
    let d = TestDaemon::start_with(|c| {
        c.compute.jobs_per_user = 2;
        c.compute.queue_per_user = 4;
    })
    .await;
    let (owner, _events) = setup(&d).await;
    let cli = owner.app("cli");
    // 1,000 at once, pipelined on one connection.
    let ask = json!({ "path": "/bin/spin.wasm", "timeout_ms": 200 });
    let runs = (0..1000).map(|_| req(&cli, "vm.run", ask.clone()));
    let results = futures_util::future::join_all(runs).await;
    let (mut accepted, mut refused) = (0, 0);
    for result in results {
        match result {
            Ok(_) => accepted += 1,
            Err(e) => {
                let m = expect_code::<Value>(Err(e), ErrorCode::RateLimited);
                assert!(m.contains("waiting"), "{m}");
                refused += 1;
            }
        }
    }
    assert!(
        accepted >= 4 && refused > 0,
        "accepted {accepted}, refused {refused}"
    );
    // Another user is not held up by the flood.
    d.add_user("bob", "correct horse").await;
    let bob = d.sign_in("bob", "correct horse").await;
    let bob_cli = bob.app("cli");
    put(&bob_cli, "/hello.wasm", &fixture("hello")).await;
    let mut bob_events = bob_cli.subscribe("vm.job.>").await.unwrap();
    let started = Instant::now();
    let done = run(&bob_cli, &mut bob_events, json!({ "path": "/hello.wasm" })).await;
    assert_eq!(done.exit["code"], 0);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_modules_are_cached_across_restarts() {
    let mut d = TestDaemon::start().await;
    {
        let (owner, mut events) = setup(&d).await;
        let first = req(
            &owner.app("cli"),
            "vm.run",
            json!({ "path": "/bin/hello.wasm" }),
        )
        .await
        .unwrap();
        assert_eq!(first["cached"], false);
        // It is compiled as its job starts: once it ran, the next run is from the cache.
        wait_job(&mut events, first["job"].as_str().unwrap()).await;
        let again = req(
            &owner.app("cli"),
            "vm.run",
            json!({ "path": "/bin/hello.wasm" }),
        )
        .await
        .unwrap();
        assert_eq!(again["cached"], true);
    }
    d.restart().await;
    let owner = d.owner().await;
    let after = req(
        &owner.app("cli"),
        "vm.run",
        json!({ "path": "/bin/hello.wasm" }),
    )
    .await
    .unwrap();
    assert_eq!(
        after["cached"], true,
        "a restart must not recompile a known module"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_finds_example_programs_that_run() {
    let d = TestDaemon::start_with(|c| c.vfs.examples = true).await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let listing = req(&cli, "vfs.list", json!({ "path": "/examples" }))
        .await
        .unwrap();
    let names: Vec<&str> = listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["README.md", "echo.wasm", "hello.wasm", "ticker.wasm"]
    );
    let mut events = cli.subscribe("vm.job.>").await.unwrap();
    let done = run(
        &cli,
        &mut events,
        json!({ "path": "/examples/hello.wasm", "args": ["you"] }),
    )
    .await;
    assert_eq!(done.stdout, "hello from wasm\nyou\n");
    // They count against the quota like any file.
    let usage = req(&cli, "vfs.usage", json!({})).await.unwrap();
    assert_eq!(usage["files"], 4);
}
