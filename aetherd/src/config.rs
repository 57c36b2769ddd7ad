//! Daemon configuration: defaults, then `config.toml` in the data dir, then
//! `AETHER_*` environment variables, then command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// Per-connection and per-request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest frame a client may send; a larger one closes the connection.
    pub max_frame_bytes: usize,
    /// How long a new connection has to send its hello.
    pub hello_timeout_ms: u64,
    pub max_subscriptions: usize,
    /// Frames queued for one client before it is dropped as a slow consumer.
    pub outbound_queue: usize,
    pub max_pending_requests: usize,
    pub default_request_timeout_ms: u64,
    pub max_request_timeout_ms: u64,
    /// How long a login or app token lives unless asked otherwise.
    pub token_ttl_days: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 4 << 20,
            hello_timeout_ms: 5_000,
            max_subscriptions: 10_000,
            outbound_queue: 16_384,
            max_pending_requests: 1_024,
            default_request_timeout_ms: 10_000,
            max_request_timeout_ms: 300_000,
            token_ttl_days: 30,
        }
    }
}

impl Limits {
    pub fn hello_timeout(&self) -> Duration {
        Duration::from_millis(self.hello_timeout_ms)
    }
}

/// Password sign-in throttling, per user name and per address.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthLimits {
    /// Failed sign-ins before each further try waits (250 ms, doubling, at most 4 s).
    pub failures_before_delay: u32,
    pub first_delay_ms: u64,
    /// Failed sign-ins after which the user name or address is locked out.
    pub max_failures: u32,
    pub lockout_secs: u64,
    /// Failures older than this are forgotten.
    pub failure_window_secs: u64,
    /// Password hashes checked at once; more sign-ins wait their turn.
    pub max_concurrent_checks: usize,
    /// Sign-ins that may wait for a check; beyond this they are refused at once.
    pub max_waiting_checks: usize,
}

impl Default for AuthLimits {
    fn default() -> Self {
        AuthLimits {
            failures_before_delay: 3,
            first_delay_ms: 250,
            max_failures: 10,
            lockout_secs: 300,
            failure_window_secs: 900,
            max_concurrent_checks: 2,
            max_waiting_checks: 32,
        }
    }
}

/// The virtual file system's per-user limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VfsLimits {
    /// Bytes each user may store.
    pub quota_bytes: u64,
    /// Files (and symlinks) each user may store; directories are free.
    pub quota_files: u64,
    /// Largest chunk one `vfs.read` returns or one `vfs.write` frame should carry.
    pub max_chunk_bytes: usize,
    /// Chunked uploads a user may have open at once.
    pub max_uploads: usize,
    /// Put sample programs in `/examples` of each new user's root.
    pub examples: bool,
}

impl Default for VfsLimits {
    fn default() -> Self {
        VfsLimits {
            quota_bytes: 10 << 30,
            quota_files: 1_000_000,
            max_chunk_bytes: 2 << 20,
            max_uploads: 16,
            examples: true,
        }
    }
}

/// The compute service's limits. An app's manifest may ask for less, never more.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComputeLimits {
    pub default_timeout_ms: u64,
    pub max_timeout_ms: u64,
    pub default_memory_mb: u32,
    pub max_memory_mb: u32,
    pub default_output_kb: u32,
    pub max_output_kb: u32,
    /// Jobs one user may run at once; more wait in their queue.
    pub jobs_per_user: usize,
    /// Jobs that may wait per user before new ones are refused.
    pub queue_per_user: usize,
    /// Jobs running at once across all users.
    pub jobs_total: usize,
}

impl Default for ComputeLimits {
    fn default() -> Self {
        ComputeLimits {
            default_timeout_ms: 30_000,
            max_timeout_ms: 600_000,
            default_memory_mb: 64,
            max_memory_mb: 1024,
            default_output_kb: 1024,
            max_output_kb: 64 * 1024,
            jobs_per_user: 4,
            queue_per_user: 64,
            jobs_total: 8,
        }
    }
}

