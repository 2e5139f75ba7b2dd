//! `custos generate`: deterministic, realistic, labelled.

use std::collections::BTreeSet;

use crate::{run, snapshot, stderr};

#[test]
fn the_same_arguments_give_byte_identical_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    for (dir, seed) in [(&a, "7"), (&b, "7"), (&c, "8")] {
        let out = run(&[
            "generate",
            "--out",
            dir.to_str().unwrap(),
            "--seed",
            seed,
            "--scale",
            "0.01",
            "--events",
            "20000",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let (sa, sb, sc) = (snapshot(&a), snapshot(&b), snapshot(&c));
    // Eight tables, the answer key's directory and its two files.
    assert_eq!(sa.len(), 11, "{:?}", sa.keys());
    assert!(sa == sb, "same seed, different files");
    assert!(sa != sc, "different seeds, same files");
}

#[test]
fn a_generated_export_imports_cleanly_and_labels_every_rule_family() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("export");
    let out = run(&["generate", "--out", export.to_str().unwrap(), "--scale", "0.05", "--events", "300000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let store = tmp.path().join("store");
    let out = run(&["import", "--store", store.to_str().unwrap(), export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let labels = custos_labels(&export);
    let rules: BTreeSet<&str> = labels.iter().map(|(r, _, _)| r.as_str()).collect();
    for rule in [
        "NTK-USER-ACTIVE",
        "NTK-DOMAIN",
        "NTK-INVOLVED",
        "NTK-COMMISSION",
        "NTK-BLOCKED",
        "NTK-DELETED",
        "NTK-PURPOSE",
        "NTK-THIRD-COUNTRY",
        "RET-BLOCK",
        "RET-DELETE",
        "RET-EARLY-DELETE",
        "RET-INACTIVE",
        "RET-USER-BLOCK",
        "RET-USER-DELETE",
        "CASE-SPECIAL",
        "DSR-RESPOND",
        "DSR-REFUSAL",
        "DSR-EXTENSION",
        "DSR-IMI-CORRECT",
        "DSR-IMI-USER",
        "BRE-NOTIFY",
        "BRE-DELAY-REASONS",
        "BRE-CONTENT",
        "BRE-DPO",
        "BRE-SUBJECTS",
        "RT-LATE",
    ] {
        assert!(rules.contains(rule), "no {rule} injected: {rules:?}");
    }
}

fn custos_labels(export: &std::path::Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(export.join("labels/violations.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned())
        })
        .collect()
}
