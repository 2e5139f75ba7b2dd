//! Deadline checks: retention, blocking, deletion, data-subject requests, breaches and
//! response times, as of any instant.
//!
//! ```text
//! store ──► subjects (cases, users, requests, breaches) with their facts as known at T
//!              │           (every instant dated after T is left out)
//!              ▼
//!           periods (Regulation 1182/71, in the acting actor's zone and calendar) ──► *_due
//!              │
//!              ▼
//!           Cedar (policies/rules/deadline): which rules does the subject break at T?
//!              │         and at T + horizon, if nothing more happens? (due soon)
//!              ▼
//!           findings: late (done after due), overdue (not done, due passed), due_soon, unmet
//! ```
//!
//! The policies only compare instants with one another. So a subject's instants can be
//! replaced by their ranks (an order-preserving map) without changing any decision, and
//! subjects with the same facts up to that map share one Cedar evaluation.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityUid, Request, RestrictedExpression,
};
use chrono::{DateTime, Months, Utc};
use custos_policies::Policies;

use crate::calendar::Calendars;
use crate::catalog;
use crate::error::{Error, Result};
use crate::finding::{self, Finding};
use crate::period::{self, Length};
use crate::query;
use crate::store::Store;

/// Periods the law leaves open, which Custos fills with configurable defaults.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    /// To block a deactivated user's data (RET-USER-BLOCK): 1 day.
    pub user_block: Length,
    /// To inform the DPO of a breach (BRE-DPO): 72 hours.
    pub dpo: Length,
    /// To communicate a high-risk breach to the data subjects (BRE-SUBJECTS): 72 hours.
    pub subjects: Length,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults { user_block: Length::Days(1), dpo: Length::Hours(72), subjects: Length::Hours(72) }
    }
}

/// What a check is asked.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The instant the check answers for (UTC microseconds).
    pub as_of: i64,
    /// How far ahead `due_soon` looks (microseconds).
    pub horizon: i64,
    /// The configurable periods.
    pub defaults: Defaults,
}

/// What a check found.
#[derive(Debug, Clone, Default)]
pub struct Check {
    /// Findings, ordered by rule, then subject.
    pub findings: Vec<Finding>,
    /// Subjects checked.
    pub subjects: u64,
    /// Distinct subjects sent to Cedar (after the order-preserving canonical form).
    pub evaluations: u64,
}

/// A fact of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Fact {
    Bool(bool),
    Text(String),
    Instant(i64),
}

/// A subject with its facts, in the shape of the `Deadline` schema.
#[derive(Debug, Clone)]
struct Subject {
    kind: &'static str,
    id: String,
    /// Who must act, by the policies' `@actor`.
    actors: HashMap<&'static str, (Option<String>, Option<String>)>,
    facts: Vec<(&'static str, Fact)>,
}

impl Subject {
    fn instant(&self, name: &str) -> Option<i64> {
        self.facts.iter().find_map(|(n, f)| match f {
            Fact::Instant(t) if *n == name => Some(*t),
            _ => None,
        })
    }
}

/// Asks Cedar about subjects, once per canonical form.
pub struct DeadlineJudge {
    policies: Arc<Policies>,
    authorizer: Authorizer,
    principal: EntityUid,
    action: EntityUid,
    cache: HashMap<String, Vec<String>>,
}

fn uid(t: &str, id: &str) -> Result<EntityUid> {
    Ok(EntityUid::from_type_name_and_id(crate::decision::type_name(t)?, EntityId::new(id)))
}

impl DeadlineJudge {
    /// A judge applying `policies` (the deadline rules).
    pub fn new(policies: Arc<Policies>) -> Result<DeadlineJudge> {
        Ok(DeadlineJudge {
            policies,
            authorizer: Authorizer::new(),
            principal: uid("Deadline::Supervisor", "custos")?,
            action: uid("Deadline::Action", "check")?,
            cache: HashMap::new(),
        })
    }

