//! The hub in process: publish to one subscriber, and fan-out to 1,000
//! subscribers with mixed wildcard patterns. Each iteration publishes one
//! message and drains every queue, so a delivery is counted only once it has
//! been queued and taken off again.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::sync::mpsc;

use aether_proto::{Pattern, Topic};
use aetherd::hub::{Envelope, Hub, Namespace, Outbound, OutboxKind, Target};
use aetherd::identity::Caller;

const TOPIC: &str = "bench.room.r42.post";

fn envelope(caller: &Arc<Caller>) -> Arc<Envelope> {
    let payload = serde_json::json!({ "pad": "x".repeat(240) });
    Arc::new(Envelope::new(
        Topic::parse(TOPIC).unwrap(),
        caller.clone(),
        "cli",
        aether_proto::frame::to_data(&payload),
    ))
}

/// Patterns that all match TOPIC, cycling through literal, `*` and `>` forms.
fn pattern(i: usize) -> Pattern {
    let forms = [
        "bench.room.r42.post",
        "bench.room.*.post",
        "bench.room.>",
        "bench.*.r42.*",
        "bench.>",
        ">",
        "*.room.r42.post",
    ];
    Pattern::parse(forms[i % forms.len()]).unwrap()
}

fn setup(subscribers: usize) -> (Arc<Hub>, Vec<mpsc::Receiver<Outbound>>, Arc<Caller>) {
    let hub = Hub::new();
    let ns = Namespace::User(1);
    let mut receivers = Vec::with_capacity(subscribers);
    for i in 0..subscribers {
        let (outbox, rx) = hub.participant(OutboxKind::Remote, 1024);
        hub.subscribe(
            ns,
            &pattern(i),
            Target {
                outbox,
                sub: i as u64,
            },
            false,
        );
        receivers.push(rx);
    }
    // Noise: other users' subscriptions and unrelated topics must not slow the lookup.
    for user in 2..200 {
        let (outbox, rx) = hub.participant(OutboxKind::Remote, 16);
        hub.subscribe(
            Namespace::User(user),
            &Pattern::parse(">").unwrap(),
            Target { outbox, sub: 0 },
            false,
        );
        std::mem::forget(rx);
    }
    let caller = Arc::new(Caller {
        user_id: 1,
        user: "bench".into(),
        admin: false,
        guest: false,
        bound_app: None,
        token_expires_at: None,
        ..Caller::default()
    });
    (hub, receivers, caller)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub");
    for subscribers in [1usize, 1000] {
        let (hub, mut receivers, caller) = setup(subscribers);
        let env = envelope(&caller);
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(format!("publish_to_{subscribers}"), |b| {
            b.iter(|| {
                let queued = hub.publish(Namespace::User(1), env.clone());
                debug_assert_eq!(queued, subscribers);
                for rx in receivers.iter_mut() {
                    black_box(rx.try_recv().ok());
                }
            })
        });
    }
    // Encoding the per-subscriber frame, which the connection writer does per delivery.
    let (_, _, caller) = setup(0);
    let env = envelope(&caller);
    group.throughput(Throughput::Elements(1));
    group.bench_function("msg_frame_encode", |b| {
        b.iter(|| black_box(env.msg_frame(black_box(7), None)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
