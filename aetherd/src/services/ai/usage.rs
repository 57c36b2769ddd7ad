//! Tokens spent, per user, app and UTC day: what `ai.status` reports and the daily quota
//! is checked against. The quota holds under concurrency: every call reserves what it may
//! spend (its prompt, and the most it may write) before it reaches the provider, and
//! settles the provider's count after; a call whose reservation does not fit beside what
//! was spent and what others hold is refused.

use std::collections::HashMap;
use std::sync::Arc;

use aether_proto::api::ai::{TokenUsage, Usage};
use aether_proto::{ErrorBody, ErrorCode};
use rusqlite::params;

use crate::store::{Store, now_secs};

/// The most a call that names no `max_tokens` is reserved (and allowed) to write while a
/// quota is set.
pub const DEFAULT_OUTPUT_RESERVE: u64 = 4096;

fn today() -> i64 {
    now_secs().div_euclid(86_400)
}

/// Each user's spending against the daily quota, with what calls in flight hold.
pub struct Quota {
    daily: Option<u64>,
    store: Store,
    /// Held across a check and its reservation, and across a settlement, so that no two
    /// calls see the same room and a settlement is never counted twice or not at all.
    gate: tokio::sync::Mutex<()>,
    reserved: parking_lot::Mutex<HashMap<i64, u64>>,
}

/// Tokens held for one call until it settles (or is dropped, which only gives them back).
pub struct Reservation {
    quota: Arc<Quota>,
    user_id: i64,
    app: String,
    tokens: u64,
    /// The most the call may write, to tell the provider; None when there is no quota.
    pub max_output: Option<u32>,
    settled: bool,
}

impl Quota {
    pub fn new(daily: Option<u64>, store: Store) -> Arc<Quota> {
        Arc::new(Quota {
            daily,
            store,
            gate: tokio::sync::Mutex::new(()),
            reserved: parking_lot::Mutex::default(),
        })
    }

    pub fn daily(&self) -> Option<u64> {
        self.daily
    }

    /// Hold `input` tokens and up to `output` (or [`DEFAULT_OUTPUT_RESERVE`]) more for a
    /// call, never past the quota: the output part shrinks to what is left, and the call is
    /// refused when not even its input fits.
    pub async fn reserve(
        self: &Arc<Self>,
        user_id: i64,
        app: &str,
        input: u64,
        output: Option<u32>,
    ) -> Result<Reservation, ErrorBody> {
        let mut reservation = Reservation {
            quota: self.clone(),
            user_id,
            app: app.to_owned(),
            tokens: 0,
            max_output: output,
            settled: false,
        };
        let Some(quota) = self.daily else {
            return Ok(reservation);
        };
        let _gate = self.gate.lock().await;
        let spent = spent_today(&self.store, user_id)
            .await
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, format!("{e:#}")))?;
        let mut reserved = self.reserved.lock();
        let held = reserved.get(&user_id).copied().unwrap_or_default();
        let left = quota.saturating_sub(spent + held);
        let input = input.max(1);
        if spent >= quota || left <= input {
            let in_flight = if held > 0 {
                format!(" ({held} more are held by calls still running)")
            } else {
                String::new()
            };
            return Err(ErrorBody::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "you have used {spent} of your {quota} AI tokens today (UTC){in_flight}, \
                     and this request needs about {input} for its prompt alone; more \
                     tomorrow, or ask the admin to raise ai.daily_token_quota"
                ),
            ));
        }
        let wanted = output.map_or(DEFAULT_OUTPUT_RESERVE, u64::from);
        let output = wanted.min(left - input);
        reservation.tokens = input + output;
        reservation.max_output = Some(output.min(u64::from(u32::MAX)) as u32);
        *reserved.entry(user_id).or_default() += reservation.tokens;
        Ok(reservation)
    }

    fn release(&self, user_id: i64, tokens: u64) {
        let mut reserved = self.reserved.lock();
        if let Some(held) = reserved.get_mut(&user_id) {
            *held = held.saturating_sub(tokens);
            if *held == 0 {
                reserved.remove(&user_id);
            }
        }
    }
}

impl Reservation {
    /// Count what the call spent, and give back what it held.
    pub async fn settle(mut self, spent: TokenUsage) {
        self.settled = true;
        let quota = self.quota.clone();
        let _gate = quota.gate.lock().await;
        record(&quota.store, self.user_id, &self.app, spent).await;
        quota.release(self.user_id, self.tokens);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            self.quota.release(self.user_id, self.tokens);
        }
    }
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
