//! `session.*`: each user's saved workspace layouts, by name, so the desktop restores them on
//! any terminal. A session belongs to the user the connection signed in as (never to a name in
//! the payload) and to none of their apps in particular; the last save wins, and each save bumps
//! that session's revision. The state is kept as compact JSON in the store.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use serde::Deserialize;
use serde_json::{Value, json};

use aether_proto::api::Call as _;
use aether_proto::api::session::{self, MAX_SESSIONS_PER_USER, MAX_STATE_BYTES, name_problem};
use aether_proto::api::telemetry::TelemetryEvents;
use aether_proto::{ErrorBody, ErrorCode};

use super::{Handler, Incoming, Reply, Seat};
use crate::store::Store;

/// What the session service answers from.
pub struct SessionService {
    store: Store,
}

pub fn start(seat: Seat, store: Store) {
    seat.run(Arc::new(SessionService { store }));
}

impl Handler for SessionService {
    async fn handle(self: &Arc<Self>, request: &Incoming) -> Reply {
        let user_id = request.caller.user_id;
        match request.topic.as_str() {
            session::Save::TOPIC => request.call(|ask| self.save(user_id, ask)).await,
            session::Load::TOPIC => request.call(|ask| self.load(user_id, ask)).await,
            session::ListSessions::TOPIC => {
                request
                    .call(|_: session::ListSessions| self.list(user_id))
                    .await
            }
            session::Delete::TOPIC => request.call(|ask| self.delete(user_id, ask)).await,
            _ => Err(request.unknown()),
        }
    }

    /// `telemetry.session.<op>` with the session's name.
    fn telemetry(&self, request: &Incoming, ok: bool, took: Duration) -> Option<(String, Value)> {
        let op = TelemetryEvents::request_op(request.topic.as_str());
        let hint: NameHint = serde_json::from_str(request.data.get()).unwrap_or_default();
        let data = json!({
            "op": op,
            "name": hint.name,
            "ok": ok,
            "micros": took.as_micros() as u64,
        });
        Some((TelemetryEvents::topic_of("session", op), data))
    }
}

/// The name a request names, read loosely for telemetry (the state is skipped, not kept).
#[derive(Deserialize, Default)]
struct NameHint {
    #[serde(default)]
    name: Option<String>,
}

/// A stored session as its row holds it.
struct Row {
    state: String,
    revision: i64,
    saved_at_ms: i64,
}

