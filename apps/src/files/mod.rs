//! The File Explorer: a folder's entries (virtualized), a preview, search through
//! `vfs.search`, the file operations, live updates from `vfs.events`, quota usage.

mod image;
mod keys;
mod tree;
mod view;

use aether_proto::ErrorBody;
use aether_proto::api::Event as _;
use aether_proto::api::vfs::{self, Entry, Hit, Kind, UsageAnswer};
use base64::Engine;
use serde_json::Value;

use app_kit::path;
use app_kit::widgets::ListWindow;
use app_kit::{
    Answer, App, AppKind, Effect, Event, Hint, Latest, Registration, Replies, Requests, Ticket,
    hint,
};

/// The most of a file the preview reads.
const PREVIEW_BYTES: usize = 32 * 1024;

/// The registry's entry for this app.
pub const APP: AppKind = AppKind::of(&Registration {
    name: "files",
    title: "File Explorer",
    manifest: "files",
    standalone: true,
    launcher_key: Some('f'),
    opens: &[],
    launch: |arg| Box::new(Files::new(arg.unwrap_or("/"))),
    restore: |state| Box::new(Files::restore(state)),
});

pub struct Files {
    requests: Requests<Msg>,
    cwd: String,
    entries: Vec<Entry>,
    list: ListWindow,
    /// The listing asked for last; any other listing answer is stale.
    pub(crate) listing: Latest,
    /// After a listing arrives, select this name (the folder we came up from).
    reselect: Option<String>,
    error: Option<String>,
    status: Option<String>,
    preview: Preview,
    previews: Latest,
    usage: Option<UsageAnswer>,
    usages: Latest,
    search: Option<SearchResults>,
    searches: Latest,
    /// The folder tree beside the list, when shown; `in_tree` when it has the keys.
    tree: Option<tree::FolderTree>,
    in_tree: bool,
    /// The restored session had the tree open: open it at start.
    restore_tree: bool,
    events: Option<Ticket>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Preview {
    None,
    Loading(String),
    Text {
        path: String,
        lines: Vec<String>,
        cut: bool,
        /// Syntax colours, worked out on the first draw for the theme named.
        colours: std::cell::RefCell<Option<(String, Vec<app_kit::highlight::Runs>)>>,
    },
    Binary {
        path: String,
        bytes: Vec<u8>,
        size: u64,
    },
    Image {
        path: String,
        size: u64,
        image: image::ImagePreview,
    },
    Folder(String),
    Failed {
        path: String,
        error: String,
    },
}

pub(crate) struct SearchResults {
    query: String,
    hits: Vec<Hit>,
    list: ListWindow,
    /// The hits are on their way.
    searching: bool,
}

/// What the session keeps of an explorer.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Saved {
    cwd: String,
    selected: Option<String>,
    tree: bool,
}

/// What a line asked for is for.
#[derive(Debug, Clone)]
pub enum Ask {
    NewFile,
    NewFolder,
    Rename(String),
    Copy(String),
    Move(String),
    Search,
}

/// What the app's asks come back as.
pub enum Msg {
    Listed(u64, Answer<vfs::List>),
    Previewed(u64, Answer<vfs::Read>),
    Usage(u64, Answer<vfs::Usage>),
    Searched(u64, Answer<vfs::Search>),
    /// A folder of the tree, listed.
    TreeListed(String, Answer<vfs::List>),
    Asked(Ask, Option<String>),
    /// Delete this path (a folder with everything in it when `dir`)?
    Delete {
        path: String,
        dir: bool,
        yes: bool,
    },
    /// A file operation's outcome, with its description for the status line.
    Done(String, Result<(), ErrorBody>),
}

impl Files {
    pub fn new(cwd: &str) -> Files {
        Files {
            requests: Requests::new(),
            cwd: path::normalize(cwd),
            entries: Vec::new(),
            list: ListWindow::default(),
            listing: Latest::default(),
            reselect: None,
            error: None,
            status: None,
            preview: Preview::None,
            previews: Latest::default(),
            usage: None,
            usages: Latest::default(),
            search: None,
            searches: Latest::default(),
            tree: None,
            in_tree: false,
            restore_tree: false,
            events: None,
        }
    }

    pub fn restore(state: &Value) -> Files {
        let saved: Saved = serde_json::from_value(state.clone()).unwrap_or_default();
        let mut files = Files::new(&saved.cwd);
        files.reselect = saved.selected;
        files.restore_tree = saved.tree;
        files
    }

    pub fn cwd(&self) -> &str {
        &self.cwd
    }

