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
    Authorizer, Context, Entities, Entity, EntityId, EntityUid, Request, RestrictedExpression,
};
use chrono::{DateTime, Utc};
use custos_policies::Policies;

use crate::calendar::Calendars;
use crate::catalog;
use crate::error::{Error, Result};
use crate::period::{self, Length};
use crate::query;
use crate::store::Store;

mod cases;
mod found;

pub use found::{FindingRef, Findings, Status};

/// Periods the law leaves open, which Custos fills with configurable defaults.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    /// To block a deactivated user's data (RET-USER-BLOCK): 1 day.
    pub user_block: Length,
    /// To inform the DPO of a breach (BRE-DPO): 72 hours.
    pub dpo: Length,
    /// To communicate a high-risk breach to the data subjects (BRE-SUBJECTS): 72 hours.
    pub subjects: Length,
    /// Without a granted login before a user's access rights are due for review
    /// (USR-DORMANT): 12 months.
    pub dormant: Length,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            user_block: Length::Days(1),
            dpo: Length::Hours(72),
            subjects: Length::Hours(72),
            dormant: Length::Months(12),
        }
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
#[derive(Debug, Clone)]
pub struct Check {
    /// Findings, ordered by rule, subject kind, subject and status.
    pub findings: Findings,
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
struct Subject<'a> {
    kind: &'static str,
    id: &'a str,
    /// Who must act, by the policies' `@actor`.
    actors: Actors<'a>,
    facts: Vec<(Name, Fact)>,
    /// The particulars of one fact that a finding lists (`@detail`), by the fact's name.
    detail: Option<(Name, String)>,
}

impl Subject<'_> {
    fn instant(&self, name: Name) -> Option<i64> {
        self.facts.iter().find_map(|(n, f)| match f {
            Fact::Instant(t) if *n == name => Some(*t),
            _ => None,
        })
    }

    /// The instant a policy's annotation names.
    fn instant_named(&self, name: &str) -> Option<i64> {
        Name::of(name).and_then(|n| self.instant(n))
    }
}

/// An actor: its authority and member state.
type Actor<'a> = (Option<&'a str>, Option<&'a str>);

/// Who must act for a subject, by the `@actor` of the rule.
#[derive(Debug, Clone, Default)]
struct Actors<'a> {
    commission: Actor<'a>,
    requesting: Actor<'a>,
    responding: Actor<'a>,
    controller: Actor<'a>,
    /// A user's authority.
    authority: Actor<'a>,
}

impl<'a> Actors<'a> {
    fn get(&self, name: &str) -> Option<&Actor<'a>> {
        match name {
            "commission" => Some(&self.commission),
            "requesting" => Some(&self.requesting),
            "responding" => Some(&self.responding),
            "controller" => Some(&self.controller),
            "authority" => Some(&self.authority),
            _ => None,
        }
    }
}

/// The policies a subject breaks now, and by the end of the horizon, by their place in
/// [`Policies::rules`].
type Verdicts = Arc<(Vec<usize>, Vec<usize>)>;

/// Every fact name the subjects use, in order: a subject names its facts by their place here.
const FACT_NAMES: [&str; 46] = [
    "active",
    "anniversary",
    "answer_due",
    "answered",
    "block_done",
    "block_due",
    "blocked",
    "closed",
    "completed",
    "correct_due",
    "delete_due",
    "deleted",
    "dormant_due",
    "dpo_due",
    "dpo_informed",
    "early_deletion_requested",
    "exempt",
    "extension_notified",
    "has_approx_records",
    "has_approx_subjects",
    "has_consequences",
    "has_delay_reasons",
    "has_measures",
    "has_nature",
    "inactive_due",
    "inactivity_justified",
    "month_due",
    "notified",
    "notify_due",
    "open",
    "personal_data",
    "refused",
    "regime",
    "remedy_info_given",
    "repository",
    "responded",
    "right",
    "rights_outside",
    "risk",
    "special_categories",
    "special_categories_basis",
    "subject_consent",
    "subjects_due",
    "subjects_notified",
    "three_month_due",
    "working_days_due",
];

/// Every column the subjects are read from: a row reads a column by its place here.
const COLUMN_NAMES: [&str; 60] = [
    "accepted_at",
    "answered_at",
    "approx_records",
    "approx_subjects",
    "authority_domains",
    "authority_id",
    "authority_state",
    "aware_at",
    "blocked_at",
    "breach_id",
    "case_id",
    "closed_at",
    "completed_at",
    "consequences",
    "controller_id",
    "controller_state",
    "created_at",
    "deactivated_at",
    "delay_reasons",
    "deleted_at",
    "domain_repository",
    "domain_retention_months",
    "domains",
    "dpo_informed_at",
    "due_at",
    "early_deletion_requested_at",
    "extension_notified_at",
    "inactivity_justified",
    "kind",
    "last_activity_at",
    "last_login",
    "measures",
    "member_state",
    "nature",
    "notified_at",
    "outcome",
    "personal_data",
    "procedure",
    "received_at",
    "regime",
    "registered_at",
    "remedy_info_given",
    "repository_basis",
    "request_id",
    "requester_state",
    "requesting_authority",
    "responded_at",
    "responder",
    "responder_state",
    "responders",
    "retention_months",
    "right",
    "risk",
    "sent_at",
    "special_categories",
    "special_categories_basis",
    "subject_consent",
    "subject_exemption",
    "subjects_notified_at",
    "user_id",
];

