//! One signed-in connection: reads frames, checks each with the permission
//! manager, hands them to the hub, and writes what the hub queued for it.
//!
//! Bad input gets an `err` frame and the connection lives on. Only a frame over
//! the size limit, a slow consumer or shutdown ends it.

mod frames;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use aether_proto::frame::{self, Bye, ByeReason, Framed, PubRef, Reply, Request, Sub};
use aether_proto::manifest::valid_app_id;
use aether_proto::{ClientFrame, ErrorBody, ErrorCode, Pattern, ServerFrame, Topic};

use crate::config::Limits;
use crate::hub::{
    Envelope, FastMap, Hub, Matches, Namespace, Outbound, Outbox, OutboxKind, Requester, Target,
    msg_head,
};
use crate::identity::{Caller, Registration};
use crate::perms::{Denial, Op, Perms};

/// Deliveries written per flush.
const BATCH: usize = 512;
/// A client that does not take a write within this long is dropped as a slow consumer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Permission decisions remembered per connection.
const PERM_CACHE_LIMIT: usize = 4096;
/// Denials remembered per connection, however many allowed decisions come and go.
const DENIALS_KEPT: usize = 16_384;

/// What the frames of one client message call for: answers, and whether to close.
#[derive(Default)]
struct Replies {
    frames: Vec<String>,
    close: bool,
    /// Close after the answers with this `bye`.
    bye: Option<ByeReason>,
}

/// How a connection ends, and so what the daemon says last.
enum End {
    /// `bye` with this reason, then a Close frame.
    Bye(ByeReason),
    /// The client broke the WebSocket protocol (or sent a text frame that is not UTF-8):
    /// an `err` saying so when a frame can still be written, then a Close with this code.
    Broken { code: CloseCode, why: String },
    /// The client sent a Close: answer it with ours (RFC 6455 §5.5.1).
    ClientClosed,
    /// The client said `bye`: close normally.
    ClientLeft,
    /// The connection is gone: nothing can be said.
    Gone,
}

/// How long the daemon reads (and drops) what a client still sends after its Close, so the
/// kernel does not reset the connection before the client read the last frames.
const DRAIN_FOR: Duration = Duration::from_secs(2);
/// The most it reads so.
const DRAIN_BYTES: usize = 64 << 20;

fn close_code(reason: ByeReason) -> CloseCode {
    match reason {
        ByeReason::TooLarge => CloseCode::Size,
        ByeReason::Shutdown => CloseCode::Away,
        ByeReason::SlowConsumer | ByeReason::AuthExpired | ByeReason::Unauthenticated => {
            CloseCode::Policy
        }
    }
}

struct SubEntry {
    ns: Namespace,
    pattern: Pattern,
    serve: bool,
    /// The app it was made as: checked again when the permissions change.
    app: Box<str>,
}

/// One cached decision per operation on a topic.
type Decisions = [Option<Result<(), Denial>>; 4];

/// Decisions by app, then topic, then operation; dropped when manifests reload.
#[derive(Default)]
struct PermCache {
    generation: u64,
    size: usize,
    /// The size at which to make room again: the denials kept plus [`PERM_CACHE_LIMIT`].
    room: usize,
    by_app: FastMap<Box<str>, FastMap<Box<str>, Decisions>>,
}

impl PermCache {
    /// Make room by forgetting what was allowed (cheap to decide again), keeping denials:
    /// each is audited once per connection, and deciding one again would audit it again.
    /// Only past [`DENIALS_KEPT`] distinct denials does the cache start over.
    fn forget_allowed(&mut self) {
        let mut kept = 0;
        for topics in self.by_app.values_mut() {
            topics.retain(|_, slots| {
                for slot in slots.iter_mut() {
                    if matches!(slot, Some(Ok(()))) {
                        *slot = None;
                    }
                }
                let denials = slots.iter().filter(|s| s.is_some()).count();
                kept += denials;
                denials > 0
            });
        }
        self.by_app.retain(|_, topics| !topics.is_empty());
        if kept >= DENIALS_KEPT {
            self.by_app.clear();
            kept = 0;
        }
        self.size = kept;
        self.room = kept + PERM_CACHE_LIMIT;
    }
}

