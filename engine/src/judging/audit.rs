//! The need-to-know audit: every granted access event judged by the Cedar policies.
//!
//! ```text
//! store ──► ntk_facts.sql (DataFusion: the event joined with its user, case, domain and
//!            │               participation as they stood at the event's instant)
//!            ▼
//!        per batch: each event's scene as one number ──► distinct scenes ──► Cedar, once each
//!            │                                                   │
//!            ▼                                                   ▼
//!        every event's verdict, looked up by its scene's number ──► findings
//! ```
//!
//! Cedar sees a scene with stand-in identifiers (`actor`, `case`) and the facts of the
//! event; the policies read no identifiers, so the verdict of a scene is the verdict of every
//! event with the same facts. Real events number in the hundreds of millions; distinct scenes
//! in the hundreds.
//!
//! The facts that stay the same from event to event are read once per audit, through
//! DataFusion, into [`Lists`]: a user's domains, authority kind and member state (the user's
//! *profile*), a domain's third countries, and the identifiers findings name. The facts query
//! carries the user's and the case's numbers instead, and the facts that change from event to
//! event. A scene's number packs a *class* (the profile and the case's domain, up to a
//! renaming of domains and member states; see [`Scenes`]) with the operation, the purpose and
//! eight yes-or-no facts, so that numbering an event costs a few array look-ups and one probe
//! of a small hash map.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, AsArray, BooleanArray, DictionaryArray, ListArray, RecordBatch, StringArray, StringViewArray,
};
use arrow::datatypes::{DataType, Int32Type, TimestampMicrosecondType};
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use crate::decision::{CaseScene, Judge, Scene, Verdict};
use crate::error::{Error, Result};
use crate::finding::{self, Finding};
use crate::progress::Progress;
use crate::query;
use crate::store::Store;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The yes-or-no facts of `ntk_facts.sql` that tell scenes apart, one bit each in this
/// order. The case's are null for an event on no case, and count as no.
const FLAGS: [&str; 8] = [
    "legal_ground",
    "user_active",
    "personal_data",
    "blocked",
    "deleted",
    "subject_consent",
    "commission_participates",
    "participating",
];
// A scene's number keeps the flags in eight bits (see [`Scenes`]).
const _: () = assert!(FLAGS.len() <= 8);

/// Who a user is, for findings.
#[derive(Debug, Clone)]
struct User {
    id: String,
    authority: String,
}

/// The number [`Lists::user_profile`] gives a user no profile is known of.
const NO_PROFILE: u32 = u32::MAX;

/// The facts of a user that stay the same from event to event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Profile {
    /// The user's domains, as imported (in order).
    domains: Vec<String>,
    /// The user's authority's kind.
    kind: String,
    /// The user's authority's member state.
    member_state: String,
}

/// The facts that stay the same from event to event, read once per audit: each user's
/// profile and identifiers, each domain's third countries and each case's identifier. Users
/// are numbered by profile: the same domains, authority kind and member state, the same
/// profile.
#[derive(Debug, Default)]
pub struct Lists {
    /// Each user, by `user_key`.
    users: Vec<Option<User>>,
    /// The number of each user's profile, by `user_key` ([`NO_PROFILE`] for none): the one
    /// fact of a user the audit needs of every event, kept apart from the rest so that
    /// looking it up stays in the processor's cache.
    user_profile: Vec<u32>,
    /// Each profile, by number.
    profiles: Vec<Profile>,
    /// Each domain's third countries.
    countries: HashMap<String, Vec<String>>,
    /// Each case's identifier, by `case_key`.
    cases: Vec<Option<String>>,
}

