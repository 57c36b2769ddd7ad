//! The Rust guest programs (guests/src/bin) over the user's files: coreutils,
//! and file access exactly as the app's capabilities allow.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use aether_proto::ErrorCode;
use aether_proto::client::{AppHandle, ClientError, Subscription};
use aether_tests::{TestDaemon, expect_code, wait_until};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

/// Build the guests once per test run, for wasm32-wasip1.
fn guests() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"))
            .join("guests");
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "--target", "wasm32-wasip1", "--manifest-path"])
            .arg(root.join("guests/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "building the guest programs failed: is the target installed? `rustup target add wasm32-wasip1`"
        );
        target.join("wasm32-wasip1/release")
    })
}

async fn req(app: &AppHandle, topic: &str, data: Value) -> Result<Value, ClientError> {
    app.request_json(topic, &data).await
}

async fn put(app: &AppHandle, path: &str, bytes: &[u8]) {
    let write = json!({ "path": path, "data": BASE64.encode(bytes), "encoding": "base64", "parents": true });
    req(app, "vfs.write", write).await.unwrap();
}

async fn install(app: &AppHandle, names: &[&str]) {
    for name in names {
        let bytes = std::fs::read(guests().join(format!("{name}.wasm"))).unwrap();
        put(app, &format!("/bin/{name}.wasm"), &bytes).await;
    }
}

