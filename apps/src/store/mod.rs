//! The App Store: what the daemon's catalogs offer and what you installed. Installing asks
//! the daemon what the app would mean (`apps.inspect`), asks for your consent to each
//! capability it needs, and installs with exactly that consent, its progress shown live.
//! Installed apps launch in a program window of their own.

mod view;
mod words;

use aether_proto::api::Event as _;
use aether_proto::api::apps::{self, AppInfo, CatalogAnswer, Source};
use aether_proto::{Capability, ErrorBody};
use serde_json::Value;

use app_kit::widgets::{LineEdit, LineInput, ListWindow};
use app_kit::{
    Answer, App, AppKind, Effect, Event, Hint, Key, KeyCode, Latest, Level, Registration, Replies,
    Requests, Ticket, hint,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Tab {
    #[default]
    Catalog,
    Installed,
}

pub(crate) use app_kit::Loaded;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Install,
    Update,
    Uninstall,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Install => "install",
            Action::Update => "update",
            Action::Uninstall => "uninstall",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Action::Install => "installed",
            Action::Update => "updated",
            Action::Uninstall => "uninstalled",
        }
    }

    pub(crate) fn doing(self) -> &'static str {
        match self {
            Action::Install => "installing",
            Action::Update => "updating",
            Action::Uninstall => "uninstalling",
        }
    }
}

/// The one change under way (installs wait for each other in the daemon anyway, and one
/// consent dialog at a time is all a person can answer).
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub id: String,
    pub name: String,
    pub action: Action,
    pub stage: Stage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Asking the daemon what it would mean.
    Inspecting,
    /// A dialog asks you.
    Asking,
    /// The daemon works on it; `apps.events.progress` moves the bar.
    Working { step: String, done: u32, of: u32 },
}

/// The bundle the consent dialog showed: yes installs this version (its SHA-256) with
/// this consent.
pub struct Consent {
    version: String,
    consent: Vec<Capability>,
    sha256: String,
}

/// What the app's asks come back as.
pub enum Msg {
    Catalog(u64, Answer<apps::Catalog>),
    Listed(u64, Answer<apps::List>),
    Inspected(Answer<apps::Inspect>),
    Consented(Consent, bool),
    Uninstall(bool),
    /// The install, update or uninstall itself.
    Installed(Answer<apps::Install>),
    Updated(Answer<apps::Update>),
    Uninstalled(Answer<apps::Uninstall>),
}

/// What the keys act on: the selected row, whichever tab it is in.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub id: String,
    pub name: String,
    /// The version installed for you.
    pub installed: Option<String>,
    /// The newest version the catalogs offer.
    pub offered: Option<String>,
    pub runnable: bool,
}

impl Target {
    fn update_offered(&self) -> bool {
        matches!((&self.installed, &self.offered), (Some(have), Some(offered)) if newer(offered, have))
    }
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Saved {
    tab: Option<Tab>,
    query: Option<String>,
}

/// A list that came again: where the app that was selected (`keep`) is now, if it is
/// still there, and how long the list is.
fn kept<'a>(ids: impl Iterator<Item = &'a str>, keep: &Option<String>) -> (Option<usize>, usize) {
    let mut found = None;
    let mut len = 0;
    for (i, id) in ids.enumerate() {
        if found.is_none() && Some(id) == keep.as_deref() {
            found = Some(i);
        }
        len = i + 1;
    }
    (found, len)
}

/// Select what [`kept`] found, else stay where the selection was.
fn select_kept(list: &mut ListWindow, (found, len): (Option<usize>, usize)) {
    let at = found.unwrap_or(list.selected);
    list.select(at, len);
}

/// The registry's entry for this app.
pub const APP: AppKind = AppKind::of(&Registration {
    name: "store",
    title: "App Store",
    manifest: "store",
    standalone: true,
    launcher_key: Some('p'),
    opens: &[],
    launch: |_| Box::new(Store::new()),
    restore: |state| Box::new(Store::restore(state)),
});

