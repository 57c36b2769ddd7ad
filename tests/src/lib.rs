//! Harness for the whole-system tests: a real daemon on a temp dir and loopback,
//! clients signed in the ways users sign in, and raw WebSocket connections to
//! feed the daemon bad input by hand.
//!
//! Nothing here sleeps to wait for a condition: [`wait_for`] and [`wait_until`]
//! poll with a deadline, and every read has a timeout that panics with a clear message.

pub use aether_fixtures::{bundles, fake_llm};
pub mod wire;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aether_proto::ErrorCode;
use aether_proto::client::{AetherClient, ClientError, ClientOptions, Endpoint, Subscription};
use aether_proto::frame::{Auth, Msg};
use aetherd::Daemon;
use aetherd::config::{Config, Listen};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use aether_proto::frame::to_data;

/// How long a single read waits before the test fails.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(2);

/// The name of the local owner account in every test daemon.
pub const OWNER: &str = "owner";

/// Client settings for tests: no reconnect, so a dropped connection stays dropped.
pub fn client_options() -> ClientOptions {
    ClientOptions {
        client_name: "aether-tests".into(),
        reconnect: false,
        ..ClientOptions::default()
    }
}

/// A daemon running on a temp dir, listening on an ephemeral loopback port and its own Unix socket.
pub struct TestDaemon {
    daemon: Option<Daemon>,
    config: Config,
    tcp_addr: SocketAddr,
    socket_path: PathBuf,
    // Dropped last: the daemon's files live here.
    _dir: tempfile::TempDir,
}

impl TestDaemon {
    /// A daemon with the default limits.
    pub async fn start() -> TestDaemon {
        TestDaemon::start_with(|_| {}).await
    }

    /// A daemon whose configuration `edit` may change first (limits, guest mode, ...).
    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> TestDaemon {
        let dir = tempfile::tempdir().expect("cannot create a temp dir for the daemon");
        let mut config = Config::for_data_dir(dir.path());
        // Tests start from empty roots; the examples have a test of their own.
        config.vfs.examples = false;
        config.listen = Listen::Explicit("127.0.0.1:0".parse().expect("valid address"));
        config.owner = OWNER.into();
        edit(&mut config);
        let daemon = Daemon::start(config.clone())
            .await
            .unwrap_or_else(|e| panic!("the daemon did not start: {e:#}"));
        let tcp_addr = daemon.tcp_addr().expect("the test daemon listens on TCP");
        let socket_path = daemon.socket_path().to_owned();
        TestDaemon {
            daemon: Some(daemon),
            config,
            tcp_addr,
            socket_path,
            _dir: dir,
        }
    }

    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("the daemon was stopped")
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn manifests_dir(&self) -> &Path {
        &self.config.manifests_dir
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/", self.tcp_addr)
    }

    pub fn tcp_endpoint(&self) -> Endpoint {
        Endpoint::parse(&self.ws_url()).expect("a valid ws:// URL")
    }

    pub fn unix_endpoint(&self) -> Endpoint {
        Endpoint::Unix(self.socket_path.clone())
    }

    /// Stop the daemon gracefully (every client gets `bye shutdown`).
    pub async fn stop(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            daemon.stop().await;
        }
    }

    /// Stop, then start again on the same data dir, TCP port and Unix socket.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut config = self.config.clone();
        config.listen = Listen::Explicit(self.tcp_addr);
        let daemon = Daemon::start(config)
            .await
            .unwrap_or_else(|e| panic!("the daemon did not start again: {e:#}"));
        self.daemon = Some(daemon);
    }

    /// Connect over TCP with any credentials.
    pub async fn connect_tcp(&self, auth: Auth) -> Result<AetherClient, ClientError> {
        AetherClient::connect(&self.tcp_endpoint(), auth, client_options()).await
    }

    /// Connect over the Unix socket with any credentials.
    pub async fn connect_unix(&self, auth: Auth) -> Result<AetherClient, ClientError> {
        AetherClient::connect(&self.unix_endpoint(), auth, client_options()).await
    }

    /// The local owner, signed in by peer credentials over the Unix socket
    /// (the tests run as the daemon's own uid).
    pub async fn owner(&self) -> AetherClient {
        self.connect_unix(Auth::Local)
            .await
            .unwrap_or_else(|e| panic!("the owner cannot sign in over the Unix socket: {e}"))
    }

    /// Add a (non-admin) user through the owner's `cli` app.
    pub async fn add_user(&self, name: &str, password: &str) {
        let owner = self.owner().await;
        let added: Value = owner
            .app("cli")
            .request_json(
                "sys.user.add",
                &json!({ "name": name, "password": password }),
            )
            .await
            .unwrap_or_else(|e| panic!("sys.user.add {name} failed: {e}"));
        assert_eq!(added["name"], name, "sys.user.add answered {added}");
        owner.close();
    }

    /// Sign in with a password over TCP.
    pub async fn sign_in(&self, user: &str, password: &str) -> AetherClient {
        self.connect_tcp(Auth::Password {
            user: user.into(),
            password: password.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("{user} cannot sign in with a password: {e}"))
    }

    /// A token for `user` (password sign-in, then `sys.token.create`), bound to `app` if given.
    pub async fn token_for(&self, user: &str, password: &str, app: Option<&str>) -> String {
        let client = self.sign_in(user, password).await;
        let token = create_token(&client, json!({ "app": app })).await;
        client.close();
        token
    }

    /// A token for the local owner, bound to `app` if given.
    pub async fn owner_token(&self, app: Option<&str>) -> String {
        let owner = self.owner().await;
        let token = create_token(&owner, json!({ "app": app })).await;
        owner.close();
        token
    }

    /// A raw WebSocket over TCP that has not said hello.
    pub async fn raw(&self) -> RawWs {
        let (ws, _) = tokio::time::timeout(
            FRAME_TIMEOUT,
            tokio_tungstenite::connect_async(self.ws_url()),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no WebSocket handshake with {} within {FRAME_TIMEOUT:?}",
                self.ws_url()
            )
        })
        .unwrap_or_else(|e| panic!("cannot open a WebSocket to {}: {e}", self.ws_url()));
        RawWs {
            ws,
            next_id: 1_000_000,
        }
    }

    /// A raw WebSocket signed in as the owner with a fresh token.
    pub async fn raw_owner(&self) -> RawWs {
        let token = self.owner_token(None).await;
        let mut ws = self.raw().await;
        ws.hello_token(&token).await;
        ws
    }
}

