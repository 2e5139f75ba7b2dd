//! The dashboard over HTTP: every role × every page and API route × data in and out of the
//! role's scope, and the security of sessions and forms.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use custos_dashboard::{AppState, app};
use custos_engine::finding::Finding;
use tower::ServiceExt;

#[path = "matrix/attack.rs"]
mod attack;
#[path = "matrix/review.rs"]
mod review;

const PASSWORD: &str = "a long test password";

struct World {
    _dir: tempfile::TempDir,
    state: Arc<AppState>,
    rt: tokio::runtime::Runtime,
}

/// A generated store, audited, with one account per role; built once for every test.
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let export = dir.path().join("export");
        let store_dir = dir.path().join("store");
        let params = custos_synthetic::Params { seed: 3, scale: 0.01, events: Some(60_000) };
        custos_synthetic::generate(&export, &params).unwrap();
        let inputs = custos_engine::import::inputs(std::slice::from_ref(&export), None).unwrap();
        custos_engine::import::import(&store_dir, &inputs, "2026-07-01T00:00:00Z").unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let engine = custos_engine::Engine::open(&store_dir)
            .unwrap()
            .with_clock(custos_engine::Clock::Fixed(1_780_000_000_000_000));
        let window = custos_engine::audit::Window { from: None, to: None };
        let audit = rt.block_on(engine.audit(window)).unwrap();
        assert!(!audit.findings.is_empty());
        engine.record(&audit).unwrap();
        let mut accounts = custos_dashboard::account::Accounts::load(&store_dir).unwrap();
        let commission = audit
            .findings
            .iter()
            .find(|f| f.member_state.as_deref() == Some("EU"))
            .and_then(|f| f.authority_id.clone())
            .unwrap();
        for (name, role, ms, ctl) in [
            ("target", "edps", None, None),
            ("edps", "edps", None, None),
            ("edps-2", "edps", None, None),
            ("dpa-de", "dpa", Some("DE"), None),
            ("dpo", "dpo", None, Some(commission.as_str())),
            ("commission", "commission", None, None),
            ("admin", "admin", None, None),
        ] {
            accounts.add(name, role, ms, ctl, PASSWORD).unwrap();
        }
        let as_of = custos_engine::import::parse_timestamp("2026-07-01T00:00:00Z").unwrap();
        let state = rt.block_on(AppState::open(&store_dir, as_of, false)).unwrap();
        World { _dir: dir, state: Arc::new(state), rt }
    })
}

fn send(req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    send_from(req, [127, 0, 0, 1])
}

fn send_from(req: Request<Body>, ip: [u8; 4]) -> (StatusCode, axum::http::HeaderMap, String) {
    let w = world();
    let mut req = req;
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from((ip, 40000))));
    let res: Response<Body> = w.rt.block_on(app(Arc::clone(&w.state)).oneshot(req)).unwrap();
    let (parts, body) = res.into_parts();
    let bytes = w.rt.block_on(axum::body::to_bytes(body, usize::MAX)).unwrap();
    (parts.status, parts.headers, String::from_utf8_lossy(&bytes).into_owned())
}

fn get(path: &str, cookie: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    send(Request::get(path).header(header::COOKIE, cookie).body(Body::empty()).unwrap())
}

fn cookie_of(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Tries to log in as `name` with `password` from `ip`: the answer's status and the session's
/// `Set-Cookie` value.
fn try_login_cookie(name: &str, password: &str, ip: [u8; 4]) -> (StatusCode, Option<String>) {
    let (status, headers, body) = get("/login", "");
    assert_eq!(status, StatusCode::OK);
    let token = body.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let pre = cookie_of(&headers, "custos_login").unwrap();
    let pre = pre.split(';').next().unwrap().to_owned();
    let form = format!("name={name}&password={}&csrf={token}", password.replace(' ', "+"));
    let (status, headers, _) = send_from(
        Request::post("/login")
            .header(header::COOKIE, pre)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap(),
        ip,
    );
    (status, cookie_of(&headers, "custos_session"))
}

/// [`try_login_cookie`], with the `Cookie` header value of the session.
fn try_login(name: &str, password: &str, ip: [u8; 4]) -> (StatusCode, Option<String>) {
    let (status, cookie) = try_login_cookie(name, password, ip);
    (status, cookie.map(|c| c.split(';').next().unwrap().to_owned()))
}

/// Logs in as `name`; returns the session's `Cookie` header value.
fn login(name: &str) -> String {
    let (status, session) = try_login_cookie(name, PASSWORD, [127, 0, 0, 1]);
    assert_eq!(status, StatusCode::SEE_OTHER, "login as {name}");
    let session = session.unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"), "{session}");
    session.split(';').next().unwrap().to_owned()
}

/// Every page of the dashboard's registry.
static PAGES: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| custos_dashboard::routes::PAGES.iter().map(|p| p.path).collect());