/// The place of `name` in `names`, at compile time (a name not listed does not compile).
// Only `fact!` and `col!` call it, in constants: the panic is a compile error, never a panic.
#[allow(clippy::panic)]
const fn place(names: &[&str], name: &str) -> usize {
    let mut i = 0;
    while i < names.len() {
        let (a, b) = (names[i].as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("a name that is not listed")
}

/// A fact's name, by its place in [`FACT_NAMES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Name(u8);

impl Name {
    fn as_str(self) -> &'static str {
        FACT_NAMES[self.0 as usize]
    }

    /// The fact a policy's annotation (`@due`, `@done`) names, if a subject can have it.
    fn of(name: &str) -> Option<Name> {
        FACT_NAMES.binary_search(&name).ok().map(|i| Name(i as u8))
    }
}

/// A column, by its place in [`COLUMN_NAMES`].
#[derive(Debug, Clone, Copy)]
struct Col(usize);

/// The [`Name`] of a fact, checked at compile time.
macro_rules! fact {
    ($name:literal) => {{
        const NAME: Name = Name(place(&FACT_NAMES, $name) as u8);
        NAME
    }};
}

/// The [`Col`] of a column, checked at compile time.
macro_rules! col {
    ($name:literal) => {{
        const COL: Col = Col(place(&COLUMN_NAMES, $name));
        COL
    }};
}

/// Asks Cedar about subjects, once per canonical form.
pub struct DeadlineJudge {
    policies: Arc<Policies>,
    authorizer: Authorizer,
    principal: EntityUid,
    action: EntityUid,
    cache: HashMap<Vec<u8>, Verdicts, foldhash::fast::RandomState>,
    /// Ask Cedar about every subject with its real instants (the differential twin).
    naive: bool,
    /// Ends of periods this judge's thread computed before.
    memo: period::Memo,
    /// The findings of the batch being judged.
    found: Findings,
    /// A subject's instants, in order (kept for the next subject).
    instants: Vec<i64>,
    /// A subject's cache key (kept for the next subject).
    key: Vec<u8>,
}

fn uid(t: &str, id: &str) -> Result<EntityUid> {
    Ok(EntityUid::from_type_name_and_id(crate::decision::type_name(t)?, EntityId::new(id)))
}

impl DeadlineJudge {
    /// A judge applying `policies` (the deadline rules).
    pub fn new(policies: Arc<Policies>) -> Result<DeadlineJudge> {
        Ok(DeadlineJudge {
            authorizer: Authorizer::new(),
            principal: uid("Deadline::Supervisor", "custos")?,
            action: uid("Deadline::Action", "check")?,
            cache: HashMap::default(),
            naive: false,
            memo: period::Memo::default(),
            found: Findings::new(Arc::clone(&policies)),
            policies,
            instants: Vec::new(),
            key: Vec::new(),
        })
    }

    /// A judge that asks Cedar once per subject with its real instants and caches nothing:
    /// slow and obviously right, the twin the canonical form is tested against.
    pub fn naive(policies: Arc<Policies>) -> Result<DeadlineJudge> {
        Ok(DeadlineJudge { naive: true, ..DeadlineJudge::new(policies)? })
    }

    /// The policies applied.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// The policies a subject breaks as of `as_of`, and as of `later` when asked (the
    /// horizon of `due_soon`), each sorted.
    fn broken(&mut self, s: &Subject, as_of: i64, later: Option<i64>) -> Result<Verdicts> {
        if self.naive {
            let facts = s.facts.iter().map(|(n, f)| (*n, f.clone())).collect::<Vec<_>>();
            let now = self.decide(s.kind, &facts, as_of)?;
            let soon = later.map(|t| self.decide(s.kind, &facts, t)).transpose()?.unwrap_or_default();
            return Ok(Arc::new((now, soon)));
        }
        // The canonical form: every instant replaced by its rank among the subject's instants
        // and the check's instants (now, and the horizon's end), so that one key serves both.
        let (mut instants, mut key) = (std::mem::take(&mut self.instants), std::mem::take(&mut self.key));
        instants.clear();
        key.clear();
        instants.extend(
            s.facts.iter().filter_map(|(_, f)| if let Fact::Instant(t) = f { Some(*t) } else { None }),
        );
        instants.push(as_of);
        instants.extend(later);
        instants.sort_unstable();
        instants.dedup();
        let rank = |t: i64| instants.binary_search(&t).unwrap_or(0) as i64;
        key.extend_from_slice(s.kind.as_bytes());
        for (n, f) in &s.facts {
            // A fact's name by its place in the list of names (one byte), not its text.
            key.push(n.0);
            match f {
                Fact::Bool(b) => key.push(u8::from(*b)),
                Fact::Text(t) => {
                    key.extend_from_slice(t.as_bytes());
                    key.push(0xff);
                }
                Fact::Instant(t) => key.extend_from_slice(&(rank(*t) as u16).to_le_bytes()),
            }
        }
        key.extend_from_slice(&(rank(as_of) as u16).to_le_bytes());
        key.extend_from_slice(&later.map_or(u16::MAX, |t| rank(t) as u16).to_le_bytes());
        let hit = self.cache.get(key.as_slice()).cloned();
        let verdicts = match hit {
            Some(hit) => hit,
            None => self.decide_canonical(s, &key, &rank, as_of, later)?,
        };
        // The buffers serve the next subject.
        (self.instants, self.key) = (instants, key);
        Ok(verdicts)
    }

    /// Asks Cedar about a subject in its canonical form and remembers the answer under `key`.
    fn decide_canonical(
        &mut self,
        s: &Subject,
        key: &[u8],
        rank: &dyn Fn(i64) -> i64,
        as_of: i64,
        later: Option<i64>,
    ) -> Result<Verdicts> {
        let canonical: Vec<(Name, Fact)> = s
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
        let now = self.decide(s.kind, &canonical, rank(as_of))?;
        let soon = later.map(|t| self.decide(s.kind, &canonical, rank(t))).transpose()?.unwrap_or_default();
        let verdicts = Arc::new((now, soon));
        self.cache.insert(key.to_vec(), Arc::clone(&verdicts));
        Ok(verdicts)
    }

    fn decide(&self, kind: &str, facts: &[(Name, Fact)], as_of: i64) -> Result<Vec<usize>> {
        let cedar = |e: String| Error::Internal(format!("building the Cedar request: {e}"));
        let attrs: HashMap<String, RestrictedExpression> = facts
            .iter()
            .map(|(n, f)| {
                let v = match f {
                    Fact::Bool(b) => RestrictedExpression::new_bool(*b),
                    Fact::Text(s) => RestrictedExpression::new_string(s.clone()),
                    Fact::Instant(t) => RestrictedExpression::new_long(*t),
                };
                (n.as_str().to_owned(), v)
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
        crate::decision::broken(&response)?
            .iter()
            .map(|id| {
                self.policies.place(id).ok_or_else(|| Error::Internal(format!("unknown policy `{id}`")))
            })
            .collect()
    }
}

/// Runs every deadline rule over the store as of `options.as_of`.
///
/// Subjects are read batch by batch (the facts queries stream) and judged on every core, each
/// thread with its own judge and cache; memory stays bounded by the batch size.
pub async fn check(store: &Store, policies: Arc<Policies>, options: &Options) -> Result<Check> {
    run(store, policies, options, false).await
}

/// [`check`] with a naive judge: every subject evaluated by Cedar with its real instants.
pub async fn check_naive(store: &Store, policies: Arc<Policies>, options: &Options) -> Result<Check> {
    run(store, policies, options, true).await
}

async fn run(store: &Store, policies: Arc<Policies>, options: &Options, naive: bool) -> Result<Check> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let judge = |_| {
        if naive {
            DeadlineJudge::naive(Arc::clone(&policies))
        } else {
            DeadlineJudge::new(Arc::clone(&policies))
        }
    };
    let mut judges = (0..threads).map(judge).collect::<Result<Vec<_>>>()?;
    let context = Facts::load(store, options)?;
    let ctx = query::session(store).await?;
    let mut out = Check { findings: Findings::new(Arc::clone(&policies)), subjects: 0, evaluations: 0 };
    // The twin reads the cases' facts through the query's joins, the check by look-ups: the
    // tests comparing the two compare these too.
    let started = std::time::Instant::now();
    let lookups =
        if naive { None } else { Some(cases::CaseLookups::load(store, &ctx, options.as_of).await?) };
    // Each query, its subjects, and whether it takes the check's instant as `$1`: the cases'
    // query (the twin's) knows only the participants who joined by then, the users' only the
    // logins by then.
    let sources: [(&str, Kind, bool); 4] = [
        if naive {
            (query::sql::CASE_DEADLINE_FACTS, Kind::Case, true)
        } else {
            (cases::SQL, Kind::Case, false)
        },
        (query::sql::USER_DEADLINE_FACTS, Kind::User, true),
        (query::sql::REQUEST_DEADLINE_FACTS, Kind::Request, false),
        (query::sql::BREACH_DEADLINE_FACTS, Kind::Breach, false),
    ];
    // The facts queries run ahead on the runtime while this thread judges the batch before:
    // at most two batches wait between them.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<(Kind, RecordBatch)>>(2);
    let as_of = options.as_of;
    let producer = tokio::spawn(async move {
        for (sql, kind, takes_as_of) in sources {
            let bound = |df: datafusion::dataframe::DataFrame| match takes_as_of {
                true => df.with_param_values(vec![crate::query::ts_param(as_of)]),
                false => Ok(df),
            };
            let stream = match ctx.sql(sql).await.and_then(bound) {
                Ok(df) => df.execute_stream().await,
                Err(e) => Err(e),
            };
            let mut stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            };
            while let Some(batch) = futures::StreamExt::next(&mut stream).await {
                let batch = match (&lookups, kind) {
                    (Some(lookups), Kind::Case) => {
                        batch.map_err(Error::from).and_then(|b| lookups.extend(&b))
                    }
                    _ => batch.map_err(Error::from),
                };
                let failed = batch.is_err();
                if tx.send(batch.map(|b| (kind, b))).await.is_err() || failed {
                    return;
                }
            }
        }
    });
    {
        while let Some(next) = rx.recv().await {
            let (kind, batch) = next?;
            let chunk = batch.num_rows().div_ceil(threads).max(1);
            let results: Vec<Result<u64>> = std::thread::scope(|scope| {
                let handles: Vec<_> = judges
                    .iter_mut()
                    .enumerate()
                    .map(|(i, judge)| {
                        let (batch, context) = (&batch, &context);
                        scope.spawn(move || {
                            let rows = (i * chunk)..((i + 1) * chunk).min(batch.num_rows());
                            judge_rows(judge, context, kind, batch, rows, options)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| Err(Error::Internal("a check thread failed".into())))
                    })
                    .collect()
            });
            for r in results {
                out.subjects += r?;
            }
            // Each judge keeps its list's memory for the next batch.
            for judge in &mut judges {
                out.findings.append(&mut judge.found);
            }
        }
    }
    producer.await.map_err(|e| Error::Internal(format!("the facts queries failed: {e}")))?;
    out.evaluations = judges.iter().map(|j| j.cache.len() as u64).sum();
    let judged = started.elapsed();
    out.findings.sort();
    tracing::debug!(subjects = out.subjects, findings = out.findings.len(), ?judged, sorted = ?started.elapsed() - judged, "deadline check");
    Ok(out)
}

/// Judges rows `rows` of a facts batch into the judge's findings; returns the subjects
/// counted.
fn judge_rows(
    judge: &mut DeadlineJudge,
    context: &Facts,
    kind: Kind,
    batch: &RecordBatch,
    rows: std::ops::Range<usize>,
    options: &Options,
) -> Result<u64> {
    let later = options.as_of.saturating_add(options.horizon);
    let mut found = judge.found.take();
    let mut n = 0;
    let columns = Columns::of(batch);
    let policies = Arc::clone(&judge.policies);
    let rules = policies.rules();
    let mut subjects = Vec::new();
    for r in rows {
        subjects.clear();
        if !context.subjects(
            kind,
            &Row { c: &columns, r, as_of: options.as_of },
            &mut judge.memo,
            &mut subjects,
        ) {
            continue;
        }
        n += 1;
        for s in &subjects {
            let verdicts = judge.broken(s, options.as_of, (options.horizon > 0).then_some(later))?;
            let (now, soon) = (&verdicts.0, &verdicts.1);
            for &policy in now {
                let rule = &rules[policy];
                let status = match (&rule.due, &rule.done) {
                    (None, _) => Status::Unmet,
                    (Some(_), Some(done)) if s.instant_named(done).is_some() => Status::Late,
                    (Some(_), _) => Status::Overdue,
                };
                push(&mut found, rule, policy, status, kind, s);
            }
            for &policy in soon.iter().filter(|p| !now.contains(p)) {
                let rule = &rules[policy];
                // Only an obligation not yet met can fall due.
                if rule.due.is_some() && rule.done.as_ref().is_none_or(|d| s.instant_named(d).is_none()) {
                    push(&mut found, rule, policy, Status::DueSoon, kind, s);
                }
            }
        }
    }
    judge.found = found;
    Ok(n)
}

/// Adds the finding that `s` breaks policy number `policy`.
fn push(
    found: &mut Findings,
    rule: &custos_policies::Rule,
    policy: usize,
    status: Status,
    kind: Kind,
    s: &Subject,
) {
    let due = rule.due.as_deref().and_then(|d| s.instant_named(d));
    let (authority, member_state) =
        rule.actor.as_deref().and_then(|a| s.actors.get(a)).copied().unwrap_or((None, None));
    let detail = rule.detail.as_deref().and_then(|name| match &s.detail {
        Some((n, text)) if n.as_str() == name => Some(text.as_str()),
        _ => None,
    });
    found.push(policy, status, kind, s.id, due, authority, member_state, detail);
}

/// The kinds of subject, in the order of their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Breach,
    Case,
    Request,
    User,
}

impl Kind {
    /// What a finding about such a subject is about.
    fn subject(self) -> crate::finding::SubjectKind {
        use crate::finding::SubjectKind;
        match self {
            Kind::Breach => SubjectKind::Breach,
            Kind::Case => SubjectKind::Case,
            Kind::Request => SubjectKind::Request,
            Kind::User => SubjectKind::User,
        }
    }
}

/// A batch's columns by their place in [`COLUMN_NAMES`], looked up once per batch rather
/// than once per cell.
struct Columns<'a> {
    b: &'a RecordBatch,
    index: [Option<usize>; COLUMN_NAMES.len()],
}

