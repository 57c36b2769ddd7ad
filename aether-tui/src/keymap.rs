//! Keys to commands. Aether's scheme never takes a key an app needs: everything goes to
//! the focused window except the prefix (Ctrl-g by default), after which one key is a
//! desktop command, and a few Alt chords. Locked mode passes even those through until
//! the prefix is pressed again. Every binding can be changed in the config file.

use std::collections::{BTreeMap, HashMap};

use app_kit::Key;

use crate::commands::{self, Command};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keys go to the window, but for the prefix and the direct chords.
    Normal,
    /// The prefix was pressed: the next key is a command.
    Command,
    /// Every key goes to the window; the prefix unlocks.
    Locked,
}

/// What a key means in a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Run(Command),
    EnterCommandMode,
    Unlock,
    /// Pass the key to the focused window (or the layer on top).
    Forward,
    /// In command mode, a key bound to nothing: say so and leave the mode.
    Unbound,
}

#[derive(Debug, Clone)]
pub struct Keymap {
    pub prefix: Key,
    /// The bindings in the order they were declared, the first key of each the main one.
    order: Vec<(bool, Command, Vec<Key>)>,
    /// After the prefix.
    pub command: HashMap<Key, Command>,
    /// Without the prefix.
    pub direct: HashMap<Key, Command>,
}

/// Overrides as written in the config file: command name → keys.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    pub prefix: Option<String>,
    pub command: BTreeMap<String, Vec<String>>,
    pub direct: BTreeMap<String, Vec<String>>,
}

fn k(text: &str) -> Key {
    Key::parse(text).expect("a default binding parses")
}

fn defaults_command() -> Vec<(Command, Vec<Key>)> {
    use Command::*;
    let mut out = vec![
        (FocusLeft, vec![k("h"), k("left")]),
        (FocusDown, vec![k("j"), k("down")]),
        (FocusUp, vec![k("k"), k("up")]),
        (FocusRight, vec![k("l"), k("right")]),
        (FocusNext, vec![k("tab"), k("o")]),
        (FocusPrev, vec![k("backtab")]),
        (SplitRight, vec![k("v"), k("|"), k("%")]),
        (SplitDown, vec![k("s"), k("-"), k("\"")]),
        (Close, vec![k("x")]),
        (Zoom, vec![k("z")]),
        (ResizeLeft, vec![k("H"), k("shift-left")]),
        (ResizeDown, vec![k("J"), k("shift-down")]),
        (ResizeUp, vec![k("K"), k("shift-up")]),
        (ResizeRight, vec![k("L"), k("shift-right")]),
        (SwapLeft, vec![k("ctrl-h"), k("ctrl-left")]),
        (SwapDown, vec![k("ctrl-j"), k("ctrl-down")]),
        (SwapUp, vec![k("ctrl-k"), k("ctrl-up")]),
        (SwapRight, vec![k("ctrl-l"), k("ctrl-right")]),
        (ToggleFloatingLayer, vec![k("f")]),
        (ToggleFloat, vec![k("F")]),
        (NewFloating, vec![k("w")]),
        (NewTab, vec![k("t"), k("c")]),
        (NextTab, vec![k("]"), k("n")]),
        (PrevTab, vec![k("["), k("N")]),
        (RenameTab, vec![k("r"), k(",")]),
        (CloseTab, vec![k("X"), k("&")]),
        (Palette, vec![k("p"), k("space"), k(":")]),
        (Launcher, vec![k("a")]),
        (Help, vec![k("?")]),
        (Lock, vec![k("!")]),
        (SendPrefix, vec![k("ctrl-g")]),
        (Quit, vec![k("q")]),
    ];
    for n in 1..=9u8 {
        out.push((GoToTab(n), vec![Key::char((b'0' + n) as char)]));
    }
    out
}

fn defaults_direct() -> Vec<(Command, Vec<Key>)> {
    use Command::*;
    vec![
        (FocusLeft, vec![k("alt-h"), k("alt-left")]),
        (FocusDown, vec![k("alt-j"), k("alt-down")]),
        (FocusUp, vec![k("alt-k"), k("alt-up")]),
        (FocusRight, vec![k("alt-l"), k("alt-right")]),
        (PrevTab, vec![k("alt-[")]),
        (NextTab, vec![k("alt-]")]),
        (Palette, vec![k("alt-p")]),
    ]
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::from_config(&KeysConfig::default()).expect("the defaults are valid")
    }
}

impl Keymap {
    /// The defaults with the config's overrides: a command listed there gets exactly the
    /// keys listed (an empty list unbinds it).
    pub fn from_config(config: &KeysConfig) -> Result<Keymap, String> {
        let prefix = match &config.prefix {
            Some(text) => Key::parse(text).map_err(|e| format!("keys.prefix: {e}"))?,
            None => Key::ctrl('g'),
        };
        let (command, command_order) = table(defaults_command(), &config.command, "keys.command")?;
        let (direct, direct_order) = table(defaults_direct(), &config.direct, "keys.direct")?;
        let order = command_order
            .into_iter()
            .map(|(c, k)| (false, c, k))
            .chain(direct_order.into_iter().map(|(c, k)| (true, c, k)))
            .collect();
        if command.contains_key(&prefix) && command[&prefix] != Command::SendPrefix {
            return Err(format!(
                "keys: the prefix {prefix} is also bound to a command"
            ));
        }
        Ok(Keymap {
            prefix,
            order,
            command,
            direct,
        })
    }

