//! The Code Editor: tabs of open files in `ratatui-textarea`, find and replace, undo and
//! redo, saving through the VFS with its version check (reload / overwrite / keep both /
//! show the diff on a conflict), and reloading by itself a file changed elsewhere while
//! it has no edits.

mod architect;
mod doc;
mod view;

use aether_proto::ErrorCode;
use aether_proto::api::{Event as _, ai, vfs};
use serde_json::Value;

use app_kit::path;
use app_kit::widgets::{LineEdit, LineInput, human_bytes};
use app_kit::{
    Answer, App, AppKind, Effect, Event, Hint, Key, KeyCode, Level, Mods, Mouse, Registration,
    Replies, Requests, Ticket, hint,
};
pub(crate) use doc::{Doc, DocState};

/// The largest file the editor opens (one read of the daemon's chunk limit).
pub const MAX_FILE_BYTES: usize = 2 << 20;

/// The registry's entry for this app.
pub const APP: AppKind = AppKind::of(&Registration {
    name: "editor",
    title: "Code Editor",
    manifest: "editor",
    standalone: true,
    launcher_key: Some('e'),
    opens: &["*"],
    launch: |arg| Box::new(Editor::new(arg)),
    restore: |state| Box::new(Editor::restore(state)),
});

pub struct Editor {
    requests: Requests<Msg>,
    docs: Vec<Doc>,
    active: usize,
    find: Option<FindBar>,
    /// A diff shown over the text (after a conflict), until Esc.
    diff: Option<Vec<DiffLine>>,
    message: Option<(Level, String)>,
    events: Option<Ticket>,
    /// The Architect panel, while it is open.
    architect: Option<architect::Architect>,
    /// The subscription to AI streams, made with the first use of the Architect.
    ai_events: Option<Ticket>,
}

pub(crate) struct FindBar {
    query: LineInput,
    replace: Option<LineInput>,
    on_replace: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DiffLine {
    Same(String),
    Mine(String),
    Theirs(String),
}

/// What the session keeps of an editor: its files and cursors (not unsaved text).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Saved {
    tabs: Vec<SavedTab>,
    active: usize,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SavedTab {
    path: String,
    #[serde(default)]
    row: usize,
    #[serde(default)]
    col: usize,
}

/// What the app's asks come back as.
pub enum Msg {
    /// A file read into the doc at this path (at `line`, when given).
    Loaded {
        path: String,
        line: Option<usize>,
        answer: Answer<vfs::Read>,
    },
    Saved {
        path: String,
        text: String,
        answer: Answer<vfs::Write>,
    },
    /// The other version, read to show the diff.
    Theirs(String, Answer<vfs::Read>),
    /// The path to open, as typed.
    Open(Option<String>),
    /// The path to save an untitled file at, as typed.
    SaveAs(Option<String>),
    /// The choice that resolves a failed save: reload, overwrite, keep both, the diff.
    Conflict(String, Option<usize>),
    /// Close the tab and lose its changes?
    Close(bool),
    /// The Architect's instruction, as typed.
    Instruct(Option<String>),
    /// `ai.generate` answered the Architect.
    Generated(Answer<ai::Generate>),
    /// An answer that changes nothing (cancelling a stream).
    Quiet,
    /// After a reconnect: has the file changed while we were away?
    Rechecked(String, Answer<vfs::Stat>),
}

const CONFLICT_OPTIONS: [&str; 4] = ["Reload theirs", "Overwrite", "Keep both", "Show the diff"];

impl Editor {
    pub fn new(file: Option<&str>) -> Editor {
        let mut editor = Editor {
            requests: Requests::new(),
            docs: Vec::new(),
            active: 0,
            find: None,
            diff: None,
            message: None,
            events: None,
            architect: None,
            ai_events: None,
        };
        match file {
            Some(file) => editor.docs.push(Doc::loading(path::normalize(file))),
            None => editor.docs.push(Doc::scratch()),
        }
        editor
    }

