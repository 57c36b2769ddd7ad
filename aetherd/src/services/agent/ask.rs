//! What a node waiting for the user would do, in words a person can judge before the
//! arguments themselves: which file is replaced or created and how big each is, what is
//! removed or moved, which program runs with what, what a nested graph's steps do. Files
//! are looked at as the graph's app (`vfs.stat`, which it may or may not be allowed).

use std::time::Duration;

use aether_proto::ErrorCode;
use aether_proto::api::agent::{self, Ask, GraphSpec};
use aether_proto::api::{Call as _, ai, vfs, vm};
use base64::Engine;
use serde_json::Value;

use crate::services::{OnBehalf, Requester};

const LOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a write's new text the words quote.
const QUOTE_CHARS: usize = 80;

/// What is at a path now, as far as the app may tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum There {
    Nothing,
    File(u64),
    Folder,
    /// The app may not look, or the look failed.
    Unknown,
}

/// The ask for `tool` with these (resolved) arguments, looking at files as the app.
pub async fn ask(requester: &Requester, on: &OnBehalf, tool: &str, args: &Value) -> Ask {
    let look = |path: String| async move { look(requester, on, &path).await };
    let action = match tool {
        vfs::Write::TOPIC => match decode::<vfs::Write>(args) {
            Some(write) => {
                let there = look(write.path.clone()).await;
                write_words(&write, there)
            }
            None => generic(tool, args),
        },
        vfs::Remove::TOPIC => match decode::<vfs::Remove>(args) {
            Some(remove) => {
                let there = look(remove.path.clone()).await;
                remove_words(&remove, there)
            }
            None => generic(tool, args),
        },
        vfs::Move::TOPIC | vfs::Copy::TOPIC => match decode::<vfs::Move>(args) {
            Some(to) => {
                let (from, there) = (look(to.from.clone()).await, look(to.to.clone()).await);
                transfer_words(tool == vfs::Copy::TOPIC, &to, from, there)
            }
            None => generic(tool, args),
        },
        _ => words(tool, args),
    };
    Ask {
        action,
        args: args.clone(),
    }
}

/// The words for a tool without looking at any file (a nested graph's steps, a step whose
/// files are not known yet).
pub fn words(tool: &str, args: &Value) -> String {
    match tool {
        vfs::Write::TOPIC => decode::<vfs::Write>(args)
            .map(|w| write_words(&w, There::Unknown))
            .unwrap_or_else(|| generic(tool, args)),
        vfs::Remove::TOPIC => decode::<vfs::Remove>(args)
            .map(|r| remove_words(&r, There::Unknown))
            .unwrap_or_else(|| generic(tool, args)),
        vfs::Move::TOPIC | vfs::Copy::TOPIC => decode::<vfs::Move>(args)
            .map(|m| transfer_words(tool == vfs::Copy::TOPIC, &m, There::Unknown, There::Unknown))
            .unwrap_or_else(|| generic(tool, args)),
        vfs::Mkdir::TOPIC => match decode::<vfs::Mkdir>(args) {
            Some(m) if m.parents => {
                format!("Make the folder {} (and missing folders above it)", m.path)
            }
            Some(m) => format!("Make the folder {}", m.path),
            None => generic(tool, args),
        },
        vm::Run::TOPIC => decode::<vm::Run>(args)
            .map(|r| run_words(&r))
            .unwrap_or_else(|| generic(tool, args)),
        agent::Run::TOPIC => decode::<agent::Run>(args)
            .map(|r| graph_words(&r.graph))
            .unwrap_or_else(|| generic(tool, args)),
        ai::Generate::TOPIC => match decode::<ai::Generate>(args) {
            Some(g) => format!("Ask the AI: {}", quote(&g.prompt)),
            None => generic(tool, args),
        },
        agent::APPROVE => args
            .get("question")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| "Go on?".into()),
        "vfs.read" | "vfs.list" | "vfs.stat" => match args.get("path").and_then(Value::as_str) {
            Some(path) => format!("Read {path} (changes nothing)"),
            None => generic(tool, args),
        },
        _ => generic(tool, args),
    }
}

