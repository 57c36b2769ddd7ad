//! `AetherClient`: an async client for the daemon (feature `client`).
//!
//! One driver task owns the WebSocket; handles talk to it over a channel.
//! Requests are matched to answers by id, subscriptions are `Stream`s, and a
//! lost connection is re-established with the same credentials and every live
//! subscription re-sent.

mod driver;
mod endpoint;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot, watch};

pub use endpoint::Endpoint;

use crate::api::Call;
use crate::error::{ErrorBody, ErrorCode};
use crate::frame::{self, Auth, ClientFrame, Data, Msg, Welcome};

/// What can go wrong on the client side.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The daemon answered with an error.
    #[error("{0}")]
    Daemon(ErrorBody),
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("the connection to the daemon was lost")]
    ConnectionLost,
    #[error("no answer from the daemon within {0:?}")]
    Timeout(Duration),
    #[error("the daemon sent something unexpected: {0}")]
    Protocol(String),
    #[error("the client is closed")]
    Closed,
    #[error("cannot decode the answer: {0}")]
    Decode(String),
    /// Not sent: the frame is over the daemon's limit (`welcome.limits.max_frame_bytes`).
    #[error("the frame would be {size} bytes; the daemon accepts at most {limit}")]
    TooLarge { size: usize, limit: usize },
}

impl ClientError {
    /// The daemon's error code, when the daemon said no.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Daemon(body) => Some(body.code),
            _ => None,
        }
    }
}

/// The state of the connection, as [`AetherClient::link`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Up,
    /// Lost; trying again (with backoff) and resubscribing when back.
    Reconnecting {
        attempts: u32,
    },
    /// Closed for good: by us, or by the daemon (`why`, e.g. credentials ended).
    Closed {
        why: Option<String>,
    },
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Sent in `hello` for the daemon's logs.
    pub client_name: String,
    /// Timeout for requests that do not name one.
    pub request_timeout: Duration,
    /// Reconnect when the connection drops (after the first connect succeeded).
    pub reconnect: bool,
    /// Deliveries buffered per subscription before new ones are dropped.
    pub subscription_buffer: usize,
    /// For `wss://`: a PEM file of the certificates to trust (default: the system's roots).
    pub ca_certs: Option<std::path::PathBuf>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            client_name: format!("aether-proto/{}", env!("CARGO_PKG_VERSION")),
            request_timeout: Duration::from_secs(10),
            reconnect: true,
            subscription_buffer: 65_536,
            ca_certs: None,
        }
    }
}

/// A connected client. Cheap to clone; the connection closes when the last clone drops.
#[derive(Clone)]
pub struct AetherClient {
    shared: Arc<Shared>,
}

struct Shared {
    commands: mpsc::UnboundedSender<driver::Command>,
    next_id: AtomicU64,
    welcome: Welcome,
    options: ClientOptions,
    link: watch::Receiver<Link>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = self.commands.send(driver::Command::Close);
    }
}

impl AetherClient {
    /// Connect and sign in. Fails at once if the daemon cannot be reached or refuses the credentials.
    pub async fn connect(
        endpoint: &Endpoint,
        auth: Auth,
        options: ClientOptions,
    ) -> Result<AetherClient, ClientError> {
        let (welcome, commands, link) =
            driver::start(endpoint.clone(), auth, options.clone()).await?;
        Ok(AetherClient {
            shared: Arc::new(Shared {
                commands,
                next_id: AtomicU64::new(1),
                welcome,
                options,
                link,
            }),
        })
    }

    /// Who the daemon says we are.
    pub fn welcome(&self) -> &Welcome {
        &self.shared.welcome
    }

    /// The connection's state, updated as it drops and comes back.
    pub fn link(&self) -> watch::Receiver<Link> {
        self.shared.link.clone()
    }

    /// A handle that acts as one app: every frame it sends names that app.
    pub fn app(&self, app: impl Into<String>) -> AppHandle {
        AppHandle {
            client: self.clone(),
            app: app.into(),
        }
    }

    fn next_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn send(&self, command: driver::Command) -> Result<(), ClientError> {
        self.shared
            .commands
            .send(command)
            .map_err(|_| ClientError::Closed)
    }

    async fn call(
        &self,
        id: u64,
        frame: ClientFrame,
        timeout: Duration,
    ) -> Result<Option<Data>, ClientError> {
        let (answer, rx) = oneshot::channel();
        self.send(driver::Command::Call { id, frame, answer })?;
        // The daemon enforces the timeout itself; ours only guards against a silent daemon.
        let grace = timeout + Duration::from_secs(2);
        match tokio::time::timeout(grace, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => {
                let _ = self.send(driver::Command::Forget { id });
                Err(ClientError::Timeout(grace))
            }
        }
    }

    /// Round trip to the daemon.
    pub async fn ping(&self) -> Result<Duration, ClientError> {
        let started = std::time::Instant::now();
        let id = self.next_id();
        let frame = ClientFrame::Ping(frame::Ping { id: Some(id) });
        self.call(id, frame, self.shared.options.request_timeout)
            .await?;
        Ok(started.elapsed())
    }

    /// Answer a request received on a serving subscription.
    pub fn reply(&self, to: &str, result: Result<Data, ErrorBody>) -> Result<(), ClientError> {
        let (data, error) = match result {
            Ok(data) => (Some(data), None),
            Err(error) => (None, Some(error)),
        };
        let frame = ClientFrame::Reply(frame::Reply {
            to: to.to_owned(),
            data,
            error,
        });
        self.send(driver::Command::Send { frame })
    }

