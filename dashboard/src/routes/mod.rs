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

use crate::error::AppError;
use crate::page::{Cell, Field, Figure, Page, Section, Table};
use crate::session;
use crate::{AppState, Current};

type Shared = State<Arc<AppState>>;
type Params = Query<BTreeMap<String, String>>;

type Handler = fn(
    Shared,
    Extension<Current>,
    OriginalUri,
    Params,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

macro_rules! page {
    ($f:path) => {
        (|s, c, u, q| Box::pin(async move { $f(s, c, u, q).await })) as Handler
    };
}

/// A page made by `build` from the viewer and the query, kept by [`cached`] and answered as
/// HTML or JSON.
macro_rules! built {
    ($build:path) => {
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

mod deadlines;
mod findings;
mod login;
mod openapi;
mod overview;
mod policies;
mod precision;
mod record;
mod registers;
mod reports;
mod response_times;
pub(crate) mod review;
mod trail;

use self::overview::indicator_table;

/// A page of the dashboard, as the registry lists it: the one place that feeds the router,
/// the navigation, the OpenAPI document and the matrix test. A new page is a new file in
/// `routes/` and one line in [`PAGES`].
pub struct PageDef {
    /// Its address (`/findings`).
    pub path: &'static str,
    /// Its JSON twin's address (`/api/findings`).
    pub api: &'static str,
    /// What the twin answers, for the OpenAPI document.
    pub summary: &'static str,
    /// Further JSON routes of the page's resource (`/api/findings/{event}`) and what each
    /// answers: routed by the resource's own router, described in the OpenAPI document.
    pub more: &'static [(&'static str, &'static str)],
    handler: Handler,
    /// Adds the resource's further routes (other methods, sub-paths) to the router.
    extend: fn(Router<Arc<AppState>>) -> Router<Arc<AppState>>,
}

/// Every page, in the order of the navigation.
pub const PAGES: &[PageDef] = &[
    PageDef {
        path: "/",
        api: "/api/overview",
        summary: "Headline figures, findings per rule and the indicators' traffic lights",
        more: &[],
        handler: built!(overview::build_overview),
        extend: std::convert::identity,
    },
    PageDef {
        path: "/findings",
        api: "/api/findings",
        summary: "Need-to-know findings: counts per rule and member state, and the findings the viewer may see (filters: rule, member_state, authority, user, from, to; page). To a role that sees counts only after disclosure control: `counts.published`, one part of the published grid per Brussels calendar year the window touches (`year` also filters), each naming its grid, year and the rows and columns it keeps; actor filters are refused",
        more: &[(
            "/api/findings/{event}",
            "One event: its findings, facts, Cedar request and the policies that decided",
        )],
        handler: built!(findings::build_findings),
        extend: findings::routes,
    },
    PageDef {
        path: "/deadlines",
        api: "/api/deadlines",
        summary: "Deadline findings as of the data's load (filters: rule, status, severity, actor; page); to a role without detail, `counts.published`: the grid of findings about persons and the performance grid",
        more: &[],
        handler: built!(deadlines::build_deadlines),
        extend: std::convert::identity,
    },
    PageDef {
        path: "/breaches",
        api: "/api/breaches",
        summary: "The breach register with each breach's 72-hour clock; to a role without detail, the published grid of each year (filter: year)",
        more: &[
            (
                "/api/breaches/record",
                "POST a breach of the DPO's controller, new or completed (its columns as text, `seen`: the version completed, 0 for none; `csrf`): the version saved; 409 if another was saved since",
            ),
            (
                "/api/requests/record",
                "POST a data-subject request of the DPO's controller, new or completed, as for breaches",
            ),
        ],
        handler: built!(registers::build_breaches),
        extend: record::routes,
    },
    PageDef {
        path: "/requests",
        api: "/api/requests",
        summary: "Data-subject requests: open, extended, refused; to a role without detail, the published grid of each year (filter: year)",
        more: &[],
        handler: built!(registers::build_requests),
        extend: std::convert::identity,
    },
    PageDef {
        path: "/response-times",
        api: "/api/response-times",
        summary: "Scoreboard indicators, trend, and the benchmarking of authorities and member states",
        more: &[],
        handler: built!(response_times::build_response_times),
        extend: std::convert::identity,
    },
    PageDef {
        path: "/policies",
        api: "/api/policies",
        summary: "Every rule: text, article, test cases",
        more: &[("/api/policies/{id}", "One rule")],
        handler: page!(policies::policies),
        extend: policies::routes,
    },
    PageDef {
        path: "/review",
        api: "/api/review",
        summary: "The findings the viewer may review, gravest and oldest first, with their review's state (filters: state = to_do (default), all, open, under_review, referred, confirmed, justified, false_positive; rule, severity, member_state, authority, user; page)",
        more: &[
            (
                "/api/review/{key}",
                "One finding's review: the finding (or, no longer found, as last reviewed), its state, every version, what the viewer may do, and the CSRF token; POST a change (state, seen, note, ground, referred_to, answer_due, answer, csrf): 409 with `current` if it changed since `seen`",
            ),
            (
                "/api/review/bulk",
                "POST one change for many findings (`items`: [[key, version seen], …]), all or none: 409 if any changed",
            ),
        ],
        handler: page!(review::queue),
        extend: review::routes,
    },
    PageDef {
        path: "/precision",
        api: "/api/precision",
        summary: "The rules' precision: of the findings decided in Custos, the share confirmed, per rule, member state and month of the decision (filter: rule)",
        more: &[],
        handler: page!(precision::precision),
        extend: std::convert::identity,
    },
    PageDef {
        path: "/reports",
        api: "/api/reports",
        summary: "The reports the viewer may produce and download",
        more: &[],
        handler: page!(reports::reports),
        extend: reports::routes,
    },
    PageDef {
        path: "/trail",
        api: "/api/trail",
        summary: "Custos's own access log: who saw which person's data, in which role, when, on which page (filters: user, role, item_kind, item, from, to; page); reading it is logged",
        more: &[],
        handler: page!(trail::trail),
        extend: std::convert::identity,
    },
];

/// Routes that answer without a session.
pub fn public() -> Router<Arc<AppState>> {
    Router::new()
        .route("/login", get(login::login_form).post(login::login))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/static/style.css",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                        (header::CACHE_CONTROL, "max-age=3600"),
                    ],
                    include_str!("../../static/style.css"),
                )
            }),
        )
}