fn op_slot(op: Op) -> usize {
    match op {
        Op::Sub => 0,
        Op::Serve => 1,
        Op::Pub => 2,
        Op::Req => 3,
    }
}

/// What every session shares, and nothing more.
pub struct Sessions {
    pub hub: Arc<Hub>,
    pub perms: Arc<Perms>,
    pub limits: Limits,
    pub shutdown: CancellationToken,
}

/// The last topic this session sent on, with what was worked out for it: most senders
/// send many messages to one topic, and then each costs no parsing, lookup or encoding.
struct Recent {
    app: Arc<str>,
    text: String,
    op: Op,
    generation: u64,
    topic: Topic,
    head: Arc<str>,
    /// Who listened on it when last published to, and the hub generation that holds for.
    listeners: Option<(Arc<Matches>, u64)>,
}

/// A topic a frame may use, with what its envelope carries.
struct Resolved {
    topic: Topic,
    head: Arc<str>,
    app: Arc<str>,
}

pub struct Session {
    caller: Arc<Caller>,
    recent: Option<Recent>,
    ctx: Arc<Sessions>,
    /// The client reads several frames per message, one per line.
    batch: bool,
    outbox: Arc<Outbox>,
    rx: Option<mpsc::Receiver<Outbound>>,
    subs: HashMap<u64, SubEntry>,
    perms: PermCache,
}

impl Session {
    pub fn new(caller: Caller, ctx: Arc<Sessions>, batch: bool) -> Session {
        let (outbox, rx) = ctx
            .hub
            .participant(OutboxKind::Remote, ctx.limits.outbound_queue);
        Session {
            caller: Arc::new(caller),
            recent: None,
            ctx,
            batch,
            outbox,
            rx: Some(rx),
            subs: HashMap::new(),
            perms: PermCache::default(),
        }
    }

