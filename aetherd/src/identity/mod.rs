//! Users and their sign-in.
//!
//! Passwords are hashed with argon2id. Tokens (`tokens.rs`) are 32 random bytes
//! shown once and stored as their SHA-256 (they are high-entropy, so a slow hash
//! adds nothing). The connections signed in right now are known (`live.rs`), so
//! revoking credentials ends them.
//! **Invariant:** identity comes from the connection's credentials, never from a frame field.

mod live;
mod throttle;
mod tokens;
pub mod users;

use std::net::IpAddr;
use std::sync::Arc;

use throttle::{Key, Throttle};

pub use live::{Connections, Registration};
pub use tokens::NewToken;

use argon2::password_hash::{PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use rand::RngCore;
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use aether_proto::api::sys::valid_user_name;
use aether_proto::frame::UserInfo;
use aether_proto::{ErrorBody, ErrorCode};

use crate::config::AuthLimits;
use crate::store::{Store, now_secs};

pub const TOKEN_PREFIX: &str = "aet_";
const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 1024;
const GUEST_TTL_SECS: i64 = 24 * 3600;

/// A signed-in principal, as the daemon knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    pub user_id: i64,
    pub user: String,
    pub admin: bool,
    pub guest: bool,
    /// Set when the credentials are an app-bound token: the only app this caller may act as.
    pub bound_app: Option<String>,
    /// When the token this caller signed in with expires: tokens it mints may not outlive it.
    pub token_expires_at: Option<i64>,
    /// The token this caller signed in with, if any (revoking it ends the connection).
    pub token_id: Option<i64>,
    /// How this caller signed in.
    pub credential: Credential,
    /// The connection this caller signed in on (0 when none).
    pub connection: u64,
    /// A service acts for this user's app (a program's host calls, an agent's tools, a rule):
    /// not the user at a client of theirs.
    pub delegated: bool,
}

/// How a connection proved who it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Credential {
    /// The Unix socket's peer uid: the local owner.
    #[default]
    Local,
    Token,
    Password,
    Guest,
}

impl Caller {
    pub fn user_info(&self) -> UserInfo {
        UserInfo {
            id: self.user_id,
            name: self.user.clone(),
            admin: self.admin,
            guest: self.guest,
        }
    }
}

/// An identity operation refused, with the protocol code to answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct IdentityError {
    pub code: ErrorCode,
    pub msg: String,
    /// With `rate_limited`: when trying again may succeed.
    pub retry_after_ms: Option<u64>,
}

impl IdentityError {
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> IdentityError {
        IdentityError {
            code,
            msg: msg.into(),
            retry_after_ms: None,
        }
    }
}

impl From<IdentityError> for ErrorBody {
    fn from(e: IdentityError) -> ErrorBody {
        ErrorBody {
            code: e.code,
            msg: e.msg,
            retry_after_ms: e.retry_after_ms,
        }
    }
}

fn refuse(code: ErrorCode, msg: impl Into<String>) -> IdentityError {
    IdentityError::new(code, msg)
}

fn internal(e: impl std::fmt::Display) -> IdentityError {
    tracing::error!("identity store: {e}");
    refuse(
        ErrorCode::Internal,
        "the identity store failed; see the daemon log",
    )
}

pub use aether_proto::api::sys::UserRow;

fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn hash_password(password: &str) -> Result<String, IdentityError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(internal)
}

fn check_password_shape(password: &str) -> Result<(), IdentityError> {
    if password.len() < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(refuse(
            ErrorCode::BadFrame,
            format!("a password must be {MIN_PASSWORD} to {MAX_PASSWORD} bytes"),
        ));
    }
    Ok(())
}

/// Check a new password's shape, then hash it off the async runtime (argon2 is slow on purpose).
async fn hash_new_password(password: &str) -> Result<String, IdentityError> {
    check_password_shape(password)?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(internal)?
}

/// Check a password against a stored hash off the async runtime (argon2 is slow on purpose).
async fn verify_password(password: &str, stored: String) -> Result<bool, IdentityError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .map_err(internal)
}

/// A precomputed hash to verify against when the user does not exist,
/// so a wrong user name takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy-password-never-matches").unwrap_or_default())
}

#[derive(Clone)]
pub struct Identity {
    store: Store,
    connections: Arc<Connections>,
    throttle: Arc<Throttle>,
}

impl Identity {
    pub fn new(store: Store, auth: AuthLimits) -> Identity {
        Identity {
            store,
            connections: Arc::default(),
            throttle: Arc::new(Throttle::new(auth)),
        }
    }

    /// Note a signed-in connection, so that revoking its credentials ends it.
    pub fn register(&self, caller: &Caller) -> Registration {
        self.connections.register(caller)
    }

    /// The ids of users whose connections open or close, as they do.
    pub fn connection_changes(&self) -> tokio::sync::broadcast::Receiver<i64> {
        self.connections.changes()
    }

