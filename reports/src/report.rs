//! The reports: what each holds, built from the store, and written as one self-contained HTML
//! file (and as PDF, by [`crate::pdf`]).
//!
//! - `annual`: the Commission's annual IMI report (IMI Art. 25(1)), for the public: use of
//!   IMI, the Scoreboard indicators and their trend, response times, retention compliance,
//!   data-subject requests and breaches in aggregate. Every count table goes through
//!   disclosure control, and the report says which rule it applied.
//! - `edps`: the report to the EDPS on data protection in IMI (IMI Art. 25(2)): need-to-know
//!   findings by rule and member state, retention and deletion, breaches, requests, and in an
//!   annex the policy set's hash and the exact text of every rule.
//! - `member-state`: the coordinated-supervision pack for one national DPA (IMI Art. 21;
//!   Regulation 2018/1725 Art. 62): the same, restricted to that member state's actors, in
//!   detail, with its position against the EEA median.
//!
//! Same store and arguments, same bytes: nothing here reads a clock, and every collection is
//! ordered.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use custos_engine::disclosure::{self, Counts};
use custos_engine::finding::Finding;
use custos_engine::store::Store;
use serde::Serialize;

use crate::chart::{Chart, Kind};
use crate::data::{Data, text};

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ReportKind {
    /// The Commission's annual report (IMI Art. 25(1)).
    Annual,
    /// The report to the EDPS (IMI Art. 25(2)).
    Edps,
    /// The coordinated-supervision pack of one member state (IMI Art. 21).
    MemberState,
}

/// A table of a report: text cells, the first column a label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportTable {
    pub caption: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// A section: its heading, paragraphs, charts (each with its table) and tables.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part {
    pub heading: String,
    pub paragraphs: Vec<String>,
    pub charts: Vec<(Chart, ReportTable)>,
    pub tables: Vec<ReportTable>,
    /// Preformatted texts (the rules of the annex).
    pub texts: Vec<(String, String)>,
}

impl Part {
    fn new(heading: impl Into<String>) -> Part {
        Part { heading: heading.into(), paragraphs: vec![], charts: vec![], tables: vec![], texts: vec![] }
    }
}

/// A report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub kind: ReportKind,
    pub title: String,
    pub subtitle: String,
    pub year: i32,
    /// What it was made from: the store's integrity head, the policy set, the as-of instant.
    pub provenance: Vec<(String, String)>,
    pub parts: Vec<Part>,
}

/// What a report is asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: ReportKind,
    pub year: i32,
    /// For `MemberState`.
    pub member_state: Option<String>,
    /// Disclosure-control threshold.
    pub k: u64,
}

/// The instant a report of `year` judges deadlines at: the end of that year (UTC).
pub fn as_of(year: i32) -> i64 {
    chrono_end_of_year(year)
}

