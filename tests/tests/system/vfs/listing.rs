//! Looking at the tree: `vfs.list`, `vfs.stat` and `vfs.mkdir`.

use aether_proto::ErrorCode;
use aether_tests::TestDaemon;
use serde_json::{Value, json};

use super::{
    assert_absent, list_names, names, ok, owner_files, read_text, refused, says, stat, write_text,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_gives_each_entry_kind_size_and_time_sorted_by_name() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    ok(&files, "vfs.mkdir", json!({ "path": "/dir" })).await;
    write_text(&files, "/dir/b.txt", "bbb").await;
    write_text(&files, "/dir/a.txt", "a").await;
    write_text(&files, "/dir/C.txt", "CCCCC").await;
    ok(&files, "vfs.mkdir", json!({ "path": "/dir/sub" })).await;
    write_text(&files, "/dir/sub/hidden.txt", "not listed one level up").await;

    let list = ok(&files, "vfs.list", json!({ "path": "/dir" })).await;
    assert_eq!(list["path"], "/dir", "{list}");
    assert_eq!(
        names(&list),
        ["C.txt", "a.txt", "b.txt", "sub"],
        "sorted by name, bytewise, one level only: {list}"
    );
    let entries = list["entries"].as_array().unwrap();
    let expected = [("file", 5), ("file", 1), ("file", 3)];
    for (entry, (kind, size)) in entries.iter().zip(expected) {
        assert_eq!(entry["kind"], kind, "{entry}");
        assert_eq!(entry["size"], size, "{entry}");
    }
    assert_eq!(entries[3]["kind"], "dir", "{list}");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for entry in entries {
        let modified = entry["modified_ms"]
            .as_i64()
            .unwrap_or_else(|| panic!("every entry has modified_ms: {entry}"));
        assert!(
            modified >= before_ms - 2_000 && modified <= now_ms + 2_000,
            "modified_ms {modified} is not the time of the write ({before_ms}..{now_ms}): {entry}"
        );
    }

    assert_eq!(list_names(&files, "/").await, ["dir"]);
    let empty = ok(&files, "vfs.mkdir", json!({ "path": "/void" })).await;
    assert_eq!(empty["created"], true);
    assert_eq!(list_names(&files, "/void").await, Vec::<String>::new());

    let msg = refused(
        &files,
        "vfs.list",
        json!({ "path": "/missing" }),
        ErrorCode::NotFound,
    )
    .await;
    says(&msg, &["/missing"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_a_file_is_a_conflict() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    write_text(&files, "/plain.txt", "text").await;
    let msg = refused(
        &files,
        "vfs.list",
        json!({ "path": "/plain.txt" }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/plain.txt", "not a directory"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stat_describes_files_with_their_version_and_directories_without() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let written = write_text(&files, "/f.txt", "four").await;
    ok(&files, "vfs.mkdir", json!({ "path": "/d" })).await;

    let file = stat(&files, "/f.txt").await;
    assert_eq!(file["path"], "/f.txt", "{file}");
    assert_eq!(file["kind"], "file", "{file}");
    assert_eq!(file["size"], 4, "{file}");
    assert_eq!(file["version"], written["version"], "{file}");
    assert!(file["modified_ms"].as_i64().unwrap() > 0, "{file}");

    let dir = stat(&files, "/d").await;
    assert_eq!(dir["kind"], "dir", "{dir}");
    assert_eq!(
        dir["version"],
        Value::Null,
        "directories have no version: {dir}"
    );
    let root = stat(&files, "/").await;
    assert_eq!(root["kind"], "dir", "{root}");
    assert_eq!(root["path"], "/", "{root}");

    let msg = refused(
        &files,
        "vfs.stat",
        json!({ "path": "/nothing" }),
        ErrorCode::NotFound,
    )
    .await;
    says(&msg, &["no such file or directory", "/nothing"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mkdir_creates_one_level_or_every_missing_parent() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;

    let made = ok(&files, "vfs.mkdir", json!({ "path": "/docs" })).await;
    assert_eq!(made, json!({ "path": "/docs", "created": true }));
    assert_eq!(stat(&files, "/docs").await["kind"], "dir");

    let msg = refused(
        &files,
        "vfs.mkdir",
        json!({ "path": "/docs" }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/docs", "already exists"]);
    // With parents, an existing directory is fine (like mkdir -p).
    let again = ok(
        &files,
        "vfs.mkdir",
        json!({ "path": "/docs", "parents": true }),
    )
    .await;
    assert_eq!(again["created"], false, "{again}");

    let msg = refused(
        &files,
        "vfs.mkdir",
        json!({ "path": "/x/y/z" }),
        ErrorCode::NotFound,
    )
    .await;
    says(&msg, &["/x/y", "parents"]);
    assert_absent(&files, "/x").await;

    let deep = ok(
        &files,
        "vfs.mkdir",
        json!({ "path": "/x/y/z", "parents": true }),
    )
    .await;
    assert_eq!(deep["created"], true, "{deep}");
    for dir in ["/x", "/x/y", "/x/y/z"] {
        assert_eq!(stat(&files, dir).await["kind"], "dir", "{dir}");
    }

    // Not over a file, and never the root.
    write_text(&files, "/file", "f").await;
    for parents in [false, true] {
        let msg = refused(
            &files,
            "vfs.mkdir",
            json!({ "path": "/file", "parents": parents }),
            ErrorCode::Conflict,
        )
        .await;
        says(&msg, &["/file", "already exists"]);
    }
    assert_eq!(read_text(&files, "/file").await, "f");
    let msg = refused(
        &files,
        "vfs.mkdir",
        json!({ "path": "/" }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/", "already exists"]);
}