#[derive(Default)]
pub struct Store {
    requests: Requests<Msg>,
    catalogs: Latest,
    lists: Latest,
    events: Option<Ticket>,
    pub(crate) tab: Tab,
    pub(crate) catalog: Loaded<CatalogAnswer>,
    pub(crate) catalog_list: ListWindow,
    /// The apps installed for you (not the built-in ones).
    pub(crate) installed: Loaded<Vec<AppInfo>>,
    pub(crate) installed_list: ListWindow,
    /// The catalog's search words, as last sent.
    pub(crate) query: Option<String>,
    /// Typing a search.
    pub(crate) search: Option<LineInput>,
    pub(crate) change: Option<Change>,
    pub(crate) message: Option<(Level, String)>,
    /// The app to keep selected when the lists come again.
    keep: Option<String>,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    pub fn restore(state: &Value) -> Store {
        let saved: Saved = serde_json::from_value(state.clone()).unwrap_or_default();
        Store {
            tab: saved.tab.unwrap_or(Tab::Catalog),
            query: saved.query.filter(|q| !q.trim().is_empty()),
            ..Store::new()
        }
    }

    /// Ask for both lists again; answers to earlier asks are stale from now on.
    fn refresh(&mut self) -> Vec<Effect> {
        self.keep = self.target().map(|t| t.id);
        let query = self.query.clone();
        let (catalog, list) = (self.catalogs.ask(), self.lists.ask());
        vec![
            self.requests.call(&apps::Catalog { query }, move |answer| {
                Msg::Catalog(catalog, answer)
            }),
            self.requests
                .call(&apps::List {}, move |answer| Msg::Listed(list, answer)),
        ]
    }

    fn say(&mut self, level: Level, text: impl Into<String>) {
        self.message = Some((level, text.into()));
    }

    pub(crate) fn catalog_apps(&self) -> &[apps::CatalogApp] {
        match &self.catalog {
            Loaded::Ready(answer) => &answer.apps,
            _ => &[],
        }
    }

    pub(crate) fn installed_apps(&self) -> &[AppInfo] {
        match &self.installed {
            Loaded::Ready(apps) => apps,
            _ => &[],
        }
    }

    fn list_mut(&mut self) -> (&mut ListWindow, usize) {
        match self.tab {
            Tab::Catalog => {
                let len = self.catalog_apps().len();
                (&mut self.catalog_list, len)
            }
            Tab::Installed => {
                let len = self.installed_apps().len();
                (&mut self.installed_list, len)
            }
        }
    }

    pub(crate) fn target(&self) -> Option<Target> {
        let installed = self.installed_apps();
        match self.tab {
            Tab::Catalog => {
                let app = self.catalog_apps().get(self.catalog_list.selected)?;
                Some(Target {
                    id: app.id.clone(),
                    name: app.name.clone(),
                    installed: app.installed.clone(),
                    offered: Some(app.version.clone()),
                    runnable: installed
                        .iter()
                        .find(|i| i.id == app.id)
                        .is_none_or(|i| i.runnable),
                })
            }
            Tab::Installed => {
                let app = installed.get(self.installed_list.selected)?;
                Some(Target {
                    id: app.id.clone(),
                    name: app.name.clone(),
                    installed: Some(app.version.clone()),
                    offered: self
                        .catalog_apps()
                        .iter()
                        .find(|c| c.id == app.id)
                        .map(|c| c.version.clone()),
                    runnable: app.runnable,
                })
            }
        }
    }

    fn on_key(&mut self, key: Key) -> Vec<Effect> {
        if self.search.is_some() {
            return self.on_search_key(key);
        }
        match key.code {
            KeyCode::Tab | KeyCode::BackTab => {
                self.tab = match self.tab {
                    Tab::Catalog => Tab::Installed,
                    Tab::Installed => Tab::Catalog,
                };
            }
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::PageDown => self.move_by(10),
            KeyCode::PageUp => self.move_by(-10),
            KeyCode::Home => self.move_by(isize::MIN / 2),
            KeyCode::End => self.move_by(isize::MAX / 2),
            KeyCode::Char('/') => {
                self.tab = Tab::Catalog;
                self.search = Some(LineInput::new(self.query.clone().unwrap_or_default()));
            }
            KeyCode::Esc if self.query.is_some() => {
                self.query = None;
                return self.refresh();
            }
            KeyCode::Esc => self.message = None,
            KeyCode::Enter => return self.enter(),
            KeyCode::Char('i') => return self.install_selected(),
            KeyCode::Char('u') => return self.update_selected(),
            KeyCode::Char('x') | KeyCode::Delete => return self.uninstall_selected(),
            KeyCode::Char('l') => return self.launch_selected(),
            KeyCode::Char('r') | KeyCode::F(5) => return self.refresh(),
            _ => {}
        }
        Vec::new()
    }

