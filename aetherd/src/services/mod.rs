//! Services: in-process bus participants. Each has a [`Seat`] on the hub, which
//! is all it knows of the bus: it serves the topics the permission manager gives
//! its service, publishes only what the service may publish, and makes requests
//! on a user's behalf only through [`Requester::request_as`], which runs the same
//! permission check the user's app would pass. No service calls another directly.

pub mod agent;
pub mod ai;
pub mod apps;
pub mod chat;
pub mod compute;
pub mod session;
pub mod sys;
pub mod telemetry;
pub(crate) mod tools;
pub mod vfs;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use aether_proto::api::Call;
use aether_proto::frame::{Data, to_data};
use aether_proto::{ErrorBody, ErrorCode, Pattern, Topic};

use crate::hub::{
    Envelope, Hub, Namespace, Outbound, Outbox, OutboxKind, Requester as Waiter, Target,
};
use crate::identity::Caller;
use crate::metrics::Metrics;
use crate::perms::{Op, Perms, PermsView, Service};

/// Requests a service may have queued before callers are told it is busy.
const SERVICE_QUEUE: usize = 65_536;

/// What an answer is on the way out: raw JSON, or an error.
pub type Reply = Result<Data, ErrorBody>;

/// The parts of the daemon every seat is made from.
#[derive(Clone)]
pub struct Bus {
    pub hub: Arc<Hub>,
    pub perms: Arc<Perms>,
    pub metrics: Arc<Metrics>,
    /// Services stop when this is cancelled…
    pub shutdown: CancellationToken,
    /// …and the daemon waits for what they run here before it is gone.
    pub tasks: TaskTracker,
}

/// Who a message is on behalf of: the user, the app acting, and the rule that caused it.
#[derive(Clone)]
pub struct OnBehalf {
    pub caller: Arc<Caller>,
    pub app: String,
    /// The telemetry rule whose action caused this, if any; what it leads to carries it on.
    pub origin: Option<u64>,
}

/// A request (or, for listeners, an event) a service received.
pub struct Incoming {
    /// When the service took it off its queue: answer latency is measured from here.
    received: Instant,
    pub topic: Topic,
    pub caller: Arc<Caller>,
    pub app: String,
    pub data: Data,
    pub origin: Option<u64>,
    /// Set on requests: where the answer goes.
    reply: Option<u64>,
    hub: Arc<Hub>,
}

impl Incoming {
    /// Decode the payload, or say precisely what is wrong with it.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ErrorBody> {
        // A request without data reads as an empty object.
        let text = match self.data.get() {
            "null" => "{}",
            text => text,
        };
        serde_json::from_str(text).map_err(|e| {
            ErrorBody::new(
                ErrorCode::BadFrame,
                format!("bad {} request: {e}", self.topic),
            )
        })
    }

    /// Decode the request as `C`, answer it with `handler`, and encode the answer:
    /// the typed API fixes what each topic takes and gives.
    pub async fn call<C, F, Fut>(&self, handler: F) -> Reply
    where
        C: Call,
        F: FnOnce(C) -> Fut,
        Fut: Future<Output = Result<C::Answer, ErrorBody>>,
    {
        let request: C = self.decode()?;
        handler(request).await.map(|answer| to_data(&answer))
    }

    pub fn is_request(&self) -> bool {
        self.reply.is_some()
    }

    /// Resolves once nobody waits for this request's answer any more (its requester gave
    /// up or left), so long work for it can stop. Never resolves for an event.
    pub fn gone(&self) -> impl Future<Output = ()> + Send + 'static {
        let (hub, reply) = (self.hub.clone(), self.reply);
        async move {
            let Some(reply) = reply else {
                return std::future::pending().await;
            };
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if !hub.awaited(reply) {
                    return;
                }
            }
        }
    }

    pub fn on_behalf(&self) -> OnBehalf {
        OnBehalf {
            caller: self.caller.clone(),
            app: self.app.clone(),
            origin: self.origin,
        }
    }

    fn unknown(&self) -> ErrorBody {
        ErrorBody::new(
            ErrorCode::NotFound,
            format!("no service answers {}", self.topic),
        )
    }
}

