//! Quotas: the byte quota and the file-count quota.

use aether_proto::ErrorCode;
use aether_tests::TestDaemon;
use serde_json::json;

use super::{
    assert_absent, chunk, daemon_code, list_names, ok, owner_files, read_text, refused, says,
    start_upload, write_text,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_over_the_byte_quota_is_refused_and_the_old_file_stays_whole() {
    let d = TestDaemon::start_with(|c| c.vfs.quota_bytes = 1000).await;
    let (_owner, files) = owner_files(&d).await;
    let six = "6".repeat(600);
    let first = write_text(&files, "/a.txt", &six).await;
    write_text(&files, "/b.txt", &"4".repeat(400)).await; // exactly at the quota

    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/c.txt", "data": "1" }),
        ErrorCode::QuotaExceeded,
    )
    .await;
    says(
        &msg,
        &["/c.txt", "1001", "quota is 1000", "1000 are in use"],
    );
    assert_absent(&files, "/c.txt").await;

    // Replacing a file counts only what it adds, so growing /a.txt by one byte is over.
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/a.txt", "data": "7".repeat(601) }),
        ErrorCode::QuotaExceeded,
    )
    .await;
    says(&msg, &["/a.txt", "quota is 1000"]);
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/a.txt", "data": "+", "append": true }),
        ErrorCode::QuotaExceeded,
    )
    .await;
    says(&msg, &["quota is 1000"]);
    let intact = ok(&files, "vfs.read", json!({ "path": "/a.txt" })).await;
    assert_eq!(intact["data"], six.as_str(), "the old file is intact");
    assert_eq!(intact["version"], first["version"]);

    // An upload is refused as soon as its size is over, and a copy too.
    let msg = daemon_code(
        chunk(&files, "/up.bin", None, 0, &[1; 10], true).await,
        ErrorCode::QuotaExceeded,
    );
    says(&msg, &["quota is 1000"]);
    let msg = refused(
        &files,
        "vfs.copy",
        json!({ "from": "/a.txt", "to": "/a2.txt" }),
        ErrorCode::QuotaExceeded,
    )
    .await;
    says(&msg, &["quota is 1000"]);
    assert_absent(&files, "/a2.txt").await;

    // Shrinking is fine, and removing frees room.
    write_text(&files, "/a.txt", "small").await;
    write_text(&files, "/c.txt", &"c".repeat(595)).await;
    ok(&files, "vfs.remove", json!({ "path": "/b.txt" })).await;
    write_text(&files, "/d.txt", &"d".repeat(400)).await;
    refused(
        &files,
        "vfs.write",
        json!({ "path": "/e.txt", "data": "e" }),
        ErrorCode::QuotaExceeded,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_growing_over_the_byte_quota_is_refused_and_the_old_file_stays_whole() {
    let d = TestDaemon::start_with(|c| c.vfs.quota_bytes = 1000).await;
    let (_owner, files) = owner_files(&d).await;
    let old = write_text(&files, "/big.bin", "old").await;
    let id = start_upload(&files, "/big.bin", &[7; 500]).await;
    let msg = daemon_code(
        chunk(&files, "/big.bin", Some(&id), 500, &[8; 501], false).await,
        ErrorCode::QuotaExceeded,
    );
    says(&msg, &["/big.bin", "quota is 1000"]);
    let now = ok(&files, "vfs.read", json!({ "path": "/big.bin" })).await;
    assert_eq!(now["data"], "old");
    assert_eq!(now["version"], old["version"]);
    // Within the quota the same upload completes.
    let done = chunk(&files, "/big.bin", Some(&id), 500, &[8; 500], false)
        .await
        .expect("the upload completes within the quota");
    assert_eq!(done["size"], 1000, "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_files_over_the_file_count_quota_is_refused() {
    let d = TestDaemon::start_with(|c| c.vfs.quota_files = 3).await;
    let (_owner, files) = owner_files(&d).await;
    for name in ["/1", "/2", "/3"] {
        write_text(&files, name, name).await;
    }
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/4", "data": "4" }),
        ErrorCode::QuotaExceeded,
    )
    .await;
    says(&msg, &["/4", "4 files", "quota is 3 files"]);
    assert_absent(&files, "/4").await;

    // Directories are free, replacing a file adds none, copying adds files.
    ok(&files, "vfs.mkdir", json!({ "path": "/dir" })).await;
    write_text(&files, "/1", "one, rewritten").await;
    let msg = refused(
        &files,
        "vfs.copy",
        json!({ "from": "/1", "to": "/dir/1" }),
        ErrorCode::QuotaExceeded,
    )
    .await;
    says(&msg, &["3 files"]);
    assert_absent(&files, "/dir/1").await;

    // Removing one makes room for exactly one.
    ok(&files, "vfs.remove", json!({ "path": "/2" })).await;
    write_text(&files, "/4", "4").await;
    refused(
        &files,
        "vfs.write",
        json!({ "path": "/5", "data": "5" }),
        ErrorCode::QuotaExceeded,
    )
    .await;
    assert_eq!(list_names(&files, "/").await, ["1", "3", "4", "dir"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copying_over_an_existing_file_at_the_file_quota_is_allowed() {
    let d = TestDaemon::start_with(|c| c.vfs.quota_files = 2).await;
    let (_owner, files) = owner_files(&d).await;
    write_text(&files, "/1", "one").await;
    write_text(&files, "/2", "two").await;
    // Replacing a file adds none: a write may, and so may a move or a copy.
    write_text(&files, "/2", "two, again").await;
    ok(
        &files,
        "vfs.copy",
        json!({ "from": "/1", "to": "/2", "overwrite": true }),
    )
    .await;
    assert_eq!(read_text(&files, "/2").await, "one");
    write_text(&files, "/2", "two").await;
    ok(
        &files,
        "vfs.move",
        json!({ "from": "/2", "to": "/1", "overwrite": true }),
    )
    .await;
    assert_eq!(read_text(&files, "/1").await, "two");
    assert_eq!(list_names(&files, "/").await, ["1"]);
}
