//! A DPO keeps its controller's registers in the dashboard, on a store of its own (a save
//! loads the data again, which the shared world of `matrix.rs` must not see mid-test).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use custos_dashboard::{AppState, app};
use serde_json::{Value, json};
use tower::ServiceExt;

const PASSWORD: &str = "a long test password";

struct World {
    _dir: tempfile::TempDir,
    state: Arc<AppState>,
    rt: tokio::runtime::Runtime,
}

/// The base fixture, with a DPO of the Commission (`A-EU-COM`) and one account of each other role.
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/base");
        let inputs = custos_engine::import::inputs(&[base], None).unwrap();
        custos_engine::import::import(&store, &inputs, "2026-07-01T00:00:00Z").unwrap();
        let mut accounts = custos_dashboard::account::Accounts::load(&store).unwrap();
        for (name, role, ms, ctl) in [
            ("dpo", "dpo", None, Some("A-EU-COM")),
            ("dpo-de", "dpo", None, Some("A-DE-1")),
            ("edps", "edps", None, None),
            ("dpa-de", "dpa", Some("DE"), None),
            ("commission", "commission", None, None),
            ("admin", "admin", None, None),
        ] {
            accounts.add(name, role, ms, ctl, PASSWORD).unwrap();
        }
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
        let mut state = rt.block_on(AppState::open(&store, now, false)).unwrap();
        state.follows_clock = true;
        World { _dir: dir, state: Arc::new(state), rt }
    })
}

fn send(req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let w = world();
    let mut req = req;
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let res = w.rt.block_on(app(Arc::clone(&w.state)).oneshot(req)).unwrap();
    let (parts, body) = res.into_parts();
    let bytes = w.rt.block_on(axum::body::to_bytes(body, usize::MAX)).unwrap();
    (parts.status, parts.headers, String::from_utf8_lossy(&bytes).into_owned())
}

fn get(path: &str, cookie: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    send(Request::get(path).header(header::COOKIE, cookie).body(Body::empty()).unwrap())
}

fn login(name: &str) -> String {
    let (_, headers, body) = get("/login", "");
    let token = body.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let cookie = |h: &axum::http::HeaderMap, n: &str| {
        h.get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{n}=")))
            .map(|v| v.split(';').next().unwrap().to_owned())
            .unwrap()
    };
    let pre = cookie(&headers, "custos_login");
    let form = format!("name={name}&password={}&csrf={token}", PASSWORD.replace(' ', "+"));
    let (status, headers, _) = send(
        Request::post("/login")
            .header(header::COOKIE, pre)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap(),
    );
    assert_eq!(status, StatusCode::SEE_OTHER, "login as {name}");
    cookie(&headers, "custos_session")
}

fn token(cookie: &str) -> String {
    let (_, _, body) = get("/policies", cookie);
    body.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
}

