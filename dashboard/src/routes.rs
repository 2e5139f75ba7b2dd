//! The routes: login and logout, health, the pages and their `/api/` twins.
//!
//! Every page handler works the same way: it asks the [`Guard`](crate::authz::Guard) about the
//! page's statistics and about each record it would list, keeps what is permitted, and
//! answers HTML or JSON by the path. Counts shown to a role that may see statistics only
//! after disclosure control go through [`custos_engine::disclosure`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Extension, Form, OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use axum::routing::{get, post};
use custos_engine::disclosure::{self, Cell as Dc, Counts};
use custos_engine::finding::Finding;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authz::{Item, Viewer};
use crate::data::{Row, text};
use crate::error::AppError;
use crate::page::{Cell, Field, Figure, Page, Section, Table};
use crate::session;
use crate::{AppState, Current};

type Shared = State<Arc<AppState>>;
type Params = Query<BTreeMap<String, String>>;

/// Routes that answer without a session.
pub fn public() -> Router<Arc<AppState>> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/static/style.css",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                        (header::CACHE_CONTROL, "max-age=3600"),
                    ],
                    include_str!("../static/style.css"),
                )
            }),
        )
}

/// The pages, their JSON twins, the API description and logout: all need a session.
pub fn pages() -> Router<Arc<AppState>> {
    let mut r = Router::new()
        .route("/logout", post(logout))
        .route("/api/openapi.json", get(openapi))
        .route("/findings/{event}", get(finding))
        .route("/api/findings/{event}", get(finding))
        .route("/policies/{id}", get(policy))
        .route("/api/policies/{id}", get(policy))
        .route("/reports", get(reports).post(produce_report))
        .route("/api/reports", get(reports))
        .route("/reports/{file}", get(download));
    for (path, handler) in PAGES {
        r = r.route(path, get(*handler));
        let api = if *path == "/" { "/api/overview".to_owned() } else { format!("/api{path}") };
        r = r.route(&api, get(*handler));
    }
    r
}