    pub fn action(&self, mode: Mode, key: Key) -> Action {
        match mode {
            Mode::Locked if key == self.prefix => Action::Unlock,
            Mode::Locked => Action::Forward,
            Mode::Normal if key == self.prefix => Action::EnterCommandMode,
            Mode::Normal => match self.direct.get(&key) {
                Some(command) => Action::Run(*command),
                None => Action::Forward,
            },
            Mode::Command if key == self.prefix => Action::Run(Command::SendPrefix),
            Mode::Command => match self.command.get(&key) {
                Some(command) => Action::Run(*command),
                None => Action::Unbound,
            },
        }
    }

    /// The keys bound to a command in a table, for help and hints.
    pub fn keys_for(&self, command: Command, direct: bool) -> Vec<Key> {
        self.order
            .iter()
            .filter(|(d, c, _)| *d == direct && *c == command)
            .flat_map(|(_, _, keys)| keys.iter().copied())
            .collect()
    }

    /// The main key of a command after the prefix, as help and hints show it.
    pub fn main_key(&self, command: Command) -> String {
        self.keys_for(command, false)
            .first()
            .map(Key::to_string)
            .unwrap_or_else(|| "(unbound)".into())
    }
}

type Table = (HashMap<Key, Command>, Vec<(Command, Vec<Key>)>);

fn table(
    defaults: Vec<(Command, Vec<Key>)>,
    overrides: &BTreeMap<String, Vec<String>>,
    section: &str,
) -> Result<Table, String> {
    let mut bindings: Vec<(Command, Vec<Key>)> = defaults;
    for (name, keys) in overrides {
        let command = commands::by_name(name).ok_or_else(|| {
            format!("{section}.{name}: no such command (see `aether --list-commands`)")
        })?;
        let keys = keys
            .iter()
            .map(|text| Key::parse(text).map_err(|e| format!("{section}.{name}: {e}")))
            .collect::<Result<Vec<Key>, String>>()?;
        bindings.retain(|(c, _)| *c != command);
        bindings.push((command, keys));
    }
    let mut map = HashMap::new();
    for (command, keys) in &bindings {
        let (command, keys) = (*command, keys.clone());
        for key in keys {
            if let Some(other) = map.insert(key, command)
                && other != command
            {
                return Err(format!(
                    "{section}: {key} is bound to both {} and {}",
                    commands::name_of(other),
                    commands::name_of(command)
                ));
            }
        }
    }
    Ok((map, bindings))
}

/// A key as the status bar and help show it.
pub fn show(keys: &[Key]) -> String {
    keys.iter()
        .map(Key::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_leave_every_plain_key_to_the_app() {
        let keymap = Keymap::default();
        for c in ('a'..='z').chain('A'..='Z').chain("0123456789:/?".chars()) {
            assert_eq!(keymap.action(Mode::Normal, Key::char(c)), Action::Forward);
        }
        for c in [
            'a', 'c', 'd', 'e', 'f', 'n', 'p', 'r', 's', 'u', 'v', 'w', 'x', 'y', 'z',
        ] {
            assert_eq!(
                keymap.action(Mode::Normal, Key::ctrl(c)),
                Action::Forward,
                "ctrl-{c}"
            );
        }
        assert_eq!(
            keymap.action(Mode::Normal, Key::ctrl('g')),
            Action::EnterCommandMode
        );
        assert_eq!(
            keymap.action(Mode::Command, Key::char('v')),
            Action::Run(Command::SplitRight)
        );
        assert_eq!(
            keymap.action(Mode::Command, Key::char('é')),
            Action::Unbound
        );
    }

    #[test]
    fn locked_mode_passes_everything_but_the_prefix() {
        let keymap = Keymap::default();
        assert_eq!(keymap.action(Mode::Locked, k("alt-h")), Action::Forward);
        assert_eq!(keymap.action(Mode::Locked, Key::ctrl('g')), Action::Unlock);
        assert_eq!(
            keymap.action(Mode::Command, Key::ctrl('g')),
            Action::Run(Command::SendPrefix)
        );
    }

    #[test]
    fn the_config_rebinds_and_says_what_is_wrong() {
        let config: KeysConfig = toml::from_str(
            "prefix = \"ctrl-a\"\n[command]\nsplit_right = [\"|\"]\n[direct]\nfocus_left = []\n",
        )
        .unwrap();
        let keymap = Keymap::from_config(&config).unwrap();
        assert_eq!(keymap.prefix, Key::ctrl('a'));
        assert_eq!(keymap.action(Mode::Command, k("v")), Action::Unbound);
        assert_eq!(keymap.action(Mode::Normal, k("alt-h")), Action::Forward);
        let bad: KeysConfig = toml::from_str("[command]\nfly = [\"x\"]\n").unwrap();
        assert!(
            Keymap::from_config(&bad)
                .unwrap_err()
                .contains("fly: no such command")
        );
        let twice: KeysConfig = toml::from_str("[command]\nquit = [\"v\"]\n").unwrap();
        assert!(
            Keymap::from_config(&twice)
                .unwrap_err()
                .contains("bound to both")
        );
        let key: KeysConfig = toml::from_str("prefix = \"hyper-q\"\n").unwrap();
        assert!(
            Keymap::from_config(&key)
                .unwrap_err()
                .starts_with("keys.prefix")
        );
    }
}
