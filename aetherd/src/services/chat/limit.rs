//! A token bucket per user: a burst, then a steady rate. One user's flood is refused with
//! when to try again; nobody else waits for it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub struct RateLimit {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
}

impl RateLimit {
    pub fn new(per_second: f64, burst: f64) -> RateLimit {
        RateLimit {
            per_second,
            burst,
            buckets: Mutex::default(),
        }
    }

    /// Take one token for `user`, or say how long until one is there.
    pub fn take(&self, user: i64) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        if buckets.len() > 100_000 {
            // Full buckets only: forgetting them changes nothing.
            let burst = self.burst;
            let rate = self.per_second;
            buckets.retain(|_, (tokens, at)| *tokens + at.elapsed().as_secs_f64() * rate < burst);
        }
        let (tokens, at) = buckets.entry(user).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_a_wait_and_others_unaffected() {
        let limit = RateLimit::new(10.0, 3.0);
        for _ in 0..3 {
            limit.take(1).unwrap();
        }
        let wait = limit.take(1).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        limit.take(2).unwrap();
    }
}
