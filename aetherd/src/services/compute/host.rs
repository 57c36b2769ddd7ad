//! The `aether` import module: an installed app's program on the bus, as that app for its
//! user. Each call goes through the same permission check (and audit) as a client's frame.
//! Calls block the job's own thread (never a tokio worker) until the answer, the call's
//! timeout, the job's deadline or a kill.
//!
//! ABI (pointers and lengths are i32 offsets into the guest's exported `memory`):
//! - `request(topic, topic_len, data, data_len, timeout_ms) -> n`: n >= 0, the answer's JSON is
//!   n bytes; n < 0, an error `{"code","msg"}` of -n bytes. timeout_ms <= 0: 30 s.
//! - `publish(topic, topic_len, data, data_len) -> n`: 0, or an error of -n bytes.
//! - `subscribe(pattern, pattern_len) -> n`: n > 0 the subscription's id, or an error.
//! - `next(timeout_ms) -> n`: n > 0 a message `{"sub","topic","data"}` of n bytes; 0 none
//!   within the timeout (<= 0: do not wait); or an error.
//! - `result(ptr, len) -> n`: copy the last answer, message or error (at most len bytes).
//!   It stays held until the next call that makes one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use wasmtime::{Caller, Linker};

use aether_proto::api::apps::HOST_MODULE;
use aether_proto::frame::{MAX_NESTING, nests_deeper_than};
use aether_proto::{ErrorBody, ErrorCode, Pattern, Topic};

use crate::services::{Listener, OnBehalf, Requester};

/// The longest topic or pattern, and the largest payload, a guest may send.
const MAX_TOPIC: usize = 256;
const MAX_DATA: usize = 1 << 20;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Publications waiting for `next` (each at most a frame); more are dropped for this guest.
const QUEUE: usize = 64;

/// A job's way onto the bus: only an installed app's program has one.
pub struct GuestBus {
    runtime: tokio::runtime::Handle,
    requester: Requester,
    on: OnBehalf,
    kill: Arc<AtomicBool>,
    pub(super) deadline: Instant,
    listener: Option<Listener>,
}

impl GuestBus {
    pub fn new(requester: Requester, on: OnBehalf, kill: Arc<AtomicBool>) -> GuestBus {
        GuestBus {
            runtime: tokio::runtime::Handle::current(),
            requester,
            on,
            kill,
            deadline: Instant::now() + Duration::from_secs(3600),
            listener: None,
        }
    }

    /// Run `work` to its end, or until `timeout`, the job's deadline or a kill.
    fn wait<T>(
        &self,
        timeout: Duration,
        work: impl Future<Output = Result<T, ErrorBody>>,
    ) -> Result<T, ErrorBody> {
        let until = (Instant::now() + timeout).min(self.deadline);
        let kill = self.kill.clone();
        self.runtime.block_on(async move {
            let killed = async {
                while !kill.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            };
            tokio::select! {
                biased;
                result = work => result,
                () = tokio::time::sleep_until(until.into()) => Err(ErrorBody::new(
                    ErrorCode::Timeout,
                    "no answer in time (or the program's deadline came)",
                )),
                () = killed => Err(ErrorBody::new(ErrorCode::Cancelled, "the program was killed")),
            }
        })
    }
}

/// A store's data that carries a guest's bus: what the `aether` calls work on, generic so
/// that this module need not know the runtime's store type.
pub trait GuestData: Send + 'static {
    /// The app's bus, None for a program run from a file.
    fn bus(&mut self) -> Option<&mut GuestBus>;
    /// The last answer, message or error a call made, for the guest to copy out.
    fn held(&mut self) -> &mut Vec<u8>;
}

fn bad(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadFrame, msg)
}

/// Bytes of the guest's memory, copied out.
fn read<T: GuestData>(
    caller: &mut Caller<'_, T>,
    ptr: i32,
    len: i32,
    max: usize,
) -> Result<Vec<u8>, ErrorBody> {
    let memory = caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| bad("the module exports no memory"))?;
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    if len > max {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!("{len} bytes; at most {max}"),
        ));
    }
    memory
        .data(&caller)
        .get(ptr..ptr.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| bad("a pointer or length outside the program's memory"))
}

/// JSON a guest sent, held to the same nesting limit as any client's frame.
fn json(text: String) -> Result<Box<RawValue>, ErrorBody> {
    if nests_deeper_than(&text, MAX_NESTING) {
        return Err(bad(format!(
            "the data nests deeper than {MAX_NESTING} levels"
        )));
    }
    RawValue::from_string(text).map_err(|e| bad(format!("the data is not JSON: {e}")))
}

fn text<T: GuestData>(
    caller: &mut Caller<'_, T>,
    ptr: i32,
    len: i32,
    max: usize,
) -> Result<String, ErrorBody> {
    String::from_utf8(read(caller, ptr, len, max)?).map_err(|_| bad("not UTF-8"))
}

/// Hold `outcome` for `result`: its length, negative for an error.
fn hold<T: GuestData>(caller: &mut Caller<'_, T>, outcome: Result<Vec<u8>, ErrorBody>) -> i32 {
    let (bytes, sign) = match outcome {
        Ok(bytes) => (bytes, 1),
        Err(e) => (serde_json::to_vec(&e).unwrap_or_default(), -1),
    };
    let n = bytes.len().min(i32::MAX as usize) as i32;
    *caller.data_mut().held() = bytes;
    sign * n
}

/// The guest's bus, or why it has none.
fn bus<'a, T: GuestData>(caller: &'a mut Caller<'_, T>) -> Result<&'a mut GuestBus, ErrorBody> {
    caller.data_mut().bus().ok_or_else(|| {
        ErrorBody::new(
            ErrorCode::Forbidden,
            "only an installed app's program reaches the bus; this one was run from a file",
        )
    })
}

