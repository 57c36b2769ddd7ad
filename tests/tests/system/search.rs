//! Full-text search: hits with path, line, snippet and score; syntax errors;
//! per-user isolation; the index rebuilt when it is missing or corrupt.

use std::time::Duration;

use aether_proto::ErrorCode;
use aether_proto::client::{AppHandle, ClientError};
use aether_tests::{TestDaemon, expect_code, wait_for};
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

/// Search until the hits' paths are exactly `want` (the index commits shortly after writes).
async fn search_until(app: &AppHandle, query: &str, want: &[&str]) -> Value {
    wait_for(&format!("{query:?} finds {want:?}"), WAIT, async || {
        let answer = req(app, "vfs.search", json!({ "query": query }))
            .await
            .ok()?;
        let mut paths: Vec<&str> = answer["hits"]
            .as_array()?
            .iter()
            .filter_map(|h| h["path"].as_str())
            .collect();
        paths.sort();
        (paths == want).then(|| answer.clone())
    })
    .await
}

#[tokio::test]
async fn hits_carry_path_line_snippet_and_score() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let files = owner.app("files");
    write(
        &files,
        "/notes/q3.md",
        "# Notes\n\nThe quarterly report is late.\n",
    )
    .await;
    write(&files, "/notes/other.md", "nothing to see\n").await;
    let answer = search_until(&files, "quarterly", &["/notes/q3.md"]).await;
    let hit = &answer["hits"][0];
    assert_eq!(hit["line"], 3, "{hit}");
    assert_eq!(hit["snippet"], "The quarterly report is late.");
    assert!(hit["score"].as_f64().unwrap() > 0.0);
    // Moves and removals follow.
    req(
        &files,
        "vfs.move",
        json!({ "from": "/notes", "to": "/archive" }),
    )
    .await
    .unwrap();
    search_until(&files, "quarterly", &["/archive/q3.md"]).await;
    req(
        &files,
        "vfs.remove",
        json!({ "path": "/archive", "recursive": true }),
    )
    .await
    .unwrap();
    search_until(&files, "quarterly", &[]).await;
}

#[tokio::test]
async fn query_syntax_errors_are_bad_frames() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let files = owner.app("files");
    for query in ["report AND (late", "\"unclosed", "field:"] {
        let m = expect_code(
            req(&files, "vfs.search", json!({ "query": query })).await,
            ErrorCode::BadFrame,
        );
        assert!(m.contains("query syntax"), "{query}: {m}");
    }
    let m = expect_code(
        req(&files, "vfs.search", json!({ "query": "  " })).await,
        ErrorCode::BadFrame,
    );
    assert!(m.contains("empty"), "{m}");
    let long = "a ".repeat(600);
    expect_code(
        req(&files, "vfs.search", json!({ "query": long })).await,
        ErrorCode::BadFrame,
    );
    // The connection and the index are fine afterwards.
    write(&files, "/ok.txt", "still searchable").await;
    search_until(&files, "searchable", &["/ok.txt"]).await;
}

#[tokio::test]
async fn another_users_files_never_show_up() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    write(
        &owner.app("files"),
        "/secret.md",
        "the launch code is zebra",
    )
    .await;
    search_until(&owner.app("files"), "zebra", &["/secret.md"]).await;
    d.add_user("bob", "correct horse").await;
    let bob = d.sign_in("bob", "correct horse").await;
    let answer = req(&bob.app("files"), "vfs.search", json!({ "query": "zebra" }))
        .await
        .unwrap();
    assert_eq!(answer["hits"], json!([]), "{answer}");
}

#[tokio::test]
async fn a_missing_or_corrupt_index_is_rebuilt_from_the_files() {
    let mut d = TestDaemon::start().await;
    let index = d.config().data_dir.join("index");
    {
        let owner = d.owner().await;
        write(&owner.app("files"), "/a.md", "aardvark").await;
        write(&owner.app("files"), "/b.md", "bonobo").await;
        search_until(&owner.app("files"), "aardvark", &["/a.md"]).await;
    }
    d.stop().await;
    // Corrupt the segments, keeping meta.json and the marker: the damage is only found on open.
    for user in std::fs::read_dir(&index).unwrap() {
        for file in std::fs::read_dir(user.unwrap().path()).unwrap() {
            let file = file.unwrap().path();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            if name != "complete" && !name.ends_with(".json") && !name.ends_with(".lock") {
                std::fs::write(&file, b"garbage").unwrap();
            }
        }
    }
    d.restart().await;
    let owner = d.owner().await;
    search_until(&owner.app("files"), "bonobo", &["/b.md"]).await;
    d.stop().await;
    std::fs::remove_dir_all(&index).unwrap();
    d.restart().await;
    let owner = d.owner().await;
    search_until(&owner.app("files"), "aardvark", &["/a.md"]).await;
}