    fn selected(&self) -> Option<&Entry> {
        self.entries.get(self.list.selected)
    }

    fn selected_path(&self) -> Option<String> {
        self.selected().map(|e| path::join(&self.cwd, &e.name))
    }

    fn list_folder(&mut self) -> Vec<Effect> {
        let n = self.listing.ask();
        let call = vfs::List {
            path: self.cwd.clone(),
        };
        vec![
            self.requests
                .call(&call, move |answer| Msg::Listed(n, answer)),
        ]
    }

    fn refresh_usage(&mut self) -> Vec<Effect> {
        let n = self.usages.ask();
        vec![
            self.requests
                .call(&vfs::Usage {}, move |answer| Msg::Usage(n, answer)),
        ]
    }

    /// List a folder of the tree.
    fn list_in_tree(&mut self, folder: String) -> Vec<Effect> {
        let call = vfs::List {
            path: folder.clone(),
        };
        vec![
            self.requests
                .call(&call, |answer| Msg::TreeListed(folder, answer)),
        ]
    }

    /// Show the folder tree, the current folder selected.
    fn open_tree(&mut self) -> Vec<Effect> {
        let mut tree = tree::FolderTree::open();
        tree.reveal(&self.cwd);
        self.tree = Some(tree);
        self.list_in_tree("/".into())
    }

    fn go(&mut self, folder: String) -> Vec<Effect> {
        self.cwd = path::normalize(&folder);
        self.list = ListWindow::default();
        self.entries.clear();
        self.error = None;
        self.search = None;
        self.preview = Preview::None;
        self.list_folder()
    }

    fn up(&mut self) -> Vec<Effect> {
        if self.cwd == "/" {
            return Vec::new();
        }
        self.reselect = Some(path::file_name(&self.cwd).to_owned());
        self.go(path::parent(&self.cwd))
    }

    fn open_selected(&mut self) -> Vec<Effect> {
        let Some(entry) = self.selected().cloned() else {
            return Vec::new();
        };
        let target = path::join(&self.cwd, &entry.name);
        match entry.kind {
            Kind::Dir => self.go(target),
            _ => vec![Effect::Open {
                app: crate::opener_for(&target),
                path: target,
                line: None,
            }],
        }
    }

    /// Ask for the preview of the selected entry (answers for older selections are dropped).
    fn preview_selected(&mut self) -> Vec<Effect> {
        let Some(entry) = self.selected().cloned() else {
            self.preview = Preview::None;
            self.previews.forget();
            return Vec::new();
        };
        let target = path::join(&self.cwd, &entry.name);
        if entry.kind == Kind::Dir {
            self.preview = Preview::Folder(target);
            self.previews.forget();
            return Vec::new();
        }
        let length = if image::is_image(&target) {
            image::IMAGE_BYTES
        } else {
            PREVIEW_BYTES
        };
        let n = self.previews.ask();
        self.preview = Preview::Loading(target.clone());
        let call = vfs::Read {
            path: target,
            length: Some(length),
            ..Default::default()
        };
        vec![
            self.requests
                .call(&call, move |answer| Msg::Previewed(n, answer)),
        ]
    }

    fn ask(&mut self, ask: Ask, question: &str, initial: String) -> Vec<Effect> {
        let prompt = self
            .requests
            .prompt(question, initial, false, |text| Msg::Asked(ask, text));
        vec![prompt]
    }

    fn op<C: aether_proto::api::Call>(&mut self, what: String, call: &C) -> Vec<Effect> {
        self.status = Some(format!("{what}…"));
        let done = self.requests.call(call, move |answer: Answer<C>| {
            Msg::Done(what, answer.map(|_| ()))
        });
        vec![done]
    }

