//! Periods computed as Council Regulation (EEC, Euratom) No 1182/71 computes them.
//!
//! - **Hours** (Art. 3(1) first subparagraph): the hour in which the event happens is not
//!   counted; the period starts at the next full hour and ends when its last hour expires.
//!   No extension for weekends or holidays (Art. 3(4) excludes periods in hours).
//! - **Days, weeks, months, years** (Art. 3(1) second subparagraph, 3(2)(b)-(c)): the day of
//!   the event is not counted; the period ends at the expiry (24:00) of its last day; in
//!   months or years, of the day with the same date as the event's day, or of the month's
//!   last day when it has no such date.
//! - **Working days** (Art. 3(3)): Saturdays, Sundays and public holidays of the actor's
//!   calendar are not counted; the period ends at 24:00 of its last working day.
//! - **Extension** (Art. 3(4)): a period (other than in hours) whose last day is a Saturday,
//!   Sunday or public holiday ends at 24:00 of the following working day.
//! - **Two working days** (Art. 3(5)): a period of two days or more includes at least two
//!   working days.
//!
//! Days end at midnight in the legal time of the actor who must act. The end of a period is
//! an instant; an obligation met at any instant up to and including it is on time.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Timelike, Utc};

use crate::calendar::Calendar;

/// How long a period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Length {
    /// Hours.
    Hours(u32),
    /// Calendar days.
    Days(u32),
    /// Weeks (seven calendar days each).
    Weeks(u32),
    /// Months.
    Months(u32),
    /// Years.
    Years(u32),
    /// Working days of the actor's calendar.
    WorkingDays(u32),
}

impl std::fmt::Display for Length {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, unit) = match self {
            Length::Hours(n) => (n, "hour"),
            Length::Days(n) => (n, "day"),
            Length::Weeks(n) => (n, "week"),
            Length::Months(n) => (n, "month"),
            Length::Years(n) => (n, "year"),
            Length::WorkingDays(n) => (n, "working day"),
        };
        write!(f, "{n} {unit}{}", if *n == 1 { "" } else { "s" })
    }
}

/// Remembers the ends of periods computed before.
///
/// Periods other than hours depend only on the local day of their start: millions of
/// subjects cost thousands of computations. The ends are kept per calendar and length in a
/// table indexed by that day, so a look-up is a time-zone conversion and an index.
#[derive(Debug, Default)]
pub struct Memo {
    tables: Vec<Table>,
    /// The ends of days agreed as dates ([`end_of_date`]), per calendar, by day.
    dates: Vec<Dates>,
}

/// 24:00 of each day in one calendar's zone (UTC microseconds), by day from the Common Era.
#[derive(Debug)]
struct Dates {
    calendar: u64,
    first: i32,
    ends: Vec<Option<i64>>,
}

/// The ends of periods of one length in one calendar, by the local day of their start.
#[derive(Debug)]
struct Table {
    calendar: u64,
    length: Length,
    /// The day (from the Common Era) of `ends[0]`.
    first: i32,
    ends: Vec<Option<DateTime<Utc>>>,
}

/// The most days one table of [`Memo`] spans: a century.
const MEMO_SPAN: i32 = 36_525;

impl Memo {
    /// [`end_of_date`] in `calendar`'s zone, remembered (UTC microseconds).
    pub fn end_of_date(&mut self, day: NaiveDate, calendar: &Calendar) -> i64 {
        let n = day.num_days_from_ce();
        let compute = || end_of_date(day, &calendar.zone).timestamp_micros();
        let i = self.dates.iter().position(|d| d.calendar == calendar.id).unwrap_or_else(|| {
            self.dates.push(Dates { calendar: calendar.id, first: n, ends: Vec::new() });
            self.dates.len() - 1
        });
        let dates = &mut self.dates[i];
        let (low, high) = (n.min(dates.first), n.max(dates.first + dates.ends.len() as i32));
        if high - low > MEMO_SPAN {
            return compute();
        }
        if n < dates.first {
            dates.ends.splice(0..0, std::iter::repeat_n(None, (dates.first - n) as usize));
            dates.first = n;
        }
        let at = (n - dates.first) as usize;
        if dates.ends.len() <= at {
            dates.ends.resize(at + 1, None);
        }
        *dates.ends[at].get_or_insert_with(compute)
    }

