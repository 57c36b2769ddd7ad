//! The bus: subscriptions, fan-out and request/reply.
//!
//! Publishing looks subscribers up (a trie, with a cache of recent topics) and
//! queues one shared [`Envelope`] per delivery without ever waiting: a client
//! whose bounded queue is full is dropped as a slow consumer, and everyone
//! else keeps receiving. The publisher's own task does the routing, so there
//! is no central hub task to become a bottleneck.

mod index;
mod outbox;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;

use aether_proto::frame::Data;
use aether_proto::{ErrorBody, ErrorCode, Pattern, ServerFrame, Topic};

pub use index::{Matches, Namespace, SHARED_ROOTS, Target};
pub use outbox::{ConnId, Envelope, Outbound, Outbox, OutboxKind, msg_head};

use index::Index;

/// Topics remembered per namespace before the cache starts over.
const CACHE_PER_NAMESPACE: usize = 1024;

/// Counters of the bus, for `sys.stats` and benchmarks.
#[derive(Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub published: AtomicU64,
    pub delivered: AtomicU64,
    /// Deliveries not queued because the receiver was full or gone.
    pub dropped: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub requests: AtomicU64,
    pub no_responders: AtomicU64,
    pub timeouts: AtomicU64,
}

/// What `sys.stats` and `/metrics` show of the bus.
pub use aether_proto::api::sys::BusStats as StatsSnapshot;

/// Who is waiting for an answer.
pub struct Requester {
    pub outbox: Arc<Outbox>,
    /// The requester's own id for the request (the `id` of its `req` frame).
    pub id: u64,
}

struct Pending {
    requester: Requester,
    responder: ConnId,
    timeout: Duration,
}

/// The hub's maps: keyed by client-chosen strings, so seeded per map, and fast.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

type Cache = FastMap<Namespace, FastMap<Box<str>, Arc<Matches>>>;

pub struct Hub {
    index: RwLock<Index>,
    /// Bumped under the index's write lock on every change.
    generation: AtomicU64,
    cache: Mutex<Cache>,
    pending: Mutex<FastMap<u64, Pending>>,
    next_participant: AtomicU64,
    next_reply: AtomicU64,
    round_robin: AtomicUsize,
    pub stats: Stats,
}