/// The JSON twin of the page at `path`, as the registry has it.
fn api(path: &str) -> String {
    custos_dashboard::routes::PAGES.iter().find(|p| p.path == path).unwrap().api.to_owned()
}

/// Which pages each role may open (200) and which it may not (403). The test's DPO is the
/// Commission's: it reads the report to the EDPS on the reports page.
fn allowed(role: &str, page: &str) -> bool {
    match (role, page) {
        (_, "/trail") => role == "edps" || role == "admin",
        (_, "/review") => matches!(role, "edps" | "dpa" | "dpo"),
        (_, "/precision") => matches!(role, "edps" | "dpa"),
        ("admin", _) => page == "/policies",
        ("dpo", _) => page != "/response-times",
        _ => true,
    }
}

fn ntk() -> Vec<Finding> {
    world().state.data().ntk.to_vec()
}

/// Whether a finding is in the scope of `role`'s detail.
fn in_scope(role: &str, f: &Finding, dpo_controller: &str) -> bool {
    match role {
        "edps" => f.member_state.as_deref() == Some("EU"),
        "dpa-de" => f.member_state.as_deref() == Some("DE"),
        "dpo" => f.authority_id.as_deref() == Some(dpo_controller),
        _ => false,
    }
}

#[test]
fn every_role_on_every_route_sees_its_scope_and_nothing_else() {
    let findings = ntk();
    let dpo_controller = world()
        .state
        .accounts
        .now(&world().state.sessions)
        .all()
        .iter()
        .find(|a| a.role == "dpo")
        .unwrap()
        .controller
        .clone()
        .unwrap();
    for (name, role) in [
        ("edps", "edps"),
        ("dpa-de", "dpa"),
        ("dpo", "dpo"),
        ("commission", "commission"),
        ("admin", "admin"),
    ] {
        let cookie = login(name);
        // Identifiers of events, users and data subjects that only out-of-scope records hold (a
        // user of one member state may rightly appear in an in-scope record of another actor,
        // such as the Commission's duty to block that user's data).
        let data = world().state.data();
        let ids = |f: &Finding| {
            let mut v = vec![f.user_id.clone().unwrap_or_default(), f.event_id.clone().unwrap_or_default()];
            if f.subject_kind == custos_engine::finding::SubjectKind::User
                || f.subject_kind == custos_engine::finding::SubjectKind::Request
            {
                v.push(f.subject_id.clone());
            }
            v
        };
        let all = || findings.iter().chain(&data.deadlines);
        let inside: BTreeSet<String> =
            all().filter(|f| in_scope(name, f, &dpo_controller)).flat_map(ids).collect();
        let mut out_of_scope: BTreeSet<String> = all()
            .filter(|f| !in_scope(name, f, &dpo_controller))
            .flat_map(ids)
            .filter(|s| !s.is_empty() && !inside.contains(s))
            .collect();
        for r in &data.requests {
            let ms = r.member_state.as_str();
            let ctl = r.controller_id.as_str();
            let mine = match name {
                "edps" => ms == "EU",
                "dpa-de" => ms == "DE",
                "dpo" => ctl == dpo_controller,
                _ => false,
            };
            if !mine {
                out_of_scope.insert(r.subject_ref.clone());
            }
        }
        out_of_scope.remove("");
        let mut seen_in_scope = false;
        for page in PAGES.iter().copied() {
            for path in [page.to_owned(), api(page)] {
                // The whole list, every page of it.
                for p in 1..=40 {
                    let url = format!("{path}?page={p}");
                    let (status, headers, body) = get(&url, &cookie);
                    let want = if allowed(role, page) { StatusCode::OK } else { StatusCode::FORBIDDEN };
                    assert_eq!(status, want, "{name} {url}");
                    assert_eq!(headers.get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
                    assert!(
                        headers
                            .get(header::CONTENT_SECURITY_POLICY)
                            .unwrap()
                            .to_str()
                            .unwrap()
                            .contains("frame-ancestors 'none'")
                    );
                    for id in &out_of_scope {
                        assert!(!body.contains(id.as_str()), "{name} sees out-of-scope `{id}` on {url}");
                    }
                    if findings.iter().any(|f| {
                        in_scope(name, f, &dpo_controller) && body.contains(f.event_id.as_deref().unwrap())
                    }) {
                        seen_in_scope = true;
                    }
                    if !body.contains("rel=\"next\"") && !body.contains("\"page\":") {
                        break;
                    }
                    if path.starts_with("/api/") && !body.contains(&format!("\"page\":{p}")) {
                        break;
                    }
                }
            }
        }
        // The detail of one event in scope and one out of it.
        let inside = findings.iter().find(|f| in_scope(name, f, &dpo_controller));
        let outside = findings.iter().find(|f| !in_scope(name, f, &dpo_controller)).unwrap();
        if let Some(f) = inside {
            assert!(seen_in_scope, "{name} never sees its own findings");
            let e = f.event_id.clone().unwrap();
            for path in [format!("/findings/{e}"), format!("/api/findings/{e}")] {
                let (status, _, body) = get(&path, &cookie);
                assert_eq!(status, StatusCode::OK, "{name} {path}: {body}");
                assert!(body.contains(&f.rule), "{path} names the rule");
            }
            let (_, _, body) = get(&format!("/findings/{e}"), &cookie);
            assert!(body.contains("permit") || body.contains("forbid"), "the policy text is shown");
        }
        // Out of scope answers exactly as a finding that does not exist.
        let e = outside.event_id.clone().unwrap();
        for (path, none) in [
            (format!("/findings/{e}"), "/findings/NO-SUCH-EVENT"),
            (format!("/api/findings/{e}"), "/api/findings/NO-SUCH-EVENT"),
        ] {
            let (status, _, body) = get(&path, &cookie);
            let (status_none, _, body_none) = get(none, &cookie);
            assert_eq!(status, StatusCode::NOT_FOUND, "{name} {path}");
            assert_eq!(
                (status, &body),
                (status_none, &body_none),
                "{name} {path}: out of scope differs from unknown"
            );
            assert!(!body.contains(&e));
        }
    }
}

#[test]
fn a_filter_on_an_actor_out_of_scope_answers_as_one_that_does_not_exist_and_windows_pin_no_one() {
    let findings = ntk();
    let cookie = login("dpa-de");
    let json = |path: &str| -> serde_json::Value {
        let (status, _, body) = get(path, &cookie);
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    };
    let foreign =
        findings.iter().find(|f| f.member_state.as_deref() != Some("DE") && f.user_id.is_some()).unwrap();
    for (param, value) in
        [("user", foreign.user_id.clone().unwrap()), ("authority", foreign.authority_id.clone().unwrap())]
    {
        let asked = json(&format!("/api/findings?{param}={value}"));
        let unknown = json(&format!("/api/findings?{param}=NO-SUCH-ACTOR"));
        assert_eq!(
            asked["counts"], unknown["counts"],
            "{param}: a foreign actor's counts differ from nobody's"
        );
        assert_eq!(asked["total"], unknown["total"], "{param}");
        assert_eq!(asked["findings"], unknown["findings"], "{param}");
    }
    // In scope, the same filter answers in full.
    let own =
        findings.iter().find(|f| f.member_state.as_deref() == Some("DE") && f.user_id.is_some()).unwrap();
    let mine = json(&format!("/api/findings?user={}", own.user_id.clone().unwrap()));
    assert!(mine["total"].as_u64().unwrap() > 0, "{mine}");
    // A one-second window over a foreign member state's findings counts the whole month.
    let ts = foreign.ts.unwrap().micros();
    let (from, to) =
        (custos_engine::finding::format_micros(ts), custos_engine::finding::format_micros(ts + 1_000_000));
    let ms = foreign.member_state.clone().unwrap();
    let narrow = json(&format!("/api/findings?member_state={ms}&from={from}&to={to}"));
    let month = &from[..7];
    let in_month = findings
        .iter()
        .filter(|f| {
            f.member_state.as_deref() == Some(ms.as_str())
                && f.ts.is_some_and(|t| t.to_string().starts_with(month))
        })
        .count() as u64;
    let counted: u64 = narrow["counts"]["table"]["cells"]
        .as_array()
        .map(|rows| rows.iter().flat_map(|r| r.as_array().unwrap().iter()).filter_map(|c| c.as_u64()).sum())
        .unwrap_or_else(|| panic!("{narrow}"));
    assert_eq!(counted, in_month, "the window was not widened to the month: {narrow}");
}

#[test]
fn the_commission_sees_counts_only_after_disclosure_control_and_never_a_user() {
    let cookie = login("commission");
    let (_, _, body) = get("/api/findings", &cookie);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["counts"]["disclosure_control"].as_str().unwrap().contains("k = 5"), "{body}");
    assert_eq!(v["findings"], serde_json::json!([]));
    // No published count lies in 1..4.
    let published = v["counts"]["published"].as_array().unwrap();
    assert!(!published.is_empty(), "{body}");
    for part in published {
        for row in part["table"]["cells"].as_array().unwrap() {
            for c in row.as_array().unwrap() {
                if let Some(n) = c.as_u64() {
                    assert!(n == 0 || n >= 5, "{n} published to the Commission");
                } else {
                    assert_eq!(c, ":c");
                }
            }
        }
    }
    let (_, _, html) = get("/findings", &cookie);
    assert!(!html.contains("name=\"user\""), "no user filter for the Commission");
    let users: Vec<String> = ntk().iter().filter_map(|f| f.user_id.clone()).collect();
    for page in PAGES.iter().copied() {
        let (_, _, body) = get(page, &cookie);
        assert!(!users.iter().any(|u| body.contains(u.as_str())), "a user id on {page}");
    }
}

