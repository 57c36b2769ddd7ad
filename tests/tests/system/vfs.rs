//! The VFS service through real clients: files, directories, versions, chunked
//! uploads, events, quotas, and every way a path or a request can be wrong.
//!
//! Each user's root is `<data>/vfs/<user id>/`; tests that plant things on disk
//! (symlinks) find it from the welcome's user id.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aether_proto::ErrorCode;
use aether_proto::client::{AetherClient, AppHandle, ClientError, Subscription};
use aether_tests::{OWNER, TestDaemon, next_msg};
use serde_json::{Value, json};

const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A request body as shown in a failure: long data is cut.
fn shown(body: &Value) -> String {
    let text = body.to_string();
    if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else {
        text
    }
}

/// A VFS request that must succeed; returns the answer.
async fn ok(app: &AppHandle, topic: &str, body: Value) -> Value {
    app.request::<_, Value>(topic, &body)
        .await
        .unwrap_or_else(|e| panic!("{topic} {} should succeed, got {e:?}", shown(&body)))
}

/// A VFS request that must be refused with `code`; returns the message.
async fn refused(app: &AppHandle, topic: &str, body: Value, code: ErrorCode) -> String {
    match app.request::<_, Value>(topic, &body).await {
        Err(ClientError::Daemon(e)) if e.code == code => {
            assert!(
                !e.msg.is_empty(),
                "{topic} {}: an error must say why",
                shown(&body)
            );
            e.msg
        }
        Err(other) => panic!(
            "{topic} {} should be refused with `{code}`, got the error {other:?}",
            shown(&body)
        ),
        Ok(answer) => panic!(
            "{topic} {} should be refused with `{code}`, but it answered {}",
            shown(&body),
            shown(&answer)
        ),
    }
}

/// Assert that `msg` contains every fragment.
#[track_caller]
fn says(msg: &str, fragments: &[&str]) {
    for fragment in fragments {
        assert!(
            msg.contains(fragment),
            "the message should contain {fragment:?}: {msg}"
        );
    }
}

async fn write_text(app: &AppHandle, path: &str, text: &str) -> Value {
    ok(app, "vfs.write", json!({ "path": path, "data": text })).await
}

async fn write_bytes(app: &AppHandle, path: &str, bytes: &[u8]) -> Value {
    ok(
        app,
        "vfs.write",
        json!({ "path": path, "data": b64(bytes), "encoding": "base64" }),
    )
    .await
}

/// The whole file as UTF-8 text (it must fit in one read).
async fn read_text(app: &AppHandle, path: &str) -> String {
    let answer = ok(app, "vfs.read", json!({ "path": path, "encoding": "utf8" })).await;
    assert_eq!(answer["eof"], true, "{path} fits in one read: {answer}");
    answer["data"].as_str().unwrap().to_owned()
}

/// The whole file, read in chunks of `chunk` bytes as base64.
async fn read_all(app: &AppHandle, path: &str, chunk: usize) -> Vec<u8> {
    let mut bytes = vec![];
    loop {
        let answer = ok(
            app,
            "vfs.read",
            json!({ "path": path, "offset": bytes.len(), "length": chunk, "encoding": "base64" }),
        )
        .await;
        assert_eq!(answer["encoding"], "base64");
        assert_eq!(answer["offset"], bytes.len());
        let data = unb64(answer["data"].as_str().unwrap());
        assert_eq!(answer["length"], data.len());
        bytes.extend_from_slice(&data);
        if answer["eof"] == true {
            assert_eq!(answer["size"], bytes.len(), "eof only at the end");
            return bytes;
        }
        assert!(!data.is_empty(), "a read before eof returned nothing");
    }
}

async fn stat(app: &AppHandle, path: &str) -> Value {
    ok(app, "vfs.stat", json!({ "path": path })).await
}

async fn assert_absent(app: &AppHandle, path: &str) {
    let msg = refused(
        app,
        "vfs.stat",
        json!({ "path": path }),
        ErrorCode::NotFound,
    )
    .await;
    says(&msg, &[path]);
}

/// Names of a `vfs.list` answer, in the order given.
fn names(list: &Value) -> Vec<String> {
    list["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("a list answer has entries: {list}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn list_names(app: &AppHandle, path: &str) -> Vec<String> {
    names(&ok(app, "vfs.list", json!({ "path": path })).await)
}

/// The user's root on disk.
fn user_root(d: &TestDaemon, client: &AetherClient) -> PathBuf {
    d.config()
        .vfs_dir()
        .join(client.welcome().user.id.to_string())
}

/// Names in a directory on disk, sorted.
fn disk_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The next `vfs.events.*` delivery, which must be about `user`: (kind, acting app, data).
async fn next_event(sub: &mut Subscription, user: &str) -> (String, String, Value) {
    let msg = next_msg(sub).await;
    let kind = msg
        .topic
        .strip_prefix("vfs.events.")
        .unwrap_or_else(|| panic!("not a vfs event: {}", msg.topic))
        .to_owned();
    assert_eq!(msg.from.user, user, "events carry the acting user: {msg:?}");
    let data: Value = serde_json::from_str(msg.data.get()).unwrap();
    (kind, msg.from.app, data)
}

/// Deterministic bytes that are not UTF-8 (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (the tests do not depend on a base64 crate).
fn b64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unb64(text: &str) -> Vec<u8> {
    assert_eq!(text.len() % 4, 0, "base64 comes in groups of 4");
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for quad in text.as_bytes().chunks(4) {
        let (mut n, mut pad) = (0u32, 0);
        for &c in quad {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' => {
                    pad += 1;
                    0
                }
                _ => panic!("not base64: {c:?}"),
            };
            n = n << 6 | u32::from(v);
        }
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8][..3 - pad]);
    }
    out
}

#[test]
fn the_test_base64_round_trips() {
    assert_eq!(b64(b""), "");
    assert_eq!(b64(b"f"), "Zg==");
    assert_eq!(b64(b"fo"), "Zm8=");
    assert_eq!(b64(b"foo"), "Zm9v");
    assert_eq!(b64(b"foob"), "Zm9vYg==");
    let bytes = noise(1000, 7);
    assert_eq!(unb64(&b64(&bytes)), bytes);
}