async fn look(requester: &Requester, on: &OnBehalf, path: &str) -> There {
    let stat = vfs::Stat {
        path: path.to_owned(),
    };
    match requester.request_as(on, &stat, LOOK_TIMEOUT).await {
        Ok(found) if found.kind == vfs::Kind::Dir => There::Folder,
        Ok(found) => There::File(found.size),
        Err(e) if e.code == ErrorCode::NotFound => There::Nothing,
        Err(_) => There::Unknown,
    }
}

fn write_words(write: &vfs::Write, there: There) -> String {
    let size = match write.encoding {
        vfs::Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(&write.data)
            .map_or(write.data.len(), |b| b.len()),
        _ => write.data.len(),
    } as u64;
    let path = &write.path;
    let new = bytes(size);
    let mut line = if write.upload.is_some() || write.offset.is_some() {
        format!("Write part of an upload to {path} ({new})")
    } else if write.append {
        match there {
            There::File(old) => format!("Append {new} to {path} (now {})", bytes(old)),
            There::Nothing => format!("Create {path} with {new} (appending to nothing)"),
            There::Folder => format!("Append to {path}: it is a folder, so this fails"),
            There::Unknown => format!("Append {new} to {path}"),
        }
    } else {
        match there {
            There::File(_) if write.if_absent => {
                format!("Create {path} with {new}: it exists, so this fails")
            }
            There::File(old) => format!(
                "Replace {path} ({}) with {new} of new content: what it holds now is lost",
                bytes(old)
            ),
            There::Nothing => format!("Create {path} with {new}"),
            There::Folder => format!("Write {path}: it is a folder, so this fails"),
            There::Unknown => format!("Write {new} to {path}, replacing it if it exists"),
        }
    };
    if write.parents {
        line.push_str(", making missing folders");
    }
    if !matches!(write.encoding, vfs::Encoding::Base64) && !write.data.is_empty() {
        line.push_str(&format!("\nIt starts: {}", quote(&write.data)));
    }
    line
}

fn remove_words(remove: &vfs::Remove, there: There) -> String {
    let path = &remove.path;
    match there {
        There::Folder if remove.recursive => {
            format!("Remove the folder {path} and everything in it")
        }
        There::Folder => format!("Remove the folder {path} (only if it is empty)"),
        There::File(size) => format!("Remove the file {path} ({})", bytes(size)),
        There::Nothing => format!("Remove {path} (nothing is there now, so this fails)"),
        There::Unknown if remove.recursive => {
            format!("Remove {path}, and everything in it if it is a folder")
        }
        There::Unknown => format!("Remove {path}"),
    }
}

fn transfer_words(copy: bool, what: &vfs::Move, from: There, there: There) -> String {
    let verb = if copy { "Copy" } else { "Move" };
    let (from_path, to) = (&what.from, &what.to);
    let source = match from {
        There::File(size) => format!("{from_path} ({})", bytes(size)),
        There::Folder => format!("the folder {from_path}"),
        _ => from_path.clone(),
    };
    let mut line = format!("{verb} {source} to {to}");
    match (there, what.overwrite) {
        (There::File(size), true) => {
            line.push_str(&format!(", replacing the file there ({})", bytes(size)))
        }
        (There::Folder, true) => line.push_str(", replacing the folder there"),
        (There::File(_) | There::Folder, false) => {
            line.push_str(&format!(": {to} exists, so this fails"))
        }
        (There::Unknown, true) => line.push_str(", replacing what is there"),
        _ => {}
    }
    if from == There::Nothing {
        line.push_str(&format!(" ({from_path} does not exist now, so this fails)"));
    }
    line
}

fn run_words(run: &vm::Run) -> String {
    let what = match (&run.path, &run.installed) {
        (Some(path), _) => format!("Run the program {path}"),
        (None, Some(app)) => format!("Run the installed app {app}"),
        (None, None) => "Run a program".to_owned(),
    };
    let mut line = if run.args.is_empty() {
        format!("{what} with no arguments")
    } else {
        format!("{what} with arguments {}", shell_words(&run.args))
    };
    if let Some(stdin) = &run.stdin {
        line.push_str(&format!(", input {}", quote(stdin)));
    }
    if !run.env.is_empty() {
        let mut names: Vec<&str> = run.env.keys().map(String::as_str).collect();
        names.sort_unstable();
        line.push_str(&format!(", environment {}", names.join(", ")));
    }
    line.push_str("\nIt may read and change your files as far as this app may.");
    line
}

