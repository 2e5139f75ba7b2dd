//! The published grids: every count about persons that a role without access to detail (the
//! Commission) or a public report (the annual report) can obtain, counted once and protected
//! once.
//!
//! Disclosure control applied to each view on its own is beaten by combining views: two
//! filtered tables suppress different cells, and the equations of everything answered
//! determine some of them. So each population is classified once, into one rows × columns
//! grid with its totals, protected once ([`disclosure::protect`]); a view selects rows and
//! columns of it ([`disclosure::Protected::part`]) and never counts afresh. Time is coarsened
//! to the Brussels calendar year: a grid per year, and no total over years.
//!
//! | grid | rows × columns | one per | as of |
//! |---|---|---|---|
//! | need-to-know findings | rule × member state | year of the access | the latest audit |
//! | deadline findings about persons | rule × status | (none) | the data's instant |
//! | breaches | risk × notification | year of awareness | the end of that year |
//! | data-subject requests | right × outcome | year of receipt | the end of that year |
//!
//! No record is counted in two grids, so protecting each with its totals protects their
//! union: findings of the breach and request rules (`BRE-*`, `DSR-*`) are counted in the
//! registers' grids and not among the deadline findings; retention and reply findings
//! (`RET-*`, `RT-LATE`) describe authorities, not persons, and are published as they are, as
//! in the annual report. The breach and request grids of a year are the annual report's
//! tables for that year, made by the same functions from data judged at the same instant.

use std::collections::{BTreeMap, BTreeSet};

use custos_engine::Engine;
use custos_engine::disclosure::{self, Counts, Protected};
use custos_engine::finding::Finding;
use serde::Serialize;

use custos_engine::register::{Breach, Request};

use crate::report::{Period, ReportKind};
use custos_engine::read::Data;

/// One published table: what its rows and columns are, the year it counts, and its values
/// as protected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grid {
    /// Which grid: `need-to-know`, `deadlines`, `performance`, `breaches`, `requests`.
    pub name: &'static str,
    /// What a row is (`rule`, `risk`, `right`).
    pub rows_are: &'static str,
    /// What a column is (`member state`, `status`, `notification`, `outcome`).
    pub cols_are: &'static str,
    /// The Brussels calendar year counted; `None` for deadlines, counted as of an instant.
    pub year: Option<i32>,
    /// The values, protected.
    pub table: Protected,
}

impl Grid {
    /// The part of the grid of row `row` and column `col` (`""`: every one), as published.
    pub fn part(&self, row: &str, col: &str) -> Protected {
        self.table.part(|r| row.is_empty() || r == row, |c| col.is_empty() || c == col)
    }

    /// The grid by rows only: each row's total, and the grand total.
    pub fn per_row(&self) -> Protected {
        let t = &self.table;
        let totals = t.row_totals.clone().unwrap_or_default();
        Protected {
            rows: t.rows.clone(),
            cols: vec!["total".into()],
            cells: totals.iter().map(|c| vec![*c]).collect(),
            row_totals: Some(totals.clone()),
            col_totals: t.total.map(|c| vec![c]),
            total: t.total,
            k: t.k,
            primary: t.primary,
            secondary: t.secondary,
        }
    }
}

/// Every grid of the store, protected with threshold `k`.
#[derive(Debug, Clone)]
pub struct Grids {
    /// The threshold applied.
    pub k: u64,
    /// Need-to-know findings by rule and member state, per year of the access.
    pub findings: BTreeMap<i32, Grid>,
    /// Deadline findings about persons by rule and status, as of the data's instant.
    pub deadlines: Grid,
    /// Retention and reply findings by rule and status: performance figures, unsuppressed.
    pub performance: Grid,
    /// Breaches by risk and notification, per year of awareness.
    pub breaches: BTreeMap<i32, Grid>,
    /// Data-subject requests by right and outcome, per year of receipt.
    pub requests: BTreeMap<i32, Grid>,
}

impl Grids {
    /// The grids of `data` (loaded by `engine`): the breach grid of each year is judged as of
    /// that year's end, as the annual report for the year is.
    pub async fn load(engine: &Engine, data: &Data, k: u64) -> crate::Result<Grids> {
        let mut breaches = BTreeMap::new();
        for year in years(data.breaches.iter().map(|b| b.aware_at)) {
            let period = Period::of(ReportKind::Annual, year)?;
            let rows: Vec<&Breach> = data.breaches.iter().collect();
            let grid = if period.to == data.as_of {
                breach_grid(&rows, &data.deadlines, &period, k)
            } else {
                breach_grid(&rows, &engine.deadlines(period.to).await?, &period, k)
            };
            breaches.insert(year, Grid { year: Some(year), ..grid });
        }
        let mut requests = BTreeMap::new();
        for year in years(data.requests.iter().map(|r| r.received_at)) {
            let period = Period::of(ReportKind::Annual, year)?;
            let rows: Vec<&Request> = data.requests.iter().collect();
            requests.insert(year, Grid { year: Some(year), ..request_grid(&rows, &period, k) });
        }
        Ok(Grids {
            k,
            findings: finding_grids(&data.ntk, k),
            deadlines: deadline_grid(&data.deadlines, Counted::Persons, k),
            performance: deadline_grid(&data.deadlines, Counted::Performance, 1),
            breaches,
            requests,
        })
    }
}

/// The Brussels calendar year of an instant written in RFC 3339.
pub fn year_of(ts: &str) -> Option<i32> {
    year_at(custos_engine::import::parse_timestamp(ts)?)
}