    /// The policies applied.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// The policy IDs a subject breaks as of `as_of`, sorted.
    fn broken(&mut self, s: &Subject, as_of: i64) -> Result<Vec<String>> {
        // The canonical form: every instant replaced by its rank among the subject's instants
        // and the check's instant.
        let mut instants: Vec<i64> = s
            .facts
            .iter()
            .filter_map(|(_, f)| if let Fact::Instant(t) = f { Some(*t) } else { None })
            .collect();
        instants.push(as_of);
        instants.sort_unstable();
        instants.dedup();
        let rank = |t: i64| instants.binary_search(&t).unwrap_or(0) as i64;
        let canonical: Vec<(&str, Fact)> = s
            .facts
            .iter()
            .map(|(n, f)| {
                (
                    *n,
                    match f {
                        Fact::Instant(t) => Fact::Instant(rank(*t)),
                        other => other.clone(),
                    },
                )
            })
            .collect();
        let key = format!("{}|{:?}|{}", s.kind, canonical, rank(as_of));
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit.clone());
        }
        let broken = self.decide(s.kind, &canonical, rank(as_of))?;
        self.cache.insert(key, broken.clone());
        Ok(broken)
    }

    fn decide(&self, kind: &str, facts: &[(&str, Fact)], as_of: i64) -> Result<Vec<String>> {
        let cedar = |e: String| Error::Usage(format!("building the Cedar request: {e}"));
        let attrs: HashMap<String, RestrictedExpression> = facts
            .iter()
            .map(|(n, f)| {
                let v = match f {
                    Fact::Bool(b) => RestrictedExpression::new_bool(*b),
                    Fact::Text(s) => RestrictedExpression::new_string(s.clone()),
                    Fact::Instant(t) => RestrictedExpression::new_long(*t),
                };
                ((*n).to_owned(), v)
            })
            .collect();
        let resource = uid(&format!("Deadline::{kind}"), "subject")?;
        let schema = Some(self.policies.schema());
        let entities = Entities::from_entities(
            [
                Entity::new(resource.clone(), attrs, HashSet::new()).map_err(|e| cedar(e.to_string()))?,
                Entity::new_no_attrs(self.principal.clone(), HashSet::new()),
            ],
            schema,
        )
        .map_err(|e| cedar(e.to_string()))?;
        let context = Context::from_pairs([("as_of".to_owned(), RestrictedExpression::new_long(as_of))])
            .map_err(|e| cedar(e.to_string()))?;
        let request = Request::new(self.principal.clone(), self.action.clone(), resource, context, schema)
            .map_err(|e| cedar(e.to_string()))?;
        let response = self.authorizer.is_authorized(&request, self.policies.set(), &entities);
        if let Some(e) = response.diagnostics().errors().next() {
            return Err(Error::Usage(format!("a deadline policy failed to evaluate: {e}")));
        }
        let mut broken: Vec<String> = match response.decision() {
            Decision::Allow => Vec::new(),
            Decision::Deny => response.diagnostics().reason().map(ToString::to_string).collect(),
        };
        broken.sort();
        Ok(broken)
    }
}

/// Runs every deadline rule over the store as of `options.as_of`.
pub fn check(store: &Store, judge: &mut DeadlineJudge, options: &Options) -> Result<Check> {
    let subjects = subjects(store, options)?;
    let mut out = Check { subjects: subjects.len() as u64, ..Check::default() };
    let later = options.as_of.saturating_add(options.horizon);
    for s in &subjects {
        let now = judge.broken(s, options.as_of)?;
        let soon = if options.horizon > 0 { judge.broken(s, later)? } else { Vec::new() };
        for id in &now {
            out.findings.push(finding(judge.policies(), s, id, None)?);
        }
        for id in soon.iter().filter(|id| !now.contains(id)) {
            let rule = judge.policies().rule(id);
            // Only an obligation not yet met can fall due.
            if rule.is_some_and(|r| r.due.is_some() && r.done.as_ref().is_none_or(|d| s.instant(d).is_none()))
            {
                out.findings.push(finding(judge.policies(), s, id, Some("due_soon"))?);
            }
        }
    }
    out.evaluations = judge.cache.len() as u64;
    out.findings
        .sort_by(|a, b| (&a.rule, &a.subject_id, &a.status).cmp(&(&b.rule, &b.subject_id, &b.status)));
    Ok(out)
}

