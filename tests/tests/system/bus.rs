//! Pub/sub and request/reply between clients, and what happens when one side goes away.

use std::time::{Duration, Instant};

use aether_proto::client::{AetherClient, ClientOptions};
use aether_proto::frame::Auth;
use aether_proto::{ErrorBody, ErrorCode};
use aether_tests::{
    TestDaemon, client_options, expect_code, next_msg, stats, to_data, wait_for, wait_until,
};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_sub_between_two_clients_stamps_the_sender() {
    let d = TestDaemon::start().await;
    let listener = d.owner().await;
    let publisher = d.owner().await;
    let mut sub = listener
        .app("cli")
        .subscribe("app.cli.news.*")
        .await
        .unwrap();

    for n in 0..3 {
        publisher
            .app("cli")
            .publish_acked(&format!("app.cli.news.n{n}"), to_data(&json!({"n": n})))
            .await
            .unwrap();
    }
    // Not matched by `news.*`: one token too many.
    publisher
        .app("cli")
        .publish_acked("app.cli.news.deep.x", to_data(&json!({"n": "deep"})))
        .await
        .unwrap();
    publisher
        .app("cli")
        .publish_acked("app.cli.news.last", to_data(&json!({"n": "last"})))
        .await
        .unwrap();

    for n in 0..3 {
        let msg = next_msg(&mut sub).await;
        assert_eq!(msg.sub, sub.id());
        assert_eq!(msg.topic, format!("app.cli.news.n{n}"));
        assert_eq!(msg.from.user, aether_tests::OWNER);
        assert_eq!(msg.from.app, "cli");
        assert_eq!(msg.data.get(), format!(r#"{{"n":{n}}}"#));
    }
    let last = next_msg(&mut sub).await;
    assert_eq!(
        last.topic, "app.cli.news.last",
        "app.cli.news.deep.x must not match app.cli.news.*"
    );

    // Dropping the subscription unsubscribes; frames on one connection are handled in order,
    // so once a later ping is answered the subscription is gone from the hub.
    let before = stats(&listener).await["hub"]["subscriptions"]
        .as_u64()
        .unwrap();
    drop(sub);
    listener.ping().await.unwrap();
    let after = stats(&listener).await["hub"]["subscriptions"]
        .as_u64()
        .unwrap();
    assert_eq!(after, before - 1, "the unsubscribed pattern left the hub");
}

/// A connection keeps who listens on the topic it last published to; anyone subscribing or
/// unsubscribing, anywhere, makes it look again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_listener_hears_the_next_message_on_a_topic_already_in_use() {
    let d = TestDaemon::start().await;
    let publisher = d.owner().await;
    let cli = publisher.app("cli");
    let topic = "app.cli.busy";
    for n in 0..3 {
        cli.publish_acked(topic, to_data(&json!({ "n": n })))
            .await
            .unwrap();
    }
    let listener = d.owner().await;
    let mut first = listener.app("cli").subscribe(topic).await.unwrap();
    cli.publish_acked(topic, to_data(&json!({ "n": "heard" })))
        .await
        .unwrap();
    assert_eq!(next_msg(&mut first).await.data.get(), r#"{"n":"heard"}"#);

    let mut second = listener.app("cli").subscribe("app.cli.*").await.unwrap();
    drop(first);
    listener.ping().await.unwrap();
    cli.publish_acked(topic, to_data(&json!({ "n": "once" })))
        .await
        .unwrap();
    assert_eq!(next_msg(&mut second).await.data.get(), r#"{"n":"once"}"#);
    // The only request so far is this one (its own telemetry comes after the answer).
    let delivered = stats(&listener).await["hub"]["delivered"].as_u64().unwrap();
    assert_eq!(
        delivered, 2,
        "heard, then once: the dropped subscription heard nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_through_a_client_responder() {
    let d = TestDaemon::start().await;
    let responder = d.owner().await;
    let mut serving = responder.app("cli").serve("app.cli.echo").await.unwrap();
    let server = responder.clone();
    let serve_task = tokio::spawn(async move {
        while let Some(msg) = serving.next_msg().await {
            let reply = msg
                .reply
                .clone()
                .expect("a served request carries a reply token");
            let asked: Value = serde_json::from_str(msg.data.get()).unwrap();
            let answer = if asked["fail"] == true {
                Err(ErrorBody::new(ErrorCode::NotFound, "no such thing"))
            } else {
                Ok(to_data(
                    &json!({"echo": asked, "from": msg.from.user, "app": msg.from.app}),
                ))
            };
            server.reply(&reply, answer).unwrap();
        }
    });

    let requester = d.owner().await;
    let answer: Value = requester
        .app("cli")
        .request_json("app.cli.echo", &json!({"hello": "there"}))
        .await
        .unwrap();
    assert_eq!(
        answer,
        json!({"echo": {"hello": "there"}, "from": aether_tests::OWNER, "app": "cli"})
    );

    let failed = requester
        .app("cli")
        .request_json::<_, Value>("app.cli.echo", &json!({"fail": true}))
        .await;
    let msg = expect_code(failed, ErrorCode::NotFound);
    assert_eq!(
        msg, "no such thing",
        "the responder's error reaches the requester as sent"
    );

    // Over a raw socket the `res` carries the request's id.
    let mut ws = d.raw_owner().await;
    ws.send_json(
        &json!({"t": "req", "id": 42, "app": "cli", "topic": "app.cli.echo", "data": [1, 2]}),
    )
    .await;
    let res = ws.recv_frame().await;
    assert_eq!(res["t"], "res", "{res}");
    assert_eq!(res["id"], 42, "{res}");
    assert_eq!(res["data"]["echo"], json!([1, 2]), "{res}");

    // A reply to a request nobody is waiting for is refused.
    ws.send_expect_err(
        &json!({"t": "reply", "to": "999999", "data": 1}),
        "not_found",
    )
    .await;
    ws.send_expect_err(
        &json!({"t": "reply", "to": "not-a-token", "data": 1}),
        "bad_frame",
    )
    .await;
    ws.ping().await;
    serve_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_nobody_serves_gets_no_responders() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let asked = owner
        .app("cli")
        .request_raw("app.cli.nobody", to_data(&1), None)
        .await;
    let msg = expect_code(asked, ErrorCode::NoResponders);
    assert!(
        msg.contains("app.cli.nobody"),
        "the message names the topic: {msg}"
    );
    owner.ping().await.unwrap();

    let mut ws = d.raw_owner().await;
    let err = ws
        .send_expect_err(
            &json!({"t": "req", "id": 77, "app": "cli", "topic": "app.cli.nobody"}),
            "no_responders",
        )
        .await;
    assert_eq!(err["id"], 77, "{err}");
    ws.ping().await;
    assert!(
        stats(&owner).await["hub"]["no_responders"]
            .as_u64()
            .unwrap()
            >= 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_responder_never_answers_times_out() {
    let d = TestDaemon::start().await;
    let responder = d.owner().await;
    let mut serving = responder.app("cli").serve("app.cli.slow").await.unwrap();

    let requester = d.owner().await;
    let started = Instant::now();
    let asked = requester
        .app("cli")
        .request_raw(
            "app.cli.slow",
            to_data(&"hurry"),
            Some(Duration::from_millis(200)),
        )
        .await;
    let elapsed = started.elapsed();
    let msg = expect_code(asked, ErrorCode::Timeout);
    assert!(
        msg.contains("200 ms"),
        "the message says how long it waited: {msg}"
    );
    assert!(
        elapsed >= Duration::from_millis(200),
        "answered too soon: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(2),
        "the daemon's timeout, not the client's: {elapsed:?}"
    );

    // The responder did get it, and answering now is too late.
    let msg = next_msg(&mut serving).await;
    assert_eq!(msg.topic, "app.cli.slow");
    let mut ws = d.raw_owner().await;
    ws.send_json(
        &json!({"t": "sub", "id": 1, "app": "cli", "topic": "app.cli.slow2", "serve": true}),
    )
    .await;
    assert_eq!(ws.recv_frame().await, json!({"t": "ok", "id": 1}));
    let asked = requester
        .app("cli")
        .request_raw(
            "app.cli.slow2",
            to_data(&1),
            Some(Duration::from_millis(100)),
        )
        .await;
    expect_code(asked, ErrorCode::Timeout);
    let late = ws.recv_frame().await;
    assert_eq!(late["t"], "msg", "{late}");
    let err = ws
        .send_expect_err(
            &json!({"t": "reply", "to": late["reply"], "data": "late"}),
            "not_found",
        )
        .await;
    assert!(err["msg"].as_str().unwrap().contains("timed out"), "{err}");
    ws.ping().await;
    requester.ping().await.unwrap();
    assert!(stats(&requester).await["hub"]["timeouts"].as_u64().unwrap() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_that_disconnects_mid_request_leaves_the_daemon_healthy() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let mut responder = d.raw_owner().await;
    responder
        .send_json(
            &json!({"t": "sub", "id": 1, "app": "cli", "topic": "app.cli.work", "serve": true}),
        )
        .await;
    assert_eq!(responder.recv_frame().await, json!({"t": "ok", "id": 1}));

    let mut requester = d.raw_owner().await;
    requester
        .send_json(&json!({"t": "req", "id": 5, "app": "cli", "topic": "app.cli.work", "data": "job", "timeout_ms": 30000}))
        .await;
    let job = responder.recv_frame().await;
    assert_eq!(job["t"], "msg", "{job}");
    let reply_to = job["reply"].clone();
    assert!(
        reply_to.is_string(),
        "a served request carries a reply token: {job}"
    );
    // The job and this very stats request.
    assert_eq!(stats(&owner).await["hub"]["pending_requests"], 2);

    requester.abort();
    wait_until(
        "the daemon forgets the departed requester's request",
        Duration::from_secs(5),
        async || stats(&owner).await["hub"]["pending_requests"] == 1,
    )
    .await;

    // The late answer has nowhere to go: the responder is told, and lives on.
    let err = responder
        .send_expect_err(
            &json!({"t": "reply", "to": reply_to, "data": "done"}),
            "not_found",
        )
        .await;
    assert!(err.get("id").is_none(), "{err}");
    responder.ping().await;

    // Everyone else is fine, and the responder still serves.
    let answer = tokio::spawn({
        let owner = owner.clone();
        async move {
            owner
                .app("cli")
                .request_raw("app.cli.work", to_data(&"again"), None)
                .await
        }
    });
    let job = responder.recv_frame().await;
    responder
        .send_json(&json!({"t": "reply", "to": job["reply"], "data": "done again"}))
        .await;
    assert_eq!(answer.await.unwrap().unwrap().get(), r#""done again""#);
    owner.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_that_disconnects_mid_request_fails_it_with_unavailable() {
    let d = TestDaemon::start().await;
    let mut responder = d.raw_owner().await;
    responder
        .send_json(
            &json!({"t": "sub", "id": 1, "app": "cli", "topic": "app.cli.work", "serve": true}),
        )
        .await;
    assert_eq!(responder.recv_frame().await, json!({"t": "ok", "id": 1}));

    let requester = d.owner().await;
    let started = Instant::now();
    let asking = tokio::spawn({
        let requester = requester.clone();
        async move {
            requester
                .app("cli")
                .request_raw(
                    "app.cli.work",
                    to_data(&"job"),
                    Some(Duration::from_secs(20)),
                )
                .await
        }
    });
    let job = responder.recv_frame().await;
    assert_eq!(job["t"], "msg", "{job}");
    responder.abort();

    let asked = tokio::time::timeout(Duration::from_secs(5), asking)
        .await
        .expect("the requester is told at once, not at its timeout")
        .unwrap();
    let msg = expect_code(asked, ErrorCode::Unavailable);
    assert!(msg.contains("went away"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // The requester lives on; nobody serves the topic any more.
    requester.ping().await.unwrap();
    let again = requester
        .app("cli")
        .request_raw("app.cli.work", to_data(&1), None)
        .await;
    expect_code(again, ErrorCode::NoResponders);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reconnects_and_resubscribes_after_a_daemon_restart() {
    let mut d = TestDaemon::start().await;
    let options = ClientOptions {
        reconnect: true,
        ..client_options()
    };
    let client = AetherClient::connect(&d.unix_endpoint(), Auth::Local, options)
        .await
        .unwrap();
    let mut sub = client.app("cli").subscribe("app.cli.news").await.unwrap();

    d.restart().await;
    let publisher = d.owner().await;
    // The client comes back on its own backoff: publish until the old subscription hears one.
    let msg = wait_for(
        "the resubscribed subscription receives a publication",
        Duration::from_secs(10),
        async || {
            publisher
                .app("cli")
                .publish_acked("app.cli.news", to_data(&"after restart"))
                .await
                .unwrap();
            tokio::time::timeout(Duration::from_millis(100), sub.next_msg())
                .await
                .ok()
                .flatten()
        },
    )
    .await;
    assert_eq!(msg.topic, "app.cli.news");
    assert_eq!(msg.data.get(), r#""after restart""#);
    client
        .ping()
        .await
        .expect("the reconnected client answers pings");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_timeout_is_the_default_and_an_unknown_error_code_still_answers() {
    let d = TestDaemon::start().await;
    let mut responder = d.raw_owner().await;
    responder
        .send_json(
            &json!({"t": "sub", "id": 1, "app": "cli", "topic": "app.cli.odd", "serve": true}),
        )
        .await;
    assert_eq!(responder.recv_frame().await, json!({"t": "ok", "id": 1}));
    let mut requester = d.raw_owner().await;
    // `timeout_ms: 0` is the default (10 s), as in the guest interface, not 1 ms.
    requester
        .send_json(&json!({"t": "req", "id": 5, "app": "cli", "topic": "app.cli.odd", "data": 1, "timeout_ms": 0}))
        .await;
    let asked = responder.recv_frame().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // An error code outside the closed set: the requester is answered at once.
    let started = std::time::Instant::now();
    responder
        .send_json(&json!({"t": "reply", "to": asked["reply"], "error": {"code": "teapot", "msg": "short and stout"}}))
        .await;
    let err = requester.expect_err("internal").await;
    assert_eq!(err["id"], 5);
    assert!(err["msg"].as_str().unwrap().contains("teapot"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}
