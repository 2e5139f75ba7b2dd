//! Reviewing findings over HTTP: every role × every action (`review`, `refer`) × a finding in
//! its scope and one out of it; two reviewers at once; CSRF; the queue, a selection, and the
//! access log that records who saw whom.

use super::*;
use custos_engine::review::key;
use serde_json::{Value, json};

/// The session's CSRF token, as every page's logout form carries it.
fn token(cookie: &str) -> String {
    let (status, _, body) = get("/policies", cookie);
    assert_eq!(status, StatusCode::OK);
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

fn post_form(path: &str, cookie: &str, form: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    send(
        Request::post(path)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.to_owned()))
            .unwrap(),
    )
}

fn path(key: &str) -> String {
    format!("/api/review/{}", custos_dashboard::page::encode(key))
}

/// Every finding of the data shown: need-to-know and deadline findings.
fn all_findings() -> Vec<Finding> {
    let data = world().state.data();
    data.ntk.iter().chain(&data.deadlines).cloned().collect()
}

/// The DE user with the most need-to-know findings: the selection test's.
fn bulk_user() -> Option<String> {
    let data = world().state.data();
    let mut by_user: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in data.ntk.iter().filter(|f| f.member_state.as_deref() == Some("DE")) {
        *by_user.entry(f.user_id.as_deref().unwrap()).or_default() += 1;
    }
    by_user.iter().rev().max_by_key(|(_, n)| **n).map(|(u, _)| (*u).to_owned())
}

/// `verify` finds nothing wrong with the reviews and the access log (another test of this
/// binary alters and plants reports in the store: those it names).
fn sound_records() {
    let v = custos_engine::store::Store::verify(&world().state.store_dir).unwrap();
    let problems = format!("{:?}", v.problems);
    assert!(!problems.contains("dispositions") && !problems.contains("trail"), "{problems}");
    assert!(v.entries > 0);
}

fn dpo_controller() -> String {
    let accounts = world().state.accounts.now(&world().state.sessions);
    accounts.all().iter().find(|a| a.role == "dpo").unwrap().controller.clone().unwrap()
}

#[test]
fn every_role_reviews_and_refers_exactly_the_findings_of_its_scope() {
    let findings = all_findings();
    let ctl = dpo_controller();
    for (name, may) in
        [("edps", true), ("dpa-de", true), ("dpo", true), ("commission", false), ("admin", false)]
    {
        let cookie = login(name);
        let csrf = token(&cookie);
        // Findings of this role's scope not touched by another test (keyed by rule and event).
        let busiest = bulk_user();
        let mut inside = findings
            .iter()
            .rev()
            .filter(|f| in_scope(name, f, &ctl) && f.rule.starts_with("NTK-") && f.user_id != busiest);
        let outside = findings
            .iter()
            .find(|f| !in_scope(name, f, &ctl) && f.member_state.as_deref() == Some("FR"))
            .unwrap();
        let due = "2027-02-28";
        for (action, change) in [
            ("review", json!({"state": "under_review", "seen": "0", "note": "looking"})),
            ("refer", json!({"state": "referred", "seen": "0", "referred_to": "A-X", "answer_due": due})),
        ] {
            if may {
                // One nobody reviewed yet (the DPO's controller, the Commission, is a Union
                // actor: its findings are the EDPS's too).
                let f =
                    inside.find(|f| world().state.reviews.lock().unwrap().latest(&key(f)).is_none()).unwrap();
                let (status, body) = post_json(&path(&key(f)), &cookie, &csrf, &change);
                assert_eq!(status, StatusCode::OK, "{name} {action} in scope: {body}");
                assert_eq!(body["disposition"]["by"], name);
                assert_eq!(body["disposition"]["version"], 1);
                let (_, _, page) = get(&path(&key(f)), &cookie);
                let page: Value = serde_json::from_str(&page).unwrap();
                assert_eq!(page["history"].as_array().unwrap().len(), 1, "{name}");
            } else {
                // Roles without detail see no finding: a review is refused as of one unknown.
                let f = findings.iter().find(|f| f.member_state.as_deref() == Some("DE")).unwrap();
                let (status, _) = post_json(&path(&key(f)), &cookie, &csrf, &change);
                assert_eq!(status, StatusCode::NOT_FOUND, "{name} {action}");
            }
            // Out of scope answers exactly as a finding that does not exist, and changes nothing.
            let (status, body) = post_json(&path(&key(outside)), &cookie, &csrf, &change);
            let (status_none, body_none) =
                post_json(&path("NTK-DOMAIN:event:NO-SUCH"), &cookie, &csrf, &change);
            assert_eq!(status, StatusCode::NOT_FOUND, "{name} {action} out of scope");
            assert_eq!(status_none, StatusCode::NOT_FOUND);
            assert_eq!(
                body.as_str().map(|s| s.replace(&key(outside), "K")),
                body_none.as_str().map(|s| s.replace("NTK-DOMAIN:event:NO-SUCH", "K"))
            );
        }
        assert!(world().state.reviews.lock().unwrap().history(&key(outside)).is_empty());
        // The queue is the role's: its own findings only, refused to roles without detail.
        let (status, _, body) = get("/api/review?state=all", &cookie);
        if may {
            assert_eq!(status, StatusCode::OK, "{name}");
            let body: Value = serde_json::from_str(&body).unwrap();
            for item in body["findings"].as_array().unwrap() {
                let f: Finding = serde_json::from_value(item["finding"].clone()).unwrap();
                assert!(in_scope(name, &f, &ctl), "{name} queue holds {f:?}");
            }
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{name}");
        }
    }
}