/// Run to the end: (stdout, stderr, exit code).
async fn run(
    app: &AppHandle,
    events: &mut Subscription,
    path: &str,
    args: &[&str],
) -> (String, String, i64) {
    run_ask(app, events, json!({ "path": path, "args": args })).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coreutils_work_over_the_users_files() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    install(&cli, &["cat", "wc", "grep", "ls", "hello"]).await;
    put(&cli, "/docs/a.txt", b"some words here\nsecond line\n").await;
    let mut events = cli.subscribe("vm.job.>").await.unwrap();
    assert_eq!(
        run(&cli, &mut events, "/bin/cat.wasm", &["/docs/a.txt"])
            .await
            .0,
        "some words here\nsecond line\n"
    );
    assert_eq!(
        run(&cli, &mut events, "/bin/wc.wasm", &["/docs/a.txt"])
            .await
            .0,
        "2 5 28 /docs/a.txt\n"
    );
    assert_eq!(
        run(
            &cli,
            &mut events,
            "/bin/grep.wasm",
            &["second", "/docs/a.txt"]
        )
        .await
        .0,
        "/docs/a.txt:2:second line\n"
    );
    let (listing, _, code) = run(&cli, &mut events, "/bin/ls.wasm", &["/"]).await;
    assert_eq!(code, 0);
    assert!(
        listing.contains(" bin") && listing.contains(" docs"),
        "{listing}"
    );
    let (out, _, _) = run(&cli, &mut events, "/bin/hello.wasm", &["x"]).await;
    assert_eq!(
        out, "hello from wasm\narg x\n",
        "no host environment leaks in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_outside_the_preopen_is_reachable() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    install(&cli, &["cat", "ls"]).await;
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), "outside secret").unwrap();
    let whoami = req(&cli, "sys.whoami", json!({})).await.unwrap();
    let root = d.config().vfs_dir().join(whoami["user"]["id"].to_string());
    std::os::unix::fs::symlink(outside.path(), root.join("escape")).unwrap();
    let mut events = cli.subscribe("vm.job.>").await.unwrap();
    for path in [
        "/../../etc/passwd",
        "/escape",
        outside.path().to_str().unwrap(),
    ] {
        let (out, err, code) = run(&cli, &mut events, "/bin/cat.wasm", &[path]).await;
        assert_ne!(code, 0, "{path} was readable: {out}");
        assert!(
            !out.contains("outside secret") && !out.contains("root:"),
            "{path}: {out}"
        );
        assert!(err.contains("cat:"), "{path}: {err}");
    }
    let (listing, _, _) = run(&cli, &mut events, "/bin/ls.wasm", &["/.."]).await;
    assert!(
        !listing.contains("vfs-scratch") && !listing.contains("aether.db"),
        "{listing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_access_follows_the_apps_capabilities() {
    let d = TestDaemon::start().await;
    let manifest = json!({ "id": "viewer", "name": "Viewer", "version": "1.0.0",
        "permissions": { "vm_run": "run", "vfs_read": "read" } });
    std::fs::write(d.manifests_dir().join("viewer.json"), manifest.to_string()).unwrap();
    let owner = d.owner().await;
    let cli = owner.app("cli");
    wait_until("viewer is installed", Duration::from_secs(10), async || {
        req(&cli, "sys.perms.show", json!({ "app": "viewer" }))
            .await
            .is_ok()
    })
    .await;
    install(&cli, &["writer", "cat"]).await;
    // Read-only for an app with vfs_read only.
    let viewer = owner.app("viewer");
    let mut events = viewer.subscribe("vm.job.>").await.unwrap();
    let (_, err, code) = run(
        &viewer,
        &mut events,
        "/bin/writer.wasm",
        &["/made-by-viewer.txt", "x"],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    expect_code(
        req(&cli, "vfs.stat", json!({ "path": "/made-by-viewer.txt" })).await,
        ErrorCode::NotFound,
    );
    let (out, _, _) = run(&viewer, &mut events, "/bin/cat.wasm", &["/bin/cat.wasm"]).await;
    assert!(!out.is_empty(), "reading is allowed");
    // Read-write for an app with vfs_write (the VM Terminal).
    let terminal = owner.app("terminal");
    let mut events = terminal.subscribe("vm.job.>").await.unwrap();
    let (_, err, code) = run(
        &terminal,
        &mut events,
        "/bin/writer.wasm",
        &["/made.txt", "written"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let read = req(&cli, "vfs.read", json!({ "path": "/made.txt" }))
        .await
        .unwrap();
    assert_eq!(read["data"], "written");
}

/// Install an app from a bundle: its manifest in the manifests dir, its files beside it.
async fn install_app(d: &TestDaemon, cli: &AppHandle, manifest: Value, files: &[(&str, &[u8])]) {
    let id = manifest["id"].as_str().unwrap().to_owned();
    let bundle = d.manifests_dir().join(&id);
    std::fs::create_dir_all(&bundle).unwrap();
    for (name, bytes) in files {
        std::fs::write(bundle.join(name), bytes).unwrap();
    }
    std::fs::write(
        d.manifests_dir().join(format!("{id}.json")),
        manifest.to_string(),
    )
    .unwrap();
    wait_until(
        &format!("{id} is installed"),
        Duration::from_secs(10),
        async || {
            req(cli, "sys.perms.show", json!({ "app": id }))
                .await
                .is_ok()
        },
    )
    .await;
}

/// Start a job and wait for its exit event: (stdout, stderr, exit event).
async fn run_full(
    app: &AppHandle,
    events: &mut Subscription,
    ask: Value,
) -> (String, String, Value) {
    let started = req(app, "vm.run", ask).await.unwrap();
    let job = started["job"].as_str().unwrap().to_owned();
    let (mut out, mut err) = (String::new(), String::new());
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), events.next_msg())
            .await
            .expect("the job ends")
            .expect("subscribed");
        let Some(kind) = msg.topic.strip_prefix(&format!("vm.job.{job}.")) else {
            continue;
        };
        let data: Value = Subscription::decode(&msg).unwrap();
        match kind {
            "stdout" => out.push_str(data["data"].as_str().unwrap()),
            "stderr" => err.push_str(data["data"].as_str().unwrap()),
            _ => return (out, err, data),
        }
    }
}

