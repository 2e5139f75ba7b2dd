//! The pages as a role without access to detail sees them (the Commission): every count is a
//! copy of a value of one of the published grids ([`custos_reports::grid`]), so that nothing
//! it can ask, alone or combined, recovers a suppressed value.
//!
//! - A filter on a rule, a member state, a status, a severity or a year selects rows,
//!   columns or grids; it never counts afresh.
//! - A time window is widened to the Brussels calendar years it touches, one table per year,
//!   with no total over years: bisecting a window learns nothing finer than a year.
//! - A filter on an actor (a user, an authority) is detail: refused, whether the actor exists
//!   or not.

use std::collections::BTreeMap;

use custos_engine::disclosure::{self, Cell as Dc, Protected};
use custos_reports::grid::{Counted, Grid, Grids};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::page::{Field, Figure, Section};
use crate::routes::shown_table;

/// A part of a grid as the JSON answers publish it: which grid and year, which rows and
/// columns it keeps (`"all"` or their labels), and its values. Every total in `table` sums
/// the kept columns of its row or the kept rows of its column.
fn published(grid: &Grid, part: &Protected, rows: Option<&[String]>, cols: Option<&[String]>) -> Value {
    json!({
        "grid": grid.name,
        "year": grid.year,
        "rows_are": grid.rows_are,
        "cols_are": grid.cols_are,
        "rows_selected": rows.map_or_else(|| json!("all"), |r| json!(r)),
        "cols_selected": cols.map_or_else(|| json!("all"), |c| json!(c)),
        "table": part,
    })
}

/// The part of `grid` whose rows `keep_row` and columns `keep_col` keep, with its JSON.
fn select(
    grid: &Grid,
    keep_row: &dyn Fn(&str) -> bool,
    keep_col: &dyn Fn(&str) -> bool,
) -> (Protected, Value) {
    let part = grid.table.part(keep_row, keep_col);
    let all_rows = part.rows.len() == grid.table.rows.len();
    let all_cols = part.cols.len() == grid.table.cols.len();
    let json =
        published(grid, &part, (!all_rows).then_some(&part.rows[..]), (!all_cols).then_some(&part.cols[..]));
    (part, json)
}

fn param<'a>(params: &'a BTreeMap<String, String>, k: &str) -> &'a str {
    params.get(k).map(String::as_str).unwrap_or("")
}

/// Refuses a filter on an actor: detail, whichever actor it names.
fn no_actor_filter(params: &BTreeMap<String, String>, names: &[&str]) -> Result<(), AppError> {
    if names.iter().any(|n| !param(params, n).is_empty()) { Err(AppError::Forbidden) } else { Ok(()) }
}

/// The Brussels calendar years a `from`/`to` window touches (dates are Brussels dates; a `to`
/// of 1 January ends the year before), as bounds; `None` where the window is open.
fn years_touched(from: &str, to: &str) -> Result<(Option<i32>, Option<i32>), AppError> {
    let year = |name: &str, v: &str| -> Result<Option<i32>, AppError> {
        if v.is_empty() {
            return Ok(None);
        }
        let y = v
            .get(..4)
            .and_then(|y| y.parse::<i32>().ok())
            .filter(|_| v.len() == 4 || v.as_bytes()[4] == b'-');
        y.map(Some).ok_or_else(|| {
            AppError::BadRequest(format!("{name} `{v}`: expected a date such as 2025-03-01 or a year"))
        })
    };
    let lo = year("from", from)?;
    let hi = year("to", to)?.map(|y| if to.len() == 10 && to.ends_with("-01-01") { y - 1 } else { y });
    Ok((lo, hi))
}

/// The grids of `per_year` that a window of `params` touches.
fn in_window<'a>(
    per_year: &'a BTreeMap<i32, Grid>,
    params: &BTreeMap<String, String>,
) -> Result<Vec<&'a Grid>, AppError> {
    let (lo, hi) = years_touched(param(params, "from"), param(params, "to"))?;
    let year = param(params, "year").parse::<i32>().ok();
    Ok(per_year
        .iter()
        .filter(|(y, _)| lo.is_none_or(|lo| **y >= lo) && hi.is_none_or(|hi| **y <= hi))
        .filter(|(y, _)| year.is_none_or(|x| **y == x))
        .map(|(_, g)| g)
        .collect())
}

