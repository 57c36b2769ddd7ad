//! Prints the lines containing a pattern (plain text), from files or stdin.
use std::io::Read;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(pattern) = args.next() else {
        eprintln!("usage: grep PATTERN [FILE...]");
        std::process::exit(2);
    };
    let paths: Vec<String> = args.collect();
    let mut found = false;
    let mut scan = |name: Option<&str>, text: &str| {
        for (n, line) in text.lines().enumerate() {
            if line.contains(&pattern) {
                found = true;
                match name {
                    Some(name) => println!("{name}:{}:{line}", n + 1),
                    None => println!("{line}"),
                }
            }
        }
    };
    if paths.is_empty() {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input).expect("stdin");
        scan(None, &input);
    }
    for path in &paths {
        match std::fs::read_to_string(path) {
            Ok(text) => scan(Some(path), &text),
            Err(e) => eprintln!("grep: {path}: {e}"),
        }
    }
    std::process::exit(if found { 0 } else { 1 });
}
