//! The analytics comparison shared by `benches/analytics.rs` and the suite: every indicator,
//! benchmarking, dashboard and report query, and typical ad-hoc queries, run by Custos
//! (DataFusion, in process) and by DuckDB (`benches/duckdb_analytics.py`) on the same Parquet
//! files of one store, with the same threads and the same memory limit. Every result must be
//! equal before any time is kept.
#![allow(dead_code)]

use std::time::Duration;

use super::common::*;
use custos_engine::indicator::{self, Options};
use custos_engine::query::{self, sql};
use custos_engine::store::Store;
use datafusion::scalar::ScalarValue;
use serde_json::{Value, json};

/// Typical questions a supervisor types into `custos query`.
const AD_HOC: [(&str, &str); 3] = [
    (
        "events per month and action",
        "SELECT CAST(date_part('year', ts) AS BIGINT) AS y, CAST(date_part('month', ts) AS BIGINT) AS m, \
         action, count(*) AS n FROM access_log GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    ),
    (
        "busiest users on personal data",
        "SELECT e.user_id, count(*) AS n FROM access_log e JOIN cases c ON c.case_id = e.case_id \
         WHERE c.personal_data GROUP BY e.user_id ORDER BY n DESC, e.user_id LIMIT 20",
    ),
    (
        "events per member state and outcome",
        "SELECT a.member_state, e.outcome, count(*) AS n FROM access_log e JOIN authorities a \
         ON a.authority_id = e.authority_id GROUP BY 1, 2 ORDER BY 1, 2",
    ),
];

/// What the dashboard asks of the store besides the indicators: the years with requests and
/// the need-to-know findings by rule and member state (the overview's table).
const DASHBOARD: [(&str, &str); 2] = [
    (
        "dashboard: years with requests",
        "SELECT CAST(min(date_part('year', sent_at)) AS BIGINT) AS lo, CAST(max(date_part('year', sent_at)) AS BIGINT) AS hi \
         FROM cases WHERE procedure = 'request' AND sent_at IS NOT NULL",
    ),
    (
        "dashboard: findings by rule and member state",
        "SELECT rule, member_state, count(*) AS n FROM ntk_findings GROUP BY rule, member_state ORDER BY rule, member_state",
    ),
];

/// The year benchmarked: the last whole year of the generated history.
pub const YEAR: i64 = 2025;
const AS_OF: &str = "2026-07-01T00:00:00Z";

/// A query to time: name, kind, SQL, parameters for DataFusion and for DuckDB, repetitions.
pub type Query = (String, &'static str, String, Vec<ScalarValue>, Vec<Value>, usize);

pub struct Run {
    pub name: String,
    pub kind: &'static str,
    pub custos: Vec<Duration>,
    pub duckdb: Vec<Duration>,
}

/// The memory both engines may use for a query, in MiB.
pub const MEMORY_LIMIT_MIB: usize = 4096;

/// What one comparison measured.
pub struct Comparison {
    /// Every query, with both engines' times.
    pub runs: Vec<Run>,
    /// Peak resident memory of the DuckDB process, MiB.
    pub duckdb_peak_mib: f64,
}

/// Runs every query with both engines on the store of `events` access events: `reps` timed
/// runs of the production queries, `adhoc_reps` of the ad-hoc ones, after a warm-up.
pub fn compare(events: u64, reps: usize, adhoc_reps: usize) -> Comparison {
    let store_dir = audited_store(events);
    let store = Store::open(&store_dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let as_of = chrono::DateTime::parse_from_rfc3339(AS_OF).unwrap().timestamp_micros();
    let options = Options::scoreboard(as_of);
    let ctx = rt.block_on(query::session_limited(&store, MEMORY_LIMIT_MIB << 20)).unwrap();

    // Custos.
    let mut runs = Vec::new();
    let facts = time(reps, || {
        rt.block_on(indicator::register_request_facts(&ctx, YEAR as i32 - 1, YEAR as i32, &options)).unwrap()
    });
    runs.push(Run { name: "request_facts".into(), kind: "indicators", custos: facts, duckdb: vec![] });
    let year = || vec![ScalarValue::Int64(Some(YEAR))];
    // The year of the reports: from 00:00 Brussels on 1 January (UTC+1 in winter).
    let (from, to) = (format!("{}-12-31T23:00:00Z", YEAR - 1), format!("{YEAR}-12-31T23:00:00Z"));
    let micros = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp_micros();
    let ts = |t: &str| ScalarValue::TimestampMicrosecond(Some(micros(t)), Some("UTC".into()));
    let usage_period = || vec![ts(&from), ts(&to)];
    let usage_period_json = || vec![json!({"timestamp": from}), json!({"timestamp": to})];
    let mut queries: Vec<Query> = vec![
        ("indicators".into(), "indicators", sql::INDICATORS.into(), year(), vec![json!(YEAR)], reps),
        ("benchmark".into(), "benchmarking", sql::BENCHMARK.into(), year(), vec![json!(YEAR)], reps),
        ("usage".into(), "report", sql::USAGE.into(), usage_period(), usage_period_json(), reps),
        (
            "answer_distribution".into(),
            "report",
            sql::ANSWER_DISTRIBUTION.into(),
            year(),
            vec![json!(YEAR)],
            reps,
        ),
    ];
    for (name, text) in DASHBOARD {
        queries.push((name.into(), "dashboard", text.into(), vec![], vec![], reps));
    }
    for (name, text) in AD_HOC {
        queries.push((name.into(), "ad-hoc", text.into(), vec![], vec![], adhoc_reps));
    }
    let mut custos_rows = Vec::new();
    for (name, kind, text, params, _, n) in &queries {
        let mut rows = Vec::new();
        let times = time(*n, || {
            rows = rt.block_on(async {
                let df = ctx.sql(text).await.unwrap().with_param_values(params.clone()).unwrap();
                df.collect().await.unwrap()
            });
        });
        custos_rows.push(to_rows(&rows));
        runs.push(Run { name: name.clone(), kind, custos: times, duckdb: vec![] });
    }

    // DuckDB, on the same files.
    let mut tables: serde_json::Map<String, Value> = custos_engine::catalog::TABLES
        .iter()
        .filter(|t| store.rows(t.name) > 0)
        .map(|t| (t.name.to_owned(), json!(absolute(store.paths(t.name).unwrap()))))
        .collect();
    tables.insert(
        custos_engine::catalog::NTK_FINDINGS.into(),
        json!(absolute(store.latest_paths(custos_engine::catalog::NTK_FINDINGS).unwrap())),
    );
    let zones: serde_json::Map<String, Value> = [
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS", "IT",
        "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK", "CH", "EU",
    ]
    .iter()
    .map(|s| ((*s).to_owned(), json!(custos_engine::calendar::zone(s).name())))
    .collect();
    let spec = json!({
        "threads": threads(),
        "memory_limit_mib": MEMORY_LIMIT_MIB,
        "reps": reps,
        "tables": tables,
        "zones": zones,
        "facts": {
            "sql": sql::REQUEST_FACTS,
            "params": [YEAR - 1, YEAR, options.domains, false, true, {"timestamp": AS_OF}],
        },
        "queries": queries.iter().map(|(name, _, text, _, params, n)| json!({
            "name": name, "sql": text, "params": params, "reps": n,
        })).collect::<Vec<_>>(),
    });
    let spec_path = data_dir().join(format!("analytics-spec-{events}.json"));
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let python = python();
    let out = check({
        let mut c = std::process::Command::new(&python);
        c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/duckdb_analytics.py")).arg(&spec_path);
        c
    });
    let duck: Value = serde_json::from_slice(&out.stdout).unwrap();
    let secs = |v: &Value| -> Vec<Duration> {
        v["seconds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| Duration::from_secs_f64(s.as_f64().unwrap()))
            .collect()
    };
    for run in &mut runs {
        run.duckdb = secs(&duck[&run.name]);
    }
    for ((name, ..), ours) in queries.iter().zip(&custos_rows) {
        let theirs: Vec<Vec<Value>> = serde_json::from_value(duck[name]["rows"].clone()).unwrap();
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{name}: Custos has {} rows, DuckDB {}",
            ours.len(),
            theirs.len()
        );
        assert!(!ours.is_empty() || smoke(), "{name}: no rows to compare");
        for (i, (a, b)) in sorted(ours.clone()).iter().zip(sorted(theirs)).enumerate() {
            assert!(same_row(a, &b), "{name}: row {i} differs:\n  Custos {a:?}\n  DuckDB {b:?}");
        }
    }
    Comparison { runs, duckdb_peak_mib: duck["_peak_mib"].as_f64().unwrap_or(0.0) }
}

/// Paths as absolute strings, for a peer running in another directory.
pub fn absolute(paths: Vec<std::path::PathBuf>) -> Vec<String> {
    paths.iter().map(|p| std::path::absolute(p).unwrap().to_string_lossy().into_owned()).collect()
}

pub fn median(d: &[Duration]) -> f64 {
    stats(d).0
}

pub fn p95(d: &[Duration]) -> f64 {
    let mut s: Vec<f64> = d.iter().map(Duration::as_secs_f64).collect();
    s.sort_by(f64::total_cmp);
    s[((s.len() as f64 * 0.95).ceil() as usize).clamp(1, s.len()) - 1]
}

/// Record batches as rows of JSON values, column by column.
fn to_rows(batches: &[arrow::array::RecordBatch]) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for b in batches {
        let mut buf = Vec::new();
        let mut w = arrow::json::writer::ArrayWriter::new(&mut buf);
        w.write(b).unwrap();
        w.finish().unwrap();
        if b.num_rows() == 0 {
            continue;
        }
        let objects: Vec<serde_json::Map<String, Value>> = serde_json::from_slice(&buf).unwrap();
        for o in objects {
            out.push(
                b.schema().fields().iter().map(|f| o.get(f.name()).cloned().unwrap_or(Value::Null)).collect(),
            );
        }
    }
    out
}

fn sorted(mut rows: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    let key = |r: &Vec<Value>| -> String {
        r.iter()
            .map(|v| if v.is_f64() { format!("{:.6}", v.as_f64().unwrap()) } else { v.to_string() })
            .collect()
    };
    rows.sort_by_key(key);
    rows
}

/// How far floats may differ, relatively. DataFusion's `percentile_cont` truncates its
/// interpolation weight to 10⁻⁶ (datafusion-functions-aggregate 55, `INTERPOLATION_PRECISION`)
/// where DuckDB interpolates exactly: a 90th percentile of days can differ by a few seconds.
const TOLERANCE: f64 = 1e-5;

fn same_row(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= TOLERANCE * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        })
}