    /// [`end`], remembered.
    pub fn end(&mut self, start: DateTime<Utc>, length: Length, calendar: &Calendar) -> DateTime<Utc> {
        if matches!(length, Length::Hours(_)) {
            return end(start, length, calendar);
        }
        let n = local_day(start, calendar).num_days_from_ce();
        let i =
            self.tables.iter().position(|t| t.calendar == calendar.id && t.length == length).unwrap_or_else(
                || {
                    self.tables.push(Table { calendar: calendar.id, length, first: n, ends: Vec::new() });
                    self.tables.len() - 1
                },
            );
        let table = &mut self.tables[i];
        let (low, high) = (n.min(table.first), n.max(table.first + table.ends.len() as i32));
        if high - low > MEMO_SPAN {
            // A day far from the others: not worth a table that long.
            return compute(start, length, calendar);
        }
        if n < table.first {
            let before = (table.first - n) as usize;
            table.ends.splice(0..0, std::iter::repeat_n(None, before));
            table.first = n;
        }
        let at = (n - table.first) as usize;
        if table.ends.len() <= at {
            table.ends.resize(at + 1, None);
        }
        *table.ends[at].get_or_insert_with(|| compute(start, length, calendar))
    }
}

/// The instant at which a period of `length`, running from an event at `start`, ends for an
/// actor keeping `calendar`.
pub fn end(start: DateTime<Utc>, length: Length, calendar: &Calendar) -> DateTime<Utc> {
    compute(start, length, calendar)
}

fn compute(start: DateTime<Utc>, length: Length, calendar: &Calendar) -> DateTime<Utc> {
    let days = |n: u32| -> DateTime<Utc> {
        let first = local_day(start, calendar);
        let last = first.checked_add_days(Days::new(u64::from(n))).unwrap_or(first);
        close(first, last, n >= 2, calendar)
    };
    match length {
        Length::Hours(n) => {
            let hour = start.with_minute(0).and_then(|t| t.with_second(0)).and_then(|t| t.with_nanosecond(0));
            hour.unwrap_or(start) + chrono::Duration::hours(1 + i64::from(n))
        }
        Length::Days(n) => days(n),
        Length::Weeks(n) => days(n * 7),
        Length::Months(n) | Length::Years(n) => {
            let months = if matches!(length, Length::Years(_)) { n * 12 } else { n };
            let first = local_day(start, calendar);
            // chrono clamps to the last day of a shorter month, as Art. 3(2)(c) does.
            let last = first.checked_add_months(Months::new(months)).unwrap_or(first);
            close(first, last, true, calendar)
        }
        Length::WorkingDays(n) => {
            let mut day = local_day(start, calendar);
            let mut left = n;
            while left > 0 {
                day = day.succ_opt().unwrap_or(day);
                if !calendar.is_non_working(day) {
                    left -= 1;
                }
            }
            midnight_after(day, calendar)
        }
    }
}

/// 24:00 of the actor's local day of `t`: the end of an agreed day (IMI Art. 7(1)).
pub fn end_of_day(t: DateTime<Utc>, calendar: &Calendar) -> DateTime<Utc> {
    end_of_local_day(t, &calendar.zone)
}

/// 24:00 of the local day of `t` in `zone`.
pub fn end_of_local_day(t: DateTime<Utc>, zone: &chrono_tz::Tz) -> DateTime<Utc> {
    midnight_after_in(t.with_timezone(zone).date_naive(), zone)
}

