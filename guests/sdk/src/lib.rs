//! # aether-sdk: the guest side of Aether's host interface
//!
//! A WASI program that `aetherd` runs for an app may use the bus as that app: each request is
//! checked against the app's manifest and the user's grants, as if the app had sent it over
//! its own connection. This crate is a safe Rust face for that interface, and the reference
//! for its ABI.
//!
//! ## ABI: import module `"aether"`
//!
//! Pointers and lengths are `i32` offsets and sizes in the guest's linear memory; payloads
//! are UTF-8 JSON. A call does not hand its payload over directly: the host holds it and the
//! guest copies it out with `result` (do so before the next call).
//!
//! | import | returns |
//! |---|---|
//! | `request(topic_ptr, topic_len, data_ptr, data_len, timeout_ms) -> i32` | `n >= 0`: the answer, `n` bytes, is held; `n < 0`: an error of `-n` bytes is held. `timeout_ms <= 0` means the default, 30 s |
//! | `publish(topic_ptr, topic_len, data_ptr, data_len) -> i32` | `0`: published; `n < 0`: an error of `-n` bytes is held |
//! | `subscribe(pattern_ptr, pattern_len) -> i32` | `n > 0`: a subscription id; `n < 0`: an error of `-n` bytes is held |
//! | `next(timeout_ms) -> i32` | `n > 0`: a message `{"sub":ID,"topic":"...","data":<json>}` of `n` bytes is held; `0`: nothing arrived in time; `n < 0`: an error of `-n` bytes is held |
//! | `result(ptr, len) -> i32` | copies the held payload (at most `len` bytes) to `ptr`; the number of bytes copied |
//!
//! An error is `{"code":"forbidden","msg":"..."}`: a protocol error code (`forbidden`,
//! `not_found`, `timeout`, `unavailable`, ...) and a message for people. Errors this crate
//! makes itself use `unavailable` (not running inside Aether), `bad_answer` (an answer that
//! is not the JSON expected) and `not_text` ([`read_text`] of a file that is not UTF-8).
//!
//! ## Example
//!
//! ```no_run
//! let text = aether_sdk::read_text("/notes.txt")?;
//! let answer = aether_sdk::request("ai.generate", &serde_json::json!({
//!     "prompt": format!("Summarize:\n{text}"),
//!     "stream": false,
//! }))?;
//! println!("{}", answer["text"].as_str().unwrap_or_default());
//! # Ok::<(), aether_sdk::Error>(())
//! ```
//!
//! Outside Aether (any target but wasm32) the crate still compiles, and every call fails
//! with `unavailable`.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A failed call: the bus's error, or one this crate made.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Error {
    /// `forbidden`, `not_found`, `timeout`, `unavailable`, ...
    pub code: String,
    /// For people.
    pub msg: String,
}

impl Error {
    pub fn new(code: impl Into<String>, msg: impl Into<String>) -> Error {
        Error {
            code: code.into(),
            msg: msg.into(),
        }
    }

    /// Does this error have `code`?
    pub fn is(&self, code: &str) -> bool {
        self.code == code
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.msg)
    }
}

impl std::error::Error for Error {}

/// A message on one of the program's subscriptions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Message {
    /// The id [`subscribe`] returned.
    pub sub: u32,
    pub topic: String,
    pub data: Value,
}

/// A bus request with the default timeout (30 s); the answer's JSON.
pub fn request(topic: &str, data: &Value) -> Result<Value, Error> {
    call_request(topic, data, 0)
}

/// A bus request that waits at most `timeout` (rounded up to whole milliseconds; zero means
/// the default, 30 s).
pub fn request_with_timeout(topic: &str, data: &Value, timeout: Duration) -> Result<Value, Error> {
    call_request(topic, data, millis(timeout))
}

/// A bus request whose answer is read as a `T`; an answer that is not one is `bad_answer`.
pub fn request_as<T: DeserializeOwned>(topic: &str, data: &Value) -> Result<T, Error> {
    let answer = request(topic, data)?;
    T::deserialize(answer)
        .map_err(|e| Error::new("bad_answer", format!("{topic}: unexpected answer: {e}")))
}

/// Publish an event on `topic`.
pub fn publish(topic: &str, data: &Value) -> Result<(), Error> {
    status(host::publish(topic.as_bytes(), &encode(data)))?;
    Ok(())
}

/// Subscribe to a topic pattern; messages arrive through [`next`]. The subscription's id.
pub fn subscribe(pattern: &str) -> Result<u32, Error> {
    match status(host::subscribe(pattern.as_bytes()))? {
        0 => Err(Error::new(
            "bad_answer",
            "subscribe: the host gave no subscription id",
        )),
        id => Ok(id),
    }
}

