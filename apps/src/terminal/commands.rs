//! The terminal's commands: each one a bus request (or none), and what its answer prints.

use aether_proto::api::{vfs, vm};
use aether_proto::{ErrorBody, ErrorCode};

use super::{ForegroundJob, Msg, Terminal, words};
use app_kit::path;
use app_kit::widgets::human_bytes;
use app_kit::{Answer, Effect};

/// The commands, for `help` and Tab.
pub const NAMES: &[&str] = &[
    "cat", "cd", "clear", "cp", "help", "jobs", "kill", "ls", "mkdir", "mv", "pwd", "rm", "run",
];

/// The most of a file `cat` prints.
const CAT_BYTES: usize = 256 * 1024;

const HELP: &str = "\
commands (paths are in your files; relative to the current folder):
  ls [DIR]            list a folder          cd [DIR]        change folder (no DIR: /)
  pwd                 the current folder     cat FILE        print a text file
  mkdir DIR           make a folder          rm [-r] PATH    remove (-r: a folder and its contents)
  mv FROM TO          move or rename         cp FROM TO      copy
  run FILE [ARGS…]    run a WASM program (FILE.wasm alone works too)
  jobs                your programs          kill JOB        stop one
  clear               clear the screen       help            this
  ? GOAL              plan GOAL with the AI, then run it (a line that is no command does too)
keys: Up/Down history, Tab completes, Ctrl-C stops the program, Ctrl-D ends its input,
      PgUp/PgDn scroll, Ctrl-f searches the scrollback";

pub(super) fn execute(term: &mut Terminal, line: &str) -> Vec<Effect> {
    if let Some(goal) = line.trim_start().strip_prefix('?') {
        return super::goal::plan(term, goal, None);
    }
    let words = match words::split(line) {
        Ok(words) => words,
        Err(why) => {
            term.out.error(&why);
            return Vec::new();
        }
    };
    let Some((command, args)) = words.split_first() else {
        return Vec::new();
    };
    if here(term, command, args) {
        return Vec::new();
    }
    let at = |p: &str| path::resolve(&term.cwd, p);
    match (command.as_str(), args) {
        ("cd", [dir]) => {
            let target = at(dir);
            let call = vfs::Stat {
                path: target.clone(),
            };
            term.call(&call, |answer| Msg::Cd(target, answer))
        }
        ("ls", []) => {
            let cwd = term.cwd.clone();
            term.call(&vfs::List { path: cwd }, Msg::Ls)
        }
        ("ls", [dir]) => term.call(&vfs::List { path: at(dir) }, Msg::Ls),
        ("cat", [file]) => {
            let file = at(file);
            let call = vfs::Read {
                path: file.clone(),
                length: Some(CAT_BYTES),
                ..Default::default()
            };
            term.call(&call, |answer| Msg::Cat(file, answer))
        }
        ("mkdir", [dir]) => term.quiet(
            format!("mkdir {dir}"),
            &vfs::Mkdir {
                path: at(dir),
                parents: true,
            },
        ),
        ("rm", [target]) => term.quiet(
            format!("rm {target}"),
            &vfs::Remove {
                path: at(target),
                recursive: false,
            },
        ),
        ("rm", [flag, target]) if flag == "-r" || flag == "-rf" => term.quiet(
            format!("rm -r {target}"),
            &vfs::Remove {
                path: at(target),
                recursive: true,
            },
        ),
        ("mv", [from, to]) => term.quiet(
            format!("mv {from} {to}"),
            &vfs::Move {
                from: at(from),
                to: at(to),
                overwrite: false,
            },
        ),
        ("cp", [from, to]) => term.quiet(
            format!("cp {from} {to}"),
            &vfs::Copy {
                from: at(from),
                to: at(to),
                overwrite: false,
            },
        ),
        ("run", [file, rest @ ..]) => run(term, file, rest),
        ("jobs", []) => term.call(&vm::Jobs::default(), Msg::Jobs),
        ("kill", [job]) => term.call(&vm::Kill { job: job.clone() }, Msg::Killed),
        (program, rest) if program.ends_with(".wasm") => run(term, program, rest),
        (name, _) if NAMES.contains(&name) => {
            term.out.error(&format!(
                "{name}: wrong arguments (`help` shows how to call it)"
            ));
            Vec::new()
        }
        // Not a command: perhaps a goal in plain words.
        (name, _) => super::goal::plan(term, line, Some(name)),
    }
}