/// What a service does with what reaches its seat. [`Seat::run`] is the one loop
/// around it: receive, spawn, answer, record latency, emit telemetry.
pub trait Handler: Send + Sync + 'static {
    /// Answer one request (each runs on its own task).
    fn handle(self: &Arc<Self>, request: &Incoming) -> impl Future<Output = Reply> + Send;

    /// A publication on a pattern the service listens to.
    fn on_event(self: &Arc<Self>, _event: Incoming) {}

    /// The telemetry event to publish after answering, as (topic, payload).
    fn telemetry(
        &self,
        _request: &Incoming,
        _ok: bool,
        _took: Duration,
    ) -> Option<(String, Value)> {
        None
    }
}

/// Answers to a service's own requests, by request id.
type Pending = Arc<parking_lot::Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;

/// A service's seat on the bus.
pub struct Seat {
    bus: Bus,
    service: Service,
    outbox: Arc<Outbox>,
    rx: mpsc::Receiver<Outbound>,
    pending: Pending,
    next_sub: u64,
    /// What it subscribed to, to leave the hub cleanly.
    subscriptions: Vec<(Pattern, u64, bool)>,
}

impl Seat {
    /// Join the bus and serve every topic the permission manager gives `service`.
    pub fn join(bus: &Bus, service: Service) -> anyhow::Result<Seat> {
        let (outbox, rx) = bus.hub.participant(OutboxKind::Service, SERVICE_QUEUE);
        let mut seat = Seat {
            bus: bus.clone(),
            service,
            outbox,
            rx,
            pending: Pending::default(),
            next_sub: 0,
            subscriptions: vec![],
        };
        for topic in crate::perms::service_topics(service) {
            seat.subscribe(&Pattern::parse(topic)?, true);
        }
        Ok(seat)
    }

    /// Also receive publications on `pattern`, from every user's namespace.
    pub fn listen(&mut self, pattern: &str) -> anyhow::Result<()> {
        let pattern = Pattern::parse(pattern)?;
        self.bus
            .perms
            .check_service_listen(self.service, &pattern)
            .map_err(|d| anyhow::anyhow!(d.msg))?;
        self.subscribe(&pattern, false);
        Ok(())
    }

    fn subscribe(&mut self, pattern: &Pattern, serve: bool) {
        let target = Target {
            outbox: self.outbox.clone(),
            sub: self.next_sub,
        };
        self.bus
            .hub
            .subscribe(Namespace::Service, pattern, target, serve);
        self.subscriptions
            .push((pattern.clone(), self.next_sub, serve));
        self.next_sub += 1;
    }

    /// Leave the hub: no more deliveries, and requests it was serving fail now.
    fn leave(&mut self) {
        for (pattern, sub, serve) in self.subscriptions.drain(..) {
            self.bus
                .hub
                .unsubscribe(Namespace::Service, &pattern, self.outbox.id, sub, serve);
        }
        self.bus.hub.participant_gone(self.outbox.id);
    }

    /// Cancelled when the daemon stops.
    pub fn shutdown(&self) -> CancellationToken {
        self.bus.shutdown.clone()
    }

    /// Where the service runs background work, so that shutting down waits for it.
    pub fn tasks(&self) -> TaskTracker {
        self.bus.tasks.clone()
    }

    /// The next request or event, or None when the bus is gone.
    /// Answers to this service's own requests are routed on the way.
    async fn next(&mut self) -> Option<Incoming> {
        loop {
            match self.rx.recv().await? {
                Outbound::Deliver {
                    envelope, reply, ..
                } => {
                    return Some(Incoming {
                        received: Instant::now(),
                        topic: envelope.topic.clone(),
                        caller: envelope.caller.clone(),
                        app: envelope.app.to_string(),
                        data: envelope.data.clone(),
                        origin: envelope.origin,
                        reply,
                        hub: self.bus.hub.clone(),
                    });
                }
                Outbound::Answer { id, result } => {
                    if let Some(waiting) = self.pending.lock().remove(&id) {
                        let _ = waiting.send(*result);
                    }
                }
                Outbound::Frame(_) => {}
            }
        }
    }

