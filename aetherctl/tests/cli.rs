//! `aetherctl` as a user runs it: against a daemon on a temp dir, checking output and exit codes.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
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

    /// Run on a blocking thread, so the daemon in this process keeps serving.
    async fn go(&self, args: &[&str]) -> Output {
        self.go_with_stdin(args, None).await
    }

    /// Run with `stdin` piped in (written from a thread of its own), or stdin closed.
    async fn go_with_stdin(&self, args: &[&str], stdin: Option<Vec<u8>>) -> Output {
        let mut command = self.command(args);
        let args = args.join(" ");
        tokio::task::spawn_blocking(move || {
            if stdin.is_some() {
                command.stdin(Stdio::piped());
            }
            let mut child = command
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let writer = child.stdin.take().zip(stdin).map(|(mut pipe, bytes)| {
                // A program may end before reading it all: a broken pipe is fine.
                std::thread::spawn(move || drop(pipe.write_all(&bytes)))
            });
            let out = child.wait_with_output().unwrap();
            if let Some(writer) = writer {
                writer.join().unwrap();
            }
            out
        })
        .await
        .unwrap_or_else(|e| panic!("aetherctl {args}: {e}"))
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

/// A daemon on a temp dir, and aetherctl pointed at it through its Unix socket.
async fn session() -> (tempfile::TempDir, Daemon, Ctl, String) {
    let home = tempfile::tempdir().unwrap();
    let daemon = daemon(home.path()).await;
    let url = format!("ws://{}/", daemon.tcp_addr().unwrap());
    let ctl = Ctl {
        home: home.path().to_owned(),
    };
    (home, daemon, ctl, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomers_session() {
    let (_home, daemon, ctl, url) = session().await;
    let u = url.as_str();

    let out = ctl.go(&["whoami"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("boss"), "{}", stdout(&out));
    let out = ctl.go(&["--json", "whoami"]).await;
    let who: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(who["user"]["name"], "boss");
    assert_eq!(who["app"], "cli");

    let horse = || Some(b"correct horse\n".to_vec());
    let out = ctl
        .go_with_stdin(&["user", "add", "ana", "--password-stdin"], horse())
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Login over TCP saves a token; later commands on that URL are ana.
    let login = ["--url", u, "login", "--user", "ana", "--password-stdin"];
    let out = ctl.go_with_stdin(&login, horse()).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = ctl.go(&["--url", u, "whoami"]).await;
    assert!(stdout(&out).starts_with("ana"), "{}", stdout(&out));

    // A wrong password is the daemon saying no: exit 1 with its code.
    let out = ctl
        .go_with_stdin(&login, Some(b"wrong horse\n".to_vec()))
        .await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("unauthenticated"), "{}", stderr(&out));

    // Subscribe in one process, publish from another.
    let sub = ctl
        .command(&["--url", u, "sub", "app.cli.>", "--count", "1"])
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
        let greeting = r#"{"text":"hello"}"#;
        let out = ctl
            .go(&["--url", u, "pub", "app.cli.greeting", greeting])
            .await;
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
    let out = ctl.go(&["req", "sys.ping"]).await;
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("pong"));
    let forbidden = ["--app", "files", "req", "chat.rooms", "{}"];
    let out = ctl.go(&forbidden).await;
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("forbidden") && stderr(&out).contains("`chat`"),
        "{}",
        stderr(&out)
    );
    let out = ctl.go(&[&["--json"][..], &forbidden].concat()).await;
    assert_eq!(code(&out), 1);
    let err: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(err["error"]["code"], "forbidden");

    // Usage errors exit 2, unreachable daemons 3.
    let out = ctl.go(&["pub", "app.cli.x", "not json"]).await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("must be JSON"));
    let out = ctl.go(&["frobnicate"]).await;
    assert_eq!(code(&out), 2);
    let nowhere = ["--url", "ws://127.0.0.1:1/", "--token", "aet_x", "whoami"];
    let out = ctl.go(&nowhere).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));

    // An app-bound token cannot act as another app.
    let out = ctl.go(&["token", "create", "--app", "files"]).await;
    let token = stdout(&out).trim().to_owned();
    assert!(token.starts_with("aet_"), "{token}");
    let out = ctl
        .go(&["--url", u, "--token", &token, "--json", "whoami"])
        .await;
    assert_eq!(code(&out), 0, "a bound token acts as its app by default");
    let who: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(who["app"], "files");
    let out = ctl
        .go(&[
            "--url", u, "--token", &token, "--app", "cli", "req", "sys.ping",
        ])
        .await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("bound to app"), "{}", stderr(&out));

    let out = ctl.go(&["perms", "show", "files"]).await;
    assert!(stdout(&out).contains("vfs.read"), "{}", stdout(&out));
    let out = ctl.go(&["--json", "daemon", "status"]).await;
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(status["hub"]["connections"].as_u64().unwrap() >= 1);
    let out = ctl.go(&["audit", "--limit", "5"]).await;
    assert!(stdout(&out).contains("chat.rooms"), "{}", stdout(&out));

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

