//! Calendars: where an actor keeps time, and which of its days are not working days.
//!
//! An actor acts in its member state's legal time (`EU`: Europe/Brussels). Saturdays and
//! Sundays are never working days; public holidays come from the calendars Custos ships
//! (`engine/data/holidays.csv`: the 30 EEA states from the `holidays` package of PyPI, the
//! Union institutions from the Commission's yearly pattern; see `scripts/gen_holidays.py`)
//! plus every row of the store's `holidays` table.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use chrono::{Datelike, NaiveDate, Weekday};
use chrono_tz::Tz;

use crate::error::Result;
use crate::store::Store;

/// The shipped public holidays: `calendar,date,name` rows after a comment and a header.
pub const SHIPPED: &str = include_str!("../../data/holidays.csv");

/// The IANA zone of a member state's legal time; `EU` is Brussels; unknown codes are UTC.
pub fn zone(code: &str) -> Tz {
    use chrono_tz::{Asia, Atlantic, Europe};
    match code {
        "AT" => Europe::Vienna,
        "BE" | "EU" => Europe::Brussels,
        "BG" => Europe::Sofia,
        "CY" => Asia::Nicosia,
        "CZ" => Europe::Prague,
        "DE" => Europe::Berlin,
        "DK" => Europe::Copenhagen,
        "EE" => Europe::Tallinn,
        "ES" => Europe::Madrid,
        "FI" => Europe::Helsinki,
        "FR" => Europe::Paris,
        "GR" => Europe::Athens,
        "HR" => Europe::Zagreb,
        "HU" => Europe::Budapest,
        "IE" => Europe::Dublin,
        "IS" => Atlantic::Reykjavik,
        "IT" => Europe::Rome,
        "LI" => Europe::Vaduz,
        "LT" => Europe::Vilnius,
        "LU" => Europe::Luxembourg,
        "LV" => Europe::Riga,
        "MT" => Europe::Malta,
        "NL" => Europe::Amsterdam,
        "NO" => Europe::Oslo,
        "PL" => Europe::Warsaw,
        "PT" => Europe::Lisbon,
        "RO" => Europe::Bucharest,
        "SE" => Europe::Stockholm,
        "SI" => Europe::Ljubljana,
        "SK" => Europe::Bratislava,
        "CH" => Europe::Zurich,
        "UA" => Europe::Kyiv,
        _ => chrono_tz::UTC,
    }
}

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const EPOCH_FROM_CE: i32 = 719_163;

/// Days a holiday bitmap covers from 1970-01-01: to the year 2161.
const SPAN: usize = 70_000;

/// Hands out calendar identities, so that periods computed for one calendar are never taken
/// for another's.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// One actor's calendar: its zone and its public holidays.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// The calendar's code (a member state, or `EU`).
    pub code: String,
    /// Its legal time.
    pub zone: Tz,
    /// Unique to these holidays in this zone: a new one for every change.
    pub id: u64,
    /// A bit per day from 1970-01-01, set on public holidays; shared, since a calendar is
    /// cloned for every subject that needs it.
    holidays: Arc<Vec<u64>>,
}

fn day_index(day: NaiveDate) -> Option<usize> {
    usize::try_from(day.num_days_from_ce() - EPOCH_FROM_CE).ok().filter(|d| *d < SPAN)
}

impl Calendar {
    /// A calendar with these holidays.
    pub fn new(code: &str, holidays: impl IntoIterator<Item = NaiveDate>) -> Calendar {
        let mut bits = vec![0u64; SPAN.div_ceil(64)];
        for day in holidays {
            if let Some(i) = day_index(day) {
                bits[i / 64] |= 1 << (i % 64);
            }
        }
        Calendar {
            code: code.to_owned(),
            zone: zone(code),
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            holidays: Arc::new(bits),
        }
    }

    /// Whether `day` is a Saturday, a Sunday or a public holiday.
    pub fn is_non_working(&self, day: NaiveDate) -> bool {
        matches!(day.weekday(), Weekday::Sat | Weekday::Sun) || self.is_holiday(day)
    }

