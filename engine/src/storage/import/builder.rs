//! Typed column builders fed one cell at a time by the text readers (CSV, JSON Lines).
//!
//! A builder only parses: a cell becomes a value of its column's type or a problem saying what
//! was expected. Whether a null is allowed, whether a value is one of the allowed ones, and
//! whether references resolve is decided afterwards, once, for every input format alike
//! ([`super::validate`]).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate};
use serde_json::Value;

use crate::catalog::{Kind, Table};

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// Parses a timestamp as the data model accepts it: RFC 3339 with `Z` or an offset, or a bare
/// date meaning 00:00 UTC of that day. Returns UTC microseconds.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    timestamp(s).ok()
}

/// Formats UTC microseconds as RFC 3339, with fractions of a second only when there are some:
/// what [`parse_timestamp`] reads back.
pub fn format_micros(micros: i64) -> String {
    let t = DateTime::from_timestamp_micros(micros).unwrap_or_default();
    let digits =
        if micros % 1_000_000 == 0 { chrono::SecondsFormat::Secs } else { chrono::SecondsFormat::Micros };
    t.to_rfc3339_opts(digits, true)
}

/// The UTC days at whose end (23:59:60 UTC) a leap second was inserted, since 1990
/// (IERS Bulletin C; none has been announced since the one of 31 December 2016).
const LEAP_SECOND_DAYS: [&str; 12] = [
    "1990-12-31",
    "1992-06-30",
    "1993-06-30",
    "1994-06-30",
    "1995-12-31",
    "1997-06-30",
    "1998-12-31",
    "2005-12-31",
    "2008-12-31",
    "2012-06-30",
    "2015-06-30",
    "2016-12-31",
];

/// [`parse_timestamp`], saying what is wrong. Besides RFC 3339's syntax: an offset lies
/// within ±14:00 (the widest any zone uses); a fraction has at most six digits (Custos keeps
/// microseconds, and refuses rather than rounds a finer instant); a second of 60 is accepted
/// only where a leap second was inserted, and is stored as the first instant of the next day.
pub fn timestamp(s: &str) -> Result<i64, &'static str> {
    if s.len() == 10 {
        return parse_date(s).map(|d| i64::from(d) * 86_400_000_000).ok_or(Kind::Timestamp.expected());
    }
    // RFC 3339 demands the `T` (or a space) and an offset; chrono's parser enforces both.
    let t = DateTime::parse_from_rfc3339(s).map_err(|_| Kind::Timestamp.expected())?;
    if t.offset().local_minus_utc().abs() > 14 * 3600 {
        return Err("an offset from -14:00 to +14:00");
    }
    if let Some((_, fraction)) = s.split_once('.')
        && fraction.bytes().take_while(u8::is_ascii_digit).count() > 6
    {
        return Err("at most six decimals of a second (microseconds)");
    }
    let utc = t.naive_utc();
    if chrono::Timelike::nanosecond(&utc) >= 1_000_000_000 {
        let day = utc.date().format("%Y-%m-%d").to_string();
        let at_end = chrono::Timelike::hour(&utc) == 23 && chrono::Timelike::minute(&utc) == 59;
        if !at_end || !LEAP_SECOND_DAYS.contains(&day.as_str()) {
            return Err("seconds from 00 to 59 (60 only for a leap second IERS inserted, at 23:59:60 UTC)");
        }
    }
    Ok(t.timestamp_micros())
}

/// Parses a `YYYY-MM-DD` date into days since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| chrono::Datelike::num_days_from_ce(&d) - UNIX_EPOCH_DAYS_FROM_CE)
}

fn parse_bool(s: &str, csv: bool) -> Option<bool> {
    match s {
        "true" => Some(true),
        "false" => Some(false),
        "1" if csv => Some(true),
        "0" if csv => Some(false),
        _ => None,
    }
}

enum Builder {
    Text(StringBuilder),
    Int(Int64Builder),
    Bool(BooleanBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    List(ListBuilder<StringBuilder>),
}

impl Builder {
    fn new(kind: Kind, capacity: usize) -> Self {
        match kind {
            Kind::Text => Builder::Text(StringBuilder::with_capacity(capacity, capacity * 16)),
            Kind::Int => Builder::Int(Int64Builder::with_capacity(capacity)),
            Kind::Bool => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
            Kind::Timestamp => {
                Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"))
            }
            Kind::Date => Builder::Date(Date32Builder::with_capacity(capacity)),
            Kind::TextList => Builder::List(ListBuilder::new(StringBuilder::new())),
        }
    }

