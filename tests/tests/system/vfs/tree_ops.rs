//! Changing the tree: remove, move and copy, and the refusals that protect the root
//! and keep a directory from going into itself.

use aether_proto::ErrorCode;
use aether_tests::TestDaemon;
use serde_json::json;

use super::{
    MIB, assert_absent, b64, list_names, noise, ok, owner_files, read_all, read_text, refused,
    says, stat, write_text,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_deletes_a_file_and_a_directory_only_with_recursive() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    write_text(&files, "/gone.txt", "bye").await;
    let removed = ok(&files, "vfs.remove", json!({ "path": "/gone.txt" })).await;
    assert_eq!(removed["kind"], "file", "{removed}");
    assert_eq!(removed["files"], 1, "{removed}");
    assert_eq!(removed["bytes"], 3, "{removed}");
    assert_absent(&files, "/gone.txt").await;
    let msg = refused(
        &files,
        "vfs.remove",
        json!({ "path": "/gone.txt" }),
        ErrorCode::NotFound,
    )
    .await;
    says(&msg, &["/gone.txt"]);

    ok(
        &files,
        "vfs.write",
        json!({ "path": "/tree/one.txt", "data": "1", "parents": true }),
    )
    .await;
    ok(
        &files,
        "vfs.write",
        json!({ "path": "/tree/sub/two.txt", "data": "22", "parents": true }),
    )
    .await;
    let msg = refused(
        &files,
        "vfs.remove",
        json!({ "path": "/tree" }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/tree", "not empty", "recursive"]);
    assert_eq!(read_text(&files, "/tree/sub/two.txt").await, "22");

    let removed = ok(
        &files,
        "vfs.remove",
        json!({ "path": "/tree", "recursive": true }),
    )
    .await;
    assert_eq!(removed["kind"], "dir", "{removed}");
    assert_eq!(removed["files"], 2, "{removed}");
    assert_eq!(removed["bytes"], 3, "{removed}");
    assert_absent(&files, "/tree").await;

    // An empty directory needs no `recursive`.
    ok(&files, "vfs.mkdir", json!({ "path": "/empty" })).await;
    ok(&files, "vfs.remove", json!({ "path": "/empty" })).await;
    assert_absent(&files, "/empty").await;
    assert_eq!(list_names(&files, "/").await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_renames_files_and_directory_trees() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let written = write_text(&files, "/a.txt", "alpha").await;

    let moved = ok(
        &files,
        "vfs.move",
        json!({ "from": "/a.txt", "to": "/b.txt" }),
    )
    .await;
    assert_eq!(moved, json!({ "from": "/a.txt", "to": "/b.txt" }));
    assert_absent(&files, "/a.txt").await;
    let b = stat(&files, "/b.txt").await;
    assert_eq!(b["version"], written["version"], "same content: {b}");
    assert_eq!(read_text(&files, "/b.txt").await, "alpha");

    // The destination is never silently replaced.
    write_text(&files, "/c.txt", "gamma").await;
    let msg = refused(
        &files,
        "vfs.move",
        json!({ "from": "/b.txt", "to": "/c.txt" }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/c.txt", "already exists", "overwrite"]);
    assert_eq!(read_text(&files, "/c.txt").await, "gamma");
    ok(
        &files,
        "vfs.move",
        json!({ "from": "/b.txt", "to": "/c.txt", "overwrite": true }),
    )
    .await;
    assert_eq!(read_text(&files, "/c.txt").await, "alpha");
    assert_absent(&files, "/b.txt").await;

    // A directory moves with everything in it.
    ok(
        &files,
        "vfs.write",
        json!({ "path": "/src/deep/x.txt", "data": "x", "parents": true }),
    )
    .await;
    ok(&files, "vfs.mkdir", json!({ "path": "/dst" })).await;
    ok(
        &files,
        "vfs.move",
        json!({ "from": "/src", "to": "/dst/moved" }),
    )
    .await;
    assert_absent(&files, "/src").await;
    assert_eq!(read_text(&files, "/dst/moved/deep/x.txt").await, "x");

    // A directory is never a destination to replace, and a missing source or parent is named.
    let msg = refused(
        &files,
        "vfs.move",
        json!({ "from": "/c.txt", "to": "/dst", "overwrite": true }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/dst", "directory"]);
    let msg = refused(
        &files,
        "vfs.move",
        json!({ "from": "/missing", "to": "/other" }),
        ErrorCode::NotFound,
    )
    .await;
    says(&msg, &["/missing"]);
    let msg = refused(
        &files,
        "vfs.move",
        json!({ "from": "/c.txt", "to": "/no/such/dir.txt" }),
        ErrorCode::NotFound,
    )
    .await;
    says(&msg, &["/no/such"]);
    assert_eq!(read_text(&files, "/c.txt").await, "alpha");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_duplicates_a_file_and_a_directory_tree() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let written = write_text(&files, "/orig.txt", "original").await;

    let copied = ok(
        &files,
        "vfs.copy",
        json!({ "from": "/orig.txt", "to": "/dup.txt" }),
    )
    .await;
    assert_eq!(copied, json!({ "from": "/orig.txt", "to": "/dup.txt" }));
    assert_eq!(read_text(&files, "/dup.txt").await, "original");
    assert_eq!(
        stat(&files, "/dup.txt").await["version"],
        written["version"]
    );
    // They are two files: changing the copy leaves the original alone.
    write_text(&files, "/dup.txt", "changed").await;
    assert_eq!(read_text(&files, "/orig.txt").await, "original");

    let blob = noise(70_000, 3);
    ok(
        &files,
        "vfs.write",
        json!({ "path": "/tree/a.txt", "data": "A", "parents": true }),
    )
    .await;
    ok(
        &files,
        "vfs.write",
        json!({ "path": "/tree/sub/deeper/b.bin", "data": b64(&blob), "encoding": "base64", "parents": true }),
    )
    .await;
    ok(&files, "vfs.mkdir", json!({ "path": "/tree/empty" })).await;
    ok(
        &files,
        "vfs.copy",
        json!({ "from": "/tree", "to": "/tree2" }),
    )
    .await;
    assert_eq!(
        list_names(&files, "/tree2").await,
        ["a.txt", "empty", "sub"]
    );
    assert_eq!(read_text(&files, "/tree2/a.txt").await, "A");
    assert_eq!(read_all(&files, "/tree2/sub/deeper/b.bin", MIB).await, blob);
    assert_eq!(
        list_names(&files, "/tree2/empty").await,
        Vec::<String>::new()
    );
    ok(
        &files,
        "vfs.remove",
        json!({ "path": "/tree2", "recursive": true }),
    )
    .await;
    assert_eq!(read_all(&files, "/tree/sub/deeper/b.bin", MIB).await, blob);

    let msg = refused(
        &files,
        "vfs.copy",
        json!({ "from": "/orig.txt", "to": "/dup.txt" }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/dup.txt", "already exists", "overwrite"]);
    assert_eq!(read_text(&files, "/dup.txt").await, "changed");
    ok(
        &files,
        "vfs.copy",
        json!({ "from": "/orig.txt", "to": "/dup.txt", "overwrite": true }),
    )
    .await;
    assert_eq!(read_text(&files, "/dup.txt").await, "original");
    let msg = refused(
        &files,
        "vfs.copy",
        json!({ "from": "/ghost", "to": "/ghost2" }),
        ErrorCode::NotFound,
    )
    .await;
    says(&msg, &["/ghost"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_cannot_be_removed_moved_or_copied() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    write_text(&files, "/keep.txt", "keep").await;
    for recursive in [false, true] {
        let msg = refused(
            &files,
            "vfs.remove",
            json!({ "path": "/", "recursive": recursive }),
            ErrorCode::Forbidden,
        )
        .await;
        says(&msg, &["root cannot be removed"]);
    }
    for topic in ["vfs.move", "vfs.copy"] {
        let msg = refused(
            &files,
            topic,
            json!({ "from": "/", "to": "/elsewhere" }),
            ErrorCode::Forbidden,
        )
        .await;
        says(&msg, &["root"]);
    }
    let msg = refused(
        &files,
        "vfs.move",
        json!({ "from": "/keep.txt", "to": "/", "overwrite": true }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/ already exists"]);
    assert_eq!(list_names(&files, "/").await, ["keep.txt"]);
    assert_eq!(read_text(&files, "/keep.txt").await, "keep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_cannot_be_moved_or_copied_into_itself() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    ok(
        &files,
        "vfs.write",
        json!({ "path": "/a/b/f.txt", "data": "f", "parents": true }),
    )
    .await;
    for (topic, to) in [
        ("vfs.move", "/a/b/c"),
        ("vfs.move", "/a/inner"),
        ("vfs.move", "/a"),
        ("vfs.copy", "/a/b/copy"),
        ("vfs.copy", "/a"),
    ] {
        let msg = refused(
            &files,
            topic,
            json!({ "from": "/a", "to": to }),
            ErrorCode::Conflict,
        )
        .await;
        says(&msg, &["/a", "into itself", to]);
    }
    assert_eq!(list_names(&files, "/").await, ["a"]);
    assert_eq!(list_names(&files, "/a").await, ["b"]);
    assert_eq!(list_names(&files, "/a/b").await, ["f.txt"]);
    // A sibling whose name merely starts the same is not inside.
    ok(&files, "vfs.move", json!({ "from": "/a", "to": "/ab" })).await;
    assert_eq!(read_text(&files, "/ab/b/f.txt").await, "f");
}