#[test]
fn no_page_or_api_answers_without_a_session() {
    for page in PAGES.iter().copied() {
        let (status, headers, _) = get(page, "");
        assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(headers.get(header::LOCATION).unwrap(), "/login");
        let (status, _, _) = get(&api(page), "custos_session=forged");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
    }
    for path in ["/api/openapi.json", "/findings/E0000000001", "/policies/NTK-DOMAIN"] {
        assert_ne!(get(path, "").0, StatusCode::OK, "{path}");
    }
    assert_eq!(get("/healthz", "").0, StatusCode::OK);
}

#[test]
fn login_issues_a_new_session_each_time_and_logout_needs_the_csrf_token() {
    let (a, b) = (login("edps"), login("edps"));
    assert_ne!(a, b);
    let logout = |cookie: &str, csrf: &str| {
        send(
            Request::post("/logout")
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("csrf={csrf}")))
                .unwrap(),
        )
        .0
    };
    assert_eq!(logout(&a, "wrong"), StatusCode::FORBIDDEN);
    assert_eq!(get("/", &a).0, StatusCode::OK, "a refused logout ends nothing");
    let (_, _, html) = get("/", &a);
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert_eq!(logout(&a, &csrf), StatusCode::SEE_OTHER);
    assert_eq!(get("/", &a).0, StatusCode::SEE_OTHER, "the session ended");
    assert_eq!(get("/", &b).0, StatusCode::OK, "other sessions live on");
}