/// The install service (`[apps]`): where apps come from, whom to trust, how large a bundle may be.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppsConfig {
    /// Catalogs, in order: `builtin` (the sample apps inside aetherd), a folder holding an
    /// `index.json`, or an `http(s)://` URL of one.
    pub catalogs: Vec<String>,
    /// What to do with unsigned bundles and unknown publishers.
    pub signatures: SignaturePolicy,
    /// Trusted publishers: name → ed25519 public key (32 bytes, base64).
    pub publishers: std::collections::BTreeMap<String, String>,
    /// The largest bundle accepted, packed and unpacked, and how many files it may hold.
    pub max_bundle_mb: u64,
    pub max_unpacked_mb: u64,
    pub max_files: usize,
    /// The most all of one user's installed apps' files may take.
    pub max_space_per_user_mb: u64,
    /// The longest a catalog's index or bundle may take to download.
    pub fetch_timeout_ms: u64,
}

impl Default for AppsConfig {
    fn default() -> Self {
        AppsConfig {
            catalogs: vec!["builtin".into()],
            signatures: SignaturePolicy::Warn,
            publishers: Default::default(),
            max_bundle_mb: 16,
            max_unpacked_mb: 64,
            max_files: 256,
            max_space_per_user_mb: 1024,
            fetch_timeout_ms: 30_000,
        }
    }
}

/// `require`: only bundles signed by a trusted publisher install; `warn`: others install after
/// a warning in the consent prompt; `off`: signatures are not looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignaturePolicy {
    Require,
    Warn,
    Off,
}

/// The AI service: its providers, timeouts, retries and quota (`[ai]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AiConfig {
    /// The provider a request that names none goes to (default: the first).
    pub default: Option<String>,
    pub providers: Vec<AiProvider>,
    /// Tokens (in and out) one user may spend per UTC day; none: no limit.
    pub daily_token_quota: Option<u64>,
    pub connect_timeout_ms: u64,
    /// The longest wait for the first byte of an answer, and between two pieces of a stream.
    pub idle_timeout_ms: u64,
    /// The longest a whole answer may take.
    pub total_timeout_ms: u64,
    /// Tries after the first, for 429 and 5xx answers and lost connections.
    pub max_retries: usize,
    /// The longest `Retry-After` waited for; a longer one fails the request at once.
    pub max_retry_wait_ms: u64,
    /// Streams one user may have running at once.
    pub streams_per_user: usize,
    /// A stream whose events reach no listener for this long is stopped (its client left).
    pub abandon_after_ms: u64,
    /// While a provider says nothing, a stream's `notice` says so this often.
    pub notice_every_ms: u64,
}

impl Default for AiConfig {
    fn default() -> Self {
        AiConfig {
            default: None,
            providers: Vec::new(),
            daily_token_quota: None,
            connect_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            total_timeout_ms: 600_000,
            max_retries: 3,
            max_retry_wait_ms: 60_000,
            streams_per_user: 8,
            abandon_after_ms: 5_000,
            notice_every_ms: 10_000,
        }
    }
}

/// One configured provider (`[[ai.providers]]`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiProvider {
    pub name: String,
    pub kind: aether_proto::api::ai::ProviderKind,
    /// Default: Gemini's or OpenAI's public API.
    pub base_url: Option<String>,
    pub model: String,
    pub embed_model: Option<String>,
    /// The environment variable that holds the key (default `GEMINI_API_KEY` or
    /// `OPENAI_API_KEY`); a local server may need none.
    pub api_key_env: Option<String>,
    /// The key itself, if it must live in the file (keep the file private).
    pub api_key: Option<secrecy::SecretString>,
}

impl std::fmt::Debug for AiProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiProvider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("has_key", &self.api_key.is_some())
            .finish()
    }
}

impl AiConfig {
    /// With no provider in the file: one from well-known environment variables
    /// (`GEMINI_API_KEY` or `GEMINI_BASE_URL`, with `GEMINI_MODEL`; `OPENAI_API_KEY` or
    /// `OPENAI_BASE_URL`, with `OPENAI_MODEL`).
    fn add_from_environment(&mut self) {
        self.add_from(|name| std::env::var(name).ok());
    }

