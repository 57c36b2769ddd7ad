//! Saving the session, a headless app: the desktop hands it its snapshot when the layout
//! has been still for a moment (and once more on the way out); it saves what differs
//! from the last save (last write wins, so two terminals of one user take turns).

use aether_proto::api::session;
use app_kit::{Answer, App, AppKind, Effect, Event, Level, Registration, Requests};
use serde_json::Value;

use super::SESSION_NAME;

/// Its entry (not in the apps' registry: nobody opens it).
pub const SESSION: AppKind = AppKind::of(&Registration {
    name: "session",
    title: "Session",
    manifest: "desktop",
    standalone: false,
    launcher_key: None,
    opens: &[],
    launch: |_| Box::new(SessionSaver::default()),
    restore: |_| Box::new(SessionSaver::default()),
});

#[derive(Default)]
pub struct SessionSaver {
    requests: Requests<Answer<session::Save>>,
    /// The state last sent (`Null`: none yet, so a first layout is saved).
    last: Value,
    /// Why the last save failed, if it did.
    failed: Option<String>,
}

impl SessionSaver {
    /// The session as the daemon has it now (loaded at start).
    pub fn saved(&mut self, state: Value) {
        self.last = state;
    }

    /// Whether `state` differs from what was saved last.
    pub fn differs(&self, state: &Value) -> bool {
        *state != self.last
    }

    /// Save `state` if it differs from the last save.
    pub fn save_state(&mut self, state: Value) -> Vec<Effect> {
        if !self.differs(&state) {
            return Vec::new();
        }
        self.last = state.clone();
        let save = session::Save {
            name: SESSION_NAME.into(),
            state,
        };
        vec![self.requests.call(&save, |answer| answer)]
    }

    /// Why the last save failed, if it did.
    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }
}

impl App for SessionSaver {
    app_kit::headless_plumbing!(SESSION);

    fn start(&mut self) -> Vec<Effect> {
        Vec::new()
    }

    fn update(&mut self, event: Event) -> Vec<Effect> {
        match self.requests.reply(event) {
            Ok(Some(Ok(_))) => {
                self.failed = None;
                Vec::new()
            }
            Ok(Some(Err(e))) => {
                let text = format!("layout not saved: {}", e.msg);
                self.failed = Some(e.msg);
                vec![Effect::notify(Level::Warn, text)]
            }
            _ => Vec::new(),
        }
    }
}