    /// What a service may see of the permission manager: manifests and decisions.
    pub fn perms(&self) -> PermsView {
        PermsView::new(self.bus.perms.clone())
    }

    pub fn publisher(&self) -> Publisher {
        Publisher {
            hub: self.bus.hub.clone(),
            perms: self.bus.perms.clone(),
            service: self.service,
        }
    }

    /// A handle to make requests on the bus (answers come through the seat's loop).
    pub fn requester(&self) -> Requester {
        Requester {
            hub: self.bus.hub.clone(),
            perms: self.bus.perms.clone(),
            service: self.service,
            outbox: self.outbox.clone(),
            pending: self.pending.clone(),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Run the service: each request is handled on its own task and answered, its
    /// latency recorded, and the handler's telemetry published; events go to `on_event`.
    pub fn run<H: Handler>(mut self, handler: Arc<H>) {
        let tasks = self.bus.tasks.clone();
        tasks.clone().spawn(async move {
            let shutdown = self.bus.shutdown.clone();
            loop {
                let incoming = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    incoming = self.next() => match incoming {
                        Some(incoming) => incoming,
                        None => break,
                    },
                };
                if incoming.is_request() {
                    tasks.spawn(self.answer(handler.clone(), incoming));
                } else {
                    handler.on_event(incoming);
                }
            }
            self.leave();
        });
    }

    /// Handle one request and answer it, then record its latency and telemetry.
    fn answer<H: Handler>(
        &self,
        handler: Arc<H>,
        incoming: Incoming,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (publisher, hub, metrics, id) = (
            self.publisher(),
            self.bus.hub.clone(),
            self.bus.metrics.clone(),
            self.outbox.id,
        );
        async move {
            let reply = handler.handle(&incoming).await;
            let took = incoming.received.elapsed();
            let ok = reply.is_ok();
            metrics.observe_request(incoming.topic.as_str(), ok, took);
            let telemetry = handler.telemetry(&incoming, ok, took);
            if let Some(to) = incoming.reply {
                // The requester may have timed out or left; then there is no one to tell.
                let _ = hub.reply(id, to, reply);
            }
            if let Some((topic, data)) = telemetry {
                publisher.publish(&incoming.on_behalf(), &topic, &data);
            }
        }
    }
}

/// Makes requests on the bus as a service. Cheap to clone.
#[derive(Clone)]
pub struct Requester {
    hub: Arc<Hub>,
    perms: Arc<Perms>,
    service: Service,
    outbox: Arc<Outbox>,
    pending: Pending,
    next_id: Arc<AtomicU64>,
}

impl Requester {
    /// Would `on.app` be allowed to request `topic` itself? The check `request_as` makes.
    pub fn check_as(&self, on: &OnBehalf, topic: &Topic) -> Result<Arc<Caller>, ErrorBody> {
        // The app's own rights and nothing more: as if that app sent the request itself.
        let acting = self.rebind(on);
        self.perms
            .check(&acting, &on.app, Op::Req, &topic.as_pattern())?;
        Ok(acting)
    }

    /// Send a request as `on.app` acting for `on.caller`, through the same permission
    /// check the app's own `req` frame would pass.
    pub async fn request_as<C: Call>(
        &self,
        on: &OnBehalf,
        call: &C,
        timeout: Duration,
    ) -> Result<C::Answer, ErrorBody> {
        let topic = topic_of::<C>()?;
        let raw = self
            .request_as_raw(on, &topic, to_data(call), timeout)
            .await?;
        decode_answer::<C>(&raw)
    }