    fn add_from(&mut self, var: impl Fn(&str) -> Option<String>) {
        use aether_proto::api::ai::ProviderKind;
        if !self.providers.is_empty() {
            return;
        }
        if var("GEMINI_API_KEY").is_some() || var("GEMINI_BASE_URL").is_some() {
            self.providers.push(AiProvider {
                name: "gemini".into(),
                kind: ProviderKind::Gemini,
                base_url: var("GEMINI_BASE_URL"),
                model: var("GEMINI_MODEL").unwrap_or_else(|| "gemini-2.5-flash".into()),
                embed_model: Some("gemini-embedding-001".into()),
                api_key_env: None,
                api_key: None,
            });
        }
        if var("OPENAI_API_KEY").is_some() || var("OPENAI_BASE_URL").is_some() {
            self.providers.push(AiProvider {
                name: "openai".into(),
                kind: ProviderKind::Openai,
                base_url: var("OPENAI_BASE_URL"),
                model: var("OPENAI_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
                embed_model: Some("text-embedding-3-small".into()),
                api_key_env: None,
                api_key: None,
            });
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        let mut names = std::collections::HashSet::new();
        for p in &self.providers {
            anyhow::ensure!(
                !p.name.is_empty() && names.insert(p.name.as_str()),
                "ai.providers: every provider needs a name of its own ({:?} is empty or repeated)",
                p.name
            );
            anyhow::ensure!(
                !p.model.is_empty(),
                "ai.providers {:?}: model is empty",
                p.name
            );
            if let Some(url) = &p.base_url {
                anyhow::ensure!(
                    url.starts_with("http://") || url.starts_with("https://"),
                    "ai.providers {:?}: base_url {url:?} is not an http(s) URL",
                    p.name
                );
            }
        }
        if let Some(default) = &self.default {
            anyhow::ensure!(
                self.providers.iter().any(|p| &p.name == default),
                "ai.default names {default:?}, which is not among ai.providers"
            );
        }
        Ok(())
    }
}

/// TLS for the TCP listener: PEM files of the certificate chain and its private key.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The folder of users' file roots, one folder per user id.
#[derive(Debug, Clone)]
pub struct UserRoots(PathBuf);

impl UserRoots {
    pub fn of(&self, user_id: i64) -> PathBuf {
        self.0.join(user_id.to_string())
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.0
    }
}

/// Where the daemon listens on TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Off,
    /// The default address: if it is taken, the daemon goes on with the Unix socket only.
    Default(SocketAddr),
    /// Asked for explicitly: failing to bind is fatal.
    Explicit(SocketAddr),
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7470";

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub runtime_dir: PathBuf,
    pub listen: Listen,
    /// Serve the TCP listener over TLS (`wss://`).
    pub tls: Option<TlsFiles>,
    /// Allow plain `ws://` on an address other than loopback.
    pub allow_plaintext: bool,
    pub manifests_dir: PathBuf,
    /// Name of the local owner account (signs in over the Unix socket by peer credentials).
    pub owner: String,
    /// Allow anonymous guest users.
    pub guest: bool,
    pub limits: Limits,
    pub auth: AuthLimits,
    pub vfs: VfsLimits,
    pub compute: ComputeLimits,
    pub ai: AiConfig,
    pub apps: AppsConfig,
    /// The environment the daemon was started with, recorded (once it holds the data dir)
    /// for clients that start it again; the binary sets it, tests leave it empty.
    pub started_with: Option<std::collections::BTreeMap<String, String>>,
}

/// The optional `config.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    tls: Option<TlsFiles>,
    allow_plaintext: Option<bool>,
    owner: Option<String>,
    guest: Option<bool>,
    manifests_dir: Option<PathBuf>,
    runtime_dir: Option<PathBuf>,
    limits: Option<Limits>,
    auth: Option<AuthLimits>,
    vfs: Option<VfsLimits>,
    compute: Option<ComputeLimits>,
    ai: Option<AiConfig>,
    apps: Option<AppsConfig>,
}

pub use aether_proto::paths::{
    data_dir as default_data_dir, runtime_dir as default_runtime_dir, socket_path,
};

pub fn parse_listen(s: &str) -> anyhow::Result<Listen> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(Listen::Off);
    }
    let addr: SocketAddr = s
        .parse()
        .with_context(|| format!("listen address {s:?} is not HOST:PORT or off"))?;
    Ok(Listen::Explicit(addr))
}