/// The commands answered here, with no request: true if it was one.
fn here(term: &mut Terminal, command: &str, args: &[String]) -> bool {
    match (command, args) {
        ("help", _) => term.out.note(HELP),
        ("clear", _) => term.out.clear(),
        ("pwd", []) => {
            let cwd = term.cwd.clone();
            term.out.print(&cwd);
        }
        ("cd", []) => term.cwd = "/".into(),
        _ => return false,
    }
    true
}

fn run(term: &mut Terminal, file: &str, args: &[String]) -> Vec<Effect> {
    let target = path::resolve(&term.cwd, file);
    term.job = Some(ForegroundJob {
        id: None,
        what: path::file_name(&target).to_owned(),
        stdin_open: true,
    });
    let call = vm::Run {
        path: Some(target),
        args: args.to_vec(),
        keep_stdin_open: true,
        ..Default::default()
    };
    term.call(&call, Msg::Ran)
}

/// What an answer prints, per command.
pub(super) fn answered(term: &mut Terminal, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Cd(target, answer) => match answer {
            Ok(stat) if stat.kind == vfs::Kind::Dir => term.cwd = target,
            Ok(_) => term.out.error(&format!("cd: {target} is not a folder")),
            Err(e) => fail(term, "cd", e),
        },
        Msg::Ls(answer) => print_listing(term, answer),
        Msg::Cat(file, answer) => print_file(term, file, answer),
        Msg::Quiet(what, answer) => {
            if let Err(e) = answer {
                fail(term, &what, e);
            }
        }
        Msg::Ran(answer) => match answer {
            Ok(started) => term.job_started(started.job),
            Err(e) => {
                term.job = None;
                term.early.clear();
                fail(term, "run", e);
            }
        },
        Msg::Stdin(answer) => {
            if let Err(e) = answer
                && e.code != ErrorCode::Conflict
            {
                fail(term, "input", e);
            }
        }
        Msg::Rechecked(job, answer) => rechecked(term, job, answer),
        Msg::Goal(goal) => return super::goal::answered(term, goal),
        Msg::Jobs(answer) => print_jobs(term, answer),
        Msg::Killed(answer) => {
            if let Err(e) = answer {
                fail(term, "kill", e);
            }
        }
        Msg::Completed {
            line,
            dir,
            stem,
            answer,
        } => {
            if term.input.text() != line {
                return Vec::new(); // typed on meanwhile: this completion is stale
            }
            if let Ok(listing) = answer {
                complete_with(term, &line, &dir, &stem, &listing.entries);
            }
        }
    }
    Vec::new()
}

/// What `ls` prints: folders first in colour, sizes beside files.
fn print_listing(term: &mut Terminal, answer: Answer<vfs::List>) {
    match answer {
        Ok(listing) => {
            let mut text = String::new();
            for entry in &listing.entries {
                let (name, size) = match entry.kind {
                    vfs::Kind::Dir => (format!("\x1b[1;34m{}/\x1b[0m", entry.name), String::new()),
                    _ => (entry.name.clone(), human_bytes(entry.size)),
                };
                text.push_str(&format!("{size:>10}  {name}\n"));
            }
            if listing.entries.is_empty() {
                term.out.note("(empty)");
            } else {
                term.out.print(&text);
            }
        }
        Err(e) => fail(term, "ls", e),
    }
}

