//! Prints "tick N" every 100 ms (10 times, or as many as the first argument says).
fn main() {
    let count: u32 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(10);
    for n in 1..=count {
        println!("tick {n}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
