//! Entry point for fuzzing the desktop's settings file: `desktop.toml` with its keymap.

use crate::config::ConfigFile;
use crate::keymap::Keymap;

/// A `desktop.toml` as a user (or a dotfiles repo) wrote it.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = toml::from_str::<ConfigFile>(text) else {
        return;
    };
    if let Ok(keymap) = Keymap::from_config(&file.keys) {
        // Every command's keys show.
        for info in crate::commands::all() {
            let _ = keymap.main_key(info.command);
            let _ = keymap.keys_for(info.command, true);
        }
    }
    let _ = crate::config::palette(file.colors.as_deref());
}