impl<'a> Columns<'a> {
    fn of(b: &'a RecordBatch) -> Self {
        let schema = b.schema_ref();
        Columns { b, index: COLUMN_NAMES.map(|n| schema.index_of(n).ok()) }
    }
    fn get(&self, c: Col) -> Option<&'a arrow::array::ArrayRef> {
        self.index[c.0].map(|i| self.b.column(i))
    }
}

/// Column accessors over one row of a batch.
struct Row<'a> {
    c: &'a Columns<'a>,
    r: usize,
    as_of: i64,
}

impl<'a> Row<'a> {
    fn text(&self, n: Col) -> Option<&'a str> {
        let a = self.c.get(n)?.as_string::<i32>();
        (!a.is_null(self.r)).then(|| a.value(self.r))
    }
    fn is(&self, n: Col, value: &str) -> bool {
        self.c.get(n).is_some_and(|c| {
            let a = c.as_string::<i32>();
            !a.is_null(self.r) && a.value(self.r) == value
        })
    }
    fn present(&self, n: Col) -> bool {
        self.c.get(n).is_some_and(|c| {
            let a = c.as_string::<i32>();
            !a.is_null(self.r) && !a.value(self.r).trim().is_empty()
        })
    }
    fn flag(&self, n: Col) -> bool {
        self.c.get(n).is_some_and(|c| {
            let a = c.as_boolean();
            !a.is_null(self.r) && a.value(self.r)
        })
    }
    fn int(&self, n: Col) -> Option<i64> {
        let a = self.c.get(n)?.as_primitive::<Int64Type>();
        (!a.is_null(self.r)).then(|| a.value(self.r))
    }
    /// An instant as recorded, whatever its date.
    fn raw(&self, n: Col) -> Option<i64> {
        let a = self.c.get(n)?.as_primitive::<TimestampMicrosecondType>();
        (!a.is_null(self.r)).then(|| a.value(self.r))
    }
    /// The values of the list in column `items` that the list in column `allowed` lacks;
    /// none when `allowed` is null or empty (not recorded: an IMI actor is registered for at
    /// least one area, and an export without competences must not make every user a finding).
    fn outside(&self, items: Col, allowed: Col) -> Vec<String> {
        let list = |c: Col| {
            self.c.get(c).and_then(|a| {
                let a = a.as_list_opt::<i32>()?;
                (!a.is_null(self.r)).then(|| a.value(self.r))
            })
        };
        let (Some(items), Some(allowed)) = (list(items), list(allowed)) else { return Vec::new() };
        if allowed.is_empty() {
            return Vec::new();
        }
        let (items, allowed) = (items.as_string::<i32>(), allowed.as_string::<i32>());
        let allowed: Vec<&str> = allowed.iter().flatten().collect();
        items.iter().flatten().filter(|d| !allowed.contains(d)).map(str::to_owned).collect()
    }

    /// Calls `f` with each responder of the `responders` column (authority, member state,
    /// joined, left), as recorded.
    fn responders(&self, mut f: impl FnMut(Option<&'a str>, Option<&'a str>, i64, Option<i64>)) {
        let Some(list) = self.c.get(col!("responders")).and_then(|a| a.as_list_opt::<i32>()) else { return };
        if list.is_null(self.r) {
            return;
        }
        let (start, end) = (list.value_offsets()[self.r] as usize, list.value_offsets()[self.r + 1] as usize);
        let items = list.values().as_struct();
        let text = |i: usize| items.column(i).as_string::<i32>();
        let time = |i: usize| items.column(i).as_primitive::<TimestampMicrosecondType>();
        let (authority, state, joined, left) = (text(0), text(1), time(2), time(3));
        for i in start..end {
            if joined.is_null(i) {
                continue;
            }
            let t = |a: &'a arrow::array::StringArray| (!a.is_null(i)).then(|| a.value(i));
            f(t(authority), t(state), joined.value(i), (!left.is_null(i)).then(|| left.value(i)));
        }
    }

    /// An instant known at the check's instant: left out when dated after it.
    fn seen(&self, n: Col) -> Option<i64> {
        self.raw(n).filter(|t| *t <= self.as_of)
    }
}