fn finding(policies: &Policies, s: &Subject, id: &str, status: Option<&str>) -> Result<Finding> {
    let rule = policies.rule(id).ok_or_else(|| Error::Usage(format!("unknown policy `{id}`")))?;
    let due = rule.due.as_deref().and_then(|d| s.instant(d));
    let status = status.map(str::to_owned).unwrap_or_else(|| match (&rule.due, &rule.done) {
        (None, _) => "unmet".into(),
        (Some(_), Some(done)) if s.instant(done).is_some() => "late".into(),
        (Some(_), _) => "overdue".into(),
    });
    let (authority_id, member_state) =
        rule.actor.as_deref().and_then(|a| s.actors.get(a)).cloned().unwrap_or((None, None));
    Ok(Finding {
        rule: rule.rule.clone(),
        status,
        subject_kind: s.kind.to_lowercase(),
        subject_id: s.id.clone(),
        due_at: due.map(finding::format_micros),
        legal_ref: rule.article.clone(),
        severity: rule.severity.clone(),
        authority_id,
        member_state,
        event_id: None,
        user_id: None,
        case_id: (s.kind == "Case").then(|| s.id.clone()),
        ts: None,
        policies: Some(vec![id.to_owned()]),
        default_period: rule.default.clone(),
    })
}

/// Column accessors over one batch of a stored table.
struct Row<'a> {
    b: &'a RecordBatch,
    r: usize,
    as_of: i64,
}

impl Row<'_> {
    fn text(&self, n: &str) -> Option<String> {
        let a = self.b.column_by_name(n)?.as_string::<i32>();
        (!a.is_null(self.r)).then(|| a.value(self.r).to_owned())
    }
    fn flag(&self, n: &str) -> bool {
        self.b.column_by_name(n).is_some_and(|c| {
            let a = c.as_boolean();
            !a.is_null(self.r) && a.value(self.r)
        })
    }
    fn int(&self, n: &str) -> Option<i64> {
        let a = self.b.column_by_name(n)?.as_primitive::<Int64Type>();
        (!a.is_null(self.r)).then(|| a.value(self.r))
    }
    /// An instant as recorded, whatever its date.
    fn raw(&self, n: &str) -> Option<i64> {
        let a = self.b.column_by_name(n)?.as_primitive::<TimestampMicrosecondType>();
        (!a.is_null(self.r)).then(|| a.value(self.r))
    }
    /// An instant known at the check's instant: left out when dated after it.
    fn seen(&self, n: &str) -> Option<i64> {
        self.raw(n).filter(|t| *t <= self.as_of)
    }
}

