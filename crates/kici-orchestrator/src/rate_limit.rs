//! Rate limits as token buckets: per source for webhooks (`rate_limit_rpm` deliveries, refilled
//! at that rate, so a burst up to the limit passes and a sustained flood is answered 429 with
//! the seconds until the next delivery fits), and per workflow for the runs events start.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// The buckets of every source that sent something.
#[derive(Debug, Default)]
pub struct RateLimits {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimits {
    /// Takes one from `key`'s bucket at `now_ms`: `Ok` when it fits, else the whole seconds to
    /// wait (`Retry-After`).
    pub fn take(&self, key: &str, per_minute: i64, now_ms: i64) -> Result<(), u64> {
        let capacity = per_minute.max(1) as f64;
        let per_ms = capacity / 60_000.0;
        // Every update is one read-modify-write of one entry, so a poisoned map is consistent.
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: capacity,
            at_ms: now_ms,
        });
        let elapsed = (now_ms - bucket.at_ms).max(0) as f64;
        bucket.tokens = (bucket.tokens + elapsed * per_ms).min(capacity);
        bucket.at_ms = now_ms;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / per_ms / 1000.0).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_up_to_the_limit_passes_then_the_rate_holds() {
        let limits = RateLimits::default();
        for _ in 0..3 {
            assert_eq!(limits.take("s", 3, 0), Ok(()));
        }
        assert_eq!(limits.take("s", 3, 0), Err(20), "one delivery every 20 s");
        assert_eq!(limits.take("other", 3, 0), Ok(()), "sources have their own buckets");
        assert_eq!(limits.take("s", 3, 10_000), Err(10));
        assert_eq!(limits.take("s", 3, 20_000), Ok(()));
        assert_eq!(limits.take("s", 3, 20_000), Err(20));
    }
}
