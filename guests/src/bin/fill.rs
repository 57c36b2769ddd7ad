//! Writes PATH with 64 KiB chunks until it holds MIB mebibytes or a write fails; prints how
//! many bytes it wrote and the error, if any (to test that writes stop at the user's quota).
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(Ok(mib))) = (args.get(1), args.get(2).map(|m| m.parse::<u64>())) else {
        eprintln!("usage: fill PATH MIB");
        std::process::exit(2);
    };
    let mut file = match std::fs::File::create(path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("fill: {path}: {e}");
            std::process::exit(1);
        }
    };
    let chunk = vec![b'x'; 64 << 10];
    let mut written = 0u64;
    while written < mib << 20 {
        if let Err(e) = file.write_all(&chunk) {
            println!("wrote {written}");
            eprintln!("fill: {path}: {e}");
            std::process::exit(1);
        }
        written += chunk.len() as u64;
    }
    println!("wrote {written}");
}
