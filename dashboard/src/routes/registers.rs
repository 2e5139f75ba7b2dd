//! The breach register and the data-subject requests, with their clocks.

use super::*;

/// The rows of a table about controllers (breaches, requests) that `v` may see in detail, and
/// those it may count; refused when it may do neither.
pub(super) fn controller_rows<'a, T>(
    state: &AppState,
    v: &Viewer,
    mode: Stats,
    rows: &'a [T],
    personal: bool,
    scope: impl Fn(&T) -> (&str, &str),
) -> Result<(Vec<&'a T>, Vec<&'a T>), AppError> {
    let shown: Vec<&T> = rows
        .iter()
        .filter(|r| {
            let (ms, ctl) = scope(r);
            visible(state, v, ms, ctl, personal)
        })
        .collect();
    let counted: Vec<&T> = rows
        .iter()
        .filter(|r| {
            let (ms, ctl) = scope(r);
            countable(state, v, mode, ms, ctl)
        })
        .collect();
    if shown.is_empty() && mode == Stats::Scoped && !state.guard.allows(v, &Item::stat("", &v.controller)) {
        return Err(AppError::Forbidden);
    }
    Ok((shown, counted))
}

/// A page's count table, then its list unless the viewer sees counts only.
/// The link a DPO records a new entry of its controller's register by.
fn record_link(what: &str, href: &str) -> Section {
    Section::Figures {
        heading: "Your controller's register".into(),
        figures: vec![Figure {
            label: format!("Record {what}"),
            value: "new".into(),
            link: Some(href.into()),
        }],
    }
}

pub(super) fn counts_then_list(counts: Table, list: Table, nothing_shown: bool, mode: Stats) -> Vec<Section> {
    let mut sections = vec![Section::Table(counts)];
    if !nothing_shown || mode != Stats::Protected {
        sections.push(Section::Table(list));
    }
    sections
}

pub(super) fn hours(micros: i64) -> f64 {
    micros as f64 / 3_600_000_000.0
}

pub(super) const BREACHES_INTRO: &str = "Each personal data breach with its 72-hour clock (Regulation 2018/1725 Art. 34), the completeness of its notification and its communication to the data subjects (Art. 35).";
pub(super) const REQUESTS_INTRO: &str = "Requests of data subjects (Regulation 2018/1725 Arts. 14, 17-24; IMI Art. 19): open ones with the days left, extensions, refusals.";

/// An optional instant as text (empty when absent).
fn when(t: &Option<custos_engine::finding::Instant>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
}

/// A register's page as a role without detail sees it: the published grid of each year.
fn protected_register(
    per_year: &BTreeMap<i32, custos_reports::grid::Grid>,
    k: u64,
    params: &BTreeMap<String, String>,
    (caption, path): (&str, &str),
    (title, intro, key): (&str, &str, &str),
) -> Result<Page, AppError> {
    let (sections, counts) = crate::protected::register(per_year, k, params, caption, path)?;
    Ok(Page {
        trail: None,
        title: title.into(),
        intro: intro.into(),
        sections,
        json: json!({"counts": counts, key: []}),
    })
}