fn chrono_end_of_year(year: i32) -> i64 {
    // 1 January of the next year, 00:00 UTC, in microseconds.
    let days = days_from_civil(year + 1, 1, 1);
    days * 86_400_000_000
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(if m <= 2 { y - 1 } else { y });
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn in_year(ts: &Option<String>, year: i32) -> bool {
    ts.as_deref().is_some_and(|t| t.starts_with(&format!("{year}-")))
}

/// Builds the report asked for from `store`, whose data `data` were loaded as of
/// [`as_of`]`(year)`.
pub async fn build(store: &Store, data: &Data, req: &Request) -> custos_engine::Result<Report> {
    let ms = req.member_state.clone().unwrap_or_default();
    if req.kind == ReportKind::MemberState && (ms.len() != 2 || !data.states.values().any(|s| *s == ms)) {
        return Err(custos_engine::Error::Usage(format!(
            "`--member-state {ms}`: expected the two-letter code of a member state with authorities in the store"
        )));
    }
    let year = req.year;
    let mine = |state: &str| req.kind != ReportKind::MemberState || state == ms;
    let protect = req.kind == ReportKind::Annual;
    let k = if protect { req.k } else { 1 };
    let mut parts = Vec::new();
    let ctx = custos_engine::query::session(store).await?;

    // Use of IMI.
    if req.kind == ReportKind::Annual {
        let usage =
            crate::data::rows_of_with(&ctx, custos_engine::query::sql::USAGE, i64::from(year)).await?;
        let mut by_domain: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut by_state: BTreeMap<(String, String), u64> = BTreeMap::new();
        for r in &usage {
            let n = r.get("cases").and_then(serde_json::Value::as_u64).unwrap_or(0);
            *by_domain.entry((text(r, "domain"), text(r, "procedure"))).or_default() += n;
            *by_state.entry((text(r, "member_state"), text(r, "procedure"))).or_default() += n;
        }
        let mut part = Part::new("Use of IMI");
        part.paragraphs.push(format!(
            "Administrative cooperation procedures opened in {year}, by policy area and procedure, and by the member \
             state of the authority that opened them."
        ));
        part.tables.push(counts_table("Cases by domain and procedure", "domain", &by_domain, k));
        part.tables.push(counts_table("Cases by member state and procedure", "member state", &by_state, k));
        parts.push(part);
    }

    // The indicators, their trend and the distribution of answer times.
    if req.kind != ReportKind::Edps {
        let mut part = Part::new("Response times: the Single Market Scoreboard's indicators");
        part.paragraphs.push(format!("Readings: {}.", data.readings));
        if let Some(rows) = data.indicators.get(&year) {
            let selected: Vec<_> = rows
                .iter()
                .filter(|r| {
                    r.level == "overall"
                        || (r.level == "member_state" && mine(r.member_state.as_deref().unwrap_or("")))
                })
                .collect();
            part.tables.push(indicator_table(&format!("Indicators, {year}"), &selected, k));
            if req.kind == ReportKind::MemberState {
                part.tables.push(position_table(rows, &ms));
            }
        }
        let years: Vec<i32> = data.indicators.keys().copied().filter(|y| *y <= year).collect();
        let series = |state: Option<&str>| -> Vec<Option<f64>> {
            years
                .iter()
                .map(|y| {
                    data.indicators[y]
                        .iter()
                        .find(|r| match state {
                            None => r.level == "overall",
                            Some(s) => r.level == "member_state" && r.member_state.as_deref() == Some(s),
                        })
                        .and_then(|r| r.ind2)
                })
                .collect()
        };
        let mut lines = vec![("EEA".to_owned(), series(None))];
        if req.kind == ReportKind::MemberState {
            lines.push((ms.clone(), series(Some(&ms))));
        }
        let chart = Chart {
            title: "Average days to answer a request (IND-2)".into(),
            description: format!("IND-2 for every year in the store up to {year}."),
            kind: Kind::Line,
            x_label: "year".into(),
            y_label: "days".into(),
            labels: years.iter().map(ToString::to_string).collect(),
            series: lines.clone(),
        };
        let mut columns = vec!["year".to_owned()];
        columns.extend(lines.iter().map(|(n, _)| n.clone()));
        let rows = years
            .iter()
            .enumerate()
            .map(|(i, y)| {
                let mut row = vec![y.to_string()];
                row.extend(lines.iter().map(|(_, v)| v[i].map_or("-".into(), |d| format!("{d:.1}"))));
                row
            })
            .collect();
        part.charts.push((chart, ReportTable { caption: "IND-2 per year".into(), columns, rows }));
        // The five indicators of the EEA, with colours and score, over the years.
        let trend: Vec<&custos_engine::indicator::Indicators> =
            years.iter().filter_map(|y| data.indicators[y].iter().find(|r| r.level == "overall")).collect();
        let mut trend_table = indicator_table("The EEA's indicators per year", &trend, 1);
        trend_table.columns[0] = "year".into();
        for ((row, y), r) in trend_table.rows.iter_mut().zip(&years).zip(&trend) {
            row[0] = y.to_string();
            // Each year's count stands alone (no total is published across years).
            let one = Counts {
                rows: vec![String::new()],
                cols: vec![String::new()],
                cells: vec![vec![r.received]],
                margins: false,
            };
            row[1] = disclosure::protect(&one, k).cells[0][0].to_string();
        }
        part.tables.push(trend_table);
        // The distribution of answer times.
        let options = custos_engine::indicator::Options::scoreboard(as_of(year));
        custos_engine::indicator::register_request_facts(&ctx, year, year, &options).await?;
        let bands =
            crate::data::rows_of_with(&ctx, custos_engine::query::sql::ANSWER_DISTRIBUTION, i64::from(year))
                .await?;
        let mut counts: BTreeMap<(i64, String), u64> = BTreeMap::new();
        for r in bands.iter().filter(|r| mine(&text(r, "member_state"))) {
            let order = r.get("band_order").and_then(serde_json::Value::as_i64).unwrap_or(0);
            *counts.entry((order, text(r, "band"))).or_default() +=
                r.get("requests").and_then(serde_json::Value::as_u64).unwrap_or(0);
        }
        let as_counts: BTreeMap<(String, String), u64> =
            counts.iter().map(|((o, b), n)| ((format!("{o}. {b}"), "requests".to_owned()), *n)).collect();
        let table = counts_table("Requests by days to answer", "days to answer", &as_counts, k);
        let values: Vec<Option<f64>> =
            table.rows.iter().take(as_counts.len()).map(|r| r[1].parse().ok()).collect();
        let chart = Chart {
            title: "Requests by days to answer".into(),
            description: format!(
                "How long the requests sent in {year} took to be answered; suppressed counts are not drawn."
            ),
            kind: Kind::Bar,
            x_label: "days to answer".into(),
            y_label: "requests".into(),
            labels: counts.keys().map(|(_, b)| b.clone()).collect(),
            series: vec![("requests".into(), values)],
        };
        part.charts.push((chart, table));
        parts.push(part);
    }

    // Need-to-know findings.
    if req.kind != ReportKind::Annual {
        let findings: Vec<&Finding> = data
            .ntk
            .iter()
            .filter(|f| in_year(&f.ts, year) && mine(f.member_state.as_deref().unwrap_or("")))
            .collect();
        let mut part = Part::new("Need-to-know findings");
        part.paragraphs.push(format!(
            "Granted accesses of {year} that broke a need-to-know rule (IMI Arts. 8(3), 9, 13, 14, 15, 23), as the \
             store's latest audit found them{}.",
            data.audit.as_ref().map(|(h, at)| format!(" ({at}, policy set {h})")).unwrap_or_default()
        ));
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        for f in &findings {
            *counts.entry((f.rule.clone(), f.member_state.clone().unwrap_or_default())).or_default() += 1;
        }
        let table = counts_table("Findings by rule and member state", "rule", &counts, 1);
        let per_rule: BTreeMap<&str, u64> = findings.iter().fold(BTreeMap::new(), |mut m, f| {
            *m.entry(f.rule.as_str()).or_default() += 1;
            m
        });
        let chart = Chart {
            title: "Need-to-know findings per rule".into(),
            description: format!("{} findings in {year}.", findings.len()),
            kind: Kind::Bar,
            x_label: "rule".into(),
            y_label: "findings".into(),
            labels: per_rule.keys().map(|r| (*r).to_owned()).collect(),
            series: vec![("findings".into(), per_rule.values().map(|n| Some(*n as f64)).collect())],
        };
        part.charts.push((chart, table));
        if req.kind == ReportKind::MemberState {
            part.tables.push(ReportTable {
                caption: format!("Every finding about {ms}'s actors, with its event"),
                columns: ["time", "rule", "article", "authority", "user", "case", "event"]
                    .map(String::from)
                    .to_vec(),
                rows: findings
                    .iter()
                    .map(|f| {
                        vec![
                            f.ts.clone().unwrap_or_default(),
                            f.rule.clone(),
                            f.legal_ref.clone(),
                            f.authority_id.clone().unwrap_or_default(),
                            f.user_id.clone().unwrap_or_default(),
                            f.case_id.clone().unwrap_or_default(),
                            f.event_id.clone().unwrap_or_default(),
                        ]
                    })
                    .collect(),
            });
        }
        parts.push(part);
    }

    // Retention, blocking and deletion.
    {
        let mut part = Part::new("Retention, blocking and deletion");
        part.paragraphs.push(format!(
            "Deadlines of IMI Arts. 14 and 15 as of the end of {year}: personal data blocked and deleted on time. \
             `late`: done after the period ended; `overdue`: not done and the period has ended."
        ));
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        for f in data
            .deadlines
            .iter()
            .filter(|f| f.rule.starts_with("RET-") && mine(f.member_state.as_deref().unwrap_or("")))
        {
            if f.status == "late" && !in_year(&f.due_at, year) {
                continue;
            }
            *counts.entry((f.rule.clone(), f.status.clone())).or_default() += 1;
        }
        part.tables.push(counts_table("Retention findings by rule and status", "rule", &counts, k));
        parts.push(part);
    }

    // Breaches and data-subject requests.
    {
        let mut part = Part::new("Personal data breaches");
        let breaches: Vec<_> = data
            .breaches
            .iter()
            .filter(|b| {
                text(b, "aware_at").starts_with(&format!("{year}-")) && mine(&text(b, "member_state"))
            })
            .collect();
        part.paragraphs.push(format!(
            "Breaches the controllers became aware of in {year} (Regulation 2018/1725 Arts. 34, 35)."
        ));
        let late: BTreeSet<String> = data
            .deadlines
            .iter()
            .filter(|f| f.rule == "BRE-NOTIFY" && (f.status == "late" || f.status == "overdue"))
            .map(|f| f.subject_id.clone())
            .collect();
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        for b in &breaches {
            let notified = if text(b, "risk") == "unlikely" {
                "not required"
            } else if late.contains(&text(b, "breach_id")) {
                "late or not notified"
            } else {
                "within 72 hours"
            };
            *counts.entry((text(b, "risk"), notified.to_owned())).or_default() += 1;
        }
        part.tables.push(counts_table("Breaches by risk and notification", "risk", &counts, k));
        if req.kind != ReportKind::Annual {
            part.tables.push(ReportTable {
                caption: "Each breach".into(),
                columns: [
                    "breach",
                    "controller",
                    "aware",
                    "risk",
                    "notified",
                    "data subjects told",
                    "exemption",
                ]
                .map(String::from)
                .to_vec(),
                rows: breaches
                    .iter()
                    .map(|b| {
                        [
                            "breach_id",
                            "controller_id",
                            "aware_at",
                            "risk",
                            "notified_at",
                            "subjects_notified_at",
                            "subject_exemption",
                        ]
                        .iter()
                        .map(|k| text(b, k))
                        .collect()
                    })
                    .collect(),
            });
        }
        parts.push(part);

        let mut part = Part::new("Data-subject requests");
        part.paragraphs.push(format!(
            "Requests received in {year} (Regulation 2018/1725 Arts. 14, 17-24; IMI Art. 19), by right and outcome, \
             and the deadlines met."
        ));
        let requests: Vec<_> = data
            .requests
            .iter()
            .filter(|r| {
                text(r, "received_at").starts_with(&format!("{year}-")) && mine(&text(r, "member_state"))
            })
            .collect();
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        for r in &requests {
            let outcome = if text(r, "outcome").is_empty() { "open".to_owned() } else { text(r, "outcome") };
            *counts.entry((text(r, "right"), outcome)).or_default() += 1;
        }
        part.tables.push(counts_table("Requests by right and outcome", "right", &counts, k));
        let ids: BTreeSet<String> = requests.iter().map(|r| text(r, "request_id")).collect();
        let mut met: BTreeMap<(String, String), u64> = BTreeMap::new();
        for f in data.deadlines.iter().filter(|f| f.rule.starts_with("DSR-") && ids.contains(&f.subject_id)) {
            *met.entry((f.rule.clone(), f.status.clone())).or_default() += 1;
        }
        part.tables.push(counts_table("Request deadlines missed, by rule and status", "rule", &met, k));
        parts.push(part);
    }

    // The rules, in an annex.
    if req.kind != ReportKind::Annual {
        let mut part = Part::new("Annex: the rules applied");
        let hash =
            data.audit.as_ref().map(|(h, _)| h.clone()).unwrap_or_else(|| "no audit in the store".into());
        part.paragraphs
            .push(format!("Need-to-know policy set {hash}. Each rule as the Cedar policy that decides it."));
        for (family, rule, _) in data.rules.iter().filter(|(f, _, _)| *f != "dashboard") {
            part.texts.push((
                format!("{} ({}, {family}): {}", rule.id, rule.article, rule.title),
                rule.text.clone(),
            ));
        }
        parts.push(part);
    }

    let (title, subtitle) = match req.kind {
        ReportKind::Annual => (format!("The Internal Market Information System in {year}"), "Annual report of the Commission (IMI Regulation Art. 25(1))".to_owned()),
        ReportKind::Edps => (format!("Data protection in IMI, {year}"), "Report to the European Data Protection Supervisor (IMI Regulation Art. 25(2))".to_owned()),
        ReportKind::MemberState => (format!("Coordinated supervision of IMI: {ms}, {year}"), "Pack for the national data protection authority (IMI Regulation Art. 21; Regulation 2018/1725 Art. 62)".to_owned()),
    };
    let mut provenance = vec![
        ("Store integrity head".to_owned(), store.head().to_string()),
        ("Deadlines judged as of".to_owned(), custos_engine::finding::format_micros(as_of(year))),
        (
            "Disclosure control".to_owned(),
            if protect {
                disclosure::rule_text(req.k)
            } else {
                "none: a report to a supervisor, with access to detail".to_owned()
            },
        ),
    ];
    if let Some((hash, at)) = &data.audit {
        provenance.push(("Need-to-know audit".to_owned(), format!("{at}, policy set {hash}")));
    }
    Ok(Report { kind: req.kind, title, subtitle, year, provenance, parts })
}

/// Counts keyed by (row, column) as a table with its totals, suppressed with threshold `k`
/// (1: nothing suppressed); rows and columns in order. The dashboard's count tables use it too.
pub fn pivot(counts: &BTreeMap<(String, String), u64>, k: u64) -> disclosure::Protected {
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

/// A rows × columns count table with totals, suppressed with threshold `k` (1: nothing).
fn counts_table(
    caption: &str,
    corner: &str,
    counts: &BTreeMap<(String, String), u64>,
    k: u64,
) -> ReportTable {
    let p = pivot(counts, k);
    let (rows, cols) = (p.rows.clone(), p.cols.clone());
    let mut out: Vec<Vec<String>> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut row = vec![r.clone()];
            row.extend(p.cells[i].iter().map(ToString::to_string));
            row.push(p.row_totals.as_ref().map(|t| t[i].to_string()).unwrap_or_default());
            row
        })
        .collect();
    if let (Some(ct), Some(t)) = (&p.col_totals, &p.total) {
        let mut row = vec!["total".to_owned()];
        row.extend(ct.iter().map(ToString::to_string));
        row.push(t.to_string());
        out.push(row);
    }
    let mut columns = vec![corner.to_owned()];
    columns.extend(cols);
    columns.push("total".into());
    ReportTable { caption: caption.to_owned(), columns, rows: out }
}

