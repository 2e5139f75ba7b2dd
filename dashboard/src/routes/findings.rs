//! Need-to-know findings: counts per rule and member state, the findings, and one event's
//! facts with the policies that decided it.

use super::*;

/// The routes of one event's findings.
pub(super) fn routes(r: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    r.route("/findings/{event}", get(finding)).route("/api/findings/{event}", get(finding))
}

pub(super) fn build_findings(
    state: &AppState,
    v: &Viewer,
    params: &BTreeMap<String, String>,
    grids: Option<&custos_reports::grid::Grids>,
) -> Result<Page, AppError> {
    let data = state.data();
    let mode = stats(state, v);
    if let Some(grids) = grids {
        let (sections, counts) = crate::protected::findings(grids, params)?;
        return Ok(Page {
            trail: None,
            title: "Need-to-know findings".into(),
            intro: FINDINGS_INTRO.into(),
            sections,
            json: json!({"filters": params, "counts": counts, "total": 0, "page": 1, "page_size": crate::page::PAGE_SIZE, "findings": []}),
        });
    }
    let (rule, ms, authority, user, from, to) = (
        q(params, "rule"),
        q(params, "member_state"),
        q(params, "authority"),
        q(params, "user"),
        q(params, "from"),
        q(params, "to"),
    );
    // A filter on a user or an authority asks about actors: it is answered from the records
    // the viewer may see in detail only, so that out of scope and unknown look the same.
    let about_actors = !user.is_empty() || !authority.is_empty();
    // A time window is exact over records seen in detail; over the others (counted only) it
    // is widened to whole months, so that bisecting it pins no record to its second.
    let bound = |name: &str, v: &str| -> Result<Option<i64>, AppError> {
        if v.is_empty() {
            return Ok(None);
        }
        custos_engine::import::parse_timestamp(v).map(Some).ok_or_else(|| {
            AppError::BadRequest(format!(
                "{name} `{v}`: expected a date such as 2025-03-01 or an RFC 3339 instant"
            ))
        })
    };
    let exact = (bound("from", from)?, bound("to", to)?);
    let months = (bound("from", &month_floor(from))?, bound("to", &month_ceil(to))?);
    let selected = |f: &&Finding, exact_window: bool| {
        let (from, to) = if exact_window { exact } else { months };
        let ts = f.ts.map(|t| t.micros());
        (rule.is_empty() || f.rule == rule)
            && (ms.is_empty() || opt(&f.member_state) == ms)
            && (authority.is_empty() || opt(&f.authority_id) == authority)
            && (user.is_empty() || opt(&f.user_id) == user)
            && from.is_none_or(|from| ts.is_some_and(|t| t >= from))
            && to.is_none_or(|to| ts.is_some_and(|t| t < to))
    };
    let in_detail = |f: &&Finding| visible(state, v, opt(&f.member_state), opt(&f.authority_id), true);
    let counted: Vec<&Finding> = data
        .ntk
        .iter()
        .filter(|f| {
            let detail = in_detail(f);
            selected(f, detail) && (detail || !about_actors)
        })
        .filter(|f| countable(state, v, mode, opt(&f.member_state), opt(&f.authority_id)))
        .collect();
    let shown: Vec<&Finding> = data.ntk.iter().filter(|f| selected(f, true)).filter(in_detail).collect();
    let may_count =
        mode != Stats::Scoped || !counted.is_empty() || state.guard.allows(v, &Item::stat("", &v.controller));
    if !may_count && shown.is_empty() {
        return Err(AppError::Forbidden);
    }
    // A user filter names a person: only for those who may see persons.
    if !user.is_empty() && shown.is_empty() && mode == Stats::Protected {
        return Err(AppError::Forbidden);
    }
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for f in &counted {
        *counts.entry((f.rule.clone(), opt(&f.member_state).to_owned())).or_default() += 1;
    }
    let (count_table, counts_json) =
        count_table("Findings per rule and member state", "rule", &counts, mode, state.k, &|r, m| {
            link_with("/findings", &[("rule", r), ("member_state", m), ("from", from), ("to", to)])
        });
    let zone = v.zone();
    let rows: Vec<Vec<Cell>> = shown
        .iter()
        .map(|f| {
            let event = opt(&f.event_id);
            vec![
                Cell::time(&f.ts.map(|t| t.to_string()).unwrap_or_default(), zone),
                Cell::text(f.rule.clone()).link(link_with("/findings", &[("rule", &f.rule)])),
                Cell::text(f.legal_ref.clone()),
                Cell::text(opt(&f.member_state)),
                Cell::text(opt(&f.authority_id))
                    .link(link_with("/findings", &[("authority", opt(&f.authority_id))])),
                Cell::text(opt(&f.user_id)).link(link_with("/findings", &[("user", opt(&f.user_id))])),
                Cell::text(opt(&f.case_id)),
                Cell::text(event).link(format!("/findings/{}", crate::page::encode(event))),
            ]
        })
        .collect();
    let list = Table::new(
        "Findings",
        &["time", "rule", "article", "member state", "authority", "user", "case", "event"],
        rows,
    )
    .arrange("/findings", params);
    let page_no: usize = params.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
    let json = json!({
        "filters": params,
        "counts": counts_json,
        "total": shown.len(),
        "page": page_no,
        "page_size": crate::page::PAGE_SIZE,
        "findings": shown.iter().skip((page_no - 1) * crate::page::PAGE_SIZE).take(crate::page::PAGE_SIZE).collect::<Vec<_>>(),
    });
    let mut sections = vec![
        Section::Filters {
            fields: [
                ("rule", "Rule"),
                ("member_state", "Member state"),
                ("authority", "Authority"),
                ("user", "User"),
                ("from", "From (date)"),
                ("to", "To (date)"),
            ]
            .iter()
            .filter(|(n, _)| *n != "user" || mode != Stats::Protected)
            .map(|(n, l)| Field { name: (*n).into(), label: (*l).into(), value: q(params, n).into() })
            .collect(),
        },
        Section::Table(count_table),
    ];
    if mode == Stats::Protected {
        sections
            .push(Section::Note { text: format!("Disclosure control: {}.", disclosure::rule_text(state.k)) });
    }
    if mode == Stats::Protected && shown.is_empty() {
        sections.push(Section::Note { text: "Your role sees these findings as counts only.".into() });
    } else {
        sections.push(Section::Table(list));
    }
    Ok(Page {
        trail: if shown.is_empty() { None } else { crate::page::Shown::list("list", super::filters(params)) },
        title: "Need-to-know findings".into(),
        intro: FINDINGS_INTRO.into(),
        sections,
        json,
    })
}

