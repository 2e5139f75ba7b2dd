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
use crate::progress::Progress;
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
    /// Only the controllers' registers (breaches and data-subject requests): what a register
    /// record saved in Custos can change, judged without the cases and users.
    pub registers_only: bool,
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

/// An enum of names, each variant spelled once with its text: the compiler checks every use,
/// and the variant's number is its place in `NAMES` (sorted, so `of` can search it).
macro_rules! names {
    ($(#[$doc:meta])* $vis:vis enum $name:ident { $($variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        $vis enum $name { $($variant,)* }

        // Not every enum of names needs each of these.
        #[allow(dead_code)]
        impl $name {
            /// Every variant's text, in the variants' order.
            const NAMES: &'static [&'static str] = &[$($text,)*];
            /// Every variant, in order.
            const ALL: &'static [$name] = &[$($name::$variant,)*];

            fn as_str(self) -> &'static str {
                Self::NAMES[self as usize]
            }

            /// The variant whose text is `text`, if any.
            fn of(text: &str) -> Option<$name> {
                Self::NAMES.binary_search(&text).ok().map(|i| Self::ALL[i])
            }
        }
    };
}

names! {
    /// A fact's name: every fact the subjects can have.
    enum Name {
        Active = "active",
        Anniversary = "anniversary",
        AnswerDue = "answer_due",
        Answered = "answered",
        BlockDone = "block_done",
        BlockDue = "block_due",
        Blocked = "blocked",
        Closed = "closed",
        Completed = "completed",
        CorrectDue = "correct_due",
        DeleteDue = "delete_due",
        Deleted = "deleted",
        DormantDue = "dormant_due",
        DpoDue = "dpo_due",
        DpoInformed = "dpo_informed",
        EarlyDeletionRequested = "early_deletion_requested",
        Exempt = "exempt",
        ExtensionNotified = "extension_notified",
        HasApproxRecords = "has_approx_records",
        HasApproxSubjects = "has_approx_subjects",
        HasConsequences = "has_consequences",
        HasDelayReasons = "has_delay_reasons",
        HasMeasures = "has_measures",
        HasNature = "has_nature",
        InactiveDue = "inactive_due",
        InactivityJustified = "inactivity_justified",
        MonthDue = "month_due",
        Notified = "notified",
        NotifyDue = "notify_due",
        Open = "open",
        PersonalData = "personal_data",
        Refused = "refused",
        Regime = "regime",
        RemedyInfoGiven = "remedy_info_given",
        Repository = "repository",
        Responded = "responded",
        Right = "right",
        RightsOutside = "rights_outside",
        Risk = "risk",
        SpecialCategories = "special_categories",
        SpecialCategoriesBasis = "special_categories_basis",
        SubjectConsent = "subject_consent",
        SubjectsDue = "subjects_due",
        SubjectsNotified = "subjects_notified",
        ThreeMonthDue = "three_month_due",
        WorkingDaysDue = "working_days_due",
    }
}