    pub fn restore(state: &Value) -> Editor {
        let saved: Saved = serde_json::from_value(state.clone()).unwrap_or_default();
        let mut editor = Editor::new(None);
        let tabs: Vec<Doc> = saved
            .tabs
            .into_iter()
            .map(|tab| {
                let mut doc = Doc::loading(path::normalize(&tab.path));
                doc.restore_cursor = Some((tab.row, tab.col));
                doc
            })
            .collect();
        if !tabs.is_empty() {
            editor.docs = tabs;
            editor.active = saved.active.min(editor.docs.len() - 1);
        }
        editor
    }

    fn doc(&self) -> &Doc {
        &self.docs[self.active]
    }

    fn doc_mut(&mut self) -> &mut Doc {
        &mut self.docs[self.active]
    }

    fn say(&mut self, level: Level, text: impl Into<String>) {
        self.message = Some((level, text.into()));
    }

    fn load(&mut self, path: String, line: Option<usize>) -> Vec<Effect> {
        let call = vfs::Read {
            path: path.clone(),
            length: Some(MAX_FILE_BYTES),
            ..Default::default()
        };
        let read = self
            .requests
            .call(&call, move |answer| Msg::Loaded { path, line, answer });
        vec![read]
    }

    /// Open `path` in a tab (the one it is in, else a new one) at `line`.
    fn open(&mut self, path: String, line: Option<usize>) -> Vec<Effect> {
        let path = path::normalize(&path);
        if let Some(index) = self
            .docs
            .iter()
            .position(|d| d.path.as_deref() == Some(&path))
        {
            self.active = index;
            if let Some(line) = line {
                self.doc_mut().jump_to_line(line);
            }
            return Vec::new();
        }
        // An untouched scratch tab gives its place to the file.
        if self.docs.len() == 1 && self.docs[0].is_blank_scratch() {
            self.docs.clear();
        }
        self.docs.push(Doc::loading(path.clone()));
        self.active = self.docs.len() - 1;
        self.load(path, line)
    }

    fn save(&mut self, force: bool) -> Vec<Effect> {
        let doc = self.doc();
        if !doc.editable() {
            return Vec::new();
        }
        let Some(path) = doc.path.clone() else {
            let ask = self
                .requests
                .prompt("Save as", "/untitled.txt", false, Msg::SaveAs);
            return vec![ask];
        };
        let text = doc.text();
        let if_version = if force { None } else { doc.version.clone() };
        let if_absent = !force && doc.version.is_none();
        self.write(path, text, if_version, if_absent)
    }

    fn write(
        &mut self,
        path: String,
        text: String,
        if_version: Option<String>,
        if_absent: bool,
    ) -> Vec<Effect> {
        self.say(Level::Info, format!("saving {path}…"));
        let call = vfs::Write {
            path: path.clone(),
            data: text.clone(),
            if_version,
            if_absent,
            parents: true,
            ..Default::default()
        };
        let write = self
            .requests
            .call(&call, move |answer| Msg::Saved { path, text, answer });
        vec![write]
    }

    fn close_tab(&mut self, force: bool) -> Vec<Effect> {
        if !force && self.doc().dirty {
            let question = format!("Close {} and lose its changes?", self.doc().name());
            return vec![self.requests.confirm(question, Msg::Close)];
        }
        self.docs.remove(self.active);
        if self.docs.is_empty() {
            self.docs.push(Doc::scratch());
        }
        self.active = self.active.min(self.docs.len() - 1);
        Vec::new()
    }