fn graph_words(graph: &GraphSpec) -> String {
    let mut lines = vec![format!(
        "Start the graph \"{}\" ({} steps){}",
        graph.name,
        graph.nodes.len(),
        if graph.auto_approve {
            ", which may run its writes and programs without asking if this graph may"
        } else {
            "; each of its steps that writes or runs asks you again"
        }
    )];
    for node in graph.nodes.iter().take(20) {
        let words = words(&node.tool, &node.args);
        let first = words.lines().next().unwrap_or_default();
        lines.push(format!("  {}: {first}", node.id));
    }
    if graph.nodes.len() > 20 {
        lines.push(format!("  and {} more steps", graph.nodes.len() - 20));
    }
    lines.join("\n")
}

fn generic(tool: &str, args: &Value) -> String {
    let text = args.to_string();
    format!("Call {tool} with {}", cut(&text, QUOTE_CHARS))
}

fn decode<T: serde::de::DeserializeOwned>(args: &Value) -> Option<T> {
    serde_json::from_value(args.clone()).ok()
}

/// Text in quotes on one line, cut with an ellipsis.
fn quote(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("\"{}\"", cut(one_line.trim(), QUOTE_CHARS))
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let head: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{head}…")
    }
}

fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `512 bytes`, `1.5 KB`, `12.0 MB`.
pub fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} bytes"),
        1024..1_048_576 => format!("{:.1} KB", n as f64 / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MB", n as f64 / 1_048_576.0),
        _ => format!("{:.1} GB", n as f64 / 1_073_741_824.0),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn write(args: Value) -> vfs::Write {
        serde_json::from_value(args).unwrap()
    }

    #[test]
    fn a_write_says_which_file_it_replaces_and_how_big_each_is() {
        let w = write(json!({ "path": "/notes/a.md", "data": "Meeting notes. We agreed…" }));
        let words = write_words(&w, There::File(1234));
        assert!(
            words.starts_with("Replace /notes/a.md (1.2 KB) with 27 bytes of new content"),
            "{words}"
        );
        assert!(words.contains("It starts: \"Meeting notes."), "{words}");
        assert!(write_words(&w, There::Nothing).starts_with("Create /notes/a.md with 27 bytes"));
        let append = write(json!({ "path": "/log", "data": "x", "append": true }));
        assert_eq!(
            write_words(&append, There::File(10)).lines().next(),
            Some("Append 1 bytes to /log (now 10 bytes)")
        );
    }

    #[test]
    fn removes_moves_and_programs_read_as_what_they_do() {
        let remove: vfs::Remove =
            serde_json::from_value(json!({ "path": "/old", "recursive": true })).unwrap();
        assert_eq!(
            remove_words(&remove, There::Folder),
            "Remove the folder /old and everything in it"
        );
        let moved: vfs::Move =
            serde_json::from_value(json!({ "from": "/a", "to": "/b", "overwrite": true })).unwrap();
        assert_eq!(
            transfer_words(false, &moved, There::File(3), There::File(2048)),
            "Move /a (3 bytes) to /b, replacing the file there (2.0 KB)"
        );
        let run = words(
            "vm.run",
            &json!({ "path": "/bin/x.wasm", "args": ["-v", "a b"] }),
        );
        assert!(
            run.starts_with("Run the program /bin/x.wasm with arguments -v 'a b'"),
            "{run}"
        );
    }

    #[test]
    fn a_nested_graph_lists_what_its_steps_do() {
        let words = words(
            "agent.run",
            &json!({ "graph": { "name": "inner", "auto_approve": true, "nodes": [
                { "id": "rm", "tool": "vfs.remove", "args": { "path": "/docs", "recursive": true } },
            ]}}),
        );
        assert!(
            words.contains("Start the graph \"inner\" (1 steps)"),
            "{words}"
        );
        assert!(
            words.contains("rm: Remove /docs, and everything in it if it is a folder"),
            "{words}"
        );
    }
}