names! {
    /// A column the subjects are read from.
    enum Col {
        AcceptedAt = "accepted_at",
        AnsweredAt = "answered_at",
        ApproxRecords = "approx_records",
        ApproxSubjects = "approx_subjects",
        AuthorityDomains = "authority_domains",
        AuthorityId = "authority_id",
        AuthorityState = "authority_state",
        AwareAt = "aware_at",
        BlockedAt = "blocked_at",
        BreachId = "breach_id",
        CaseId = "case_id",
        ClosedAt = "closed_at",
        CompletedAt = "completed_at",
        Consequences = "consequences",
        ControllerId = "controller_id",
        ControllerState = "controller_state",
        CreatedAt = "created_at",
        DeactivatedAt = "deactivated_at",
        DelayReasons = "delay_reasons",
        DeletedAt = "deleted_at",
        DomainRepository = "domain_repository",
        DomainRetentionMonths = "domain_retention_months",
        Domains = "domains",
        DpoInformedAt = "dpo_informed_at",
        DueAt = "due_at",
        EarlyDeletionRequestedAt = "early_deletion_requested_at",
        ExtensionNotifiedAt = "extension_notified_at",
        InactivityJustified = "inactivity_justified",
        Kind = "kind",
        LastActivityAt = "last_activity_at",
        LastLogin = "last_login",
        Measures = "measures",
        MemberState = "member_state",
        Nature = "nature",
        NotifiedAt = "notified_at",
        Outcome = "outcome",
        PersonalData = "personal_data",
        Procedure = "procedure",
        ReceivedAt = "received_at",
        Regime = "regime",
        RegisteredAt = "registered_at",
        RemedyInfoGiven = "remedy_info_given",
        RepositoryBasis = "repository_basis",
        RequestId = "request_id",
        RequesterState = "requester_state",
        RequestingAuthority = "requesting_authority",
        RespondedAt = "responded_at",
        Responders = "responders",
        RetentionMonths = "retention_months",
        Right = "right",
        Risk = "risk",
        SentAt = "sent_at",
        SpecialCategories = "special_categories",
        SpecialCategoriesBasis = "special_categories_basis",
        SubjectConsent = "subject_consent",
        SubjectExemption = "subject_exemption",
        SubjectsNotifiedAt = "subjects_notified_at",
        UserId = "user_id",
    }
}

/// How many columns [`Col`] names.
const COLUMNS: usize = Col::NAMES.len();

mod facts;
mod judge;

use facts::{Columns, Facts, Row};
pub use judge::DeadlineJudge;

/// Runs every deadline rule over the store as of `options.as_of`.
///
/// Subjects are read batch by batch (the facts queries stream) and judged on every core, each
/// thread with its own judge and cache; memory stays bounded by the batch size.
pub async fn check(store: &Store, policies: Arc<Policies>, options: &Options) -> Result<Check> {
    run(store, policies, options, false, &Progress::default()).await
}

/// [`check`], counting the subjects judged into `progress`.
pub async fn check_with(
    store: &Store,
    policies: Arc<Policies>,
    options: &Options,
    progress: &Progress,
) -> Result<Check> {
    run(store, policies, options, false, progress).await
}

/// [`check`] with a naive judge: every subject evaluated by Cedar with its real instants.
pub async fn check_naive(store: &Store, policies: Arc<Policies>, options: &Options) -> Result<Check> {
    run(store, policies, options, true, &Progress::default()).await
}

async fn run(
    store: &Store,
    policies: Arc<Policies>,
    options: &Options,
    naive: bool,
    progress: &Progress,
) -> Result<Check> {
    progress.step("reading the deadlines' facts", "subjects", None);
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
    let lookups = if naive || options.registers_only {
        None
    } else {
        Some(cases::CaseLookups::load(store, &ctx, options.as_of).await?)
    };
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
    let registers_only = options.registers_only;
    let sources = sources
        .into_iter()
        .filter(move |(_, kind, _)| !registers_only || matches!(kind, Kind::Request | Kind::Breach));
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
        let mut checking = None;
        while let Some(next) = rx.recv().await {
            let (kind, batch) = next?;
            if checking != Some(kind) {
                checking = Some(kind);
                progress.step(format!("checking the deadlines of {}", kind.plural()), "subjects", None);
            }
            progress.add(batch.num_rows() as u64);
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

    /// Such subjects, in words.
    fn plural(self) -> &'static str {
        match self {
            Kind::Breach => "breaches",
            Kind::Case => "cases",
            Kind::Request => "requests",
            Kind::User => "users",
        }
    }
}

#[cfg(test)]
mod names {
    use super::*;

    #[test]
    fn names_are_sorted_so_they_can_be_searched_and_each_finds_its_variant() {
        for names in [Name::NAMES, Col::NAMES] {
            assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        }
        for &n in Name::ALL {
            assert_eq!(Name::of(n.as_str()), Some(n));
        }
        assert_eq!(Name::of("no_such_fact"), None);
    }
}
