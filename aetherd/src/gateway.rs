//! The gateway: WebSocket over TCP and over the Unix socket, the hello
//! handshake, frame size limits; then each connection runs as a [`Session`].

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::task::TaskTracker;

use aether_proto::frame::{Auth, Bye, ByeReason, ConnectionLimits, Welcome};
use aether_proto::{ClientFrame, ErrorCode, PROTOCOL_VERSION, ServerFrame};

use crate::identity::{Caller, Identity, IdentityError};
use crate::metrics::MetricsPage;
use crate::session::{Session, Sessions};

/// What the gateway needs: how to sign people in, what their sessions share, and
/// the page `/metrics` serves.
pub struct Gateway {
    pub sessions: Arc<Sessions>,
    pub identity: Identity,
    /// The local owner account (signs in over the Unix socket by peer credentials).
    pub owner: String,
    /// Allow anonymous guest users.
    pub guest: bool,
    /// The uid the daemon runs as: Unix-socket peers with it are the local owner.
    pub local_uid: u32,
    pub metrics: MetricsPage,
}

/// How the connection reached us.
#[derive(Debug, Clone, Copy)]
pub enum Peer {
    Tcp(SocketAddr),
    /// The Unix socket, with the peer's uid when the kernel told us.
    Unix {
        uid: Option<u32>,
    },
}

/// Small read buffers keep idle connections cheap; they grow for large frames.
const READ_BUFFER: usize = 8 * 1024;
const WRITE_BUFFER: usize = 64 * 1024;

fn ws_config(max_frame: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(max_frame))
        .max_frame_size(Some(max_frame))
}

