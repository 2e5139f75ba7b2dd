//! The reports: what each holds, built from the store, and written as one self-contained HTML
//! file (and as PDF, by [`crate::pdf`]).
//!
//! - `annual`: the Commission's annual IMI report (IMI Art. 25(1)), for the public: use of
//!   IMI, the Scoreboard indicators and their trend, response times, retention compliance,
//!   data-subject requests and breaches in aggregate. Counts of persons' requests and of
//!   breaches go through disclosure control; performance figures are published as they are;
//!   the report says which rule it applied to what.
//!
//! Every report's year runs from 00:00 on 1 January in Brussels ([`Period`]).
//! - `edps`: the Commission's report to the EDPS on data protection in IMI (IMI Art. 25(2)),
//!   on the five years before 5 December of its year: need-to-know findings by rule and member
//!   state, retention and deletion, breaches and requests as counts, each breach in detail for
//!   Union controllers only, and in an annex the policy set's hash and the text of every rule.
//! - `member-state`: the coordinated-supervision pack for one national DPA (IMI Art. 21;
//!   Regulation 2018/1725 Art. 62): the same, restricted to that member state's actors, in
//!   detail, with its position against the EEA median.
//!
//! Same store and arguments, same bytes: nothing here reads a clock, and every collection is
//! ordered.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use custos_engine::disclosure;

use crate::grid::{pivot, with_severity};
use custos_engine::Engine;
use custos_engine::finding::Finding;
use serde::Serialize;

use crate::chart::{Chart, Kind};
use custos_engine::read::{Data, text};

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

/// The reviews of findings decided in `period` (a member state's pack: about its actors) with
/// the rules' precision, the referrals made, and the answers of Custos that showed detail
/// about persons (Custos's own access log), by role.
fn supervision_part(
    store: &custos_engine::store::Store,
    period: &Period,
    kind: ReportKind,
    ms: &str,
) -> crate::Result<Part> {
    use custos_engine::review::{Reviews, State};
    let mine = |state: Option<&str>| kind != ReportKind::MemberState || state == Some(ms);
    let reviews = Reviews::load(store)?;
    let mut part = Part::new("Supervision in Custos");
    part.paragraphs.push(format!(
        "Findings reviewed by supervisors in Custos from {}: each by its latest version decided in that time. \
         Precision is the share of the decided findings that were confirmed.",
        period.describe()
    ));
    let in_period = |d: &custos_engine::review::Disposition| {
        period.contains(d.at.micros()) && mine(d.member_state.as_deref())
    };
    let tallies = reviews.precision(in_period, |d| d.rule.clone());
    let rows: Vec<Vec<String>> = tallies
        .iter()
        .map(|(rule, t)| {
            vec![
                rule.clone(),
                t.decided().to_string(),
                t.confirmed.to_string(),
                t.justified.to_string(),
                t.false_positive.to_string(),
                t.precision().map(|p| format!("{:.0} %", p * 100.0)).unwrap_or_default(),
            ]
        })
        .collect();
    if rows.is_empty() {
        part.paragraphs.push("No finding was decided in Custos in this period.".into());
    }
    part.tables.push(ReportTable {
        caption: "Findings decided, and the rules' precision".into(),
        columns: ["rule", "decided", "confirmed", "justified", "false positives", "precision"]
            .map(String::from)
            .to_vec(),
        rows,
    });
    // Referrals: made in the period, answered since, past their date unanswered at its end.
    let (mut made, mut answered, mut overdue) = (0u64, 0u64, 0u64);
    for versions in reviews.latest_all().map(|d| reviews.history(&d.key)) {
        let Some(first) = versions.iter().find(|d| d.state == State::Referred) else { continue };
        if !period.contains(first.at.micros()) || !mine(first.member_state.as_deref()) {
            continue;
        }
        made += 1;
        if versions.iter().any(|d| d.answer.is_some()) {
            answered += 1;
        } else if versions.last().is_some_and(|d| d.state == State::Referred)
            && versions
                .last()
                .and_then(|d| d.answer_due)
                .and_then(|due| due.and_hms_opt(0, 0, 0))
                .is_some_and(|due| due.and_utc().timestamp_micros() < period.to)
        {
            overdue += 1;
        }
    }
    part.paragraphs.push(format!(
        "Findings referred to the authority concerned: {made}; answered: {answered}; unanswered past their date at the period's end: {overdue}."
    ));
    // Who watched the watchers (Regulation 2018/1725 Arts. 4(2), 33).
    let (visits, _) = custos_engine::trail::since(store, 0)?;
    let mut by_role: BTreeMap<String, u64> = BTreeMap::new();
    for v in visits.iter().filter(|v| period.contains(v.at.micros())) {
        if kind == ReportKind::MemberState && v.member_state != ms {
            continue;
        }
        *by_role.entry(v.role.clone()).or_default() += 1;
    }
    part.paragraphs.push(format!(
        "Custos's own access log: answers of Custos that showed detail about natural persons{}, by the role of who saw them \
         (Regulation 2018/1725 Arts. 4(2), 33).",
        if kind == ReportKind::MemberState { format!(" in the records of {ms}'s actors") } else { String::new() }
    ));
    part.tables.push(ReportTable {
        caption: "Answers showing detail about persons, by role".into(),
        columns: vec!["role".into(), "answers".into()],
        rows: by_role.into_iter().map(|(r, n)| vec![r, n.to_string()]).collect(),
    });
    Ok(part)
}

