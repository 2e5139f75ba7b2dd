//! `custos report`: golden files of each kind on the analytics fixture, the PDF's pages and
//! text, its first page rendered, determinism, and the Commission's report protected.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{run, stderr, stdout};

/// The analytics fixture, imported and audited.
fn store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/analytics");
    let out = run(&["import", "--store", store.to_str().unwrap(), fixture.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["audit", "--store", store.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    (tmp, store)
}

fn report(store: &Path, out: &Path, kind: &str, extra: &[&str]) -> Vec<PathBuf> {
    let mut args = vec![
        "report",
        "--store",
        store.to_str().unwrap(),
        "--year",
        "2024",
        "--out",
        out.to_str().unwrap(),
        "--kind",
        kind,
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).lines().map(PathBuf::from).collect()
}

/// The HTML without what changes from one import to the next (the store's head, the audit's
/// time and policy hash are checked elsewhere).
fn stable(html: &str, store: &Path) -> String {
    let head = custos_engine::store::Store::open(store).unwrap().head().to_owned();
    let mut out = html.replace(&head, "[store head]");
    if let Some(i) = out.find("<dt>Need-to-know audit</dt><dd>") {
        let start = i + "<dt>Need-to-know audit</dt><dd>".len();
        let end = start + out[start..].find("</dd>").unwrap();
        out.replace_range(start..end, "[audit]");
    }
    if let Some(i) = out.find("latest audit found them (") {
        let start = i + "latest audit found them (".len();
        let end = start + out[start..].find(")").unwrap();
        out.replace_range(start..end, "[audit]");
    }
    if let Some(i) = out.find("Need-to-know policy set ") {
        let start = i + "Need-to-know policy set ".len();
        out.replace_range(start..start + 64, "[policy hash]");
    }
    out
}

#[test]
fn each_kind_of_report_matches_its_reviewed_golden_file() {
    let (tmp, store) = store();
    for (kind, extra, name) in [
        ("annual", vec![], "annual"),
        ("edps", vec![], "edps"),
        ("member-state", vec!["--member-state", "DE"], "member_state_de"),
    ] {
        let files =
            report(&store, &tmp.path().join(name), kind, &[&extra[..], &["--format", "html"]].concat());
        let html = std::fs::read_to_string(&files[0]).unwrap();
        insta::assert_snapshot!(name, stable(&html, &store));
    }
}

#[test]
fn the_annual_report_suppresses_counts_of_persons_and_publishes_performance_figures() {
    let (tmp, store) = store();
    let files = report(&store, tmp.path(), "annual", &["--format", "html"]);
    let html = std::fs::read_to_string(&files[0]).unwrap();
    assert!(html.contains("threshold k = 5"), "the rule is stated");
    assert!(html.contains("published unsuppressed"), "the performance figures' rule is stated");
    // Each table by its caption, with its count cells.
    let tables: Vec<(&str, Vec<&str>)> = html
        .split("<caption>")
        .skip(1)
        .map(|t| {
            let caption = t.split("</caption>").next().unwrap();
            let body = t.split("</table>").next().unwrap();
            (caption, body.split("<td>").skip(1).filter_map(|c| c.split("</td>").next()).collect())
        })
        .collect();
    let counts = |cells: &[&str]| cells.iter().filter_map(|c| c.parse::<u64>().ok()).collect::<Vec<_>>();
    // Counts of what persons did (requests, breaches): 0, 5 or more, or `:c`.
    let persons: Vec<_> = tables
        .iter()
        .filter(|(c, _)| c.starts_with("Requests by right") || c.starts_with("Breaches by"))
        .collect();
    assert_eq!(persons.len(), 2, "{tables:?}");
    for (caption, cells) in &persons {
        for n in counts(cells) {
            assert!(n == 0 || n >= 5, "{n} published in {caption}");
        }
        assert!(cells.contains(&":c"), "{caption} suppresses its small cells");
    }
    // Performance figures describe authorities: published as they are, small counts too
    // (rules.md: suppressing a denominator while publishing its percentage protects nothing).
    for caption in ["Cases by member state and procedure", "Requests by days to answer"] {
        let (_, cells) = tables.iter().find(|(c, _)| *c == caption).unwrap_or_else(|| panic!("{caption}"));
        assert!(!cells.contains(&":c"), "{caption} is not suppressed");
        assert!(counts(cells).iter().any(|n| (1..5).contains(n)), "{caption} shows its small counts");
    }
    // Nothing about a person or an event.
    for id in ["U1", "U2", "E1", "E2"] {
        assert!(!html.contains(&format!(">{id}<")), "{id} in the annual report");
    }
}

#[test]
fn the_pdf_is_paginated_with_its_figures_in_its_text_and_renders() {
    let (tmp, store) = store();
    let files = report(&store, tmp.path(), "member-state", &["--member-state", "DE", "--format", "both"]);
    let pdf = files.iter().find(|p| p.extension().is_some_and(|e| e == "pdf")).unwrap();
    let bytes = std::fs::read(pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    // Pages counted by parsing the document.
    let doc = printpdf::lopdf::Document::load_mem(&bytes).unwrap();
    let pages = doc.get_pages().len();
    assert!(pages >= 4, "{pages} pages");
    if Command::new("pdftotext").arg("-v").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs poppler-utils (scripts/install-browser installs it)"
        );
        eprintln!("skipped the text and rendering checks: poppler-utils is not installed");
        return;
    }
    let text = String::from_utf8(
        Command::new("pdftotext").args(["-layout", pdf.to_str().unwrap(), "-"]).output().unwrap().stdout,
    )
    .unwrap();
    assert!(text.contains("Coordinated supervision of IMI: DE, 2024"));
    assert!(text.contains("Contents"));
    assert!(text.contains(&format!("page 2 of {pages}")), "numbered pages");
    // Key figures: DE's 4 requests and its IND-1 of 50 %, the EEA's 9 requests (X4, sent at
    // 00:30 Brussels time on 1 January 2025, is not 2024's).
    let indicators =
        text.lines().find(|l| l.trim_start().starts_with("DE ") && l.contains("50.0")).unwrap_or_default();
    assert!(indicators.contains(" 4 "), "DE's indicators row: {indicators}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("EEA") && l.contains(" 9 ")), "{text}");
    // The first page, rendered, is not blank.
    let png = tmp.path().join("first");
    let status = Command::new("pdftoppm")
        .args(["-png", "-r", "40", "-f", "1", "-l", "1", pdf.to_str().unwrap(), png.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let rendered = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("first"))
        .unwrap()
        .path();
    let raw = Command::new("pdftoppm")
        .args(["-gray", "-r", "20", "-f", "1", "-l", "1", pdf.to_str().unwrap()])
        .output()
        .unwrap()
        .stdout;
    // A PGM: header, then one byte per pixel; a blank page is all white.
    let pixels = raw.len().saturating_sub(20);
    let dark = raw.iter().skip(20).filter(|&&b| b < 128).count();
    assert!(pixels > 10_000, "a page was rendered");
    assert!(dark > 50, "the first page looks blank ({dark} dark pixels); see {}", rendered.display());
}

#[test]
fn the_same_store_and_arguments_give_the_same_files() {
    let (tmp, store) = store();
    let a = report(&store, &tmp.path().join("a"), "edps", &[]);
    let b = report(&store, &tmp.path().join("b"), "edps", &[]);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap(), "{} differs", x.display());
    }
}

#[test]
fn a_member_state_pack_needs_a_known_member_state() {
    let (tmp, store) = store();
    let s = store.to_str().unwrap();
    let out = run(&[
        "report",
        "--store",
        s,
        "--year",
        "2024",
        "--out",
        tmp.path().to_str().unwrap(),
        "--kind",
        "member-state",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--member-state"));
    let out = run(&[
        "report",
        "--store",
        s,
        "--year",
        "2024",
        "--out",
        tmp.path().to_str().unwrap(),
        "--kind",
        "member-state",
        "--member-state",
        "XX",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(&[
        "report",
        "--store",
        s,
        "--year",
        "2024",
        "--out",
        tmp.path().to_str().unwrap(),
        "--kind",
        "annual",
        "--k",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// The report to the EDPS is the Commission's, on the five years before 5 December of its
/// year (IMI Art. 25(2)), each breach in detail only for Union controllers; a year is counted
/// from midnight in Brussels (rules.md, "Reports and their periods").
#[test]
fn report_periods_run_in_brussels_time_and_the_edps_report_details_only_union_breaches() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("export");
    std::fs::create_dir(&export).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/analytics");
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, export.join(path.file_name().unwrap())).unwrap();
    }
    let mut breaches = std::fs::read_to_string(export.join("breaches.csv")).unwrap();
    let b1 = breaches.lines().nth(1).unwrap().to_owned();
    for (id, controller, aware) in [
        // 00:30 on 5 December 2019 in Brussels: the first day of the five years to 5 December 2024.
        ("B-EU-FIRST-DAY", "A-EU-COM", "2019-12-04T23:30:00Z"),
        // 23:30 on 4 December 2019 in Brussels: before them.
        ("B-EU-BEFORE", "A-EU-COM", "2019-12-04T22:30:00Z"),
        // A national controller's: counted, not detailed (the national supervisor's, Art. 21(1)).
        ("B-DE-NATIONAL", "A-DE-1", "2023-06-01T10:00:00Z"),
        // 00:30 on 1 January 2024 in Brussels: 2024's, though 2023's by UTC.
        ("B-EU-NEW-YEAR", "A-EU-COM", "2023-12-31T23:30:00Z"),
    ] {
        let row = b1.replacen("B1,A-EU-COM,,2024-04-02T10:37:00Z", &format!("{id},{controller},,{aware}"), 1);
        assert_ne!(row, b1);
        breaches.push_str(&format!("{row}\n"));
    }
    std::fs::write(export.join("breaches.csv"), breaches).unwrap();
    let store = tmp.path().join("store");
    let out = run(&["import", "--store", store.to_str().unwrap(), export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let files = report(&store, &tmp.path().join("edps"), "edps", &["--format", "html"]);
    let html = std::fs::read_to_string(&files[0]).unwrap();
    assert!(html.contains("Report of the Commission to the European Data Protection Supervisor"), "{html}");
    assert!(html.contains("2019-12-05 to 2024-12-04 (Brussels time)"), "the period is stated");
    assert!(html.contains("Each breach of a Union controller"));
    for (id, shown) in
        [("B-EU-FIRST-DAY", true), ("B-EU-BEFORE", false), ("B-DE-NATIONAL", false), ("B-EU-NEW-YEAR", true)]
    {
        assert_eq!(html.contains(&format!("<td>{id}</td>")), shown, "{id}");
    }
    // The national breach is counted among the breaches, with the four Union ones in the period.
    let counted =
        html.split("Breaches by risk and notification").nth(1).unwrap().split("</table>").next().unwrap();
    let total = counted.split("<tr><td>total</td>").nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(total.ends_with("<td>4</td>"), "{counted}");
    // A pack details its own actors' breaches of its year only, the year counted in Brussels.
    let pack = |ms: &str, year: &str| {
        let dir = tmp.path().join(format!("pack-{ms}-{year}"));
        let o = run(&[
            "report",
            "--store",
            store.to_str().unwrap(),
            "--year",
            year,
            "--out",
            dir.to_str().unwrap(),
            "--kind",
            "member-state",
            "--member-state",
            ms,
            "--format",
            "html",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read_to_string(stdout(&o).lines().next().unwrap()).unwrap()
    };
    assert!(pack("DE", "2023").contains("<td>B-DE-NATIONAL</td>"));
    assert!(!pack("DE", "2024").contains("<td>B-DE-NATIONAL</td>"));
    assert!(!pack("EU", "2023").contains("<td>B-EU-NEW-YEAR</td>"));
    assert!(pack("EU", "2024").contains("<td>B-EU-NEW-YEAR</td>"));
    // A year out of range is refused with its reason, not a panic.
    let o = run(&[
        "report",
        "--store",
        store.to_str().unwrap(),
        "--year",
        "99999",
        "--out",
        tmp.path().to_str().unwrap(),
        "--kind",
        "annual",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("expected a year from 1990 to 2199"), "{}", stderr(&o));
}

/// The reports to supervisors say what supervisors did in Custos: the findings decided in the
/// period and the rules' precision, the referrals, and who saw persons' data in Custos.
#[test]
fn the_reports_to_supervisors_count_reviews_precision_referrals_and_the_access_log() {
    use custos_engine::finding::Instant;
    use custos_engine::review::{Change, Reviews, State, Step};
    let (tmp, store) = store();
    let s = custos_engine::store::Store::open(&store).unwrap();
    // Findings about DE actors (reviews keep the finding as it was; it need not be found now).
    let found: Vec<custos_engine::finding::Finding> = (0..3)
        .map(|i| custos_engine::finding::Finding {
            rule: "NTK-DOMAIN".into(),
            subject_id: format!("E-DE-{i}"),
            event_id: Some(format!("E-DE-{i}")),
            member_state: Some("DE".into()),
            authority_id: Some("A-DE-1".into()),
            ..Default::default()
        })
        .collect();
    let de: Vec<&custos_engine::finding::Finding> = found.iter().collect();
    let at = |date: &str| Instant(custos_engine::import::parse_timestamp(date).unwrap());
    let change = |state| Change { state, by: "dpa-de".into(), role: "dpa".into(), ..Change::default() };
    let steps = vec![
        Step {
            finding: de[0],
            policy_hash: "h",
            change: change(State::Confirmed),
            at: at("2024-03-01T10:00:00Z"),
        },
        Step {
            finding: de[1],
            policy_hash: "h",
            change: change(State::FalsePositive),
            at: at("2024-03-02T10:00:00Z"),
        },
        Step {
            finding: de[2],
            policy_hash: "h",
            change: Change {
                referred_to: Some("A-DE-1".into()),
                answer_due: chrono::NaiveDate::from_ymd_opt(2024, 6, 30),
                ..change(State::Referred)
            },
            at: at("2024-05-01T10:00:00Z"),
        },
        // Decided after the year: not in the 2024 pack.
        Step {
            finding: de[0],
            policy_hash: "h",
            change: change(State::UnderReview),
            at: at("2025-02-01T10:00:00Z"),
        },
    ];
    Reviews::load(&s).unwrap().record_history(&s, &steps).unwrap();
    let visit = |role: &str, ms: &str, date: &str| custos_engine::trail::Visit {
        at: at(date),
        user: role.into(),
        role: role.into(),
        page: "/review".into(),
        item_kind: "list".into(),
        item: String::new(),
        member_state: ms.into(),
        controller: String::new(),
    };
    let visits = [
        visit("dpa", "DE", "2024-04-01T00:00:00Z"),
        visit("dpa", "DE", "2024-04-02T00:00:00Z"),
        visit("edps", "EU", "2024-04-02T00:00:00Z"),
        visit("dpa", "DE", "2025-04-02T00:00:00Z"),
    ];
    custos_engine::trail::record(&s, &visits, at("2025-04-03T00:00:00Z")).unwrap();
    let files = report(&store, &tmp.path().join("out"), "member-state", &["--member-state", "DE"]);
    let html =
        std::fs::read_to_string(files.iter().find(|f| f.extension().is_some_and(|e| e == "html")).unwrap())
            .unwrap();
    let part = &html[html.find("Supervision in Custos</h2>").unwrap()..];
    let part = &part[..part.find("</section>").unwrap()];
    // The first finding's latest version is after the year: its decision in 2024 is not its
    // latest, so only the false positive counts as decided in 2024.
    assert!(
        part.contains("<tr><td>NTK-DOMAIN</td><td>1</td><td>0</td><td>0</td><td>1</td><td>0 %</td></tr>"),
        "{part}"
    );
    assert!(part.contains("referred to the authority concerned: 1; answered: 0; unanswered past their date at the period&#39;s end: 1"), "{part}");
    assert!(part.contains("<tr><td>dpa</td><td>2</td></tr>") && !part.contains("<td>edps</td>"), "{part}");
}
