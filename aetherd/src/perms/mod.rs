//! The permission manager: the only place that decides whether a frame may pass.
//!
//! **Invariant:** every sub/serve/pub/req is checked here by (user, app, topic).
//! Capabilities map to exact topics through one exhaustive `match` with no
//! wildcard arm, so a new capability or service is denied until someone maps it.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use notify::Watcher;
use parking_lot::RwLock;

use aether_proto::api::{self, sys};
use aether_proto::manifest::MAX_MANIFEST_BYTES;
use aether_proto::manifest::PathScope;
use aether_proto::{Capability, ErrorBody, ErrorCode, Manifest, ManifestError, Pattern, Topic};

use crate::audit::{AuditEntry, AuditLog};
use crate::identity::Caller;

mod tables;

use tables::{
    GRANTS, OPEN, capability_topics, service_listens, service_publishes, service_requests,
};
pub use tables::{
    OPEN_REQUESTS, Op, Service, USERS_OWN_REQUESTS, capability_table, service_topics,
};

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub code: ErrorCode,
    pub msg: String,
}

impl From<Denial> for ErrorBody {
    fn from(denial: Denial) -> ErrorBody {
        ErrorBody::new(denial.code, denial.msg)
    }
}

/// The loaded manifests: the manifests dir's (built-in and hand-placed apps, trusted as they
/// are, the same for everyone) and what each user installed through the install service
/// (usable by that user alone, as far as they granted).
#[derive(Debug, Default)]
pub struct Catalog {
    /// The manifests dir's apps, by id.
    pub apps: BTreeMap<String, Manifest>,
    pub errors: Vec<ManifestError>,
    installed: Arc<InstalledApps>,
}

/// What each user installed through the install service.
#[derive(Debug, Default)]
pub struct InstalledApps {
    /// (user, app id) → that user's installed app.
    pub apps: HashMap<(i64, String), InstalledApp>,
}

#[derive(Debug, Clone)]
pub struct InstalledApp {
    pub manifest: Manifest,
    /// The folder holding its bundle's files.
    pub dir: PathBuf,
    /// The capabilities the user granted it.
    pub granted: BTreeSet<Capability>,
}

impl Catalog {
    /// Is `app` one of the manifests dir's (shipped with the daemon or placed by its admin)?
    pub fn is_builtin(&self, app: &str) -> bool {
        self.apps.contains_key(app)
    }

    /// The app as `user_id` may use it: a built-in one as its manifest says; one the user
    /// installed with only the capabilities they granted; `None` for anything else.
    pub fn effective(&self, user_id: i64, app: &str) -> Option<Cow<'_, Manifest>> {
        if let Some(manifest) = self.apps.get(app) {
            return Some(Cow::Borrowed(manifest));
        }
        let installed = self.installed.apps.get(&(user_id, app.to_owned()))?;
        let mut mine = installed.manifest.clone();
        mine.permissions
            .retain(|cap, _| installed.granted.contains(cap));
        Some(Cow::Owned(mine))
    }

    /// Every app `user_id` can use: the built-in ones, then those they installed.
    pub fn apps_for(&self, user_id: i64) -> Vec<(Cow<'_, Manifest>, bool)> {
        let mut out: Vec<(Cow<'_, Manifest>, bool)> = self
            .apps
            .values()
            .map(|m| (Cow::Borrowed(m), true))
            .collect();
        let mut mine: Vec<&String> = self
            .installed
            .apps
            .keys()
            .filter(|(user, id)| *user == user_id && !self.apps.contains_key(id))
            .map(|(_, id)| id)
            .collect();
        mine.sort();
        for id in mine {
            if let Some(manifest) = self.effective(user_id, id) {
                out.push((manifest, false));
            }
        }
        out
    }

    /// The folder an app's entry module is read from: `<manifests dir>/<id>` for apps placed
    /// there, the user's installed bundle's folder for installed ones.
    pub fn bundle_dir(&self, manifests_dir: &Path, user_id: i64, app: &str) -> PathBuf {
        match self.installed.apps.get(&(user_id, app.to_owned())) {
            Some(installed) if !self.is_builtin(app) => installed.dir.clone(),
            _ => manifests_dir.join(app),
        }
    }
}