type Handler = fn(
    Shared,
    Extension<Current>,
    OriginalUri,
    Params,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

macro_rules! page {
    ($f:ident) => {
        (|s, c, u, q| Box::pin(async move { $f(s, c, u, q).await })) as Handler
    };
}

/// A page made by `build` from the viewer and the query, kept by [`cached`] and answered as
/// HTML or JSON.
macro_rules! built {
    ($build:ident) => {
        (|State(state): Shared,
          Extension(current): Extension<Current>,
          uri: OriginalUri,
          Query(params): Params| {
            Box::pin(async move {
                let v = &current.session.viewer;
                if let Some(page) = kept(&state, v, &uri) {
                    return respond(&uri, &current, Ok(page));
                }
                // A role that sees counts only after disclosure control sees the published
                // grids (`crate::protected`), made once per data generation.
                let (generation, grids) = if stats(&state, v) == Stats::Protected {
                    match state.grids().await {
                        Ok((generation, grids)) => (generation, Some(grids)),
                        Err(e) => return respond(&uri, &current, Err(e.into())),
                    }
                } else {
                    (state.generation.load(std::sync::atomic::Ordering::SeqCst), None)
                };
                let page =
                    cached(&state, v, &uri, generation, || $build(&state, v, &params, grids.as_deref()));
                respond(&uri, &current, page)
            })
        }) as Handler
    };
}

const PAGES: &[(&str, Handler)] = &[
    ("/", built!(build_overview)),
    ("/findings", built!(build_findings)),
    ("/deadlines", built!(build_deadlines)),
    ("/breaches", built!(build_breaches)),
    ("/requests", built!(build_requests)),
    ("/response-times", built!(build_response_times)),
    ("/policies", page!(policies)),
];

// ---------------------------------------------------------------------------------------
// Login and logout.

async fn login_form(State(state): Shared) -> Response {
    login_page(&state, "", StatusCode::OK)
}

fn login_page(state: &AppState, message: &str, status: StatusCode) -> Response {
    let token = session::token();
    let cookie = format!(
        "{}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=600{}",
        session::LOGIN_COOKIE,
        if state.secure_cookies { "; Secure" } else { "" }
    );
    (status, [(header::SET_COOKIE, cookie)], Html(crate::page::login(&token, message))).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
    csrf: String,
}

async fn login(
    State(state): Shared,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let cookies = headers.get(header::COOKIE).and_then(|h| h.to_str().ok()).unwrap_or("");
    let expected = session::cookie(cookies, session::LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !session::same(expected, &form.csrf) {
        tracing::warn!(client = %client.ip(), "refused: login without a valid CSRF token");
        return login_page(&state, "The form expired: please log in again.", StatusCode::FORBIDDEN);
    }
    // The accounts as they are now: an operator's unlock counts before the limit is asked.
    let accounts = state.accounts.now(&state.sessions);
    let key = session::limit_key(&form.name, client.ip());
    if let Err(secs) = state.sessions.attempt(&key) {
        tracing::warn!(client = %client.ip(), name = %form.name, "refused: too many failed logins");
        return AppError::TooMany(secs).into_response();
    }
    // argon2id takes tens of milliseconds of a core: off the async workers, one at a time,
    // at most one start per `LOGIN_SPACING`; past `LOGIN_QUEUE` waiting, refused at once.
    use std::sync::atomic::Ordering;
    if state.logins_waiting.fetch_add(1, Ordering::SeqCst) >= crate::LOGIN_QUEUE {
        state.logins_waiting.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!(client = %client.ip(), "refused: too many logins waiting");
        return AppError::Busy.into_response();
    }
    let permit = state.hashing.acquire().await;
    state.logins_waiting.fetch_sub(1, Ordering::SeqCst);
    let account = match permit {
        Ok(_permit) => {
            let started = std::time::Instant::now();
            let (name, password) = (form.name.clone(), form.password);
            let found = tokio::task::spawn_blocking(move || accounts.verify(&name, &password).cloned())
                .await
                .ok()
                .flatten();
            if let Some(rest) = crate::LOGIN_SPACING.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
            found
        }
        Err(_) => None,
    };
    let Some(account) = account else {
        state.sessions.failed(&key);
        tracing::warn!(client = %client.ip(), name = %form.name, "refused: wrong name or password");
        return login_page(&state, "Wrong account name or password.", StatusCode::UNAUTHORIZED);
    };
    state.sessions.succeeded(&key);
    // A new session id at every login: one planted before it is worthless.
    let id = state.sessions.start(Viewer::of(&account), account.stamp());
    tracing::info!(name = %account.name, role = %account.role, "logged in");
    let cookie = format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Strict{}",
        session::COOKIE,
        if state.secure_cookies { "; Secure" } else { "" }
    );
    let clear = format!("{}=; Path=/login; Max-Age=0", session::LOGIN_COOKIE);
    let mut r = Redirect::to("/").into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, cookie.parse().unwrap_or_else(|_| header::HeaderValue::from_static("")));
    r.headers_mut()
        .append(header::SET_COOKIE, clear.parse().unwrap_or_else(|_| header::HeaderValue::from_static("")));
    r
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): Shared,
    Extension(current): Extension<Current>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session::same(&current.session.csrf, &form.csrf) {
        tracing::warn!(name = %current.session.viewer.name, "refused: logout without a valid CSRF token");
        return AppError::Forbidden.into_response();
    }
    state.sessions.end(&current.id);
    let clear = format!("{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict", session::COOKIE);
    ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}

// ---------------------------------------------------------------------------------------
// How pages answer.

/// A page built once per viewer and address while the data stay the same: every viewer of
/// a role and scope sees the same page for the same query, so the second request is answered
/// from memory.
fn cached(
    state: &AppState,
    v: &Viewer,
    uri: &OriginalUri,
    generation: u64,
    build: impl FnOnce() -> Result<Page, AppError>,
) -> Result<Arc<Page>, AppError> {
    // The generation is read by the caller before the page is built from the data: a page
    // is never kept under a key newer than its data.
    let key = page_key(v, uri, generation);
    if let Some(p) = state.pages.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(p);
    }
    let page = Arc::new(build()?);
    if let Ok(mut c) = state.pages.lock() {
        if c.len() >= crate::PAGE_CACHE {
            c.clear();
        }
        c.insert(key, Arc::clone(&page));
    }
    Ok(page)
}

/// What a built page is kept under: the data's generation, the viewer's role and scope, and
/// the address (the HTML page and its API twin share one entry).
fn page_key(v: &Viewer, uri: &OriginalUri, generation: u64) -> crate::PageKey {
    let path = uri.path().strip_prefix("/api").unwrap_or(uri.path());
    let path = if path == "/overview" { "/" } else { path };
    (
        generation,
        v.role.clone(),
        v.member_state.clone(),
        v.controller.clone(),
        format!("{path}?{}", uri.query().unwrap_or("")),
    )
}

