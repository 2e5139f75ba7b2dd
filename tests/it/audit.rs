//! The need-to-know audit: exact on labelled data, identical to the per-event loop, right on
//! the edges of every rule.

use custos_engine::Engine;
use custos_engine::audit::{self, Window};
use std::collections::BTreeSet;
use std::path::Path;

use crate::{generated, run, stderr, stdout};

fn engine(store: &Path) -> Engine {
    Engine::open(store).unwrap()
}

fn labels(export: &Path, prefix: &str) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(export.join("labels/violations.csv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| l.starts_with(prefix))
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_owned(), f[2].to_owned())
        })
        .collect()
}

#[test]
fn the_audit_finds_exactly_the_injected_violations() {
    let (_tmp, export, store) = generated("0.03", "300000", "11");
    let out = run(&["audit", "--store", store.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: BTreeSet<(String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap().to_owned(), f["subject_id"].as_str().unwrap().to_owned()))
        .collect();
    let expected = labels(&export, "NTK-");
    assert!(expected.len() > 100, "too few labels to mean anything: {}", expected.len());
    let missing: Vec<_> = expected.difference(&found).take(10).collect();
    let extra: Vec<_> = found.difference(&expected).take(10).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}\nextra {extra:?}");
}

#[test]
fn the_audit_decides_exactly_as_cedar_called_once_per_event() {
    // A million events: the fast path's scenes with stand-in identifiers against a plain
    // loop building every event's real request and entities.
    let (_tmp, _export, store) = generated("0.05", "1000000", "11");
    let engine = engine(&store);
    let window = Window { from: None, to: None };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fast = rt.block_on(engine.audit(window)).unwrap();
    let slow = audit::naive(engine.store(), engine.judge(), window).unwrap();
    assert!(fast.events >= 990_000, "{}", fast.events);
    assert_eq!(fast.events, slow.events);
    assert!(fast.scenes * 20 < fast.events, "{} scenes for {} events", fast.scenes, fast.events);
    assert_eq!(fast.findings.len(), slow.findings.len());
    assert!(fast.findings == slow.findings, "the findings differ");
}

#[test]
fn a_window_judges_only_the_events_inside_it() {
    let (_tmp, _export, store) = generated("0.01", "50000", "11");
    let engine = engine(&store);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let all = rt.block_on(engine.audit(Window { from: None, to: None })).unwrap();
    let from = custos_engine::import::parse_timestamp("2023-01-01").unwrap();
    let to = custos_engine::import::parse_timestamp("2024-01-01").unwrap();
    let year = rt.block_on(engine.audit(Window { from: Some(from), to: Some(to) })).unwrap();
    let inside: Vec<_> = all
        .findings
        .iter()
        .filter(|f| f.ts.is_some_and(|t| ("2023".."2024").contains(&t.to_string().as_str())))
        .cloned()
        .collect();
    assert!(year.events < all.events && year.events > 0);
    assert_eq!(year.findings, inside);
    let _ = stdout;
}