/// A report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub kind: ReportKind,
    pub title: String,
    pub subtitle: String,
    pub year: i32,
    /// The stretch of time it covers.
    pub period: Period,
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

/// The stretch of time a report covers: from `from` up to, not including, `to` (UTC
/// microseconds), its boundaries at midnight in Brussels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: i64,
    pub to: i64,
}

impl Period {
    /// The period of a report of `kind` for `year`: the calendar year in Brussels time for the
    /// annual report and a member state's pack (rules.md, "Reports and their periods"); for
    /// the report to the EDPS, the five years before 5 December of `year` (IMI Art. 25(2):
    /// every five years, before 5 December 2017, 2022, 2027, ...).
    pub fn of(kind: ReportKind, year: i32) -> custos_engine::Result<Period> {
        let wrong =
            || custos_engine::Error::Usage(format!("`--year {year}`: expected a year from 1995 to 9999"));
        if !(1995..=9999).contains(&year) {
            return Err(wrong());
        }
        let zone = custos_engine::calendar::zone("EU");
        let at =
            |y: i32, m: u32, d: u32| custos_engine::period::local_midnight(y, m, d, &zone).ok_or_else(wrong);
        Ok(match kind {
            ReportKind::Edps => Period { from: at(year - 5, 12, 5)?, to: at(year, 12, 5)? },
            _ => Period { from: at(year, 1, 1)?, to: at(year + 1, 1, 1)? },
        })
    }

    /// Whether the instant `t` (UTC microseconds) lies in the period.
    pub fn contains(&self, t: i64) -> bool {
        self.from <= t && t < self.to
    }

    /// Whether an instant written in RFC 3339 lies in the period.
    pub fn holds(&self, ts: &str) -> bool {
        custos_engine::import::parse_timestamp(ts).is_some_and(|t| self.contains(t))
    }

    /// [`Period::holds`] of an optional instant.
    pub fn holds_opt(&self, t: &Option<custos_engine::finding::Instant>) -> bool {
        t.is_some_and(|t| self.contains(t.micros()))
    }

    /// The period as people read it, in Brussels dates (`2024-01-01 to 2024-12-31`).
    pub fn describe(&self) -> String {
        let day = |t: i64| custos_engine::period::brussels_date(t);
        format!("{} to {} (Brussels time)", day(self.from), day(self.to - 1))
    }
}

/// The name of the files of the report `req` asks for, without extension:
/// `imi-annual-report-2025`, `imi-edps-report-2027`, `imi-supervision-DE-2025`.
pub fn stem(req: &Request) -> String {
    let year = req.year;
    match req.kind {
        ReportKind::Annual => format!("imi-annual-report-{year}"),
        ReportKind::Edps => format!("imi-edps-report-{year}"),
        ReportKind::MemberState => {
            format!("imi-supervision-{}-{year}", req.member_state.as_deref().unwrap_or_default())
        }
    }
}

/// Produces the report `req` asks for from `store`: its data loaded as of the report's
/// instant ([`as_of`]), then [`build`]. The one way the binary and the dashboard make a
/// report; [`html`] and [`crate::pdf::pdf`] render it.
pub async fn produce(engine: &Engine, req: &Request) -> crate::Result<Report> {
    let data = custos_engine::read::Data::load(engine, as_of(req.kind, req.year)?).await?;
    build(engine, &data, req).await
}

