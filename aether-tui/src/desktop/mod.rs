//! The desktop's state and everything that changes it, with no I/O: input in, bus work
//! and clipboard writes out (`Output`), so the whole shell runs in tests without a
//! terminal or a daemon. `app.rs` feeds it; `render.rs` draws it.

mod layers;
mod render;
mod session;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use aether_proto::api::apps::AppInfo;
use aether_proto::api::presence;
use app_kit::{App, AppKind, Clock, Effect, Event, Key, KeyCode, Level, Theme, Ticket};
use ratatui::layout::Rect;

use crate::commands::{self, Command};
use crate::keymap::{self, Action, Keymap, Mode};
use crate::wm::{Direction, Placed, Split, WindowId, Workspace};
pub use layers::{
    Answer, Asker, Dialog, DialogKind, Help, Launchable, Launcher, Layer, Outcome, PaletteItem,
    PaletteLayer, Placement,
};
pub use session::SESSION_NAME;

/// How long a notification stays.
const NOTICE_FOR: Duration = Duration::from_secs(5);
const MAX_NOTICES: usize = 4;
/// Files remembered for the palette.
const RECENT_FILES: usize = 50;
/// After this long without a key, a click or a paste, presence says you are away.
pub const AWAY_AFTER: Duration = Duration::from_secs(5 * 60);
/// The desktop's own bus work (saying you are away, counting unread chat) runs as this
/// window, which never exists: its events go to the desktop itself.
pub const DESKTOP: WindowId = WindowId(0);

/// Input from the terminal, already in the apps' terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Key(Key),
    Mouse(MouseInput),
    Paste(String),
    Resize(u16, u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MouseKind {
    Down,
    Drag,
    Up,
    ScrollUp,
    ScrollDown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MouseInput {
    pub kind: MouseKind,
    pub column: u16,
    pub row: u16,
}

/// Work for the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A bus effect (request, subscribe, unsubscribe) to run as this window's app.
    Bus(WindowId, AppKind, Effect),
    /// The window closed: drop its subscriptions.
    Closed(WindowId),
    Copy(String),
    /// Keep this theme as a theme file beside the settings file.
    SaveTheme(Box<Theme>),
    /// Apps were installed or removed: list them again (`apps.list`) for the launcher.
    AppsChanged,
    Quit,
}

/// The connection as the status bar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Up,
    Reconnecting(u32),
    Down(String),
}

#[derive(Debug, Clone)]
pub struct Notice {
    pub level: Level,
    pub text: String,
    pub until: Instant,
}

pub struct Desktop {
    windows: BTreeMap<WindowId, Box<dyn App>>,
    workspaces: Vec<Workspace>,
    active: usize,
    next_id: u32,
    pub mode: Mode,
    pub keymap: Keymap,
    pub theme: Theme,
    layers: Vec<Layer>,
    notices: VecDeque<Notice>,
    pub link: LinkState,
    pub user: String,
    screen: Rect,
    outputs: Vec<Output>,
    recent: Vec<String>,
    /// A border being dragged: the path to its split.
    drag: Option<Vec<bool>>,
    now: Instant,
    /// The wall clock the windows are drawn at (the event loop keeps it).
    pub clock: Clock,
    /// When you last touched a key, the mouse or pasted.
    last_input: Instant,
    /// Presence was told you are away.
    away: bool,
    quitting: bool,
    /// The apps the launcher offers, named by their manifests.
    catalog: Vec<Launchable>,
    /// Unread chat for the status bar, and notices of mentions and direct messages.
    pub unread: apps::chat::Unread,
}

impl Desktop {
    pub fn new(keymap: Keymap, theme: Theme, user: String) -> Desktop {
        Desktop {
            windows: BTreeMap::new(),
            workspaces: Vec::new(),
            active: 0,
            next_id: 1,
            mode: Mode::Normal,
            keymap,
            theme,
            layers: Vec::new(),
            notices: VecDeque::new(),
            link: LinkState::Up,
            user: user.clone(),
            screen: Rect::new(0, 0, 80, 24),
            outputs: Vec::new(),
            recent: Vec::new(),
            drag: None,
            now: Instant::now(),
            clock: Clock::default(),
            last_input: Instant::now(),
            away: false,
            quitting: false,
            catalog: built_in_apps(),
            unread: apps::chat::Unread::new(&user),
        }
    }

