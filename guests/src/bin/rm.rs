//! Removes each file named (to test that the VFS notices files removed by a program).
fn main() {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        if let Err(e) = std::fs::remove_file(&path) {
            eprintln!("rm: {path}: {e}");
            failed = true;
        }
    }
    std::process::exit(i32::from(failed));
}
