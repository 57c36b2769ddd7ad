//! Chat and presence among several users: membership enforced for every topic and pattern,
//! history, edits, mentions, limits, and presence that follows connections.

use std::time::Duration;

use aether_proto::ErrorCode;
use aether_proto::api::chat;
use aether_proto::client::{AppHandle, ClientError, Subscription};
use aether_proto::frame::Auth;
use aether_tests::{TestDaemon, expect_code, next_msg};
use serde_json::{Value, json};

async fn req(app: &AppHandle, topic: &str, data: Value) -> Result<Value, ClientError> {
    app.request_json(topic, &data).await
}

/// The next message on `sub` whose topic ends with `suffix`.
async fn next_on(sub: &mut Subscription, suffix: &str) -> Value {
    loop {
        let msg = next_msg(sub).await;
        if msg.topic.ends_with(suffix) {
            return serde_json::from_str(msg.data.get()).unwrap();
        }
    }
}

/// The next presence change of `user` to `state`.
async fn presence_of(sub: &mut Subscription, user: &str, state: &str) -> Value {
    loop {
        let seen = next_on(sub, "presence.changed").await;
        if seen["user"] == user && seen["state"] == state {
            return seen;
        }
    }
}

/// Nothing arrives on `sub` for a while.
async fn silent(sub: &mut Subscription, what: &str) {
    if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(300), sub.next_msg()).await {
        panic!("{what}: got {} {}", msg.topic, msg.data.get());
    }
}

async fn three_users(d: &TestDaemon) {
    for name in ["ana", "bob", "eve"] {
        d.add_user(name, &format!("{name} password 1")).await;
    }
}

