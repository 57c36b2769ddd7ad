//! The desktop's built-in apps, one folder each, built with the app kit (`app_kit`):
//! state, an `update` (events in, effects out) and a `view` drawn from the state alone.
//! They never hold a connection, touch the disk or run code: every bus request is an
//! effect the host runs through the window's own app handle, so a browser host can run
//! the same apps later. This crate depends on ratatui without a backend and never on
//! crossterm or tokio.
//!
//! [`APPS`] is the one registry: a new app is a folder that exports its `APP`
//! registration plus one line there.

pub mod agents;
pub mod chat;
pub mod editor;
pub mod files;
#[doc(hidden)]
pub mod fuzz;
pub mod people;
pub mod program;
pub mod settings;
pub mod store;
pub mod terminal;

#[cfg(test)]
mod testing;

use app_kit::AppKind;

/// Every built-in app, in the launcher's order.
pub const APPS: [AppKind; 9] = [
    files::APP,
    editor::APP,
    terminal::APP,
    agents::APP,
    settings::APP,
    store::APP,
    program::APP,
    chat::APP,
    people::APP,
];

/// The app saved (or typed) under this name.
pub fn named(name: &str) -> Option<AppKind> {
    APPS.into_iter().find(|kind| kind.name() == name)
}

/// The apps that open with nothing more said: the launcher's, the palette's.
pub fn standalone() -> impl Iterator<Item = AppKind> {
    APPS.into_iter().filter(|kind| kind.standalone())
}

/// The app the launcher opens on this key.
pub fn launched_by(key: char) -> Option<AppKind> {
    APPS.into_iter()
        .find(|kind| kind.launcher_key() == Some(key))
}

/// Whether the launcher and the palette name this app as its manifest does: only when
/// it alone acts as that manifest under that name (settings acts as the desktop, chat
/// and people share a manifest: each keeps its own title).
pub fn named_by_manifest(kind: AppKind) -> bool {
    kind.name() == kind.manifest()
        && standalone()
            .filter(|k| k.manifest() == kind.manifest())
            .count()
            == 1
}

/// The app that opens a file: the one that claims its extension (programs, `.wasm`, run
/// in the terminal), else the one that opens any file (the editor).
pub fn opener_for(path: &str) -> AppKind {
    let name = path.rsplit('/').next().unwrap_or(path);
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    let claims = |kind: &AppKind, ext: &str| kind.opens().contains(&ext);
    extension
        .and_then(|ext| APPS.into_iter().find(|kind| claims(kind, &ext)))
        .or_else(|| APPS.into_iter().find(|kind| claims(kind, "*")))
        .unwrap_or(editor::APP)
}

#[cfg(test)]
mod registry_tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for kind in APPS {
            assert_eq!(named(kind.name()), Some(kind));
            assert_eq!(APPS.iter().filter(|k| k.name() == kind.name()).count(), 1);
        }
        assert_eq!(named("nope"), None);
        let keys: Vec<char> = APPS.iter().filter_map(|k| k.launcher_key()).collect();
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            keys.len(),
            unique.len(),
            "one launcher key per app: {keys:?}"
        );
    }

    #[test]
    fn programs_run_in_the_terminal_and_the_rest_opens_in_the_editor() {
        assert_eq!(opener_for("/bin/Hello.WASM"), terminal::APP);
        assert_eq!(opener_for("/notes/todo.md"), editor::APP);
        assert_eq!(opener_for("/notes/Makefile"), editor::APP);
        assert_eq!(opener_for("/a.wasm/readme"), editor::APP);
    }
}