pub(super) fn build_breaches(
    state: &AppState,
    v: &Viewer,
    params: &BTreeMap<String, String>,
    grids: Option<&custos_reports::grid::Grids>,
) -> Result<Page, AppError> {
    let data = state.data();
    let mode = stats(state, v);
    if let Some(grids) = grids {
        return protected_register(
            &grids.breaches,
            grids.k,
            params,
            ("Breaches by risk and notification", "/breaches"),
            ("Breach register", BREACHES_INTRO, "breaches"),
        );
    }
    let (shown, counted) =
        controller_rows(state, v, mode, &data.breaches, false, |b| (&b.member_state, &b.controller_id))?;
    let recorder = super::record::may_record_any(state, v, false);
    let zone = v.zone();
    let now = data.as_of;
    let mut items = Vec::new();
    let rows = shown
        .iter()
        .map(|b| {
            let id = b.breach_id.clone();
            // Every verdict on the page is a finding of the check's own rules (BRE-NOTIFY,
            // BRE-CONTENT, BRE-SUBJECTS): the dashboard computes no period and judges nothing.
            let finding = |rule: &str| data.deadlines.iter().find(|f| f.rule == rule && f.subject_id == id);
            let at = |f: &Finding| f.due_at.map(|t| t.micros());
            let notify = finding("BRE-NOTIFY");
            let due = notify.and_then(at);
            let notified = b.notified_at.map(|t| t.micros());
            let risk = b.risk.clone();
            let clock = match (notify, notified, due) {
                (Some(f), Some(n), Some(d)) if f.status == custos_engine::finding::Status::Late => {
                    Cell::text(format!("notified {:.0} h late", hours(n - d))).class("red")
                }
                (Some(f), None, Some(d)) if f.status == custos_engine::finding::Status::Overdue => {
                    Cell::number(-hours(now - d), format!("{:.0} h overdue", hours(now - d))).class("red")
                }
                (Some(_), None, Some(d)) => {
                    Cell::number(hours(d - now), format!("{:.0} h left", hours(d - now))).class("yellow")
                }
                (None, Some(_), _) => Cell::text("notified in time").class("green"),
                (None, None, _) if risk == "unlikely" => Cell::text("no notification required (risk unlikely)"),
                _ => Cell::text("-"),
            };
            // Which of the register's fields are empty, to say what BRE-CONTENT found missing.
            let incomplete = finding("BRE-CONTENT").is_some();
            let empty: Vec<&str> = [
                ("nature", b.nature.is_none()),
                ("consequences", b.consequences.is_none()),
                ("measures", b.measures.is_none()),
                ("approx_subjects", b.approx_subjects.is_none()),
                ("approx_records", b.approx_records.is_none()),
            ]
            .into_iter()
            .filter_map(|(k, none)| none.then_some(k))
            .collect();
            let completeness = match (incomplete, empty.is_empty()) {
                (false, _) => "complete".to_owned(),
                (true, true) => "incomplete".to_owned(),
                (true, false) => format!("incomplete; empty: {}", empty.join(", ")),
            };
            let subjects = match finding("BRE-SUBJECTS") {
                Some(f) => format!("not communicated ({})", f.status),
                None if b.subjects_notified_at.is_some() => {
                    format!("communicated {}", when(&b.subjects_notified_at))
                }
                None if b.subject_exemption.is_some() => {
                    format!("exempted: {}", opt(&b.subject_exemption))
                }
                None => "no communication required".to_owned(),
            };
            items.push(json!({"breach": b, "notify_due": notify.and_then(|f| f.due_at), "clock": clock.text, "completeness": completeness, "data_subjects": subjects}));
            vec![
                if recorder && b.controller_id == v.controller {
                    Cell::text(id.clone()).link(link_with("/breaches/record", &[("id", &id)]))
                } else {
                    Cell::text(id)
                },
                Cell::text(b.controller_id.clone()),
                Cell::text(b.member_state.clone()),
                Cell::time(&b.aware_at.to_string(), zone),
                Cell::text(risk.clone()),
                clock,
                Cell::text(completeness).class(if incomplete { "red" } else { "" }),
                Cell::text(subjects),
            ]
        })
        .collect();
    let list = Table::new(
        "Breaches",
        &[
            "breach",
            "controller",
            "member state",
            "aware",
            "risk",
            "72-hour clock",
            "notification",
            "data subjects",
        ],
        rows,
    )
    .arrange("/breaches", params);
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for b in &counted {
        let state_of = if b.notified_at.is_none() { "not notified" } else { "notified" };
        *counts.entry((b.risk.clone(), state_of.to_owned())).or_default() += 1;
    }
    let (table, counts_json) =
        count_table("Breaches by risk and notification", "risk", &counts, mode, state.k, &|_, _| {
            "/breaches".into()
        });
    let mut sections = counts_then_list(table, list, shown.is_empty(), mode);
    if recorder {
        sections.insert(0, record_link("a breach", "/breaches/record"));
    }
    Ok(Page {
        trail: if shown.is_empty() { None } else { crate::page::Shown::list("list", super::filters(params)) },
        title: "Breach register".into(),
        intro: BREACHES_INTRO.into(),
        sections,
        json: json!({"counts": counts_json, "breaches": items}),
    })
}

