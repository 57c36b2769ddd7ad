//! TLS on the TCP listener: `wss://` works with a trusted certificate, plain `ws://` and
//! untrusted certificates do not, and bad certificate files stop the daemon from starting.

use std::path::{Path, PathBuf};

use aether_proto::api::sys;
use aether_proto::client::{AetherClient, ClientError, ClientOptions, Endpoint};
use aether_proto::frame::Auth;
use aether_tests::{TestDaemon, client_options};
use aetherd::config::{Config, Listen, TlsFiles};

/// A self-signed certificate for localhost, written as PEM files into `dir`.
fn certificate(dir: &Path, name: &str) -> TlsFiles {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    TlsFiles { cert, key }
}

fn trusting(ca: &Path) -> ClientOptions {
    ClientOptions {
        ca_certs: Some(ca.to_owned()),
        ..client_options()
    }
}

fn wss(d: &TestDaemon) -> Endpoint {
    let url = d.ws_url().replace("ws://127.0.0.1", "wss://localhost");
    Endpoint::parse(&url).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_with_tls_serves_wss_and_refuses_plain_ws_and_untrusted_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let files = certificate(dir.path(), "daemon");
    let cert: PathBuf = files.cert.clone();
    let d = TestDaemon::start_with(|c| c.tls = Some(files)).await;
    d.add_user("ana", "correct horse").await;

    let ana = AetherClient::connect(
        &wss(&d),
        Auth::Password {
            user: "ana".into(),
            password: "correct horse".into(),
        },
        trusting(&cert),
    )
    .await
    .expect("ana signs in over wss://");
    let me = ana.app("cli").request(&sys::Whoami {}).await.unwrap();
    assert_eq!(me.user.name, "ana");
    let stats = ana.app("cli").request(&sys::Stats {}).await.unwrap();
    assert!(stats.tls, "sys.stats says TCP clients speak TLS");

    // Plain ws:// to the TLS port gets no WebSocket.
    let plain = AetherClient::connect(&d.tcp_endpoint(), Auth::Guest, client_options()).await;
    assert!(
        matches!(plain, Err(ClientError::Connect { .. })),
        "{:?}",
        plain.err()
    );

    // A certificate nobody said to trust is refused by the client.
    let stranger = certificate(dir.path(), "stranger");
    let untrusted = AetherClient::connect(&wss(&d), Auth::Guest, trusting(&stranger.cert)).await;
    match untrusted {
        Err(ClientError::Connect { reason, .. }) => {
            assert!(reason.to_lowercase().contains("certificate"), "{reason}")
        }
        other => panic!(
            "an untrusted certificate must be refused: {:?}",
            other.err()
        ),
    }

    // The daemon lives on.
    ana.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_broken_certificate_stops_the_daemon_from_starting_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let start = async |tls: TlsFiles| {
        let mut config = Config::for_data_dir(dir.path().join("home"));
        config.listen = Listen::Explicit("127.0.0.1:0".parse().unwrap());
        config.owner = "owner".into();
        config.tls = Some(tls);
        aetherd::Daemon::start(config).await
    };
    let missing = TlsFiles {
        cert: dir.path().join("nope.pem"),
        key: dir.path().join("nope.key"),
    };
    let e = start(missing)
        .await
        .err()
        .expect("no certificate, no daemon");
    assert!(format!("{e:#}").contains("nope.pem"), "{e:#}");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    let broken = TlsFiles {
        cert: garbage,
        key: dir.path().join("nope.key"),
    };
    let e = start(broken)
        .await
        .err()
        .expect("a broken certificate, no daemon");
    assert!(format!("{e:#}").contains("garbage.pem"), "{e:#}");
}