impl Lists {
    /// Reads the lists through `ctx`'s `users`, `authorities`, `domains` and `cases` tables.
    pub async fn load(ctx: &SessionContext) -> Result<Lists> {
        let mut lists = Lists::default();
        let mut numbers: HashMap<Profile, u32> = HashMap::new();
        // The user's authority as the facts query joins it.
        let sql = "SELECT u.user_key, u.user_id, a.authority_id, u.domains, a.kind, a.member_state \
                   FROM authorities a JOIN users u ON a.authority_key = u.authority_key";
        for b in ctx.sql(sql).await?.collect().await? {
            let keys = b.column(0).as_primitive::<Int32Type>();
            let (user, authority) = (b.column(1).as_string::<i32>(), b.column(2).as_string::<i32>());
            let domains = b.column(3).as_list::<i32>();
            let (kind, state) = (b.column(4).as_string::<i32>(), b.column(5).as_string::<i32>());
            for row in 0..b.num_rows() {
                let profile = Profile {
                    domains: items(domains, row),
                    kind: kind.value(row).to_owned(),
                    member_state: state.value(row).to_owned(),
                };
                let next = lists.profiles.len() as u32;
                let n = *numbers.entry(profile).or_insert_with_key(|p| {
                    lists.profiles.push(p.clone());
                    next
                });
                let u = User { id: user.value(row).to_owned(), authority: authority.value(row).to_owned() };
                put(&mut lists.users, keys.value(row), Some(u), None);
                put(&mut lists.user_profile, keys.value(row), n, NO_PROFILE);
            }
        }
        for b in ctx.sql("SELECT domain, third_countries FROM domains").await?.collect().await? {
            let (domain, countries) = (b.column(0).as_string::<i32>(), b.column(1).as_list::<i32>());
            for row in 0..b.num_rows() {
                lists.countries.insert(domain.value(row).to_owned(), items(countries, row));
            }
        }
        for b in ctx.sql("SELECT case_key, case_id FROM cases").await?.collect().await? {
            let (keys, ids) = (b.column(0).as_primitive::<Int32Type>(), b.column(1).as_string::<i32>());
            for row in 0..b.num_rows() {
                put(&mut lists.cases, keys.value(row), Some(ids.value(row).to_owned()), None);
            }
        }
        Ok(lists)
    }

    fn user(&self, key: i32) -> Option<&User> {
        self.users.get(usize::try_from(key).ok()?)?.as_ref()
    }

    /// The number of the profile of user `key`.
    fn profile_of(&self, key: i32) -> Option<u32> {
        self.user_profile.get(usize::try_from(key).ok()?).copied().filter(|p| *p != NO_PROFILE)
    }

    fn case_id(&self, key: i32) -> Option<&str> {
        self.cases.get(usize::try_from(key).ok()?)?.as_deref()
    }

    fn third_countries(&self, domain: &str) -> Vec<String> {
        self.countries.get(domain).cloned().unwrap_or_default()
    }
}

/// Puts `value` at `key` (a number import gave), growing `list` with `empty` as needed.
fn put<T: Clone>(list: &mut Vec<T>, key: i32, value: T, empty: T) {
    let Ok(key) = usize::try_from(key) else { return };
    if list.len() <= key {
        list.resize(key + 1, empty);
    }
    list[key] = value;
}

/// What an audit found.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    /// Findings, one per broken rule per event, in event order within each batch.
    pub findings: Vec<Finding>,
    /// Granted events judged.
    pub events: u64,
    /// Distinct scenes sent to Cedar.
    pub scenes: u64,
    /// The store it read (its newest entry and head) and the window of event times.
    pub judged: crate::manifest::Judged,
}

/// Window of event times to audit, as UTC microseconds, half-open.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    /// First instant included.
    pub from: Option<i64>,
    /// First instant excluded.
    pub to: Option<i64>,
}

impl Window {
    /// What an audit of `store` over this window judges; an empty or inverted window is
    /// refused (it would judge nothing and say so as if the store were clean).
    fn judged(self, store: &Store) -> Result<crate::manifest::Judged> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from >= to
        {
            return Err(Error::Usage(format!(
                "the window from {} to {} holds no instant: `--from` must be before `--to`",
                finding::format_micros(from),
                finding::format_micros(to)
            )));
        }
        Ok(crate::manifest::Judged {
            seq: store.entries().len() as u64,
            head: store.head().to_owned(),
            from: self.from.map(finding::format_micros),
            to: self.to.map(finding::format_micros),
        })
    }
}

/// The facts of every granted event in `window`, as a DataFusion plan.
pub async fn facts(ctx: &SessionContext, window: Window) -> Result<datafusion::dataframe::DataFrame> {
    let df = ctx.sql(query::sql::NTK_FACTS).await?;
    // Bounds DataFusion's timestamp literals can hold; a window is always given to the plan.
    let from = window.from.unwrap_or(-9_000_000_000_000_000);
    let to = window.to.unwrap_or(9_000_000_000_000_000);
    Ok(df.with_param_values(vec![crate::query::ts_param(from), crate::query::ts_param(to)])?)
}

