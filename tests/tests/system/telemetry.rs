//! Telemetry events and rules: rules fire on matching events, act with their
//! app's permissions only, report and retry failures, never loop, persist.

use std::time::Duration;

use aether_proto::ErrorCode;
use aether_proto::client::{AppHandle, ClientError, Subscription};
use aether_tests::{TestDaemon, expect_code, next_msg, wait_until};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn req(app: &AppHandle, topic: &str, data: Value) -> Result<Value, ClientError> {
    app.request_json(topic, &data).await
}

async fn write(app: &AppHandle, path: &str, data: &str) {
    req(
        app,
        "vfs.write",
        json!({ "path": path, "data": data, "parents": true }),
    )
    .await
    .unwrap();
}

async fn exists(app: &AppHandle, path: &str) -> bool {
    req(app, "vfs.stat", json!({ "path": path })).await.is_ok()
}

async fn read(app: &AppHandle, path: &str) -> String {
    let answer = req(app, "vfs.read", json!({ "path": path })).await.unwrap();
    answer["data"].as_str().unwrap().to_owned()
}

async fn add_rule(app: &AppHandle, rule: Value) -> Result<Value, ClientError> {
    req(app, "telemetry.rules.add", rule).await
}

fn backup_rule() -> Value {
    json!({
        "name": "back up markdown",
        "on": "telemetry.vfs.write",
        "glob": "*.md",
        "request": { "topic": "vfs.copy", "data": { "from": "{{path}}", "to": "{{dir}}/{{stem}}.bak", "overwrite": true } }
    })
}

#[tokio::test]
async fn services_emit_telemetry_with_the_path_and_timing() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let mut events = cli.subscribe("telemetry.vfs.>").await.unwrap();
    write(&owner.app("files"), "/t.txt", "x").await;
    let msg = next_msg(&mut events).await;
    assert_eq!(msg.topic, "telemetry.vfs.write");
    assert_eq!(msg.from.app, "files");
    let data: Value = Subscription::decode(&msg).unwrap();
    assert_eq!(data["path"], "/t.txt");
    assert_eq!(data["ok"], true);
    assert!(data["micros"].as_u64().is_some(), "{data}");
}

#[tokio::test]
async fn a_rule_fires_on_matching_events_only() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let rule = add_rule(&cli, backup_rule()).await.unwrap();
    assert_eq!(rule["app"], "cli");
    write(&cli, "/notes/plan.md", "# plan").await;
    write(&cli, "/notes/plan.txt", "plain").await;
    wait_until("the backup appears", WAIT, async || {
        exists(&cli, "/notes/plan.bak").await
    })
    .await;
    assert_eq!(read(&cli, "/notes/plan.bak").await, "# plan");
    // The .txt did not match the glob. Prove it with a later .md that did.
    write(&cli, "/notes/later.md", "later").await;
    wait_until("the later backup appears", WAIT, async || {
        exists(&cli, "/notes/later.bak").await
    })
    .await;
    assert!(
        !exists(&cli, "/notes/plan.txt.bak").await && !exists(&cli, "/notes/plan.bak.bak").await
    );
    let list = req(&cli, "telemetry.rules.list", json!({})).await.unwrap();
    assert_eq!(list["rules"][0]["runs"], 2, "{list}");
}

#[tokio::test]
async fn a_rule_never_fires_on_its_own_output() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    // Every write writes a log file: without loop protection this would never end.
    let rule = json!({
        "on": "telemetry.vfs.write",
        "request": { "topic": "vfs.write", "data": { "path": "{{path}}.log", "data": "seen {{name}}" } }
    });
    add_rule(&cli, rule).await.unwrap();
    write(&cli, "/a", "1").await;
    wait_until("/a.log", WAIT, async || exists(&cli, "/a.log").await).await;
    write(&cli, "/b", "2").await;
    wait_until("/b.log", WAIT, async || exists(&cli, "/b.log").await).await;
    assert_eq!(read(&cli, "/a.log").await, "seen a");
    assert!(
        !exists(&cli, "/a.log.log").await,
        "the rule fired on its own output"
    );
    let listing = req(&cli, "vfs.list", json!({ "path": "/" })).await.unwrap();
    assert_eq!(listing["entries"].as_array().unwrap().len(), 4, "{listing}");
}

#[tokio::test]
async fn a_failing_rule_is_reported_and_retried_with_backoff() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let mut reports = cli.subscribe("telemetry.rules.failed").await.unwrap();
    let rule = json!({
        "on": "telemetry.vfs.write",
        "glob": "/in/*",
        "request": { "topic": "vfs.copy", "data": { "from": "{{path}}", "to": "/missing/{{name}}" } }
    });
    let id = add_rule(&cli, rule).await.unwrap()["id"].clone();
    write(&cli, "/in/x", "x").await;
    let first: Value = Subscription::decode(&next_msg(&mut reports).await).unwrap();
    assert_eq!(
        (first["rule"].clone(), first["attempt"].clone()),
        (id.clone(), json!(0))
    );
    assert_eq!(first["code"], "not_found");
    assert_eq!(first["will_retry"], true);
    assert!(
        first["error"].as_str().unwrap().contains("/missing"),
        "{first}"
    );
    let second: Value = Subscription::decode(&next_msg(&mut reports).await).unwrap();
    assert_eq!(second["attempt"], 1, "retried after a backoff: {second}");
    let list = req(&cli, "telemetry.rules.list", json!({})).await.unwrap();
    assert!(
        list["rules"][0]["failures"].as_i64().unwrap() >= 2,
        "{list}"
    );
    assert!(
        list["rules"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("not_found"),
        "{list}"
    );
}

