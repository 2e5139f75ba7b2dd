//! The need-to-know audit: every granted access event judged by the Cedar policies.
//!
//! ```text
//! store ──► ntk_facts.sql (DataFusion: the event joined with its user, authority, case,
//!            │               domain and participation as they stood at the event's instant)
//!            ▼
//!        per batch: the fact columns, interned ──► distinct scenes ──► Cedar, once each
//!            │                                             │
//!            ▼                                             ▼
//!        every event's verdict, looked up by its scene's number ──► findings
//! ```
//!
//! Cedar sees a scene with stand-in identifiers (`actor`, `case`) and the facts of the
//! event; the policies read no identifiers, so the verdict of a scene is the verdict of every
//! event with the same facts. Real events number in the hundreds of millions; distinct scenes
//! in the thousands.
//!
//! The list-valued facts are static attributes: a user's domains and a domain's third
//! countries. The facts query carries the user's number and the case's domain instead of the
//! lists (copying a list per event costs more than all the joins), and the audit reads the
//! lists once, through DataFusion, into [`Lists`]; a scene's interning uses the number of the
//! user's profile (domains, authority kind and member state) in place of those three.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, ListArray, RecordBatch, StringArray, StringViewArray, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimestampMicrosecondType};
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use futures::StreamExt;

use crate::decision::{CaseScene, Judge, Scene, Verdict};
use crate::error::{Error, Result};
use crate::finding::{self, Finding};
use crate::query;
use crate::store::Store;

/// The fact columns of `ntk_facts.sql` that tell scenes apart (identifiers excluded), with
/// the number of the user's profile (see [`Lists`]), which stands for the user's domains and
/// authority's kind and member state. The domain's third countries follow from `case_domain`.
const SCENE_COLUMNS: [&str; 11] = [
    "action",
    "purpose",
    "legal_ground",
    "user_active",
    "case_domain",
    "personal_data",
    "blocked",
    "deleted",
    "subject_consent",
    "commission_participates",
    "participating",
];

/// The list-valued facts, read once per audit: each user's domains and each domain's third
/// countries. Users are numbered by profile: the same domains, authority kind and member
/// state, the same profile.
#[derive(Debug, Default)]
pub struct Lists {
    /// The profile of each user, by `user_key`.
    user_profile: Vec<u32>,
    /// The domains of each profile, as imported (in order).
    profile_domains: Vec<Vec<String>>,
    /// Each domain's third countries.
    countries: HashMap<String, Vec<String>>,
}

impl Lists {
    /// Reads the lists through `ctx`'s `users` and `domains` tables.
    pub async fn load(ctx: &SessionContext) -> Result<Lists> {
        let mut lists = Lists::default();
        let mut numbers: HashMap<(Vec<String>, String, String), u32> = HashMap::new();
        // The user's authority as the facts query joins it.
        let sql = "SELECT u.user_key, u.domains, a.kind, a.member_state \
                   FROM authorities a JOIN users u ON a.authority_key = u.authority_key";
        for b in ctx.sql(sql).await?.collect().await? {
            let (keys, domains) = (b.column(0).as_primitive::<Int32Type>(), b.column(1).as_list::<i32>());
            let (kind, state) = (b.column(2).as_string::<i32>(), b.column(3).as_string::<i32>());
            for row in 0..b.num_rows() {
                let set = items(domains, row);
                let profile = (set.clone(), kind.value(row).to_owned(), state.value(row).to_owned());
                let next = numbers.len() as u32;
                let n = *numbers.entry(profile).or_insert_with(|| {
                    lists.profile_domains.push(set);
                    next
                });
                let key = usize::try_from(keys.value(row)).unwrap_or(0);
                if lists.user_profile.len() <= key {
                    lists.user_profile.resize(key + 1, u32::MAX);
                }
                lists.user_profile[key] = n;
            }
        }
        for b in ctx.sql("SELECT domain, third_countries FROM domains").await?.collect().await? {
            let (domain, countries) = (b.column(0).as_string::<i32>(), b.column(1).as_list::<i32>());
            for row in 0..b.num_rows() {
                lists.countries.insert(domain.value(row).to_owned(), items(countries, row));
            }
        }
        Ok(lists)
    }