impl Hub {
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub {
            index: RwLock::default(),
            generation: AtomicU64::new(0),
            cache: Mutex::default(),
            pending: Mutex::default(),
            next_participant: AtomicU64::new(1),
            next_reply: AtomicU64::new(1),
            round_robin: AtomicUsize::new(0),
            stats: Stats::default(),
        })
    }

    /// A new participant (connection or service) and its queue.
    pub fn participant(
        &self,
        kind: OutboxKind,
        capacity: usize,
    ) -> (Arc<Outbox>, mpsc::Receiver<Outbound>) {
        let id = self.next_participant.fetch_add(1, Ordering::Relaxed);
        Outbox::new(id, kind, capacity)
    }

    pub fn subscribe(&self, ns: Namespace, pattern: &Pattern, target: Target, serve: bool) {
        {
            let mut index = self.index.write();
            index.insert(ns, pattern, target, serve);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        self.forget_cached(ns);
    }

    pub fn unsubscribe(
        &self,
        ns: Namespace,
        pattern: &Pattern,
        conn: ConnId,
        sub: u64,
        serve: bool,
    ) -> bool {
        let found = {
            let mut index = self.index.write();
            let found = index.remove(ns, pattern, conn, sub, serve);
            self.generation.fetch_add(1, Ordering::AcqRel);
            found
        };
        self.forget_cached(ns);
        found
    }

    fn forget_cached(&self, ns: Namespace) {
        let mut cache = self.cache.lock();
        if ns == Namespace::Service {
            cache.clear();
        } else {
            cache.remove(&ns);
        }
    }

    /// The subscriptions a topic reaches, from the cache when possible.
    pub fn matches(&self, ns: Namespace, topic: &Topic) -> Arc<Matches> {
        if let Some(hit) = self
            .cache
            .lock()
            .get(&ns)
            .and_then(|c| c.get(topic.as_str()))
        {
            return hit.clone();
        }
        let (found, generation) = {
            let index = self.index.read();
            (
                Arc::new(index.lookup(ns, topic)),
                self.generation.load(Ordering::Acquire),
            )
        };
        let mut cache = self.cache.lock();
        // Only cache what is still current; a change meanwhile clears the cache after bumping.
        if self.generation.load(Ordering::Acquire) == generation {
            let per_ns = cache.entry(ns).or_default();
            if per_ns.len() >= CACHE_PER_NAMESPACE {
                per_ns.clear();
            }
            per_ns.insert(topic.as_str().into(), found.clone());
        }
        found
    }

    /// Who listens on `topic` now, with the generation that answer holds for: a caller
    /// that keeps it may reuse it while [`Hub::generation`] stays the same. Read under
    /// the index's lock, which every change bumps the generation under.
    pub fn lookup_now(&self, ns: Namespace, topic: &Topic) -> (Arc<Matches>, u64) {
        let index = self.index.read();
        (
            Arc::new(index.lookup(ns, topic)),
            self.generation.load(Ordering::Acquire),
        )
    }

    /// Changes with every subscribe and unsubscribe.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Fan a message out to every listener. Returns how many were queued.
    pub fn publish(&self, ns: Namespace, envelope: Arc<Envelope>) -> usize {
        let matches = self.matches(ns, &envelope.topic);
        self.publish_to(&matches, envelope)
    }

    /// [`Hub::publish`] to listeners the caller already looked up.
    pub fn publish_to(&self, matches: &Matches, envelope: Arc<Envelope>) -> usize {
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        let mut queued = 0;
        for target in &matches.listeners {
            let delivery = Outbound::Deliver {
                sub: target.sub,
                envelope: envelope.clone(),
                reply: None,
            };
            if target.outbox.push(delivery) {
                queued += 1;
            }
        }
        let missed = matches.listeners.len() - queued;
        self.stats
            .delivered
            .fetch_add(queued as u64, Ordering::Relaxed);
        if missed > 0 {
            self.stats
                .dropped
                .fetch_add(missed as u64, Ordering::Relaxed);
        }
        queued
    }

    /// Send a request to one responder. Errors at once when nobody serves the topic;
    /// otherwise the answer (or `timeout`) reaches the requester's queue later.
    pub fn request(
        self: &Arc<Self>,
        ns: Namespace,
        envelope: Arc<Envelope>,
        requester: Requester,
        timeout: Duration,
    ) -> Result<(), ErrorBody> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let matches = self.matches(ns, &envelope.topic);
        if matches.responders.is_empty() {
            self.stats.no_responders.fetch_add(1, Ordering::Relaxed);
            return Err(ErrorBody::new(
                ErrorCode::NoResponders,
                format!("nobody serves {}", envelope.topic),
            ));
        }
        let reply = self.next_reply.fetch_add(1, Ordering::Relaxed);
        let requester_outbox = requester.outbox.clone();
        requester_outbox
            .pending_requests
            .fetch_add(1, Ordering::AcqRel);
        // Registered before the delivery is queued, so even an instant answer finds it.
        self.pending.lock().insert(
            reply,
            Pending {
                requester,
                responder: 0,
                timeout,
            },
        );
        let n = matches.responders.len();
        let start = self.round_robin.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            let target = &matches.responders[(start + i) % n];
            match self.pending.lock().get_mut(&reply) {
                Some(pending) => pending.responder = target.outbox.id,
                None => return Ok(()), // already answered or expired
            }
            let delivery = Outbound::Deliver {
                sub: target.sub,
                envelope: envelope.clone(),
                reply: Some(reply),
            };
            if target.outbox.push(delivery) {
                let hub = Arc::downgrade(self);
                tokio::spawn(async move {
                    tokio::time::sleep(timeout).await;
                    if let Some(hub) = hub.upgrade() {
                        hub.expire(reply);
                    }
                });
                return Ok(());
            }
        }
        if let Some(pending) = self.pending.lock().remove(&reply) {
            pending
                .requester
                .outbox
                .pending_requests
                .fetch_sub(1, Ordering::AcqRel);
        }
        Err(ErrorBody::new(
            ErrorCode::Unavailable,
            format!("every responder for {} is busy", envelope.topic),
        ))
    }

    /// A responder answers request `reply`. Only the responder it was sent to may answer.
    pub fn reply(
        &self,
        responder: ConnId,
        reply: u64,
        result: Result<Data, ErrorBody>,
    ) -> Result<(), ErrorBody> {
        let pending = {
            let mut pending = self.pending.lock();
            match pending.get(&reply) {
                Some(p) if p.responder == responder => pending.remove(&reply),
                _ => None,
            }
        };
        let Some(pending) = pending else {
            return Err(ErrorBody::new(
                ErrorCode::NotFound,
                format!("no request {reply} is waiting for your answer (it may have timed out)"),
            ));
        };
        answer(pending.requester, result);
        Ok(())
    }

    /// Whether someone still waits for the answer to request `reply` (false once it was
    /// answered, timed out, or its requester left).
    pub fn awaited(&self, reply: u64) -> bool {
        self.pending.lock().contains_key(&reply)
    }

    fn expire(&self, reply: u64) {
        let Some(pending) = self.pending.lock().remove(&reply) else {
            return;
        };
        self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
        let msg = format!("no answer within {} ms", pending.timeout.as_millis());
        answer(
            pending.requester,
            Err(ErrorBody::new(ErrorCode::Timeout, msg)),
        );
    }

    /// A participant left: requests it was serving fail now instead of at their timeout,
    /// and requests it made are dropped.
    pub fn participant_gone(&self, conn: ConnId) {
        let orphaned: Vec<Pending> = {
            let mut pending = self.pending.lock();
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, p)| p.responder == conn || p.requester.outbox.id == conn)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| pending.remove(&id))
                .collect()
        };
        for pending in orphaned {
            if pending.requester.outbox.id != conn {
                let err = ErrorBody::new(
                    ErrorCode::Unavailable,
                    "the responder went away before answering",
                );
                answer(pending.requester, Err(err));
            }
        }
    }

    /// A handle that reads the counters and nothing else.
    pub fn stats(self: &Arc<Self>) -> HubStats {
        HubStats(self.clone())
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let s = &self.stats;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            connections: load(&s.connections),
            subscriptions: self.index.read().len(),
            published: load(&s.published),
            delivered: load(&s.delivered),
            dropped: load(&s.dropped),
            slow_consumers: load(&s.slow_consumers),
            requests: load(&s.requests),
            pending_requests: self.pending.lock().len(),
            no_responders: load(&s.no_responders),
            timeouts: load(&s.timeouts),
        }
    }
}

