//! The Aether desktop: a shell of tiled windows over the daemon's bus. `desktop` holds
//! the state and every change to it with no I/O (so it runs in tests and benchmarks);
//! `app` is the event loop that feeds it from the terminal and the bus; `bus` runs the
//! apps' requests, each window as its own app.

pub mod app;
pub mod bus;
pub mod commands;
pub mod config;
pub mod desktop;
#[doc(hidden)]
pub mod fuzz;
pub mod input;
pub mod keymap;
pub mod term;
pub mod wm;
