//! The mall's clock: local dates and hours of UTC instants, and duration settings.
//!
//! Offsets come from chrono-tz. A probe log is nearly sorted in time, so the offset of the
//! last minute looked up is cached: one tz lookup per minute of data, not per record.

use anyhow::Result;
use chrono::{NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;

/// Days from 1970-01-01 to a date (Polars' physical `Date`).
pub fn date_to_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
}

/// Inverse of [`date_to_days`], saturating at chrono's date range (an `i32` of days reaches
/// further than a `NaiveDate`; ingest rejects such times, this keeps any other path panic-free).
pub fn days_to_date(days: i32) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    epoch.checked_add_signed(chrono::Duration::days(days as i64)).unwrap_or(if days < 0 {
        NaiveDate::MIN
    } else {
        NaiveDate::MAX
    })
}

/// Parses an IANA zone name.
pub fn parse_tz(name: &str) -> Result<Tz> {
    name.parse::<Tz>().map_err(|_| crate::error::usage(format!("mall.timezone: unknown IANA time zone '{name}'")))
}

/// Local-time lookups with a cache of UTC offsets by minute: the last [`SLOTS`] minutes seen,
/// direct-mapped, so a file's rows in any time order (an hour is 60 minutes) look the zone up
/// once per minute, not once per row. The local hour last seen is kept whole when the offset
/// is the same at both its ends, so an hourly file's rows cost two comparisons each.
#[derive(Clone)]
pub struct LocalClock {
    tz: Tz,
    /// (minute, offset) per slot `minute % SLOTS`.
    cache: Box<[(i64, i64); SLOTS]>,
    /// Instants `[lo, hi)` of one local hour: (lo, hi, local day).
    hour: (i64, i64, i32),
}

const SLOTS: usize = 128;

impl LocalClock {
    pub fn new(tz: Tz) -> Self {
        LocalClock { tz, cache: Box::new([(i64::MIN, 0); SLOTS]), hour: (0, 0, 0) }
    }

    /// UTC offset in seconds at instant `t` (epoch seconds).
    pub fn offset(&mut self, t: i64) -> i64 {
        let minute = t.div_euclid(60);
        let slot = &mut self.cache[minute.rem_euclid(SLOTS as i64) as usize];
        if slot.0 != minute {
            let utc = chrono::DateTime::from_timestamp(minute * 60, 0).unwrap_or_default().naive_utc();
            *slot = (minute, self.tz.offset_from_utc_datetime(&utc).fix().local_minus_utc() as i64);
        }
        slot.1
    }

    /// Local date of `t`, as days since the epoch.
    pub fn local_days(&mut self, t: i64) -> i32 {
        self.day_and_hour(t).0
    }

    /// Local date (days since the epoch) of `t` and the start instant of its local clock
    /// hour, with one offset lookup.
    pub fn day_and_hour(&mut self, t: i64) -> (i32, i64) {
        let (lo, hi, day) = self.hour;
        if lo <= t && t < hi {
            return (day, lo);
        }
        let off = self.offset(t);
        let local = t + off;
        let (day, start) = (local.div_euclid(86_400) as i32, t - local.rem_euclid(3600));
        // Zone changes are months apart: one offset at both ends holds for the whole hour.
        if let Some(end) = start.checked_add(3600) {
            if self.offset(start) == off && self.offset(end - 1) == off {
                self.hour = (start, end, day);
            }
        }
        (day, start)
    }

    /// Start instant (epoch seconds) of the local clock hour holding `t`.
    pub fn hour_start(&mut self, t: i64) -> i64 {
        self.day_and_hour(t).1
    }