/// Deliver an answer in the requester's own form: a frame for clients, a value for services.
fn answer(requester: Requester, result: Result<Data, ErrorBody>) {
    let Requester { outbox, id } = requester;
    outbox.pending_requests.fetch_sub(1, Ordering::AcqRel);
    let item = match outbox.kind {
        OutboxKind::Remote => Outbound::Frame(match result {
            Ok(data) => format!("{{\"t\":\"res\",\"id\":{id},\"data\":{}}}", data.get()),
            Err(e) => ServerFrame::error(Some(id), e).to_json(),
        }),
        OutboxKind::Service => Outbound::Answer {
            id,
            result: Box::new(result),
        },
    };
    outbox.push(item);
}

/// The hub's counters, for `sys.stats`: all that service sees of the hub.
pub struct HubStats(Arc<Hub>);

impl HubStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        self.0.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Caller;

    fn caller() -> Arc<Caller> {
        Arc::new(Caller {
            user_id: 1,
            user: "ana".into(),
            admin: false,
            guest: false,
            bound_app: None,
            token_expires_at: None,
            ..Caller::default()
        })
    }

    fn envelope(topic: &str) -> Arc<Envelope> {
        Arc::new(Envelope::new(
            Topic::parse(topic).unwrap(),
            caller(),
            "cli",
            aether_proto::frame::to_data(&1),
        ))
    }

    #[tokio::test]
    async fn publish_reaches_matching_listeners_only() {
        let hub = Hub::new();
        let ns = Namespace::User(1);
        let (a, mut a_rx) = hub.participant(OutboxKind::Remote, 16);
        let (b, mut b_rx) = hub.participant(OutboxKind::Remote, 16);
        hub.subscribe(
            ns,
            &Pattern::parse("x.*").unwrap(),
            Target { outbox: a, sub: 1 },
            false,
        );
        hub.subscribe(
            Namespace::User(2),
            &Pattern::parse(">").unwrap(),
            Target { outbox: b, sub: 1 },
            false,
        );
        assert_eq!(hub.publish(ns, envelope("x.y")), 1);
        assert_eq!(hub.publish(ns, envelope("x.y")), 1, "cached lookup");
        assert!(matches!(
            a_rx.try_recv(),
            Ok(Outbound::Deliver { sub: 1, .. })
        ));
        assert!(
            b_rx.try_recv().is_err(),
            "another user's namespace is not reached"
        );
    }

    #[tokio::test]
    async fn cache_follows_subscription_changes() {
        let hub = Hub::new();
        let ns = Namespace::User(1);
        let (a, _rx) = hub.participant(OutboxKind::Remote, 16);
        assert_eq!(hub.publish(ns, envelope("x.y")), 0);
        let pattern = Pattern::parse("x.y").unwrap();
        hub.subscribe(
            ns,
            &pattern,
            Target {
                outbox: a.clone(),
                sub: 1,
            },
            false,
        );
        assert_eq!(hub.publish(ns, envelope("x.y")), 1);
        assert!(hub.unsubscribe(ns, &pattern, a.id, 1, false));
        assert_eq!(hub.publish(ns, envelope("x.y")), 0);
    }

    #[tokio::test]
    async fn requests_are_answered_by_their_responder_only() {
        let hub = Hub::new();
        let ns = Namespace::User(1);
        let (client, mut client_rx) = hub.participant(OutboxKind::Remote, 16);
        let requester = |id| Requester {
            outbox: client.clone(),
            id,
        };
        let err = hub
            .request(
                ns,
                envelope("svc.echo"),
                requester(1),
                Duration::from_secs(1),
            )
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::NoResponders);

        let (server, mut server_rx) = hub.participant(OutboxKind::Service, 16);
        let target = Target {
            outbox: server.clone(),
            sub: 9,
        };
        hub.subscribe(
            Namespace::Service,
            &Pattern::parse("svc.echo").unwrap(),
            target,
            true,
        );
        hub.request(
            ns,
            envelope("svc.echo"),
            requester(2),
            Duration::from_secs(5),
        )
        .unwrap();
        let Ok(Outbound::Deliver {
            reply: Some(reply), ..
        }) = server_rx.try_recv()
        else {
            panic!()
        };
        let data = aether_proto::frame::to_data(&"pong");
        assert_eq!(
            hub.reply(client.id, reply, Ok(data.clone()))
                .unwrap_err()
                .code,
            ErrorCode::NotFound
        );
        hub.reply(server.id, reply, Ok(data)).unwrap();
        let Ok(Outbound::Frame(frame)) = client_rx.try_recv() else {
            panic!()
        };
        assert_eq!(frame, r#"{"t":"res","id":2,"data":"pong"}"#);
        assert_eq!(client.pending_requests.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn requests_time_out_and_fail_when_the_responder_leaves() {
        let hub = Hub::new();
        let ns = Namespace::User(1);
        let (client, mut client_rx) = hub.participant(OutboxKind::Remote, 16);
        let (server, _server_rx) = hub.participant(OutboxKind::Service, 16);
        let target = Target {
            outbox: server.clone(),
            sub: 1,
        };
        hub.subscribe(
            Namespace::Service,
            &Pattern::parse("svc.slow").unwrap(),
            target,
            true,
        );
        let requester = Requester {
            outbox: client.clone(),
            id: 5,
        };
        hub.request(
            ns,
            envelope("svc.slow"),
            requester,
            Duration::from_millis(20),
        )
        .unwrap();
        let frame = tokio::time::timeout(Duration::from_secs(2), client_rx.recv())
            .await
            .unwrap();
        let Some(Outbound::Frame(frame)) = frame else {
            panic!()
        };
        assert!(frame.contains("\"timeout\""), "{frame}");

        let requester = Requester {
            outbox: client.clone(),
            id: 6,
        };
        hub.request(ns, envelope("svc.slow"), requester, Duration::from_secs(30))
            .unwrap();
        hub.participant_gone(server.id);
        let Ok(Outbound::Frame(frame)) = client_rx.try_recv() else {
            panic!()
        };
        assert!(frame.contains("\"unavailable\""), "{frame}");
    }
}