    /// Name the launcher's apps as the daemon does (`apps.list`): a built-in app whose
    /// manifest is not loaded is not offered; the programs installed for you follow.
    pub fn set_catalog(&mut self, listed: &[AppInfo]) {
        let mut catalog: Vec<Launchable> = apps::standalone()
            .filter_map(|kind| {
                let app = listed.iter().find(|a| a.id == kind.manifest())?;
                let name = match apps::named_by_manifest(kind) {
                    true => &app.name,
                    false => kind.title(),
                };
                Some(Launchable::built_in(kind, name))
            })
            .collect();
        if catalog.is_empty() {
            catalog = built_in_apps();
        }
        catalog.extend(
            listed
                .iter()
                .filter(|a| !a.built_in && a.runnable)
                .map(|a| Launchable::program(&a.id, &a.name)),
        );
        self.catalog = catalog;
    }

    /// The default layout: the explorer at the root | the editor over the terminal.
    pub fn default_layout(&mut self) {
        let files = self.add_window(apps::files::APP.launch(Some("/")));
        self.workspaces.push(Workspace::new("main", files));
        self.active = self.workspaces.len() - 1;
        let editor = self.add_window(apps::editor::APP.launch(None));
        self.ws_mut().split(Split::Right, editor);
        let terminal = self.add_window(apps::terminal::APP.launch(Some("/")));
        self.ws_mut().split(Split::Down, terminal);
        if let Some(tree) = &mut self.ws_mut().tree {
            // The explorer a little narrower than the work.
            tree.resize(files, Direction::Right, -10);
        }
        self.ws_mut().focus = files;
    }

    /// Show the few keys a newcomer needs (a first start).
    pub fn show_welcome(&mut self) {
        let prefix = self.keymap.prefix.to_string();
        let in_command = |c: Command| self.keymap.main_key(c);
        self.layers.push(Layer::Hint(vec![
            (
                format!("{prefix} {}", in_command(Command::Palette)),
                "the palette: open apps and files, run commands".into(),
            ),
            (
                "Alt-h/j/k/l".into(),
                format!("move between windows (or {prefix} then h/j/k/l)"),
            ),
            (
                format!("{prefix} {}", in_command(Command::SplitRight)),
                "open an app in a new window".into(),
            ),
            (
                format!("{prefix} {}", in_command(Command::Help)),
                "every key, for the window you are in".into(),
            ),
            (
                format!("{prefix} {}", in_command(Command::Quit)),
                "quit (your layout comes back next time)".into(),
            ),
            (
                "terminal".into(),
                "type help, or run /examples/ticker.wasm".into(),
            ),
        ]));
    }

    /// Start every window's app (after a restore or the default layout), and the
    /// desktop's own chat counter.
    pub fn start(&mut self) {
        let effects = self.unread.start();
        self.apply_desktop(effects);
        let ids: Vec<WindowId> = self.windows.keys().copied().collect();
        for id in ids {
            if let Some(app) = self.windows.get_mut(&id) {
                let effects = app.start();
                self.apply(id, effects);
            }
        }
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    pub fn quitting(&self) -> bool {
        self.quitting
    }

    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// Drop expired notifications; true if any went (a redraw is due).
    pub fn expire(&mut self, now: Instant) -> bool {
        self.now = now;
        let before = self.notices.len();
        self.notices.retain(|n| n.until > now);
        self.notices.len() != before
    }

    /// When you will count as away if nothing happens, for the event loop's timer (none
    /// once you are: an idle desktop wakes up for it once).
    pub fn away_at(&self) -> Option<Instant> {
        (!self.away).then(|| self.last_input + AWAY_AFTER)
    }

    /// Tell presence you are away once you have been idle for `AWAY_AFTER`.
    pub fn check_idle(&mut self, now: Instant) {
        if !self.away && now >= self.last_input + AWAY_AFTER {
            self.away = true;
            self.say_away(true);
        }
    }

    /// You are here: back, if presence was told you were away.
    fn touched(&mut self) {
        self.last_input = self.now;
        if self.away {
            self.away = false;
            self.say_away(false);
        }
    }

    /// `presence.set` as the chat app (whose manifest grants presence); a daemon without
    /// chat refuses it, and nobody waits for the answer.
    fn say_away(&mut self, away: bool) {
        let set = presence::Set {
            away: Some(away),
            text: None,
        };
        let effect = Effect::request(Ticket(0), &set);
        self.outputs
            .push(Output::Bus(DESKTOP, apps::chat::APP, effect));
    }

    /// When the next notification expires, for the event loop's timer.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.notices.iter().map(|n| n.until).min()
    }

