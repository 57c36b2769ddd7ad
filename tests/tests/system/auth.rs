//! Signing in: hello, tokens, passwords, guests, the local owner.

use std::time::{Duration, Instant};

use aether_proto::ErrorCode;
use aether_proto::frame::Auth;
use aether_tests::{OWNER, TestDaemon, create_token, expect_code, wait_for};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_before_hello_is_refused_with_unauthenticated_then_bye() {
    let d = TestDaemon::start().await;

    for first in [
        json!({"t": "ping", "id": 1}),
        json!({"t": "sub", "id": 1, "app": "cli", "topic": "app.cli.x"}),
        json!({"t": "pub", "app": "cli", "topic": "app.cli.x", "data": 1}),
    ] {
        let mut ws = d.raw().await;
        ws.send_json(&first).await;
        let err = ws.expect_err("unauthenticated").await;
        assert!(
            err["msg"].as_str().unwrap().contains("hello"),
            "the message says hello comes first: {err}"
        );
        ws.expect_bye("unauthenticated").await;
        ws.expect_closed().await;
    }

    // Garbage and binary frames before hello are refused the same way.
    let mut ws = d.raw().await;
    ws.send_text("not json").await;
    ws.expect_err("unauthenticated").await;
    ws.expect_bye("unauthenticated").await;
    ws.expect_closed().await;

    let mut ws = d.raw().await;
    ws.send_binary(b"\x00\x01".to_vec()).await;
    ws.expect_err("unauthenticated").await;
    ws.expect_bye("unauthenticated").await;
    ws.expect_closed().await;

    // The daemon is fine.
    d.raw_owner().await.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_hello_within_the_deadline_is_refused_then_closed() {
    let d = TestDaemon::start_with(|c| c.limits.hello_timeout_ms = 300).await;
    let started = Instant::now();
    let mut ws = d.raw().await;
    let err = ws.expect_err("unauthenticated").await;
    assert!(
        err["msg"]
            .as_str()
            .unwrap()
            .contains("no hello within 300 ms"),
        "{err}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "refused before the deadline"
    );
    ws.expect_bye("unauthenticated").await;
    ws.expect_closed().await;

    // A prompt client is unaffected.
    d.raw_owner().await.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_then_closed() {
    let d = TestDaemon::start().await;

    for token in ["aet_definitely-not-a-token", "not even the right shape", ""] {
        let mut ws = d.raw().await;
        let err = ws.hello(json!({"kind": "token", "token": token})).await;
        assert_eq!(err["t"], "err", "{err}");
        assert_eq!(err["code"], "unauthenticated", "{err}");
        assert!(err["msg"].as_str().unwrap().contains("not valid"), "{err}");
        ws.expect_bye("unauthenticated").await;
        ws.expect_closed().await;
    }

    // The client library reports it as the daemon's refusal.
    let refused = d
        .connect_tcp(Auth::Token {
            token: "aet_wrong".into(),
        })
        .await;
    expect_code(refused, ErrorCode::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_in_another_protocol_version_or_shape_is_refused() {
    let d = TestDaemon::start().await;
    let token = d.owner_token(None).await;

    let mut ws = d.raw().await;
    ws.send_json(&json!({"t": "hello", "v": 2, "auth": {"kind": "token", "token": token}}))
        .await;
    let err = ws.expect_err("unauthenticated").await;
    assert!(err["msg"].as_str().unwrap().contains("version"), "{err}");
    ws.expect_bye("unauthenticated").await;
    ws.expect_closed().await;

    let mut ws = d.raw().await;
    ws.send_json(&json!({"t": "hello", "v": 1, "auth": {"kind": "telepathy"}}))
        .await;
    ws.expect_err("unauthenticated").await;
    ws.expect_bye("unauthenticated").await;
    ws.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let token = create_token(&owner, json!({"ttl_secs": 1})).await;

    // Expiry has a one-second grain: poll until the daemon refuses the token.
    let refusal = wait_for(
        "the one-second token expires",
        Duration::from_secs(5),
        async || match d
            .connect_tcp(Auth::Token {
                token: token.clone(),
            })
            .await
        {
            Ok(client) => {
                client.close();
                None
            }
            Err(e) => Some(e),
        },
    )
    .await;
    let msg = expect_code::<()>(Err(refusal), ErrorCode::Unauthenticated);
    assert!(
        msg.contains("expired"),
        "the refusal says the token expired: {msg}"
    );

    // On the wire: err, then bye, then close.
    let mut ws = d.raw().await;
    let err = ws.hello(json!({"kind": "token", "token": token})).await;
    assert_eq!(err["t"], "err", "{err}");
    assert_eq!(err["code"], "unauthenticated", "{err}");
    assert!(err["msg"].as_str().unwrap().contains("expired"), "{err}");
    ws.expect_bye("unauthenticated").await;
    ws.expect_closed().await;

    // A token with no lifetime at all is not minted.
    let bad = owner
        .app("cli")
        .request_json::<_, Value>("sys.token.create", &json!({"ttl_secs": 0}))
        .await;
    expect_code(bad, ErrorCode::BadFrame);
    owner.ping().await.expect("the owner's connection lives on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_sign_in_works_and_wrong_passwords_are_refused() {
    let d = TestDaemon::start().await;
    d.add_user("ana", "correct horse battery").await;

    let ana = d.sign_in("ana", "correct horse battery").await;
    let welcome = ana.welcome();
    assert_eq!(welcome.user.name, "ana");
    assert!(!welcome.user.admin);
    assert!(!welcome.user.guest);
    assert_eq!(welcome.app, None);
    ana.ping().await.expect("ana's connection works");

    let wrong = d
        .connect_tcp(Auth::Password {
            user: "ana".into(),
            password: "wrong horse battery".into(),
        })
        .await;
    expect_code(wrong, ErrorCode::Unauthenticated);
    let nobody = d
        .connect_tcp(Auth::Password {
            user: "nobody".into(),
            password: "correct horse battery".into(),
        })
        .await;
    expect_code(nobody, ErrorCode::Unauthenticated);

    // A token minted from a password sign-in signs in as the same user.
    let token = d.token_for("ana", "correct horse battery", None).await;
    let mut ws = d.raw().await;
    let welcome = ws.hello_token(&token).await;
    assert_eq!(welcome["user"]["name"], "ana", "{welcome}");
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_names_the_signed_in_user_and_app() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let me: Value = owner
        .app("cli")
        .request_json("sys.whoami", &json!({}))
        .await
        .unwrap();
    assert_eq!(me["user"]["name"], OWNER, "{me}");
    assert_eq!(
        me["user"]["admin"], true,
        "the local owner is an admin: {me}"
    );
    assert_eq!(me["app"], "cli", "{me}");
    assert_eq!(me["bound_app"], Value::Null, "{me}");

    // The same user acting as another app.
    let me: Value = owner
        .app("files")
        .request_json("sys.whoami", &json!({}))
        .await
        .unwrap();
    assert_eq!(me["app"], "files", "{me}");

    d.add_user("ana", "correct horse battery").await;
    let token = d
        .token_for("ana", "correct horse battery", Some("files"))
        .await;
    let ana = d.connect_tcp(Auth::Token { token }).await.unwrap();
    assert_eq!(ana.welcome().app.as_deref(), Some("files"));
    let me: Value = ana
        .app("files")
        .request_json("sys.whoami", &json!({}))
        .await
        .unwrap();
    assert_eq!(me["user"]["name"], "ana", "{me}");
    assert_eq!(me["user"]["admin"], false, "{me}");
    assert_eq!(me["bound_app"], "files", "{me}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_mode_is_off_by_default() {
    let d = TestDaemon::start().await;
    let refused = d.connect_tcp(Auth::Guest).await;
    let msg = expect_code(refused, ErrorCode::Unauthenticated);
    assert!(
        msg.contains("guest"),
        "the refusal says guest mode is off: {msg}"
    );

    let mut ws = d.raw().await;
    let err = ws.hello(json!({"kind": "guest"})).await;
    assert_eq!(err["t"], "err", "{err}");
    assert_eq!(err["code"], "unauthenticated", "{err}");
    ws.expect_bye("unauthenticated").await;
    ws.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_mode_when_enabled_gives_each_guest_a_fresh_account() {
    let d = TestDaemon::start_with(|c| c.guest = true).await;
    let first = d
        .connect_tcp(Auth::Guest)
        .await
        .expect("guests are allowed");
    let second = d
        .connect_tcp(Auth::Guest)
        .await
        .expect("guests are allowed");
    let (a, b) = (&first.welcome().user, &second.welcome().user);
    assert!(a.guest && b.guest, "{a:?} {b:?}");
    assert!(!a.admin, "a guest is never an admin");
    assert_ne!(a.name, b.name, "each guest is a different user");

    let me: Value = first
        .app("cli")
        .request_json("sys.whoami", &json!({}))
        .await
        .unwrap();
    assert_eq!(me["user"]["guest"], true, "{me}");
    // Guests may not manage users.
    let add = first
        .app("cli")
        .request_json::<_, Value>(
            "sys.user.add",
            &json!({"name": "eve", "password": "12345678"}),
        )
        .await;
    expect_code(add, ErrorCode::Forbidden);
    first.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_sign_in_over_tcp_is_refused() {
    let d = TestDaemon::start().await;
    let refused = d.connect_tcp(Auth::Local).await;
    let msg = expect_code(refused, ErrorCode::Unauthenticated);
    assert!(
        msg.contains("Unix socket"),
        "the refusal points to the Unix socket: {msg}"
    );

    // The same credentials work over the Unix socket.
    let owner = d
        .connect_unix(Auth::Local)
        .await
        .expect("local sign-in over the Unix socket");
    assert_eq!(owner.welcome().user.name, OWNER);
    assert!(owner.welcome().user.admin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_daemon_says_bye_shutdown_to_clients() {
    let mut d = TestDaemon::start().await;
    let mut ws = d.raw_owner().await;
    ws.ping().await;
    d.stop().await;
    ws.expect_bye("shutdown").await;
    ws.expect_closed().await;
}