/// Start a job and wait for it: (stdout, stderr, exit code).
async fn run_ask(app: &AppHandle, events: &mut Subscription, ask: Value) -> (String, String, i64) {
    let (out, err, exit) = run_full(app, events, ask).await;
    (out, err, exit["code"].as_i64().unwrap_or(-1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_apps_entry_runs_with_no_more_than_its_launcher_may() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let writer = std::fs::read(guests().join("writer.wasm")).unwrap();
    let scribe = json!({ "id": "scribe", "name": "Scribe", "version": "1.0.0", "entry": "writer.wasm",
        "permissions": { "vfs_write": "write notes" }, "limits": { "timeout_ms": 5000 } });
    install_app(&d, &cli, scribe, &[("writer.wasm", &writer)]).await;
    let viewer = json!({ "id": "viewer", "name": "Viewer", "version": "1.0.0",
        "permissions": { "vm_run": "run", "vfs_read": "read" } });
    install_app(&d, &cli, viewer, &[]).await;

    // From the VM Terminal (read-write) the entry writes the user's files.
    let terminal = owner.app("terminal");
    let mut events = terminal.subscribe("vm.job.>").await.unwrap();
    let ask = json!({ "installed": "scribe", "args": ["/note.txt", "from scribe"] });
    let (_, err, code) = run_ask(&terminal, &mut events, ask).await;
    assert_eq!(code, 0, "{err}");
    let read = req(&cli, "vfs.read", json!({ "path": "/note.txt" }))
        .await
        .unwrap();
    assert_eq!(read["data"], "from scribe");
    let jobs = req(&terminal, "vm.jobs", json!({})).await.unwrap();
    assert_eq!(jobs["jobs"][0]["path"], "app:scribe", "{jobs}");

    // Launched by an app that may only read, the same entry may only read.
    let viewer = owner.app("viewer");
    let mut events = viewer.subscribe("vm.job.>").await.unwrap();
    let ask = json!({ "installed": "scribe", "args": ["/by-viewer.txt", "x"] });
    let (_, err, code) = run_ask(&viewer, &mut events, ask).await;
    assert_eq!(code, 1, "the write is refused: {err}");
    expect_code(
        req(&cli, "vfs.stat", json!({ "path": "/by-viewer.txt" })).await,
        ErrorCode::NotFound,
    );

    // Bad asks are refused clearly.
    let ghost = json!({ "id": "ghost", "name": "Ghost", "version": "1.0.0", "entry": "gone.wasm" });
    std::fs::write(d.manifests_dir().join("ghost.json"), ghost.to_string()).unwrap();
    wait_until("ghost is installed", Duration::from_secs(10), async || {
        req(&cli, "sys.perms.show", json!({ "app": "ghost" }))
            .await
            .is_ok()
    })
    .await;
    for (ask, code, words) in [
        (
            json!({ "installed": "nope" }),
            ErrorCode::NotFound,
            "no app \"nope\"",
        ),
        (
            json!({ "installed": "files" }),
            ErrorCode::BadFrame,
            "no entry module",
        ),
        (
            json!({ "installed": "ghost" }),
            ErrorCode::NotFound,
            "gone.wasm",
        ),
        (
            json!({ "installed": "scribe", "path": "/bin/x.wasm" }),
            ErrorCode::BadFrame,
            "not both",
        ),
        (
            json!({ "args": ["x"] }),
            ErrorCode::BadFrame,
            "name what to run",
        ),
    ] {
        let e = expect_code(req(&terminal, "vm.run", ask.clone()).await, code);
        assert!(e.contains(words), "{ask}: {e}");
    }
}

/// The next `vfs.events.<kind>` event.
async fn next_vfs_event(events: &mut Subscription, kind: &str) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), events.next_msg())
            .await
            .unwrap_or_else(|_| panic!("no vfs.events.{kind} within 30 s"))
            .expect("subscribed");
        if msg.topic == format!("vfs.events.{kind}") {
            return Subscription::decode(&msg).unwrap();
        }
    }
}

