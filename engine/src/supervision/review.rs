//! The review of findings: each finding is disposed of by a supervisor, and every change is a
//! new version of its review, appended to the store's `dispositions` table and never edited.
//!
//! ```text
//! open ──► under_review ──► confirmed | justified (a ground) | false_positive
//!   │            │      └──► referred (to an authority, answer due) ──► its answer recorded
//!   └────────────┴─────────────────────────────────────────────┘  (also straight from open)
//! decided ──► under_review (reopened)
//! ```
//!
//! A review attaches to the finding's stable [`key`] (rule and subject), so it survives later
//! audits and checks; a finding that a later run no longer produces keeps its history.
//! Each version records who, when, the note, and the finding as it was with the hash of the
//! policy set that produced it. A change names the version its author saw; if another was
//! committed since, it is refused ([`Error::Conflict`]), never lost over the other.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{Date32Type, Int64Type, TimestampMicrosecondType};
use chrono::NaiveDate;
use serde::Serialize;

use crate::catalog::{DISPOSITIONS, dispositions_schema};
use crate::error::{Error, Result};
use crate::finding::{Finding, Instant, SubjectKind, texts};
use crate::store::Store;

/// Where a finding's review stands. The order of the variants is the order of their texts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Judged by the processing to have broken a rule it was in breach of.
    Confirmed,
    /// Not a breach after all, on a ground outside IMI's records (a consent, a decision).
    Justified,
    /// The rule should not have found it: counts against the rule's precision.
    FalsePositive,
    /// Nobody has reviewed it yet.
    #[default]
    Open,
    /// Asked of the authority concerned, which should answer by a date.
    Referred,
    /// A reviewer is looking into it.
    UnderReview,
}

texts!(State {
    Confirmed => "confirmed",
    Justified => "justified",
    FalsePositive => "false_positive",
    Open => "open",
    Referred => "referred",
    UnderReview => "under_review",
});

impl State {
    /// Every state, in the order a reviewer meets them.
    pub const ALL: [State; 6] = [
        State::Open,
        State::UnderReview,
        State::Referred,
        State::Confirmed,
        State::Justified,
        State::FalsePositive,
    ];

    /// Decided: confirmed, justified or a false positive.
    pub fn is_decided(self) -> bool {
        matches!(self, State::Confirmed | State::Justified | State::FalsePositive)
    }

    /// Whether a review in `self` may move to `next`. Nothing returns to `open`; a decision
    /// is reopened by putting it under review again; a referral may be renewed (its answer
    /// recorded, its date moved).
    pub fn may_become(self, next: State) -> bool {
        match (self, next) {
            (_, State::Open) => false,
            (State::Open, _) => true,
            (State::UnderReview, State::UnderReview) => false,
            (State::UnderReview, _) | (State::Referred, _) => true,
            (_, State::UnderReview) => true,
            _ => false,
        }
    }
}

/// The stable key of a finding: its rule and its subject (and, about a case, the actor who
/// owes it, since several responders may each owe one reply). The same finding of a later
/// audit or check has the same key.
pub fn key(f: &Finding) -> String {
    match f.subject_kind {
        SubjectKind::Case => format!(
            "{}:{}:{}:{}",
            f.rule,
            f.subject_kind,
            f.subject_id,
            f.authority_id.as_deref().unwrap_or("")
        ),
        _ => format!("{}:{}:{}", f.rule, f.subject_kind, f.subject_id),
    }
}