    fn null(&mut self) {
        match self {
            Builder::Text(b) => b.append_null(),
            Builder::Int(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Timestamp(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            // A list is never null: absent means empty.
            Builder::List(b) => b.append(true),
        }
    }

    fn push_str(&mut self, kind: Kind, cell: &str, csv: bool) -> Result<(), &'static str> {
        match self {
            Builder::Text(b) => b.append_value(cell),
            Builder::Int(b) => b.append_value(cell.parse().map_err(|_| kind.expected())?),
            Builder::Bool(b) => b.append_value(parse_bool(cell, csv).ok_or(kind.expected())?),
            Builder::Timestamp(b) => b.append_value(timestamp(cell)?),
            Builder::Date(b) => b.append_value(parse_date(cell).ok_or(kind.expected())?),
            Builder::List(b) => {
                for item in cell.split(';').filter(|s| !s.is_empty()) {
                    b.values().append_value(item);
                }
                b.append(true);
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::List(b) => Arc::new(b.finish()),
        }
    }
}

/// Parses a text column of a typed file (a timestamp kept as text in Parquet, say) into
/// column `i` of `table`. Returns the column, null where a value did not parse, and each
/// such row with what was expected.
pub fn parse_text_column(
    table: &Table,
    i: usize,
    text: &arrow::array::StringArray,
) -> (ArrayRef, Vec<(usize, &'static str)>) {
    let kind = table.columns[i].kind;
    let mut b = Builder::new(kind, arrow::array::Array::len(text));
    let mut failed = Vec::new();
    for (row, cell) in text.iter().enumerate() {
        match cell {
            None => b.null(),
            Some(cell) => {
                if let Err(e) = b.push_str(kind, cell, false) {
                    b.null();
                    failed.push((row, e));
                }
            }
        }
    }
    (b.finish(), failed)
}

/// Builds one table's record batch from cells.
pub struct TableBuilder {
    table: &'static Table,
    builders: Vec<Builder>,
    rows: usize,
}

impl TableBuilder {
    /// An empty builder for `table`, sized for `capacity` rows.
    pub fn new(table: &'static Table, capacity: usize) -> Self {
        let builders = table.columns.iter().map(|c| Builder::new(c.kind, capacity)).collect();
        TableBuilder { table, builders, rows: 0 }
    }

    /// Rows pushed since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was pushed since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Marks the end of a row; every column must have had exactly one push.
    pub fn end_row(&mut self) {
        self.rows += 1;
    }

    /// Appends a null to column `i` (an absent JSON key, an absent CSV column).
    pub fn push_null(&mut self, i: usize) {
        self.builders[i].null();
    }

    /// Appends a CSV cell to column `i`. An empty cell is null; lists split on `;`.
    ///
    /// On a value that does not parse, returns what was expected.
    pub fn push_csv(&mut self, i: usize, cell: &str) -> Result<(), &'static str> {
        if cell.is_empty() {
            self.builders[i].null();
            return Ok(());
        }
        self.push_str(i, cell, true)
    }

    fn push_str(&mut self, i: usize, cell: &str, csv: bool) -> Result<(), &'static str> {
        self.builders[i].push_str(self.table.columns[i].kind, cell, csv)
    }

    /// Appends a JSON value to column `i`: `null` is null, strings parse as for CSV (but
    /// without the `1`/`0` booleans), numbers and booleans and arrays must match the type.
    pub fn push_json(&mut self, i: usize, value: &Value) -> Result<(), &'static str> {
        let kind = self.table.columns[i].kind;
        match (value, &mut self.builders[i]) {
            (Value::Null, b) => b.null(),
            (Value::String(s), Builder::List(_)) => return self.push_str(i, s, false),
            (Value::String(s), Builder::Text(b)) => b.append_value(s),
            (Value::String(s), Builder::Timestamp(_) | Builder::Date(_)) => {
                return self.push_str(i, s, false);
            }
            (Value::Number(n), Builder::Int(b)) => b.append_value(n.as_i64().ok_or(kind.expected())?),
            (Value::Bool(v), Builder::Bool(b)) => b.append_value(*v),
            (Value::Array(items), Builder::List(b)) => {
                for item in items {
                    match item {
                        Value::String(s) => b.values().append_value(s),
                        _ => return Err("a list of strings"),
                    }
                }
                b.append(true);
            }
            _ => return Err(kind.expected()),
        }
        Ok(())
    }

    /// The rows pushed so far as a batch of the table's schema; the builder starts afresh.
    pub fn finish(&mut self) -> crate::Result<RecordBatch> {
        self.rows = 0;
        let columns = self.builders.iter_mut().map(Builder::finish).collect();
        Ok(RecordBatch::try_new(self.table.schema(), columns)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_with_offsets_are_stored_in_utc() {
        let a = parse_timestamp("2024-03-15T10:37:00+01:00");
        let b = parse_timestamp("2024-03-15T09:37:00Z");
        assert_eq!(a, b);
        assert!(a.is_some());
    }

    #[test]
    fn a_bare_date_is_midnight_utc() {
        assert_eq!(parse_timestamp("1970-01-02"), Some(86_400_000_000));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_date("2023-02-29"), None);
    }

    #[test]
    fn implausible_clocks_are_refused_with_what_was_expected() {
        assert_eq!(timestamp("2024-03-15T10:37:00+14:00").map(|_| ()), Ok(()));
        assert_eq!(timestamp("2024-03-15T10:37:00-14:01"), Err("an offset from -14:00 to +14:00"));
        assert_eq!(timestamp("2024-03-15T10:37:00+23:59"), Err("an offset from -14:00 to +14:00"));
        assert_eq!(timestamp("2024-03-15T10:37:00.123456Z").map(|_| ()), Ok(()));
        assert_eq!(
            timestamp("2024-03-15T10:37:00.1234567Z"),
            Err("at most six decimals of a second (microseconds)")
        );
        assert!(timestamp("2024-03-15T10:37:60Z").is_err(), "no leap second that day");
        assert!(timestamp("2016-12-31T22:59:60Z").is_err(), "a leap second is at 23:59:60 UTC");
        // The leap second at the end of 2016, in UTC and in Brussels time.
        let next_day = parse_timestamp("2017-01-01T00:00:00Z");
        assert_eq!(timestamp("2016-12-31T23:59:60Z").ok(), next_day);
        assert_eq!(timestamp("2017-01-01T00:59:60+01:00").ok(), next_day);
    }

    #[test]
    fn timestamps_without_offset_or_with_nonsense_are_refused() {
        for bad in ["2024-03-15T10:37:00", "2024-13-01", "15/03/2024", "", "2024-03-15T25:00:00Z"] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }
}
