//! `wordcount [PATH...]`: lines, words, bytes and the most frequent words of text files.
//! Files are read through the bus (`vfs.read`, via aether-sdk), not WASI file I/O; a folder
//! counts each text file directly in it. With no paths, it asks for them on stdin.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use serde_json::Value;

/// How many of the most frequent words to show.
const TOP: usize = 5;

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let mut ok = true;
    if paths.is_empty() {
        let mut lines = io::stdin().lock().lines();
        loop {
            print!("file to count (empty line ends): ");
            // A prompt that does not show is only cosmetic.
            let _ = io::stdout().flush();
            let path = match lines.next() {
                Some(Ok(line)) => line.trim().to_owned(),
                Some(Err(e)) => {
                    eprintln!("wordcount: stdin: {e}");
                    ok = false;
                    break;
                }
                None => {
                    println!();
                    break;
                }
            };
            if path.is_empty() {
                break;
            }
            ok &= count_path(&path);
        }
    } else {
        for path in &paths {
            ok &= count_path(path);
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Count a file, or each text file in a folder; false if something failed (already said).
fn count_path(path: &str) -> bool {
    let read_error = match aether_sdk::read_text(path) {
        Ok(text) => {
            report(path, &text);
            return true;
        }
        Err(e) => e,
    };
    // Reading a folder is a conflict; list it then, and else say why the read failed.
    let listing = match read_error.is("conflict").then(|| aether_sdk::list(path)) {
        Some(Ok(listing)) => listing,
        _ => {
            eprintln!("wordcount: {path}: {read_error}");
            return false;
        }
    };
    let files = file_names(&listing);
    if files.is_empty() {
        println!("{path}: no files");
    }
    let mut ok = true;
    for name in files {
        let file = format!("{}/{name}", path.trim_end_matches('/'));
        match aether_sdk::read_text(&file) {
            Ok(text) => report(&file, &text),
            Err(e) if e.is("not_text") => eprintln!("wordcount: {file}: skipped, not text"),
            Err(e) => {
                eprintln!("wordcount: {file}: {e}");
                ok = false;
            }
        }
    }
    ok
}

/// The names of the plain files in a `vfs.list` answer, sorted; whatever else it holds is
/// ignored.
fn file_names(listing: &Value) -> Vec<String> {
    let mut names: Vec<String> = listing
        .get("entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|entry| entry.get("kind").and_then(Value::as_str) == Some("file"))
        .filter_map(|entry| entry.get("name")?.as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

fn report(path: &str, text: &str) {
    let counts = Counts::of(text);
    let top: Vec<String> = counts
        .top
        .iter()
        .map(|(word, n)| format!("{word} ({n})"))
        .collect();
    let top = if top.is_empty() {
        "-".to_owned()
    } else {
        top.join(", ")
    };
    println!(
        "{path}: {} lines, {} words, {} bytes; most frequent: {top}",
        counts.lines, counts.words, counts.bytes
    );
}

struct Counts {
    lines: usize,
    words: usize,
    bytes: usize,
    /// The most frequent words (lowercased, without surrounding punctuation), most first.
    top: Vec<(String, usize)>,
}

impl Counts {
    fn of(text: &str) -> Counts {
        let mut words = 0;
        let mut freq: BTreeMap<String, usize> = BTreeMap::new();
        for word in text.split_whitespace() {
            words += 1;
            let word = word.trim_matches(|c: char| !c.is_alphanumeric());
            if !word.is_empty() {
                *freq.entry(word.to_lowercase()).or_default() += 1;
            }
        }
        let mut top: Vec<(String, usize)> = freq.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(TOP);
        Counts {
            lines: text.lines().count(),
            words,
            bytes: text.len(),
            top,
        }
    }
}
