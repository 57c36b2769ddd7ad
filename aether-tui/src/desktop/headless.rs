//! The desktop's headless apps: bus work that belongs to no window (counting unread
//! chat, saying you are away, listing the apps for the launcher, saving the session)
//! runs as apps with no window, through the same effects and the same bus as every
//! window. Each acts as its own manifest; their answers come back tagged with their
//! [`Owner`], as a window's do.

use app_kit::App;
use apps::chat::Unread;
use apps::people::Away;

use super::catalog::Catalog;
use super::saver::SessionSaver;
use crate::wm::WindowId;

/// One of the desktop's headless apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Headless {
    Unread,
    Away,
    Catalog,
    Session,
}

/// Whose bus work it is: a window's app, or one of the headless apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    Window(WindowId),
    Headless(Headless),
}

impl From<WindowId> for Owner {
    fn from(id: WindowId) -> Owner {
        Owner::Window(id)
    }
}

impl From<Headless> for Owner {
    fn from(which: Headless) -> Owner {
        Owner::Headless(which)
    }
}

impl PartialEq<WindowId> for Owner {
    fn eq(&self, id: &WindowId) -> bool {
        *self == Owner::Window(*id)
    }
}

pub struct HeadlessApps {
    /// Unread chat for the status bar, and notices of mentions and direct messages.
    pub unread: Unread,
    pub away: Away,
    /// The apps the launcher offers, as the daemon lists them.
    pub catalog: Catalog,
    pub session: SessionSaver,
}

impl HeadlessApps {
    pub const ALL: [Headless; 4] = [
        Headless::Unread,
        Headless::Away,
        Headless::Catalog,
        Headless::Session,
    ];

    pub fn new(user: &str) -> HeadlessApps {
        HeadlessApps {
            unread: Unread::new(user),
            away: Away::default(),
            catalog: Catalog::default(),
            session: SessionSaver::default(),
        }
    }

    pub fn app(&self, which: Headless) -> &dyn App {
        match which {
            Headless::Unread => &self.unread,
            Headless::Away => &self.away,
            Headless::Catalog => &self.catalog,
            Headless::Session => &self.session,
        }
    }

    pub fn app_mut(&mut self, which: Headless) -> &mut dyn App {
        match which {
            Headless::Unread => &mut self.unread,
            Headless::Away => &mut self.away,
            Headless::Catalog => &mut self.catalog,
            Headless::Session => &mut self.session,
        }
    }
}
