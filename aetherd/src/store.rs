//! SQLite storage (bundled, WAL) with versioned migrations.
//!
//! One connection behind a mutex; every call runs on the blocking pool so the
//! async runtime never waits on the disk.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use parking_lot::Mutex;
use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

/// Schema versions, oldest first. Never edit a shipped migration: add one.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
            "CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            password_hash TEXT,
            admin INTEGER NOT NULL DEFAULT 0,
            guest INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            expires_at INTEGER
        );
        CREATE TABLE tokens (
            id INTEGER PRIMARY KEY,
            hash BLOB NOT NULL UNIQUE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            app TEXT,
            label TEXT NOT NULL DEFAULT '',
            created_at INTEGER NOT NULL,
            expires_at INTEGER
        );
        CREATE INDEX tokens_user ON tokens(user_id);
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at INTEGER NOT NULL,
            user_id INTEGER,
            user_name TEXT,
            app TEXT,
            op TEXT NOT NULL,
            topic TEXT NOT NULL,
            code TEXT NOT NULL,
            reason TEXT NOT NULL
        );",
        ),
        M::up(
            "CREATE TABLE rules (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            app TEXT NOT NULL,
            name TEXT NOT NULL,
            on_topic TEXT NOT NULL,
            glob TEXT,
            action_topic TEXT NOT NULL,
            action_data TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            runs INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            last_error TEXT
        );
        CREATE INDEX rules_user ON rules(user_id);",
        ),
        // session.*: one row per (user, name); the state is compact JSON text.
        M::up(
            "CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            state TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            revision INTEGER NOT NULL,
            saved_at_ms INTEGER NOT NULL,
            UNIQUE (user_id, name)
        );",
        ),
        // ai.*: tokens spent per user, app and day (UTC, days since 1970), for status and quotas.
        M::up(
            "CREATE TABLE ai_usage (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            app TEXT NOT NULL,
            day INTEGER NOT NULL,
            requests INTEGER NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (user_id, day, app)
        );",
        ),
        // agent.*: TaskGraphs and their nodes; every state change is written before it acts.
        M::up(
            "CREATE TABLE agent_graphs (
            id TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            app TEXT NOT NULL,
            name TEXT NOT NULL,
            auto_approve INTEGER NOT NULL,
            state TEXT NOT NULL,
            error TEXT,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL
        );
        CREATE INDEX agent_graphs_user ON agent_graphs(user_id, updated_ms);
        CREATE INDEX agent_graphs_state ON agent_graphs(state);
        CREATE TABLE agent_nodes (
            graph_id TEXT NOT NULL REFERENCES agent_graphs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            id TEXT NOT NULL,
            tool TEXT NOT NULL,
            args TEXT NOT NULL,
            needs TEXT NOT NULL,
            retries INTEGER NOT NULL,
            timeout_ms INTEGER NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            approved INTEGER NOT NULL DEFAULT 0,
            result TEXT,
            error TEXT,
            PRIMARY KEY (graph_id, id)
        );",
        ),
        // apps.*: what each user installed (the bundle, its version) and the capabilities granted.
        M::up(
            "CREATE TABLE apps (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            id TEXT NOT NULL,
            version TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            manifest TEXT NOT NULL,
            signature TEXT NOT NULL,
            capabilities TEXT NOT NULL,
            installed_ms INTEGER NOT NULL,
            unpacked_bytes INTEGER NOT NULL,
            PRIMARY KEY (user_id, id)
        );
        CREATE INDEX apps_bundle ON apps(id, sha256);",
        ),
        // chat.*: rooms, members (how far each has read), messages by (room, seq), mentions.
        M::up(
            "CREATE TABLE chat_rooms (
            name TEXT PRIMARY KEY,
            topic TEXT,
            private INTEGER NOT NULL,
            dm_a INTEGER,
            dm_b INTEGER,
            created_by INTEGER,
            created_ms INTEGER NOT NULL,
            last_seq INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE chat_members (
            room TEXT NOT NULL REFERENCES chat_rooms(name) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            joined_ms INTEGER NOT NULL,
            last_read INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (room, user_id)
        ) WITHOUT ROWID;
        CREATE INDEX chat_members_user ON chat_members(user_id);
        CREATE TABLE chat_messages (
            room TEXT NOT NULL,
            seq INTEGER NOT NULL,
            user_id INTEGER NOT NULL,
            text TEXT NOT NULL,
            at_ms INTEGER NOT NULL,
            edited_ms INTEGER,
            deleted INTEGER NOT NULL DEFAULT 0,
            reply_to INTEGER,
            mentions TEXT,
            PRIMARY KEY (room, seq)
        ) WITHOUT ROWID;
        CREATE TABLE chat_mentions (
            user_id INTEGER NOT NULL,
            room TEXT NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (user_id, room, seq)
        ) WITHOUT ROWID;",
        ),
        // agent.*: the graph that started a graph (a nested one has no more freedom than
        // it), and what a node waiting for the user would do.
        M::up(
            "ALTER TABLE agent_graphs ADD COLUMN parent TEXT;
        ALTER TABLE agent_nodes ADD COLUMN ask TEXT;",
        ),
    ])
}

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        let mut conn =
            Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations()
            .to_latest(&mut conn)
            .with_context(|| format!("cannot migrate {}", path.display()))?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Run `f` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock()))
            .await
            .context("store task failed")?
    }

    /// Run `f` on the calling thread (start-up and tests only).
    pub fn call_sync<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        f(&mut self.conn.lock())
    }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
    }

    #[test]
    fn opening_twice_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let store = super::Store::open(&path).unwrap();
        store
            .call_sync(|c| {
                c.execute("INSERT INTO users(name, created_at) VALUES ('ana', 0)", [])?;
                Ok(())
            })
            .unwrap();
        drop(store);
        let store = super::Store::open(&path).unwrap();
        let n: i64 = store
            .call_sync(|c| Ok(c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(n, 1);
    }
}
