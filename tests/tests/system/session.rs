//! `session.*`: a user's saved layouts follow the user to any connection, never to another
//! user; the last save wins; bad names and states are refused clearly; only apps with the
//! `session` capability reach them.

use aether_proto::ErrorCode;
use aether_proto::api::session::{
    self, Delete, ListSessions, Load, MAX_SESSIONS_PER_USER, MAX_STATE_BYTES, Save,
};
use aether_proto::client::{AppHandle, ClientError, Subscription};
use aether_proto::frame::Auth;
use aether_tests::{TestDaemon, expect_code, next_msg};
use serde_json::{Value, json};

async fn save(app: &AppHandle, name: &str, state: Value) -> Result<session::Saved, ClientError> {
    app.request(&Save {
        name: name.into(),
        state,
    })
    .await
}

async fn load(app: &AppHandle, name: &str) -> session::Loaded {
    app.request(&Load { name: name.into() })
        .await
        .unwrap_or_else(|e| panic!("session.load {name} failed: {e}"))
}

async fn list(app: &AppHandle) -> Vec<session::SessionInfo> {
    app.request(&ListSessions {})
        .await
        .unwrap_or_else(|e| panic!("session.list failed: {e}"))
        .sessions
}

async fn delete(app: &AppHandle, name: &str) -> session::Deleted {
    app.request(&Delete { name: name.into() })
        .await
        .unwrap_or_else(|e| panic!("session.delete {name} failed: {e}"))
}

