//! The real `aether` in tmux against a real daemon on a temp dir: open a file from the
//! explorer, edit and save it, run a program in the terminal and watch its output arrive
//! while it runs, quit, start again and find the same layout.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aether_proto::api::{chat, presence, sys, vfs};
use aether_proto::client::{AetherClient, ClientOptions, Endpoint};
use aether_proto::frame::Auth;
use base64::Engine;

struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tmux server of our own (`-L`), so the user's sessions are never touched.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Tmux {
        let version = Command::new("tmux").arg("-V").output();
        assert!(
            version.is_ok_and(|o| o.status.success()),
            "the end-to-end test drives the real binary in tmux: install it (apt-get install tmux)"
        );
        Tmux {
            socket: format!("aether-e2e-{name}-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn start(&self, session: &str, command: &str) {
        self.run(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "120",
            "-y",
            "40",
            command,
        ]);
    }

    fn keys(&self, session: &str, keys: &[&str]) {
        for key in keys {
            self.run(&["send-keys", "-t", session, key]);
        }
    }

    fn text(&self, session: &str, text: &str) {
        self.run(&["send-keys", "-t", session, "-l", text]);
    }

    fn screen(&self, session: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", session])
    }

    /// Wait for the first-start hint and close it. Any key does; not Escape, which tmux
    /// may join to the next key.
    fn past_welcome(&self, session: &str) {
        self.wait(session, "the welcome hint", |s| {
            s.contains("Welcome to Aether")
        });
        self.keys(session, &["x"]);
        self.wait(session, "the hint to close", |s| {
            !s.contains("Welcome to Aether")
        });
    }

    /// Open the launcher's app number `n` (Ctrl-g a) and zoom its window.
    fn open_zoomed(&self, session: &str, n: &str) {
        self.keys(session, &["C-g", "a"]);
        self.wait(session, "the launcher", |s| s.contains("People"));
        self.keys(session, &[n, "C-g", "z"]);
        self.wait(session, "the window zoomed", |s| s.contains("[zoomed]"));
    }

    /// Poll the screen until `check` holds; fail with the screen after 20 s.
    fn wait(&self, session: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen(session);
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

/// A binary of the workspace beside `aether` (aetherd, aetherctl).
fn sibling(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_aether")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is built with the workspace",
        path.display()
    );
    path
}

fn start_daemon(home: &Path) -> Daemon {
    start_daemon_listening(home, None)
}

