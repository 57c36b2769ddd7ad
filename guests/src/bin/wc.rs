//! Counts lines, words and bytes of files (or stdin).
use std::io::Read;

fn count(bytes: &[u8]) -> (usize, usize, usize) {
    let text = String::from_utf8_lossy(bytes);
    (text.lines().count(), text.split_whitespace().count(), bytes.len())
}

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        let mut input = Vec::new();
        std::io::stdin().read_to_end(&mut input).expect("stdin");
        let (l, w, b) = count(&input);
        println!("{l} {w} {b}");
        return;
    }
    let mut failed = false;
    for path in paths {
        match std::fs::read(&path) {
            Ok(bytes) => {
                let (l, w, b) = count(&bytes);
                println!("{l} {w} {b} {path}");
            }
            Err(e) => {
                eprintln!("wc: {path}: {e}");
                failed = true;
            }
        }
    }
    std::process::exit(i32::from(failed));
}
