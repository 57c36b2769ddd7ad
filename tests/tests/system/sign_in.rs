//! Password sign-in throttling: failures slow the next tries, then lock the user name or
//! the address out for a while; a flood of sign-ins never starves everyone else.

use std::time::{Duration, Instant};

use aether_proto::ErrorCode;
use aether_proto::client::ClientError;
use aether_proto::frame::Auth;
use aether_tests::TestDaemon;
use serde_json::json;

fn password(user: &str, password: &str) -> Auth {
    Auth::Password {
        user: user.into(),
        password: password.into(),
    }
}

/// Sign in over TCP; how long the answer took, and the refusal if any.
async fn attempt(d: &TestDaemon, user: &str, pw: &str) -> (Duration, Result<(), ClientError>) {
    let started = Instant::now();
    let result = d.connect_tcp(password(user, pw)).await.map(|c| c.close());
    (started.elapsed(), result)
}

fn refusal(result: Result<(), ClientError>) -> aether_proto::ErrorBody {
    match result {
        Err(ClientError::Daemon(body)) => body,
        other => panic!("expected the daemon to refuse, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_for_a_user_are_slowed_then_refused_and_the_right_password_works_after() {
    let d = TestDaemon::start_with(|c| {
        c.auth.failures_before_delay = 2;
        c.auth.first_delay_ms = 300;
        c.auth.max_failures = 4;
        c.auth.lockout_secs = 2;
    })
    .await;
    d.add_user("ana", "correct horse").await;

    let mut took = vec![];
    for _ in 0..4 {
        let (elapsed, result) = attempt(&d, "ana", "wrong horse").await;
        assert_eq!(refusal(result).code, ErrorCode::Unauthenticated);
        took.push(elapsed);
    }
    // The third and fourth tries waited 300 ms and 600 ms before being checked.
    assert!(took[2] >= Duration::from_millis(300), "{took:?}");
    assert!(took[3] >= Duration::from_millis(600), "{took:?}");

    // Locked out now, even with the right password; the refusal says when to retry.
    let (elapsed, result) = attempt(&d, "ana", "correct horse").await;
    let locked = refusal(result);
    assert_eq!(locked.code, ErrorCode::RateLimited, "{locked:?}");
    assert!(locked.msg.contains("try again in"), "{}", locked.msg);
    let retry = Duration::from_millis(locked.retry_after_ms.expect("when to retry"));
    assert!(retry <= Duration::from_secs(2), "{retry:?}");
    assert!(
        elapsed < Duration::from_millis(200),
        "refused without a check"
    );

    // On the wire: err rate_limited with retry_after_ms, then bye, then close.
    let mut ws = d.raw().await;
    let err = ws
        .hello(json!({"kind": "password", "user": "ana", "password": "correct horse"}))
        .await;
    assert_eq!(err["t"], "err", "{err}");
    assert_eq!(err["code"], "rate_limited", "{err}");
    assert!(err["retry_after_ms"].as_u64().is_some(), "{err}");
    ws.expect_bye("unauthenticated").await;
    ws.expect_closed().await;

    // After the lockout the right password works, and the slate is clean.
    tokio::time::sleep(retry + Duration::from_millis(50)).await;
    let (_, result) = attempt(&d, "ana", "correct horse").await;
    result.expect("the right password works after the lockout");
    let (elapsed, result) = attempt(&d, "ana", "wrong horse").await;
    assert_eq!(refusal(result).code, ErrorCode::Unauthenticated);
    assert!(elapsed < Duration::from_millis(300), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_from_one_address_lock_that_address_out_whatever_the_user_name() {
    let d = TestDaemon::start_with(|c| {
        c.auth.failures_before_delay = 100;
        c.auth.max_failures = 3;
        c.auth.lockout_secs = 60;
    })
    .await;
    d.add_user("ana", "correct horse").await;
    for name in ["nobody", "admin", "root"] {
        let (_, result) = attempt(&d, name, "guess guess").await;
        assert_eq!(refusal(result).code, ErrorCode::Unauthenticated);
    }
    let (_, result) = attempt(&d, "ana", "correct horse").await;
    let locked = refusal(result);
    assert_eq!(locked.code, ErrorCode::RateLimited, "{locked:?}");
    assert!(
        locked.msg.contains("127.0.0.1"),
        "names the address: {}",
        locked.msg
    );

    // The Unix socket has no address to lock, and ana herself did nothing wrong.
    let local = d
        .connect_unix(password("ana", "correct horse"))
        .await
        .expect("ana signs in over the Unix socket");
    local.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_password_sign_ins_is_refused_early_and_does_not_starve_other_clients() {
    let d = TestDaemon::start_with(|c| {
        // No lockouts or delays here: only the limit on checks at once is tested.
        c.auth.failures_before_delay = 10_000;
        c.auth.max_failures = 10_000;
        c.auth.max_concurrent_checks = 1;
        c.auth.max_waiting_checks = 4;
    })
    .await;
    let owner = d.owner().await;
    let flood: Vec<_> = (0..60)
        .map(|i| {
            let url = d.tcp_endpoint();
            tokio::spawn(async move {
                let auth = password(&format!("user{i}"), "not the password");
                let options = aether_tests::client_options();
                aether_proto::client::AetherClient::connect(&url, auth, options)
                    .await
                    .map(|c| c.close())
            })
        })
        .collect();

    // Other clients are served while the flood lasts.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        owner
            .ping()
            .await
            .expect("the owner is served during the flood");
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a ping took {slowest:?}"
    );

    let mut busy = 0;
    for attempt in flood {
        match attempt.await.unwrap() {
            Err(ClientError::Daemon(body)) if body.code == ErrorCode::RateLimited => {
                assert!(body.msg.contains("at once"), "{}", body.msg);
                busy += 1;
            }
            Err(ClientError::Daemon(body)) => assert_eq!(body.code, ErrorCode::Unauthenticated),
            other => panic!("a wrong password must not sign in: {other:?}"),
        }
    }
    // At most one check runs and four wait at any time: most of the flood is turned away.
    assert!(busy >= 30, "only {busy} of 60 were turned away early");
}