#[test]
fn a_second_reviewer_gets_a_conflict_with_the_current_state_and_no_update_is_lost() {
    let f = all_findings().into_iter().filter(|f| f.member_state.as_deref() == Some("EU")).nth(3).unwrap();
    let k = key(&f);
    let (a, b) = (login("edps"), login("edps-2"));
    let (ta, tb) = (token(&a), token(&b));
    let (status, _) = post_json(&path(&k), &a, &ta, &json!({"state": "under_review", "seen": "0"}));
    assert_eq!(status, StatusCode::OK);
    let (status, body) = post_json(&path(&k), &b, &tb, &json!({"state": "confirmed", "seen": "0"}));
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["current"]["version"], 1);
    assert_eq!(body["current"]["by"], "edps");
    assert!(body["error"].as_str().unwrap().contains("changed since you saw version 0"));
    // The same through the form, without JavaScript: the page as it is now, saying why.
    let form = format!("csrf={tb}&seen=0&state=confirmed&note=n");
    let (status, _, html) = post_form(&format!("/review/{}", custos_dashboard::page::encode(&k)), &b, &form);
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("Not saved") && html.contains("under_review"), "{html}");
    // Having seen version 1, the second reviewer's decision goes through as version 2.
    let form = format!("csrf={tb}&seen=1&state=false_positive&note=a+colleague%27s+own+case");
    let (status, headers, _) =
        post_form(&format!("/review/{}", custos_dashboard::page::encode(&k)), &b, &form);
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(headers.get(header::LOCATION).unwrap().to_str().unwrap().starts_with("/review/"));
    let reviews = world().state.reviews.lock().unwrap().clone();
    let history = reviews.history(&k);
    assert_eq!(
        history.iter().map(|d| (d.version, d.by.as_str())).collect::<Vec<_>>(),
        [(1, "edps"), (2, "edps-2")]
    );
    assert_eq!(history[1].policy_hash.len(), 64, "the policy set's hash is kept");
    // A change without the session's token changes nothing.
    let (status, _) = post_json(&path(&k), &b, "forged", &json!({"state": "under_review", "seen": "2"}));
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post_form(
        &format!("/review/{}", custos_dashboard::page::encode(&k)),
        &b,
        "seen=2&state=under_review",
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(world().state.reviews.lock().unwrap().history(&k).len(), 2);
    // The store holds both versions under its chain.
    sound_records();
}

#[test]
fn a_selection_is_disposed_of_at_once_after_a_confirmation_and_the_access_log_shows_who_saw_whom() {
    let dpa = login("dpa-de");
    let csrf = token(&dpa);
    // The need-to-know findings of one DE user.
    let data = world().state.data();
    let mut by_user: std::collections::BTreeMap<&str, Vec<&Finding>> = Default::default();
    for f in data.ntk.iter().filter(|f| f.member_state.as_deref() == Some("DE")) {
        by_user.entry(f.user_id.as_deref().unwrap()).or_default().push(f);
    }
    let user = bulk_user().unwrap();
    let mine = &by_user[user.as_str()];
    assert!(mine.len() >= 2, "a user with several findings");
    let filter = format!("state=open&user={user}");
    let (status, _, page) = get(&format!("/review/bulk?{filter}"), &dpa);
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&format!("Dispose of {} findings", mine.len())), "{page}");
    let (_, _, json_page) = get(&format!("/review/bulk?{filter}"), &dpa);
    let items = json_page
        .split("name=\"items\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&quot;", "\"")
        .replace("&#34;", "\"");
    let items: Value = serde_json::from_str(&items).unwrap();
    assert_eq!(items.as_array().unwrap().len(), mine.len());
    let (status, body) = post_json(
        "/api/review/bulk",
        &dpa,
        &csrf,
        &json!({"items": items, "state": "justified", "ground": "consent of 2025-01-10", "note": "one justification"}),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["dispositions"].as_array().unwrap().len(), mine.len());
    for f in mine {
        let d = world().state.reviews.lock().unwrap().latest(&key(f)).cloned().unwrap();
        assert_eq!((d.state.as_str(), d.ground.as_deref()), ("justified", Some("consent of 2025-01-10")));
    }
    // Once more with the same versions: refused as a whole.
    let (status, _) =
        post_json("/api/review/bulk", &dpa, &csrf, &json!({"items": items, "state": "under_review"}));
    assert_eq!(status, StatusCode::CONFLICT);
    // The DPA looked at a finding of its member state: the access log has it.
    let f = mine[0];
    let (status, _, _) = get(&path(&key(f)), &dpa);
    assert_eq!(status, StatusCode::OK);
    world().state.flush_visits().unwrap();
    let admin = login("admin");
    let (status, _, log) = get("/api/trail?user=dpa-de&item_kind=finding", &admin);
    assert_eq!(status, StatusCode::OK);
    let log: Value = serde_json::from_str(&log).unwrap();
    let visits = log["visits"].as_array().unwrap();
    assert!(!visits.is_empty());
    // The administrator sees who looked and when, never whom: the item is not in its scope.
    assert!(
        visits.iter().all(|v| v["item"] == "(not in your scope)" && v["member_state"] == "DE"),
        "{visits:?}"
    );
    assert!(!log.to_string().contains(&key(f)));
    // The EDPS sees the trail but not the DE items either; a DPA does not see the trail.
    let (status, _, body) = get("/api/trail", &login("edps"));
    assert_eq!(status, StatusCode::OK);
    assert!(!body.contains(&key(f)));
    assert_eq!(get("/api/trail", &dpa).0, StatusCode::FORBIDDEN);
    // Reading the log is itself logged.
    world().state.flush_visits().unwrap();
    let (_, _, body) = get("/api/trail?item_kind=trail&user=admin", &admin);
    assert!(body.contains("\"item_kind\":\"trail\""), "{body}");
    sound_records();
}

