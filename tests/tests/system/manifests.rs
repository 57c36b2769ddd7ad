//! Manifests change on disk while the daemon runs.

use std::time::Duration;

use aether_proto::ErrorCode;
use aether_tests::{TestDaemon, expect_code, stats, to_data, wait_for, wait_until};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_manifests_are_skipped_and_reported_and_new_ones_load_without_restart() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let before = stats(&owner).await;
    assert_eq!(
        before["manifest_errors"],
        json!([]),
        "the built-in manifests load cleanly: {before}"
    );
    let apps_before = before["apps"].as_u64().unwrap();
    assert!(apps_before >= 8, "{before}");

    // The app does not exist yet; the refusal is remembered per connection, which must not
    // outlive a reload.
    let notes = owner.app("notes");
    expect_code(
        notes
            .request_json::<_, Value>("presence.list", &json!({}))
            .await,
        ErrorCode::Forbidden,
    );

    let dir = d.manifests_dir();
    std::fs::write(dir.join("broken.json"), "{ this is not json").unwrap();
    std::fs::write(
        dir.join("odd.json"),
        r#"{"id":"odd","name":"Odd","version":"0.1.0","permissions":{"root":"everything"}}"#,
    )
    .unwrap();

    let errors = wait_for(
        "both bad manifests are reported in sys.stats",
        Duration::from_secs(10),
        async || {
            let s = stats(&owner).await;
            let errors: Vec<String> = s["manifest_errors"]
                .as_array()?
                .iter()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect();
            (errors.len() >= 2).then_some(errors)
        },
    )
    .await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("broken.json")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("odd.json") && e.contains("permissions")),
        "the unknown capability is named with its field: {errors:?}"
    );
    let shown: Value = owner
        .app("cli")
        .request_json("sys.perms.show", &json!({}))
        .await
        .unwrap();
    assert_eq!(shown["errors"].as_array().unwrap().len(), 2, "{shown}");

    // The other apps still work.
    let s = stats(&owner).await;
    assert_eq!(s["apps"].as_u64().unwrap(), apps_before, "{s}");
    owner
        .app("cli")
        .request_json::<_, Value>("sys.ping", &json!({}))
        .await
        .unwrap();
    owner
        .app("chat")
        .request_json::<_, Value>("chat.rooms", &json!({}))
        .await
        .unwrap();
    let odd = owner
        .app("odd")
        .request_json::<_, Value>("sys.ping", &json!({}))
        .await;
    expect_code(odd, ErrorCode::Forbidden);

    // A valid manifest dropped in is picked up without a restart.
    std::fs::write(
        dir.join("notes.json"),
        r#"{"id":"notes","name":"Notes","version":"0.1.0","permissions":{"presence":"show who is around"},"entry":null}"#,
    )
    .unwrap();
    let shown = wait_for(
        "sys.perms.show knows the new app",
        Duration::from_secs(10),
        async || {
            owner
                .app("cli")
                .request_json::<_, Value>("sys.perms.show", &json!({"app": "notes"}))
                .await
                .ok()
        },
    )
    .await;
    assert_eq!(shown["app"]["id"], "notes", "{shown}");
    assert!(
        shown["grants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["capability"] == "presence"),
        "{shown}"
    );
    notes
        .request_json::<_, Value>("presence.list", &json!({}))
        .await
        .expect(
            "the new app may use its capability on a connection opened before it was installed",
        );
    expect_code(
        notes.publish_acked("vm.job.x", to_data(&1)).await,
        ErrorCode::Forbidden,
    );

    // Fixing the broken file clears its error.
    std::fs::remove_file(dir.join("broken.json")).unwrap();
    wait_until(
        "the removed manifest's error is gone",
        Duration::from_secs(10),
        async || {
            stats(&owner).await["manifest_errors"]
                .as_array()
                .is_some_and(|e| e.len() == 1)
        },
    )
    .await;
    owner.ping().await.unwrap();
}
