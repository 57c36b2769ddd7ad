//! The app kit: what every desktop app is built with. The [`App`] contract (events in,
//! effects out, a view drawn from state alone), typed request bookkeeping
//! ([`Requests`]), keys, the theme, the clock, widgets and syntax highlighting.
//!
//! Nothing here does I/O: an app never holds a connection, touches the disk or reads
//! the clock; the host (the terminal desktop, later the browser shell) runs its effects
//! and hands it the time. This crate depends on ratatui without a backend and never on
//! crossterm or tokio (a test in `tests/` checks).

pub mod app;
pub mod clock;
pub mod highlight;
pub mod key;
pub mod path;
pub mod requests;
pub mod theme;
pub mod widgets;

pub use app::{
    App, AppKind, Effect, Event, Hint, Level, Payload, Registration, Ticket, ViewCx, decode, hint,
};
pub use clock::Clock;
pub use key::{Key, KeyCode, Mods, Mouse};
pub use requests::{Answer, Latest, Loaded, Replies, Requests, route};
pub use theme::{Palette, Theme};
