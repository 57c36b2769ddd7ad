//! Malformed requests: an unknown, missing or mistyped field is a `bad_frame` naming it.

use aether_proto::ErrorCode;
use aether_tests::TestDaemon;
use serde_json::json;

use super::{list_names, owner_files, read_text, refused, says, write_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_in_a_request_are_a_bad_frame_naming_the_field() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    write_text(&files, "/f.txt", "f").await;
    for (topic, body, field) in [
        (
            "vfs.read",
            json!({ "path": "/f.txt", "lenght": 1 }),
            "lenght",
        ),
        (
            "vfs.write",
            json!({ "path": "/new.txt", "data": "x", "overwrite": false }),
            "overwrite",
        ),
        (
            "vfs.write",
            json!({ "path": "/new.txt", "data": "x", "ifVersion": "abc" }),
            "ifVersion",
        ),
        (
            "vfs.list",
            json!({ "path": "/", "recursive": true }),
            "recursive",
        ),
        (
            "vfs.stat",
            json!({ "path": "/f.txt", "follow": true }),
            "follow",
        ),
        ("vfs.mkdir", json!({ "path": "/d", "mode": 511 }), "mode"),
        (
            "vfs.remove",
            json!({ "path": "/f.txt", "force": true }),
            "force",
        ),
        (
            "vfs.move",
            json!({ "from": "/f.txt", "to": "/g.txt", "path": "/f.txt" }),
            "path",
        ),
        (
            "vfs.copy",
            json!({ "from": "/f.txt", "to": "/g.txt", "recursive": true }),
            "recursive",
        ),
    ] {
        let msg = refused(&files, topic, body, ErrorCode::BadFrame).await;
        says(&msg, &[topic, "unknown field", &format!("`{field}`")]);
    }
    // Nothing was done by any of them.
    assert_eq!(list_names(&files, "/").await, ["f.txt"]);

    // A missing or mistyped field is as clear.
    let msg = refused(&files, "vfs.read", json!({}), ErrorCode::BadFrame).await;
    says(&msg, &["vfs.read", "missing field `path`"]);
    let msg = refused(
        &files,
        "vfs.read",
        json!({ "path": "/f.txt", "offset": -1 }),
        ErrorCode::BadFrame,
    )
    .await;
    says(&msg, &["vfs.read"]);
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/f.txt", "data": "x", "encoding": "rot13" }),
        ErrorCode::BadFrame,
    )
    .await;
    says(&msg, &["rot13"]);
    assert_eq!(read_text(&files, "/f.txt").await, "f");
}
