//! Parsing frames. A `pub` written as clients write it is read by matching its fixed
//! keys, only its payload going through serde_json; the other common frames are read in
//! one pass over a flat struct of every field; anything unusual (a bad frame above all)
//! goes the slow way, which can say exactly what is wrong. One WebSocket message may
//! carry several frames.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::*;
use crate::error::{ErrorBody, ErrorCode};

/// How deep arrays and objects may nest in a client frame, counting the frame itself.
/// Deeper frames are refused, so every payload the daemon passes on stays well within
/// what common JSON parsers accept (serde_json stops at 128).
pub const MAX_NESTING: usize = 100;

/// Does `text` nest arrays and objects deeper than `limit`?
pub fn nests_deeper_than(text: &str, limit: usize) -> bool {
    let bytes = text.as_bytes();
    // Cheap first: with no more brackets than the limit in all, no nesting can pass it.
    if memchr::memchr2_iter(b'[', b'{', bytes).nth(limit).is_none() {
        return false;
    }
    let (mut depth, mut at) = (0usize, 0);
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                // Jump over the string: to its closing quote, stepping over escapes.
                at += 1;
                loop {
                    // A backslash may end the text: never step past its end.
                    match memchr::memchr2(b'"', b'\\', bytes.get(at..).unwrap_or_default()) {
                        Some(found) if bytes[at + found] == b'\\' => at += found + 2,
                        Some(found) => {
                            at += found;
                            break;
                        }
                        None => return false,
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    false
}

fn too_deep(frame: &str) -> FrameError {
    FrameError {
        id: top_level_id(frame),
        msg: format!("the frame nests arrays or objects deeper than {MAX_NESTING} levels"),
    }
}

/// The frame's own `"id": <number>` (a key of the outermost object), read without parsing
/// what is nested: so a frame refused for its depth is still answered by its id.
pub fn top_level_id(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let (mut depth, mut at) = (0usize, 0);
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                let start = at + 1;
                at = start;
                loop {
                    match memchr::memchr2(b'"', b'\\', bytes.get(at..).unwrap_or_default()) {
                        Some(found) if bytes[at + found] == b'\\' => at += found + 2,
                        Some(found) => {
                            at += found;
                            break;
                        }
                        None => return None,
                    }
                }
                let key = &bytes[start..at.min(bytes.len())];
                at += 1;
                if depth == 1 && key == b"id" {
                    let rest = text.get(at..)?.trim_start();
                    if let Some(value) = rest.strip_prefix(':') {
                        let value = value.trim_start();
                        let digits = value.bytes().take_while(u8::is_ascii_digit).count();
                        return value[..digits].parse().ok();
                    }
                }
                continue;
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    None
}

/// Every field of the frames worth a fast path, read in one pass, borrowing strings and
/// the payload from the message.
#[derive(Deserialize)]
struct Flat<'a> {
    // Borrowed strings: one written with escapes fails here and takes the slow path.
    #[serde(borrow, default)]
    t: Option<&'a str>,
    #[serde(default)]
    id: Option<u64>,
    #[serde(borrow, default)]
    app: Option<&'a str>,
    #[serde(borrow, default)]
    topic: Option<&'a str>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    serve: bool,
    #[serde(default)]
    sub: Option<u64>,
    #[serde(borrow, default)]
    to: Option<&'a str>,
    /// A reply with an error goes the slow way; here only its presence counts.
    #[serde(default)]
    error: Option<IgnoredAny>,
}

/// A `pub` frame read in place: its strings and payload borrowed from the message.
#[derive(Debug, Clone, Copy)]
pub struct PubRef<'a> {
    pub id: Option<u64>,
    pub app: &'a str,
    pub topic: &'a str,
    pub data: Option<&'a RawValue>,
}

/// A frame read from a message: a `pub` in place (the common case), or any frame.
#[derive(Debug)]
pub enum Framed<'a> {
    Pub(PubRef<'a>),
    Frame(ClientFrame),
}