/// Judges every granted event of the store in `window`.
pub async fn audit(store: &Store, judge: &Judge, window: Window) -> Result<Audit> {
    audit_by(store, judge, window, |scene| judge.decide(scene), &Progress::default()).await
}

/// [`audit`] with another decider in Cedar's place: the same facts, the same deduplication of
/// scenes, `decide` asked once per distinct scene. The benchmark suite runs the need-to-know
/// rules written in Rego through it, so that the engines are compared, not the plumbing.
/// `judge` still names the rules' articles in the findings. The events judged are counted
/// into `progress`, out of the access log's rows when the window is whole.
pub async fn audit_by(
    store: &Store,
    judge: &Judge,
    window: Window,
    mut decide: impl FnMut(&Scene<'_>) -> Result<Verdict>,
    progress: &Progress,
) -> Result<Audit> {
    let started = std::time::Instant::now();
    let judged = window.judged(store)?;
    let total = judged.is_whole().then(|| store.rows(crate::catalog::ACCESS_LOG.name));
    progress.step("judging access events", "events", total);
    let ctx = query::session_with(store, query::planned_config()).await?;
    let df = facts(&ctx, window).await?;
    let plan = df.create_physical_plan().await?;
    tracing::debug!(
        "need-to-know facts plan:\n{}",
        datafusion::physical_plan::displayable(plan.as_ref()).indent(true)
    );
    // The query's threads start on its small tables (built in memory before any event
    // streams) while this one reads the lists.
    let mut stream = datafusion::physical_plan::execute_stream(plan, ctx.task_ctx())?;
    let lists = Lists::load(&ctx).await?;
    tracing::debug!("need-to-know audit: lists read after {:.3} s", started.elapsed().as_secs_f64());
    let mut scenes = Scenes::new(&lists);
    let mut out = Audit { judged, ..Audit::default() };
    let mut judging = std::time::Duration::ZERO;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if out.events == 0 {
            tracing::debug!("need-to-know audit: first facts after {:.3} s", started.elapsed().as_secs_f64());
        }
        let at = std::time::Instant::now();
        out.events += batch.num_rows() as u64;
        scenes.judge(judge, &mut decide, &batch, &mut out.findings)?;
        progress.add(batch.num_rows() as u64);
        judging += at.elapsed();
    }
    out.scenes = scenes.verdicts.len() as u64;
    tracing::debug!(
        "need-to-know audit: {} events in {:.3} s, {:.3} s of it numbering and judging scenes",
        out.events,
        started.elapsed().as_secs_f64(),
        judging.as_secs_f64()
    );
    // INVARIANT: findings come out in one order whatever the plan's parallelism (in place: no
    // two findings are equal, so an unstable sort gives the one order).
    out.findings.sort_unstable();
    Ok(out)
}

/// Numbers the values of a text column as they are first seen: 1, 2, …; 0 stands for null.
#[derive(Default)]
struct Codes {
    names: Vec<String>,
    numbers: FastMap<String, u32>,
    /// The codes of the views of the batch at hand (see [`Codes::column`]).
    views: FastMap<u128, u32>,
}

impl Codes {
    fn of(&mut self, name: &str) -> u32 {
        if let Some(&n) = self.numbers.get(name) {
            return n;
        }
        self.names.push(name.to_owned());
        let n = self.names.len() as u32;
        self.numbers.insert(name.to_owned(), n);
        n
    }

    /// The value coded `code`, or `None` for 0 (null).
    fn name(&self, code: u32) -> Option<&str> {
        self.names.get((code as usize).checked_sub(1)?).map(String::as_str)
    }

