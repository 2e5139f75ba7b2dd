//! `custos check`: exact on labelled data, right on the edges of every rule, blind to facts
//! dated after its instant.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::{generated, run, stderr, stdout};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deadline-edges")
}

fn check_json(store: &Path, as_of: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["check", "--store", store.to_str().unwrap(), "--as-of", as_of, "--format", "json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn findings(doc: &serde_json::Value) -> BTreeSet<(String, String, String, String)> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("null").to_owned();
            (s("rule"), s("subject_id"), s("status"), s("due_at"))
        })
        .collect()
}

#[test]
fn each_deadline_rule_is_right_on_its_edges() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let out = run(&["import", "--store", store.to_str().unwrap(), fixture().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = check_json(&store, "2025-06-02T00:00:00Z", &[]);
    let expected: BTreeSet<(String, String, String, String)> = [
        // A 12-month override: closed 6 March 2023, due 24:00 Brussels on 6 March 2024.
        ("RET-BLOCK", "OVERRIDE-LATE", "late", "2024-03-06T23:00:00Z"),
        // Deleted early without the data subject's consent.
        ("RET-EARLY-DELETE", "EARLY-NO-CONSENT", "unmet", "null"),
        // Agreed day 20 May, responder in Cyprus (UTC+3): the day ends at 21:00 UTC.
        ("RT-LATE", "CY-LATE", "late", "2025-05-20T21:00:00Z"),
        // Two responders, in France and Cyprus: the first by identifier (A-CY-1, numbered
        // after A-FR-1 at import) must answer, so the day ends in Cyprus, at 21:00 UTC. A third,
        // A-AT-1, joins on 1 July 2025, after the check's instant: not yet known.
        ("RT-LATE", "TWO-RESPONDERS", "late", "2025-05-20T21:00:00Z"),
        // Deactivated Friday 10 January; one day ends on Saturday, so on Monday 13th.
        ("RET-USER-BLOCK", "U-LATE-BLOCK", "late", "2025-01-13T23:00:00Z"),
        // Received 15 January; the month ends Saturday 15 February, so Monday 17th; the
        // extension came on the 18th: void, and the answer is late against one month.
        ("DSR-EXTENSION", "R-EXT-LATE", "late", "2025-02-17T23:00:00Z"),
        ("DSR-RESPOND", "R-EXT-LATE", "late", "2025-02-17T23:00:00Z"),
        ("DSR-REFUSAL", "R-REFUSED-NO-REMEDY", "unmet", "null"),
        // Fifteen working days of the institutions from 20 December 2024: 22 January.
        ("DSR-IMI-USER", "R-IMI-ERASURE-LATE", "late", "2025-01-22T23:00:00Z"),
        // Aware 10:37, 72 hours end at 11:00; notified at 11:37, in hour 73.
        ("BRE-NOTIFY", "B-H73-REASONS", "late", "2025-03-06T11:00:00Z"),
        ("BRE-NOTIFY", "B-H73-NOREASONS", "late", "2025-03-06T11:00:00Z"),
        ("BRE-DELAY-REASONS", "B-H73-NOREASONS", "unmet", "null"),
    ]
    .into_iter()
    .map(|(a, b, c, d)| (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned()))
    .collect();
    assert_eq!(findings(&doc), expected);
    // Custos's own periods are labelled as such.
    assert!(doc["defaults"]["BRE-DPO"].as_str().unwrap().contains("Custos default"));
    let two =
        doc["findings"].as_array().unwrap().iter().find(|f| f["subject_id"] == "TWO-RESPONDERS").unwrap();
    assert_eq!((&two["authority_id"], &two["member_state"]), (&"A-CY-1".into(), &"CY".into()));
    let user = doc["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "RET-USER-BLOCK").unwrap();
    assert!(user["default_period"].as_str().unwrap().contains("the law sets no period"), "{user}");
}

#[test]
fn defaults_are_configurable_and_imported_holidays_count() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    assert!(
        run(&["import", "--store", store.to_str().unwrap(), fixture().to_str().unwrap()]).status.success()
    );
    let late_block = |doc: &serde_json::Value| findings(doc).iter().any(|f| f.0 == "RET-USER-BLOCK");
    assert!(late_block(&check_json(&store, "2025-06-02T00:00:00Z", &[])));
    assert!(!late_block(&check_json(&store, "2025-06-02T00:00:00Z", &["--user-block-days", "5"])));
    // A holiday of the Union institutions on Monday 13 January carries the day to Tuesday.
    let holidays = tmp.path().join("holidays.csv");
    std::fs::write(&holidays, "calendar,date\nEU,2025-01-13\n").unwrap();
    assert!(
        run(&["import", "--store", store.to_str().unwrap(), holidays.to_str().unwrap()]).status.success()
    );
    assert!(!late_block(&check_json(&store, "2025-06-02T00:00:00Z", &[])));
}

#[test]
fn due_soon_lists_what_falls_due_within_the_horizon() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    assert!(
        run(&["import", "--store", store.to_str().unwrap(), fixture().to_str().unwrap()]).status.success()
    );
    // On 1 February 2025 the request of 15 January is open; its month ends 17 February.
    let doc = check_json(&store, "2025-02-01T00:00:00Z", &["--horizon", "20d"]);
    let soon: Vec<_> = findings(&doc).into_iter().filter(|f| f.2 == "due_soon").collect();
    assert!(
        soon.contains(&(
            "DSR-RESPOND".into(),
            "R-EXT-LATE".into(),
            "due_soon".into(),
            "2025-02-17T23:00:00Z".into()
        )),
        "{soon:?}"
    );
    // The facts of later dates are not known yet: no lateness is found on that day.
    assert!(findings(&doc).iter().all(|f| f.1 != "R-EXT-LATE" || f.2 == "due_soon"));
    let doc = check_json(&store, "2025-02-01T00:00:00Z", &["--horizon", "5d"]);
    assert!(findings(&doc).iter().all(|f| f.1 != "R-EXT-LATE"));
}

