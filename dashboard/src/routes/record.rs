//! A DPO keeps its controller's registers in Custos: records a breach or a data-subject
//! request and completes it later (Cedar action `record`). Each save is a new version with its
//! author (`custos_engine::edits`), checked as an import checks a row; a save from a stale
//! version is answered 409. The record's findings, the 72-hour clock among them, are the
//! check's own rules judged as of now at every view of the page.

use std::collections::BTreeMap as Map;

use axum::Json as JsonBody;
use custos_engine::catalog;
use custos_engine::finding::SubjectKind;

use super::*;
use crate::authz::Action;
use crate::page::{Input, Shown};

/// How long the lists wait for the register saves to settle before the registers are read
/// again, so that a burst of saves is read once ...
const REGISTERS_SETTLE: std::time::Duration = std::time::Duration::from_millis(200);
/// ... but at most this long after the first save of a burst, so that the lists never lag
/// further behind a DPO saving without pause. (At 100 M events reading the registers again
/// costs about half a second of a core: read after every pause, it would take one of the two
/// cores from the saves themselves.)
const REGISTERS_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A register a DPO keeps here.
struct Register {
    table: &'static catalog::Table,
    /// Its page (`/breaches`) and noun (`breach`).
    list: &'static str,
    noun: &'static str,
    /// Its records identify natural persons (a request's data subject).
    personal: bool,
    subject: SubjectKind,
    /// The form's fields: column, label, and the choices of a column with allowed values.
    fields: &'static [(&'static str, &'static str, &'static [&'static str])],
}

const BREACHES: Register = Register {
    table: &catalog::BREACHES,
    list: "/breaches",
    noun: "breach",
    personal: false,
    subject: SubjectKind::Breach,
    fields: &[
        ("breach_id", "Breach reference", &[]),
        ("occurred_at", "Occurred (RFC 3339 instant)", &[]),
        ("aware_at", "The controller became aware (RFC 3339 instant)", &[]),
        ("risk", "Risk to persons", catalog::RISKS),
        ("supervisor", "Supervisor notified (EDPS, or a member state's code)", &[]),
        ("notified_at", "Notified to the supervisor", &[]),
        ("delay_reasons", "Reasons for a notification after 72 hours", &[]),
        ("dpo_informed_at", "DPO informed", &[]),
        ("subjects_notified_at", "Data subjects informed", &[]),
        ("subject_exemption", "Why data subjects were not informed", catalog::SUBJECT_EXEMPTIONS),
        ("nature", "Nature of the breach", &[]),
        ("subject_categories", "Categories of data subjects", &[]),
        ("approx_subjects", "Approximate number of data subjects", &[]),
        ("record_categories", "Categories of records", &[]),
        ("approx_records", "Approximate number of records", &[]),
        ("consequences", "Likely consequences", &[]),
        ("measures", "Measures taken or proposed", &[]),
        ("case_ids", "IMI cases concerned (separated by ;)", &[]),
    ],
};

const REQUESTS: Register = Register {
    table: &catalog::DSR_REQUESTS,
    list: "/requests",
    noun: "request",
    personal: true,
    subject: SubjectKind::Request,
    fields: &[
        ("request_id", "Request reference", &[]),
        ("case_id", "IMI case concerned", &[]),
        ("subject_ref", "Data subject's reference", &[]),
        ("right", "Right exercised", catalog::RIGHTS),
        ("regime", "Regime", catalog::REGIMES),
        ("received_at", "Received (RFC 3339 instant)", &[]),
        ("extension_notified_at", "Extension notified to the data subject", &[]),
        ("responded_at", "Responded", &[]),
        ("completed_at", "Completed", &[]),
        ("outcome", "Outcome", catalog::DSR_OUTCOMES),
        ("remedy_info_given", "Remedies explained (true or false)", &["false", "true"]),
    ],
};

/// The routes of recording and completing the registers' records.
pub(super) fn routes(r: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    r.route("/breaches/record", get(breach_form).post(breach_save))
        .route("/api/breaches/record", get(breach_form).post(breach_save_json))
        .route("/requests/record", get(request_form).post(request_save))
        .route("/api/requests/record", get(request_form).post(request_save_json))
}

async fn breach_form(s: Shared, c: Extension<Current>, u: OriginalUri, q: Params) -> Response {
    form(&BREACHES, s, c, u, q).await
}

async fn breach_save(
    s: Shared,
    c: Extension<Current>,
    h: HeaderMap,
    f: Form<Map<String, String>>,
) -> Response {
    save_form(&BREACHES, s, c, h, f).await
}

async fn breach_save_json(
    s: Shared,
    c: Extension<Current>,
    h: HeaderMap,
    j: JsonBody<Map<String, String>>,
) -> Response {
    save_json(&BREACHES, s, c, h, j).await
}

async fn request_form(s: Shared, c: Extension<Current>, u: OriginalUri, q: Params) -> Response {
    form(&REQUESTS, s, c, u, q).await
}

async fn request_save(
    s: Shared,
    c: Extension<Current>,
    h: HeaderMap,
    f: Form<Map<String, String>>,
) -> Response {
    save_form(&REQUESTS, s, c, h, f).await
}

async fn request_save_json(
    s: Shared,
    c: Extension<Current>,
    h: HeaderMap,
    j: JsonBody<Map<String, String>>,
) -> Response {
    save_json(&REQUESTS, s, c, h, j).await
}

/// Whether `v` may record entries of `noun`'s register (the DPO of a controller).
pub(super) fn may_record_any(state: &AppState, v: &Viewer, personal: bool) -> bool {
    let ms = state.data().states.get(&v.controller).cloned().unwrap_or_default();
    !v.controller.is_empty()
        && state.guard.allows_to(v, Action::Record, &Item::detail(&ms, &v.controller, personal))
}

/// The viewer's controller as a view item, if the viewer may record its register.
fn may_record(state: &AppState, v: &Viewer, reg: &Register) -> Result<Item, AppError> {
    let data = state.data();
    let ms = data.states.get(&v.controller).cloned().unwrap_or_default();
    let item = Item::detail(&ms, &v.controller, reg.personal);
    if v.controller.is_empty() || !state.guard.allows_to(v, Action::Record, &item) {
        tracing::warn!(name = %v.name, register = reg.noun, "refused: recording a register entry");
        return Err(AppError::Forbidden);
    }
    Ok(item)
}

/// The record `id` of the viewer's controller as it stands now, as form values (each as a CSV
/// cell: instants in RFC 3339, lists separated by `;`).
async fn current(
    state: &AppState,
    v: &Viewer,
    reg: &Register,
    id: &str,
) -> Result<Option<Map<String, String>>, AppError> {
    let store = custos_engine::store::Store::open(&state.store_dir)?;
    let (breaches, requests) = custos_engine::read::registers(&store).await?;
    let value = match reg.subject {
        SubjectKind::Breach => breaches
            .into_iter()
            .find(|b| b.breach_id == id && b.controller_id == v.controller)
            .map(|b| serde_json::to_value(b).unwrap_or_default()),
        _ => requests
            .into_iter()
            .find(|r| r.request_id == id && r.controller_id == v.controller)
            .map(|r| serde_json::to_value(r).unwrap_or_default()),
    };
    Ok(value.map(|v| {
        reg.fields
            .iter()
            .map(|(col, _, _)| {
                let text = match &v[*col] {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    Value::Array(items) => {
                        items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(";")
                    }
                    other => other.to_string(),
                };
                ((*col).to_owned(), text)
            })
            .collect()
    }))
}

/// The page of a record: its form (blank for a new one), its latest version, and its findings
/// judged as of now by the check's own rules.
async fn page_of(
    state: &AppState,
    current_session: &Current,
    reg: &Register,
    id: &str,
    values: Option<Map<String, String>>,
    problem: Option<&str>,
) -> Result<Page, AppError> {
    let v = &current_session.session.viewer;
    let item = may_record(state, v, reg)?;
    let stored = if id.is_empty() { None } else { current(state, v, reg, id).await? };
    if !id.is_empty() && stored.is_none() && values.is_none() {
        return Err(AppError::NotFound(format!("no {} `{id}` of your controller", reg.noun)));
    }
    let store = custos_engine::store::Store::open(&state.store_dir)?;
    let saved = state.keeping(reg.table, &store, |keeper| Ok(keeper.latest(id).cloned()))?;
    let seen = saved.as_ref().map_or(0, |s| s.version);
    let values = values.or(stored.clone()).unwrap_or_default();
    let mut sections = Vec::new();
    if let Some(p) = problem {
        sections.push(Section::Note { text: format!("Not saved: {p}") });
    }
    let mut findings = Vec::new();
    if stored.is_some() {
        let now = crate::now_micros();
        let engine = state.engine()?;
        findings = engine
            .register_deadlines(now)
            .await?
            .into_iter()
            .filter(|f| f.subject_kind == reg.subject && f.subject_id == id)
            .collect::<Vec<_>>();
        let zone = v.zone();
        let version = saved.as_ref().map_or_else(
            || "as imported".to_owned(),
            |s| {
                format!(
                    "version {} saved by {} at {}",
                    s.version,
                    s.by,
                    custos_engine::finding::format_micros(s.at)
                )
            },
        );
        let mut figures = vec![Figure { label: "Record".into(), value: version, link: None }];
        if reg.subject == SubjectKind::Breach {
            // The 72-hour clock is the notification rule's own finding, judged now.
            let clock = findings.iter().find(|f| f.rule == "BRE-NOTIFY").map_or_else(
                || "no finding: notified in time, or no notification required".to_owned(),
                |f| format!("{} (due {})", f.status, f.due_at.map(|d| d.to_string()).unwrap_or_default()),
            );
            figures.push(Figure {
                label: "72-hour clock (BRE-NOTIFY, as of now)".into(),
                value: clock,
                link: None,
            });
        }
        sections.push(Section::Figures { heading: format!("The {}", reg.noun), figures });
        sections.push(Section::Table(Table::new(
            "Its findings as of now",
            &["rule", "status", "due", "severity", "article"],
            findings
                .iter()
                .map(|f| {
                    vec![
                        Cell::text(f.rule.clone()).link(format!("/policies/{}", f.rule)),
                        Cell::text(f.status.as_str()),
                        Cell::time(&f.due_at.map(|d| d.to_string()).unwrap_or_default(), zone),
                        Cell::text(f.severity.as_str()),
                        Cell::text(f.legal_ref.clone()),
                    ]
                })
                .collect(),
        )));
    }
    let mut inputs = vec![Input::new("seen", "", "hidden", seen.to_string())];
    for (i, (col, label, choices)) in reg.fields.iter().enumerate() {
        let value = values.get(*col).cloned().unwrap_or_default();
        if i == 0 && stored.is_some() {
            // Completing a record: its key stays.
            inputs.push(Input::new(col, "", "hidden", value));
        } else if choices.is_empty() {
            inputs.push(Input::new(col, label, "text", value));
        } else {
            let mut options = vec![(String::new(), "—".to_owned())];
            options.extend(choices.iter().map(|c| ((*c).to_owned(), c.replace('_', " "))));
            inputs.push(Input::select(col, label, &value, options));
        }
    }
    sections.push(Section::Form {
        heading: if stored.is_some() {
            format!("Complete the {}", reg.noun)
        } else {
            format!("Record a {}", reg.noun)
        },
        action: format!("{}/record", reg.list),
        submit: "Save".into(),
        inputs,
        csrf: current_session.session.csrf.clone(),
    });
    Ok(Page {
        trail: if stored.is_some() {
            Shown::item(reg.noun, id, &item.member_state, &item.controller)
        } else {
            None
        },
        title: if id.is_empty() { format!("Record a {}", reg.noun) } else { format!("{} {id}", reg.noun) },
        intro: format!(
            "Your controller's register, kept in Custos: each save is a new version with its author, checked as an import checks a row; the {}'s findings are the check's own rules, judged as of now.",
            reg.noun
        ),
        sections,
        json: json!({"id": id, "values": values, "version": seen, "findings": findings, "csrf": current_session.session.csrf}),
    })
}

async fn form(
    reg: &'static Register,
    State(state): Shared,
    Extension(current): Extension<Current>,
    uri: OriginalUri,
    Query(params): Params,
) -> Response {
    let page = page_of(&state, &current, reg, q(&params, "id"), None, None).await;
    respond(&uri, &current, page.map(Arc::new))
}

/// Saves the record `values` (from version `seen`) as the viewer, for its controller.
async fn save(
    state: &Arc<AppState>,
    v: &Viewer,
    reg: &'static Register,
    mut values: Map<String, String>,
) -> Result<custos_engine::edits::Saved, AppError> {
    may_record(state, v, reg)?;
    let seen: i64 = values
        .remove("seen")
        .unwrap_or_default()
        .trim()
        .parse()
        .map_err(|_| AppError::BadRequest("seen: expected the version you saw (0 for none)".into()))?;
    values.remove("csrf");
    values.insert("controller_id".into(), v.controller.clone());
    let (state2, by, role, mine) = (Arc::clone(state), v.name.clone(), v.role.clone(), v.controller.clone());
    let saved = tokio::task::spawn_blocking(move || {
        let store = custos_engine::store::Store::open(&state2.store_dir)?;
        let now = custos_engine::finding::Instant(crate::now_micros());
        state2.keeping(reg.table, &store, |keeper| {
            // Another controller's record answers as one that does not exist.
            let key = values.get(reg.table.key[0]).map(|k| k.trim().to_owned()).unwrap_or_default();
            if keeper.owner(&key).is_some_and(|c| c != mine) {
                return Ok(Err(AppError::NotFound(format!("no {} `{key}` of your controller", reg.noun))));
            }
            Ok(Ok(keeper.save(&store, &values, seen, &by, &role, now)?))
        })
    })
    .await
    .map_err(|e| AppError::Internal(format!("a register entry could not be written: {e}")))?
    .map_err(AppError::from)??;
    tracing::info!(name = %v.name, register = reg.noun, key = %saved.key, version = saved.version, "recorded");
    // The lists show the register as saved once the registers are read again, off this answer
    // (the record's own page judges it as of now at once). A burst of saves is read once.
    state.registers_saved.store(crate::now_micros(), std::sync::atomic::Ordering::SeqCst);
    if !state.registers_stale.swap(true, std::sync::atomic::Ordering::SeqCst) {
        let state = Arc::clone(state);
        tokio::spawn(async move {
            let first = std::time::Instant::now();
            loop {
                tokio::time::sleep(REGISTERS_SETTLE).await;
                let last = state.registers_saved.load(std::sync::atomic::Ordering::SeqCst);
                let quiet = crate::now_micros() - last >= REGISTERS_SETTLE.as_micros() as i64;
                if quiet || first.elapsed() >= REGISTERS_MAX_WAIT {
                    break;
                }
            }
            state.registers_stale.store(false, std::sync::atomic::Ordering::SeqCst);
            if let Err(e) = state.refresh().await {
                tracing::error!("the data could not be loaded again after a register entry: {e}");
            }
        });
    }
    Ok(saved)
}

async fn save_form(
    reg: &'static Register,
    State(state): Shared,
    Extension(current): Extension<Current>,
    headers: HeaderMap,
    Form(values): Form<Map<String, String>>,
) -> Response {
    let v = current.session.viewer.clone();
    if !csrf_ok(&current, &values, &headers) {
        tracing::warn!(name = %v.name, "refused: a register entry without a valid CSRF token");
        return AppError::Forbidden.into_response();
    }
    let id = values.get(reg.table.key[0]).cloned().unwrap_or_default();
    match save(&state, &v, reg, values.clone()).await {
        Ok(saved) => {
            Redirect::to(&link_with(&format!("{}/record", reg.list), &[("id", &saved.key)])).into_response()
        }
        Err(e @ (AppError::Conflict(_) | AppError::BadRequest(_))) => {
            let (status, m) = match e {
                AppError::Conflict(m) => (StatusCode::CONFLICT, m),
                AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
                _ => (StatusCode::BAD_REQUEST, String::new()),
            };
            let uri = OriginalUri(format!("{}/record", reg.list).parse().unwrap_or_default());
            let page = page_of(&state, &current, reg, &id, Some(values), Some(&m)).await;
            let mut r = respond(&uri, &current, page.map(Arc::new));
            if r.status().is_success() {
                *r.status_mut() = status;
            }
            r
        }
        Err(e) => e.into_response(),
    }
}

async fn save_json(
    reg: &'static Register,
    State(state): Shared,
    Extension(current): Extension<Current>,
    headers: HeaderMap,
    JsonBody(values): JsonBody<Map<String, String>>,
) -> Response {
    let v = current.session.viewer.clone();
    if !csrf_ok(&current, &values, &headers) {
        tracing::warn!(name = %v.name, "refused: a register entry without a valid CSRF token");
        return AppError::Forbidden.into_response();
    }
    match save(&state, &v, reg, values).await {
        Ok(saved) => Json(json!({"key": saved.key, "version": saved.version, "by": saved.by, "at": custos_engine::finding::format_micros(saved.at)})).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Whether the body's `csrf`, or the `X-CSRF-Token` header, is the session's token.
fn csrf_ok(current: &Current, values: &Map<String, String>, headers: &HeaderMap) -> bool {
    let header = headers.get("x-csrf-token").and_then(|h| h.to_str().ok()).unwrap_or("");
    let token = values.get("csrf").map_or(header, String::as_str);
    session::same(&current.session.csrf, token)
}