/// The page kept for `v` and `uri` from the data now shown, if one was built.
fn kept(state: &AppState, v: &Viewer, uri: &OriginalUri) -> Option<Arc<Page>> {
    let key = page_key(v, uri, state.generation.load(std::sync::atomic::Ordering::SeqCst));
    state.pages.lock().ok().and_then(|c| c.get(&key).cloned())
}

fn respond(uri: &OriginalUri, current: &Current, page: Result<Arc<Page>, AppError>) -> Response {
    let path = uri.path();
    let page = match page {
        Ok(p) => p,
        Err(e) => {
            if matches!(e, AppError::Forbidden) {
                tracing::warn!(name = %current.session.viewer.name, role = %current.session.viewer.role, %path, "refused");
            }
            return e.into_response();
        }
    };
    if path.starts_with("/api/") {
        Json(&page.json).into_response()
    } else {
        let v = &current.session.viewer;
        Html(crate::page::html(&page, path, &v.name, &v.role, &current.session.csrf)).into_response()
    }
}

/// How a viewer may see the counts of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stats {
    /// Every count, as is.
    All,
    /// Every count, after disclosure control.
    Protected,
    /// Counts over the records of actors the viewer may see statistics of (a DPO's own).
    Scoped,
}

fn stats(state: &AppState, v: &Viewer) -> Stats {
    if state.guard.allows(v, &Item::statistics()) {
        Stats::All
    } else if state.guard.allows(v, &Item::statistics().protected()) {
        Stats::Protected
    } else {
        Stats::Scoped
    }
}

/// Whether `v` may count a record of actor `controller` of `ms`.
fn countable(state: &AppState, v: &Viewer, mode: Stats, ms: &str, controller: &str) -> bool {
    mode != Stats::Scoped || state.guard.allows(v, &Item::stat(ms, controller))
}

/// Whether `v` may see the record of actor `controller` of `ms` in detail.
fn visible(state: &AppState, v: &Viewer, ms: &str, controller: &str, personal: bool) -> bool {
    state.guard.allows(v, &Item::detail(ms, controller, personal))
}

/// The start of the month of a `from` filter (a date or an instant, compared as text with
/// RFC 3339 instants): `2024-03-17` → `2024-03-01`. Empty stays empty.
fn month_floor(from: &str) -> String {
    match from.get(..7) {
        Some(month) if from.len() > 7 => format!("{month}-01"),
        _ => from.to_owned(),
    }
}

