//! Deadline findings, kept compact.
//!
//! Ten million cases give millions of findings. As [`Finding`]s, each would be a dozen
//! strings of its own: gigabytes of fresh memory, which costs more to obtain here than the
//! rules cost to judge. So a finding is a small fixed record: its policy and status by
//! number, its instant, and its texts (subject, authority, member state) as spans of one
//! shared text. A [`Finding`] is made from it only when asked for.

use std::cmp::Ordering;
use std::sync::Arc;

use custos_policies::{Policies, Rule};
use serde::{Serialize, Serializer};

use super::Kind;
use crate::finding::{self, Finding};

pub use crate::finding::Status;
use crate::finding::{Severity, SubjectKind};

/// A stretch of [`Findings::text`].
#[derive(Debug, Clone, Copy)]
struct Span {
    at: usize,
    len: usize,
}

/// One finding as stored.
#[derive(Debug, Clone, Copy)]
struct Found {
    /// The subject's first 16 bytes as a number: orders most pairs without reading the text.
    head: u128,
    /// The rank of the policy's rule ID among the rule IDs of the policy set.
    rule: u16,
    kind: Kind,
    status: Status,
    /// The policy's place in [`Policies::rules`].
    policy: u16,
    subject: Span,
    due: Option<i64>,
    authority: Option<Span>,
    member_state: Option<Span>,
    detail: Option<Span>,
}

/// A finding as read from [`Findings`], borrowing its texts.
#[derive(Debug, Clone, Copy)]
pub struct FindingRef<'a> {
    /// The policy that decided it, with its rule ID, article, severity and default period.
    pub policy: &'a Rule,
    /// Where it stands.
    pub status: Status,
    /// What it is about.
    pub subject_kind: SubjectKind,
    /// The subject's identifier.
    pub subject_id: &'a str,
    /// When the obligation fell due (UTC microseconds), for rules with a deadline.
    pub due: Option<i64>,
    /// The actor responsible.
    pub authority_id: Option<&'a str>,
    /// Its member state (`EU` for Union actors).
    pub member_state: Option<&'a str>,
    /// The particulars the rule lists (`@detail`: USR-RIGHTS's domains), `;`-separated.
    pub detail: Option<&'a str>,
}

impl FindingRef<'_> {
    /// The finding in the shape `rules.md` gives.
    pub fn to_finding(&self) -> Finding {
        let p = self.policy;
        Finding {
            rule: p.rule.clone(),
            status: self.status,
            subject_kind: self.subject_kind,
            subject_id: self.subject_id.to_owned(),
            due_at: self.due.map(finding::Instant),
            legal_ref: p.article.clone(),
            // The policy crate's tests hold every `@severity` to these two words.
            severity: if p.severity == "warning" { Severity::Warning } else { Severity::Violation },
            authority_id: self.authority_id.map(str::to_owned),
            member_state: self.member_state.map(str::to_owned),
            event_id: None,
            user_id: None,
            case_id: (self.subject_kind == SubjectKind::Case).then(|| self.subject_id.to_owned()),
            ts: None,
            policies: Some(vec![p.id.clone()]),
            default_period: p.default.clone(),
            detail: self.detail.map(str::to_owned),
        }
    }
}

/// Deadline findings: in the order of rule, subject kind, subject and status once
/// [`Findings::sort`] has run.
#[derive(Clone)]
pub struct Findings {
    policies: Arc<Policies>,
    /// The rank of each policy's rule ID, by the policy's place.
    rule_rank: Arc<Vec<u16>>,
    found: Vec<Found>,
    text: String,
}