    fn on_prompted(&mut self, ask: Ask, text: String) -> Vec<Effect> {
        let text = text.trim().to_owned();
        if text.is_empty() {
            return Vec::new();
        }
        let here = |name: &str| path::resolve(&self.cwd, name);
        match ask {
            Ask::NewFile => {
                let target = here(&text);
                self.reselect = Some(path::file_name(&target).to_owned());
                self.op(
                    format!("creating {target}"),
                    &vfs::Write {
                        path: target.clone(),
                        if_absent: true,
                        ..Default::default()
                    },
                )
            }
            Ask::NewFolder => {
                let target = here(&text);
                self.reselect = Some(path::file_name(&target).to_owned());
                self.op(
                    format!("creating {target}"),
                    &vfs::Mkdir {
                        path: target,
                        parents: false,
                    },
                )
            }
            Ask::Rename(from) => {
                let to = path::join(&path::parent(&from), &text);
                self.reselect = Some(path::file_name(&to).to_owned());
                self.op(
                    format!("renaming {from}"),
                    &vfs::Move {
                        from,
                        to,
                        overwrite: false,
                    },
                )
            }
            Ask::Move(from) => {
                let to = here(&text);
                self.op(
                    format!("moving {from}"),
                    &vfs::Move {
                        from,
                        to,
                        overwrite: false,
                    },
                )
            }
            Ask::Copy(from) => {
                let to = here(&text);
                self.op(
                    format!("copying {from}"),
                    &vfs::Copy {
                        from,
                        to,
                        overwrite: false,
                    },
                )
            }
            Ask::Search => {
                let n = self.searches.ask();
                self.search = Some(SearchResults {
                    query: text.clone(),
                    hits: Vec::new(),
                    list: ListWindow::default(),
                    searching: true,
                });
                // `~ words` searches by meaning as well (with an AI provider's embeddings).
                let (query, semantic) = match text.trim_start().strip_prefix('~') {
                    Some(rest) => (rest.trim().to_owned(), true),
                    None => (text, false),
                };
                let call = vfs::Search {
                    query,
                    limit: Some(200),
                    semantic,
                };
                vec![
                    self.requests
                        .call(&call, move |answer| Msg::Searched(n, answer)),
                ]
            }
        }
    }

    fn on_search(&mut self, answer: Answer<vfs::Search>) {
        let Some(search) = self.search.as_mut() else {
            return;
        };
        search.searching = false;
        match answer {
            Ok(answer) => {
                search.hits = answer.hits;
                // How meaning took part (or why it could not) shows in the footer.
                self.status = answer.semantic.map(|note| note.note);
            }
            Err(e) => {
                self.search = None;
                self.error = Some(format!("search: {}", e.msg));
            }
        }
    }

    fn on_done(&mut self, what: String, answer: Result<(), ErrorBody>) -> Vec<Effect> {
        self.status = None;
        match answer {
            Ok(()) => {
                self.error = None;
                // vfs.events would refresh too; this is sooner and survives a missed event.
                let mut effects = self.list_folder();
                effects.extend(self.refresh_usage());
                effects
            }
            Err(e) => {
                self.error = Some(format!("{what}: {}", e.msg));
                Vec::new()
            }
        }
    }

    fn on_listing(&mut self, result: Result<vfs::Listing, ErrorBody>) -> Vec<Effect> {
        match result {
            Ok(listing) => {
                let selected_name = self
                    .reselect
                    .take()
                    .or_else(|| self.selected().map(|e| e.name.clone()));
                self.entries = listing.entries;
                // Folders first, then by name, as file managers do.
                self.entries.sort_by(|a, b| {
                    (a.kind != Kind::Dir, &a.name).cmp(&(b.kind != Kind::Dir, &b.name))
                });
                let len = self.entries.len();
                let index = selected_name
                    .and_then(|name| self.entries.iter().position(|e| e.name == name))
                    .unwrap_or(self.list.selected);
                self.list.select(index, len);
                self.error = None;
                self.preview_selected()
            }
            Err(e) => {
                self.entries.clear();
                self.preview = Preview::None;
                self.error = Some(e.msg);
                Vec::new()
            }
        }
    }

    fn on_preview(&mut self, result: Result<vfs::ReadAnswer, ErrorBody>) {
        let path = match &self.preview {
            Preview::Loading(path) => path.clone(),
            _ => return,
        };
        self.preview = match result {
            Ok(answer) if answer.encoding == vfs::Encoding::Base64 => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(answer.data.as_bytes())
                    .unwrap_or_default();
                let decoded = (answer.eof && image::is_image(&path))
                    .then(|| image::ImagePreview::decode(&bytes))
                    .flatten();
                match decoded {
                    Some(image) => Preview::Image {
                        path,
                        size: answer.size,
                        image,
                    },
                    None => Preview::Binary {
                        path,
                        bytes: bytes[..bytes.len().min(PREVIEW_BYTES)].to_vec(),
                        size: answer.size,
                    },
                }
            }
            Ok(answer) => Preview::Text {
                path,
                lines: answer.data.lines().map(str::to_owned).collect(),
                cut: !answer.eof,
                colours: Default::default(),
            },
            Err(e) => Preview::Failed { path, error: e.msg },
        };
    }

    /// A change somewhere in the user's files: re-list when it touches this folder.
    fn on_change(&mut self, topic: &str, data: &Value) -> Vec<Effect> {
        let touches = |p: Option<&str>| p.is_some_and(|p| path::parent(p) == self.cwd);
        let here = touches(data["path"].as_str())
            || touches(data["from"].as_str())
            || touches(data["to"].as_str())
            || vfs::FileEvents::parse(topic) == Some(vfs::FileEventKind::Rescanned);
        let mut effects = if here { self.list_folder() } else { Vec::new() };
        if !self.usages.waiting() {
            effects.extend(self.refresh_usage());
        }
        effects
    }
}

