//! `apps.*`: the install service. A bundle comes from a catalog, the user's files or the
//! request itself; it is checked whole in memory (`bundle`), its signature judged (`trust`),
//! the user's consent compared with what it asks for, its files staged and renamed into place
//! (`shelf`), and the user's row written last (`records`): kill -9 at any point leaves the
//! app installed or not at all. Installs are per user: what one user installs, updates or
//! removes changes nothing for another (bundle files are shared by hash). The permission
//! manager then takes the new rows.

mod builtin;
pub mod bundle;
pub mod catalog;
mod fetch;
mod listing;
mod records;
mod shelf;
mod trust;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::sync::Semaphore;

use aether_proto::api::apps::{self as api, Requested, Signature};
use aether_proto::api::{Call as _, vfs, vm};
use aether_proto::manifest::parse_version;
use aether_proto::{Capability, ErrorBody, ErrorCode, Manifest};

use super::{Handler, Incoming, OnBehalf, Publisher, Reply, Requester, Seat};
use crate::config::AppsConfig;
use crate::identity::Identity;
use crate::perms::{InstalledSink, PermsView};
use crate::store::Store;

use bundle::Bundle;
use catalog::{Entry, Fetcher, Location};
use fetch::Checked;
use records::AppRow;
use shelf::Shelf;
use trust::Trust;

/// Apps one user may have installed: each may hold up to `max_bundle_mb` on disk.
pub const MAX_APPS_PER_USER: usize = 100;

/// Bundles checked and installed at once, daemon-wide: each is held unpacked in memory
/// from the moment it is fetched until it is installed.
const CHECKS_AT_ONCE: usize = 2;
/// Installs, updates and inspections one user may have under way at once; more are refused.
const INSTALLS_PER_USER: usize = 2;
/// The longest compiling an app's entry at install may take (`vm.prepare`).
const PREPARE_TIMEOUT: Duration = Duration::from_secs(150);
/// Steps an install reports progress through.
const STEPS: u32 = 5;

/// The longest catalog search, and its most words.
const MAX_QUERY_BYTES: usize = 200;
const MAX_QUERY_WORDS: usize = 8;

/// Capabilities an installed app may not ask for: they stay with the daemon's own tools.
const NOT_FOR_INSTALLED: [Capability; 2] = [Capability::Admin, Capability::AppsManage];

pub struct AppsService {
    store: Store,
    identity: Identity,
    perms: PermsView,
    /// Tells the permission manager which apps are installed: this service's alone.
    installed: InstalledSink,
    publisher: Publisher,
    requester: Requester,
    shelf: Arc<Shelf>,
    trust: Trust,
    fetcher: Fetcher,
    catalogs: Vec<Location>,
    limits: bundle::Limits,
    /// The most one user's installed apps' files may take.
    space_per_user: u64,
    checking: Semaphore,
    /// How many installs each user has under way.
    under_way: Arc<parking_lot::Mutex<BTreeMap<i64, usize>>>,
    /// One commit or removal at a time: each reads, then writes, the rows and the folders.
    writing: tokio::sync::Mutex<()>,
}

/// One of a user's installs under way; dropped when it ends.
struct Turn {
    under_way: Arc<parking_lot::Mutex<BTreeMap<i64, usize>>>,
    user_id: i64,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut under_way = self.under_way.lock();
        if let Some(n) = under_way.get_mut(&self.user_id) {
            *n -= 1;
            if *n == 0 {
                under_way.remove(&self.user_id);
            }
        }
    }
}

/// Where the install service keeps things.
pub struct Places {
    /// `<data>/apps`: installed bundles.
    pub apps: std::path::PathBuf,
}