    /// The code of every row of `column`, into `out`.
    fn column(&mut self, column: Text<'_>, out: &mut Vec<u32>) {
        out.clear();
        match column {
            Text::View(a) => {
                // Two equal views in one array are the same text, and a column the store keeps
                // dictionary-encoded (an operation, a purpose, a domain) repeats a few views:
                // the text is read once per distinct view of the batch, not once per row.
                self.views.clear();
                let mut last: Option<(u128, u32)> = None;
                for (i, &view) in a.views().iter().enumerate() {
                    let code = if a.is_null(i) {
                        0
                    } else if let Some((_, code)) = last.filter(|(v, _)| *v == view) {
                        code
                    } else {
                        let code = match self.views.get(&view) {
                            Some(&c) => c,
                            None => {
                                let c = self.of(a.value(i));
                                self.views.insert(view, c);
                                c
                            }
                        };
                        last = Some((view, code));
                        code
                    };
                    out.push(code);
                }
            }
            Text::Plain(a) => {
                for i in 0..a.len() {
                    let code = if a.is_null(i) { 0 } else { self.of(a.value(i)) };
                    out.push(code);
                }
            }
            Text::Dict(a, values) => {
                let codes: Vec<u32> = (0..values.len())
                    .map(|v| if values.is_null(v) { 0 } else { self.of(values.value(v)) })
                    .collect();
                for (i, &key) in a.keys().values().iter().enumerate() {
                    let code = if a.is_null(i) { 0 } else { codes.get(key as usize).copied().unwrap_or(0) };
                    out.push(code);
                }
            }
        }
    }
}

/// Bits a scene's number gives the operation and the purpose (codes from [`Codes`]).
const CODE_BITS: u32 = 8;

/// The scenes seen so far, and their verdicts.
///
/// An event's scene is numbered `class << 32 | action << 24 | purpose << 16 | flags`, where
/// `flags` are the [`FLAGS`] and `class` numbers the user's profile with the case's domain up
/// to a renaming of domains and member states (see [`class_form`]): users of different
/// member states with the same rights in the same kind of case share a class. Classes are
/// found by profile and domain in a table, scenes by number in a small hash map.
struct Scenes<'a> {
    lists: &'a Lists,
    actions: Codes,
    purposes: Codes,
    /// Case domains; 0 is an event on no case.
    domains: Codes,
    /// The class of each profile in a case of each domain, at `domain code × profiles +
    /// profile`: `u32::MAX` until first seen.
    class_of: Vec<u32>,
    /// Classes by canonical form.
    classes: FastMap<String, u32>,
    /// A profile and domain code of each class, from which its scenes are built.
    class_scene: Vec<(u32, u32)>,
    /// The verdict of each scene number, as an index into `verdicts`.
    scene_verdict: FastMap<u64, u32>,
    verdicts: Vec<Verdict>,
    /// Whether each verdict breaks a rule.
    violation: Vec<bool>,
    // Buffers reused from batch to batch.
    action_codes: Vec<u32>,
    purpose_codes: Vec<u32>,
    domain_codes: Vec<u32>,
    flags: Vec<u8>,
}