async fn chat_of(d: &TestDaemon, name: &str) -> (aether_proto::client::AetherClient, AppHandle) {
    let client = d.sign_in(name, &format!("{name} password 1")).await;
    let chat = client.app("chat");
    (client, chat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_room_is_live_for_its_members_and_invisible_to_others_by_any_pattern() {
    let d = TestDaemon::start().await;
    three_users(&d).await;
    let (_a, ana) = chat_of(&d, "ana").await;
    let (_b, bob) = chat_of(&d, "bob").await;
    let (_e, eve) = chat_of(&d, "eve").await;
    let mut eve_all = eve.subscribe("chat.>").await.unwrap();
    let mut eve_rooms = eve.subscribe("chat.room.>").await.unwrap();
    let mut eve_star = eve.subscribe("chat.room.secret.*").await.unwrap();

    req(
        &ana,
        "chat.create",
        json!({ "room": "secret", "private": true, "topic": "plans" }),
    )
    .await
    .unwrap();
    req(
        &ana,
        "chat.invite",
        json!({ "room": "secret", "user": "bob" }),
    )
    .await
    .unwrap();
    let mut bob_room = bob.subscribe("chat.room.>").await.unwrap();
    let posted = req(
        &ana,
        "chat.post",
        json!({ "room": "secret", "text": "hi @bob" }),
    )
    .await
    .unwrap();
    assert_eq!(posted["seq"], 1);
    let got = next_on(&mut bob_room, ".message").await;
    assert_eq!(got["text"], "hi @bob");
    assert_eq!(got["user"], "ana");
    assert_eq!(got["mentions"], json!(["bob"]));
    let rooms = req(&bob, "chat.rooms", json!({})).await.unwrap();
    let secret = &rooms["rooms"][0];
    assert_eq!(
        (
            secret["room"].as_str(),
            secret["unread"].as_u64(),
            secret["mentions"].as_u64()
        ),
        (Some("secret"), Some(1), Some(1)),
        "{rooms}"
    );
    // Read on one terminal, read on all of Bob's (and told to nobody else).
    let (_b2, bob_elsewhere) = chat_of(&d, "bob").await;
    let mut bob_reads = bob_elsewhere.subscribe("chat.room.*.read").await.unwrap();
    let mut ana_reads = ana.subscribe("chat.room.*.read").await.unwrap();
    let read = bob
        .request(&chat::MarkRead {
            room: "secret".into(),
            seq: None,
        })
        .await
        .unwrap();
    assert_eq!((read.unread, read.mentions), (0, 0));
    let told = next_on(&mut bob_reads, ".read").await;
    assert_eq!(
        (told["room"].as_str(), told["unread"].as_u64()),
        (Some("secret"), Some(0))
    );
    silent(&mut ana_reads, "ana is not told what bob read").await;

    // Eve: nothing by any pattern, no history, no posting, no joining, not even its name.
    silent(&mut eve_all, "chat.>").await;
    silent(&mut eve_rooms, "chat.room.>").await;
    silent(&mut eve_star, "chat.room.secret.*").await;
    let eve_list = req(&eve, "chat.rooms", json!({})).await.unwrap();
    assert_eq!(eve_list["rooms"], json!([]), "{eve_list}");
    for (topic, data) in [
        ("chat.history", json!({ "room": "secret" })),
        (
            "chat.post",
            json!({ "room": "secret", "text": "let me in" }),
        ),
        ("chat.members", json!({ "room": "secret" })),
        ("chat.invite", json!({ "room": "secret", "user": "eve" })),
    ] {
        let msg = expect_code(req(&eve, topic, data).await, ErrorCode::Forbidden);
        assert!(msg.contains("not a member"), "{topic}: {msg}");
    }
    let msg = expect_code(
        req(&eve, "chat.join", json!({ "room": "secret" })).await,
        ErrorCode::NotFound,
    );
    assert!(msg.contains("invitation"), "{msg}");
    // The same answer for a room that does not exist: a private room's name stays private.
    let nothing = expect_code(
        req(&eve, "chat.history", json!({ "room": "nothing" })).await,
        ErrorCode::Forbidden,
    );
    assert_eq!(
        nothing.replace("nothing", "secret"),
        expect_code(
            req(&eve, "chat.history", json!({ "room": "secret" })).await,
            ErrorCode::Forbidden
        )
    );

    // History pages, newest last; threads; search.
    for i in 2..=5 {
        req(
            &bob,
            "chat.post",
            json!({ "room": "secret", "text": format!("reply {i}"), "reply_to": 1 }),
        )
        .await
        .unwrap();
    }
    let page = req(
        &ana,
        "chat.history",
        json!({ "room": "secret", "limit": 2 }),
    )
    .await
    .unwrap();
    let seqs: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [4, 5]);
    assert_eq!(page["more"], true);
    let older = req(
        &ana,
        "chat.history",
        json!({ "room": "secret", "before": 4 }),
    )
    .await
    .unwrap();
    assert_eq!(older["messages"].as_array().unwrap().len(), 3);
    assert_eq!(older["more"], false);
    let found = req(
        &ana,
        "chat.history",
        json!({ "room": "secret", "search": "REPLY 3" }),
    )
    .await
    .unwrap();
    assert_eq!(found["messages"][0]["seq"], 3, "{found}");
    let thread = req(
        &ana,
        "chat.history",
        json!({ "room": "secret", "thread": 1 }),
    )
    .await
    .unwrap();
    assert_eq!(thread["messages"].as_array().unwrap().len(), 5);

    // Leaving: no more of the room.
    req(&bob, "chat.leave", json!({ "room": "secret" }))
        .await
        .unwrap();
    let _ = next_on(&mut bob_room, ".member").await;
    req(
        &ana,
        "chat.post",
        json!({ "room": "secret", "text": "bob is gone" }),
    )
    .await
    .unwrap();
    silent(&mut bob_room, "after leaving").await;
    let msg = expect_code(
        req(
            &bob,
            "chat.post",
            json!({ "room": "secret", "text": "back?" }),
        )
        .await,
        ErrorCode::Forbidden,
    );
    assert!(msg.contains("not a member"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_floods_and_other_peoples_messages_are_refused() {
    let d = TestDaemon::start().await;
    three_users(&d).await;
    let (_a, ana) = chat_of(&d, "ana").await;
    let (_b, bob) = chat_of(&d, "bob").await;
    req(&ana, "chat.create", json!({ "room": "general" }))
        .await
        .unwrap();
    req(&bob, "chat.join", json!({ "room": "general" }))
        .await
        .unwrap();
    expect_code(
        req(
            &ana,
            "chat.post",
            json!({ "room": "general", "text": "  " }),
        )
        .await,
        ErrorCode::BadFrame,
    );
    expect_code(
        req(
            &ana,
            "chat.post",
            json!({ "room": "general", "text": "x".repeat(20_000) }),
        )
        .await,
        ErrorCode::TooLarge,
    );
    expect_code(
        req(
            &ana,
            "chat.post",
            json!({ "room": "general", "text": "bell\u{7}" }),
        )
        .await,
        ErrorCode::BadFrame,
    );
    expect_code(
        req(&ana, "chat.create", json!({ "room": "Bad Name!" })).await,
        ErrorCode::BadFrame,
    );
    expect_code(
        req(&ana, "chat.create", json!({ "room": "general" })).await,
        ErrorCode::Conflict,
    );
    expect_code(
        req(
            &ana,
            "chat.post",
            json!({ "room": "general", "text": "hi", "reply_to": 99 }),
        )
        .await,
        ErrorCode::NotFound,
    );
    expect_code(
        req(
            &ana,
            "chat.history",
            json!({ "room": "general", "limit": 100_000 }),
        )
        .await,
        ErrorCode::BadFrame,
    );

    let mine = req(
        &ana,
        "chat.post",
        json!({ "room": "general", "text": "original" }),
    )
    .await
    .unwrap();
    let seq = mine["seq"].clone();
    let msg = expect_code(
        req(
            &bob,
            "chat.edit",
            json!({ "room": "general", "seq": seq, "text": "forged" }),
        )
        .await,
        ErrorCode::Forbidden,
    );
    assert!(msg.contains("not yours"), "{msg}");
    expect_code(
        req(
            &bob,
            "chat.delete",
            json!({ "room": "general", "seq": seq }),
        )
        .await,
        ErrorCode::Forbidden,
    );
    let edited = req(
        &ana,
        "chat.edit",
        json!({ "room": "general", "seq": seq, "text": "edited" }),
    )
    .await
    .unwrap();
    assert_eq!(edited["text"], "edited");
    assert!(edited["edited_ms"].is_u64());
    let deleted = req(
        &ana,
        "chat.delete",
        json!({ "room": "general", "seq": seq }),
    )
    .await
    .unwrap();
    assert_eq!(
        (deleted["deleted"].as_bool(), deleted["text"].as_str()),
        (Some(true), Some(""))
    );
    expect_code(
        req(
            &ana,
            "chat.edit",
            json!({ "room": "general", "seq": seq, "text": "again" }),
        )
        .await,
        ErrorCode::Conflict,
    );

    // A flood from Bob is slowed; Ana is not.
    let mut limited = None;
    for i in 0..60 {
        if let Err(e) = req(
            &bob,
            "chat.post",
            json!({ "room": "general", "text": format!("spam {i}") }),
        )
        .await
        {
            limited = Some(expect_code::<Value>(Err(e), ErrorCode::RateLimited));
            break;
        }
    }
    let msg = limited.expect("the flood is rate limited");
    assert!(msg.contains("wait"), "{msg}");
    req(
        &ana,
        "chat.post",
        json!({ "room": "general", "text": "I can still talk" }),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_follows_connections_and_reaches_only_those_who_share_a_room() {
    let d = TestDaemon::start().await;
    three_users(&d).await;
    let (_a, ana) = chat_of(&d, "ana").await;
    let (_e, eve) = chat_of(&d, "eve").await;
    let mut ana_sees = ana.subscribe("presence.>").await.unwrap();
    let mut eve_sees = eve.subscribe("presence.>").await.unwrap();
    // Ana and Bob share a direct message; Eve shares nothing.
    let (bob_one, bob) = chat_of(&d, "bob").await;
    req(&bob, "chat.direct", json!({ "user": "ana" }))
        .await
        .unwrap();
    let list = req(&ana, "presence.list", json!({})).await.unwrap();
    let bob_now = list["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user"] == "bob")
        .cloned();
    assert_eq!(bob_now.unwrap()["state"], "online", "{list}");

    // Two terminals: closing one keeps Bob online; closing both makes him offline.
    let (bob_two, bob2) = chat_of(&d, "bob").await;
    req(
        &bob2,
        "presence.set",
        json!({ "away": true, "text": "lunch" }),
    )
    .await
    .unwrap();
    let seen = presence_of(&mut ana_sees, "bob", "away").await;
    assert_eq!(seen["text"], "lunch");
    req(&bob2, "presence.set", json!({ "away": false }))
        .await
        .unwrap();
    presence_of(&mut ana_sees, "bob", "online").await;
    bob_one.close();
    drop(bob_one);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let list = req(&ana, "presence.list", json!({})).await.unwrap();
    let bob_now = list["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user"] == "bob")
        .cloned()
        .unwrap();
    assert_eq!(
        bob_now["state"], "online",
        "one terminal is still open: {list}"
    );
    bob_two.close();
    drop(bob_two);
    let gone = presence_of(&mut ana_sees, "bob", "offline").await;
    assert!(gone["last_seen_ms"].is_u64(), "{gone}");
    // Eve may hear her own coming online (it can land after she subscribed), never Bob.
    while let Ok(Some(msg)) =
        tokio::time::timeout(Duration::from_millis(300), eve_sees.next_msg()).await
    {
        let seen: Value = serde_json::from_str(msg.data.get()).unwrap();
        assert_eq!(seen["user"], "eve", "Eve shares no room with Bob: {seen}");
    }
    let eve_list = req(&eve, "presence.list", json!({})).await.unwrap();
    assert_eq!(
        eve_list["people"].as_array().unwrap().len(),
        1,
        "only herself: {eve_list}"
    );
    expect_code(
        req(&eve, "presence.set", json!({ "text": "x".repeat(500) })).await,
        ErrorCode::BadFrame,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_join_public_rooms_but_make_none_and_take_no_direct_messages() {
    let d = TestDaemon::start_with(|c| c.guest = true).await;
    d.add_user("ana", "ana password 1").await;
    let (_a, ana) = chat_of(&d, "ana").await;
    req(&ana, "chat.create", json!({ "room": "lobby" }))
        .await
        .unwrap();
    req(
        &ana,
        "chat.create",
        json!({ "room": "staff", "private": true }),
    )
    .await
    .unwrap();
    let guest = d.connect_tcp(Auth::Guest).await.unwrap();
    let g = guest.app("chat");
    let rooms = req(&g, "chat.rooms", json!({})).await.unwrap();
    let names: Vec<&str> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lobby"], "public rooms only: {rooms}");
    req(&g, "chat.join", json!({ "room": "lobby" }))
        .await
        .unwrap();
    req(
        &g,
        "chat.post",
        json!({ "room": "lobby", "text": "hello from a guest" }),
    )
    .await
    .unwrap();
    expect_code(
        req(&g, "chat.create", json!({ "room": "mine" })).await,
        ErrorCode::Forbidden,
    );
    expect_code(
        req(&g, "chat.direct", json!({ "user": "ana" })).await,
        ErrorCode::Forbidden,
    );
    expect_code(
        req(&g, "chat.join", json!({ "room": "staff" })).await,
        ErrorCode::NotFound,
    );
    let guest_name = guest.welcome().user.name.clone();
    let msg = expect_code(
        req(&ana, "chat.direct", json!({ "user": guest_name })).await,
        ErrorCode::Forbidden,
    );
    assert!(msg.contains("guest"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_public_rooms_of_someone_else_never_hide_yours() {
    let mut d = TestDaemon::start().await;
    three_users(&d).await;
    {
        let (_a, ana) = chat_of(&d, "ana").await;
        for (room, private) in [("zz-mine", true), ("zz-team", false)] {
            req(
                &ana,
                "chat.create",
                json!({ "room": room, "private": private }),
            )
            .await
            .unwrap();
        }
    }
    // Bob made 1,200 public rooms (written straight into the store: the daemon would make
    // him wait between them), all sorting before ana's.
    d.stop().await;
    let store = aetherd::store::Store::open(&d.config().db_path()).unwrap();
    store
        .call_sync(|c| {
            let bob: i64 = c.query_row("SELECT id FROM users WHERE name = 'bob'", [], |r| r.get(0))?;
            let tx = c.transaction()?;
            for i in 0..1200 {
                tx.execute(
                    "INSERT INTO chat_rooms(name, private, created_by, created_ms) VALUES (?1, 0, ?2, 0)",
                    rusqlite::params![format!("a{i:04}"), bob],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .unwrap();
    drop(store);
    d.restart().await;
    let (_a, ana) = chat_of(&d, "ana").await;
    let first = ana.request(&chat::Rooms::default()).await.unwrap();
    let joined: Vec<&str> = first
        .rooms
        .iter()
        .filter(|r| r.joined)
        .map(|r| r.room.as_str())
        .collect();
    assert_eq!(joined, ["zz-mine", "zz-team"], "hers come first, every one");
    assert_eq!(first.rooms.len(), 2 + 200, "then a page of public rooms");
    assert_eq!(first.more_public.as_deref(), Some("a0199"));
    // The public list pages to its end.
    let mut seen = 200;
    let mut after = first.more_public.clone();
    while let Some(from) = after {
        let page = ana
            .request(&chat::Rooms {
                public_after: Some(from),
                public_limit: Some(500),
            })
            .await
            .unwrap();
        assert!(page.rooms.iter().all(|r| !r.joined));
        seen += page.rooms.len();
        after = page.more_public;
    }
    assert_eq!(seen, 1200);
    expect_code(
        ana.request(&chat::Rooms {
            public_after: None,
            public_limit: Some(0),
        })
        .await,
        ErrorCode::BadFrame,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_moves_new_rooms_and_presence_are_rate_limited_per_user() {
    let d = TestDaemon::start().await;
    three_users(&d).await;
    let (_a, ana) = chat_of(&d, "ana").await;
    let (_b, bob) = chat_of(&d, "bob").await;
    req(&ana, "chat.create", json!({ "room": "team" }))
        .await
        .unwrap();
    req(&bob, "chat.join", json!({ "room": "team" }))
        .await
        .unwrap();
    let mut bob_hears = bob.subscribe("chat.room.team.>").await.unwrap();
    let posted = req(&ana, "chat.post", json!({ "room": "team", "text": "v1" }))
        .await
        .unwrap();
    let seq = posted["seq"].as_u64().unwrap();
    // 200 edits in a burst: the first few pass, the rest wait, and bob hears only those.
    let mut passed = 0;
    let mut limited = None;
    for i in 0..200 {
        match req(
            &ana,
            "chat.edit",
            json!({ "room": "team", "seq": seq, "text": format!("v{i}") }),
        )
        .await
        {
            Ok(_) => passed += 1,
            Err(ClientError::Daemon(e)) if e.code == ErrorCode::RateLimited => {
                limited = Some(e);
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(passed < 40, "{passed} edits passed in a burst");
    let limited = limited.expect("a burst of edits is limited");
    assert!(limited.retry_after_ms.is_some(), "{limited:?}");
    let mut heard = 0;
    while let Ok(Some(_)) =
        tokio::time::timeout(Duration::from_millis(300), bob_hears.next_msg()).await
    {
        heard += 1;
    }
    assert!(heard <= passed + 1, "bob heard {heard} for {passed} edits");
    // Leaving and joining again and again.
    let mut moves_limited = false;
    for _ in 0..30 {
        let left = req(&bob, "chat.leave", json!({ "room": "team" })).await;
        let joined = req(&bob, "chat.join", json!({ "room": "team" })).await;
        if [left, joined]
            .iter()
            .any(|r| matches!(r, Err(ClientError::Daemon(e)) if e.code == ErrorCode::RateLimited))
        {
            moves_limited = true;
            break;
        }
    }
    assert!(moves_limited, "leave/join cycles are limited");
    // New rooms.
    let made: Vec<_> = futures_util::future::join_all(
        (0..30).map(|i| req(&ana, "chat.create", json!({ "room": format!("r{i}") }))),
    )
    .await;
    assert!(
        made.iter().any(|r| {
            matches!(r, Err(ClientError::Daemon(e)) if e.code == ErrorCode::RateLimited)
        })
    );
    // Presence changes.
    let mut presence_limited = false;
    for i in 0..40 {
        let set = aether_proto::api::presence::Set {
            away: Some(i % 2 == 0),
            text: None,
        };
        if let Err(ClientError::Daemon(e)) = ana.request(&set).await {
            assert_eq!(e.code, ErrorCode::RateLimited);
            presence_limited = true;
            break;
        }
    }
    assert!(presence_limited, "presence flips are limited");
    // Others are not slowed: eve posts at once.
    let (_e, eve) = chat_of(&d, "eve").await;
    req(&eve, "chat.create", json!({ "room": "eves" }))
        .await
        .unwrap();
    req(&eve, "chat.post", json!({ "room": "eves", "text": "hi" }))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn making_a_room_does_not_say_that_a_private_one_of_that_name_exists() {
    let d = TestDaemon::start().await;
    three_users(&d).await;
    let (_a, ana) = chat_of(&d, "ana").await;
    let (_e, eve) = chat_of(&d, "eve").await;
    req(
        &ana,
        "chat.create",
        json!({ "room": "secret", "private": true }),
    )
    .await
    .unwrap();
    req(&ana, "chat.create", json!({ "room": "lobby" }))
        .await
        .unwrap();
    let msg = expect_code(
        req(&eve, "chat.create", json!({ "room": "secret" })).await,
        ErrorCode::Conflict,
    );
    assert!(
        !msg.contains("exists") && msg.contains("not available"),
        "{msg}"
    );
    let public = expect_code(
        req(&eve, "chat.create", json!({ "room": "lobby" })).await,
        ErrorCode::Conflict,
    );
    assert!(public.contains("exists already: join it"), "{public}");
}