impl std::fmt::Debug for Findings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Findings {
    /// No findings yet, of rules of `policies`.
    pub fn new(policies: Arc<Policies>) -> Findings {
        let rules = policies.rules();
        let mut ids: Vec<&str> = rules.iter().map(|r| r.rule.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let rule_rank =
            rules.iter().map(|r| ids.binary_search(&r.rule.as_str()).unwrap_or(ids.len()) as u16).collect();
        Findings { policies, rule_rank: Arc::new(rule_rank), found: Vec::new(), text: String::new() }
    }

    /// Takes every finding out, leaving none (of the same rules).
    pub(super) fn take(&mut self) -> Findings {
        let empty = Findings {
            policies: Arc::clone(&self.policies),
            rule_rank: Arc::clone(&self.rule_rank),
            found: Vec::new(),
            text: String::new(),
        };
        std::mem::replace(self, empty)
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.found.len()
    }

    /// None at all?
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Every finding, borrowed.
    pub fn iter(&self) -> impl Iterator<Item = FindingRef<'_>> + '_ {
        self.found.iter().map(|f| self.get(f))
    }

    /// Every finding in the shape `rules.md` gives.
    pub fn to_vec(&self) -> Vec<Finding> {
        self.iter().map(|f| f.to_finding()).collect()
    }

    fn span(&self, s: Span) -> &str {
        &self.text[s.at..s.at + s.len]
    }

    fn get(&self, f: &Found) -> FindingRef<'_> {
        FindingRef {
            policy: &self.policies.rules()[usize::from(f.policy)],
            status: f.status,
            subject_kind: f.kind.subject(),
            subject_id: self.span(f.subject),
            due: f.due,
            authority_id: f.authority.map(|s| self.span(s)),
            member_state: f.member_state.map(|s| self.span(s)),
            detail: f.detail.map(|s| self.span(s)),
        }
    }

    fn keep(&mut self, text: &str) -> Span {
        let at = self.text.len();
        self.text.push_str(text);
        Span { at, len: text.len() }
    }

    /// Adds a finding of policy number `policy` about a subject.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn push(
        &mut self,
        policy: usize,
        status: Status,
        kind: Kind,
        subject: &str,
        due: Option<i64>,
        authority: Option<&str>,
        member_state: Option<&str>,
        detail: Option<&str>,
    ) {
        let mut head = [0u8; 16];
        let n = subject.len().min(16);
        head[..n].copy_from_slice(&subject.as_bytes()[..n]);
        let found = Found {
            head: u128::from_be_bytes(head),
            rule: self.rule_rank.get(policy).copied().unwrap_or(u16::MAX),
            kind,
            status,
            policy: policy as u16,
            subject: self.keep(subject),
            due,
            authority: authority.map(|t| self.keep(t)),
            member_state: member_state.map(|t| self.keep(t)),
            detail: detail.map(|t| self.keep(t)),
        };
        self.found.push(found);
    }

    /// Moves every finding of `other` to the end of these, keeping `other`'s memory for reuse.
    pub(super) fn append(&mut self, other: &mut Findings) {
        let base = self.text.len();
        self.text.push_str(&other.text);
        let shift = |s: Span| Span { at: s.at + base, len: s.len };
        self.found.extend(other.found.drain(..).map(|f| Found {
            subject: shift(f.subject),
            authority: f.authority.map(shift),
            member_state: f.member_state.map(shift),
            detail: f.detail.map(shift),
            ..f
        }));
        other.text.clear();
    }

    /// Orders the findings by rule ID, subject kind, subject and status, then (for a request
    /// that several responders had to answer, one RT-LATE finding each) by due instant and
    /// actor: the order is total.
    pub(super) fn sort(&mut self) {
        let text = &self.text;
        let span = |s: Span| &text[s.at..s.at + s.len];
        self.found.sort_unstable_by(|a, b| {
            (a.rule, a.kind, a.head)
                .cmp(&(b.rule, b.kind, b.head))
                .then_with(|| span(a.subject).cmp(span(b.subject)))
                .then_with(|| a.status.cmp(&b.status))
                .then_with(|| a.due.cmp(&b.due))
                .then_with(|| a.authority.map(span).cmp(&b.authority.map(span)))
        });
    }
}

impl PartialEq for Findings {
    fn eq(&self, other: &Findings) -> bool {
        self.len() == other.len()
            && self.iter().zip(other.iter()).all(|(a, b)| same(&a, &b) == Ordering::Equal)
    }
}

/// Compares two findings field by field (the policy by its ID).
fn same(a: &FindingRef, b: &FindingRef) -> Ordering {
    (
        a.policy.id.as_str(),
        a.status,
        a.subject_kind,
        a.subject_id,
        a.due,
        a.authority_id,
        a.member_state,
        a.detail,
    )
        .cmp(&(
            b.policy.id.as_str(),
            b.status,
            b.subject_kind,
            b.subject_id,
            b.due,
            b.authority_id,
            b.member_state,
            b.detail,
        ))
}

/// A JSON array of [`Finding`]s, each made as it is written.
impl Serialize for Findings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(|f| f.to_finding()))
    }
}