/// One version of a finding's review, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disposition {
    /// The finding's [`key`].
    pub key: String,
    /// 1 for the first change, one more for each.
    pub version: i64,
    /// The version this one replaces.
    pub replaces: Option<i64>,
    pub state: State,
    /// Why a finding is justified.
    pub ground: Option<String>,
    /// The reviewer's note.
    pub note: String,
    /// The authority a finding was referred to.
    pub referred_to: Option<String>,
    /// The date by which it should answer.
    #[serde(serialize_with = "date")]
    pub answer_due: Option<NaiveDate>,
    /// Its answer, once recorded.
    pub answer: Option<String>,
    /// Who made the change (login name) and in which role.
    pub by: String,
    pub role: String,
    /// When.
    pub at: Instant,
    /// The finding's rule, its actor's member state and authority (for scope and precision).
    pub rule: String,
    pub member_state: Option<String>,
    pub authority_id: Option<String>,
    /// The policy set that produced the finding.
    pub policy_hash: String,
    /// The finding as it was, as JSON (its facts: status, dates, detail, deciding policies).
    pub finding: String,
}

fn date<S: serde::Serializer>(d: &Option<NaiveDate>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&d.format("%Y-%m-%d").to_string()),
        None => s.serialize_none(),
    }
}

/// A change a reviewer asks for.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// The version the reviewer saw (0: none, the finding was open).
    pub seen: i64,
    pub state: State,
    pub ground: Option<String>,
    pub note: String,
    pub referred_to: Option<String>,
    pub answer_due: Option<NaiveDate>,
    pub answer: Option<String>,
    pub by: String,
    pub role: String,
}

/// The longest note, ground or answer kept.
pub const MAX_TEXT: usize = 4000;

/// Every finding's reviews, as committed to the store.
#[derive(Debug, Clone, Default)]
pub struct Reviews {
    by_key: BTreeMap<String, Vec<Disposition>>,
    /// Manifest entries read so far.
    seen: usize,
}

impl Reviews {
    /// Every review committed to `store`.
    pub fn load(store: &Store) -> Result<Reviews> {
        let mut r = Reviews::default();
        r.catch_up(store)?;
        Ok(r)
    }

    /// Reads the versions committed to `store` since these reviews were read (by another
    /// server, or before a write); returns whether there were any.
    pub fn catch_up(&mut self, store: &Store) -> Result<bool> {
        let files = store.files_since(DISPOSITIONS, self.seen);
        self.seen = store.entries().len();
        if files.is_empty() {
            return Ok(false);
        }
        for batch in store.read_files(&files)? {
            for d in from_batch(&batch)? {
                self.insert(d);
            }
        }
        Ok(true)
    }

    fn insert(&mut self, d: Disposition) {
        let versions = self.by_key.entry(d.key.clone()).or_default();
        versions.push(d);
        versions.sort_by_key(|d| d.version);
    }

    /// A finding's versions, oldest first.
    pub fn history(&self, key: &str) -> &[Disposition] {
        self.by_key.get(key).map_or(&[], Vec::as_slice)
    }

    /// A finding's latest version, if it was ever reviewed.
    pub fn latest(&self, key: &str) -> Option<&Disposition> {
        self.history(key).last()
    }

    /// Where a finding's review stands (`open` if never reviewed).
    pub fn state(&self, key: &str) -> State {
        self.latest(key).map_or(State::Open, |d| d.state)
    }

    /// Every reviewed finding's latest version.
    pub fn latest_all(&self) -> impl Iterator<Item = &Disposition> {
        self.by_key.values().filter_map(|v| v.last())
    }

    /// Every version of every review.
    pub fn all(&self) -> impl Iterator<Item = &Disposition> {
        self.by_key.values().flatten()
    }

