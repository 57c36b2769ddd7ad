//! Wire frames: one JSON object per WebSocket text message, tagged by `t`.
//!
//! Payloads (`data`) are kept as raw JSON ([`RawValue`]) so that the daemon
//! forwards them without parsing or re-encoding them. Parsing is in `parse.rs`.

mod parse;

pub use parse::{
    FrameError, Framed, MAX_NESTING, PubRef, for_each_frame, nests_deeper_than, one_line,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{ErrorBody, ErrorCode};

/// The protocol version spoken in `hello` and `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// A JSON payload carried verbatim.
pub type Data = Box<RawValue>;

/// Turn any serializable value into a payload.
pub fn to_data<T: Serialize + ?Sized>(value: &T) -> Data {
    // Serializing plain data (no maps with non-string keys) cannot fail.
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| null_data())
}

/// The JSON `null` payload.
pub fn null_data() -> Data {
    RawValue::from_string("null".to_owned()).expect("null is valid JSON")
}

// ---------------------------------------------------------------- client → daemon

/// Frames a client sends.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ClientFrame {
    Hello(Hello),
    Sub(Sub),
    Unsub(Unsub),
    Pub(Publish),
    Req(Request),
    Reply(Reply),
    Ping(Ping),
    Bye(ClientBye),
}

/// The first frame on every connection.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Hello {
    /// Protocol version; must be [`PROTOCOL_VERSION`].
    pub v: u32,
    #[serde(default)]
    pub auth: Auth,
    /// Free-form client name and version, for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The client reads several frames from one WebSocket message, one frame per line.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
}

