//! The desktop's commands (from the keymap, the palette, the launcher) and the answers
//! to its own dialogs.

use app_kit::{Event, Level, Theme};

use super::{
    Answer, Asker, Desktop, Dialog, DialogKind, Help, Launcher, Layer, Output, PaletteItem,
    PaletteLayer, Placement,
};
use crate::commands::{self, Command};
use crate::keymap::{self, Mode};
use crate::wm::{Direction, Split, WindowId};

impl Desktop {
    pub fn run(&mut self, command: Command) {
        if self.workspaces.is_empty()
            && !matches!(
                command,
                Command::Quit
                    | Command::Open(_)
                    | Command::Palette
                    | Command::Launcher
                    | Command::Help
                    | Command::ResetLayout
            )
        {
            return;
        }
        match command {
            Command::FocusLeft
            | Command::FocusRight
            | Command::FocusUp
            | Command::FocusDown
            | Command::FocusNext
            | Command::FocusPrev
            | Command::Zoom
            | Command::ResizeLeft
            | Command::ResizeRight
            | Command::ResizeUp
            | Command::ResizeDown
            | Command::SwapLeft
            | Command::SwapRight
            | Command::SwapUp
            | Command::SwapDown
            | Command::ToggleFloatingLayer
            | Command::ToggleFloat => self.arrange(command),
            Command::SplitRight => self.launcher(Placement::Split(Split::Right)),
            Command::SplitDown => self.launcher(Placement::Split(Split::Down)),
            Command::Launcher => self.launcher(Placement::Auto),
            Command::NewFloating => self.launcher(Placement::Floating),
            Command::NewTab => self.launcher(Placement::NewTab),
            Command::Close => {
                if let Some(id) = self.focused() {
                    self.close_window_asking(id);
                }
            }
            Command::NextTab => self.active = (self.active + 1) % self.workspaces.len(),
            Command::PrevTab => {
                self.active = (self.active + self.workspaces.len() - 1) % self.workspaces.len();
            }
            Command::GoToTab(n) => {
                let index = n as usize - 1;
                if index < self.workspaces.len() {
                    self.active = index;
                } else {
                    self.notify(Level::Warn, format!("there is no workspace {n}"));
                }
            }
            Command::RenameTab => self.rename_tab_asking(),
            Command::CloseTab => self.close_tab_asking(),
            Command::Palette => self.palette(),
            Command::Help => self.help(),
            Command::Lock => {
                self.mode = Mode::Locked;
                self.notify(
                    Level::Info,
                    format!(
                        "locked: every key goes to the window; {} unlocks",
                        self.keymap.prefix
                    ),
                );
            }
            Command::SendPrefix => {
                if let Some(id) = self.focused() {
                    let prefix = self.keymap.prefix;
                    self.deliver(id, Event::Key(prefix));
                }
            }
            Command::Quit => self.quit_asking(),
            Command::Open(kind) => {
                self.open_app(kind, Placement::Auto, None);
            }
            Command::ThemeDark => self.theme = Theme::dark().shown_like(&self.theme),
            Command::ThemeLight => self.theme = Theme::light().shown_like(&self.theme),
            Command::ResetLayout => self.reset_layout(),
        }
    }

    fn rename_tab_asking(&mut self) {
        let name = self.ws().name.clone();
        self.layers.push(Layer::Dialog(Dialog {
            asker: Asker::RenameTab,
            question: "Rename this workspace".into(),
            kind: DialogKind::Prompt {
                input: app_kit::widgets::LineInput::new(name),
                secret: false,
            },
        }));
    }

    /// Back to the default layout, unless a window has unsaved work.
    fn reset_layout(&mut self) {
        if let Some(why) = self.unsaved() {
            self.notify(Level::Warn, format!("not reset: {why}"));
            return;
        }
        let ids: Vec<WindowId> = self.windows.keys().copied().collect();
        for id in ids {
            self.windows.remove(&id);
            self.outputs.push(Output::Closed(id));
        }
        self.workspaces.clear();
        self.default_layout();
        self.start();
    }

    /// The commands that move, resize, swap or float windows in this workspace.
    fn arrange(&mut self, command: Command) {
        let body = self.body();
        let dir = match command {
            Command::FocusLeft | Command::ResizeLeft | Command::SwapLeft => Direction::Left,
            Command::FocusRight | Command::ResizeRight | Command::SwapRight => Direction::Right,
            Command::FocusUp | Command::ResizeUp | Command::SwapUp => Direction::Up,
            _ => Direction::Down,
        };
        let ws = self.ws_mut();
        match command {
            Command::FocusNext => ws.focus_next(true),
            Command::FocusPrev => ws.focus_next(false),
            Command::Zoom => ws.zoomed = !ws.zoomed && ws.windows().len() > 1,
            Command::ResizeLeft
            | Command::ResizeRight
            | Command::ResizeUp
            | Command::ResizeDown => ws.resize(dir, 5),
            Command::SwapLeft | Command::SwapRight | Command::SwapUp | Command::SwapDown => {
                if ws.is_floating(ws.focus) {
                    ws.nudge(dir, 5);
                } else {
                    ws.swap_towards(body, dir);
                }
            }
            Command::ToggleFloatingLayer => ws.toggle_floating_layer(),
            Command::ToggleFloat => ws.toggle_float(),
            _ => ws.focus_towards(body, dir),
        }
    }