#[test]
fn the_check_finds_exactly_the_injected_violations() {
    let (_tmp, export, store) = generated("0.05", "1000", "5");
    let about: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("labels/about.json")).unwrap()).unwrap();
    let doc = check_json(&store, about["as_of"].as_str().unwrap(), &[]);
    let found: BTreeSet<(String, String)> =
        findings(&doc).into_iter().filter(|f| f.2 != "due_soon").map(|f| (f.0, f.1)).collect();
    let text = std::fs::read_to_string(export.join("labels/violations.csv")).unwrap();
    let expected: BTreeSet<(String, String)> = text
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("NTK-"))
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_owned(), f[2].to_owned())
        })
        .collect();
    assert!(expected.len() > 100, "{}", expected.len());
    let missing: Vec<_> = expected.difference(&found).take(10).collect();
    let extra: Vec<_> = found.difference(&expected).take(10).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}\nextra {extra:?}");
}

#[test]
fn facts_dated_after_the_instant_never_change_the_check() {
    // Property: for several instants and several random additions of later facts, the
    // check's output is the same with and without them.
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("export");
    assert!(
        run(&[
            "generate",
            "--out",
            export.to_str().unwrap(),
            "--scale",
            "0.02",
            "--events",
            "1000",
            "--seed",
            "9"
        ])
        .status
        .success()
    );
    let base = tmp.path().join("base");
    assert!(run(&["import", "--store", base.to_str().unwrap(), export.to_str().unwrap()]).status.success());
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (n, as_of) in
        ["2022-06-30T12:00:00Z", "2024-02-29T00:00:00Z", "2025-10-26T01:30:00Z"].iter().enumerate()
    {
        let before = check_json(&base, as_of, &[]);
        let later = later_facts(&export, &tmp.path().join(format!("later{n}")), as_of, &mut next);
        let store = tmp.path().join(format!("store{n}"));
        assert!(
            run(&["import", "--store", store.to_str().unwrap(), later.to_str().unwrap()]).status.success()
        );
        let after = check_json(&store, as_of, &[]);
        assert_eq!(before["findings"], after["findings"], "as of {as_of}");
        assert!(!before["findings"].as_array().unwrap().is_empty());
    }
    let _ = stdout;
}

