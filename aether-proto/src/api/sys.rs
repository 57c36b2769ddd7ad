//! `sys.*`: who am I, ping, stats, tokens, users, permissions, audit, stop.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::calls;
use crate::capability::Capability;
use crate::frame::UserInfo;
use crate::manifest::Manifest;

/// Who the daemon says the caller is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Whoami {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WhoamiAnswer {
    pub user: UserInfo,
    /// The app the request was made as.
    pub app: String,
    /// Set when the connection's token can act only as this app.
    pub bound_app: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ping {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Pong {
    pub pong: bool,
}

/// Counters for everyone; where the daemon lives for admins.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stats {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StatsAnswer {
    pub version: String,
    pub uptime_secs: u64,
    pub hub: BusStats,
    /// Loaded app manifests.
    pub apps: usize,
    /// Manifests that failed to load, with the file and field at fault.
    pub manifest_errors: Vec<String>,
    /// Audit entries dropped under a flood of denials.
    pub audit_dropped: u64,
    /// The TCP address clients connect to, if any.
    pub tcp: Option<String>,
    /// Whether TCP clients must speak TLS (`wss://`).
    #[serde(default)]
    pub tls: bool,
    /// Admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// Admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
}

/// The bus's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BusStats {
    pub connections: u64,
    pub subscriptions: usize,
    pub published: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub slow_consumers: u64,
    pub requests: u64,
    pub pending_requests: usize,
    pub no_responders: u64,
    pub timeouts: u64,
}

/// Mint a token. An app-bound token can only mint tokens for its own app, and never one
/// that outlives it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCreate {
    /// Bind the token to this app: it can act as nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// A note to recognize the token by (at most 100 characters are kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Lifetime in seconds (default: the daemon's `token_ttl_days`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TokenCreated {
    /// Shown once; the daemon keeps only its hash.
    pub token: String,
    /// Its id, for `sys.token.list` and `sys.token.revoke`.
    pub id: i64,
    pub app: Option<String>,
    pub user: String,
    /// Seconds since the Unix epoch.
    pub expires_at: Option<i64>,
}

/// The caller's tokens (never their secrets).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenList {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TokenListAnswer {
    pub tokens: Vec<TokenInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenInfo {
    pub id: i64,
    pub app: Option<String>,
    pub label: String,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// The token this connection signed in with.
    pub current: bool,
}

/// Revoke one token by id, or every token of the caller but the current one. Connections
/// signed in with a revoked token are closed with `bye auth_expired`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRevoke {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Every token but the one this connection signed in with.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_others: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TokenRevoked {
    /// How many tokens were revoked.
    pub revoked: u64,
    /// How many live connections were closed.
    pub closed: u64,
}

/// Is `name` a user name: `[a-z][a-z0-9_.-]{0,31}`.
pub fn valid_user_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 32
        && bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        })
}

/// Add a user (admin); its `name` is a [`valid_user_name`].
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserAdd {
    pub name: String,
    pub password: String,
    #[serde(default)]
    pub admin: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UserAdded {
    pub id: i64,
    pub name: String,
    pub admin: bool,
}

/// Every user (admin).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserList {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UserListAnswer {
    pub users: Vec<UserRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub admin: bool,
    pub guest: bool,
    pub has_password: bool,
    pub created_at: i64,
}

/// Change a password: one's own, or anyone's as an admin. The user's other tokens are
/// revoked (and their connections closed) unless `keep_tokens` is set.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Passwd {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub password: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_tokens: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PasswdAnswer {
    pub name: String,
    pub changed: bool,
    /// Tokens revoked with the change.
    pub revoked: u64,
}

/// One app's capabilities and the topics they open, or every app.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PermsShow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PermsAnswer {
    /// With `app`: its manifest and what each capability opens.
    App {
        app: Manifest,
        grants: Vec<Grant>,
        own_namespace: String,
    },
    /// Without: every app, and the manifests that failed to load.
    All {
        apps: Vec<AppSummary>,
        errors: Vec<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Grant {
    pub capability: Capability,
    pub reason: String,
    /// `sub`, `serve`, `pub`, `req`.
    pub ops: Vec<String>,
    pub topic: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AppSummary {
    pub id: String,
    pub name: String,
    pub version: String,
    pub capabilities: Vec<String>,
}

/// Stop the daemon gracefully (admin).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DaemonStop {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Stopping {
    pub stopping: bool,
    pub pid: u32,
}

/// Recent permission denials (admin).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditList {
    /// At most this many, newest first (default 50, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditListAnswer {
    pub entries: Vec<AuditEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    /// Seconds since the Unix epoch.
    pub at: i64,
    pub user: Option<String>,
    pub app: Option<String>,
    pub op: String,
    pub topic: String,
    pub code: String,
    pub reason: String,
}

calls! {
    Whoami => WhoamiAnswer, "sys.whoami";
    Ping => Pong, "sys.ping";
    Stats => StatsAnswer, "sys.stats";
    TokenCreate => TokenCreated, "sys.token.create";
    TokenList => TokenListAnswer, "sys.token.list";
    TokenRevoke => TokenRevoked, "sys.token.revoke";
    UserAdd => UserAdded, "sys.user.add";
    UserList => UserListAnswer, "sys.user.list";
    Passwd => PasswdAnswer, "sys.user.passwd";
    PermsShow => PermsAnswer, "sys.perms.show";
    DaemonStop => Stopping, "sys.daemon.stop";
    AuditList => AuditListAnswer, "sys.audit.list";
}