impl<'a> Flat<'a> {
    /// The frame, when everything it needs is there (else the slow path explains).
    fn into_framed(self) -> Option<Framed<'a>> {
        let owned = |s: Option<&str>| s.map(str::to_owned);
        // Only the frames that keep their payload copy it (a pub is read in place).
        let data = || self.data.map(RawValue::to_owned);
        Some(Framed::Frame(match self.t? {
            "pub" => {
                return Some(Framed::Pub(PubRef {
                    id: self.id,
                    app: self.app?,
                    topic: self.topic?,
                    data: self.data,
                }));
            }
            "req" => ClientFrame::Req(Request {
                id: self.id?,
                app: owned(self.app)?,
                topic: owned(self.topic)?,
                data: data(),
                timeout_ms: self.timeout_ms,
            }),
            "sub" => ClientFrame::Sub(Sub {
                id: self.id?,
                app: owned(self.app)?,
                topic: owned(self.topic)?,
                serve: self.serve,
            }),
            "unsub" => ClientFrame::Unsub(Unsub {
                id: self.id?,
                sub: self.sub?,
            }),
            "reply" if self.error.is_none() => ClientFrame::Reply(Reply {
                to: owned(self.to)?,
                data: data(),
                error: None,
            }),
            "ping" => ClientFrame::Ping(Ping { id: self.id }),
            _ => return None,
        }))
    }
}

/// One pass over a frame, or None when it needs the slow path.
fn parse_fast(text: &str) -> Option<ClientFrame> {
    let flat: Flat = serde_json::from_str(text).ok()?;
    match flat.into_framed()? {
        Framed::Frame(frame) => Some(frame),
        Framed::Pub(p) => Some(ClientFrame::Pub(Publish {
            id: p.id,
            app: p.app.to_owned(),
            topic: p.topic.to_owned(),
            data: p.data.map(RawValue::to_owned),
        })),
    }
}

/// Call `on_frame` with each frame in one WebSocket message: one frame, or several
/// back to back (separated by whitespace, such as one per line). A frame that cannot be
/// read gets its error and the next one is read; broken JSON ends the message.
pub fn for_each_frame<'a>(text: &'a str, mut on_frame: impl FnMut(Result<Framed<'a>, FrameError>)) {
    let slow = |frame: Result<ClientFrame, FrameError>| frame.map(Framed::Frame);
    if text.trim_start().is_empty() {
        return on_frame(slow(ClientFrame::parse_precisely(text)));
    }
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return;
        }
        if !rest.starts_with('{') {
            return on_frame(slow(ClientFrame::parse_precisely(rest)));
        }
        // Reading a frame never recurses into its payload, so the depth is checked on
        // each frame once its extent is known.
        if let Some((publish, end)) = plain_pub(rest) {
            on_frame(if nests_deeper_than(&rest[..end], MAX_NESTING) {
                Err(too_deep(&rest[..end]))
            } else {
                Ok(Framed::Pub(publish))
            });
            rest = &rest[end..];
            continue;
        }
        let mut frames = serde_json::Deserializer::from_str(rest).into_iter::<Flat>();
        match frames.next() {
            None => return,
            Some(Ok(flat)) => {
                let end = frames.byte_offset();
                let frame = &rest[..end];
                on_frame(if nests_deeper_than(frame, MAX_NESTING) {
                    Err(too_deep(frame))
                } else {
                    match flat.into_framed() {
                        Some(framed) => Ok(framed),
                        None => slow(ClientFrame::parse_precisely(frame)),
                    }
                });
                rest = &rest[end..];
            }
            Some(Err(_)) => {
                // Well-formed JSON of the wrong shape: explain it, then go on after it.
                let mut values = serde_json::Deserializer::from_str(rest).into_iter::<IgnoredAny>();
                let Some(Ok(_)) = values.next() else {
                    return on_frame(slow(ClientFrame::parse(rest)));
                };
                let end = values.byte_offset();
                on_frame(slow(ClientFrame::parse(&rest[..end])));
                rest = &rest[end..];
            }
        }
    }
}