/// Accept TCP clients, over TLS when `tls` is given.
pub async fn serve_tcp(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    gateway: Arc<Gateway>,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = gateway.sessions.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                let (gateway, peer) = (gateway.clone(), Peer::Tcp(addr));
                match tls.clone() {
                    None => tracker.spawn(connection(stream, peer, gateway)),
                    Some(tls) => tracker.spawn(async move {
                        let deadline = gateway.sessions.limits.hello_timeout();
                        match tokio::time::timeout(deadline, tls.accept(stream)).await {
                            Ok(Ok(stream)) => connection(stream, peer, gateway).await,
                            Ok(Err(e)) => tracing::debug!(?peer, "TLS handshake failed: {e}"),
                            Err(_) => tracing::debug!(?peer, "TLS handshake timed out"),
                        }
                    }),
                };
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("tcp accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

pub async fn serve_unix(listener: UnixListener, gateway: Arc<Gateway>, tracker: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            _ = gateway.sessions.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let uid = stream.peer_cred().ok().map(|cred| cred.uid());
                tracker.spawn(connection(stream, Peer::Unix { uid }, gateway.clone()));
            }
            Err(e) => {
                tracing::warn!("unix accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Bind the Unix socket, owner-only. Refuses to take over a socket a live daemon answers on.
pub async fn bind_unix(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            anyhow::bail!("a daemon is already listening on {}", path.display());
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

async fn connection<S>(stream: S, peer: Peer, gateway: Arc<Gateway>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &gateway.sessions.limits;
    let handshake =
        crate::http::accept(stream, ws_config(limits.max_frame_bytes), &gateway.metrics);
    let mut ws = match tokio::time::timeout(limits.hello_timeout(), handshake).await {
        Ok(Ok(Some(ws))) => ws,
        // Answered as plain HTTP (/metrics, /healthz, errors): nothing more to do.
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            tracing::debug!(?peer, "http/websocket handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(?peer, "handshake timed out");
            return;
        }
    };
    let (mut caller, batch) =
        match tokio::time::timeout(limits.hello_timeout(), hello(&mut ws, peer, &gateway)).await {
            Ok(Ok(signed_in)) => signed_in,
            Ok(Err(refusal)) => {
                tracing::info!(?peer, "sign-in refused: {}", refusal.msg);
                refuse(&mut ws, refusal).await;
                return;
            }
            Err(_) => {
                let msg = format!("no hello within {} ms", limits.hello_timeout_ms);
                refuse(&mut ws, IdentityError::new(ErrorCode::Unauthenticated, msg)).await;
                return;
            }
        };
    // Known from now on, so revoking its credentials ends it.
    let registration = gateway.identity.register(&caller);
    caller.connection = registration.id;
    let session = format!("s{}", rand::random::<u64>());
    let welcome = ServerFrame::Welcome(Welcome {
        v: PROTOCOL_VERSION,
        user: caller.user_info(),
        session: session.clone(),
        app: caller.bound_app.clone(),
        limits: ConnectionLimits {
            max_frame_bytes: limits.max_frame_bytes,
            max_subscriptions: limits.max_subscriptions,
            max_pending_requests: limits.max_pending_requests,
            max_request_timeout_ms: limits.max_request_timeout_ms,
        },
        batch,
    });
    if ws.send(Message::text(welcome.to_json())).await.is_err() {
        return;
    }
    tracing::info!(?peer, user = %caller.user, app = ?caller.bound_app, %session, "signed in");
    Session::new(caller, gateway.sessions.clone(), batch)
        .run(ws, registration)
        .await;
}

/// Read and check the hello: who signs in, and whether the client batches frames.
async fn hello<S>(
    ws: &mut WebSocketStream<S>,
    peer: Peer,
    gateway: &Gateway,
) -> Result<(Caller, bool), IdentityError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let refuse = |msg: String| IdentityError::new(ErrorCode::Unauthenticated, msg);
    let text = loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => break text,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => {
                return Err(refuse("the first frame must be a JSON text hello".into()));
            }
            Some(Err(tungstenite::Error::Capacity(e))) => {
                return Err(IdentityError::new(
                    ErrorCode::TooLarge,
                    format!("the hello is too large: {e}"),
                ));
            }
            _ => return Err(refuse("the connection closed before hello".into())),
        }
    };
    let hello = match ClientFrame::parse(text.as_str()) {
        Ok(ClientFrame::Hello(hello)) => hello,
        Ok(_) => return Err(refuse("the first frame must be hello".into())),
        Err(e) => return Err(refuse(format!("the first frame must be hello: {e}"))),
    };
    if hello.v != PROTOCOL_VERSION {
        return Err(refuse(format!(
            "protocol version {} is not spoken here; this daemon speaks {PROTOCOL_VERSION}",
            hello.v
        )));
    }
    let identity = &gateway.identity;
    let caller = match hello.auth {
        Auth::Local => match peer {
            Peer::Unix { uid: Some(uid) } if uid == gateway.local_uid => {
                identity.owner(&gateway.owner).await
            }
            Peer::Unix { .. } => Err(refuse(
                "local sign-in is only for the daemon's own user; sign in with a token or password"
                    .into(),
            )),
            Peer::Tcp(_) => Err(refuse(
                "local sign-in needs the Unix socket; over TCP sign in with a token or password"
                    .into(),
            )),
        },
        Auth::Token { token } => identity.sign_in_token(&token).await,
        Auth::Password { user, password } => {
            let from = match peer {
                Peer::Tcp(addr) => Some(addr.ip()),
                Peer::Unix { .. } => None,
            };
            identity.sign_in_password(&user, &password, from).await
        }
        Auth::Guest if gateway.guest => identity.create_guest().await,
        Auth::Guest => Err(refuse("guest mode is off on this daemon".into())),
    }?;
    Ok((caller, hello.batch))
}

async fn refuse<S>(ws: &mut WebSocketStream<S>, refusal: IdentityError)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let bye = ServerFrame::Bye(Bye {
        reason: match refusal.code {
            ErrorCode::TooLarge => ByeReason::TooLarge,
            _ => ByeReason::Unauthenticated,
        },
        msg: Some(refusal.msg.clone()),
    });
    let code = match refusal.code {
        ErrorCode::TooLarge => CloseCode::Size,
        _ => CloseCode::Policy,
    };
    let why = refusal.msg.clone();
    let err = ServerFrame::error(None, refusal.into());
    let sent = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = ws.feed(Message::text(err.to_json())).await;
        let _ = ws.feed(Message::text(bye.to_json())).await;
        let reason = why[..why.floor_char_boundary(120)].to_owned();
        let _ = ws
            .close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }))
            .await;
    })
    .await;
    if sent.is_ok() {
        crate::session::drain(ws, Duration::from_secs(2)).await;
    }
}
