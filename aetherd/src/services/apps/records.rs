//! The install service's rows: `apps`, one per (user, app): the bundle that user installed
//! (its version and SHA-256, naming the shared folder of its files) and the capabilities they
//! granted it. Writing a user's row is what makes their install real; a bundle's folder stays
//! while any row names it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, params};

use aether_proto::api::apps::Signature;
use aether_proto::{Capability, Manifest};

use crate::perms::{InstalledApp, InstalledApps};

#[derive(Debug, Clone)]
pub struct AppRow {
    pub user_id: i64,
    pub id: String,
    pub version: String,
    pub sha256: String,
    pub manifest: Manifest,
    pub signature: Signature,
    pub granted: BTreeSet<Capability>,
    pub installed_ms: u64,
    /// Its files' size, counted against the user's share of app space.
    pub unpacked_bytes: u64,
}

/// Bundles by (app id, SHA-256).
pub type Bundles = HashSet<(String, String)>;

/// Every row that parses, and the (id, sha256) of every row, parsing or not: the bundle
/// folders in use.
pub fn all(conn: &Connection) -> anyhow::Result<(Vec<AppRow>, Bundles)> {
    let mut stmt = conn.prepare(
        "SELECT user_id, id, version, sha256, manifest, signature, capabilities, installed_ms,
             unpacked_bytes
         FROM apps",
    )?;
    let raw = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, i64>(8)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = vec![];
    let mut in_use = HashSet::new();
    for (user_id, id, version, sha256, manifest, signature, granted, installed_ms, unpacked) in raw
    {
        in_use.insert((id.clone(), sha256.clone()));
        // Written by this service after validation; one that no longer parses is skipped
        // (its files are kept: a later daemon may read it again).
        let Ok(manifest) = Manifest::from_json(&format!("installed app {id}"), &manifest) else {
            tracing::warn!("installed app {id}: its stored manifest no longer parses; skipped");
            continue;
        };
        rows.push(AppRow {
            user_id,
            id,
            version,
            sha256,
            manifest,
            signature: serde_json::from_str(&signature).unwrap_or(Signature::Unsigned),
            granted: serde_json::from_str(&granted).unwrap_or_default(),
            installed_ms: installed_ms as u64,
            unpacked_bytes: unpacked as u64,
        });
    }
    Ok((rows, in_use))
}

/// What the permission manager needs from the rows.
pub fn for_perms(rows: &[AppRow], dir_of: impl Fn(&AppRow) -> PathBuf) -> InstalledApps {
    InstalledApps {
        apps: rows
            .iter()
            .map(|row| {
                let app = InstalledApp {
                    manifest: row.manifest.clone(),
                    dir: dir_of(row),
                    granted: row.granted.clone(),
                };
                ((row.user_id, row.id.clone()), app)
            })
            .collect::<HashMap<_, _>>(),
    }
}

/// A user's rows, and how many there are.
pub fn all_of_user(conn: &Connection, user_id: i64) -> anyhow::Result<(Vec<AppRow>, usize)> {
    let (rows, _) = all(conn)?;
    let mine: Vec<AppRow> = rows.into_iter().filter(|r| r.user_id == user_id).collect();
    let count: i64 = conn.query_row(
        "SELECT COUNT(*) FROM apps WHERE user_id = ?1",
        params![user_id],
        |r| r.get(0),
    )?;
    Ok((mine, count as usize))
}

/// Make a user's install real: their row, replacing the one before. Returns the replaced
/// row's (version, sha256), if any.
pub fn commit(conn: &mut Connection, row: &AppRow) -> anyhow::Result<Option<(String, String)>> {
    let tx = conn.transaction()?;
    let old = tx
        .query_row(
            "SELECT version, sha256 FROM apps WHERE user_id = ?1 AND id = ?2",
            params![row.user_id, row.id],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?;
    tx.execute(
        "INSERT INTO apps (user_id, id, version, sha256, manifest, signature, capabilities,
             installed_ms, unpacked_bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (user_id, id) DO UPDATE SET version = ?3, sha256 = ?4, manifest = ?5,
             signature = ?6, capabilities = ?7, installed_ms = ?8, unpacked_bytes = ?9",
        params![
            row.user_id,
            row.id,
            row.version,
            row.sha256,
            serde_json::to_string(&row.manifest)?,
            serde_json::to_string(&row.signature)?,
            serde_json::to_string(&row.granted)?,
            row.installed_ms as i64,
            row.unpacked_bytes as i64
        ],
    )?;
    tx.commit()?;
    Ok(old)
}

/// Forget a user's install; its (version, sha256) when there was one.
pub fn forget(
    conn: &mut Connection,
    user_id: i64,
    id: &str,
) -> anyhow::Result<Option<(String, String)>> {
    Ok(conn
        .query_row(
            "DELETE FROM apps WHERE user_id = ?1 AND id = ?2 RETURNING version, sha256",
            params![user_id, id],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?)
}

/// Does any user's row still name this bundle?
pub fn in_use(conn: &Connection, id: &str, sha256: &str) -> anyhow::Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM apps WHERE id = ?1 AND sha256 = ?2 LIMIT 1",
            params![id, sha256],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// The ids of a user's tokens bound to an app.
pub fn app_tokens(conn: &Connection, user_id: i64, app_id: &str) -> anyhow::Result<Vec<i64>> {
    let mut stmt = conn.prepare("SELECT id FROM tokens WHERE user_id = ?1 AND app = ?2")?;
    let ids = stmt
        .query_map(params![user_id, app_id], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(ids)
}