impl Replies for Files {
    app_kit::replies_through!(requests: Msg);

    fn on(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Listed(n, answer) if self.listing.take(n) => return self.on_listing(answer),
            Msg::Previewed(n, answer) if self.previews.take(n) => self.on_preview(answer),
            Msg::Usage(n, answer) if self.usages.take(n) => self.usage = answer.ok(),
            Msg::Searched(n, answer) if self.searches.take(n) => self.on_search(answer),
            Msg::Listed(..) | Msg::Previewed(..) | Msg::Usage(..) | Msg::Searched(..) => {}
            Msg::TreeListed(folder, answer) => {
                if let Some(tree) = self.tree.as_mut() {
                    tree.answered(&folder, answer);
                }
            }
            Msg::Asked(ask, Some(text)) => return self.on_prompted(ask, text),
            Msg::Asked(_, None) => {}
            Msg::Delete {
                path,
                dir,
                yes: true,
            } => {
                let call = vfs::Remove {
                    path: path.clone(),
                    recursive: dir,
                };
                return self.op(format!("deleting {path}"), &call);
            }
            Msg::Delete { .. } => {}
            Msg::Done(what, answer) => return self.on_done(what, answer),
        }
        Vec::new()
    }

    fn on_event(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Mouse(mouse) => self.on_mouse(mouse),
            Event::Paste(_) => Vec::new(),
            Event::Delivery {
                ticket,
                topic,
                data,
            } if Some(ticket) == self.events => self.on_change(&topic, &data),
            Event::Delivery { .. } | Event::Subscribed { .. } => Vec::new(),
            Event::SubscribeFailed { error, .. } => {
                self.status = Some(format!("no live updates: {}", error.msg));
                Vec::new()
            }
            Event::OpenPath { path, .. } => self.go(path),
            // Replies come through `requests`; what is left of them was not awaited.
            Event::Answer { .. }
            | Event::Confirmed { .. }
            | Event::Chose { .. }
            | Event::Prompted { .. } => Vec::new(),
            Event::Reconnected => {
                let mut effects = self.list_folder();
                effects.extend(self.refresh_usage());
                effects
            }
        }
    }
}

impl App for Files {
    app_kit::app_plumbing!(APP);

    fn title(&self) -> String {
        format!("Files {}", self.cwd)
    }

    fn start(&mut self) -> Vec<Effect> {
        let (ticket, listen) = self.requests.subscribe(vfs::EVENTS);
        self.events = Some(ticket);
        let mut effects = vec![listen];
        effects.extend(self.list_folder());
        effects.extend(self.refresh_usage());
        if self.restore_tree {
            effects.extend(self.open_tree());
        }
        effects
    }

    fn hints(&self) -> Vec<Hint> {
        if self.search.is_some() {
            return vec![
                hint("↑ ↓ j k", "move through the hits"),
                hint("Enter", "open the hit in the editor"),
                hint("/", "search again"),
                hint("Esc", "back to the folder"),
            ];
        }
        vec![
            hint("↑ ↓ j k PgUp PgDn g G", "move"),
            hint("Enter → l", "open the folder or the file (in the editor)"),
            hint("Backspace ← h", "up one folder"),
            hint("n / N", "new file / new folder"),
            hint("r c m", "rename / copy / move"),
            hint("D Del", "delete (asks first)"),
            hint("/", "search your files"),
            hint("y", "copy the path"),
            hint("R F5", "refresh"),
            hint("t / Tab", "the folder tree, show or hide / move into it"),
        ]
    }

    fn paths(&self) -> Vec<String> {
        self.entries
            .iter()
            .take(5_000)
            .map(|e| path::join(&self.cwd, &e.name))
            .collect()
    }

    fn save(&self) -> Value {
        serde_json::to_value(Saved {
            cwd: self.cwd.clone(),
            selected: self.selected().map(|e| e.name.clone()),
            tree: self.tree.is_some(),
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
