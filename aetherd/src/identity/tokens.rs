//! Tokens: minted, listed, revoked. Revoking a token ends the connections signed in with it.

use base64::Engine;
use rand::RngCore;
use rusqlite::params;

use aether_proto::api::sys::TokenInfo;

use super::{Identity, IdentityError, TOKEN_PREFIX, hash_token, internal};
use crate::store::now_secs;

/// A token just minted: the secret is shown once.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub token: String,
    pub id: i64,
    pub expires_at: Option<i64>,
}

impl Identity {
    /// Mint a token for a user, optionally bound to one app. Returned once, stored hashed.
    pub async fn create_token(
        &self,
        user_id: i64,
        app: Option<String>,
        label: String,
        ttl_secs: Option<i64>,
    ) -> Result<NewToken, IdentityError> {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let hash = hash_token(&token);
        let now = now_secs();
        let expires = ttl_secs.map(|ttl| now.saturating_add(ttl));
        let id = self
            .store
            .call(move |c| {
                c.execute(
                    "INSERT INTO tokens(hash, user_id, app, label, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![hash, user_id, app, label, now, expires],
                )?;
                Ok(c.last_insert_rowid())
            })
            .await
            .map_err(internal)?;
        Ok(NewToken {
            token,
            id,
            expires_at: expires,
        })
    }

    /// A user's tokens, without their secrets.
    pub async fn list_tokens(&self, user_id: i64) -> Result<Vec<TokenInfo>, IdentityError> {
        self.store
            .call(move |c| {
                let mut stmt = c.prepare(
                    "SELECT id, app, label, created_at, expires_at FROM tokens
                     WHERE user_id = ?1 AND (expires_at IS NULL OR expires_at > ?2) ORDER BY id",
                )?;
                let rows = stmt
                    .query_map(params![user_id, now_secs()], |r| {
                        Ok(TokenInfo {
                            id: r.get(0)?,
                            app: r.get(1)?,
                            label: r.get(2)?,
                            created_at: r.get(3)?,
                            expires_at: r.get(4)?,
                            current: false,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
            .map_err(internal)
    }

    /// Revoke some of a user's tokens and end the connections signed in with them.
    /// Returns how many tokens were revoked and how many connections closed.
    pub async fn revoke_tokens(
        &self,
        user_id: i64,
        ids: &[i64],
    ) -> Result<(u64, u64), IdentityError> {
        let doomed = ids.to_vec();
        let revoked = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                let mut revoked = 0;
                for id in &doomed {
                    revoked += tx.execute(
                        "DELETE FROM tokens WHERE id = ?1 AND user_id = ?2",
                        params![id, user_id],
                    )? as u64;
                }
                tx.commit()?;
                Ok(revoked)
            })
            .await
            .map_err(internal)?;
        let closed = self.connections.close_tokens(ids);
        Ok((revoked, closed))
    }

    /// After a password change: revoke the user's tokens but `keep_token`, and end their
    /// connections and those signed in by password, but `keep_connection`.
    pub async fn revoke_credentials(
        &self,
        user_id: i64,
        keep_token: Option<i64>,
        keep_connection: u64,
    ) -> Result<u64, IdentityError> {
        let ids: Vec<i64> = self
            .store
            .call(move |c| {
                let mut stmt = c.prepare("SELECT id FROM tokens WHERE user_id = ?1")?;
                let ids = stmt
                    .query_map(params![user_id], |r| r.get(0))?
                    .collect::<Result<Vec<i64>, _>>()?;
                Ok(ids)
            })
            .await
            .map_err(internal)?;
        let doomed: Vec<i64> = ids
            .into_iter()
            .filter(|id| Some(*id) != keep_token)
            .collect();
        let (revoked, _) = self.revoke_tokens(user_id, &doomed).await?;
        self.connections
            .close_password_sessions(user_id, keep_connection);
        Ok(revoked)
    }
}
