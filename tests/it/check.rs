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
        // Two responders, in France and Cyprus, each by the end of the agreed day in its own
        // time: answered at 21:30 UTC, late in Cyprus (21:00 UTC), on time in France (22:00
        // UTC). A third, A-AT-1, joins on 1 July 2025, after the check's instant: not yet known.
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
        // An IMI user's request is also one to a Union controller (EUDPR Art. 14(3)): one
        // month from 20 December ends Monday 20 January.
        ("DSR-RESPOND", "R-IMI-ERASURE-HOLIDAY", "late", "2025-01-20T23:00:00Z"),
        ("DSR-RESPOND", "R-IMI-ERASURE-LATE", "late", "2025-01-20T23:00:00Z"),
        // Never logged in since registering on 1 January 2020: twelve months end on New Year's
        // Day 2021, a holiday in France, so on Monday 4 January.
        ("USR-DORMANT", "U-ACTIVE", "overdue", "2021-01-04T23:00:00Z"),
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
        let out = run(&["import", "--store", store.to_str().unwrap(), later.to_str().unwrap()]);
        assert!(out.status.success(), "{}", crate::stderr(&out));
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
            // Filled instants keep the order import demands (created, closed, blocked,
            // deleted): after every instant of the row, a second more for each column further
            // right, and never left of a column that holds one already.
            let latest = fields.iter().filter_map(|f| custos_engine::import::parse_timestamp(f)).max();
            let later = latest.unwrap_or(t).max(t) + 1_000_000 + (next() % (400 * 86_400)) as i64 * 1_000_000;
            for (n, &i) in fillable.iter().enumerate() {
                let right_is_empty = fillable[n + 1..].iter().all(|&j| fields[j].is_empty());
                if fields[i].is_empty() && right_is_empty && next().is_multiple_of(3) {
                    fields[i] = custos_engine::finding::format_micros(later + i as i64 * 1_000_000);
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
    let engine = custos_engine::Engine::open(&store).unwrap();
    let (store, policies) = (engine.store(), engine.deadline_policies());
    let rt = tokio::runtime::Runtime::new().unwrap();
    for as_of in ["2023-01-01", "2026-07-01"] {
        let options = Options {
            as_of: custos_engine::import::parse_timestamp(as_of).unwrap(),
            horizon: 30 * 86_400_000_000,
            defaults: Defaults::default(),
            registers_only: false,
        };
        let fast = rt.block_on(engine.check(&options)).unwrap();
        let slow = rt.block_on(deadline::check_naive(store, policies.clone(), &options)).unwrap();
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

/// The edges of rules.md revision 2 (issue 16): responders at the agreed day, anniversary
/// days in Brussels, repositories by their domain's act, severities, IMI users' requests,
/// the extended period read in the controller's favour, and the two access-rights rules.
#[test]
fn revision_2_edges_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules-rev2");
    let out = run(&["import", "--store", store.to_str().unwrap(), fixture.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = check_json(&store, "2027-06-01T00:00:00Z", &[]);
    let got: BTreeSet<[String; 6]> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("null").to_owned();
            [s("rule"), s("subject_id"), s("status"), s("due_at"), s("severity"), s("authority_id")]
        })
        .collect();
    let expected: BTreeSet<[String; 6]> = [
        // Forwarded from France to Cyprus before its day: Cyprus's, its day ending 21:00 UTC.
        ["RT-LATE", "FORWARDED", "late", "2025-05-20T21:00:00Z", "violation", "A-CY-1"],
        // (FORWARDED-TO-FR: forwarded from Cyprus to France, answered at 21:30 UTC, before
        // the day ends in Paris at 22:00 UTC: on time, though Cyprus is first by identifier.)
        // Two responders at once, in two zones: one finding each, each at its own midnight.
        ["RT-LATE", "TWO-ZONES", "overdue", "2025-05-20T21:00:00Z", "violation", "A-CY-1"],
        ["RT-LATE", "TWO-ZONES", "overdue", "2025-05-20T22:00:00Z", "violation", "A-FR-1"],
        // Austria joined after the day ended: not one of those who had to answer by it.
        ["RT-LATE", "JOINED-AFTER", "overdue", "2025-05-20T21:00:00Z", "violation", "A-CY-1"],
        // Nobody held the role when the day ended: the one who held it last before.
        ["RT-LATE", "NONE-HOLDING", "overdue", "2025-05-20T21:00:00Z", "violation", "A-CY-1"],
        // Closed at 00:30 Brussels on 1 March 2022: the anniversary day is 1 March 2025,
        // from 23:00 UTC on 28 February; deleted one second before it.
        ["RET-EARLY-DELETE", "BXL-AFTER-MIDNIGHT", "unmet", "null", "warning", "A-EU-COM"],
        // Closed on 29 February 2024: the anniversary day is 28 February 2027.
        ["RET-EARLY-DELETE", "LEAP-EARLY", "unmet", "null", "warning", "A-EU-COM"],
        // A repository basis in a domain whose act provides no repository exempts nothing.
        ["RET-BLOCK", "REPO-NO-ACT", "overdue", "2022-07-11T22:00:00Z", "violation", "A-EU-COM"],
        ["RET-DELETE", "REPO-NO-ACT", "overdue", "2025-01-10T23:00:00Z", "violation", "A-EU-COM"],
        // Rights in SOLVIT at an authority competent only for services.
        ["USR-RIGHTS", "U-RIGHTS-OUT", "unmet", "null", "violation", "A-CY-1"],
        // Last login Saturday 15 May 2026: twelve months end on Saturday 15 May 2027, carried
        // past Sunday and Whit Monday to Tuesday 18 May, 24:00 Berlin.
        ["USR-DORMANT", "U-DORMANT", "overdue", "2027-05-18T22:00:00Z", "warning", "A-DE-1"],
        // Only a refused login: counted from registration, 20 May 2026.
        ["USR-DORMANT", "U-DORMANT-REFUSED", "overdue", "2027-05-20T22:00:00Z", "warning", "A-DE-1"],
        ["USR-DORMANT", "U-FRESH", "due_soon", "2027-06-10T22:00:00Z", "warning", "A-DE-1"],
        // A login dated after the check's instant is not known: 1 May 2026 counts (1 May
        // 2027 is a Saturday and Labour Day, so Monday 3 May).
        ["USR-DORMANT", "U-LOGIN-LATER", "overdue", "2027-05-03T22:00:00Z", "warning", "A-DE-1"],
        // An IMI user's request is a request to a Union controller: EUDPR Art. 14(3).
        ["DSR-RESPOND", "R-IMI-ACCESS-LATE", "late", "2025-02-17T23:00:00Z", "violation", "A-EU-COM"],
        // Answered within the month but after fifteen working days: the Commission's
        // commitment, a warning.
        ["DSR-IMI-USER", "R-IMI-RECT-15WD", "late", "2025-02-05T23:00:00Z", "warning", "A-EU-COM"],
        // Extended: the month ends Monday 17 February (15th a Saturday); two further months
        // end 17 April, later than three months from receipt (15 April). Answered the 18th.
        ["DSR-RESPOND", "R-EXTENDED-LATE", "late", "2025-04-17T22:00:00Z", "violation", "A-DE-1"],
        // Notified in hour 73: with reasons a warning, without a violation.
        ["BRE-NOTIFY", "B-REASONS", "late", "2025-03-06T11:00:00Z", "warning", "A-DE-1"],
        ["BRE-NOTIFY", "B-NOREASONS", "late", "2025-03-06T11:00:00Z", "violation", "A-DE-1"],
        ["BRE-DELAY-REASONS", "B-NOREASONS", "unmet", "null", "violation", "A-DE-1"],
        // Only the approximate numbers missing: a warning; the nature missing: a violation,
        // one finding.
        ["BRE-CONTENT", "B-APPROX-MISSING", "unmet", "null", "warning", "A-DE-1"],
        ["BRE-CONTENT", "B-NATURE-MISSING", "unmet", "null", "violation", "A-DE-1"],
        // The rules revision 2 left as they were, at one edge each.
        ["CASE-SPECIAL", "SPECIAL-NO-BASIS", "unmet", "null", "violation", "A-DE-1"],
        // Last activity 1 March: two months end Saturday 1 May (Labour Day), so Monday 3 May.
        ["RET-INACTIVE", "INACTIVE", "overdue", "2027-05-03T22:00:00Z", "warning", "A-DE-1"],
        // Thirty days from 15 January end Friday 14 February; completed on the 20th.
        ["DSR-IMI-CORRECT", "R-CORRECT-LATE", "late", "2025-02-14T23:00:00Z", "violation", "A-DE-1"],
        // Deactivated 5 January 2024: three years end 5 January 2027, 24:00 Brussels.
        ["RET-USER-DELETE", "U-NOT-DELETED", "overdue", "2027-01-05T23:00:00Z", "violation", "A-EU-COM"],
        ["BRE-DPO", "B-HIGH-DPO-SUBJECTS", "late", "2025-03-06T11:00:00Z", "warning", "A-DE-1"],
        ["BRE-SUBJECTS", "B-HIGH-DPO-SUBJECTS", "overdue", "2025-03-06T11:00:00Z", "warning", "A-DE-1"],
    ]
    .into_iter()
    .map(|f| f.map(str::to_owned))
    .collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:#?}\nextra {extra:#?}");
    // `--fail-on-findings` counts violations; `--fail-on warnings` counts warnings too.
    let fails = |extra: &[&str]| {
        let mut args =
            vec!["check", "--store", store.to_str().unwrap(), "--as-of", "2027-06-01", "--fail-on-findings"];
        args.extend_from_slice(extra);
        run(&args).status.code()
    };
    assert_eq!(fails(&[]), Some(1));
    assert_eq!(fails(&["--fail-on", "warnings"]), Some(1));
    // USR-RIGHTS lists the domains outside the authority's areas.
    let rights = doc["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "USR-RIGHTS").unwrap();
    assert_eq!(rights["detail"], "solvit", "{rights}");
    // USR-DORMANT's period is a Custos default, configurable.
    let doc = check_json(&store, "2027-06-01T00:00:00Z", &["--dormant-months", "24"]);
    assert!(doc["findings"].as_array().unwrap().iter().all(|f| f["rule"] != "USR-DORMANT"), "{doc}");
}

/// Only warnings: `--fail-on-findings` passes unless asked to count warnings.
#[test]
fn fail_on_findings_counts_violations_unless_told_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("export");
    std::fs::create_dir(&export).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules-rev2");
    for table in ["authorities", "breaches"] {
        std::fs::copy(fixture.join(format!("{table}.csv")), export.join(format!("{table}.csv"))).unwrap();
    }
    // Keep only the breach notified late with reasons (a warning).
    let breaches = std::fs::read_to_string(export.join("breaches.csv")).unwrap();
    let kept: Vec<&str> =
        breaches.lines().filter(|l| l.starts_with("breach_id") || l.starts_with("B-REASONS")).collect();
    std::fs::write(export.join("breaches.csv"), kept.join("\n") + "\n").unwrap();
    let store = tmp.path().join("store");
    let out = run(&["import", "--store", store.to_str().unwrap(), export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let code = |extra: &[&str]| {
        let mut args =
            vec!["check", "--store", store.to_str().unwrap(), "--as-of", "2025-06-01", "--fail-on-findings"];
        args.extend_from_slice(extra);
        run(&args).status.code()
    };
    assert_eq!(code(&[]), Some(0));
    assert_eq!(code(&["--fail-on", "warnings"]), Some(1));
}