fn utc(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Every subject of the store with its facts as known at `options.as_of`.
fn subjects(store: &Store, options: &Options) -> Result<Vec<Subject>> {
    let as_of = options.as_of;
    let calendars = Calendars::of(store)?;
    let eu = calendars.get("EU");
    let end = |t: i64, len: Length, cal: &crate::calendar::Calendar| micros(period::end(utc(t), len, cal));

    let mut authorities: HashMap<String, String> = HashMap::new();
    let mut commission: Option<String> = None;
    for b in store.read(catalog::AUTHORITIES.name)? {
        for r in 0..b.num_rows() {
            let row = Row { b: &b, r, as_of };
            let (Some(id), Some(ms)) = (row.text("authority_id"), row.text("member_state")) else { continue };
            if commission.is_none() && row.text("kind").as_deref() == Some("commission") {
                commission = Some(id.clone());
            }
            authorities.insert(id, ms);
        }
    }
    let actor_of = |id: Option<String>| -> (Option<String>, Option<String>) {
        let ms = id.as_ref().and_then(|i| authorities.get(i).cloned());
        (id, ms)
    };
    let the_commission = (commission.clone(), Some("EU".to_owned()));

    let domains = query::effective_domains(store)?;
    let mut retention: HashMap<String, (i64, bool)> = HashMap::new();
    for r in 0..domains.num_rows() {
        let row = Row { b: &domains, r, as_of };
        if let Some(d) = row.text("domain") {
            retention
                .insert(d, (row.int("retention_months").unwrap_or(6), row.flag("special_categories_basis")));
        }
    }
    let mut responding: HashMap<String, String> = HashMap::new();
    for b in store.read(catalog::CASE_PARTICIPANTS.name)? {
        for r in 0..b.num_rows() {
            let row = Row { b: &b, r, as_of };
            if row.text("role").as_deref() == Some("responding")
                && let (Some(c), Some(a)) = (row.text("case_id"), row.text("authority_id"))
            {
                responding.entry(c).or_insert(a);
            }
        }
    }

    let mut out = Vec::new();
    for b in store.read(catalog::CASES.name)? {
        for r in 0..b.num_rows() {
            let row = Row { b: &b, r, as_of };
            let (Some(id), Some(created)) = (row.text("case_id"), row.raw("created_at")) else { continue };
            if created > as_of {
                continue;
            }
            let domain = row.text("domain").unwrap_or_default();
            let (domain_months, basis) = retention.get(&domain).copied().unwrap_or((6, false));
            let months = row.int("retention_months").unwrap_or(domain_months).clamp(1, 18) as u32;
            let requester = row.text("requesting_authority");
            let responder = responding.get(&id).cloned();
            let requester_cal =
                calendars.get(requester.as_ref().and_then(|a| authorities.get(a)).map_or("EU", |s| s));
            let responder_cal =
                calendars.get(responder.as_ref().and_then(|a| authorities.get(a)).map_or("EU", |s| s));
            let mut facts = vec![
                ("personal_data", Fact::Bool(row.flag("personal_data"))),
                ("repository", Fact::Bool(row.text("repository_basis").is_some())),
                ("inactivity_justified", Fact::Bool(row.flag("inactivity_justified"))),
                ("special_categories", Fact::Bool(row.flag("special_categories"))),
                ("special_categories_basis", Fact::Bool(basis)),
                ("subject_consent", Fact::Bool(row.flag("subject_consent"))),
            ];
            let closed = row.seen("closed_at");
            facts.push(("open", Fact::Bool(closed.is_none())));
            let deleted = row.seen("deleted_at");
            if let Some(c) = closed {
                facts.push(("closed", Fact::Instant(c)));
                facts.push(("block_due", Fact::Instant(end(c, Length::Months(months), &eu))));
                facts.push(("delete_due", Fact::Instant(end(c, Length::Years(3), &eu))));
                let three = utc(c).checked_add_months(Months::new(36)).map_or(c, micros);
                facts.push(("three_years", Fact::Instant(three)));
            }
            let block_done = match (row.seen("blocked_at"), deleted) {
                (Some(b), Some(d)) => Some(b.min(d)),
                (b, d) => b.or(d),
            };
            if let Some(t) = block_done {
                facts.push(("block_done", Fact::Instant(t)));
            }
            if let Some(t) = deleted {
                facts.push(("deleted", Fact::Instant(t)));
            }
            if let Some(t) = row.seen("early_deletion_requested_at") {
                facts.push(("early_deletion_requested", Fact::Instant(t)));
            }
            if closed.is_none() {
                // The last activity known at T.
                let last = row.seen("last_activity_at").or_else(|| {
                    ["created_at", "sent_at", "accepted_at", "answered_at"]
                        .iter()
                        .filter_map(|c| row.seen(c))
                        .max()
                });
                if let Some(l) = last {
                    facts.push(("inactive_due", Fact::Instant(end(l, Length::Months(2), &requester_cal))));
                }
            }
            let agreed = row.raw("due_at");
            let is_request = row.text("procedure").as_deref() == Some("request") && agreed.is_some();
            facts.push(("request", Fact::Bool(is_request)));
            if let (true, Some(d)) = (is_request, agreed) {
                facts.push(("answer_due", Fact::Instant(micros(period::end_of_day(utc(d), &responder_cal)))));
                if let Some(a) = row.seen("answered_at") {
                    facts.push(("answered", Fact::Instant(a)));
                }
            }
            let actors = HashMap::from([
                ("commission", the_commission.clone()),
                ("requesting", actor_of(requester)),
                ("responding", actor_of(responder)),
            ]);
            out.push(Subject { kind: "Case", id, actors, facts });
        }
    }

    for b in store.read(catalog::USERS.name)? {
        for r in 0..b.num_rows() {
            let row = Row { b: &b, r, as_of };
            let Some(id) = row.text("user_id") else { continue };
            if row.raw("registered_at").is_some_and(|t| t > as_of) {
                continue;
            }
            let mut facts = Vec::new();
            if let Some(d) = row.seen("deactivated_at") {
                facts.push(("block_due", Fact::Instant(end(d, options.defaults.user_block, &eu))));
                facts.push(("delete_due", Fact::Instant(end(d, Length::Years(3), &eu))));
                if let Some(t) = row.seen("blocked_at") {
                    facts.push(("blocked", Fact::Instant(t)));
                }
                if let Some(t) = row.seen("deleted_at") {
                    facts.push(("deleted", Fact::Instant(t)));
                }
            } else {
                continue;
            }
            let actors = HashMap::from([("commission", the_commission.clone())]);
            out.push(Subject { kind: "User", id, actors, facts });
        }
    }

    for b in store.read(catalog::DSR_REQUESTS.name)? {
        for r in 0..b.num_rows() {
            let row = Row { b: &b, r, as_of };
            let (Some(id), Some(received)) = (row.text("request_id"), row.raw("received_at")) else {
                continue;
            };
            if received > as_of {
                continue;
            }
            let controller = row.text("controller_id");
            let (controller, ms) = actor_of(controller);
            let cal = calendars.get(ms.as_deref().unwrap_or("EU"));
            let responded = row.seen("responded_at");
            // The outcome is known once the response is.
            let outcome = responded.and(row.text("outcome"));
            let refused = matches!(outcome.as_deref(), Some("refused" | "no_action"));
            let mut facts = vec![
                ("regime", Fact::Text(row.text("regime").unwrap_or_default())),
                ("right", Fact::Text(row.text("right").unwrap_or_default())),
                ("refused", Fact::Bool(refused)),
                ("remedy_info_given", Fact::Bool(row.flag("remedy_info_given"))),
                ("month_due", Fact::Instant(end(received, Length::Months(1), &cal))),
                ("three_month_due", Fact::Instant(end(received, Length::Months(3), &cal))),
                ("correct_due", Fact::Instant(end(received, Length::Days(30), &cal))),
                ("working_days_due", Fact::Instant(end(received, Length::WorkingDays(15), &eu))),
            ];
            for (fact, column) in
                [("extension_notified", "extension_notified_at"), ("completed", "completed_at")]
            {
                if let Some(t) = row.seen(column) {
                    facts.push((fact, Fact::Instant(t)));
                }
            }
            if let Some(t) = responded {
                facts.push(("responded", Fact::Instant(t)));
            }
            let actors = HashMap::from([("controller", (controller, ms))]);
            out.push(Subject { kind: "Request", id, actors, facts });
        }
    }

    for b in store.read(catalog::BREACHES.name)? {
        for r in 0..b.num_rows() {
            let row = Row { b: &b, r, as_of };
            let (Some(id), Some(aware)) = (row.text("breach_id"), row.raw("aware_at")) else { continue };
            if aware > as_of {
                continue;
            }
            let (controller, ms) = actor_of(row.text("controller_id"));
            let cal = calendars.get(ms.as_deref().unwrap_or("EU"));
            let present = |c: &str| row.text(c).is_some_and(|s| !s.trim().is_empty());
            let mut facts = vec![
                ("risk", Fact::Text(row.text("risk").unwrap_or_default())),
                ("exempt", Fact::Bool(row.text("subject_exemption").is_some())),
                ("has_delay_reasons", Fact::Bool(present("delay_reasons"))),
                ("has_nature", Fact::Bool(present("nature"))),
                ("has_consequences", Fact::Bool(present("consequences"))),
                ("has_measures", Fact::Bool(present("measures"))),
                ("has_approx_subjects", Fact::Bool(row.int("approx_subjects").is_some())),
                ("has_approx_records", Fact::Bool(row.int("approx_records").is_some())),
                ("notify_due", Fact::Instant(end(aware, Length::Hours(72), &cal))),
                ("dpo_due", Fact::Instant(end(aware, options.defaults.dpo, &cal))),
                ("subjects_due", Fact::Instant(end(aware, options.defaults.subjects, &cal))),
            ];
            for (fact, column) in [
                ("notified", "notified_at"),
                ("dpo_informed", "dpo_informed_at"),
                ("subjects_notified", "subjects_notified_at"),
            ] {
                if let Some(t) = row.seen(column) {
                    facts.push((fact, Fact::Instant(t)));
                }
            }
            let actors = HashMap::from([("controller", (controller, ms))]);
            out.push(Subject { kind: "Breach", id, actors, facts });
        }
    }
    Ok(out)
}