fn layout(tag: &str) -> Value {
    json!({ "tag": tag, "panes": [{ "app": "files", "cwd": "/notes" }, { "app": "terminal" }], "focus": 1 })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_session_loads_back_on_any_connection_of_the_same_user() {
    let d = TestDaemon::start().await;
    d.add_user("ana", "ana password 1").await;
    let laptop = d.sign_in("ana", "ana password 1").await;
    let desktop = laptop.app("desktop");

    let mut events = laptop
        .app("cli")
        .subscribe("telemetry.session.>")
        .await
        .unwrap();
    let saved = save(&desktop, "main", layout("first")).await.unwrap();
    assert_eq!((saved.name.as_str(), saved.revision), ("main", 1));
    let event: Value = Subscription::decode(&next_msg(&mut events).await).unwrap();
    assert_eq!(
        (&event["op"], &event["name"], &event["ok"]),
        (&json!("save"), &json!("main"), &json!(true)),
        "{event}"
    );

    let loaded = load(&desktop, "main").await;
    assert_eq!(loaded.name, "main");
    assert_eq!(loaded.state, Some(layout("first")));
    assert_eq!(loaded.revision, 1);
    assert!(loaded.saved_at_ms.is_some_and(|ms| ms > 0), "{loaded:?}");

    // Another terminal of ana's, signed in another way (a token over TCP), as another app.
    let token = d.token_for("ana", "ana password 1", None).await;
    let other = d.connect_tcp(Auth::Token { token }).await.unwrap();
    let there = load(&other.app("cli"), "main").await;
    assert_eq!(there.state, Some(layout("first")));
    assert_eq!(there.revision, 1);
    assert_eq!(there.saved_at_ms, loaded.saved_at_ms);

    // Nothing saved under a name: no state, revision 0.
    let none = load(&desktop, "elsewhere").await;
    assert_eq!(
        (none.state, none.revision, none.saved_at_ms),
        (None, 0, None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_never_sees_or_touches_a_session() {
    let d = TestDaemon::start().await;
    d.add_user("ana", "ana password 1").await;
    d.add_user("bob", "bob password 1").await;
    let ana = d.sign_in("ana", "ana password 1").await;
    let bob = d.sign_in("bob", "bob password 1").await;
    let (ana, bob) = (ana.app("desktop"), bob.app("desktop"));

    save(&ana, "main", layout("ana's")).await.unwrap();
    let seen = load(&bob, "main").await;
    assert_eq!(
        (seen.state, seen.revision, seen.saved_at_ms),
        (None, 0, None),
        "bob must not see ana's session"
    );
    assert!(list(&bob).await.is_empty());
    assert!(
        !delete(&bob, "main").await.existed,
        "bob cannot delete ana's"
    );
    // Bob's own session of the same name is his alone, from revision 1.
    assert_eq!(
        save(&bob, "main", layout("bob's")).await.unwrap().revision,
        1
    );
    let ana_main = load(&ana, "main").await;
    assert_eq!(
        (ana_main.state, ana_main.revision),
        (Some(layout("ana's")), 1)
    );
    assert_eq!(load(&bob, "main").await.state, Some(layout("bob's")));
    // The owner has none of them.
    let owner = d.owner().await;
    assert!(list(&owner.app("desktop")).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_save_wins_and_revisions_increase() {
    let d = TestDaemon::start().await;
    let first = d.owner().await;
    let second = d.owner().await;
    let (a, b) = (first.app("desktop"), second.app("desktop"));
    let mut last_ms = 0;
    for (i, app) in [&a, &b, &a, &b].into_iter().enumerate() {
        let tag = format!("save {i}");
        let saved = save(app, "work", layout(&tag)).await.unwrap();
        assert_eq!(saved.revision, i as u64 + 1);
        let loaded = load(if i % 2 == 0 { &b } else { &a }, "work").await;
        assert_eq!(loaded.state, Some(layout(&tag)), "the last save wins");
        assert_eq!(loaded.revision, saved.revision);
        let ms = loaded.saved_at_ms.unwrap();
        assert!(ms >= last_ms, "saved_at_ms went back: {ms} < {last_ms}");
        last_ms = ms;
    }
    let listed = list(&a).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revision, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_states_are_refused_clearly_and_the_connection_lives_on() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let desktop = owner.app("desktop");
    let long = "n".repeat(65);
    for name in [
        "",
        long.as_str(),
        "a/b",
        "../up",
        "two words",
        "tab\there",
        "café",
    ] {
        let msg = expect_code(save(&desktop, name, json!({})).await, ErrorCode::BadFrame);
        assert!(msg.contains("`name`"), "save {name:?}: {msg}");
        let msg = expect_code(
            desktop.request(&Load { name: name.into() }).await,
            ErrorCode::BadFrame,
        );
        assert!(msg.contains("`name`"), "load {name:?}: {msg}");
        let msg = expect_code(
            desktop.request(&Delete { name: name.into() }).await,
            ErrorCode::BadFrame,
        );
        assert!(msg.contains("`name`"), "delete {name:?}: {msg}");
        owner.ping().await.expect("the connection lives on");
    }
    assert_eq!(
        save(&desktop, &"n".repeat(64), json!({}))
            .await
            .unwrap()
            .revision,
        1,
        "64 characters is a name"
    );

    for (state, kind) in [
        (json!([1, 2]), "an array"),
        (json!("layout"), "a string"),
        (json!(7), "a number"),
        (Value::Null, "null"),
    ] {
        let msg = expect_code(save(&desktop, "main", state).await, ErrorCode::BadFrame);
        assert!(
            msg.contains("`state`") && msg.contains("object") && msg.contains(kind),
            "{msg}"
        );
        owner.ping().await.expect("the connection lives on");
    }

    // Exactly 1 MiB as compact JSON fits; one byte more does not.
    let fits = json!({ "s": "x".repeat(MAX_STATE_BYTES - r#"{"s":""}"#.len()) });
    assert_eq!(serde_json::to_string(&fits).unwrap().len(), MAX_STATE_BYTES);
    save(&desktop, "big", fits).await.unwrap();
    let over = json!({ "s": "x".repeat(MAX_STATE_BYTES + 1 - r#"{"s":""}"#.len()) });
    let msg = expect_code(save(&desktop, "big", over).await, ErrorCode::TooLarge);
    assert!(
        msg.contains("`state`") && msg.contains("1 MiB") && msg.contains("1048577"),
        "{msg}"
    );
    owner.ping().await.expect("the connection lives on");
    assert_eq!(
        load(&desktop, "big").await.revision,
        1,
        "the refused save changed nothing"
    );

    // The user is the connection's, never the payload's; unknown and missing fields are refused.
    let msg = expect_code(
        desktop
            .request_json::<_, Value>(
                "session.save",
                &json!({ "name": "main", "state": {}, "user": "bob" }),
            )
            .await,
        ErrorCode::BadFrame,
    );
    assert!(msg.contains("user"), "{msg}");
    let msg = expect_code(
        desktop
            .request_json::<_, Value>("session.save", &json!({ "name": "main" }))
            .await,
        ErrorCode::BadFrame,
    );
    assert!(msg.contains("state"), "{msg}");
    owner.ping().await.expect("the connection lives on");
    let names: Vec<String> = list(&desktop).await.into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["big".to_owned(), "n".repeat(64)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_without_the_session_capability_is_denied() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    save(&owner.app("desktop"), "main", layout("mine"))
        .await
        .unwrap();
    for app in ["files", "terminal"] {
        let app = owner.app(app);
        for result in [
            save(&app, "main", json!({})).await.map(drop),
            app.request(&Load {
                name: "main".into(),
            })
            .await
            .map(drop),
            app.request(&ListSessions {}).await.map(drop),
            app.request(&Delete {
                name: "main".into(),
            })
            .await
            .map(drop),
        ] {
            let msg = expect_code(result, ErrorCode::Forbidden);
            assert!(msg.contains("`session`"), "{msg}");
        }
    }
    owner.ping().await.expect("the connection lives on");
    // A token bound to the desktop reaches the user's sessions, and only as the desktop.
    let token = d.owner_token(Some("desktop")).await;
    let bound = d.connect_tcp(Auth::Token { token }).await.unwrap();
    assert_eq!(
        load(&bound.app("desktop"), "main").await.state,
        Some(layout("mine"))
    );
    expect_code(
        bound
            .app("cli")
            .request(&Load {
                name: "main".into(),
            })
            .await,
        ErrorCode::Forbidden,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_by_name_and_deleted() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let desktop = owner.app("desktop");
    assert!(list(&desktop).await.is_empty());
    save(&desktop, "work", layout("w")).await.unwrap();
    save(&desktop, "home", layout("h1")).await.unwrap();
    save(&desktop, "home", layout("h2")).await.unwrap();

    let listed = list(&desktop).await;
    let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["home", "work"]);
    assert_eq!((listed[0].revision, listed[1].revision), (2, 1));
    let bytes = serde_json::to_string(&layout("h2")).unwrap().len() as u64;
    assert_eq!(listed[0].bytes, bytes);
    assert_eq!(
        Some(listed[0].saved_at_ms),
        load(&desktop, "home").await.saved_at_ms
    );

    let deleted = delete(&desktop, "home").await;
    assert_eq!((deleted.name.as_str(), deleted.existed), ("home", true));
    assert!(!delete(&desktop, "home").await.existed);
    let names: Vec<String> = list(&desktop).await.into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["work"]);
    assert_eq!(load(&desktop, "home").await.state, None);
    // Saved again after a delete, it starts over.
    assert_eq!(
        save(&desktop, "home", layout("h3")).await.unwrap().revision,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_keeps_a_bounded_number_of_sessions() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let desktop = owner.app("desktop");
    for i in 0..MAX_SESSIONS_PER_USER {
        save(&desktop, &format!("s{i}"), json!({})).await.unwrap();
    }
    let msg = expect_code(
        save(&desktop, "one-more", json!({})).await,
        ErrorCode::QuotaExceeded,
    );
    assert!(msg.contains(&MAX_SESSIONS_PER_USER.to_string()), "{msg}");
    // Saving over an existing one still works, and a delete makes room.
    assert_eq!(save(&desktop, "s0", json!({})).await.unwrap().revision, 2);
    assert!(delete(&desktop, "s1").await.existed);
    save(&desktop, "one-more", json!({})).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_restart() {
    let mut d = TestDaemon::start().await;
    {
        let owner = d.owner().await;
        let desktop = owner.app("desktop");
        save(&desktop, "main", layout("a")).await.unwrap();
        save(&desktop, "main", layout("b")).await.unwrap();
        owner.close();
    }
    d.restart().await;
    let owner = d.owner().await;
    let loaded = load(&owner.app("desktop"), "main").await;
    assert_eq!((loaded.state, loaded.revision), (Some(layout("b")), 2));
}