    /// How many connections a user has open now.
    pub fn connections_of(&self, user_id: i64) -> usize {
        self.connections.count(user_id)
    }

    /// Make sure the local owner account exists (an admin without a password).
    pub fn ensure_owner(&self, name: &str) -> anyhow::Result<()> {
        let name = name.to_owned();
        self.store.call_sync(move |c| {
            c.execute(
                "INSERT INTO users(name, admin, created_at) VALUES (?1, 1, ?2)
                 ON CONFLICT(name) DO UPDATE SET admin = 1",
                params![name, now_secs()],
            )?;
            Ok(())
        })
    }

    pub async fn owner(&self, name: &str) -> Result<Caller, IdentityError> {
        self.user_by_name(name)
            .await?
            .ok_or_else(|| refuse(ErrorCode::Unauthenticated, "the owner account is missing"))
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<Caller>, IdentityError> {
        let name = name.to_owned();
        self.store
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT id, name, admin, guest FROM users WHERE name = ?1",
                    params![name],
                    |r| {
                        Ok(Caller {
                            user_id: r.get(0)?,
                            user: r.get(1)?,
                            admin: r.get(2)?,
                            guest: r.get(3)?,
                            ..Caller::default()
                        })
                    },
                )
                .optional()?)
            })
            .await
            .map_err(internal)
    }

    pub async fn add_user(
        &self,
        name: &str,
        password: &str,
        admin: bool,
    ) -> Result<i64, IdentityError> {
        if !valid_user_name(name) {
            return Err(refuse(
                ErrorCode::BadFrame,
                format!("{name:?} is not a user name ([a-z][a-z0-9_.-]{{0,31}})"),
            ));
        }
        let hash = hash_new_password(password).await?;
        let name = name.to_owned();
        let inserted = self
            .store
            .call(move |c| {
                let n = c.execute(
                    "INSERT INTO users(name, password_hash, admin, created_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(name) DO NOTHING",
                    params![name, hash, admin, now_secs()],
                )?;
                Ok((n == 1).then(|| c.last_insert_rowid()))
            })
            .await
            .map_err(internal)?;
        inserted.ok_or_else(|| refuse(ErrorCode::Conflict, "a user with that name already exists"))
    }

    /// Set a user's password; returns the user's id.
    pub async fn set_password(&self, name: &str, password: &str) -> Result<i64, IdentityError> {
        let hash = hash_new_password(password).await?;
        let name = name.to_owned();
        let id = self
            .store
            .call(move |c| {
                Ok(c.query_row(
                    "UPDATE users SET password_hash = ?2 WHERE name = ?1 RETURNING id",
                    params![name, hash],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?)
            })
            .await
            .map_err(internal)?;
        id.ok_or_else(|| refuse(ErrorCode::NotFound, "no such user"))
    }

    pub async fn list_users(&self) -> Result<Vec<UserRow>, IdentityError> {
        self.store
            .call(|c| {
                let mut stmt = c.prepare(
                    "SELECT id, name, admin, guest, password_hash IS NOT NULL, created_at
                     FROM users ORDER BY name",
                )?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok(UserRow {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            admin: r.get(2)?,
                            guest: r.get(3)?,
                            has_password: r.get(4)?,
                            created_at: r.get(5)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
            .map_err(internal)
    }

    /// Check a user name and password, signing in from `from` (the peer's address, if
    /// any). Failures are throttled per user name and per address.
    pub async fn sign_in_password(
        &self,
        name: &str,
        password: &str,
        from: Option<IpAddr>,
    ) -> Result<Caller, IdentityError> {
        let wrong = || refuse(ErrorCode::Unauthenticated, "wrong user name or password");
        let mut keys = vec![Key::User(name.chars().take(64).collect())];
        keys.extend(from.map(Key::Address));
        let delay = self.throttle.admit(&keys)?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if password.len() > MAX_PASSWORD {
            self.throttle.failed(&keys);
            return Err(wrong());
        }
        let row = self.password_row(name).await?;
        let stored = row
            .as_ref()
            .and_then(|(_, hash, _)| hash.clone())
            .unwrap_or_else(|| decoy_hash().to_owned());
        let matches = {
            let _turn = self.throttle.check_slot().await?;
            verify_password(password, stored).await?
        };
        match row {
            Some((caller, Some(_), expires)) if matches && !expired(expires) => {
                self.throttle.succeeded(&keys);
                Ok(caller)
            }
            _ => {
                self.throttle.failed(&keys);
                Err(wrong())
            }
        }
    }

    /// A user as password sign-in sees it: the caller, the hash, and when it expires.
    async fn password_row(
        &self,
        name: &str,
    ) -> Result<Option<(Caller, Option<String>, Option<i64>)>, IdentityError> {
        let lookup = name.to_owned();
        self.store
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT id, name, admin, guest, password_hash, expires_at FROM users WHERE name = ?1",
                    params![lookup],
                    |r| {
                        Ok((
                            Caller {
                                user_id: r.get(0)?,
                                user: r.get(1)?,
                                admin: r.get(2)?,
                                guest: r.get(3)?,
                                credential: Credential::Password,
                                ..Caller::default()
                            },
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    },
                )
                .optional()?)
            })
            .await
            .map_err(internal)
    }

    /// Resolve a token to its user and app binding.
    pub async fn sign_in_token(&self, token: &str) -> Result<Caller, IdentityError> {
        let invalid = || refuse(ErrorCode::Unauthenticated, "the token is not valid");
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Err(invalid());
        }
        let hash = hash_token(token);
        let row = self
            .store
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT u.id, u.name, u.admin, u.guest, t.app, t.expires_at, u.expires_at, t.id
                     FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
                    params![hash],
                    |r| {
                        Ok((
                            Caller {
                                user_id: r.get(0)?,
                                user: r.get(1)?,
                                admin: r.get(2)?,
                                guest: r.get(3)?,
                                bound_app: r.get(4)?,
                                token_id: r.get(7)?,
                                credential: Credential::Token,
                                ..Caller::default()
                            },
                            r.get::<_, Option<i64>>(5)?,
                            r.get::<_, Option<i64>>(6)?,
                        ))
                    },
                )
                .optional()?)
            })
            .await
            .map_err(internal)?;
        match row {
            None => Err(invalid()),
            Some((_, token_exp, user_exp)) if expired(token_exp) || expired(user_exp) => {
                Err(refuse(
                    ErrorCode::Unauthenticated,
                    "the token has expired; sign in again",
                ))
            }
            // The connection ends when the token or its user expires, whichever is first.
            Some((caller, token_exp, user_exp)) => Ok(Caller {
                token_expires_at: [token_exp, user_exp].into_iter().flatten().min(),
                ..caller
            }),
        }
    }

    /// A fresh anonymous user that expires.
    pub async fn create_guest(&self) -> Result<Caller, IdentityError> {
        let mut raw = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let name = format!("guest-{}", hex_lower(&raw));
        let now = now_secs();
        let insert_name = name.clone();
        let id = self
            .store
            .call(move |c| {
                c.execute(
                    "INSERT INTO users(name, guest, created_at, expires_at) VALUES (?1, 1, ?2, ?3)",
                    params![insert_name, now, now + GUEST_TTL_SECS],
                )?;
                Ok(c.last_insert_rowid())
            })
            .await
            .map_err(internal)?;
        Ok(Caller {
            user_id: id,
            user: name,
            guest: true,
            // A guest's connection, and any token it mints, ends when the guest expires.
            token_expires_at: Some(now + GUEST_TTL_SECS),
            credential: Credential::Guest,
            ..Caller::default()
        })
    }
}

