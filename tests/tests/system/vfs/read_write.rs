//! Writing and reading files: create, replace, append, parents, binary data, read
//! ranges, normalized names, and a write aimed at a directory.

use aether_proto::ErrorCode;
use aether_tests::TestDaemon;
use serde_json::json;

use super::{
    assert_absent, b64, chunk, daemon_code, list_names, ok, owner_files, read_text, refused, says,
    start_upload, stat, unb64, write_bytes, write_text,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_creates_replaces_and_appends_a_file() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;

    let created = write_text(&files, "/notes.txt", "hello").await;
    assert_eq!(created["created"], true, "{created}");
    assert_eq!(created["size"], 5, "{created}");
    assert_eq!(created["path"], "/notes.txt", "{created}");
    let v1 = created["version"].as_str().unwrap().to_owned();
    assert_eq!(v1.len(), 32, "a version is a 32-digit hash: {v1}");
    assert!(v1.chars().all(|c| c.is_ascii_hexdigit()), "{v1}");
    assert_eq!(read_text(&files, "/notes.txt").await, "hello");

    let replaced = write_text(&files, "/notes.txt", "hello world").await;
    assert_eq!(replaced["created"], false, "{replaced}");
    assert_eq!(replaced["size"], 11, "{replaced}");
    assert_ne!(replaced["version"], v1, "new content, new version");
    assert_eq!(read_text(&files, "/notes.txt").await, "hello world");

    let appended = ok(
        &files,
        "vfs.write",
        json!({ "path": "/notes.txt", "data": "!\n", "append": true }),
    )
    .await;
    assert_eq!(appended["created"], false, "{appended}");
    assert_eq!(appended["size"], 13, "{appended}");
    assert_eq!(read_text(&files, "/notes.txt").await, "hello world!\n");

    // Appending to a file that does not exist creates it.
    let fresh = ok(
        &files,
        "vfs.write",
        json!({ "path": "/log.txt", "data": "one", "append": true }),
    )
    .await;
    assert_eq!(fresh["created"], true, "{fresh}");
    assert_eq!(read_text(&files, "/log.txt").await, "one");

    // An empty file is a file.
    let empty = write_text(&files, "/empty", "").await;
    assert_eq!(empty["size"], 0, "{empty}");
    assert_eq!(stat(&files, "/empty").await["kind"], "file");
    assert_eq!(read_text(&files, "/empty").await, "");

    // Same content, same version: versions are content hashes.
    let again = write_text(&files, "/copy-of-notes.txt", "hello").await;
    assert_eq!(again["version"], v1.as_str(), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_creates_missing_parents_only_when_asked() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;

    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/a/b/c.txt", "data": "deep" }),
        ErrorCode::NotFound,
    )
    .await;
    says(&msg, &["/a/b", "parents"]);
    assert_absent(&files, "/a").await;

    let written = ok(
        &files,
        "vfs.write",
        json!({ "path": "/a/b/c.txt", "data": "deep", "parents": true }),
    )
    .await;
    assert_eq!(written["created"], true, "{written}");
    assert_eq!(stat(&files, "/a").await["kind"], "dir");
    assert_eq!(stat(&files, "/a/b").await["kind"], "dir");
    assert_eq!(read_text(&files, "/a/b/c.txt").await, "deep");

    // A parent that is a file is refused, whatever `parents` says.
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/a/b/c.txt/d.txt", "data": "x", "parents": true }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/a/b/c.txt", "not a directory"]);
    assert_eq!(read_text(&files, "/a/b/c.txt").await, "deep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_data_is_written_as_base64_and_read_back_exactly() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let bytes: Vec<u8> = (0..=255u8).rev().chain([0, 0xC3, 0x28, 0xFF]).collect();

    let written = write_bytes(&files, "/blob.bin", &bytes).await;
    assert_eq!(written["size"], bytes.len(), "{written}");

    // Under `auto`, bytes that are not UTF-8 come back as base64 and say so.
    let auto = ok(&files, "vfs.read", json!({ "path": "/blob.bin" })).await;
    assert_eq!(auto["encoding"], "base64", "{auto}");
    assert_eq!(unb64(auto["data"].as_str().unwrap()), bytes);
    assert_eq!(auto["size"], bytes.len(), "{auto}");
    assert_eq!(auto["eof"], true, "{auto}");
    assert_eq!(auto["version"], written["version"], "{auto}");

    // Asked for text, they are refused, with the way out named.
    let msg = refused(
        &files,
        "vfs.read",
        json!({ "path": "/blob.bin", "encoding": "utf8" }),
        ErrorCode::BadFrame,
    )
    .await;
    says(&msg, &["/blob.bin", "UTF-8", "base64"]);

    // Text under `auto` is text; asked for base64 it is base64.
    write_text(&files, "/text.txt", "héllo ✓").await;
    let auto = ok(&files, "vfs.read", json!({ "path": "/text.txt" })).await;
    assert_eq!(auto["encoding"], "utf8", "{auto}");
    assert_eq!(auto["data"], "héllo ✓", "{auto}");
    assert_eq!(auto["size"], "héllo ✓".len(), "sizes are in bytes: {auto}");
    let base64 = ok(
        &files,
        "vfs.read",
        json!({ "path": "/text.txt", "encoding": "base64" }),
    )
    .await;
    assert_eq!(base64["encoding"], "base64", "{base64}");
    assert_eq!(base64["data"], b64("héllo ✓".as_bytes()), "{base64}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_returns_the_range_asked_for_with_an_eof_flag() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let written = write_text(&files, "/digits.txt", "0123456789").await;

    let read = |offset: u64, length: Option<u64>| {
        let files = files.clone();
        async move {
            let mut body = json!({ "path": "/digits.txt", "offset": offset });
            if let Some(length) = length {
                body["length"] = json!(length);
            }
            ok(&files, "vfs.read", body).await
        }
    };

    let whole = ok(&files, "vfs.read", json!({ "path": "/digits.txt" })).await;
    assert_eq!(
        whole,
        json!({
            "path": "/digits.txt", "offset": 0, "length": 10, "size": 10, "eof": true,
            "version": written["version"], "encoding": "utf8", "data": "0123456789",
        })
    );

    let middle = read(2, Some(3)).await;
    assert_eq!(middle["data"], "234", "{middle}");
    assert_eq!(middle["offset"], 2, "{middle}");
    assert_eq!(middle["length"], 3, "{middle}");
    assert_eq!(middle["size"], 10, "{middle}");
    assert_eq!(middle["eof"], false, "{middle}");

    let up_to_end = read(7, Some(3)).await;
    assert_eq!(up_to_end["data"], "789", "{up_to_end}");
    assert_eq!(
        up_to_end["eof"], true,
        "a range ending at the end is eof: {up_to_end}"
    );

    let past_end = read(7, Some(100)).await;
    assert_eq!(past_end["data"], "789", "{past_end}");
    assert_eq!(past_end["length"], 3, "{past_end}");
    assert_eq!(past_end["eof"], true, "{past_end}");

    let rest = read(4, None).await;
    assert_eq!(rest["data"], "456789", "{rest}");
    assert_eq!(rest["eof"], true, "{rest}");

    for offset in [10, 1000] {
        let beyond = read(offset, Some(5)).await;
        assert_eq!(beyond["data"], "", "{beyond}");
        assert_eq!(beyond["length"], 0, "{beyond}");
        assert_eq!(beyond["eof"], true, "{beyond}");
    }

    let msg = refused(
        &files,
        "vfs.read",
        json!({ "path": "/nope.txt" }),
        ErrorCode::NotFound,
    )
    .await;
    says(&msg, &["/nope.txt"]);
    ok(&files, "vfs.mkdir", json!({ "path": "/dir" })).await;
    let msg = refused(
        &files,
        "vfs.read",
        json!({ "path": "/dir" }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/dir", "directory"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_normalized_so_two_spellings_are_one_file() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    // "café" decomposed (e + combining acute), then composed.
    let written = write_text(&files, "/cafe\u{301}.txt", "coffee").await;
    assert_eq!(written["path"], "/caf\u{e9}.txt", "{written}");
    assert_eq!(read_text(&files, "/caf\u{e9}.txt").await, "coffee");
    let replaced = write_text(&files, "/caf\u{e9}.txt", "more coffee").await;
    assert_eq!(replaced["created"], false, "one file: {replaced}");
    assert_eq!(list_names(&files, "/").await, ["caf\u{e9}.txt"]);
    // A name of exactly 255 bytes is fine.
    let longest = format!("/{}", "n".repeat(255));
    write_text(&files, &longest, "long").await;
    assert_eq!(read_text(&files, &longest).await, "long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_to_a_directory_path_is_a_conflict() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    ok(
        &files,
        "vfs.write",
        json!({ "path": "/docs/inner.txt", "data": "kept", "parents": true }),
    )
    .await;
    for body in [
        json!({ "path": "/docs", "data": "x" }),
        json!({ "path": "/docs", "data": "x", "append": true }),
        json!({ "path": "/", "data": "x" }),
    ] {
        let path = body["path"].as_str().unwrap().to_owned();
        let msg = refused(&files, "vfs.write", body, ErrorCode::Conflict).await;
        says(&msg, &[&path, "is a directory"]);
    }
    // An upload ending on a directory is refused when it commits.
    let id = start_upload(&files, "/docs", b"a").await;
    let msg = daemon_code(
        chunk(&files, "/docs", Some(&id), 1, b"b", false).await,
        ErrorCode::Conflict,
    );
    says(&msg, &["/docs", "is a directory"]);
    assert_eq!(stat(&files, "/docs").await["kind"], "dir");
    assert_eq!(read_text(&files, "/docs/inner.txt").await, "kept");
}