fn utc(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// What turning a row into a subject needs: calendars, the Commission, the options.
struct Facts {
    calendars: Calendars,
    eu: crate::calendar::Calendar,
    commission: (Option<String>, Option<String>),
    defaults: Defaults,
    as_of: i64,
}

impl Facts {
    fn load(store: &Store, options: &Options) -> Result<Facts> {
        let mut calendars = Calendars::of(store)?;
        calendars.ensure("EU");
        let mut commission = None;
        for b in store.read(catalog::AUTHORITIES.name)? {
            let columns = Columns::of(&b);
            for r in 0..b.num_rows() {
                let row = Row { c: &columns, r, as_of: options.as_of };
                if let Some(state) = row.text(col!("member_state")) {
                    calendars.ensure(state);
                }
                if row.text(col!("kind")) == Some("commission") {
                    commission = commission.or(row.text(col!("authority_id")).map(str::to_owned));
                }
            }
        }
        Ok(Facts {
            eu: calendars.get("EU").into_owned(),
            calendars,
            commission: (commission, Some("EU".to_owned())),
            defaults: options.defaults,
            as_of: options.as_of,
        })
    }

    /// The Commission as an actor.
    fn commission(&self) -> Actor<'_> {
        (self.commission.0.as_deref(), self.commission.1.as_deref())
    }

    fn end(memo: &mut period::Memo, t: i64, len: Length, cal: &crate::calendar::Calendar) -> i64 {
        micros(memo.end(utc(t), len, cal))
    }

    /// The end of a request's period once extended "by two further months" (EUDPR Art.
    /// 14(3), GDPR Art. 12(3)), read in the controller's favour: the later of three months
    /// from receipt, and two months after the end of the first month as Art. 3(4) of
    /// Regulation 1182/71 extended it (the two readings differ by up to three days).
    fn extended(memo: &mut period::Memo, received: i64, cal: &crate::calendar::Calendar) -> i64 {
        let three = Facts::end(memo, received, Length::Months(3), cal);
        // The first month ends at 24:00 of its last day: the further months run from that day.
        let first = Facts::end(memo, received, Length::Months(1), cal);
        let further = Facts::end(memo, first - 1, Length::Months(2), cal);
        three.max(further)
    }

    /// The subjects of a row of the facts query for `kind`, added to `out`: one, or none when
    /// it did not exist yet at the check's instant; a request case also gives one `Reply`
    /// per responder who must answer it. Tells whether the row's subject existed.
    fn subjects<'a>(
        &'a self,
        kind: Kind,
        row: &Row<'a>,
        memo: &mut period::Memo,
        out: &mut Vec<Subject<'a>>,
    ) -> bool {
        let subject = match kind {
            Kind::Case => self.case(row, memo, out),
            Kind::User => self.user(row, memo),
            Kind::Request => self.request(row, memo),
            Kind::Breach => self.breach(row, memo),
        };
        match subject {
            Some(s) => {
                out.insert(0, s);
                true
            }
            None => false,
        }
    }

    fn case<'a>(
        &'a self,
        row: &Row<'a>,
        memo: &mut period::Memo,
        replies: &mut Vec<Subject<'a>>,
    ) -> Option<Subject<'a>> {
        let (id, created) = (row.text(col!("case_id"))?, row.raw(col!("created_at"))?);
        if created > self.as_of {
            return None;
        }
        let months = row
            .int(col!("retention_months"))
            .or(row.int(col!("domain_retention_months")))
            .unwrap_or(6)
            .clamp(1, 18) as u32;
        let requester_state = row.text(col!("requester_state"));
        let requester_cal = self.calendars.get(requester_state.unwrap_or("EU"));
        // Room for every fact a case can have: one small allocation per subject.
        let mut facts = Vec::with_capacity(18);
        facts.extend([
            (fact!("personal_data"), Fact::Bool(row.flag(col!("personal_data")))),
            // IMI Art. 14(2): a basis, in a domain whose act provides a repository.
            (
                fact!("repository"),
                Fact::Bool(row.present(col!("repository_basis")) && row.flag(col!("domain_repository"))),
            ),
            (fact!("inactivity_justified"), Fact::Bool(row.flag(col!("inactivity_justified")))),
            (fact!("special_categories"), Fact::Bool(row.flag(col!("special_categories")))),
            (fact!("special_categories_basis"), Fact::Bool(row.flag(col!("special_categories_basis")))),
            (fact!("subject_consent"), Fact::Bool(row.flag(col!("subject_consent")))),
        ]);
        let closed = row.seen(col!("closed_at"));
        facts.push((fact!("open"), Fact::Bool(closed.is_none())));
        let deleted = row.seen(col!("deleted_at"));
        if let Some(c) = closed {
            facts.push((fact!("closed"), Fact::Instant(c)));
            facts.push((
                fact!("block_due"),
                Fact::Instant(Facts::end(memo, c, Length::Months(months), &self.eu)),
            ));
            facts.push((fact!("delete_due"), Fact::Instant(Facts::end(memo, c, Length::Years(3), &self.eu))));
            let anniversary = period::anniversary_start(utc(c), 3, &self.eu.zone);
            facts.push((fact!("anniversary"), Fact::Instant(micros(anniversary))));
        }
        let block_done = match (row.seen(col!("blocked_at")), deleted) {
            (Some(b), Some(d)) => Some(b.min(d)),
            (b, d) => b.or(d),
        };
        if let Some(t) = block_done {
            facts.push((fact!("block_done"), Fact::Instant(t)));
        }
        if let Some(t) = deleted {
            facts.push((fact!("deleted"), Fact::Instant(t)));
        }
        if let Some(t) = row.seen(col!("early_deletion_requested_at")) {
            facts.push((fact!("early_deletion_requested"), Fact::Instant(t)));
        }
        if closed.is_none() {
            // The last activity known at the check's instant.
            let last = row.seen(col!("last_activity_at")).or_else(|| {
                [col!("created_at"), col!("sent_at"), col!("accepted_at"), col!("answered_at")]
                    .into_iter()
                    .filter_map(|c| row.seen(c))
                    .max()
            });
            if let Some(l) = last {
                facts.push((
                    fact!("inactive_due"),
                    Fact::Instant(Facts::end(memo, l, Length::Months(2), &requester_cal)),
                ));
            }
        }
        if row.is(col!("procedure"), "request")
            && let Some(agreed) = row.raw(col!("due_at"))
        {
            self.replies(row, id, agreed, memo, replies);
        }
        let actors = Actors {
            commission: self.commission(),
            requesting: (row.text(col!("requesting_authority")), requester_state),
            ..Actors::default()
        };
        Some(Subject { kind: "Case", id, actors, facts, detail: None })
    }

    /// The replies a request case owes (RT-LATE): one per responder holding the `responding`
    /// role when the agreed day ends in its own legal time, or, when none does, per responder
    /// who held it last before that instant. The agreed day is the UTC date of `due_at` (a
    /// bare date is stored as 00:00 UTC of that date).
    fn replies<'a>(
        &'a self,
        row: &Row<'a>,
        case: &'a str,
        agreed: i64,
        memo: &mut period::Memo,
        out: &mut Vec<Subject<'a>>,
    ) {
        let day = utc(agreed).date_naive();
        // A responder's end of the agreed day, in its own legal time.
        let mut due_of =
            |state: Option<&str>| memo.end_of_date(day, &self.calendars.get(state.unwrap_or("EU")));
        // Held the role when the agreed day ended where it is.
        let holds = |joined: i64, due: i64, left: Option<i64>| joined <= due && left.is_none_or(|l| due < l);
        // A departure is known once it happened by the check's instant.
        let known = |left: Option<i64>| left.filter(|l| *l <= row.as_of);
        // First pass: does anyone hold it, and, if not, when did the last one leave before?
        let (mut anyone, mut last_left) = (false, None);
        row.responders(|_, state, joined, left| {
            let (due, left) = (due_of(state), known(left));
            if holds(joined, due, left) {
                anyone = true;
            } else if let Some(l) = left.filter(|l| joined <= due && *l <= due) {
                last_left = last_left.max(Some(l));
            }
        });
        if !anyone && last_left.is_none() {
            return;
        }
        let answered = row.seen(col!("answered_at"));
        row.responders(|authority, state, joined, left| {
            let (due, left) = (due_of(state), known(left));
            let responsible =
                if anyone { holds(joined, due, left) } else { left == last_left && joined <= due };
            if responsible {
                let mut facts = Vec::with_capacity(2);
                facts.push((fact!("answer_due"), Fact::Instant(due)));
                if let Some(a) = answered {
                    facts.push((fact!("answered"), Fact::Instant(a)));
                }
                let actors = Actors { responding: (authority, state), ..Actors::default() };
                out.push(Subject { kind: "Reply", id: case, actors, facts, detail: None });
            }
        });
    }

    fn user<'a>(&'a self, row: &Row<'a>, memo: &mut period::Memo) -> Option<Subject<'a>> {
        let id = row.text(col!("user_id"))?;
        let registered = row.raw(col!("registered_at"))?;
        if registered > self.as_of {
            return None;
        }
        let deactivated = row.seen(col!("deactivated_at"));
        let state = row.text(col!("authority_state"));
        // Room for every fact a user can have: one small allocation per subject.
        let mut facts = Vec::with_capacity(7);
        facts.push((fact!("active"), Fact::Bool(deactivated.is_none())));
        // Rights in a domain the authority is not competent in; an authority whose domains
        // are not recorded is not judged.
        let outside = row.outside(col!("domains"), col!("authority_domains"));
        facts.push((fact!("rights_outside"), Fact::Bool(!outside.is_empty())));
        // The finding lists them.
        let detail = (!outside.is_empty()).then(|| (fact!("rights_outside"), outside.join(";")));
        if deactivated.is_none() {
            let since = row.seen(col!("last_login")).map_or(registered, |l| l.max(registered));
            let cal = self.calendars.get(state.unwrap_or("EU"));
            facts.push((
                fact!("dormant_due"),
                Fact::Instant(Facts::end(memo, since, self.defaults.dormant, &cal)),
            ));
        }
        if let Some(d) = deactivated {
            facts.push((
                fact!("block_due"),
                Fact::Instant(Facts::end(memo, d, self.defaults.user_block, &self.eu)),
            ));
            facts.push((fact!("delete_due"), Fact::Instant(Facts::end(memo, d, Length::Years(3), &self.eu))));
        }
        if let Some(t) = row.seen(col!("blocked_at")) {
            facts.push((fact!("blocked"), Fact::Instant(t)));
        }
        if let Some(t) = row.seen(col!("deleted_at")) {
            facts.push((fact!("deleted"), Fact::Instant(t)));
        }
        let actors = Actors {
            commission: self.commission(),
            authority: (row.text(col!("authority_id")), state),
            ..Actors::default()
        };
        Some(Subject { kind: "User", id, actors, facts, detail })
    }

    fn request<'a>(&'a self, row: &Row<'a>, memo: &mut period::Memo) -> Option<Subject<'a>> {
        let (id, received) = (row.text(col!("request_id"))?, row.raw(col!("received_at"))?);
        if received > self.as_of {
            return None;
        }
        let state = row.text(col!("controller_state"));
        let cal = self.calendars.get(state.unwrap_or("EU"));
        let responded = row.seen(col!("responded_at"));
        // The outcome is known once the response is.
        let outcome = responded.and(row.text(col!("outcome")));
        let refused = matches!(outcome, Some("refused" | "no_action"));
        // Room for every fact a request can have: one small allocation per subject.
        let mut facts = Vec::with_capacity(11);
        facts.extend([
            (fact!("regime"), Fact::Text(row.text(col!("regime")).unwrap_or_default().to_owned())),
            (fact!("right"), Fact::Text(row.text(col!("right")).unwrap_or_default().to_owned())),
            (fact!("refused"), Fact::Bool(refused)),
            (fact!("remedy_info_given"), Fact::Bool(row.flag(col!("remedy_info_given")))),
            (fact!("month_due"), Fact::Instant(Facts::end(memo, received, Length::Months(1), &cal))),
            (fact!("three_month_due"), Fact::Instant(Facts::extended(memo, received, &cal))),
            (fact!("correct_due"), Fact::Instant(Facts::end(memo, received, Length::Days(30), &cal))),
            (
                fact!("working_days_due"),
                Fact::Instant(Facts::end(memo, received, Length::WorkingDays(15), &self.eu)),
            ),
        ]);
        for (fact, column) in [
            (fact!("extension_notified"), col!("extension_notified_at")),
            (fact!("completed"), col!("completed_at")),
        ] {
            if let Some(t) = row.seen(column) {
                facts.push((fact, Fact::Instant(t)));
            }
        }
        if let Some(t) = responded {
            facts.push((fact!("responded"), Fact::Instant(t)));
        }
        let actors = Actors { controller: (row.text(col!("controller_id")), state), ..Actors::default() };
        Some(Subject { kind: "Request", id, actors, facts, detail: None })
    }

    fn breach<'a>(&'a self, row: &Row<'a>, memo: &mut period::Memo) -> Option<Subject<'a>> {
        let (id, aware) = (row.text(col!("breach_id"))?, row.raw(col!("aware_at"))?);
        if aware > self.as_of {
            return None;
        }
        let state = row.text(col!("controller_state"));
        let cal = self.calendars.get(state.unwrap_or("EU"));
        let present = |c: Col| row.present(c);
        // Room for every fact a breach can have: one small allocation per subject.
        let mut facts = Vec::with_capacity(14);
        facts.extend([
            (fact!("risk"), Fact::Text(row.text(col!("risk")).unwrap_or_default().to_owned())),
            (fact!("exempt"), Fact::Bool(row.present(col!("subject_exemption")))),
            (fact!("has_delay_reasons"), Fact::Bool(present(col!("delay_reasons")))),
            (fact!("has_nature"), Fact::Bool(present(col!("nature")))),
            (fact!("has_consequences"), Fact::Bool(present(col!("consequences")))),
            (fact!("has_measures"), Fact::Bool(present(col!("measures")))),
            (fact!("has_approx_subjects"), Fact::Bool(row.int(col!("approx_subjects")).is_some())),
            (fact!("has_approx_records"), Fact::Bool(row.int(col!("approx_records")).is_some())),
            (fact!("notify_due"), Fact::Instant(Facts::end(memo, aware, Length::Hours(72), &cal))),
            (fact!("dpo_due"), Fact::Instant(Facts::end(memo, aware, self.defaults.dpo, &cal))),
            (fact!("subjects_due"), Fact::Instant(Facts::end(memo, aware, self.defaults.subjects, &cal))),
        ]);
        for (fact, column) in [
            (fact!("notified"), col!("notified_at")),
            (fact!("dpo_informed"), col!("dpo_informed_at")),
            (fact!("subjects_notified"), col!("subjects_notified_at")),
        ] {
            if let Some(t) = row.seen(column) {
                facts.push((fact, Fact::Instant(t)));
            }
        }
        let actors = Actors { controller: (row.text(col!("controller_id")), state), ..Actors::default() };
        Some(Subject { kind: "Breach", id, actors, facts, detail: None })
    }
}
