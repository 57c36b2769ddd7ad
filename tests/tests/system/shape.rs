//! The invariants of the code's shape that ARCHITECTURE.md states and a test can check:
//! which crate may do what, read from the sources and manifests themselves.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = vec![];
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path, text));
            }
        }
    }
    assert!(!found.is_empty(), "no sources under {}", dir.display());
    found
}

/// The names in a manifest's `[dependencies]` table.
fn dependencies(crate_dir: &str) -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join(crate_dir).join("Cargo.toml")).unwrap();
    let mut names = vec![];
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
        } else if inside && let Some((name, _)) = line.split_once('=') {
            names.push(name.trim().trim_end_matches(".workspace").to_owned());
        }
    }
    assert!(!names.is_empty(), "{crate_dir} has no dependencies?");
    names
}

#[test]
fn the_protocol_crate_starts_no_process_and_the_load_generator_is_a_pure_client() {
    for (path, text) in sources(&workspace().join("aether-proto/src")) {
        // Tests may run tools (the schema's is checked by Python); the crate itself may not.
        let text = text.split("#[cfg(test)]\nmod ").next().unwrap_or_default();
        for spawn in ["std::process", "Command::new", "process::Command"] {
            assert!(
                !text.contains(spawn),
                "{} uses {spawn}: process management belongs in aether-local",
                path.display()
            );
        }
    }
    let loadgen = dependencies("loadgen");
    for daemon in ["aetherd", "aether-tests"] {
        assert!(
            !loadgen.iter().any(|d| d == daemon),
            "loadgen depends on {daemon}: {loadgen:?}"
        );
    }
    assert!(loadgen.iter().any(|d| d == "aether-proto"), "{loadgen:?}");
}

/// Topics are spelled in `aether-proto` alone: outside it, no source (tests aside) builds
/// one with `format!` or takes one apart with `strip_prefix` or `trim_start_matches`.
#[test]
fn no_topic_is_spelled_outside_the_protocol_crate() {
    const ROOTS: [&str; 11] = [
        "sys",
        "vfs",
        "vm",
        "ai",
        "agent",
        "apps",
        "chat",
        "presence",
        "telemetry",
        "session",
        "app",
    ];
    let mut found = vec![];
    for crate_dir in [
        "aetherd/src",
        "kit/src",
        "apps/src",
        "aetherctl/src",
        "aether-tui/src",
        "local/src",
        "loadgen/src",
    ] {
        for (path, text) in sources(&workspace().join(crate_dir)) {
            if path.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let code = text.split("#[cfg(test)]\nmod ").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                for how in ["format!(\"", "strip_prefix(\"", "trim_start_matches(\""] {
                    let spelled = ROOTS
                        .iter()
                        .any(|root| line.contains(&format!("{how}{root}.")));
                    if spelled {
                        found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "topics spelled by hand:\n{}",
        found.join("\n")
    );
}

/// The packages `package` links in a normal build, by name, as cargo resolves them for it
/// alone (features unified only with what it asks for).
fn linked(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .current_dir(workspace())
        .output()
        .expect("cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    tree.lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The apps and their kit run in any host: no terminal backend, no runtime, no I/O.
#[test]
fn the_apps_and_their_kit_link_no_terminal_backend_and_no_runtime() {
    for package in ["app-kit", "apps"] {
        let linked = linked(package);
        assert!(
            linked.iter().any(|p| p == "ratatui-core"),
            "{package}: {linked:?}"
        );
        for banned in ["crossterm", "tokio", "mio", "reqwest"] {
            assert!(
                !linked.iter().any(|p| p == banned),
                "{package} links {banned}"
            );
        }
    }
    // The check can fail: the desktop itself links both.
    let desktop = linked("aether-tui");
    assert!(desktop.iter().any(|p| p == "crossterm") && desktop.iter().any(|p| p == "tokio"));
}

/// The desktop core (its state, windows, keys and commands) and the apps take the time
/// as an input and do no I/O: the browser shell runs the same code with its own clock,
/// storage and network.
#[test]
fn the_desktop_core_and_the_apps_call_no_clock_file_system_or_network() {
    const BANNED: [&str; 9] = [
        "Instant::now",
        "SystemTime",
        "std::fs",
        "tokio",
        "std::net",
        "std::process",
        "std::env",
        "reqwest",
        "std::thread",
    ];
    let mut files = vec![];
    for dir in [
        "aether-tui/src/desktop",
        "aether-tui/src/wm",
        "kit/src",
        "apps/src",
    ] {
        files.extend(sources(&workspace().join(dir)));
    }
    for file in ["aether-tui/src/commands.rs", "aether-tui/src/keymap.rs"] {
        let path = workspace().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        files.push((path, text));
    }
    let mut found = vec![];
    for (path, text) in files {
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let code = text.split("#[cfg(test)]\nmod ").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let comment = line.trim_start().starts_with("//");
            if let Some(banned) = BANNED.iter().find(|b| line.contains(*b))
                && !comment
            {
                found.push(format!("{}:{}: {banned}", path.display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "I/O in the core:\n{}", found.join("\n"));
}