impl<'a> Scenes<'a> {
    fn new(lists: &'a Lists) -> Scenes<'a> {
        Scenes {
            lists,
            actions: Codes::default(),
            purposes: Codes::default(),
            domains: Codes::default(),
            class_of: Vec::new(),
            classes: FastMap::default(),
            class_scene: Vec::new(),
            scene_verdict: FastMap::default(),
            verdicts: Vec::new(),
            violation: Vec::new(),
            action_codes: Vec::new(),
            purpose_codes: Vec::new(),
            domain_codes: Vec::new(),
            flags: Vec::new(),
        }
    }

    /// The class of `profile` in a case of domain `domain` (a code; 0, no case).
    fn class(&mut self, profile: u32, domain: u32) -> u32 {
        let at = domain as usize * self.lists.profiles.len() + profile as usize;
        if let Some(&class) = self.class_of.get(at).filter(|c| **c != u32::MAX) {
            return class;
        }
        let form = class_form(&self.lists.profiles[profile as usize], self.domains.name(domain), self.lists);
        let next = self.class_scene.len() as u32;
        let class = *self.classes.entry(form).or_insert(next);
        if class == next {
            self.class_scene.push((profile, domain));
        }
        if self.class_of.len() <= at {
            let domains = self.domains.names.len() + 1;
            self.class_of.resize((domains * self.lists.profiles.len()).max(at + 1), u32::MAX);
        }
        self.class_of[at] = class;
        class
    }

    /// The facts of scene number `n`, built from its class's profile and domain.
    fn facts(&self, n: u64) -> RowFacts {
        let (profile, domain) = self.class_scene[(n >> 32) as usize];
        let name = |codes: &Codes, bits: u64| {
            codes.name((bits & ((1 << CODE_BITS) - 1)) as u32).unwrap_or("").to_owned()
        };
        RowFacts::new(
            self.lists,
            &self.lists.profiles[profile as usize],
            self.domains.name(domain),
            name(&self.actions, n >> 24),
            name(&self.purposes, n >> 16),
            (n & 0xff) as u8,
        )
    }

    /// Judges every event of a facts batch, adding a finding per broken rule to `out`.
    fn judge(
        &mut self,
        judge: &Judge,
        decide: &mut impl FnMut(&Scene<'_>) -> Result<Verdict>,
        batch: &RecordBatch,
        out: &mut Vec<Finding>,
    ) -> Result<()> {
        let c = Columns { batch };
        let users = c
            .get("user_key")?
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| Error::Internal("the facts query's `user_key` is not a 32-bit number".into()))?;
        self.actions.column(c.text("action")?, &mut self.action_codes);
        self.purposes.column(c.text("purpose")?, &mut self.purpose_codes);
        self.domains.column(c.text("case_domain")?, &mut self.domain_codes);
        if self.actions.names.len() >= 1 << CODE_BITS || self.purposes.names.len() >= 1 << CODE_BITS {
            return Err(Error::Usage(format!(
                "the access log holds more than {} distinct operations or purposes",
                (1 << CODE_BITS) - 1
            )));
        }
        let mut flags = std::mem::take(&mut self.flags);
        flags.clear();
        flags.resize(batch.num_rows(), 0);
        for (bit, name) in FLAGS.iter().enumerate() {
            let column = c.flag(name)?;
            let yes = match column.nulls() {
                Some(valid) => column.values() & valid.inner(),
                None => column.values().clone(),
            };
            for i in yes.set_indices() {
                flags[i] |= 1 << bit;
            }
        }
        let profiles = self.lists.profiles.len();
        let mut violations = Vec::new();
        for (i, user) in users.iter().enumerate() {
            let Some(profile) = user.and_then(|k| self.lists.profile_of(k)) else {
                return Err(Error::Internal(format!(
                    "the facts query gave a user number ({user:?}) no user has"
                )));
            };
            let class = match self.class_of.get(self.domain_codes[i] as usize * profiles + profile as usize) {
                Some(&class) if class != u32::MAX => class,
                _ => self.class(profile, self.domain_codes[i]),
            };
            let n = u64::from(class) << 32
                | u64::from(self.action_codes[i]) << 24
                | u64::from(self.purpose_codes[i]) << 16
                | u64::from(flags[i]);
            let v = match self.scene_verdict.get(&n) {
                Some(&v) => v,
                None => {
                    let facts = self.facts(n);
                    let verdict = decide(&facts.scene())?;
                    let v = self.verdicts.len() as u32;
                    self.violation.push(verdict.is_violation());
                    self.verdicts.push(verdict);
                    self.scene_verdict.insert(n, v);
                    v
                }
            };
            if self.violation[v as usize] {
                violations.push((i, v));
            }
        }
        self.flags = flags;
        if violations.is_empty() {
            return Ok(());
        }
        let event = c.text("event_id")?;
        let cases = c
            .get("case_key")?
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| Error::Internal("the facts query's `case_key` is not a 32-bit number".into()))?;
        let ts = c.get("ts")?.as_primitive::<TimestampMicrosecondType>();
        for (i, v) in violations {
            let verdict = &self.verdicts[v as usize];
            // A finding is never dropped: a number no identifier is known for is an error.
            let unknown = |what: &str, key: i32| {
                Error::Internal(format!("the facts query gave a {what} number ({key}) no {what} has"))
            };
            let u = self.lists.user(users.value(i)).ok_or_else(|| unknown("user", users.value(i)))?;
            let profile =
                self.lists.profile_of(users.value(i)).ok_or_else(|| unknown("user", users.value(i)))?;
            let case = match cases.is_null(i) {
                true => None,
                false => {
                    Some(self.lists.case_id(cases.value(i)).ok_or_else(|| unknown("case", cases.value(i)))?)
                }
            };
            let who = Event {
                id: event.value(i),
                user: &u.id,
                authority: &u.authority,
                member_state: &self.lists.profiles[profile as usize].member_state,
                case,
                ts: ts.value(i),
            };
            for rule in &verdict.broken {
                out.push(who.finding(judge, rule, &verdict.broken));
            }
        }
        Ok(())
    }
}

