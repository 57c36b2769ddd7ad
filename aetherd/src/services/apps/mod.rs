//! `apps.*`: the install service. A bundle comes from a catalog, the user's files or the
//! request itself; it is checked whole in memory (`bundle`), its signature judged (`trust`),
//! the user's consent compared with what it asks for, its files staged and renamed into place
//! (`shelf`), and the store's row written last (`records`): kill -9 at any point leaves the
//! app installed or not at all. The permission manager then takes the new apps and grants.

mod builtin;
pub mod bundle;
pub mod catalog;
mod records;
mod shelf;
mod trust;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use aether_proto::api::apps::{self as api, Requested, Signature};
use aether_proto::api::{Call as _, vfs};
use aether_proto::manifest::parse_version;
use aether_proto::{Capability, ErrorBody, ErrorCode, Manifest};

use super::{Handler, Incoming, OnBehalf, Publisher, Reply, Requester, Seat};
use crate::config::AppsConfig;
use crate::identity::Identity;
use crate::perms::Perms;
use crate::store::Store;

use bundle::Bundle;
use catalog::{Entry, Fetcher, Location};
use records::AppRow;
use shelf::Shelf;
use trust::Trust;

/// Apps one user may have installed: each may hold up to `max_bundle_mb` on disk.
pub const MAX_APPS_PER_USER: usize = 100;

/// Capabilities an installed app may not ask for: they stay with the daemon's own tools.
const NOT_FOR_INSTALLED: [Capability; 2] = [Capability::Admin, Capability::AppsManage];

pub struct AppsService {
    store: Store,
    identity: Identity,
    perms: Arc<Perms>,
    publisher: Publisher,
    requester: Requester,
    shelf: Arc<Shelf>,
    trust: Trust,
    fetcher: Fetcher,
    catalogs: Vec<Location>,
    limits: bundle::Limits,
    /// One install, update or uninstall at a time: each reads, then writes, the rows.
    writing: tokio::sync::Mutex<()>,
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
) -> anyhow::Result<()> {
    let service = AppsService {
        perms: seat.perms(),
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
        store,
        identity,
        writing: tokio::sync::Mutex::new(()),
    };
    // Before anything is served: the permission manager knows the installed apps, and what an
    // install interrupted by a crash left behind is gone.
    let (apps, _) = service.store.call_sync(|c| records::all(c))?;
    let keep: HashSet<(String, String)> = apps
        .iter()
        .map(|a| (a.id.clone(), a.sha256.clone()))
        .collect();
    match service.shelf.sweep(&keep) {
        Ok(0) => {}
        Ok(n) => tracing::info!("removed {n} unfinished or unused app folders"),
        Err(e) => tracing::warn!("cannot clean the apps folder: {e}"),
    }
    service.refresh_perms_sync()?;
    seat.run(Arc::new(service));
    Ok(())
}

