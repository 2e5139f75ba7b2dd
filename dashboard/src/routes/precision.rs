//! The rules' precision: of the findings supervisors decided in Custos, the share they
//! confirmed, per rule, per member state and per month of the decision. For those who see
//! statistics (the EDPS, the national DPAs).

use custos_engine::review::Tally;

use super::*;

pub(super) async fn precision(
    State(state): Shared,
    Extension(current): Extension<Current>,
    uri: OriginalUri,
    Query(params): Params,
) -> Response {
    let page = (|| {
        let v = &current.session.viewer;
        if stats(&state, v) != Stats::All {
            return Err(AppError::Forbidden);
        }
        let reviews = state.reviews.lock().map_err(|_| AppError::Internal("the reviews' lock".into()))?;
        let rule = q(&params, "rule");
        let keep = |d: &custos_engine::review::Disposition| rule.is_empty() || d.rule == rule;
        let month = |d: &custos_engine::review::Disposition| {
            let t = chrono::DateTime::from_timestamp_micros(d.at.micros()).unwrap_or_default();
            t.with_timezone(&chrono_tz::Europe::Brussels).format("%Y-%m").to_string()
        };
        let groups = [
            ("rule", "Precision per rule", reviews.precision(keep, |d| d.rule.clone())),
            (
                "member state",
                "Precision per member state",
                reviews.precision(keep, |d| opt(&d.member_state).to_owned()),
            ),
            ("month", "Precision per month of the decision (Brussels)", reviews.precision(keep, month)),
        ];
        let share = |t: &Tally| t.precision().map(|p| format!("{:.0} %", p * 100.0)).unwrap_or_default();
        let mut sections = vec![Section::Filters {
            fields: vec![Field { name: "rule".into(), label: "Rule".into(), value: rule.into() }],
        }];
        let mut json_groups = serde_json::Map::new();
        for (corner, caption, tallies) in &groups {
            let rows = tallies
                .iter()
                .map(|(g, t)| {
                    let cell = |s: &str| {
                        Cell::text(g.clone()).link(link_with(
                            "/review",
                            &[("state", s), (if *corner == "rule" { "rule" } else { "member_state" }, g)],
                        ))
                    };
                    vec![
                        if *corner == "month" { Cell::text(g.clone()) } else { cell("all") },
                        Cell::count(t.decided()),
                        Cell::count(t.confirmed),
                        Cell::count(t.justified),
                        Cell::count(t.false_positive),
                        Cell::text(share(t)),
                    ]
                })
                .collect();
            sections.push(Section::Table(Table::new(
                *caption,
                &[corner, "decided", "confirmed", "justified", "false positives", "precision"],
                rows,
            )));
            json_groups.insert(
                corner.replace(' ', "_"),
                json!(
                    tallies
                        .iter()
                        .map(|(g, t)| json!({"group": g, "tally": t, "precision": t.precision()}))
                        .collect::<Vec<_>>()
                ),
            );
        }
        Ok(Page {
            trail: None,
            title: "Precision of the rules".into(),
            intro: "Of the findings decided in Custos (each by its latest version), the share confirmed as breaches; justified findings and false positives count against it. A rule with low precision finds what is not there.".into(),
            sections,
            json: json!({"filters": params, "precision": json_groups}),
        })
    })();
    respond(&uri, &current, page.map(Arc::new))
}