/// A manifest's grants as people read them.
#[derive(Debug)]
pub struct AppPermissions {
    pub manifest: Manifest,
    pub topics: Vec<sys::Grant>,
}

pub struct Perms {
    dir: PathBuf,
    /// The manifests dir as last read.
    local: RwLock<Arc<Catalog>>,
    installed: RwLock<Arc<InstalledApps>>,
    /// The two together: what decisions read.
    catalog: RwLock<Arc<Catalog>>,
    composing: parking_lot::Mutex<()>,
    generation: AtomicU64,
    /// Tells connections when the decisions may have changed (an app installed, updated or
    /// removed, a manifest edited): each checks its subscriptions again.
    changes: tokio::sync::watch::Sender<u64>,
    audit: AuditLog,
}

/// Does this event change what is in the manifests dir (not only who read it)?
fn changes_files(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        // A file written and closed: the end of an editor's save.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

impl Perms {
    /// Load every `*.json` in `dir`. Bad manifests are reported and skipped.
    pub fn load(dir: &Path, audit: AuditLog) -> Arc<Perms> {
        let perms = Arc::new(Perms {
            dir: dir.to_owned(),
            local: RwLock::default(),
            installed: RwLock::default(),
            catalog: RwLock::new(Arc::new(Catalog::default())),
            composing: parking_lot::Mutex::new(()),
            generation: AtomicU64::new(0),
            changes: tokio::sync::watch::Sender::new(0),
            audit,
        });
        perms.reload();
        perms
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().clone()
    }

    /// Bumped on every reload, so callers can drop cached decisions.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn reload(&self) {
        let catalog = read_manifests(&self.dir);
        for error in &catalog.errors {
            tracing::warn!("manifest skipped: {error}");
        }
        tracing::info!(
            apps = catalog.apps.len(),
            skipped = catalog.errors.len(),
            "manifests loaded from {}",
            self.dir.display()
        );
        *self.local.write() = Arc::new(catalog);
        self.compose();
    }

    /// Take the install service's apps and grants (after an install, update or uninstall):
    /// only through its [`InstalledSink`].
    fn set_installed(&self, installed: InstalledApps) {
        *self.installed.write() = Arc::new(installed);
        self.compose();
    }

    /// The manifests dir's apps beside the installed ones: what decisions read. Serialized, so
    /// a reload and an install never leave the older of the two in place.
    fn compose(&self) {
        let _composing = self.composing.lock();
        let local = self.local.read().clone();
        let installed = self.installed.read().clone();
        *self.catalog.write() = Arc::new(Catalog {
            apps: local.apps.clone(),
            errors: local.errors.clone(),
            installed,
        });
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.changes.send_replace(generation);
    }

    /// Changes when decisions may have changed.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Reload whenever a file in the manifests dir changes. Runs until the returned guard drops.
    pub fn watch(self: &Arc<Self>) -> anyhow::Result<notify::RecommendedWatcher> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Only what changes a file counts: reading the dir (ours included: a reload
                // reads every manifest) raises access events that would start another.
                if event.is_ok_and(|e| changes_files(&e.kind)) {
                    let _ = tx.send(());
                }
            })?;
        watcher.watch(&self.dir, notify::RecursiveMode::NonRecursive)?;
        let perms = Arc::downgrade(self);
        tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // Editors write in several steps: wait for the burst to end.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while rx.try_recv().is_ok() {}
                let Some(perms) = perms.upgrade() else { break };
                perms.reload();
            }
        });
        Ok(watcher)
    }

    /// The decision. Denials are written to the audit log.
    pub fn check(
        &self,
        caller: &Caller,
        app: &str,
        op: Op,
        pattern: &Pattern,
    ) -> Result<(), Denial> {
        let catalog = self.catalog.read().clone();
        decide(&catalog, caller, app, op, pattern).inspect_err(|denial| {
            self.record_denial(caller, app, op.as_str(), pattern.as_str(), denial);
        })
    }

    /// Every denial goes to the audit log through here.
    fn record_denial(
        &self,
        caller: &Caller,
        app: &str,
        op: &'static str,
        topic: &str,
        denial: &Denial,
    ) {
        self.audit.record(AuditEntry {
            user_id: Some(caller.user_id),
            user: caller.user.clone(),
            app: app.to_owned(),
            op,
            topic: topic.to_owned(),
            code: denial.code,
            reason: denial.msg.clone(),
        });
    }

    /// What only an admin may do inside an open request (e.g. `sys.passwd` for another
    /// user): decided and audited here like every other denial.
    pub fn check_admin(
        &self,
        caller: &Caller,
        app: &str,
        topic: &Topic,
        what: &str,
    ) -> Result<(), Denial> {
        if caller.admin {
            return Ok(());
        }
        let denial = Denial {
            code: ErrorCode::Forbidden,
            msg: format!("only an admin user may {what}"),
        };
        self.record_denial(caller, app, Op::Req.as_str(), topic.as_str(), &denial);
        Err(denial)
    }

    /// May this service make this service-only request?
    pub fn check_service_request(&self, service: Service, topic: &Topic) -> Result<(), Denial> {
        let allowed = service_requests(service).contains(&topic.as_str());
        service_may(allowed, || {
            format!("service {service:?} may not request {topic} on its own")
        })
    }

    /// May this service listen to this pattern?
    pub fn check_service_listen(&self, service: Service, pattern: &Pattern) -> Result<(), Denial> {
        let allowed = service_listens(service)
            .iter()
            .any(|p| *p == pattern.as_str());
        service_may(allowed, || {
            format!("service {service:?} may not listen to {pattern}")
        })
    }

    /// May this service publish on this topic?
    pub fn check_service_publish(&self, service: Service, topic: &Topic) -> Result<(), Denial> {
        let allowed = service_publishes(service)
            .iter()
            .filter_map(|p| Pattern::parse(p).ok())
            .any(|p| p.matches(topic));
        service_may(allowed, || {
            format!("service {service:?} may not publish {topic}")
        })
    }

    /// The paths `app`'s `cap` is limited to for this user, or None when it is not limited
    /// (or the app lacks it: the topic check says so).
    pub fn scope(&self, user_id: i64, app: &str, cap: Capability) -> Option<PathScope> {
        let catalog = self.catalog();
        let manifest = catalog.effective(user_id, app)?;
        let paths = manifest.permissions.get(&cap)?.paths();
        if paths.is_empty() {
            return None;
        }
        // Checked when the manifest was loaded; a scope that does not compile covers nothing.
        Some(PathScope::new(paths).unwrap_or_else(|_| PathScope::new(&[]).expect("empty")))
    }

    /// May `app`, acting for `caller`, touch `path` (tidy, absolute) through `cap`
    /// (`vfs_read` or `vfs_write`)? The topic is decided by [`Perms::check`]; this is the
    /// part of the user's files the app's manifest limits the capability to. Denials are
    /// audited as the topic's are.
    pub fn check_path(
        &self,
        caller: &Caller,
        app: &str,
        cap: Capability,
        path: &str,
    ) -> Result<(), Denial> {
        let Some(scope) = self.scope(caller.user_id, app, cap) else {
            return Ok(());
        };
        if scope.covers(path) {
            return Ok(());
        }
        let catalog = self.catalog();
        let paths = catalog
            .effective(caller.user_id, app)
            .and_then(|m| m.permissions.get(&cap).map(|p| p.paths().join(", ")))
            .unwrap_or_default();
        let verb = if cap == Capability::VfsWrite {
            "change"
        } else {
            "read"
        };
        let denial = Denial {
            code: ErrorCode::Forbidden,
            msg: format!(
                "app {app:?} may {verb} only {paths} (its manifest limits `{cap}` to these \
                 paths): {path} is outside them"
            ),
        };
        self.record_denial(caller, app, "path", path, &denial);
        Err(denial)
    }

    /// An app's grants as `user_id` may use them.
    pub fn permissions_of(&self, user_id: i64, app: &str) -> Option<AppPermissions> {
        let catalog = self.catalog();
        let manifest = catalog.effective(user_id, app)?.into_owned();
        let mut topics = vec![];
        for (cap, permission) in &manifest.permissions {
            let reason = match permission.paths() {
                [] => permission.reason().to_owned(),
                paths => format!("{} (only {})", permission.reason(), paths.join(", ")),
            };
            for (ops, topic) in capability_topics(*cap) {
                let ops = [Op::Sub, Op::Serve, Op::Pub, Op::Req]
                    .into_iter()
                    .filter(|op| ops & op.bit() != 0)
                    .map(|op| op.as_str().to_owned())
                    .collect();
                topics.push(sys::Grant {
                    capability: *cap,
                    reason: reason.clone(),
                    ops,
                    topic: (*topic).to_owned(),
                });
            }
        }
        Some(AppPermissions { manifest, topics })
    }
}