#[test]
fn a_review_of_a_finding_no_longer_found_keeps_its_history_and_is_closed() {
    let state = &world().state;
    // A finding that no run of the data shown produces, reviewed earlier (by another server).
    let gone = Finding {
        rule: "NTK-DOMAIN".into(),
        subject_kind: custos_engine::finding::SubjectKind::Event,
        subject_id: "E-GONE".into(),
        event_id: Some("E-GONE".into()),
        member_state: Some("DE".into()),
        authority_id: Some("A-DE-GONE".into()),
        ..Finding::default()
    };
    let store = custos_engine::store::Store::open(&state.store_dir).unwrap();
    let mut other = custos_engine::review::Reviews::load(&store).unwrap();
    let change = custos_engine::review::Change {
        state: custos_engine::review::State::Confirmed,
        by: "elsewhere".into(),
        role: "dpa".into(),
        ..Default::default()
    };
    other.record(&store, &[(&gone, "h", 0)], &change, custos_engine::finding::Instant(1)).unwrap();
    world().rt.block_on(state.refresh()).unwrap();
    let dpa = login("dpa-de");
    let (status, _, body) = get(&path(&key(&gone)), &dpa);
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((body["found"].as_bool(), body["state"].as_str()), (Some(false), Some("confirmed")));
    let (_, _, html) = get(&format!("/review/{}", custos_dashboard::page::encode(&key(&gone))), &dpa);
    assert!(html.contains("no longer found") && !html.contains("Change the review"));
    let (status, _) =
        post_json(&path(&key(&gone)), &dpa, &token(&dpa), &json!({"state": "under_review", "seen": "1"}));
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[test]
fn the_overview_counts_each_reviewers_work_and_precision_is_for_those_who_see_statistics() {
    let dpa = login("dpa-de");
    let (status, _, body) = get("/api/overview", &dpa);
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_str(&body).unwrap();
    let states = &body["reviews"]["states"];
    let total: u64 = states.as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    let de = all_findings().iter().filter(|f| f.member_state.as_deref() == Some("DE")).count() as u64;
    assert_eq!(total, de, "every DE finding is counted once, in its state: {states}");
    assert!(body["reviews"]["overdue_referrals"].is_u64());
    // The Commission reviews nothing: no such figures.
    let (_, _, body) = get("/api/overview", &login("commission"));
    assert!(serde_json::from_str::<Value>(&body).unwrap()["reviews"].is_null());
    // A decision shows in the precision of its rule.
    let f = all_findings()
        .into_iter()
        .find(|f| f.member_state.as_deref() == Some("DE") && f.rule.starts_with("USR-"));
    if let Some(f) = f {
        let csrf = token(&dpa);
        let seen = world().state.reviews.lock().unwrap().latest(&key(&f)).map_or(0, |d| d.version);
        let (status, body) =
            post_json(&path(&key(&f)), &dpa, &csrf, &json!({"state": "confirmed", "seen": seen.to_string()}));
        assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{body}");
        let (status, _, body) = get(&format!("/api/precision?rule={}", f.rule), &login("edps"));
        assert_eq!(status, StatusCode::OK);
        let body: Value = serde_json::from_str(&body).unwrap();
        let rule = &body["precision"]["rule"][0];
        assert_eq!(rule["group"], f.rule.as_str());
        assert!(rule["tally"]["confirmed"].as_u64().unwrap() >= 1, "{body}");
    }
}