/// `sys.token.create` through `client`'s `cli` app; `body` is the request.
pub async fn create_token(client: &AetherClient, body: Value) -> String {
    let answer: Value = client
        .app("cli")
        .request_json("sys.token.create", &body)
        .await
        .unwrap_or_else(|e| panic!("sys.token.create {body} failed: {e}"));
    answer["token"]
        .as_str()
        .unwrap_or_else(|| panic!("sys.token.create answered without a token: {answer}"))
        .to_owned()
}

/// The daemon's `sys.stats`, asked through `client`'s `cli` app.
pub async fn stats(client: &AetherClient) -> Value {
    client
        .app("cli")
        .request_json("sys.stats", &json!({}))
        .await
        .unwrap_or_else(|e| panic!("sys.stats failed: {e}"))
}

/// The next delivery on a subscription, or a panic after [`FRAME_TIMEOUT`].
pub async fn next_msg(sub: &mut Subscription) -> Msg {
    match tokio::time::timeout(FRAME_TIMEOUT, sub.next_msg()).await {
        Ok(Some(msg)) => msg,
        Ok(None) => panic!("subscription {} ended: the client is closed", sub.id()),
        Err(_) => panic!(
            "no delivery on subscription {} within {FRAME_TIMEOUT:?}",
            sub.id()
        ),
    }
}

/// Assert that a client call failed with the daemon error `code`; returns the message.
#[track_caller]
pub fn expect_code<T>(result: Result<T, ClientError>, code: ErrorCode) -> String {
    match result {
        Err(ClientError::Daemon(body)) if body.code == code => body.msg,
        Err(other) => panic!("expected the daemon to answer `{code}`, got the error {other:?}"),
        Ok(_) => panic!(
            "expected the daemon to answer `{code}`, but it accepted (a {})",
            std::any::type_name::<T>()
        ),
    }
}

/// Poll `check` until it yields a value; panic naming `what` after `timeout`.
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Poll `check` until it is true; panic naming `what` after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    wait_for(what, timeout, async || check().await.then_some(())).await
}

/// What was read from a connection until it closed.
#[derive(Debug, Default)]
pub struct Drained {
    /// `msg` frames (deliveries) read before the close.
    pub msgs: usize,
    /// Every other frame read before the close.
    pub others: Vec<Value>,
}

/// A WebSocket driven by hand: frames are JSON values, nothing is added for you.
pub struct RawWs {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl RawWs {
    pub async fn send_text(&mut self, text: impl Into<String>) {
        let text: String = text.into();
        self.ws
            .send(Message::text(text))
            .await
            .unwrap_or_else(|e| panic!("cannot send a text frame: {e}"));
    }