/// The canonical form of a class: a profile and a case's domain with domains and member
/// states renamed in order of first appearance (the case's domain first, then the user's
/// domains in order; the authority's member state first, then the domain's third countries
/// in order).
///
/// INVARIANT: the need-to-know policies compare domains and member states only with one
/// another (`contains`), never with a literal, so two scenes whose classes have the same form,
/// with the same operation, purpose and yes-or-no facts, get the same verdict (a policy test
/// checks the texts for such literals). This is what lets a few hundred Cedar evaluations
/// decide millions of events.
fn class_form(profile: &Profile, case_domain: Option<&str>, lists: &Lists) -> String {
    let mut domains = Vec::new();
    let case = case_domain.map(|d| renamed(&mut domains, d, 'd'));
    let user_domains: Vec<String> = profile.domains.iter().map(|d| renamed(&mut domains, d, 'd')).collect();
    let third_countries = case_domain.map(|d| lists.third_countries(d)).unwrap_or_default();
    let mut states = vec![profile.member_state.as_str()];
    let countries: Vec<String> = third_countries.iter().map(|t| renamed(&mut states, t, 's')).collect();
    format!("{user_domains:?}|{}|{case:?}|{countries:?}", profile.kind)
}

/// `name`'s new name: `prefix` and its place among the names `seen` so far (added if new).
fn renamed<'s>(seen: &mut Vec<&'s str>, name: &'s str, prefix: char) -> String {
    let i = seen.iter().position(|x| *x == name).unwrap_or_else(|| {
        seen.push(name);
        seen.len() - 1
    });
    format!("{prefix}{i}")
}

/// The columns of a facts batch, by name.
struct Columns<'a> {
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    fn get(&self, name: &str) -> Result<&'a dyn Array> {
        self.batch
            .column_by_name(name)
            .map(|c| c.as_ref())
            .ok_or_else(|| Error::Internal(format!("the facts query has no column `{name}`")))
    }
    fn text(&self, name: &str) -> Result<Text<'a>> {
        let a = self.get(name)?;
        let not_text =
            || Error::Internal(format!("the facts query's column `{name}` is {}, not text", a.data_type()));
        match a.data_type() {
            DataType::Utf8View => Ok(Text::View(a.as_string_view())),
            DataType::Utf8 => Ok(Text::Plain(a.as_string::<i32>())),
            DataType::Dictionary(_, _) => {
                let d = a.as_dictionary_opt::<Int32Type>().ok_or_else(not_text)?;
                Ok(Text::Dict(d, d.values().as_string_opt::<i32>().ok_or_else(not_text)?))
            }
            _ => Err(not_text()),
        }
    }
    fn flag(&self, name: &str) -> Result<&'a BooleanArray> {
        self.get(name)?
            .as_boolean_opt()
            .ok_or_else(|| Error::Internal(format!("the facts query's column `{name}` is not yes or no")))
    }
}

/// A text column of the facts: the access log's are string views, the case's domain a
/// dictionary (of a few domains), the other tables' strings.
#[derive(Clone, Copy)]
enum Text<'a> {
    Plain(&'a StringArray),
    View(&'a StringViewArray),
    Dict(&'a DictionaryArray<Int32Type>, &'a StringArray),
}

impl<'a> Text<'a> {
    fn value(self, row: usize) -> &'a str {
        match self {
            Text::Plain(a) => a.value(row),
            Text::View(a) => a.value(row),
            Text::Dict(a, values) => values.value(a.keys().value(row) as usize),
        }
    }
    fn is_null(self, row: usize) -> bool {
        match self {
            Text::Plain(a) => a.is_null(row),
            Text::View(a) => a.is_null(row),
            Text::Dict(a, values) => a.is_null(row) || values.is_null(a.keys().value(row) as usize),
        }
    }
}

fn opt(a: Text<'_>, row: usize) -> Option<&str> {
    (!a.is_null(row)).then(|| a.value(row))
}

fn yes(a: &BooleanArray, row: usize) -> bool {
    !a.is_null(row) && a.value(row)
}