/// The instant a report of `kind` for `year` judges deadlines at: the end of its period.
pub fn as_of(kind: ReportKind, year: i32) -> custos_engine::Result<i64> {
    Ok(Period::of(kind, year)?.to)
}

/// Builds the report asked for from `store`, whose data `data` were loaded as of
/// [`as_of`]`(kind, year)`.
pub async fn build(engine: &Engine, data: &Data, req: &Request) -> crate::Result<Report> {
    let store = engine.store();
    let ms = req.member_state.clone().unwrap_or_default();
    if req.kind == ReportKind::MemberState && (ms.len() != 2 || !data.states.values().any(|s| *s == ms)) {
        return Err(crate::Error::Engine(custos_engine::Error::Usage(format!(
            "`--member-state {ms}`: expected the two-letter code of a member state with authorities in the store"
        ))));
    }
    let year = req.year;
    let period = Period::of(req.kind, year)?;
    let mine = |state: &str| req.kind != ReportKind::MemberState || state == ms;
    // The annual report is public: counts of what persons did (their requests, the breaches
    // of their data) go through disclosure control. Performance figures (cases, requests,
    // indicators with their bases, answer times, RET and RT findings) describe authorities,
    // not persons, and are published as they are (EUDPR recital 16, IMI Art. 25(1)).
    let protect = req.kind == ReportKind::Annual;
    let k = if protect { req.k } else { 1 };
    let mut parts = Vec::new();
    let ctx = custos_engine::query::session(store).await?;

    // Use of IMI.
    if req.kind == ReportKind::Annual {
        let usage =
            custos_engine::read::rows_in(&ctx, custos_engine::query::sql::USAGE, period.from, period.to)
                .await?;
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
        part.tables.push(counts_table("Cases by domain and procedure", "domain", &by_domain, 1));
        part.tables.push(counts_table("Cases by member state and procedure", "member state", &by_state, 1));
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
            part.tables.push(indicator_table(&format!("Indicators, {year}"), &selected));
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
        let mut trend_table = indicator_table("The EEA's indicators per year", &trend);
        trend_table.columns[0] = "year".into();
        for (row, y) in trend_table.rows.iter_mut().zip(&years) {
            row[0] = y.to_string();
        }
        part.tables.push(trend_table);
        // The distribution of answer times.
        let options = custos_engine::indicator::Options::scoreboard(period.to);
        custos_engine::indicator::register_request_facts(&ctx, year, year, &options).await?;
        let bands = custos_engine::read::rows_of_with(
            &ctx,
            custos_engine::query::sql::ANSWER_DISTRIBUTION,
            i64::from(year),
        )
        .await?;
        let mut counts: BTreeMap<(i64, String), u64> = BTreeMap::new();
        for r in bands.iter().filter(|r| mine(&text(r, "member_state"))) {
            let order = r.get("band_order").and_then(serde_json::Value::as_i64).unwrap_or(0);
            *counts.entry((order, text(r, "band"))).or_default() +=
                r.get("requests").and_then(serde_json::Value::as_u64).unwrap_or(0);
        }
        let as_counts: BTreeMap<(String, String), u64> =
            counts.iter().map(|((o, b), n)| ((format!("{o}. {b}"), "requests".to_owned()), *n)).collect();
        let table = counts_table("Requests by days to answer", "days to answer", &as_counts, 1);
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
            .filter(|f| period.holds_opt(&f.ts) && mine(f.member_state.as_deref().unwrap_or("")))
            .collect();
        let mut part = Part::new("Need-to-know findings");
        part.paragraphs.push(format!(
            "Granted accesses from {} that broke a need-to-know rule (IMI Arts. 8(3), 9, 13, 14, 15, 23), as the \
             store's latest audit found them{}.",
            period.describe(),
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
            description: format!("{} findings from {}.", findings.len(), period.describe()),
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
                            f.ts.map(|t| t.to_string()).unwrap_or_default(),
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
            "Deadlines of IMI Arts. 14 and 15 as of {}: personal data blocked and deleted on time. \
             `late`: done after the period ended; `overdue`: not done and the period has ended. \
             Performance figures: published without suppression.",
            custos_engine::finding::format_micros(period.to)
        ));
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        for f in data
            .deadlines
            .iter()
            .filter(|f| f.rule.starts_with("RET-") && mine(f.member_state.as_deref().unwrap_or("")))
        {
            if f.status == custos_engine::finding::Status::Late && !period.holds_opt(&f.due_at) {
                continue;
            }
            *counts.entry((with_severity(f), f.status.to_string())).or_default() += 1;
        }
        part.tables.push(counts_table("Retention findings by rule and status", "rule", &counts, 1));
        parts.push(part);
    }

    // Users' access rights: counts about natural persons (IMI users), for supervisors only.
    if req.kind != ReportKind::Annual {
        let mut part = Part::new("Users' access rights");
        part.paragraphs.push(format!(
            "As of {}: active users holding access rights outside the areas in which their authority is \
             competent (IMI Art. 9(2)-(3), USR-RIGHTS), and active users without a granted login for the \
             period Custos assumes (USR-DORMANT, a warning: access rights are to be withdrawn where no \
             longer necessary, Art. 9(3)), by the member state of their authority.",
            custos_engine::finding::format_micros(period.to)
        ));
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        for f in data.deadlines.iter().filter(|f| {
            f.rule.starts_with("USR-")
                && f.status != custos_engine::finding::Status::DueSoon
                && mine(f.member_state.as_deref().unwrap_or(""))
        }) {
            *counts.entry((with_severity(f), f.member_state.clone().unwrap_or_default())).or_default() += 1;
        }
        part.tables.push(counts_table(
            "Users' access-rights findings by rule and member state",
            "rule",
            &counts,
            1,
        ));
        parts.push(part);
    }

    // Response times: the agreed days missed (RT-LATE), by the responders' member states.
    if req.kind != ReportKind::Edps {
        let mut part = Part::new("Replies after the agreed day");
        part.paragraphs.push(format!(
            "Requests not answered by the end of the agreed day in the responding authority's legal time \
             (IMI Art. 7(1), RT-LATE), the agreed day falling from {}. One finding per authority that \
             held the request when the day ended. Performance figures: published without suppression.",
            period.describe()
        ));
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        for f in data.deadlines.iter().filter(|f| {
            f.rule == "RT-LATE"
                && period.holds_opt(&f.due_at)
                && mine(f.member_state.as_deref().unwrap_or(""))
        }) {
            *counts.entry((f.member_state.clone().unwrap_or_default(), f.status.to_string())).or_default() +=
                1;
        }
        part.tables.push(counts_table(
            "RT-LATE findings by member state and status",
            "member state",
            &counts,
            1,
        ));
        parts.push(part);
    }

    // Breaches and data-subject requests.
    {
        let mut part = Part::new("Personal data breaches");
        let breaches: Vec<_> = data
            .breaches
            .iter()
            .filter(|b| period.contains(b.aware_at.micros()) && mine(&b.member_state))
            .collect();
        part.paragraphs.push(format!(
            "Breaches the controllers became aware of from {} (Regulation 2018/1725 Arts. 34, 35).",
            period.describe()
        ));
        // Judged as of the period's end, by the same function as the dashboard's grid.
        let grid = crate::grid::breach_grid(&breaches, &data.deadlines, &period, k);
        part.tables.push(protected_table("Breaches by risk and notification", "risk", &grid.table));
        // Each breach in detail: in a member state's pack, that state's; in the report to the
        // EDPS, the Union controllers' only (national controllers' breaches are the national
        // supervisors', IMI Art. 21(1)).
        let detailed: Vec<_> = breaches
            .iter()
            .filter(|b| req.kind == ReportKind::MemberState || b.member_state == "EU")
            .collect();
        if req.kind != ReportKind::Annual {
            part.tables.push(ReportTable {
                caption: if req.kind == ReportKind::Edps {
                    "Each breach of a Union controller".into()
                } else {
                    "Each breach".into()
                },
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
                rows: detailed
                    .iter()
                    .map(|b| {
                        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
                        let when = |v: &Option<custos_engine::finding::Instant>| {
                            v.map(|t| t.to_string()).unwrap_or_default()
                        };
                        vec![
                            b.breach_id.clone(),
                            b.controller_id.clone(),
                            b.aware_at.to_string(),
                            b.risk.clone(),
                            when(&b.notified_at),
                            when(&b.subjects_notified_at),
                            opt(&b.subject_exemption),
                        ]
                    })
                    .collect(),
            });
        }
        parts.push(part);

        let mut part = Part::new("Data-subject requests");
        part.paragraphs.push(format!(
            "Requests received from {} (Regulation 2018/1725 Arts. 14, 17-24; IMI Art. 19), by right and \
             outcome, and the deadlines met.",
            period.describe()
        ));
        let requests: Vec<_> = data
            .requests
            .iter()
            .filter(|r| period.contains(r.received_at.micros()) && mine(&r.member_state))
            .collect();
        let grid = crate::grid::request_grid(&requests, &period, k);
        part.tables.push(protected_table("Requests by right and outcome", "right", &grid.table));
        let ids: BTreeSet<String> = requests.iter().map(|r| r.request_id.clone()).collect();
        let mut met: BTreeMap<(String, String), u64> = BTreeMap::new();
        for f in data.deadlines.iter().filter(|f| f.rule.starts_with("DSR-") && ids.contains(&f.subject_id)) {
            *met.entry((with_severity(f), f.status.to_string())).or_default() += 1;
        }
        part.tables.push(counts_table("Request deadlines missed, by rule and status", "rule", &met, k));
        parts.push(part);
    }

    // What supervisors did in Custos: their reviews of findings and Custos's own access log.
    if req.kind != ReportKind::Annual {
        parts.push(supervision_part(store, &period, req.kind, &ms)?);
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
        ReportKind::Edps => (format!("Data protection in IMI: the five years to 5 December {year}"), "Report of the Commission to the European Data Protection Supervisor (IMI Regulation Art. 25(2))".to_owned()),
        ReportKind::MemberState => (format!("Coordinated supervision of IMI: {ms}, {year}"), "Pack for the national data protection authority (IMI Regulation Art. 21; Regulation 2018/1725 Art. 62)".to_owned()),
    };
    let mut provenance = vec![
        ("Store integrity head".to_owned(), store.head().to_string()),
        ("Period".to_owned(), period.describe()),
        ("Deadlines judged as of".to_owned(), custos_engine::finding::format_micros(period.to)),
        (
            "Disclosure control".to_owned(),
            match req.kind {
                ReportKind::Annual => format!(
                    "{}. Applied to the counts of persons' requests and of breaches. Performance figures (cases, \
                     requests, the indicators with their bases, answer times, RET and RT findings) describe \
                     authorities and are published unsuppressed (Regulation 2018/1725 recital 16; IMI Art. 25(1)).",
                    disclosure::rule_text(req.k)
                ),
                ReportKind::Edps => "none: counts addressed to the supervisor; detail only for Union \
                                     controllers' breaches"
                    .to_owned(),
                ReportKind::MemberState => "none: a report to a supervisor, with access to detail".to_owned(),
            },
        ),
    ];
    if let Some((hash, at)) = &data.audit {
        provenance.push(("Need-to-know audit".to_owned(), format!("{at}, policy set {hash}")));
    }
    Ok(Report { kind: req.kind, title, subtitle, year, period, provenance, parts })
}