/// A `pub` written the way clients write it, `{"t":"pub","id":N,"app":"…","topic":"…",
/// "data":…}` (`id` optional, no spaces, no escapes in the app or topic), read without
/// the general parser: its payload is still read (and so checked) by serde_json. Returns
/// the frame and where it ends; None for anything else, which the general parser reads.
fn plain_pub(text: &str) -> Option<(PubRef<'_>, usize)> {
    let bytes = text.as_bytes();
    let past = |at: usize, what: &[u8]| {
        bytes
            .get(at..at + what.len())
            .filter(|found| *found == what)
            .map(|_| at + what.len())
    };
    let mut at = past(0, br#"{"t":"pub","#)?;
    let mut id = None;
    if let Some(digits_at) = past(at, br#""id":"#) {
        let digits = bytes[digits_at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        // JSON has no leading zeros; u64 has at most 20 digits (and parse says if it fits).
        if digits == 0 || digits > 20 || (digits > 1 && bytes[digits_at] == b'0') {
            return None;
        }
        id = Some(text[digits_at..digits_at + digits].parse().ok()?);
        at = past(digits_at + digits, b",")?;
    }
    at = past(at, br#""app":""#)?;
    let (app, after) = plain_string(text, at)?;
    at = past(after, br#","topic":""#)?;
    let (topic, after) = plain_string(text, at)?;
    at = past(after, br#","data":"#)?;
    let mut values = serde_json::Deserializer::from_str(&text[at..]).into_iter::<&RawValue>();
    let data = values.next()?.ok()?;
    let end = past(at + values.byte_offset(), b"}")?;
    Some((
        PubRef {
            id,
            app,
            topic,
            data: Some(data),
        },
        end,
    ))
}

/// The string starting at `at` (after its opening quote) if it holds no escape and no
/// control character, and where it ends (after its closing quote).
fn plain_string(text: &str, at: usize) -> Option<(&str, usize)> {
    let len = memchr::memchr(b'"', &text.as_bytes()[at..])?;
    let inner = &text[at..at + len];
    if inner.bytes().any(|b| b == b'\\' || b < 0x20) {
        return None;
    }
    Some((inner, at + len + 1))
}

/// The frame with any raw newline (JSON whitespace; strings cannot hold one) made a
/// space, so that one frame is always one line.
pub fn one_line(data: Data) -> Data {
    // memchr's vector search: every published payload passes here.
    if memchr::memchr(b'\n', data.get().as_bytes()).is_none() {
        return data;
    }
    let text = data.get().replace('\n', " ");
    RawValue::from_string(text).unwrap_or(data)
}

/// A frame that could not be understood. Carries the frame's `id` when it was readable,
/// so the `err` can be matched to the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct FrameError {
    pub id: Option<u64>,
    pub msg: String,
}

impl FrameError {
    pub fn to_err_frame(&self) -> ServerFrame {
        ServerFrame::Err(ErrFrame {
            id: self.id,
            code: ErrorCode::BadFrame,
            msg: self.msg.clone(),
            retry_after_ms: None,
        })
    }
}

/// The tag and id of any frame, read before the frame itself.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    t: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

fn envelope(text: &str) -> Result<(String, Option<u64>), FrameError> {
    let env: Envelope = serde_json::from_str(text).map_err(|e| FrameError {
        id: None,
        msg: format!("not a JSON object: {e}"),
    })?;
    let id = env.id.as_ref().and_then(serde_json::Value::as_u64);
    let t = env.t.ok_or_else(|| FrameError {
        id,
        msg: "missing frame type `t`".into(),
    })?;
    Ok((t.into_owned(), id))
}

fn body<'a, T: Deserialize<'a>>(text: &'a str, t: &str, id: Option<u64>) -> Result<T, FrameError> {
    serde_json::from_str(text).map_err(|e| FrameError {
        id,
        msg: format!("bad `{t}` frame: {e}"),
    })
}

impl ClientFrame {
    /// Parse one frame: the whole text must be that one frame.
    pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
        if nests_deeper_than(text, MAX_NESTING) {
            return Err(too_deep(text));
        }
        if let Some(frame) = parse_fast(text) {
            return Ok(frame);
        }
        Self::parse_precisely(text)
    }

    /// The slow path, in two passes (tag and id, then the body), so that a bad frame's
    /// error names its type, its id and the field at fault.
    fn parse_precisely(text: &str) -> Result<ClientFrame, FrameError> {
        let (t, id) = envelope(text)?;
        Ok(match t.as_str() {
            "hello" => ClientFrame::Hello(body(text, &t, id)?),
            "sub" => ClientFrame::Sub(body(text, &t, id)?),
            "unsub" => ClientFrame::Unsub(body(text, &t, id)?),
            "pub" => ClientFrame::Pub(body(text, &t, id)?),
            "req" => ClientFrame::Req(body(text, &t, id)?),
            "reply" => ClientFrame::Reply(body(text, &t, id)?),
            "ping" => ClientFrame::Ping(body(text, &t, id)?),
            "bye" => ClientFrame::Bye(body(text, &t, id)?),
            other => {
                return Err(FrameError {
                    id,
                    msg: format!("unknown frame type {:?}", truncate(other)),
                });
            }
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("frames always serialize")
    }
}

impl ServerFrame {
    pub fn parse(text: &str) -> Result<ServerFrame, FrameError> {
        let (t, id) = envelope(text)?;
        Ok(match t.as_str() {
            "welcome" => ServerFrame::Welcome(body(text, &t, id)?),
            "ok" => ServerFrame::Ok(body(text, &t, id)?),
            "res" => ServerFrame::Res(body(text, &t, id)?),
            "err" => ServerFrame::Err(body(text, &t, id)?),
            "msg" => ServerFrame::Msg(body(text, &t, id)?),
            "pong" => ServerFrame::Pong(body(text, &t, id)?),
            "bye" => ServerFrame::Bye(body(text, &t, id)?),
            other => {
                return Err(FrameError {
                    id,
                    msg: format!("unknown frame type {:?}", truncate(other)),
                });
            }
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("frames always serialize")
    }

    pub fn err(id: Option<u64>, code: ErrorCode, msg: impl Into<String>) -> ServerFrame {
        ServerFrame::error(id, ErrorBody::new(code, msg))
    }

    /// The `err` frame for an error, keeping all it says.
    pub fn error(id: Option<u64>, error: ErrorBody) -> ServerFrame {
        ServerFrame::Err(ErrFrame {
            id,
            code: error.code,
            msg: error.msg,
            retry_after_ms: error.retry_after_ms,
        })
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the general parser makes of a pub frame, in `plain_pub`'s terms.
    fn general(text: &str) -> Option<(Option<u64>, String, String, String)> {
        let flat: Flat = serde_json::from_str(text).ok()?;
        match flat.into_framed()? {
            Framed::Pub(p) => Some((
                p.id,
                p.app.to_owned(),
                p.topic.to_owned(),
                p.data.map_or("null", RawValue::get).to_owned(),
            )),
            Framed::Frame(_) => None,
        }
    }

    #[test]
    fn plain_pubs_read_as_the_general_parser_reads_them() {
        for text in [
            r#"{"t":"pub","app":"cli","topic":"a.b","data":{"ts":1,"pad":"xx"}}"#,
            r#"{"t":"pub","id":7,"app":"cli","topic":"a.b","data":[1,2,{"k":null}]}"#,
            r#"{"t":"pub","id":0,"app":"cli","topic":"a.b","data":"é \u00e9 \" \\"}"#,
            r#"{"t":"pub","id":18446744073709551615,"app":"x","topic":"y","data":-1.5e3}"#,
            r#"{"t":"pub","app":"cli","topic":"a.b","data":null}"#,
            r#"{"t":"pub","app":"","topic":"","data":true}"#,
            r#"{"t":"pub","app":"cli","topic":"a","data": 1}"#,
        ] {
            let (p, end) = plain_pub(text).unwrap_or_else(|| panic!("not plain: {text}"));
            assert_eq!(end, text.len(), "{text}");
            let plain = (
                p.id,
                p.app.to_owned(),
                p.topic.to_owned(),
                p.data.map_or("null", RawValue::get).to_owned(),
            );
            assert_eq!(Some(plain), general(text), "{text}");
        }
    }

    #[test]
    fn anything_unusual_goes_to_the_general_parser() {
        for text in [
            r#"{"t":"pub","app":"c\"li","topic":"a","data":1}"#,
            r#"{"t":"pub","app":"cli","topic":"a\u002eb","data":1}"#,
            "{\"t\":\"pub\",\"app\":\"cli\",\"topic\":\"a\tb\",\"data\":1}",
            r#"{"t":"pub","id":01,"app":"cli","topic":"a","data":1}"#,
            r#"{"t":"pub","id":-1,"app":"cli","topic":"a","data":1}"#,
            r#"{"t":"pub","id":18446744073709551616,"app":"x","topic":"y","data":1}"#,
            r#"{"t":"pub","app":"cli","topic":"a","data":{"open":1}"#,
            r#"{"t":"pub","app":"cli","topic":"a","data":[1,]}"#,
            r#"{"t":"pub","app":"cli","topic":"a","data":"raw	tab"}"#,
            r#"{"t":"pub","app":"cli","topic":"a","data":1,"data":2}"#,
            r#"{"t":"pub","topic":"a","app":"cli","data":1}"#,
            r#"{"t":"pub","app":"cli","topic":"a","data":tru}"#,
            r#"{"t":"pub","app":"cli","topic":"a","data":1"#,
            r#"{"t":"pub","app":"cli"#,
        ] {
            assert!(plain_pub(text).is_none(), "{text}");
        }
    }

    #[test]
    fn plain_and_general_frames_mix_in_one_message() {
        let text = concat!(
            r#"{"t":"pub","app":"cli","topic":"a","data":1}"#,
            "\n",
            r#"{"t":"ping","id":3}"#,
            r#"{"t":"pub","id":4,"app":"cli","topic":"b","data":{"x":[2]}}"#,
            "\n",
            r#"{"t": "pub", "app": "cli", "topic": "c", "data": 3}"#,
            "\n",
            r#"{"t":"pub","app":"cli","topic":"d","data":{"x":[1,]}}"#,
        );
        let mut seen = Vec::new();
        for_each_frame(text, |frame| {
            seen.push(match frame {
                Ok(Framed::Pub(p)) => format!("pub {} {}", p.topic, p.data.unwrap().get()),
                Ok(Framed::Frame(ClientFrame::Ping(p))) => format!("ping {:?}", p.id),
                Ok(Framed::Frame(other)) => format!("{other:?}"),
                Err(e) => format!("error {}", e.msg),
            })
        });
        assert_eq!(seen.len(), 5, "{seen:?}");
        assert_eq!(
            seen[..4],
            ["pub a 1", "ping Some(3)", "pub b {\"x\":[2]}", "pub c 3"]
        );
        assert!(seen[4].starts_with("error"), "{seen:?}");
    }

    /// Found by fuzzing: a text ending in a backslash inside a string, after more brackets
    /// than the limit, read past the end.
    #[test]
    fn a_trailing_backslash_in_a_string_is_no_panic() {
        let text = format!("{}\"\\", "[]".repeat(MAX_NESTING + 5));
        assert!(!nests_deeper_than(&text, MAX_NESTING));
        assert!(ClientFrame::parse(&text).is_err());
        assert_eq!(top_level_id(r#"{"id\"#), None);
        for_each_frame(&text, |_| {});
    }

    #[test]
    fn a_frame_too_deep_keeps_its_own_id() {
        let deep = format!(
            r#"{{"t":"req","app":"cli","topic":"sys.ping","data":{{"id":3,"x":{}1{}}},"id": 42}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let err = ClientFrame::parse(&deep).unwrap_err();
        assert_eq!(err.id, Some(42), "{}", err.msg);
        assert_eq!(top_level_id(r#"{"t":"x","s":"\"id\": 5","id":7}"#), Some(7));
        assert_eq!(top_level_id(r#"{"t":"id","x":1}"#), None);
    }

    #[test]
    fn a_plain_pub_too_deep_is_refused() {
        let deep = format!(
            r#"{{"t":"pub","app":"cli","topic":"a","data":{}1{}}}"#,
            "[".repeat(MAX_NESTING),
            "]".repeat(MAX_NESTING)
        );
        assert!(plain_pub(&deep).is_some());
        let mut seen = Vec::new();
        for_each_frame(&deep, |frame| seen.push(frame.is_err()));
        assert_eq!(seen, [true]);
    }
}