/// One chunk of an upload: `upload` is None for the first.
async fn chunk(
    app: &AppHandle,
    path: &str,
    upload: Option<&str>,
    offset: usize,
    bytes: &[u8],
    more: bool,
) -> Result<Value, ClientError> {
    let mut body = json!({
        "path": path, "data": b64(bytes), "encoding": "base64", "offset": offset, "more": more,
    });
    if let Some(id) = upload {
        body["upload"] = json!(id);
    }
    app.request::<_, Value>("vfs.write", &body).await
}

/// Start an upload with its first chunk; returns the upload id.
async fn start_upload(app: &AppHandle, path: &str, first: &[u8]) -> String {
    let answer = chunk(app, path, None, 0, first, true)
        .await
        .unwrap_or_else(|e| panic!("starting an upload to {path} failed: {e:?}"));
    assert_eq!(answer["received"], first.len(), "{answer}");
    answer["upload"]
        .as_str()
        .unwrap_or_else(|| panic!("the first chunk's answer names the upload: {answer}"))
        .to_owned()
}

#[track_caller]
fn daemon_code<T: std::fmt::Debug>(result: Result<T, ClientError>, code: ErrorCode) -> String {
    match result {
        Err(ClientError::Daemon(e)) if e.code == code => e.msg,
        other => panic!("expected the daemon to answer `{code}`, got {other:?}"),
    }
}

async fn owner_files(d: &TestDaemon) -> (AetherClient, AppHandle) {
    let owner = d.owner().await;
    let files = owner.app("files");
    (owner, files)
}