/// The start of the month after the one of a `to` filter, unless `to` is a month's start:
/// `2024-03-17` → `2024-04-01`, `2024-03-01` → `2024-03-01`.
fn month_ceil(to: &str) -> String {
    let floor = month_floor(to);
    if floor == to || floor.len() != 10 || to.trim_end_matches(['0', ':', 'T', 'Z']) == &floor[..10] {
        return floor;
    }
    let (year, month) = (floor[..4].parse::<i32>().unwrap_or(0), floor[5..7].parse::<u32>().unwrap_or(1));
    let (year, month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    format!("{year:04}-{month:02}-01")
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

/// A count, protected when it must be: a single published figure is a one-cell table.
fn figure_count(n: u64, mode: Stats, k: u64) -> String {
    if mode == Stats::Protected {
        disclosure::protect(
            &Counts {
                rows: vec![String::new()],
                cols: vec![String::new()],
                cells: vec![vec![n]],
                margins: false,
            },
            k,
        )
        .cells[0][0]
            .to_string()
    } else {
        n.to_string()
    }
}

/// A rows × columns count table with totals, protected for `Stats::Protected`, as a page
/// table (cells linking to `link(row, col)`) and as JSON.
fn count_table(
    caption: &str,
    corner: &str,
    counts: &BTreeMap<(String, String), u64>,
    mode: Stats,
    k: u64,
    link: &dyn Fn(&str, &str) -> String,
) -> (Table, Value) {
    let p = custos_reports::grid::pivot(counts, if mode == Stats::Protected { k } else { 1 });
    let rule = if mode == Stats::Protected {
        disclosure::rule_text(k)
    } else {
        "none: the viewer may see detail".into()
    };
    (shown_table(caption, corner, &p, link), json!({"disclosure_control": rule, "table": p}))
}

/// A protected table as a page shows it: its cells linking to `link(row, col)`, a total
/// column and a total row where the table has them.
pub(crate) fn shown_table(
    caption: &str,
    corner: &str,
    p: &disclosure::Protected,
    link: &dyn Fn(&str, &str) -> String,
) -> Table {
    let cell = |c: &Dc, href: String| match c {
        Dc::Count(n) => Cell::count(*n).link(href),
        Dc::Confidential => Cell::text(":c"),
    };
    let mut out = Vec::new();
    for (i, r) in p.rows.iter().enumerate() {
        let mut row = vec![Cell::text(r.clone())];
        for (j, c) in p.cols.iter().enumerate() {
            row.push(cell(&p.cells[i][j], link(r, c)));
        }
        if let Some(t) = &p.row_totals {
            row.push(cell(&t[i], link(r, "")));
        }
        out.push(row);
    }
    if let Some(ct) = &p.col_totals {
        let mut row = vec![Cell::text("total")];
        for (j, c) in p.cols.iter().enumerate() {
            row.push(cell(&ct[j], link("", c)));
        }
        if p.row_totals.is_some() {
            row.push(p.total.as_ref().map_or_else(|| Cell::text(""), |t| cell(t, link("", ""))));
        }
        out.push(row);
    }
    let mut columns: Vec<&str> = vec![corner];
    columns.extend(p.cols.iter().map(String::as_str));
    if p.row_totals.is_some() {
        columns.push("total");
    }
    Table::new(caption, &columns, out)
}

pub(crate) fn link_with(path: &str, pairs: &[(&str, &str)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", crate::page::encode(v)))
        .collect();
    if q.is_empty() { path.to_owned() } else { format!("{path}?{}", q.join("&")) }
}

fn q<'a>(params: &'a BTreeMap<String, String>, k: &str) -> &'a str {
    params.get(k).map(String::as_str).unwrap_or("")
}

// ---------------------------------------------------------------------------------------
// Overview.

fn build_overview(
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
    let overdue = deadlines.iter().filter(|f| f.status == "overdue").count() as u64;
    let due_soon = deadlines.iter().filter(|f| f.status == "due_soon").count() as u64;
    let breaches = data
        .breaches
        .iter()
        .filter(|b| countable(state, v, mode, &text(b, "member_state"), &text(b, "controller_id")));
    let open_breaches = breaches.filter(|b| text(b, "notified_at").is_empty()).count() as u64;
    let open_requests = data
        .requests
        .iter()
        .filter(|r| countable(state, v, mode, &text(r, "member_state"), &text(r, "controller_id")))
        .filter(|r| text(r, "responded_at").is_empty() && text(r, "completed_at").is_empty())
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
    });
    Ok(overview_page(&data, sections, json))
}

/// The indicators' traffic lights for the latest year, as a section and as JSON.
fn lights(data: &crate::data::Data, sections: &mut Vec<Section>) -> Value {
    let Some(year) = data.latest_year() else { return Value::Null };
    let rows: Vec<_> =
        data.indicators[&year].iter().filter(|r| r.level == "overall" || r.level == "member_state").collect();
    sections.push(Section::Table(indicator_table(
        &format!("Scoreboard indicators, {year}"),
        rows.iter().copied(),
    )));
    json!({"year": year, "readings": data.readings, "indicators": rows})
}