#[test]
fn a_login_without_its_form_token_is_refused_and_failures_are_rate_limited() {
    // From an address of its own, so that the other tests' logins are not blocked.
    let post = |form: &str, cookie: &str| {
        send_from(
            Request::post("/login")
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form.to_owned()))
                .unwrap(),
            [10, 0, 0, 9],
        )
        .0
    };
    let pw = PASSWORD.replace(' ', "+");
    assert_eq!(post(&format!("name=admin&password={pw}&csrf=x"), "custos_login=y"), StatusCode::FORBIDDEN);
    for _ in 0..5 {
        assert_eq!(post("name=target&password=wrong&csrf=t", "custos_login=t"), StatusCode::UNAUTHORIZED);
    }
    // Blocked now, even with the right password.
    assert_eq!(
        post(&format!("name=target&password={pw}&csrf=t"), "custos_login=t"),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[test]
fn failures_from_one_address_never_keep_the_owner_out_and_an_operator_lifts_the_limit() {
    let (here, there) = ([10, 0, 1, 1], [10, 0, 1, 2]);
    for _ in 0..5 {
        assert_eq!(try_login("commission", "wrong password!", here).0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(try_login("commission", PASSWORD, here).0, StatusCode::TOO_MANY_REQUESTS);
    // The owner, elsewhere, logs in.
    assert_eq!(try_login("commission", PASSWORD, there).0, StatusCode::SEE_OTHER);
    // `custos user unlock` lifts the limit on the running server.
    let dir = &world().state.store_dir;
    custos_dashboard::account::Accounts::edit(dir, |a| a.unlock("commission", "2026-12-07T03:00:00Z"))
        .unwrap();
    assert_eq!(try_login("commission", PASSWORD, here).0, StatusCode::SEE_OTHER);
}

#[test]
fn accounts_added_changed_disabled_and_removed_take_effect_at_once_and_end_their_sessions() {
    let ip = [10, 0, 2, 1];
    let dir = &world().state.store_dir;
    let edit = |f: &dyn Fn(&mut custos_dashboard::account::Accounts)| {
        custos_dashboard::account::Accounts::edit(dir, |a| {
            f(a);
            Ok(())
        })
        .unwrap();
    };
    edit(&|a| a.add("live", "edps", None, None, PASSWORD).unwrap());
    let (status, cookie) = try_login("live", PASSWORD, ip);
    assert_eq!(status, StatusCode::SEE_OTHER, "a new account logs in without a restart");
    let cookie = cookie.unwrap();
    assert_eq!(get("/findings", &cookie).0, StatusCode::OK);
    let other = login("edps");
    edit(&|a| a.passwd("live", "a new password for live").unwrap());
    assert_eq!(get("/findings", &cookie).0, StatusCode::SEE_OTHER, "the session ends with the old password");
    assert_eq!(get("/findings", &other).0, StatusCode::OK, "another account's session lives on");
    assert_eq!(try_login("live", PASSWORD, ip).0, StatusCode::UNAUTHORIZED, "the old password is refused");
    let (status, cookie) = try_login("live", "a new password for live", ip);
    assert_eq!(status, StatusCode::SEE_OTHER, "the new password is taken");
    let cookie = cookie.unwrap();
    edit(&|a| a.set_disabled("live", true).unwrap());
    assert_eq!(get("/findings", &cookie).0, StatusCode::SEE_OTHER, "a disabled account's session ends");
    assert_eq!(try_login("live", "a new password for live", ip).0, StatusCode::UNAUTHORIZED);
    edit(&|a| a.set_disabled("live", false).unwrap());
    let cookie = try_login("live", "a new password for live", ip).1.unwrap();
    edit(&|a| a.remove("live").unwrap());
    assert_eq!(get("/findings", &cookie).0, StatusCode::SEE_OTHER, "a removed account's session ends");
    assert_eq!(try_login("live", "a new password for live", ip).0, StatusCode::UNAUTHORIZED);
}

#[test]
fn the_api_is_described() {
    let cookie = login("edps");
    let (status, _, body) = get("/api/openapi.json", &cookie);
    assert_eq!(status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for page in PAGES.iter().copied() {
        assert!(doc["paths"].get(api(page)).is_some(), "{page} undocumented");
    }
}

#[test]
fn reports_are_produced_with_a_csrf_token_and_downloaded_only_by_those_who_may_see_them() {
    let dpa = login("dpa-de");
    let (_, _, html) = get("/reports", &dpa);
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let produce = |cookie: &str, form: String| {
        send(
            Request::post("/reports")
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        )
        .0
    };
    assert_eq!(
        produce(&dpa, "csrf=wrong&kind=member-state&year=2025&member_state=DE".into()),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        produce(&dpa, format!("csrf={csrf}&kind=member-state&year=2025&member_state=FR")),
        StatusCode::FORBIDDEN
    );
    assert_eq!(produce(&dpa, format!("csrf={csrf}&kind=edps&year=2025")), StatusCode::FORBIDDEN);
    assert_eq!(
        produce(&dpa, format!("csrf={csrf}&kind=member-state&year=2025&member_state=DE")),
        StatusCode::SEE_OTHER
    );
    let (status, headers, body) = get("/reports/imi-supervision-DE-2025.pdf", &dpa);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), "application/pdf");
    assert!(body.starts_with("%PDF-"));
    let (_, _, list) = get("/api/reports", &dpa);
    assert!(list.contains("imi-supervision-DE-2025.html"), "{list}");
    // Another role may not download a member state's pack, nor list it.
    let commission = login("commission");
    assert_eq!(get("/reports/imi-supervision-DE-2025.pdf", &commission).0, StatusCode::FORBIDDEN);
    assert!(!get("/api/reports", &commission).2.contains("imi-supervision-DE"));
    assert_eq!(get("/reports/..%2Faccounts.json", &commission).0, StatusCode::NOT_FOUND);
}

/// The report to the EDPS is the Commission's (IMI Art. 25(2)): the Commission produces it;
/// the EDPS and the Commission's DPO read it; a national DPA and the EDPS itself may not
/// produce it, and neither the DPA nor the Commission's statistics-only role may read it.
#[test]
fn the_report_to_the_edps_is_produced_by_the_commission_and_read_by_the_edps_and_its_dpo() {
    let csrf_of = |cookie: &str| {
        let (status, _, html) = get("/reports", cookie);
        assert_eq!(status, StatusCode::OK, "{html}");
        html.split("name=\"csrf\" value=\"").nth(1).map(|c| c.split('"').next().unwrap().to_owned())
    };
    let produce = |cookie: &str, csrf: &str| {
        send(
            Request::post("/reports")
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("csrf={csrf}&kind=edps&year=2027")))
                .unwrap(),
        )
        .0
    };
    let (edps, dpa) = (login("edps"), login("dpa-de"));
    assert_eq!(produce(&edps, &csrf_of(&edps).unwrap()), StatusCode::FORBIDDEN);
    assert_eq!(produce(&dpa, &csrf_of(&dpa).unwrap()), StatusCode::FORBIDDEN);
    let commission = login("commission");
    let csrf = csrf_of(&commission).unwrap();
    assert_eq!(produce(&commission, &csrf), StatusCode::SEE_OTHER);
    let file = "/reports/imi-edps-report-2027.html";
    for (who, status) in [
        // The Commission's role sees counts only after disclosure control: it sends the
        // report, whose counts are exact, and does not read it.
        ("commission", StatusCode::FORBIDDEN),
        ("edps", StatusCode::OK),
        ("dpo", StatusCode::OK),
        ("dpa-de", StatusCode::FORBIDDEN),
        ("admin", StatusCode::FORBIDDEN),
    ] {
        let (got, _, body) = get(file, &login(who));
        assert_eq!(got, status, "{who}");
        if status == StatusCode::OK {
            assert!(
                body.contains("Report of the Commission to the European Data Protection Supervisor"),
                "{who}"
            );
        }
    }
    // The Commission's DPO sees it listed, though it produces nothing.
    let (_, _, list) = get("/api/reports", &login("dpo"));
    assert!(list.contains("imi-edps-report-2027.html"), "{list}");
}

