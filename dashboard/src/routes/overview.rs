//! The overview: headline figures, findings per rule, the indicators' traffic lights.

use super::*;

pub(super) fn build_overview(
    state: &AppState,
    v: &Viewer,
    _params: &BTreeMap<String, String>,
    grids: Option<&custos_reports::grid::Grids>,
) -> Result<Page, AppError> {
    let data = state.data();
    let mode = stats(state, v);
    let k = state.k;
    if let Some(grids) = grids {
        return Ok(protected_overview(&data, grids, figure_count(data.events, mode, k)));
    }
    let ntk: Vec<&Finding> = data
        .ntk
        .iter()
        .filter(|f| countable(state, v, mode, opt(&f.member_state), opt(&f.authority_id)))
        .collect();
    let deadlines: Vec<&Finding> = data
        .deadlines
        .iter()
        .filter(|f| countable(state, v, mode, opt(&f.member_state), opt(&f.authority_id)))
        .collect();
    let overdue =
        deadlines.iter().filter(|f| f.status == custos_engine::finding::Status::Overdue).count() as u64;
    let due_soon =
        deadlines.iter().filter(|f| f.status == custos_engine::finding::Status::DueSoon).count() as u64;
    let breaches =
        data.breaches.iter().filter(|b| countable(state, v, mode, &b.member_state, &b.controller_id));
    let open_breaches = breaches.filter(|b| b.notified_at.is_none()).count() as u64;
    let open_requests = data
        .requests
        .iter()
        .filter(|r| countable(state, v, mode, &r.member_state, &r.controller_id))
        .filter(|r| r.is_open())
        .count() as u64;
    if mode == Stats::Scoped
        && ntk.is_empty()
        && deadlines.is_empty()
        && !state.guard.allows(v, &Item::stat("", &v.controller))
    {
        return Err(AppError::Forbidden);
    }
    let mut figures = vec![
        Figure {
            label: "Need-to-know findings".into(),
            value: figure_count(ntk.len() as u64, mode, k),
            link: Some("/findings".into()),
        },
        Figure {
            label: "Deadlines overdue".into(),
            value: figure_count(overdue, mode, k),
            link: Some("/deadlines?status=overdue".into()),
        },
        Figure {
            label: "Deadlines due within 30 days".into(),
            value: figure_count(due_soon, mode, k),
            link: Some("/deadlines?status=due_soon".into()),
        },
        Figure {
            label: "Breaches not yet notified".into(),
            value: figure_count(open_breaches, mode, k),
            link: Some("/breaches".into()),
        },
        Figure {
            label: "Open data-subject requests".into(),
            value: figure_count(open_requests, mode, k),
            link: Some("/requests".into()),
        },
    ];
    if mode != Stats::Scoped {
        figures.insert(
            0,
            Figure {
                label: "Access events judged".into(),
                value: figure_count(data.events, mode, k),
                link: None,
            },
        );
    }
    let mut sections =
        vec![Section::Figures { heading: "Headline figures".into(), figures: figures.clone() }];
    // The reviewer's own work: open findings, referrals and those past their date.
    let (reviews, overdue_referrals, reviewable) = super::review::tally(state, v)?;
    if reviewable > 0 {
        let n = |s: &str| reviews.get(s).copied().unwrap_or(0).to_string();
        sections.push(Section::Figures {
            heading: "Your reviews".into(),
            figures: vec![
                Figure { label: "Open".into(), value: n("open"), link: Some("/review?state=open".into()) },
                Figure {
                    label: "Under review".into(),
                    value: n("under_review"),
                    link: Some("/review?state=under_review".into()),
                },
                Figure {
                    label: "Referred".into(),
                    value: n("referred"),
                    link: Some("/review?state=referred".into()),
                },
                Figure {
                    label: "Referrals overdue".into(),
                    value: overdue_referrals.to_string(),
                    link: Some("/review?state=referred&sort=8".into()),
                },
            ],
        });
    }

    // Findings per rule: a chart and its table.
    let mut per_rule: BTreeMap<(String, String), u64> = BTreeMap::new();
    for f in &ntk {
        *per_rule.entry((f.rule.clone(), "findings".into())).or_default() += 1;
    }
    let (table, counts_json) =
        count_table("Need-to-know findings per rule", "rule", &per_rule, mode, k, &|r, _| {
            link_with("/findings", &[("rule", r)])
        });
    let labels: Vec<String> = per_rule.keys().map(|(r, _)| r.clone()).collect();
    let values: Vec<Option<f64>> = match &counts_json["table"]["cells"] {
        Value::Array(rows) => rows.iter().map(|r| r[0].as_f64()).collect(),
        _ => Vec::new(),
    };
    let chart = custos_reports::chart::Chart {
        title: "Need-to-know findings per rule".into(),
        description: format!("{} rules with findings; the table below gives every figure.", labels.len()),
        kind: custos_reports::chart::Kind::Bar,
        x_label: "rule".into(),
        y_label: "findings".into(),
        labels,
        series: vec![("findings".into(), values)],
    };
    sections.push(Section::Chart { heading: "Findings per rule".into(), svg: chart.svg(), table });

    let lights = if mode == Stats::Scoped { Value::Null } else { lights(&data, &mut sections) };
    let json = json!({
        "as_of": custos_engine::finding::format_micros(data.as_of),
        "figures": figures.iter().map(|f| json!({"label": f.label, "value": f.value})).collect::<Vec<_>>(),
        "findings_per_rule": counts_json,
        "indicators": lights,
        "reviews": (reviewable > 0).then(|| json!({"states": reviews, "overdue_referrals": overdue_referrals})),
    });
    Ok(overview_page(&data, sections, json))
}