/// What `cat` prints: the text, or why not (binary, cut short).
fn print_file(term: &mut Terminal, file: String, answer: Answer<vfs::Read>) {
    match answer {
        Ok(answer) if answer.encoding == vfs::Encoding::Base64 => term.out.error(&format!(
            "cat: {file} is binary ({}); the explorer shows it in hex",
            human_bytes(answer.size)
        )),
        Ok(answer) => {
            term.out.print(&answer.data);
            if !answer.eof {
                term.out.note(&format!(
                    "(cut at {}: the file is {})",
                    human_bytes(answer.length as u64),
                    human_bytes(answer.size)
                ));
            }
        }
        Err(e) => fail(term, "cat", e),
    }
}

/// After a reconnect: the running program ended meanwhile, still runs, or is gone.
fn rechecked(term: &mut Terminal, job: String, answer: Answer<vm::Jobs>) {
    match answer {
        Ok(vm::JobsAnswer::One(detail)) => match detail.summary.status.exit(job) {
            Some(exit) => {
                term.out.end_partial();
                term.out.exit(&exit);
                term.job = None;
            }
            None => term
                .out
                .note("the program still runs; output written while offline may be missing"),
        },
        Ok(vm::JobsAnswer::All { .. }) => {}
        Err(e) if e.code == ErrorCode::NotFound => {
            term.out.end_partial();
            term.out
                .error("[the program is gone: the daemon restarted while it ran]");
            term.job = None;
        }
        Err(_) => {}
    }
}

/// What `jobs` prints.
fn print_jobs(term: &mut Terminal, answer: Answer<vm::Jobs>) {
    match answer {
        Ok(vm::JobsAnswer::All { jobs }) if jobs.is_empty() => term.out.note("no jobs"),
        Ok(vm::JobsAnswer::All { jobs }) => {
            let text: Vec<String> = jobs
                .iter()
                .map(|j| format!("{}  {:<24} {}", j.job, j.path, state_name(&j.status)))
                .collect();
            term.out.print(&text.join("\n"));
        }
        Ok(vm::JobsAnswer::One(detail)) => term.out.print(&format!(
            "{}  {}  {}",
            detail.summary.job,
            detail.summary.path,
            state_name(&detail.summary.status)
        )),
        Err(e) => fail(term, "jobs", e),
    }
}

/// A command's failure, with what failed.
fn fail(term: &mut Terminal, what: &str, e: ErrorBody) {
    term.out.error(&format!("{what}: {}", e.msg));
}

fn complete_with(term: &mut Terminal, line: &str, dir: &str, stem: &str, entries: &[vfs::Entry]) {
    let names: Vec<String> = entries
        .iter()
        .filter(|e| e.name.starts_with(stem))
        .map(|e| match e.kind {
            vfs::Kind::Dir => format!("{}/", e.name),
            _ => e.name.clone(),
        })
        .collect();
    let common = common_prefix(&names);
    if common.len() > stem.len() {
        let head = line.strip_suffix(stem).unwrap_or(line);
        let done = names.len() == 1 && !common.ends_with('/');
        let word = format!("{dir}{common}");
        let head = head.strip_suffix(dir).unwrap_or(head);
        term.input.set(format!(
            "{head}{}{}",
            words::quote(&word),
            if done { " " } else { "" }
        ));
    } else if names.len() > 1 {
        term.out.note(&names.join("  "));
    }
}

fn common_prefix(names: &[String]) -> String {
    let Some(first) = names.first() else {
        return String::new();
    };
    let mut end = first.len();
    for name in &names[1..] {
        end = first
            .char_indices()
            .zip(name.chars())
            .take_while(|((_, a), b)| a == b)
            .map(|((i, a), _)| i + a.len_utf8())
            .last()
            .unwrap_or(0)
            .min(end);
    }
    first[..end].to_owned()
}

fn state_name(state: &vm::JobState) -> String {
    match state {
        vm::JobState::Queued => "queued".into(),
        vm::JobState::Running => "running".into(),
        vm::JobState::Finished { ending, code, .. } => match code {
            Some(code) => format!("finished ({ending:?}, code {code})"),
            None => format!("finished ({ending:?})"),
        },
    }
}
