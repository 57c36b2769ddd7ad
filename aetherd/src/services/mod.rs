//! Services: in-process bus participants. Each subscribes through the hub like
//! any client and never calls the gateway or another service directly.

pub mod sys;
pub mod vfs;

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use aether_proto::frame::{Data, to_data};
use aether_proto::{ErrorBody, ErrorCode, Pattern, Topic};

use crate::hub::{Envelope, Hub, Namespace, Outbound, Outbox, OutboxKind, Target};
use crate::identity::Caller;
use crate::perms::{Perms, Service};

/// Requests a service may have queued before callers are told it is busy.
const SERVICE_QUEUE: usize = 65_536;

/// A request a service received.
pub struct Incoming {
    /// When the service took it off its queue: answer latency is measured from here.
    received: std::time::Instant,
    pub topic: Topic,
    pub caller: Arc<Caller>,
    pub app: String,
    pub data: Data,
    reply: u64,
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
}

/// A service's seat on the bus.
pub struct Participant {
    hub: Arc<Hub>,
    perms: Arc<Perms>,
    service: Service,
    outbox: Arc<Outbox>,
    rx: mpsc::Receiver<Outbound>,
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
        for (sub, topic) in topics.iter().enumerate() {
            let pattern = Pattern::parse(topic)?;
            perms
                .check_service(service, &pattern)
                .map_err(|d| anyhow::anyhow!(d.msg))?;
            let target = Target {
                outbox: outbox.clone(),
                sub: sub as u64,
            };
            hub.subscribe(Namespace::Service, &pattern, target, true);
        }
        Ok(Participant {
            hub,
            perms,
            service,
            outbox,
            rx,
        })
    }

    /// The next request, or None when the bus is gone.
    pub async fn next(&mut self) -> Option<Incoming> {
        loop {
            match self.rx.recv().await? {
                Outbound::Deliver {
                    envelope,
                    reply: Some(reply),
                    ..
                } => {
                    return Some(Incoming {
                        received: std::time::Instant::now(),
                        topic: envelope.topic.clone(),
                        caller: envelope.caller.clone(),
                        app: envelope.app.clone(),
                        data: envelope.data.clone(),
                        reply,
                    });
                }
                // Publications and answers are not for a pure responder.
                Outbound::Deliver { reply: None, .. }
                | Outbound::Frame(_)
                | Outbound::Answer { .. } => {}
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
}

/// Answers requests; cheap to clone into handler tasks.
#[derive(Clone)]
pub struct Responder {
    hub: Arc<Hub>,
    id: u64,
}

impl Responder {
    pub fn answer<T: Serialize>(&self, request: &Incoming, result: Result<T, ErrorBody>) {
        self.hub.metrics.observe_request(
            request.topic.as_str(),
            result.is_ok(),
            request.received.elapsed(),
        );
        let result = result.map(|value| to_data(&value));
        // The requester may have timed out or left; then there is no one to tell.
        let _ = self.hub.reply(self.id, request.reply, result);
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
    /// Publish on behalf of `caller` acting as `app`, so `from` names who caused the event.
    pub fn publish<T: Serialize>(&self, caller: &Arc<Caller>, app: &str, topic: &str, data: &T) {
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
        let envelope = Envelope::new(topic, caller.clone(), app.to_owned(), to_data(data));
        self.hub
            .publish(Namespace::User(caller.user_id), Arc::new(envelope));
    }
}
