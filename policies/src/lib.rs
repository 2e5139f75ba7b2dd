//! The rules of Custos, written once, as Cedar policies.
//!
//! ```text
//! schema.cedarschema          the IMI world: users, authorities, cases, domains, purposes
//! rules/ntk/*.cedar           need-to-know rules (IMI Arts. 8(3), 9, 13, 14, 15, 23)
//! rules/deadline/*.cedar      deadline rules (IMI Arts. 7, 14, 15, 16, 19; EUDPR Arts. 14, 34, 35)
//! cases/*.json                permit and forbid cases per rule, in `cedar run-tests` format
//! ```
//!
//! Every policy carries `@id` (the stable rule ID of `rules.md`), `@article` (the legal
//! reference) and `@title` (the rule in one sentence). The ID is also the policy's Cedar
//! [`PolicyId`], so a decision's reasons are rule IDs. Need-to-know is modelled as one
//! `permit` (IMI users may work in IMI) and one `forbid` per rule: a denied request names
//! every rule it breaks, and a forbid always wins.
//!
//! Deadline policies carry more annotations: `@due` and `@done` name the attributes holding
//! the end of the period and the instant the obligation was met (a broken rule whose `done`
//! is present is `late`, otherwise `overdue`; one without `@due` is `unmet`); `@severity`
//! is `violation` unless it says `warning`; `@default` marks a period that is Custos's
//! configurable default, not the law's; `@actor` says who must act (and so whose calendar
//! and time zone count). Where one rule of `rules.md` has two conditions
//! (a deadline and a content requirement, say), it is two policies with their own `@id`
//! and the same `@rule`.

use std::str::FromStr;

