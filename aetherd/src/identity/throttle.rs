//! Sign-in throttling: failed password sign-ins for one user name, or from one
//! address, first slow the next tries down and then lock them out for a while; and
//! only a few argon2 checks run at once, so a flood of sign-ins cannot take the CPU.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit};

use aether_proto::ErrorCode;

use super::IdentityError;
use crate::config::AuthLimits;

/// Keys remembered before old entries are swept.
const MAX_KEYS: usize = 10_000;
/// The longest a try is slowed down before it is checked.
const MAX_DELAY: Duration = Duration::from_secs(4);

/// What failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    User(String),
    Address(IpAddr),
}

impl Key {
    fn describe(&self) -> String {
        match self {
            Key::User(name) => format!("user {name:?}"),
            Key::Address(addr) => format!("address {addr}"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

pub struct Throttle {
    limits: AuthLimits,
    records: Mutex<HashMap<Key, Record>>,
    checks: Semaphore,
    waiting: AtomicUsize,
}

impl Throttle {
    pub fn new(limits: AuthLimits) -> Throttle {
        Throttle {
            checks: Semaphore::new(limits.max_concurrent_checks.max(1)),
            waiting: AtomicUsize::new(0),
            records: Mutex::default(),
            limits,
        }
    }

    /// Before checking a password: `rate_limited` (with when to retry) while any key is
    /// locked out; otherwise how long to wait before checking.
    pub fn admit(&self, keys: &[Key]) -> Result<Duration, IdentityError> {
        let now = Instant::now();
        let window = Duration::from_secs(self.limits.failure_window_secs);
        let mut records = self.records.lock();
        let mut delay = Duration::ZERO;
        for key in keys {
            let Some(record) = records.get_mut(key) else {
                continue;
            };
            if let Some(until) = record.locked_until {
                if until > now {
                    let wait = until - now;
                    let msg = format!(
                        "too many failed sign-ins for {}; try again in {} s",
                        key.describe(),
                        wait.as_secs_f64().ceil() as u64
                    );
                    let mut refusal = IdentityError::new(ErrorCode::RateLimited, msg);
                    refusal.retry_after_ms = Some(wait.as_millis() as u64);
                    return Err(refusal);
                }
                // The lockout is over: start counting afresh.
                records.remove(key);
                continue;
            }
            if now.duration_since(record.last) > window {
                records.remove(key);
                continue;
            }
            delay = delay.max(self.delay_after(record.failures));
        }
        Ok(delay)
    }

    fn delay_after(&self, failures: u32) -> Duration {
        let free = self.limits.failures_before_delay;
        if failures < free {
            return Duration::ZERO;
        }
        let doublings = (failures - free).min(16);
        Duration::from_millis(self.limits.first_delay_ms)
            .saturating_mul(1 << doublings)
            .min(MAX_DELAY)
    }

    /// A wrong password (or unknown user) for these keys.
    pub fn failed(&self, keys: &[Key]) {
        let now = Instant::now();
        let mut records = self.records.lock();
        if records.len() >= MAX_KEYS {
            let window = Duration::from_secs(self.limits.failure_window_secs);
            records.retain(|_, r| {
                r.locked_until.is_some_and(|until| until > now)
                    || now.duration_since(r.last) <= window
            });
        }
        for key in keys {
            let record = records.entry(key.clone()).or_insert(Record {
                failures: 0,
                last: now,
                locked_until: None,
            });
            record.failures += 1;
            record.last = now;
            if record.failures >= self.limits.max_failures {
                record.locked_until = Some(now + Duration::from_secs(self.limits.lockout_secs));
                tracing::warn!(
                    "{} locked out of password sign-in for {} s after {} failures",
                    key.describe(),
                    self.limits.lockout_secs,
                    record.failures
                );
            }
        }
    }

    /// The right password: the user's and the address's failures are forgotten.
    pub fn succeeded(&self, keys: &[Key]) {
        let mut records = self.records.lock();
        for key in keys {
            records.remove(key);
        }
    }

    /// A turn to run one argon2 check, or `rate_limited` when too many already wait.
    pub async fn check_slot(&self) -> Result<SemaphorePermit<'_>, IdentityError> {
        if let Ok(permit) = self.checks.try_acquire() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.limits.max_waiting_checks {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            let mut refusal = IdentityError::new(
                ErrorCode::RateLimited,
                "too many password sign-ins at once; try again in a moment",
            );
            refusal.retry_after_ms = Some(1000);
            return Err(refusal);
        }
        let permit = self.checks.acquire().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        permit.map_err(|_| IdentityError::new(ErrorCode::Unavailable, "shutting down"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AuthLimits {
        AuthLimits {
            failures_before_delay: 2,
            first_delay_ms: 100,
            max_failures: 4,
            lockout_secs: 60,
            ..AuthLimits::default()
        }
    }

    #[test]
    fn failures_slow_down_then_lock_out_and_success_forgets_them() {
        let throttle = Throttle::new(limits());
        let ana = [Key::User("ana".into())];
        assert_eq!(throttle.admit(&ana).unwrap(), Duration::ZERO);
        throttle.failed(&ana);
        throttle.failed(&ana);
        assert_eq!(throttle.admit(&ana).unwrap(), Duration::from_millis(100));
        throttle.failed(&ana);
        assert_eq!(throttle.admit(&ana).unwrap(), Duration::from_millis(200));
        throttle.failed(&ana);
        let locked = throttle.admit(&ana).unwrap_err();
        assert_eq!(locked.code, ErrorCode::RateLimited);
        assert!(locked.retry_after_ms.unwrap() > 59_000, "{locked:?}");
        assert!(locked.msg.contains("try again in 60 s"), "{}", locked.msg);
        let bob = [Key::User("bob".into())];
        assert_eq!(
            throttle.admit(&bob).unwrap(),
            Duration::ZERO,
            "others go on"
        );
        throttle.succeeded(&ana);
        assert_eq!(throttle.admit(&ana).unwrap(), Duration::ZERO);
    }

    #[test]
    fn delays_never_pass_the_cap() {
        let throttle = Throttle::new(AuthLimits {
            max_failures: 1000,
            ..limits()
        });
        assert_eq!(throttle.delay_after(200), MAX_DELAY);
    }
}
