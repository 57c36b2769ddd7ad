//! The desktop against a real daemon on a temp dir, as a user meets it:
//! - a keypress to the updated frame (the terminal's `ls`: key → request → answer → frame),
//! - opening a folder of 10,000 entries to its first paint,
//! - `aether` started in tmux to its first frame of the restored workspace,
//! - idle: resident memory and wake-ups per second of a running `aether`.
//!
//! `cargo bench -p aether-tui --bench desktop` (builds `aetherd` first if it is missing).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aether_proto::api::vfs;
use aether_proto::client::{AetherClient, ClientOptions, Endpoint};
use aether_proto::frame::Auth;
use aether_tui::bus::{Bus, Incoming};
use aether_tui::desktop::{Desktop, Input, Output, Placement};
use aether_tui::keymap::Keymap;
use app_kit::{Key, KeyCode, Mods, Theme};
use hdrhistogram::Histogram;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;

const FOLDER_ENTRIES: usize = 10_000;

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn aether_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_aether"))
}

fn aetherd_bin() -> PathBuf {
    let beside = aether_bin().with_file_name("aetherd");
    if !beside.exists() {
        println!("building aetherd (release) first…");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .args(["build", "--release", "--bin", "aetherd"])
            .status()
            .expect("cargo runs");
        assert!(status.success() && beside.exists(), "aetherd did not build");
    }
    beside
}

fn start_daemon(home: &Path) -> Daemon {
    let child = Command::new(aetherd_bin())
        .env("AETHER_HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("aetherd starts");
    let socket = home.join("run/aetherd.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "no daemon on {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon(child)
}

/// The desktop in process, with its bus on a real connection.
struct Harness {
    desktop: Desktop,
    bus: Bus,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    terminal: Terminal<TestBackend>,
}

impl Harness {
    async fn new(client: AetherClient) -> Harness {
        let (tx, incoming) = mpsc::unbounded_channel();
        let mut desktop = Desktop::new(
            Keymap::default(),
            Theme::dark(),
            "bench".into(),
            std::time::Instant::now(),
        );
        desktop.resize(120, 40);
        desktop.default_layout();
        desktop.start();
        let mut harness = Harness {
            desktop,
            bus: Bus::new(client, tx),
            incoming,
            terminal: Terminal::new(TestBackend::new(120, 40)).unwrap(),
        };
        harness.pump();
        harness.settle().await;
        harness
    }

    fn pump(&mut self) {
        for output in self.desktop.take_outputs() {
            match output {
                Output::Bus(window, kind, effect) => self.bus.run(window, kind, effect),
                Output::Closed(window) => self.bus.closed(window.into()),
                Output::Copy(_) | Output::SaveTheme(_) | Output::Quit => {}
            }
        }
    }

    fn draw(&mut self) {
        let desktop = &self.desktop;
        self.terminal
            .draw(|frame| desktop.render(frame.area(), frame.buffer_mut()))
            .unwrap();
    }

    /// Deliver what comes back until nothing more arrives for a moment.
    async fn settle(&mut self) {
        while let Ok(Some(next)) =
            tokio::time::timeout(Duration::from_millis(200), self.incoming.recv()).await
        {
            self.desktop.deliver(next.owner, next.event);
            self.pump();
        }
    }

    /// Deliver until the screen shows `text`.
    async fn until_drawn(&mut self, text: &str) {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), self.incoming.recv())
                .await
                .expect("an answer within 10 s")
                .expect("the bus is open");
            self.desktop.deliver(next.owner, next.event);
            while let Ok(more) = self.incoming.try_recv() {
                self.desktop.deliver(more.owner, more.event);
            }
            self.pump();
            self.draw();
            if self.terminal.backend().to_string().contains(text) {
                return;
            }
        }
    }

    fn key(&mut self, key: Key) {
        self.desktop.on_input(Input::Key(key));
        self.pump();
    }
}