/// The daemon, also on TCP at `listen` when given (for users signing in from elsewhere).
fn start_daemon_listening(home: &Path, listen: Option<&str>) -> Daemon {
    let mut command = Command::new(sibling("aetherd"));
    if let Some(listen) = listen {
        command.env("AETHER_LISTEN", listen);
    }
    let child = command
        .env("AETHER_HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("aetherd starts");
    let socket = home.join("run/aetherd.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "the daemon did not open {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    while let Some(listen) = listen
        && std::net::TcpStream::connect(listen).is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the daemon did not listen on {listen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Daemon { child }
}

/// `aether` on this home, saying how it exited and staying for the screen to be read.
fn aether_command(home: &Path) -> String {
    aether_command_with(home, "")
}

fn aether_command_with(home: &Path, args: &str) -> String {
    format!(
        "env AETHER_HOME={home} HOME={home} XDG_CONFIG_HOME={home}/config TERM=xterm-256color {aether} {args}; echo AETHER-EXITED $?; sleep 60",
        home = home.display(),
        aether = env!("CARGO_BIN_EXE_aether"),
    )
}

/// `aether` signed in to `url` as whoever `aetherctl login` saved in this home.
fn remote_aether_command(home: &Path, url: &str) -> String {
    format!(
        "env -u AETHER_HOME HOME={home} XDG_CONFIG_HOME={home}/config XDG_DATA_HOME={home}/data TERM=xterm-256color {aether} --url {url}; echo AETHER-EXITED $?; sleep 60",
        home = home.display(),
        aether = env!("CARGO_BIN_EXE_aether"),
    )
}

/// `aetherctl --url URL login` as `user`, saving the token in `home` as a user would.
fn login(home: &Path, url: &str, user: &str, password: &str) {
    let mut child = Command::new(sibling("aetherctl"))
        .env_remove("AETHER_HOME")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .args(["--url", url, "login", "--user", user, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aetherctl runs");
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "login as {user}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The screen's line about `who` (in the People list), for reading their state.
fn line_of<'a>(screen: &'a str, who: &str) -> &'a str {
    screen
        .lines()
        .find(|line| line.contains(&format!(" {who} ")))
        .unwrap_or("")
}

/// A daemon some other process started, stopped by its pid when the test ends.
struct Adopted(u32);

impl Drop for Adopted {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.to_string()).status();
    }
}

async fn client(home: &Path) -> AetherClient {
    let endpoint = Endpoint::Unix(home.join("run/aetherd.sock"));
    AetherClient::connect(&endpoint, Auth::Local, ClientOptions::default())
        .await
        .expect("signs in")
}

fn echo_module() -> Vec<u8> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/wat/echo.wat");
    wat::parse_file(&source).expect("echo.wat compiles")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_edit_save_run_quit_and_come_back() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let _daemon = start_daemon(home);
    let cli = client(home).await.app("cli");
    cli.request(&vfs::Write {
        path: "/notes.txt".into(),
        data: "first line\n".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    cli.request(&vfs::Write {
        path: "/echo.wasm".into(),
        data: base64::engine::general_purpose::STANDARD.encode(echo_module()),
        encoding: vfs::Encoding::Base64,
        ..Default::default()
    })
    .await
    .unwrap();

    let tmux = Tmux::new("flow");
    let command = aether_command(home);
    tmux.start("one", &command);
    tmux.wait("one", "the welcome hint", |s| {
        s.contains("Welcome to Aether")
    });
    tmux.keys("one", &["x"]);
    // The explorer has the keyboard; folders first (the examples), then echo.wasm, then notes.txt.
    tmux.wait("one", "the listing", |s| {
        s.contains("notes.txt") && !s.contains("Welcome")
    });
    tmux.keys("one", &["j", "j", "Enter"]);
    tmux.wait("one", "the file in the editor", |s| {
        s.contains("1 first line")
    });
    tmux.text("one", "edited ");
    tmux.keys("one", &["C-s"]);
    tmux.wait("one", "the save", |s| s.contains("saved /notes.txt"));
    let saved = cli
        .request(&vfs::Read {
            path: "/notes.txt".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(saved.data, "edited first line\n");

    // The terminal is below the editor.
    tmux.keys("one", &["M-j"]);
    tmux.text("one", "run /echo.wasm");
    tmux.keys("one", &["Enter"]);
    tmux.wait("one", "the program running", |s| s.contains("echo.wasm>"));
    tmux.text("one", "live-ping");
    tmux.keys("one", &["Enter"]);
    // Typed once, echoed once by the program: it answered while still running.
    let screen = tmux.wait("one", "the program's answer", |s| {
        s.matches("live-ping").count() >= 2
    });
    assert!(
        screen.contains("running echo.wasm"),
        "the status bar names it:\n{screen}"
    );
    tmux.keys("one", &["C-d"]);
    tmux.wait("one", "the program's end", |s| s.contains("[done in"));

    let layout = tmux.screen("one");
    let titles = |s: &str| s.lines().nth(1).unwrap_or_default().to_owned();
    tmux.keys("one", &["C-g", "q"]);
    tmux.wait("one", "aether to exit", |s| s.contains("AETHER-EXITED 0"));

    tmux.start("two", &command);
    let again = tmux.wait("two", "the restored layout", |s| {
        s.contains("Editor notes.txt") && s.contains("Terminal /")
    });
    assert!(
        !again.contains("Welcome"),
        "no hint the second time:\n{again}"
    );
    assert_eq!(
        titles(&again),
        titles(&layout),
        "the same windows in the same places"
    );
    assert!(again.contains("1 edited first line"), "{again}");
    tmux.keys("two", &["C-g", "q"]);
    tmux.wait("two", "aether to exit", |s| s.contains("AETHER-EXITED 0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_going_away_and_coming_back_loses_nothing_typed() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let daemon = start_daemon(home);
    let tmux = Tmux::new("restart");
    // Named explicitly, the daemon is not ours to start again: the test brings it back.
    let socket = home.join("run/aetherd.sock");
    let command = aether_command_with(home, &format!("--url unix:{}", socket.display()));
    tmux.start("one", &command);
    tmux.wait("one", "the welcome hint", |s| {
        s.contains("Welcome to Aether")
    });
    tmux.keys("one", &["x"]);
    tmux.wait("one", "the hint to close", |s| {
        !s.contains("Welcome to Aether")
    });
    // Type into the editor (right of the explorer), then lose the daemon.
    tmux.keys("one", &["M-l"]);
    tmux.text("one", "typed before");
    tmux.wait("one", "the text", |s| s.contains("1 typed before"));
    drop(daemon);
    tmux.wait("one", "the status bar to say so", |s| {
        s.contains("reconnecting")
    });
    tmux.text("one", " and during");
    // Saving now cannot work: it says why, and the text stays.
    tmux.keys("one", &["C-s"]);
    tmux.wait("one", "the prompt for a name", |s| s.contains("Save as"));
    tmux.keys("one", &["C-u"]);
    tmux.text("one", "/kept.txt");
    tmux.keys("one", &["Enter"]);
    tmux.wait("one", "the refusal", |s| s.contains("not saved"));
    let _daemon = start_daemon(home);
    tmux.wait("one", "the reconnection", |s| {
        s.contains("connected") && !s.contains("reconnecting")
    });
    tmux.keys("one", &["C-s"]);
    tmux.wait("one", "the save", |s| s.contains("saved /kept.txt"));
    let cli = client(home).await.app("cli");
    let kept = cli
        .request(&vfs::Read {
            path: "/kept.txt".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(kept.data, "typed before and during\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_terminals_of_one_user_both_work_and_the_last_layout_wins() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let _daemon = start_daemon(home);
    let tmux = Tmux::new("two");
    let command = aether_command(home);
    tmux.start("a", &command);
    tmux.start("b", &command);
    for side in ["a", "b"] {
        tmux.past_welcome(side);
    }
    // `a` zooms its explorer; `b` opens a fourth window; both quit, `b` last.
    tmux.keys("a", &["C-g", "z"]);
    tmux.wait("a", "the zoom", |s| s.contains("[zoomed]"));
    tmux.keys("b", &["C-g", "v"]);
    tmux.wait("b", "the launcher", |s| s.contains("Open"));
    tmux.keys("b", &["s"]);
    tmux.wait("b", "settings open", |s| s.contains("Settings: Account"));
    tmux.keys("a", &["C-g", "q"]);
    tmux.wait("a", "a to exit", |s| s.contains("AETHER-EXITED 0"));
    tmux.keys("b", &["C-g", "q"]);
    tmux.wait("b", "b to exit", |s| s.contains("AETHER-EXITED 0"));
    tmux.start("c", &command);
    let screen = tmux.wait("c", "b's layout", |s| s.contains("Settings: Account"));
    assert!(
        !screen.contains("[zoomed]"),
        "the last to save wins, whole:\n{screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_daemon_is_started_again_when_it_dies() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let daemon = start_daemon(home);
    let tmux = Tmux::new("revive");
    tmux.start("one", &aether_command(home));
    tmux.wait("one", "the welcome hint", |s| {
        s.contains("Welcome to Aether")
    });
    tmux.keys("one", &["x"]);
    tmux.keys("one", &["M-l"]);
    tmux.text("one", "still here");
    tmux.wait("one", "the text", |s| s.contains("1 still here"));
    drop(daemon);
    tmux.wait("one", "the daemon started again", |s| {
        s.contains("started it again")
    });
    let stats = client(home)
        .await
        .app("cli")
        .request(&aether_proto::api::sys::Stats {})
        .await
        .unwrap();
    let _revived = Adopted(stats.pid.expect("the owner sees the pid"));
    tmux.wait("one", "the reconnection", |s| s.contains("● connected"));
    tmux.keys("one", &["C-s"]);
    tmux.wait("one", "the prompt for a name", |s| s.contains("Save as"));
    tmux.keys("one", &["C-u"]);
    tmux.text("one", "/revived.txt");
    tmux.keys("one", &["Enter"]);
    tmux.wait("one", "the save", |s| s.contains("saved /revived.txt"));
    tmux.keys("one", &["C-g", "q"]);
    tmux.wait("one", "aether to exit", |s| s.contains("AETHER-EXITED 0"));
}

/// The end-to-end path: a goal typed in the terminal becomes a plan (from a
/// scripted provider on 127.0.0.1), is confirmed, runs with its write approved in a dialog,
/// and shows in the Agent Console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goal_typed_in_the_terminal_is_planned_run_and_shown_in_the_console() {
    use aether_tests::fake_llm::{FakeLlm, Reply};
    let fake = FakeLlm::start().await;
    let plan = serde_json::json!({ "name": "greet", "nodes": [
        { "id": "write", "tool": "vfs.write", "args": { "path": "/hello.txt", "data": "hi from a plan" } },
        { "id": "check", "tool": "vfs.read", "args": { "path": "/hello.txt" }, "after": ["write"] },
    ]});
    fake.then(Reply::events([
        serde_json::json!({ "choices": [{ "index": 0, "delta": { "content": plan.to_string() } }] }),
        serde_json::json!({ "choices": [{ "index": 0, "delta": {}, "finish_reason": "stop" }] }),
    ]));
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[ai]\n[[ai.providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"planner\"\n",
            fake.url("/v1")
        ),
    )
    .unwrap();
    let _daemon = start_daemon(home);
    let tmux = Tmux::new("goal");
    tmux.start("one", &aether_command(home));
    tmux.wait("one", "the welcome hint", |s| {
        s.contains("Welcome to Aether")
    });
    tmux.keys("one", &["x"]);
    // The terminal is right of the explorer, under the editor.
    tmux.keys("one", &["M-l", "M-j"]);
    tmux.text("one", "? write a greeting");
    tmux.keys("one", &["Enter"]);
    tmux.wait("one", "the plan to be shown", |s| {
        s.contains("Run the plan") && s.contains("2 steps")
    });
    tmux.keys("one", &["y"]);
    // The step says what it does, in words the daemon found by looking, before it runs.
    tmux.wait("one", "the write to ask", |s| {
        s.contains("Allow step write") && s.contains("Create /hello.txt with 14 bytes")
    });
    tmux.keys("one", &["y"]);
    tmux.wait("one", "the plan to finish", |s| s.contains("[plan done]"));
    let cli = client(home).await.app("cli");
    let written = cli
        .request(&vfs::Read {
            path: "/hello.txt".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(written.data, "hi from a plan");
    // The Agent Console shows the graph and its nodes.
    tmux.keys("one", &["C-g", "v"]);
    tmux.wait("one", "the launcher", |s| s.contains("Agent Console"));
    tmux.keys("one", &["a"]);
    // Its title names the graph and its footer says it is done (both in one frame; tmux
    // may show a frame half drawn, so wait for the two together).
    tmux.wait("one", "the console to show the graph done", |s| {
        s.contains("Agents: greet") && s.contains("greet: done")
    });
    tmux.keys("one", &["C-g", "q"]);
    tmux.wait("one", "aether to exit", |s| s.contains("AETHER-EXITED 0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_from_the_store_is_installed_with_consent_launched_and_works() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let _daemon = start_daemon(home);
    let cli = client(home).await.app("cli");
    cli.request(&vfs::Write {
        path: "/notes.txt".into(),
        data: "the cat saw the dog\nthe end\n".into(),
        ..Default::default()
    })
    .await
    .unwrap();

    let tmux = Tmux::new("store");
    tmux.start("s", &aether_command(home));
    tmux.past_welcome("s");
    tmux.keys("s", &["C-g", "a"]);
    tmux.wait("s", "the launcher", |s| s.contains("App Store"));
    tmux.keys("s", &["p"]);
    tmux.wait("s", "the catalog", |s| s.contains("Word Count"));
    tmux.keys("s", &["C-g", "z", "j", "j"]);
    tmux.wait("s", "Word Count's details", |s| {
        s.contains("Word Count 1.0.0") && s.contains("vfs_read")
    });
    tmux.keys("s", &["Enter"]);
    let consent = tmux.wait("s", "the consent dialog", |s| s.contains("consent"));
    assert!(
        consent.contains("vfs_read") && consent.contains("not signed"),
        "each capability with its reason, and who vouches:\n{consent}"
    );
    tmux.keys("s", &["y"]);
    tmux.wait("s", "the install", |s| {
        s.contains("installed Word Count 1.0.0")
    });

    // From the launcher, where it is now listed.
    tmux.keys("s", &["C-g", "a"]);
    tmux.wait("s", "the launcher with the app", |s| {
        s.contains("App Store") && s.contains("Word Count")
    });
    // After the eight built-in apps.
    tmux.keys("s", &["9", "C-g", "z"]);
    tmux.wait("s", "the program asking", |s| s.contains("file to count"));
    tmux.text("s", "/notes.txt");
    tmux.keys("s", &["Enter"]);
    // Its answer came through its own bus request (vfs.read as the app).
    let screen = tmux.wait("s", "the count", |s| s.contains("2 lines, 7 words"));
    assert!(screen.contains("the (3)"), "{screen}");
    tmux.keys("s", &["C-g", "q"]);
    tmux.wait("s", "aether to exit", |s| s.contains("AETHER-EXITED 0"));
}

/// Alice and Bob at two terminals, signed in over TCP: Alice makes a private room and
/// invites Bob, they talk live, each sees the other's presence change; Carol, signed in
/// too and listening on every pattern she may, sees nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_chat_live_in_a_private_room_and_a_third_sees_nothing() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("ws://{listen}");
    let _daemon = start_daemon_listening(home, Some(&listen));
    let owner = client(home).await.app("cli");
    for name in ["alice", "bob", "carol"] {
        owner
            .request(&sys::UserAdd {
                name: name.into(),
                password: format!("{name} password 1"),
                admin: false,
            })
            .await
            .unwrap();
    }

    // Carol listens before anything happens, on every chat and presence pattern.
    let endpoint = Endpoint::parse(&url).unwrap();
    let carol = AetherClient::connect(
        &endpoint,
        Auth::Password {
            user: "carol".into(),
            password: "carol password 1".into(),
        },
        ClientOptions::default(),
    )
    .await
    .expect("carol signs in");
    let carol_chat = carol.app("chat");
    let mut carol_hears = Vec::new();
    for pattern in [
        "chat.>",
        "chat.room.>",
        "chat.room.secret.>",
        "chat.room.*.message",
        "presence.>",
        "presence.*",
    ] {
        carol_hears.push((pattern, carol_chat.subscribe(pattern).await.unwrap()));
    }

    let tmux = Tmux::new("chat");
    for user in ["alice", "bob"] {
        let user_home = home.join(format!("clients/{user}"));
        std::fs::create_dir_all(&user_home).unwrap();
        login(&user_home, &url, user, &format!("{user} password 1"));
        tmux.start(user, &remote_aether_command(&user_home, &url));
    }
    for user in ["alice", "bob"] {
        tmux.past_welcome(user);
        tmux.wait(user, "signed in as them", |s| {
            s.contains(&format!("AETHER  {user}"))
        });
        tmux.open_zoomed(user, "7");
        tmux.wait(user, "chat", |s| s.contains("no rooms yet"));
    }

    // Alice: a private room, then Bob invited to it.
    tmux.keys("alice", &["n"]);
    tmux.wait("alice", "the name prompt", |s| {
        s.contains("new room's name")
    });
    tmux.text("alice", "secret");
    tmux.keys("alice", &["Enter"]);
    tmux.wait("alice", "public or private", |s| s.contains("Who may join"));
    tmux.keys("alice", &["2"]);
    tmux.wait("alice", "the room", |s| {
        s.contains("#secret · private · 1 member")
    });
    tmux.keys("alice", &["Escape"]);
    tmux.keys("alice", &["i"]);
    tmux.wait("alice", "the invite prompt", |s| s.contains("Invite whom"));
    tmux.text("alice", "bob");
    tmux.keys("alice", &["Enter"]);
    tmux.wait("alice", "bob in the room", |s| s.contains("2 members"));
    tmux.wait("bob", "the room he was invited to", |s| {
        s.contains("#secret · private · 2 members")
    });

    // Live both ways, Markdown rendered, the mention noticed.
    tmux.text("bob", "hi @alice, the **plan** is ready");
    tmux.keys("bob", &["Enter"]);
    tmux.wait(
        "alice",
        "bob's message and the notice of its mention",
        |s| {
            line_of(s, "bob").contains("hi @alice, the plan is ready")
                && s.contains("bob mentioned you in #secret")
        },
    );
    tmux.keys("alice", &["Enter"]);
    tmux.text("alice", "great, ship it");
    tmux.keys("alice", &["Enter"]);
    tmux.wait("bob", "alice's answer", |s| {
        line_of(s, "alice").contains("great, ship it")
    });

    // Presence: each sees the other online, then Bob away, then Bob gone.
    for user in ["alice", "bob"] {
        tmux.open_zoomed(user, "8");
        tmux.wait(user, "people", |s| s.contains("(you)"));
    }
    tmux.wait("bob", "alice online", |s| {
        line_of(s, "alice").contains("online")
    });
    tmux.wait("alice", "bob online", |s| {
        line_of(s, "bob").contains("online")
    });
    tmux.keys("bob", &["a"]);
    tmux.wait("alice", "bob away", |s| line_of(s, "bob").contains("away"));

    // A direct message from People: Alice, in People, is told and counts it unread.
    tmux.keys("bob", &["j", "Enter"]);
    tmux.wait("bob", "the direct message", |s| {
        s.contains("write to @alice")
    });
    tmux.text("bob", "lunch at noon?");
    tmux.keys("bob", &["Enter"]);
    tmux.wait("alice", "the notice and the count", |s| {
        s.contains("bob to you: lunch at noon?") && s.contains(" 1 unread ")
    });
    tmux.keys("bob", &["C-g", "q"]);
    tmux.wait("bob", "bob's aether to exit", |s| {
        s.contains("AETHER-EXITED 0")
    });
    tmux.wait("alice", "bob offline", |s| {
        line_of(s, "bob").contains("offline") && line_of(s, "bob").contains("last seen")
    });

    // Carol: nothing by any pattern, and the room is not hers to read or even to know of.
    for (pattern, sub) in &mut carol_hears {
        while let Ok(Some(msg)) =
            tokio::time::timeout(Duration::from_millis(200), sub.next_msg()).await
        {
            let data = msg.data.get();
            assert!(
                !["alice", "bob", "secret", "plan"]
                    .iter()
                    .any(|word| msg.topic.contains(word) || data.contains(word)),
                "carol heard on {pattern}: {} {data}",
                msg.topic
            );
        }
    }
    let denied = carol_chat
        .request(&chat::History {
            room: "secret".into(),
            before: None,
            limit: None,
            thread: None,
            search: None,
        })
        .await
        .expect_err("carol may not read the room");
    assert!(
        denied.to_string().contains("not a member"),
        "the same answer as for a room that does not exist: {denied}"
    );
    let rooms = carol_chat.request(&chat::Rooms::default()).await.unwrap();
    assert!(rooms.rooms.is_empty(), "{rooms:?}");
    let people = carol_chat.request(&presence::List {}).await.unwrap();
    let names: Vec<&str> = people.people.iter().map(|p| p.user.as_str()).collect();
    assert_eq!(names, ["carol"], "she shares no room with them");

    tmux.keys("alice", &["C-g", "q"]);
    tmux.wait("alice", "alice's aether to exit", |s| {
        s.contains("AETHER-EXITED 0")
    });
}