    pub fn notify(&mut self, level: Level, text: impl Into<String>) {
        self.notices.push_back(Notice {
            level,
            text: text.into(),
            until: self.now + NOTICE_FOR,
        });
        while self.notices.len() > MAX_NOTICES {
            self.notices.pop_front();
        }
    }

    fn ws(&self) -> &Workspace {
        &self.workspaces[self.active]
    }

    fn ws_mut(&mut self) -> &mut Workspace {
        &mut self.workspaces[self.active]
    }

    pub fn focused(&self) -> Option<WindowId> {
        let ws = self.workspaces.get(self.active)?;
        self.windows.contains_key(&ws.focus).then_some(ws.focus)
    }

    /// The area the windows share: the screen less the tab bar and the status bar.
    pub fn body(&self) -> Rect {
        let s = self.screen;
        if s.height < 3 {
            return Rect::new(s.x, s.y, s.width, 0);
        }
        Rect::new(s.x, s.y + 1, s.width, s.height - 2)
    }

    pub fn layout(&self) -> Vec<Placed> {
        match self.workspaces.get(self.active) {
            Some(ws) => ws.layout(self.body()),
            None => Vec::new(),
        }
    }

    fn add_window(&mut self, app: Box<dyn App>) -> WindowId {
        let id = WindowId(self.next_id);
        self.next_id += 1;
        self.windows.insert(id, app);
        id
    }

    /// Open an app in a new window and start it.
    pub fn open_app(&mut self, kind: AppKind, placement: Placement, arg: Option<&str>) -> WindowId {
        let id = self.add_window(kind.launch(arg));
        if self.workspaces.is_empty() {
            self.workspaces.push(Workspace::new("main", id));
            self.active = 0;
        } else {
            match placement {
                Placement::Split(split) => self.ws_mut().split(split, id),
                Placement::Floating => self.ws_mut().add_floating(id),
                Placement::Auto => {
                    let split = self.auto_split();
                    self.ws_mut().split(split, id);
                }
                Placement::NewTab => {
                    let name = format!("{}", self.workspaces.len() + 1);
                    self.workspaces.push(Workspace::new(name, id));
                    self.active = self.workspaces.len() - 1;
                }
            }
        }
        if let Some(app) = self.windows.get_mut(&id) {
            let effects = app.start();
            self.apply(id, effects);
        }
        id
    }

    /// Split the focused window the long way (terminal cells are twice as tall as wide).
    fn auto_split(&self) -> Split {
        let focus = self.ws().focus;
        let area = self
            .layout()
            .into_iter()
            .find(|p| p.id == focus)
            .map(|p| p.area)
            .unwrap_or(self.body());
        if area.width >= area.height.saturating_mul(2) {
            Split::Right
        } else {
            Split::Down
        }
    }

    /// Hand an event to a window's app and carry out what it asks.
    pub fn deliver(&mut self, id: WindowId, event: Event) {
        if id == DESKTOP {
            self.unread.chat_in_view = self
                .focused()
                .and_then(|f| self.windows.get(&f))
                .is_some_and(|app| app.kind() == apps::chat::APP);
            let effects = self.unread.update(event);
            return self.apply_desktop(effects);
        }
        let Some(app) = self.windows.get_mut(&id) else {
            return; // the window closed meanwhile: the answer is stale
        };
        let effects = app.update(event);
        self.apply(id, effects);
    }

    /// Tell every window the connection is back.
    pub fn reconnected(&mut self) {
        self.deliver(DESKTOP, Event::Reconnected);
        let ids: Vec<WindowId> = self.windows.keys().copied().collect();
        for id in ids {
            self.deliver(id, Event::Reconnected);
        }
    }

