//! Windows: opening an app in one (where it goes, what it shows), closing one or a
//! workspace (asking first when something is unsaved), the default layout, and the
//! launcher's list of apps.

use aether_proto::api::apps::AppInfo;
use app_kit::{App, AppKind, Event, Level};

use super::{
    Asker, Desktop, Dialog, DialogKind, Launchable, Layer, Output, Placement, RECENT_FILES,
    built_in_apps,
};
use crate::commands::Command;
use crate::wm::{Direction, Split, WindowId, Workspace};

impl Desktop {
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

    pub(super) fn add_window(&mut self, app: Box<dyn App>) -> WindowId {
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
    pub(super) fn auto_split(&self) -> Split {
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

    /// Show a path in a window of `app` in this workspace (the focused one first), or a new one.
    /// A program (`path` is the installed app's id) gets a window of its own each time.
    pub(super) fn open_path(&mut self, app: AppKind, path: String, line: Option<usize>) {
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

    pub(super) fn unsaved(&self) -> Option<String> {
        let all: Vec<String> = self.windows.values().filter_map(|a| a.unsaved()).collect();
        (!all.is_empty()).then(|| all.join("; "))
    }

    pub(super) fn close_window_asking(&mut self, id: WindowId) {
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

    pub(super) fn close_tab_asking(&mut self) {
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
}