/// The indicators of `rows` (member states, then the EEA); the count of requests goes through
/// disclosure control with threshold `k` (the member states' counts and their EEA total as a
/// table with its margin), the indicators themselves are performance figures and are not
/// suppressed.
fn indicator_table(caption: &str, rows: &[&custos_engine::indicator::Indicators], k: u64) -> ReportTable {
    let columns =
        ["member state", "requests", "IND-1 %", "IND-2 days", "IND-3 %", "IND-4 %", "IND-5 %", "score"]
            .map(String::from)
            .to_vec();
    let states: Vec<&&custos_engine::indicator::Indicators> =
        rows.iter().filter(|r| r.level != "overall").collect();
    let p = disclosure::protect(
        &Counts {
            rows: states.iter().map(|r| r.member_state.clone().unwrap_or_default()).collect(),
            cols: vec!["requests".into()],
            cells: states.iter().map(|r| vec![r.received]).collect(),
            margins: true,
        },
        k,
    );
    let count = |r: &custos_engine::indicator::Indicators| -> String {
        if r.level == "overall" {
            // With every member state in the table (the annual report), its total is the EEA's.
            return if k > 1 {
                p.total.map_or(r.received.to_string(), |t| t.to_string())
            } else {
                r.received.to_string()
            };
        }
        states
            .iter()
            .position(|s| s.member_state == r.member_state)
            .map_or(r.received.to_string(), |i| p.cells[i][0].to_string())
    };
    let rows = rows
        .iter()
        .map(|r| {
            let mut row = vec![r.member_state.clone().unwrap_or_else(|| "EEA".into()), count(r)];
            for (v, c) in r.values().iter().zip(&r.colours) {
                row.push(match (v, c) {
                    (Some(v), Some(c)) => format!("{v:.1} {}", format!("{c:?}").to_lowercase()),
                    _ => "-".into(),
                });
            }
            row.push(match (&r.score, &r.rating) {
                (Some(s), Some(rt)) => format!("{s:+} {rt}"),
                _ => "-".into(),
            });
            row
        })
        .collect();
    ReportTable { caption: caption.to_owned(), columns, rows }
}