pub fn start(
    seat: Seat,
    places: Places,
    config: &AppsConfig,
    store: Store,
    identity: Identity,
    installed: InstalledSink,
) -> anyhow::Result<()> {
    let service = AppsService {
        perms: seat.perms(),
        installed,
        publisher: seat.publisher(),
        requester: seat.requester(),
        shelf: Arc::new(Shelf::new(places.apps)),
        trust: Trust::new(config.signatures, &config.publishers)?,
        fetcher: Fetcher::new(
            Duration::from_millis(config.fetch_timeout_ms),
            config.max_bundle_mb << 20,
        )?,
        catalogs: config.catalogs.iter().map(|c| Location::parse(c)).collect(),
        limits: bundle::Limits {
            packed_bytes: config.max_bundle_mb << 20,
            unpacked_bytes: config.max_unpacked_mb << 20,
            files: config.max_files,
        },
        space_per_user: config.max_space_per_user_mb << 20,
        store,
        identity,
        checking: Semaphore::new(CHECKS_AT_ONCE),
        under_way: Arc::default(),
        writing: tokio::sync::Mutex::new(()),
    };
    // Before anything is served: the permission manager knows the installed apps, and what an
    // install interrupted by a crash left behind is gone.
    let (rows, in_use) = service.store.call_sync(|c| records::all(c))?;
    match service.shelf.sweep(&in_use) {
        Ok(0) => {}
        Ok(n) => tracing::info!("removed {n} unfinished or unused app folders"),
        Err(e) => tracing::warn!("cannot clean the apps folder: {e}"),
    }
    service.set_perms(&rows);
    seat.run(Arc::new(service));
    Ok(())
}

impl Handler for AppsService {
    async fn handle(self: &Arc<Self>, request: &Incoming) -> Reply {
        let topic = request.topic.as_str();
        if request.caller.guest && topic != api::List::TOPIC && topic != api::Catalog::TOPIC {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                "guest users cannot install apps",
            ));
        }
        match topic {
            api::Catalog::TOPIC => request.call(|ask| self.catalog(request, ask)).await,
            api::Inspect::TOPIC => request.call(|ask| self.inspect(request, ask)).await,
            api::Install::TOPIC => request.call(|ask| self.install(request, ask)).await,
            api::Update::TOPIC => request.call(|ask| self.update(request, ask)).await,
            api::Uninstall::TOPIC => request.call(|ask| self.uninstall(request, ask)).await,
            api::List::TOPIC => request.call(|_: api::List| self.list(request)).await,
            _ => Err(request.unknown()),
        }
    }
}

fn bad(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadFrame, msg)
}

fn internal(e: impl std::fmt::Display) -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, e.to_string())
}

fn not_yours(id: &str) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::NotFound,
        format!("{id:?} is not installed for you"),
    )
}