    /// The desktop's own effects: bus work as the chat app (whose manifest grants chat
    /// and presence), notices shown.
    fn apply_desktop(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Request { .. } | Effect::Subscribe { .. } | Effect::Unsubscribe { .. } => {
                    self.outputs
                        .push(Output::Bus(DESKTOP, apps::chat::APP, effect));
                }
                Effect::Notify { level, text } => self.notify(level, text),
                _ => {}
            }
        }
    }

    fn apply(&mut self, id: WindowId, effects: Vec<Effect>) {
        let Some(kind) = self.windows.get(&id).map(|a| a.kind()) else {
            return;
        };
        for effect in effects {
            match effect {
                Effect::Request { .. } | Effect::Subscribe { .. } | Effect::Unsubscribe { .. } => {
                    self.outputs.push(Output::Bus(id, kind, effect));
                }
                Effect::Open { app, path, line } => self.open_path(app, path, line),
                Effect::Notify { level, text } => self.notify(level, text),
                Effect::Confirm { ticket, question } => self.layers.push(Layer::Dialog(Dialog {
                    asker: Asker::App(id, ticket),
                    question,
                    kind: DialogKind::Confirm,
                })),
                Effect::Choose {
                    ticket,
                    question,
                    options,
                } => self.layers.push(Layer::Dialog(Dialog {
                    asker: Asker::App(id, ticket),
                    question,
                    kind: DialogKind::Choose {
                        options,
                        selected: 0,
                    },
                })),
                Effect::Review {
                    ticket,
                    question,
                    detail,
                    options,
                } => self.layers.push(Layer::Dialog(Dialog {
                    asker: Asker::App(id, ticket),
                    question,
                    kind: DialogKind::Review {
                        detail,
                        scroll: std::cell::Cell::new(0),
                        options,
                        selected: 0,
                    },
                })),
                Effect::Prompt {
                    ticket,
                    question,
                    initial,
                    secret,
                } => self.layers.push(Layer::Dialog(Dialog {
                    asker: Asker::App(id, ticket),
                    question,
                    kind: DialogKind::Prompt {
                        input: app_kit::widgets::LineInput::new(initial),
                        secret,
                    },
                })),
                Effect::Copy(text) => self.outputs.push(Output::Copy(text)),
                Effect::AppsChanged => self.outputs.push(Output::AppsChanged),
                Effect::SetTheme(theme) => {
                    // The colours change; how they are shown (palette, glyphs) stays.
                    self.theme = theme.as_ref().clone().shown_like(&self.theme);
                    self.outputs.push(Output::SaveTheme(theme));
                }
            }
        }
    }

    /// Show a path in a window of `app` in this workspace (the focused one first), or a new one.
    /// A program (`path` is the installed app's id) gets a window of its own each time.
    fn open_path(&mut self, app: AppKind, path: String, line: Option<usize>) {
        if app == apps::program::APP {
            self.open_app(app, Placement::Auto, Some(&path));
            return;
        }
        if app == apps::editor::APP {
            self.recent.retain(|p| *p != path);
            self.recent.insert(0, path.clone());
            self.recent.truncate(RECENT_FILES);
        }
        let ws = self.ws();
        let mut candidates: Vec<WindowId> = ws
            .windows()
            .into_iter()
            .filter(|id| self.windows.get(id).is_some_and(|a| a.kind() == app))
            .collect();
        candidates.sort_by_key(|id| *id != ws.focus);
        let target = match candidates.first() {
            Some(id) => *id,
            None => self.open_app(app, Placement::Auto, None),
        };
        self.ws_mut().focus = target;
        self.deliver(target, Event::OpenPath { path, line });
    }

    pub fn on_input(&mut self, input: Input) {
        if !matches!(input, Input::Resize(..)) {
            self.touched();
        }
        match input {
            Input::Key(key) => self.on_key(key),
            Input::Paste(text) => match self.layers.last_mut() {
                Some(layer) => layer.on_paste(&text),
                None => {
                    if let Some(id) = self.focused() {
                        self.deliver(id, Event::Paste(text));
                    }
                }
            },
            Input::Mouse(mouse) => self.on_mouse(mouse),
            Input::Resize(width, height) => self.screen = Rect::new(0, 0, width, height),
        }
    }

    pub fn resize(&mut self, width: u16, height: u16) {
        self.screen = Rect::new(0, 0, width, height);
    }

    fn on_key(&mut self, key: Key) {
        if let Some(layer) = self.layers.last_mut() {
            match layer.on_key(key) {
                Outcome::Stay => {}
                Outcome::Close => {
                    self.layers.pop();
                }
                Outcome::Answered(answer) => {
                    self.layers.pop();
                    self.on_answer(answer);
                }
            }
            return;
        }
        let mode = self.mode;
        match self.keymap.action(mode, key) {
            Action::EnterCommandMode => self.mode = Mode::Command,
            Action::Unlock => {
                self.mode = Mode::Normal;
                self.notify(Level::Info, "unlocked");
            }
            Action::Forward => {
                if let Some(id) = self.focused() {
                    self.deliver(id, Event::Key(key));
                }
            }
            Action::Run(command) => {
                if mode == Mode::Command && !sticky(command) {
                    self.mode = Mode::Normal;
                }
                self.run(command);
            }
            Action::Unbound => {
                self.mode = Mode::Normal;
                if key.code != KeyCode::Esc {
                    let help = self.keymap.main_key(Command::Help);
                    self.notify(
                        Level::Warn,
                        format!(
                            "{} {key} does nothing ({} {help} lists the keys)",
                            self.keymap.prefix, self.keymap.prefix
                        ),
                    );
                }
            }
        }
    }

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
        let body = self.body();
        let dir = |c: Command| match c {
            Command::FocusLeft | Command::ResizeLeft | Command::SwapLeft => Direction::Left,
            Command::FocusRight | Command::ResizeRight | Command::SwapRight => Direction::Right,
            Command::FocusUp | Command::ResizeUp | Command::SwapUp => Direction::Up,
            _ => Direction::Down,
        };
        match command {
            Command::FocusLeft | Command::FocusRight | Command::FocusUp | Command::FocusDown => {
                self.ws_mut().focus_towards(body, dir(command));
            }
            Command::FocusNext => self.ws_mut().focus_next(true),
            Command::FocusPrev => self.ws_mut().focus_next(false),
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
            Command::Zoom => {
                let ws = self.ws_mut();
                ws.zoomed = !ws.zoomed && ws.windows().len() > 1;
            }
            Command::ResizeLeft
            | Command::ResizeRight
            | Command::ResizeUp
            | Command::ResizeDown => {
                self.ws_mut().resize(dir(command), 5);
            }
            Command::SwapLeft | Command::SwapRight | Command::SwapUp | Command::SwapDown => {
                let ws = self.ws_mut();
                if ws.is_floating(ws.focus) {
                    ws.nudge(dir(command), 5);
                } else {
                    ws.swap_towards(body, dir(command));
                }
            }
            Command::ToggleFloatingLayer => self.ws_mut().toggle_floating_layer(),
            Command::ToggleFloat => self.ws_mut().toggle_float(),
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
            Command::RenameTab => {
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
            Command::ResetLayout => {
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
        }
    }

    fn launcher(&mut self, placement: Placement) {
        self.layers.push(Layer::Launcher(Launcher {
            placement,
            list: Default::default(),
            apps: self.catalog.clone(),
        }));
    }

    fn unsaved(&self) -> Option<String> {
        let all: Vec<String> = self.windows.values().filter_map(|a| a.unsaved()).collect();
        (!all.is_empty()).then(|| all.join("; "))
    }

    fn close_window_asking(&mut self, id: WindowId) {
        match self.windows.get(&id).and_then(|a| a.unsaved()) {
            Some(why) => self.layers.push(Layer::Dialog(Dialog {
                asker: Asker::CloseWindow(id),
                question: format!("Close this window? It has {why}."),
                kind: DialogKind::Confirm,
            })),
            None => self.close_window(id),
        }
    }

    pub fn close_window(&mut self, id: WindowId) {
        for ws in &mut self.workspaces {
            ws.remove(id);
        }
        self.windows.remove(&id);
        self.outputs.push(Output::Closed(id));
        if self.ws().is_empty() && self.workspaces.len() > 1 {
            self.workspaces.remove(self.active);
            self.active = self.active.min(self.workspaces.len() - 1);
        }
    }

    fn close_tab_asking(&mut self) {
        if self.workspaces.len() == 1 {
            let quit = self.keymap.main_key(Command::Quit);
            self.notify(
                Level::Warn,
                format!(
                    "the last workspace stays ({} {quit} quits)",
                    self.keymap.prefix
                ),
            );
            return;
        }
        let unsaved: Vec<String> = self
            .ws()
            .windows()
            .iter()
            .filter_map(|id| self.windows.get(id).and_then(|a| a.unsaved()))
            .collect();
        let question = if unsaved.is_empty() {
            format!("Close the workspace {} and its windows?", self.ws().name)
        } else {
            format!(
                "Close the workspace {}? It has {}.",
                self.ws().name,
                unsaved.join("; ")
            )
        };
        self.layers.push(Layer::Dialog(Dialog {
            asker: Asker::CloseTab,
            question,
            kind: DialogKind::Confirm,
        }));
    }

    fn quit_asking(&mut self) {
        match self.unsaved() {
            Some(why) => self.layers.push(Layer::Dialog(Dialog {
                asker: Asker::Quit,
                question: format!("Quit? There are {why}."),
                kind: DialogKind::Confirm,
            })),
            None => self.quit(),
        }
    }

    fn quit(&mut self) {
        self.quitting = true;
        self.outputs.push(Output::Quit);
    }

    fn on_answer(&mut self, answer: Answer) {
        match answer {
            Answer::Confirmed(Asker::App(id, ticket), yes) => {
                self.deliver(id, Event::Confirmed { ticket, yes })
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
            Answer::Chose(Asker::App(id, ticket), index) => {
                self.deliver(id, Event::Chose { ticket, index })
            }
            Answer::Chose(..) => {}
            Answer::Prompted(Asker::App(id, ticket), text) => {
                self.deliver(id, Event::Prompted { ticket, text })
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

    fn palette(&mut self) {
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

    fn help(&mut self) {
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

    fn on_mouse(&mut self, mouse: MouseInput) {
        if !self.layers.is_empty() {
            if mouse.kind == MouseKind::Down
                && matches!(self.layers.last(), Some(Layer::Hint(_) | Layer::Help(_)))
            {
                self.layers.pop();
            }
            return;
        }
        let body = self.body();
        let at = |r: Rect| {
            mouse.column >= r.x
                && mouse.column < r.right()
                && mouse.row >= r.y
                && mouse.row < r.bottom()
        };
        match mouse.kind {
            MouseKind::Down => {
                if mouse.row == 0 {
                    self.click_tab_bar(mouse.column);
                    return;
                }
                let ws = self.ws();
                if !ws.zoomed
                    && let Some(tree) = &ws.tree
                {
                    // A border wins over the window under it, unless a floating window covers it.
                    let covered = self.layout().iter().any(|p| p.floating && at(p.area));
                    if !covered
                        && let Some((_, _, path)) =
                            tree.borders(body).into_iter().find(|(r, _, _)| at(*r))
                    {
                        self.drag = Some(path);
                        return;
                    }
                }
                if let Some(placed) = self.layout().into_iter().rev().find(|p| at(p.area)) {
                    self.ws_mut().focus = placed.id;
                    let inner = inner(placed.area);
                    if at(inner) {
                        self.deliver(
                            placed.id,
                            Event::Mouse(app_kit::Mouse::Click {
                                column: mouse.column - inner.x,
                                row: mouse.row - inner.y,
                            }),
                        );
                    }
                }
            }
            MouseKind::Drag => {
                if let Some(path) = self.drag.clone() {
                    let ws = self.ws_mut();
                    if let Some(tree) = &mut ws.tree {
                        // Which coordinate matters depends on the split: try the node's own.
                        let borders = tree.borders(body);
                        if let Some((_, split, _)) = borders.iter().find(|(_, _, p)| *p == path) {
                            let position = match split {
                                Split::Right => mouse.column,
                                Split::Down => mouse.row,
                            };
                            tree.drag(&path, body, position);
                        }
                    }
                }
            }
            MouseKind::Up => self.drag = None,
            MouseKind::ScrollUp | MouseKind::ScrollDown => {
                if let Some(placed) = self.layout().into_iter().rev().find(|p| at(p.area)) {
                    let inner = inner(placed.area);
                    let (column, row) = (
                        mouse.column.saturating_sub(inner.x),
                        mouse.row.saturating_sub(inner.y),
                    );
                    let event = if mouse.kind == MouseKind::ScrollUp {
                        app_kit::Mouse::ScrollUp { column, row }
                    } else {
                        app_kit::Mouse::ScrollDown { column, row }
                    };
                    self.deliver(placed.id, Event::Mouse(event));
                }
            }
        }
    }

    fn click_tab_bar(&mut self, column: u16) {
        let mut x = 0u16;
        for (i, ws) in self.workspaces.iter().enumerate() {
            let width = render::tab_label(i, &ws.name).chars().count() as u16;
            if column >= x && column < x + width {
                self.active = i;
                return;
            }
            x += width + 1;
        }
    }

    /// Programs running in any window, for the status bar.
    pub fn busy(&self) -> Vec<String> {
        self.windows.values().filter_map(|a| a.busy()).collect()
    }
}

/// Every app that opens by itself, under its own title (before the daemon names them).
fn built_in_apps() -> Vec<Launchable> {
    apps::standalone()
        .map(|kind| Launchable::built_in(kind, kind.title()))
        .collect()
}

/// Keys that are usually pressed several times in a row keep command mode.
fn sticky(command: Command) -> bool {
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

/// A window's content area inside its frame.
pub fn inner(area: Rect) -> Rect {
    area.inner(ratatui::layout::Margin::new(1, 1))
}

#[cfg(test)]
mod tests;