fn truthy(value: &str) -> bool {
    matches!(value, "1" | "true" | "yes" | "on")
}

fn default_owner() -> String {
    let raw = std::env::var("USER").unwrap_or_else(|_| "owner".into());
    let name: String = raw
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect();
    if aether_proto::api::sys::valid_user_name(&name) {
        name
    } else {
        "owner".into()
    }
}

impl Config {
    /// Defaults for a data dir, with no file or environment applied. Tests start here.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        let data_dir = data_dir.into();
        Config {
            runtime_dir: data_dir.join("run"),
            manifests_dir: data_dir.join("manifests"),
            listen: Listen::Default(DEFAULT_LISTEN.parse().expect("valid default")),
            tls: None,
            allow_plaintext: false,
            owner: default_owner(),
            guest: false,
            limits: Limits::default(),
            auth: AuthLimits::default(),
            vfs: VfsLimits::default(),
            compute: ComputeLimits::default(),
            ai: AiConfig::default(),
            apps: AppsConfig::default(),
            started_with: None,
            data_dir,
        }
    }

    /// Defaults, `config.toml`, then the environment.
    pub fn load(data_dir: Option<PathBuf>) -> anyhow::Result<Config> {
        // An explicit data dir keeps its socket inside it, so instances never collide.
        let mut config = match data_dir {
            Some(dir) => Config::for_data_dir(dir),
            None => {
                let dir = default_data_dir();
                let mut config = Config::for_data_dir(&dir);
                config.runtime_dir = default_runtime_dir(&dir);
                config
            }
        };
        let data_dir = config.data_dir.clone();
        let file = data_dir.join("config.toml");
        if file.exists() {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let parsed: FileConfig = toml::from_str(&text)
                .with_context(|| format!("{} is not valid", file.display()))?;
            config.apply(parsed)?;
        }
        if let Ok(listen) = std::env::var("AETHER_LISTEN") {
            config.listen = parse_listen(&listen)?;
        }
        if let (Ok(cert), Ok(key)) = (
            std::env::var("AETHER_TLS_CERT"),
            std::env::var("AETHER_TLS_KEY"),
        ) {
            config.tls = Some(TlsFiles {
                cert: cert.into(),
                key: key.into(),
            });
        }
        if let Ok(allow) = std::env::var("AETHER_ALLOW_PLAINTEXT") {
            config.allow_plaintext = truthy(&allow);
        }
        if let Ok(guest) = std::env::var("AETHER_GUEST") {
            config.guest = truthy(&guest);
        }
        if let Ok(owner) = std::env::var("AETHER_OWNER") {
            config.owner = owner;
        }
        config.ai.add_from_environment();
        // Validated once flags are applied too (`Daemon::start`).
        Ok(config)
    }

    fn apply(&mut self, file: FileConfig) -> anyhow::Result<()> {
        if let Some(listen) = file.listen {
            self.listen = parse_listen(&listen)?;
        }
        if let Some(tls) = file.tls {
            self.tls = Some(tls);
        }
        if let Some(allow) = file.allow_plaintext {
            self.allow_plaintext = allow;
        }
        if let Some(owner) = file.owner {
            self.owner = owner;
        }
        if let Some(guest) = file.guest {
            self.guest = guest;
        }
        if let Some(dir) = file.manifests_dir {
            self.manifests_dir = dir;
        }
        if let Some(dir) = file.runtime_dir {
            self.runtime_dir = dir;
        }
        if let Some(limits) = file.limits {
            self.limits = limits;
        }
        if let Some(auth) = file.auth {
            self.auth = auth;
        }
        if let Some(vfs) = file.vfs {
            self.vfs = vfs;
        }
        if let Some(compute) = file.compute {
            self.compute = compute;
        }
        if let Some(ai) = file.ai {
            self.ai = ai;
        }
        if let Some(apps) = file.apps {
            self.apps = apps;
        }
        Ok(())
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if let Listen::Default(addr) | Listen::Explicit(addr) = &self.listen {
            anyhow::ensure!(
                addr.ip().is_loopback() || self.tls.is_some() || self.allow_plaintext,
                "refusing to listen in plain text on {addr}, which is not a loopback address: \
                 configure [tls] cert and key (or AETHER_TLS_CERT and AETHER_TLS_KEY), \
                 or set allow_plaintext = true if something else encrypts the traffic"
            );
        }
        anyhow::ensure!(
            aether_proto::api::sys::valid_user_name(&self.owner),
            "owner {:?} is not a valid user name",
            self.owner
        );
        let a = &self.apps;
        anyhow::ensure!(
            (1..=1024).contains(&a.max_bundle_mb) && (1..=4096).contains(&a.max_unpacked_mb),
            "apps.max_bundle_mb must be 1 to 1024 and apps.max_unpacked_mb 1 to 4096"
        );
        let l = &self.limits;
        anyhow::ensure!(
            l.max_frame_bytes >= 1024,
            "limits.max_frame_bytes must be at least 1024"
        );
        anyhow::ensure!(
            l.outbound_queue >= 16,
            "limits.outbound_queue must be at least 16"
        );
        anyhow::ensure!(
            l.max_subscriptions >= 1,
            "limits.max_subscriptions must be at least 1"
        );
        anyhow::ensure!(
            l.hello_timeout_ms >= 10,
            "limits.hello_timeout_ms must be at least 10"
        );
        anyhow::ensure!(
            self.auth.max_failures >= 1 && self.auth.max_concurrent_checks >= 1,
            "auth.max_failures and auth.max_concurrent_checks must be at least 1"
        );
        self.ai.validate()?;
        Ok(())
    }

    pub fn socket_path(&self) -> PathBuf {
        socket_path(&self.runtime_dir)
    }

    /// Users' file roots, one folder per user id.
    pub fn vfs_dir(&self) -> PathBuf {
        self.data_dir.join("vfs")
    }

    /// Where each user's file root is: the VFS serves it, compute preopens it.
    pub fn user_roots(&self) -> UserRoots {
        UserRoots(self.vfs_dir())
    }

    pub fn user_root(&self, user_id: i64) -> PathBuf {
        self.user_roots().of(user_id)
    }

    /// Temp files for atomic writes: beside the roots, never inside one.
    pub fn vfs_scratch_dir(&self) -> PathBuf {
        self.data_dir.join("vfs-scratch")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("aether.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_off_loopback_needs_tls_or_an_explicit_yes() {
        let mut config = Config::for_data_dir("/tmp/aether-config-test");
        config.owner = "ana".into();
        config.validate().expect("loopback in plain text is fine");
        config.listen = parse_listen("0.0.0.0:7470").unwrap();
        let refused = config.validate().unwrap_err().to_string();
        assert!(
            refused.contains("refusing to listen in plain text on 0.0.0.0:7470"),
            "{refused}"
        );
        config.listen = parse_listen("[::]:7470").unwrap();
        assert!(config.validate().is_err());
        config.allow_plaintext = true;
        config.validate().expect("told so explicitly");
        config.allow_plaintext = false;
        config.tls = Some(TlsFiles {
            cert: "cert.pem".into(),
            key: "key.pem".into(),
        });
        config.validate().expect("with TLS");
    }

    #[test]
    fn gemini_may_be_pointed_at_another_server_from_the_environment() {
        let vars = |name: &str| match name {
            "GEMINI_BASE_URL" => Some("http://127.0.0.1:8080/v1beta".to_owned()),
            "GEMINI_MODEL" => Some("gemma-3".to_owned()),
            _ => None,
        };
        let mut ai = AiConfig::default();
        ai.add_from(vars);
        assert_eq!(ai.providers.len(), 1);
        let gemini = &ai.providers[0];
        assert_eq!(
            gemini.base_url.as_deref(),
            Some("http://127.0.0.1:8080/v1beta")
        );
        assert_eq!(gemini.model, "gemma-3");
        // The key alone still means Google's own server.
        let mut ai = AiConfig::default();
        ai.add_from(|name| (name == "GEMINI_API_KEY").then(|| "k".to_owned()));
        assert_eq!(ai.providers[0].base_url, None);
    }
}