/// The pages of the registry with their JSON twins and their resources' further routes, the
/// API description and logout: all need a session.
pub fn pages() -> Router<Arc<AppState>> {
    let mut r =
        Router::new().route("/logout", post(login::logout)).route("/api/openapi.json", get(openapi::openapi));
    for page in PAGES {
        r = (page.extend)(r.route(page.path, get(page.handler)).route(page.api, get(page.handler)));
    }
    r
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
    let key = page_key(v, uri, generation, state.reviewed.load(std::sync::atomic::Ordering::SeqCst));
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
fn page_key(v: &Viewer, uri: &OriginalUri, generation: u64, reviewed: u64) -> crate::PageKey {
    let path = uri.path().strip_prefix("/api").unwrap_or(uri.path());
    let path = if path == "/overview" { "/" } else { path };
    (
        generation,
        reviewed,
        v.role.clone(),
        v.member_state.clone(),
        v.controller.clone(),
        format!("{path}?{}", uri.query().unwrap_or("")),
    )
}

/// The page kept for `v` and `uri` from the data now shown, if one was built.
fn kept(state: &AppState, v: &Viewer, uri: &OriginalUri) -> Option<Arc<Page>> {
    let key = page_key(
        v,
        uri,
        state.generation.load(std::sync::atomic::Ordering::SeqCst),
        state.reviewed.load(std::sync::atomic::Ordering::SeqCst),
    );
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
    let mut response = if path.starts_with("/api/") {
        Json(&page.json).into_response()
    } else {
        let v = &current.session.viewer;
        match crate::page::html(&page, path, &v.name, &v.role, &current.session.csrf) {
            Ok(html) => Html(html).into_response(),
            Err(e) => return AppError::from(e).into_response(),
        }
    };
    // What it showed about persons, for the access log (`crate::record_visits`).
    if let Some(shown) = &page.trail {
        response.extensions_mut().insert(shown.clone());
    }
    response
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

/// A page's filters as a query string (paging and sorting left out): what selected a list.
pub(crate) fn filters(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .filter(|(k, _)| !["page", "sort", "dir"].contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={}", crate::page::encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn q<'a>(params: &'a BTreeMap<String, String>, k: &str) -> &'a str {
    params.get(k).map(String::as_str).unwrap_or("")
}
