//! Per-connection limits: subscriptions, and clients that never read.

use std::time::Duration;

use aether_tests::{TestDaemon, next_msg, stats, to_data};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_opening_too_many_subscriptions_is_rate_limited_and_lives_on() {
    const LIMIT: usize = 1_000;
    const TRIED: usize = 1_500;
    const CHUNK: usize = 100;
    let d = TestDaemon::start_with(|c| c.limits.max_subscriptions = LIMIT).await;
    let mut ws = d.raw_owner().await;

    let (mut accepted, mut limited) = (0, 0);
    for chunk in 0..TRIED / CHUNK {
        let ids = chunk * CHUNK + 1..=(chunk + 1) * CHUNK;
        for id in ids.clone() {
            ws.send_json(
                &json!({"t": "sub", "id": id, "app": "cli", "topic": format!("app.cli.s{id}")}),
            )
            .await;
        }
        for id in ids {
            let answer = ws.recv_frame().await;
            assert_eq!(answer["id"], id, "answers come in order: {answer}");
            match answer["t"].as_str() {
                Some("ok") => {
                    assert!(
                        id <= LIMIT,
                        "subscription {id} is over the limit of {LIMIT}, yet accepted"
                    );
                    accepted += 1;
                }
                Some("err") => {
                    assert_eq!(answer["code"], "rate_limited", "{answer}");
                    let msg = answer["msg"].as_str().unwrap();
                    assert!(
                        msg.contains(&LIMIT.to_string()) && msg.contains("limit"),
                        "the message names the limit: {msg}"
                    );
                    assert!(
                        id > LIMIT,
                        "subscription {id} is within the limit, yet refused"
                    );
                    limited += 1;
                }
                _ => panic!("unexpected answer to sub {id}: {answer}"),
            }
        }
    }
    assert_eq!((accepted, limited), (LIMIT, TRIED - LIMIT));
    ws.ping().await;

    // Unsubscribing frees a slot, exactly one.
    ws.send_json(&json!({"t": "unsub", "id": 5000, "sub": 1}))
        .await;
    assert_eq!(ws.recv_frame().await, json!({"t": "ok", "id": 5000}));
    ws.send_json(&json!({"t": "sub", "id": 5001, "app": "cli", "topic": "app.cli.again"}))
        .await;
    assert_eq!(ws.recv_frame().await, json!({"t": "ok", "id": 5001}));
    ws.send_expect_err(
        &json!({"t": "sub", "id": 5002, "app": "cli", "topic": "app.cli.more"}),
        "rate_limited",
    )
    .await;

    // The subscriptions it has still deliver, and the limit is per connection.
    let publisher = d.owner().await;
    publisher
        .app("cli")
        .publish_acked("app.cli.s500", to_data(&"still here"))
        .await
        .unwrap();
    let msg = ws.recv_frame().await;
    assert_eq!(msg["t"], "msg", "{msg}");
    assert_eq!(msg["sub"], 500, "{msg}");
    assert_eq!(msg["data"], "still here", "{msg}");
    let mut other = d.raw_owner().await;
    other
        .send_json(&json!({"t": "sub", "id": 1, "app": "cli", "topic": "app.cli.s1"}))
        .await;
    assert_eq!(other.recv_frame().await, json!({"t": "ok", "id": 1}));
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_dropped_as_a_slow_consumer_and_others_get_everything() {
    const BATCH: usize = 16;
    const MAX_MESSAGES: usize = 4_000;
    let d = TestDaemon::start_with(|c| c.limits.outbound_queue = 64).await;
    let watcher = d.owner().await;

    // The slow client subscribes, then never reads again.
    let mut slow = d.raw_owner().await;
    slow.send_json(&json!({"t": "sub", "id": 1, "app": "cli", "topic": "app.cli.flood"}))
        .await;
    assert_eq!(slow.recv_frame().await, json!({"t": "ok", "id": 1}));

    let listener = d.owner().await;
    let mut sub = listener
        .app("cli")
        .subscribe("app.cli.flood")
        .await
        .unwrap();
    let publisher = d.owner().await;
    let flood = publisher.app("cli");
    let pad = "x".repeat(16 * 1024);

    // Publish in batches smaller than the queue and wait for the normal subscriber to get
    // each batch, so that only the client that never reads can fall behind.
    let mut sent = 0;
    let mut batches_after_drop = None;
    while batches_after_drop != Some(3) {
        assert!(
            sent < MAX_MESSAGES,
            "{sent} messages of 16 KiB published and the client that never reads was not dropped"
        );
        for _ in 0..BATCH {
            flood
                .publish("app.cli.flood", to_data(&json!({"n": sent, "pad": pad})))
                .unwrap();
            sent += 1;
        }
        for expected in sent - BATCH..sent {
            let msg = next_msg(&mut sub).await;
            let data: serde_json::Value = serde_json::from_str(msg.data.get()).unwrap();
            assert_eq!(
                data["n"], expected,
                "the normal subscriber lost or reordered a message"
            );
        }
        batches_after_drop = match batches_after_drop {
            Some(n) => Some(n + 1),
            None if stats(&watcher).await["hub"]["slow_consumers"]
                .as_u64()
                .unwrap()
                >= 1 =>
            {
                Some(0)
            }
            None => None,
        };
    }

    // The slow client's socket is closed once what was already written is read, even
    // when it starts reading again only a while after it was dropped.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let drained = slow.expect_closed_within(Duration::from_secs(10)).await;
    assert!(
        drained.msgs < sent,
        "the slow client received all {sent} messages, so it was not dropped: {drained:?}"
    );
    // The bye comes after the deliveries already on their way, and nothing else does.
    assert_eq!(drained.others.len(), 1, "{drained:?}");
    assert_eq!(drained.others[0]["t"], "bye", "{drained:?}");
    assert_eq!(drained.others[0]["reason"], "slow_consumer", "{drained:?}");

    let s = stats(&watcher).await;
    assert!(s["hub"]["slow_consumers"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["hub"]["dropped"].as_u64().unwrap() >= 1, "{s}");
    listener
        .ping()
        .await
        .expect("the normal subscriber's connection is fine");
    publisher
        .ping()
        .await
        .expect("the publisher's connection is fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_pending_requests_are_rate_limited_and_the_connection_lives_on() {
    const LIMIT: usize = 4;
    let d = TestDaemon::start_with(|c| c.limits.max_pending_requests = LIMIT).await;
    let responder = d.owner().await;
    // Served, never answered.
    let _serving = responder.app("cli").serve("app.cli.hold").await.unwrap();

    let mut ws = d.raw_owner().await;
    for id in 1..=LIMIT as u64 {
        ws.send_json(&json!({"t": "req", "id": id, "app": "cli", "topic": "app.cli.hold", "timeout_ms": 30000}))
            .await;
    }
    let err = ws
        .send_expect_err(
            &json!({"t": "req", "id": 99, "app": "cli", "topic": "app.cli.hold", "timeout_ms": 30000}),
            "rate_limited",
        )
        .await;
    assert_eq!(err["id"], 99, "{err}");
    assert!(
        err["msg"].as_str().unwrap().contains(&LIMIT.to_string()),
        "{err}"
    );
    ws.ping().await;
}
