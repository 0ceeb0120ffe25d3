//! Schedules (spec `authoring.md` §2.1): a five-field cron expression in an IANA time zone,
//! parsed with `croner` (POSIX day-of-month OR day-of-week, `@daily` and the other nicknames,
//! daylight-saving gaps and repeats resolved once). The orchestrator asks which tick is due
//! between the last one it fired and now; the answer is one tick, the latest, however many
//! were missed while it was down.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// The longest cron expression accepted.
const MAX_EXPRESSION_CHARS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "invalid cron expression `{expression}`: {reason} (five fields: minute hour day-of-month month day-of-week, e.g. `0 3 * * 1-5`)"
    )]
    Cron { expression: String, reason: String },
    #[error("unknown time zone `{0}` (an IANA name such as `UTC`, `Europe/Paris` or `America/New_York`)")]
    TimeZone(String),
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: Tz,
}

impl Schedule {
    pub fn parse(expression: &str, timezone: &str) -> Result<Schedule, ScheduleError> {
        let invalid = |reason: String| ScheduleError::Cron {
            expression: crate::excerpt::excerpt(expression).into_owned(),
            reason,
        };
        if expression.len() > MAX_EXPRESSION_CHARS {
            return Err(invalid(format!("longer than {MAX_EXPRESSION_CHARS} characters")));
        }
        let trimmed = expression.trim();
        if trimmed.eq_ignore_ascii_case("@reboot") {
            return Err(invalid("`@reboot` has no time".to_string()));
        }
        let fields = trimmed.split_whitespace().count();
        if !trimmed.starts_with('@') && fields != 5 {
            return Err(invalid(format!("{fields} fields")));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(trimmed)
            .map_err(|err| invalid(err.to_string()))?;
        let zone = Tz::from_str(timezone)
            .map_err(|_| ScheduleError::TimeZone(crate::excerpt::excerpt(timezone).into_owned()))?;
        Ok(Schedule { cron, zone })
    }

    fn at(&self, ms: i64) -> Option<DateTime<Tz>> {
        Utc.timestamp_millis_opt(ms)
            .single()
            .map(|t| t.with_timezone(&self.zone))
    }

    /// The first tick strictly after `after_ms`, in epoch ms.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let start = self.at(after_ms)?;
        self.cron
            .find_next_occurrence(&start, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// The latest tick `t` with `after_ms < t <= now_ms`: the one tick to fire now, if any.
    pub fn due(&self, after_ms: i64, now_ms: i64) -> Option<i64> {
        let tick = self
            .cron
            .find_previous_occurrence(&self.at(now_ms)?, true)
            .ok()?
            .timestamp_millis();
        (tick > after_ms).then_some(tick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    #[test]
    fn every_minute_is_due_once_per_minute() {
        let schedule = Schedule::parse("* * * * *", "UTC").unwrap();
        let start = ms("2026-12-05T10:00:30Z");
        assert_eq!(schedule.due(start, start), None);
        assert_eq!(schedule.next_after(start), Some(ms("2026-12-05T10:01:00Z")));
        let fired = schedule.due(start, ms("2026-12-05T10:01:00Z")).unwrap();
        assert_eq!(fired, ms("2026-12-05T10:01:00Z"));
        assert_eq!(schedule.due(fired, ms("2026-12-05T10:01:59Z")), None);
        // Down for ten minutes: the latest tick, once.
        assert_eq!(
            schedule.due(fired, ms("2026-12-05T10:11:30Z")),
            Some(ms("2026-12-05T10:11:00Z"))
        );
    }

    #[test]
    fn time_zones_move_the_tick() {
        let schedule = Schedule::parse("0 9 * * 1-5", "Europe/Paris").unwrap();
        // Friday 2026-12-04 09:00 in Paris is 08:00 UTC (CET).
        assert_eq!(
            schedule.next_after(ms("2026-12-04T00:00:00Z")),
            Some(ms("2026-12-04T08:00:00Z"))
        );
        // Then Monday.
        assert_eq!(
            schedule.next_after(ms("2026-12-04T08:00:00Z")),
            Some(ms("2026-12-07T08:00:00Z"))
        );
        let daily = Schedule::parse("@daily", "America/New_York").unwrap();
        assert_eq!(
            daily.next_after(ms("2026-12-04T12:00:00Z")),
            Some(ms("2026-12-05T05:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_explained() {
        let err = |cron: &str, tz: &str| Schedule::parse(cron, tz).unwrap_err().to_string();
        assert_eq!(
            err("* * * *", "UTC"),
            "invalid cron expression `* * * *`: 4 fields (five fields: minute hour day-of-month month day-of-week, e.g. `0 3 * * 1-5`)"
        );
        assert!(err("0 0 * * * *", "UTC").contains("6 fields"));
        assert!(err("61 * * * *", "UTC").starts_with("invalid cron expression `61 * * * *`: "));
        assert!(err("@reboot", "UTC").contains("`@reboot` has no time"));
        assert_eq!(
            err("* * * * *", "Mars/Olympus"),
            "unknown time zone `Mars/Olympus` (an IANA name such as `UTC`, `Europe/Paris` or `America/New_York`)"
        );
    }
}
