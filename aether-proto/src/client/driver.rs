//! The task that owns the WebSocket: sends frames, routes answers and
//! deliveries, and reconnects with resubscribe.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::endpoint::{Endpoint, Io};
use super::{ClientError, ClientOptions, Link};
use crate::error::{ErrorBody, ErrorCode};
use crate::frame::{self, Auth, ByeReason, ClientFrame, Data, Msg, ServerFrame, Welcome};

type Ws = WebSocketStream<Box<dyn Io>>;
type CallAnswer = oneshot::Sender<Result<Option<Data>, ClientError>>;

pub(crate) enum Command {
    Send {
        frame: ClientFrame,
    },
    Call {
        id: u64,
        frame: ClientFrame,
        answer: CallAnswer,
    },
    Forget {
        id: u64,
    },
    Subscribe {
        frame: frame::Sub,
        deliveries: mpsc::Sender<Msg>,
        answer: oneshot::Sender<Result<(), ClientError>>,
    },
    Unsubscribe {
        sub: u64,
    },
    Close,
}

const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Connect, sign in, and start the driver.
pub(crate) async fn start(
    endpoint: Endpoint,
    auth: Auth,
    options: ClientOptions,
) -> Result<
    (
        Welcome,
        mpsc::UnboundedSender<Command>,
        watch::Receiver<Link>,
    ),
    ClientError,
> {
    let (ws, welcome) = open(&endpoint, &auth, &options).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (link, link_rx) = watch::channel(Link::Up);
    let driver = Driver {
        link,
        max_frame: welcome.limits.max_frame_bytes,
        endpoint,
        auth,
        options,
        calls: HashMap::new(),
        sub_acks: HashMap::new(),
        subs: HashMap::new(),
    };
    tokio::spawn(driver.run(ws, rx));
    Ok((welcome, tx, link_rx))
}

async fn open(
    endpoint: &Endpoint,
    auth: &Auth,
    options: &ClientOptions,
) -> Result<(Ws, Welcome), ClientError> {
    let connect_err = |reason: String| ClientError::Connect {
        endpoint: endpoint.to_string(),
        reason,
    };
    let (url, io) = endpoint
        .open(options.ca_certs.as_deref())
        .await
        .map_err(|e| connect_err(e.to_string()))?;
    let (mut ws, _) = tokio_tungstenite::client_async(url, io)
        .await
        .map_err(|e| connect_err(e.to_string()))?;
    let hello = ClientFrame::Hello(frame::Hello {
        v: frame::PROTOCOL_VERSION,
        auth: auth.clone(),
        client: Some(options.client_name.clone()),
        batch: true,
    });
    ws.send(Message::text(hello.to_json()))
        .await
        .map_err(|e| connect_err(e.to_string()))?;
    let first = tokio::time::timeout(HELLO_TIMEOUT, next_frame(&mut ws))
        .await
        .map_err(|_| ClientError::Timeout(HELLO_TIMEOUT))?;
    match first {
        Some(ServerFrame::Welcome(welcome)) => Ok((ws, welcome)),
        Some(ServerFrame::Err(err)) => Err(ClientError::Daemon(err.into())),
        Some(ServerFrame::Bye(bye)) => Err(ClientError::Daemon(ErrorBody::new(
            ErrorCode::Unauthenticated,
            bye.msg.unwrap_or_else(|| format!("{:?}", bye.reason)),
        ))),
        Some(other) => Err(ClientError::Protocol(format!(
            "expected welcome, got {}",
            other.to_json()
        ))),
        None => Err(ClientError::ConnectionLost),
    }
}

/// The next frame the daemon sent, skipping control messages.
async fn next_frame(ws: &mut Ws) -> Option<ServerFrame> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(text)) => match ServerFrame::parse(text.as_str()) {
                Ok(frame) => return Some(frame),
                Err(e) => tracing::warn!("ignoring a frame the daemon sent: {e}"),
            },
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

struct Driver {
    /// Whether the connection is up, for whoever shows it (the desktop's status bar).
    link: watch::Sender<Link>,
    /// The daemon closes the connection on a larger frame: refuse it here instead.
    max_frame: usize,
    endpoint: Endpoint,
    auth: Auth,
    options: ClientOptions,
    /// Requests, pings and acked publishes waiting for an answer.
    calls: HashMap<u64, CallAnswer>,
    /// Subscriptions waiting for their `ok`.
    sub_acks: HashMap<u64, oneshot::Sender<Result<(), ClientError>>>,
    /// Live subscriptions, kept to re-send after a reconnect.
    subs: HashMap<u64, (frame::Sub, mpsc::Sender<Msg>)>,
}

/// What a command puts on the wire.
enum Outgoing {
    Nothing,
    Text(String),
    Close,
}

enum Outcome {
    Closed,
    /// The connection ended; `why` is the daemon's reason when it said bye.
    Lost {
        fatal: bool,
        why: Option<ErrorBody>,
    },
}