use cedar_policy::{Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use sha2::{Digest, Sha256};

/// The schema every policy is validated against.
pub const SCHEMA: &str = include_str!("../schema.cedarschema");

/// The need-to-know policy files, in the order they are listed.
pub const NEED_TO_KNOW: &[(&str, &str)] = &[
    ("rules/ntk/access.cedar", include_str!("../rules/ntk/access.cedar")),
    ("rules/ntk/user-active.cedar", include_str!("../rules/ntk/user-active.cedar")),
    ("rules/ntk/domain.cedar", include_str!("../rules/ntk/domain.cedar")),
    ("rules/ntk/involved.cedar", include_str!("../rules/ntk/involved.cedar")),
    ("rules/ntk/commission.cedar", include_str!("../rules/ntk/commission.cedar")),
    ("rules/ntk/blocked.cedar", include_str!("../rules/ntk/blocked.cedar")),
    ("rules/ntk/deleted.cedar", include_str!("../rules/ntk/deleted.cedar")),
    ("rules/ntk/purpose.cedar", include_str!("../rules/ntk/purpose.cedar")),
    ("rules/ntk/third-country.cedar", include_str!("../rules/ntk/third-country.cedar")),
];

/// The deadline policy files, in the order they are listed.
pub const DEADLINES: &[(&str, &str)] = &[
    ("rules/deadline/access.cedar", include_str!("../rules/deadline/access.cedar")),
    ("rules/deadline/bre-content.cedar", include_str!("../rules/deadline/bre-content.cedar")),
    ("rules/deadline/bre-delay-reasons.cedar", include_str!("../rules/deadline/bre-delay-reasons.cedar")),
    ("rules/deadline/bre-dpo.cedar", include_str!("../rules/deadline/bre-dpo.cedar")),
    ("rules/deadline/bre-notify.cedar", include_str!("../rules/deadline/bre-notify.cedar")),
    ("rules/deadline/bre-subjects.cedar", include_str!("../rules/deadline/bre-subjects.cedar")),
    ("rules/deadline/case-special.cedar", include_str!("../rules/deadline/case-special.cedar")),
    ("rules/deadline/dsr-extension.cedar", include_str!("../rules/deadline/dsr-extension.cedar")),
    ("rules/deadline/dsr-imi-correct.cedar", include_str!("../rules/deadline/dsr-imi-correct.cedar")),
    ("rules/deadline/dsr-imi-user.cedar", include_str!("../rules/deadline/dsr-imi-user.cedar")),
    ("rules/deadline/dsr-refusal.cedar", include_str!("../rules/deadline/dsr-refusal.cedar")),
    ("rules/deadline/dsr-respond.cedar", include_str!("../rules/deadline/dsr-respond.cedar")),
    ("rules/deadline/ret-block.cedar", include_str!("../rules/deadline/ret-block.cedar")),
    ("rules/deadline/ret-delete.cedar", include_str!("../rules/deadline/ret-delete.cedar")),
    ("rules/deadline/ret-early-delete.cedar", include_str!("../rules/deadline/ret-early-delete.cedar")),
    ("rules/deadline/ret-inactive.cedar", include_str!("../rules/deadline/ret-inactive.cedar")),
    ("rules/deadline/ret-user-block.cedar", include_str!("../rules/deadline/ret-user-block.cedar")),
    ("rules/deadline/ret-user-delete.cedar", include_str!("../rules/deadline/ret-user-delete.cedar")),
    ("rules/deadline/rt-late.cedar", include_str!("../rules/deadline/rt-late.cedar")),
    ("rules/deadline/usr-dormant.cedar", include_str!("../rules/deadline/usr-dormant.cedar")),
    ("rules/deadline/usr-rights.cedar", include_str!("../rules/deadline/usr-rights.cedar")),
];

/// The dashboard's rules: who may see what (`policies/rules/view/`).
pub const VIEWS: &[(&str, &str)] = &[
    ("rules/view/statistics.cedar", include_str!("../rules/view/statistics.cedar")),
    ("rules/view/commission.cedar", include_str!("../rules/view/commission.cedar")),
    ("rules/view/edps-detail.cedar", include_str!("../rules/view/edps-detail.cedar")),
    ("rules/view/dpa-detail.cedar", include_str!("../rules/view/dpa-detail.cedar")),
    ("rules/view/dpo.cedar", include_str!("../rules/view/dpo.cedar")),
    ("rules/view/policies.cedar", include_str!("../rules/view/policies.cedar")),
    ("rules/view/admin.cedar", include_str!("../rules/view/admin.cedar")),
    ("rules/view/no-user-data.cedar", include_str!("../rules/view/no-user-data.cedar")),
    ("rules/view/edps-report.cedar", include_str!("../rules/view/edps-report.cedar")),
    ("rules/view/produce-edps-report.cedar", include_str!("../rules/view/produce-edps-report.cedar")),
    ("rules/view/review-dpa.cedar", include_str!("../rules/view/review-dpa.cedar")),
    ("rules/view/review-edps.cedar", include_str!("../rules/view/review-edps.cedar")),
    ("rules/view/review-dpo.cedar", include_str!("../rules/view/review-dpo.cedar")),
    ("rules/view/review-supervisors-only.cedar", include_str!("../rules/view/review-supervisors-only.cedar")),
    ("rules/view/trail.cedar", include_str!("../rules/view/trail.cedar")),
    ("rules/view/record-dpo.cedar", include_str!("../rules/view/record-dpo.cedar")),
    ("rules/view/record-controllers-only.cedar", include_str!("../rules/view/record-controllers-only.cedar")),
];

/// The dashboard rules' cases, in `cedar run-tests` format.
pub const VIEW_CASES: &str = include_str!("../cases/view.json");

/// The need-to-know test cases, in `cedar run-tests` format.
pub const NEED_TO_KNOW_CASES: &str = include_str!("../cases/ntk.json");

/// The deadline test cases, in `cedar run-tests` format.
pub const DEADLINE_CASES: &str = include_str!("../cases/deadline.json");

/// The errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The schema does not parse.
    #[error("schema: {0}")]
    Schema(String),
    /// A policy file does not parse or lacks its annotations.
    #[error("policy `{file}`: {message}")]
    Policy { file: String, message: String },
    /// The policies do not validate against the schema.
    #[error("policies do not validate against the schema: {0}")]
    Invalid(String),
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A rule as the policy explorer shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The policy's own ID (`NTK-DOMAIN`, `DSR-REFUSAL/remedy`).
    pub id: String,
    /// The rule of `rules.md` it implements (`@rule`, else the ID).
    pub rule: String,
    /// The attribute holding the end of the period (`@due`), for deadline rules.
    pub due: Option<String>,
    /// The attribute holding when the obligation was met (`@done`), for deadline rules.
    pub done: Option<String>,
    /// `violation` or `warning` (`@severity`).
    pub severity: String,
    /// The period, when it is Custos's default and not the law's (`@default`).
    pub default: Option<String>,
    /// The fact whose particulars a finding lists (`@detail`), e.g. the domains of
    /// USR-RIGHTS.
    pub detail: Option<String>,
    /// Who must act, for deadline rules (`@actor`: `commission`, `requesting`, `responding`
    /// or `controller`).
    pub actor: Option<String>,
    /// The legal reference (`IMI Reg. Art. 9(3)-(4)`).
    pub article: String,
    /// The rule in one sentence.
    pub title: String,
    /// `permit` or `forbid`.
    pub effect: &'static str,
    /// The file it lives in, relative to `policies/`.
    pub file: String,
    /// The policy's text.
    pub text: String,
}

