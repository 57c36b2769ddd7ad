//! The desktop's state and everything that changes it, with no I/O: input and the time
//! in, bus work and clipboard writes out (`Output`), so the whole shell runs in tests
//! without a terminal, a clock or a daemon (a test checks it calls none). `app.rs` feeds
//! it; `render.rs` draws it. Windows are opened and closed in `windows.rs`, input is
//! routed in `routing.rs`, commands run in `run.rs`; bus work that belongs to no window
//! runs as headless apps (`headless.rs`), through the same effects as every window.

mod catalog;
mod headless;
mod layers;
mod notifications;
mod render;
mod routing;
mod run;
mod saver;
mod session;
mod windows;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use app_kit::{App, AppKind, Clock, Effect, Event, Key, Level, Theme};
use ratatui::layout::Rect;
use serde_json::Value;

use crate::keymap::{Keymap, Mode};
use crate::wm::{Placed, WindowId, Workspace};
pub use headless::{Headless, HeadlessApps, Owner};
pub use layers::{
    Answer, Asker, Dialog, DialogKind, Help, Launchable, Launcher, Layer, Outcome, PaletteItem,
    PaletteLayer, Placement,
};
pub use notifications::{Notice, Notifications};
pub use session::SESSION_NAME;

/// Files remembered for the palette.
const RECENT_FILES: usize = 50;
/// After this long without a key, a click or a paste, presence says you are away.
pub const AWAY_AFTER: Duration = Duration::from_secs(5 * 60);
/// How long the layout must be still before it is saved.
pub const SAVE_AFTER: Duration = Duration::from_millis(800);

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
    /// A bus effect (request, subscribe, unsubscribe) to run as its owner's app.
    Bus(Owner, AppKind, Effect),
    /// The window closed: drop its subscriptions.
    Closed(WindowId),
    Copy(String),
    /// Keep this theme as a theme file beside the settings file.
    SaveTheme(Box<Theme>),
    Quit,
}

/// The connection as the status bar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Up,
    Reconnecting(u32),
    Down(String),
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
    pub notifications: Notifications,
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
    /// Bus work that belongs to no window.
    pub headless: HeadlessApps,
    /// When the layout is saved if nothing else changes it.
    save_at: Option<Instant>,
}

impl Desktop {
    /// A desktop with no windows yet; `now` is the time it starts at.
    pub fn new(keymap: Keymap, theme: Theme, user: String, now: Instant) -> Desktop {
        Desktop {
            windows: BTreeMap::new(),
            workspaces: Vec::new(),
            active: 0,
            next_id: 1,
            mode: Mode::Normal,
            keymap,
            theme,
            layers: Vec::new(),
            notifications: Notifications::default(),
            link: LinkState::Up,
            user: user.clone(),
            screen: Rect::new(0, 0, 80, 24),
            outputs: Vec::new(),
            recent: Vec::new(),
            drag: None,
            now,
            clock: Clock::default(),
            last_input: now,
            away: false,
            quitting: false,
            catalog: built_in_apps(),
            headless: HeadlessApps::new(&user),
            save_at: None,
        }
    }