    /// Applies `change` to each of `findings` (each with the hash of the policy set that
    /// produced it) in one commit: all or none. Every change is checked first: the version
    /// seen must still be the latest (else [`Error::Conflict`] with what is there now), the
    /// move allowed, the fields complete. Takes the store's lock, so that a change committed
    /// meanwhile by another server is seen before the check.
    pub fn record(
        &mut self,
        store: &Store,
        findings: &[(&Finding, &str, i64)],
        change: &Change,
        now: Instant,
    ) -> Result<Vec<Disposition>> {
        if findings.is_empty() {
            return Err(Error::Usage("no finding selected".into()));
        }
        let mut txn = store.begin("disposition")?;
        self.catch_up(txn.store())?;
        let mut made = Vec::with_capacity(findings.len());
        let mut conflicts = Vec::new();
        for (finding, policy_hash, seen) in findings {
            let key = key(finding);
            let latest = self.latest(&key);
            let current = latest.map_or(0, |d| d.version);
            if current != *seen {
                let what = latest.map_or_else(
                    || "it is open".to_owned(),
                    |d| format!("version {} by {} at {}: {}", d.version, d.by, d.at, d.state),
                );
                conflicts.push(format!("`{key}` changed since you saw version {seen}; now {what}"));
                continue;
            }
            made.push(next(latest, finding, policy_hash, change, now)?);
        }
        if !conflicts.is_empty() {
            return Err(Error::Conflict(conflicts.join("; ")));
        }
        let keys: Vec<String> = made.iter().map(|d| d.key.clone()).collect();
        txn.write(DISPOSITIONS, dispositions_schema(), &[to_batch(&made)?])?;
        txn.commit(&now.to_string(), keys)?;
        self.seen += 1;
        for d in &made {
            self.insert(d.clone());
        }
        Ok(made)
    }
}

/// One step of a history of reviews (see [`Reviews::record_history`]).
#[derive(Debug, Clone)]
pub struct Step<'a> {
    pub finding: &'a Finding,
    pub policy_hash: &'a str,
    /// The change (its `seen` is ignored: each step follows the one before).
    pub change: Change,
    pub at: Instant,
}

impl Reviews {
    /// Records a whole history of reviews in one commit, each step checked as [`record`]
    /// checks a change and following the step before it on the same finding: how a history
    /// is brought in (the demo's, one made elsewhere). All or none.
    ///
    /// [`record`]: Reviews::record
    pub fn record_history(&mut self, store: &Store, steps: &[Step<'_>]) -> Result<usize> {
        if steps.is_empty() {
            return Ok(0);
        }
        let mut txn = store.begin("disposition")?;
        self.catch_up(txn.store())?;
        let mut working: BTreeMap<String, Disposition> = BTreeMap::new();
        let mut made = Vec::with_capacity(steps.len());
        for s in steps {
            let k = key(s.finding);
            let latest = working.get(&k).or_else(|| self.latest(&k)).cloned();
            let d = next(latest.as_ref(), s.finding, s.policy_hash, &s.change, s.at)?;
            working.insert(k, d.clone());
            made.push(d);
        }
        let source = format!("a history of {} reviews of {} findings", made.len(), working.len());
        txn.write(DISPOSITIONS, dispositions_schema(), &[to_batch(&made)?])?;
        let at = steps.iter().map(|s| s.at).max().unwrap_or_default();
        txn.commit(&at.to_string(), vec![source])?;
        self.seen += 1;
        let n = made.len();
        for d in made {
            self.insert(d);
        }
        Ok(n)
    }
}

/// How the reviewed findings of a group were decided: the rule's precision is the share of
/// them confirmed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub confirmed: u64,
    pub justified: u64,
    pub false_positive: u64,
}

impl Tally {
    /// Findings decided.
    pub fn decided(&self) -> u64 {
        self.confirmed + self.justified + self.false_positive
    }

    /// The share decided that was confirmed, if any was decided.
    pub fn precision(&self) -> Option<f64> {
        let d = self.decided();
        (d > 0).then(|| self.confirmed as f64 / d as f64)
    }

    fn add(&mut self, s: State) {
        match s {
            State::Confirmed => self.confirmed += 1,
            State::Justified => self.justified += 1,
            State::FalsePositive => self.false_positive += 1,
            _ => {}
        }
    }
}

impl Reviews {
    /// The decided findings' latest versions that pass `keep`, tallied by `group` (a rule, a
    /// member state, a month of the decision).
    pub fn precision(
        &self,
        keep: impl Fn(&Disposition) -> bool,
        group: impl Fn(&Disposition) -> String,
    ) -> BTreeMap<String, Tally> {
        let mut out: BTreeMap<String, Tally> = BTreeMap::new();
        for d in self.latest_all().filter(|d| d.state.is_decided() && keep(d)) {
            out.entry(group(d)).or_default().add(d.state);
        }
        out
    }
}