/// A copy of `export` where random empty instants of cases, requests and breaches are filled
/// with instants after `as_of`, and a new case, request and breach start after it.
fn later_facts(export: &Path, out: &Path, as_of: &str, next: &mut dyn FnMut() -> u64) -> PathBuf {
    std::fs::create_dir_all(out).unwrap();
    let t = custos_engine::import::parse_timestamp(as_of).unwrap();
    for entry in std::fs::read_dir(export).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let headers = reader.headers().unwrap().clone();
        let mut writer = csv::Writer::from_path(out.join(&name)).unwrap();
        writer.write_record(&headers).unwrap();
        let fillable: Vec<usize> = headers
            .iter()
            .enumerate()
            .filter(|(_, h)| {
                matches!(
                    *h,
                    "blocked_at"
                        | "deleted_at"
                        | "closed_at"
                        | "answered_at"
                        | "responded_at"
                        | "completed_at"
                        | "extension_notified_at"
                        | "notified_at"
                        | "dpo_informed_at"
                        | "subjects_notified_at"
                        | "deactivated_at"
                )
            })
            .map(|(i, _)| i)
            .collect();
        let mut first: Option<Vec<String>> = None;
        for record in reader.records() {
            let mut fields: Vec<String> = record.unwrap().iter().map(str::to_owned).collect();
            first.get_or_insert_with(|| fields.clone());
            for &i in &fillable {
                if fields[i].is_empty() && next().is_multiple_of(3) {
                    let later = t + 1_000_000 + (next() % (400 * 86_400)) as i64 * 1_000_000;
                    fields[i] = custos_engine::finding::format_micros(later);
                }
            }
            writer.write_record(&fields).unwrap();
        }
        // A subject that begins after the instant, all its instants later too.
        if let (Some(mut row), true) =
            (first, ["cases.csv", "dsr_requests.csv", "breaches.csv"].contains(&name.as_str()))
        {
            row[0] = format!("LATER-{name}");
            for f in row.iter_mut() {
                if custos_engine::import::parse_timestamp(f).is_some() {
                    *f = custos_engine::finding::format_micros(t + 86_400_000_000);
                }
            }
            writer.write_record(&row).unwrap();
        }
        writer.flush().unwrap();
    }
    out.to_path_buf()
}

#[test]
fn the_canonical_form_decides_exactly_as_cedar_asked_about_every_subject() {
    use custos_engine::deadline::{self, Defaults, Options};
    let (_tmp, _export, store) = generated("0.05", "1000", "3");
    let store = custos_engine::store::Store::open(&store).unwrap();
    let policies = std::sync::Arc::new(custos_policies::Policies::deadlines().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    for as_of in ["2023-01-01", "2026-07-01"] {
        let options = Options {
            as_of: custos_engine::import::parse_timestamp(as_of).unwrap(),
            horizon: 30 * 86_400_000_000,
            defaults: Defaults::default(),
        };
        let fast = rt.block_on(deadline::check(&store, policies.clone(), &options)).unwrap();
        let slow = rt.block_on(deadline::check_naive(&store, policies.clone(), &options)).unwrap();
        assert_eq!(fast.subjects, slow.subjects);
        assert!(
            fast.evaluations * 10 < fast.subjects,
            "{} evaluations for {} subjects",
            fast.evaluations,
            fast.subjects
        );
        assert!(fast.findings == slow.findings, "as of {as_of}");
    }
}