    fn on_key(&mut self, key: Key) -> Vec<Effect> {
        if self.architect.is_some() {
            return architect::on_key(self, key);
        }
        if self.diff.is_some() {
            if matches!(key.code, KeyCode::Esc | KeyCode::Char('q')) {
                self.diff = None;
            }
            return Vec::new();
        }
        if self.find.is_some() {
            return self.on_find_key(key);
        }
        let ctrl = key.mods.ctrl && !key.mods.alt;
        match key.code {
            KeyCode::Char('s') if ctrl => return self.save(false),
            KeyCode::Char('o') if ctrl => {
                let initial = self
                    .doc()
                    .path
                    .as_deref()
                    .map(|p| format!("{}/", path::parent(p).trim_end_matches('/')))
                    .unwrap_or_else(|| "/".into());
                return vec![self.requests.prompt("Open file", initial, false, Msg::Open)];
            }
            KeyCode::Char('n') if ctrl => {
                self.docs.push(Doc::scratch());
                self.active = self.docs.len() - 1;
                return Vec::new();
            }
            KeyCode::Char('w') if ctrl => return self.close_tab(false),
            KeyCode::Char('f') if ctrl => {
                self.find = Some(FindBar {
                    query: LineInput::default(),
                    replace: None,
                    on_replace: false,
                });
                return Vec::new();
            }
            KeyCode::Char('r') if ctrl => {
                self.find = Some(FindBar {
                    query: LineInput::default(),
                    replace: Some(LineInput::default()),
                    on_replace: false,
                });
                return Vec::new();
            }
            KeyCode::PageDown if ctrl => {
                self.active = (self.active + 1) % self.docs.len();
                return Vec::new();
            }
            KeyCode::PageUp if ctrl => {
                self.active = (self.active + self.docs.len() - 1) % self.docs.len();
                return Vec::new();
            }
            KeyCode::Char('a') if key.mods == Mods::ALT => return architect::ask(self),
            KeyCode::Char('r') if key.mods == Mods::ALT => {
                // Reload from the daemon, dropping edits (asked for explicitly).
                if let Some(path) = self.doc().path.clone() {
                    return self.load(path, None);
                }
                return Vec::new();
            }
            _ => {}
        }
        self.message = None;
        self.doc_mut().input(key);
        Vec::new()
    }

    fn on_find_key(&mut self, key: Key) -> Vec<Effect> {
        let Some(find) = self.find.as_mut() else {
            return Vec::new();
        };
        if key.code == KeyCode::Tab && find.replace.is_some() {
            find.on_replace = !find.on_replace;
            return Vec::new();
        }
        if key.code == KeyCode::Char('a') && key.mods == Mods::ALT {
            let query = find.query.text().to_owned();
            let with = find
                .replace
                .as_ref()
                .map(|r| r.text().to_owned())
                .unwrap_or_default();
            let count = self.doc_mut().replace_all(&query, &with);
            self.say(Level::Info, format!("replaced {count}"));
            return Vec::new();
        }
        let on_replace = find.on_replace;
        let input = match (on_replace, find.replace.as_mut()) {
            (true, Some(replace)) => replace,
            _ => &mut find.query,
        };
        match input.handle(key) {
            LineEdit::Cancel => {
                self.find = None;
                self.doc_mut().clear_search();
            }
            LineEdit::Changed => {
                let query = find.query.text().to_owned();
                if !on_replace && !self.doc_mut().search(&query, false) && !query.is_empty() {
                    self.say(Level::Warn, format!("{query:?} not found"));
                } else {
                    self.message = None;
                }
            }
            LineEdit::Submit => {
                let query = find.query.text().to_owned();
                let with = find.replace.as_ref().map(|r| r.text().to_owned());
                let found = match (on_replace, with) {
                    (true, Some(with)) => self.doc_mut().replace_next(&query, &with),
                    _ => self.doc_mut().search(&query, true),
                };
                if !found {
                    self.say(Level::Warn, format!("{query:?} not found"));
                }
            }
            LineEdit::Ignored if matches!(key.code, KeyCode::Up | KeyCode::BackTab) => {
                let query = find.query.text().to_owned();
                self.doc_mut().search_back(&query);
            }
            LineEdit::Ignored if matches!(key.code, KeyCode::Down | KeyCode::F(3)) => {
                let query = find.query.text().to_owned();
                self.doc_mut().search(&query, true);
            }
            LineEdit::Moved | LineEdit::Ignored => {}
        }
        Vec::new()
    }

    fn show_diff(&mut self, path: &str, answer: Answer<vfs::Read>) {
        match answer {
            Ok(theirs) => {
                let mine = self
                    .docs
                    .iter()
                    .find(|d| d.path.as_deref() == Some(path))
                    .map(Doc::text)
                    .unwrap_or_default();
                self.diff = Some(diff_lines(&theirs.data, &mine));
                self.say(Level::Info, "the diff: - theirs, + yours; Esc to go back");
            }
            Err(e) => self.say(Level::Error, format!("cannot read {path}: {}", e.msg)),
        }
    }

