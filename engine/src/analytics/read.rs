//! The read model: what the dashboard and the reports show, read from the store once by the
//! production queries of `engine/sql/`, as typed records, so that pages and reports are made
//! from memory and agree with each other.
//!
//! Need-to-know findings are the store's latest audit (`ntk_findings`, with the policy set
//! that produced them); deadline findings are computed as of the moment the data were loaded
//! (deadlines move with time, so they are not stored); breaches, data-subject requests and
//! the indicators of every year come from the store's tables.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use custos_policies::{Policies, Rule};
use serde_json::{Map, Value};

use crate::Engine;
use crate::error::{Error, Result};
use crate::finding::Finding;
use crate::indicator::{self, Benchmark, Indicators, Options};
use crate::query::sql;
use crate::register::{Breach, Request};

/// A row of a table as JSON values by column name.
pub type Row = Map<String, Value>;

/// Everything the pages show.
#[derive(Clone)]
pub struct Data {
    /// The instant deadlines were judged at (UTC microseconds).
    pub as_of: i64,
    /// Access events in the store.
    pub events: u64,
    /// The latest audit's findings, by event time. Shared: the data are derived again after
    /// every register save (see [`Data::with_registers`]) and an audit of 100 M events holds
    /// hundreds of thousands of findings, which no such step copies.
    pub ntk: Arc<Vec<Finding>>,
    /// The policy set that produced them, and when.
    pub audit: Option<(String, String)>,
    /// Deadline findings as of [`Data::as_of`].
    pub deadlines: Vec<Finding>,
    /// Breaches, with their controller's member state.
    pub breaches: Vec<Breach>,
    /// Data-subject requests, with `member_state`.
    pub requests: Vec<Request>,
    /// Member state of every authority (shared, as [`Data::ntk`]).
    pub states: Arc<HashMap<String, String>>,
    /// The Commission's authority (the first of kind `commission` by identifier), whose DPO
    /// reads the report to the EDPS.
    pub commission: Option<String>,
    /// The indicators of every year with requests, overall and per member state and domain.
    pub indicators: Arc<BTreeMap<i32, Vec<Indicators>>>,
    /// Benchmarking of the latest year (an entry per authority: shared, as [`Data::ntk`]).
    pub benchmark: Arc<Vec<Benchmark>>,
    /// The readings the indicators used.
    pub readings: String,
    /// Every rule Custos applies, with its family's test cases.
    pub rules: Arc<Vec<(&'static str, Rule, Vec<Value>)>>,
}

impl Data {
    /// The latest year with indicators.
    pub fn latest_year(&self) -> Option<i32> {
        self.indicators.keys().next_back().copied()
    }

