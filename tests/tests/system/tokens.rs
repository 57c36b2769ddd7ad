//! Tokens listed and revoked; revoked, expired and password-changed credentials end the
//! connections signed in with them, with `bye auth_expired`.

use std::time::{Duration, Instant};

use aether_proto::ErrorCode;
use aether_proto::api::{Call as _, sys};
use aether_proto::client::AetherClient;
use aether_proto::frame::Auth;
use aether_tests::{TestDaemon, expect_code};

async fn mint(client: &AetherClient, app: Option<&str>, label: &str) -> sys::TokenCreated {
    let ask = sys::TokenCreate {
        app: app.map(str::to_owned),
        label: Some(label.to_owned()),
        ttl_secs: None,
    };
    client
        .app(app.unwrap_or("cli"))
        .request(&ask)
        .await
        .unwrap_or_else(|e| panic!("sys.token.create failed: {e}"))
}

async fn list(client: &AetherClient, app: &str) -> Vec<sys::TokenInfo> {
    client
        .app(app)
        .request(&sys::TokenList {})
        .await
        .unwrap_or_else(|e| panic!("sys.token.list failed: {e}"))
        .tokens
}

async fn revoke(client: &AetherClient, ask: sys::TokenRevoke) -> sys::TokenRevoked {
    client
        .app("cli")
        .request(&ask)
        .await
        .unwrap_or_else(|e| panic!("sys.token.revoke failed: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_listed_without_secrets_and_a_revoked_tokens_connections_close_within_a_second()
{
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let laptop = mint(&owner, None, "laptop").await;
    let script = mint(&owner, Some("files"), "backup script").await;

    let tokens = list(&owner, "cli").await;
    let labels: Vec<&str> = tokens.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["laptop", "backup script"], "{tokens:?}");
    assert_eq!(tokens[1].app.as_deref(), Some("files"));
    assert!(
        tokens.iter().all(|t| !t.current),
        "the owner signed in locally"
    );

    // A connection signed in with the laptop token, and one with the script token.
    let mut on_laptop = d.raw().await;
    on_laptop.hello_token(&laptop.token).await;
    let mut on_script = d.raw().await;
    on_script.hello_token(&script.token).await;

    let revoked = revoke(
        &owner,
        sys::TokenRevoke {
            id: Some(laptop.id),
            all_others: false,
        },
    )
    .await;
    assert_eq!((revoked.revoked, revoked.closed), (1, 1));
    let started = Instant::now();
    let bye = on_laptop.expect_bye("auth_expired").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the bye came after {:?}",
        started.elapsed()
    );
    assert!(bye["msg"].as_str().unwrap().contains("revoked"), "{bye}");
    on_laptop.expect_closed().await;
    on_script.ping().await;

    // The revoked token signs in no more; the other still does.
    let refused = d
        .connect_tcp(Auth::Token {
            token: laptop.token.clone(),
        })
        .await;
    expect_code(refused, ErrorCode::Unauthenticated);
    let left: Vec<i64> = list(&owner, "cli").await.iter().map(|t| t.id).collect();
    assert_eq!(left, [script.id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_needs_a_token_of_ones_own_and_one_way_of_naming_it() {
    let d = TestDaemon::start().await;
    d.add_user("ana", "correct horse").await;
    let ana = d.sign_in("ana", "correct horse").await;
    let anas = mint(&ana, None, "ana's").await;
    let owner = d.owner().await;
    let cli = owner.app("cli");

    let unknown = cli
        .request(&sys::TokenRevoke {
            id: Some(anas.id + 1000),
            all_others: false,
        })
        .await;
    expect_code(unknown, ErrorCode::NotFound);
    // Another user's token: not found either, and it keeps working.
    let theirs = cli
        .request(&sys::TokenRevoke {
            id: Some(anas.id),
            all_others: false,
        })
        .await;
    expect_code(theirs, ErrorCode::NotFound);
    let still = d
        .connect_tcp(Auth::Token {
            token: anas.token.clone(),
        })
        .await
        .expect("ana's token still works");
    still.ping().await.unwrap();

    for ask in [
        sys::TokenRevoke {
            id: Some(anas.id),
            all_others: true,
        },
        sys::TokenRevoke::default(),
    ] {
        expect_code(cli.request(&ask).await, ErrorCode::BadFrame);
    }

    // An app-bound token sees and revokes only its own app's tokens.
    let files_token = mint(&ana, Some("files"), "files").await;
    let bound = d
        .connect_tcp(Auth::Token {
            token: files_token.token.clone(),
        })
        .await
        .unwrap();
    let seen = list(&bound, "files").await;
    assert_eq!(
        seen.iter().map(|t| t.id).collect::<Vec<_>>(),
        [files_token.id]
    );
    assert!(seen[0].current, "the token this connection signed in with");
    let other = bound
        .app("files")
        .request(&sys::TokenRevoke {
            id: Some(anas.id),
            all_others: false,
        })
        .await;
    expect_code(other, ErrorCode::NotFound);
    owner.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_closed_with_auth_expired_when_its_token_expires() {
    let d = TestDaemon::start().await;
    let owner = d.owner().await;
    let answer = owner
        .app("cli")
        .request(&sys::TokenCreate {
            ttl_secs: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ws = d.raw().await;
    ws.hello_token(&answer.token).await;
    ws.ping().await;
    let expires_at = answer.expires_at.expect("a token with a lifetime") as u64;
    let bye = ws.recv_frame_within(Duration::from_secs(4)).await;
    assert_eq!(bye["t"], "bye", "{bye}");
    assert_eq!(bye["reason"], "auth_expired", "{bye}");
    assert!(bye["msg"].as_str().unwrap().contains("expired"), "{bye}");
    let now = std::time::UNIX_EPOCH.elapsed().unwrap().as_secs_f64();
    assert!(
        now >= expires_at as f64 && now < expires_at as f64 + 1.0,
        "closed at {now}, the token expired at {expires_at}"
    );
    ws.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_a_password_revokes_the_users_other_credentials_unless_asked_not_to() {
    let d = TestDaemon::start().await;
    d.add_user("ana", "correct horse").await;
    let first = d.sign_in("ana", "correct horse").await;
    let phone = mint(&first, None, "phone").await;
    let tablet = mint(&first, None, "tablet").await;
    let mut on_tablet = d.raw().await;
    on_tablet.hello_token(&tablet.token).await;
    let mut by_password = d.raw().await;
    let welcome = by_password
        .hello(serde_json::json!({"kind": "password", "user": "ana", "password": "correct horse"}))
        .await;
    assert_eq!(welcome["t"], "welcome", "{welcome}");

    // Ana changes her password from the phone: the phone's token survives.
    let phone_client = d
        .connect_tcp(Auth::Token {
            token: phone.token.clone(),
        })
        .await
        .unwrap();
    let changed = phone_client
        .app("cli")
        .request(&sys::Passwd {
            name: None,
            password: "battery staple".into(),
            keep_tokens: false,
        })
        .await
        .unwrap();
    assert_eq!(changed.revoked, 1, "the tablet's token: {changed:?}");
    on_tablet.expect_bye("auth_expired").await;
    by_password.expect_bye("auth_expired").await;
    phone_client
        .ping()
        .await
        .expect("the phone's connection lives on");
    let remaining: Vec<i64> = list(&phone_client, "cli")
        .await
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(remaining, [phone.id]);
    expect_code(
        d.connect_tcp(Auth::Token {
            token: tablet.token.clone(),
        })
        .await,
        ErrorCode::Unauthenticated,
    );

    // Asked to keep them, a change leaves every token alone.
    let kept = phone_client
        .app("cli")
        .request(&sys::Passwd {
            name: None,
            password: "a third password".into(),
            keep_tokens: true,
        })
        .await
        .unwrap();
    assert_eq!(kept.revoked, 0);
    assert_eq!(list(&phone_client, "cli").await.len(), 1);

    // Another user's password is an admin's to change: refused to ana, and audited.
    let msg = expect_code(
        phone_client
            .app("cli")
            .request(&sys::Passwd {
                name: Some("owner".into()),
                password: "taken over".into(),
                keep_tokens: false,
            })
            .await,
        ErrorCode::Forbidden,
    );
    assert!(msg.contains("admin"), "{msg}");
    let owner = d.owner().await;
    aether_tests::wait_until(
        "the refusal is audited",
        Duration::from_secs(5),
        async || {
            let audit = owner
                .app("cli")
                .request(&sys::AuditList { limit: None })
                .await
                .unwrap();
            audit
                .entries
                .iter()
                .any(|e| e.topic == sys::Passwd::TOPIC && e.user.as_deref() == Some("ana"))
        },
    )
    .await;

    // An admin changing ana's password ends her sessions, the phone's too.
    let by_admin = owner
        .app("cli")
        .request(&sys::Passwd {
            name: Some("ana".into()),
            password: "reset by admin".into(),
            keep_tokens: false,
        })
        .await
        .unwrap();
    assert_eq!(by_admin.revoked, 1);
    aether_tests::wait_until(
        "the phone's connection closes",
        Duration::from_secs(2),
        async || phone_client.ping().await.is_err(),
    )
    .await;
    first.close();
}