/// The Brussels calendar year of an instant (UTC microseconds).
pub fn year_at(t: i64) -> Option<i32> {
    custos_engine::period::brussels_date(t).get(..4)?.parse().ok()
}

fn years(instants: impl Iterator<Item = custos_engine::finding::Instant>) -> BTreeSet<i32> {
    instants.filter_map(|t| year_at(t.micros())).collect()
}

/// Counts keyed by (row, column) as a table with its totals, protected with threshold `k`
/// (1: nothing suppressed); rows and columns in order.
pub fn pivot(counts: &BTreeMap<(String, String), u64>, k: u64) -> Protected {
    let rows: Vec<String> =
        counts.keys().map(|(r, _)| r.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let cols: Vec<String> =
        counts.keys().map(|(_, c)| c.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let cells = rows
        .iter()
        .map(|r| cols.iter().map(|c| counts.get(&(r.clone(), c.clone())).copied().unwrap_or(0)).collect())
        .collect();
    disclosure::protect(&Counts { rows, cols, cells, margins: true }, k)
}

/// Need-to-know findings by rule and member state, one grid per Brussels year of the access.
pub fn finding_grids(ntk: &[Finding], k: u64) -> BTreeMap<i32, Grid> {
    let mut per_year: BTreeMap<i32, BTreeMap<(String, String), u64>> = BTreeMap::new();
    for f in ntk {
        if let Some(year) = f.ts.and_then(|t| year_at(t.micros())) {
            let key = (f.rule.clone(), f.member_state.clone().unwrap_or_default());
            *per_year.entry(year).or_default().entry(key).or_default() += 1;
        }
    }
    per_year
        .into_iter()
        .map(|(year, counts)| {
            let table = pivot(&counts, k);
            (
                year,
                Grid {
                    name: "need-to-know",
                    rows_are: "rule",
                    cols_are: "member state",
                    year: Some(year),
                    table,
                },
            )
        })
        .collect()
}

/// Which deadline findings a grid counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Findings about persons and their rights, but those of the registers' rules.
    Persons,
    /// Retention and reply findings: how authorities perform.
    Performance,
}

impl Counted {
    /// Which grid counts the findings of `rule`, if one does (`BRE-*` and `DSR-*` findings
    /// are counted in the registers' grids).
    pub fn of(rule: &str) -> Option<Counted> {
        if rule.starts_with("RET-") || rule == "RT-LATE" {
            Some(Counted::Performance)
        } else if rule.starts_with("BRE-") || rule.starts_with("DSR-") {
            None
        } else {
            Some(Counted::Persons)
        }
    }
}

/// A finding's rule as a row names it: a warning (a Custos default or a controller's own
/// commitment) says so, so that it is never read as a violation of the law.
pub fn with_severity(f: &Finding) -> String {
    if f.severity == custos_engine::finding::Severity::Warning {
        format!("{} (warning)", f.rule)
    } else {
        f.rule.clone()
    }
}

/// Deadline findings of the kind `counted` by rule (warnings named) and status.
pub fn deadline_grid(deadlines: &[Finding], counted: Counted, k: u64) -> Grid {
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for f in deadlines.iter().filter(|f| Counted::of(&f.rule) == Some(counted)) {
        *counts.entry((with_severity(f), f.status.to_string())).or_default() += 1;
    }
    let name = if counted == Counted::Persons { "deadlines" } else { "performance" };
    Grid { name, rows_are: "rule", cols_are: "status", year: None, table: pivot(&counts, k) }
}

/// How a breach's notification stands, judged by the `BRE-NOTIFY` findings of `deadlines`:
/// a late notification with reasons is a warning (the supervisor judges the delay).
fn notification(b: &Breach, late: &BTreeMap<String, &str>) -> &'static str {
    if b.risk == "unlikely" {
        "not required"
    } else if let Some(severity) = late.get(&b.breach_id) {
        if *severity == "warning" { "late, with reasons (warning)" } else { "late or not notified" }
    } else {
        "within 72 hours"
    }
}

/// The breaches of `breaches` the controllers became aware of in `period`, by risk and
/// notification as the deadline findings `deadlines` (judged as of the period's end) have it.
pub fn breach_grid(breaches: &[&Breach], deadlines: &[Finding], period: &Period, k: u64) -> Grid {
    let late: BTreeMap<String, &str> = deadlines
        .iter()
        .filter(|f| {
            f.rule == "BRE-NOTIFY"
                && (f.status == custos_engine::finding::Status::Late
                    || f.status == custos_engine::finding::Status::Overdue)
        })
        .map(|f| (f.subject_id.clone(), f.severity.as_str()))
        .collect();
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for b in breaches.iter().filter(|b| period.contains(b.aware_at.micros())) {
        *counts.entry((b.risk.clone(), notification(b, &late).to_owned())).or_default() += 1;
    }
    Grid {
        name: "breaches",
        rows_are: "risk",
        cols_are: "notification",
        year: None,
        table: pivot(&counts, k),
    }
}

/// The requests of `requests` received in `period`, by right and outcome (`open` while
/// none is recorded).
pub fn request_grid(requests: &[&Request], period: &Period, k: u64) -> Grid {
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in requests.iter().filter(|r| period.contains(r.received_at.micros())) {
        let outcome = r.outcome.clone().unwrap_or_else(|| "open".to_owned());
        *counts.entry((r.right.clone(), outcome)).or_default() += 1;
    }
    Grid { name: "requests", rows_are: "right", cols_are: "outcome", year: None, table: pivot(&counts, k) }
}