#[test]
fn each_rule_is_right_on_its_edges() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ntk-edges");
    let out = run(&["import", "--store", store.to_str().unwrap(), fixture.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["audit", "--store", store.to_str().unwrap(), "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: BTreeSet<(String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["event_id"].as_str().unwrap().to_owned(), f["rule"].as_str().unwrap().to_owned()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        // Deactivated at 12:00:00: an event at that very instant is no longer the user's.
        ("E-DEACT-AT", "NTK-USER-ACTIVE"),
        ("E-DEACT-OFFSET", "NTK-USER-ACTIVE"),
        // The French authority joined at 10:00:00; a second before, it had no access.
        ("E-JOIN-BEFORE", "NTK-INVOLVED"),
        // Blocked at 12:00:00: from that instant on.
        ("E-BLOCK-AT", "NTK-BLOCKED"),
        ("E-BLOCK-AFTER", "NTK-BLOCKED"),
        // The Commission takes no part in professional qualifications, nor in this case.
        ("E-COM-NO-PART", "NTK-COMMISSION"),
        ("E-COM-NO-PART", "NTK-INVOLVED"),
        // Rules revision 2. A Commission user needs to take part in the case, even in a
        // domain where its act gives it a role (E-COM-TAKES-PART: it does, lawful).
        ("E-COM-NOT-IN-CASE", "NTK-INVOLVED"),
        // The Commission's Art. 14(6) work breaks no rule: the block at the instant of
        // blocking, the retrieval for a data subject, the deletion at the instant of
        // deletion; a participant's update recording a data subject's request on blocked data
        // is lawful (IMI Art. 19(2)). One microsecond after the deletion, nothing is lawful.
        ("E-COM-DELETE-AFTER", "NTK-DELETED"),
        ("E-VIEW-AFTER-DELETE", "NTK-BLOCKED"),
        ("E-VIEW-AFTER-DELETE", "NTK-DELETED"),
        // A national coordinator gives technical support (IMI Art. 6(1)(d)); on personal data
        // it still has to take part. A competent authority does not give technical support.
        ("E-NC-SUPPORT-PD", "NTK-INVOLVED"),
        ("E-CA-SUPPORT", "NTK-PURPOSE"),
        // Access rights by domain matter for personal data only (E-DOMAIN-NOPD: lawful).
        ("E-DOMAIN-PD", "NTK-DOMAIN"),
    ]
    .into_iter()
    .map(|(e, r)| (e.to_owned(), r.to_owned()))
    .collect();
    assert_eq!(found, expected);
    // Every finding carries the fields rules.md requires.
    for f in doc["findings"].as_array().unwrap() {
        for key in [
            "rule",
            "status",
            "subject_kind",
            "subject_id",
            "due_at",
            "legal_ref",
            "severity",
            "authority_id",
            "member_state",
            "event_id",
            "user_id",
            "case_id",
            "policies",
        ] {
            assert!(f.get(key).is_some(), "{key} missing in {f}");
        }
        assert_eq!(f["status"], "unmet");
        assert_eq!(f["subject_kind"], "event");
    }
}

#[test]
fn explain_shows_the_facts_the_request_and_the_rule_text() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ntk-edges");
    assert!(run(&["import", "--store", store.to_str().unwrap(), fixture.to_str().unwrap()]).status.success());
    let out = run(&["audit", "--store", store.to_str().unwrap(), "--explain", "E-COM-NO-PART"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("\"authority_kind\": \"commission\""), "{text}");
    // The query carries numbers; the explanation names the user, authority and case.
    for id in ["\"user_id\": \"UC\"", "\"authority_id\": \"A-EU-COM\"", "\"case_id\": \"C3\""] {
        assert!(text.contains(id), "{id} in {text}");
    }
    assert!(text.contains("IMI::User::\"UC\""), "{text}");
    assert!(text.contains("Decision: deny by NTK-COMMISSION (IMI Reg. Art. 8(3), 14(6))"), "{text}");
    assert!(text.contains("!resource.domain.commission_participates"), "{text}");
    let out = run(&["audit", "--store", store.to_str().unwrap(), "--explain", "E-NOPE"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no granted event has the id `E-NOPE`"));
}

#[test]
fn findings_are_stored_with_the_policy_hash_and_texts() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ntk-edges");
    assert!(run(&["import", "--store", store.to_str().unwrap(), fixture.to_str().unwrap()]).status.success());
    assert!(run(&["audit", "--store", store.to_str().unwrap()]).status.success());
    let sql = "SELECT f.rule, count(*) AS n, min(t.article) AS article FROM ntk_findings f \
               JOIN policy_texts t ON t.policy_hash = f.policy_hash AND t.id = f.rule GROUP BY f.rule ORDER BY f.rule";
    let out = run(&["query", "--store", store.to_str().unwrap(), "--format", "csv", sql]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "rule,n,article\nNTK-BLOCKED,3,\"IMI Reg. Art. 14(3), 14(6), 19(2)\"\nNTK-COMMISSION,1,\"IMI Reg. Art. 8(3), 14(6)\"\nNTK-DELETED,2,IMI Reg. Art. 14(4)\nNTK-DOMAIN,1,IMI Reg. Art. 9(3)-(4)\nNTK-INVOLVED,4,IMI Reg. Art. 9(6)\nNTK-PURPOSE,1,\"IMI Reg. Art. 9(5), 13, 6(1)(d)\"\nNTK-USER-ACTIVE,2,\"IMI Reg. Art. 9(1), 15(3)\"\n"
    );
    // The store stays verifiable with the audit's commit in it.
    let v = run(&["verify", "--store", store.to_str().unwrap()]);
    assert!(stdout(&v).contains("is intact: 2 entries"), "{}", stdout(&v));
}
