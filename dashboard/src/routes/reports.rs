//! Reports: produce them, list them, download them, as records of the store.

use super::*;

/// Producing a report, and downloading one.
pub(super) fn routes(r: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    r.route("/reports", post(produce_report)).route("/reports/{file}", get(download))
}

/// The item a report shows, for the view policies: the annual report is protected statistics;
/// the report to the EDPS is the Commission's, addressed to the EDPS (counts, and detail only
/// about Union controllers' breaches: IMI Art. 25(2)); a member state's pack shows that member
/// state's actors in detail.
pub(super) fn report_item(state: &AppState, kind: &str, ms: &str) -> Option<Item> {
    match kind {
        "annual" => Some(Item::statistics().protected()),
        "edps" => Some(Item::edps_report(state.data().commission.as_deref().unwrap_or_default())),
        "member-state" if ms.len() == 2 => Some(Item::detail(ms, "", true)),
        _ => None,
    }
}

/// Whether `v` may produce a report of `kind`: the report to the EDPS by its own policy (the
/// Commission's, IMI Art. 25(2)); the others by whoever may see them.
pub(super) fn may_produce(state: &AppState, v: &Viewer, kind: &str, item: &Item) -> bool {
    let action = if kind == "edps" { crate::authz::Action::Produce } else { crate::authz::Action::View };
    state.guard.allows_to(v, action, item)
}

/// The kind and member state of a report file's name (`imi-annual-report-2025.pdf`).
pub(super) fn report_of(file: &str) -> Option<(&'static str, String)> {
    let stem = file.strip_suffix(".html").or_else(|| file.strip_suffix(".pdf"))?;
    if stem.starts_with("imi-annual-report-") {
        Some(("annual", String::new()))
    } else if stem.starts_with("imi-edps-report-") {
        Some(("edps", String::new()))
    } else {
        let rest = stem.strip_prefix("imi-supervision-")?;
        Some(("member-state", rest.split('-').next()?.to_owned()))
    }
}

/// The reports the store records, by file name (`imi-annual-report-2025.pdf`): each
/// production is a commit of kind `report` naming the report in its `sources`, with its HTML
/// and PDF as documents of the `reports` table; the newest production of a name counts.
pub(super) fn recorded_reports(
    store: &custos_engine::store::Store,
) -> BTreeMap<String, custos_engine::manifest::FileRecord> {
    let mut found = BTreeMap::new();
    for e in store.entries().iter().filter(|e| e.body.kind == REPORT_KIND) {
        let Some(stem) = e.body.sources.first() else { continue };
        for f in e.body.files.iter().filter(|f| f.table == REPORT_TABLE) {
            if let Some((_, ext)) = f.path.rsplit_once('.') {
                found.insert(format!("{stem}.{ext}"), f.clone());
            }
        }
    }
    found
}

pub(super) const REPORT_KIND: &str = "report";
pub(super) const REPORT_TABLE: &str = "reports";

