//! The real `aetherd` binary: SIGTERM stops it gracefully, telling clients why.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aether_proto::client::{AetherClient, ClientOptions, Endpoint};
use aether_proto::frame::Auth;

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn sigterm_says_bye_and_exits_cleanly() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aetherd"))
        .env("AETHER_HOME", home.path())
        .args(["--listen", "off"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = home.path().join("run/aetherd.sock");
    wait_until("the socket", Duration::from_secs(20), || socket.exists());
    let options = ClientOptions {
        reconnect: false,
        ..ClientOptions::default()
    };
    let client = AetherClient::connect(&Endpoint::Unix(socket.clone()), Auth::Local, options)
        .await
        .unwrap();
    let mut sub = client.app("cli").subscribe("app.cli.>").await.unwrap();

    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();

    // The subscription ends because the daemon closed the connection (after its bye).
    let ended = tokio::time::timeout(Duration::from_secs(10), sub.next_msg()).await;
    assert!(
        matches!(ended, Ok(None)),
        "the connection should close on shutdown"
    );
    let mut status = None;
    wait_until("the daemon to exit", Duration::from_secs(10), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    assert!(
        status.unwrap().success(),
        "aetherd should exit 0 on SIGTERM"
    );
    assert!(!socket.exists(), "the socket file is removed on shutdown");
}

#[test]
fn a_bad_config_is_reported_not_panicked() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), "listen = 7").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aetherd"))
        .env("AETHER_HOME", home.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("config.toml is not valid"), "{stderr}");
}
