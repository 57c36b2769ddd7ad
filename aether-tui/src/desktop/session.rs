//! The session: the layout and each window's state as JSON, saved to the daemon's
//! `session.*` service and restored on any terminal signed in as the same user.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Desktop;
use crate::wm::{WindowId, Workspace};

/// The name the desktop saves its session under.
pub const SESSION_NAME: &str = "desktop";
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Saved {
    format: u32,
    active: usize,
    workspaces: Vec<Workspace>,
    /// Window id → its app and the app's own state.
    windows: BTreeMap<u32, SavedWindow>,
    #[serde(default)]
    recent: Vec<String>,
    #[serde(default)]
    theme: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct SavedWindow {
    app: String,
    state: Value,
}

impl Desktop {
    /// What the session keeps now.
    pub fn snapshot(&self) -> Value {
        let saved = Saved {
            format: FORMAT,
            active: self.active,
            workspaces: self.workspaces.clone(),
            windows: self
                .windows
                .iter()
                .map(|(id, app)| {
                    (
                        id.0,
                        SavedWindow {
                            app: app.kind().name().to_owned(),
                            state: app.save(),
                        },
                    )
                })
                .collect(),
            recent: self.recent.clone(),
            theme: Some(self.theme.name.clone()),
        };
        serde_json::to_value(saved).unwrap_or(Value::Null)
    }

    /// Bring back a saved session; false (and nothing changed) if it cannot be read,
    /// so the caller falls back to the default layout. Windows of unknown apps are left
    /// out and the layout closes up around them.
    pub fn restore(&mut self, state: &Value) -> bool {
        let Ok(saved) = serde_json::from_value::<Saved>(state.clone()) else {
            return false;
        };
        if saved.format != FORMAT {
            return false;
        }
        let mut windows = BTreeMap::new();
        for (id, window) in &saved.windows {
            if let Some(kind) = apps::named(&window.app) {
                windows.insert(WindowId(*id), kind.restore(&window.state));
            }
        }
        let keep = |id: WindowId| windows.contains_key(&id);
        let workspaces: Vec<Workspace> = saved
            .workspaces
            .into_iter()
            .filter_map(|ws| ws.retain(&keep))
            .collect();
        if workspaces.is_empty() {
            return false;
        }
        // Windows no workspace shows are dropped too.
        let shown: Vec<WindowId> = workspaces.iter().flat_map(|ws| ws.windows()).collect();
        windows.retain(|id, _| shown.contains(id));
        self.next_id = windows.keys().map(|id| id.0 + 1).max().unwrap_or(1);
        self.windows = windows;
        self.active = saved.active.min(workspaces.len() - 1);
        self.workspaces = workspaces;
        self.recent = saved.recent;
        if let Some(theme) = saved.theme.as_deref().and_then(app_kit::Theme::named) {
            self.theme = theme.shown_like(&self.theme);
        }
        true
    }
}
