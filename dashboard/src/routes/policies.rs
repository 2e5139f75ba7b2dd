//! The policy explorer: every rule as the Cedar policy that decides it.

use super::*;

/// The routes of one rule.
pub(super) fn routes(r: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    r.route("/policies/{id}", get(policy)).route("/api/policies/{id}", get(policy))
}

pub(super) async fn policies(
    State(state): Shared,
    Extension(current): Extension<Current>,
    uri: OriginalUri,
    Query(params): Params,
) -> Response {
    let v = &current.session.viewer;
    let page = if !state.guard.allows(v, &Item::policies()) {
        Err(AppError::Forbidden)
    } else {
        let data = state.data();
        let rows = data
            .rules
            .iter()
            .map(|(family, r, cases)| {
                vec![
                    Cell::text(*family),
                    Cell::text(r.id.clone()).link(format!("/policies/{}", crate::page::encode(&r.id))),
                    Cell::text(r.article.clone()),
                    Cell::text(r.title.clone()),
                    Cell::text(r.effect),
                    Cell::count(cases.len() as u64),
                ]
            })
            .collect();
        Ok(Page {
trail: None,
            title: "Policy explorer".into(),
            intro: "Every rule Custos applies, as the Cedar policy that decides it, with its article and its test cases.".into(),
            sections: vec![Section::Table(
                Table::new("Rules", &["family", "rule", "article", "title", "effect", "cases"], rows).arrange("/policies", &params),
            )],
            json: json!({"rules": data.rules.iter().map(|(family, r, cases)| json!({
                "family": family, "id": r.id, "rule": r.rule, "article": r.article, "title": r.title,
                "effect": r.effect, "file": r.file, "text": r.text, "cases": cases,
            })).collect::<Vec<_>>()}),
        })
    };
    respond(&uri, &current, page.map(Arc::new))
}

pub(super) async fn policy(
    State(state): Shared,
    Extension(current): Extension<Current>,
    uri: OriginalUri,
    Path(id): Path<String>,
) -> Response {
    let v = &current.session.viewer;
    let data = state.data();
    let page = if !state.guard.allows(v, &Item::policies()) {
        Err(AppError::Forbidden)
    } else if let Some((family, r, cases)) = data.rules.iter().find(|(_, r, _)| r.id == id) {
        let rows = cases
            .iter()
            .map(|c| {
                vec![
                    Cell::text(c["name"].as_str().unwrap_or_default()),
                    Cell::text(c["decision"].as_str().unwrap_or_default()),
                    Cell::text(
                        c["reason"]
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                            .unwrap_or_default(),
                    ),
                ]
            })
            .collect();
        Ok(Page {
            trail: None,
            title: format!("{} ({})", r.id, r.article),
            intro: r.title.clone(),
            sections: vec![
                Section::Text { heading: format!("policies/{}", r.file), text: r.text.clone() },
                Section::Table(Table::new("Test cases", &["case", "decision", "determined by"], rows)),
            ],
            json: json!({"family": family, "id": r.id, "article": r.article, "title": r.title, "effect": r.effect, "file": r.file, "text": r.text, "cases": cases}),
        })
    } else {
        Err(AppError::NotFound(format!("no rule `{id}`")))
    };
    respond(&uri, &current, page.map(Arc::new))
}
