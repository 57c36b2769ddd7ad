//! The install service: catalogs, consent, updates, uninstalls, every malicious bundle in the
//! test set refused with a clear reason and nothing left half installed, and installed apps'
//! programs on the bus through the `aether` host interface.

use std::path::Path;
use std::time::Duration;

use aether_proto::ErrorCode;
use aether_proto::client::{AppHandle, ClientError, Subscription};
use aether_proto::frame::Auth;
use aether_tests::bundles::{self, Entry, Publisher};
use aether_tests::{TestDaemon, expect_code};
use aetherd::config::SignaturePolicy;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

async fn req(app: &AppHandle, topic: &str, data: Value) -> Result<Value, ClientError> {
    app.request_json(topic, &data).await
}

/// Install a bundle's bytes with this consent.
async fn install_bytes(
    app: &AppHandle,
    bytes: &[u8],
    consent: &[&str],
) -> Result<Value, ClientError> {
    req(
        app,
        "apps.install",
        json!({ "data": BASE64.encode(bytes), "consent": consent }),
    )
    .await
}

/// The bundle folders on disk, as `id/sha256`.
fn shelf(d: &TestDaemon) -> Vec<String> {
    let root = d.config().data_dir.join("apps");
    let mut out = vec![];
    for app in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for version in std::fs::read_dir(app.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(format!(
                "{}/{}",
                app.file_name().to_string_lossy(),
                version.file_name().to_string_lossy()
            ));
        }
    }
    out.sort();
    out
}