/// Every filter about actors × every role × a value in the role's scope, one out of it, and
/// one that does not exist: out of scope answers byte for byte as the unknown value (the
/// value itself aside), in scope answers in full.
#[test]
fn every_filter_about_actors_answers_out_of_scope_as_unknown_for_every_role() {
    let data = world().state.data();
    let dpo_controller = world()
        .state
        .accounts
        .now(&world().state.sessions)
        .all()
        .iter()
        .find(|a| a.role == "dpo")
        .and_then(|a| a.controller.clone())
        .unwrap();
    type Of = fn(&Finding) -> Option<String>;
    let filters: [(&str, &str, &[Finding], Of); 3] = [
        ("findings", "user", &data.ntk, |f| f.user_id.clone()),
        ("findings", "authority", &data.ntk, |f| f.authority_id.clone()),
        ("deadlines", "actor", &data.deadlines, |f| f.authority_id.clone()),
    ];
    for (name, role) in [
        ("edps", "edps"),
        ("dpa-de", "dpa"),
        ("dpo", "dpo"),
        ("commission", "commission"),
        ("admin", "admin"),
    ] {
        let cookie = login(name);
        for (page, param, records, of) in &filters {
            let inside: BTreeSet<String> =
                records.iter().filter(|f| in_scope(name, f, &dpo_controller)).filter_map(of).collect();
            let outside = records
                .iter()
                .filter(|f| !in_scope(name, f, &dpo_controller))
                .filter_map(of)
                .find(|v| !inside.contains(v))
                .unwrap();
            for path in [format!("/api/{page}"), format!("/{page}")] {
                let ask = |value: &str| {
                    let (status, _, body) = get(&format!("{path}?{param}={value}"), &cookie);
                    (status, body.replace(value, "VALUE"))
                };
                let (status, body) = ask(&outside);
                let unknown = ask("NO-SUCH-ACTOR");
                assert_eq!((status, &body), (unknown.0, &unknown.1), "{name} {path}?{param}");
                let expected = match role {
                    "admin" | "commission" => StatusCode::FORBIDDEN,
                    _ => StatusCode::OK,
                };
                assert_eq!(status, expected, "{name} {path}?{param}: {body}");
                if let (Some(own), true) = (inside.iter().next(), path.starts_with("/api/")) {
                    let (status, _, body) = get(&format!("{path}?{param}={own}"), &cookie);
                    assert_eq!(status, StatusCode::OK, "{name} {path}?{param}={own}");
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                    assert!(v["total"].as_u64().unwrap() > 0, "{name} {path}?{param}={own}: {body}");
                }
            }
        }
    }
}