    /// Changes made while the connection was down came with no event: ask after each file.
    fn recheck(&mut self) -> Vec<Effect> {
        if let Some((Level::Error, text)) = &self.message
            && text.starts_with("not saved")
        {
            self.say(Level::Info, "reconnected: Ctrl-s saves your edits");
        }
        let paths: Vec<String> = self
            .docs
            .iter()
            .filter(|d| d.editable())
            .filter_map(|d| d.path.clone())
            .collect();
        paths
            .into_iter()
            .map(|path| {
                let call = vfs::Stat { path: path.clone() };
                self.requests
                    .call(&call, move |answer| Msg::Rechecked(path, answer))
            })
            .collect()
    }

    fn doc_at(&mut self, path: &str) -> Option<&mut Doc> {
        self.docs
            .iter_mut()
            .find(|d| d.path.as_deref() == Some(path))
    }

    fn on_loaded(&mut self, path: &str, line: Option<usize>, answer: Answer<vfs::Read>) {
        let Some(doc) = self.doc_at(path) else { return };
        match answer {
            Ok(answer) if answer.encoding == vfs::Encoding::Base64 => {
                doc.state = DocState::Refused(format!(
                    "{path} is a binary file ({}); the editor opens text. The explorer shows it in hex.",
                    human_bytes(answer.size)
                ));
            }
            Ok(answer) if !answer.eof => {
                doc.state = DocState::Refused(format!(
                    "{path} is {}; the editor opens files up to {}.",
                    human_bytes(answer.size),
                    human_bytes(MAX_FILE_BYTES as u64)
                ));
            }
            Ok(answer) => {
                doc.set_text(&answer.data, Some(answer.version));
                if let Some(line) = line {
                    doc.jump_to_line(line);
                }
            }
            Err(e) if e.code == ErrorCode::NotFound => {
                // A new file: editing it and saving creates it.
                doc.set_text("", None);
                self.say(Level::Info, format!("{path} is a new file"));
            }
            Err(e) => doc.state = DocState::Refused(format!("cannot open {path}: {}", e.msg)),
        }
    }

    fn on_saved(&mut self, path: String, text: String, answer: Answer<vfs::Write>) -> Vec<Effect> {
        match answer {
            Ok(vfs::WriteAnswer::Committed { version, size, .. }) => {
                if let Some(doc) = self.doc_at(&path) {
                    doc.saved(&text, version);
                }
                self.say(Level::Info, format!("saved {path} ({})", human_bytes(size)));
                Vec::new()
            }
            Ok(vfs::WriteAnswer::Uploading { .. }) => {
                self.say(Level::Error, "the daemon answered a save as an upload");
                Vec::new()
            }
            Err(e) if e.code == ErrorCode::Conflict => {
                self.say(Level::Warn, format!("{path} changed since you opened it"));
                let question = format!(
                    "{path} changed since you opened it. Your edits are kept until you choose."
                );
                let options = CONFLICT_OPTIONS.iter().map(|s| s.to_string()).collect();
                let choose = self
                    .requests
                    .choose(question, options, move |choice| Msg::Conflict(path, choice));
                vec![choose]
            }
            Err(e) => {
                self.say(Level::Error, format!("not saved: {}", e.msg));
                Vec::new()
            }
        }
    }

    fn on_conflict_choice(&mut self, path: String, index: Option<usize>) -> Vec<Effect> {
        let Some(text) = self.doc_at(&path).map(|d| d.text()) else {
            return Vec::new();
        };
        match index {
            Some(0) => self.load(path, None),
            Some(1) => self.write(path, text, None, false),
            Some(2) => {
                let copy = keep_both_name(&path);
                self.say(Level::Info, format!("your version goes to {copy}"));
                let effects = self.write(copy.clone(), text, None, true);
                // The tab now holds the copy; the original stays as the other writer left it.
                if let Some(doc) = self.doc_at(&path) {
                    doc.path = Some(copy);
                    doc.version = None;
                }
                effects
            }
            Some(3) => {
                let call = vfs::Read {
                    path: path.clone(),
                    length: Some(MAX_FILE_BYTES),
                    encoding: vfs::Encoding::Utf8,
                    ..Default::default()
                };
                let read = self
                    .requests
                    .call(&call, move |answer| Msg::Theirs(path, answer));
                vec![read]
            }
            _ => {
                self.say(Level::Warn, "not saved; your edits are still here");
                Vec::new()
            }
        }
    }

