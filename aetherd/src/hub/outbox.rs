//! Per-connection bounded queues and the shared encoding of a published message.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use aether_proto::Topic;
use aether_proto::frame::Data;

use crate::identity::Caller;

pub type ConnId = u64;

/// A published message, shared by every delivery of it.
pub struct Envelope {
    pub topic: Topic,
    pub caller: Arc<Caller>,
    pub app: Arc<str>,
    pub data: Data,
    /// The telemetry rule whose action caused this message, if any. Events a
    /// request leads to carry it on, so a rule never fires on its own output.
    pub origin: Option<u64>,
    /// `,"topic":…,"from":{…},"data":`: the same for every message one sender sends
    /// as one app on one topic, so a session that knows it passes it in.
    head: OnceLock<Arc<str>>,
}

/// The part of a `msg` frame between the `sub` id and the data.
pub fn msg_head(topic: &Topic, user: &str, app: &str) -> Arc<str> {
    // Topic, user and app are validated ASCII, but encode them properly anyway.
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    format!(
        ",\"topic\":{},\"from\":{{\"user\":{},\"app\":{}}},\"data\":",
        quote(topic.as_str()),
        quote(user),
        quote(app)
    )
    .into()
}

impl Envelope {
    pub fn new(
        topic: Topic,
        caller: Arc<Caller>,
        app: impl Into<Arc<str>>,
        data: Data,
    ) -> Envelope {
        Envelope {
            topic,
            caller,
            app: app.into(),
            data,
            origin: None,
            head: OnceLock::new(),
        }
    }

    /// An envelope whose `msg` head (see [`msg_head`]) is already known.
    pub fn with_head(mut self, head: Arc<str>) -> Envelope {
        self.head = OnceLock::from(head);
        self
    }

    fn head(&self) -> &str {
        self.head
            .get_or_init(|| msg_head(&self.topic, &self.caller.user, &self.app))
    }

    /// The `msg` frame for one delivery: only the `sub` id (and reply token) differ per subscriber.
    pub fn msg_frame(&self, sub: u64, reply: Option<u64>) -> String {
        let mut frame = String::with_capacity(48 + self.head().len() + self.data.get().len());
        self.write_msg_frame(sub, reply, &mut frame);
        frame
    }

    /// Append the `msg` frame for one delivery to `out`.
    pub fn write_msg_frame(&self, sub: u64, reply: Option<u64>, out: &mut String) {
        out.push_str("{\"t\":\"msg\",\"sub\":");
        out.push_str(itoa::Buffer::new().format(sub));
        if let Some(reply) = reply {
            out.push_str(",\"reply\":\"");
            out.push_str(itoa::Buffer::new().format(reply));
            out.push('"');
        }
        out.push_str(self.head());
        out.push_str(self.data.get());
        out.push('}');
    }
}

/// What a connection's writer takes from its queue.
pub enum Outbound {
    /// A publication or a request to serve (with the reply id).
    Deliver {
        sub: u64,
        envelope: Arc<Envelope>,
        reply: Option<u64>,
    },
    /// A complete frame (res, err, ...).
    Frame(String),
    /// An answer for an in-process requester's request, routed by id. Boxed: answers are
    /// rare, deliveries are not, and every queue slot is as big as the biggest variant.
    Answer {
        id: u64,
        result: Box<Result<Data, aether_proto::ErrorBody>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxKind {
    /// A WebSocket client: dropped when its queue overflows.
    Remote,
    /// An in-process service: never dropped; an overflow refuses the delivery.
    Service,
}

/// The sending side of one participant's bounded queue.
pub struct Outbox {
    pub id: ConnId,
    pub kind: OutboxKind,
    tx: mpsc::Sender<Outbound>,
    slow: AtomicBool,
    kill: CancellationToken,
    /// Requests this participant made that are still waiting for an answer.
    pub pending_requests: AtomicUsize,
}

impl Outbox {
    pub fn new(
        id: ConnId,
        kind: OutboxKind,
        capacity: usize,
    ) -> (Arc<Outbox>, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(capacity);
        let outbox = Arc::new(Outbox {
            id,
            kind,
            tx,
            slow: AtomicBool::new(false),
            kill: CancellationToken::new(),
            pending_requests: AtomicUsize::new(0),
        });
        (outbox, rx)
    }

    /// Queue without waiting. A remote participant whose queue is full is marked
    /// slow and told to go; the caller never blocks on it.
    pub fn push(&self, item: Outbound) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if self.kind == OutboxKind::Remote && !self.slow.swap(true, Ordering::AcqRel) {
                    self.kill.cancel();
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Fires when this participant fell behind and must be dropped.
    pub fn dropped_as_slow(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.kill.cancelled()
    }

    pub fn is_slow(&self) -> bool {
        self.slow.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aether_proto::ServerFrame;

    #[test]
    fn msg_frames_parse_as_the_protocol_says() {
        let caller = Arc::new(Caller {
            user_id: 1,
            user: "ana".into(),
            admin: false,
            guest: false,
            bound_app: None,
            token_expires_at: None,
            ..Caller::default()
        });
        let data = aether_proto::frame::to_data(&serde_json::json!({"text": "hi \"there\""}));
        let env = Envelope::new(Topic::parse("chat.room.a").unwrap(), caller, "chat", data);
        for reply in [None, Some(42)] {
            let frame = env.msg_frame(7, reply);
            let ServerFrame::Msg(msg) = ServerFrame::parse(&frame).unwrap() else {
                panic!("{frame}")
            };
            assert_eq!(msg.sub, 7);
            assert_eq!(msg.topic, "chat.room.a");
            assert_eq!(msg.from.user, "ana");
            assert_eq!(msg.from.app, "chat");
            assert_eq!(msg.reply, reply.map(|r| r.to_string()));
            assert_eq!(msg.data.get(), r#"{"text":"hi \"there\""}"#);
        }
    }

    #[test]
    fn a_queue_slot_stays_small() {
        // Every delivery moves one of these through a queue: keep it at a delivery's size.
        assert!(std::mem::size_of::<Outbound>() <= 40);
    }

    #[test]
    fn a_full_remote_queue_marks_the_client_slow() {
        let (outbox, _rx) = Outbox::new(1, OutboxKind::Remote, 2);
        assert!(outbox.push(Outbound::Frame("a".into())));
        assert!(outbox.push(Outbound::Frame("b".into())));
        assert!(!outbox.is_slow());
        assert!(!outbox.push(Outbound::Frame("c".into())));
        assert!(outbox.is_slow());
    }
}