fn items(a: &ListArray, row: usize) -> Vec<String> {
    if a.is_null(row) {
        return Vec::new();
    }
    a.value(row).as_string::<i32>().iter().flatten().map(str::to_owned).collect()
}

/// The facts of one scene, owned.
struct RowFacts {
    action: String,
    purpose: String,
    legal_ground: bool,
    user_active: bool,
    user_domains: Vec<String>,
    authority_kind: String,
    member_state: String,
    case: Option<CaseFacts>,
}

/// The case side of [`RowFacts`].
struct CaseFacts {
    domain: String,
    personal_data: bool,
    blocked: bool,
    deleted: bool,
    subject_consent: bool,
    commission_participates: bool,
    third_countries: Vec<String>,
    participating: bool,
}

impl RowFacts {
    /// The facts of a user of `profile` doing `action` for `purpose` on a case of `domain`
    /// (`None`: on no case), with the [`FLAGS`] as bits of `flags`.
    fn new(
        lists: &Lists,
        profile: &Profile,
        domain: Option<&str>,
        action: String,
        purpose: String,
        flags: u8,
    ) -> RowFacts {
        let flag =
            |name: &str| FLAGS.iter().position(|f| *f == name).is_some_and(|bit| flags & (1 << bit) != 0);
        RowFacts {
            action,
            purpose,
            legal_ground: flag("legal_ground"),
            user_active: flag("user_active"),
            user_domains: profile.domains.clone(),
            authority_kind: profile.kind.clone(),
            member_state: profile.member_state.clone(),
            case: domain.map(|domain| CaseFacts {
                domain: domain.to_owned(),
                personal_data: flag("personal_data"),
                blocked: flag("blocked"),
                deleted: flag("deleted"),
                subject_consent: flag("subject_consent"),
                commission_participates: flag("commission_participates"),
                third_countries: lists.third_countries(domain),
                participating: flag("participating"),
            }),
        }
    }

    /// The facts of row `row` of a facts batch.
    fn of_row(c: &Columns<'_>, lists: &Lists, row: usize) -> Result<RowFacts> {
        let user = c.get("user_key")?.as_primitive_opt::<Int32Type>().filter(|k| !k.is_null(row));
        let Some(profile) = user.and_then(|k| lists.profile_of(k.value(row))) else {
            return Err(Error::Internal("the facts query gave an event with no known user".into()));
        };
        let mut flags = 0u8;
        for (bit, name) in FLAGS.iter().enumerate() {
            flags |= u8::from(yes(c.flag(name)?, row)) << bit;
        }
        Ok(RowFacts::new(
            lists,
            &lists.profiles[profile as usize],
            opt(c.text("case_domain")?, row),
            c.text("action")?.value(row).to_owned(),
            c.text("purpose")?.value(row).to_owned(),
            flags,
        ))
    }

    /// The scene of these facts, with stand-in identifiers.
    fn scene(&self) -> Scene<'_> {
        Scene {
            user: "actor",
            authority: "actor-authority",
            authority_kind: &self.authority_kind,
            member_state: &self.member_state,
            user_active: self.user_active,
            user_domains: self.user_domains.iter().map(String::as_str).collect(),
            action: &self.action,
            purpose: &self.purpose,
            legal_ground: self.legal_ground,
            case: self.case.as_ref().map(|c| CaseScene {
                id: "case",
                domain: &c.domain,
                personal_data: c.personal_data,
                blocked: c.blocked,
                deleted: c.deleted,
                subject_consent: c.subject_consent,
                commission_participates: c.commission_participates,
                third_countries: c.third_countries.iter().map(String::as_str).collect(),
                participants: if c.participating {
                    vec![("actor-authority", self.authority_kind.as_str(), self.member_state.as_str())]
                } else {
                    Vec::new()
                },
            }),
        }
    }
}

/// The event a need-to-know finding is about.
struct Event<'a> {
    id: &'a str,
    user: &'a str,
    authority: &'a str,
    member_state: &'a str,
    case: Option<&'a str>,
    ts: i64,
}

