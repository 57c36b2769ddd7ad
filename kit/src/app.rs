//! The contract between an app and its host (the desktop): events in, effects out,
//! a view drawn from state alone.
//!
//! An app never holds a connection. It asks for bus work with [`Effect::Request`] and
//! friends, each carrying a [`Ticket`] it picked; the host runs the request through the
//! window's own handle (fixed to the app's manifest id, so the permission manager
//! checks each window as its app) and hands the answer back as [`Event::Answer`] with
//! the same ticket. An app keeps the ticket it still waits for and drops any other
//! answer, so a slow, stale answer is never drawn.

use aether_proto::ErrorBody;
use aether_proto::api::Call;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use serde_json::Value;

use crate::clock::Clock;
use crate::key::{Key, Mouse};
use crate::theme::Theme;

/// Names one piece of work an app asked for; answers carry it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ticket(pub u64);

/// Hands out an app's tickets.
#[derive(Debug, Default)]
pub(crate) struct Tickets {
    last: u64,
}

impl Tickets {
    pub(crate) fn issue(&mut self) -> Ticket {
        self.last += 1;
        Ticket(self.last)
    }
}

/// What happens to an app.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Key(Key),
    Paste(String),
    Mouse(Mouse),
    /// The answer to [`Effect::Request`].
    Answer {
        ticket: Ticket,
        result: Result<Payload, ErrorBody>,
    },
    /// A message on a subscription made with [`Effect::Subscribe`].
    Delivery {
        ticket: Ticket,
        topic: String,
        data: Value,
    },
    /// A subscription made with [`Effect::Subscribe`] is in place: what is published from
    /// now on arrives (so a program started now loses none of its output).
    Subscribed {
        ticket: Ticket,
    },
    /// A subscription could not be made (or was lost for good).
    SubscribeFailed {
        ticket: Ticket,
        error: ErrorBody,
    },
    /// The user answered [`Effect::Confirm`].
    Confirmed {
        ticket: Ticket,
        yes: bool,
    },
    /// The user picked one of [`Effect::Choose`]'s (or [`Effect::Review`]'s) options;
    /// `None` when cancelled.
    Chose {
        ticket: Ticket,
        index: Option<usize>,
    },
    /// The user answered [`Effect::Prompt`]; `None` when cancelled.
    Prompted {
        ticket: Ticket,
        text: Option<String>,
    },
    /// Open this path (the editor opens a file, at `line` when given; the explorer
    /// shows a folder).
    OpenPath {
        path: String,
        line: Option<usize>,
    },
    /// The connection to the daemon came back: what was shown may be stale.
    Reconnected,
}

/// What an app asks its host to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A bus request as this window's app; answered with [`Event::Answer`].
    Request {
        ticket: Ticket,
        topic: &'static str,
        data: Value,
    },
    /// Subscribe to a pattern as this window's app; messages come as [`Event::Delivery`].
    Subscribe {
        ticket: Ticket,
        pattern: String,
    },
    Unsubscribe {
        ticket: Ticket,
    },
    /// Open a path in another app's window (a file in the editor, a folder in the explorer).
    Open {
        app: AppKind,
        path: String,
        line: Option<usize>,
    },
    /// A notification in the desktop's notification layer.
    Notify {
        level: Level,
        text: String,
    },
    /// Ask yes or no in a dialog above every window.
    Confirm {
        ticket: Ticket,
        question: String,
    },
    /// Offer a choice between a few options in a dialog above every window.
    Choose {
        ticket: Ticket,
        question: String,
        options: Vec<String>,
    },
    /// A decision to review before making it: the question in words first, then `detail`
    /// in full (scrollable, never cut), then the options; answered with [`Event::Chose`]
    /// (`None` when dismissed).
    Review {
        ticket: Ticket,
        question: String,
        detail: String,
        options: Vec<String>,
    },
    /// Ask for one line of text in a dialog above every window (`secret`: shown as dots).
    Prompt {
        ticket: Ticket,
        question: String,
        initial: String,
        secret: bool,
    },
    /// Put text on the clipboard (OSC 52 or the configured copy command).
    Copy(String),
    /// Use this theme from now on (the desktop keeps it as a theme file too).
    SetTheme(Box<crate::theme::Theme>),
    /// Apps were installed, updated or removed: the desktop lists them again (its launcher).
    AppsChanged,
}

impl Effect {
    /// A typed request of `aether_proto::api`.
    pub fn request<C: Call>(ticket: Ticket, call: &C) -> Effect {
        Effect::Request {
            ticket,
            topic: C::TOPIC,
            data: serde_json::to_value(call).unwrap_or(Value::Null),
        }
    }

    pub fn notify(level: Level, text: impl Into<String>) -> Effect {
        Effect::Notify {
            level,
            text: text.into(),
        }
    }
}

/// An answer's payload as the daemon sent it, JSON text: decoded once, straight into the
/// call's answer type (a 10,000-entry listing is ~800 KB; going through a `Value` first
/// doubled the time it took).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload(std::sync::Arc<str>);

impl Payload {
    pub fn new(json: &str) -> Payload {
        Payload(json.into())
    }

