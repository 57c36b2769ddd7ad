//! kill -9 of the real daemon in the middle of writes loses nothing it acknowledged.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aether_proto::client::{AetherClient, ClientOptions, Endpoint};
use aether_proto::frame::Auth;
use serde_json::{Value, json};

fn spawn(home: &Path) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_aetherd"))
        .env("AETHER_HOME", home)
        .args(["--listen", "off"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = home.join("run/aetherd.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

async fn owner(home: &Path) -> AetherClient {
    let options = ClientOptions {
        reconnect: false,
        ..ClientOptions::default()
    };
    let socket = Endpoint::Unix(home.join("run/aetherd.sock"));
    AetherClient::connect(&socket, Auth::Local, options)
        .await
        .unwrap()
}

fn content(file: usize, round: usize) -> String {
    format!("file {file} round {round} ").repeat(200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_writes_loses_nothing_acknowledged() {
    let home = tempfile::tempdir().unwrap();
    let mut daemon = spawn(home.path());
    let client = owner(home.path()).await;
    let files = client.app("files");
    let _: Value = files
        .request_json("vfs.mkdir", &json!({ "path": "/d" }))
        .await
        .unwrap();

    // Writers rewrite 20 files round after round; each remembers its last acknowledged round.
    let acked = Arc::new(parking_lot::Mutex::new(vec![None::<usize>; 20]));
    let mut writers = vec![];
    for file in 0..20 {
        let (files, acked) = (files.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for round in 0.. {
                let write = json!({ "path": format!("/d/f{file}"), "data": content(file, round) });
                match files.request_json::<_, Value>("vfs.write", &write).await {
                    Ok(_) => acked.lock()[file] = Some(round),
                    Err(_) => return round, // the daemon died: this round may or may not have landed
                }
            }
            unreachable!()
        }));
    }
    // Let plenty of writes land, then kill the daemon without warning.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().iter().filter_map(|r| *r).sum::<usize>() < 200 {
        assert!(Instant::now() < deadline, "writes are too slow");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let mut in_flight = vec![];
    for writer in writers {
        in_flight.push(writer.await.unwrap());
    }
    let acked = acked.lock().clone();

    let mut daemon = spawn(home.path());
    let client = owner(home.path()).await;
    let files = client.app("files");
    for (file, last) in acked.iter().enumerate() {
        let read: Value = files
            .request_json("vfs.read", &json!({ "path": format!("/d/f{file}") }))
            .await
            .unwrap_or_else(|e| panic!("/d/f{file} is gone after the crash: {e}"));
        let text = read["data"].as_str().unwrap();
        // The file holds the last acknowledged round, or the one in flight at the kill: never a mix.
        let allowed: Vec<String> = last
            .iter()
            .copied()
            .chain([in_flight[file]])
            .map(|round| content(file, round))
            .collect();
        assert!(
            allowed.iter().any(|a| a == text),
            "/d/f{file} lost an acknowledged write (last acked round {last:?}): it holds {:?}…",
            &text[..text.len().min(40)]
        );
    }
    // Nothing half-written shows up in the user's files.
    let listing: Value = files
        .request_json("vfs.list", &json!({ "path": "/d" }))
        .await
        .unwrap();
    assert_eq!(
        listing["entries"].as_array().unwrap().len(),
        20,
        "{listing}"
    );
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}

/// The state of a graph, as `agent.get` gives it.
async fn graph(client: &AetherClient, id: &str) -> Value {
    client
        .app("cli")
        .request_json("agent.get", &json!({ "id": id }))
        .await
        .unwrap()
}

async fn wait_graph(
    client: &AetherClient,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let g = graph(client, id).await;
        if check(&g) {
            return g;
        }
        assert!(Instant::now() < deadline, "waiting for {what}: {g:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn node<'a>(graph: &'a Value, id: &str) -> &'a Value {
    graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_graph_resumes_without_repeating_finished_nodes() {
    let home = tempfile::tempdir().unwrap();
    let mut daemon = spawn(home.path());
    let client = owner(home.path()).await;
    let cli = client.app("cli");
    // A program that runs for a second: killed mid-way, its node's outcome is unknown.
    let ticker = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../guests/wat/ticker.wat"
    ))
    .unwrap();
    let module = wat::parse_str(&ticker).unwrap();
    use base64::Engine;
    cli.request_json::<_, Value>(
        "vfs.write",
        &json!({ "path": "/ticker.wasm", "encoding": "base64",
                 "data": base64::engine::general_purpose::STANDARD.encode(module) }),
    )
    .await
    .unwrap();
    let spec = json!({ "name": "survives", "auto_approve": true, "nodes": [
        { "id": "first", "tool": "vfs.write", "args": { "path": "/first.txt", "data": "one" } },
        { "id": "tick", "tool": "vm.run", "args": { "path": "/ticker.wasm" }, "after": ["first"] },
        { "id": "wait", "tool": "vfs.read", "args": { "path": "/first.txt" }, "after": ["first"] },
        { "id": "last", "tool": "vfs.write", "after": ["tick"],
          "args": { "path": "/last.txt", "data": "${wait.data} and done" } },
    ]});
    let started: Value = cli
        .request_json("agent.run", &json!({ "graph": spec }))
        .await
        .unwrap();
    let id = started["id"].as_str().unwrap().to_owned();
    wait_graph(&client, &id, "the program to run", |g| {
        node(g, "tick")["state"] == "running" && node(g, "wait")["state"] == "done"
    })
    .await;
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    drop(client);

    let mut daemon = spawn(home.path());
    let client = owner(home.path()).await;
    let g = wait_graph(&client, &id, "the graph to wait for the user", |g| {
        g["state"] == "waiting"
    })
    .await;
    assert_eq!(node(&g, "first")["state"], "done");
    assert_eq!(
        node(&g, "first")["attempts"],
        1,
        "finished nodes do not run again"
    );
    assert_eq!(node(&g, "wait")["attempts"], 1);
    let tick = node(&g, "tick");
    assert_eq!(tick["state"], "unknown", "{g:#}");
    assert!(tick["error"].as_str().unwrap().contains("agent.retry"));
    // The user decides: run it again.
    let cli = client.app("cli");
    cli.request_json::<_, Value>("agent.retry", &json!({ "id": id, "node": "tick" }))
        .await
        .unwrap();
    let g = wait_graph(&client, &id, "the graph to finish", |g| {
        g["state"] == "done"
    })
    .await;
    assert_eq!(node(&g, "tick")["attempts"], 2);
    let last: Value = cli
        .request_json("vfs.read", &json!({ "path": "/last.txt" }))
        .await
        .unwrap();
    assert_eq!(last["data"], "one and done");
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}

/// The bundle folders under `<home>/apps`, as `id` → how many.
fn shelf(home: &Path) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for app in std::fs::read_dir(home.join("apps"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = app.file_name().to_string_lossy().into_owned();
        let count = std::fs::read_dir(app.path()).map_or(0, |d| d.count());
        out.insert(name, count);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_installs_leaves_each_app_installed_or_not_at_all() {
    let home = tempfile::tempdir().unwrap();
    // Each sample's module compiled once first (as its first install does): the kills below
    // then land among installs that go as fast as they do once compiled.
    {
        let mut daemon = spawn(home.path());
        let client = owner(home.path()).await;
        let cli = client.app("cli");
        for id in ["wordcount", "todo", "ask"] {
            let consent = json!(["vfs_read", "vfs_write", "ai_access"]);
            let ask = json!({ "id": id, "consent": consent });
            cli.request_json::<_, Value>("apps.install", &ask)
                .await
                .unwrap();
            cli.request_json::<_, Value>("apps.uninstall", &json!({ "id": id }))
                .await
                .unwrap();
        }
        daemon.kill().unwrap();
        daemon.wait().unwrap();
    }
    for (round, after_ms) in [3u64, 17, 41].into_iter().enumerate() {
        let mut daemon = spawn(home.path());
        let client = owner(home.path()).await;
        let cli = client.app("cli");
        // Install and remove the sample apps over and over until the kill.
        let steps_done = Arc::new(AtomicUsize::new(0));
        let counter = steps_done.clone();
        let churn = tokio::spawn(async move {
            for i in 0.. {
                counter.store(i, Ordering::SeqCst);
                let id = ["wordcount", "todo", "ask"][i % 3];
                let consent = json!(["vfs_read", "vfs_write", "ai_access"]);
                let ask = json!({ "id": id, "consent": consent });
                if cli
                    .request_json::<_, Value>("apps.install", &ask)
                    .await
                    .is_err()
                {
                    return i;
                }
                if i % 2 == 0 {
                    let gone = json!({ "id": id });
                    if cli
                        .request_json::<_, Value>("apps.uninstall", &gone)
                        .await
                        .is_err()
                    {
                        return i;
                    }
                }
            }
            unreachable!()
        });
        // The kill lands among installs, after the first one (however slow the machine).
        let deadline = Instant::now() + Duration::from_secs(60);
        while steps_done.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "no install finished in 60 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(after_ms * (round as u64 + 1))).await;
        daemon.kill().unwrap();
        daemon.wait().unwrap();
        let steps = churn.await.unwrap();
        assert!(steps > 0, "some installs ran before the kill");

        let mut daemon = spawn(home.path());
        let client = owner(home.path()).await;
        let cli = client.app("cli");
        let list: Value = cli.request_json("apps.list", &json!({})).await.unwrap();
        let installed: Vec<String> = list["apps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["built_in"] == false)
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect();
        let shelf = shelf(home.path());
        assert!(!shelf.contains_key(".staging"), "{shelf:?}");
        for id in ["wordcount", "todo", "ask"] {
            let listed = installed.iter().any(|i| i == id);
            let folders = shelf.get(id).copied().unwrap_or(0);
            assert_eq!(
                folders,
                usize::from(listed),
                "round {round}: {id} listed {listed}, {folders} folders: {shelf:?}"
            );
            if listed {
                let run = json!({ "installed": id, "args": ["help"], "stdin": "" });
                let started: Result<Value, _> = cli.request_json("vm.run", &run).await;
                assert!(started.is_ok(), "{id} runs: {started:?}");
            }
        }
        daemon.kill().unwrap();
        daemon.wait().unwrap();
    }
}
