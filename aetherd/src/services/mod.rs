//! Services: in-process bus participants. Each subscribes through the hub like
//! any client and never calls the gateway or another service directly.

pub mod compute;
pub mod sys;
pub mod telemetry;
pub mod vfs;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use aether_proto::frame::{Data, to_data};
use aether_proto::{ErrorBody, ErrorCode, Pattern, Topic};

use crate::hub::{Envelope, Hub, Namespace, Outbound, Outbox, OutboxKind, Requester, Target};
use crate::identity::Caller;
use crate::perms::{Perms, Service};

/// Requests a service may have queued before callers are told it is busy.
const SERVICE_QUEUE: usize = 65_536;

/// A request (or, for listeners, an event) a service received.
pub struct Incoming {
    /// When the service took it off its queue: answer latency is measured from here.
    received: Instant,
    pub topic: Topic,
    pub caller: Arc<Caller>,
    pub app: String,
    pub data: Data,
    /// The rule whose action caused this, if any; events it leads to carry it on.
    pub origin: Option<u64>,
    /// Set on requests: where the answer goes.
    reply: Option<u64>,
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

    pub fn is_request(&self) -> bool {
        self.reply.is_some()
    }
}

type Pending = Arc<parking_lot::Mutex<HashMap<u64, oneshot::Sender<Result<Data, ErrorBody>>>>>;

/// A service's seat on the bus.
pub struct Participant {
    hub: Arc<Hub>,
    perms: Arc<Perms>,
    service: Service,
    outbox: Arc<Outbox>,
    rx: mpsc::Receiver<Outbound>,
    /// Requests this service made, waiting for their answers.
    pending: Pending,
    next_sub: u64,
}

impl Participant {
    /// Join the bus and serve `topics`, each checked against what the service owns.
    pub fn serve(
        hub: Arc<Hub>,
        perms: Arc<Perms>,
        service: Service,
        topics: &[&str],
    ) -> anyhow::Result<Participant> {
        let (outbox, rx) = hub.participant(OutboxKind::Service, SERVICE_QUEUE);
        let mut participant = Participant {
            hub,
            perms,
            service,
            outbox,
            rx,
            pending: Pending::default(),
            next_sub: 0,
        };
        for topic in topics {
            let pattern = Pattern::parse(topic)?;
            participant
                .perms
                .check_service(service, &pattern)
                .map_err(|d| anyhow::anyhow!(d.msg))?;
            participant.subscribe(&pattern, true);
        }
        Ok(participant)
    }

    /// Also receive publications on `pattern`, from every user's namespace.
    pub fn listen(&mut self, pattern: &str) -> anyhow::Result<()> {
        let pattern = Pattern::parse(pattern)?;
        self.perms
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
        self.next_sub += 1;
        self.hub
            .subscribe(Namespace::Service, pattern, target, serve);
    }

    /// The next request or event, or None when the bus is gone.
    /// Answers to this service's own requests are routed on the way.
    pub async fn next(&mut self) -> Option<Incoming> {
        loop {
            match self.rx.recv().await? {
                Outbound::Deliver {
                    envelope, reply, ..
                } => {
                    return Some(Incoming {
                        received: Instant::now(),
                        topic: envelope.topic.clone(),
                        caller: envelope.caller.clone(),
                        app: envelope.app.clone(),
                        data: envelope.data.clone(),
                        origin: envelope.origin,
                        reply,
                    });
                }
                Outbound::Answer { id, result } => {
                    if let Some(waiting) = self.pending.lock().remove(&id) {
                        let _ = waiting.send(result);
                    }
                }
                Outbound::Frame(_) => {}
            }
        }
    }

    pub fn publisher(&self) -> Publisher {
        Publisher {
            hub: self.hub.clone(),
            perms: self.perms.clone(),
            service: self.service,
        }
    }

    pub fn responder(&self) -> Responder {
        Responder {
            hub: self.hub.clone(),
            id: self.outbox.id,
        }
    }

    /// A handle to make requests on the bus as this service (answers come through `next`).
    pub fn requester(&self) -> ServiceRequester {
        ServiceRequester {
            hub: self.hub.clone(),
            outbox: self.outbox.clone(),
            pending: self.pending.clone(),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }
}

/// Answers requests; cheap to clone into handler tasks.
#[derive(Clone)]
pub struct Responder {
    hub: Arc<Hub>,
    id: u64,
}

impl Responder {
    pub fn answer<T: Serialize>(&self, request: &Incoming, result: Result<T, ErrorBody>) {
        let Some(reply) = request.reply else { return };
        self.hub.metrics.observe_request(
            request.topic.as_str(),
            result.is_ok(),
            request.received.elapsed(),
        );
        let result = result.map(|value| to_data(&value));
        // The requester may have timed out or left; then there is no one to tell.
        let _ = self.hub.reply(self.id, reply, result);
    }
}

/// Makes requests on a user's behalf. The caller must have passed the permission check.
#[derive(Clone)]
pub struct ServiceRequester {
    hub: Arc<Hub>,
    outbox: Arc<Outbox>,
    pending: Pending,
    next_id: Arc<AtomicU64>,
}

impl ServiceRequester {
    pub async fn request(&self, envelope: Envelope, timeout: Duration) -> Result<Data, ErrorBody> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        let ns = Namespace::User(envelope.caller.user_id);
        let requester = Requester {
            outbox: self.outbox.clone(),
            id,
        };
        if let Err(e) = self.hub.request(ns, Arc::new(envelope), requester, timeout) {
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

/// Publishes a service's events into the acting user's namespace.
#[derive(Clone)]
pub struct Publisher {
    hub: Arc<Hub>,
    perms: Arc<Perms>,
    service: Service,
}

impl Publisher {
    /// Publish on behalf of `caller` acting as `app`, so `from` names who caused the event;
    /// `origin` carries on the rule that caused it, if any.
    pub fn publish<T: Serialize>(
        &self,
        caller: &Arc<Caller>,
        app: &str,
        topic: &str,
        data: &T,
        origin: Option<u64>,
    ) {
        let topic = match Topic::parse(topic) {
            Ok(topic) => topic,
            Err(e) => {
                tracing::error!(?self.service, "bad event topic {topic}: {e}");
                return;
            }
        };
        if let Err(denial) = self.perms.check_service_publish(self.service, &topic) {
            tracing::error!("{}", denial.msg);
            return;
        }
        let mut envelope = Envelope::new(topic, caller.clone(), app.to_owned(), to_data(data));
        envelope.origin = origin;
        self.hub
            .publish(Namespace::User(caller.user_id), Arc::new(envelope));
    }
}
