//! The audit log of denials, written to the store off the hot path.
//!
//! Recording never blocks: entries go through a bounded queue to a writer task
//! that inserts them in batches. If a client floods denials faster than the
//! disk takes them, the excess is counted and dropped instead of slowing the bus.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::params;
use tokio::sync::mpsc;

use aether_proto::ErrorCode;

use crate::store::{Store, now_secs};

const QUEUE: usize = 4096;
const BATCH: usize = 256;

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub user_id: Option<i64>,
    pub user: String,
    pub app: String,
    pub op: &'static str,
    pub topic: String,
    pub code: ErrorCode,
    pub reason: String,
}

/// A denial as `sys.audit.list` shows it.
pub use aether_proto::api::sys::AuditEntry as AuditRow;

#[derive(Clone)]
pub struct AuditLog {
    tx: Option<mpsc::Sender<AuditEntry>>,
    dropped: Arc<AtomicU64>,
    /// Where the entries are kept, to read them back.
    store: Option<Store>,
}

impl AuditLog {
    /// Start the writer task.
    pub fn start(store: Store) -> AuditLog {
        let (tx, mut rx) = mpsc::channel::<AuditEntry>(QUEUE);
        let kept = store.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let entries = std::mem::take(&mut batch);
                let result = store
                    .call(move |c| {
                        let tx = c.transaction()?;
                        {
                            let mut stmt = tx.prepare_cached(
                                "INSERT INTO audit(at, user_id, user_name, app, op, topic, code, reason)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                            )?;
                            let at = now_secs();
                            for e in &entries {
                                stmt.execute(params![
                                    at,
                                    e.user_id,
                                    e.user,
                                    e.app,
                                    e.op,
                                    e.topic,
                                    e.code.as_str(),
                                    e.reason
                                ])?;
                            }
                        }
                        tx.commit()?;
                        Ok(())
                    })
                    .await;
                if let Err(e) = result {
                    tracing::error!("audit log write failed: {e:#}");
                }
            }
        });
        AuditLog {
            tx: Some(tx),
            dropped: Arc::default(),
            store: Some(kept),
        }
    }

    /// A log that records nothing (unit tests).
    pub fn disabled() -> AuditLog {
        AuditLog {
            tx: None,
            dropped: Arc::default(),
            store: None,
        }
    }

    pub fn record(&self, entry: AuditEntry) {
        tracing::debug!(user = %entry.user, app = %entry.app, op = entry.op, topic = %entry.topic, "denied: {}", entry.reason);
        if let Some(tx) = &self.tx
            && tx.try_send(entry).is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The newest entries, newest first (none from a disabled log).
    pub async fn recent(&self, limit: u32) -> anyhow::Result<Vec<AuditRow>> {
        match &self.store {
            Some(store) => recent(store, limit).await,
            None => Ok(vec![]),
        }
    }
}

async fn recent(store: &Store, limit: u32) -> anyhow::Result<Vec<AuditRow>> {
    store
        .call(move |c| {
            let mut stmt = c.prepare(
                "SELECT at, user_name, app, op, topic, code, reason FROM audit ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt
                .query_map(params![limit], |r| {
                    Ok(AuditRow {
                        at: r.get(0)?,
                        user: r.get(1)?,
                        app: r.get(2)?,
                        op: r.get(3)?,
                        topic: r.get(4)?,
                        code: r.get(5)?,
                        reason: r.get(6)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
}
