//! The install service's rows: `apps` (what is installed, daemon-wide: one version per id) and
//! `app_grants` (each user's consent, per app and version). Writing the `apps` row is what
//! makes an install real.

use std::collections::{BTreeSet, HashMap};

use rusqlite::{Connection, OptionalExtension, params};

use aether_proto::api::apps::Signature;
use aether_proto::{Capability, Manifest};

use crate::perms::InstalledApps;

#[derive(Debug, Clone)]
pub struct AppRow {
    pub id: String,
    pub version: String,
    pub sha256: String,
    pub manifest: Manifest,
    pub signature: Signature,
    pub installed_ms: u64,
}

#[derive(Debug, Clone)]
pub struct GrantRow {
    pub user_id: i64,
    pub app_id: String,
    pub capabilities: BTreeSet<Capability>,
}

pub fn all(conn: &Connection) -> anyhow::Result<(Vec<AppRow>, Vec<GrantRow>)> {
    let mut stmt =
        conn.prepare("SELECT id, version, sha256, manifest, signature, installed_ms FROM apps")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut apps = vec![];
    for (id, version, sha256, manifest, signature, installed_ms) in rows {
        // Written by this service after validation; one that no longer parses is skipped.
        let Ok(manifest) = Manifest::from_json(&format!("installed app {id}"), &manifest) else {
            tracing::warn!("installed app {id}: its stored manifest no longer parses; skipped");
            continue;
        };
        apps.push(AppRow {
            id,
            version,
            sha256,
            manifest,
            signature: serde_json::from_str(&signature).unwrap_or(Signature::Unsigned),
            installed_ms: installed_ms as u64,
        });
    }
    let mut stmt = conn.prepare("SELECT user_id, app_id, capabilities FROM app_grants")?;
    let grants = stmt
        .query_map([], |r| {
            Ok(GrantRow {
                user_id: r.get(0)?,
                app_id: r.get(1)?,
                capabilities: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((apps, grants))
}

/// What the permission manager needs from the rows.
pub fn for_perms(
    apps: &[AppRow],
    grants: &[GrantRow],
    dir_of: impl Fn(&AppRow) -> std::path::PathBuf,
) -> InstalledApps {
    InstalledApps {
        apps: apps
            .iter()
            .map(|row| (row.id.clone(), (row.manifest.clone(), dir_of(row))))
            .collect(),
        grants: grants
            .iter()
            .map(|g| ((g.user_id, g.app_id.clone()), g.capabilities.clone()))
            .collect::<HashMap<_, _>>(),
    }
}

/// Make an install real: the app's row (replacing an older one) and this user's grant, in one
/// transaction. Returns the replaced row's (version, sha256), if any.
pub fn commit(
    conn: &mut Connection,
    row: &AppRow,
    user_id: i64,
    granted: &BTreeSet<Capability>,
) -> anyhow::Result<Option<(String, String)>> {
    let tx = conn.transaction()?;
    let old = tx
        .query_row(
            "SELECT version, sha256 FROM apps WHERE id = ?1",
            params![row.id],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?;
    tx.execute(
        "INSERT INTO apps (id, version, sha256, manifest, signature, installed_by, installed_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET version = ?2, sha256 = ?3, manifest = ?4,
             signature = ?5, installed_by = ?6, installed_ms = ?7",
        params![
            row.id,
            row.version,
            row.sha256,
            serde_json::to_string(&row.manifest)?,
            serde_json::to_string(&row.signature)?,
            user_id,
            row.installed_ms as i64
        ],
    )?;
    tx.execute(
        "INSERT INTO app_grants (user_id, app_id, version, capabilities, granted_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_id, app_id) DO UPDATE SET version = ?3, capabilities = ?4,
             granted_ms = ?5",
        params![
            user_id,
            row.id,
            row.version,
            serde_json::to_string(granted)?,
            row.installed_ms as i64
        ],
    )?;
    tx.commit()?;
    Ok(old)
}

/// Forget a user's grant; the app's row goes too when no user keeps it. Returns whether the
/// grant existed and, when the row went, its sha256 (its files can go).
pub fn forget(
    conn: &mut Connection,
    user_id: i64,
    app_id: &str,
) -> anyhow::Result<(bool, Option<String>)> {
    let tx = conn.transaction()?;
    let existed = tx.execute(
        "DELETE FROM app_grants WHERE user_id = ?1 AND app_id = ?2",
        params![user_id, app_id],
    )? > 0;
    let left: i64 = tx.query_row(
        "SELECT COUNT(*) FROM app_grants WHERE app_id = ?1",
        params![app_id],
        |r| r.get(0),
    )?;
    let mut gone = None;
    if existed && left == 0 {
        gone = tx
            .query_row(
                "SELECT sha256 FROM apps WHERE id = ?1",
                params![app_id],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute("DELETE FROM apps WHERE id = ?1", params![app_id])?;
    }
    tx.commit()?;
    Ok((existed, gone))
}

/// The ids of a user's tokens bound to an app.
pub fn app_tokens(conn: &Connection, user_id: i64, app_id: &str) -> anyhow::Result<Vec<i64>> {
    let mut stmt = conn.prepare("SELECT id FROM tokens WHERE user_id = ?1 AND app = ?2")?;
    let ids = stmt
        .query_map(params![user_id, app_id], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(ids)
}