    /// Another writer changed an open file: reload it when it has no edits here.
    fn on_change(&mut self, topic: &str, data: &Value) -> Vec<Effect> {
        if vfs::FileEvents::parse(topic) != Some(vfs::FileEventKind::Written) {
            return Vec::new();
        }
        let (Some(path), version) = (data["path"].as_str(), data["version"].as_str()) else {
            return Vec::new();
        };
        self.changed_to(path, version)
    }

    /// The file at `path` is now at `version` (`None`: unknown, assume changed).
    fn changed_to(&mut self, path: &str, version: Option<&str>) -> Vec<Effect> {
        let Some(doc) = self.doc_at(path) else {
            return Vec::new();
        };
        if version.is_some() && doc.version.as_deref() == version {
            return Vec::new();
        }
        if doc.dirty {
            doc.changed_elsewhere = true;
            let name = doc.name();
            self.say(
                Level::Warn,
                format!("{name} changed elsewhere; saving will ask what to do"),
            );
            return Vec::new();
        }
        // The reload keeps the cursor where it was.
        doc.restore_cursor = Some(doc.cursor());
        let path = path.to_owned();
        self.say(Level::Info, format!("{path} changed elsewhere; reloaded"));
        self.load(path, None)
    }
}

/// `notes.txt` → `notes (mine).txt`, beside it.
fn keep_both_name(path: &str) -> String {
    let dir = path::parent(path);
    let name = path::file_name(path);
    let named = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem} (mine).{ext}"),
        _ => format!("{name} (mine)"),
    };
    path::join(&dir, &named)
}

fn diff_lines(theirs: &str, mine: &str) -> Vec<DiffLine> {
    similar::TextDiff::from_lines(theirs, mine)
        .iter_all_changes()
        .map(|change| {
            let line = change.value().trim_end_matches('\n').to_owned();
            match change.tag() {
                similar::ChangeTag::Equal => DiffLine::Same(line),
                similar::ChangeTag::Delete => DiffLine::Theirs(line),
                similar::ChangeTag::Insert => DiffLine::Mine(line),
            }
        })
        .collect()
}

impl Replies for Editor {
    app_kit::replies_through!(requests: Msg);

    fn on(&mut self, msg: Msg) -> Vec<Effect> {
        let typed =
            |text: Option<String>| text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        match msg {
            Msg::Loaded { path, line, answer } => self.on_loaded(&path, line, answer),
            Msg::Saved { path, text, answer } => return self.on_saved(path, text, answer),
            Msg::Generated(answer) => architect::answered(self, answer),
            Msg::Rechecked(path, answer) => {
                if let Ok(stat) = answer {
                    return self.changed_to(&path, stat.version.as_deref());
                }
            }
            Msg::Theirs(path, answer) => self.show_diff(&path, answer),
            Msg::Conflict(path, choice) => return self.on_conflict_choice(path, choice),
            Msg::Close(yes) if yes => return self.close_tab(true),
            Msg::Instruct(text) => {
                if let Some(text) = typed(text) {
                    return architect::start(self, text);
                }
            }
            Msg::Open(text) => {
                if let Some(path) = typed(text) {
                    return self.open(path, None);
                }
            }
            Msg::SaveAs(text) => {
                if let Some(path) = typed(text) {
                    let path = path::normalize(&path);
                    self.doc_mut().path = Some(path.clone());
                    let text = self.doc().text();
                    return self.write(path, text, None, true);
                }
            }
            Msg::Close(_) | Msg::Quiet => {}
        }
        Vec::new()
    }