/// 24:00 of `day` in `zone`: the end of a day agreed as a calendar date (an act due on a
/// date may be done until that day ends, Reg. 1182/71 Art. 5(2)).
pub fn end_of_date(day: NaiveDate, zone: &chrono_tz::Tz) -> DateTime<Utc> {
    midnight_after_in(day, zone)
}

/// The Brussels date of an instant (UTC microseconds), as `YYYY-MM-DD`.
pub fn brussels_date(t: i64) -> String {
    let zone = crate::calendar::zone("EU");
    DateTime::from_timestamp_micros(t)
        .map_or_else(String::new, |t| t.with_timezone(&zone).format("%Y-%m-%d").to_string())
}

/// 00:00 in `zone` of the calendar date `year`-`month`-`day` (UTC microseconds), or `None`
/// for a date that does not exist.
pub fn local_midnight(year: i32, month: u32, day: u32, zone: &chrono_tz::Tz) -> Option<i64> {
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    Some(midnight_after_in(date.pred_opt()?, zone).timestamp_micros())
}

/// 00:00 in `zone` of the anniversary day `years` years after the local day of `t`: the day
/// with the same date (29 February gives 28 February), Reg. 1182/71 Art. 3(2)(c).
pub fn anniversary_start(t: DateTime<Utc>, years: u32, zone: &chrono_tz::Tz) -> DateTime<Utc> {
    let day = t.with_timezone(zone).date_naive();
    let anniversary = day.checked_add_months(Months::new(12 * years)).unwrap_or(day);
    midnight_after_in(anniversary.pred_opt().unwrap_or(anniversary), zone)
}

/// The actor's local date of an instant.
fn local_day(t: DateTime<Utc>, calendar: &Calendar) -> NaiveDate {
    t.with_timezone(&calendar.zone).date_naive()
}

/// The end of a period running from the day after `first` to `last`: extended to a working
/// day (Art. 3(4)) and, for periods of two days or more, to include two working days
/// (Art. 3(5)).
fn close(
    first: NaiveDate,
    mut last: NaiveDate,
    two_working_days: bool,
    calendar: &Calendar,
) -> DateTime<Utc> {
    let next = |d: NaiveDate| d.succ_opt().unwrap_or(d);
    while calendar.is_non_working(last) {
        last = next(last);
    }
    if two_working_days {
        let working = |last: NaiveDate| {
            first
                .iter_days()
                .skip(1)
                .take_while(|d| *d <= last)
                .filter(|d| !calendar.is_non_working(*d))
                .count()
        };
        while working(last) < 2 {
            last = next(last);
            while calendar.is_non_working(last) {
                last = next(last);
            }
        }
    }
    midnight_after(last, calendar)
}

/// 24:00 of `day` in the actor's legal time, as a UTC instant.
fn midnight_after(day: NaiveDate, calendar: &Calendar) -> DateTime<Utc> {
    midnight_after_in(day, &calendar.zone)
}