fn request<T: GuestData>(
    caller: &mut Caller<'_, T>,
    (topic, topic_len, data, data_len, timeout_ms): (i32, i32, i32, i32, i32),
) -> Result<Vec<u8>, ErrorBody> {
    let topic = text(caller, topic, topic_len, MAX_TOPIC)?;
    let topic =
        Topic::parse(&topic).map_err(|e| ErrorBody::new(ErrorCode::BadTopic, e.to_string()))?;
    let data = text(caller, data, data_len, MAX_DATA)?;
    let data = json(match data.trim() {
        "" => "null".into(),
        _ => data,
    })?;
    let bus = bus(caller)?;
    // Never past the program's deadline: the request ends when the program must.
    let timeout = match timeout_ms {
        ..=0 => DEFAULT_TIMEOUT,
        ms => Duration::from_millis(ms as u64),
    }
    .min(bus.deadline.saturating_duration_since(Instant::now()));
    let (requester, on) = (bus.requester.clone(), bus.on.clone());
    let answer = bus.wait(timeout, async move {
        requester.request_as_raw(&on, &topic, data, timeout).await
    })?;
    Ok(answer.get().as_bytes().to_vec())
}

fn publish<T: GuestData>(
    caller: &mut Caller<'_, T>,
    (topic, topic_len, data, data_len): (i32, i32, i32, i32),
) -> Result<(), ErrorBody> {
    let topic = text(caller, topic, topic_len, MAX_TOPIC)?;
    let topic =
        Topic::parse(&topic).map_err(|e| ErrorBody::new(ErrorCode::BadTopic, e.to_string()))?;
    let data = json(text(caller, data, data_len, MAX_DATA)?)?;
    let bus = bus(caller)?;
    bus.requester.publish_as(&bus.on, &topic, data)?;
    Ok(())
}

fn subscribe<T: GuestData>(
    caller: &mut Caller<'_, T>,
    pattern: i32,
    len: i32,
) -> Result<u64, ErrorBody> {
    let pattern = text(caller, pattern, len, MAX_TOPIC)?;
    let pattern =
        Pattern::parse(&pattern).map_err(|e| ErrorBody::new(ErrorCode::BadTopic, e.to_string()))?;
    let bus = bus(caller)?;
    let listener = match &mut bus.listener {
        Some(listener) => listener,
        none => none.insert(bus.requester.listener(&bus.on, QUEUE)),
    };
    listener.subscribe(&pattern)
}

fn next<T: GuestData>(
    caller: &mut Caller<'_, T>,
    timeout_ms: i32,
) -> Result<Option<Vec<u8>>, ErrorBody> {
    let bus = bus(caller)?;
    let mut listener = bus
        .listener
        .take()
        .ok_or_else(|| ErrorBody::new(ErrorCode::NotFound, "subscribe to something first"))?;
    let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
    let got = bus.wait(timeout, async { Ok(listener.next().await) });
    bus.listener = Some(listener);
    let message = match got {
        Ok(Some(message)) => message,
        Ok(None) => return Err(ErrorBody::new(ErrorCode::Unavailable, "the bus is gone")),
        Err(e) if e.code == ErrorCode::Timeout => return Ok(None),
        Err(e) => return Err(e),
    };
    let (sub, topic, data) = message;
    let json = format!(
        "{{\"sub\":{sub},\"topic\":{},\"data\":{}}}",
        serde_json::to_string(topic.as_str()).unwrap_or_default(),
        data.get()
    );
    Ok(Some(json.into_bytes()))
}

fn copy_result<T: GuestData>(
    caller: &mut Caller<'_, T>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<i32> {
    let held = std::mem::take(&mut *caller.data_mut().held());
    let memory = caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| wasmtime::Error::msg("the module exports no memory"))?;
    let n = held.len().min(len.max(0) as usize);
    let ptr = ptr as u32 as usize;
    let copied = memory
        .data_mut(&mut *caller)
        .get_mut(ptr..ptr.saturating_add(n))
        .map(|dest| dest.copy_from_slice(&held[..n]))
        .is_some();
    *caller.data_mut().held() = held;
    Ok(if copied { n as i32 } else { -1 })
}

pub fn add_to_linker<T: GuestData>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        "request",
        |mut caller: Caller<'_, T>, a: i32, b: i32, c: i32, d: i32, e: i32| -> i32 {
            let outcome = request(&mut caller, (a, b, c, d, e));
            hold(&mut caller, outcome)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "publish",
        |mut caller: Caller<'_, T>, a: i32, b: i32, c: i32, d: i32| -> i32 {
            match publish(&mut caller, (a, b, c, d)) {
                Ok(()) => 0,
                Err(e) => hold(&mut caller, Err(e)),
            }
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "subscribe",
        |mut caller: Caller<'_, T>, ptr: i32, len: i32| -> i32 {
            match subscribe(&mut caller, ptr, len) {
                Ok(sub) => sub as i32,
                Err(e) => hold(&mut caller, Err(e)),
            }
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "next",
        |mut caller: Caller<'_, T>, timeout_ms: i32| -> i32 {
            match next(&mut caller, timeout_ms) {
                Ok(Some(message)) => hold(&mut caller, Ok(message)),
                Ok(None) => 0,
                Err(e) => hold(&mut caller, Err(e)),
            }
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        "result",
        |mut caller: Caller<'_, T>, ptr: i32, len: i32| copy_result(&mut caller, ptr, len),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_protocol_doc_says_how_many_messages_wait() {
        let doc = include_str!("../../../../docs/protocol.md");
        assert!(
            doc.contains(&format!("at most {} wait", super::QUEUE)),
            "docs/protocol.md must give the guest queue's size ({})",
            super::QUEUE
        );
    }
}