    /// Whether `day` is a public holiday of this calendar.
    pub fn is_holiday(&self, day: NaiveDate) -> bool {
        day_index(day).is_some_and(|i| self.holidays[i / 64] & (1 << (i % 64)) != 0)
    }
}

/// Every calendar: the shipped ones with the store's imported holidays added.
#[derive(Debug, Clone, Default)]
pub struct Calendars {
    by_code: HashMap<String, Calendar>,
}

impl Calendars {
    /// The shipped calendars only.
    pub fn shipped() -> Calendars {
        let mut days: HashMap<String, Vec<NaiveDate>> = HashMap::new();
        for line in SHIPPED.lines().filter(|l| !l.starts_with('#')).skip(1) {
            let mut parts = line.splitn(3, ',');
            if let (Some(code), Some(date)) = (parts.next(), parts.next())
                && let Ok(d) = NaiveDate::parse_from_str(date, "%Y-%m-%d")
            {
                days.entry(code.to_owned()).or_default().push(d);
            }
        }
        Calendars { by_code: days.into_iter().map(|(c, d)| (c.clone(), Calendar::new(&c, d))).collect() }
    }

    /// The shipped calendars with the holidays imported into `store` added.
    pub fn of(store: &Store) -> Result<Calendars> {
        let mut cals = Calendars::shipped();
        for batch in store.read(crate::catalog::HOLIDAYS.name)? {
            let codes = batch.column(0).as_string::<i32>();
            let dates = batch.column(1).as_primitive::<arrow::datatypes::Date32Type>();
            for row in 0..batch.num_rows() {
                if codes.is_null(row) || dates.is_null(row) {
                    continue;
                }
                let Some(day) = NaiveDate::from_num_days_from_ce_opt(dates.value(row) + 719_163) else {
                    continue;
                };
                cals.add(codes.value(row), day);
            }
        }
        Ok(cals)
    }

    /// Adds a holiday to `code`'s calendar (creating it if needed).
    pub fn add(&mut self, code: &str, day: NaiveDate) {
        let calendar = self.by_code.entry(code.to_owned()).or_insert_with(|| Calendar::new(code, []));
        if let Some(i) = day_index(day) {
            Arc::make_mut(&mut calendar.holidays)[i / 64] |= 1 << (i % 64);
            calendar.id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Makes sure `code` has a calendar (weekends only, if it has no holidays), so that
    /// [`get`](Self::get) hands out the same one every time.
    pub fn ensure(&mut self, code: &str) {
        if !self.by_code.contains_key(code) {
            self.by_code.insert(code.to_owned(), Calendar::new(code, []));
        }
    }

    /// The calendar of `code`; a code without shipped or imported holidays gets weekends only.
    pub fn get(&self, code: &str) -> std::borrow::Cow<'_, Calendar> {
        match self.by_code.get(code) {
            Some(c) => std::borrow::Cow::Borrowed(c),
            None => std::borrow::Cow::Owned(Calendar::new(code, [])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn every_eea_state_and_the_union_has_holidays_from_2018_to_2030() {
        let cals = Calendars::shipped();
        for code in crate::catalog::EEA.iter().copied().chain(["EU"]) {
            let c = cals.get(code);
            for year in 2018..=2030 {
                let n = (1..=365)
                    .filter(|d| c.is_holiday(day(&format!("{year}-01-01")) + chrono::Days::new(*d - 1)))
                    .count();
                assert!(n >= 5, "{code} {year}: {n} holidays");
            }
        }
    }

    #[test]
    fn known_holidays_are_there() {
        let cals = Calendars::shipped();
        assert!(cals.get("DE").is_holiday(day("2024-10-03")));
        assert!(cals.get("FR").is_holiday(day("2024-07-14")));
        assert!(cals.get("EU").is_holiday(day("2025-05-09")));
        assert!(cals.get("EU").is_holiday(day("2025-04-17"))); // Holy Thursday 2025
        assert!(!cals.get("DE").is_holiday(day("2025-05-09")));
        assert!(cals.get("XX").is_non_working(day("2024-03-16"))); // a Saturday
    }
}