/// Build the guest programs (guests/src/bin) once per test run, for wasm32-wasip1.
fn guests() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"))
            .join("guests");
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "--target", "wasm32-wasip1", "--manifest-path"])
            .arg(root.join("guests/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "building the guest programs failed: is the target installed? `rustup target add wasm32-wasip1`"
        );
        target.join("wasm32-wasip1/release")
    })
}

/// A local guest program's path, as `vm run` takes it (it uploads local files).
fn guest(name: &str) -> String {
    guests()
        .join(format!("{name}.wasm"))
        .to_string_lossy()
        .into_owned()
}

/// Reads stdin once (up to 4096 bytes), writes what it read to stdout, exits with code 3:
/// ```wat
/// (module
///   (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
///   (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
///   (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
///   (memory (export "memory") 1)
///   (func (export "_start")
///     (i32.store (i32.const 0) (i32.const 1024))
///     (i32.store (i32.const 4) (i32.const 4096))
///     (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
///     (i32.store (i32.const 16) (i32.const 1024))
///     (i32.store (i32.const 20) (i32.load (i32.const 8)))
///     (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
///     (call $proc_exit (i32.const 3))))
/// ```
/// (compiled with the `wat` crate, its name section left out)
#[rustfmt::skip]
const READ_THEN_EXIT_3: &[u8] = &[    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x10, 0x03, 0x60, 0x04, 0x7f, 0x7f, 0x7f,
    0x7f, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x00, 0x02, 0x67, 0x03, 0x16, 0x77, 0x61,
    0x73, 0x69, 0x5f, 0x73, 0x6e, 0x61, 0x70, 0x73, 0x68, 0x6f, 0x74, 0x5f, 0x70, 0x72, 0x65, 0x76,
    0x69, 0x65, 0x77, 0x31, 0x07, 0x66, 0x64, 0x5f, 0x72, 0x65, 0x61, 0x64, 0x00, 0x00, 0x16, 0x77,
    0x61, 0x73, 0x69, 0x5f, 0x73, 0x6e, 0x61, 0x70, 0x73, 0x68, 0x6f, 0x74, 0x5f, 0x70, 0x72, 0x65,
    0x76, 0x69, 0x65, 0x77, 0x31, 0x08, 0x66, 0x64, 0x5f, 0x77, 0x72, 0x69, 0x74, 0x65, 0x00, 0x00,
    0x16, 0x77, 0x61, 0x73, 0x69, 0x5f, 0x73, 0x6e, 0x61, 0x70, 0x73, 0x68, 0x6f, 0x74, 0x5f, 0x70,
    0x72, 0x65, 0x76, 0x69, 0x65, 0x77, 0x31, 0x09, 0x70, 0x72, 0x6f, 0x63, 0x5f, 0x65, 0x78, 0x69,
    0x74, 0x00, 0x01, 0x03, 0x02, 0x01, 0x02, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x13, 0x02, 0x06,
    0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x06, 0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x00,
    0x03, 0x0a, 0x40, 0x01, 0x3e, 0x00, 0x41, 0x00, 0x41, 0x80, 0x08, 0x36, 0x02, 0x00, 0x41, 0x04,
    0x41, 0x80, 0x20, 0x36, 0x02, 0x00, 0x41, 0x00, 0x41, 0x00, 0x41, 0x01, 0x41, 0x08, 0x10, 0x00,
    0x1a, 0x41, 0x10, 0x41, 0x80, 0x08, 0x36, 0x02, 0x00, 0x41, 0x14, 0x41, 0x08, 0x28, 0x02, 0x00,
    0x36, 0x02, 0x00, 0x41, 0x01, 0x41, 0x10, 0x41, 0x01, 0x41, 0x18, 0x10, 0x01, 0x1a, 0x41, 0x03,
    0x10, 0x02, 0x0b,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_stdin_reaches_a_program_that_ends_at_once_with_its_output_and_exit_code() {
    let (home, daemon, ctl, _) = session().await;
    let (cat, hello) = (guest("cat"), guest("hello"));
    // Every time, not just when the race goes well.
    for _ in 0..3 {
        let out = ctl
            .go_with_stdin(&["vm", "run", &cat], Some(b"hello\n".to_vec()))
            .await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(stdout(&out), "hello\n");
        // One that never reads it and ends before it could be sent.
        let out = ctl
            .go_with_stdin(&["vm", "run", &hello], Some(b"unread\n".to_vec()))
            .await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(stdout(&out), "hello from wasm\n");
    }
    let exit3 = home.path().join("read-then-exit3.wasm");
    std::fs::write(&exit3, READ_THEN_EXIT_3).unwrap();
    let exit3 = exit3.to_str().unwrap();
    let out = ctl
        .go_with_stdin(&["vm", "run", exit3], Some(b"some input".to_vec()))
        .await;
    assert_eq!(code(&out), 3, "the program's exit code: {}", stderr(&out));
    assert_eq!(stdout(&out), "some input", "it read its input");
    assert_eq!(stderr(&out), "", "aetherctl adds nothing of its own");
    // Not piped at all: the program reads end of input at once.
    let out = ctl.go(&["vm", "run", &cat]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_stdin_larger_than_vm_run_takes_is_fed_in_full_or_until_the_program_stops_reading() {
    let (_home, daemon, ctl, _) = session().await;
    let line = "the quick brown fox jumps over the lazy dog \u{e9}t\u{e9}\n";
    let input = line.repeat(200 * 1024 / line.len() + 1);
    assert!(input.len() > 200 * 1024);
    let expected = format!(
        "{} {} {}\n",
        input.lines().count(),
        input.split_whitespace().count(),
        input.len()
    );
    let out = ctl
        .go_with_stdin(
            &["vm", "run", &guest("wc")],
            Some(input.clone().into_bytes()),
        )
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), expected);
    // A program that never reads its input: feeding stops, its output and exit code stay.
    let out = ctl
        .go_with_stdin(&["vm", "run", &guest("hello")], Some(input.into_bytes()))
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello from wasm\n");
    // Input that is not text is refused before anything runs.
    let out = ctl
        .go_with_stdin(&["vm", "run", &guest("cat")], Some(vec![0xff, 0xfe, b'\n']))
        .await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("UTF-8"), "{}", stderr(&out));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_run_timeout_ms_is_the_jobs_deadline_and_request_timeout_ms_aetherctls() {
    let (_home, daemon, ctl, _) = session().await;
    let ticker = guest("ticker");
    let started = Instant::now();
    let out = ctl
        .go(&["vm", "run", &ticker, "--timeout-ms", "300", "--", "100000"])
        .await;
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stderr(&out).contains("timeout"), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("tick 1\n"), "{}", stdout(&out));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped at its deadline, not at the daemon's default: {:?}",
        started.elapsed()
    );
    // Waiting for a job's exit is not cut by the request timeout (4 s here, 1 + 2 s grace).
    let out = ctl
        .go(&[
            "--request-timeout-ms",
            "1000",
            "vm",
            "run",
            &ticker,
            "--",
            "40",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).ends_with("tick 40\n"), "{}", stdout(&out));
    let mut whoami = ctl.command(&["whoami"]);
    whoami.env("AETHER_REQUEST_TIMEOUT_MS", "5000");
    let out = tokio::task::spawn_blocking(move || whoami.output().unwrap())
        .await
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // One name, one meaning: the old global flag is gone.
    let out = ctl.go(&["--timeout-ms", "5000", "whoami"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let out = ctl.go(&["--help"]).await;
    assert!(
        stdout(&out).contains("--request-timeout-ms")
            && stdout(&out).contains("How long to wait for each answer from the daemon, in ms"),
        "{}",
        stdout(&out)
    );
    daemon.stop().await;
}

/// Mint a token as the owner (over the Unix socket): (token, id).
async fn mint(ctl: &Ctl, label: &str) -> (String, i64) {
    let out = ctl
        .go(&["--json", "token", "create", "--label", label])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let created: Value = serde_json::from_str(&stdout(&out)).unwrap();
    (
        created["token"].as_str().unwrap().to_owned(),
        created["id"].as_i64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_listed_with_the_current_one_marked_and_revoked_one_or_all_others() {
    let (_home, daemon, ctl, url) = session().await;
    let (mine, mine_id) = mint(&ctl, "this laptop").await;
    let (other, other_id) = mint(&ctl, "old phone").await;
    let as_mine = ["--url", url.as_str(), "--token", mine.as_str()];
    let out = ctl.go(&[&as_mine[..], &["token", "list"]].concat()).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listing = stdout(&out);
    let line_of = |label: &str| {
        listing
            .lines()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no {label}: {listing}"))
            .to_owned()
    };
    let this = line_of("this laptop");
    assert!(this.starts_with(&format!("#{mine_id} ")), "{this}");
    assert!(this.ends_with("(this one)"), "{this}");
    assert!(
        this.contains(" created 20") && this.contains("Z  expires 20"),
        "RFC 3339 dates: {this}"
    );
    assert!(!line_of("old phone").contains("(this one)"), "{listing}");
    let out = ctl
        .go(&[&as_mine[..], &["--json", "token", "list"]].concat())
        .await;
    let listed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let tokens = listed["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{listed}");
    for token in tokens {
        assert_eq!(token["current"], token["id"] == mine_id, "{token}");
        assert!(token["created_at"].as_i64().unwrap() > 0, "{token}");
    }

    // One by id: signing in with it fails from then on.
    let id = other_id.to_string();
    let out = ctl
        .go(&[&as_mine[..], &["token", "revoke", &id]].concat())
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "revoked 1 token; closed 0 connections\n");
    let out = ctl.go(&["--url", &url, "--token", &other, "whoami"]).await;
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stderr(&out).contains("unauthenticated"), "{}", stderr(&out));

    // All the others; a connection signed in with one of them is closed.
    let (third, _) = mint(&ctl, "tablet").await;
    mint(&ctl, "desktop").await;
    let mut sub = ctl
        .command(&["--url", &url, "--token", &third, "sub", "app.cli.>"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(sub.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || lines.lines().for_each(|line| drop(tx.send(line))));
    let deadline = Instant::now() + Duration::from_secs(20);
    while rx.try_recv().is_err() {
        assert!(
            Instant::now() < deadline,
            "the subscriber never got a message"
        );
        let out = ctl.go(&["pub", "app.cli.ping", "{}"]).await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = ctl
        .go(&[&as_mine[..], &["--json", "token", "revoke", "--all-others"]].concat())
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let revoked: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(revoked["revoked"], 2, "{revoked}");
    assert_eq!(revoked["closed"], 1, "{revoked}");
    let ended = tokio::task::spawn_blocking(move || sub.wait_with_output().unwrap());
    let out = tokio::time::timeout(Duration::from_secs(20), ended)
        .await
        .expect("the revoked subscriber is disconnected")
        .unwrap();
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    let out = ctl
        .go(&[&as_mine[..], &["--json", "token", "list"]].concat())
        .await;
    let listed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["tokens"][0]["id"], mine_id);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_revokes_the_users_other_tokens_unless_keep_tokens() {
    let (_home, daemon, ctl, url) = session().await;
    let out = ctl
        .go_with_stdin(
            &["user", "add", "ana", "--password-stdin"],
            Some(b"first horse\n".to_vec()),
        )
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let login = async |password: &str| {
        let out = ctl
            .go_with_stdin(
                &["--url", &url, "login", "--user", "ana", "--password-stdin"],
                Some(format!("{password}\n").into_bytes()),
            )
            .await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    };
    let whoami = async || ctl.go(&["--url", &url, "whoami"]).await;
    login("first horse").await;

    let out = ctl
        .go_with_stdin(
            &["user", "passwd", "ana", "--password-stdin", "--keep-tokens"],
            Some(b"second horse\n".to_vec()),
        )
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "password changed for ana; other tokens kept\n"
    );
    let out = whoami().await;
    assert_eq!(
        code(&out),
        0,
        "the saved token still works: {}",
        stderr(&out)
    );

    let out = ctl
        .go_with_stdin(
            &["user", "passwd", "ana", "--password-stdin"],
            Some(b"third horse\n".to_vec()),
        )
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "password changed for ana; 1 other token revoked\n"
    );
    let out = whoami().await;
    assert_eq!(
        code(&out),
        1,
        "the saved token is revoked: {}",
        stdout(&out)
    );

    login("third horse").await;
    let out = ctl
        .go_with_stdin(
            &[
                "--json",
                "user",
                "passwd",
                "ana",
                "--password-stdin",
                "--keep-tokens",
            ],
            Some(b"fourth horse\n".to_vec()),
        )
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let changed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(changed["name"], "ana", "{changed}");
    assert_eq!(changed["changed"], true, "{changed}");
    assert_eq!(changed["revoked"], 0, "{changed}");
    assert_eq!(code(&whoami().await), 0);
    let out = ctl
        .go_with_stdin(
            &["--json", "user", "passwd", "ana", "--password-stdin"],
            Some(b"fifth horse\n".to_vec()),
        )
        .await;
    let changed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(changed["revoked"], 1, "{changed}");
    assert_eq!(code(&whoami().await), 1);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_revoke_needs_one_id_or_all_others_and_an_unknown_id_is_not_found() {
    let (_home, daemon, ctl, _) = session().await;
    for args in [
        &["token", "revoke"][..],
        &["token", "revoke", "1", "--all-others"],
        &["token", "revoke", "one"],
    ] {
        let out = ctl.go(args).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("error:"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = ctl.go(&["token", "revoke", "987654"]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("not_found"), "{}", stderr(&out));
    let out = ctl.go(&["--json", "token", "revoke", "987654"]).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let error: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(error["error"]["code"], "not_found", "{error}");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_wss_aetherctl_trusts_the_certificate_it_is_given_and_no_other() {
    let home = tempfile::tempdir().unwrap();
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (home.path().join("cert.pem"), home.path().join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    let mut config = Config::for_data_dir(home.path());
    config.listen = Listen::Explicit("127.0.0.1:0".parse().unwrap());
    config.owner = "boss".into();
    config.tls = Some(aetherd::config::TlsFiles {
        cert: cert.clone(),
        key,
    });
    let daemon = Daemon::start(config).await.unwrap();
    let url = format!("wss://localhost:{}/", daemon.tcp_addr().unwrap().port());
    let ctl = Ctl {
        home: home.path().to_owned(),
    };
    let horse = || Some(b"correct horse\n".to_vec());
    let added = ctl
        .go_with_stdin(&["user", "add", "ana", "--password-stdin"], horse())
        .await;
    assert_eq!(code(&added), 0, "{}", stderr(&added));

    let cert = cert.to_str().unwrap();
    let login = [
        "--url",
        &url,
        "--ca-cert",
        cert,
        "login",
        "--user",
        "ana",
        "--password-stdin",
    ];
    let out = ctl.go_with_stdin(&login, horse()).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = ctl.go(&["--url", &url, "--ca-cert", cert, "whoami"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ana (id"), "{}", stdout(&out));

    // Without the certificate the system's roots do not vouch for it: exit 3, saying why.
    let out = ctl.go(&["--url", &url, "whoami"]).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    // Plain ws:// to the TLS port gets nowhere either.
    let plain = url.replace("wss://", "ws://");
    let out = ctl.go(&["--url", &plain, "whoami"]).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_saved_from_a_file_and_stdin_loads_lists_and_deletes() {
    let (home, daemon, ctl, _url) = session().await;
    let file = home.path().join("layout.json");
    std::fs::write(
        &file,
        "{\n  \"panes\": [\"files\", \"terminal\"],\n  \"focus\": 0\n}\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();

    let out = ctl.go(&["session", "save", "work", file]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "saved work (revision 1)");
    let focused = Some(br#"{"panes":["files","terminal"],"focus":1}"#.to_vec());
    let out = ctl
        .go_with_stdin(&["--json", "session", "save", "work", "-"], focused)
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let saved: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(saved, serde_json::json!({ "name": "work", "revision": 2 }));

    // Plain `load` prints the state alone, so it can be saved again as it is.
    let out = ctl.go(&["session", "load", "work"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let state: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        state,
        serde_json::json!({ "panes": ["files", "terminal"], "focus": 1 })
    );
    let out = ctl.go(&["--json", "session", "load", "work"]).await;
    let loaded: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (&loaded["revision"], &loaded["state"]),
        (&serde_json::json!(2), &state)
    );
    assert!(loaded["saved_at_ms"].as_u64().unwrap() > 0, "{loaded}");

    let out = ctl.go(&["--json", "session", "list"]).await;
    let listed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed["sessions"][0]["name"], "work", "{listed}");
    assert_eq!(listed["sessions"][0]["revision"], 2, "{listed}");
    let out = ctl.go(&["session", "list"]).await;
    assert!(stdout(&out).starts_with("work "), "{}", stdout(&out));

    // Refusals exit 1 with the daemon's code; input that is not JSON is a usage error.
    let out = ctl.go(&["session", "save", "no/slash", file]).await;
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("bad_frame") && stderr(&out).contains("`name`"),
        "{}",
        stderr(&out)
    );
    let out = ctl
        .go_with_stdin(&["session", "save", "work", "-"], Some(b"[1, 2]".to_vec()))
        .await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("object"), "{}", stderr(&out));
    let out = ctl
        .go_with_stdin(
            &["session", "save", "work", "-"],
            Some(b"not json".to_vec()),
        )
        .await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let out = ctl.go(&["--app", "files", "session", "list"]).await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("`session`"), "{}", stderr(&out));

    let out = ctl.go(&["session", "delete", "work"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "deleted work");
    let out = ctl.go(&["--json", "session", "delete", "work"]).await;
    let deleted: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(deleted["existed"], false);
    let out = ctl.go(&["session", "load", "work"]).await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("not_found"), "{}", stderr(&out));

    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_status_and_ask_stream_the_answer_to_stdout_and_failures_exit_1() {
    use aether_proto::api::ai::ProviderKind;
    use aether_tests::fake_llm::{FakeLlm, Reply};
    use aetherd::config::AiProvider;
    use serde_json::json;

    // No provider: status says how to set one up; ask fails with the daemon's code.
    let (_home, _daemon, ctl, _) = session().await;
    let out = ctl.go(&["ai", "status"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("GEMINI_API_KEY"), "{}", stdout(&out));
    let out = ctl.go(&["ai", "ask", "hi"]).await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("unavailable"), "{}", stderr(&out));

    let fake = FakeLlm::start().await;
    let chunk = |text: &str| json!({ "choices": [{ "index": 0, "delta": { "content": text } }] });
    let end = json!({ "choices": [{ "index": 0, "delta": {}, "finish_reason": "stop" }],
                      "usage": { "prompt_tokens": 2, "completion_tokens": 3 } });
    fake.then(Reply::events([
        chunk("Hello, "),
        chunk("world"),
        end.clone(),
    ]))
    .then(Reply::events([chunk("{\"n\": 4}"), end]))
    .then(Reply::json(
        503,
        json!({ "error": { "message": "overloaded" } }),
    ));
    let home = tempfile::tempdir().unwrap();
    let mut config = Config::for_data_dir(home.path());
    config.listen = Listen::Off;
    config.owner = "boss".into();
    config.ai.max_retries = 0;
    config.ai.providers.push(AiProvider {
        name: "local".into(),
        kind: ProviderKind::Openai,
        base_url: Some(fake.url("/v1")),
        model: "m".into(),
        embed_model: None,
        api_key_env: None,
        api_key: None,
    });
    let _daemon = Daemon::start(config).await.unwrap();
    let ctl = Ctl {
        home: home.path().to_owned(),
    };
    let out = ctl.go(&["ai", "ask", "say", "hello"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "Hello, world\n");
    assert_eq!(fake.seen()[0].body["messages"][0]["content"], "say hello");
    let schema = home.path().join("schema.json");
    std::fs::write(&schema, r#"{"type":"object"}"#).unwrap();
    let out = ctl
        .go(&["ai", "ask", "count", "--schema", schema.to_str().unwrap()])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), r#"{"n":4}"#);
    let out = ctl.go(&["ai", "ask", "again"]).await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("overloaded"), "{}", stderr(&out));
    let out = ctl.go_with_stdin(&["ai", "ask"], Some(Vec::new())).await;
    assert_eq!(code(&out), 2, "no prompt is a usage error");
    let out = ctl.go(&["--json", "ai", "status"]).await;
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["default"], "local");
    assert_eq!(status["usage"][0]["app"], "cli");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_run_watch_status_and_approve_from_a_shell() {
    let (home, _daemon, ctl, _) = session().await;
    let graph = home.path().join("graph.json");
    std::fs::write(
        &graph,
        r#"{ "name": "note", "nodes": [
            { "id": "write", "tool": "vfs.write", "args": { "path": "/n.txt", "data": "hi" } },
            { "id": "read", "tool": "vfs.read", "args": { "path": "/n.txt" }, "after": ["write"] } ] }"#,
    )
    .unwrap();
    let out = ctl.go(&["agent", "run", graph.to_str().unwrap()]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    assert!(id.starts_with('g'), "{id}");
    // The write waits for approval: status says so.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ctl.go(&["agent", "status", &id]).await;
        if stdout(&out).contains("approval") {
            break;
        }
        assert!(Instant::now() < deadline, "{}", stdout(&out));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = ctl.go(&["agent", "approve", &id, "write"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = ctl.go(&["agent", "watch", &id]).await;
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let out = ctl.go(&["--json", "agent", "status", &id]).await;
    let graph: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(graph["state"], "done");
    assert_eq!(graph["nodes"][1]["result"]["data"], "hi");
    // A graph that fails: --watch exits 1 and says which node.
    let out = ctl
        .go_with_stdin(
            &["agent", "run", "-", "--watch"],
            Some(
                br#"{"name":"bad","nodes":[{"id":"r","tool":"vfs.read","args":{"path":"/nope"}}]}"#
                    .to_vec(),
            ),
        )
        .await;
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("failed: node r failed") && !stderr(&out).contains("cancelled"),
        "a failed graph says failed: {}",
        stderr(&out)
    );
    // A file that is not a graph is a usage error.
    let out = ctl
        .go_with_stdin(&["agent", "run", "-"], Some(b"{}".to_vec()))
        .await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("not a graph"), "{}", stderr(&out));
    let out = ctl.go(&["agent", "list"]).await;
    assert!(
        stdout(&out).contains("note") && stdout(&out).contains("bad"),
        "{}",
        stdout(&out)
    );
    // The built-in summarize rule, by name.
    let out = ctl
        .go(&["rules", "add", "--preset", "summarize", "--glob", "*.md"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = ctl.go(&["rules", "list"]).await;
    assert!(
        stdout(&out).contains("summarize [cli] on telemetry.vfs.write *.md -> agent.run"),
        "{}",
        stdout(&out)
    );
    let out = ctl.go(&["rules", "add", "--preset", "nope"]).await;
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("the presets: summarize"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_are_browsed_installed_with_consent_run_signed_and_removed() {
    let (home, daemon, ctl, _url) = session().await;
    let out = ctl.go(&["apps", "catalog", "count"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("wordcount"), "{}", stdout(&out));

    // No terminal to ask on and no --yes: nothing is installed, and it says how.
    let out = ctl.go(&["apps", "install", "wordcount"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--yes") && stderr(&out).contains("vfs_read"),
        "{}",
        stderr(&out)
    );
    let out = ctl.go(&["apps", "info", "wordcount"]).await;
    assert!(
        stdout(&out).contains("may vfs_read (new)"),
        "{}",
        stdout(&out)
    );

    let out = ctl.go(&["apps", "install", "wordcount", "--yes"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("installed wordcount 1.0.0 in"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("warning: not signed"),
        "{}",
        stdout(&out)
    );
    let out = ctl.go(&["apps", "list"]).await;
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("wordcount") && l.contains("installed")),
        "{}",
        stdout(&out)
    );
    let out = ctl
        .go_with_stdin(
            &["vm", "run", "--installed", "wordcount"],
            Some(b"/\n".to_vec()),
        )
        .await;
    assert!(code(&out) <= 1, "{}", stderr(&out));

    // A publisher's key and a signed local bundle (the daemon does not know the key: a warning).
    let key = home.path().join("publisher.key");
    let out = ctl.go(&["apps", "keygen", key.to_str().unwrap()]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("public key:"));
    let again = ctl.go(&["apps", "keygen", key.to_str().unwrap()]).await;
    assert_ne!(code(&again), 0, "a key is never overwritten");
    let bundle = format!(
        "{}/../aetherd/catalog/todo-1.1.0.tar.gz",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = ctl
        .go(&["apps", "sign", &bundle, "--key", key.to_str().unwrap()])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let signature = stdout(&out).trim().to_owned();
    let out = ctl
        .go(&[
            "--json",
            "apps",
            "install",
            &bundle,
            "--yes",
            "--signature",
            &signature,
            "--publisher",
            "me",
        ])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let done: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(done["signature"]["state"], "unknown_publisher", "{done}");
    let out = ctl
        .go(&[
            "apps",
            "install",
            &bundle,
            "--yes",
            "--signature",
            "AAAA",
            "--publisher",
            "me",
        ])
        .await;
    assert_eq!(
        code(&out),
        0,
        "an unknown publisher's signature is not checked: {}",
        stderr(&out)
    );

    let out = ctl.go(&["apps", "uninstall", "wordcount"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "uninstalled wordcount 1.0.0");
    let out = ctl.go(&["apps", "uninstall", "wordcount"]).await;
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("not installed for you"),
        "{}",
        stderr(&out)
    );
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_rooms_messages_history_and_presence_from_a_shell() {
    let (_home, daemon, ctl, _url) = session().await;
    let out = ctl.go(&["chat", "create", "team", "--private"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "made room team");
    let out = ctl.go(&["chat", "send", "team", "hello **team**"]).await;
    assert_eq!(stdout(&out).trim(), "sent #1", "{}", stderr(&out));
    let out = ctl
        .go_with_stdin(&["chat", "send", "team", "-"], Some(b"from stdin".to_vec()))
        .await;
    assert_eq!(stdout(&out).trim(), "sent #2", "{}", stderr(&out));
    let out = ctl.go(&["chat", "history", "team"]).await;
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{}", stdout(&out));
    assert!(
        lines[0].starts_with("#1 ") && lines[0].ends_with("boss: hello **team**"),
        "{lines:?}"
    );
    let out = ctl.go(&["chat", "rooms"]).await;
    assert!(stdout(&out).starts_with("team"), "{}", stdout(&out));
    let out = ctl.go(&["chat", "send", "nowhere", "hi"]).await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("not a member"), "{}", stderr(&out));
    let out = ctl.go(&["chat", "send", "team", ""]).await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));

    let out = ctl
        .go(&["presence", "set", "--away", "--text", "lunch"])
        .await;
    assert_eq!(stdout(&out).trim(), "boss is away", "{}", stderr(&out));
    let out = ctl.go(&["presence", "list"]).await;
    assert!(
        stdout(&out).contains("boss") && stdout(&out).contains("lunch"),
        "{}",
        stdout(&out)
    );
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_every_command_quietly() {
    let (_home, _daemon, ctl, _) = session().await;
    for args in [
        &["apps", "catalog"][..],
        &["audit"],
        &["--json", "apps", "list"],
        &["chat", "rooms"],
    ] {
        let mut command = ctl.command(args);
        let out = tokio::task::spawn_blocking(move || {
            let mut child = command
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // The reader goes away before anything is written (`| head -0`).
            drop(child.stdout.take());
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        let err = stderr(&out);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        assert!(
            matches!(code(&out), 0 | 141),
            "{args:?}: exit {}: {err}",
            code(&out)
        );
    }
}

#[test]
fn a_daemon_started_again_has_the_environment_it_first_had_and_there_is_only_one() {
    let home = tempfile::tempdir().unwrap();
    let ctl = Ctl {
        home: home.path().to_owned(),
    };
    // The first start, from a shell with a provider configured in its environment.
    let out = ctl
        .command(&["--json", "ai", "status"])
        .env("AETHER_LISTEN", "off")
        .env("GEMINI_BASE_URL", "http://127.0.0.1:9/v1beta")
        .env("GEMINI_MODEL", "gemma-first")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["providers"][0]["model"], "gemma-first");
    // A second daemon on the same data dir refuses to start, naming the first.
    let second =
        Command::new(PathBuf::from(env!("CARGO_BIN_EXE_aetherctl")).with_file_name("aetherd"))
            .env("AETHER_HOME", home.path())
            .env("AETHER_LISTEN", "off")
            .output()
            .unwrap();
    assert!(!second.status.success());
    assert!(
        stderr(&second).contains("another aetherd (pid"),
        "{}",
        stderr(&second)
    );
    // It dies (kill -9); a shell without those variables starts it again: same provider.
    let pid: i32 = std::fs::read_to_string(home.path().join("aetherd.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let socket = home.path().join("run/aetherd.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        assert!(Instant::now() < deadline, "the daemon did not die");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = ctl
        .command(&["--json", "ai", "status"])
        .env_remove("GEMINI_BASE_URL")
        .env_remove("GEMINI_MODEL")
        .env("GEMINI_MODEL", "from-the-second-shell")
        .output()
        .unwrap();
    let log = std::fs::read_to_string(home.path().join("run/aetherd.log")).unwrap_or_default();
    assert_eq!(code(&out), 0, "{}\nthe daemon's log:\n{log}", stderr(&out));
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        status["providers"][0]["model"], "gemma-first",
        "the daemon's configuration is its own, not the client's: {status}"
    );
    let out = ctl.run(&["daemon", "stop"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_bundle_larger_than_a_frame_installs_through_an_upload() {
    use aether_tests::bundles;
    let (home, _daemon, ctl, _) = session().await;
    // 5 MiB that does not compress: the bundle is larger than a request frame (4 MiB).
    let mut noise = vec![0u8; 5 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for byte in &mut noise {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = x as u8;
    }
    let manifest = serde_json::to_vec(&bundles::manifest("big", "1.0.0", &[])).unwrap();
    let bytes = bundles::tar_gz(&[
        bundles::Entry::File("manifest.json", &manifest),
        bundles::Entry::File("app.wasm", &bundles::noop_module()),
        bundles::Entry::File("noise.bin", &noise),
    ]);
    assert!(bytes.len() > 5 << 20);
    let path = home.path().join("big-1.0.0.tar.gz");
    std::fs::write(&path, &bytes).unwrap();
    let out = ctl
        .go(&["apps", "install", path.to_str().unwrap(), "--yes"])
        .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("installed big 1.0.0"),
        "{}",
        stdout(&out)
    );
    // The upload is not left in the user's files.
    let out = ctl.go(&["fs", "ls", "/.aether/bundles"]).await;
    assert!(!stdout(&out).contains("big"), "{}", stdout(&out));
}
