//! Where keys and the mouse go: the listing (move, open, go up, the file operations that
//! ask first), the search line while it is open, and clicks and scrolling in the list.

use aether_proto::api::vfs::Kind;

use super::{Ask, Files, Msg, tree};
use app_kit::app::{Effect, Level};
use app_kit::key::{Key, KeyCode, Mouse};
use app_kit::path;

const SEARCH: &str = "Search your files (~ words: by meaning too)";

impl Files {
    pub(super) fn on_key(&mut self, key: Key) -> Vec<Effect> {
        if self.search.is_some() {
            return self.on_search_key(key);
        }
        if self.in_tree
            && let Some(tree) = self.tree.as_mut()
        {
            let said = tree.on_key(key);
            return self.on_tree_key(said);
        }
        match key.code {
            KeyCode::Char('t') => {
                return match self.tree.take() {
                    Some(_) => {
                        self.in_tree = false;
                        Vec::new()
                    }
                    None => {
                        self.in_tree = true;
                        self.open_tree()
                    }
                };
            }
            KeyCode::Tab if self.tree.is_some() => {
                self.in_tree = true;
                if let Some(tree) = self.tree.as_mut() {
                    tree.reveal(&self.cwd);
                }
                return Vec::new();
            }
            _ => {}
        }
        let len = self.entries.len();
        let before = self.list.selected;
        let effects = match (key.code, key.mods.ctrl) {
            (KeyCode::Down | KeyCode::Char('j'), false) => {
                self.list.move_by(1, len);
                Vec::new()
            }
            (KeyCode::Up | KeyCode::Char('k'), false) => {
                self.list.move_by(-1, len);
                Vec::new()
            }
            (KeyCode::PageDown, _) | (KeyCode::Char('d'), true) => {
                self.list.move_by(self.list.page(), len);
                Vec::new()
            }
            (KeyCode::PageUp, _) | (KeyCode::Char('u'), true) => {
                self.list.move_by(-self.list.page(), len);
                Vec::new()
            }
            (KeyCode::Home | KeyCode::Char('g'), false) => {
                self.list.select(0, len);
                Vec::new()
            }
            (KeyCode::End | KeyCode::Char('G'), false) => {
                self.list.select(usize::MAX, len);
                Vec::new()
            }
            (KeyCode::Enter | KeyCode::Right | KeyCode::Char('l'), false) => {
                return self.open_selected();
            }
            (KeyCode::Backspace | KeyCode::Left | KeyCode::Char('h'), false) => return self.up(),
            (KeyCode::Char('~'), false) => return self.go("/".into()),
            (KeyCode::Char('n'), false) => {
                return self.ask(Ask::NewFile, "New file name", String::new());
            }
            (KeyCode::Char('N') | KeyCode::Char('+'), false) => {
                return self.ask(Ask::NewFolder, "New folder name", String::new());
            }
            (KeyCode::Char('r'), false) => return self.ask_about_selected(Ask::Rename),
            (KeyCode::Char('c'), false) => return self.ask_about_selected(Ask::Copy),
            (KeyCode::Char('m'), false) => return self.ask_about_selected(Ask::Move),
            (KeyCode::Char('D') | KeyCode::Delete, false) => return self.confirm_delete(),
            (KeyCode::Char('/'), false) => {
                return self.ask(Ask::Search, SEARCH, String::new());
            }
            (KeyCode::Char('y'), false) => {
                return match self.selected_path() {
                    Some(p) => vec![
                        Effect::Copy(p.clone()),
                        Effect::notify(Level::Info, format!("copied {p}")),
                    ],
                    None => Vec::new(),
                };
            }
            (KeyCode::Char('R') | KeyCode::F(5), false) => {
                let mut effects = self.list_folder();
                effects.extend(self.refresh_usage());
                return effects;
            }
            _ => return Vec::new(),
        };
        if self.list.selected != before {
            let mut effects = effects;
            effects.extend(self.preview_selected());
            return effects;
        }
        effects
    }

    /// What a key in the folder tree asks of the explorer.
    fn on_tree_key(&mut self, said: tree::TreeKey) -> Vec<Effect> {
        match said {
            tree::TreeKey::Nothing => Vec::new(),
            tree::TreeKey::Load(folder) => self.list_in_tree(folder),
            tree::TreeKey::Show(folder) if folder != self.cwd => self.go(folder),
            tree::TreeKey::Show(_) => Vec::new(),
            tree::TreeKey::Leave => {
                self.in_tree = false;
                Vec::new()
            }
        }
    }

    fn ask_about_selected(&mut self, make: fn(String) -> Ask) -> Vec<Effect> {
        let Some(from) = self.selected_path() else {
            return Vec::new();
        };
        let (question, initial) = match make(String::new()) {
            Ask::Rename(_) => ("Rename to", path::file_name(&from).to_owned()),
            Ask::Copy(_) => ("Copy to", from.clone()),
            _ => ("Move to", from.clone()),
        };
        self.ask(make(from), question, initial)
    }

    fn confirm_delete(&mut self) -> Vec<Effect> {
        let Some(entry) = self.selected().cloned() else {
            return Vec::new();
        };
        let target = path::join(&self.cwd, &entry.name);
        let dir = entry.kind == Kind::Dir;
        let question = if dir {
            format!("Delete the folder {target} and everything in it?")
        } else {
            format!("Delete {target}?")
        };
        let confirm = self.requests.confirm(question, move |yes| Msg::Delete {
            path: target,
            dir,
            yes,
        });
        vec![confirm]
    }

    fn on_search_key(&mut self, key: Key) -> Vec<Effect> {
        let Some(search) = self.search.as_mut() else {
            return Vec::new();
        };
        let len = search.hits.len();
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => {
                self.search = None;
                self.status = None;
            }
            KeyCode::Down | KeyCode::Char('j') => search.list.move_by(1, len),
            KeyCode::Up | KeyCode::Char('k') => search.list.move_by(-1, len),
            KeyCode::PageDown => search.list.move_by(search.list.page(), len),
            KeyCode::PageUp => search.list.move_by(-search.list.page(), len),
            KeyCode::Char('/') => {
                let query = search.query.clone();
                return self.ask(Ask::Search, SEARCH, query);
            }
            KeyCode::Enter => {
                if let Some(hit) = search.hits.get(search.list.selected) {
                    return vec![Effect::Open {
                        app: crate::opener_for(&hit.path),
                        path: hit.path.clone(),
                        line: hit.line,
                    }];
                }
            }
            _ => {}
        }
        Vec::new()
    }

    pub(super) fn on_mouse(&mut self, mouse: Mouse) -> Vec<Effect> {
        let len = self.entries.len();
        match mouse {
            Mouse::ScrollDown { .. } => self.list.move_by(3, len),
            Mouse::ScrollUp { .. } => self.list.move_by(-3, len),
            Mouse::Click { row, .. } => {
                // Row 0 is the folder's path; entries start below it.
                let Some(index) = (row as usize).checked_sub(1) else {
                    return Vec::new();
                };
                let index = self.list.offset() + index;
                if index >= len {
                    return Vec::new();
                }
                if index == self.list.selected {
                    return self.open_selected();
                }
                self.list.select(index, len);
            }
        }
        self.preview_selected()
    }
}