async fn installed_ids(app: &AppHandle) -> Vec<String> {
    let list = req(app, "apps.list", json!({})).await.unwrap();
    list["apps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["built_in"] == false)
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Run an installed app to its end: (stdout, stderr, exit code).
async fn run_installed(app: &AppHandle, id: &str, args: &[&str]) -> (String, String, i64) {
    let mut events: Subscription = app.subscribe("vm.job.>").await.unwrap();
    let started = req(app, "vm.run", json!({ "installed": id, "args": args }))
        .await
        .unwrap();
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
            _ => return (out, err, data["code"].as_i64().unwrap_or(-1)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_app_from_the_builtin_catalog_installs_with_consent_runs_and_uninstalls() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");

    let catalog = req(&cli, "apps.catalog", json!({})).await.unwrap();
    let ids: Vec<&str> = catalog["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    for sample in ["ask", "todo", "wordcount"] {
        assert!(ids.contains(&sample), "{catalog}");
    }
    let found = req(&cli, "apps.catalog", json!({ "query": "COUNT words" }))
        .await
        .unwrap();
    assert_eq!(found["apps"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(
        found["apps"][0]["capabilities"][0]["capability"],
        "vfs_read"
    );

    // Without consent nothing is installed, and the refusal names what is asked and why.
    let refused = expect_code(
        req(&cli, "apps.install", json!({ "id": "wordcount" })).await,
        ErrorCode::Forbidden,
    );
    assert!(
        refused.contains("consent") && refused.contains("vfs_read"),
        "{refused}"
    );
    assert!(installed_ids(&cli).await.is_empty());
    assert!(shelf(&d).is_empty());
    let info = req(&cli, "apps.inspect", json!({ "id": "wordcount" }))
        .await
        .unwrap();
    assert_eq!(info["needs_consent"], json!(["vfs_read"]), "{info}");
    assert_eq!(info["signature"]["state"], "unsigned");

    let done = req(
        &cli,
        "apps.install",
        json!({ "id": "wordcount", "consent": ["vfs_read"] }),
    )
    .await
    .unwrap();
    assert_eq!(done["granted"], json!(["vfs_read"]), "{done}");
    assert_eq!(installed_ids(&cli).await, ["wordcount"]);
    assert_eq!(shelf(&d).len(), 1);

    // It runs and its bus requests read the user's files as the app.
    req(
        &cli,
        "vfs.write",
        json!({ "path": "/notes.txt", "data": "one two two\nthree\n" }),
    )
    .await
    .unwrap();
    let (out, err, code) = run_installed(&cli, "wordcount", &["/notes.txt"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("2 lines, 4 words") && out.contains("two (2)"),
        "{out}"
    );

    // A token bound to the app goes with it.
    let token = req(&cli, "sys.token.create", json!({ "app": "wordcount" }))
        .await
        .unwrap();
    assert!(token["token"].is_string());
    let gone = req(&cli, "apps.uninstall", json!({ "id": "wordcount" }))
        .await
        .unwrap();
    assert_eq!(gone["files_removed"], true, "{gone}");
    assert_eq!(gone["tokens_revoked"], 1, "{gone}");
    assert!(installed_ids(&cli).await.is_empty());
    assert!(shelf(&d).is_empty());
    expect_code(
        req(&cli, "vm.run", json!({ "installed": "wordcount" })).await,
        ErrorCode::NotFound,
    );
    expect_code(
        req(&cli, "apps.uninstall", json!({ "id": "editor" })).await,
        ErrorCode::Conflict,
    );
}

/// Each bad bundle, the code it gets, and a word its refusal must name.
fn malicious() -> Vec<(&'static str, Vec<u8>, ErrorCode, &'static str)> {
    let good_manifest = bundles::manifest("evil", "1.0.0", &["vfs_read"]);
    let manifest = serde_json::to_vec(&good_manifest).unwrap();
    let module = bundles::noop_module();
    let with = |extra: Entry| {
        bundles::tar_gz(&[
            Entry::File("manifest.json", &manifest),
            Entry::File("app.wasm", &module),
            extra,
        ])
    };
    let bad_manifest = |m: Value| bundles::bundle(&m, &module);
    let bad_module = |wasm: &[u8]| bundles::bundle(&good_manifest, wasm);
    let forbidden_import = wat::parse_str(
        r#"(module (import "env" "connect" (func)) (memory (export "memory") 1) (func (export "_start")))"#,
    )
    .unwrap();
    let component = b"\0asm\x0d\x00\x01\x00".to_vec();
    let mut unknown_cap = good_manifest.clone();
    unknown_cap["permissions"] = json!({ "root_shell": "everything" });
    let mut admin = good_manifest.clone();
    admin["permissions"] = json!({ "admin": "manage users" });
    let mut builtin = good_manifest.clone();
    builtin["id"] = json!("editor");
    let mut bad_version = good_manifest.clone();
    bad_version["version"] = json!("1.0");
    // 40 MiB of zeros packs into a few KiB; the daemon here unpacks at most 8 MiB.
    let zeros = vec![0u8; 40 << 20];
    let bomb = with(Entry::File("padding.bin", &zeros));
    vec![
        (
            "not gzip",
            b"PK\x03\x04 a zip".to_vec(),
            ErrorCode::BadFrame,
            "tar.gz",
        ),
        (
            "gzip of garbage",
            bundles::gzip(b"not a tar archive at all, no"),
            ErrorCode::BadFrame,
            "tar",
        ),
        (
            "parent dir",
            with(Entry::RawName(b"../../escape.txt", b"x")),
            ErrorCode::BadFrame,
            "`..`",
        ),
        (
            "absolute",
            with(Entry::RawName(b"/etc/cron.d/x", b"x")),
            ErrorCode::BadFrame,
            "absolute",
        ),
        (
            "symlink",
            with(Entry::Symlink("link", "/etc/passwd")),
            ErrorCode::BadFrame,
            "symbolic link",
        ),
        (
            "hard link",
            with(Entry::HardLink("hard", "/etc/shadow")),
            ErrorCode::BadFrame,
            "hard link",
        ),
        (
            "device",
            with(Entry::CharDevice("dev")),
            ErrorCode::BadFrame,
            "device",
        ),
        (
            "fifo",
            with(Entry::Fifo("pipe")),
            ErrorCode::BadFrame,
            "FIFO",
        ),
        (
            "twice",
            with(Entry::File("app.wasm", b"again")),
            ErrorCode::BadFrame,
            "twice",
        ),
        (
            "no manifest",
            bundles::tar_gz(&[Entry::File("app.wasm", &module)]),
            ErrorCode::BadFrame,
            "manifest.json",
        ),
        (
            "unknown capability",
            bad_manifest(unknown_cap),
            ErrorCode::BadFrame,
            "root_shell",
        ),
        (
            "bad version",
            bad_manifest(bad_version),
            ErrorCode::BadFrame,
            "version",
        ),
        ("admin", bad_manifest(admin), ErrorCode::Forbidden, "admin"),
        (
            "built-in id",
            bad_manifest(builtin),
            ErrorCode::Conflict,
            "built-in",
        ),
        (
            "not wasm",
            bad_module(b"#!/bin/sh\nrm -rf ~\n"),
            ErrorCode::BadFrame,
            "not a WebAssembly module",
        ),
        (
            "forbidden import",
            bad_module(&forbidden_import),
            ErrorCode::BadFrame,
            "env::connect",
        ),
        (
            "component",
            bad_module(&component),
            ErrorCode::BadFrame,
            "component",
        ),
        (
            "missing entry",
            bundles::tar_gz(&[Entry::File("manifest.json", &manifest)]),
            ErrorCode::BadFrame,
            "app.wasm",
        ),
        ("bomb", bomb, ErrorCode::TooLarge, "bomb"),
        ("oversized", vec![0x1f; 5 << 19], ErrorCode::TooLarge, "MiB"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malicious_bundle_is_refused_with_a_clear_reason_and_nothing_is_left() {
    let d = TestDaemon::start_with(|c| {
        c.apps.max_bundle_mb = 2;
        c.apps.max_unpacked_mb = 8;
    })
    .await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    for (name, bytes, code, word) in malicious() {
        let result = install_bytes(&cli, &bytes, &["vfs_read", "admin"]).await;
        let msg = match result {
            Err(ClientError::Daemon(e)) => {
                assert_eq!(e.code, code, "{name}: {}", e.msg);
                e.msg
            }
            other => panic!("{name}: {other:?}"),
        };
        assert!(msg.contains(word), "{name}: {msg:?} should name {word:?}");
        // Inspecting says the same, and installs nothing either.
        assert!(
            req(
                &cli,
                "apps.inspect",
                json!({ "data": BASE64.encode(&bytes) })
            )
            .await
            .is_err(),
            "{name}"
        );
    }
    assert!(installed_ids(&cli).await.is_empty());
    assert!(shelf(&d).is_empty(), "{:?}", shelf(&d));
    assert!(!d.config().data_dir.join("apps/.staging").exists());
    // The daemon is still fine and a good bundle still installs.
    let good = bundles::bundle(
        &bundles::manifest("fine", "1.0.0", &[]),
        &bundles::noop_module(),
    );
    install_bytes(&cli, &good, &[]).await.unwrap();
    assert_eq!(installed_ids(&cli).await, ["fine"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_bundle_with_a_bad_hash_and_broken_catalogs_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let good = bundles::bundle(
        &bundles::manifest("tidy", "1.0.0", &[]),
        &bundles::noop_module(),
    );
    let mut altered = good.clone();
    let middle = altered.len() / 2;
    altered[middle] ^= 0x55;
    let catalog = dir.path().join("cat");
    bundles::write_catalog(
        &catalog,
        &[(&bundles::manifest("tidy", "1.0.0", &[]), &good, None)],
    );
    // Swapped on the server after the index was written.
    std::fs::write(catalog.join("tidy-1.0.0.tar.gz"), &altered).unwrap();
    let garbage = dir.path().join("garbage");
    std::fs::create_dir_all(&garbage).unwrap();
    std::fs::write(garbage.join("index.json"), "<html>502 Bad Gateway</html>").unwrap();
    let (cat, garb) = (catalog.clone(), garbage.clone());
    let d = TestDaemon::start_with(move |c| {
        c.apps.catalogs = vec![
            "http://127.0.0.1:9/".into(),
            garb.display().to_string(),
            cat.display().to_string(),
            "builtin".into(),
        ];
    })
    .await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let answer = req(&cli, "apps.catalog", json!({})).await.unwrap();
    let sources = answer["catalogs"].as_array().unwrap();
    assert!(
        sources[0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{answer}"
    );
    assert!(
        sources[1]["error"]
            .as_str()
            .unwrap()
            .contains("bad index.json"),
        "{answer}"
    );
    assert!(sources[2]["error"].is_null(), "{answer}");
    assert!(
        answer["apps"].as_array().unwrap().len() >= 4,
        "the others still count: {answer}"
    );

    let msg = expect_code(
        req(
            &cli,
            "apps.install",
            json!({ "id": "tidy", "consent": ["vfs_write"] }),
        )
        .await,
        ErrorCode::BadFrame,
    );
    assert!(msg.contains("SHA-256") && msg.contains("altered"), "{msg}");
    let msg = expect_code(
        req(&cli, "apps.install", json!({ "id": "nosuch" })).await,
        ErrorCode::NotFound,
    );
    assert!(
        msg.contains("no catalog offers nosuch") && msg.contains("cannot be reached"),
        "{msg}"
    );
    assert!(shelf(&d).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_required_when_the_policy_says_so() {
    let acme = Publisher::new("acme", 1);
    let forger = Publisher::new("acme", 2);
    let dir = tempfile::tempdir().unwrap();
    let signed = bundles::bundle(
        &bundles::manifest("signed", "1.0.0", &[]),
        &bundles::noop_module(),
    );
    bundles::write_catalog(
        &dir.path().join("cat"),
        &[(
            &bundles::manifest("signed", "1.0.0", &[]),
            &signed,
            Some(&acme),
        )],
    );
    let (key, cat) = (acme.public_key(), dir.path().join("cat"));
    let d = TestDaemon::start_with(move |c| {
        c.apps.signatures = SignaturePolicy::Require;
        c.apps.publishers.insert("acme".into(), key);
        c.apps.catalogs = vec![cat.display().to_string()];
    })
    .await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let local = bundles::bundle(
        &bundles::manifest("local", "1.0.0", &[]),
        &bundles::noop_module(),
    );
    let msg = expect_code(install_bytes(&cli, &local, &[]).await, ErrorCode::Forbidden);
    assert!(msg.contains("not signed"), "{msg}");
    let forged = req(
        &cli,
        "apps.install",
        json!({ "data": BASE64.encode(&local), "publisher": "acme", "signature": forger.sign(&local) }),
    )
    .await;
    assert!(expect_code(forged, ErrorCode::Forbidden).contains("does not match"));
    let stranger = req(
        &cli,
        "apps.install",
        json!({ "data": BASE64.encode(&local), "publisher": "stranger", "signature": forger.sign(&local) }),
    )
    .await;
    assert!(expect_code(stranger, ErrorCode::Forbidden).contains("does not trust"));
    let ok = req(
        &cli,
        "apps.install",
        json!({ "data": BASE64.encode(&local), "publisher": "acme", "signature": acme.sign(&local) }),
    )
    .await
    .unwrap();
    assert_eq!(
        ok["signature"],
        json!({ "state": "verified", "publisher": "acme" })
    );
    let from_catalog = req(&cli, "apps.install", json!({ "id": "signed" }))
        .await
        .unwrap();
    assert_eq!(
        from_catalog["signature"]["state"], "verified",
        "{from_catalog}"
    );
    assert_eq!(installed_ids(&cli).await, ["local", "signed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_asking_for_more_ask_again_and_downgrades_need_asking() {
    let dir = tempfile::tempdir().unwrap();
    let v1m = bundles::manifest("notes", "1.0.0", &["vfs_read"]);
    let v2m = bundles::manifest("notes", "2.0.0", &["vfs_read", "vfs_write"]);
    let v1 = bundles::bundle(&v1m, &bundles::noop_module());
    let v2 = bundles::bundle(&v2m, &bundles::noop_module());
    let cat = dir.path().join("cat");
    bundles::write_catalog(&cat, &[(&v1m, &v1, None), (&v2m, &v2, None)]);
    let d =
        TestDaemon::start_with(move |c| c.apps.catalogs = vec![cat.display().to_string()]).await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let listed = req(&cli, "apps.catalog", json!({})).await.unwrap();
    assert_eq!(
        listed["apps"][0]["versions"],
        json!(["2.0.0", "1.0.0"]),
        "{listed}"
    );

    req(
        &cli,
        "apps.install",
        json!({ "id": "notes", "version": "1.0.0", "consent": ["vfs_read"] }),
    )
    .await
    .unwrap();
    let mut events = cli.subscribe("apps.events.*").await.unwrap();
    let msg = expect_code(
        req(&cli, "apps.update", json!({ "id": "notes", "consent": [] })).await,
        ErrorCode::Forbidden,
    );
    assert!(
        msg.contains("vfs_write") && !msg.contains("vfs_read"),
        "only the new one: {msg}"
    );
    let shelf_v1 = shelf(&d);
    let updated = req(
        &cli,
        "apps.update",
        json!({ "id": "notes", "consent": ["vfs_write"] }),
    )
    .await
    .unwrap();
    assert_eq!(updated["replaced"], "1.0.0", "{updated}");
    assert_eq!(updated["version"], "2.0.0");
    assert_eq!(shelf(&d).len(), 1, "the old version's files go");
    assert_ne!(shelf(&d), shelf_v1);
    let mut steps = vec![];
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(2), events.next_msg()).await
    {
        steps.push(msg.topic.clone());
        if msg.topic == "apps.events.updated" {
            break;
        }
    }
    assert!(
        steps.contains(&"apps.events.progress".to_owned()),
        "{steps:?}"
    );
    assert!(
        steps.contains(&"apps.events.updated".to_owned()),
        "{steps:?}"
    );
    let again = req(&cli, "apps.update", json!({ "id": "notes" }))
        .await
        .unwrap();
    assert!(
        again["warnings"][0].as_str().unwrap().contains("newest"),
        "{again}"
    );

    let msg = expect_code(
        req(
            &cli,
            "apps.install",
            json!({ "id": "notes", "version": "1.0.0" }),
        )
        .await,
        ErrorCode::Conflict,
    );
    assert!(
        msg.contains("older") && msg.contains("allow_downgrade"),
        "{msg}"
    );
    let back = req(
        &cli,
        "apps.install",
        json!({ "id": "notes", "version": "1.0.0", "allow_downgrade": true }),
    )
    .await
    .unwrap();
    assert_eq!(back["version"], "1.0.0");
    assert_eq!(back["granted"], json!(["vfs_read"]), "{back}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_per_user_and_files_stay_while_anyone_keeps_the_app() {
    let d = TestDaemon::start().await;
    d.add_user("bob", "correct horse battery").await;
    let owner = d.owner().await;
    let bob = d.sign_in("bob", "correct horse battery").await;
    let (mine, his) = (owner.app("cli"), bob.app("cli"));
    req(
        &mine,
        "apps.install",
        json!({ "id": "wordcount", "consent": ["vfs_read"] }),
    )
    .await
    .unwrap();
    assert!(
        installed_ids(&his).await.is_empty(),
        "not his until he consents"
    );
    let msg = expect_code(
        req(&bob.app("wordcount"), "vfs.list", json!({ "path": "/" })).await,
        ErrorCode::Forbidden,
    );
    assert!(
        msg.contains("no app \"wordcount\" is installed for you"),
        "{msg}"
    );
    expect_code(
        req(&his, "vm.run", json!({ "installed": "wordcount" })).await,
        ErrorCode::NotFound,
    );
    req(
        &his,
        "apps.install",
        json!({ "id": "wordcount", "consent": ["vfs_read"] }),
    )
    .await
    .unwrap();
    let (mine_gone, his_gone) = (
        req(&mine, "apps.uninstall", json!({ "id": "wordcount" }))
            .await
            .unwrap(),
        installed_ids(&his).await,
    );
    assert_eq!(mine_gone["files_removed"], false, "bob keeps it");
    assert_eq!(his_gone, ["wordcount"]);
    assert_eq!(shelf(&d).len(), 1);
    let (_, err, code) = run_installed(&his, "wordcount", &["/"]).await;
    assert!(code == 0 || code == 1, "{err}");
    let last = req(&his, "apps.uninstall", json!({ "id": "wordcount" }))
        .await
        .unwrap();
    assert_eq!(last["files_removed"], true);
    assert!(shelf(&d).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_program_on_the_bus_gets_only_its_manifest_and_denials_are_audited() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let install = |id: &str, caps: &[&str], module: Vec<u8>| {
        bundles::bundle(&bundles::manifest(id, "1.0.0", caps), &module)
    };
    // Allowed: its capability's topic, answered as the app.
    let lister = install(
        "lister",
        &["vfs_read"],
        bundles::request_module("vfs.list", r#"{"path":"/"}"#),
    );
    install_bytes(&cli, &lister, &["vfs_read"]).await.unwrap();
    req(
        &cli,
        "vfs.write",
        json!({ "path": "/seen.txt", "data": "x" }),
    )
    .await
    .unwrap();
    let (out, err, code) = run_installed(&cli, "lister", &[]).await;
    assert_eq!(code, 0, "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(answer["entries"][0]["name"], "seen.txt", "{answer}");

    // Outside its manifest: denied, told why, and audited under its own id.
    let sneaky = install(
        "sneaky",
        &["vfs_read"],
        bundles::request_module("vfs.write", r#"{"path":"/owned.txt","data":"pwned"}"#),
    );
    install_bytes(&cli, &sneaky, &["vfs_read"]).await.unwrap();
    let (out, _, _) = run_installed(&cli, "sneaky", &[]).await;
    let error: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(error["code"], "forbidden", "{error}");
    assert!(
        error["msg"].as_str().unwrap().contains("vfs_write"),
        "{error}"
    );
    expect_code(
        req(&cli, "vfs.stat", json!({ "path": "/owned.txt" })).await,
        ErrorCode::NotFound,
    );
    let audit = req(&cli, "sys.audit.list", json!({})).await.unwrap();
    let hit = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["app"] == "sneaky" && e["topic"] == "vfs.write");
    assert!(hit, "{audit}");

    // A bad topic and bad JSON are errors for the program, not for the daemon.
    let odd = install("odd", &[], bundles::request_module("vfs..read", "{"));
    install_bytes(&cli, &odd, &[]).await.unwrap();
    let (out, _, _) = run_installed(&cli, "odd", &[]).await;
    assert!(out.contains("bad_topic"), "{out}");

    // Publish and subscribe in its own namespace.
    let echo = install(
        "echo",
        &[],
        bundles::echo_module("app.echo.ping", r#"{"n":1}"#),
    );
    install_bytes(&cli, &echo, &[]).await.unwrap();
    let (out, err, code) = run_installed(&cli, "echo", &[]).await;
    assert_eq!(code, 0, "{err}");
    let message: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        message,
        json!({ "sub": 1, "topic": "app.echo.ping", "data": { "n": 1 } })
    );
    let spy = install("spy", &[], bundles::echo_module("vfs.events.>", "1"));
    install_bytes(&cli, &spy, &[]).await.unwrap();
    let (out, _, _) = run_installed(&cli, "spy", &[]).await;
    assert!(out.contains("forbidden"), "{out}");

    // A program run from a file (not installed) has no bus.
    let probe = bundles::request_module("sys.ping", "{}");
    req(
        &cli,
        "vfs.write",
        json!({ "path": "/probe.wasm", "data": BASE64.encode(&probe), "encoding": "base64" }),
    )
    .await
    .unwrap();
    let mut events = cli.subscribe("vm.job.>").await.unwrap();
    req(&cli, "vm.run", json!({ "path": "/probe.wasm" }))
        .await
        .unwrap();
    let mut out = String::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(10), events.next_msg()).await
    {
        let data: Value = Subscription::decode(&msg).unwrap();
        if msg.topic.ends_with(".stdout") {
            out.push_str(data["data"].as_str().unwrap());
        }
        if msg.topic.ends_with(".exit") {
            break;
        }
    }
    assert!(out.contains("only an installed app"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_an_interrupted_install_are_swept_at_start() {
    let mut d = TestDaemon::start().await;
    let root = d.config().data_dir.join("apps");
    std::fs::create_dir_all(root.join(".staging/half-done")).unwrap();
    std::fs::write(root.join(".staging/half-done/app.wasm"), b"partial").unwrap();
    std::fs::create_dir_all(root.join("ghost/0123")).unwrap();
    d.restart().await;
    assert!(!root.join(".staging").exists());
    assert!(!root.join("ghost").exists());
    let _ = Path::new("");
}

/// A tiny HTTP server on 127.0.0.1 answering GET with the files of `dir` (404 otherwise).
async fn serve_folder(dir: std::path::PathBuf) -> String {
    serve_folder_after(dir, Duration::ZERO).await
}

/// [`serve_folder`], sending a bundle (a `.tar.gz`) only after `pause`.
async fn serve_folder_after(dir: std::path::PathBuf, pause: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let dir = dir.clone();
            tokio::spawn(async move {
                let mut head = vec![0u8; 4096];
                let n = socket.read(&mut head).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&head[..n]).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let name = path.trim_start_matches("/cat/");
                if name.ends_with(".tar.gz") {
                    tokio::time::sleep(pause).await;
                }
                let reply = match std::fs::read(dir.join(name)) {
                    Ok(body) if !name.contains('/') => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        r.extend(body);
                        r
                    }
                    _ => {
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = socket.write_all(&reply).await;
            });
        }
    });
    format!("http://{addr}/cat/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_catalog_installs_and_a_tampered_download_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (m1, m2) = (
        bundles::manifest("remote", "1.0.0", &["vfs_read"]),
        bundles::manifest("swapped", "1.0.0", &[]),
    );
    let (b1, b2) = (
        bundles::bundle(&m1, &bundles::noop_module()),
        bundles::bundle(&m2, &bundles::noop_module()),
    );
    bundles::write_catalog(dir.path(), &[(&m1, &b1, None), (&m2, &b2, None)]);
    // The server now sends another bundle of the same size under the swapped name.
    let mut evil = b2.clone();
    let last = evil.len() - 9;
    evil[last] ^= 0xff;
    std::fs::write(dir.path().join("swapped-1.0.0.tar.gz"), &evil).unwrap();
    let url = serve_folder(dir.path().to_owned()).await;
    let d = TestDaemon::start_with(move |c| c.apps.catalogs = vec![url]).await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let listed = req(&cli, "apps.catalog", json!({})).await.unwrap();
    assert_eq!(listed["apps"].as_array().unwrap().len(), 2, "{listed}");
    let done = req(
        &cli,
        "apps.install",
        json!({ "id": "remote", "consent": ["vfs_read"] }),
    )
    .await
    .unwrap();
    assert_eq!(done["version"], "1.0.0");
    let msg = expect_code(
        req(&cli, "apps.install", json!({ "id": "swapped" })).await,
        ErrorCode::BadFrame,
    );
    assert!(msg.contains("SHA-256"), "{msg}");
    assert_eq!(installed_ids(&cli).await, ["remote"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_passing_bad_pointers_gets_errors_and_the_daemon_carries_on() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let module = wat::parse_str(
        r#"(module
  (import "aether" "request" (func $req (param i32 i32 i32 i32 i32) (result i32)))
  (import "aether" "subscribe" (func $sub (param i32 i32) (result i32)))
  (import "aether" "next" (func $next (param i32) (result i32)))
  (import "aether" "result" (func $res (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $print (param $n i32)
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then (local.set $n (i32.sub (i32.const 0) (local.get $n)))))
    (local.set $n (call $res (i32.const 4096) (local.get $n)))
    (i32.store (i32.const 0) (i32.const 4096))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store8 (i32.const 16) (i32.const 10))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (call $print (call $req (i32.const 0x7ffffff0) (i32.const 100) (i32.const 0) (i32.const 0) (i32.const 0)))
    (call $print (call $req (i32.const 0) (i32.const -1) (i32.const 0) (i32.const 0) (i32.const 0)))
    (call $print (call $next (i32.const 10)))
    (call $print (call $sub (i32.const 65530) (i32.const 100)))
    (drop (call $res (i32.const -16) (i32.const 1000000)))
    (drop (call $res (i32.const 100) (i32.const -5)))))"#,
    )
    .unwrap();
    let bundle = bundles::bundle(&bundles::manifest("wild", "1.0.0", &[]), &module);
    install_bytes(&cli, &bundle, &[]).await.unwrap();
    let (out, err, code) = run_installed(&cli, "wild", &[]).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("outside the program's memory"), "{out}");
    assert!(lines[1].contains("too_large"), "{out}");
    assert!(lines[2].contains("subscribe to something first"), "{out}");
    assert!(lines[3].contains("outside the program's memory"), "{out}");
    req(&cli, "sys.ping", json!({})).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_installs_at_most_a_hundred_apps() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let module = bundles::noop_module();
    for i in 0..100 {
        let bundle = bundles::bundle(&bundles::manifest(&format!("a{i}"), "1.0.0", &[]), &module);
        install_bytes(&cli, &bundle, &[]).await.unwrap();
    }
    let one_more = bundles::bundle(&bundles::manifest("a100", "1.0.0", &[]), &module);
    let msg = expect_code(
        install_bytes(&cli, &one_more, &[]).await,
        ErrorCode::QuotaExceeded,
    );
    assert!(msg.contains("uninstall one first"), "{msg}");
    // Updating one already installed still works.
    let update = bundles::bundle(&bundles::manifest("a7", "1.0.1", &[]), &module);
    install_bytes(&cli, &update, &[]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_install_never_changes_the_app_i_installed() {
    let d = TestDaemon::start().await;
    d.add_user("eve", "correct horse battery").await;
    let bob = d.owner().await;
    let eve = d.sign_in("eve", "correct horse battery").await;
    let (bob_cli, eve_cli) = (bob.app("cli"), eve.app("cli"));
    let manifest = bundles::manifest("notes", "1.0.0", &[]);
    let mine = bundles::bundle(&manifest, &bundles::request_module("sys.ping", "{}"));
    let theirs = bundles::bundle(&manifest, &bundles::request_module("sys.whoami", "{}"));
    install_bytes(&bob_cli, &mine, &[]).await.unwrap();
    // Same id, same version, other code: it is Eve's alone.
    install_bytes(&eve_cli, &theirs, &[]).await.unwrap();
    let (out, _, _) = run_installed(&bob_cli, "notes", &[]).await;
    assert_eq!(out, r#"{"pong":true}"#, "Bob still runs his own bundle");
    let (out, _, _) = run_installed(&eve_cli, "notes", &[]).await;
    assert!(out.contains("eve"), "{out}");
    assert_eq!(shelf(&d).len(), 2);
    // Eve removing hers leaves Bob's, files and all.
    req(&eve_cli, "apps.uninstall", json!({ "id": "notes" }))
        .await
        .unwrap();
    assert_eq!(shelf(&d).len(), 1);
    let (out, _, _) = run_installed(&bob_cli, "notes", &[]).await;
    assert_eq!(out, r#"{"pong":true}"#);
    // And a version only Eve has is no downgrade for Bob, nor news to him.
    let newer = bundles::bundle(
        &bundles::manifest("notes", "2.0.0", &[]),
        &bundles::noop_module(),
    );
    install_bytes(&eve_cli, &newer, &[]).await.unwrap();
    let info = req(
        &bob_cli,
        "apps.inspect",
        json!({ "data": BASE64.encode(&mine) }),
    )
    .await
    .unwrap();
    assert_eq!(info["installed"], "1.0.0", "{info}");
    assert!(
        info["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| !w.as_str().unwrap().contains("older"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_cannot_touch_credentials_nor_start_another_apps_program() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let thief = bundles::bundle(
        &bundles::manifest("thief", "1.0.0", &[]),
        &bundles::request_module(
            "sys.passwd",
            r#"{"password":"owned-by-eve-123","keep_tokens":true}"#,
        ),
    );
    install_bytes(&cli, &thief, &[]).await.unwrap();
    let (out, _, _) = run_installed(&cli, "thief", &[]).await;
    assert!(
        out.contains("forbidden") && out.contains("sys.passwd"),
        "{out}"
    );
    let minter = bundles::bundle(
        &bundles::manifest("minter", "1.0.0", &[]),
        &bundles::request_module("sys.token.create", "{}"),
    );
    install_bytes(&cli, &minter, &[]).await.unwrap();
    let (out, _, _) = run_installed(&cli, "minter", &[]).await;
    assert!(out.contains("forbidden"), "{out}");

    let launcher = bundles::bundle(
        &bundles::manifest("launcher", "1.0.0", &["vm_run"]),
        &bundles::request_module("vm.run", r#"{"installed":"thief"}"#),
    );
    install_bytes(&cli, &launcher, &["vm_run"]).await.unwrap();
    let (out, _, _) = run_installed(&cli, "launcher", &[]).await;
    assert!(out.contains("may start only its own program"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundle_installed_is_the_one_inspected_and_guests_install_nothing() {
    let d = TestDaemon::start_with(|c| c.guest = true).await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let info = req(&cli, "apps.inspect", json!({ "id": "wordcount" }))
        .await
        .unwrap();
    let msg = expect_code(
        req(
            &cli,
            "apps.install",
            json!({ "id": "wordcount", "consent": ["vfs_read"], "sha256": "00".repeat(32) }),
        )
        .await,
        ErrorCode::Conflict,
    );
    assert!(msg.contains("not the one inspected"), "{msg}");
    req(
        &cli,
        "apps.install",
        json!({ "id": "wordcount", "consent": ["vfs_read"], "sha256": info["sha256"] }),
    )
    .await
    .unwrap();

    let guest = d.connect_tcp(Auth::Guest).await.unwrap();
    let msg = expect_code(
        req(
            &guest.app("cli"),
            "apps.install",
            json!({ "id": "todo", "consent": ["vfs_read", "vfs_write"] }),
        )
        .await,
        ErrorCode::Forbidden,
    );
    assert!(msg.contains("guest"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstalling_stops_the_apps_running_programs() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let spin = wat::parse_file(format!(
        "{}/../guests/wat/spin.wat",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut manifest = bundles::manifest("spinner", "1.0.0", &[]);
    manifest["limits"] = json!({ "timeout_ms": 60000 });
    install_bytes(&cli, &bundles::bundle(&manifest, &spin), &[])
        .await
        .unwrap();
    let mut events = cli.subscribe("vm.job.>").await.unwrap();
    let started = req(&cli, "vm.run", json!({ "installed": "spinner" }))
        .await
        .unwrap();
    let job = started["job"].as_str().unwrap().to_owned();
    req(&cli, "apps.uninstall", json!({ "id": "spinner" }))
        .await
        .unwrap();
    let exit = loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), events.next_msg())
            .await
            .expect("the program stops")
            .unwrap();
        if msg.topic == format!("vm.job.{job}.exit") {
            break Subscription::decode::<Value>(&msg).unwrap();
        }
    };
    assert_eq!(exit["ending"], "killed", "{exit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_apps_share_a_space_limit() {
    let d = TestDaemon::start_with(|c| c.apps.max_space_per_user_mb = 1).await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let padding = vec![0u8; 600 << 10];
    let heavy = |id: &str, version: &str| {
        let manifest = serde_json::to_vec(&bundles::manifest(id, version, &[])).unwrap();
        bundles::tar_gz(&[
            Entry::File("manifest.json", &manifest),
            Entry::File("app.wasm", &bundles::noop_module()),
            Entry::File("data.bin", &padding),
        ])
    };
    install_bytes(&cli, &heavy("one", "1.0.0"), &[])
        .await
        .unwrap();
    let msg = expect_code(
        install_bytes(&cli, &heavy("two", "1.0.0"), &[]).await,
        ErrorCode::QuotaExceeded,
    );
    assert!(msg.contains("1 MiB each user may have"), "{msg}");
    // Replacing the one already there counts it once.
    install_bytes(&cli, &heavy("one", "1.0.1"), &[])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_installs_are_bounded_and_others_are_not_held_up() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bundles::manifest("slow", "1.0.0", &[]);
    let bytes = bundles::bundle(&manifest, &bundles::noop_module());
    bundles::write_catalog(dir.path(), &[(&manifest, &bytes, None)]);
    let url = serve_folder_after(dir.path().to_owned(), Duration::from_millis(1500)).await;
    let d = TestDaemon::start_with(move |c| c.apps.catalogs = vec![url]).await;
    d.add_user("ana", "ana password 1").await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    // Two installs under way: a third is refused at once, asking to wait.
    let first = {
        let cli = cli.clone();
        tokio::spawn(async move { req(&cli, "apps.inspect", json!({ "id": "slow" })).await })
    };
    let second = {
        let cli = cli.clone();
        tokio::spawn(async move { req(&cli, "apps.inspect", json!({ "id": "slow" })).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let refused = req(&cli, "apps.install", json!({ "id": "slow" })).await;
    assert!(started.elapsed() < Duration::from_millis(500));
    match refused {
        Err(ClientError::Daemon(e)) => {
            assert_eq!(e.code, ErrorCode::RateLimited, "{e}");
            assert!(e.msg.contains("installs under way"), "{}", e.msg);
            assert!(e.retry_after_ms.is_some());
        }
        other => panic!("{other:?}"),
    }
    // Another user is not slowed meanwhile.
    let ana = d.sign_in("ana", "ana password 1").await;
    let pinged = std::time::Instant::now();
    ana.app("cli")
        .request(&aether_proto::api::sys::Ping::default())
        .await
        .unwrap();
    assert!(pinged.elapsed() < Duration::from_millis(500));
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    // Once they ended, installing works.
    req(&cli, "apps.install", json!({ "id": "slow" }))
        .await
        .unwrap();
}

/// The next exit of `job` on `events`.
async fn exit_of(events: &mut Subscription, job: &str) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), events.next_msg())
            .await
            .expect("the job ends")
            .unwrap();
        if msg.topic == format!("vm.job.{job}.exit") {
            return Subscription::decode::<Value>(&msg).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_and_update_end_every_program_and_subscription_of_the_old_grant() {
    let d = TestDaemon::start_with(|c| c.compute.jobs_per_user = 1).await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let mut events = cli.subscribe("vm.job.>").await.unwrap();
    let spin = wat::parse_file(format!(
        "{}/../guests/wat/spin.wat",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    cli.request(&aether_proto::api::vfs::Write {
        path: "/spin.wasm".into(),
        data: BASE64.encode(&spin),
        encoding: aether_proto::api::vfs::Encoding::Base64,
        ..Default::default()
    })
    .await
    .unwrap();
    // The user's one job slot is taken: the app's launch waits in the queue.
    let busy = req(
        &cli,
        "vm.run",
        json!({ "path": "/spin.wasm", "timeout_ms": 60000 }),
    )
    .await
    .unwrap();
    let writer = bundles::manifest("writer", "1.0.0", &["vfs_write"]);
    install_bytes(
        &cli,
        &bundles::bundle(&writer, &bundles::writer_module("pwned.txt", "owned")),
        &["vfs_write"],
    )
    .await
    .unwrap();
    let launched = req(&cli, "vm.run", json!({ "installed": "writer" }))
        .await
        .unwrap();
    let job = launched["job"].as_str().unwrap().to_owned();
    req(&cli, "apps.uninstall", json!({ "id": "writer" }))
        .await
        .unwrap();
    req(&cli, "vm.kill", json!({ "job": busy["job"] }))
        .await
        .unwrap();
    let exit = exit_of(&mut events, &job).await;
    assert_eq!(exit["ending"], "killed", "{exit}");
    expect_code(
        req(&cli, "vfs.stat", json!({ "path": "/pwned.txt" })).await,
        ErrorCode::NotFound,
    );

    // An update that takes a capability away ends the old version's running program.
    let mut v1 = bundles::manifest("spinner", "1.0.0", &["vfs_read", "vfs_write"]);
    v1["limits"] = json!({ "timeout_ms": 60000 });
    install_bytes(
        &cli,
        &bundles::bundle(&v1, &spin),
        &["vfs_read", "vfs_write"],
    )
    .await
    .unwrap();
    let running = req(&cli, "vm.run", json!({ "installed": "spinner" }))
        .await
        .unwrap();
    let mut v2 = bundles::manifest("spinner", "1.0.1", &["vfs_read"]);
    v2["limits"] = json!({ "timeout_ms": 60000 });
    install_bytes(&cli, &bundles::bundle(&v2, &spin), &["vfs_read"])
        .await
        .unwrap();
    let exit = exit_of(&mut events, running["job"].as_str().unwrap()).await;
    assert_eq!(exit["ending"], "killed", "{exit}");

    // A subscription made as an app ends with its uninstall.
    let watcher = bundles::manifest("watcher", "1.0.0", &["vfs_read"]);
    install_bytes(
        &cli,
        &bundles::bundle(&watcher, &bundles::noop_module()),
        &["vfs_read"],
    )
    .await
    .unwrap();
    let mut watching = owner
        .app("watcher")
        .subscribe("vfs.events.>")
        .await
        .unwrap();
    req(&cli, "apps.uninstall", json!({ "id": "watcher" }))
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if watching.next_msg().await.is_none() {
                return;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the subscription outlived the uninstall");
    // The user's own subscriptions are untouched.
    cli.request(&aether_proto::api::sys::Ping::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiling_is_done_once_within_the_jobs_time_or_at_install() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let mut events = cli.subscribe("vm.job.>").await.unwrap();
    let heavy = bundles::heavy_module(1500, 7);
    cli.request(&aether_proto::api::vfs::Write {
        path: "/heavy.wasm".into(),
        data: BASE64.encode(&heavy),
        encoding: aether_proto::api::vfs::Encoding::Base64,
        ..Default::default()
    })
    .await
    .unwrap();
    // Compiling is part of the job's time: a job too short for it ends, saying why.
    let short = req(
        &cli,
        "vm.run",
        json!({ "path": "/heavy.wasm", "timeout_ms": 5 }),
    )
    .await
    .unwrap();
    assert_eq!(short["cached"], false);
    let exit = exit_of(&mut events, short["job"].as_str().unwrap()).await;
    assert_eq!(exit["ending"], "timeout", "{exit}");
    assert!(
        exit["error"].as_str().unwrap().contains("compiling"),
        "{exit}"
    );
    // The compile goes on and is kept: later runs, at once and together, start at once.
    let compiled = aether_tests::wait_for(
        "the compile to finish",
        Duration::from_secs(60),
        async || {
            let run = req(&cli, "vm.run", json!({ "path": "/heavy.wasm" }))
                .await
                .ok()?;
            Some(run).filter(|r| r["cached"] == true)
        },
    )
    .await;
    let exit = exit_of(&mut events, compiled["job"].as_str().unwrap()).await;
    assert_eq!(exit["code"], 0, "{exit}");
    // An installed app's entry is compiled at install: its first run is from the cache.
    let heavy2 = bundles::heavy_module(300, 8);
    let manifest = bundles::manifest("heavy", "1.0.0", &[]);
    install_bytes(&cli, &bundles::bundle(&manifest, &heavy2), &[])
        .await
        .unwrap();
    let first = req(&cli, "vm.run", json!({ "installed": "heavy" }))
        .await
        .unwrap();
    assert_eq!(first["cached"], true, "{first}");
    let exit = exit_of(&mut events, first["job"].as_str().unwrap()).await;
    assert_eq!(exit["code"], 0, "{exit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_that_would_fail_later_are_refused_and_git_archives_install() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    // An import of the wrong type: valid, names only what the sandbox has, cannot link.
    let manifest = bundles::manifest("mislinked", "1.0.0", &[]);
    let msg = expect_code(
        install_bytes(
            &cli,
            &bundles::bundle(&manifest, &bundles::mislinked_module()),
            &[],
        )
        .await,
        ErrorCode::BadFrame,
    );
    assert!(
        msg.contains("cannot run here") && msg.contains("fd_write"),
        "{msg}"
    );
    // A file and a folder of the same name: refused by the checks, before anything is written.
    let text = serde_json::to_vec(&bundles::manifest("clash", "1.0.0", &[])).unwrap();
    let clash = bundles::tar_gz(&[
        Entry::File("manifest.json", &text),
        Entry::File("app.wasm", &bundles::noop_module()),
        Entry::File("data", b"a file"),
        Entry::File("data/inside.txt", b"in a folder"),
    ]);
    let msg = expect_code(install_bytes(&cli, &clash, &[]).await, ErrorCode::BadFrame);
    assert!(msg.contains("a folder of the same name"), "{msg}");
    assert!(shelf(&d).is_empty());
    // `git archive` writes a global PAX header first: that is no reason to refuse.
    let manifest = serde_json::to_vec(&bundles::manifest("archived", "1.0.0", &[])).unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let comment = b"52 comment=0123456789abcdef0123456789abcdef01234567\n";
    let mut pax = tar::Header::new_ustar();
    pax.set_entry_type(tar::EntryType::XGlobalHeader);
    pax.set_path("pax_global_header").unwrap();
    pax.set_size(comment.len() as u64);
    pax.set_cksum();
    builder.append(&pax, &comment[..]).unwrap();
    for (name, data) in [
        ("manifest.json", manifest.as_slice()),
        ("app.wasm", &bundles::noop_module()),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_path(name).unwrap();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    let archived = bundles::gzip(&builder.into_inner().unwrap());
    install_bytes(&cli, &archived, &[]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_limited_to_paths_touches_nothing_else_by_request_or_by_program() {
    use aether_proto::api::vfs;
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    for (path, data) in [("/todo.md", "- [ ] milk\n"), ("/secret.txt", "hunter2")] {
        cli.request(&vfs::Write {
            path: path.into(),
            data: data.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    // The sample To-do asks for /todo.md alone, and says so before you consent.
    let info = req(&cli, "apps.inspect", json!({ "id": "todo" }))
        .await
        .unwrap();
    for asked in info["capabilities"].as_array().unwrap() {
        assert_eq!(asked["paths"], json!(["/todo.md"]), "{info}");
    }
    req(
        &cli,
        "apps.install",
        json!({ "id": "todo", "consent": ["vfs_read", "vfs_write"] }),
    )
    .await
    .unwrap();
    let (out, err, code) = run_installed(&cli, "todo", &["add", "eggs"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let list = cli
        .request(&vfs::Read {
            path: "/todo.md".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(list.data.contains("eggs"), "{}", list.data);

    // An app limited to /todo.md asking the bus for another file: refused, saying why.
    let scoped = |id: &str, caps: Value| {
        let mut m = bundles::manifest(id, "1.0.0", &[]);
        m["permissions"] = caps;
        m
    };
    let read_only = json!({ "vfs_read": { "reason": "read the list", "paths": ["/todo.md"] } });
    let peek = scoped("peek", read_only.clone());
    let module = bundles::request_module("vfs.read", r#"{"path":"/secret.txt"}"#);
    install_bytes(&cli, &bundles::bundle(&peek, &module), &["vfs_read"])
        .await
        .unwrap();
    let (out, _, _) = run_installed(&cli, "peek", &[]).await;
    assert!(
        out.contains("forbidden") && out.contains("may read only /todo.md"),
        "{out}"
    );
    assert!(!out.contains("hunter2"));
    // The same app acting through a client: the same answer, and no file events, and a
    // search that finds only what it may read.
    let as_peek = owner.app("peek");
    let msg = expect_code(
        as_peek
            .request(&vfs::Read {
                path: "/secret.txt".into(),
                ..Default::default()
            })
            .await,
        ErrorCode::Forbidden,
    );
    assert!(msg.contains("outside"), "{msg}");
    assert!(
        as_peek
            .request(&vfs::Read {
                path: "/todo.md".into(),
                ..Default::default()
            })
            .await
            .is_ok()
    );
    let refused = as_peek.subscribe("vfs.events.>").await;
    assert!(refused.is_err(), "a scoped app gets no file events");
    let found = aether_tests::wait_for("the index", Duration::from_secs(5), async || {
        let found = as_peek
            .request(&vfs::Search {
                query: "milk OR hunter2".into(),
                ..Default::default()
            })
            .await
            .ok()?;
        (!found.hits.is_empty()).then_some(found)
    })
    .await;
    let paths: Vec<&str> = found.hits.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(paths, ["/todo.md"]);

    // Its program, through WASI: the secret and the root's listing are closed to it.
    let wasi = scoped("wasi", read_only.clone());
    install_bytes(
        &cli,
        &bundles::bundle(&wasi, &bundles::reader_module("secret.txt")),
        &["vfs_read"],
    )
    .await
    .unwrap();
    let (out, _, _) = run_installed(&cli, "wasi", &[]).await;
    assert_eq!(out, "denied\nunlisted\n");
    let mine = scoped("mine", read_only);
    install_bytes(
        &cli,
        &bundles::bundle(&mine, &bundles::reader_module("todo.md")),
        &["vfs_read"],
    )
    .await
    .unwrap();
    let (out, _, _) = run_installed(&cli, "mine", &[]).await;
    assert!(out.starts_with("- [ ] milk"), "{out}");
    assert!(out.ends_with("unlisted\n"), "{out}");

    // A link the user's own program made, from a name in the scope to the secret, leads
    // nowhere; and a scoped program makes no links.
    cli.request(&vfs::Write {
        path: "/link.wasm".into(),
        data: BASE64.encode(bundles::linker_module("secret.txt", "notes.md")),
        encoding: vfs::Encoding::Base64,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut events = cli.subscribe("vm.job.>").await.unwrap();
    let linked = req(&cli, "vm.run", json!({ "path": "/link.wasm" }))
        .await
        .unwrap();
    exit_of(&mut events, linked["job"].as_str().unwrap()).await;
    let through = scoped(
        "through",
        json!({ "vfs_read": { "reason": "notes", "paths": ["/notes.md"] } }),
    );
    install_bytes(
        &cli,
        &bundles::bundle(&through, &bundles::reader_module("notes.md")),
        &["vfs_read"],
    )
    .await
    .unwrap();
    let (out, _, _) = run_installed(&cli, "through", &[]).await;
    assert!(out.starts_with("denied"), "{out}");
    let msg = expect_code(
        owner
            .app("through")
            .request(&vfs::Read {
                path: "/notes.md".into(),
                ..Default::default()
            })
            .await,
        ErrorCode::Forbidden,
    );
    assert!(msg.contains("symbolic link"), "{msg}");
    let maker = scoped(
        "maker",
        json!({ "vfs_write": { "reason": "its folder", "paths": ["/maker/**"] } }),
    );
    install_bytes(
        &cli,
        &bundles::bundle(&maker, &bundles::linker_module("../secret.txt", "maker/l")),
        &["vfs_write"],
    )
    .await
    .unwrap();
    let (out, _, _) = run_installed(&cli, "maker", &[]).await;
    assert_eq!(out, "refused\n");
}
