//! Parses `--since`: epoch milliseconds, or an ISO 8601 date or date-time (`2026-03-01`,
//! `2026-03-01T12:30`, `2026-03-01T12:30:15.250Z`, `2026-03-01 12:30:15+02:00`). A time without
//! an offset is UTC.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid --since `{0}`: expected an ISO date or date-time, or epoch milliseconds (hint: 2026-03-01, 2026-03-01T12:30:00Z or 1772368200000)"
)]
pub struct InvalidSince(pub String);

/// Epoch milliseconds of `text`.
pub fn parse_since(text: &str) -> Result<i64, InvalidSince> {
    let invalid = || InvalidSince(text.to_string());
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|byte| byte.is_ascii_digit()) {
        return trimmed.parse().map_err(|_| invalid());
    }
    parse_iso(trimmed).ok_or_else(invalid)
}

fn parse_iso(text: &str) -> Option<i64> {
    let (date, rest) = match text.find(['T', 't', ' ']) {
        Some(index) => (&text[..index], Some(&text[index + 1..])),
        None => (text, None),
    };
    let mut date_parts = date.split('-');
    let year: i64 = number(date_parts.next()?, 4)?;
    let month: i64 = number(date_parts.next()?, 2)?;
    let day: i64 = number(date_parts.next()?, 2)?;
    if date_parts.next().is_some() || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut millis_of_day = 0;
    let mut offset_minutes = 0;
    if let Some(rest) = rest {
        let (time, offset) = split_offset(rest)?;
        offset_minutes = offset;
        let mut time_parts = time.split(':');
        let hour: i64 = number(time_parts.next()?, 2)?;
        let minute: i64 = number(time_parts.next()?, 2)?;
        let (second, millis) = match time_parts.next() {
            None => (0, 0),
            Some(seconds) => match seconds.split_once(['.', ',']) {
                None => (number(seconds, 2)?, 0),
                Some((whole, fraction)) => {
                    if fraction.is_empty() || !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
                        return None;
                    }
                    let digits: String = fraction.chars().chain("00".chars()).take(3).collect();
                    (number(whole, 2)?, digits.parse().ok()?)
                }
            },
        };
        if time_parts.next().is_some() || hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        millis_of_day = ((hour * 60 + minute) * 60 + second) * 1000 + millis;
    }
    Some(days_from_civil(year, month, day) * 86_400_000 + millis_of_day - offset_minutes * 60_000)
}

/// Splits `12:30:00+02:00` into the time and the offset in minutes (`Z` and none are 0).
fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(time) = text.strip_suffix(['Z', 'z']) {
        return Some((time, 0));
    }
    match text.rfind(['+', '-']) {
        None => Some((text, 0)),
        Some(index) => {
            let sign = if text[index..].starts_with('-') { -1 } else { 1 };
            let offset = &text[index + 1..];
            let (hours, minutes) = match offset.split_once(':') {
                Some((hours, minutes)) => (number(hours, 2)?, number(minutes, 2)?),
                None if offset.len() == 4 => (number(&offset[..2], 2)?, number(&offset[2..], 2)?),
                None => (number(offset, 2)?, 0),
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            Some((&text[..index], sign * (hours * 60 + minutes)))
        }
    }
}

fn number(text: &str, digits: usize) -> Option<i64> {
    if text.len() != digits || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's days-from-civil, the inverse of
/// `kici_engine::api::format_timestamp`'s conversion).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use kici_engine::api::format_timestamp;

    use super::*;

    fn check(input: &str, expected: &str) {
        let millis = parse_since(input).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(format_timestamp(millis), expected, "{input}");
    }

    #[test]
    fn iso_dates_and_times() {
        check("1772368200000", "2026-03-01T12:30:00.000Z");
        check("0", "1970-01-01T00:00:00.000Z");
        check("2026-03-01", "2026-03-01T00:00:00.000Z");
        check("2000-02-29", "2000-02-29T00:00:00.000Z");
        check("2026-03-01T12:30", "2026-03-01T12:30:00.000Z");
        check("2026-03-01T12:30:15Z", "2026-03-01T12:30:15.000Z");
        check("2026-03-01T12:30:15.25Z", "2026-03-01T12:30:15.250Z");
        check("2026-03-01 12:30:15.123456", "2026-03-01T12:30:15.123Z");
        check("2026-03-01T12:30:00+02:00", "2026-03-01T10:30:00.000Z");
        check("2026-03-01T00:30:00-0130", "2026-03-01T02:00:00.000Z");
        check("1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn rejects_what_is_not_a_date() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-29",
            "2026-3-1",
            "2026-03-01T25:00",
            "2026-03-01T12",
            "2026-03-01T12:00:00.Z",
            "-5",
        ] {
            assert_eq!(parse_since(bad), Err(InvalidSince(bad.to_string())), "{bad}");
        }
        assert_eq!(
            InvalidSince("x".into()).to_string(),
            "invalid --since `x`: expected an ISO date or date-time, or epoch milliseconds (hint: 2026-03-01, 2026-03-01T12:30:00Z or 1772368200000)"
        );
    }
}
