//! Response times: the Scoreboard's indicators, their trend, authorities among peers.

use super::*;

pub(super) fn build_response_times(
    state: &AppState,
    v: &Viewer,
    params: &BTreeMap<String, String>,
    _grids: Option<&custos_reports::grid::Grids>,
) -> Result<Page, AppError> {
    let data = state.data();
    // Authority-level performance figures are not personal data: whoever may see statistics
    // (protected or not) sees them.
    if stats(state, v) == Stats::Scoped {
        return Err(AppError::Forbidden);
    }
    let Some(year) = data.latest_year() else {
        return Ok(Page {
            trail: None,
            title: "Response times".into(),
            intro: "No requests in the store.".into(),
            sections: vec![],
            json: json!({}),
        });
    };
    let rows = &data.indicators[&year];
    let states = indicator_table(
        &format!("Indicators per member state, {year}"),
        rows.iter().filter(|r| r.level == "overall" || r.level == "member_state"),
    );
    let domains = indicator_table(
        &format!("Indicators per domain, {year}"),
        rows.iter().filter(|r| r.level == "domain"),
    );
    let years: Vec<i32> = data.indicators.keys().copied().collect();
    let overall = |y: &i32| data.indicators[y].iter().find(|r| r.level == "overall").and_then(|r| r.ind2);
    let trend = custos_reports::chart::Chart {
        title: "Average days to answer (IND-2), per year".into(),
        description: format!(
            "IND-2 over every year in the store, {} to {}.",
            years.first().unwrap_or(&year),
            year
        ),
        kind: custos_reports::chart::Kind::Line,
        x_label: "year".into(),
        y_label: "days".into(),
        labels: years.iter().map(ToString::to_string).collect(),
        series: vec![("IND-2".into(), years.iter().map(overall).collect())],
    };
    let trend_table = Table::new(
        "IND-2 per year",
        &["year", "days"],
        years
            .iter()
            .map(|y| {
                vec![
                    Cell::text(y.to_string()),
                    overall(y).map_or_else(|| Cell::text("-"), |d| Cell::number(d, format!("{d:.1}"))),
                ]
            })
            .collect(),
    );
    let days = |v: Option<f64>| v.map_or_else(|| Cell::text("-"), |d| Cell::number(d, format!("{d:.1}")));
    let ranking = Table::new(
        format!("Responding authorities against their peers, {year}"),
        &[
            "domain",
            "authority",
            "member state",
            "received",
            "median days to answer",
            "90th percentile",
            "share late",
            "rank",
            "percentile",
            "change of median",
        ],
        data.benchmark
            .iter()
            .filter(|b| b.level == "authority")
            .map(|b| {
                vec![
                    Cell::text(b.domain.clone()),
                    Cell::text(b.authority_id.clone().unwrap_or_default()),
                    Cell::text(b.member_state.clone()),
                    Cell::count(b.received),
                    days(b.answer_median),
                    days(b.answer_p90),
                    b.share_late
                        .map_or_else(|| Cell::text("-"), |s| Cell::number(s, format!("{:.0} %", 100.0 * s))),
                    Cell::number(b.rank as f64, format!("{} of {}", b.rank, b.peers)),
                    Cell::number(b.percentile, format!("{:.0}", b.percentile)),
                    b.answer_median_change
                        .map_or_else(|| Cell::text("-"), |c| Cell::number(c, format!("{c:+.1}"))),
                ]
            })
            .collect(),
    )
    .arrange("/response-times", params);
    Ok(Page {
        trail: None,
        title: "Response times".into(),
        intro: format!(
            "The Single Market Scoreboard's IMI indicators and the ranking of authorities among peers. Readings: {}.",
            data.readings
        ),
        sections: vec![
            Section::Table(states),
            Section::Table(domains),
            Section::Chart { heading: "Trend".into(), svg: trend.svg(), table: trend_table },
            Section::Table(ranking),
        ],
        json: json!({
            "year": year,
            "readings": data.readings,
            "indicators": rows,
            "trend": years.iter().map(|y| json!({"year": y, "ind2": overall(y)})).collect::<Vec<_>>(),
            "authorities": data.benchmark.iter().filter(|b| b.level == "authority").collect::<Vec<_>>(),
            "member_states": data.benchmark.iter().filter(|b| b.level == "member_state").collect::<Vec<_>>(),
        }),
    })
}