fn report(name: &str, histogram: &Histogram<u64>, target: &str) {
    println!(
        "{name:<34} n={:<5} p50 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms   (target: {target})",
        histogram.len(),
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
        histogram.max() as f64 / 1000.0,
    );
}

async fn keypress_to_frame(client: AetherClient) {
    let mut h = Harness::new(client).await;
    // The terminal: right of the explorer, below the editor.
    h.key(Key::new(KeyCode::Char('l'), Mods::ALT));
    h.key(Key::new(KeyCode::Char('j'), Mods::ALT));
    let mut histogram = Histogram::<u64>::new(3).unwrap();
    for _ in 0..300 {
        for c in "ls /".chars() {
            h.key(Key::char(c));
        }
        h.draw();
        let started = Instant::now();
        h.key(Key::plain(KeyCode::Enter));
        h.until_drawn("bigdir").await;
        histogram
            .record(started.elapsed().as_micros() as u64)
            .unwrap();
        // Clear the screen so the next answer is new on it.
        h.key(Key::ctrl('l'));
    }
    report("keypress → frame (ls, loopback)", &histogram, "p99 < 16 ms");
    let mut typing = Histogram::<u64>::new(3).unwrap();
    h.key(Key::new(KeyCode::Char('k'), Mods::ALT));
    for _ in 0..1000 {
        let started = Instant::now();
        h.key(Key::char('x'));
        h.draw();
        typing.record(started.elapsed().as_micros() as u64).unwrap();
    }
    report("keypress → frame (editor, local)", &typing, "p99 < 16 ms");
}

/// The bus alone: the daemon's listing of 10,000 entries, raw, then decoded.
async fn list_big_folder(client: &AetherClient) {
    let files = client.app("files");
    let mut raw = Histogram::<u64>::new(3).unwrap();
    let mut typed = Histogram::<u64>::new(3).unwrap();
    for _ in 0..20 {
        let started = Instant::now();
        let answer = files
            .request_raw(
                "vfs.list",
                aether_proto::frame::to_data(&vfs::List {
                    path: "/bigdir".into(),
                }),
                None,
            )
            .await
            .unwrap();
        raw.record(started.elapsed().as_micros() as u64).unwrap();
        let started = Instant::now();
        let listing: vfs::Listing =
            app_kit::decode::<vfs::List>(Ok(app_kit::Payload::new(answer.get()))).unwrap();
        assert_eq!(listing.entries.len(), FOLDER_ENTRIES);
        typed.record(started.elapsed().as_micros() as u64).unwrap();
    }
    report("  of which: vfs.list on the bus", &raw, "-");
    report("  of which: decoding it (as the app)", &typed, "-");
}

async fn open_big_folder(client: AetherClient) {
    let mut h = Harness::new(client).await;
    let mut histogram = Histogram::<u64>::new(3).unwrap();
    for _ in 0..20 {
        let started = Instant::now();
        h.desktop
            .open_app(apps::files::APP, Placement::Floating, Some("/bigdir"));
        h.pump();
        h.until_drawn("file-00000.txt").await;
        histogram
            .record(started.elapsed().as_micros() as u64)
            .unwrap();
        h.key(Key::ctrl('g'));
        h.key(Key::char('x'));
        h.settle().await;
    }
    report("open 10,000 entries → first paint", &histogram, "< 50 ms");
}

