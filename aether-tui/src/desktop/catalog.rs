//! The launcher's catalog, a headless app: it lists your apps (`apps.list`) at start,
//! when apps were installed or removed, and after a reconnect, so the launcher names
//! what the daemon names and offers what is installed for you.

use aether_proto::api::apps::{self as apps_api, AppInfo};
use app_kit::{Answer, App, AppKind, Effect, Event, Latest, Level, Registration, Requests};

/// Its entry (not in the apps' registry: nobody opens it).
pub const CATALOG: AppKind = AppKind::of(&Registration {
    name: "catalog",
    title: "Launcher catalog",
    manifest: "desktop",
    standalone: false,
    launcher_key: None,
    opens: &[],
    launch: |_| Box::new(Catalog::default()),
    restore: |_| Box::new(Catalog::default()),
});

#[derive(Default)]
pub struct Catalog {
    requests: Requests<(u64, Answer<apps_api::List>)>,
    lists: Latest,
    /// A listing not yet handed to the launcher.
    listed: Option<Vec<AppInfo>>,
}

impl Catalog {
    /// List the apps again (they were installed, updated or removed).
    pub fn refresh(&mut self) -> Vec<Effect> {
        let n = self.lists.ask();
        vec![
            self.requests
                .call(&apps_api::List {}, move |answer| (n, answer)),
        ]
    }

    /// The newest listing, once.
    pub fn take_listed(&mut self) -> Option<Vec<AppInfo>> {
        self.listed.take()
    }
}

impl App for Catalog {
    app_kit::headless_plumbing!(CATALOG);

    fn start(&mut self) -> Vec<Effect> {
        self.refresh()
    }

    fn update(&mut self, event: Event) -> Vec<Effect> {
        match self.requests.reply(event) {
            Ok(Some((n, answer))) if self.lists.take(n) => match answer {
                Ok(list) => {
                    self.listed = Some(list.apps);
                    Vec::new()
                }
                Err(e) => vec![Effect::notify(
                    Level::Warn,
                    format!("the launcher could not list your apps: {}", e.msg),
                )],
            },
            Ok(_) => Vec::new(),
            Err(Event::Reconnected) => self.refresh(),
            Err(_) => Vec::new(),
        }
    }
}
