//! Malformed frames: each gets an `err` and the connection lives on,
//! except a frame over the size limit, which closes it.

use aether_tests::TestDaemon;
use aether_tests::wire::{self, Got, Wire};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_json_text_is_a_bad_frame_and_the_connection_lives_on() {
    let d = TestDaemon::start().await;
    let mut ws = d.raw_owner().await;

    ws.send_text("this is not json {").await;
    let err = ws.expect_err("bad_frame").await;
    assert!(
        err.get("id").is_none(),
        "an unreadable frame has no id: {err}"
    );
    assert!(
        err["msg"].as_str().unwrap().contains("not a JSON object"),
        "{err}"
    );
    ws.ping().await;

    // Valid JSON that is not an object is no better.
    ws.send_text("[1,2,3]").await;
    ws.expect_err("bad_frame").await;
    ws.send_text("").await;
    ws.expect_err("bad_frame").await;
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_frame_is_a_bad_frame_and_the_connection_lives_on() {
    let d = TestDaemon::start().await;
    let mut ws = d.raw_owner().await;

    // Even a binary frame holding a valid JSON frame is refused: the protocol is text.
    ws.send_binary(br#"{"t":"ping","id":1}"#.to_vec()).await;
    let err = ws.expect_err("bad_frame").await;
    assert!(err["msg"].as_str().unwrap().contains("binary"), "{err}");
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_frame_type_is_a_bad_frame_that_keeps_its_id() {
    let d = TestDaemon::start().await;
    let mut ws = d.raw_owner().await;

    let err = ws
        .send_expect_err(&json!({"t": "dance", "id": 5}), "bad_frame")
        .await;
    assert_eq!(err["id"], 5, "{err}");
    assert!(
        err["msg"].as_str().unwrap().contains("unknown frame type"),
        "{err}"
    );

    // No `t` at all.
    let err = ws
        .send_expect_err(&json!({"id": 6, "app": "cli"}), "bad_frame")
        .await;
    assert_eq!(err["id"], 6, "{err}");
    assert!(
        err["msg"].as_str().unwrap().contains("missing frame type"),
        "{err}"
    );

    // A `t` that is not a string.
    ws.send_expect_err(&json!({"t": 5, "id": 7}), "bad_frame")
        .await;
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_field_is_a_bad_frame_that_keeps_its_id() {
    let d = TestDaemon::start().await;
    let mut ws = d.raw_owner().await;

    let err = ws
        .send_expect_err(
            &json!({"t": "sub", "id": 6, "topic": "app.cli.x"}),
            "bad_frame",
        )
        .await;
    assert_eq!(err["id"], 6, "{err}");
    assert!(
        err["msg"].as_str().unwrap().contains("app"),
        "the message names the field: {err}"
    );

    let err = ws
        .send_expect_err(&json!({"t": "req", "id": 8, "app": "cli"}), "bad_frame")
        .await;
    assert_eq!(err["id"], 8, "{err}");
    assert!(
        err["msg"].as_str().unwrap().contains("topic"),
        "the message names the field: {err}"
    );

    let err = ws
        .send_expect_err(&json!({"t": "unsub", "id": 9}), "bad_frame")
        .await;
    assert_eq!(err["id"], 9, "{err}");
    assert!(
        err["msg"].as_str().unwrap().contains("sub"),
        "the message names the field: {err}"
    );
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_field_is_a_bad_frame_that_keeps_its_id_when_readable() {
    let d = TestDaemon::start().await;
    let mut ws = d.raw_owner().await;

    let err = ws
        .send_expect_err(
            &json!({"t": "pub", "id": 7, "app": "cli", "topic": 5}),
            "bad_frame",
        )
        .await;
    assert_eq!(err["id"], 7, "{err}");
    assert!(
        err["msg"].as_str().unwrap().contains("bad `pub` frame"),
        "{err}"
    );

    let err = ws
        .send_expect_err(
            &json!({"t": "sub", "id": 9, "app": "cli", "topic": "app.cli.x", "serve": "yes"}),
            "bad_frame",
        )
        .await;
    assert_eq!(err["id"], 9, "{err}");

    // The id itself is mistyped: the err cannot name it.
    let err = ws
        .send_expect_err(
            &json!({"t": "req", "id": "x", "app": "cli", "topic": "sys.ping"}),
            "bad_frame",
        )
        .await;
    assert!(
        err.get("id").is_none(),
        "an unreadable id is not echoed: {err}"
    );

    // An app id that is not one.
    let err = ws
        .send_expect_err(
            &json!({"t": "pub", "id": 10, "app": "Not An App", "topic": "app.cli.x"}),
            "bad_frame",
        )
        .await;
    assert_eq!(err["id"], 10, "{err}");
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_hello_is_unauthenticated_and_ends_the_connection_as_documented() {
    let d = TestDaemon::start().await;
    let token = d.owner_token(None).await;
    let mut ws = d.raw().await;
    ws.hello_token(&token).await;

    let err = ws
        .send_expect_err(
            &json!({"t": "hello", "v": 1, "auth": {"kind": "token", "token": token}}),
            "unauthenticated",
        )
        .await;
    assert!(
        err["msg"].as_str().unwrap().contains("already signed in"),
        "{err}"
    );
    ws.expect_bye("unauthenticated").await;
    ws.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_limit_gets_bye_too_large_and_closes() {
    const LIMIT: usize = 64 * 1024;
    let d = TestDaemon::start_with(|c| c.limits.max_frame_bytes = LIMIT).await;
    let mut ws = d.raw_owner().await;

    // Just under the limit is fine.
    let fits = json!({"t": "pub", "id": 1, "app": "cli", "topic": "app.cli.big", "data": "x".repeat(LIMIT - 200)});
    assert!(fits.to_string().len() < LIMIT);
    ws.send_json(&fits).await;
    assert_eq!(ws.recv_frame().await, json!({"t": "ok", "id": 1}));

    let over = json!({"t": "pub", "id": 2, "app": "cli", "topic": "app.cli.big", "data": "x".repeat(LIMIT + 16 * 1024)});
    ws.send_json(&over).await;
    ws.expect_bye("too_large").await;
    ws.expect_closed().await;

    // The daemon itself is fine.
    let mut again = d.raw_owner().await;
    again.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_topics_are_bad_topic_and_the_connection_lives_on() {
    let d = TestDaemon::start().await;
    let mut ws = d.raw_owner().await;

    let ten_thousand_tokens = vec!["a"; 10_000].join(".");
    let seventeen_tokens = vec!["a"; 17].join(".");
    let bad_everywhere = [
        "a..b",
        ".a",
        "a.",
        "",
        ten_thousand_tokens.as_str(),
        seventeen_tokens.as_str(),
        "vfs.réad",
        "app.cli.has space",
        " app.cli.x",
        "App.cli.x",
        "a*",
    ];
    let mut id = 100;
    for topic in bad_everywhere {
        for frame in [
            json!({"t": "sub", "id": id, "app": "cli", "topic": topic}),
            json!({"t": "sub", "id": id + 1, "app": "cli", "topic": topic, "serve": true}),
            json!({"t": "pub", "id": id + 2, "app": "cli", "topic": topic, "data": 1}),
            json!({"t": "req", "id": id + 3, "app": "cli", "topic": topic, "data": 1}),
        ] {
            let err = ws.send_expect_err(&frame, "bad_topic").await;
            assert_eq!(
                err["id"], frame["id"],
                "the err keeps the frame's id: {err}"
            );
        }
        id += 4;
    }

    // `>` anywhere but last, in a pattern.
    for pattern in ["a.>.b", ">.a", "app.>.cli.>"] {
        let err = ws
            .send_expect_err(
                &json!({"t": "sub", "id": id, "app": "cli", "topic": pattern}),
                "bad_topic",
            )
            .await;
        assert!(err["msg"].as_str().unwrap().contains("last"), "{err}");
        id += 1;
    }
    // Wildcards where a concrete topic is needed.
    for topic in ["app.cli.*", "app.cli.>", ">"] {
        ws.send_expect_err(
            &json!({"t": "pub", "id": id, "app": "cli", "topic": topic}),
            "bad_topic",
        )
        .await;
        ws.send_expect_err(
            &json!({"t": "req", "id": id + 1, "app": "cli", "topic": topic}),
            "bad_topic",
        )
        .await;
        id += 2;
    }
    ws.ping().await;

    // None of the refused subscriptions took a slot: a good one still works.
    ws.send_json(&json!({"t": "sub", "id": 1, "app": "cli", "topic": "app.cli.fine"}))
        .await;
    assert_eq!(ws.recv_frame().await, json!({"t": "ok", "id": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_limit_in_small_fragments_also_gets_bye_too_large() {
    const LIMIT: usize = 64 * 1024;
    let d = TestDaemon::start_with(|c| c.limits.max_frame_bytes = LIMIT).await;
    let mut ws = d.raw_owner().await;

    // Fragmented but under the limit: reassembled and accepted.
    let fits = json!({"t": "pub", "id": 1, "app": "cli", "topic": "app.cli.big", "data": "x".repeat(LIMIT / 2)});
    ws.send_fragmented_text(&fits.to_string(), 8).await;
    assert_eq!(ws.recv_frame().await, json!({"t": "ok", "id": 1}));

    // Every fragment is small, the message is not.
    let over = json!({"t": "pub", "id": 2, "app": "cli", "topic": "app.cli.big", "data": "x".repeat(2 * LIMIT)});
    ws.send_fragmented_text(&over.to_string(), 16).await;
    ws.expect_bye("too_large").await;
    ws.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_over_the_limit_gets_bye_too_large_and_closes() {
    const LIMIT: usize = 64 * 1024;
    let d = TestDaemon::start_with(|c| c.limits.max_frame_bytes = LIMIT).await;
    let mut ws = d.raw().await;
    ws.send_json(&json!({"t": "hello", "v": 1, "auth": {"kind": "guest"}, "client": "x".repeat(LIMIT + 1024)}))
        .await;
    let first = ws.recv_frame().await;
    let bye = if first["t"] == "err" {
        ws.recv_frame().await
    } else {
        first.clone()
    };
    assert_eq!(bye["t"], "bye", "{bye}");
    assert_eq!(
        bye["reason"], "too_large",
        "a hello over the size limit is too large: {first} {bye}"
    );
    ws.expect_closed().await;
    d.raw_owner().await.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reusing_a_subscription_id_or_unsubscribing_an_unknown_one_is_refused() {
    let d = TestDaemon::start().await;
    let mut ws = d.raw_owner().await;
    ws.send_json(&json!({"t": "sub", "id": 1, "app": "cli", "topic": "app.cli.a"}))
        .await;
    assert_eq!(ws.recv_frame().await, json!({"t": "ok", "id": 1}));

    let err = ws
        .send_expect_err(
            &json!({"t": "sub", "id": 1, "app": "cli", "topic": "app.cli.b"}),
            "bad_frame",
        )
        .await;
    assert_eq!(err["id"], 1, "{err}");
    assert!(
        err["msg"].as_str().unwrap().contains("already in use"),
        "{err}"
    );

    let err = ws
        .send_expect_err(&json!({"t": "unsub", "id": 2, "sub": 99}), "not_found")
        .await;
    assert_eq!(err["id"], 2, "{err}");
    ws.ping().await;

    // The first subscription is untouched by the refused reuse of its id, and the refused
    // pattern reaches nobody: deliveries are queued in order, so had `app.cli.b` been
    // subscribed, it would arrive between the two publications on `app.cli.a`.
    let owner = d.owner().await;
    let cli = owner.app("cli");
    for (topic, data) in [("app.cli.a", "a1"), ("app.cli.b", "b"), ("app.cli.a", "a2")] {
        cli.publish_acked(topic, aether_tests::to_data(&data))
            .await
            .unwrap();
    }
    for expected in ["a1", "a2"] {
        let msg = ws.recv_frame().await;
        assert_eq!(msg["t"], "msg", "{msg}");
        assert_eq!(msg["sub"], 1, "{msg}");
        assert_eq!(msg["topic"], "app.cli.a", "{msg}");
        assert_eq!(msg["data"], expected, "{msg}");
    }
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_nested_deeper_than_the_limit_is_refused_so_no_client_gets_what_it_cannot_parse() {
    let d = TestDaemon::start().await;
    let mut publisher = d.raw_owner().await;
    let mut subscriber = d.raw_owner().await;
    subscriber
        .send_json(&json!({"t": "sub", "id": 1, "app": "cli", "topic": "app.cli.deep"}))
        .await;
    assert_eq!(subscriber.recv_frame().await["t"], "ok");
    let nested = |depth: usize| {
        format!(
            r#"{{"t":"pub","app":"cli","topic":"app.cli.deep","data":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    let limit = aether_proto::frame::MAX_NESTING;

    // At the limit (the frame itself counts as one level): refused, for every frame type.
    for depth in [limit, 10_000, 1_000_000] {
        publisher.send_text(nested(depth)).await;
        let err = publisher.expect_err("bad_frame").await;
        assert!(
            err["msg"].as_str().unwrap().contains("deeper than"),
            "{err}"
        );
    }
    let deep = format!(
        "{}{}",
        "{\"a\":".repeat(limit),
        "1".to_owned() + &"}".repeat(limit)
    );
    publisher
        .send_text(format!(
            r#"{{"t":"req","id":9,"app":"cli","topic":"sys.ping","data":{deep}}}"#
        ))
        .await;
    publisher.expect_err("bad_frame").await;
    publisher.ping().await;

    // Just under it: delivered, and the subscriber can parse every frame it gets.
    publisher.send_text(nested(limit - 1)).await;
    let msg = subscriber.recv_frame().await;
    assert_eq!(msg["t"], "msg", "{msg}");
    let mut depth = 0;
    let mut data = &msg["data"];
    while let Some(inner) = data.get(0) {
        depth += 1;
        data = inner;
    }
    assert_eq!(depth, limit - 2, "the payload arrives whole");
}

async fn signed_in_wire(d: &TestDaemon) -> Wire {
    let token = d.owner_token(None).await;
    let mut wire = Wire::connect(d.daemon().tcp_addr().unwrap()).await;
    wire.hello(&token).await;
    wire
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_frame_that_is_not_utf8_is_said_and_closed_with_1007() {
    let d = TestDaemon::start().await;
    let mut wire = signed_in_wire(&d).await;
    wire.send(wire::TEXT, b"{\"t\":\"ping\",\"id\":1,\"x\":\"\xff\xfe\"}")
        .await;
    let (texts, end) = wire.until_close().await;
    assert!(
        texts.iter().any(|t| t["t"] == "err"
            && t["code"] == "bad_frame"
            && t["msg"].as_str().unwrap().contains("not UTF-8")),
        "{texts:?}"
    );
    assert!(matches!(end, Got::Close(1007, _)), "{end:?}");
    wire.expect_eof().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_websocket_protocol_is_closed_with_1002_saying_why() {
    let d = TestDaemon::start().await;
    let ping = br#"{"t":"ping","id":1}"#;
    let cases: Vec<(&str, u8, bool, Vec<u8>)> = vec![
        (
            "a reserved bit",
            0x80 | 0x40 | wire::TEXT,
            true,
            ping.to_vec(),
        ),
        (
            "an unmasked client frame",
            0x80 | wire::TEXT,
            false,
            ping.to_vec(),
        ),
        ("a reserved data opcode", 0x80 | 0x3, true, ping.to_vec()),
        ("a reserved control opcode", 0x80 | 0xb, true, vec![]),
        (
            "a control frame over 125 bytes",
            0x80 | wire::PING,
            true,
            vec![b'x'; 126],
        ),
        ("a fragmented control frame", wire::PING, true, vec![]),
        (
            "a stray continuation",
            0x80 | wire::CONTINUATION,
            true,
            ping.to_vec(),
        ),
    ];
    for (what, first, masked, payload) in cases {
        let mut wire = signed_in_wire(&d).await;
        wire.send_raw(first, masked, &payload).await;
        let (_, end) = wire.until_close().await;
        match end {
            Got::Close(1002, reason) => assert!(!reason.is_empty(), "{what}: no reason"),
            other => panic!("{what}: {other:?}"),
        }
        wire.expect_eof().await;
    }
    // The daemon is fine.
    d.raw_owner().await.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_close_is_answered_with_a_close() {
    let d = TestDaemon::start().await;
    let mut wire = signed_in_wire(&d).await;
    wire.send(wire::CLOSE, &[0x03, 0xe8, b'o', b'k']).await;
    let (_, end) = wire.until_close().await;
    assert!(matches!(end, Got::Close(1000, _)), "{end:?}");
    wire.expect_eof().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_a_frame_over_the_limit_reads_its_bye_and_close_not_a_reset() {
    const LIMIT: usize = 64 * 1024;
    let d = TestDaemon::start_with(|c| c.limits.max_frame_bytes = LIMIT).await;
    let mut wire = signed_in_wire(&d).await;
    // One 4 MiB frame, sent whole while reading, as a client does.
    let payload = format!(
        r#"{{"t":"pub","app":"cli","topic":"app.cli.big","data":"{}"}}"#,
        "x".repeat(4 << 20)
    );
    let mut frame = vec![0x80 | wire::TEXT, 0x80 | 127];
    frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload.as_bytes());
    let (got, reset) = wire.send_while_reading(&frame).await;
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains(r#""t":"bye","reason":"too_large""#),
        "the bye was read: {text}"
    );
    assert!(
        !reset,
        "the connection was reset before the client read everything"
    );
    // The Close says why, with 1009.
    let close = got
        .windows(2)
        .position(|w| w[0] == 0x88)
        .map(|at| u16::from_be_bytes([got[at + 2], got[at + 3]]));
    assert_eq!(close, Some(1009));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_too_deep_is_answered_by_its_own_id() {
    let d = TestDaemon::start().await;
    let mut ws = d.raw_owner().await;
    let deep = format!(
        r#"{{"t":"req","id":77,"app":"cli","topic":"sys.ping","data":{}1{}}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    ws.send_text(deep).await;
    let err = ws.expect_err("bad_frame").await;
    assert_eq!(err["id"], 77, "{err}");
    ws.ping().await;
}