impl Event<'_> {
    /// The finding that this event broke `rule`; `broken` lists every rule it broke.
    fn finding(&self, judge: &Judge, rule: &str, broken: &[String]) -> Finding {
        Finding {
            rule: rule.to_owned(),
            status: crate::finding::Status::Unmet,
            subject_kind: crate::finding::SubjectKind::Event,
            subject_id: self.id.to_owned(),
            due_at: None,
            legal_ref: judge.policies().rule(rule).map(|r| r.article.clone()).unwrap_or_default(),
            severity: crate::finding::Severity::Violation,
            authority_id: Some(self.authority.to_owned()),
            member_state: Some(self.member_state.to_owned()),
            event_id: Some(self.id.to_owned()),
            user_id: Some(self.user.to_owned()),
            case_id: self.case.map(str::to_owned),
            ts: Some(finding::Instant(self.ts)),
            policies: Some(broken.to_vec()),
            default_period: None,
            detail: None,
        }
    }
}

mod explain;
mod naive;
mod record;

pub use explain::{Explanation, explain};
pub use naive::naive;
pub use record::record;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow::array::{DictionaryArray, StringViewBuilder};

    /// A text is coded the same wherever it comes from: a view inline or not, the same text
    /// at other places of the buffers, a dictionary's value, a later batch; null is 0.
    #[test]
    fn codes_name_each_text_once_whatever_its_views() {
        let long = "administrative_cooperation";
        let mut b = StringViewBuilder::new();
        for v in
            [Some(long), Some("view"), None, Some(long), Some("view"), Some("technical_support"), Some(long)]
        {
            b.append_option(v);
        }
        let views = b.finish();
        let mut codes = Codes::default();
        let mut out = Vec::new();
        codes.column(Text::View(&views), &mut out);
        assert_eq!(out, vec![1, 2, 0, 1, 2, 3, 1]);
        // Another batch, in other buffers: the same codes.
        let mut b = StringViewBuilder::new();
        for v in ["technical_support", long, "view"] {
            b.append_value(v);
        }
        let again = b.finish();
        codes.column(Text::View(&again), &mut out);
        assert_eq!(out, vec![3, 1, 2]);
        let dict: DictionaryArray<Int32Type> =
            vec![Some("view"), None, Some("create"), Some(long)].into_iter().collect();
        let values = dict.values().as_string::<i32>().clone();
        codes.column(Text::Dict(&dict, &values), &mut out);
        assert_eq!(out, vec![2, 0, 4, 1]);
        assert_eq!(codes.name(4), Some("create"));
        assert_eq!(codes.name(1), Some(long));
        assert_eq!(codes.name(0), None);
    }

    /// A class renames domains and member states by first appearance, so users of different
    /// states with the same rights share one; what the policies compare still tells them
    /// apart: whether the case's domain is among the user's, whether the user's state is
    /// among the domain's third countries, and the authority's kind.
    #[test]
    fn classes_rename_domains_and_states_but_keep_what_the_policies_compare() {
        let mut lists = Lists::default();
        lists.countries.insert("services".into(), vec![]);
        lists.countries.insert("professional_qualifications".into(), vec!["CH".into(), "NO".into()]);
        lists.countries.insert("solvit".into(), vec!["NO".into()]);
        let profile = |domains: &[&str], kind: &str, state: &str| Profile {
            domains: domains.iter().map(|d| d.to_string()).collect(),
            kind: kind.into(),
            member_state: state.into(),
        };
        let form = |p: &Profile, d: Option<&str>| class_form(p, d, &lists);
        let de = profile(&["services"], "competent_authority", "DE");
        // Each in the domain of its rights, with no third country at stake: one class.
        let fr = profile(&["services"], "competent_authority", "FR");
        assert_eq!(form(&de, Some("services")), form(&fr, Some("services")));
        // In the domain of one's rights or not: two classes.
        assert_ne!(form(&de, Some("services")), form(&de, Some("solvit")));
        // A user of a third country the domain admits, and one of a state it does not.
        let ch = profile(&["professional_qualifications"], "third_country_authority", "CH");
        let tr = profile(&["professional_qualifications"], "third_country_authority", "TR");
        assert_ne!(
            form(&ch, Some("professional_qualifications")),
            form(&tr, Some("professional_qualifications"))
        );
        // The kind of authority tells classes apart; so does an event on no case.
        assert_ne!(
            form(&de, Some("services")),
            form(&profile(&["services"], "commission", "EU"), Some("services"))
        );
        assert_ne!(form(&de, None), form(&de, Some("services")));
    }
}
