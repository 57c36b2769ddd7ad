//! The wall clock as a view sees it: the host reads the time and the local UTC offset and
//! hands them to every view ([`crate::ViewCx`]), so apps stay free of I/O and tests draw at
//! a fixed moment. Dates are computed here (days since 1970 to a calendar date), small
//! enough not to need a date crate.

/// Now, and how far local time is from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    /// Milliseconds since 1970-01-01 UTC.
    pub now_ms: u64,
    /// Local time minus UTC, in seconds (0 when unknown).
    pub utc_offset_s: i32,
}

const DAY_MS: i64 = 86_400_000;
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

impl Clock {
    fn local_ms(&self, at_ms: u64) -> i64 {
        at_ms as i64 + i64::from(self.utc_offset_s) * 1000
    }

    /// The local day `at_ms` falls on, as days since 1970-01-01.
    pub fn day(&self, at_ms: u64) -> i64 {
        self.local_ms(at_ms).div_euclid(DAY_MS)
    }

    /// `14:05`, local time.
    pub fn time_of_day(&self, at_ms: u64) -> String {
        let minutes = self.local_ms(at_ms).rem_euclid(DAY_MS) / 60_000;
        format!("{:02}:{:02}", minutes / 60, minutes % 60)
    }

    /// The day as people name it: `today`, `yesterday`, `Tue 3 May`, or `3 May 2025` in
    /// another year.
    pub fn day_name(&self, at_ms: u64) -> String {
        let (day, today) = (self.day(at_ms), self.day(self.now_ms));
        if day == today {
            return "today".into();
        }
        if day == today - 1 {
            return "yesterday".into();
        }
        let (year, month, date) = civil(day);
        let (this_year, _, _) = civil(today);
        let month = MONTHS[(month - 1) as usize];
        if year == this_year {
            let weekday = WEEKDAYS[(day + 4).rem_euclid(7) as usize];
            format!("{weekday} {date} {month}")
        } else {
            format!("{date} {month} {year}")
        }
    }

    /// How long ago, roughly: `just now`, `5 min ago`, `3 h ago`, `2 days ago`, then the date.
    pub fn ago(&self, at_ms: u64) -> String {
        let minutes = self.now_ms.saturating_sub(at_ms) / 60_000;
        match minutes {
            0 => "just now".into(),
            1..=59 => format!("{minutes} min ago"),
            60..=1439 => format!("{} h ago", minutes / 60),
            1440..=2879 => "yesterday".into(),
            2880..=10079 => format!("{} days ago", minutes / 1440),
            _ => format!("on {}", self.day_name(at_ms)),
        }
    }
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian (Howard
/// Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Friday 2026-05-01 12:00 UTC.
    const NOON: u64 = 1_777_636_800_000;

    #[test]
    fn dates_and_times_read_as_people_say_them() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_574), (2026, 5, 1));
        assert_eq!(civil(-1), (1969, 12, 31));
        let clock = Clock {
            now_ms: NOON,
            utc_offset_s: 2 * 3600,
        };
        assert_eq!(clock.time_of_day(NOON), "14:00");
        assert_eq!(clock.day_name(NOON), "today");
        assert_eq!(clock.day_name(NOON - 86_400_000), "yesterday");
        assert_eq!(clock.day_name(NOON - 3 * 86_400_000), "Tue 28 Apr");
        assert_eq!(clock.day_name(NOON - 365 * 86_400_000), "1 May 2025");
        // Local midnight, not UTC's, starts a day.
        assert_eq!(clock.day_name(NOON - 13 * 3_600_000), "today");
        assert_eq!(clock.day_name(NOON - 15 * 3_600_000), "yesterday");
    }

    #[test]
    fn ago_rounds_down_to_what_matters() {
        let clock = Clock {
            now_ms: NOON,
            utc_offset_s: 0,
        };
        assert_eq!(clock.ago(NOON - 20_000), "just now");
        assert_eq!(clock.ago(NOON - 5 * 60_000), "5 min ago");
        assert_eq!(clock.ago(NOON - 3 * 3_600_000), "3 h ago");
        assert_eq!(clock.ago(NOON - 30 * 3_600_000), "yesterday");
        assert_eq!(clock.ago(NOON - 4 * 86_400_000), "4 days ago");
        assert_eq!(clock.ago(NOON - 20 * 86_400_000), "on Sat 11 Apr");
        // A clock behind the daemon's says "just now", not a negative time.
        assert_eq!(clock.ago(NOON + 5_000), "just now");
    }
}