    pub fn json(&self) -> &str {
        &self.0
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Payload {
        Payload(value.to_string().into())
    }
}

/// Decode an answer as call `C`'s answer type.
pub fn decode<C: Call>(result: Result<Payload, ErrorBody>) -> Result<C::Answer, ErrorBody> {
    let payload = result?;
    serde_json::from_str(payload.json()).map_err(|e| {
        ErrorBody::new(
            aether_proto::ErrorCode::Internal,
            format!("the answer to {} did not decode: {e}", C::TOPIC),
        )
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// What one app is: the entry an app's folder gives the registry (`apps::APPS`).
pub struct Registration {
    /// The name saved in the session and typed in the palette.
    pub name: &'static str,
    pub title: &'static str,
    /// The manifest id its windows act as, so the permission manager checks each window
    /// as that app (settings acts as the desktop; chat and people share one manifest).
    pub manifest: &'static str,
    /// Whether it opens with nothing more said (the launcher, the palette, `open_*`); a
    /// program window, say, needs an installed app's id.
    pub standalone: bool,
    /// The key that opens it in the launcher.
    pub launcher_key: Option<char>,
    /// The file extensions it opens (lower case, no dot); `*`: any file no other app claims.
    pub opens: &'static [&'static str],
    /// A new window; `arg` is what to show (a path, a room, an installed app's id).
    pub launch: fn(Option<&str>) -> Box<dyn App>,
    /// A window as the session saved it ([`App::save`]).
    pub restore: fn(&Value) -> Box<dyn App>,
}

/// Which app a window runs: a handle on its [`Registration`]. Two kinds are the same
/// app when their names are.
#[derive(Clone, Copy)]
pub struct AppKind(&'static Registration);

impl AppKind {
    pub const fn of(registration: &'static Registration) -> AppKind {
        AppKind(registration)
    }

    pub fn name(self) -> &'static str {
        self.0.name
    }

    pub fn title(self) -> &'static str {
        self.0.title
    }

    pub fn manifest(self) -> &'static str {
        self.0.manifest
    }

    pub fn standalone(self) -> bool {
        self.0.standalone
    }

    pub fn launcher_key(self) -> Option<char> {
        self.0.launcher_key
    }

    pub fn opens(self) -> &'static [&'static str] {
        self.0.opens
    }

    pub fn launch(self, arg: Option<&str>) -> Box<dyn App> {
        (self.0.launch)(arg)
    }

    pub fn restore(self, state: &Value) -> Box<dyn App> {
        (self.0.restore)(state)
    }
}

impl PartialEq for AppKind {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for AppKind {}

impl std::hash::Hash for AppKind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state)
    }
}

impl std::fmt::Debug for AppKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a view may know besides its app's state.
pub struct ViewCx<'a> {
    pub theme: &'a Theme,
    /// This window has the keyboard.
    pub focused: bool,
    /// The time now, for "5 min ago" and local times of day.
    pub clock: Clock,
}

/// One key an app offers, for the help overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    pub keys: &'static str,
    pub what: &'static str,
}

pub const fn hint(keys: &'static str, what: &'static str) -> Hint {
    Hint { keys, what }
}

/// The [`App`] methods every app built with the kit writes the same way: its kind (its
/// registration), `update` through [`crate::route`], and `view` through its own
/// `view::render(app, area, buf, cx)`: `app_kit::app_plumbing!(APP);` in its `impl App`.
#[macro_export]
macro_rules! app_plumbing {
    ($kind:expr) => {
        fn kind(&self) -> $crate::AppKind {
            $kind
        }

        fn update(&mut self, event: $crate::Event) -> Vec<$crate::Effect> {
            $crate::route(self, event)
        }

        fn view(
            &self,
            area: ratatui::layout::Rect,
            buf: &mut ratatui::buffer::Buffer,
            cx: &$crate::ViewCx,
        ) {
            view::render(self, area, buf, cx)
        }
    };
}

/// The [`App`] methods of a headless app (one the desktop runs with no window): its kind,
/// its registration's title, and no view, keys or saved state:
/// `app_kit::headless_plumbing!(KIND);` in its `impl App`.
#[macro_export]
macro_rules! headless_plumbing {
    ($kind:expr) => {
        fn kind(&self) -> $crate::AppKind {
            $kind
        }

        fn title(&self) -> String {
            $kind.title().to_owned()
        }

        fn view(
            &self,
            _: ratatui::layout::Rect,
            _: &mut ratatui::buffer::Buffer,
            _: &$crate::ViewCx,
        ) {
        }

        fn hints(&self) -> Vec<$crate::Hint> {
            Vec::new()
        }

        fn save(&self) -> serde_json::Value {
            serde_json::Value::Null
        }
    };
}

/// An app: state changed only by [`App::update`], drawn only by [`App::view`].
pub trait App {
    fn kind(&self) -> AppKind;

    /// The window's title (the file open, the folder shown).
    fn title(&self) -> String;

    /// The first effects, when the window opens or is restored.
    fn start(&mut self) -> Vec<Effect>;

    fn update(&mut self, event: Event) -> Vec<Effect>;

    fn view(&self, area: Rect, buf: &mut Buffer, cx: &ViewCx);

    /// The keys this app offers now, for `?`.
    fn hints(&self) -> Vec<Hint>;

    /// What the session keeps of this window, to restore it with the registry's `restore`.
    fn save(&self) -> Value;

    /// Whether closing now would lose something (unsaved edits).
    fn unsaved(&self) -> Option<String> {
        None
    }

    /// What runs in this window now (a program), for the status bar.
    fn busy(&self) -> Option<String> {
        None
    }

    /// Paths this window knows of, for the palette's files.
    fn paths(&self) -> Vec<String> {
        Vec::new()
    }
}