/// The next message on any of the program's subscriptions, waiting at most `timeout`
/// (zero: only what is already there); `None` when nothing arrived in time.
pub fn next(timeout: Duration) -> Result<Option<Message>, Error> {
    match status(host::next(millis(timeout)))? {
        0 => Ok(None),
        len => held_json(len, "next").map(Some),
    }
}

/// A whole text file, read through the bus (`vfs.read`) one answer at a time. A file that
/// is not UTF-8 is `not_text`; a file that changes while it is read is `conflict`.
pub fn read_text(path: &str) -> Result<String, Error> {
    let mut bytes: Vec<u8> = Vec::new();
    // How much of `bytes` is known to be valid UTF-8, and the version the first answer saw.
    let mut checked = 0;
    let mut version: Option<String> = None;
    loop {
        let offset = bytes.len() as u64;
        let chunk = match read_chunk(path, offset, version.as_deref(), false) {
            Ok(chunk) => chunk,
            // An answer's bytes must be UTF-8 on their own; a character may straddle its end,
            // so get the same bytes as base64 and judge the whole.
            Err(e) if e.is("bad_frame") => read_chunk(path, offset, version.as_deref(), true)?,
            Err(e) => return Err(e),
        };
        if chunk.bytes.is_empty() && !chunk.eof {
            return Err(Error::new(
                "bad_answer",
                format!("{path}: vfs.read gave nothing before the end of the file"),
            ));
        }
        bytes.extend_from_slice(&chunk.bytes);
        match std::str::from_utf8(&bytes[checked..]) {
            Ok(_) => checked = bytes.len(),
            // A character that the next answer completes.
            Err(e) if e.error_len().is_none() && !chunk.eof => checked += e.valid_up_to(),
            Err(_) => return Err(Error::new("not_text", format!("{path} is not UTF-8 text"))),
        }
        if chunk.eof {
            break;
        }
        version.get_or_insert(chunk.version);
    }
    String::from_utf8(bytes)
        .map_err(|_| Error::new("not_text", format!("{path} is not UTF-8 text")))
}

/// Write `text` to `path` through the bus (`vfs.write`), replacing it and making its
/// folders as needed.
pub fn write_text(path: &str, text: &str) -> Result<(), Error> {
    request(
        "vfs.write",
        &json!({ "path": path, "data": text, "encoding": "utf8", "parents": true }),
    )?;
    Ok(())
}

/// A folder's listing (`vfs.list`) as the daemon answers it:
/// `{"path": ..., "entries": [{"name", "kind": "file"|"dir"|..., "size", "modified_ms"}]}`.
pub fn list(path: &str) -> Result<Value, Error> {
    request("vfs.list", &json!({ "path": path }))
}

// ---- plumbing ----

struct Chunk {
    bytes: Vec<u8>,
    eof: bool,
    version: String,
}

fn read_chunk(
    path: &str,
    offset: u64,
    version: Option<&str>,
    base64: bool,
) -> Result<Chunk, Error> {
    #[derive(Deserialize)]
    struct Answer {
        data: String,
        eof: bool,
        version: String,
    }
    let encoding = if base64 { "base64" } else { "utf8" };
    let mut req = json!({ "path": path, "encoding": encoding });
    if offset > 0 {
        req["offset"] = json!(offset);
    }
    if let Some(version) = version {
        req["if_version"] = json!(version);
    }
    let answer: Answer = request_as("vfs.read", &req)?;
    let bytes = if base64 {
        decode_base64(&answer.data).ok_or_else(|| {
            Error::new(
                "bad_answer",
                format!("{path}: vfs.read sent invalid base64"),
            )
        })?
    } else {
        answer.data.into_bytes()
    };
    Ok(Chunk {
        bytes,
        eof: answer.eof,
        version: answer.version,
    })
}

/// Standard base64 (padding optional); None when `text` is not base64.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn call_request(topic: &str, data: &Value, timeout_ms: i32) -> Result<Value, Error> {
    let len = status(host::request(topic.as_bytes(), &encode(data), timeout_ms))?;
    held_json(len, topic)
}

fn encode(data: &Value) -> Vec<u8> {
    // A Value always serializes (its map keys are strings).
    serde_json::to_vec(data).unwrap_or_else(|_| b"null".to_vec())
}

