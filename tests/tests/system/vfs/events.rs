//! The `vfs.events.*` a subscriber sees: one per change, with its path and the acting app.

use aether_proto::ErrorCode;
use aether_tests::{OWNER, TestDaemon};
use serde_json::json;

use super::{chunk, next_event, ok, owner_files, read_text, refused, start_upload, write_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_every_change_with_its_path_and_the_acting_app() {
    let d = TestDaemon::start().await;
    let watcher = d.owner().await;
    let mut events = watcher
        .app("files")
        .subscribe("vfs.events.>")
        .await
        .expect("files may watch vfs events");
    let actor = d.owner().await;
    let cli = actor.app("cli");
    let files = actor.app("files");

    ok(&cli, "vfs.mkdir", json!({ "path": "/ev" })).await;
    let (kind, app, data) = next_event(&mut events, OWNER).await;
    assert_eq!((kind.as_str(), app.as_str()), ("created", "cli"), "{data}");
    assert_eq!(data["path"], "/ev", "{data}");
    assert_eq!(data["kind"], "dir", "{data}");

    let first = write_text(&cli, "/ev/a.txt", "one").await;
    let (kind, app, data) = next_event(&mut events, OWNER).await;
    assert_eq!((kind.as_str(), app.as_str()), ("created", "cli"), "{data}");
    assert_eq!(data["path"], "/ev/a.txt", "{data}");
    assert_eq!(data["kind"], "file", "{data}");
    assert_eq!(data["size"], 3, "{data}");
    assert_eq!(data["version"], first["version"], "{data}");

    // A refused change says nothing.
    refused(
        &cli,
        "vfs.write",
        json!({ "path": "/ev/a.txt", "data": "x", "if_absent": true }),
        ErrorCode::Conflict,
    )
    .await;
    let second = write_text(&files, "/ev/a.txt", "two!").await;
    let (kind, app, data) = next_event(&mut events, OWNER).await;
    assert_eq!(
        (kind.as_str(), app.as_str()),
        ("written", "files"),
        "{data}"
    );
    assert_eq!(data["path"], "/ev/a.txt", "{data}");
    assert_eq!(data["size"], 4, "{data}");
    assert_eq!(data["version"], second["version"], "{data}");

    ok(
        &cli,
        "vfs.move",
        json!({ "from": "/ev/a.txt", "to": "/ev/b.txt" }),
    )
    .await;
    let (kind, app, data) = next_event(&mut events, OWNER).await;
    assert_eq!((kind.as_str(), app.as_str()), ("moved", "cli"), "{data}");
    assert_eq!(data["from"], "/ev/a.txt", "{data}");
    assert_eq!(data["to"], "/ev/b.txt", "{data}");

    ok(
        &cli,
        "vfs.copy",
        json!({ "from": "/ev/b.txt", "to": "/ev/c.txt" }),
    )
    .await;
    let (kind, app, data) = next_event(&mut events, OWNER).await;
    assert_eq!((kind.as_str(), app.as_str()), ("created", "cli"), "{data}");
    assert_eq!(data["path"], "/ev/c.txt", "{data}");

    // An upload is one change, announced when it commits, not per chunk.
    let id = start_upload(&cli, "/ev/up.bin", b"first ").await;
    chunk(&cli, "/ev/up.bin", Some(&id), 6, b"second", false)
        .await
        .unwrap();
    let (kind, app, data) = next_event(&mut events, OWNER).await;
    assert_eq!((kind.as_str(), app.as_str()), ("created", "cli"), "{data}");
    assert_eq!(data["path"], "/ev/up.bin", "{data}");
    assert_eq!(data["size"], 12, "{data}");

    ok(&files, "vfs.remove", json!({ "path": "/ev/b.txt" })).await;
    let (kind, app, data) = next_event(&mut events, OWNER).await;
    assert_eq!(
        (kind.as_str(), app.as_str()),
        ("removed", "files"),
        "{data}"
    );
    assert_eq!(data["path"], "/ev/b.txt", "{data}");
    assert_eq!(data["kind"], "file", "{data}");

    // Reads change nothing and say nothing: the next event is the next change.
    read_text(&cli, "/ev/c.txt").await;
    ok(&cli, "vfs.list", json!({ "path": "/ev" })).await;
    ok(
        &cli,
        "vfs.remove",
        json!({ "path": "/ev", "recursive": true }),
    )
    .await;
    let (kind, _, data) = next_event(&mut events, OWNER).await;
    assert_eq!(kind, "removed", "{data}");
    assert_eq!(data["path"], "/ev", "{data}");
    assert_eq!(data["kind"], "dir", "{data}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_event_carries_a_path_like_every_other_event() {
    let d = TestDaemon::start().await;
    let watcher = d.owner().await;
    let mut events = watcher
        .app("files")
        .subscribe("vfs.events.>")
        .await
        .unwrap();
    let (_actor, files) = owner_files(&d).await;
    write_text(&files, "/old.txt", "x").await;
    next_event(&mut events, OWNER).await;
    ok(
        &files,
        "vfs.move",
        json!({ "from": "/old.txt", "to": "/new.txt" }),
    )
    .await;
    let (kind, app, data) = next_event(&mut events, OWNER).await;
    assert_eq!((kind.as_str(), app.as_str()), ("moved", "files"), "{data}");
    assert_eq!(
        data["path"], "/new.txt",
        "a watcher filtering events by `path` must see the move (where the file is now): {data}"
    );
}