fn overview_page(data: &crate::data::Data, sections: Vec<Section>, json: Value) -> Page {
    Page {
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
fn protected_overview(data: &crate::data::Data, grids: &custos_reports::grid::Grids, events: String) -> Page {
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

fn indicator_table<'a>(
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

// ---------------------------------------------------------------------------------------
// Need-to-know findings.

fn build_findings(
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
    let (month_from, month_to) = (month_floor(from), month_ceil(to));
    let selected = |f: &&Finding, exact: bool| {
        let (from, to) = if exact { (from, to) } else { (month_from.as_str(), month_to.as_str()) };
        (rule.is_empty() || f.rule == rule)
            && (ms.is_empty() || opt(&f.member_state) == ms)
            && (authority.is_empty() || opt(&f.authority_id) == authority)
            && (user.is_empty() || opt(&f.user_id) == user)
            && (from.is_empty() || opt(&f.ts) >= from)
            && (to.is_empty() || opt(&f.ts) < to)
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
                Cell::time(opt(&f.ts), zone),
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
    Ok(Page { title: "Need-to-know findings".into(), intro: FINDINGS_INTRO.into(), sections, json })
}

const FINDINGS_INTRO: &str = "Every granted access that broke a need-to-know rule in the latest audit. A count leads to its findings, a finding to its event's facts and the policy that decided it.";

async fn finding(
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
        let store = custos_engine::store::Store::open(&state.store_dir)?;
        let judge = custos_engine::decision::Judge::new(Arc::new(custos_policies::Policies::need_to_know().map_err(crate::Error::from)?))?;
        let at = first.ts.as_deref().and_then(custos_engine::import::parse_timestamp);
        let e = custos_engine::audit::explain(&store, &judge, &event, at).await?;
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
            title: format!("Event {event}"),
            intro: "The event's facts as they stood at its instant, and the text of every policy that decided it.".into(),
            sections,
            json: json!({"event_id": event, "findings": found, "facts": e.facts, "request": e.request, "policies": e.verdict.broken}),
        })
    }
    .await;
    respond(&uri, &current, page.map(Arc::new))
}

// ---------------------------------------------------------------------------------------
// Deadlines.

fn build_deadlines(
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
            && (status.is_empty() || f.status == status)
            && (actor.is_empty() || opt(&f.authority_id) == actor)
            && (severity.is_empty() || f.severity == severity)
    };
    let personal = |f: &Finding| f.subject_kind == "user" || f.subject_kind == "request";
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
        *counts.entry((f.rule.clone(), f.status.clone())).or_default() += 1;
        *by_severity.entry((f.severity.clone(), f.status.clone())).or_default() += 1;
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
            let due = f.due_at.as_deref().and_then(custos_engine::import::parse_timestamp);
            let age = due.map(|d| (now - d) as f64 / 86_400_000_000.0);
            vec![
                Cell::text(f.rule.clone()).link(format!("/policies/{}", f.rule)),
                Cell::text(f.status.clone()).class(if f.status == "overdue" { "overdue" } else { "" }),
                Cell::text(f.severity.clone()),
                Cell::text(match &f.detail {
                    Some(d) => format!("{} {} ({d})", f.subject_kind, f.subject_id),
                    None => format!("{} {}", f.subject_kind, f.subject_id),
                }),
                f.due_at.as_deref().map_or_else(|| Cell::text("-"), |d| Cell::time(d, zone)),
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

fn deadlines_intro(now: i64) -> String {
    format!(
        "Retention, blocking, deletion, requests, breaches, response times and users' access rights as of {}: overdue, late, due within 30 days, or unmet. A violation breaks a period or duty the law sets; a warning, a Custos default or a controller's own commitment.",
        custos_engine::finding::format_micros(now)
    )
}

// ---------------------------------------------------------------------------------------
// Breach register and data-subject requests.

/// The rows of a table about controllers (breaches, requests) that `v` may see in detail, and
/// those it may count; refused when it may do neither.
fn controller_rows<'a>(
    state: &AppState,
    v: &Viewer,
    mode: Stats,
    rows: &'a [Row],
    personal: bool,
) -> Result<(Vec<&'a Row>, Vec<&'a Row>), AppError> {
    let scope = |r: &Row| (text(r, "member_state"), text(r, "controller_id"));
    let shown: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            let (ms, ctl) = scope(r);
            visible(state, v, &ms, &ctl, personal)
        })
        .collect();
    let counted: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            let (ms, ctl) = scope(r);
            countable(state, v, mode, &ms, &ctl)
        })
        .collect();
    if shown.is_empty() && mode == Stats::Scoped && !state.guard.allows(v, &Item::stat("", &v.controller)) {
        return Err(AppError::Forbidden);
    }
    Ok((shown, counted))
}

/// A page's count table, then its list unless the viewer sees counts only.
fn counts_then_list(counts: Table, list: Table, nothing_shown: bool, mode: Stats) -> Vec<Section> {
    let mut sections = vec![Section::Table(counts)];
    if !nothing_shown || mode != Stats::Protected {
        sections.push(Section::Table(list));
    }
    sections
}

fn hours(micros: i64) -> f64 {
    micros as f64 / 3_600_000_000.0
}

const BREACHES_INTRO: &str = "Each personal data breach with its 72-hour clock (Regulation 2018/1725 Art. 34), the completeness of its notification and its communication to the data subjects (Art. 35).";
const REQUESTS_INTRO: &str = "Requests of data subjects (Regulation 2018/1725 Arts. 14, 17-24; IMI Art. 19): open ones with the days left, extensions, refusals.";

