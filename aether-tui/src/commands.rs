//! Everything the desktop itself can do, as data: the keymap binds keys to these, the
//! help overlay lists them, the palette searches them.

use app_kit::AppKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    FocusLeft,
    FocusRight,
    FocusUp,
    FocusDown,
    FocusNext,
    FocusPrev,
    SplitRight,
    SplitDown,
    Close,
    Zoom,
    ResizeLeft,
    ResizeRight,
    ResizeUp,
    ResizeDown,
    SwapLeft,
    SwapRight,
    SwapUp,
    SwapDown,
    ToggleFloatingLayer,
    ToggleFloat,
    NewFloating,
    NewTab,
    NextTab,
    PrevTab,
    GoToTab(u8),
    RenameTab,
    CloseTab,
    Palette,
    Launcher,
    Help,
    Lock,
    SendPrefix,
    Quit,
    /// Open an app in a new window beside the focused one.
    Open(AppKind),
    ThemeDark,
    ThemeLight,
    ResetLayout,
}

/// A command's name (as written in keys.toml and typed in the palette) and what it does.
pub struct CommandInfo {
    pub command: Command,
    pub name: String,
    pub doc: String,
}

fn info(command: Command, name: &str, doc: &str) -> CommandInfo {
    CommandInfo {
        command,
        name: name.to_owned(),
        doc: doc.to_owned(),
    }
}

/// Every command, in the order help lists them.
pub fn all() -> Vec<CommandInfo> {
    use Command::*;
    let mut all = vec![
        info(FocusLeft, "focus_left", "focus the window to the left"),
        info(FocusRight, "focus_right", "focus the window to the right"),
        info(FocusUp, "focus_up", "focus the window above"),
        info(FocusDown, "focus_down", "focus the window below"),
        info(FocusNext, "focus_next", "focus the next window"),
        info(FocusPrev, "focus_prev", "focus the previous window"),
        info(
            SplitRight,
            "split_right",
            "open an app in a new window to the right",
        ),
        info(SplitDown, "split_down", "open an app in a new window below"),
        info(Close, "close", "close the window"),
        info(Zoom, "zoom", "zoom the window to full screen, or back"),
        info(ResizeLeft, "resize_left", "move the window's edge left"),
        info(ResizeRight, "resize_right", "move the window's edge right"),
        info(ResizeUp, "resize_up", "move the window's edge up"),
        info(ResizeDown, "resize_down", "move the window's edge down"),
        info(
            SwapLeft,
            "swap_left",
            "swap with the window to the left (floating: move left)",
        ),
        info(
            SwapRight,
            "swap_right",
            "swap with the window to the right (floating: move right)",
        ),
        info(
            SwapUp,
            "swap_up",
            "swap with the window above (floating: move up)",
        ),
        info(
            SwapDown,
            "swap_down",
            "swap with the window below (floating: move down)",
        ),
        info(
            ToggleFloatingLayer,
            "toggle_floating",
            "show or hide the floating windows",
        ),
        info(ToggleFloat, "float", "float the window, or tile it again"),
        info(
            NewFloating,
            "new_floating",
            "open an app in a floating window",
        ),
        info(NewTab, "new_tab", "a new workspace"),
        info(NextTab, "next_tab", "the next workspace"),
        info(PrevTab, "prev_tab", "the previous workspace"),
        info(RenameTab, "rename_tab", "rename the workspace"),
        info(CloseTab, "close_tab", "close the workspace and its windows"),
        info(
            Palette,
            "palette",
            "the command palette: apps, files, commands",
        ),
        info(Launcher, "launcher", "open an app"),
        info(
            Help,
            "help",
            "the keys of the focused window and the desktop",
        ),
        info(
            Lock,
            "lock",
            "lock: every key goes to the window until the prefix again",
        ),
        info(
            SendPrefix,
            "send_prefix",
            "send the prefix key itself to the window",
        ),
        info(Quit, "quit", "quit (the layout is saved)"),
        info(ThemeDark, "theme_dark", "use the dark theme"),
        info(ThemeLight, "theme_light", "use the light theme"),
        info(ResetLayout, "reset_layout", "back to the default layout"),
    ];
    for n in 1..=9 {
        all.push(info(
            GoToTab(n),
            &format!("go_to_tab_{n}"),
            &format!("go to workspace {n}"),
        ));
    }
    for kind in apps::standalone() {
        all.push(info(
            Open(kind),
            &format!("open_{}", kind.name()),
            &format!("open the {}", kind.title()),
        ));
    }
    all
}

pub fn by_name(name: &str) -> Option<Command> {
    all()
        .into_iter()
        .find(|c| c.name == name)
        .map(|c| c.command)
}

pub fn name_of(command: Command) -> String {
    all()
        .into_iter()
        .find(|c| c.command == command)
        .map(|c| c.name)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let all = all();
        let mut names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for c in &all {
            assert_eq!(by_name(&c.name), Some(c.command));
        }
    }
}