fn rule_note(k: u64) -> Section {
    Section::Note { text: format!("Disclosure control: {}.", disclosure::rule_text(k)) }
}

fn counts_json(k: u64, parts: Vec<Value>) -> Value {
    json!({"disclosure_control": disclosure::rule_text(k), "published": parts})
}

/// One table per year of `per_year` in the window of `params`, parts by `keep_row` and
/// `keep_col`; `link` makes a cell's address.
fn per_year_tables(
    per_year: &BTreeMap<i32, Grid>,
    params: &BTreeMap<String, String>,
    caption: &str,
    keep_row: &dyn Fn(&str) -> bool,
    keep_col: &dyn Fn(&str) -> bool,
    link: &dyn Fn(i32, &str, &str) -> String,
) -> Result<(Vec<Section>, Vec<Value>), AppError> {
    let mut sections = Vec::new();
    let mut parts = Vec::new();
    for grid in in_window(per_year, params)? {
        let year = grid.year.unwrap_or_default();
        let (part, json) = select(grid, keep_row, keep_col);
        sections.push(Section::Table(shown_table(
            &format!("{caption}, {year}"),
            grid.rows_are,
            &part,
            &|r, c| link(year, r, c),
        )));
        parts.push(json);
    }
    Ok((sections, parts))
}

fn year_link(path: &str, year: i32, pairs: &[(&str, &str)]) -> String {
    let year = year.to_string();
    let mut all = vec![("year", year.as_str())];
    all.extend_from_slice(pairs);
    crate::routes::link_with(path, &all)
}

/// The need-to-know findings page: filters, then the grid of each year in the window.
pub fn findings(grids: &Grids, params: &BTreeMap<String, String>) -> Result<(Vec<Section>, Value), AppError> {
    no_actor_filter(params, &["user", "authority"])?;
    let (rule, ms) = (param(params, "rule"), param(params, "member_state"));
    let (tables, parts) = per_year_tables(
        &grids.findings,
        params,
        "Findings per rule and member state",
        &|r| rule.is_empty() || r == rule,
        &|c| ms.is_empty() || c == ms,
        &|y, r, c| {
            let (from, to) = (format!("{y}-01-01"), format!("{}-01-01", y + 1));
            crate::routes::link_with(
                "/findings",
                &[("rule", r), ("member_state", c), ("from", &from), ("to", &to)],
            )
        },
    )?;
    let mut sections = vec![filters(
        params,
        &[("rule", "Rule"), ("member_state", "Member state"), ("from", "From (date)"), ("to", "To (date)")],
    )];
    sections.extend(tables);
    sections.push(rule_note(grids.k));
    sections.push(Section::Note {
        text: "Your role sees these findings as counts, one table per calendar year (Brussels time): a window is widened to the whole years it touches, and no total over years is shown.".into(),
    });
    Ok((sections, counts_json(grids.k, parts)))
}

fn filters(params: &BTreeMap<String, String>, fields: &[(&str, &str)]) -> Section {
    Section::Filters {
        fields: fields
            .iter()
            .map(|(n, l)| Field { name: (*n).into(), label: (*l).into(), value: param(params, n).into() })
            .collect(),
    }
}

