//! Concatenates files (or stdin) to stdout.
use std::io::{Read, Write};

fn main() {
    let mut out = std::io::stdout().lock();
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        let mut input = Vec::new();
        std::io::stdin().read_to_end(&mut input).expect("stdin");
        out.write_all(&input).expect("stdout");
        return;
    }
    let mut failed = false;
    for path in paths {
        match std::fs::read(&path) {
            Ok(bytes) => out.write_all(&bytes).expect("stdout"),
            Err(e) => {
                eprintln!("cat: {path}: {e}");
                failed = true;
            }
        }
    }
    std::process::exit(i32::from(failed));
}
