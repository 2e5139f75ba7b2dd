//! Deadlines: every deadline finding as of the data's instant, by rule, status and severity.

use super::*;

pub(super) fn build_deadlines(
    state: &AppState,
    v: &Viewer,
    params: &BTreeMap<String, String>,
    grids: Option<&custos_reports::grid::Grids>,
) -> Result<Page, AppError> {
    let data = state.data();
    let mode = stats(state, v);
    if let Some(grids) = grids {
        let (sections, counts) = crate::protected::deadlines(grids, params)?;
        return Ok(Page {
            trail: None,
            title: "Deadlines".into(),
            intro: deadlines_intro(data.as_of),
            sections,
            json: json!({"as_of": custos_engine::finding::format_micros(data.as_of), "counts": counts, "total": 0, "findings": []}),
        });
    }
    let (rule, status, actor) = (q(params, "rule"), q(params, "status"), q(params, "actor"));
    let severity = q(params, "severity");
    let selected = |f: &&Finding| {
        (rule.is_empty() || f.rule == rule)
            && (status.is_empty() || f.status.as_str() == status)
            && (actor.is_empty() || opt(&f.authority_id) == actor)
            && (severity.is_empty() || f.severity.as_str() == severity)
    };
    let personal = |f: &Finding| {
        f.subject_kind == custos_engine::finding::SubjectKind::User
            || f.subject_kind == custos_engine::finding::SubjectKind::Request
    };
    // A filter on an actor asks about actors: counted from the records the viewer may see in
    // detail only, so that out of scope and unknown look the same.
    let counted: Vec<&Finding> = data
        .deadlines
        .iter()
        .filter(selected)
        .filter(|f| {
            actor.is_empty() || visible(state, v, opt(&f.member_state), opt(&f.authority_id), personal(f))
        })
        .filter(|f| countable(state, v, mode, opt(&f.member_state), opt(&f.authority_id)))
        .collect();
    let shown: Vec<&Finding> = data
        .deadlines
        .iter()
        .filter(selected)
        .filter(|f| visible(state, v, opt(&f.member_state), opt(&f.authority_id), personal(f)))
        .collect();
    if mode == Stats::Scoped
        && counted.is_empty()
        && shown.is_empty()
        && !state.guard.allows(v, &Item::stat("", &v.controller))
    {
        return Err(AppError::Forbidden);
    }
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut by_severity: BTreeMap<(String, String), u64> = BTreeMap::new();
    for f in &counted {
        *counts.entry((f.rule.clone(), f.status.to_string())).or_default() += 1;
        *by_severity.entry((f.severity.to_string(), f.status.to_string())).or_default() += 1;
    }
    let (table, counts_json) =
        count_table("Deadline findings per rule and status", "rule", &counts, mode, state.k, &|r, s| {
            link_with("/deadlines", &[("rule", r), ("status", s)])
        });
    // Violations (periods and duties the law sets) apart from warnings (Custos defaults and
    // controllers' own commitments).
    let (severity_table, severity_json) = count_table(
        "Deadline findings per severity and status",
        "severity",
        &by_severity,
        mode,
        state.k,
        &|r, s| link_with("/deadlines", &[("severity", r), ("status", s)]),
    );
    let now = data.as_of;
    let zone = v.zone();
    let rows = shown
        .iter()
        .map(|f| {
            let due = f.due_at.map(|t| t.micros());
            let age = due.map(|d| (now - d) as f64 / 86_400_000_000.0);
            vec![
                Cell::text(f.rule.clone()).link(format!("/policies/{}", f.rule)),
                Cell::text(f.status.to_string())
                    .class(if f.status == custos_engine::finding::Status::Overdue { "overdue" } else { "" }),
                Cell::text(f.severity.to_string()),
                Cell::text(match &f.detail {
                    Some(d) => format!("{} {} ({d})", f.subject_kind, f.subject_id),
                    None => format!("{} {}", f.subject_kind, f.subject_id),
                }),
                f.due_at.map_or_else(|| Cell::text("-"), |d| Cell::time(&d.to_string(), zone)),
                age.map_or_else(
                    || Cell::text("-"),
                    |a| {
                        Cell::number(
                            a,
                            if a >= 0.0 {
                                format!("{a:.1} days overdue")
                            } else {
                                format!("{:.1} days left", -a)
                            },
                        )
                    },
                ),
                Cell::text(opt(&f.authority_id))
                    .link(link_with("/deadlines", &[("actor", opt(&f.authority_id))])),
                Cell::text(opt(&f.member_state)),
                Cell::text(f.legal_ref.clone()),
            ]
        })
        .collect();
    let list = Table::new(
        "Deadline findings",
        &["rule", "status", "severity", "subject", "due", "age", "actor", "member state", "article"],
        rows,
    )
    .arrange("/deadlines", params);
    let page_no: usize = params.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
    Ok(Page {
        trail: if shown.iter().any(|f| personal(f)) {
            crate::page::Shown::list("list", super::filters(params))
        } else {
            None
        },
        title: "Deadlines".into(),
        intro: deadlines_intro(now),
        sections: vec![
            Section::Filters {
                fields: [
                    ("rule", "Rule"),
                    ("status", "Status"),
                    ("severity", "Severity"),
                    ("actor", "Actor"),
                ]
                .iter()
                .map(|(n, l)| Field { name: (*n).into(), label: (*l).into(), value: q(params, n).into() })
                .collect(),
            },
            Section::Table(severity_table),
            Section::Table(table),
            Section::Table(list),
        ],
        json: json!({
            "as_of": custos_engine::finding::format_micros(now),
            "counts_by_severity": severity_json,
            "counts": counts_json,
            "total": shown.len(),
            "findings": shown.iter().skip((page_no - 1) * crate::page::PAGE_SIZE).take(crate::page::PAGE_SIZE).collect::<Vec<_>>(),
        }),
    })
}

pub(super) fn deadlines_intro(now: i64) -> String {
    format!(
        "Retention, blocking, deletion, requests, breaches, response times and users' access rights as of {}: overdue, late, due within 30 days, or unmet. A violation breaks a period or duty the law sets; a warning, a Custos default or a controller's own commitment.",
        custos_engine::finding::format_micros(now)
    )
}
