//! The orchestrator's clock, in epoch milliseconds: the wall clock, moved by however far a
//! paused tokio clock (a test's `tokio::time::advance`) is ahead of real time. In production
//! tokio's clock is real time, so this is the wall clock; in a paused test, deadlines stored
//! as timestamps (heartbeats, ack and recovery deadlines, queue expiry) pass without waiting.

use std::time::Instant;

pub fn now_ms() -> i64 {
    let tokio_now = tokio::time::Instant::now().into_std();
    let real_now = Instant::now();
    let ahead = match tokio_now.checked_duration_since(real_now) {
        Some(ahead) => ahead.as_millis() as i64,
        None => -(real_now.duration_since(tokio_now).as_millis() as i64),
    };
    kici_telemetry::os::now_ms() + ahead
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_paused_clock_moves_it_by_what_was_advanced() {
        let before = now_ms();
        tokio::time::advance(std::time::Duration::from_secs(3600)).await;
        let after = now_ms();
        assert!((after - before - 3_600_000).abs() < 1_000, "{before} → {after}");
    }

    #[tokio::test]
    async fn a_running_clock_is_the_wall_clock() {
        assert!((now_ms() - kici_telemetry::os::now_ms()).abs() < 1_000);
    }
}
