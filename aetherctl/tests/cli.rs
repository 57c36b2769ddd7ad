//! `aetherctl` as a user runs it: against a daemon on a temp dir, checking output and exit codes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use aetherd::Daemon;
use aetherd::config::{Config, Listen};
use serde_json::Value;

struct Ctl {
    home: PathBuf,
}

impl Ctl {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aetherctl"));
        command
            .args(args)
            .env("AETHER_HOME", &self.home)
            .env_remove("AETHER_URL")
            .env_remove("AETHER_TOKEN")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn daemon(home: &Path) -> Daemon {
    let mut config = Config::for_data_dir(home);
    config.listen = Listen::Explicit("127.0.0.1:0".parse().unwrap());
    config.owner = "boss".into();
    Daemon::start(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomers_session() {
    let home = tempfile::tempdir().unwrap();
    let daemon = daemon(home.path()).await;
    let url = format!("ws://{}/", daemon.tcp_addr().unwrap());
    let ctl = Ctl {
        home: home.path().to_owned(),
    };
    let blocking = |f: Box<dyn FnOnce() -> Output + Send>| tokio::task::spawn_blocking(f);

    let ctl2 = Ctl {
        home: ctl.home.clone(),
    };
    let out = blocking(Box::new(move || ctl2.run(&["whoami"])))
        .await
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("boss"), "{}", stdout(&out));

    let ctl2 = Ctl {
        home: ctl.home.clone(),
    };
    let out = blocking(Box::new(move || ctl2.run(&["--json", "whoami"])))
        .await
        .unwrap();
    let who: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(who["user"]["name"], "boss");
    assert_eq!(who["app"], "cli");

    let ctl2 = Ctl {
        home: ctl.home.clone(),
    };
    let out = blocking(Box::new(move || {
        ctl2.run_with_stdin(
            &["user", "add", "ana", "--password-stdin"],
            "correct horse\n",
        )
    }))
    .await
    .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Login over TCP saves a token; later commands on that URL are ana.
    let (ctl2, u) = (
        Ctl {
            home: ctl.home.clone(),
        },
        url.clone(),
    );
    let out = blocking(Box::new(move || {
        ctl2.run_with_stdin(
            &["--url", &u, "login", "--user", "ana", "--password-stdin"],
            "correct horse\n",
        )
    }))
    .await
    .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (ctl2, u) = (
        Ctl {
            home: ctl.home.clone(),
        },
        url.clone(),
    );
    let out = blocking(Box::new(move || ctl2.run(&["--url", &u, "whoami"])))
        .await
        .unwrap();
    assert!(stdout(&out).starts_with("ana"), "{}", stdout(&out));

    // A wrong password is the daemon saying no: exit 1 with its code.
    let (ctl2, u) = (
        Ctl {
            home: ctl.home.clone(),
        },
        url.clone(),
    );
    let out = blocking(Box::new(move || {
        ctl2.run_with_stdin(
            &["--url", &u, "login", "--user", "ana", "--password-stdin"],
            "wrong horse\n",
        )
    }))
    .await
    .unwrap();
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("unauthenticated"), "{}", stderr(&out));

    // Subscribe in one process, publish from another.
    let (ctl2, u) = (
        Ctl {
            home: ctl.home.clone(),
        },
        url.clone(),
    );
    let sub = ctl2
        .command(&["--url", &u, "sub", "app.cli.>", "--count", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sub_pid = sub.id();
    let waiter = tokio::task::spawn_blocking(move || sub.wait_with_output().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !waiter.is_finished() {
        assert!(
            Instant::now() < deadline,
            "sub {sub_pid} never received a publication"
        );
        let (ctl2, u) = (
            Ctl {
                home: ctl.home.clone(),
            },
            url.clone(),
        );
        let out = blocking(Box::new(move || {
            ctl2.run(&[
                "--url",
                &u,
                "pub",
                "app.cli.greeting",
                r#"{"text":"hello"}"#,
            ])
        }))
        .await
        .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = waiter.await.unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(line["topic"], "app.cli.greeting");
    assert_eq!(line["from"]["user"], "ana");
    assert_eq!(line["data"]["text"], "hello");

    // A request answered, and a forbidden one refused clearly.
    let ctl2 = Ctl {
        home: ctl.home.clone(),
    };
    let out = blocking(Box::new(move || ctl2.run(&["req", "sys.ping"])))
        .await
        .unwrap();
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("pong"));
    let ctl2 = Ctl {
        home: ctl.home.clone(),
    };
    let out = blocking(Box::new(move || {
        ctl2.run(&["--app", "files", "pub", "chat.room.general.post", "{}"])
    }))
    .await
    .unwrap();
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("forbidden") && stderr(&out).contains("`chat`"),
        "{}",
        stderr(&out)
    );
    let ctl2 = Ctl {
        home: ctl.home.clone(),
    };
    let out = blocking(Box::new(move || {
        ctl2.run(&[
            "--json",
            "--app",
            "files",
            "pub",
            "chat.room.general.post",
            "{}",
        ])
    }))
    .await
    .unwrap();
    assert_eq!(code(&out), 1);
    let err: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(err["error"]["code"], "forbidden");

    // Usage errors exit 2, unreachable daemons 3.
    let ctl2 = Ctl {
        home: ctl.home.clone(),
    };
    let out = blocking(Box::new(move || {
        ctl2.run(&["pub", "app.cli.x", "not json"])
    }))
    .await
    .unwrap();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("must be JSON"));
    let ctl2 = Ctl {
        home: ctl.home.clone(),
    };
    let out = blocking(Box::new(move || ctl2.run(&["frobnicate"])))
        .await
        .unwrap();
    assert_eq!(code(&out), 2);
    let ctl2 = Ctl {
        home: ctl.home.clone(),
    };
    let out = blocking(Box::new(move || {
        ctl2.run(&["--url", "ws://127.0.0.1:1/", "--token", "aet_x", "whoami"])
    }))
    .await
    .unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));

