//! Cohorts: the hour, day and month a transaction belongs to, in the
//! configured IANA timezone. chrono-tz carries the tz database, so DST
//! transitions come from data, not from offsets guessed at start-up.

use chrono::{DateTime, Datelike, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::clock::Millis;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cohort {
    /// `YYYY-MM-DDTHH`
    pub hour: String,
    /// `YYYY-MM-DD`
    pub date: String,
    /// `YYYY-MM`
    pub month: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timezone(Tz);

impl Timezone {
    pub fn parse(name: &str) -> Result<Self> {
        name.parse::<Tz>().map(Timezone).map_err(|_| {
            Error::config(
                "cohort.timezone",
                format!("unknown timezone {name:?}: expected an IANA name such as 'UTC' or 'America/Sao_Paulo'"),
            )
        })
    }

    pub fn utc() -> Self {
        Timezone(Tz::UTC)
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    fn local(&self, ms: Millis) -> DateTime<Tz> {
        let utc = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        utc.with_timezone(&self.0)
    }

    pub fn cohort(&self, ms: Millis) -> Cohort {
        let t = self.local(ms);
        let date = format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day());
        Cohort {
            hour: format!("{date}T{:02}", t.hour()),
            month: date[..7].to_string(),
            date,
        }
    }

    /// The instant the local hour containing `ms` began. Offsets change on
    /// whole-minute boundaries, so subtracting the local minutes and seconds
    /// lands on the hour's start even across DST and half-hour zones.
    pub fn hour_start(&self, ms: Millis) -> Millis {
        let t = self.local(ms);
        let into_hour = t.minute() as i64 * 60_000 + t.second() as i64 * 1000 + (t.timestamp_subsec_millis() as i64);
        ms - into_hour
    }

    /// UTC offset in minutes at `ms` (for display and tests).
    pub fn offset_minutes(&self, ms: Millis) -> i32 {
        self.local(ms).offset().fix().local_minus_utc() / 60
    }

    /// Epoch ms of local midnight starting the day `date` (`YYYY-MM-DD`),
    /// and of the following midnight. Days are 23 or 25 hours long across DST.
    pub fn day_bounds(&self, date: &str) -> Option<(Millis, Millis)> {
        let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        let start = self.midnight(d)?;
        let end = self.midnight(d.succ_opt()?)?;
        Some((start, end))
    }

    fn midnight(&self, d: chrono::NaiveDate) -> Option<Millis> {
        // A zone may skip midnight (e.g. a DST change at 00:00): take the first valid instant.
        (0..4).find_map(|h| {
            self.0
                .from_local_datetime(&d.and_hms_opt(h, 0, 0)?)
                .earliest()
                .map(|t| t.timestamp_millis())
        })
    }
}

/// Zone used when the config names none: `TZ`, then the system zone, then UTC.
pub fn detect_timezone(tz_env: Option<&str>, system_zone: Option<&str>) -> Timezone {
    [tz_env, system_zone]
        .into_iter()
        .flatten()
        .map(|s| s.trim().trim_start_matches(':'))
        .find_map(|name| Timezone::parse(name).ok())
        .unwrap_or_else(Timezone::utc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::parse_iso;

    fn at(iso: &str) -> Millis {
        parse_iso(iso).unwrap()
    }

    #[test]
    fn utc_cohorts() {
        let c = Timezone::utc().cohort(at("2025-10-08T14:59:59.999Z"));
        assert_eq!(c.hour, "2025-10-08T14");
        assert_eq!(c.date, "2025-10-08");
        assert_eq!(c.month, "2025-10");
    }

    #[test]
    fn sao_paulo_is_three_hours_behind_and_crosses_the_day() {
        let tz = Timezone::parse("America/Sao_Paulo").unwrap();
        let c = tz.cohort(at("2025-11-01T02:30:00Z"));
        assert_eq!(c.hour, "2025-10-31T23");
        assert_eq!(c.month, "2025-10");
    }

    #[test]
    fn new_york_spring_forward_skips_two_am() {
        let tz = Timezone::parse("America/New_York").unwrap();
        // 2025-03-09 02:00 EST -> 03:00 EDT; 06:59Z is 01:59 EST, 07:00Z is 03:00 EDT.
        assert_eq!(tz.cohort(at("2025-03-09T06:59:00Z")).hour, "2025-03-09T01");
        assert_eq!(tz.cohort(at("2025-03-09T07:00:00Z")).hour, "2025-03-09T03");
        let (start, end) = tz.day_bounds("2025-03-09").unwrap();
        assert_eq!(end - start, 23 * 3_600_000);
    }

    #[test]
    fn new_york_fall_back_repeats_one_am() {
        let tz = Timezone::parse("America/New_York").unwrap();
        // 2025-11-02 02:00 EDT -> 01:00 EST: 05:30Z and 06:30Z are both 01:30 local.
        assert_eq!(tz.cohort(at("2025-11-02T05:30:00Z")).hour, "2025-11-02T01");
        assert_eq!(tz.cohort(at("2025-11-02T06:30:00Z")).hour, "2025-11-02T01");
        assert_eq!(tz.offset_minutes(at("2025-11-02T05:30:00Z")), -240);
        assert_eq!(tz.offset_minutes(at("2025-11-02T06:30:00Z")), -300);
        let (start, end) = tz.day_bounds("2025-11-02").unwrap();
        assert_eq!(end - start, 25 * 3_600_000);
        // Each of the two 01:xx hours starts at its own instant.
        assert_eq!(tz.hour_start(at("2025-11-02T06:30:00Z")), at("2025-11-02T06:00:00Z"));
    }

    #[test]
    fn half_hour_zone_hour_start() {
        let tz = Timezone::parse("Asia/Kolkata").unwrap();
        let t = at("2025-10-08T10:10:00Z"); // 15:40 IST
        assert_eq!(tz.cohort(t).hour, "2025-10-08T15");
        assert_eq!(tz.hour_start(t), at("2025-10-08T09:30:00Z"));
    }

    #[test]
    fn unknown_zone_is_a_config_error() {
        let err = Timezone::parse("Mars/Olympus").unwrap_err();
        assert!(err.to_string().contains("cohort.timezone"), "{err}");
    }

    #[test]
    fn detection_order() {
        assert_eq!(detect_timezone(Some("Asia/Tokyo"), Some("Europe/Paris")).name(), "Asia/Tokyo");
        assert_eq!(detect_timezone(Some("bogus"), Some("Europe/Paris")).name(), "Europe/Paris");
        assert_eq!(detect_timezone(None, None).name(), "UTC");
    }
}