    /// [`Requester::request_as`] for a topic known only at run time (a rule's action).
    pub async fn request_as_raw(
        &self,
        on: &OnBehalf,
        topic: &Topic,
        data: Data,
        timeout: Duration,
    ) -> Result<Data, ErrorBody> {
        let acting = self.check_as(on, topic)?;
        self.send(acting, on, topic.clone(), data, timeout).await
    }

    /// A request only services make (such as `vfs.rescan`), for `on.caller`: the
    /// permission manager's table says which services may make which.
    pub async fn request_internal<C: Call>(
        &self,
        on: &OnBehalf,
        call: &C,
        timeout: Duration,
    ) -> Result<C::Answer, ErrorBody> {
        let topic = topic_of::<C>()?;
        self.perms.check_service_request(self.service, &topic)?;
        let raw = self
            .send(on.caller.clone(), on, topic, to_data(call), timeout)
            .await?;
        decode_answer::<C>(&raw)
    }

    async fn send(
        &self,
        caller: Arc<Caller>,
        on: &OnBehalf,
        topic: Topic,
        data: Data,
        timeout: Duration,
    ) -> Reply {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        let ns = Namespace::of(topic.root(), caller.user_id);
        let mut envelope = Envelope::new(topic, caller, on.app.clone(), data);
        envelope.origin = on.origin;
        let waiter = Waiter {
            outbox: self.outbox.clone(),
            id,
        };
        if let Err(e) = self.hub.request(ns, Arc::new(envelope), waiter, timeout) {
            self.pending.lock().remove(&id);
            return Err(e);
        }
        rx.await.unwrap_or_else(|_| {
            Err(ErrorBody::new(
                ErrorCode::Unavailable,
                "the service stopped before the answer",
            ))
        })
    }
}

impl Requester {
    /// Publish as `on.app` acting for `on.caller`, through the permission check its own
    /// `pub` frame would pass. Returns how many listeners it reached.
    pub fn publish_as(&self, on: &OnBehalf, topic: &Topic, data: Data) -> Result<usize, ErrorBody> {
        let acting = self.rebind(on);
        self.perms
            .check(&acting, &on.app, Op::Pub, &topic.as_pattern())?;
        let ns = Namespace::of(topic.root(), acting.user_id);
        let mut envelope = Envelope::new(topic.clone(), on.caller.clone(), on.app.clone(), data);
        envelope.origin = on.origin;
        Ok(self.hub.publish(ns, Arc::new(envelope)))
    }

    /// A participant of its own that subscribes as `on.app` for `on.caller` (a guest
    /// program's subscriptions); it leaves the hub when dropped.
    pub fn listener(&self, on: &OnBehalf, capacity: usize) -> Listener {
        let (outbox, rx) = self.hub.participant(OutboxKind::Service, capacity);
        Listener {
            hub: self.hub.clone(),
            perms: self.perms.clone(),
            acting: self.rebind(on),
            app: on.app.clone(),
            outbox,
            rx,
            subs: vec![],
        }
    }

    fn rebind(&self, on: &OnBehalf) -> Arc<Caller> {
        Arc::new(Caller {
            bound_app: Some(on.app.clone()),
            token_expires_at: None,
            delegated: true,
            ..(*on.caller).clone()
        })
    }
}

/// Subscriptions made as one app for one user, each through the permission check.
pub struct Listener {
    hub: Arc<Hub>,
    perms: Arc<Perms>,
    acting: Arc<Caller>,
    app: String,
    outbox: Arc<Outbox>,
    rx: mpsc::Receiver<Outbound>,
    subs: Vec<(Namespace, Pattern, u64)>,
}

/// The most subscriptions one listener holds.
pub const LISTENER_SUBS: usize = 64;

impl Listener {
    pub fn subscribe(&mut self, pattern: &Pattern) -> Result<u64, ErrorBody> {
        self.perms
            .check(&self.acting, &self.app, Op::Sub, pattern)?;
        if self.subs.len() >= LISTENER_SUBS {
            return Err(ErrorBody::new(
                ErrorCode::RateLimited,
                format!("at most {LISTENER_SUBS} subscriptions"),
            ));
        }
        let ns = match pattern.literal_root() {
            Some(root) => Namespace::of(root, self.acting.user_id),
            None => Namespace::User(self.acting.user_id),
        };
        let sub = self.subs.len() as u64 + 1;
        let target = Target {
            outbox: self.outbox.clone(),
            sub,
        };
        self.hub.subscribe(ns, pattern, target, false);
        self.subs.push((ns, pattern.clone(), sub));
        Ok(sub)
    }