fn build_breaches(
    state: &AppState,
    v: &Viewer,
    params: &BTreeMap<String, String>,
    grids: Option<&custos_reports::grid::Grids>,
) -> Result<Page, AppError> {
    let data = state.data();
    let mode = stats(state, v);
    if let Some(grids) = grids {
        let (sections, counts) = crate::protected::register(
            &grids.breaches,
            grids.k,
            params,
            "Breaches by risk and notification",
            "/breaches",
        )?;
        return Ok(Page {
            title: "Breach register".into(),
            intro: BREACHES_INTRO.into(),
            sections,
            json: json!({"counts": counts, "breaches": []}),
        });
    }
    let (shown, counted) = controller_rows(state, v, mode, &data.breaches, false)?;
    let zone = v.zone();
    let now = data.as_of;
    let mut items = Vec::new();
    let rows = shown
        .iter()
        .map(|b| {
            let id = text(b, "breach_id");
            let aware = custos_engine::import::parse_timestamp(&text(b, "aware_at"));
            let notified = custos_engine::import::parse_timestamp(&text(b, "notified_at"));
            // The 72-hour clock (Regulation 1182/71: the hour of awareness is not counted).
            let due = data
                .deadlines
                .iter()
                .find(|f| f.rule == "BRE-NOTIFY" && f.subject_id == id)
                .and_then(|f| f.due_at.as_deref().and_then(custos_engine::import::parse_timestamp))
                .or_else(|| aware.map(|a| (a / 3_600_000_000 + 1) * 3_600_000_000 + 72 * 3_600_000_000));
            let risk = text(b, "risk");
            let clock = match (notified, due) {
                (Some(n), Some(d)) if n <= d => Cell::text(format!("notified in time ({:.0} h before the end)", hours(d - n))).class("green"),
                (Some(n), Some(d)) => Cell::text(format!("notified {:.0} h late", hours(n - d))).class("red"),
                (None, _) if risk == "unlikely" => Cell::text("no notification required (risk unlikely)"),
                (None, Some(d)) if now <= d => Cell::number(hours(d - now), format!("{:.0} h left", hours(d - now))).class("yellow"),
                (None, Some(d)) => Cell::number(-hours(now - d), format!("{:.0} h overdue", hours(now - d))).class("red"),
                _ => Cell::text("-"),
            };
            let mut missing: Vec<&str> = ["nature", "consequences", "measures"].into_iter().filter(|k| text(b, k).is_empty()).collect();
            if notified.is_some() {
                missing.extend(["approx_subjects", "approx_records"].into_iter().filter(|k| text(b, k).is_empty()));
            }
            let subjects = if !text(b, "subjects_notified_at").is_empty() {
                format!("communicated {}", text(b, "subjects_notified_at"))
            } else if risk != "high" {
                "not required (risk not high)".to_owned()
            } else if !text(b, "subject_exemption").is_empty() {
                format!("exempted: {}", text(b, "subject_exemption"))
            } else {
                "not communicated".to_owned()
            };
            let completeness = if missing.is_empty() { "complete".to_owned() } else { format!("missing: {}", missing.join(", ")) };
            items.push(json!({"breach": b, "notify_due": due.map(custos_engine::finding::format_micros), "clock": clock.text, "completeness": completeness, "data_subjects": subjects}));
            vec![
                Cell::text(id),
                Cell::text(text(b, "controller_id")),
                Cell::text(text(b, "member_state")),
                Cell::time(&text(b, "aware_at"), zone),
                Cell::text(risk.clone()),
                clock,
                Cell::text(completeness).class(if missing.is_empty() { "" } else { "red" }),
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
        let state_of = if text(b, "notified_at").is_empty() { "not notified" } else { "notified" };
        *counts.entry((text(b, "risk"), state_of.to_owned())).or_default() += 1;
    }
    let (table, counts_json) =
        count_table("Breaches by risk and notification", "risk", &counts, mode, state.k, &|_, _| {
            "/breaches".into()
        });
    let sections = counts_then_list(table, list, shown.is_empty(), mode);
    Ok(Page {
        title: "Breach register".into(),
        intro: BREACHES_INTRO.into(),
        sections,
        json: json!({"counts": counts_json, "breaches": items}),
    })
}

fn build_requests(
    state: &AppState,
    v: &Viewer,
    params: &BTreeMap<String, String>,
    grids: Option<&custos_reports::grid::Grids>,
) -> Result<Page, AppError> {
    let data = state.data();
    let mode = stats(state, v);
    if let Some(grids) = grids {
        let (sections, counts) = crate::protected::register(
            &grids.requests,
            grids.k,
            params,
            "Requests by right and outcome",
            "/requests",
        )?;
        return Ok(Page {
            title: "Data-subject requests".into(),
            intro: REQUESTS_INTRO.into(),
            sections,
            json: json!({"counts": counts, "requests": []}),
        });
    }
    let (shown, counted) = controller_rows(state, v, mode, &data.requests, true)?;
    let zone = v.zone();
    let now = data.as_of;
    let mut items = Vec::new();
    let rows = shown
        .iter()
        .filter(|r| {
            let open = text(r, "responded_at").is_empty() && text(r, "completed_at").is_empty();
            open || text(r, "outcome") == "refused" || !text(r, "extension_notified_at").is_empty()
        })
        .map(|r| {
            let id = text(r, "request_id");
            let due = data
                .deadlines
                .iter()
                .find(|f| f.rule == "DSR-RESPOND" && f.subject_id == id)
                .and_then(|f| f.due_at.clone());
            let open = text(r, "responded_at").is_empty() && text(r, "completed_at").is_empty();
            let left = due
                .as_deref()
                .and_then(custos_engine::import::parse_timestamp)
                .map(|d| (d - now) as f64 / 86_400_000_000.0);
            items.push(json!({"request": r, "respond_due": due, "open": open}));
            vec![
                Cell::text(id),
                Cell::text(text(r, "controller_id")),
                Cell::text(text(r, "right")),
                Cell::time(&text(r, "received_at"), zone),
                match (open, left) {
                    (true, Some(l)) if l >= 0.0 => {
                        Cell::number(l, format!("{l:.0} days left")).class("yellow")
                    }
                    (true, Some(l)) => Cell::number(l, format!("{:.0} days overdue", -l)).class("red"),
                    (true, None) => Cell::text("open"),
                    (false, _) => Cell::text(format!("answered {}", text(r, "responded_at"))),
                },
                Cell::text(if text(r, "extension_notified_at").is_empty() {
                    "-".to_owned()
                } else {
                    format!("notified {}", text(r, "extension_notified_at"))
                }),
                Cell::text(match (text(r, "outcome").as_str(), text(r, "remedy_info_given").as_str()) {
                    ("refused", "true") => "refused, remedies given".to_owned(),
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
        let outcome = if text(r, "outcome").is_empty() { "open".to_owned() } else { text(r, "outcome") };
        *counts.entry((text(r, "right"), outcome)).or_default() += 1;
    }
    let (table, counts_json) =
        count_table("Requests by right and outcome", "right", &counts, mode, state.k, &|_, _| {
            "/requests".into()
        });
    let sections = counts_then_list(table, list, shown.is_empty(), mode);
    Ok(Page {
        title: "Data-subject requests".into(),
        intro: REQUESTS_INTRO.into(),
        sections,
        json: json!({"counts": counts_json, "requests": items}),
    })
}

// ---------------------------------------------------------------------------------------
// Response times.

fn build_response_times(
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

// ---------------------------------------------------------------------------------------
// Policy explorer.

async fn policies(
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

async fn policy(
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

// ---------------------------------------------------------------------------------------
// The API's description.

async fn openapi() -> Json<Value> {
    let mut paths = serde_json::Map::new();
    let described: &[(&str, &str)] = &[
        ("/api/overview", "Headline figures, findings per rule and the indicators' traffic lights"),
        (
            "/api/findings",
            "Need-to-know findings: counts per rule and member state, and the findings the viewer may see (filters: rule, member_state, authority, user, from, to; page). To a role that sees counts only after disclosure control: `counts.published`, one part of the published grid per Brussels calendar year the window touches (`year` also filters), each naming its grid, year and the rows and columns it keeps; actor filters are refused",
        ),
        (
            "/api/findings/{event}",
            "One event: its findings, facts, Cedar request and the policies that decided",
        ),
        (
            "/api/deadlines",
            "Deadline findings as of the data's load (filters: rule, status, severity, actor; page); to a role without detail, `counts.published`: the grid of findings about persons and the performance grid",
        ),
        (
            "/api/breaches",
            "The breach register with each breach's 72-hour clock; to a role without detail, the published grid of each year (filter: year)",
        ),
        (
            "/api/requests",
            "Data-subject requests: open, extended, refused; to a role without detail, the published grid of each year (filter: year)",
        ),
        (
            "/api/response-times",
            "Scoreboard indicators, trend, and the benchmarking of authorities and member states",
        ),
        ("/api/policies", "Every rule: text, article, test cases"),
        ("/api/policies/{id}", "One rule"),
        ("/api/reports", "The reports the viewer may produce and download"),
    ];
    for (path, summary) in described {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        paths.insert(
            (*path).to_owned(),
            json!({"get": {
                "summary": summary,
                "parameters": params,
                "security": [{"session": []}],
                "responses": {
                    "200": {"description": "the data the viewer may see", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "401": {"description": "no session: log in at /login"},
                    "403": {"description": "the viewer's role may not see this (decided by the Cedar view policies)"},
                }
            }}),
        );
    }
    Json(json!({
        "openapi": "3.1.0",
        "info": {"title": "Custos supervision API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "The JSON twin of every dashboard page. Every route needs a session cookie from /login; what a route returns is cut to what the viewer's role may see."},
        "components": {"securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": session::COOKIE}}},
        "paths": paths,
    }))
}

// ---------------------------------------------------------------------------------------
// Reports: produce them, list them, download them.

/// The item a report shows, for the view policies: the annual report is protected statistics;
/// the report to the EDPS is the Commission's, addressed to the EDPS (counts, and detail only
/// about Union controllers' breaches: IMI Art. 25(2)); a member state's pack shows that member
/// state's actors in detail.
fn report_item(state: &AppState, kind: &str, ms: &str) -> Option<Item> {
    match kind {
        "annual" => Some(Item::statistics().protected()),
        "edps" => Some(Item::edps_report(state.data().commission.as_deref().unwrap_or_default())),
        "member-state" if ms.len() == 2 => Some(Item::detail(ms, "", true)),
        _ => None,
    }
}

/// Whether `v` may produce a report of `kind`: the report to the EDPS by its own policy (the
/// Commission's, IMI Art. 25(2)); the others by whoever may see them.
fn may_produce(state: &AppState, v: &Viewer, kind: &str, item: &Item) -> bool {
    let action = if kind == "edps" { crate::authz::Action::Produce } else { crate::authz::Action::View };
    state.guard.allows_to(v, action, item)
}

/// The kind and member state of a report file's name (`imi-annual-report-2025.pdf`).
fn report_of(file: &str) -> Option<(&'static str, String)> {
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
fn recorded_reports(
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

const REPORT_KIND: &str = "report";
const REPORT_TABLE: &str = "reports";

async fn reports(
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
struct ProduceForm {
    csrf: String,
    kind: String,
    year: String,
    #[serde(default)]
    member_state: String,
}

async fn produce_report(
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
        let store = custos_engine::store::Store::open(&state.store_dir)?;
        let data = custos_reports::data::Data::load(&store, report::as_of(kind, year)?).await?;
        let req =
            report::Request { kind, year, member_state: (!ms.is_empty()).then(|| ms.clone()), k: state.k };
        let r = report::build(&store, &data, &req).await?;
        let stem = match kind {
            ReportKind::Annual => format!("imi-annual-report-{year}"),
            ReportKind::Edps => format!("imi-edps-report-{year}"),
            ReportKind::MemberState => format!("imi-supervision-{ms}-{year}"),
        };
        // Drawing the PDF and committing the files take a core for a while (and the store's
        // lock): off the async workers, one report at a time (the permit of password hashing,
        // the other such work). The report is recorded in the store like any record: the
        // dashboard serves only what it recorded, checked against the manifest.
        let _permit = state.hashing.acquire().await.map_err(|e| crate::Error::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let pdf = custos_reports::pdf::pdf(&r).map_err(crate::Error::Internal)?;
            let mut txn = store.begin(REPORT_KIND)?;
            txn.write_document(REPORT_TABLE, "html", report::html(&r).as_bytes(), 1)?;
            txn.write_document(REPORT_TABLE, "pdf", &pdf, 1)?;
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            txn.commit(&custos_engine::manifest::rfc3339(now as i64), vec![stem])?;
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

async fn download(
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