/// What a service sees of the permission manager: the manifests and the decisions about
/// paths and admins, never a way to change what is allowed.
#[derive(Clone)]
pub struct PermsView(Arc<Perms>);

impl PermsView {
    pub fn new(perms: Arc<Perms>) -> PermsView {
        PermsView(perms)
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.0.catalog()
    }

    pub fn scope(&self, user_id: i64, app: &str, cap: Capability) -> Option<PathScope> {
        self.0.scope(user_id, app, cap)
    }

    pub fn check_path(
        &self,
        caller: &Caller,
        app: &str,
        cap: Capability,
        path: &str,
    ) -> Result<(), Denial> {
        self.0.check_path(caller, app, cap, path)
    }

    pub fn check_admin(
        &self,
        caller: &Caller,
        app: &str,
        topic: &Topic,
        what: &str,
    ) -> Result<(), Denial> {
        self.0.check_admin(caller, app, topic, what)
    }

    pub fn permissions_of(&self, user_id: i64, app: &str) -> Option<AppPermissions> {
        self.0.permissions_of(user_id, app)
    }
}

/// The install service's one way to change decisions: which apps are installed, for whom,
/// with what grants. Made by the daemon for that service alone.
pub struct InstalledSink(Arc<Perms>);

impl InstalledSink {
    pub fn new(perms: Arc<Perms>) -> InstalledSink {
        InstalledSink(perms)
    }

