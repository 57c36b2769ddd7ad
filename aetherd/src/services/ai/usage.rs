//! Tokens spent, per user, app and UTC day: what `ai.status` reports and the daily quota
//! is checked against.

use aether_proto::api::ai::{TokenUsage, Usage};
use rusqlite::params;

use crate::store::{Store, now_secs};

fn today() -> i64 {
    now_secs().div_euclid(86_400)
}

/// Count one request and the tokens it spent.
pub async fn record(store: &Store, user_id: i64, app: &str, spent: TokenUsage) {
    let app = app.to_owned();
    let day = today();
    let result = store
        .call(move |c| {
            c.execute(
                "INSERT INTO ai_usage(user_id, app, day, requests, input_tokens, output_tokens)
                 VALUES (?1, ?2, ?3, 1, ?4, ?5)
                 ON CONFLICT(user_id, day, app) DO UPDATE SET
                    requests = requests + 1,
                    input_tokens = input_tokens + excluded.input_tokens,
                    output_tokens = output_tokens + excluded.output_tokens",
                params![user_id, app, day, spent.input as i64, spent.output as i64],
            )?;
            Ok(())
        })
        .await;
    if let Err(e) = result {
        tracing::error!("cannot record AI usage: {e:#}");
    }
}

/// This user's usage today, by app.
pub async fn today_by_app(store: &Store, user_id: i64) -> anyhow::Result<Vec<Usage>> {
    let day = today();
    store
        .call(move |c| {
            let mut query = c.prepare(
                "SELECT app, requests, input_tokens, output_tokens FROM ai_usage
                 WHERE user_id = ?1 AND day = ?2 ORDER BY app",
            )?;
            let rows = query.query_map(params![user_id, day], |r| {
                Ok(Usage {
                    app: r.get(0)?,
                    requests: r.get::<_, i64>(1)? as u64,
                    input_tokens: r.get::<_, i64>(2)? as u64,
                    output_tokens: r.get::<_, i64>(3)? as u64,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
}

/// Tokens (in and out) this user spent today, all apps.
pub async fn spent_today(store: &Store, user_id: i64) -> anyhow::Result<u64> {
    Ok(today_by_app(store, user_id)
        .await?
        .iter()
        .map(|u| u.input_tokens + u.output_tokens)
        .sum())
}