#[tokio::test]
async fn a_rule_acts_with_its_apps_permissions_never_more() {
    let d = TestDaemon::start().await;
    let manifest = |caps: Value| {
        json!({ "id": "notes", "name": "Notes", "version": "1.0.0", "permissions": caps })
            .to_string()
    };
    let path = d.manifests_dir().join("notes.json");
    std::fs::write(
        &path,
        manifest(json!({ "telemetry_read": "rules", "vfs_read": "read", "vfs_write": "write" })),
    )
    .unwrap();
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let notes = owner.app("notes");
    wait_until("notes is installed", WAIT, async || {
        req(&cli, "sys.perms.show", json!({ "app": "notes" }))
            .await
            .is_ok()
    })
    .await;
    // An action the app may not take is refused when the rule is added.
    let chat =
        json!({ "on": "telemetry.vfs.write", "request": { "topic": "chat.post", "data": {} } });
    let message = expect_code(add_rule(&notes, chat).await, ErrorCode::Forbidden);
    assert!(
        message.contains("could never run") && message.contains("`chat`"),
        "{message}"
    );

    let id = add_rule(&notes, backup_rule()).await.unwrap()["id"].clone();
    // Take vfs_write away: the rule now fails at run time, reported, and not retried.
    std::fs::write(
        &path,
        manifest(json!({ "telemetry_read": "rules", "vfs_read": "read" })),
    )
    .unwrap();
    wait_until("notes loses vfs_write", WAIT, async || {
        let shown = req(&cli, "sys.perms.show", json!({ "app": "notes" })).await;
        shown.is_ok_and(|s| {
            !s["app"]["permissions"]
                .as_object()
                .unwrap()
                .contains_key("vfs_write")
        })
    })
    .await;
    let mut reports = cli.subscribe("telemetry.rules.failed").await.unwrap();
    write(&cli, "/doc.md", "text").await;
    let report: Value = Subscription::decode(&next_msg(&mut reports).await).unwrap();
    assert_eq!(report["rule"], id);
    assert_eq!(report["code"], "forbidden");
    assert_eq!(report["will_retry"], false);
    assert!(!exists(&cli, "/doc.bak").await);
}

#[tokio::test]
async fn bad_rules_are_refused_clearly() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    let action = json!({ "topic": "vfs.stat", "data": {} });
    let m = expect_code(
        add_rule(
            &cli,
            json!({ "on": "vfs.events.written", "request": action }),
        )
        .await,
        ErrorCode::BadTopic,
    );
    assert!(m.contains("telemetry"), "{m}");
    expect_code(
        add_rule(&cli, json!({ "on": "telemetry..x", "request": action })).await,
        ErrorCode::BadTopic,
    );
    let m = expect_code(
        add_rule(
            &cli,
            json!({ "on": "telemetry.>", "glob": "[", "request": action }),
        )
        .await,
        ErrorCode::BadFrame,
    );
    assert!(m.contains("glob"), "{m}");
    let bad_topic = json!({ "topic": "vfs..stat" });
    expect_code(
        add_rule(&cli, json!({ "on": "telemetry.>", "request": bad_topic })).await,
        ErrorCode::BadTopic,
    );
    expect_code(
        add_rule(
            &cli,
            json!({ "on": "telemetry.>", "request": action, "when": "always" }),
        )
        .await,
        ErrorCode::BadFrame,
    );
    expect_code(
        req(&cli, "telemetry.rules.rm", json!({ "id": 12345 })).await,
        ErrorCode::NotFound,
    );
    // Another user's rule is not yours to remove.
    let id = add_rule(&cli, backup_rule()).await.unwrap()["id"].clone();
    d.add_user("bob", "correct horse").await;
    let bob = d.sign_in("bob", "correct horse").await;
    expect_code(
        req(&bob.app("cli"), "telemetry.rules.rm", json!({ "id": id })).await,
        ErrorCode::NotFound,
    );
    let mine = req(&bob.app("cli"), "telemetry.rules.list", json!({}))
        .await
        .unwrap();
    assert_eq!(
        mine["rules"].as_array().unwrap().len(),
        0,
        "bob sees only his own rules: {mine}"
    );
}

#[tokio::test]
async fn rules_survive_a_restart() {
    let mut d = TestDaemon::start().await;
    {
        let owner = d.owner().await;
        add_rule(&owner.app("cli"), backup_rule()).await.unwrap();
    }
    d.restart().await;
    let owner = d.owner().await;
    let cli = owner.app("cli");
    write(&cli, "/r.md", "kept").await;
    wait_until("the backup after restart", WAIT, async || {
        exists(&cli, "/r.bak").await
    })
    .await;
}