    pub fn set(&self, installed: InstalledApps) {
        self.0.set_installed(installed);
    }
}

/// The private namespace every app has: `app.<id>.>`.
pub fn own_namespace(app: &str) -> Option<Pattern> {
    Pattern::parse(&api::app_namespace(app)).ok()
}

fn decide(
    catalog: &Catalog,
    caller: &Caller,
    app: &str,
    op: Op,
    pattern: &Pattern,
) -> Result<(), Denial> {
    let forbidden = |msg: String| {
        Err(Denial {
            code: ErrorCode::Forbidden,
            msg,
        })
    };
    if let Some(bound) = &caller.bound_app
        && bound != app
    {
        return forbidden(format!(
            "this token is bound to app {bound:?} and cannot act as {app:?}"
        ));
    }
    let Some(manifest) = catalog.effective(caller.user_id, app) else {
        return forbidden(format!("no app {app:?} is installed for you"));
    };
    if own_namespace(app).is_some_and(|own| own.covers(pattern)) {
        return Ok(());
    }
    match op {
        Op::Serve => {
            return forbidden(format!(
                "app {app:?} may only serve topics under app.{app}.>; {pattern} belongs to a service"
            ));
        }
        Op::Req if caller.delegated && USERS_OWN_REQUESTS.contains(&pattern.as_str()) => {
            return forbidden(format!(
                "{pattern} is for the user themselves, not for app {app:?} acting for them"
            ));
        }
        Op::Req if OPEN.iter().any(|open| open.covers(pattern)) => return Ok(()),
        Op::Req | Op::Sub | Op::Pub => {}
    }
    let mut missing = None;
    for (cap, grants) in GRANTS.iter() {
        if !grants
            .iter()
            .any(|g| g.ops & op.bit() != 0 && g.pattern.covers(pattern))
        {
            continue;
        }
        if !manifest.has(*cap) {
            missing.get_or_insert(*cap);
            continue;
        }
        if *cap == Capability::Admin && !caller.admin {
            return forbidden(format!("{} {pattern} needs an admin user", op.as_str()));
        }
        // File events name any file: an app limited to some paths gets none of them.
        if *cap == Capability::VfsRead
            && op == Op::Sub
            && manifest
                .permissions
                .get(cap)
                .is_some_and(|p| !p.paths().is_empty())
        {
            return forbidden(format!(
                "app {app:?} may read only {} of your files, so it gets no file events ({pattern})",
                manifest.permissions[cap].paths().join(", ")
            ));
        }
        return Ok(());
    }
    match missing {
        Some(cap) => forbidden(format!(
            "app {app:?} lacks capability `{cap}` needed to {} {pattern}",
            op.as_str()
        )),
        None if !pattern.is_literal() => forbidden(format!(
            "no single capability of app {app:?} covers the pattern {pattern}: subscribe to each area on its own"
        )),
        None => forbidden(format!("no capability allows {} on {pattern}", op.as_str())),
    }
}