fn expired(expires_at: Option<i64>) -> bool {
    expires_at.is_some_and(|at| at <= now_secs())
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> (tempfile::TempDir, Identity) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        (dir, Identity::new(store, AuthLimits::default()))
    }

    #[test]
    fn user_names() {
        assert!(valid_user_name("ana"));
        assert!(valid_user_name("a.b-c_1"));
        assert!(!valid_user_name("Ana"));
        assert!(!valid_user_name("1ana"));
        assert!(!valid_user_name(""));
        assert!(!valid_user_name(&"a".repeat(33)));
    }

    #[tokio::test]
    async fn passwords_and_tokens() {
        let (_dir, id) = identity();
        let uid = id.add_user("ana", "correct horse", false).await.unwrap();
        assert_eq!(
            id.add_user("ana", "correct horse", false)
                .await
                .unwrap_err()
                .code,
            ErrorCode::Conflict
        );
        assert_eq!(
            id.add_user("ana", "short", false).await.unwrap_err().code,
            ErrorCode::BadFrame
        );
        let ana = id
            .sign_in_password("ana", "correct horse", None)
            .await
            .unwrap();
        assert_eq!(ana.user_id, uid);
        assert_eq!(
            id.sign_in_password("ana", "wrong horse", None)
                .await
                .unwrap_err()
                .code,
            ErrorCode::Unauthenticated
        );
        assert_eq!(
            id.sign_in_password("bob", "correct horse", None)
                .await
                .unwrap_err()
                .code,
            ErrorCode::Unauthenticated
        );
        let token = id
            .create_token(uid, Some("files".into()), "t".into(), None)
            .await
            .unwrap();
        let caller = id.sign_in_token(&token.token).await.unwrap();
        assert_eq!(caller.token_id, Some(token.id));
        assert_eq!(caller.bound_app.as_deref(), Some("files"));
        assert!(id.sign_in_token("aet_nope").await.is_err());
        let old = id
            .create_token(uid, None, "t".into(), Some(-1))
            .await
            .unwrap();
        let e = id.sign_in_token(&old.token).await.unwrap_err();
        assert!(e.msg.contains("expired"));
    }
}
