//! Who watched the watchers: Custos's own access log, for the EDPS and the administrator
//! (view policy `VIEW-TRAIL`). Reading it is itself written to it.

use super::*;
use crate::page::Shown;
use custos_engine::trail::Visit;

pub(super) async fn trail(
    State(state): Shared,
    Extension(current): Extension<Current>,
    uri: OriginalUri,
    Query(params): Params,
) -> Response {
    let page = (|| {
        let v = &current.session.viewer;
        if !state.guard.allows(v, &Item::trail()) {
            return Err(AppError::Forbidden);
        }
        let bound = |name: &str| -> Result<Option<i64>, AppError> {
            let value = q(&params, name);
            if value.is_empty() {
                return Ok(None);
            }
            custos_engine::import::parse_timestamp(value).map(Some).ok_or_else(|| {
                AppError::BadRequest(format!(
                    "{name} `{value}`: expected a date such as 2025-03-01 or an RFC 3339 instant"
                ))
            })
        };
        let (from, to) = (bound("from")?, bound("to")?);
        let (user, role, kind, item) =
            (q(&params, "user"), q(&params, "role"), q(&params, "item_kind"), q(&params, "item"));
        // What was seen is shown only to those who may see its scope in detail: to the others,
        // who looked, when and where, without the item or the address's particulars.
        let visits: Vec<Visit> = state.trail(|all| {
            all.iter()
                .rev()
                .map(|x| {
                    if state.guard.allows(v, &Item::detail(&x.member_state, &x.controller, true)) {
                        x.clone()
                    } else {
                        let first = x.page.split(['?', '/']).find(|s| !s.is_empty()).unwrap_or("");
                        Visit {
                            item: "(not in your scope)".into(), page: format!("/{first}/…"), ..x.clone()
                        }
                    }
                })
                .collect()
        })?;
        // Filters apply to what the viewer may see: an item out of scope cannot be probed.
        let shown: Vec<&Visit> = visits
            .iter()
            .filter(|x| {
                (user.is_empty() || x.user == user)
                    && (role.is_empty() || x.role == role)
                    && (kind.is_empty() || x.item_kind == kind)
                    && (item.is_empty() || x.item.contains(item))
                    && from.is_none_or(|f| x.at.micros() >= f)
                    && to.is_none_or(|t| x.at.micros() < t)
            })
            .collect();
        let zone = v.zone();
        let rows = shown
            .iter()
            .map(|x| {
                vec![
                    Cell::time(&x.at.to_string(), zone),
                    Cell::text(x.user.clone()).link(link_with("/trail", &[("user", &x.user)])),
                    Cell::text(x.role.clone()),
                    Cell::text(x.item_kind.clone()),
                    Cell::text(x.item.clone()),
                    Cell::text(format!("{} {}", x.member_state, x.controller).trim().to_owned()),
                    Cell::text(x.page.clone()),
                ]
            })
            .collect();
        let page_no: usize = params.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
        Ok(Page {
            trail: Shown::list("trail", uri.query().unwrap_or("")),
            title: "Access log".into(),
            intro: "Every answer of Custos that showed detail about a natural person: who saw it, in which role, when, which item, on which page (Reg. 2018/1725 Arts. 4(2), 33). Newest first; the last second may still be on its way to the store.".into(),
            sections: vec![
                Section::Filters {
                    fields: [("user", "User"), ("role", "Role"), ("item_kind", "Kind of item"), ("item", "Item"), ("from", "From (date)"), ("to", "To (date)")]
                        .iter()
                        .map(|(n, l)| Field { name: (*n).into(), label: (*l).into(), value: q(&params, n).into() })
                        .collect(),
                },
                Section::Table(
                    Table::new("Visits", &["when", "user", "role", "kind", "item", "scope", "page"], rows).arrange("/trail", &params),
                ),
            ],
            json: json!({
                "filters": params,
                "total": shown.len(),
                "page": page_no,
                "page_size": crate::page::PAGE_SIZE,
                "visits": shown.iter().skip((page_no - 1) * crate::page::PAGE_SIZE).take(crate::page::PAGE_SIZE).collect::<Vec<_>>(),
            }),
        })
    })();
    respond(&uri, &current, page.map(Arc::new))
}