    // An app-bound token cannot act as another app.
    let ctl2 = Ctl {
        home: ctl.home.clone(),
    };
    let out = blocking(Box::new(move || {
        ctl2.run(&["token", "create", "--app", "files"])
    }))
    .await
    .unwrap();
    let token = stdout(&out).trim().to_owned();
    assert!(token.starts_with("aet_"), "{token}");
    let (ctl2, u) = (
        Ctl {
            home: ctl.home.clone(),
        },
        url.clone(),
    );
    let bound = token.clone();
    let out = blocking(Box::new(move || {
        ctl2.run(&["--url", &u, "--token", &bound, "--json", "whoami"])
    }))
    .await
    .unwrap();
    assert_eq!(code(&out), 0, "a bound token acts as its app by default");
    let who: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(who["app"], "files");
    let (ctl2, u) = (
        Ctl {
            home: ctl.home.clone(),
        },
        url.clone(),
    );
    let out = blocking(Box::new(move || {
        ctl2.run(&[
            "--url", &u, "--token", &token, "--app", "cli", "req", "sys.ping",
        ])
    }))
    .await
    .unwrap();
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("bound to app"), "{}", stderr(&out));

    let ctl2 = Ctl {
        home: ctl.home.clone(),
    };
    let out = blocking(Box::new(move || ctl2.run(&["perms", "show", "files"])))
        .await
        .unwrap();
    assert!(stdout(&out).contains("vfs.read"), "{}", stdout(&out));
    let ctl2 = Ctl {
        home: ctl.home.clone(),
    };
    let out = blocking(Box::new(move || ctl2.run(&["--json", "daemon", "status"])))
        .await
        .unwrap();
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(status["hub"]["connections"].as_u64().unwrap() >= 1);
    let ctl2 = Ctl {
        home: ctl.home.clone(),
    };
    let out = blocking(Box::new(move || ctl2.run(&["audit", "--limit", "5"])))
        .await
        .unwrap();
    assert!(
        stdout(&out).contains("chat.room.general.post"),
        "{}",
        stdout(&out)
    );

    daemon.stop().await;
}

#[test]
fn starts_a_daemon_when_none_answers() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_aetherctl"));
    let aetherd = exe.with_file_name("aetherd");
    assert!(
        aetherd.exists(),
        "{} is missing: run the workspace's tests (cargo test --workspace), which build it",
        aetherd.display()
    );
    let home = tempfile::tempdir().unwrap();
    let ctl = Ctl {
        home: home.path().to_owned(),
    };
    // No TCP listener: this test must not collide with a developer's daemon on 7470.
    let out = ctl
        .command(&["--json", "whoami"])
        .env("AETHER_LISTEN", "off")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("starting"), "{}", stderr(&out));
    let who: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(who["user"]["admin"], true);
    let out = ctl.run(&["daemon", "stop"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let socket = home.path().join("run/aetherd.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while socket.exists() {
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}