/// How a connection proves who it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Auth {
    /// Sign in as the local owner by the peer credentials of the Unix socket.
    #[default]
    Local,
    /// A token from `sys.token.create` (user token or app-bound token).
    Token {
        token: String,
    },
    Password {
        user: String,
        password: String,
    },
    /// Anonymous trial user, when the daemon allows guests.
    Guest,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Sub {
    /// Chosen by the client; `msg` frames name it in `sub`.
    pub id: u64,
    pub app: String,
    /// A pattern: `*` matches one token, `>` the rest.
    pub topic: String,
    /// Serve requests on this pattern instead of listening to publications.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub serve: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Unsub {
    pub id: u64,
    /// The `id` of the `sub` to cancel.
    pub sub: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Publish {
    /// If set, the daemon acknowledges with `ok` (or `err`) carrying this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub app: String,
    pub topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub data: Option<Data>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Request {
    pub id: u64,
    pub app: String,
    pub topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub data: Option<Data>,
    /// Give up after this long; the daemon caps it with its own limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// A responder's answer to a request it received as a `msg` with `reply`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Reply {
    /// The `reply` field of the request's `msg`.
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub data: Option<Data>,
    /// Set to answer with an error instead of data. A code outside the closed set still
    /// answers the requester (as `internal`, naming the code), never leaves it waiting.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::error::lenient"
    )]
    pub error: Option<ErrorBody>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Ping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ClientBye {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

// ---------------------------------------------------------------- daemon → client

/// Frames the daemon sends.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome(Welcome),
    Ok(Ack),
    Res(Response),
    Err(ErrFrame),
    Msg(Msg),
    Pong(Pong),
    Bye(Bye),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Welcome {
    pub v: u32,
    pub user: UserInfo,
    /// Identifies this connection in logs.
    pub session: String,
    /// Set when the token is bound to one app: every frame must name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    pub limits: ConnectionLimits,
    /// The daemon may send several frames in one WebSocket message, one per line
    /// (when the hello asked for it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserInfo {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub guest: bool,
}

/// Limits that apply to this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionLimits {
    pub max_frame_bytes: usize,
    pub max_subscriptions: usize,
    pub max_pending_requests: usize,
    pub max_request_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Ack {
    pub id: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Response {
    pub id: u64,
    #[schemars(with = "serde_json::Value")]
    pub data: Data,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrFrame {
    /// The id of the frame at fault, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub code: ErrorCode,
    pub msg: String,
    /// With `rate_limited`: when trying again may succeed, in milliseconds from now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl From<ErrFrame> for ErrorBody {
    fn from(frame: ErrFrame) -> ErrorBody {
        ErrorBody {
            code: frame.code,
            msg: frame.msg,
            retry_after_ms: frame.retry_after_ms,
        }
    }
}

/// A delivery: a publication on a subscribed pattern, or a request to serve.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Msg {
    pub sub: u64,
    pub topic: String,
    pub from: Sender,
    /// Present on requests: answer with a `reply` frame whose `to` is this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    #[schemars(with = "serde_json::Value")]
    pub data: Data,
}

/// Who sent a message, as the daemon knows it (never as the sender claims).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Sender {
    pub user: String,
    pub app: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Pong {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Bye {
    pub reason: ByeReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
}

/// Why the daemon closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ByeReason {
    /// The client did not read fast enough; its queue filled up.
    SlowConsumer,
    Shutdown,
    AuthExpired,
    /// The hello was missing, late or refused.
    Unauthenticated,
    /// A frame was over the size limit.
    TooLarge,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(s: &str) -> Option<Data> {
        Some(RawValue::from_string(s.to_owned()).unwrap())
    }

    fn client_round_trip(frame: ClientFrame) {
        let json = frame.to_json();
        let back = ClientFrame::parse(&json).unwrap();
        assert_eq!(back.to_json(), json, "round trip of {json}");
    }

    fn server_round_trip(frame: ServerFrame) {
        let json = frame.to_json();
        let back = ServerFrame::parse(&json).unwrap();
        assert_eq!(back.to_json(), json, "round trip of {json}");
    }

    #[test]
    fn every_client_frame_round_trips() {
        client_round_trip(ClientFrame::Hello(Hello {
            v: 1,
            auth: Auth::Token {
                token: "abc".into(),
            },
            client: Some("aether/0.1".into()),
            batch: true,
        }));
        client_round_trip(ClientFrame::Hello(Hello {
            v: 1,
            auth: Auth::Password {
                user: "ana".into(),
                password: "pw".into(),
            },
            client: None,
            batch: false,
        }));
        client_round_trip(ClientFrame::Hello(Hello {
            v: 1,
            auth: Auth::Guest,
            client: None,
            batch: false,
        }));
        client_round_trip(ClientFrame::Hello(Hello {
            v: 1,
            auth: Auth::Local,
            client: None,
            batch: false,
        }));
        client_round_trip(ClientFrame::Sub(Sub {
            id: 7,
            app: "files".into(),
            topic: "vfs.events.>".into(),
            serve: false,
        }));
        client_round_trip(ClientFrame::Sub(Sub {
            id: 8,
            app: "files".into(),
            topic: "app.files.echo".into(),
            serve: true,
        }));
        client_round_trip(ClientFrame::Unsub(Unsub { id: 9, sub: 7 }));
        client_round_trip(ClientFrame::Pub(Publish {
            id: None,
            app: "chat".into(),
            topic: "chat.room.general.post".into(),
            data: data(r#"{"text":"hi"}"#),
        }));
        client_round_trip(ClientFrame::Req(Request {
            id: 10,
            app: "files".into(),
            topic: "vfs.read".into(),
            data: data(r#"{"path":"/notes.md"}"#),
            timeout_ms: Some(5000),
        }));
        client_round_trip(ClientFrame::Reply(Reply {
            to: "r1".into(),
            data: data("[1,2]"),
            error: None,
        }));
        client_round_trip(ClientFrame::Reply(Reply {
            to: "r2".into(),
            data: None,
            error: Some(ErrorBody::new(ErrorCode::NotFound, "nope")),
        }));
        client_round_trip(ClientFrame::Ping(Ping { id: Some(3) }));
        client_round_trip(ClientFrame::Bye(ClientBye {
            reason: Some("done".into()),
        }));
    }

    #[test]
    fn every_server_frame_round_trips() {
        server_round_trip(ServerFrame::Welcome(Welcome {
            v: 1,
            user: UserInfo {
                id: 1,
                name: "ana".into(),
                admin: true,
                guest: false,
            },
            session: "s1".into(),
            app: Some("files".into()),
            limits: ConnectionLimits {
                max_frame_bytes: 1 << 20,
                max_subscriptions: 10_000,
                max_pending_requests: 1024,
                max_request_timeout_ms: 60_000,
            },
            batch: true,
        }));
        server_round_trip(ServerFrame::Ok(Ack { id: 7 }));
        server_round_trip(ServerFrame::Res(Response {
            id: 9,
            data: data(r#"{"ok":true}"#).unwrap(),
        }));
        server_round_trip(ServerFrame::err(Some(9), ErrorCode::Forbidden, "no"));
        server_round_trip(ServerFrame::err(None, ErrorCode::BadFrame, "?"));
        server_round_trip(ServerFrame::Msg(Msg {
            sub: 7,
            topic: "vfs.events.written".into(),
            from: Sender {
                user: "ana".into(),
                app: "editor".into(),
            },
            reply: Some("r1".into()),
            data: data(r#"{"path":"/a"}"#).unwrap(),
        }));
        server_round_trip(ServerFrame::Pong(Pong { id: Some(1) }));
        server_round_trip(ServerFrame::Bye(Bye {
            reason: ByeReason::SlowConsumer,
            msg: None,
        }));
    }

    #[test]
    fn bad_frames_say_why_and_keep_the_id() {
        assert!(
            ClientFrame::parse("hello")
                .unwrap_err()
                .msg
                .contains("not a JSON object")
        );
        assert!(ClientFrame::parse("[1,2]").is_err());
        let e = ClientFrame::parse(r#"{"id":4}"#).unwrap_err();
        assert_eq!(e.id, Some(4));
        assert!(e.msg.contains("missing frame type"));
        let e = ClientFrame::parse(r#"{"t":"dance","id":5}"#).unwrap_err();
        assert_eq!(e.id, Some(5));
        assert!(e.msg.contains("unknown frame type"));
        let e = ClientFrame::parse(r#"{"t":"sub","id":6,"topic":"a"}"#).unwrap_err();
        assert_eq!(e.id, Some(6));
        assert!(e.msg.contains("app"), "{}", e.msg);
        let e = ClientFrame::parse(r#"{"t":"req","id":"x","app":"a","topic":"a"}"#).unwrap_err();
        assert_eq!(e.id, None);
        assert!(e.msg.contains("bad `req` frame"));
        let e = ClientFrame::parse(r#"{"t":5}"#).unwrap_err();
        assert!(e.msg.contains("not a JSON object") || e.msg.contains("invalid type"));
    }

    #[test]
    fn unknown_fields_are_ignored_for_forward_compatibility() {
        let f = ClientFrame::parse(r#"{"t":"ping","id":1,"future":true}"#).unwrap();
        assert!(matches!(f, ClientFrame::Ping(Ping { id: Some(1) })));
    }

    #[test]
    fn nesting_is_limited_and_strings_do_not_count() {
        let nested = |depth: usize| {
            let data = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            format!(r#"{{"t":"pub","app":"a","topic":"b","data":{data}}}"#)
        };
        assert!(ClientFrame::parse(&nested(MAX_NESTING - 1)).is_ok());
        let e = ClientFrame::parse(&nested(MAX_NESTING)).unwrap_err();
        assert!(e.msg.contains("deeper than 100"), "{}", e.msg);
        assert!(ClientFrame::parse(&nested(100_000)).is_err());
        // What the daemon lets through, a client parses.
        let accepted = nested(MAX_NESTING - 1);
        assert!(serde_json::from_str::<serde_json::Value>(&accepted).is_ok());
        // Brackets inside strings (escaped quotes too) are text, not nesting.
        let text = format!(r#"{{"t":"ping","note":"\"{}"}}"#, "[".repeat(500));
        assert!(!nests_deeper_than(&text, MAX_NESTING));
        assert!(ClientFrame::parse(&text).is_ok());
    }

    #[test]
    fn one_message_may_carry_several_frames_and_a_bad_one_spoils_only_itself() {
        let text = "{\"t\":\"ping\",\"id\":1}\n{\"t\":\"dance\",\"id\":2}\n  {\"t\":\"pub\",\"app\":\"a\",\"topic\":\"b\",\n\"data\":{\"x\":\n1}} {\"t\":\"ping\",\"id\":3}";
        let mut seen = vec![];
        for_each_frame(text, |frame| seen.push(frame));
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(matches!(
            seen[0],
            Ok(Framed::Frame(ClientFrame::Ping(Ping { id: Some(1) })))
        ));
        assert_eq!(seen[1].as_ref().unwrap_err().id, Some(2));
        let Ok(Framed::Pub(p)) = &seen[2] else {
            panic!("{seen:?}")
        };
        assert_eq!((p.app, p.topic), ("a", "b"));
        assert_eq!(one_line(p.data.unwrap().to_owned()).get(), "{\"x\": 1}");
        assert!(matches!(
            seen[3],
            Ok(Framed::Frame(ClientFrame::Ping(Ping { id: Some(3) })))
        ));

        // A topic written with escapes still reads, by the owned way.
        let mut seen = vec![];
        let escaped = r#"{"t":"pub","app":"a","topic":"\u0062"}"#;
        for_each_frame(escaped, |frame| seen.push(frame));
        let Ok(Framed::Frame(ClientFrame::Pub(p))) = &seen[0] else {
            panic!("{seen:?}")
        };
        assert_eq!(p.topic, "b");

        // Broken JSON ends the message; an empty one is one error.
        let mut seen = vec![];
        for_each_frame("{\"t\":\"ping\"} {\"t\": oops", |frame| seen.push(frame));
        assert_eq!(seen.len(), 2);
        assert!(seen[0].is_ok() && seen[1].is_err());
        let mut seen = vec![];
        for_each_frame("  ", |frame| seen.push(frame));
        assert_eq!(seen.len(), 1);
        assert!(
            seen[0]
                .as_ref()
                .unwrap_err()
                .msg
                .contains("not a JSON object")
        );
        let mut seen = vec![];
        for_each_frame("[1,2]", |frame| seen.push(frame));
        assert!(
            seen[0].is_err(),
            "an array is not a frame, whatever it holds"
        );

        // A reply with an error, and one without, both arrive whole.
        let mut seen = vec![];
        let replies = r#"{"t":"reply","to":"7","error":{"code":"not_found","msg":"no"}} {"t":"reply","to":"8","data":1}"#;
        for_each_frame(replies, |frame| seen.push(frame));
        let Ok(Framed::Frame(ClientFrame::Reply(first))) = &seen[0] else {
            panic!("{seen:?}")
        };
        assert_eq!(first.error.as_ref().unwrap().code, ErrorCode::NotFound);
        let Ok(Framed::Frame(ClientFrame::Reply(second))) = &seen[1] else {
            panic!("{seen:?}")
        };
        assert_eq!(second.data.as_ref().unwrap().get(), "1");
    }

    #[test]
    fn payloads_are_carried_verbatim() {
        let f =
            ClientFrame::parse(r#"{"t":"pub","app":"a","topic":"b","data":{"z":1,"a":[1, 2]}}"#)
                .unwrap();
        let ClientFrame::Pub(p) = f else { panic!() };
        assert_eq!(p.data.unwrap().get(), r#"{"z":1,"a":[1, 2]}"#);
    }
}
