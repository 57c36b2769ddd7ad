//! Writes its second argument to the file named by the first (to test write permissions).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(text)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: writer PATH TEXT");
        std::process::exit(2);
    };
    if let Err(e) = std::fs::write(path, text) {
        eprintln!("writer: {path}: {e}");
        std::process::exit(1);
    }
}