/// A family of rules, loaded, validated and hashed.
#[derive(Debug, Clone)]
pub struct Policies {
    schema: Schema,
    set: PolicySet,
    rules: Vec<Rule>,
    /// Each rule's place in `rules`, by ID: findings look their rule up by ID millions of times.
    by_id: std::collections::HashMap<String, usize>,
    hash: String,
}

impl Policies {
    /// The need-to-know rules.
    pub fn need_to_know() -> Result<Policies> {
        Policies::load(NEED_TO_KNOW.iter().map(|(f, t)| ((*f).to_owned(), (*t).to_owned())).collect())
    }

    /// The deadline rules.
    pub fn deadlines() -> Result<Policies> {
        Policies::load(DEADLINES.iter().map(|(f, t)| ((*f).to_owned(), (*t).to_owned())).collect())
    }

    /// Who may see what on the dashboard.
    pub fn views() -> Result<Policies> {
        Policies::load(VIEWS.iter().map(|(f, t)| ((*f).to_owned(), (*t).to_owned())).collect())
    }

    /// Loads `files` (name and text), names each policy by its `@id`, and validates the set
    /// against [`SCHEMA`] in strict mode. Any validation error or warning is an error.
    pub fn load(files: Vec<(String, String)>) -> Result<Policies> {
        let (schema, warnings) =
            Schema::from_cedarschema_str(SCHEMA).map_err(|e| Error::Schema(e.to_string()))?;
        let warnings: Vec<String> = warnings.map(|w| w.to_string()).collect();
        if !warnings.is_empty() {
            return Err(Error::Schema(warnings.join("; ")));
        }
        let mut set = PolicySet::new();
        let mut rules = Vec::new();
        let mut hasher = Sha256::new();
        hasher.update(SCHEMA.as_bytes());
        for (file, text) in &files {
            hasher.update(file.as_bytes());
            hasher.update([0]);
            hasher.update(text.as_bytes());
            hasher.update([0]);
            let parsed = PolicySet::from_str(text)
                .map_err(|e| Error::Policy { file: file.clone(), message: e.to_string() })?;
            for policy in parsed.policies() {
                let annotation = |key: &str| {
                    policy.annotation(key).map(str::to_owned).ok_or_else(|| Error::Policy {
                        file: file.clone(),
                        message: format!("a policy has no `@{key}` annotation"),
                    })
                };
                let id = annotation("id")?;
                let optional = |key: &str| policy.annotation(key).map(str::to_owned);
                let rule = Rule {
                    rule: optional("rule").unwrap_or_else(|| id.clone()),
                    due: optional("due"),
                    done: optional("done"),
                    severity: optional("severity").unwrap_or_else(|| "violation".to_owned()),
                    default: optional("default"),
                    detail: optional("detail"),
                    actor: optional("actor"),
                    article: annotation("article")?,
                    title: annotation("title")?,
                    effect: match policy.effect() {
                        cedar_policy::Effect::Permit => "permit",
                        cedar_policy::Effect::Forbid => "forbid",
                    },
                    file: file.clone(),
                    text: policy.to_string(),
                    id: id.clone(),
                };
                let named: Policy = policy.new_id(PolicyId::new(&id));
                set.add(named)
                    .map_err(|e| Error::Policy { file: file.clone(), message: format!("`{id}`: {e}") })?;
                rules.push(rule);
            }
        }
        let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
        let problems: Vec<String> = result
            .validation_errors()
            .map(|e| e.to_string())
            .chain(result.validation_warnings().map(|w| w.to_string()))
            .collect();
        if !problems.is_empty() {
            return Err(Error::Invalid(problems.join("; ")));
        }
        let by_id = rules.iter().enumerate().map(|(i, r)| (r.id.clone(), i)).collect();
        Ok(Policies { schema, set, rules, by_id, hash: hex::encode(hasher.finalize()) })
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The policy set, each policy named by its rule ID.
    pub fn set(&self) -> &PolicySet {
        &self.set
    }

    /// Every rule with its ID, article, title and text, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule with this ID.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.place(id).map(|i| &self.rules[i])
    }

    /// The place in [`Policies::rules`] of the rule with this ID.
    pub fn place(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// SHA-256 of the schema and every policy file (name and text): the identity of the
    /// rules a finding was decided by.
    pub fn hash(&self) -> &str {
        &self.hash
    }
}