fn requested(manifest: &Manifest) -> Vec<Requested> {
    manifest
        .permissions
        .iter()
        .map(|(capability, permission)| Requested {
            capability: *capability,
            reason: permission.reason().to_owned(),
            paths: permission.paths().to_vec(),
        })
        .collect()
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Where the checked bundle stands for one user.
struct Standing {
    /// Their row for this app, if they have it.
    current: Option<AppRow>,
    /// How many apps they have, and the space their files take (the other apps').
    count: usize,
    others_bytes: u64,
}

impl Standing {
    fn needs_consent(&self, manifest: &Manifest) -> Vec<Capability> {
        let granted = self
            .current
            .as_ref()
            .map(|c| c.granted.clone())
            .unwrap_or_default();
        manifest
            .permissions
            .keys()
            .filter(|c| !granted.contains(c))
            .copied()
            .collect()
    }

    /// Their version when the bundle is older than it.
    fn downgrade(&self, manifest: &Manifest) -> Option<String> {
        let current = self.current.as_ref()?;
        let new = parse_version(&manifest.version)?;
        let old = parse_version(&current.version)?;
        (new < old).then(|| current.version.clone())
    }
}

impl AppsService {
    fn set_perms(&self, rows: &[AppRow]) {
        self.installed.set(records::for_perms(rows, |row| {
            self.shelf.dir_of(&row.id, &row.sha256)
        }));
    }

    async fn refresh_perms(&self) -> Result<(), ErrorBody> {
        let (rows, _) = self
            .store
            .call(|c| records::all(c))
            .await
            .map_err(internal)?;
        self.set_perms(&rows);
        Ok(())
    }

    async fn standing(&self, user_id: i64, id: &str) -> Result<Standing, ErrorBody> {
        let id = id.to_owned();
        self.store
            .call(move |c| {
                let (mine, count) = records::all_of_user(c, user_id)?;
                let others_bytes = mine
                    .iter()
                    .filter(|r| r.id != id)
                    .map(|r| r.unpacked_bytes)
                    .sum();
                Ok(Standing {
                    current: mine.into_iter().find(|r| r.id == id),
                    count,
                    others_bytes,
                })
            })
            .await
            .map_err(internal)
    }

    /// A turn for one more install of this user's, or `rate_limited` when they have
    /// [`INSTALLS_PER_USER`] under way: nobody can fill the daemon's memory with installs.
    fn turn(&self, user_id: i64) -> Result<Turn, ErrorBody> {
        let mut under_way = self.under_way.lock();
        let mine = under_way.entry(user_id).or_default();
        if *mine >= INSTALLS_PER_USER {
            return Err(ErrorBody::new(
                ErrorCode::RateLimited,
                format!(
                    "you have {INSTALLS_PER_USER} installs under way, the most at once; \
                     wait for one to end"
                ),
            )
            .retry_after(Duration::from_secs(1)));
        }
        *mine += 1;
        Ok(Turn {
            under_way: self.under_way.clone(),
            user_id,
        })
    }

    async fn inspect(
        &self,
        request: &Incoming,
        ask: api::Inspect,
    ) -> Result<api::BundleInfo, ErrorBody> {
        let (checked, _turn, _slot) = self.checked(request, &ask.0).await?;
        let m = &checked.bundle.manifest;
        let standing = self.standing(request.caller.user_id, &m.id).await?;
        let mut warnings = checked.warnings.clone();
        if let Some(older) = standing.downgrade(m) {
            warnings.push(format!("{older} is installed; this is an older version"));
        }
        Ok(api::BundleInfo {
            id: m.id.clone(),
            name: m.name.clone(),
            version: m.version.clone(),
            description: m.description.clone(),
            sha256: checked.bundle.sha256.clone(),
            size: checked.bundle.size,
            signature: checked.signature.clone(),
            capabilities: requested(m),
            installed: standing.current.as_ref().map(|c| c.version.clone()),
            needs_consent: standing.needs_consent(m),
            warnings,
        })
    }

    fn progress(&self, request: &Incoming, id: &str, step: &str, done: u32) {
        let event = api::Progress {
            id: id.to_owned(),
            step: step.to_owned(),
            done,
            of: STEPS,
        };
        self.publisher.publish(
            &request.on_behalf(),
            &api::AppEvents::topic_of(api::AppEventKind::Progress),
            &event,
        );
    }

    async fn install(
        &self,
        request: &Incoming,
        ask: api::Install,
    ) -> Result<api::Installed, ErrorBody> {
        let started = Instant::now();
        let label = ask.id.clone().unwrap_or_else(|| "bundle".into());
        self.progress(request, &label, "fetch", 0);
        let (checked, _turn, _slot) = self.checked(request, &ask.source()).await?;
        self.progress(request, &checked.bundle.manifest.id, "verify", 1);
        self.progress(request, &checked.bundle.manifest.id, "compile", 2);
        let wants = Wants {
            consent: &ask.consent,
            sha256: ask.sha256.as_deref(),
            allow_downgrade: ask.allow_downgrade,
        };
        self.commit(request, checked, wants, started).await
    }

    /// Under the lock, with this user's row read again: the pin, the downgrade, the limit and
    /// the consent; then files, then the row.
    async fn commit(
        &self,
        request: &Incoming,
        checked: Checked,
        wants: Wants<'_>,
        started: Instant,
    ) -> Result<api::Installed, ErrorBody> {
        let manifest = checked.bundle.manifest.clone();
        if let Some(pinned) = wants.sha256
            && !pinned.eq_ignore_ascii_case(&checked.bundle.sha256)
        {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                format!(
                    "the bundle is not the one inspected (its SHA-256 is {}, not {pinned}): \
                     the catalog changed it meanwhile; nothing was installed",
                    checked.bundle.sha256
                ),
            ));
        }
        let _writing = self.writing.lock().await;
        let user_id = request.caller.user_id;
        let standing = self.standing(user_id, &manifest.id).await?;
        let unpacked = self.admissible(&standing, &manifest, &checked.bundle, &wants)?;
        let id = manifest.id.clone();
        self.progress(request, &id, "stage", 3);
        let bundle = Arc::new(checked.bundle);
        let placed = {
            let (bundle, shelf) = (bundle.clone(), self.shelf.clone());
            tokio::task::spawn_blocking(move || shelf.place(&bundle))
                .await
                .map_err(internal)?
        };
        placed.map_err(|e| internal(format!("cannot write the app's files: {e}")))?;
        self.progress(request, &id, "commit", 4);
        let row = AppRow {
            user_id,
            id: id.clone(),
            version: manifest.version.clone(),
            sha256: bundle.sha256.clone(),
            manifest: manifest.clone(),
            signature: checked.signature.clone(),
            granted: manifest.permissions.keys().copied().collect(),
            installed_ms: unix_ms(),
            unpacked_bytes: unpacked,
        };
        let replaced = {
            let row = row.clone();
            self.store
                .call(move |c| records::commit(c, &row))
                .await
                .map_err(internal)?
        };
        if let Some((_, old_sha)) = &replaced
            && *old_sha != row.sha256
        {
            self.remove_files_unless_used(&id, old_sha).await;
        }
        self.refresh_perms().await?;
        if replaced.is_some() {
            // The old version's programs and tokens go with its grant: none goes on with
            // rights the update took away (a program's files were opened when it started).
            self.end_old_grant(request, &id).await?;
        }
        let event = api::AppEvent {
            id: id.clone(),
            version: row.version.clone(),
        };
        let kind = if replaced.is_some() {
            api::AppEventKind::Updated
        } else {
            api::AppEventKind::Installed
        };
        self.publisher.publish(
            &request.on_behalf(),
            &api::AppEvents::topic_of(kind),
            &event,
        );
        self.progress(request, &id, "done", STEPS);
        Ok(api::Installed {
            id,
            version: row.version,
            sha256: row.sha256,
            replaced: replaced.map(|(version, _)| version),
            granted: row.granted.into_iter().collect(),
            signature: checked.signature,
            warnings: checked.warnings,
            took_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Whether this user may have this bundle: no downgrade unless allowed, room for one
    /// more app and for its files, consent to all it asks for that they have not granted.
    /// The bytes its files take.
    fn admissible(
        &self,
        standing: &Standing,
        manifest: &Manifest,
        bundle: &Bundle,
        wants: &Wants<'_>,
    ) -> Result<u64, ErrorBody> {
        if let Some(older) = standing.downgrade(manifest)
            && !wants.allow_downgrade
        {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                format!(
                    "you have {} {older}, and {} is older; nothing was installed \
                     (allow_downgrade to go back)",
                    manifest.id, manifest.version
                ),
            ));
        }
        if standing.current.is_none() && standing.count >= MAX_APPS_PER_USER {
            return Err(ErrorBody::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "you have {MAX_APPS_PER_USER} apps installed, the most one user may: \
                     uninstall one first"
                ),
            ));
        }
        let unpacked: u64 = bundle.files.values().map(|f| f.len() as u64).sum();
        if standing.others_bytes + unpacked > self.space_per_user {
            return Err(ErrorBody::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "your apps would take {} MiB, more than the {} MiB each user may have: \
                     uninstall some first",
                    (standing.others_bytes + unpacked) >> 20,
                    self.space_per_user >> 20
                ),
            ));
        }
        let missing: Vec<Capability> = standing
            .needs_consent(manifest)
            .into_iter()
            .filter(|c| !wants.consent.contains(c))
            .collect();
        if !missing.is_empty() {
            let list: Vec<String> = missing
                .iter()
                .map(|c| format!("`{c}` ({})", manifest.permissions[c]))
                .collect();
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                format!(
                    "{} {} needs your consent to {}; nothing was installed",
                    manifest.id,
                    manifest.version,
                    list.join(", ")
                ),
            ));
        }
        Ok(unpacked)
    }

    /// A bundle's folder, once no user's row names it.
    async fn remove_files_unless_used(&self, id: &str, sha256: &str) {
        let (key, sha) = (id.to_owned(), sha256.to_owned());
        let used = self
            .store
            .call(move |c| records::in_use(c, &key, &sha))
            .await
            .unwrap_or(true);
        if used {
            return;
        }
        let (shelf, id, sha256) = (self.shelf.clone(), id.to_owned(), sha256.to_owned());
        let _ = tokio::task::spawn_blocking(move || shelf.remove(&id, &sha256)).await;
    }

    async fn update(
        &self,
        request: &Incoming,
        ask: api::Update,
    ) -> Result<api::Installed, ErrorBody> {
        let started = Instant::now();
        let standing = self.standing(request.caller.user_id, &ask.id).await?;
        let Some(current) = standing.current else {
            return Err(not_yours(&ask.id));
        };
        let (_, entry) = self.find(&ask.id, None).await?;
        if parse_version(&entry.version) <= parse_version(&current.version) {
            return Ok(api::Installed {
                id: current.id,
                version: current.version.clone(),
                sha256: current.sha256,
                replaced: None,
                granted: current.granted.into_iter().collect(),
                signature: current.signature,
                warnings: vec![format!(
                    "{} is the newest version the catalogs offer",
                    current.version
                )],
                took_ms: started.elapsed().as_millis() as u64,
            });
        }
        let source = api::Source {
            id: Some(ask.id.clone()),
            version: Some(entry.version),
            ..api::Source::default()
        };
        self.progress(request, &ask.id, "fetch", 0);
        let (checked, _turn, _slot) = self.checked(request, &source).await?;
        self.progress(request, &ask.id, "verify", 1);
        self.progress(request, &ask.id, "compile", 2);
        let wants = Wants {
            consent: &ask.consent,
            sha256: ask.sha256.as_deref(),
            allow_downgrade: false,
        };
        self.commit(request, checked, wants, started).await
    }

    async fn uninstall(
        &self,
        request: &Incoming,
        ask: api::Uninstall,
    ) -> Result<api::Uninstalled, ErrorBody> {
        if self.perms.catalog().is_builtin(&ask.id) {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                format!("{:?} is built in; it cannot be uninstalled", ask.id),
            ));
        }
        let _writing = self.writing.lock().await;
        let user_id = request.caller.user_id;
        if self.standing(user_id, &ask.id).await?.current.is_none() {
            return Err(not_yours(&ask.id));
        }
        // Its tokens first: a crash after this leaves the app without tokens, never tokens
        // outliving the app.
        let id = ask.id.clone();
        let tokens = self
            .store
            .call(move |c| records::app_tokens(c, user_id, &id))
            .await
            .map_err(internal)?;
        let (revoked, _) = self
            .identity
            .revoke_tokens(user_id, &tokens)
            .await
            .map_err(ErrorBody::from)?;
        let id = ask.id.clone();
        let gone = self
            .store
            .call(move |c| records::forget(c, user_id, &id))
            .await
            .map_err(internal)?
            .ok_or_else(|| not_yours(&ask.id))?;
        self.refresh_perms().await?;
        self.stop_programs(request, &ask.id).await;
        let (version, sha) = gone;
        let key = (ask.id.clone(), sha.clone());
        let still_used = self
            .store
            .call(move |c| records::in_use(c, &key.0, &key.1))
            .await
            .unwrap_or(true);
        self.remove_files_unless_used(&ask.id, &sha).await;
        self.publisher.publish(
            &request.on_behalf(),
            &api::AppEvents::topic_of(api::AppEventKind::Uninstalled),
            &api::AppEvent {
                id: ask.id.clone(),
                version: version.clone(),
            },
        );
        Ok(api::Uninstalled {
            id: ask.id,
            version,
            files_removed: !still_used,
            tokens_revoked: revoked,
        })
    }

    /// An update replaced an app: its tokens are revoked (their connections end) and its
    /// running programs stopped, so what runs has the new grant.
    async fn end_old_grant(&self, request: &Incoming, id: &str) -> Result<(), ErrorBody> {
        let user_id = request.caller.user_id;
        let key = id.to_owned();
        let tokens = self
            .store
            .call(move |c| records::app_tokens(c, user_id, &key))
            .await
            .map_err(internal)?;
        self.identity
            .revoke_tokens(user_id, &tokens)
            .await
            .map_err(ErrorBody::from)?;
        self.stop_programs(request, id).await;
        Ok(())
    }

    /// The user's programs of an app they no longer have: stopped.
    async fn stop_programs(&self, request: &Incoming, id: &str) {
        let on = request.on_behalf();
        let wait = Duration::from_secs(5);
        let jobs = self
            .requester
            .request_internal(&on, &vm::Jobs { job: None }, wait)
            .await;
        let Ok(vm::JobsAnswer::All { jobs }) = jobs else {
            return;
        };
        let path = format!("app:{id}");
        for job in jobs {
            let live = matches!(job.status, vm::JobState::Queued | vm::JobState::Running);
            if live && job.path == path {
                let kill = vm::Kill { job: job.job };
                if let Err(e) = self.requester.request_internal(&on, &kill, wait).await {
                    tracing::warn!("cannot stop a program of the uninstalled {id}: {}", e.msg);
                }
            }
        }
    }
}

/// What the user asked of an install beside the bundle.
struct Wants<'a> {
    consent: &'a [Capability],
    sha256: Option<&'a str>,
    allow_downgrade: bool,
}