    /// First instant (epoch seconds) of local day `day`.
    pub fn day_start(&mut self, day: i32) -> i64 {
        // Local midnight is within ±1 day of UTC midnight; find the first second of `day`.
        let (mut lo, mut hi) = (day as i64 * 86_400 - 2 * 86_400, day as i64 * 86_400 + 2 * 86_400);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.local_days(mid) >= day {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }
}

/// Parses "90s", "10m", "1h", "1h30m", "2d" or a bare number of seconds. `None` for anything
/// else, including a value too large for an `i64` of seconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<i64>() {
        return (n >= 0).then_some(n);
    }
    let mut total = 0i64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            let n: i64 = num.parse().ok()?;
            num.clear();
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => return None,
            };
            total = total.checked_add(n.checked_mul(unit)?)?;
        }
    }
    num.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    /// The cached offsets equal the zone's own, in a scrambled order of instants across New
    /// York's spring-forward and fall-back hours (minutes that share a slot evict each other).
    #[test]
    fn cached_offsets_equal_the_zone_across_dst() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let mut clock = LocalClock::new(tz);
        for start in [ts("2026-03-08T05:00:00Z"), ts("2026-11-01T04:00:00Z")] {
            // 4 hours of seconds, visited with a stride coprime to their count.
            let n = 4 * 3600i64;
            for k in 0..n {
                let t = start + (k * 7919) % n;
                let utc = chrono::DateTime::from_timestamp(t, 0).unwrap().naive_utc();
                let want = tz.offset_from_utc_datetime(&utc).fix().local_minus_utc() as i64;
                assert_eq!(clock.offset(t), want, "t = {t}");
            }
        }
    }

    /// `day_and_hour` against chrono's local time of each instant across both New York DST
    /// changes: the local date, and the last instant at or before `t` on a whole local hour.
    #[test]
    fn day_and_hour_follow_the_zone_across_dst() {
        use chrono::{Datelike, Timelike};
        let tz: Tz = "America/New_York".parse().unwrap();
        let mut clock = LocalClock::new(tz);
        for start in [ts("2026-03-08T04:00:00Z"), ts("2026-11-01T03:00:00Z")] {
            for t in (start..start + 5 * 3600).step_by(97) {
                let local = chrono::DateTime::from_timestamp(t, 0).unwrap().with_timezone(&tz);
                let (day, hour) = clock.day_and_hour(t);
                assert_eq!(day, date_to_days(local.date_naive()), "t = {t}");
                let at = chrono::DateTime::from_timestamp(hour, 0).unwrap().with_timezone(&tz);
                assert!(hour <= t && t - hour < 3600, "t = {t}");
                assert_eq!(
                    (at.minute(), at.second(), at.hour(), at.day()),
                    (0, 0, local.hour(), local.day()),
                    "t = {t}"
                );
            }
        }
    }

    /// The kept hour gives what the offset of each instant gives, with instants backwards and
    /// in a scrambled order across New York's DST changes and Lord Howe Island's half-hour ones (a change
    /// inside a local hour, so that hour is never kept whole).
    #[test]
    fn the_kept_hour_equals_each_instants_offset() {
        let zones = [
            ("America/New_York", ["2026-03-08T04:00:00Z", "2026-11-01T03:00:00Z"]),
            ("Australia/Lord_Howe", ["2026-04-04T12:00:00Z", "2026-10-03T12:00:00Z"]),
        ];
        for (name, starts) in zones {
            let tz: Tz = name.parse().unwrap();
            let mut clock = LocalClock::new(tz);
            for start in starts.map(ts) {
                let n = 6 * 3600i64;
                // Every second backwards, then runs of 50 seconds in a scrambled order.
                let backwards = (0..n).rev().map(|k| start + k);
                let scrambled = (0..n).map(|k| start + (k / 50 * 7919) % (n / 50) * 50 + k % 50);
                for t in backwards.chain(scrambled) {
                    let utc = chrono::DateTime::from_timestamp(t, 0).unwrap().naive_utc();
                    let local = t + tz.offset_from_utc_datetime(&utc).fix().local_minus_utc() as i64;
                    let want = (local.div_euclid(86_400) as i32, t - local.rem_euclid(3600));
                    assert_eq!(clock.day_and_hour(t), want, "{name}, t = {t}");
                }
            }
        }
    }

    #[test]
    fn day_start_is_the_first_local_instant() {
        let day = |y, m, d| date_to_days(NaiveDate::from_ymd_opt(y, m, d).unwrap());
        let mut berlin = LocalClock::new(parse_tz("Europe/Berlin").unwrap());
        assert_eq!(berlin.day_start(day(2026, 3, 29)), ts("2026-03-28T23:00:00Z"), "CET midnight");
        assert_eq!(berlin.day_start(day(2026, 3, 30)), ts("2026-03-29T22:00:00Z"), "CEST midnight");
        let mut ny = LocalClock::new(parse_tz("America/New_York").unwrap());
        assert_eq!(ny.day_start(day(2026, 3, 8)), ts("2026-03-08T05:00:00Z"));
        assert_eq!(ny.day_start(day(2026, 3, 9)), ts("2026-03-09T04:00:00Z"));
        let mut utc = LocalClock::new(chrono_tz::UTC);
        assert_eq!(utc.day_start(day(2026, 3, 2)), ts("2026-03-02T00:00:00Z"));
    }

    #[test]
    fn berlin_spring_forward_day_has_23_hours() {
        let mut c = LocalClock::new(parse_tz("Europe/Berlin").unwrap());
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let day = date_to_days(NaiveDate::from_ymd_opt(2026, 3, 29).unwrap());
        let mut hours = std::collections::BTreeSet::new();
        let mut t = ts("2026-03-28T23:00:00Z");
        while t < ts("2026-03-29T22:00:00Z") {
            assert_eq!(c.local_days(t), day);
            hours.insert(c.hour_start(t));
            t += 600;
        }
        assert_eq!(hours.len(), 23);
        assert_eq!(c.hour_start(ts("2026-03-29T01:10:00Z")), ts("2026-03-29T01:00:00Z"));
        assert_eq!(c.local_days(ts("2026-03-29T22:00:00Z")), day + 1);
    }

    #[test]
    fn half_hour_zone_hours_start_on_local_hours() {
        let mut c = LocalClock::new(parse_tz("Asia/Kolkata").unwrap());
        // 10:15 UTC = 15:45 IST; the hour started 15:00 IST = 09:30 UTC.
        assert_eq!(c.hour_start(ts("2026-05-01T10:15:00Z")), ts("2026-05-01T09:30:00Z"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Some(600));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("45"), Some(45));
        assert_eq!(parse_duration("10x"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration(""), None);
        // Overflow is an invalid value, not a panic.
        assert_eq!(parse_duration("9223372036854775807d"), None);
        assert_eq!(parse_duration("106751991167300d1d"), None);
        assert_eq!(parse_duration("99999999999999999999"), None);
        assert_eq!(parse_duration("9223372036854775807s"), Some(i64::MAX));
    }

    #[test]
    fn days_to_date_saturates() {
        assert_eq!(days_to_date(0), NaiveDate::from_ymd_opt(1970, 1, 1).unwrap());
        assert_eq!(days_to_date(i32::MAX), NaiveDate::MAX);
        assert_eq!(days_to_date(i32::MIN), NaiveDate::MIN);
        let d = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        assert_eq!(days_to_date(date_to_days(d)), d);
    }
}
