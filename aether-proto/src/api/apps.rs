//! `apps.*`: installing, updating and removing apps from catalogs or local bundles, with the
//! user's consent to each capability. A bundle is one `.tar.gz` (a `manifest.json`, its WASI
//! entry module, optional files); its SHA-256 is its identity. Installs are per user: each user
//! has their own version of an app and their own grants (bundle files are shared by hash).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::calls;
use crate::Capability;

fn is_false(value: &bool) -> bool {
    !*value
}

super::event::kind_events! {
    /// The install service's events: `apps.events.installed|updated|uninstalled`
    /// ([`AppEvent`]) and `apps.events.progress` ([`Progress`]).
    AppEvents, AppEventKind, "apps.events", "apps.events.*",
    { Installed => "installed", Updated => "updated", Uninstalled => "uninstalled", Progress => "progress" }
}

/// Where `apps.*` events go.
pub const EVENTS: &str = <AppEvents as super::Event>::PATTERN;

/// What the configured catalogs offer, newest version of each app first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Words that must all appear in an app's id, name or description (any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CatalogAnswer {
    /// Each configured catalog, and what went wrong reading it, if anything.
    pub catalogs: Vec<CatalogSource>,
    /// One entry per app (its newest version), sorted by name.
    pub apps: Vec<CatalogApp>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CatalogSource {
    /// `builtin`, a folder, or an `http(s)://` URL.
    pub location: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CatalogApp {
    pub id: String,
    pub name: String,
    /// The newest version offered.
    pub version: String,
    /// Every version offered, newest first.
    pub versions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The catalog it comes from (its location).
    pub catalog: String,
    /// The bundle's size in bytes and its SHA-256 (hex).
    pub size: u64,
    pub sha256: String,
    pub signature: Signature,
    /// What it asks for, each with its reason.
    pub capabilities: Vec<Requested>,
    /// The version installed for you, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<String>,
}

/// A capability an app asks for, with the reason it gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Requested {
    pub capability: Capability,
    pub reason: String,
    /// For `vfs_read` and `vfs_write`: the only paths it is asked for (none: all your files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

impl Requested {
    /// The reason, and the paths it is limited to, as the consent dialog says them.
    pub fn described(&self) -> String {
        match self.paths.as_slice() {
            [] => self.reason.clone(),
            paths => format!("{} (only {})", self.reason, paths.join(", ")),
        }
    }
}

/// Who vouches for a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Signature {
    /// Signed by a publisher whose key the daemon trusts.
    Verified { publisher: String },
    /// Signed, but by a publisher the daemon has no key for.
    UnknownPublisher { publisher: String },
    /// Not signed.
    Unsigned,
}

/// Where a bundle comes from: a catalog's app (`id`, optionally `version`), a bundle in your
/// files (`path`), or the bundle's bytes (`data`, base64).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// A local bundle's ed25519 signature over its SHA-256 digest (base64), and who signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
}

/// Check a bundle and say what installing it would mean, without installing anything.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Inspect(pub Source);

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BundleInfo {
    pub id: String,
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub sha256: String,
    pub size: u64,
    pub signature: Signature,
    pub capabilities: Vec<Requested>,
    /// The version installed for you, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<String>,
    /// Capabilities you have not granted yet (all of them for a new app).
    pub needs_consent: Vec<Capability>,
    /// Said before installing: an unsigned bundle, a downgrade…
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Install (or update to) a bundle. `consent` must name every capability the app asks for;
/// anything less installs nothing and says what is missing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Install {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(default)]
    pub consent: Vec<Capability>,
    /// The SHA-256 (hex) `apps.inspect` showed: the bundle must be that one, so what was
    /// consented to is what gets installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Install an older version over a newer one.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_downgrade: bool,
}

impl Install {
    /// Install what `source` names, with `consent`.
    pub fn of(source: Source, consent: Vec<Capability>) -> Install {
        Install {
            id: source.id,
            version: source.version,
            path: source.path,
            data: source.data,
            signature: source.signature,
            publisher: source.publisher,
            consent,
            sha256: None,
            allow_downgrade: false,
        }
    }

    /// Where the bundle comes from.
    pub fn source(&self) -> Source {
        Source {
            id: self.id.clone(),
            version: self.version.clone(),
            path: self.path.clone(),
            data: self.data.clone(),
            signature: self.signature.clone(),
            publisher: self.publisher.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Installed {
    pub id: String,
    pub version: String,
    pub sha256: String,
    /// The version it replaced, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
    pub granted: Vec<Capability>,
    pub signature: Signature,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// From the request to the app being runnable.
    pub took_ms: u64,
}

/// Update an installed app to the newest version its catalogs offer. Capabilities it did not
/// ask for before need `consent` again.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Update {
    pub id: String,
    #[serde(default)]
    pub consent: Vec<Capability>,
    /// As in `apps.install`: the newest bundle must be the one inspected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Remove an app of yours: your grants and its tokens go; its files go when no user keeps them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Uninstall {
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Uninstalled {
    pub id: String,
    pub version: String,
    /// No other user keeps it, so its files are gone too.
    pub files_removed: bool,
    pub tokens_revoked: u64,
}

/// The apps you can use: built in, and installed by you.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct List {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AppList {
    pub apps: Vec<AppInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AppInfo {
    pub id: String,
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Shipped with the daemon (or placed in its manifests folder), not installed.
    pub built_in: bool,
    /// Has a program to launch.
    pub runnable: bool,
    /// What it may do for you: its manifest's capabilities you granted.
    pub capabilities: Vec<Capability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_at_ms: Option<u64>,
}

/// `apps.events.installed`, `updated` and `uninstalled`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AppEvent {
    pub id: String,
    pub version: String,
}

/// `apps.events.progress`: how far an install is.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Progress {
    pub id: String,
    /// `fetch`, `verify`, `stage`, `commit`, `done`.
    pub step: String,
    /// Steps done of `of` (the bar).
    pub done: u32,
    pub of: u32,
}

calls! {
    Catalog => CatalogAnswer, "apps.catalog";
    Inspect => BundleInfo, "apps.inspect";
    Install => Installed, "apps.install";
    Update => Installed, "apps.update";
    Uninstall => Uninstalled, "apps.uninstall";
    List => AppList, "apps.list";
}

/// The `aether` import module a guest program may use beside WASI, and its functions.
pub const HOST_MODULE: &str = "aether";
pub const HOST_FUNCTIONS: &[&str] = &["request", "publish", "subscribe", "next", "result"];