async fn fill_big_folder(cli: &aether_proto::client::AppHandle) {
    cli.request(&vfs::Mkdir {
        path: "/bigdir".into(),
        parents: true,
    })
    .await
    .unwrap();
    let started = Instant::now();
    let mut pending = futures_util::stream::FuturesUnordered::new();
    use futures_util::StreamExt;
    for i in 0..FOLDER_ENTRIES {
        let cli = cli.clone();
        pending.push(async move {
            cli.request(&vfs::Write {
                path: format!("/bigdir/file-{i:05}.txt"),
                data: "x".into(),
                ..Default::default()
            })
            .await
        });
        if pending.len() >= 16 {
            pending.next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = pending.next().await {
        done.unwrap();
    }
    println!(
        "(made /bigdir with {FOLDER_ENTRIES} files in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
}

fn tmux(socket: &str, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .arg("-L")
        .arg(socket)
        .args(args)
        .output()
        .expect("tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `aether` in tmux: start to first frame of the restored workspace, then idle costs.
fn startup_and_idle(home: &Path) {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("startup and idle: skipped (no tmux)");
        return;
    }
    let socket = format!("aether-bench-{}", std::process::id());
    let stamp = home.join("startup-us");
    let command = format!(
        "env AETHER_HOME={h} HOME={h} XDG_CONFIG_HOME={h}/config TERM=xterm-256color AETHER_TUI_STARTUP_FILE={s} {a}",
        h = home.display(),
        s = stamp.display(),
        a = aether_bin().display()
    );
    let mut histogram = Histogram::<u64>::new(3).unwrap();
    for run in 0..11 {
        let _ = std::fs::remove_file(&stamp);
        tmux(
            &socket,
            &[
                "new-session",
                "-d",
                "-s",
                "b",
                "-x",
                "120",
                "-y",
                "40",
                &command,
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let micros = loop {
            if let Ok(text) = std::fs::read_to_string(&stamp)
                && let Ok(micros) = text.trim().parse::<u64>()
            {
                break micros;
            }
            assert!(Instant::now() < deadline, "aether did not draw");
            std::thread::sleep(Duration::from_millis(5));
        };
        // The first run lays out the default and saves it; the others restore it.
        if run > 0 {
            histogram.record(micros).unwrap();
        }
        if run < 10 {
            std::thread::sleep(Duration::from_millis(1500));
            // As an SSH connection dropping would: SIGHUP, on which aether saves and leaves.
            tmux(&socket, &["kill-session", "-t", "b"]);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Command::new("pgrep")
                .args(["-f", &format!("AETHER_HOME={}", home.display())])
                .status()
                .is_ok_and(|s| s.success())
                && Command::new("pgrep")
                    .arg("-x")
                    .arg("aether")
                    .status()
                    .is_ok_and(|s| s.success())
            {
                assert!(Instant::now() < deadline, "aether did not quit (run {run})");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    report("start → restored workspace drawn", &histogram, "< 150 ms");
    let pid = tmux(
        &socket,
        &["display-message", "-p", "-t", "b", "#{pane_pid}"],
    );
    let pid = pid.trim().to_owned();
    std::thread::sleep(Duration::from_secs(3));
    let (rss_kib, switches_before) = proc_stats(&pid);
    let window = Duration::from_secs(10);
    std::thread::sleep(window);
    let (_, switches_after) = proc_stats(&pid);
    println!(
        "idle: RSS {:.1} MiB (target < 50 MiB); {:.1} wake-ups/s over {} s (all threads' context switches)",
        rss_kib as f64 / 1024.0,
        (switches_after - switches_before) as f64 / window.as_secs_f64(),
        window.as_secs()
    );
    tmux(&socket, &["kill-server"]);
}

/// Resident KiB, and context switches summed over the process's threads.
fn proc_stats(pid: &str) -> (u64, u64) {
    let field = |text: &str, name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mut switches = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let text = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            switches += field(&text, "voluntary_ctxt_switches:")
                + field(&text, "nonvoluntary_ctxt_switches:");
        }
    }
    (field(&status, "VmRSS:"), switches)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not used.
    let home = tempfile::tempdir().unwrap();
    let _daemon = start_daemon(home.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let endpoint = Endpoint::Unix(home.path().join("run/aetherd.sock"));
        let client = AetherClient::connect(&endpoint, Auth::Local, ClientOptions::default())
            .await
            .unwrap();
        fill_big_folder(&client.app("cli")).await;
        keypress_to_frame(client.clone()).await;
        open_big_folder(client.clone()).await;
        list_big_folder(&client).await;
    });
    startup_and_idle(home.path());
}
