//! One list of what a rule touches (ARCHITECTURE.md, "How to add a rule"): every rule of the
//! policy sets is in each list that is not derived from them.

use std::path::Path;

use custos_policies::{DEADLINES, NEED_TO_KNOW, Policies};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every rule ID (`@rule`, else `@id`) of a policy set, but its permit.
fn rules(policies: &Policies) -> Vec<String> {
    let mut ids: Vec<String> =
        policies.rules().iter().filter(|r| r.effect == "forbid").map(|r| r.rule.clone()).collect();
    ids.sort();
    ids.dedup();
    ids
}

#[test]
fn every_policy_file_is_listed_in_the_policy_crate() {
    for (family, listed) in [("ntk", NEED_TO_KNOW), ("deadline", DEADLINES)] {
        let dir = root().join("policies/rules").join(family);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let path = format!("rules/{family}/{name}");
            assert!(listed.iter().any(|(f, _)| *f == path), "{path} is not listed in policies/src/lib.rs");
        }
    }
}

#[test]
fn every_need_to_know_rule_is_in_the_rego_peer_the_readme_and_the_generator() {
    let rego = read("benches/peers/ntk.rego");
    let readme = read("README.md");
    let generator = read("synthetic/src/lib.rs");
    for id in rules(&Policies::need_to_know().unwrap()) {
        assert!(rego.contains(&format!("broken contains \"{id}\"")), "{id}: not in benches/peers/ntk.rego");
        assert!(readme.contains(&format!("| {id} |")), "{id}: no row in README.md's table");
        assert!(generator.contains(&format!("\"{id}\"")), "{id}: the generator never injects it");
    }
}

#[test]
fn every_deadline_rule_is_in_the_readme_the_generator_and_an_edge_fixture() {
    let readme = read("README.md");
    let generator = read("synthetic/src/lib.rs");
    let edges = read("tests/it/check.rs");
    for id in rules(&Policies::deadlines().unwrap()) {
        assert!(readme.contains(&format!("| {id} |")), "{id}: no row in README.md's table");
        assert!(generator.contains(&format!("\"{id}\"")), "{id}: the generator never injects it");
        assert!(edges.contains(&format!("\"{id}\"")), "{id}: no edge test in tests/it/check.rs");
    }
}