/// Produced reports are records of the store: the dashboard lists and serves only those it
/// recorded, each checked against the manifest before it is sent; `verify` names a planted
/// or altered one.
#[test]
fn only_recorded_reports_are_served_and_verify_names_a_planted_one() {
    let commission = login("commission");
    let (_, _, html) = get("/reports", &commission);
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let produced = send(
        Request::post("/reports")
            .header(header::COOKIE, &commission)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={csrf}&kind=annual&year=2024")))
            .unwrap(),
    );
    assert_eq!(produced.0, StatusCode::SEE_OTHER, "{}", produced.2);
    let dir = &world().state.store_dir;
    let store = custos_engine::store::Store::open(dir).unwrap();
    let entry = store.entries().iter().rev().find(|e| e.body.kind == "report").unwrap();
    assert_eq!(entry.body.sources, vec!["imi-annual-report-2024".to_owned()]);
    let (status, _, pdf) = get("/reports/imi-annual-report-2024.pdf", &commission);
    assert_eq!(status, StatusCode::OK);
    assert!(pdf.starts_with("%PDF-"));
    // Planted: in the old place, and in the data directory under a name the store would use.
    std::fs::create_dir_all(dir.join("reports")).unwrap();
    std::fs::write(dir.join("reports/imi-annual-report-2019.pdf"), "%PDF- planted").unwrap();
    std::fs::write(dir.join("data/reports/c009999-0.pdf"), "%PDF- planted").unwrap();
    assert_eq!(get("/reports/imi-annual-report-2019.pdf", &commission).0, StatusCode::NOT_FOUND);
    assert!(!get("/api/reports", &commission).2.contains("2019"));
    // Altered after it was recorded: refused, never sent.
    let html_path = entry.body.files.iter().find(|f| f.path.ends_with(".html")).unwrap().path.clone();
    std::fs::write(dir.join(&html_path), "<p>planted</p>").unwrap();
    let (status, _, body) = get("/reports/imi-annual-report-2024.html", &commission);
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!body.contains("planted"));
    let v = custos_engine::store::Store::verify(dir).unwrap();
    let said: Vec<String> = v.problems.iter().map(ToString::to_string).collect();
    for planted in ["`reports` at the store's root", "data/reports/c009999-0.pdf", &html_path] {
        assert!(said.iter().any(|p| p.contains(planted)), "verify does not name {planted}: {said:?}");
    }
}