    /// The profile of each row's user.
    fn profiles(&self, user_keys: &dyn Array) -> Result<UInt32Array> {
        let keys = user_keys
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| Error::Usage("the facts query's `user_key` is not a 32-bit number".into()))?;
        Ok(keys.unary(|k| self.user_profile.get(k as usize).copied().unwrap_or(u32::MAX)))
    }

    fn user_domains(&self, set: u32) -> Vec<String> {
        self.profile_domains.get(set as usize).cloned().unwrap_or_default()
    }

    fn third_countries(&self, domain: &str) -> Vec<String> {
        self.countries.get(domain).cloned().unwrap_or_default()
    }
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
}

/// Window of event times to audit, as UTC microseconds, half-open.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// First instant included.
    pub from: Option<i64>,
    /// First instant excluded.
    pub to: Option<i64>,
}

pub(crate) fn ts_param(v: i64) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(v), Some("UTC".into()))
}

/// The facts of every granted event in `window`, as a DataFusion plan.
pub async fn facts(ctx: &SessionContext, window: Window) -> Result<datafusion::dataframe::DataFrame> {
    let df = ctx.sql(query::sql::NTK_FACTS).await?;
    // Bounds DataFusion's timestamp literals can hold; a window is always given to the plan.
    let from = window.from.unwrap_or(-9_000_000_000_000_000);
    let to = window.to.unwrap_or(9_000_000_000_000_000);
    Ok(df.with_param_values(vec![ts_param(from), ts_param(to)])?)
}

/// Judges every granted event of the store in `window`.
pub async fn audit(store: &Store, judge: &Judge, window: Window) -> Result<Audit> {
    audit_by(store, judge, window, |scene| judge.decide(scene)).await
}

/// [`audit`] with another decider in Cedar's place: the same facts, the same deduplication of
/// scenes, `decide` asked once per distinct scene. The benchmark suite runs the need-to-know
/// rules written in Rego through it, so that the engines are compared, not the plumbing.
/// `judge` still names the rules' articles in the findings.
pub async fn audit_by(
    store: &Store,
    judge: &Judge,
    window: Window,
    mut decide: impl FnMut(&Scene<'_>) -> Result<Verdict>,
) -> Result<Audit> {
    let ctx = query::session_with(store, query::planned_config()).await?;
    let lists = Lists::load(&ctx).await?;
    let df = facts(&ctx, window).await?;
    let plan = df.create_physical_plan().await?;
    tracing::debug!(
        "need-to-know facts plan:\n{}",
        datafusion::physical_plan::displayable(plan.as_ref()).indent(true)
    );
    let mut stream = datafusion::physical_plan::execute_stream(plan, ctx.task_ctx())?;
    let mut scenes = SceneCache::default();
    let mut out = Audit::default();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        out.events += batch.num_rows() as u64;
        judge_batch(judge, &lists, &mut decide, &mut scenes, &batch, &mut out.findings)?;
    }
    out.scenes = scenes.verdicts.len() as u64;
    // INVARIANT: findings come out in one order whatever the plan's parallelism (in place: no
    // two findings are equal, so an unstable sort gives the one order).
    out.findings.sort_unstable();
    Ok(out)
}

/// Verdicts of the scenes seen so far. DataFusion's own grouping (the vectorised interning
/// of its hash aggregation) numbers each distinct row of scene columns; `of_group` maps that
/// number to a verdict (`u32::MAX` until the group's first row is judged).
#[derive(Default)]
struct SceneCache {
    groups: Option<Box<dyn GroupValues>>,
    /// The verdict of each group, by group number.
    of_group: Vec<u32>,
    /// Verdicts by the canonical form of a scene (see [`canonical`]).
    canonical: HashMap<String, u32>,
    verdicts: Vec<Verdict>,
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
            .ok_or_else(|| Error::Usage(format!("the facts query has no column `{name}`")))
    }
    fn text(&self, name: &str) -> Result<Text<'a>> {
        let a = self.get(name)?;
        match a.data_type() {
            DataType::Utf8View => Ok(Text::View(a.as_string_view())),
            DataType::Utf8 => Ok(Text::Plain(a.as_string::<i32>())),
            other => Err(Error::Usage(format!("the facts query's column `{name}` is {other}, not text"))),
        }
    }
    fn flag(&self, name: &str) -> Result<&'a BooleanArray> {
        Ok(self.get(name)?.as_boolean())
    }
}