// ---------------------------------------------------------------------------
// Writing and reading
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// list, stat, mkdir, remove, move, copy
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Chunked uploads
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_mib_upload_in_chunks_out_of_order_reads_back_byte_for_byte() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let data = noise(5 * MIB + 4321, 42);
    let chunks: Vec<&[u8]> = data.chunks(MIB).collect();
    assert_eq!(chunks.len(), 6);
    let path = "/big/upload.bin";
    ok(&files, "vfs.mkdir", json!({ "path": "/big" })).await;

    let id = start_upload(&files, path, chunks[0]).await;
    // Out of order: the tail first, then one in the middle...
    let mut received = MIB;
    for index in [5, 2] {
        let answer = chunk(&files, path, Some(&id), index * MIB, chunks[index], true)
            .await
            .unwrap_or_else(|e| panic!("chunk {index} failed: {e:?}"));
        received += chunks[index].len();
        assert_eq!(answer["received"], received, "{answer}");
        assert_eq!(answer["upload"], id.as_str(), "{answer}");
    }
    // ...then two at once, as a pipelining client sends them...
    let (three, four) = tokio::join!(
        chunk(&files, path, Some(&id), 3 * MIB, chunks[3], true),
        chunk(&files, path, Some(&id), 4 * MIB, chunks[4], true),
    );
    three.expect("chunk 3 failed");
    four.expect("chunk 4 failed");
    // Nothing is visible before the last chunk.
    assert_absent(&files, path).await;
    // ...and the one that closes the gap last.
    let done = chunk(&files, path, Some(&id), MIB, chunks[1], false)
        .await
        .expect("the last chunk failed");
    assert_eq!(done["size"], data.len(), "{done}");
    assert_eq!(done["created"], true, "{done}");
    assert_eq!(done["path"], path, "{done}");

    let info = stat(&files, path).await;
    assert_eq!(info["size"], data.len(), "{info}");
    assert_eq!(
        info["version"], done["version"],
        "the version is the content's: {info}"
    );

    let back = read_all(&files, path, MIB).await;
    assert_eq!(back.len(), data.len());
    if let Some(at) = back.iter().zip(&data).position(|(a, b)| a != b) {
        panic!("the file read back differs from what was uploaded at byte {at}");
    }

    // One read never returns more than the chunk limit (2 MiB by default).
    let capped = ok(
        &files,
        "vfs.read",
        json!({ "path": path, "length": 3 * MIB, "encoding": "base64" }),
    )
    .await;
    assert_eq!(capped["length"], 2 * MIB, "{}", shown(&capped));
    assert_eq!(capped["eof"], false, "{}", shown(&capped));

    // The upload is over: its id is gone.
    let msg = daemon_code(
        chunk(&files, path, Some(&id), data.len(), b"more", false).await,
        ErrorCode::NotFound,
    );
    says(&msg, &[&id]);
    assert_eq!(stat(&files, path).await["size"], data.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlapping_chunk_is_refused_and_the_upload_goes_on() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let data = noise(300, 9);
    let id = start_upload(&files, "/up.bin", &data[..100]).await;

    let msg = daemon_code(
        chunk(&files, "/up.bin", Some(&id), 50, &data[50..150], true).await,
        ErrorCode::Conflict,
    );
    says(&msg, &[&id, "50..100", "offset 50", "overlaps"]);
    // The same chunk again is an overlap too.
    let msg = daemon_code(
        chunk(&files, "/up.bin", Some(&id), 0, &data[..100], true).await,
        ErrorCode::Conflict,
    );
    says(&msg, &["0..100", "overlaps"]);

    // A chunk without an offset, or for another path, is refused too.
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/up.bin", "upload": id, "data": "x", "more": true }),
        ErrorCode::BadFrame,
    )
    .await;
    says(&msg, &["offset"]);
    let msg = daemon_code(
        chunk(
            &files,
            "/elsewhere.bin",
            Some(&id),
            100,
            &data[100..200],
            true,
        )
        .await,
        ErrorCode::Conflict,
    );
    says(&msg, &[&id, "/up.bin", "/elsewhere.bin"]);
    assert_absent(&files, "/elsewhere.bin").await;

    // A new upload must start at 0.
    let msg = daemon_code(
        chunk(&files, "/late.bin", None, 10, b"data", true).await,
        ErrorCode::Conflict,
    );
    says(&msg, &["offset 0"]);

    // None of that harmed the upload: it finishes with exactly the bytes sent.
    chunk(&files, "/up.bin", Some(&id), 100, &data[100..200], true)
        .await
        .unwrap();
    let done = chunk(&files, "/up.bin", Some(&id), 200, &data[200..], false)
        .await
        .unwrap();
    assert_eq!(done["size"], 300, "{done}");
    assert_eq!(read_all(&files, "/up.bin", MIB).await, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finishing_an_upload_with_a_missing_range_is_a_conflict_naming_the_offset() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    write_text(&files, "/gap.bin", "the old content").await;
    let data = noise(300, 11);
    let id = start_upload(&files, "/gap.bin", &data[..100]).await;

    let msg = daemon_code(
        chunk(&files, "/gap.bin", Some(&id), 200, &data[200..], false).await,
        ErrorCode::Conflict,
    );
    says(&msg, &[&id, "missing", "offset 100"]);
    // Nothing was committed: the old file is whole.
    assert_eq!(read_text(&files, "/gap.bin").await, "the old content");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_refused_for_a_gap_finishes_once_the_gap_is_sent_as_the_error_advises() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let data = noise(300, 12);
    let id = start_upload(&files, "/gap.bin", &data[..100]).await;
    let msg = daemon_code(
        chunk(&files, "/gap.bin", Some(&id), 200, &data[200..], false).await,
        ErrorCode::Conflict,
    );
    // The daemon's advice: "send them, then the last chunk again".
    says(
        &msg,
        &["offset 100", "send them, then the last chunk again"],
    );

    chunk(&files, "/gap.bin", Some(&id), 100, &data[100..200], true)
        .await
        .unwrap_or_else(|e| panic!("sending the missing bytes failed: {e:?}"));
    let done = chunk(&files, "/gap.bin", Some(&id), 200, &data[200..], false)
        .await
        .unwrap_or_else(|e| {
            panic!("sending the last chunk again, as the error said to, failed: {e:?}")
        });
    assert_eq!(done["size"], 300, "{done}");
    assert_eq!(read_all(&files, "/gap.bin", MIB).await, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_for_an_unknown_upload_is_not_found() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let msg = daemon_code(
        chunk(
            &files,
            "/x.bin",
            Some("u00000000deadbeef"),
            0,
            b"data",
            false,
        )
        .await,
        ErrorCode::NotFound,
    );
    says(&msg, &["no upload u00000000deadbeef"]);
    assert_absent(&files, "/x.bin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_open_uploads_are_rate_limited() {
    let d = TestDaemon::start_with(|c| c.vfs.max_uploads = 2).await;
    let (_owner, files) = owner_files(&d).await;
    let first = start_upload(&files, "/one.bin", b"1").await;
    start_upload(&files, "/two.bin", b"2").await;
    let msg = daemon_code(
        chunk(&files, "/three.bin", None, 0, b"3", true).await,
        ErrorCode::RateLimited,
    );
    says(&msg, &["2 uploads"]);
    // Finishing one frees its slot.
    chunk(&files, "/one.bin", Some(&first), 1, b"!", false)
        .await
        .unwrap();
    assert_eq!(read_text(&files, "/one.bin").await, "1!");
    start_upload(&files, "/three.bin", b"3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_that_is_not_base64_is_a_bad_frame() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/bad.bin", "data": "this is *not* base64!", "encoding": "base64" }),
        ErrorCode::BadFrame,
    )
    .await;
    says(&msg, &["not valid base64"]);
    assert_absent(&files, "/bad.bin").await;

    // In the middle of an upload too; the upload survives it.
    let id = start_upload(&files, "/up.bin", b"abc").await;
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/up.bin", "upload": id, "offset": 3, "data": "%%%%", "encoding": "base64", "more": false }),
        ErrorCode::BadFrame,
    )
    .await;
    says(&msg, &["not valid base64"]);
    chunk(&files, "/up.bin", Some(&id), 3, b"def", false)
        .await
        .unwrap();
    assert_eq!(read_text(&files, "/up.bin").await, "abcdef");
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Versions and concurrent writers
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_naming_the_current_version_succeeds_and_a_stale_one_is_a_conflict() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let v1 = write_text(&files, "/doc.txt", "draft 1").await["version"].clone();
    assert_eq!(stat(&files, "/doc.txt").await["version"], v1);

    let second = ok(
        &files,
        "vfs.write",
        json!({ "path": "/doc.txt", "data": "draft 2", "if_version": v1 }),
    )
    .await;
    let v2 = second["version"].clone();
    assert_ne!(v2, v1);

    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/doc.txt", "data": "draft 2 from a stale copy", "if_version": v1 }),
        ErrorCode::Conflict,
    )
    .await;
    says(
        &msg,
        &["/doc.txt", v1.as_str().unwrap(), v2.as_str().unwrap()],
    );
    assert_eq!(read_text(&files, "/doc.txt").await, "draft 2");

    // Appending under a version works the same way.
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/doc.txt", "data": "+", "append": true, "if_version": v1 }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &[v1.as_str().unwrap()]);
    ok(
        &files,
        "vfs.write",
        json!({ "path": "/doc.txt", "data": "+", "append": true, "if_version": v2 }),
    )
    .await;
    assert_eq!(read_text(&files, "/doc.txt").await, "draft 2+");

    // A version for a file that does not exist is a conflict, not a creation.
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/absent.txt", "data": "x", "if_version": v1 }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/absent.txt", "absent"]);
    assert_absent(&files, "/absent.txt").await;

    // Reads can be conditional too.
    let msg = refused(
        &files,
        "vfs.read",
        json!({ "path": "/doc.txt", "if_version": v1 }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/doc.txt", v1.as_str().unwrap()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_absent_creates_but_never_replaces() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let created = ok(
        &files,
        "vfs.write",
        json!({ "path": "/once.txt", "data": "first", "if_absent": true }),
    )
    .await;
    assert_eq!(created["created"], true, "{created}");
    let msg = refused(
        &files,
        "vfs.write",
        json!({ "path": "/once.txt", "data": "second", "if_absent": true }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/once.txt", "already exists"]);
    assert_eq!(read_text(&files, "/once.txt").await, "first");

    // On an upload, `if_absent` (given with the first chunk) is checked when it commits.
    let started = ok(
        &files,
        "vfs.write",
        json!({ "path": "/twice.txt", "data": "a", "more": true, "if_absent": true }),
    )
    .await;
    let id = started["upload"].as_str().unwrap().to_owned();
    write_text(&files, "/twice.txt", "got there first").await;
    let msg = daemon_code(
        chunk(&files, "/twice.txt", Some(&id), 1, b"b", false).await,
        ErrorCode::Conflict,
    );
    says(&msg, &["/twice.txt", "already exists"]);
    assert_eq!(read_text(&files, "/twice.txt").await, "got there first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_condition_sent_with_the_last_chunk_is_not_silently_ignored() {
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let base = write_text(&files, "/doc.txt", "base").await["version"].clone();
    let id = start_upload(&files, "/doc.txt", b"an edit of base, ").await;
    // Meanwhile another client saves.
    let other = d.owner().await;
    write_text(&other.app("editor"), "/doc.txt", "the other save").await;
    // The last chunk says which version the upload replaces: it must be honoured
    // (conflict) or refused as misplaced (bad_frame), never ignored.
    let last = files
        .request::<_, Value>(
            "vfs.write",
            &json!({ "path": "/doc.txt", "upload": id, "offset": 17, "data": "sent in two chunks", "if_version": base }),
        )
        .await;
    match last {
        Err(ClientError::Daemon(e))
            if matches!(e.code, ErrorCode::Conflict | ErrorCode::BadFrame) =>
        {
            assert!(!e.msg.is_empty());
        }
        other => panic!(
            "an upload whose last chunk names the stale version {base} replaced a newer save: {other:?}"
        ),
    }
    assert_eq!(read_text(&files, "/doc.txt").await, "the other save");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_editing_one_file_never_silently_lose_a_save() {
    let d = TestDaemon::start().await;
    let alice_window = d.owner().await;
    let bob_window = d.owner().await;
    let (a, b) = (alice_window.app("files"), bob_window.app("editor"));
    write_text(&a, "/shared.md", "# Plan\n").await;

    // Both open the file.
    let opened_a = ok(&a, "vfs.read", json!({ "path": "/shared.md" })).await;
    let opened_b = ok(&b, "vfs.read", json!({ "path": "/shared.md" })).await;
    assert_eq!(opened_a["version"], opened_b["version"]);
    let base = opened_a["version"].clone();

    // A saves first.
    let saved_a = ok(
        &a,
        "vfs.write",
        json!({ "path": "/shared.md", "data": "# Plan\n- from A\n", "if_version": base }),
    )
    .await;
    // B's save, based on what B opened, is refused rather than overwriting A's.
    let msg = refused(
        &b,
        "vfs.write",
        json!({ "path": "/shared.md", "data": "# Plan\n- from B\n", "if_version": base }),
        ErrorCode::Conflict,
    )
    .await;
    says(&msg, &["/shared.md", base.as_str().unwrap(), "reload"]);
    assert_eq!(read_text(&b, "/shared.md").await, "# Plan\n- from A\n");

    // B reloads, merges, and saves on top of A's version.
    let reloaded = ok(&b, "vfs.read", json!({ "path": "/shared.md" })).await;
    assert_eq!(reloaded["version"], saved_a["version"]);
    ok(
        &b,
        "vfs.write",
        json!({ "path": "/shared.md", "data": "# Plan\n- from A\n- from B\n", "if_version": reloaded["version"] }),
    )
    .await;
    assert_eq!(
        read_text(&a, "/shared.md").await,
        "# Plan\n- from A\n- from B\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_concurrent_writers_from_one_version_exactly_one_wins() {
    const WRITERS: usize = 20;
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let base = write_text(&files, "/race.txt", "base").await["version"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut clients = vec![];
    for _ in 0..WRITERS {
        clients.push(d.owner().await);
    }
    let start = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let mut writers = tokio::task::JoinSet::new();
    for (i, client) in clients.into_iter().enumerate() {
        let (start, base) = (start.clone(), base.clone());
        writers.spawn(async move {
            let body =
                json!({ "path": "/race.txt", "data": format!("writer {i}"), "if_version": base });
            start.wait().await;
            (
                i,
                client
                    .app("files")
                    .request::<_, Value>("vfs.write", &body)
                    .await,
            )
        });
    }
    let mut winners = vec![];
    let mut conflicts = 0;
    while let Some(done) = writers.join_next().await {
        let (i, result) = done.expect("a writer task panicked");
        match result {
            Ok(answer) => winners.push((i, answer)),
            Err(ClientError::Daemon(e)) if e.code == ErrorCode::Conflict => {
                says(&e.msg, &["/race.txt", &base]);
                conflicts += 1;
            }
            Err(other) => panic!("writer {i} failed with something else than conflict: {other:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one writer from version {base} may win: {winners:?}"
    );
    assert_eq!(conflicts, WRITERS - 1);
    let (winner, answer) = &winners[0];
    let now = ok(&files, "vfs.read", json!({ "path": "/race.txt" })).await;
    assert_eq!(now["data"], format!("writer {winner}"), "{now}");
    assert_eq!(now["version"], answer["version"], "{now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_all_land_whole() {
    const WRITERS: usize = 20;
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let mut appends = tokio::task::JoinSet::new();
    for i in 0..WRITERS {
        let files = files.clone();
        appends.spawn(async move {
            ok(
                &files,
                "vfs.write",
                json!({ "path": "/log.txt", "data": format!("line {i:02}\n"), "append": true }),
            )
            .await
        });
    }
    let mut created = 0;
    while let Some(done) = appends.join_next().await {
        if done.expect("an append task panicked")["created"] == true {
            created += 1;
        }
    }
    assert_eq!(created, 1, "one append created the file, the rest appended");
    let text = read_text(&files, "/log.txt").await;
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), WRITERS, "an append was lost: {text:?}");
    lines.sort();
    let expected: Vec<String> = (0..WRITERS).map(|i| format!("line {i:02}")).collect();
    assert_eq!(lines, expected, "{text:?}");
}

// ---------------------------------------------------------------------------
// Bad paths: every operation refuses them, and nothing is created
// ---------------------------------------------------------------------------

/// Every operation refuses `path` with `bad_frame` and a message saying `why`;
/// the root holds only the file this helper writes first.
async fn assert_bad_path_everywhere(d: &TestDaemon, path: &str, why: &str) {
    let (owner, files) = owner_files(d).await;
    write_text(&files, "/good.txt", "good").await;
    let requests = [
        ("vfs.read", json!({ "path": path })),
        ("vfs.write", json!({ "path": path, "data": "x" })),
        (
            "vfs.write",
            json!({ "path": path, "data": "x", "parents": true }),
        ),
        (
            "vfs.write",
            json!({ "path": path, "data": "x", "more": true }),
        ),
        ("vfs.list", json!({ "path": path })),
        ("vfs.stat", json!({ "path": path })),
        ("vfs.mkdir", json!({ "path": path, "parents": true })),
        ("vfs.remove", json!({ "path": path, "recursive": true })),
        ("vfs.move", json!({ "from": path, "to": "/moved" })),
        ("vfs.move", json!({ "from": "/good.txt", "to": path })),
        ("vfs.copy", json!({ "from": path, "to": "/copied" })),
        ("vfs.copy", json!({ "from": "/good.txt", "to": path })),
    ];
    for (topic, body) in requests {
        let msg = refused(&files, topic, body, ErrorCode::BadFrame).await;
        assert!(
            msg.contains("bad path") && msg.contains(why),
            "{topic} of {path:?} should say \"bad path\" and {why:?}: {msg}"
        );
    }
    assert_eq!(
        disk_names(&user_root(d, &owner)),
        ["good.txt"],
        "a bad path created something"
    );
    assert_eq!(read_text(&files, "/good.txt").await, "good");
    owner.ping().await.expect("the connection lives on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_dot_segments_are_refused() {
    let d = TestDaemon::start().await;
    for path in [
        "/../../etc/passwd",
        "/docs/../../../etc/passwd",
        "/..",
        "/a/./b",
    ] {
        assert_bad_path_everywhere(&d, path, "'.' and '..' are not allowed").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_path_is_refused() {
    let d = TestDaemon::start().await;
    for path in ["etc/passwd", "good.txt", "", "../x"] {
        assert_bad_path_everywhere(&d, path, "must start with '/'").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_slash_is_refused() {
    let d = TestDaemon::start().await;
    for path in ["//etc/passwd", "/a//b", "//"] {
        assert_bad_path_everywhere(&d, path, "empty segment").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trailing_slash_is_refused() {
    let d = TestDaemon::start().await;
    for path in ["/docs/", "/good.txt/"] {
        assert_bad_path_everywhere(&d, path, "trailing '/'").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_byte_or_control_character_is_refused() {
    let d = TestDaemon::start().await;
    for path in ["/a\0b", "/good.txt\0.png", "/line\nbreak", "/\u{7f}"] {
        assert_bad_path_everywhere(&d, path, "NUL or control character").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backslash_is_refused() {
    let d = TestDaemon::start().await;
    assert_bad_path_everywhere(&d, "/..\\..\\etc\\passwd", "backslash").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_over_255_bytes_is_refused() {
    let d = TestDaemon::start().await;
    assert_bad_path_everywhere(
        &d,
        &format!("/{}", "n".repeat(256)),
        "a name is 256 bytes; the limit is 255",
    )
    .await;
    // Bytes, not characters: 128 two-byte characters are 256 bytes.
    assert_bad_path_everywhere(
        &d,
        &format!("/dir/{}", "é".repeat(128)),
        "a name is 256 bytes",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_over_4_kib_is_refused() {
    let d = TestDaemon::start().await;
    let path = "/abcdefg".repeat(513); // 4104 bytes of short, valid names
    assert_bad_path_everywhere(&d, &path, "4104 bytes; the limit is 4096").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_look_alikes_of_slash_and_dot_are_refused() {
    let d = TestDaemon::start().await;
    for path in [
        "/etc\u{FF0F}passwd",     // FULLWIDTH SOLIDUS
        "/etc\u{2215}passwd",     // DIVISION SLASH
        "/\u{2025}",              // TWO DOT LEADER
        "/\u{2024}\u{2024}",      // ONE DOT LEADER twice
        "/\u{FF0E}\u{FF0E}",      // FULLWIDTH FULL STOP twice
        "/report\u{202E}fdp.exe", // RIGHT-TO-LEFT OVERRIDE
        "/good\u{200B}.txt",      // ZERO WIDTH SPACE
    ] {
        assert_bad_path_everywhere(&d, path, "looks like a '/' or '.'").await;
    }
}

// ---------------------------------------------------------------------------
// Symlinks planted on disk
// ---------------------------------------------------------------------------

/// A directory outside every root with one file in it, to check it is never touched.
struct Outside {
    dir: tempfile::TempDir,
}

impl Outside {
    const SECRET: &str = "top secret, outside the root";

    fn new() -> Outside {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.txt"), Outside::SECRET).unwrap();
        Outside { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn secret(&self) -> PathBuf {
        self.dir.path().join("secret.txt")
    }

    #[track_caller]
    fn assert_untouched(&self, after: &str) {
        assert_eq!(
            disk_names(self.path()),
            ["secret.txt"],
            "after {after}, something was created or removed outside the root"
        );
        assert_eq!(
            std::fs::read_to_string(self.secret()).unwrap(),
            Outside::SECRET,
            "after {after}, the file outside the root changed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_planted_in_the_root_never_leads_outside_it() {
    let d = TestDaemon::start().await;
    let (owner, files) = owner_files(&d).await;
    write_text(&files, "/inside.txt", "inside").await;
    let root = user_root(&d, &owner);
    assert!(
        root.join("inside.txt").is_file(),
        "the root is where it should be"
    );

    let outside = Outside::new();
    symlink(outside.secret(), root.join("link_file")).unwrap();
    symlink(outside.path(), root.join("link_dir")).unwrap();
    // Relative, climbing out: `..` far above the root, then down to the outside dir.
    let climb = format!(
        "{}{}",
        "../".repeat(40),
        outside.path().strip_prefix("/").unwrap().display()
    );
    symlink(&climb, root.join("rel_dir")).unwrap();

    // Through the links: every operation is refused as forbidden.
    for dir in ["/link_dir", "/rel_dir"] {
        let secret = format!("{dir}/secret.txt");
        let requests = [
            ("vfs.read", json!({ "path": secret })),
            (
                "vfs.read",
                json!({ "path": secret, "offset": 3, "length": 4, "encoding": "base64" }),
            ),
            ("vfs.stat", json!({ "path": secret })),
            ("vfs.list", json!({ "path": dir })),
            ("vfs.write", json!({ "path": secret, "data": "pwned" })),
            (
                "vfs.write",
                json!({ "path": secret, "data": "pwned", "append": true }),
            ),
            (
                "vfs.write",
                json!({ "path": format!("{dir}/new.txt"), "data": "planted" }),
            ),
            (
                "vfs.write",
                json!({ "path": format!("{dir}/deep/new.txt"), "data": "planted", "parents": true }),
            ),
            ("vfs.mkdir", json!({ "path": format!("{dir}/newdir") })),
            (
                "vfs.mkdir",
                json!({ "path": format!("{dir}/a/b"), "parents": true }),
            ),
            ("vfs.remove", json!({ "path": secret })),
            ("vfs.remove", json!({ "path": secret, "recursive": true })),
            ("vfs.move", json!({ "from": secret, "to": "/stolen.txt" })),
            (
                "vfs.move",
                json!({ "from": "/inside.txt", "to": format!("{dir}/inside.txt") }),
            ),
            ("vfs.copy", json!({ "from": secret, "to": "/stolen.txt" })),
            (
                "vfs.copy",
                json!({ "from": "/inside.txt", "to": format!("{dir}/inside.txt") }),
            ),
        ];
        for (topic, body) in requests {
            let shown_body = body.to_string();
            let msg = refused(&files, topic, body, ErrorCode::Forbidden).await;
            says(&msg, &[dir]);
            assert!(
                msg.contains("outside your root") || msg.contains("symlink"),
                "{topic} {shown_body}: the message should say why: {msg}"
            );
            assert!(!msg.contains(Outside::SECRET), "{msg}");
            outside.assert_untouched(&format!("{topic} {shown_body}"));
        }
        // An upload through the link is refused, at the latest when it commits.
        let target = format!("{dir}/uploaded.bin");
        let msg = match chunk(&files, &target, None, 0, b"part one ", true).await {
            Ok(started) => daemon_code(
                chunk(
                    &files,
                    &target,
                    started["upload"].as_str(),
                    9,
                    b"part two",
                    false,
                )
                .await,
                ErrorCode::Forbidden,
            ),
            refused => daemon_code(refused, ErrorCode::Forbidden),
        };
        says(&msg, &[dir]);
        outside.assert_untouched("an upload through the link");
    }

    // The link to a file: reading or writing through it is refused.
    for (topic, body) in [
        ("vfs.read", json!({ "path": "/link_file" })),
        (
            "vfs.write",
            json!({ "path": "/link_file", "data": "pwned" }),
        ),
        (
            "vfs.write",
            json!({ "path": "/link_file", "data": "pwned", "append": true }),
        ),
        (
            "vfs.write",
            json!({ "path": "/link_file", "data": "pwned", "if_absent": true }),
        ),
    ] {
        let shown_body = body.to_string();
        let msg = refused(&files, topic, body, ErrorCode::Forbidden).await;
        says(&msg, &["/link_file"]);
        outside.assert_untouched(&format!("{topic} {shown_body}"));
    }
    // Copying a link would read the outside: refused (only files and directories are copied).
    for from in ["/link_file", "/link_dir"] {
        let msg = refused(
            &files,
            "vfs.copy",
            json!({ "from": from, "to": "/stolen" }),
            ErrorCode::BadFrame,
        )
        .await;
        says(&msg, &[from, "only files and directories"]);
    }
    assert_absent(&files, "/stolen.txt").await;
    assert_absent(&files, "/stolen").await;

    // Listing the root shows the links as links, never what they point at.
    let list = ok(&files, "vfs.list", json!({ "path": "/" })).await;
    assert_eq!(
        names(&list),
        ["inside.txt", "link_dir", "link_file", "rel_dir"],
        "{list}"
    );
    for entry in list["entries"].as_array().unwrap() {
        if entry["name"] != "inside.txt" {
            assert_eq!(entry["kind"], "symlink", "{entry}");
            assert_ne!(entry["size"], Outside::SECRET.len(), "{entry}");
        }
    }
    let link = stat(&files, "/link_file").await;
    assert_eq!(link["kind"], "symlink", "{link}");
    assert_eq!(link["version"], Value::Null, "{link}");

    // A directory copied with a link inside leaves the link behind.
    ok(&files, "vfs.mkdir", json!({ "path": "/box" })).await;
    symlink(outside.path(), root.join("box").join("escape")).unwrap();
    write_text(&files, "/box/note.txt", "note").await;
    ok(&files, "vfs.copy", json!({ "from": "/box", "to": "/box2" })).await;
    assert_eq!(list_names(&files, "/box2").await, ["note.txt"]);
    outside.assert_untouched("copying a directory holding a link");
    // Removing that directory removes the link, not what it points at.
    ok(
        &files,
        "vfs.remove",
        json!({ "path": "/box", "recursive": true }),
    )
    .await;
    outside.assert_untouched("removing a directory holding a link");

    // Removing a link removes the link itself, never its target.
    for (link, recursive) in [
        ("/link_file", false),
        ("/link_dir", true),
        ("/rel_dir", true),
    ] {
        let removed = ok(
            &files,
            "vfs.remove",
            json!({ "path": link, "recursive": recursive }),
        )
        .await;
        assert_eq!(removed["kind"], "symlink", "{removed}");
        outside.assert_untouched(&format!("removing {link}"));
        let on_disk = root.join(link.trim_start_matches('/'));
        assert!(
            std::fs::symlink_metadata(&on_disk).is_err(),
            "{} is still there",
            on_disk.display()
        );
    }
    assert_eq!(read_text(&files, "/inside.txt").await, "inside");
}

// ---------------------------------------------------------------------------
// Refusals that protect the tree
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Quotas
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Who may reach what
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_files_are_unreachable_through_every_operation() {
    let d = TestDaemon::start().await;
    d.add_user("ana", "ana password 1").await;
    d.add_user("bob", "bob password 1").await;
    let ana = d.sign_in("ana", "ana password 1").await;
    let bob = d.sign_in("bob", "bob password 1").await;
    let (af, bf) = (ana.app("files"), bob.app("files"));
    assert_ne!(ana.welcome().user.id, bob.welcome().user.id);

    let mut bob_events = bf.subscribe("vfs.events.>").await.unwrap();
    let secret = write_text(&af, "/secret.txt", "ana's secret").await;
    ok(
        &af,
        "vfs.write",
        json!({ "path": "/private/plan.txt", "data": "ana's plan", "parents": true }),
    )
    .await;
    let ana_upload = start_upload(&af, "/upload.bin", b"ana's ").await;

    // The same paths name bob's own (empty) root.
    for (topic, body) in [
        ("vfs.read", json!({ "path": "/secret.txt" })),
        ("vfs.stat", json!({ "path": "/secret.txt" })),
        ("vfs.list", json!({ "path": "/private" })),
        ("vfs.read", json!({ "path": "/private/plan.txt" })),
        ("vfs.remove", json!({ "path": "/secret.txt" })),
        (
            "vfs.remove",
            json!({ "path": "/private", "recursive": true }),
        ),
        (
            "vfs.move",
            json!({ "from": "/secret.txt", "to": "/mine.txt" }),
        ),
        (
            "vfs.copy",
            json!({ "from": "/secret.txt", "to": "/mine.txt" }),
        ),
        ("vfs.copy", json!({ "from": "/private", "to": "/mine" })),
    ] {
        let shown_body = body.to_string();
        let msg = refused(&bf, topic, body, ErrorCode::NotFound).await;
        assert!(!msg.contains("ana's"), "{topic} {shown_body} leaks: {msg}");
    }
    assert_eq!(list_names(&bf, "/").await, Vec::<String>::new());
    // Ana's upload id is not bob's to use.
    let msg = daemon_code(
        chunk(&bf, "/upload.bin", Some(&ana_upload), 6, b"bob's", false).await,
        ErrorCode::NotFound,
    );
    says(&msg, &[&ana_upload]);
    // Bob writing the same path makes his own file.
    let bobs = write_text(&bf, "/secret.txt", "bob's own").await;
    assert_eq!(bobs["created"], true, "{bobs}");
    // Bob saw only his own change.
    let (kind, _, data) = next_event(&mut bob_events, "bob").await;
    assert_eq!(kind, "created");
    assert_eq!(
        data["version"], bobs["version"],
        "bob received an event about ana's files: {data}"
    );

    // Nor can a symlink planted in bob's root reach ana's.
    let bob_root = user_root(&d, &bob);
    let ana_root = user_root(&d, &ana);
    symlink(&ana_root, bob_root.join("ana")).unwrap();
    symlink("..", bob_root.join("up")).unwrap();
    let ana_id = ana.welcome().user.id;
    for secret_path in [
        "/ana/secret.txt".to_owned(),
        format!("/up/{ana_id}/secret.txt"),
    ] {
        for (topic, body) in [
            ("vfs.read", json!({ "path": secret_path })),
            ("vfs.stat", json!({ "path": secret_path })),
            (
                "vfs.write",
                json!({ "path": secret_path, "data": "bob was here" }),
            ),
            ("vfs.remove", json!({ "path": secret_path })),
            ("vfs.move", json!({ "from": secret_path, "to": "/stolen" })),
            ("vfs.copy", json!({ "from": secret_path, "to": "/stolen" })),
        ] {
            let shown_body = body.to_string();
            let msg = refused(&bf, topic, body, ErrorCode::Forbidden).await;
            assert!(!msg.contains("ana's"), "{topic} {shown_body} leaks: {msg}");
        }
    }
    for dir in ["/ana", "/up", "/ana/private"] {
        refused(
            &bf,
            "vfs.list",
            json!({ "path": dir }),
            ErrorCode::Forbidden,
        )
        .await;
    }

    // Ana's files are exactly as she left them, and her upload finishes.
    let now = ok(&af, "vfs.read", json!({ "path": "/secret.txt" })).await;
    assert_eq!(now["data"], "ana's secret");
    assert_eq!(now["version"], secret["version"]);
    assert_eq!(read_text(&af, "/private/plan.txt").await, "ana's plan");
    chunk(&af, "/upload.bin", Some(&ana_upload), 6, b"upload", false)
        .await
        .expect("ana's upload is intact");
    assert_eq!(read_text(&af, "/upload.bin").await, "ana's upload");
    assert_eq!(
        list_names(&af, "/").await,
        ["private", "secret.txt", "upload.bin"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_without_the_vfs_capabilities_is_forbidden() {
    let d = TestDaemon::start().await;
    let (owner, files) = owner_files(&d).await;
    write_text(&files, "/mine.txt", "mine").await;
    let chat = owner.app("chat");

    let msg = refused(
        &chat,
        "vfs.read",
        json!({ "path": "/mine.txt" }),
        ErrorCode::Forbidden,
    )
    .await;
    says(&msg, &["`vfs_read`"]);
    let msg = refused(
        &chat,
        "vfs.write",
        json!({ "path": "/mine.txt", "data": "chat was here" }),
        ErrorCode::Forbidden,
    )
    .await;
    says(&msg, &["`vfs_write`"]);
    for (topic, capability) in [
        ("vfs.list", "`vfs_read`"),
        ("vfs.stat", "`vfs_read`"),
        ("vfs.mkdir", "`vfs_write`"),
        ("vfs.remove", "`vfs_write`"),
    ] {
        let msg = refused(
            &chat,
            topic,
            json!({ "path": "/mine.txt" }),
            ErrorCode::Forbidden,
        )
        .await;
        says(&msg, &[capability]);
    }
    for topic in ["vfs.move", "vfs.copy"] {
        let msg = refused(
            &chat,
            topic,
            json!({ "from": "/mine.txt", "to": "/chat.txt" }),
            ErrorCode::Forbidden,
        )
        .await;
        says(&msg, &["`vfs_write`"]);
    }
    let watching = chat.subscribe("vfs.events.>").await.map(|s| s.id());
    daemon_code(watching, ErrorCode::Forbidden);

    assert_eq!(read_text(&files, "/mine.txt").await, "mine");
    assert_eq!(list_names(&files, "/").await, ["mine.txt"]);
    owner.ping().await.expect("the connection lives on");
}

// ---------------------------------------------------------------------------
// Malformed requests
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Races and limits under concurrency
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_started_together_never_exceed_the_upload_limit() {
    const LIMIT: usize = 2;
    const TRIED: usize = 12;
    let d = TestDaemon::start_with(|c| c.vfs.max_uploads = LIMIT).await;
    let (_owner, files) = owner_files(&d).await;
    // A tree of 8 MiB, so that copying it keeps the user busy for a while.
    let blob = noise(2 * MIB, 5);
    ok(
        &files,
        "vfs.write",
        json!({ "path": "/tree/0.bin", "data": b64(&blob), "encoding": "base64", "parents": true }),
    )
    .await;
    for i in 1..4 {
        ok(
            &files,
            "vfs.copy",
            json!({ "from": "/tree/0.bin", "to": format!("/tree/{i}.bin") }),
        )
        .await;
    }

    // The copy is sent first, then every start at once, as a busy client would.
    let paths: Vec<String> = (0..TRIED).map(|i| format!("/up{i}.bin")).collect();
    let starts = futures_util::future::join_all(
        paths
            .iter()
            .map(|path| chunk(&files, path, None, 0, b"first", true)),
    );
    let copy = ok(
        &files,
        "vfs.copy",
        json!({ "from": "/tree", "to": "/tree2" }),
    );
    let (_, starts) = tokio::join!(copy, starts);

    let (mut opened, mut limited) = (0, 0);
    for started in starts {
        match started {
            Ok(answer) => {
                assert!(answer["upload"].is_string(), "{answer}");
                opened += 1;
            }
            Err(ClientError::Daemon(e)) if e.code == ErrorCode::RateLimited => {
                says(&e.msg, &["2 uploads"]);
                limited += 1;
            }
            Err(other) => panic!("an upload start failed unexpectedly: {other:?}"),
        }
    }
    assert_eq!(
        (opened, limited),
        (LIMIT, TRIED - LIMIT),
        "{TRIED} uploads started together with a limit of {LIMIT} open uploads"
    );
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

/// What the readers of a race saw, and when to stop.
struct Race {
    reads: std::sync::atomic::AtomicUsize,
    wanted: usize,
    deadline: std::time::Instant,
    mismatches: std::sync::Mutex<Vec<String>>,
}

impl Race {
    fn done(&self) -> bool {
        self.reads.load(std::sync::atomic::Ordering::Relaxed) >= self.wanted
            || std::time::Instant::now() >= self.deadline
            || !self.mismatches.lock().unwrap().is_empty()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_never_pairs_data_with_the_version_of_other_content() {
    // A race, so it has a bounded number of reads (and time) to show: each read of a
    // freshly replaced file must answer the version of the bytes it returns, or a save
    // based on it would overwrite changes its author never saw.
    const SIZE: usize = 2 * MIB;
    const READERS: usize = 3;
    let d = TestDaemon::start().await;
    let (_owner, files) = owner_files(&d).await;
    let (a, b) = (Arc::new(noise(SIZE, 1)), Arc::new(noise(SIZE, 2)));
    let va = write_bytes(&files, "/a.bin", &a).await["version"].clone();
    let vb = write_bytes(&files, "/b.bin", &b).await["version"].clone();
    ok(
        &files,
        "vfs.copy",
        json!({ "from": "/a.bin", "to": "/g.bin" }),
    )
    .await;
    let race = Arc::new(Race {
        reads: Default::default(),
        wanted: 60,
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(6),
        mismatches: Default::default(),
    });

    let mut tasks = tokio::task::JoinSet::new();
    // One client keeps replacing /g.bin with A or B (a copy leaves no version cached)...
    {
        let (files, race) = (files.clone(), race.clone());
        tasks.spawn(async move {
            let mut i = 0;
            while !race.done() {
                let from = if i % 2 == 0 { "/b.bin" } else { "/a.bin" };
                ok(
                    &files,
                    "vfs.copy",
                    json!({ "from": from, "to": "/g.bin", "overwrite": true }),
                )
                .await;
                i += 1;
            }
        });
    }
    // ...while others keep reading it.
    for _ in 0..READERS {
        let client = d.owner().await;
        let (a, b, va, vb, race) = (a.clone(), b.clone(), va.clone(), vb.clone(), race.clone());
        tasks.spawn(async move {
            let files = client.app("files");
            while !race.done() {
                let answer = ok(
                    &files,
                    "vfs.read",
                    json!({ "path": "/g.bin", "length": SIZE, "encoding": "base64" }),
                )
                .await;
                let n = race
                    .reads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                let head = unb64(&answer["data"].as_str().unwrap()[..44]);
                let content = if a.starts_with(&head) {
                    "A"
                } else if b.starts_with(&head) {
                    "B"
                } else {
                    panic!("/g.bin holds neither A nor B")
                };
                let version = if answer["version"] == va {
                    "A"
                } else if answer["version"] == vb {
                    "B"
                } else {
                    panic!(
                        "/g.bin has a version of neither A nor B: {}",
                        shown(&answer)
                    )
                };
                if content != version {
                    race.mismatches.lock().unwrap().push(format!(
                        "read {n} returned the bytes of {content} with the version of {version}"
                    ));
                }
            }
        });
    }
    while let Some(task) = tasks.join_next().await {
        task.expect("a reader or writer panicked");
    }
    let mismatches = race.mismatches.lock().unwrap();
    assert!(
        mismatches.is_empty(),
        "a read answered one content with another's version: {mismatches:?} ({} reads in all)",
        race.reads.load(std::sync::atomic::Ordering::Relaxed)
    );
}