pub(super) fn build_requests(
    state: &AppState,
    v: &Viewer,
    params: &BTreeMap<String, String>,
    grids: Option<&custos_reports::grid::Grids>,
) -> Result<Page, AppError> {
    let data = state.data();
    let mode = stats(state, v);
    if let Some(grids) = grids {
        return protected_register(
            &grids.requests,
            grids.k,
            params,
            ("Requests by right and outcome", "/requests"),
            ("Data-subject requests", REQUESTS_INTRO, "requests"),
        );
    }
    let (shown, counted) =
        controller_rows(state, v, mode, &data.requests, true, |r| (&r.member_state, &r.controller_id))?;
    let recorder = super::record::may_record_any(state, v, true);
    let zone = v.zone();
    let now = data.as_of;
    let mut items = Vec::new();
    let rows = shown
        .iter()
        .filter(|r| {
            let open = r.is_open();
            open || opt(&r.outcome) == "refused" || r.extension_notified_at.is_some()
        })
        .map(|r| {
            let id = r.request_id.clone();
            let due = data
                .deadlines
                .iter()
                .find(|f| f.rule == "DSR-RESPOND" && f.subject_id == id)
                .and_then(|f| f.due_at);
            let open = r.is_open();
            let left = due.map(|d| (d.micros() - now) as f64 / 86_400_000_000.0);
            items.push(json!({"request": r, "respond_due": due, "open": open}));
            vec![
                if recorder && r.controller_id == v.controller {
                    Cell::text(id.clone()).link(link_with("/requests/record", &[("id", &id)]))
                } else {
                    Cell::text(id)
                },
                Cell::text(r.controller_id.clone()),
                Cell::text(r.right.clone()),
                Cell::time(&r.received_at.to_string(), zone),
                match (open, left) {
                    (true, Some(l)) if l >= 0.0 => {
                        Cell::number(l, format!("{l:.0} days left")).class("yellow")
                    }
                    (true, Some(l)) => Cell::number(l, format!("{:.0} days overdue", -l)).class("red"),
                    (true, None) => Cell::text("open"),
                    (false, _) => Cell::text(format!("answered {}", when(&r.responded_at))),
                },
                Cell::text(if r.extension_notified_at.is_none() {
                    "-".to_owned()
                } else {
                    format!("notified {}", when(&r.extension_notified_at))
                }),
                Cell::text(match (opt(&r.outcome), r.remedy_info_given) {
                    ("refused", true) => "refused, remedies given".to_owned(),
                    ("refused", _) => "refused without remedy information".to_owned(),
                    (o, _) => o.to_owned(),
                }),
            ]
        })
        .collect();
    let list = Table::new(
        "Open, extended and refused requests",
        &["request", "controller", "right", "received", "time left", "extension", "outcome"],
        rows,
    )
    .arrange("/requests", params);
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in &counted {
        let outcome = r.outcome.clone().unwrap_or_else(|| "open".to_owned());
        *counts.entry((r.right.clone(), outcome)).or_default() += 1;
    }
    let (table, counts_json) =
        count_table("Requests by right and outcome", "right", &counts, mode, state.k, &|_, _| {
            "/requests".into()
        });
    let mut sections = counts_then_list(table, list, shown.is_empty(), mode);
    if recorder {
        sections.insert(0, record_link("a data-subject request", "/requests/record"));
    }
    Ok(Page {
        trail: if shown.is_empty() { None } else { crate::page::Shown::list("list", super::filters(params)) },
        title: "Data-subject requests".into(),
        intro: REQUESTS_INTRO.into(),
        sections,
        json: json!({"counts": counts_json, "requests": items}),
    })
}
