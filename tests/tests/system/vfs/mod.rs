//! The VFS service through real clients: files, directories, versions, chunked
//! uploads, events, quotas, and every way a path or a request can be wrong.
//!
//! Each user's root is `<data>/vfs/<user id>/`; tests that plant things on disk
//! (symlinks) find it from the welcome's user id.

mod events;
mod isolation;
mod listing;
mod paths;
mod quota;
mod read_write;
mod requests;
mod tree_ops;
mod uploads;
mod versions;

use std::path::{Path, PathBuf};

use aether_proto::ErrorCode;
use aether_proto::client::{AetherClient, AppHandle, ClientError, Subscription};
use aether_tests::{TestDaemon, next_msg};
use serde_json::{Value, json};

const MIB: usize = 1 << 20;

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
    app.request_json::<_, Value>(topic, &body)
        .await
        .unwrap_or_else(|e| panic!("{topic} {} should succeed, got {e:?}", shown(&body)))
}

/// A VFS request that must be refused with `code`; returns the message.
async fn refused(app: &AppHandle, topic: &str, body: Value, code: ErrorCode) -> String {
    match app.request_json::<_, Value>(topic, &body).await {
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
    app.request_json::<_, Value>("vfs.write", &body).await
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