/// The deadlines page: findings about persons (protected) and retention and reply findings
/// (performance figures, as they are), by rule and status.
pub fn deadlines(
    grids: &Grids,
    params: &BTreeMap<String, String>,
) -> Result<(Vec<Section>, Value), AppError> {
    no_actor_filter(params, &["actor"])?;
    let (rule, status, severity) =
        (param(params, "rule"), param(params, "status"), param(params, "severity"));
    let keep_row = |label: &str| {
        let warning = label.ends_with(" (warning)");
        let bare = label.trim_end_matches(" (warning)");
        (rule.is_empty() || bare == rule) && (severity.is_empty() || (severity == "warning") == warning)
    };
    let keep_col = |c: &str| status.is_empty() || c == status;
    let link = |r: &str, c: &str| {
        let (rule, severity) = match r.strip_suffix(" (warning)") {
            Some(bare) => (bare, "warning"),
            None => (r, ""),
        };
        crate::routes::link_with("/deadlines", &[("rule", rule), ("severity", severity), ("status", c)])
    };
    let mut sections =
        vec![filters(params, &[("rule", "Rule"), ("status", "Status"), ("severity", "Severity")])];
    let mut parts = Vec::new();
    for (grid, caption) in [
        (&grids.deadlines, "Deadline findings about persons and their rights, by rule and status"),
        (
            &grids.performance,
            "Retention and reply findings by rule and status (performance figures, as they are)",
        ),
    ] {
        let (part, json) = select(grid, &keep_row, &keep_col);
        sections.push(Section::Table(shown_table(caption, "rule", &part, &link)));
        parts.push(json);
    }
    if !rule.is_empty() && Counted::of(rule).is_none() {
        sections.push(Section::Note {
            text: format!(
                "{rule} findings are counted per year on the breach register and data-subject requests pages."
            ),
        });
    }
    sections.push(rule_note(grids.k));
    Ok((sections, counts_json(grids.k, parts)))
}

/// A register's page (breaches, requests): its grid of each year, or of `year`.
pub fn register(
    per_year: &BTreeMap<i32, Grid>,
    k: u64,
    params: &BTreeMap<String, String>,
    caption: &str,
    path: &str,
) -> Result<(Vec<Section>, Value), AppError> {
    let (tables, parts) =
        per_year_tables(per_year, params, caption, &|_| true, &|_| true, &|y, _, _| year_link(path, y, &[]))?;
    let mut sections = vec![filters(params, &[("year", "Year")])];
    sections.extend(tables);
    sections.push(rule_note(k));
    sections.push(Section::Note {
        text: "Your role sees the register as counts, one table per calendar year (Brussels time), as the annual report publishes them.".into(),
    });
    Ok((sections, counts_json(k, parts)))
}

/// The overview's headline figures and its findings-per-rule table, each a value of a grid.
pub fn overview(grids: &Grids, events: String) -> (Vec<Figure>, Option<(Protected, i32)>, Value) {
    let shown = |c: Option<Dc>| c.map_or_else(|| "-".to_owned(), |c| c.to_string());
    let mut figures = vec![Figure { label: "Access events judged".into(), value: events, link: None }];
    let mut parts = Vec::new();
    let mut chart = None;
    let mut figure = |label: String, grid: &Grid, status: &str, link: String| {
        let (part, json) = select(grid, &|_| true, &|c| status.is_empty() || c == status);
        figures.push(Figure { label, value: shown(part.total), link: Some(link) });
        parts.push(json);
    };
    if let Some((year, grid)) = grids.findings.iter().next_back() {
        let link = format!("/findings?from={year}-01-01&to={}-01-01", year + 1);
        figure(format!("Need-to-know findings, {year}"), grid, "", link);
        chart = Some((grid.per_row(), *year));
    }
    figure(
        "Deadlines overdue about persons and their rights".into(),
        &grids.deadlines,
        "overdue",
        "/deadlines?status=overdue".into(),
    );
    figure(
        "Deadlines due within 30 days about persons and their rights".into(),
        &grids.deadlines,
        "due_soon",
        "/deadlines?status=due_soon".into(),
    );
    figure(
        "Retention and reply deadlines overdue".into(),
        &grids.performance,
        "overdue",
        "/deadlines?status=overdue".into(),
    );
    if let Some((year, grid)) = grids.breaches.iter().next_back() {
        figure(format!("Breaches, {year}"), grid, "", year_link("/breaches", *year, &[]));
    }
    if let Some((year, grid)) = grids.requests.iter().next_back() {
        figure(
            format!("Data-subject requests received in {year} and still open"),
            grid,
            "open",
            year_link("/requests", *year, &[]),
        );
    }
    let json = json!({"disclosure_control": disclosure::rule_text(grids.k), "published": parts});
    (figures, chart, json)
}