    fn move_by(&mut self, delta: isize) {
        let (list, len) = self.list_mut();
        list.move_by(delta, len);
    }

    fn on_search_key(&mut self, key: Key) -> Vec<Effect> {
        let Some(search) = self.search.as_mut() else {
            return Vec::new();
        };
        match search.handle(key) {
            LineEdit::Submit => {
                let words = search.text().trim().to_owned();
                self.search = None;
                self.query = (!words.is_empty()).then_some(words);
                self.catalog_list = ListWindow::default();
                self.refresh()
            }
            LineEdit::Cancel => {
                self.search = None;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Enter: install what is not installed, update what has a newer version, launch the rest.
    fn enter(&mut self) -> Vec<Effect> {
        match self.target() {
            Some(target) if target.installed.is_none() => self.install_selected(),
            Some(target) if self.tab == Tab::Catalog && target.update_offered() => {
                self.update_selected()
            }
            Some(_) => self.launch_selected(),
            None => Vec::new(),
        }
    }

    /// Whether a change may start now; says why not.
    fn idle(&mut self) -> bool {
        match &self.change {
            Some(change) => {
                let text = format!("{} {} first…", change.action.doing(), change.name);
                self.say(Level::Warn, text);
                false
            }
            None => true,
        }
    }

    fn install_selected(&mut self) -> Vec<Effect> {
        let Some(target) = self.target() else {
            return Vec::new();
        };
        if let Some(version) = &target.installed {
            let text = format!("{} {version} is installed: l launches it", target.name);
            self.say(Level::Info, text);
            return Vec::new();
        }
        if self.tab != Tab::Catalog || !self.idle() {
            return Vec::new();
        }
        self.inspect(target, Action::Install)
    }

    /// The selected app, if it is installed (else the message says so).
    fn installed_target(&mut self) -> Option<Target> {
        let target = self.target()?;
        if target.installed.is_none() {
            let text = format!("{} is not installed: Enter installs it", target.name);
            self.say(Level::Info, text);
            return None;
        }
        Some(target)
    }

    fn update_selected(&mut self) -> Vec<Effect> {
        let Some(target) = self.installed_target() else {
            return Vec::new();
        };
        if !self.idle() {
            return Vec::new();
        }
        self.inspect(target, Action::Update)
    }

    /// First what installing would mean (the newest version offered); the consent dialog
    /// follows its answer.
    fn inspect(&mut self, target: Target, action: Action) -> Vec<Effect> {
        self.message = None;
        let source = Source {
            id: Some(target.id.clone()),
            ..Source::default()
        };
        self.change = Some(Change {
            id: target.id,
            name: target.name,
            action,
            stage: Stage::Inspecting,
        });
        vec![self.requests.call(&apps::Inspect(source), Msg::Inspected)]
    }

    fn uninstall_selected(&mut self) -> Vec<Effect> {
        let Some(target) = self.target() else {
            return Vec::new();
        };
        let Some(version) = target.installed.clone() else {
            let text = format!("{} is not installed", target.name);
            self.say(Level::Info, text);
            return Vec::new();
        };
        if !self.idle() {
            return Vec::new();
        }
        let question = format!(
            "Uninstall {} {version}?\nWhat you granted it and its sign-in tokens go; its files \
             go when no other user of this daemon keeps it. Your own files stay.",
            target.name
        );
        self.change = Some(Change {
            id: target.id,
            name: target.name,
            action: Action::Uninstall,
            stage: Stage::Asking,
        });
        vec![self.requests.confirm(question, Msg::Uninstall)]
    }

    fn launch_selected(&mut self) -> Vec<Effect> {
        let Some(target) = self.installed_target() else {
            return Vec::new();
        };
        if !target.runnable {
            let text = format!("{} has no program to run", target.name);
            self.say(Level::Info, text);
            return Vec::new();
        }
        vec![Effect::Open {
            app: crate::program::APP,
            path: target.id,
            line: None,
        }]
    }

    /// The daemon said what installing would mean: ask for consent to what it needs.
    fn inspected(&mut self, answer: Answer<apps::Inspect>) -> Vec<Effect> {
        let Some(change) = self.change.clone() else {
            return Vec::new();
        };
        let info = match answer {
            Ok(info) => info,
            Err(e) => {
                self.change = None;
                self.say(
                    Level::Error,
                    format!("{} {}: {}", change.action.verb(), change.name, e.msg),
                );
                return Vec::new();
            }
        };
        if change.action == Action::Update && info.installed.as_deref() == Some(&info.version) {
            self.change = None;
            let text = format!(
                "{} {} is the newest version the catalogs offer",
                info.name, info.version
            );
            self.say(Level::Info, text);
            return Vec::new();
        }
        let question = words::consent_question(&info, change.action);
        if let Some(change) = self.change.as_mut() {
            change.stage = Stage::Asking;
        }
        let consent = Consent {
            version: info.version,
            consent: info.needs_consent,
            sha256: info.sha256,
        };
        let confirm = self
            .requests
            .confirm(question, |yes| Msg::Consented(consent, yes));
        vec![confirm]
    }

    /// The user said yes or no to the change under way: on yes, the id of the app it
    /// changes (now working); on no, the change is dropped.
    fn go_ahead(&mut self, yes: bool) -> Option<String> {
        let change = self.change.as_mut()?;
        if !yes {
            let text = format!("{} was not {}", change.name, change.action.done());
            self.change = None;
            self.say(Level::Info, text);
            return None;
        }
        change.stage = Stage::Working {
            step: "start".into(),
            done: 0,
            of: 4,
        };
        Some(change.id.clone())
    }

    fn on_consent(&mut self, consent: Consent, yes: bool) -> Vec<Effect> {
        let Some(id) = self.go_ahead(yes) else {
            return Vec::new();
        };
        let Consent {
            version,
            consent,
            sha256,
        } = consent;
        match self.change.as_ref().map(|c| c.action) {
            Some(Action::Install) => {
                let source = Source {
                    id: Some(id),
                    version: Some(version),
                    ..Source::default()
                };
                // The bundle must be the one the consent dialog showed.
                let mut install = apps::Install::of(source, consent);
                install.sha256 = Some(sha256);
                vec![self.requests.call(&install, Msg::Installed)]
            }
            Some(Action::Update) => {
                let update = apps::Update {
                    id,
                    consent,
                    sha256: Some(sha256),
                };
                vec![self.requests.call(&update, Msg::Updated)]
            }
            _ => {
                self.change = None;
                Vec::new()
            }
        }
    }

    /// The install, update or uninstall answered.
    fn changed(&mut self, done: impl FnOnce(&Change) -> Result<String, ErrorBody>) -> Vec<Effect> {
        let Some(change) = self.change.take() else {
            return Vec::new();
        };
        match done(&change) {
            Ok(text) => {
                self.say(Level::Info, text.clone());
                let mut effects = vec![Effect::notify(Level::Info, text), Effect::AppsChanged];
                effects.extend(self.refresh());
                effects
            }
            Err(e) => {
                let text = format!("{} {}: {}", change.action.verb(), change.name, e.msg);
                self.say(Level::Error, text);
                Vec::new()
            }
        }
    }

    fn on_delivery(&mut self, topic: &str, data: Value) -> Vec<Effect> {
        match apps::AppEvents::parse(topic) {
            Some(apps::AppEventKind::Progress) => {
                let Ok(progress) = serde_json::from_value::<apps::Progress>(data) else {
                    return Vec::new();
                };
                if let Some(change) = self.change.as_mut()
                    && change.id == progress.id
                    && matches!(change.stage, Stage::Working { .. })
                {
                    change.stage = Stage::Working {
                        step: progress.step,
                        done: progress.done,
                        of: progress.of,
                    };
                }
                Vec::new()
            }
            // Installed, updated or removed, here or elsewhere (aetherctl, another desktop).
            _ => {
                let mut effects = vec![Effect::AppsChanged];
                effects.extend(self.refresh());
                effects
            }
        }
    }
}

fn installed_text(change: &Change, installed: &apps::Installed) -> String {
    let mut text = match &installed.replaced {
        Some(old) if old != &installed.version => {
            format!("updated {} {old} to {}", change.name, installed.version)
        }
        _ => format!("installed {} {}", change.name, installed.version),
    };
    // Its warnings were in the consent dialog already.
    text.push_str(" — Enter (or l) launches it");
    text
}

/// Whether version `a` is newer than `b`: numbers compared as numbers (`1.10` > `1.9`).
pub(crate) fn newer(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> {
        v.split(['.', '-', '+'])
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    match parts(a).cmp(&parts(b)) {
        std::cmp::Ordering::Equal => false,
        order => order.is_gt(),
    }
}

impl Replies for Store {
    app_kit::replies_through!(requests: Msg);

    fn on(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Catalog(n, answer) if self.catalogs.take(n) => {
                self.catalog = match answer {
                    Ok(answer) => Loaded::Ready(answer),
                    Err(e) => Loaded::Failed(e.msg),
                };
                let found = kept(
                    self.catalog_apps().iter().map(|a| a.id.as_str()),
                    &self.keep,
                );
                select_kept(&mut self.catalog_list, found);
            }
            Msg::Listed(n, answer) if self.lists.take(n) => {
                self.installed = match answer {
                    Ok(list) => {
                        Loaded::Ready(list.apps.into_iter().filter(|a| !a.built_in).collect())
                    }
                    Err(e) => Loaded::Failed(e.msg),
                };
                let found = kept(
                    self.installed_apps().iter().map(|a| a.id.as_str()),
                    &self.keep,
                );
                select_kept(&mut self.installed_list, found);
            }
            Msg::Catalog(..) | Msg::Listed(..) => {}
            Msg::Inspected(answer) => return self.inspected(answer),
            Msg::Consented(consent, yes) => return self.on_consent(consent, yes),
            Msg::Uninstall(yes) => {
                if let Some(id) = self.go_ahead(yes) {
                    let call = apps::Uninstall { id };
                    return vec![self.requests.call(&call, Msg::Uninstalled)];
                }
            }
            Msg::Installed(answer) => {
                return self.changed(|change| answer.map(|i| installed_text(change, &i)));
            }
            Msg::Updated(answer) => {
                return self.changed(|change| answer.map(|i| installed_text(change, &i)));
            }
            Msg::Uninstalled(answer) => {
                return self.changed(|change| {
                    answer.map(|u| format!("uninstalled {} {}", change.name, u.version))
                });
            }
        }
        Vec::new()
    }

    fn on_event(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Paste(text) => {
                if let Some(search) = self.search.as_mut() {
                    search.insert_str(&text);
                }
                Vec::new()
            }
            Event::Delivery {
                ticket,
                topic,
                data,
            } if Some(ticket) == self.events => self.on_delivery(&topic, data),
            Event::SubscribeFailed { error, .. } => {
                let text = format!("no live progress: {}", error.msg);
                self.say(Level::Warn, text);
                Vec::new()
            }
            Event::Reconnected => self.refresh(),
            _ => Vec::new(),
        }
    }
}

impl App for Store {
    app_kit::app_plumbing!(APP);

    fn title(&self) -> String {
        match self.tab {
            Tab::Catalog => "App Store".into(),
            Tab::Installed => "App Store: installed".into(),
        }
    }

    fn start(&mut self) -> Vec<Effect> {
        let (ticket, listen) = self.requests.subscribe(apps::EVENTS);
        self.events = Some(ticket);
        let mut effects = vec![listen];
        effects.extend(self.refresh());
        effects
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            hint("Tab", "the catalog, or what you installed"),
            hint("↑ ↓ j k", "move"),
            hint(
                "Enter",
                "install the app (asking your consent), update it, or launch it",
            ),
            hint("i", "install the app"),
            hint("u", "update the app to the newest version"),
            hint("x", "uninstall the app"),
            hint("l", "launch the installed app in a window of its own"),
            hint("/", "search the catalog (Esc clears the search)"),
            hint("r F5", "refresh"),
        ]
    }

    fn busy(&self) -> Option<String> {
        self.change
            .as_ref()
            .filter(|c| matches!(c.stage, Stage::Working { .. }))
            .map(|c| format!("{} {}", c.action.doing(), c.name))
    }

    fn save(&self) -> Value {
        serde_json::to_value(Saved {
            tab: Some(self.tab),
            query: self.query.clone(),
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
