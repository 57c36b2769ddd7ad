//! Runs the apps' bus effects, for windows and headless apps alike. Each acts as its own
//! app: its requests and subscriptions go through an `AppHandle` fixed to that app's
//! manifest id, so the daemon checks every window against its own capabilities. Answers
//! and deliveries come back into the event loop tagged with their owner and the app's
//! ticket.

use std::collections::HashMap;
use std::time::Duration;

use aether_proto::client::{AetherClient, AppHandle, ClientError};
use aether_proto::frame;
use aether_proto::{ErrorBody, ErrorCode};
use app_kit::{AppKind, Effect, Event, Payload, Ticket};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::desktop::Owner;

/// What the bus brings back to the event loop.
#[derive(Debug)]
pub struct Incoming {
    pub owner: Owner,
    pub event: Event,
}

pub struct Bus {
    client: AetherClient,
    /// One handle per manifest id: windows of apps sharing a manifest share it.
    handles: HashMap<&'static str, AppHandle>,
    subscriptions: HashMap<(Owner, Ticket), JoinHandle<()>>,
    requests: HashMap<Owner, Vec<JoinHandle<()>>>,
    tx: mpsc::UnboundedSender<Incoming>,
}

impl Bus {
    pub fn new(client: AetherClient, tx: mpsc::UnboundedSender<Incoming>) -> Bus {
        Bus {
            client,
            handles: HashMap::new(),
            subscriptions: HashMap::new(),
            requests: HashMap::new(),
            tx,
        }
    }

    fn handle(&mut self, kind: AppKind) -> AppHandle {
        self.handles
            .entry(kind.manifest())
            .or_insert_with(|| self.client.app(kind.manifest()))
            .clone()
    }

    pub fn run(&mut self, owner: Owner, kind: AppKind, effect: Effect) {
        let handle = self.handle(kind);
        let tx = self.tx.clone();
        match effect {
            Effect::Request {
                ticket,
                topic,
                data,
            } => {
                let task = tokio::spawn(async move {
                    let result = handle
                        .request_raw(topic, frame::to_data(&data), None)
                        .await
                        .map(|raw| Payload::new(raw.get()))
                        .map_err(error_body);
                    let _ = tx.send(Incoming {
                        owner,
                        event: Event::Answer { ticket, result },
                    });
                });
                let tasks = self.requests.entry(owner).or_default();
                tasks.retain(|t| !t.is_finished());
                tasks.push(task);
            }
            Effect::Subscribe { ticket, pattern } => {
                let task = tokio::spawn(async move {
                    let mut subscription = match handle.subscribe(&pattern).await {
                        Ok(subscription) => {
                            // In place: the app may now start what it wants to hear from.
                            let event = Event::Subscribed { ticket };
                            if tx.send(Incoming { owner, event }).is_err() {
                                return;
                            }
                            subscription
                        }
                        Err(e) => {
                            let _ = tx.send(Incoming {
                                owner,
                                event: Event::SubscribeFailed {
                                    ticket,
                                    error: error_body(e),
                                },
                            });
                            return;
                        }
                    };
                    while let Some(msg) = subscription.next_msg().await {
                        let data = serde_json::from_str(msg.data.get()).unwrap_or(Value::Null);
                        let event = Event::Delivery {
                            ticket,
                            topic: msg.topic,
                            data,
                        };
                        if tx.send(Incoming { owner, event }).is_err() {
                            return;
                        }
                    }
                });
                if let Some(old) = self.subscriptions.insert((owner, ticket), task) {
                    old.abort();
                }
            }
            Effect::Unsubscribe { ticket } => {
                if let Some(task) = self.subscriptions.remove(&(owner, ticket)) {
                    task.abort();
                }
            }
            _ => {}
        }
    }

    /// The window closed: its subscriptions end and its answers are not awaited.
    pub fn closed(&mut self, owner: Owner) {
        self.subscriptions.retain(|(o, _), task| {
            if *o == owner {
                task.abort();
            }
            *o != owner
        });
        for task in self.requests.remove(&owner).unwrap_or_default() {
            task.abort();
        }
    }

    /// Wait (at most `patience`) for the owner's requests under way to be answered: the
    /// answers are in the event loop's queue when this returns.
    pub async fn settle(&mut self, owner: Owner, patience: Duration) {
        let tasks = self.requests.remove(&owner).unwrap_or_default();
        let all = futures_util::future::join_all(tasks);
        let _ = tokio::time::timeout(patience, all).await;
    }
}

/// A client error as the apps see errors: the daemon's own, or one that says what happened.
pub fn error_body(e: ClientError) -> ErrorBody {
    match e {
        ClientError::Daemon(body) => body,
        ClientError::Timeout(after) => {
            ErrorBody::new(ErrorCode::Timeout, format!("no answer within {after:?}"))
        }
        ClientError::ConnectionLost | ClientError::Closed => ErrorBody::new(
            ErrorCode::Unavailable,
            "the daemon is not reachable right now; try again when the status bar says connected",
        ),
        other => ErrorBody::new(ErrorCode::Internal, other.to_string()),
    }
}