pub(super) async fn reports(
    State(state): Shared,
    Extension(current): Extension<Current>,
    uri: OriginalUri,
    Query(params): Params,
) -> Response {
    let v = &current.session.viewer;
    // The kinds this viewer may produce.
    let kinds: Vec<(&str, &str)> =
        [("annual", "Annual IMI report (Art. 25(1))"), ("edps", "Report to the EDPS (Art. 25(2))")]
            .into_iter()
            .filter(|(k, _)| report_item(&state, k, "").is_some_and(|i| may_produce(&state, v, k, &i)))
            .collect();
    let own_pack =
        !v.member_state.is_empty() && state.guard.allows(v, &Item::detail(&v.member_state, "", true));
    let reads_edps = report_item(&state, "edps", "").is_some_and(|i| state.guard.allows(v, &i));
    if kinds.is_empty() && !own_pack && !reads_edps {
        return respond(&uri, &current, Err(AppError::Forbidden));
    }
    let files: Vec<String> = match custos_engine::store::Store::open(&state.store_dir) {
        Ok(store) => recorded_reports(&store).into_keys().collect(),
        Err(e) => return respond(&uri, &current, Err(e.into())),
    };
    // Reports this viewer produces and may not read (the Commission's role sends the report
    // to the EDPS, whose counts are exact): named, not linked.
    let (mut sent, mut readable) = (Vec::new(), Vec::new());
    for f in files {
        let Some(item) = report_of(&f).and_then(|(kind, ms)| Some((kind, report_item(&state, kind, &ms)?)))
        else {
            continue;
        };
        if state.guard.allows(v, &item.1) {
            readable.push(f);
        } else if may_produce(&state, v, item.0, &item.1) {
            sent.push(f);
        }
    }
    let files = readable;
    let mut fields = vec![
        Field { name: "year".into(), label: "Year".into(), value: q(&params, "year").into() },
        Field {
            name: "kind".into(),
            label: format!(
                "Kind ({})",
                kinds
                    .iter()
                    .map(|(k, _)| *k)
                    .chain(own_pack.then_some("member-state"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            value: String::new(),
        },
    ];
    if own_pack {
        fields.push(Field {
            name: "member_state".into(),
            label: "Member state".into(),
            value: v.member_state.clone(),
        });
    }
    let rows = files
        .iter()
        .map(|f| vec![Cell::text(f.clone()).link(format!("/reports/{}", crate::page::encode(f)))])
        .collect();
    let page = Page {
trail: None,
        title: "Reports".into(),
        intro: "Produce the reports of IMI Arts. 21 and 25 from the store, as HTML and PDF, and download them. The same store and year give the same files as `custos report`.".into(),
        // Only those who may produce a report see the form (the Commission's DPO reads the
        // report to the EDPS, and produces none).
        sections: (!kinds.is_empty() || own_pack)
            .then(|| Section::Produce { fields, csrf: current.session.csrf.clone() })
            .into_iter()
            .chain([Section::Table(Table::new("Reports you may download", &["file"], rows))])
            .chain((!sent.is_empty()).then(|| {
                Section::Table(Table::new(
                    "Reports you produced for their addressee, which your role may not read",
                    &["file"],
                    sent.iter().map(|f| vec![Cell::text(f.clone())]).collect(),
                ))
            }))
            .collect(),
        json: json!({"kinds": kinds.iter().map(|(k, _)| *k).collect::<Vec<_>>(), "member_state_pack": own_pack, "files": files, "sent": sent}),
    };
    respond(&uri, &current, Ok(Arc::new(page)))
}

#[derive(Deserialize)]
pub(super) struct ProduceForm {
    csrf: String,
    kind: String,
    year: String,
    #[serde(default)]
    member_state: String,
}

pub(super) async fn produce_report(
    State(state): Shared,
    Extension(current): Extension<Current>,
    Form(form): Form<ProduceForm>,
) -> Response {
    let v = current.session.viewer.clone();
    if !session::same(&current.session.csrf, &form.csrf) {
        tracing::warn!(name = %v.name, "refused: report without a valid CSRF token");
        return AppError::Forbidden.into_response();
    }
    let ms = if form.kind == "member-state" { form.member_state.trim().to_owned() } else { String::new() };
    let Some(item) = report_item(&state, &form.kind, &ms) else {
        return AppError::BadRequest(format!(
            "kind `{}`: expected annual, edps or member-state (with a member state)",
            form.kind
        ))
        .into_response();
    };
    if !may_produce(&state, &v, &form.kind, &item) {
        tracing::warn!(name = %v.name, kind = %form.kind, "refused: report");
        return AppError::Forbidden.into_response();
    }
    let Ok(year) = form.year.trim().parse::<i32>() else {
        return AppError::BadRequest(format!("year `{}`: expected a year such as 2025", form.year))
            .into_response();
    };
    use custos_reports::report::{self, ReportKind};
    let kind = match form.kind.as_str() {
        "annual" => ReportKind::Annual,
        "edps" => ReportKind::Edps,
        _ => ReportKind::MemberState,
    };
    let made = async {
        let engine = state.engine()?;
        let req =
            report::Request { kind, year, member_state: (!ms.is_empty()).then(|| ms.clone()), k: state.k };
        let r = report::produce(&engine, &req).await?;
        let stem = report::stem(&req);
        // Drawing the PDF and committing the files take a core for a while (and the store's
        // lock): off the async workers, one report at a time (the permit of password hashing,
        // the other such work). The report is recorded in the store like any record: the
        // dashboard serves only what it recorded, checked against the manifest.
        let _permit = state.hashing.acquire().await.map_err(|e| crate::Error::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let pdf = custos_reports::pdf::pdf(&r)?;
            let mut txn = engine.store().begin(REPORT_KIND)?;
            txn.write_document(REPORT_TABLE, "html", report::html(&r)?.as_bytes(), 1)?;
            txn.write_document(REPORT_TABLE, "pdf", &pdf, 1)?;
            txn.commit(&engine.clock().rfc3339(), vec![stem])?;
            Ok::<_, crate::Error>(())
        })
        .await
        .map_err(|e| crate::Error::Internal(format!("the report could not be written: {e}")))??;
        Ok::<_, crate::Error>(())
    }
    .await;
    match made {
        Ok(()) => Redirect::to("/reports").into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

pub(super) async fn download(
    State(state): Shared,
    Extension(current): Extension<Current>,
    Path(file): Path<String>,
) -> Response {
    let v = &current.session.viewer;
    // Only names Custos writes, and only reports the viewer may see.
    let Some((kind, ms)) = report_of(&file).filter(|_| !file.contains('/') && !file.contains("..")) else {
        return AppError::NotFound(file).into_response();
    };
    if !report_item(&state, kind, &ms).is_some_and(|i| state.guard.allows(v, &i)) {
        tracing::warn!(name = %v.name, %file, "refused: report download");
        return AppError::Forbidden.into_response();
    }
    let read = async {
        let store = custos_engine::store::Store::open(&state.store_dir)?;
        let Some(record) = recorded_reports(&store).remove(&file) else { return Ok(None) };
        tokio::task::spawn_blocking(move || {
            let path = store.checked(&[&record])?.remove(0);
            std::fs::read(&path).map(Some).map_err(|source| crate::Error::Io { path, source })
        })
        .await
        .map_err(|e| crate::Error::Internal(format!("reading a report: {e}")))?
    };
    match read.await {
        Err(e) => AppError::from(e).into_response(),
        Ok(Some(bytes)) => {
            let mime = if file.ends_with(".pdf") { "application/pdf" } else { "text/html; charset=utf-8" };
            let disposition = format!("attachment; filename=\"{file}\"");
            ([(header::CONTENT_TYPE, mime.to_owned()), (header::CONTENT_DISPOSITION, disposition)], bytes)
                .into_response()
        }
        Ok(None) => AppError::NotFound(file).into_response(),
    }
}
