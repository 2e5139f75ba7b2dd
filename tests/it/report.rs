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
fn the_annual_report_publishes_no_small_count_and_says_which_rule_it_applied() {
    let (tmp, store) = store();
    let files = report(&store, tmp.path(), "annual", &["--format", "html"]);
    let html = std::fs::read_to_string(&files[0]).unwrap();
    assert!(html.contains("threshold k = 5"), "the rule is stated");
    // Every count cell of every table: 0, 5 or more, or `:c`.
    for cell in html.split("<td>").skip(1).filter_map(|c| c.split("</td>").next()) {
        if let Ok(n) = cell.parse::<u64>() {
            assert!(n == 0 || n >= 5, "{n} published");
        }
    }
    assert!(html.contains("<td>:c</td>"));
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
    // Key figures: DE's 5 requests and its IND-1 of 60 %, the EEA's 10 requests.
    let indicators =
        text.lines().find(|l| l.trim_start().starts_with("DE ") && l.contains("60.0")).unwrap_or_default();
    assert!(indicators.contains(" 5 "), "DE's indicators row: {indicators}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("EEA") && l.contains(" 10 ")), "{text}");
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