    fn on_event(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Paste(text) => {
                if self.find.is_none() && self.diff.is_none() {
                    self.doc_mut().paste(&text);
                }
                Vec::new()
            }
            Event::Mouse(Mouse::ScrollDown { .. }) => {
                self.doc_mut().scroll(3);
                Vec::new()
            }
            Event::Mouse(Mouse::ScrollUp { .. }) => {
                self.doc_mut().scroll(-3);
                Vec::new()
            }
            Event::Mouse(Mouse::Click { .. }) => Vec::new(),
            Event::Delivery {
                ticket,
                topic,
                data,
            } if Some(ticket) == self.events => self.on_change(&topic, &data),
            Event::Delivery {
                ticket,
                topic,
                data,
            } if Some(ticket) == self.ai_events => {
                architect::on_event(self, &topic, data);
                Vec::new()
            }
            Event::Delivery { .. } | Event::Subscribed { .. } | Event::SubscribeFailed { .. } => {
                Vec::new()
            }
            // Replies come through `requests`; what is left of them was not awaited.
            Event::Answer { .. }
            | Event::Confirmed { .. }
            | Event::Chose { .. }
            | Event::Prompted { .. } => Vec::new(),
            Event::OpenPath { path, line } => self.open(path, line),
            Event::Reconnected => self.recheck(),
        }
    }
}

impl App for Editor {
    app_kit::app_plumbing!(APP);

    fn title(&self) -> String {
        let doc = self.doc();
        format!("Editor {}{}", doc.name(), if doc.dirty { " ●" } else { "" })
    }

    fn start(&mut self) -> Vec<Effect> {
        let (ticket, listen) = self.requests.subscribe(vfs::EVENTS);
        self.events = Some(ticket);
        let mut effects = vec![listen];
        let loads: Vec<(String, Option<(usize, usize)>)> = self
            .docs
            .iter()
            .filter(|d| matches!(d.state, DocState::Loading))
            .filter_map(|d| Some((d.path.clone()?, d.restore_cursor)))
            .collect();
        for (path, _) in loads {
            effects.extend(self.load(path, None));
        }
        effects
    }

    fn hints(&self) -> Vec<Hint> {
        if self.find.is_some() {
            return vec![
                hint(
                    "Alt-a",
                    "the Architect: the AI rewrites the selection or the file, shown as a diff",
                ),
                hint("Enter ↓ F3", "next match (in replace: replace it)"),
                hint("↑", "previous match"),
                hint("Tab", "between find and replace"),
                hint("Alt-a", "replace all"),
                hint("Esc", "close the find bar"),
            ];
        }
        vec![
            hint("Ctrl-s", "save"),
            hint("Ctrl-o", "open a file"),
            hint("Ctrl-n / Ctrl-w", "new tab / close tab"),
            hint("Ctrl-PgUp Ctrl-PgDn", "previous / next tab"),
            hint("Ctrl-f / Ctrl-r", "find / find and replace"),
            hint("Ctrl-z / Ctrl-y", "undo / redo"),
            hint("Alt-r", "reload from disk (drops edits)"),
            hint(
                "Shift-arrows",
                "select; Ctrl-c copy, Ctrl-x cut, Ctrl-v paste",
            ),
        ]
    }

    fn save(&self) -> Value {
        let tabs = self
            .docs
            .iter()
            .filter_map(|d| {
                let (row, col) = d.cursor();
                Some(SavedTab {
                    path: d.path.clone()?,
                    row,
                    col,
                })
            })
            .collect();
        serde_json::to_value(Saved {
            tabs,
            active: self.active,
        })
        .unwrap_or_default()
    }

    fn paths(&self) -> Vec<String> {
        self.docs.iter().filter_map(|d| d.path.clone()).collect()
    }

    fn unsaved(&self) -> Option<String> {
        let dirty: Vec<String> = self
            .docs
            .iter()
            .filter(|d| d.dirty)
            .map(Doc::name)
            .collect();
        (!dirty.is_empty()).then(|| format!("unsaved changes in {}", dirty.join(", ")))
    }
}

#[cfg(test)]
mod tests;
