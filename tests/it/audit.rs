//! The need-to-know audit: exact on labelled data, identical to the per-event loop, right on
//! the edges of every rule.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use custos_engine::audit::{self, Window};
use custos_engine::decision::Judge;
use custos_engine::store::Store;
use custos_policies::Policies;

use crate::{run, stderr, stdout};

fn judge() -> Judge {
    Judge::new(Arc::new(Policies::need_to_know().unwrap())).unwrap()
}

/// Generates and imports a synthetic store; returns (tempdir, export, store).
fn generated(scale: &str, events: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("export");
    let store = tmp.path().join("store");
    let out = run(&[
        "generate",
        "--out",
        export.to_str().unwrap(),
        "--scale",
        scale,
        "--events",
        events,
        "--seed",
        "11",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["import", "--store", store.to_str().unwrap(), export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    (tmp, export, store)
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
    let (_tmp, export, store) = generated("0.03", "300000");
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
    // A million events: the fast path's scenes with placeholder identifiers against a plain
    // loop building every event's real request and entities.
    let (_tmp, _export, store) = generated("0.05", "1000000");
    let store = Store::open(&store).unwrap();
    let judge = judge();
    let window = Window { from: None, to: None };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fast = rt.block_on(audit::audit(&store, &judge, window)).unwrap();
    let slow = audit::naive(&store, &judge, window).unwrap();
    assert!(fast.events >= 990_000, "{}", fast.events);
    assert_eq!(fast.events, slow.events);
    assert!(fast.scenes * 20 < fast.events, "{} scenes for {} events", fast.scenes, fast.events);
    assert_eq!(fast.findings.len(), slow.findings.len());
    assert!(fast.findings == slow.findings, "the findings differ");
}

#[test]
fn a_window_judges_only_the_events_inside_it() {
    let (_tmp, _export, store) = generated("0.01", "50000");
    let store = Store::open(&store).unwrap();
    let judge = judge();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let all = rt.block_on(audit::audit(&store, &judge, Window { from: None, to: None })).unwrap();
    let from = custos_engine::import::parse_timestamp("2023-01-01").unwrap();
    let to = custos_engine::import::parse_timestamp("2024-01-01").unwrap();
    let year = rt.block_on(audit::audit(&store, &judge, Window { from: Some(from), to: Some(to) })).unwrap();
    let inside: Vec<_> = all
        .findings
        .iter()
        .filter(|f| f.ts.as_deref().is_some_and(|t| t >= "2023" && t < "2024"))
        .cloned()
        .collect();
    assert!(year.events < all.events && year.events > 0);
    assert_eq!(year.findings, inside);
    let _ = stdout;
}
