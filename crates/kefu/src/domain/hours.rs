//! Business hours: a weekly schedule in the shop's time zone, and closed days. Times are compared
//! as the shop's clock shows them, so a daylight-saving change moves nothing: an interval from
//! 09:00 to 18:00 is open from nine to six on that day too (an hour shorter or longer when the
//! change falls inside it), and a clock time the change skips opens at the first moment after it.
//!
//! An interval belongs to the day it opens on; one whose close is not after its open runs past
//! midnight into the next day. A closed day cancels the intervals that open on it (one that
//! opened the evening before still runs into it).

use jiff::{
    Timestamp,
    civil::{Date, DateTime, Time, Weekday},
    tz::TimeZone,
};
use serde::{Deserialize, Serialize};

use super::ValidationError;

/// Days looked ahead for the next opening.
const LOOK_AHEAD_DAYS: i32 = 400;
/// Closed days kept at most.
pub const MAX_CLOSED_DAYS: usize = 400;
/// Intervals per week at most.
pub const MAX_INTERVALS: usize = 70;

/// The schedule as admins write it and the database keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoursDocument {
    pub enabled: bool,
    pub time_zone: String,
    pub weekly: Vec<IntervalDocument>,
    pub closed_days: Vec<String>,
}

impl Default for HoursDocument {
    fn default() -> Self {
        Self {
            enabled: false,
            time_zone: "UTC".into(),
            weekly: Vec::new(),
            closed_days: Vec::new(),
        }
    }
}

/// One opening: `day` is `mon` … `sun`, `open` and `close` are `HH:MM` (`close` may be `24:00`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalDocument {
    pub day: String,
    pub open: String,
    pub close: String,
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct BusinessHours {
    document: HoursDocument,
    zone: TimeZone,
    intervals: Vec<Interval>,
    closed: Vec<Date>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Interval {
    day: Weekday,
    /// Minutes after midnight.
    open: i32,
    /// Minutes after midnight, up to 1440; at or before `open`: on the next day.
    close: i32,
}

impl Interval {
    fn overnight(self) -> bool {
        self.close <= self.open
    }
}

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

fn minutes(text: &str, what: &str, allow_24: bool) -> Result<i32, ValidationError> {
    let invalid =
        || ValidationError::invalid(format!("{what} must be a time written HH:MM, not {text:?}"));
    let (h, m) = text.split_once(':').ok_or_else(invalid)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(invalid());
    }
    let (h, m): (i32, i32) = (
        h.parse().map_err(|_| invalid())?,
        m.parse().map_err(|_| invalid())?,
    );
    match (h, m) {
        (24, 0) if allow_24 => Ok(1440),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(invalid()),
    }
}

impl BusinessHours {
    /// Always open: no schedule.
    pub fn always() -> Self {
        Self::parse(HoursDocument::default()).expect("the default schedule is valid")
    }

    pub fn parse(document: HoursDocument) -> Result<Self, ValidationError> {
        let zone = TimeZone::get(document.time_zone.trim()).map_err(|_| {
            ValidationError::invalid(format!(
                "timeZone must be an IANA time zone name such as Asia/Shanghai, not {:?}",
                document.time_zone
            ))
        })?;
        if document.weekly.len() > MAX_INTERVALS {
            return Err(ValidationError::invalid(format!(
                "at most {MAX_INTERVALS} intervals a week"
            )));
        }
        if document.closed_days.len() > MAX_CLOSED_DAYS {
            return Err(ValidationError::invalid(format!(
                "at most {MAX_CLOSED_DAYS} closed days"
            )));
        }
        let mut intervals = Vec::with_capacity(document.weekly.len());
        for interval in &document.weekly {
            let day = DAYS
                .iter()
                .find(|(name, _)| interval.day.eq_ignore_ascii_case(name))
                .map(|(_, day)| *day)
                .ok_or_else(|| {
                    ValidationError::invalid(format!(
                        "day must be one of mon, tue, wed, thu, fri, sat, sun, not {:?}",
                        interval.day
                    ))
                })?;
            let open = minutes(&interval.open, "open", false)?;
            let close = minutes(&interval.close, "close", true)?;
            if open == close {
                return Err(ValidationError::invalid(format!(
                    "the interval on {} opens and closes at {}: it would be empty",
                    interval.day, interval.open
                )));
            }
            intervals.push(Interval { day, open, close });
        }
        let mut closed = Vec::with_capacity(document.closed_days.len());
        for day in &document.closed_days {
            let date: Date = day.trim().parse().map_err(|_| {
                ValidationError::invalid(format!(
                    "closed days are dates written YYYY-MM-DD, not {day:?}"
                ))
            })?;
            closed.push(date);
        }
        closed.sort_unstable();
        closed.dedup();
        if document.enabled && intervals.is_empty() {
            return Err(ValidationError::invalid(
                "business hours need at least one interval (or turn them off: always open)",
            ));
        }
        let document = HoursDocument {
            time_zone: document.time_zone.trim().to_owned(),
            closed_days: closed.iter().map(Date::to_string).collect(),
            ..document
        };
        Ok(Self {
            document,
            zone,
            intervals,
            closed,
        })
    }

