//! The permission manager seen from outside: app binding, capabilities, namespaces.

use aether_proto::ErrorCode;
use aether_proto::frame::Auth;
use aether_tests::{TestDaemon, expect_code, next_msg, to_data};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_bound_to_one_app_cannot_act_as_another() {
    let d = TestDaemon::start().await;
    let token = d.owner_token(Some("files")).await;
    let mut ws = d.raw().await;
    let welcome = ws.hello_token(&token).await;
    assert_eq!(
        welcome["app"], "files",
        "the welcome names the bound app: {welcome}"
    );

    for frame in [
        json!({"t": "req", "id": 3, "app": "chat", "topic": "sys.ping"}),
        json!({"t": "sub", "id": 4, "app": "chat", "topic": "chat.room.>"}),
        json!({"t": "pub", "id": 5, "app": "cli", "topic": "app.cli.x", "data": 1}),
    ] {
        let err = ws.send_expect_err(&frame, "forbidden").await;
        assert_eq!(err["id"], frame["id"], "{err}");
        let msg = err["msg"].as_str().unwrap();
        assert!(
            msg.contains("bound") && msg.contains("files"),
            "the message names the binding: {err}"
        );
    }

    // As its own app it works.
    ws.send_json(&json!({"t": "req", "id": 6, "app": "files", "topic": "sys.ping"}))
        .await;
    assert_eq!(
        ws.recv_frame().await,
        json!({"t": "res", "id": 6, "data": {"pong": true}})
    );

    // And it cannot mint itself a way out.
    ws.send_json(&json!({"t": "req", "id": 7, "app": "files", "topic": "sys.token.create", "data": {"app": "chat"}}))
        .await;
    let err = ws.expect_err("forbidden").await;
    assert_eq!(err["id"], 7, "{err}");
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_outside_the_apps_capabilities_is_forbidden_and_names_the_capability() {
    let d = TestDaemon::start().await;
    let mut ws = d.raw_owner().await;

    let err = ws
        .send_expect_err(
            &json!({"t": "req", "id": 5, "app": "files", "topic": "chat.post", "data": {"room": "general", "text": "hi"}}),
            "forbidden",
        )
        .await;
    assert_eq!(err["id"], 5, "{err}");
    assert!(
        err["msg"].as_str().unwrap().contains("`chat`"),
        "the message names the missing capability: {err}"
    );

    let err = ws
        .send_expect_err(
            &json!({"t": "sub", "id": 6, "app": "files", "topic": "chat.room.>"}),
            "forbidden",
        )
        .await;
    assert!(err["msg"].as_str().unwrap().contains("`chat`"), "{err}");

    let err = ws
        .send_expect_err(
            &json!({"t": "req", "id": 7, "app": "chat", "topic": "vfs.read", "data": {}}),
            "forbidden",
        )
        .await;
    assert!(err["msg"].as_str().unwrap().contains("`vfs_read`"), "{err}");

    // Apps may serve only their own namespace, and unknown apps may do nothing.
    ws.send_expect_err(
        &json!({"t": "sub", "id": 8, "app": "files", "topic": "vfs.read", "serve": true}),
        "forbidden",
    )
    .await;
    ws.send_expect_err(
        &json!({"t": "pub", "id": 9, "app": "files", "topic": "app.cli.x", "data": 1}),
        "forbidden",
    )
    .await;
    let err = ws
        .send_expect_err(
            &json!({"t": "req", "id": 10, "app": "ghost", "topic": "sys.ping"}),
            "forbidden",
        )
        .await;
    assert!(err["msg"].as_str().unwrap().contains("ghost"), "{err}");
    ws.ping().await;

    // The same request as an app that has the capability passes.
    ws.send_json(&json!({"t": "req", "id": 11, "app": "chat", "topic": "chat.rooms", "data": {}}))
        .await;
    assert_eq!(
        ws.recv_frame().await,
        json!({"t": "res", "id": 11, "data": {"rooms": []}})
    );
    // A room's events come from the chat service alone: no app publishes them.
    ws.send_expect_err(
        &json!({"t": "pub", "id": 12, "app": "chat", "topic": "chat.room.general.message", "data": {"text": "forged"}}),
        "forbidden",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_admin_user_cannot_use_admin_topics() {
    let d = TestDaemon::start().await;
    d.add_user("ana", "correct horse battery").await;
    let ana = d.sign_in("ana", "correct horse battery").await;
    let add = ana
        .app("cli")
        .request_json::<_, Value>(
            "sys.user.add",
            &json!({"name": "eve", "password": "12345678"}),
        )
        .await;
    let msg = expect_code(add, ErrorCode::Forbidden);
    assert!(msg.contains("admin"), "{msg}");
    let stop = ana
        .app("cli")
        .request_json::<_, Value>("sys.daemon.stop", &json!({}))
        .await;
    expect_code(stop, ErrorCode::Forbidden);
    ana.ping().await.expect("ana's connection lives on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_subscription_never_reaches_another_users_namespace() {
    let d = TestDaemon::start().await;
    d.add_user("ana", "ana password 1").await;
    d.add_user("bob", "bob password 1").await;
    let ana = d.sign_in("ana", "ana password 1").await;
    let ana_listener = d.sign_in("ana", "ana password 1").await;
    let bob = d.sign_in("bob", "bob password 1").await;

    let mut bob_sub = bob
        .app("cli")
        .subscribe("app.cli.>")
        .await
        .expect("bob may watch his own namespace");
    let mut ana_sub = ana_listener
        .app("cli")
        .subscribe("app.cli.>")
        .await
        .unwrap();

    ana.app("cli")
        .publish_acked("app.cli.x", to_data(&json!({"secret": "ana's"})))
        .await
        .unwrap();
    let got = next_msg(&mut ana_sub).await;
    assert_eq!(got.topic, "app.cli.x");
    assert_eq!(got.from.user, "ana");
    assert_eq!(got.data.get(), r#"{"secret":"ana's"}"#);

    // Bob's queue is in order: had ana's message reached him, it would come before his own marker.
    bob.app("cli")
        .publish_acked("app.cli.marker", to_data(&"bob's"))
        .await
        .unwrap();
    let first = next_msg(&mut bob_sub).await;
    assert_eq!(
        first.topic, "app.cli.marker",
        "bob received ana's private message: {first:?}"
    );
    assert_eq!(first.from.user, "bob");

    // Wider patterns are refused outright.
    for pattern in [">", "app.>", "*.cli.>", "*.*.*"] {
        let refused = bob.app("cli").subscribe(pattern).await.map(|s| s.id());
        expect_code(refused, ErrorCode::Forbidden);
    }

    // Requests do not cross users either: ana serves, bob finds nobody.
    let _serving = ana.app("cli").serve("app.cli.svc").await.unwrap();
    let asked = bob
        .app("cli")
        .request_raw("app.cli.svc", to_data(&1), None)
        .await;
    expect_code(asked, ErrorCode::NoResponders);
    bob.ping().await.expect("bob's connection lives on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_message_reaches_the_rooms_members_with_the_sender_stamped_by_the_daemon() {
    let d = TestDaemon::start().await;
    d.add_user("ana", "ana password 1").await;
    d.add_user("bob", "bob password 1").await;
    let ana_token = d.token_for("ana", "ana password 1", Some("chat")).await;
    let bob = d
        .connect_tcp(Auth::Password {
            user: "bob".into(),
            password: "bob password 1".into(),
        })
        .await
        .unwrap();
    let mut ana = d.raw().await;
    ana.hello_token(&ana_token).await;
    ana.send_json(&json!({"t": "req", "id": 1, "app": "chat", "topic": "chat.create", "data": {"room": "general"}}))
        .await;
    assert_eq!(ana.recv_frame().await["t"], "res");
    let chat = bob.app("chat");
    let mut room = chat.subscribe("chat.room.>").await.unwrap();
    chat.request_json::<_, Value>("chat.join", &json!({"room": "general"}))
        .await
        .unwrap();

    // Ana claims to be someone else; the daemon ignores the claim.
    ana.send_json(&json!({
        "t": "req", "id": 2, "app": "chat", "topic": "chat.post",
        "from": {"user": "mallory", "app": "cli"},
        "data": {"room": "general", "text": "hello bob"}
    }))
    .await;
    assert_eq!(ana.recv_frame().await["t"], "res");

    let msg = loop {
        let msg = next_msg(&mut room).await;
        if msg.topic == "chat.room.general.message" {
            break msg;
        }
    };
    assert_eq!(msg.from.user, "ana");
    assert_eq!(msg.from.app, "chat");
    let data: Value = serde_json::from_str(msg.data.get()).unwrap();
    assert_eq!(data["user"], "ana");
    assert_eq!(data["text"], "hello bob");
}

/// The session remembers decisions up to a limit; making room forgets what was allowed,
/// not what was denied, so a denial asked again after thousands of other topics is not
/// audited twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_is_audited_once_however_many_topics_come_after_it() {
    use aether_proto::api::sys::{AuditList, AuditListAnswer};
    use std::time::Duration;
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let files = owner.app("files");
    let denied = |topic: &'static str| {
        let files = files.clone();
        async move {
            let result = files.request_json::<_, Value>(topic, &json!({})).await;
            expect_code(result, ErrorCode::Forbidden);
        }
    };
    denied("chat.rooms").await;
    for i in 0..5_000 {
        files
            .publish(&format!("app.files.t{i}"), to_data(&json!(i)))
            .unwrap();
    }
    owner.ping().await.unwrap();
    denied("chat.rooms").await;
    // A denial after it, so once that one is written the second would have been too.
    denied("chat.history").await;
    let cli = owner.app("cli");
    let entries = aether_tests::wait_for(
        "the last denial is audited",
        Duration::from_secs(10),
        async || {
            let answer: AuditListAnswer =
                cli.request(&AuditList { limit: Some(100) }).await.unwrap();
            let last = answer.entries.iter().any(|e| e.topic == "chat.history");
            last.then_some(answer.entries)
        },
    )
    .await;
    let rooms = entries
        .iter()
        .filter(|e| e.topic == "chat.rooms" && e.app.as_deref() == Some("files"));
    assert_eq!(rooms.count(), 1, "{entries:?}");
}