    pub(super) fn launcher(&mut self, placement: Placement) {
        self.layers.push(Layer::Launcher(Launcher {
            placement,
            list: Default::default(),
            apps: self.catalog.clone(),
        }));
    }

    pub(super) fn quit_asking(&mut self) {
        match self.unsaved() {
            Some(why) => self.layers.push(Layer::Dialog(Dialog {
                asker: Asker::Quit,
                question: format!("Quit? There are {why}."),
                kind: DialogKind::Confirm,
            })),
            None => self.quit(),
        }
    }

    pub(super) fn quit(&mut self) {
        self.quitting = true;
        self.outputs.push(Output::Quit);
    }

    pub(super) fn on_answer(&mut self, answer: Answer) {
        match answer {
            Answer::Confirmed(Asker::App(owner, ticket), yes) => {
                self.deliver(owner, Event::Confirmed { ticket, yes })
            }
            Answer::Confirmed(Asker::Quit, true) => self.quit(),
            Answer::Confirmed(Asker::CloseWindow(id), true) => self.close_window(id),
            Answer::Confirmed(Asker::CloseTab, true) => {
                for id in self.ws().windows() {
                    self.windows.remove(&id);
                    self.outputs.push(Output::Closed(id));
                }
                self.workspaces.remove(self.active);
                self.active = self.active.min(self.workspaces.len().saturating_sub(1));
            }
            Answer::Confirmed(..) => {}
            Answer::Chose(Asker::App(owner, ticket), index) => {
                self.deliver(owner, Event::Chose { ticket, index })
            }
            Answer::Chose(..) => {}
            Answer::Prompted(Asker::App(owner, ticket), text) => {
                self.deliver(owner, Event::Prompted { ticket, text })
            }
            Answer::Prompted(Asker::RenameTab, Some(name)) => {
                let name: String = name
                    .trim()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(32)
                    .collect();
                if name.is_empty() {
                    self.notify(Level::Warn, "a workspace needs a name");
                } else {
                    self.ws_mut().name = name;
                }
            }
            Answer::Prompted(..) => {}
            Answer::Palette(PaletteItem::Command(command, ..)) => self.run(command),
            Answer::Palette(PaletteItem::OpenApp(kind)) => {
                self.open_app(kind, Placement::Auto, None);
            }
            Answer::Palette(PaletteItem::RunInstalled(id, _)) => {
                self.open_app(apps::program::APP, Placement::Auto, Some(&id));
            }
            Answer::Palette(PaletteItem::OpenFile(path)) => {
                self.open_path(apps::opener_for(&path), path, None)
            }
            Answer::Launch(app, placement) => {
                self.open_app(app.kind, placement, app.installed.as_deref());
            }
        }
    }

    pub(super) fn palette(&mut self) {
        let mut items: Vec<PaletteItem> = self
            .catalog
            .iter()
            .map(|app| match &app.installed {
                Some(id) => PaletteItem::RunInstalled(id.clone(), app.name.clone()),
                None => PaletteItem::OpenApp(app.kind),
            })
            .collect();
        let mut files: Vec<String> = self.recent.clone();
        for app in self.windows.values() {
            for path in app.paths() {
                if !files.contains(&path) {
                    files.push(path);
                }
            }
        }
        items.extend(files.into_iter().map(PaletteItem::OpenFile));
        items.extend(
            commands::all()
                .into_iter()
                .filter(|c| !matches!(c.command, Command::Open(_) | Command::Palette))
                .map(|c| PaletteItem::Command(c.command, c.name, c.doc)),
        );
        self.layers
            .push(Layer::Palette(Box::new(PaletteLayer::new(items))));
    }

    pub(super) fn help(&mut self) {
        let mut lines: Vec<(String, String)> = Vec::new();
        if let Some(app) = self.focused().and_then(|id| self.windows.get(&id)) {
            lines.push((
                format!("{}: its own keys", app.kind().title()),
                String::new(),
            ));
            for hint in app.hints() {
                lines.push((hint.keys.to_owned(), hint.what.to_owned()));
            }
            lines.push((String::new(), String::new()));
        }
        let prefix = self.keymap.prefix;
        lines.push((format!("The desktop: {prefix}, then"), String::new()));
        for info in commands::all() {
            let keys = self.keymap.keys_for(info.command, false);
            if !keys.is_empty() {
                lines.push((keymap::show(&keys), info.doc));
            }
        }
        lines.push((String::new(), String::new()));
        lines.push(("Without the prefix".into(), String::new()));
        for info in commands::all() {
            let keys = self.keymap.keys_for(info.command, true);
            if !keys.is_empty() {
                lines.push((keymap::show(&keys), info.doc));
            }
        }
        lines.push((
            "Mouse".into(),
            "click focuses, drag a border resizes, the wheel scrolls".into(),
        ));
        let mode = match self.mode {
            Mode::Locked => " (locked)",
            _ => "",
        };
        self.layers.push(Layer::Help(Help {
            title: format!("Keys{mode}: ↑↓ scroll, any other key closes"),
            lines,
            scroll: 0,
        }));
    }
}

/// Keys that are usually pressed several times in a row keep command mode.
pub(super) fn sticky(command: Command) -> bool {
    matches!(
        command,
        Command::ResizeLeft
            | Command::ResizeRight
            | Command::ResizeUp
            | Command::ResizeDown
            | Command::SwapLeft
            | Command::SwapRight
            | Command::SwapUp
            | Command::SwapDown
    )
}
