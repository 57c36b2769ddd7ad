//! The desktop's built-in apps. Each is state, an `update` (events in, effects out)
//! and a `view` drawn from the state alone ([`App`]). They never hold a connection,
//! touch the disk or run code: every bus request is an [`Effect`] the host runs through
//! the window's own app handle, so a browser host can run the same apps later. This
//! crate depends on ratatui without a backend and never on crossterm.

pub mod agents;
pub mod app;
pub mod chat;
pub mod clock;
pub mod editor;
pub mod files;
#[doc(hidden)]
pub mod fuzz;
pub mod highlight;
pub mod key;
pub mod path;
pub mod people;
pub mod program;
pub mod settings;
pub mod store;
pub mod terminal;
pub mod theme;
pub mod widgets;

#[cfg(test)]
mod testing;

pub use app::{App, AppKind, Effect, Event, Hint, Level, Payload, Ticket, ViewCx};
pub use clock::Clock;
pub use key::{Key, KeyCode, Mods, Mouse};
pub use theme::{Palette, Theme};

use serde_json::Value;

/// A new window of this app. `arg` is a path to open, if any (for a program window: the
/// installed app's id; for chat: the room to show).
pub fn launch(kind: AppKind, arg: Option<&str>) -> Box<dyn App> {
    match kind {
        AppKind::Files => Box::new(files::Files::new(arg.unwrap_or("/"))),
        AppKind::Editor => Box::new(editor::Editor::new(arg)),
        AppKind::Terminal => Box::new(terminal::Terminal::new(arg.unwrap_or("/"))),
        AppKind::Agents => Box::new(agents::Agents::new()),
        AppKind::Settings => Box::new(settings::Settings::new()),
        AppKind::Store => Box::new(store::Store::new()),
        AppKind::Program => Box::new(program::Program::new(arg.unwrap_or_default())),
        AppKind::Chat => Box::new(chat::Chat::showing(arg)),
        AppKind::People => Box::new(people::People::new()),
    }
}

/// The app that opens a file: programs (`.wasm`) run in the terminal, the rest opens in
/// the editor.
pub fn opener_for(path: &str) -> AppKind {
    if path.to_ascii_lowercase().ends_with(".wasm") {
        AppKind::Terminal
    } else {
        AppKind::Editor
    }
}

/// A window as the session saved it ([`App::save`]).
pub fn restore(kind: AppKind, state: &Value) -> Box<dyn App> {
    match kind {
        AppKind::Files => Box::new(files::Files::restore(state)),
        AppKind::Editor => Box::new(editor::Editor::restore(state)),
        AppKind::Terminal => Box::new(terminal::Terminal::restore(state)),
        AppKind::Agents => Box::new(agents::Agents::restore(state)),
        AppKind::Settings => Box::new(settings::Settings::new()),
        AppKind::Store => Box::new(store::Store::restore(state)),
        AppKind::Program => Box::new(program::Program::restore(state)),
        AppKind::Chat => Box::new(chat::Chat::restore(state)),
        AppKind::People => Box::new(people::People::new()),
    }
}