    pub async fn send_json(&mut self, frame: &Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn send_binary(&mut self, bytes: impl Into<Vec<u8>>) {
        self.ws
            .send(Message::binary(bytes.into()))
            .await
            .unwrap_or_else(|e| panic!("cannot send a binary frame: {e}"));
    }

    /// Send one text message as `pieces` WebSocket fragments (a first frame, then continuations).
    pub async fn send_fragmented_text(&mut self, text: &str, pieces: usize) {
        let bytes = text.as_bytes();
        let size = bytes.len().div_ceil(pieces.max(1)).max(1);
        let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let opcode = if i == 0 {
                OpCode::Data(Data::Text)
            } else {
                OpCode::Data(Data::Continue)
            };
            let frame = Frame::message(chunk.to_vec(), opcode, i + 1 == chunks.len());
            self.ws
                .feed(Message::Frame(frame))
                .await
                .unwrap_or_else(|e| panic!("cannot send fragment {i}: {e}"));
        }
        self.ws
            .flush()
            .await
            .unwrap_or_else(|e| panic!("cannot flush the fragments: {e}"));
    }

    /// The next text frame as JSON, waiting at most [`FRAME_TIMEOUT`].
    pub async fn recv_frame(&mut self) -> Value {
        self.recv_frame_within(FRAME_TIMEOUT).await
    }

    pub async fn recv_frame_within(&mut self, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no frame from the daemon within {timeout:?}"));
            match next {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
                        panic!("the daemon sent a frame that is not JSON ({e}): {text}")
                    });
                }
                Some(Ok(Message::Binary(_))) => panic!("the daemon sent a binary frame"),
                Some(Ok(Message::Close(close))) => {
                    panic!("the connection closed ({close:?}) while waiting for a frame")
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("the connection failed while waiting for a frame: {e}"),
                None => panic!("the connection ended while waiting for a frame"),
            }
        }
    }

    /// The next frame, which must be an `err` with `code`; returns it.
    pub async fn expect_err(&mut self, code: &str) -> Value {
        let frame = self.recv_frame().await;
        assert_eq!(frame["t"], "err", "expected an err `{code}`, got {frame}");
        assert_eq!(frame["code"], code, "expected an err `{code}`, got {frame}");
        assert!(
            frame["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "an err frame must say why: {frame}"
        );
        frame
    }

    /// Send `frame`, then expect an `err` with `code`.
    pub async fn send_expect_err(&mut self, frame: &Value, code: &str) -> Value {
        self.send_json(frame).await;
        let err = self.recv_frame().await;
        assert_eq!(
            err["t"], "err",
            "{frame} should be refused with `{code}`, got {err}"
        );
        assert_eq!(
            err["code"], code,
            "{frame} should be refused with `{code}`, got {err}"
        );
        assert!(
            err["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "an err frame must say why: {err}"
        );
        err
    }

    /// The next frame must be `bye` with `reason`.
    pub async fn expect_bye(&mut self, reason: &str) -> Value {
        let frame = self.recv_frame().await;
        assert_eq!(frame["t"], "bye", "expected bye {reason}, got {frame}");
        assert_eq!(
            frame["reason"], reason,
            "expected bye {reason}, got {frame}"
        );
        frame
    }

    /// The connection must close within [`FRAME_TIMEOUT`]; frames read meanwhile are returned.
    pub async fn expect_closed(&mut self) -> Drained {
        self.expect_closed_within(FRAME_TIMEOUT).await
    }

    pub async fn expect_closed_within(&mut self, timeout: Duration) -> Drained {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut drained = Drained::default();
        loop {
            let Ok(next) = tokio::time::timeout_at(deadline, self.ws.next()).await else {
                panic!(
                    "the connection is still open after {timeout:?}; read meanwhile: {drained:?}"
                );
            };
            match next {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return drained,
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Value>(text.as_str())
                {
                    Ok(frame) if frame["t"] == "msg" => drained.msgs += 1,
                    Ok(frame) => drained.others.push(frame),
                    Err(_) => drained.others.push(Value::String(text.as_str().to_owned())),
                },
                Some(Ok(_)) => {}
            }
        }
    }

    /// Send a hello with `auth` (e.g. `{"kind":"token","token":...}`) and return the first answer.
    pub async fn hello(&mut self, auth: Value) -> Value {
        self.send_json(
            &json!({ "t": "hello", "v": 1, "auth": auth, "client": "aether-tests/raw" }),
        )
        .await;
        self.recv_frame().await
    }

    /// Sign in with a token; the answer must be a `welcome`, which is returned.
    pub async fn hello_token(&mut self, token: &str) -> Value {
        let welcome = self.hello(json!({ "kind": "token", "token": token })).await;
        assert_eq!(welcome["t"], "welcome", "the token was refused: {welcome}");
        welcome
    }

    /// A ping must get its pong next: the connection is alive and in step.
    pub async fn ping(&mut self) {
        let id = self.next_id();
        self.send_json(&json!({ "t": "ping", "id": id })).await;
        let pong = self.recv_frame().await;
        assert_eq!(
            pong,
            json!({ "t": "pong", "id": id }),
            "a ping must get its pong"
        );
    }

    /// A fresh frame id, far from the small ids tests write by hand.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Drop the connection without a close handshake.
    pub fn abort(self) {
        drop(self);
    }
}