    /// The next publication: (subscription, topic, data).
    pub async fn next(&mut self) -> Option<(u64, Topic, Data)> {
        loop {
            if let Outbound::Deliver { sub, envelope, .. } = self.rx.recv().await? {
                return Some((sub, envelope.topic.clone(), envelope.data.clone()));
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        for (ns, pattern, sub) in self.subs.drain(..) {
            self.hub
                .unsubscribe(ns, &pattern, self.outbox.id, sub, false);
        }
        self.hub.participant_gone(self.outbox.id);
    }
}

fn topic_of<C: Call>() -> Result<Topic, ErrorBody> {
    Topic::parse(C::TOPIC).map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))
}

fn decode_answer<C: Call>(raw: &Data) -> Result<C::Answer, ErrorBody> {
    serde_json::from_str(raw.get()).map_err(|e| {
        ErrorBody::new(
            ErrorCode::Internal,
            format!("the answer to {} did not decode: {e}", C::TOPIC),
        )
    })
}

/// Publishes a service's events into the acting user's namespace.
#[derive(Clone)]
pub struct Publisher {
    hub: Arc<Hub>,
    perms: Arc<Perms>,
    service: Service,
}

impl Publisher {
    /// Publish on behalf of `on`, so `from` names who caused the event and `origin`
    /// carries on the rule that caused it, if any.
    pub fn publish<T: Serialize + ?Sized>(&self, on: &OnBehalf, topic: &str, data: &T) {
        self.publish_counted(on, topic, data);
    }

    /// Publish one event into each of these users' own namespaces (encoded once): how a
    /// room's events reach its members and nobody else. Returns how many listeners it reached.
    pub fn publish_to_users<T: Serialize + ?Sized>(
        &self,
        on: &OnBehalf,
        users: &[i64],
        topic: &str,
        data: &T,
    ) -> usize {
        let Some(envelope) = self.envelope(on, topic, data) else {
            return 0;
        };
        let envelope = Arc::new(envelope);
        users
            .iter()
            .map(|user| self.hub.publish(Namespace::User(*user), envelope.clone()))
            .sum()
    }

    /// [`Publisher::publish`], saying how many listeners it reached (0: nobody listens).
    pub fn publish_counted<T: Serialize + ?Sized>(
        &self,
        on: &OnBehalf,
        topic: &str,
        data: &T,
    ) -> usize {
        let Some(envelope) = self.envelope(on, topic, data) else {
            return 0;
        };
        let ns = Namespace::of(envelope.topic.root(), on.caller.user_id);
        self.hub.publish(ns, Arc::new(envelope))
    }

    /// The event as the hub carries it, when its topic is one this service may publish
    /// (a service's own bug otherwise: logged, nothing sent).
    fn envelope<T: Serialize + ?Sized>(
        &self,
        on: &OnBehalf,
        topic: &str,
        data: &T,
    ) -> Option<Envelope> {
        let topic = match Topic::parse(topic) {
            Ok(topic) => topic,
            Err(e) => {
                tracing::error!(?self.service, "bad event topic {topic}: {e}");
                return None;
            }
        };
        if let Err(denial) = self.perms.check_service_publish(self.service, &topic) {
            tracing::error!("{}", denial.msg);
            return None;
        }
        let mut envelope = Envelope::new(topic, on.caller.clone(), on.app.clone(), to_data(data));
        envelope.origin = on.origin;
        Some(envelope)
    }
}