/// Milliseconds for the host, rounded up so a short timeout does not become zero.
fn millis(timeout: Duration) -> i32 {
    i32::try_from(timeout.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
}

/// A call's return value: `Ok(n)` for `n >= 0`, else the error the host holds.
fn status(n: i32) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| {
        let bytes = held(n.unsigned_abs());
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            Error::new(
                "bad_answer",
                format!(
                    "the host's error is not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                ),
            )
        })
    })
}

/// The held payload of `len` bytes, parsed; `what` names the call in errors.
fn held_json<T: DeserializeOwned>(len: u32, what: &str) -> Result<T, Error> {
    let bytes = held(len);
    let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
    serde_json::from_slice(bytes)
        .map_err(|e| Error::new("bad_answer", format!("{what}: the host's answer: {e}")))
}

/// Copy the payload the host holds (`len` bytes) out of it.
fn held(len: u32) -> Vec<u8> {
    let mut buf = vec![0; len as usize];
    let copied = host::result(&mut buf);
    buf.truncate(copied);
    buf
}

/// The host calls on byte slices, each returning the import's raw `i32`.
#[cfg(target_arch = "wasm32")]
mod host {
    /// The imports `aetherd` links into the module (see the crate docs for the ABI).
    ///
    /// These are the crate's only unsafe code. The contract: each `(ptr, len)` pair names
    /// `len` bytes of this module's memory that the host may read (topic, data, pattern) or,
    /// for `result`, write during the call; the host keeps no pointer after it returns.
    mod ffi {
        #[link(wasm_import_module = "aether")]
        unsafe extern "C" {
            pub fn request(
                topic_ptr: *const u8,
                topic_len: i32,
                data_ptr: *const u8,
                data_len: i32,
                timeout_ms: i32,
            ) -> i32;
            pub fn publish(
                topic_ptr: *const u8,
                topic_len: i32,
                data_ptr: *const u8,
                data_len: i32,
            ) -> i32;
            pub fn subscribe(pattern_ptr: *const u8, pattern_len: i32) -> i32;
            pub fn next(timeout_ms: i32) -> i32;
            pub fn result(ptr: *mut u8, len: i32) -> i32;
        }
    }

    /// A slice's length as the ABI's i32: lossless on wasm32, where no object exceeds
    /// `isize::MAX` bytes.
    fn len(bytes: &[u8]) -> i32 {
        bytes.len() as i32
    }

    pub fn request(topic: &[u8], data: &[u8], timeout_ms: i32) -> i32 {
        // SAFETY: both slices are live and readable for the whole call (see `ffi`).
        unsafe {
            ffi::request(
                topic.as_ptr(),
                len(topic),
                data.as_ptr(),
                len(data),
                timeout_ms,
            )
        }
    }

    pub fn publish(topic: &[u8], data: &[u8]) -> i32 {
        // SAFETY: both slices are live and readable for the whole call.
        unsafe { ffi::publish(topic.as_ptr(), len(topic), data.as_ptr(), len(data)) }
    }

    pub fn subscribe(pattern: &[u8]) -> i32 {
        // SAFETY: the slice is live and readable for the whole call.
        unsafe { ffi::subscribe(pattern.as_ptr(), len(pattern)) }
    }

    pub fn next(timeout_ms: i32) -> i32 {
        // SAFETY: no memory changes hands.
        unsafe { ffi::next(timeout_ms) }
    }

    /// Copy the held payload into `buf`; how many bytes were copied.
    pub fn result(buf: &mut [u8]) -> usize {
        // SAFETY: `buf` is live and exclusively ours; the host writes at most `buf.len()`
        // bytes into it.
        let copied = unsafe { ffi::result(buf.as_mut_ptr(), len(buf)) };
        usize::try_from(copied).unwrap_or(0).min(buf.len())
    }
}

/// Outside Aether there is no host: every call fails with `unavailable`.
#[cfg(not(target_arch = "wasm32"))]
mod host {
    const OUTSIDE: &[u8] = br#"{"code":"unavailable","msg":"only inside Aether: this program needs the daemon's host interface (wasm32)"}"#;

    fn fail() -> i32 {
        -(OUTSIDE.len() as i32)
    }

    pub fn request(_topic: &[u8], _data: &[u8], _timeout_ms: i32) -> i32 {
        fail()
    }

    pub fn publish(_topic: &[u8], _data: &[u8]) -> i32 {
        fail()
    }

    pub fn subscribe(_pattern: &[u8]) -> i32 {
        fail()
    }

    pub fn next(_timeout_ms: i32) -> i32 {
        fail()
    }

    pub fn result(buf: &mut [u8]) -> usize {
        let n = buf.len().min(OUTSIDE.len());
        buf[..n].copy_from_slice(&OUTSIDE[..n]);
        n
    }
}