pub(super) const FINDINGS_INTRO: &str = "Every granted access that broke a need-to-know rule in the latest audit. A count leads to its findings, a finding to its event's facts and the policy that decided it.";

pub(super) async fn finding(
    State(state): Shared,
    Extension(current): Extension<Current>,
    uri: OriginalUri,
    Path(event): Path<String>,
) -> Response {
    let v = current.session.viewer.clone();
    let data = state.data();
    let found: Vec<Finding> = data.ntk.iter().filter(|f| opt(&f.event_id) == event).cloned().collect();
    let page = async {
        // Out of the viewer's scope answers as if there were no such finding.
        let unknown = || AppError::NotFound("no finding about this event".into());
        let first = found.first().ok_or_else(unknown)?;
        if !visible(&state, &v, opt(&first.member_state), opt(&first.authority_id), true) {
            tracing::warn!(name = %v.name, %event, "refused: a finding out of scope");
            return Err(unknown());
        }
        let engine = state.engine()?;
        let judge = engine.judge();
        let at = first.ts.map(|t| t.micros());
        let e = engine.explain(&event, at).await?;
        let mut sections = vec![Section::Table(Table::new(
            "Rules broken",
            &["rule", "article", "title"],
            found
                .iter()
                .map(|f| {
                    let title = data.rules.iter().find(|(_, r, _)| r.id == f.rule).map(|(_, r, _)| r.title.clone()).unwrap_or_default();
                    vec![Cell::text(f.rule.clone()).link(format!("/policies/{}", f.rule)), Cell::text(f.legal_ref.clone()), Cell::text(title)]
                })
                .collect(),
        ))];
        sections.push(Section::Text { heading: "Facts at the event's instant".into(), text: serde_json::to_string_pretty(&e.facts).unwrap_or_default() });
        for id in &e.verdict.broken {
            if let Some(rule) = judge.policies().rule(id) {
                sections.push(Section::Text { heading: format!("{} ({}): the policy that decided", rule.id, rule.article), text: rule.text.clone() });
            }
        }
        sections.push(Section::Text { heading: "Cedar request".into(), text: e.request.clone() });
        Ok(Page {
            trail: crate::page::Shown::item("event", event.clone(), opt(&first.member_state), opt(&first.authority_id)),
            title: format!("Event {event}"),
            intro: "The event's facts as they stood at its instant, and the text of every policy that decided it.".into(),
            sections,
            json: json!({"event_id": event, "findings": found, "facts": e.facts, "request": e.request, "policies": e.verdict.broken}),
        })
    }
    .await;
    respond(&uri, &current, page.map(Arc::new))
}