    /// Start the headless apps and every window's app (after a restore or the default
    /// layout); a layout that differs from the one saved is saved soon.
    pub fn start(&mut self) {
        for which in HeadlessApps::ALL {
            let effects = self.headless.app_mut(which).start();
            self.apply(which, effects);
        }
        let ids: Vec<WindowId> = self.windows.keys().copied().collect();
        for id in ids {
            if let Some(app) = self.windows.get_mut(&id) {
                let effects = app.start();
                self.apply(id, effects);
            }
        }
        if self.headless.session.differs(&self.snapshot()) {
            self.save_at.get_or_insert(self.now + SAVE_AFTER);
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

    /// The session as the daemon has it (loaded at start): only what differs is saved.
    pub fn saved(&mut self, state: Value) {
        self.headless.session.saved(state);
    }

    /// Something changed: the layout is saved once it has been still for `SAVE_AFTER`.
    pub fn changed(&mut self) {
        self.save_at.get_or_insert(self.now + SAVE_AFTER);
    }

    /// The time is `now`: notices expire, you may count as away, a still layout is saved.
    /// True if the screen changed.
    pub fn tick(&mut self, now: Instant) -> bool {
        self.now = now;
        let expired = self.notifications.expire(now);
        self.check_idle(now);
        if self.save_at.is_some_and(|at| at <= now) {
            self.save_at = None;
            self.save_now();
        }
        expired
    }

    /// When [`Desktop::tick`] has something to do, for the event loop's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.notifications.next_expiry(),
            self.away_at(),
            self.save_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Save the session now if it differs from the last save (also on the way out).
    pub fn save_now(&mut self) {
        let effects = self.headless.session.save_state(self.snapshot());
        self.apply(Headless::Session, effects);
    }

    /// Why the last save failed, if it did.
    pub fn save_failed(&self) -> Option<&str> {
        self.headless.session.failed()
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
    pub(super) fn touched(&mut self) {
        self.last_input = self.now;
        if self.away {
            self.away = false;
            self.say_away(false);
        }
    }

    /// Tell presence you are away, or back (the headless `Away` app does the asking).
    pub(super) fn say_away(&mut self, away: bool) {
        let effects = self.headless.away.set(away);
        self.apply(Headless::Away, effects);
    }

    pub fn notify(&mut self, level: Level, text: impl Into<String>) {
        self.notifications.push(level, text.into(), self.now);
    }

    /// Hand an event to a window's app (or a headless app) and carry out what it asks.
    pub fn deliver(&mut self, owner: impl Into<Owner>, event: Event) {
        let owner = owner.into();
        if owner == Owner::Headless(Headless::Unread) {
            self.headless.unread.chat_in_view = self
                .focused()
                .and_then(|f| self.windows.get(&f))
                .is_some_and(|app| app.kind() == apps::chat::APP);
        }
        let Some(app) = self.app_mut(owner) else {
            return; // the window closed meanwhile: the answer is stale
        };
        let effects = app.update(event);
        self.apply(owner, effects);
        if let Some(listed) = self.headless.catalog.take_listed() {
            self.set_catalog(&listed);
        }
    }

    pub(super) fn app_mut(&mut self, owner: Owner) -> Option<&mut dyn App> {
        match owner {
            Owner::Window(id) => self
                .windows
                .get_mut(&id)
                .map(|app| &mut **app as &mut dyn App),
            Owner::Headless(which) => Some(self.headless.app_mut(which)),
        }
    }

    pub(super) fn kind_of(&self, owner: Owner) -> Option<AppKind> {
        match owner {
            Owner::Window(id) => self.windows.get(&id).map(|app| app.kind()),
            Owner::Headless(which) => Some(self.headless.app(which).kind()),
        }
    }

    /// Tell every app, headless or in a window, that the connection is back.
    pub fn reconnected(&mut self) {
        for which in HeadlessApps::ALL {
            self.deliver(which, Event::Reconnected);
        }
        let ids: Vec<WindowId> = self.windows.keys().copied().collect();
        for id in ids {
            self.deliver(id, Event::Reconnected);
        }
    }

    /// Carry out what an app asked: the same for every window and headless app.
    pub(super) fn apply(&mut self, owner: impl Into<Owner>, effects: Vec<Effect>) {
        let owner = owner.into();
        let Some(kind) = self.kind_of(owner) else {
            return;
        };
        for effect in effects {
            match effect {
                Effect::Request { .. } | Effect::Subscribe { .. } | Effect::Unsubscribe { .. } => {
                    self.outputs.push(Output::Bus(owner, kind, effect));
                }
                Effect::Open { app, path, line } => self.open_path(app, path, line),
                Effect::Notify { level, text } => self.notify(level, text),
                Effect::Confirm { ticket, question } => self.layers.push(Layer::Dialog(Dialog {
                    asker: Asker::App(owner, ticket),
                    question,
                    kind: DialogKind::Confirm,
                })),
                Effect::Choose {
                    ticket,
                    question,
                    options,
                } => self.layers.push(Layer::Dialog(Dialog {
                    asker: Asker::App(owner, ticket),
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
                    asker: Asker::App(owner, ticket),
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
                    asker: Asker::App(owner, ticket),
                    question,
                    kind: DialogKind::Prompt {
                        input: app_kit::widgets::LineInput::new(initial),
                        secret,
                    },
                })),
                Effect::Copy(text) => self.outputs.push(Output::Copy(text)),
                Effect::AppsChanged => {
                    let effects = self.headless.catalog.refresh();
                    self.apply(Headless::Catalog, effects);
                }
                Effect::SetTheme(theme) => {
                    // The colours change; how they are shown (palette, glyphs) stays.
                    self.theme = theme.as_ref().clone().shown_like(&self.theme);
                    self.outputs.push(Output::SaveTheme(theme));
                }
            }
        }
    }

    pub(super) fn ws(&self) -> &Workspace {
        &self.workspaces[self.active]
    }

    pub(super) fn ws_mut(&mut self) -> &mut Workspace {
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

/// A window's content area inside its frame.
pub fn inner(area: Rect) -> Rect {
    area.inner(ratatui::layout::Margin::new(1, 1))
}

#[cfg(test)]
mod tests;
