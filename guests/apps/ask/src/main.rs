//! `ask [QUESTION...]`: asks the daemon's AI (`ai.generate`, via aether-sdk) and prints the
//! answer. With no arguments, it reads one question per line from stdin.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

/// A model may take a while to write a whole answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        return if ask(&args.join(" ")) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let mut ok = true;
    let mut lines = io::stdin().lock().lines();
    loop {
        print!("ask> ");
        // A prompt that does not show is only cosmetic.
        let _ = io::stdout().flush();
        match lines.next() {
            Some(Ok(line)) if line.trim().is_empty() => {}
            Some(Ok(line)) => ok &= ask(line.trim()),
            Some(Err(e)) => {
                eprintln!("ask: stdin: {e}");
                return ExitCode::FAILURE;
            }
            None => {
                println!();
                break;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Ask one question and print the answer; false if there is none (already said why).
fn ask(question: &str) -> bool {
    let request = json!({ "prompt": question, "stream": false });
    match aether_sdk::request_with_timeout("ai.generate", &request, ANSWER_TIMEOUT) {
        Ok(answer) => match answer.get("text").and_then(Value::as_str) {
            Some(text) => {
                println!("{}", text.trim_end());
                true
            }
            None => {
                eprintln!("ask: the answer has no text");
                false
            }
        },
        // No AI provider configured: the daemon's message says how to set one up.
        Err(e) if e.is("unavailable") => {
            eprintln!("ask: {}", e.msg);
            false
        }
        Err(e) => {
            eprintln!("ask: {e}");
            false
        }
    }
}