impl Handler for AppsService {
    async fn handle(self: &Arc<Self>, request: &Incoming) -> Reply {
        match request.topic.as_str() {
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

fn requested(manifest: &Manifest) -> Vec<Requested> {
    manifest
        .permissions
        .iter()
        .map(|(capability, reason)| Requested {
            capability: *capability,
            reason: reason.clone(),
        })
        .collect()
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A bundle's bytes and what its source says about it.
struct Fetched {
    bytes: Vec<u8>,
    publisher: Option<String>,
    signature: Option<String>,
    /// What a catalog said it is: (id, version); the manifest must agree.
    claimed: Option<(String, String)>,
}

/// A bundle checked and judged: everything an install needs to decide.
struct Checked {
    bundle: Bundle,
    signature: Signature,
    warnings: Vec<String>,
    /// The installed row for its id, if any.
    current: Option<AppRow>,
    /// What this user granted the installed app, if they have it.
    granted: Option<BTreeSet<Capability>>,
    /// How many apps this user has installed.
    users_apps: usize,
}

impl Checked {
    fn needs_consent(&self) -> Vec<Capability> {
        let granted = self.granted.clone().unwrap_or_default();
        self.bundle
            .manifest
            .permissions
            .keys()
            .filter(|c| !granted.contains(c))
            .copied()
            .collect()
    }
}

impl AppsService {
    fn refresh_perms_sync(&self) -> anyhow::Result<()> {
        let (apps, grants) = self.store.call_sync(|c| records::all(c))?;
        self.perms
            .set_installed(records::for_perms(&apps, &grants, |row| {
                self.shelf.dir_of(&row.id, &row.sha256)
            }));
        Ok(())
    }

    async fn rows(&self) -> Result<(Vec<AppRow>, Vec<records::GrantRow>), ErrorBody> {
        self.store.call(|c| records::all(c)).await.map_err(internal)
    }

    /// Every catalog's index, in order; a catalog that fails says why and the others still count.
    async fn indexes(&self) -> Vec<(Location, Result<catalog::Index, ErrorBody>)> {
        let mut out = vec![];
        for location in &self.catalogs {
            out.push((location.clone(), self.fetcher.index(location).await));
        }
        out
    }

    /// The entry a catalog offers for `id` (at `version`, else its newest), first catalog first.
    async fn find(&self, id: &str, version: Option<&str>) -> Result<(Location, Entry), ErrorBody> {
        let mut problems = vec![];
        for (location, index) in self.indexes().await {
            let index = match index {
                Ok(index) => index,
                Err(e) => {
                    problems.push(e.msg);
                    continue;
                }
            };
            let newest = index
                .entries
                .into_iter()
                .filter(|e| e.id == id && version.is_none_or(|v| e.version == v))
                .max_by_key(|e| parse_version(&e.version));
            if let Some(entry) = newest {
                return Ok((location, entry));
            }
        }
        let what = match version {
            Some(v) => format!("{id} {v}"),
            None => id.to_owned(),
        };
        let mut msg = format!("no catalog offers {what}");
        if !problems.is_empty() {
            msg.push_str(&format!(" (and {})", problems.join("; ")));
        }
        Err(ErrorBody::new(ErrorCode::NotFound, msg))
    }

    async fn fetch(&self, on: &OnBehalf, source: &api::Source) -> Result<Fetched, ErrorBody> {
        match (&source.id, &source.path, &source.data) {
            (Some(id), None, None) => {
                if source.signature.is_some() {
                    return Err(bad(
                        "`signature` is for local bundles; a catalog's entry carries its own",
                    ));
                }
                let (location, entry) = self.find(id, source.version.as_deref()).await?;
                let bytes = self.fetcher.bundle(&location, &entry).await?;
                Ok(Fetched {
                    bytes,
                    publisher: entry.publisher,
                    signature: entry.signature,
                    claimed: Some((entry.id, entry.version)),
                })
            }
            (None, Some(path), None) => Ok(Fetched {
                bytes: self.read_user_file(on, path).await?,
                publisher: source.publisher.clone(),
                signature: source.signature.clone(),
                claimed: None,
            }),
            (None, None, Some(data)) => {
                if data.len() as u64 / 4 * 3 > self.limits.packed_bytes + 3 {
                    return Err(ErrorBody::new(
                        ErrorCode::TooLarge,
                        format!(
                            "the bundle is larger than the {} MiB accepted",
                            self.limits.packed_bytes >> 20
                        ),
                    ));
                }
                let bytes = BASE64
                    .decode(data)
                    .map_err(|e| bad(format!("`data` is not base64: {e}")))?;
                Ok(Fetched {
                    bytes,
                    publisher: source.publisher.clone(),
                    signature: source.signature.clone(),
                    claimed: None,
                })
            }
            _ => Err(bad(
                "name one bundle: `id` (from a catalog), `path` (in your files) or `data` (base64)",
            )),
        }
    }

    /// A bundle in the user's files, read as the asking app (the VFS checks it may).
    async fn read_user_file(&self, on: &OnBehalf, path: &str) -> Result<Vec<u8>, ErrorBody> {
        let mut bytes = Vec::new();
        loop {
            let ask = vfs::Read {
                path: path.to_owned(),
                offset: bytes.len() as u64,
                encoding: vfs::Encoding::Base64,
                ..vfs::Read::default()
            };
            let answer = self
                .requester
                .request_as(on, &ask, Duration::from_secs(30))
                .await
                .map_err(|e| ErrorBody::new(e.code, format!("reading {path}: {}", e.msg)))?;
            if answer.size > self.limits.packed_bytes {
                return Err(ErrorBody::new(
                    ErrorCode::TooLarge,
                    format!(
                        "{path} is larger than the {} MiB a bundle may be",
                        self.limits.packed_bytes >> 20
                    ),
                ));
            }
            let chunk = BASE64.decode(&answer.data).map_err(internal)?;
            bytes.extend_from_slice(&chunk);
            if answer.eof || chunk.is_empty() {
                return Ok(bytes);
            }
        }
    }

    /// Fetch, unpack and check a bundle, and see where it stands for this user.
    async fn check(&self, request: &Incoming, source: &api::Source) -> Result<Checked, ErrorBody> {
        let fetched = self.fetch(&request.on_behalf(), source).await?;
        let limits = self.limits;
        let bytes = fetched.bytes;
        let bundle = tokio::task::spawn_blocking(move || bundle::open(&bytes, limits))
            .await
            .map_err(internal)??;
        let manifest = &bundle.manifest;
        if let Some((id, version)) = &fetched.claimed
            && (*id != manifest.id || *version != manifest.version)
        {
            return Err(bad(format!(
                "the catalog offers {id} {version}, but the bundle's manifest says {} {}",
                manifest.id, manifest.version
            )));
        }
        let catalog = self.perms.catalog();
        if catalog.apps.contains_key(&manifest.id) && !catalog.is_installed(&manifest.id) {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                format!(
                    "{:?} is the id of a built-in app; an installed app cannot take it",
                    manifest.id
                ),
            ));
        }
        if let Some(cap) = NOT_FOR_INSTALLED.iter().find(|c| manifest.has(**c)) {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                format!(
                    "manifest.json: field `permissions`: an installed app may not ask for `{cap}`"
                ),
            ));
        }
        let (signature, warnings) = self.trust.judge(
            &bundle.sha256,
            fetched.publisher.as_deref(),
            fetched.signature.as_deref(),
        )?;
        let (apps, grants) = self.rows().await?;
        let current = apps.into_iter().find(|a| a.id == manifest.id);
        let user_id = request.caller.user_id;
        let users_apps = grants.iter().filter(|g| g.user_id == user_id).count();
        let granted = grants
            .into_iter()
            .find(|g| g.user_id == user_id && g.app_id == manifest.id)
            .map(|g| g.capabilities);
        let mut checked = Checked {
            bundle,
            signature,
            warnings,
            current,
            granted,
            users_apps,
        };
        if let Some(older) = self.downgrade(&checked) {
            checked
                .warnings
                .push(format!("{older} is installed; this is an older version"));
        }
        Ok(checked)
    }