impl SessionService {
    async fn save(&self, user_id: i64, ask: session::Save) -> Result<session::Saved, ErrorBody> {
        check_name(&ask.name)?;
        if !ask.state.is_object() {
            return Err(bad(format!(
                "`state` must be a JSON object, not {}",
                kind_of(&ask.state)
            )));
        }
        let text = serde_json::to_string(&ask.state)
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?;
        if text.len() > MAX_STATE_BYTES {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                format!(
                    "`state` is {} bytes as compact JSON; a session holds at most {MAX_STATE_BYTES} bytes (1 MiB)",
                    text.len()
                ),
            ));
        }
        let name = ask.name;
        let key = name.clone();
        let saved_at_ms = now_ms();
        let revision = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                let exists: bool = tx.query_row(
                    "SELECT EXISTS(SELECT 1 FROM sessions WHERE user_id = ?1 AND name = ?2)",
                    params![user_id, key],
                    |r| r.get(0),
                )?;
                if !exists {
                    let count: i64 = tx.query_row(
                        "SELECT count(*) FROM sessions WHERE user_id = ?1",
                        params![user_id],
                        |r| r.get(0),
                    )?;
                    if count as usize >= MAX_SESSIONS_PER_USER {
                        return Ok(None);
                    }
                }
                let revision: i64 = tx.query_row(
                    "INSERT INTO sessions(user_id, name, state, bytes, revision, saved_at_ms)
                     VALUES (?1, ?2, ?3, ?4, 1, ?5)
                     ON CONFLICT(user_id, name) DO UPDATE SET
                        state = excluded.state,
                        bytes = excluded.bytes,
                        revision = sessions.revision + 1,
                        saved_at_ms = excluded.saved_at_ms
                     RETURNING revision",
                    params![user_id, key, text, text.len() as i64, saved_at_ms],
                    |r| r.get(0),
                )?;
                tx.commit()?;
                Ok(Some(revision))
            })
            .await
            .map_err(|e| store_error(&e))?;
        let Some(revision) = revision else {
            return Err(ErrorBody::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "you have {MAX_SESSIONS_PER_USER} sessions, the limit; delete one before saving {name:?}"
                ),
            ));
        };
        Ok(session::Saved {
            name,
            revision: revision as u64,
        })
    }

    async fn load(&self, user_id: i64, ask: session::Load) -> Result<session::Loaded, ErrorBody> {
        check_name(&ask.name)?;
        let key = ask.name.clone();
        let row = self
            .store
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT state, revision, saved_at_ms FROM sessions WHERE user_id = ?1 AND name = ?2",
                    params![user_id, key],
                    |r| {
                        Ok(Row {
                            state: r.get(0)?,
                            revision: r.get(1)?,
                            saved_at_ms: r.get(2)?,
                        })
                    },
                )
                .optional()?)
            })
            .await
            .map_err(|e| store_error(&e))?;
        let Some(row) = row else {
            return Ok(session::Loaded {
                name: ask.name,
                state: None,
                revision: 0,
                saved_at_ms: None,
            });
        };
        let state: Value = serde_json::from_str(&row.state).map_err(|e| {
            tracing::error!(
                user_id,
                name = ask.name,
                "a stored session does not parse: {e}"
            );
            ErrorBody::new(
                ErrorCode::Internal,
                format!(
                    "the stored session {:?} is damaged; see the daemon log",
                    ask.name
                ),
            )
        })?;
        Ok(session::Loaded {
            name: ask.name,
            state: Some(state),
            revision: row.revision as u64,
            saved_at_ms: Some(row.saved_at_ms as u64),
        })
    }

    async fn list(&self, user_id: i64) -> Result<session::SessionList, ErrorBody> {
        let sessions = self
            .store
            .call(move |c| {
                let mut stmt = c.prepare(
                    "SELECT name, revision, saved_at_ms, bytes FROM sessions
                     WHERE user_id = ?1 ORDER BY name",
                )?;
                let rows = stmt
                    .query_map(params![user_id], |r| {
                        Ok(session::SessionInfo {
                            name: r.get(0)?,
                            revision: r.get::<_, i64>(1)? as u64,
                            saved_at_ms: r.get::<_, i64>(2)? as u64,
                            bytes: r.get::<_, i64>(3)? as u64,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
            .map_err(|e| store_error(&e))?;
        Ok(session::SessionList { sessions })
    }

    async fn delete(
        &self,
        user_id: i64,
        ask: session::Delete,
    ) -> Result<session::Deleted, ErrorBody> {
        check_name(&ask.name)?;
        let key = ask.name.clone();
        let removed = self
            .store
            .call(move |c| {
                Ok(c.execute(
                    "DELETE FROM sessions WHERE user_id = ?1 AND name = ?2",
                    params![user_id, key],
                )?)
            })
            .await
            .map_err(|e| store_error(&e))?;
        Ok(session::Deleted {
            name: ask.name,
            existed: removed > 0,
        })
    }
}

fn check_name(name: &str) -> Result<(), ErrorBody> {
    match name_problem(name) {
        Some(problem) => Err(bad(problem)),
        None => Ok(()),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn bad(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadFrame, msg)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn store_error(e: &anyhow::Error) -> ErrorBody {
    tracing::error!("sessions store: {e:#}");
    ErrorBody::new(
        ErrorCode::Internal,
        "the sessions store failed; see the daemon log",
    )
}