/// The version after `latest` that `change` makes of `finding`'s review: checked.
fn next(
    latest: Option<&Disposition>,
    finding: &Finding,
    policy_hash: &str,
    change: &Change,
    now: Instant,
) -> Result<Disposition> {
    let key = key(finding);
    let from = latest.map_or(State::Open, |d| d.state);
    if !from.may_become(change.state) {
        return Err(Error::Usage(format!(
            "`{key}` is {from}: it cannot become {}; from {from} it may become {}",
            change.state,
            State::ALL
                .iter()
                .filter(|s| from.may_become(**s))
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let text = |name: &str, v: &Option<String>| -> Result<Option<String>> {
        let v = v.as_deref().map(str::trim).filter(|v| !v.is_empty());
        match v {
            Some(v) if v.chars().count() > MAX_TEXT => {
                Err(Error::Usage(format!("{name}: at most {MAX_TEXT} characters")))
            }
            _ => Ok(v.map(str::to_owned)),
        }
    };
    let note = text("note", &Some(change.note.clone()))?.unwrap_or_default();
    let ground = text("ground", &change.ground)?;
    let answer = text("answer", &change.answer)?;
    let mut referred_to = text("referred to", &change.referred_to)?;
    let mut answer_due = change.answer_due;
    // A referral renewed or answered keeps its authority and date unless they are changed.
    if change.state == State::Referred && from == State::Referred {
        referred_to = referred_to.or_else(|| latest.and_then(|d| d.referred_to.clone()));
        answer_due = answer_due.or_else(|| latest.and_then(|d| d.answer_due));
    }
    match change.state {
        State::Justified if ground.is_none() => {
            return Err(Error::Usage(format!(
                "`{key}`: a justified finding needs its ground (a consent, a decision not in IMI's records)"
            )));
        }
        State::Referred if referred_to.is_none() || answer_due.is_none() => {
            return Err(Error::Usage(format!(
                "`{key}`: a referral needs the authority it is referred to and the date by which it should answer"
            )));
        }
        _ => {}
    }
    if answer.is_some() && from != State::Referred {
        return Err(Error::Usage(format!("`{key}`: only a referred finding's answer can be recorded")));
    }
    if change.state != State::Justified && ground.is_some() {
        return Err(Error::Usage(format!("`{key}`: a ground is given only for a justified finding")));
    }
    let (referred_to, answer_due) =
        if change.state == State::Referred { (referred_to, answer_due) } else { (None, None) };
    // The answer stays with the versions after it: what the authority said is part of the
    // decision taken on it.
    let answer = answer.or_else(|| latest.and_then(|d| d.answer.clone()).filter(|_| from == State::Referred));
    Ok(Disposition {
        key,
        version: latest.map_or(1, |d| d.version + 1),
        replaces: latest.map(|d| d.version),
        state: change.state,
        ground,
        note,
        referred_to,
        answer_due,
        answer,
        by: change.by.clone(),
        role: change.role.clone(),
        at: now,
        rule: finding.rule.clone(),
        member_state: finding.member_state.clone(),
        authority_id: finding.authority_id.clone(),
        policy_hash: policy_hash.to_owned(),
        finding: serde_json::to_string(finding)?,
    })
}

fn to_batch(ds: &[Disposition]) -> Result<RecordBatch> {
    let text = |f: &dyn Fn(&Disposition) -> Option<&str>| -> ArrayRef {
        Arc::new(ds.iter().map(f).collect::<StringArray>())
    };
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let columns: Vec<ArrayRef> = vec![
        text(&|d| Some(&d.key)),
        Arc::new(ds.iter().map(|d| Some(d.version)).collect::<Int64Array>()),
        Arc::new(ds.iter().map(|d| d.replaces).collect::<Int64Array>()),
        text(&|d| Some(d.state.as_str())),
        text(&|d| d.ground.as_deref()),
        text(&|d| Some(&d.note)),
        text(&|d| d.referred_to.as_deref()),
        Arc::new(
            ds.iter().map(|d| d.answer_due.map(|a| (a - epoch).num_days() as i32)).collect::<Date32Array>(),
        ),
        text(&|d| d.answer.as_deref()),
        text(&|d| Some(&d.by)),
        text(&|d| Some(&d.role)),
        Arc::new(
            ds.iter()
                .map(|d| Some(d.at.micros()))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        ),
        text(&|d| Some(&d.rule)),
        text(&|d| d.member_state.as_deref()),
        text(&|d| d.authority_id.as_deref()),
        text(&|d| Some(&d.policy_hash)),
        text(&|d| Some(&d.finding)),
    ];
    Ok(RecordBatch::try_new(dispositions_schema(), columns)?)
}

fn from_batch(b: &RecordBatch) -> Result<Vec<Disposition>> {
    let bad = |what: &str| Error::Internal(format!("the dispositions table: {what}"));
    let col = |name: &str| b.column_by_name(name).ok_or_else(|| bad(&format!("no column `{name}`")));
    let text = |name: &str| -> Result<&StringArray> {
        col(name)?.as_string_opt::<i32>().ok_or_else(|| bad(&format!("`{name}` is not text")))
    };
    let (key, state, ground, note, referred_to, answer, by, role, rule, ms, authority, hash, finding) = (
        text("key")?,
        text("state")?,
        text("ground")?,
        text("note")?,
        text("referred_to")?,
        text("answer")?,
        text("by")?,
        text("role")?,
        text("rule")?,
        text("member_state")?,
        text("authority_id")?,
        text("policy_hash")?,
        text("finding")?,
    );
    let version = col("version")?.as_primitive_opt::<Int64Type>().ok_or_else(|| bad("`version`"))?;
    let replaces = col("replaces")?.as_primitive_opt::<Int64Type>().ok_or_else(|| bad("`replaces`"))?;
    let due = col("answer_due")?.as_primitive_opt::<Date32Type>().ok_or_else(|| bad("`answer_due`"))?;
    let at = col("at")?.as_primitive_opt::<TimestampMicrosecondType>().ok_or_else(|| bad("`at`"))?;
    let opt = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_owned());
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (0..b.num_rows())
        .map(|i| {
            Ok(Disposition {
                key: key.value(i).to_owned(),
                version: version.value(i),
                replaces: replaces.is_valid(i).then(|| replaces.value(i)),
                state: state.value(i).parse().map_err(|e: String| bad(&e))?,
                ground: opt(ground, i),
                note: note.value(i).to_owned(),
                referred_to: opt(referred_to, i),
                answer_due: due.is_valid(i).then(|| epoch + chrono::TimeDelta::days(i64::from(due.value(i)))),
                answer: opt(answer, i),
                by: by.value(i).to_owned(),
                role: role.value(i).to_owned(),
                at: Instant(at.value(i)),
                rule: rule.value(i).to_owned(),
                member_state: opt(ms, i),
                authority_id: opt(authority, i),
                policy_hash: hash.value(i).to_owned(),
                finding: finding.value(i).to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::finding::{Severity, Status};

    fn finding(rule: &str, event: &str) -> Finding {
        Finding {
            rule: rule.into(),
            status: Status::Unmet,
            subject_kind: SubjectKind::Event,
            subject_id: event.into(),
            legal_ref: "IMI Reg. Art. 8(2)".into(),
            severity: Severity::Violation,
            authority_id: Some("A-DE-1".into()),
            member_state: Some("DE".into()),
            event_id: Some(event.into()),
            user_id: Some("U-1".into()),
            ..Finding::default()
        }
    }

    fn change(seen: i64, state: State) -> Change {
        Change {
            seen,
            state,
            note: "looked".into(),
            by: "anna".into(),
            role: "dpa".into(),
            ..Change::default()
        }
    }

    #[test]
    fn every_change_is_a_new_version_and_a_stale_one_is_a_conflict_not_a_lost_update() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path()).unwrap();
        let f = finding("NTK-DOMAIN", "E-1");
        let (mut a, mut b) = (Reviews::load(&store).unwrap(), Reviews::load(&store).unwrap());
        let t = Instant(1_700_000_000_000_000);
        let v1 = a.record(&store, &[(&f, "h1", 0)], &change(0, State::UnderReview), t).unwrap();
        assert_eq!((v1[0].version, v1[0].replaces, v1[0].state), (1, None, State::UnderReview));
        assert_eq!(v1[0].key, "NTK-DOMAIN:event:E-1");
        // A second reviewer who saw the finding open: refused, naming what is there now.
        let e = b.record(&store, &[(&f, "h1", 0)], &change(0, State::Confirmed), t).unwrap_err();
        assert!(
            matches!(&e, Error::Conflict(m) if m.contains("version 1 by anna") && m.contains("under_review")),
            "{e}"
        );
        // Having seen version 1 (caught up by the refusal), it goes through.
        let v2 = b.record(&store, &[(&f, "h1", 1)], &change(1, State::Confirmed), t).unwrap();
        assert_eq!((v2[0].version, v2[0].replaces), (2, Some(1)));
        // Both versions are in the store, chained and verified; a fresh reader sees both.
        let fresh = Reviews::load(&Store::open(dir.path()).unwrap()).unwrap();
        assert_eq!(fresh.history("NTK-DOMAIN:event:E-1").len(), 2);
        assert_eq!(fresh.state("NTK-DOMAIN:event:E-1"), State::Confirmed);
        assert!(Store::verify(dir.path()).unwrap().is_sound());
        // The first reviewer's view is stale: it catches up inside its next write.
        let e = a.record(&store, &[(&f, "h1", 1)], &change(1, State::UnderReview), t).unwrap_err();
        assert!(matches!(e, Error::Conflict(_)));
        assert_eq!(a.state("NTK-DOMAIN:event:E-1"), State::Confirmed);
    }

    #[test]
    fn moves_and_fields_are_checked_and_nothing_is_written_when_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path()).unwrap();
        let (f, g) = (finding("NTK-DOMAIN", "E-1"), finding("NTK-DOMAIN", "E-2"));
        let mut r = Reviews::load(&store).unwrap();
        let t = Instant(1);
        let usage =
            |e: Error, needle: &str| assert!(matches!(&e, Error::Usage(m) if m.contains(needle)), "{e}");
        usage(r.record(&store, &[(&f, "h", 0)], &change(0, State::Justified), t).unwrap_err(), "ground");
        usage(r.record(&store, &[(&f, "h", 0)], &change(0, State::Referred), t).unwrap_err(), "date");
        usage(
            r.record(&store, &[(&f, "h", 0)], &change(0, State::Open), t).unwrap_err(),
            "cannot become open",
        );
        let answered = Change { answer: Some("we had consent".into()), ..change(0, State::Confirmed) };
        usage(r.record(&store, &[(&f, "h", 0)], &answered, t).unwrap_err(), "only a referred");
        // One of two is stale: neither is written.
        r.record(&store, &[(&g, "h", 0)], &change(0, State::UnderReview), t).unwrap();
        let heads = store.entries().len();
        let e = r.record(&store, &[(&f, "h", 0), (&g, "h", 0)], &change(0, State::Confirmed), t).unwrap_err();
        assert!(matches!(e, Error::Conflict(_)));
        assert_eq!(Store::open(dir.path()).unwrap().entries().len(), heads + 1);
        assert_eq!(r.state("NTK-DOMAIN:event:E-1"), State::Open);
        // A decision is reopened by a review, never decided again at once.
        r.record(&store, &[(&g, "h", 1)], &change(1, State::FalsePositive), t).unwrap();
        usage(
            r.record(&store, &[(&g, "h", 2)], &change(2, State::Confirmed), t).unwrap_err(),
            "may become under_review",
        );
    }

    #[test]
    fn a_referral_keeps_its_authority_and_date_while_its_answer_is_recorded_then_decided() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path()).unwrap();
        let f = finding("NTK-CASE", "E-9");
        let mut r = Reviews::load(&store).unwrap();
        let due = NaiveDate::from_ymd_opt(2024, 2, 29);
        let refer =
            Change { referred_to: Some("A-DE-1".into()), answer_due: due, ..change(0, State::Referred) };
        r.record(&store, &[(&f, "h", 0)], &refer, Instant(1)).unwrap();
        let answer =
            Change { answer: Some("the officer handled the case".into()), ..change(1, State::Referred) };
        let v2 = r.record(&store, &[(&f, "h", 1)], &answer, Instant(2)).unwrap().remove(0);
        assert_eq!((v2.referred_to.as_deref(), v2.answer_due), (Some("A-DE-1"), due));
        let justify = Change { ground: Some("decision of 2024-02-01".into()), ..change(2, State::Justified) };
        let v3 = r.record(&store, &[(&f, "h", 2)], &justify, Instant(3)).unwrap().remove(0);
        assert_eq!(v3.answer.as_deref(), Some("the officer handled the case"));
        assert_eq!((v3.referred_to, v3.answer_due), (None, None));
        // What a fresh reader reads is what was written, field for field (a leap day too).
        let fresh = Reviews::load(&Store::open(dir.path()).unwrap()).unwrap();
        assert_eq!(fresh.history("NTK-CASE:event:E-9"), r.history("NTK-CASE:event:E-9"));
        assert_eq!(fresh.history("NTK-CASE:event:E-9")[1].answer_due, due);
        let json: serde_json::Value =
            serde_json::from_str(&fresh.history("NTK-CASE:event:E-9")[0].finding).unwrap();
        assert_eq!(json["event_id"], "E-9");
    }

    #[test]
    fn precision_is_the_share_of_decided_findings_confirmed_by_their_latest_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path()).unwrap();
        let mut r = Reviews::load(&store).unwrap();
        let fs: Vec<Finding> = (0..5).map(|i| finding("NTK-DOMAIN", &format!("E-{i}"))).collect();
        let decide = |r: &mut Reviews, f: &Finding, seen: i64, s: State| {
            let c = Change { ground: (s == State::Justified).then(|| "consent".into()), ..change(seen, s) };
            r.record(&store, &[(f, "h", seen)], &c, Instant(1)).unwrap();
        };
        decide(&mut r, &fs[0], 0, State::Confirmed);
        decide(&mut r, &fs[1], 0, State::Confirmed);
        decide(&mut r, &fs[2], 0, State::FalsePositive);
        decide(&mut r, &fs[3], 0, State::Justified);
        // Reopened: under review counts for nothing until decided again.
        decide(&mut r, &fs[3], 1, State::UnderReview);
        decide(&mut r, &fs[4], 0, State::UnderReview);
        let by_rule = r.precision(|_| true, |d| d.rule.clone());
        let t = by_rule["NTK-DOMAIN"];
        assert_eq!((t.confirmed, t.justified, t.false_positive, t.decided()), (2, 0, 1, 3));
        assert_eq!(t.precision(), Some(2.0 / 3.0));
        assert!(r.precision(|d| d.member_state.as_deref() == Some("FR"), |d| d.rule.clone()).is_empty());
        assert_eq!(Tally::default().precision(), None);
    }

    #[test]
    fn a_case_finding_is_keyed_by_the_actor_who_owes_it() {
        let mut f = finding("RT-LATE", "C-1");
        f.subject_kind = SubjectKind::Case;
        assert_eq!(key(&f), "RT-LATE:case:C-1:A-DE-1");
    }
}