async fn search_paths(app: &AppHandle, query: &str) -> Vec<String> {
    let found = req(app, "vfs.search", json!({ "query": query }))
        .await
        .unwrap();
    found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["path"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vfs_catches_up_with_what_programs_write_and_remove() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    install(&cli, &["writer", "rm"]).await;
    let before = req(&cli, "vfs.usage", json!({})).await.unwrap();
    let terminal = owner.app("terminal");
    let mut changes = terminal.subscribe("vfs.events.>").await.unwrap();
    let mut jobs = terminal.subscribe("vm.job.>").await.unwrap();

    let ask = json!({ "path": "/bin/writer.wasm", "args": ["/notes.txt", "zanzibar lagoon"] });
    let (_, err, code) = run_ask(&terminal, &mut jobs, ask).await;
    assert_eq!(code, 0, "{err}");
    // (A file installed a moment before the job may be reported too: timestamps are coarse.)
    let mut written = vec![];
    let summary = loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), changes.next_msg())
            .await
            .expect("the VFS reports the job's changes")
            .unwrap();
        let data: Value = Subscription::decode(&msg).unwrap();
        match msg.topic.as_str() {
            "vfs.events.written" => written.push(data),
            "vfs.events.rescanned" => break data,
            _ => {}
        }
    };
    let notes = written.iter().find(|w| w["path"] == "/notes.txt");
    let notes = notes.unwrap_or_else(|| panic!("no event for /notes.txt: {written:?}"));
    assert_eq!(notes["job"], summary["job"], "{notes}");
    assert_eq!(summary["written"], written.len(), "{summary}");
    // Known by the time the exit is reported: usage, and (soon) search.
    let after = req(&cli, "vfs.usage", json!({})).await.unwrap();
    assert_eq!(
        after["bytes"].as_u64().unwrap(),
        before["bytes"].as_u64().unwrap() + 15,
        "{before} -> {after}"
    );
    assert_eq!(
        after["files"].as_u64().unwrap(),
        before["files"].as_u64().unwrap() + 1
    );
    wait_until(
        "the program's file is found",
        Duration::from_secs(10),
        async || search_paths(&cli, "zanzibar").await == ["/notes.txt"],
    )
    .await;

    let ask = json!({ "path": "/bin/rm.wasm", "args": ["/notes.txt"] });
    let (_, err, code) = run_ask(&terminal, &mut jobs, ask).await;
    assert_eq!(code, 0, "{err}");
    let summary = next_vfs_event(&mut changes, "rescanned").await;
    assert_eq!(summary["removed"], true, "{summary}");
    wait_until(
        "the removed file is no longer found",
        Duration::from_secs(10),
        async || search_paths(&cli, "zanzibar").await.is_empty(),
    )
    .await;
    let last = req(&cli, "vfs.usage", json!({})).await.unwrap();
    assert_eq!(last["bytes"], before["bytes"], "{last}");
    // Not something an app may ask for itself.
    expect_code(
        req(&cli, "vfs.rescan", json!({ "since_ms": 0, "job": "x" })).await,
        ErrorCode::Forbidden,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn program_writes_stop_at_the_users_quota() {
    const QUOTA: u64 = 4 << 20;
    let d = TestDaemon::start_with(|c| c.vfs.quota_bytes = QUOTA).await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    install(&cli, &["fill"]).await;
    let used = req(&cli, "vfs.usage", json!({})).await.unwrap()["bytes"]
        .as_u64()
        .unwrap();
    let terminal = owner.app("terminal");
    let mut jobs = terminal.subscribe("vm.job.>").await.unwrap();
    // Three at once: they share what the quota leaves, not one quota each.
    for name in ["/other1.bin", "/other2.bin"] {
        let ask = json!({ "path": "/bin/fill.wasm", "args": [name, "64"] });
        req(&terminal, "vm.run", ask).await.unwrap();
    }
    let ask = json!({ "path": "/bin/fill.wasm", "args": ["/big.bin", "64"] });
    let (out, err, exit) = run_full(&terminal, &mut jobs, ask).await;
    assert_eq!(exit["code"], 1, "{exit} {err}");
    assert!(
        err.to_lowercase().contains("quota exceeded"),
        "the program is told why: {err}"
    );
    assert!(
        exit["error"]
            .as_str()
            .unwrap_or_default()
            .contains("storage quota"),
        "{exit}"
    );
    let wrote: u64 = out.trim().strip_prefix("wrote ").unwrap().parse().unwrap();
    assert!(
        wrote + used <= QUOTA,
        "{wrote} bytes written past the quota"
    );
    wait_until("the other fills end", Duration::from_secs(30), async || {
        let jobs = req(&terminal, "vm.jobs", json!({})).await.unwrap();
        let jobs = jobs["jobs"].as_array().unwrap().clone();
        jobs.iter().all(|j| j["status"]["state"] == "finished")
    })
    .await;
    let usage = req(&cli, "vfs.usage", json!({})).await.unwrap();
    assert!(usage["bytes"].as_u64().unwrap() <= QUOTA, "{usage}");
    assert_eq!(usage["quota_bytes"], QUOTA);
}