/// A member state's indicators against the median of all member states.
fn position_table(rows: &[custos_engine::indicator::Indicators], ms: &str) -> ReportTable {
    let states: Vec<_> = rows.iter().filter(|r| r.level == "member_state").collect();
    let own = states.iter().find(|r| r.member_state.as_deref() == Some(ms));
    let names = ["IND-1 %", "IND-2 days", "IND-3 %", "IND-4 %", "IND-5 %"];
    let out = (0..5)
        .map(|i| {
            let mut values: Vec<f64> = states.iter().filter_map(|r| r.values()[i]).collect();
            values.sort_by(f64::total_cmp);
            let median = match values.len() {
                0 => None,
                n if n % 2 == 1 => Some(values[n / 2]),
                n => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
            };
            let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
            vec![names[i].to_owned(), fmt(own.and_then(|r| r.values()[i])), fmt(median)]
        })
        .collect();
    ReportTable {
        caption: format!("{ms} against the median of the member states"),
        columns: vec!["indicator".into(), ms.to_owned(), "EEA median".into()],
        rows: out,
    }
}

/// The report as one self-contained HTML file (styles and charts inline).
#[derive(Template)]
#[template(path = "report.html")]
struct Html<'a> {
    r: &'a Report,
}

/// Renders `report` as HTML.
pub fn html(report: &Report) -> String {
    Html { r: report }.render().unwrap_or_default()
}
