//! The policies' own discipline: strict validation with no warnings, `cedar format` style,
//! and the `cedar run-tests` cases, run without the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::str::FromStr;

use cedar_policy::{Authorizer, Context, Decision, Entities, EntityUid, Request};
use custos_policies::{
    DEADLINE_CASES, DEADLINES, NEED_TO_KNOW, NEED_TO_KNOW_CASES, Policies, VIEW_CASES, VIEWS,
};
use serde_json::Value;

#[test]
fn the_need_to_know_policies_validate_strictly_without_warnings() {
    let p = Policies::need_to_know().expect("valid");
    assert_eq!(p.rules().len(), NEED_TO_KNOW.len());
    let ids: BTreeSet<&str> = p.rules().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), p.rules().len(), "duplicate @id");
    for r in p.rules() {
        assert!(!r.article.is_empty() && !r.title.is_empty(), "{}", r.id);
    }
}

#[test]
fn every_policy_file_is_in_cedar_format_style() {
    let config = cedar_policy_formatter::Config { line_width: 80, indent_width: 2 };
    for (file, text) in NEED_TO_KNOW.iter().chain(DEADLINES).chain(VIEWS) {
        let pretty = cedar_policy_formatter::policies_str_to_pretty(text, &config).expect("formats");
        if std::env::var_os("CUSTOS_BLESS").is_some() {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            std::fs::write(path, format!("{}\n", pretty.trim_end())).unwrap();
            continue;
        }
        assert_eq!(
            pretty.trim_end(),
            text.trim_end(),
            "{file} is not in `cedar format` style; expected:\n{pretty}"
        );
    }
}

/// Runs every case of a `cedar run-tests` file against `policies`; returns the cases.
fn run_cases(policies: &Policies, json: &str) -> Vec<Value> {
    let cases: Vec<Value> = serde_json::from_str(json).expect("cases parse");
    let schema = policies.schema();
    for case in &cases {
        let name = case["name"].as_str().unwrap_or("?");
        let r = &case["request"];
        let uid = |k: &str| EntityUid::from_str(r[k].as_str().unwrap()).unwrap();
        let (principal, action, resource) = (uid("principal"), uid("action"), uid("resource"));
        let context = Context::from_json_value(r["context"].clone(), Some((schema, &action))).expect(name);
        let request = Request::new(principal, action, resource, context, Some(schema)).expect(name);
        let entities = Entities::from_json_value(case["entities"].clone(), Some(schema)).expect(name);
        let response = Authorizer::new().is_authorized(&request, policies.set(), &entities);
        let expected = match case["decision"].as_str() {
            Some("allow") => Decision::Allow,
            _ => Decision::Deny,
        };
        assert_eq!(response.decision(), expected, "{name}");
        let reasons: BTreeSet<String> = response.diagnostics().reason().map(ToString::to_string).collect();
        let want: BTreeSet<String> =
            case["reason"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        assert_eq!(reasons, want, "{name}");
        assert_eq!(
            response.diagnostics().errors().count() as u64,
            case["num_errors"].as_u64().unwrap_or(0),
            "{name}"
        );
    }
    cases
}

#[test]
fn the_need_to_know_cases_hold_and_cover_every_rule_both_ways() {
    for (policies, cases) in [
        (Policies::need_to_know().unwrap(), NEED_TO_KNOW_CASES),
        (Policies::deadlines().unwrap(), DEADLINE_CASES),
    ] {
        covers_every_rule_both_ways(&policies, &run_cases(&policies, cases));
    }
}

#[test]
fn the_deadline_policies_validate_strictly_and_say_how_to_report() {
    let p = Policies::deadlines().expect("valid");
    for r in p.rules().iter().filter(|r| r.effect == "forbid") {
        assert!(r.severity == "violation" || r.severity == "warning", "{}", r.id);
        assert!(r.done.is_none() || r.due.is_some(), "{}: @done without @due", r.id);
    }
    assert_eq!(p.rule("DSR-REFUSAL/remedy").map(|r| r.rule.as_str()), Some("DSR-REFUSAL"));
    assert!(p.rule("BRE-DPO").and_then(|r| r.default.as_deref()).is_some());
}

fn covers_every_rule_both_ways(policies: &Policies, cases: &[Value]) {
    for rule in policies.rules().iter().filter(|r| r.effect == "forbid") {
        // A forbidding case is one the rule decides; a permitting one is about the rule (named
        // after it) and passes it.
        let forbids = |c: &Value| c["reason"].as_array().unwrap().iter().any(|r| r == rule.id.as_str());
        let named = |c: &Value| c["name"].as_str().unwrap().starts_with(&format!("{}:", rule.id));
        assert!(cases.iter().any(|c| named(c) && !forbids(c)), "{}: no permitting case", rule.id);
        assert!(cases.iter().any(|c| named(c) && forbids(c)), "{}: no forbidding case", rule.id);
    }
}

#[test]
fn a_policy_without_its_article_is_refused() {
    let files = vec![(
        "x.cedar".to_owned(),
        "@id(\"X\")\n@title(\"t\")\npermit (principal, action, resource);".to_owned(),
    )];
    let err = Policies::load(files).unwrap_err().to_string();
    assert_eq!(err, "policy `x.cedar`: a policy has no `@article` annotation");
}

#[test]
fn a_policy_that_misreads_the_schema_is_refused() {
    let files = vec![(
        "x.cedar".to_owned(),
        "@id(\"X\")\n@article(\"a\")\n@title(\"t\")\nforbid (principal, action, resource is IMI::Case)\nwhen { resource.colour == \"red\" };".to_owned(),
    )];
    let err = Policies::load(files).unwrap_err().to_string();
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn need_to_know_policies_compare_domains_and_states_only_with_one_another() {
    // The audit decides one scene for every event with the same facts up to a renaming of
    // domains and member states (engine/src/judging/audit.rs, `canonical`); that holds only while no
    // need-to-know policy names a particular domain or member state.
    for (file, text) in NEED_TO_KNOW {
        let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for forbidden in ["IMI::Domain::\"", "member_state ==", "member_state !=", "domain ==", "domain !="] {
            assert!(!flat.contains(forbidden), "{file} compares with a literal: `{forbidden}`");
        }
    }
}

#[test]
fn the_view_policies_validate_and_every_one_decides_a_case_and_passes_one() {
    let policies = Policies::views().expect("valid");
    assert_eq!(policies.rules().len(), VIEWS.len());
    let cases = run_cases(&policies, VIEW_CASES);
    for rule in policies.rules() {
        let decides = |c: &Value| c["reason"].as_array().unwrap().iter().any(|r| r == rule.id.as_str());
        let named = |c: &Value| c["name"].as_str().unwrap().starts_with(&format!("{}:", rule.id));
        assert!(cases.iter().any(|c| named(c) && decides(c)), "{}: no case it decides", rule.id);
        assert!(cases.iter().any(|c| named(c) && !decides(c)), "{}: no case it lets pass", rule.id);
    }
}