/// A rows × columns count table with totals, suppressed with threshold `k` (1: nothing).
fn counts_table(
    caption: &str,
    corner: &str,
    counts: &BTreeMap<(String, String), u64>,
    k: u64,
) -> ReportTable {
    protected_table(caption, corner, &pivot(counts, k))
}

/// A protected table with its totals as a report shows it.
fn protected_table(caption: &str, corner: &str, p: &disclosure::Protected) -> ReportTable {
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

/// The indicators of `rows` (member states, then the EEA), with the requests they count:
/// performance figures, published as they are (rules.md: suppressing a denominator while
/// publishing its percentage protects nothing).
fn indicator_table(caption: &str, rows: &[&custos_engine::indicator::Indicators]) -> ReportTable {
    let columns =
        ["member state", "requests", "IND-1 %", "IND-2 days", "IND-3 %", "IND-4 %", "IND-5 %", "score"]
            .map(String::from)
            .to_vec();
    let rows = rows
        .iter()
        .map(|r| {
            let mut row =
                vec![r.member_state.clone().unwrap_or_else(|| "EEA".into()), r.received.to_string()];
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
pub fn html(report: &Report) -> crate::Result<String> {
    Html { r: report }
        .render()
        .map_err(|e| crate::Error::Render { what: "the report as HTML", cause: e.to_string() })
}