fn read_manifests(dir: &Path) -> Catalog {
    let mut catalog = Catalog::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            catalog.errors.push(ManifestError {
                file: dir.display().to_string(),
                field: "(directory)".into(),
                problem: e.to_string(),
            });
            return catalog;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    for path in paths {
        match read_manifest(&path) {
            Ok(manifest) => {
                catalog.apps.insert(manifest.id.clone(), manifest);
            }
            Err(e) => catalog.errors.push(e),
        }
    }
    catalog
}

fn read_manifest(path: &Path) -> Result<Manifest, ManifestError> {
    let file = path.display().to_string();
    let fail = |field: &str, problem: String| ManifestError {
        file: file.clone(),
        field: field.into(),
        problem,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail("(document)", e.to_string()))?;
    if meta.len() > MAX_MANIFEST_BYTES as u64 {
        return Err(fail(
            "(document)",
            format!("{} bytes; the limit is {MAX_MANIFEST_BYTES}", meta.len()),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail("(document)", e.to_string()))?;
    let manifest = Manifest::from_json(&file, &text)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if stem != manifest.id {
        return Err(fail(
            "id",
            format!("{:?} must match the file name {stem:?}", manifest.id),
        ));
    }
    Ok(manifest)
}

/// A service's own request, listening or publishing: allowed, or refused saying what.
fn service_may(allowed: bool, what: impl FnOnce() -> String) -> Result<(), Denial> {
    match allowed {
        true => Ok(()),
        false => Err(Denial {
            code: ErrorCode::Forbidden,
            msg: what(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(admin: bool, bound: Option<&str>) -> Caller {
        Caller {
            user_id: 1,
            user: "ana".into(),
            admin,
            guest: false,
            bound_app: bound.map(str::to_owned),
            token_expires_at: None,
            ..Caller::default()
        }
    }

    fn catalog() -> Catalog {
        let mut catalog = Catalog::default();
        for text in [
            r#"{"id":"files","name":"Files","version":"0.1.0","permissions":{"vfs_read":"browse","vfs_write":"save"}}"#,
            r#"{"id":"cli","name":"CLI","version":"0.1.0","permissions":{"admin":"manage","chat":"talk"}}"#,
        ] {
            let m = Manifest::from_json("t", text).unwrap();
            catalog.apps.insert(m.id.clone(), m);
        }
        catalog
    }

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn capabilities_open_exactly_their_topics() {
        let c = catalog();
        let ana = caller(false, None);
        assert!(decide(&c, &ana, "files", Op::Req, &p("vfs.read")).is_ok());
        assert!(decide(&c, &ana, "files", Op::Sub, &p("vfs.events.>")).is_ok());
        assert!(decide(&c, &ana, "files", Op::Sub, &p("vfs.events.written")).is_ok());
        let e = decide(&c, &ana, "files", Op::Req, &p("chat.post")).unwrap_err();
        assert!(e.msg.contains("lacks capability `chat`"), "{}", e.msg);
        let e = decide(&c, &ana, "files", Op::Sub, &p("chat.room.>")).unwrap_err();
        assert!(e.msg.contains("lacks capability `chat`"), "{}", e.msg);
        // Rooms' events come from the chat service alone: no app publishes them.
        assert!(decide(&c, &ana, "cli", Op::Pub, &p("chat.room.general.message")).is_err());
        assert!(decide(&c, &ana, "cli", Op::Sub, &p("chat.room.>")).is_ok());
        assert!(decide(&c, &ana, "files", Op::Pub, &p("vfs.read")).is_err());
        assert!(decide(&c, &ana, "files", Op::Sub, &p("vfs.>")).is_err());
        assert!(decide(&c, &ana, "files", Op::Sub, &p(">")).is_err());
        assert!(decide(&c, &ana, "files", Op::Req, &p("nobody.maps.this")).is_err());
    }

    #[test]
    fn the_session_capability_opens_every_session_topic_and_nothing_else_does() {
        let mut c = catalog();
        let desktop = Manifest::from_json(
            "t",
            r#"{"id":"desktop","name":"Desktop","version":"0.1.0","permissions":{"session":"layouts"}}"#,
        )
        .unwrap();
        c.apps.insert(desktop.id.clone(), desktop);
        let ana = caller(false, None);
        for topic in api::session::TOPICS {
            assert!(
                decide(&c, &ana, "desktop", Op::Req, &p(topic)).is_ok(),
                "{topic}"
            );
            let e = decide(&c, &ana, "files", Op::Req, &p(topic)).unwrap_err();
            assert!(e.msg.contains("lacks capability `session`"), "{}", e.msg);
        }
        assert!(decide(&c, &ana, "desktop", Op::Sub, &p("session.save")).is_err());
        assert!(decide(&c, &ana, "desktop", Op::Serve, &p("session.load")).is_err());
    }

    #[test]
    fn open_topics_own_namespace_and_serving() {
        let c = catalog();
        let ana = caller(false, None);
        assert!(decide(&c, &ana, "files", Op::Req, &p("sys.whoami")).is_ok());
        assert!(decide(&c, &ana, "files", Op::Serve, &p("app.files.echo")).is_ok());
        assert!(decide(&c, &ana, "files", Op::Sub, &p("app.files.>")).is_ok());
        assert!(decide(&c, &ana, "files", Op::Pub, &p("app.cli.x")).is_err());
        assert!(decide(&c, &ana, "files", Op::Serve, &p("sys.whoami")).is_err());
        assert!(decide(&c, &ana, "files", Op::Serve, &p("vfs.read")).is_err());
    }

    #[test]
    fn app_binding_unknown_apps_and_admin() {
        let c = catalog();
        let bound = caller(true, Some("files"));
        let e = decide(&c, &bound, "cli", Op::Req, &p("sys.ping")).unwrap_err();
        assert!(e.msg.contains("bound to app"));
        assert!(decide(&c, &caller(false, None), "ghost", Op::Req, &p("sys.ping")).is_err());
        let e = decide(&c, &caller(false, None), "cli", Op::Req, &p("sys.user.add")).unwrap_err();
        assert!(e.msg.contains("admin"));
        assert!(decide(&c, &caller(true, None), "cli", Op::Req, &p("sys.user.add")).is_ok());
    }

    #[test]
    fn an_app_acting_for_its_user_never_touches_their_credentials() {
        let c = catalog();
        let delegated = Caller {
            delegated: true,
            ..caller(true, None)
        };
        for topic in USERS_OWN_REQUESTS {
            assert!(decide(&c, &caller(false, None), "cli", Op::Req, &p(topic)).is_ok());
            let e = decide(&c, &delegated, "cli", Op::Req, &p(topic)).unwrap_err();
            assert!(e.msg.contains("for the user themselves"), "{}", e.msg);
        }
        assert!(decide(&c, &delegated, "cli", Op::Req, &p("sys.token.list")).is_ok());
    }

    #[tokio::test]
    async fn reading_the_manifests_dir_never_reloads_it_and_a_write_does() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"id":"a","name":"A","version":"1.0.0","permissions":{}}"#,
        )
        .unwrap();
        let perms = Perms::load(dir.path(), AuditLog::disabled());
        let _watcher = perms.watch().unwrap();
        let before = perms.generation();
        for _ in 0..5 {
            for entry in std::fs::read_dir(dir.path()).unwrap() {
                let _ = std::fs::read(entry.unwrap().path());
            }
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(perms.generation(), before, "reads started a reload");
        std::fs::write(
            dir.path().join("b.json"),
            r#"{"id":"b","name":"B","version":"1.0.0","permissions":{}}"#,
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while perms.generation() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "a new manifest was not loaded"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Once settled, it stays settled: the reload's own reads start nothing.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let settled = perms.generation();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(perms.generation(), settled, "the watcher spins");
    }

    #[test]
    fn services_make_only_their_own_service_requests() {
        assert!(service_topics(Service::Sys).contains(&"sys.ping"));
        let dir = tempfile::tempdir().unwrap();
        let perms = Perms::load(dir.path(), AuditLog::disabled());
        let rescan = Topic::parse("vfs.rescan").unwrap();
        assert!(
            perms
                .check_service_request(Service::Compute, &rescan)
                .is_ok()
        );
        assert!(perms.check_service_request(Service::Sys, &rescan).is_err());
        let read = Topic::parse("vfs.read").unwrap();
        assert!(
            perms
                .check_service_request(Service::Compute, &read)
                .is_err()
        );
    }

    #[test]
    fn the_capability_table_in_the_protocol_doc_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let (begin, end) = ("<!-- capabilities:begin -->\n", "<!-- capabilities:end -->");
        let start = doc.find(begin).expect("the doc marks its capability table") + begin.len();
        let stop = doc.find(end).expect("the doc marks the table's end");
        let generated = capability_table();
        if std::env::var_os("AETHER_UPDATE_DOCS").is_some() {
            let updated = format!("{}{generated}{}", &doc[..start], &doc[stop..]);
            std::fs::write(path, updated).unwrap();
            return;
        }
        assert!(
            doc[start..stop] == generated,
            "the capability table in docs/protocol.md is stale: run \
             AETHER_UPDATE_DOCS=1 cargo test -p aetherd capability_table"
        );
    }

    #[test]
    fn every_service_topic_is_opened_by_a_capability_or_open_or_left_to_services() {
        for service in Service::ALL {
            for topic in service_topics(service) {
                let pattern = p(topic);
                let by_capability = Capability::ALL.into_iter().any(|cap| {
                    capability_topics(cap)
                        .iter()
                        .any(|(_, granted)| p(granted).covers(&pattern))
                });
                let open = OPEN_REQUESTS.contains(topic);
                let internal = Service::ALL
                    .into_iter()
                    .any(|s| service_requests(s).contains(topic));
                assert!(
                    by_capability || open || internal,
                    "{topic} is served but nothing lets anyone request it"
                );
            }
        }
    }

    #[test]
    fn bad_manifests_are_skipped_and_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("good.json"),
            r#"{"id":"good","name":"G","version":"1.0.0"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.json"), "{ nope").unwrap();
        std::fs::write(
            dir.path().join("odd.json"),
            r#"{"id":"odd","name":"O","version":"1.0.0","permissions":{"root":"all"}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("other.json"),
            r#"{"id":"else","name":"E","version":"1.0.0"}"#,
        )
        .unwrap();
        let catalog = read_manifests(dir.path());
        assert_eq!(catalog.apps.keys().collect::<Vec<_>>(), ["good"]);
        assert_eq!(catalog.errors.len(), 3);
        assert!(
            catalog
                .errors
                .iter()
                .any(|e| e.file.ends_with("broken.json") && e.field == "(document)")
        );
        assert!(
            catalog
                .errors
                .iter()
                .any(|e| e.file.ends_with("odd.json") && e.field == "permissions")
        );
        assert!(
            catalog
                .errors
                .iter()
                .any(|e| e.file.ends_with("other.json") && e.field == "id")
        );
    }
}