    /// Loads everything from the engine's store, judging deadlines as of `as_of`.
    pub async fn load(engine: &Engine, as_of: i64) -> Result<Data> {
        let store = engine.store();
        let ctx = crate::query::session(store).await?;
        let ntk: Vec<Finding> = rows_of(&ctx, sql::LATEST_FINDINGS)
            .await?
            .into_iter()
            .map(|r| {
                serde_json::from_value(Value::Object(r))
                    .map_err(|e| Error::Internal(format!("a need-to-know finding of the store: {e}")))
            })
            .collect::<Result<_>>()?;
        let audit = rows_of(&ctx, sql::AUDIT_RUNS)
            .await?
            .into_iter()
            .next()
            .map(|r| (text(&r, "policy_hash"), text(&r, "run_at")));
        let states: HashMap<String, String> = rows_of(&ctx, sql::AUTHORITY_STATES)
            .await?
            .iter()
            .map(|r| (text(r, "authority_id"), text(r, "member_state")))
            .collect();
        let commission =
            rows_of(&ctx, sql::COMMISSION_AUTHORITY).await?.first().map(|r| text(r, "authority_id"));
        let breaches = records(rows_of(&ctx, sql::BREACH_REGISTER).await?, "a breach of the register")?;
        let requests = records(rows_of(&ctx, sql::REQUEST_REGISTER).await?, "a data-subject request")?;
        let deadlines = engine.deadlines(as_of).await?;

        // Indicators of every year with requests; benchmarking of the latest.
        let years = rows_of(&ctx, sql::REQUEST_YEARS).await?;
        let year = |k: &str| years.first().and_then(|r| r.get(k)).and_then(Value::as_i64).map(|y| y as i32);
        let options = Options::scoreboard(as_of);
        let mut indicators = BTreeMap::new();
        let mut benchmark = Vec::new();
        if let (Some(lo), Some(hi)) = (year("lo"), year("hi")) {
            indicator::register_request_facts(&ctx, lo - 1, hi, &options).await?;
            for y in lo..=hi {
                indicators.insert(y, indicator::indicators(&ctx, y).await?);
            }
            benchmark = indicator::benchmark(&ctx, hi).await?;
        }

        let mut rules = Vec::new();
        let views =
            Policies::views().map_err(|e| Error::Internal(format!("the built-in view policies: {e}")))?;
        for (family, set, cases) in [
            ("need-to-know", engine.judge().policies(), custos_policies::NEED_TO_KNOW_CASES),
            ("deadlines", engine.deadline_policies().as_ref(), custos_policies::DEADLINE_CASES),
            ("dashboard", &views, custos_policies::VIEW_CASES),
        ] {
            let cases: Vec<Value> = serde_json::from_str(cases)
                .map_err(|e| Error::Internal(format!("the {family} policies' test cases: {e}")))?;
            for rule in set.rules() {
                let prefix = format!("{}:", rule.rule);
                let own: Vec<Value> = cases
                    .iter()
                    .filter(|c| c["name"].as_str().is_some_and(|n| n.starts_with(&prefix)))
                    .map(|c| serde_json::json!({"name": c["name"], "decision": c["decision"], "reason": c["reason"]}))
                    .collect();
                rules.push((family, rule.clone(), own));
            }
        }
        Ok(Data {
            as_of,
            events: store.rows("access_log"),
            ntk: Arc::new(ntk),
            audit,
            deadlines,
            breaches,
            requests,
            states: Arc::new(states),
            commission,
            indicators: Arc::new(indicators),
            benchmark: Arc::new(benchmark),
            readings: options.describe(),
            rules: Arc::new(rules),
        })
    }
}

impl Data {
    /// The same data with the controllers' registers read again and their deadlines (the BRE
    /// and DSR rules) judged again as of [`Data::as_of`]: what a register entry saved in
    /// Custos changes, without judging the cases, the users or the access log again.
    pub async fn with_registers(&self, engine: &Engine) -> Result<Data> {
        use crate::finding::SubjectKind;
        let (breaches, requests) = registers(engine.store()).await?;
        let of_registers = |f: &Finding| matches!(f.subject_kind, SubjectKind::Breach | SubjectKind::Request);
        let mut deadlines: Vec<Finding> =
            self.deadlines.iter().filter(|f| !of_registers(f)).cloned().collect();
        deadlines.extend(engine.register_deadlines(self.as_of).await?);
        // The check's order: rule, subject kind, subject, status.
        deadlines.sort_by(|a, b| {
            (&a.rule, a.subject_kind, &a.subject_id, a.status).cmp(&(
                &b.rule,
                b.subject_kind,
                &b.subject_id,
                b.status,
            ))
        });
        Ok(Data {
            as_of: self.as_of,
            events: self.events,
            ntk: Arc::clone(&self.ntk),
            audit: self.audit.clone(),
            deadlines,
            breaches,
            requests,
            states: Arc::clone(&self.states),
            commission: self.commission.clone(),
            indicators: Arc::clone(&self.indicators),
            benchmark: Arc::clone(&self.benchmark),
            readings: self.readings.clone(),
            rules: Arc::clone(&self.rules),
        })
    }
}

/// The controllers' registers as they stand in `store` now (imported records and the versions
/// saved in Custos since): what a DPO completing a record starts from.
pub async fn registers(store: &crate::store::Store) -> Result<(Vec<Breach>, Vec<Request>)> {
    let ctx = crate::query::session(store).await?;
    let breaches = records(rows_of(&ctx, sql::BREACH_REGISTER).await?, "a breach of the register")?;
    let requests = records(rows_of(&ctx, sql::REQUEST_REGISTER).await?, "a data-subject request")?;
    Ok((breaches, requests))
}

/// `rows` as typed records; a row that is not one is an error naming `what`, never dropped.
fn records<T: serde::de::DeserializeOwned>(rows: Vec<Row>, what: &str) -> Result<Vec<T>> {
    rows.into_iter()
        .map(|r| {
            serde_json::from_value(Value::Object(r))
                .map_err(|e| Error::Internal(format!("{what} of the store: {e}")))
        })
        .collect()
}

/// The text of column `k` of `r` (empty when null).
pub fn text(r: &Row, k: &str) -> String {
    match r.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// The rows of `sql` as JSON objects.
pub async fn rows_of(ctx: &datafusion::prelude::SessionContext, sql: &str) -> Result<Vec<Row>> {
    json_rows(&ctx.sql(sql).await?.collect().await?)
}

/// The rows of production query `sql` with its one parameter `$1` bound, as JSON objects.
pub async fn rows_of_with(
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
    param: i64,
) -> Result<Vec<Row>> {
    let df =
        ctx.sql(sql).await?.with_param_values(vec![datafusion::scalar::ScalarValue::Int64(Some(param))])?;
    json_rows(&df.collect().await?)
}

/// The rows of a production query over the half-open period [`from`, `to`) (UTC
/// microseconds, bound as `$1` and `$2`).
pub async fn rows_in(
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
    from: i64,
    to: i64,
) -> Result<Vec<Row>> {
    let ts = |t: i64| datafusion::scalar::ScalarValue::TimestampMicrosecond(Some(t), Some("UTC".into()));
    let df = ctx.sql(sql).await?.with_param_values(vec![ts(from), ts(to)])?;
    json_rows(&df.collect().await?)
}

pub fn json_rows(batches: &[arrow::array::RecordBatch]) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for b in batches.iter().filter(|b| b.num_rows() > 0) {
        let mut buf = Vec::new();
        let mut w = arrow::json::ArrayWriter::new(&mut buf);
        w.write(b)?;
        w.finish()?;
        let rows: Vec<Row> = serde_json::from_slice(&buf)?;
        out.extend(rows);
    }
    Ok(out)
}