/// The breach register's clock, completeness and communication are the check's own
/// findings (BRE-NOTIFY, BRE-CONTENT, BRE-SUBJECTS), never judged again by the dashboard.
#[test]
fn the_breach_register_shows_the_checks_findings_and_judges_nothing_itself() {
    let cookie = login("edps");
    let (status, _, body) = get("/api/breaches", &cookie);
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let data = world().state.data();
    let finding = |rule: &str, id: &str| data.deadlines.iter().find(|f| f.rule == rule && f.subject_id == id);
    let items = v["breaches"].as_array().unwrap();
    assert!(!items.is_empty(), "{body}");
    let mut judged = 0;
    for item in items {
        let id = item["breach"]["breach_id"].as_str().unwrap();
        let notify = finding("BRE-NOTIFY", id);
        let due = notify.and_then(|f| f.due_at).map(|t| t.to_string());
        assert_eq!(item["notify_due"].as_str(), due.as_deref(), "{id}");
        let complete = item["completeness"] == "complete";
        assert_eq!(complete, finding("BRE-CONTENT", id).is_none(), "{id}: {item}");
        let told = item["data_subjects"].as_str().unwrap();
        assert_eq!(
            told.starts_with("not communicated"),
            finding("BRE-SUBJECTS", id).is_some(),
            "{id}: {item}"
        );
        judged += usize::from(notify.is_some()) + usize::from(!complete);
    }
    assert!(judged > 0, "no breach shown with a finding: the test would prove nothing");
}