    /// The installed version when the checked bundle is older than it.
    fn downgrade(&self, checked: &Checked) -> Option<String> {
        let current = checked.current.as_ref()?;
        let new = parse_version(&checked.bundle.manifest.version)?;
        let old = parse_version(&current.version)?;
        (new < old).then(|| current.version.clone())
    }

    async fn inspect(
        &self,
        request: &Incoming,
        ask: api::Inspect,
    ) -> Result<api::BundleInfo, ErrorBody> {
        let checked = self.check(request, &ask.0).await?;
        let m = &checked.bundle.manifest;
        Ok(api::BundleInfo {
            id: m.id.clone(),
            name: m.name.clone(),
            version: m.version.clone(),
            description: m.description.clone(),
            sha256: checked.bundle.sha256.clone(),
            size: checked.bundle.size,
            signature: checked.signature.clone(),
            capabilities: requested(m),
            installed: checked
                .granted
                .as_ref()
                .and(checked.current.as_ref())
                .map(|c| c.version.clone()),
            needs_consent: checked.needs_consent(),
            warnings: checked.warnings.clone(),
        })
    }

    fn progress(&self, request: &Incoming, id: &str, step: &str, done: u32) {
        let event = api::Progress {
            id: id.to_owned(),
            step: step.to_owned(),
            done,
            of: 4,
        };
        self.publisher
            .publish(&request.on_behalf(), "apps.events.progress", &event);
    }