    /// Serve the connection until it ends. It is closed with `bye auth_expired` when
    /// its credentials are revoked (`registration`) or expire.
    pub async fn run<S>(mut self, mut ws: WebSocketStream<S>, registration: Registration)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let stats = &self.ctx.hub.stats;
        stats.connections.fetch_add(1, Ordering::Relaxed);
        let caller = self.caller.clone();
        let ended = ended(&caller, &registration);
        let end = tokio::select! {
            end = self.event_loop(&mut ws) => end,
            why = ended => {
                tracing::info!(user = %self.caller.user, "closing: {why}");
                End::Bye(ByeReason::AuthExpired)
            }
        };
        match end {
            End::Bye(reason) => self.say_bye(&mut ws, reason, &registration).await,
            End::Broken { code, why } => {
                tracing::debug!(user = %self.caller.user, "closing ({code}): {why}");
                let err = ServerFrame::err(None, ErrorCode::BadFrame, &why).to_json();
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    let _ = ws.send(Message::text(err)).await;
                    close_with(&mut ws, code, &why).await;
                })
                .await;
                drain(&mut ws, DRAIN_FOR).await;
            }
            End::ClientClosed => {
                // tungstenite queued the answer to the client's Close; a flush sends it.
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.flush()).await;
                drain(&mut ws, DRAIN_FOR).await;
            }
            End::ClientLeft => {
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    close_with(&mut ws, CloseCode::Normal, "bye"),
                )
                .await;
                drain(&mut ws, DRAIN_FOR).await;
            }
            End::Gone => {}
        }
        self.ctx
            .hub
            .stats
            .connections
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// `bye` after what is on its way, a Close saying why, then what the client still sends
    /// is read and dropped for a moment, so it gets to read them.
    async fn say_bye<S>(
        &self,
        ws: &mut WebSocketStream<S>,
        reason: ByeReason,
        registration: &Registration,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if reason == ByeReason::SlowConsumer {
            self.ctx
                .hub
                .stats
                .slow_consumers
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(user = %self.caller.user, "dropping a slow consumer");
        }
        let msg = match reason {
            ByeReason::TooLarge => Some(format!(
                "the limit is {} bytes",
                self.ctx.limits.max_frame_bytes
            )),
            ByeReason::AuthExpired if registration.revoked.is_cancelled() => {
                Some("the credentials of this connection were revoked".to_owned())
            }
            ByeReason::AuthExpired => Some("the credentials of this connection expired".to_owned()),
            _ => None,
        };
        let why = msg.clone().unwrap_or_else(|| format!("{reason:?}"));
        let bye = ServerFrame::Bye(Bye { reason, msg });
        // A slow consumer gets its bye after what is already on its way, as long as it
        // reads again within WRITE_TIMEOUT; otherwise say bye if it fits, never wait long.
        let grace = match reason {
            ByeReason::SlowConsumer => WRITE_TIMEOUT,
            _ => Duration::from_secs(1),
        };
        let sent = tokio::time::timeout(grace, async {
            let _ = ws.send(Message::text(bye.to_json())).await;
            close_with(ws, close_code(reason), &why).await;
        })
        .await;
        // A peer that reads nothing is not waited for; one that does gets to read it all
        // (at shutdown only briefly: the daemon waits for its connections).
        if sent.is_ok() {
            let read_for = match reason {
                ByeReason::Shutdown => Duration::from_millis(200),
                _ => DRAIN_FOR,
            };
            drain(ws, read_for).await;
        }
    }

    /// Runs until the connection ends; returns how it ends.
    async fn event_loop<S>(&mut self, ws: &mut WebSocketStream<S>) -> End
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let outbox = self.outbox.clone();
        let shutdown = self.ctx.shutdown.clone();
        let Some(mut rx) = self.rx.take() else {
            return End::Gone;
        };
        let mut batch = Vec::with_capacity(BATCH);
        let mut perms_changed = self.ctx.perms.changes();
        loop {
            tokio::select! {
                biased;
                _ = outbox.dropped_as_slow() => return End::Bye(ByeReason::SlowConsumer),
                _ = shutdown.cancelled() => return End::Bye(ByeReason::Shutdown),
                Ok(()) = perms_changed.changed() => {
                    let ended = self.recheck_subscriptions();
                    if !ended.is_empty() {
                        let send = write_frames(ws, ended, self.batch);
                        match tokio::time::timeout(WRITE_TIMEOUT, send).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return End::Gone,
                            Err(_) => return End::Bye(ByeReason::SlowConsumer),
                        }
                    }
                }
                n = rx.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        return End::Gone;
                    }
                    let write = write_batch(ws, &mut batch, self.batch);
                    tokio::select! {
                        written = tokio::time::timeout(WRITE_TIMEOUT, write) => match written {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return End::Gone,
                            Err(_) => return End::Bye(ByeReason::SlowConsumer),
                        },
                        _ = outbox.dropped_as_slow() => return End::Bye(ByeReason::SlowConsumer),
                    }
                }
                incoming = ws.next() => {
                    let mut replies = Replies::default();
                    match incoming {
                        Some(Ok(Message::Text(text))) => self.on_text(text.as_str(), &mut replies),
                        Some(Ok(Message::Binary(_))) => replies.frames.push(ServerFrame::err(
                            None,
                            ErrorCode::BadFrame,
                            "binary frames are not part of the protocol: send JSON text",
                        ).to_json()),
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                        Some(Ok(Message::Close(_))) => return End::ClientClosed,
                        None => return End::Gone,
                        Some(Err(tungstenite::Error::Capacity(e))) => {
                            tracing::info!(user = %self.caller.user, "closing: {e}");
                            return End::Bye(ByeReason::TooLarge);
                        }
                        Some(Err(e)) => return broken(e),
                    }
                    if !replies.frames.is_empty() {
                        let send = write_frames(ws, replies.frames, self.batch);
                        match tokio::time::timeout(WRITE_TIMEOUT, send).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return End::Gone,
                            Err(_) => return End::Bye(ByeReason::SlowConsumer),
                        }
                    }
                    if let Some(reason) = replies.bye {
                        return End::Bye(reason);
                    }
                    if replies.close {
                        return End::ClientLeft;
                    }
                }
            }
        }
    }

    /// Handle every frame in one WebSocket message, collecting what to answer.
    fn on_text(&mut self, text: &str, replies: &mut Replies) {
        frame::for_each_frame(text, |parsed| {
            if replies.close || replies.bye.is_some() {
                return;
            }
            let frame = match parsed {
                Ok(Framed::Frame(frame)) => frame,
                Ok(Framed::Pub(publish)) => {
                    return match self.on_pub(publish) {
                        Ok(Some(ack)) => replies.frames.push(ack.to_json()),
                        Ok(None) => {}
                        Err((id, e)) => replies.frames.push(ServerFrame::error(id, e).to_json()),
                    };
                }
                Err(e) => return replies.frames.push(e.to_err_frame().to_json()),
            };
            let result = match frame {
                // Who a connection is was fixed by its hello: another ends it, as documented.
                ClientFrame::Hello(_) => {
                    replies.frames.push(
                        ServerFrame::err(
                            None,
                            ErrorCode::Unauthenticated,
                            "already signed in: a connection says hello once (connect again \
                             to sign in as someone else)",
                        )
                        .to_json(),
                    );
                    replies.bye = Some(ByeReason::Unauthenticated);
                    return;
                }
                ClientFrame::Sub(sub) => self.on_sub(sub),
                ClientFrame::Unsub(unsub) => self.on_unsub(unsub.id, unsub.sub),
                ClientFrame::Pub(publish) => self.on_pub(PubRef {
                    id: publish.id,
                    app: &publish.app,
                    topic: &publish.topic,
                    data: publish.data.as_deref(),
                }),
                ClientFrame::Req(request) => self.on_req(request),
                ClientFrame::Reply(reply) => self.on_reply(reply),
                ClientFrame::Ping(ping) => Ok(Some(ServerFrame::Pong(frame::Pong { id: ping.id }))),
                ClientFrame::Bye(_) => {
                    replies.close = true;
                    return;
                }
            };
            match result {
                Ok(Some(answer)) => replies.frames.push(answer.to_json()),
                Ok(None) => {}
                Err((id, e)) => replies.frames.push(ServerFrame::error(id, e).to_json()),
            }
        });
    }

    /// The permission manager's decision on `op` over `pattern`, remembered by its text so
    /// that a hit costs no allocation.
    fn check(
        &mut self,
        app: &str,
        op: Op,
        text: &str,
        pattern: impl FnOnce() -> Pattern,
    ) -> Result<(), ErrorBody> {
        let generation = self.ctx.perms.generation();
        if generation != self.perms.generation {
            self.perms = PermCache {
                generation,
                ..PermCache::default()
            };
        }
        let cached = self
            .perms
            .by_app
            .get(app)
            .and_then(|topics| topics.get(text))
            .and_then(|slots| slots[op_slot(op)].clone());
        let decision = match cached {
            Some(decision) => decision,
            None => {
                let decision = self.ctx.perms.check(&self.caller, app, op, &pattern());
                if self.perms.size >= self.perms.room {
                    self.perms.forget_allowed();
                }
                self.perms.size += 1;
                self.perms
                    .by_app
                    .entry(app.into())
                    .or_default()
                    .entry(text.into())
                    .or_default()[op_slot(op)] = Some(decision.clone());
                decision
            }
        };
        decision.map_err(|d| ErrorBody::new(d.code, d.msg))
    }

    fn namespace(&self, root: Option<&str>) -> Namespace {
        match root {
            Some(root) => Namespace::of(root, self.caller.user_id),
            None => Namespace::User(self.caller.user_id),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for (sub, entry) in self.subs.drain() {
            self.ctx
                .hub
                .unsubscribe(entry.ns, &entry.pattern, self.outbox.id, sub, entry.serve);
        }
        self.ctx.hub.participant_gone(self.outbox.id);
    }
}