    /// Close the connection politely.
    pub fn close(&self) {
        let _ = self.send(driver::Command::Close);
    }
}

/// A client that acts as one app (the per-window handle of the desktop). It is fixed to
/// that app: nothing turns it back into the client or into another app's handle.
#[derive(Clone)]
pub struct AppHandle {
    client: AetherClient,
    app: String,
}

impl AppHandle {
    pub fn app_id(&self) -> &str {
        &self.app
    }

    /// Publish without waiting for the daemon.
    pub fn publish(&self, topic: &str, data: Data) -> Result<(), ClientError> {
        let frame = ClientFrame::Pub(frame::Publish {
            id: None,
            app: self.app.clone(),
            topic: topic.to_owned(),
            data: Some(data),
        });
        self.client.send(driver::Command::Send { frame })
    }

    /// Publish and wait for the daemon to accept it (or say why not).
    pub async fn publish_acked(&self, topic: &str, data: Data) -> Result<(), ClientError> {
        let id = self.client.next_id();
        let frame = ClientFrame::Pub(frame::Publish {
            id: Some(id),
            app: self.app.clone(),
            topic: topic.to_owned(),
            data: Some(data),
        });
        self.client
            .call(id, frame, self.client.shared.options.request_timeout)
            .await
            .map(drop)
    }

    /// Send a request and wait for its answer, as raw JSON.
    pub async fn request_raw(
        &self,
        topic: &str,
        data: Data,
        timeout: Option<Duration>,
    ) -> Result<Data, ClientError> {
        let id = self.client.next_id();
        let timeout = timeout.unwrap_or(self.client.shared.options.request_timeout);
        let frame = ClientFrame::Req(frame::Request {
            id,
            app: self.app.clone(),
            topic: topic.to_owned(),
            data: Some(data),
            timeout_ms: Some(timeout.as_millis().min(u64::MAX as u128) as u64),
        });
        let answer = self.client.call(id, frame, timeout).await?;
        Ok(answer.unwrap_or_else(frame::null_data))
    }

    /// Send a call of the typed API and decode its answer:
    /// `app.request(&api::vfs::Read { path: "/a".into(), ..Default::default() })`.
    pub async fn request<C: Call>(&self, call: &C) -> Result<C::Answer, ClientError> {
        self.request_within(call, None).await
    }

    /// [`AppHandle::request`] with its own timeout.
    pub async fn request_within<C: Call>(
        &self,
        call: &C,
        timeout: Option<Duration>,
    ) -> Result<C::Answer, ClientError> {
        let raw = self
            .request_raw(C::TOPIC, frame::to_data(call), timeout)
            .await?;
        decode_answer(C::TOPIC, &raw)
    }

    /// Send any serializable request on any topic and decode the answer as `A`
    /// (for topics outside the typed API, such as an app's own namespace).
    pub async fn request_json<Q: Serialize + ?Sized, A: DeserializeOwned>(
        &self,
        topic: &str,
        data: &Q,
    ) -> Result<A, ClientError> {
        let raw = self.request_raw(topic, frame::to_data(data), None).await?;
        decode_answer(topic, &raw)
    }

    /// Subscribe to a pattern; deliveries arrive on the returned stream.
    pub async fn subscribe(&self, pattern: &str) -> Result<Subscription, ClientError> {
        self.sub(pattern, false).await
    }

    /// Serve requests on a pattern: each `Msg` has `reply`; answer with [`AetherClient::reply`].
    pub async fn serve(&self, pattern: &str) -> Result<Subscription, ClientError> {
        self.sub(pattern, true).await
    }

    async fn sub(&self, pattern: &str, serve: bool) -> Result<Subscription, ClientError> {
        let id = self.client.next_id();
        let (deliveries, rx) = mpsc::channel(self.client.shared.options.subscription_buffer);
        let frame = frame::Sub {
            id,
            app: self.app.clone(),
            topic: pattern.to_owned(),
            serve,
        };
        let (answer, ack) = oneshot::channel();
        self.client.send(driver::Command::Subscribe {
            frame,
            deliveries,
            answer,
        })?;
        let timeout = self.client.shared.options.request_timeout + Duration::from_secs(2);
        match tokio::time::timeout(timeout, ack).await {
            Ok(Ok(Ok(()))) => Ok(Subscription {
                id,
                rx,
                client: self.client.clone(),
            }),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout(timeout)),
        }
    }
}

fn decode_answer<A: DeserializeOwned>(topic: &str, raw: &Data) -> Result<A, ClientError> {
    serde_json::from_str(raw.get())
        .map_err(|e| ClientError::Decode(format!("the answer to {topic}: {e}")))
}

/// A live subscription. Dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    rx: mpsc::Receiver<Msg>,
    client: AetherClient,
}

impl Subscription {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next delivery, or `None` once the client is closed.
    pub async fn next_msg(&mut self) -> Option<Msg> {
        self.rx.recv().await
    }

    /// Decode a delivery's payload.
    pub fn decode<T: DeserializeOwned>(msg: &Msg) -> Result<T, ClientError> {
        serde_json::from_str(msg.data.get()).map_err(|e| ClientError::Decode(e.to_string()))
    }
}

impl Stream for Subscription {
    type Item = Msg;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Msg>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self
            .client
            .send(driver::Command::Unsubscribe { sub: self.id });
    }
}