    pub fn document(&self) -> &HoursDocument {
        &self.document
    }

    pub fn time_zone(&self) -> &str {
        &self.document.time_zone
    }

    /// Whether the shop is open at `at` (milliseconds since the Unix epoch).
    pub fn is_open(&self, at: i64) -> bool {
        if !self.document.enabled {
            return true;
        }
        let Some(local) = self.local(at) else {
            return true;
        };
        let date = local.date();
        let now = i32::from(local.hour()) * 60 + i32::from(local.minute());
        let yesterday = date.yesterday().ok();
        self.intervals.iter().any(|i| {
            let today = i.day == date.weekday() && !self.closed.contains(&date);
            let from_yesterday = i.overnight()
                && yesterday.is_some_and(|y| i.day == y.weekday() && !self.closed.contains(&y));
            (today && now >= i.open && (i.overnight() || now < i.close))
                || (from_yesterday && now < i.close)
        })
    }

    /// The next moment the shop opens after `at`, when it is closed then; `None` when it is open
    /// or never opens again within a year.
    pub fn opens_at(&self, at: i64) -> Option<i64> {
        if self.is_open(at) {
            return None;
        }
        let local = self.local(at)?;
        let mut date = local.date();
        for _ in 0..LOOK_AHEAD_DAYS {
            if !self.closed.contains(&date) {
                let mut opens: Vec<i64> = self
                    .intervals
                    .iter()
                    .filter(|i| i.day == date.weekday())
                    .filter_map(|i| self.instant(date, i.open))
                    .filter(|t| *t > at)
                    .collect();
                opens.sort_unstable();
                if let Some(first) = opens.first() {
                    return Some(*first);
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    fn local(&self, at: i64) -> Option<DateTime> {
        let instant = Timestamp::from_millisecond(at).ok()?;
        Some(instant.to_zoned(self.zone.clone()).datetime())
    }

    /// The instant the shop's clock shows `minutes` on `date`; a time a daylight-saving change
    /// skips is the first moment after the change.
    fn instant(&self, date: Date, minutes: i32) -> Option<i64> {
        let time = Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0).ok()?;
        let zoned = self
            .zone
            .to_ambiguous_zoned(date.to_datetime(time))
            .compatible()
            .ok()?;
        Some(zoned.timestamp().as_millisecond())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(zone: &str, weekly: &[(&str, &str, &str)], closed: &[&str]) -> BusinessHours {
        BusinessHours::parse(HoursDocument {
            enabled: true,
            time_zone: zone.into(),
            weekly: weekly
                .iter()
                .map(|(d, o, c)| IntervalDocument {
                    day: (*d).into(),
                    open: (*o).into(),
                    close: (*c).into(),
                })
                .collect(),
            closed_days: closed.iter().map(|d| (*d).into()).collect(),
        })
        .unwrap()
    }

    /// Milliseconds of a wall-clock time in a zone.
    fn at(zone: &str, text: &str) -> i64 {
        let dt: DateTime = text.parse().unwrap();
        TimeZone::get(zone)
            .unwrap()
            .to_ambiguous_zoned(dt)
            .compatible()
            .unwrap()
            .timestamp()
            .as_millisecond()
    }

    #[test]
    fn without_a_schedule_the_shop_is_always_open() {
        let always = BusinessHours::always();
        assert!(always.is_open(0));
        assert_eq!(always.opens_at(0), None);
    }

    #[test]
    fn a_weekday_interval_is_open_inside_and_closed_outside_in_the_shops_time_zone() {
        let h = hours("Asia/Shanghai", &[("mon", "09:00", "18:00")], &[]);
        // 2026-12-07 is a Monday.
        assert!(h.is_open(at("Asia/Shanghai", "2026-12-07T09:00")));
        assert!(h.is_open(at("Asia/Shanghai", "2026-12-07T17:59")));
        assert!(!h.is_open(at("Asia/Shanghai", "2026-12-07T18:00")));
        assert!(!h.is_open(at("Asia/Shanghai", "2026-12-07T08:59")));
        // 09:00 in Shanghai is 01:00 UTC.
        assert!(h.is_open(at("UTC", "2026-12-07T01:30")));
    }

    #[test]
    fn an_interval_past_midnight_runs_into_the_next_day() {
        let h = hours("Europe/Berlin", &[("fri", "22:00", "02:00")], &[]);
        // 2026-12-11 is a Friday.
        assert!(!h.is_open(at("Europe/Berlin", "2026-12-11T21:59")));
        assert!(h.is_open(at("Europe/Berlin", "2026-12-11T23:59")));
        assert!(h.is_open(at("Europe/Berlin", "2026-12-12T00:00")));
        assert!(h.is_open(at("Europe/Berlin", "2026-12-12T01:59")));
        assert!(!h.is_open(at("Europe/Berlin", "2026-12-12T02:00")));
        assert_eq!(
            h.opens_at(at("Europe/Berlin", "2026-12-12T03:00")),
            Some(at("Europe/Berlin", "2026-12-18T22:00"))
        );
    }

    #[test]
    fn midnight_to_midnight_is_the_whole_day() {
        let h = hours("UTC", &[("tue", "00:00", "24:00")], &[]);
        assert!(h.is_open(at("UTC", "2026-12-08T00:00")));
        assert!(h.is_open(at("UTC", "2026-12-08T23:59")));
        assert!(!h.is_open(at("UTC", "2026-12-09T00:00")));
    }

    #[test]
    fn a_closed_day_cancels_the_intervals_that_open_on_it_and_the_next_opening_skips_it() {
        let week: Vec<(&str, &str, &str)> = ["mon", "tue", "wed", "thu", "fri"]
            .iter()
            .map(|d| (*d, "09:00", "18:00"))
            .collect();
        let h = hours("Asia/Shanghai", &week, &["2026-12-25"]);
        // Friday 25 December is closed; the next opening is Monday the 28th.
        assert!(!h.is_open(at("Asia/Shanghai", "2026-12-25T10:00")));
        assert_eq!(
            h.opens_at(at("Asia/Shanghai", "2026-12-24T19:00")),
            Some(at("Asia/Shanghai", "2026-12-28T09:00"))
        );
    }

    #[test]
    fn a_daylight_saving_change_keeps_the_clock_times() {
        // Europe/Berlin springs forward on Sunday 2026-03-29 at 02:00 (to 03:00) and falls back
        // on Sunday 2026-10-25 at 03:00 (to 02:00).
        let h = hours("Europe/Berlin", &[("sun", "01:00", "04:00")], &[]);
        let spring_open = at("Europe/Berlin", "2026-03-29T01:00");
        let spring_close = at("Europe/Berlin", "2026-03-29T04:00");
        assert_eq!(
            spring_close - spring_open,
            2 * 3600 * 1000,
            "an hour shorter"
        );
        assert!(h.is_open(spring_open));
        assert!(h.is_open(spring_close - 1));
        assert!(!h.is_open(spring_close));
        let autumn_open = at("Europe/Berlin", "2026-10-25T01:00");
        let autumn_close = autumn_open + 4 * 3600 * 1000;
        assert!(h.is_open(autumn_close - 1), "an hour longer");
        assert!(!h.is_open(autumn_close));
        // An opening at a clock time the change skips opens at the first moment after it.
        let skipped = hours("Europe/Berlin", &[("sun", "02:30", "05:00")], &[]);
        assert_eq!(
            skipped.opens_at(at("Europe/Berlin", "2026-03-29T00:00")),
            Some(at("UTC", "2026-03-29T01:30"))
        );
    }

    #[test]
    fn bad_schedules_are_refused_with_what_is_wrong() {
        let bad = |weekly: &[(&str, &str, &str)], zone: &str, closed: &[&str]| {
            BusinessHours::parse(HoursDocument {
                enabled: true,
                time_zone: zone.into(),
                weekly: weekly
                    .iter()
                    .map(|(d, o, c)| IntervalDocument {
                        day: (*d).into(),
                        open: (*o).into(),
                        close: (*c).into(),
                    })
                    .collect(),
                closed_days: closed.iter().map(|d| (*d).into()).collect(),
            })
            .unwrap_err()
            .to_string()
        };
        let ok = [("mon", "09:00", "18:00")];
        assert!(bad(&ok, "Mars/Olympus", &[]).contains("timeZone"));
        assert!(bad(&[("monday", "09:00", "18:00")], "UTC", &[]).contains("day"));
        assert!(bad(&[("mon", "9:00", "18:00")], "UTC", &[]).contains("HH:MM"));
        assert!(bad(&[("mon", "24:00", "18:00")], "UTC", &[]).contains("open"));
        assert!(bad(&[("mon", "09:00", "09:00")], "UTC", &[]).contains("empty"));
        assert!(bad(&ok, "UTC", &["25/12/2026"]).contains("YYYY-MM-DD"));
        assert!(bad(&[], "UTC", &[]).contains("at least one"));
    }
}