/// Resolves when the connection's credentials are revoked or expire, saying which.
async fn ended(caller: &Caller, registration: &Registration) -> &'static str {
    let expiry = async {
        match caller.token_expires_at {
            Some(at) => {
                let at = std::time::UNIX_EPOCH + Duration::from_secs(at.max(0) as u64);
                let left = at
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default();
                tokio::time::sleep(left).await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = registration.revoked.cancelled() => "its credentials were revoked",
        _ = expiry => "its credentials expired",
    }
}

/// The outcome of a frame: maybe an answer now, or an error for the frame's id.
type Answer = Result<Option<ServerFrame>, (Option<u64>, ErrorBody)>;

fn check_app(id: Option<u64>, app: &str) -> Result<(), (Option<u64>, ErrorBody)> {
    if valid_app_id(app) {
        Ok(())
    } else {
        Err((
            id,
            ErrorBody::new(
                ErrorCode::BadFrame,
                "`app` must be an app id ([a-z][a-z0-9_-]{0,31})",
            ),
        ))
    }
}

/// A batched message is sent once it reaches this size.
const BATCH_MESSAGE_BYTES: usize = 64 * 1024;

/// Write what the hub queued: one frame per message, or when the client batches,
/// several frames per message, one per line.
/// What a read error means for the connection: a broken protocol says so with its Close
/// code; anything else (the socket failed) ends it silently.
fn broken(error: tungstenite::Error) -> End {
    match error {
        tungstenite::Error::Utf8(_) => End::Broken {
            code: CloseCode::Invalid,
            why: "a text frame that is not UTF-8: the WebSocket protocol ends the connection"
                .into(),
        },
        tungstenite::Error::Protocol(problem) => End::Broken {
            code: CloseCode::Protocol,
            why: format!("the WebSocket protocol was broken: {problem}"),
        },
        _ => End::Gone,
    }
}

/// Send a Close frame with `code` and `why` (cut to what a Close frame may carry).
async fn close_with<S>(ws: &mut WebSocketStream<S>, code: CloseCode, why: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reason = &why[..why.floor_char_boundary(120)];
    let frame = CloseFrame {
        code,
        reason: reason.to_owned().into(),
    };
    let _ = ws.close(Some(frame)).await;
}

/// After our Close: read and drop what the client still sends (the rest of a frame over the
/// limit, frames it sent meanwhile) until it closes, at most [`DRAIN_FOR`] and
/// [`DRAIN_BYTES`] (`read_for` at most). Closing with unread bytes would reset the connection, and the client
/// would lose the `bye` and Close it has not read yet. Read below the WebSocket layer: the
/// stream may be mid-frame.
pub(crate) async fn drain<S>(ws: &mut WebSocketStream<S>, read_for: Duration)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let raw = ws.get_mut();
    let _ = tokio::time::timeout(Duration::from_millis(200), raw.shutdown()).await;
    let mut buf = vec![0u8; 64 * 1024];
    let mut read = 0;
    let _ = tokio::time::timeout(read_for, async {
        while read < DRAIN_BYTES {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}

async fn write_batch<S>(
    ws: &mut WebSocketStream<S>,
    items: &mut Vec<Outbound>,
    batch: bool,
) -> Result<(), tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if !batch {
        for item in items.drain(..) {
            let text = match item {
                Outbound::Deliver {
                    sub,
                    envelope,
                    reply,
                } => envelope.msg_frame(sub, reply),
                Outbound::Frame(frame) => frame,
                // In-process answers are for services; a connection never gets one.
                Outbound::Answer { .. } => continue,
            };
            ws.feed(Message::text(text)).await?;
        }
        return ws.flush().await;
    }
    // Room for what is queued (a delivery is a few hundred bytes), up to one message.
    let capacity = (items.len() * 512).min(BATCH_MESSAGE_BYTES) + 1024;
    let mut text = String::with_capacity(capacity);
    for item in items.drain(..) {
        if matches!(item, Outbound::Answer { .. }) {
            continue;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        match item {
            Outbound::Deliver {
                sub,
                envelope,
                reply,
            } => envelope.write_msg_frame(sub, reply, &mut text),
            Outbound::Frame(frame) => text.push_str(&frame),
            Outbound::Answer { .. } => {}
        }
        if text.len() >= BATCH_MESSAGE_BYTES {
            let full = std::mem::replace(&mut text, String::with_capacity(capacity));
            ws.feed(Message::text(full)).await?;
        }
    }
    if !text.is_empty() {
        ws.feed(Message::text(text)).await?;
    }
    ws.flush().await
}

/// Write answers to the client's own frames, batched like deliveries.
async fn write_frames<S>(
    ws: &mut WebSocketStream<S>,
    frames: Vec<String>,
    batch: bool,
) -> Result<(), tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut items = frames.into_iter().map(Outbound::Frame).collect();
    write_batch(ws, &mut items, batch).await
}