/// A window bound that is no instant is refused, naming it; it is never compared as text.
#[test]
fn a_window_that_is_no_instant_is_refused_by_name() {
    let cookie = login("edps");
    let (status, _, body) = get("/api/findings?from=last-tuesday", &cookie);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("from `last-tuesday`"), "{body}");
    let (status, _, _) = get("/api/findings?from=2024-03-01&to=2024-04-01T00:00:00Z", &cookie);
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn metrics_answer_on_loopback_and_to_the_administrator_and_to_nobody_else() {
    let edps = login("edps");
    assert_eq!(get("/findings", &edps).0, StatusCode::OK);
    let (status, headers, body) = get("/metrics", "");
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers.get(header::CONTENT_TYPE).unwrap().to_str().unwrap().starts_with("text/plain; version=0.0.4")
    );
    for needle in [
        "custos_http_requests_total{route=\"/findings\",status=\"2xx\"}",
        "custos_http_request_duration_seconds_bucket{route=\"/findings\",le=\"+Inf\"}",
        "custos_data_loads_total",
        "custos_store_commits{kind=\"import\"} 1",
        "custos_store_commits{kind=\"audit\"} 1",
        "custos_store_head_info{head=\"",
    ] {
        assert!(body.contains(needle), "no `{needle}` in\n{body}");
    }
    // A route's pattern, never an identifier: the label set stays bounded.
    assert!(!body.contains("route=\"/findings/E"), "{body}");
    // From elsewhere: only the administrator's session.
    let from = |cookie: &str| {
        send_from(
            Request::get("/metrics").header(header::COOKIE, cookie).body(Body::empty()).unwrap(),
            [10, 0, 0, 9],
        )
        .0
    };
    assert_eq!(from(""), StatusCode::NOT_FOUND);
    let unknown = send_from(Request::get("/no-such-page").body(Body::empty()).unwrap(), [10, 0, 0, 9]);
    let hidden = send_from(Request::get("/metrics").body(Body::empty()).unwrap(), [10, 0, 0, 9]);
    assert_eq!((hidden.0, hidden.2), (unknown.0, unknown.2), "hidden answers as unknown");
    assert_eq!(from(&edps), StatusCode::NOT_FOUND);
    assert_eq!(from(&login("admin")), StatusCode::OK);
}