    async fn install(
        &self,
        request: &Incoming,
        ask: api::Install,
    ) -> Result<api::Installed, ErrorBody> {
        let started = Instant::now();
        let _writing = self.writing.lock().await;
        let label = ask.id.clone().unwrap_or_else(|| "bundle".into());
        self.progress(request, &label, "fetch", 0);
        let checked = self.check(request, &ask.source()).await?;
        self.progress(request, &checked.bundle.manifest.id, "verify", 1);
        self.commit(request, checked, &ask.consent, ask.allow_downgrade, started)
            .await
    }

    /// Consent, then files, then the row: the install itself once a bundle is checked.
    async fn commit(
        &self,
        request: &Incoming,
        checked: Checked,
        consent: &[Capability],
        allow_downgrade: bool,
        started: Instant,
    ) -> Result<api::Installed, ErrorBody> {
        let manifest = checked.bundle.manifest.clone();
        if let Some(older) = self.downgrade(&checked)
            && !allow_downgrade
        {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                format!(
                    "{} {older} is installed and {} is older; nothing was installed \
                     (allow_downgrade to go back)",
                    manifest.id, manifest.version
                ),
            ));
        }
        if checked.granted.is_none() && checked.users_apps >= MAX_APPS_PER_USER {
            return Err(ErrorBody::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "you have {MAX_APPS_PER_USER} apps installed, the most one user may:                      uninstall one first"
                ),
            ));
        }
        let missing: Vec<Capability> = checked
            .needs_consent()
            .into_iter()
            .filter(|c| !consent.contains(c))
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
        let id = manifest.id.clone();
        self.progress(request, &id, "stage", 2);
        let bundle = Arc::new(checked.bundle);
        let placed = {
            let (bundle, shelf) = (bundle.clone(), self.shelf.clone());
            tokio::task::spawn_blocking(move || shelf.place(&bundle))
                .await
                .map_err(internal)?
        };
        placed.map_err(|e| internal(format!("cannot write the app's files: {e}")))?;
        self.progress(request, &id, "commit", 3);
        let row = AppRow {
            id: id.clone(),
            version: manifest.version.clone(),
            sha256: bundle.sha256.clone(),
            manifest: manifest.clone(),
            signature: checked.signature.clone(),
            installed_ms: unix_ms(),
        };
        let granted: BTreeSet<Capability> = manifest.permissions.keys().copied().collect();
        let user_id = request.caller.user_id;
        let replaced = {
            let (row, granted) = (row.clone(), granted.clone());
            self.store
                .call(move |c| records::commit(c, &row, user_id, &granted))
                .await
                .map_err(internal)?
        };
        if let Some((_, old_sha)) = &replaced
            && *old_sha != row.sha256
        {
            self.remove_files(&id, old_sha).await;
        }
        self.refresh_perms().await?;
        let event = api::AppEvent {
            id: id.clone(),
            version: row.version.clone(),
        };
        let kind = if replaced.is_some() {
            "updated"
        } else {
            "installed"
        };
        self.publisher
            .publish(&request.on_behalf(), &format!("apps.events.{kind}"), &event);
        self.progress(request, &id, "done", 4);
        Ok(api::Installed {
            id,
            version: row.version,
            sha256: row.sha256,
            replaced: replaced.map(|(version, _)| version),
            granted: granted.into_iter().collect(),
            signature: checked.signature,
            warnings: checked.warnings,
            took_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// A bundle's folder, once no row names it.
    async fn remove_files(&self, id: &str, sha256: &str) {
        let (shelf, id, sha256) = (self.shelf.clone(), id.to_owned(), sha256.to_owned());
        let _ = tokio::task::spawn_blocking(move || shelf.remove(&id, &sha256)).await;
    }

    async fn refresh_perms(&self) -> Result<(), ErrorBody> {
        let (apps, grants) = self.rows().await?;
        self.perms
            .set_installed(records::for_perms(&apps, &grants, |row| {
                self.shelf.dir_of(&row.id, &row.sha256)
            }));
        Ok(())
    }

    async fn update(
        &self,
        request: &Incoming,
        ask: api::Update,
    ) -> Result<api::Installed, ErrorBody> {
        let started = Instant::now();
        let _writing = self.writing.lock().await;
        let (apps, grants) = self.rows().await?;
        let mine = grants
            .iter()
            .any(|g| g.user_id == request.caller.user_id && g.app_id == ask.id);
        let Some(current) = apps.into_iter().find(|a| a.id == ask.id).filter(|_| mine) else {
            return Err(ErrorBody::new(
                ErrorCode::NotFound,
                format!("{:?} is not installed for you", ask.id),
            ));
        };
        let (_, entry) = self.find(&ask.id, None).await?;
        if parse_version(&entry.version) <= parse_version(&current.version) {
            return Ok(api::Installed {
                id: current.id,
                version: current.version.clone(),
                sha256: current.sha256,
                replaced: None,
                granted: grants
                    .into_iter()
                    .find(|g| g.user_id == request.caller.user_id && g.app_id == ask.id)
                    .map(|g| g.capabilities.into_iter().collect())
                    .unwrap_or_default(),
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
        let checked = self.check(request, &source).await?;
        self.progress(request, &ask.id, "verify", 1);
        self.commit(request, checked, &ask.consent, false, started)
            .await
    }

    async fn uninstall(
        &self,
        request: &Incoming,
        ask: api::Uninstall,
    ) -> Result<api::Uninstalled, ErrorBody> {
        let _writing = self.writing.lock().await;
        let catalog = self.perms.catalog();
        if catalog.apps.contains_key(&ask.id) && !catalog.is_installed(&ask.id) {
            return Err(ErrorBody::new(
                ErrorCode::Conflict,
                format!("{:?} is built in; it cannot be uninstalled", ask.id),
            ));
        }
        let user_id = request.caller.user_id;
        let version = catalog
            .apps
            .get(&ask.id)
            .map(|m| m.version.clone())
            .unwrap_or_default();
        let id = ask.id.clone();
        let (existed, gone, tokens) = self
            .store
            .call(move |c| {
                let tokens = records::app_tokens(c, user_id, &id)?;
                let (existed, gone) = records::forget(c, user_id, &id)?;
                Ok((existed, gone, tokens))
            })
            .await
            .map_err(internal)?;
        if !existed {
            return Err(ErrorBody::new(
                ErrorCode::NotFound,
                format!("{:?} is not installed for you", ask.id),
            ));
        }
        let (revoked, _) = self
            .identity
            .revoke_tokens(user_id, &tokens)
            .await
            .map_err(ErrorBody::from)?;
        self.refresh_perms().await?;
        if let Some(sha) = &gone {
            self.remove_files(&ask.id, sha).await;
        }
        self.publisher.publish(
            &request.on_behalf(),
            "apps.events.uninstalled",
            &api::AppEvent {
                id: ask.id.clone(),
                version: version.clone(),
            },
        );
        Ok(api::Uninstalled {
            id: ask.id,
            version,
            files_removed: gone.is_some(),
            tokens_revoked: revoked,
        })
    }

    async fn list(&self, request: &Incoming) -> Result<api::AppList, ErrorBody> {
        let user_id = request.caller.user_id;
        let catalog = self.perms.catalog();
        let (rows, _) = self.rows().await?;
        let rows: BTreeMap<String, AppRow> = rows.into_iter().map(|r| (r.id.clone(), r)).collect();
        let mut apps = vec![];
        for id in catalog.apps.keys() {
            let Some(manifest) = catalog.effective(user_id, id) else {
                continue;
            };
            let installed = catalog.is_installed(id);
            let row = rows.get(id).filter(|_| installed);
            apps.push(api::AppInfo {
                id: id.clone(),
                name: manifest.name.clone(),
                version: manifest.version.clone(),
                description: manifest.description.clone(),
                built_in: !installed,
                runnable: manifest.entry.is_some(),
                capabilities: manifest.permissions.keys().copied().collect(),
                signature: row.map(|r| r.signature.clone()),
                installed_at_ms: row.map(|r| r.installed_ms),
            });
        }
        apps.sort_by_key(|a| a.name.to_lowercase());
        Ok(api::AppList { apps })
    }

    async fn catalog(
        &self,
        request: &Incoming,
        ask: api::Catalog,
    ) -> Result<api::CatalogAnswer, ErrorBody> {
        let words: Vec<String> = ask
            .query
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let catalog = self.perms.catalog();
        let user_id = request.caller.user_id;
        let mut sources = vec![];
        let mut apps: BTreeMap<String, api::CatalogApp> = BTreeMap::new();
        for (location, index) in self.indexes().await {
            let index = match index {
                Ok(index) => index,
                Err(e) => {
                    sources.push(api::CatalogSource {
                        location: location.describe(),
                        name: String::new(),
                        error: Some(e.msg),
                    });
                    continue;
                }
            };
            sources.push(api::CatalogSource {
                location: location.describe(),
                name: index.name.clone(),
                error: (!index.skipped.is_empty())
                    .then(|| format!("entries skipped: {}", index.skipped.join("; "))),
            });
            let mut by_id: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
            for entry in index.entries {
                by_id.entry(entry.id.clone()).or_default().push(entry);
            }
            for (id, mut entries) in by_id {
                if apps.contains_key(&id) {
                    continue; // An earlier catalog offers it.
                }
                entries.sort_by_key(|e| std::cmp::Reverse(parse_version(&e.version)));
                let newest = &entries[0];
                let Some(manifest) = &newest.parsed else {
                    continue;
                };
                let haystack = format!(
                    "{} {} {}",
                    id,
                    manifest.name,
                    manifest.description.as_deref().unwrap_or_default()
                )
                .to_lowercase();
                if !words.iter().all(|w| haystack.contains(w)) {
                    continue;
                }
                let signature = self
                    .trust
                    .judge(
                        &newest.sha256,
                        newest.publisher.as_deref(),
                        newest.signature.as_deref(),
                    )
                    .map(|(s, _)| s)
                    .unwrap_or(Signature::Unsigned);
                let installed = catalog
                    .is_installed(&id)
                    .then(|| catalog.effective(user_id, &id).map(|m| m.version.clone()))
                    .flatten();
                apps.insert(
                    id.clone(),
                    api::CatalogApp {
                        id: id.clone(),
                        name: manifest.name.clone(),
                        version: newest.version.clone(),
                        versions: entries.iter().map(|e| e.version.clone()).collect(),
                        description: manifest.description.clone(),
                        catalog: location.describe(),
                        size: newest.size,
                        sha256: newest.sha256.clone(),
                        signature,
                        capabilities: requested(manifest),
                        installed,
                    },
                );
            }
        }
        let mut apps: Vec<api::CatalogApp> = apps.into_values().collect();
        apps.sort_by_key(|a| a.name.to_lowercase());
        Ok(api::CatalogAnswer {
            catalogs: sources,
            apps,
        })
    }
}
