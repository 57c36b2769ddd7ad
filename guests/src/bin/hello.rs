//! Greets, then prints its arguments and the variables it was given.
fn main() {
    println!("hello from wasm");
    for arg in std::env::args().skip(1) {
        println!("arg {arg}");
    }
    for (key, value) in std::env::vars() {
        println!("env {key}={value}");
    }
}