impl Driver {
    async fn run(mut self, mut ws: Ws, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            match self.serve(&mut ws, &mut commands).await {
                Outcome::Closed => {
                    self.link.send_replace(Link::Closed { why: None });
                    return;
                }
                Outcome::Lost { fatal, why } => {
                    let reason = why.as_ref().map(|body| body.to_string());
                    self.fail_calls(why);
                    if fatal || !self.options.reconnect {
                        self.subs.clear();
                        self.link.send_replace(Link::Closed { why: reason });
                        return;
                    }
                    self.link.send_replace(Link::Reconnecting { attempts: 0 });
                    match self.reconnect(&mut commands).await {
                        Some(new_ws) => {
                            ws = new_ws;
                            self.link.send_replace(Link::Up);
                        }
                        None => {
                            self.link.send_replace(Link::Closed { why: reason });
                            return;
                        }
                    }
                }
            }
        }
    }

    async fn serve(
        &mut self,
        ws: &mut Ws,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Outcome {
        loop {
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { return self.close(ws).await };
                    // Everything queued goes out together: one message, one frame per line.
                    let mut batch = String::new();
                    let mut next = Some(command);
                    while let Some(command) = next {
                        match self.on_command(command) {
                            Outgoing::Nothing => {}
                            Outgoing::Close => return self.close(ws).await,
                            Outgoing::Text(text) => {
                                if !batch.is_empty() && batch.len() + 1 + text.len() > self.max_frame {
                                    let full = std::mem::take(&mut batch);
                                    if ws.feed(Message::text(full)).await.is_err() {
                                        return Outcome::Lost { fatal: false, why: None };
                                    }
                                }
                                if !batch.is_empty() {
                                    batch.push('\n');
                                }
                                batch.push_str(&text);
                            }
                        }
                        next = commands.try_recv().ok();
                    }
                    let sent = async {
                        if !batch.is_empty() {
                            ws.feed(Message::text(batch)).await?;
                        }
                        ws.flush().await
                    };
                    if sent.await.is_err() {
                        return Outcome::Lost { fatal: false, why: None };
                    }
                }
                incoming = ws.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        // The daemon may batch frames, one per line.
                        for line in text.as_str().split('\n') {
                            if let Some((fatal, why)) = self.on_frame(line) {
                                return Outcome::Lost { fatal, why: Some(why) };
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                        return Outcome::Lost { fatal: false, why: None };
                    }
                    Some(Ok(_)) => {}
                }
            }
        }
    }

    async fn close(&mut self, ws: &mut Ws) -> Outcome {
        let bye = ClientFrame::Bye(frame::ClientBye { reason: None });
        let _ = ws.send(Message::text(bye.to_json())).await;
        let _ = ws.close(None).await;
        Outcome::Closed
    }

    /// What a command puts on the wire, if anything.
    fn on_command(&mut self, command: Command) -> Outgoing {
        let frame = match command {
            Command::Close => return Outgoing::Close,
            Command::Send { frame } => frame,
            Command::Call { id, frame, answer } => {
                self.calls.insert(id, answer);
                frame
            }
            Command::Forget { id } => {
                self.calls.remove(&id);
                return Outgoing::Nothing;
            }
            Command::Subscribe {
                frame,
                deliveries,
                answer,
            } => {
                self.sub_acks.insert(frame.id, answer);
                self.subs.insert(frame.id, (frame.clone(), deliveries));
                ClientFrame::Sub(frame)
            }
            Command::Unsubscribe { sub } => {
                if self.subs.remove(&sub).is_none() {
                    return Outgoing::Nothing;
                }
                ClientFrame::Unsub(frame::Unsub { id: 0, sub })
            }
        };
        let text = frame.to_json();
        if text.len() > self.max_frame {
            let error = ClientError::TooLarge {
                size: text.len(),
                limit: self.max_frame,
            };
            self.refuse(&frame, error);
            return Outgoing::Nothing;
        }
        Outgoing::Text(text)
    }

    /// Answer a frame that was never sent with `error`.
    fn refuse(&mut self, frame: &ClientFrame, error: ClientError) {
        let id = match frame {
            ClientFrame::Req(r) => Some(r.id),
            ClientFrame::Pub(p) => p.id,
            ClientFrame::Sub(s) => {
                self.subs.remove(&s.id);
                if let Some(answer) = self.sub_acks.remove(&s.id) {
                    let _ = answer.send(Err(error));
                }
                return;
            }
            _ => None,
        };
        match id.and_then(|id| self.calls.remove(&id)) {
            Some(answer) => {
                let _ = answer.send(Err(error));
            }
            None => tracing::warn!("not sent: {error}"),
        }
    }

    /// Route one frame from the daemon. Some((fatal, why)) when the daemon said bye.
    fn on_frame(&mut self, text: &str) -> Option<(bool, ErrorBody)> {
        let frame = match ServerFrame::parse(text) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!("ignoring a frame the daemon sent: {e}");
                return None;
            }
        };
        match frame {
            ServerFrame::Ok(ack) => {
                if let Some(answer) = self.sub_acks.remove(&ack.id) {
                    let _ = answer.send(Ok(()));
                } else if let Some(answer) = self.calls.remove(&ack.id) {
                    let _ = answer.send(Ok(None));
                }
            }
            ServerFrame::Res(res) => {
                if let Some(answer) = self.calls.remove(&res.id) {
                    let _ = answer.send(Ok(Some(res.data)));
                }
            }
            ServerFrame::Pong(pong) => {
                if let Some(answer) = pong.id.and_then(|id| self.calls.remove(&id)) {
                    let _ = answer.send(Ok(None));
                }
            }
            ServerFrame::Err(err) => {
                let id = err.id;
                let error = ClientError::Daemon(err.into());
                match id {
                    Some(id) if self.sub_acks.contains_key(&id) => {
                        self.subs.remove(&id);
                        if let Some(answer) = self.sub_acks.remove(&id) {
                            let _ = answer.send(Err(error));
                        }
                    }
                    // A subscription the daemon ended (its app's rights changed): its
                    // stream ends.
                    Some(id) if self.subs.contains_key(&id) => {
                        tracing::info!("subscription {id} ended: {error}");
                        self.subs.remove(&id);
                    }
                    Some(id) => {
                        if let Some(answer) = self.calls.remove(&id) {
                            let _ = answer.send(Err(error));
                        }
                    }
                    None => tracing::warn!("the daemon refused a frame: {error}"),
                }
            }
            ServerFrame::Msg(msg) => {
                if let Some((_, deliveries)) = self.subs.get(&msg.sub)
                    && let Err(mpsc::error::TrySendError::Full(_)) = deliveries.try_send(msg)
                {
                    tracing::warn!("subscription buffer full: dropping a delivery");
                }
            }
            ServerFrame::Bye(bye) => {
                tracing::info!("the daemon closed the connection: {:?}", bye.reason);
                let fatal = matches!(
                    bye.reason,
                    ByeReason::Unauthenticated | ByeReason::AuthExpired
                );
                let (code, why) = match bye.reason {
                    ByeReason::TooLarge => (
                        ErrorCode::TooLarge,
                        "a frame was over the daemon's size limit",
                    ),
                    ByeReason::SlowConsumer => (
                        ErrorCode::RateLimited,
                        "dropped as a slow consumer: read faster",
                    ),
                    ByeReason::Shutdown => (ErrorCode::Unavailable, "the daemon is shutting down"),
                    ByeReason::Unauthenticated | ByeReason::AuthExpired => {
                        (ErrorCode::Unauthenticated, "the daemon ended the session")
                    }
                };
                let msg = match bye.msg {
                    Some(detail) => format!("{why}: {detail}"),
                    None => why.to_owned(),
                };
                return Some((fatal, ErrorBody::new(code, msg)));
            }
            ServerFrame::Welcome(_) => {}
        }
        None
    }

    fn fail_calls(&mut self, why: Option<ErrorBody>) {
        let error = || match &why {
            Some(body) => ClientError::Daemon(body.clone()),
            None => ClientError::ConnectionLost,
        };
        for (_, answer) in self.calls.drain() {
            let _ = answer.send(Err(error()));
        }
        for (_, answer) in self.sub_acks.drain() {
            let _ = answer.send(Err(error()));
        }
    }

    /// Reconnect with backoff and re-send every live subscription.
    /// None when the client closed meanwhile.
    async fn reconnect(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) -> Option<Ws> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let sleep = tokio::time::sleep(backoff);
            tokio::pin!(sleep);
            // While offline, keep answering commands so nobody waits on a dead link.
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    command = commands.recv() => match command {
                        None | Some(Command::Close) => return None,
                        Some(command) => self.offline(command),
                    }
                }
            }
            match open(&self.endpoint, &self.auth, &self.options).await {
                Ok((mut ws, _)) => {
                    let mut ok = true;
                    for (frame, _) in self.subs.values() {
                        let sub = ClientFrame::Sub(frame.clone());
                        ok &= ws.feed(Message::text(sub.to_json())).await.is_ok();
                    }
                    if ok && ws.flush().await.is_ok() {
                        tracing::info!("reconnected to {}", self.endpoint);
                        return Some(ws);
                    }
                }
                Err(ClientError::Daemon(body)) if body.code == ErrorCode::Unauthenticated => {
                    tracing::warn!("reconnect refused: {body}");
                    return None;
                }
                Err(e) => tracing::debug!("reconnect failed: {e}"),
            }
            self.link.send_modify(|link| {
                if let Link::Reconnecting { attempts } = link {
                    *attempts += 1;
                }
            });
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn offline(&mut self, command: Command) {
        match command {
            Command::Call { answer, .. } => {
                let _ = answer.send(Err(ClientError::ConnectionLost));
            }
            Command::Subscribe {
                frame,
                deliveries,
                answer,
            } => {
                // Sent with the others once the connection is back.
                self.subs.insert(frame.id, (frame, deliveries));
                let _ = answer.send(Ok(()));
            }
            Command::Unsubscribe { sub } => {
                self.subs.remove(&sub);
            }
            Command::Forget { id } => {
                self.calls.remove(&id);
            }
            Command::Send { .. } | Command::Close => {}
        }
    }
}