/// The indicators' traffic lights for the latest year, as a section and as JSON.
pub(super) fn lights(data: &custos_engine::read::Data, sections: &mut Vec<Section>) -> Value {
    let Some(year) = data.latest_year() else { return Value::Null };
    let rows: Vec<_> =
        data.indicators[&year].iter().filter(|r| r.level == "overall" || r.level == "member_state").collect();
    sections.push(Section::Table(indicator_table(
        &format!("Scoreboard indicators, {year}"),
        rows.iter().copied(),
    )));
    json!({"year": year, "readings": data.readings, "indicators": rows})
}

pub(super) fn overview_page(data: &custos_engine::read::Data, sections: Vec<Section>, json: Value) -> Page {
    Page {
        trail: None,
        title: "Overview".into(),
        intro: format!(
            "What the store shows, as of {} (deadlines) and the latest audit{}.",
            custos_engine::finding::format_micros(data.as_of),
            data.audit
                .as_ref()
                .map(|(h, at)| format!(" ({at}, policy set {})", &h[..12.min(h.len())]))
                .unwrap_or_default()
        ),
        sections,
        json,
    }
}

/// The overview for a role that sees counts only after disclosure control: every figure a
/// value of a published grid (`crate::protected`).
pub(super) fn protected_overview(
    data: &custos_engine::read::Data,
    grids: &custos_reports::grid::Grids,
    events: String,
) -> Page {
    let (figures, per_rule, published) = crate::protected::overview(grids, events);
    let mut sections =
        vec![Section::Figures { heading: "Headline figures".into(), figures: figures.clone() }];
    if let Some((table, year)) = &per_rule {
        let caption = format!("Need-to-know findings per rule, {year}");
        let chart = custos_reports::chart::Chart {
            title: caption.clone(),
            description: format!(
                "{} rules with findings in {year}; suppressed counts are not drawn; the table below gives every figure.",
                table.rows.len()
            ),
            kind: custos_reports::chart::Kind::Bar,
            x_label: "rule".into(),
            y_label: "findings".into(),
            labels: table.rows.clone(),
            series: vec![(
                "findings".into(),
                table
                    .cells
                    .iter()
                    .map(|r| match r[0] {
                        Dc::Count(n) => Some(n as f64),
                        Dc::Confidential => None,
                    })
                    .collect(),
            )],
        };
        let shown = shown_table(&caption, "rule", table, &|r, _| {
            link_with(
                "/findings",
                &[("rule", r), ("from", &format!("{year}-01-01")), ("to", &format!("{}-01-01", year + 1))],
            )
        });
        sections.push(Section::Chart { heading: "Findings per rule".into(), svg: chart.svg(), table: shown });
    }
    sections.push(Section::Note { text: format!("Disclosure control: {}.", disclosure::rule_text(grids.k)) });
    let lights = lights(data, &mut sections);
    let json = json!({
        "as_of": custos_engine::finding::format_micros(data.as_of),
        "figures": figures.iter().map(|f| json!({"label": f.label, "value": f.value})).collect::<Vec<_>>(),
        "counts": published,
        "indicators": lights,
    });
    overview_page(data, sections, json)
}

pub(super) fn indicator_table<'a>(
    caption: &str,
    rows: impl Iterator<Item = &'a custos_engine::indicator::Indicators>,
) -> Table {
    let cells = rows
        .map(|r| {
            let mut row = vec![
                Cell::text(r.member_state.clone().unwrap_or_else(|| "all".into())),
                Cell::text(r.domain.clone().unwrap_or_else(|| "all".into())),
                Cell::count(r.received),
            ];
            for (v, c) in r.values().iter().zip(&r.colours) {
                row.push(match (v, c) {
                    (Some(v), Some(c)) => {
                        let name = format!("{c:?}").to_lowercase();
                        Cell::number(*v, format!("{v:.1} ({name})")).class(name)
                    }
                    _ => Cell::text("-"),
                });
            }
            row.push(match (&r.score, &r.rating) {
                (Some(s), Some(rating)) => Cell::number(f64::from(*s), format!("{s:+} {rating}")),
                _ => Cell::text("-"),
            });
            row
        })
        .collect();
    Table::new(
        caption,
        &[
            "member state",
            "domain",
            "requests",
            "IND-1 %",
            "IND-2 days",
            "IND-3 %",
            "IND-4 %",
            "IND-5 %",
            "score",
        ],
        cells,
    )
}
