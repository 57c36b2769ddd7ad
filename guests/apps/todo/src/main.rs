//! `todo [COMMAND...]`: a to-do list kept in `/todo.md` as markdown checkboxes, read and
//! written through the bus (`vfs.read` / `vfs.write`, via aether-sdk). With no arguments,
//! an interactive loop reads commands from stdin.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

const FILE: &str = "/todo.md";

const HELP: &str = "\
commands:
  add TEXT   add an item
  list       show the items, numbered
  done N     check item N
  undo N     uncheck item N
  rm N       remove item N
  clear      remove the checked items
  help       this text
  quit       leave (interactive mode)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        return match run(&args.join(" ")) {
            Ok(_) => ExitCode::SUCCESS,
            Err(msg) => {
                eprintln!("todo: {msg}");
                ExitCode::FAILURE
            }
        };
    }
    let mut lines = io::stdin().lock().lines();
    loop {
        print!("todo> ");
        // A prompt that does not show is only cosmetic.
        let _ = io::stdout().flush();
        let line = match lines.next() {
            Some(Ok(line)) => line,
            Some(Err(e)) => {
                eprintln!("todo: stdin: {e}");
                return ExitCode::FAILURE;
            }
            None => {
                println!();
                return ExitCode::SUCCESS;
            }
        };
        match run(&line) {
            Ok(Flow::Quit) => return ExitCode::SUCCESS,
            Ok(Flow::Go) => {}
            Err(msg) => eprintln!("todo: {msg}"),
        }
    }
}

enum Flow {
    Go,
    Quit,
}

/// Run one command line; Err is the message to show.
fn run(line: &str) -> Result<Flow, String> {
    let line = line.trim();
    let (command, rest) = line
        .split_once(char::is_whitespace)
        .map_or((line, ""), |(command, rest)| (command, rest.trim()));
    match command {
        "" => {}
        "add" => {
            if rest.is_empty() {
                return Err("add what? usage: add TEXT".into());
            }
            let mut list = Todo::load()?;
            list.lines.push(Line::Item {
                done: false,
                text: rest.to_owned(),
            });
            list.save()?;
            println!("{}. [ ] {rest}", list.count());
        }
        "list" | "ls" => {
            let list = Todo::load()?;
            if list.count() == 0 {
                println!("nothing to do");
            }
            for (n, (done, text)) in list.items().enumerate() {
                println!("{}. [{}] {text}", n + 1, if done { 'x' } else { ' ' });
            }
        }
        "done" | "undo" => {
            let mut list = Todo::load()?;
            let at = list.find(rest)?;
            if let Line::Item { done, text } = &mut list.lines[at] {
                *done = command == "done";
                println!("{}: {text}", if *done { "checked" } else { "unchecked" });
            }
            list.save()?;
        }
        "rm" => {
            let mut list = Todo::load()?;
            let at = list.find(rest)?;
            if let Line::Item { text, .. } = list.lines.remove(at) {
                println!("removed: {text}");
            }
            list.save()?;
        }
        "clear" => {
            let mut list = Todo::load()?;
            let before = list.count();
            list.lines
                .retain(|line| !matches!(line, Line::Item { done: true, .. }));
            let removed = before - list.count();
            if removed > 0 {
                list.save()?;
            }
            println!(
                "removed {removed} done item{}",
                if removed == 1 { "" } else { "s" }
            );
        }
        "help" | "?" => println!("{HELP}"),
        "quit" | "exit" => return Ok(Flow::Quit),
        _ => return Err(format!("unknown command {command:?}; try help")),
    }
    Ok(Flow::Go)
}

/// A line of the file: a checkbox item, or anything else (kept as it is).
enum Line {
    Item { done: bool, text: String },
    Other(String),
}

struct Todo {
    lines: Vec<Line>,
}

impl Todo {
    /// The list in the file; no file is an empty list.
    fn load() -> Result<Todo, String> {
        let text = match aether_sdk::read_text(FILE) {
            Ok(text) => text,
            Err(e) if e.is("not_found") => String::new(),
            Err(e) => return Err(format!("{FILE}: {e}")),
        };
        Ok(Todo::parse(&text))
    }

    fn save(&self) -> Result<(), String> {
        aether_sdk::write_text(FILE, &self.render()).map_err(|e| format!("{FILE}: {e}"))
    }

    fn parse(text: &str) -> Todo {
        let lines = text
            .lines()
            .map(|line| {
                let item = |mark: &str, done| {
                    line.strip_prefix(mark).map(|text| Line::Item {
                        done,
                        text: text.trim().to_owned(),
                    })
                };
                item("- [ ]", false)
                    .or_else(|| item("- [x]", true))
                    .or_else(|| item("- [X]", true))
                    .unwrap_or_else(|| Line::Other(line.to_owned()))
            })
            .collect();
        Todo { lines }
    }

    fn render(&self) -> String {
        self.lines
            .iter()
            .map(|line| match line {
                Line::Item { done: true, text } => format!("- [x] {text}\n"),
                Line::Item { done: false, text } => format!("- [ ] {text}\n"),
                Line::Other(other) => format!("{other}\n"),
            })
            .collect()
    }

    /// The items, in order: (done, text).
    fn items(&self) -> impl Iterator<Item = (bool, &str)> {
        self.lines.iter().filter_map(|line| match line {
            Line::Item { done, text } => Some((*done, text.as_str())),
            Line::Other(_) => None,
        })
    }

    fn count(&self) -> usize {
        self.items().count()
    }

    /// Where item `number` (1-based, as `list` shows) is in `lines`.
    fn find(&self, number: &str) -> Result<usize, String> {
        if number.is_empty() {
            return Err("which item? give its number (see list)".into());
        }
        let n: usize = number
            .parse()
            .map_err(|_| format!("{number:?} is not an item number (see list)"))?;
        let count = self.count();
        if n == 0 || n > count {
            return Err(match count {
                0 => "the list is empty".to_owned(),
                1 => format!("no item {n}: there is 1"),
                _ => format!("no item {n}: they are 1 to {count}"),
            });
        }
        self.lines
            .iter()
            .enumerate()
            .filter(|(_, line)| matches!(line, Line::Item { .. }))
            .nth(n - 1)
            .map(|(at, _)| at)
            .ok_or_else(|| format!("no item {n}"))
    }
}