fn post_json(path: &str, cookie: &str, csrf: &str, body: &Value) -> (StatusCode, Value) {
    let (status, _, text) = send(
        Request::post(path)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-csrf-token", csrf)
            .body(Body::from(body.to_string()))
            .unwrap(),
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn sound_records() {
    let v = custos_engine::store::Store::verify(&world().state.store_dir).unwrap();
    assert!(v.is_sound(), "{:?}", v.problems);
}

#[test]
fn a_dpo_records_and_completes_its_controllers_breach_and_the_checks_rules_judge_it_as_of_now() {
    let dpo = login("dpo");
    let csrf = token(&dpo);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let at = |secs_ago: i64| custos_engine::finding::format_micros((now - secs_ago) * 1_000_000);
    // A form with bad values: every problem named, nothing saved.
    let (status, body) = post_json(
        "/api/breaches/record",
        &dpo,
        &csrf,
        &json!({"seen": "0", "breach_id": "B-DPO-1", "aware_at": "last week", "risk": "dire", "supervisor": "EDPS"}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = body.as_str().unwrap();
    assert!(text.contains("aware_at: `last week`") && text.contains("risk: `dire`"), "{text}");
    // Recorded: aware five days ago, high risk, not notified.
    let breach = json!({"seen": "0", "breach_id": "B-DPO-1", "aware_at": at(5 * 86_400), "risk": "high", "supervisor": "EDPS"});
    let (status, body) = post_json("/api/breaches/record", &dpo, &csrf, &breach);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["version"].as_i64(), body["by"].as_str()), (Some(1), Some("dpo")));
    let (status, _, page) = get("/api/breaches/record?id=B-DPO-1", &dpo);
    assert_eq!(status, StatusCode::OK, "{page}");
    let page: Value = serde_json::from_str(&page).unwrap();
    let notify = page["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "BRE-NOTIFY").cloned();
    assert_eq!(notify.as_ref().map(|f| f["status"].clone()), Some(json!("overdue")), "{page}");
    // Completed: notified yesterday (after the 72 hours): now late, as of now.
    let mut done = breach.clone();
    done["seen"] = json!("1");
    done["notified_at"] = json!(at(86_400));
    let (status, body) = post_json("/api/breaches/record", &dpo, &csrf, &done);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 2);
    let (_, _, page) = get("/api/breaches/record?id=B-DPO-1", &dpo);
    let page: Value = serde_json::from_str(&page).unwrap();
    let notify = page["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "BRE-NOTIFY").cloned();
    let notify = notify.unwrap();
    assert_eq!(
        (notify["status"].as_str(), notify["severity"].as_str()),
        (Some("late"), Some("violation")),
        "{page}"
    );
    assert_eq!(page["version"], 2);
    // A second save from version 1: a conflict, never a lost update.
    let (status, _) = post_json("/api/breaches/record", &dpo, &csrf, &done);
    assert_eq!(status, StatusCode::CONFLICT);
    // With the reasons for the delay (EUDPR Art. 34(1): "accompanied by reasons"), the late
    // notification is a warning, no longer a violation.
    let mut reasons = done.clone();
    reasons["seen"] = json!("2");
    reasons["delay_reasons"] = json!("the scope was unclear for two days");
    assert_eq!(post_json("/api/breaches/record", &dpo, &csrf, &reasons).0, StatusCode::OK);
    let (_, _, page) = get("/api/breaches/record?id=B-DPO-1", &dpo);
    let page: Value = serde_json::from_str(&page).unwrap();
    let notify =
        page["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "BRE-NOTIFY").cloned().unwrap();
    assert_eq!(
        (notify["status"].as_str(), notify["severity"].as_str()),
        (Some("late"), Some("warning")),
        "{page}"
    );
    assert_eq!(notify["policies"], json!(["BRE-NOTIFY/reasons"]));
    // The form, without JavaScript: the page of the record, its clock from the rule.
    let (status, _, html) = get("/breaches/record?id=B-DPO-1", &dpo);
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("72-hour clock (BRE-NOTIFY, as of now)") && html.contains("Complete the breach"),
        "{html}"
    );
    // Another controller's breach is not the DPO's to open; no other role records anything.
    for name in ["edps", "dpa-de", "commission", "admin", "dpo-de"] {
        let cookie = login(name);
        let csrf = token(&cookie);
        if name == "dpo-de" {
            // Another controller's DPO records its own, and never completes this one.
            assert_eq!(get("/breaches/record?id=B-DPO-1", &cookie).0, StatusCode::NOT_FOUND);
            assert_eq!(get("/breaches/record?id=B1", &cookie).0, StatusCode::NOT_FOUND);
            assert_eq!(get("/breaches/record", &cookie).0, StatusCode::OK);
            let (status, _) = post_json(
                "/api/breaches/record",
                &cookie,
                &csrf,
                &json!({"seen": "3", "breach_id": "B-DPO-1", "aware_at": at(86_400), "risk": "high", "supervisor": "DE"}),
            );
            assert_eq!(status, StatusCode::NOT_FOUND, "another controller's DPO overwrote the breach");
            continue;
        }
        assert_eq!(get("/breaches/record", &cookie).0, StatusCode::FORBIDDEN, "{name}");
        let mut other = breach.clone();
        other["breach_id"] = json!(format!("B-{name}"));
        assert_eq!(
            post_json("/api/breaches/record", &cookie, &csrf, &other).0,
            StatusCode::FORBIDDEN,
            "{name}"
        );
        assert_eq!(
            post_json("/api/requests/record", &cookie, &csrf, &json!({"seen": "0"})).0,
            StatusCode::FORBIDDEN,
            "{name}"
        );
    }
    // Without the session's token nothing is saved.
    let mut forged = done.clone();
    forged["seen"] = json!("3");
    assert_eq!(post_json("/api/breaches/record", &dpo, "forged", &forged).0, StatusCode::FORBIDDEN);
    sound_records();
}