/// The midnight that ends `day` in `zone`.
fn midnight_after_in(day: NaiveDate, zone: &chrono_tz::Tz) -> DateTime<Utc> {
    let next = day.succ_opt().unwrap_or(day);
    let local = next.and_hms_opt(0, 0, 0).unwrap_or_default();
    // Midnight exists in every European zone (clocks change at 01:00 UTC), but be safe at a
    // gap: the earliest instant that is at or after it.
    zone.from_local_datetime(&local)
        .earliest()
        .or_else(|| zone.from_local_datetime(&(local + chrono::Duration::hours(1))).earliest())
        .map_or_else(|| Utc.from_utc_datetime(&local), |t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Calendars;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn cal(code: &str) -> Calendar {
        Calendars::shipped().get(code).into_owned()
    }

    fn weekends_only(code: &str) -> Calendar {
        Calendar::new(code, [])
    }

    #[test]
    fn hours_start_at_the_next_full_hour() {
        // Aware at 10:37 → 72 hours end at 11:00 three days later.
        assert_eq!(end(t("2024-04-02T10:37:00Z"), Length::Hours(72), &cal("EU")), t("2024-04-05T11:00:00Z"));
        // An event on the full hour: that hour is the one in which it happens.
        assert_eq!(end(t("2024-04-02T10:00:00Z"), Length::Hours(72), &cal("EU")), t("2024-04-05T11:00:00Z"));
    }

    #[test]
    fn seventy_two_hours_across_a_weekend_are_not_extended() {
        // Friday 15:20 → Monday 16:00, though Monday is then the last day.
        assert_eq!(end(t("2024-03-08T15:20:00Z"), Length::Hours(72), &cal("DE")), t("2024-03-11T16:00:00Z"));
        // Ending on Easter Monday (a holiday) changes nothing either.
        assert_eq!(end(t("2024-03-29T08:10:00Z"), Length::Hours(72), &cal("DE")), t("2024-04-01T09:00:00Z"));
    }

    #[test]
    fn thirty_first_august_plus_six_months_is_the_end_of_february() {
        let brussels = weekends_only("EU");
        // 2023-08-31 + 6 months → 2024-02-29 (leap year), a Thursday: ends at 24:00 Brussels.
        assert_eq!(end(t("2023-08-31T10:00:00Z"), Length::Months(6), &brussels), t("2024-02-29T23:00:00Z"));
        // 2024-08-31 + 6 months → 2025-02-28, a Friday.
        assert_eq!(end(t("2024-08-31T10:00:00Z"), Length::Months(6), &brussels), t("2025-02-28T23:00:00Z"));
    }

    #[test]
    fn a_period_from_the_twenty_ninth_of_february() {
        let brussels = weekends_only("EU");
        // 29 Feb 2024 + 1 year → 28 Feb 2025 (no 29th), a Friday.
        assert_eq!(end(t("2024-02-29T12:00:00Z"), Length::Years(1), &brussels), t("2025-02-28T23:00:00Z"));
        // 29 Feb 2024 + 3 years → 28 Feb 2027, a Sunday → Monday 1 March.
        assert_eq!(end(t("2024-02-29T12:00:00Z"), Length::Years(3), &brussels), t("2027-03-01T23:00:00Z"));
    }

    #[test]
    fn a_month_ending_on_a_sunday_ends_on_monday() {
        // Received Friday 15 March 2024 → 15 April is a Monday; received 14 Feb → 14 April, Sunday.
        assert_eq!(
            end(t("2024-02-14T09:00:00Z"), Length::Months(2), &weekends_only("FR")),
            t("2024-04-15T22:00:00Z")
        );
    }

    #[test]
    fn a_month_ending_on_a_holiday_ends_on_the_next_working_day() {
        // 3 September + 1 month = 3 October 2024, German Unity Day (a Thursday) → Friday 4th.
        assert_eq!(end(t("2024-09-03T09:00:00Z"), Length::Months(1), &cal("DE")), t("2024-10-04T22:00:00Z"));
        // Not so in France, where 3 October is a working day.
        assert_eq!(end(t("2024-09-03T09:00:00Z"), Length::Months(1), &cal("FR")), t("2024-10-03T22:00:00Z"));
    }

    #[test]
    fn days_end_at_local_midnight_across_both_daylight_saving_changes() {
        let be = weekends_only("BE");
        // Spring: 30 March 2024 (Saturday) + 1 day = Sunday 31 March (clocks go forward) →
        // extended to Monday 1 April, which ends at 24:00 CEST = 22:00 UTC.
        assert_eq!(end(t("2024-03-30T10:00:00Z"), Length::Days(1), &be), t("2024-04-01T22:00:00Z"));
        // Autumn: 26 October 2024 (Saturday) + 3 days = Tuesday 29 October, after the change:
        // 24:00 CET = 23:00 UTC.
        assert_eq!(end(t("2024-10-26T10:00:00Z"), Length::Days(3), &be), t("2024-10-29T23:00:00Z"));
        // The local day of the event counts, not the UTC one: 23:30 UTC on 31 Dec is already
        // 1 January in Brussels.
        assert_eq!(end(t("2024-12-31T23:30:00Z"), Length::Days(30), &be), t("2025-01-31T23:00:00Z"));
    }

    #[test]
    fn fifteen_working_days_over_easter_and_christmas() {
        let eu = cal("EU");
        // Received Monday 25 March 2024. EU holidays: Holy Thursday 28, Good Friday 29 March,
        // Easter Monday 1 April. Working days: 26, 27 March, then 2-5, 8-12, 15-18 April.
        assert_eq!(end(t("2024-03-25T09:00:00Z"), Length::WorkingDays(15), &eu), t("2024-04-18T22:00:00Z"));
        // Received Friday 20 December 2024: the institutions close 24 December to 2 January.
        // Working days: 23 December, then 3, 6-10, 13-17, 20-22 January 2025: the 15th is 22 January.
        assert_eq!(end(t("2024-12-20T09:00:00Z"), Length::WorkingDays(15), &eu), t("2025-01-22T23:00:00Z"));
    }

    #[test]
    fn a_period_of_two_days_or_more_includes_two_working_days() {
        // Friday + 2 days = Sunday → Monday by Art. 3(4); Monday alone is one working day, so
        // Art. 3(5) carries the period to Tuesday.
        let de = weekends_only("DE");
        assert_eq!(end(t("2024-03-08T09:00:00Z"), Length::Days(2), &de), t("2024-03-12T23:00:00Z"));
        // A one-day period is not concerned.
        assert_eq!(end(t("2024-03-08T09:00:00Z"), Length::Days(1), &de), t("2024-03-11T23:00:00Z"));
    }

    #[test]
    fn an_obligation_met_in_the_last_second_is_on_time() {
        let due = end(t("2024-01-10T09:00:00Z"), Length::Days(30), &weekends_only("EU"));
        assert_eq!(due, t("2024-02-09T23:00:00Z"));
        assert!(t("2024-02-09T22:59:59Z") <= due);
        assert!(t("2024-02-09T23:00:00Z") <= due);
        assert!(t("2024-02-09T23:00:01Z") > due);
    }

    #[test]
    fn remembered_ends_are_the_ends() {
        // Every quarter hour around both daylight-saving changes of 2024 and a few months on,
        // in zones ahead of UTC and on it, for every kind of length; then days out of order,
        // one far in the past and one beyond the memo's span.
        let (eu, pt) = (cal("EU"), cal("PT"));
        let lengths = [
            Length::Hours(72),
            Length::Days(1),
            Length::Days(30),
            Length::Weeks(2),
            Length::Months(1),
            Length::Months(6),
            Length::Years(3),
            Length::WorkingDays(15),
        ];
        let mut memo = Memo::default();
        let mut starts: Vec<DateTime<Utc>> = Vec::new();
        for first in ["2024-03-30T12:00:00Z", "2024-10-26T12:00:00Z", "2024-12-23T12:00:00Z"] {
            starts.extend((0..4 * 48).map(|q| t(first) + chrono::Duration::minutes(15 * q)));
        }
        starts.extend(["2019-02-28T23:30:00Z", "1970-01-01T00:00:00Z", "2024-02-29T23:59:59Z"].map(t));
        starts.extend(["2180-01-01T00:00:00Z", "2024-03-31T00:59:59Z"].map(t));
        for start in starts {
            for length in lengths {
                for calendar in [&eu, &pt] {
                    assert_eq!(
                        memo.end(start, length, calendar),
                        end(start, length, calendar),
                        "{start} {length}"
                    );
                }
            }
        }
    }
}