/// A text column of the facts: the access log's are string views, the other tables' strings.
#[derive(Clone, Copy)]
enum Text<'a> {
    Plain(&'a StringArray),
    View(&'a StringViewArray),
}

impl<'a> Text<'a> {
    fn value(self, row: usize) -> &'a str {
        match self {
            Text::Plain(a) => a.value(row),
            Text::View(a) => a.value(row),
        }
    }
    fn is_null(self, row: usize) -> bool {
        match self {
            Text::Plain(a) => a.is_null(row),
            Text::View(a) => a.is_null(row),
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

/// The facts of one row of a facts batch, owned.
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

fn row_facts(c: &Columns<'_>, lists: &Lists, user_profile: u32, row: usize) -> Result<RowFacts> {
    let case = match opt(c.text("case_domain")?, row) {
        None => None,
        Some(domain) => Some(CaseFacts {
            domain: domain.to_owned(),
            personal_data: yes(c.flag("personal_data")?, row),
            blocked: yes(c.flag("blocked")?, row),
            deleted: yes(c.flag("deleted")?, row),
            subject_consent: yes(c.flag("subject_consent")?, row),
            commission_participates: yes(c.flag("commission_participates")?, row),
            third_countries: lists.third_countries(domain),
            participating: yes(c.flag("participating")?, row),
        }),
    };
    Ok(RowFacts {
        action: c.text("action")?.value(row).to_owned(),
        purpose: c.text("purpose")?.value(row).to_owned(),
        legal_ground: yes(c.flag("legal_ground")?, row),
        user_active: yes(c.flag("user_active")?, row),
        user_domains: lists.user_domains(user_profile),
        authority_kind: c.text("authority_kind")?.value(row).to_owned(),
        member_state: c.text("member_state")?.value(row).to_owned(),
        case,
    })
}

/// The canonical form of a scene: the facts with domains and member states renamed in order
/// of first appearance (the case's domain first, then the user's domains in order; the
/// authority's member state first, then the domain's third countries in order).
///
/// INVARIANT: the need-to-know policies compare domains and member states only with one
/// another (`contains`), never with a literal, so two scenes with the same canonical form get
/// the same verdict (a policy test checks the texts for such literals). This is what lets a
/// few hundred Cedar evaluations decide millions of events.
fn canonical(f: &RowFacts) -> String {
    let mut domains: Vec<String> = Vec::new();
    let mut name = |d: &str, names: &mut Vec<String>| {
        let i = domains.iter().position(|x| x == d).unwrap_or_else(|| {
            domains.push(d.to_owned());
            domains.len() - 1
        });
        names.push(format!("d{i}"));
    };
    let mut case_domain = Vec::new();
    if let Some(c) = &f.case {
        name(&c.domain, &mut case_domain);
    }
    let mut user_domains = Vec::new();
    for d in &f.user_domains {
        name(d, &mut user_domains);
    }
    let mut states = vec![f.member_state.as_str()];
    let countries: Vec<String> = f
        .case
        .as_ref()
        .map(|c| {
            c.third_countries
                .iter()
                .map(|t| {
                    let i = states.iter().position(|x| x == t).unwrap_or_else(|| {
                        states.push(t);
                        states.len() - 1
                    });
                    format!("s{i}")
                })
                .collect()
        })
        .unwrap_or_default();
    let case = f.case.as_ref().map(|c| {
        (c.personal_data, c.blocked, c.deleted, c.subject_consent, c.commission_participates, c.participating)
    });
    format!(
        "{}|{}|{}|{}|{:?}|{}|{:?}|{:?}|{:?}",
        f.action,
        f.purpose,
        f.legal_ground,
        f.user_active,
        user_domains,
        f.authority_kind,
        case_domain,
        countries,
        case
    )
}

/// The scene of a row's facts, with stand-in identifiers.
fn scene(f: &RowFacts) -> Scene<'_> {
    Scene {
        user: "actor",
        authority: "actor-authority",
        authority_kind: &f.authority_kind,
        member_state: &f.member_state,
        user_active: f.user_active,
        user_domains: f.user_domains.iter().map(String::as_str).collect(),
        action: &f.action,
        purpose: &f.purpose,
        legal_ground: f.legal_ground,
        case: f.case.as_ref().map(|c| CaseScene {
            id: "case",
            domain: &c.domain,
            personal_data: c.personal_data,
            blocked: c.blocked,
            deleted: c.deleted,
            subject_consent: c.subject_consent,
            commission_participates: c.commission_participates,
            third_countries: c.third_countries.iter().map(String::as_str).collect(),
            participants: if c.participating {
                vec![("actor-authority", f.authority_kind.as_str(), f.member_state.as_str())]
            } else {
                Vec::new()
            },
        }),
    }
}

fn judge_batch(
    judge: &Judge,
    lists: &Lists,
    decide: &mut impl FnMut(&Scene<'_>) -> Result<Verdict>,
    cache: &mut SceneCache,
    batch: &RecordBatch,
    out: &mut Vec<Finding>,
) -> Result<()> {
    let c = Columns { batch };
    let mut columns: Vec<ArrayRef> = SCENE_COLUMNS
        .iter()
        .map(|n| {
            batch
                .column_by_name(n)
                .cloned()
                .ok_or_else(|| Error::Usage(format!("the facts query has no column `{n}`")))
        })
        .collect::<Result<_>>()?;
    let profiles = lists.profiles(c.get("user_key")?)?;
    columns.push(Arc::new(profiles.clone()));
    if cache.groups.is_none() {
        let fields: Vec<Field> = SCENE_COLUMNS
            .iter()
            .chain(["user_profile"].iter())
            .zip(&columns)
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        cache.groups = Some(new_group_values(Arc::new(Schema::new(fields)), &GroupOrdering::None)?);
    }
    let Some(groups) = cache.groups.as_mut() else { return Ok(()) };
    let mut ids = Vec::with_capacity(batch.num_rows());
    groups.intern(&columns, &mut ids)?;
    let mut violations = Vec::new();
    for (i, &g) in ids.iter().enumerate() {
        // New groups take the next numbers, though not always in the order of their rows.
        if g >= cache.of_group.len() {
            cache.of_group.resize(g + 1, u32::MAX);
        }
        if cache.of_group[g] == u32::MAX {
            let facts = row_facts(&c, lists, profiles.value(i), i)?;
            let form = canonical(&facts);
            let v = match cache.canonical.get(&form) {
                Some(v) => *v,
                None => {
                    let verdict = decide(&scene(&facts))?;
                    let v = cache.verdicts.len() as u32;
                    cache.verdicts.push(verdict);
                    cache.canonical.insert(form, v);
                    v
                }
            };
            cache.of_group[g] = v;
        }
        let v = cache.of_group[g];
        if cache.verdicts[v as usize].is_violation() {
            violations.push((i, v));
        }
    }
    if violations.is_empty() {
        return Ok(());
    }
    let (event, user, authority, case) =
        (c.text("event_id")?, c.text("user_id")?, c.text("authority_id")?, c.text("case_id")?);
    let ms = c.text("member_state")?;
    let ts = c.get("ts")?.as_primitive::<TimestampMicrosecondType>();
    for (i, v) in violations {
        let verdict = &cache.verdicts[v as usize];
        for rule in &verdict.broken {
            let who = Event {
                id: event.value(i),
                user: user.value(i),
                authority: authority.value(i),
                member_state: ms.value(i),
                case: opt(case, i),
                ts: ts.value(i),
            };
            out.push(who.finding(judge, rule, &verdict.broken));
        }
    }
    Ok(())
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
            status: "unmet".into(),
            subject_kind: "event".into(),
            subject_id: self.id.to_owned(),
            due_at: None,
            legal_ref: judge.policies().rule(rule).map(|r| r.article.clone()).unwrap_or_default(),
            severity: "violation".into(),
            authority_id: Some(self.authority.to_owned()),
            member_state: Some(self.member_state.to_owned()),
            event_id: Some(self.id.to_owned()),
            user_id: Some(self.user.to_owned()),
            case_id: self.case.map(str::to_owned),
            ts: Some(finding::format_micros(self.ts)),
            policies: Some(broken.to_vec()),
            default_period: None,
        }
    }
}

/// Commits an audit's findings to the store, with the policy set that decided them (its
/// hash, and every rule's text) and the time of the run. Returns the manifest entry.
pub fn record(store: &Store, audit: &Audit, judge: &Judge, run_at: i64) -> Result<crate::manifest::Entry> {
    let policies = judge.policies();
    let mut txn = store.begin("audit")?;
    let batch = finding::to_batch(&audit.findings, policies.hash(), run_at)?;
    txn.write(NTK_FINDINGS, Arc::clone(&finding::SCHEMA), &[batch])?;
    let texts = policy_texts(policies)?;
    txn.write(POLICY_TEXTS, texts.schema(), &[texts])?;
    txn.commit(&finding::format_micros(run_at), vec![format!("policies {}", policies.hash())])?
        .ok_or_else(|| Error::Usage("the audit wrote nothing".into()))
}

/// The stored table of need-to-know findings.
pub const NTK_FINDINGS: &str = "ntk_findings";
/// The stored table of the texts of every policy set that decided findings.
pub const POLICY_TEXTS: &str = "policy_texts";

/// The schema of [`POLICY_TEXTS`].
pub fn policy_texts_schema() -> arrow::datatypes::SchemaRef {
    let names = ["policy_hash", "id", "article", "title", "effect", "file", "text"];
    Arc::new(arrow::datatypes::Schema::new(
        names
            .iter()
            .map(|n| arrow::datatypes::Field::new(*n, arrow::datatypes::DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ))
}

fn policy_texts(p: &custos_policies::Policies) -> Result<RecordBatch> {
    let col = |f: &dyn Fn(&custos_policies::Rule) -> &str| -> Arc<dyn Array> {
        Arc::new(StringArray::from_iter_values(p.rules().iter().map(f)))
    };
    let hash: Arc<dyn Array> = Arc::new(StringArray::from_iter_values(p.rules().iter().map(|_| p.hash())));
    Ok(RecordBatch::try_new(
        policy_texts_schema(),
        vec![
            hash,
            col(&|r| &r.id),
            col(&|r| &r.article),
            col(&|r| &r.title),
            col(&|r| r.effect),
            col(&|r| &r.file),
            col(&|r| &r.text),
        ],
    )?)
}

/// One event explained: its facts, the request Cedar was asked, and what it decided.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The event's facts as the facts query computed them, as JSON.
    pub facts: serde_json::Value,
    /// The Cedar request: principal, action, resource and context.
    pub request: String,
    /// The entities Cedar was given, as JSON.
    pub entities: serde_json::Value,
    /// The decision.
    pub verdict: Verdict,
}

/// Explains one event: the same facts and policies as the audit, with the event's own
/// identifiers in the request. `at`, the event's instant when known (from its finding),
/// lets the query read one month of the access log rather than all of it.
pub async fn explain(store: &Store, judge: &Judge, event_id: &str, at: Option<i64>) -> Result<Explanation> {
    use datafusion::prelude::{col, lit};
    let ctx = query::session(store).await?;
    let lists = Lists::load(&ctx).await?;
    let window = Window { from: at, to: at.map(|t| t + 1) };
    let df = facts(&ctx, window).await?.filter(col("event_id").eq(lit(event_id)))?;
    let batches = df.collect().await?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Err(Error::Usage(format!("no granted event has the id `{event_id}`")));
    };
    let c = Columns { batch };
    let user_profile = lists.profiles(c.get("user_key")?)?.value(0);
    let facts = row_facts(&c, &lists, user_profile, 0)?;
    let mut s = scene(&facts);
    let (user, authority) = (c.text("user_id")?.value(0), c.text("authority_id")?.value(0));
    s.user = user;
    s.authority = authority;
    if let Some(case) = s.case.as_mut() {
        case.id = c.text("case_id")?.value(0);
        for p in &mut case.participants {
            p.0 = authority;
        }
    }
    let (request, entities) = judge.request(&s)?;
    let verdict = judge.decide(&s)?;
    let mut w = arrow::json::ArrayWriter::new(Vec::new());
    w.write(batch)?;
    w.finish()?;
    let rows: serde_json::Value = serde_json::from_slice(&w.into_inner())?;
    let mut facts_json = rows.get(0).cloned().unwrap_or_default();
    if let Some(o) = facts_json.as_object_mut() {
        // The list-valued facts, which the query leaves to `Lists`.
        o.insert("user_domains".into(), facts.user_domains.clone().into());
        let countries = facts.case.as_ref().map(|c| c.third_countries.clone()).unwrap_or_default();
        o.insert("third_countries".into(), countries.into());
    }
    let mut entity_json = Vec::new();
    entities.write_to_json(&mut entity_json).map_err(|e| Error::Usage(e.to_string()))?;
    Ok(Explanation {
        facts: facts_json,
        request: request.to_string(),
        entities: serde_json::from_slice(&entity_json)?,
        verdict,
    })
}

/// The plain twin of [`audit`]: reads the tables with no query engine, builds every event's
/// scene with its real identifiers and the full list of participants at its instant, and
/// asks Cedar once per event. Slow and obviously right; the differential test and the
/// benchmark hold [`audit`] to it.
pub fn naive(store: &Store, judge: &Judge, window: Window) -> Result<Audit> {
    use crate::catalog;
    type Micros = Option<i64>;
    let text = |b: &RecordBatch, name: &str| -> StringArray {
        b.column_by_name(name)
            .map(|c| c.as_string::<i32>().clone())
            .unwrap_or_else(|| StringArray::from(Vec::<Option<&str>>::new()))
    };
    let time = |b: &RecordBatch, name: &str, row: usize| -> Micros {
        let a = b.column_by_name(name)?.as_primitive::<TimestampMicrosecondType>();
        (!a.is_null(row)).then(|| a.value(row))
    };
    let flag = |b: &RecordBatch, name: &str, row: usize| -> bool {
        b.column_by_name(name).is_some_and(|c| yes(c.as_boolean(), row))
    };
    let list = |b: &RecordBatch, name: &str, row: usize| -> Vec<String> {
        b.column_by_name(name).map(|c| items(c.as_list::<i32>(), row)).unwrap_or_default()
    };

    let mut authorities: HashMap<String, (String, String)> = HashMap::new();
    for b in store.read(catalog::AUTHORITIES.name)? {
        let (id, kind, ms) = (text(&b, "authority_id"), text(&b, "kind"), text(&b, "member_state"));
        for r in 0..b.num_rows() {
            authorities.insert(id.value(r).into(), (kind.value(r).into(), ms.value(r).into()));
        }
    }
    let mut domains: HashMap<String, (bool, Vec<String>)> = HashMap::new();
    let effective = query::effective_domains(store)?;
    let codes = text(&effective, "domain");
    for r in 0..effective.num_rows() {
        domains.insert(
            codes.value(r).into(),
            (flag(&effective, "commission_participates", r), list(&effective, "third_countries", r)),
        );
    }
    struct User {
        authority: String,
        domains: Vec<String>,
        registered: i64,
        deactivated: Micros,
    }
    let mut users: HashMap<String, User> = HashMap::new();
    for b in store.read(catalog::USERS.name)? {
        let (id, auth) = (text(&b, "user_id"), text(&b, "authority_id"));
        for r in 0..b.num_rows() {
            users.insert(
                id.value(r).into(),
                User {
                    authority: auth.value(r).into(),
                    domains: list(&b, "domains", r),
                    registered: time(&b, "registered_at", r).unwrap_or(i64::MAX),
                    deactivated: time(&b, "deactivated_at", r),
                },
            );
        }
    }
    struct Case {
        domain: String,
        personal_data: bool,
        blocked: Micros,
        deleted: Micros,
        consent: bool,
    }
    let mut cases: HashMap<String, Case> = HashMap::new();
    for b in store.read(catalog::CASES.name)? {
        let (id, domain) = (text(&b, "case_id"), text(&b, "domain"));
        for r in 0..b.num_rows() {
            cases.insert(
                id.value(r).into(),
                Case {
                    domain: domain.value(r).into(),
                    personal_data: flag(&b, "personal_data", r),
                    blocked: time(&b, "blocked_at", r),
                    deleted: time(&b, "deleted_at", r),
                    consent: flag(&b, "subject_consent", r),
                },
            );
        }
    }
    let mut participants: HashMap<String, Vec<(String, i64, Micros)>> = HashMap::new();
    for b in store.read(catalog::CASE_PARTICIPANTS.name)? {
        let (case, auth) = (text(&b, "case_id"), text(&b, "authority_id"));
        for r in 0..b.num_rows() {
            participants.entry(case.value(r).into()).or_default().push((
                auth.value(r).into(),
                time(&b, "joined_at", r).unwrap_or(i64::MAX),
                time(&b, "left_at", r),
            ));
        }
    }

    let none = (String::new(), String::new());
    let mut out = Audit::default();
    for b in store.read(catalog::ACCESS_LOG.name)? {
        let (event, user, case, action, purpose, ground, outcome) = (
            text(&b, "event_id"),
            text(&b, "user_id"),
            text(&b, "case_id"),
            text(&b, "action"),
            text(&b, "purpose"),
            text(&b, "legal_ground"),
            text(&b, "outcome"),
        );
        for r in 0..b.num_rows() {
            let ts = time(&b, "ts", r).unwrap_or_default();
            if outcome.value(r) != "granted"
                || window.from.is_some_and(|f| ts < f)
                || window.to.is_some_and(|t| ts >= t)
            {
                continue;
            }
            let Some(u) = users.get(user.value(r)) else { continue };
            let (kind, ms) = authorities.get(&u.authority).unwrap_or(&none);
            let case_scene = match opt(Text::Plain(&case), r) {
                None => None,
                Some(id) => {
                    let Some(c) = cases.get(id) else { continue };
                    let (commission, countries) = domains.get(&c.domain).cloned().unwrap_or_default();
                    let here: Vec<(&str, &str, &str)> = participants
                        .get(id)
                        .into_iter()
                        .flatten()
                        .filter(|(_, joined, left)| *joined <= ts && left.is_none_or(|l| ts < l))
                        .map(|(a, _, _)| {
                            let (k, m) = authorities.get(a).unwrap_or(&none);
                            (a.as_str(), k.as_str(), m.as_str())
                        })
                        .collect();
                    Some((c, commission, countries, here, id))
                }
            };
            let scene = Scene {
                user: user.value(r),
                authority: &u.authority,
                authority_kind: kind,
                member_state: ms,
                user_active: u.registered <= ts && u.deactivated.is_none_or(|d| ts < d),
                user_domains: u.domains.iter().map(String::as_str).collect(),
                action: action.value(r),
                purpose: purpose.value(r),
                legal_ground: !ground.is_null(r),
                case: case_scene.as_ref().map(|(c, commission, countries, here, id)| CaseScene {
                    id,
                    domain: &c.domain,
                    personal_data: c.personal_data,
                    blocked: c.blocked.is_some_and(|b| b <= ts),
                    deleted: c.deleted.is_some_and(|d| d <= ts),
                    subject_consent: c.consent,
                    commission_participates: *commission,
                    third_countries: countries.iter().map(String::as_str).collect(),
                    participants: here.clone(),
                }),
            };
            out.events += 1;
            out.scenes += 1;
            let verdict = judge.decide(&scene)?;
            for rule in &verdict.broken {
                let who = Event {
                    id: event.value(r),
                    user: user.value(r),
                    authority: &u.authority,
                    member_state: ms,
                    case: opt(Text::Plain(&case), r),
                    ts,
                };
                out.findings.push(who.finding(judge, rule, &verdict.broken));
            }
        }
    }
    out.findings.sort();
    Ok(out)
}
