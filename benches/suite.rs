//! The benchmark suite: Custos side by side with what a supervisor would otherwise use, on the
//! same data and the same machine, in one run, with the answers compared before any time is
//! reported. Writes `bench-results/suite.md` (the table BENCHMARKS.md shows).
//!
//! ```text
//! cargo bench --features peers --bench suite             # 1 M and 10 M access events
//! cargo bench --features peers --bench suite -- --large  # … and 100 M (about 15 GB of disk, an hour more)
//! ```
//!
//! | comparison | Custos | peers |
//! |---|---|---|
//! | need-to-know decisions | `audit::audit` | the Rust loop calling Cedar once per event; cedarpy once per event (Python); the same rules in Rego on regorus, behind the audit's own deduplication |
//! | analytics | the production queries in DataFusion | DuckDB on the same Parquet files |
//! | import | `custos import` with validation | DuckDB reading the CSV and writing Parquet |
//!
//! Each measurement runs in a child process of its own (this binary with `--child`), so that
//! its peak memory is its own. `cargo test` runs the suite once at the smallest size, with one
//! repetition, so that it cannot rot; nothing is timed against a target there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "analytics_compare.rs"]
mod analytics;
#[path = "common.rs"]
mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use custos_engine::Engine;
use custos_engine::audit::{self, Audit, Window};
use custos_engine::decision::{Scene, Verdict};
use custos_engine::store::Store;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The sizes of the run: access events.
const SIZES: [u64; 2] = [1_000_000, 10_000_000];
const LARGE: u64 = 100_000_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let kind = args[i + 1].as_str();
        let events: u64 = args[i + 2].parse().unwrap();
        let rest: Vec<String> = args[i + 3..].iter().filter(|a| !a.starts_with("--")).cloned().collect();
        let out = child(kind, events, &rest);
        println!("{out}");
        return;
    }
    let mut sizes = SIZES.to_vec();
    if smoke() {
        sizes.truncate(1);
    } else if args.iter().any(|a| a == "--large") {
        sizes.push(LARGE);
    }
    let python = python();
    let mut lines: Vec<Line> = Vec::new();
    for &events in &sizes {
        eprintln!("== {events} access events");
        lines.extend(need_to_know(events, &python));
        lines.extend(analytics_lines(events));
        lines.extend(import(events, &python));
    }
    report("suite", &render(&sizes, &lines));
}

/// Repetitions after the warm-up.
fn reps(events: u64) -> usize {
    if smoke() {
        1
    } else if events >= LARGE {
        2
    } else {
        5
    }
}

/// One row of the results table.
struct Line {
    section: &'static str,
    events: u64,
    tool: String,
    /// What was measured, when it is not the whole data set.
    scope: String,
    /// Seconds of each timed run.
    seconds: Vec<f64>,
    /// Units of work in one run (events judged, rows imported; 1 for a query).
    units: f64,
    peak_mib: f64,
    /// How the answers were compared.
    agreement: String,
}

impl Line {
    fn per_unit(&self) -> f64 {
        stats(&self.durations()).0 / self.units.max(1.0)
    }
    fn durations(&self) -> Vec<std::time::Duration> {
        self.seconds.iter().map(|s| std::time::Duration::from_secs_f64(*s)).collect()
    }
}

/// Runs this binary as a child measuring `kind`; returns its JSON.
fn run_child(kind: &str, events: u64, extra: &[String]) -> Value {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--child", kind, &events.to_string()]).args(extra);
    if !smoke() {
        c.arg("--bench");
    }
    let out = check(c);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn seconds(v: &Value) -> Vec<f64> {
    v["seconds"].as_array().unwrap().iter().map(|s| s.as_f64().unwrap()).collect()
}

/// For each `n` of `counts`, the first instant after the first `n` granted events (or
/// `None`: all of them), from one session and one pass over the access log.
fn cutoffs<const N: usize>(store: &Store, counts: [u64; N]) -> [Option<i64>; N] {
    use arrow::array::AsArray;
    use arrow::datatypes::TimestampMicrosecondType;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let largest = counts.iter().copied().max().unwrap_or(0);
    let batches = rt.block_on(async {
        let ctx = custos_engine::query::session(store).await.unwrap();
        let sql = format!("SELECT ts FROM access_log WHERE outcome = 'granted' ORDER BY ts LIMIT {largest}");
        ctx.sql(&sql).await.unwrap().collect().await.unwrap()
    });
    let first: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<TimestampMicrosecondType>().values().iter().copied())
        .collect();
    counts.map(|n| first.get((n as usize).checked_sub(1)?).map(|t| t + 1))
}

/// The SHA-256 of the sorted lines `event_id<TAB>rule<LF>`: findings compared across engines.
fn digest(a: &Audit) -> String {
    let mut lines: Vec<String> =
        a.findings.iter().map(|f| format!("{}\t{}\n", f.event_id.as_deref().unwrap_or(""), f.rule)).collect();
    lines.sort();
    hex::encode(Sha256::digest(lines.concat().as_bytes()))
}

fn need_to_know(events: u64, python: &str) -> Vec<Line> {
    let store_dir = store(events);
    let store = Store::open(&store_dir).unwrap();
    let (naive_n, cedarpy_n) = if smoke() { (5_000, 2_000) } else { (300_000, 30_000) };
    let [naive_to, py_to] = cutoffs(&store, [naive_n, cedarpy_n]);
    let arg = |t: Option<i64>| t.map_or("all".to_owned(), |t| t.to_string());

    eprintln!("need-to-know: Custos audit …");
    let custos = run_child("audit", events, &[arg(naive_to), arg(py_to)]);
    let full = custos["digest"].as_str().unwrap().to_owned();
    let windows: Vec<String> =
        custos["digests"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_owned()).collect();
    let judged = custos["units"].as_f64().unwrap();
    let scenes = custos["scenes"].as_u64().unwrap();
    let mut lines = vec![Line {
        section: "need-to-know",
        events,
        tool: "Custos `audit` (DataFusion facts, Cedar once per distinct scene)".into(),
        scope: format!("all {judged} granted events; {scenes} Cedar evaluations"),
        seconds: seconds(&custos),
        units: judged,
        peak_mib: custos["peak_mib"].as_f64().unwrap(),
        agreement: format!("{} findings", custos["findings"]),
    }];

    eprintln!("need-to-know: the Rust loop, Cedar once per event …");
    let naive = run_child("naive", events, &[arg(naive_to)]);
    assert_eq!(naive["digest"].as_str().unwrap(), windows[0], "the naive loop and the audit disagree");
    lines.push(Line {
        section: "need-to-know",
        events,
        tool: "Rust loop, `cedar-policy` `Authorizer` once per event".into(),
        scope: format!("first {} granted events (rate extrapolated)", naive["units"]),
        seconds: seconds(&naive),
        units: naive["units"].as_f64().unwrap(),
        peak_mib: naive["peak_mib"].as_f64().unwrap(),
        agreement: "same findings as Custos on the sample".into(),
    });

    eprintln!("need-to-know: cedarpy once per event …");
    let spec = cedarpy_spec(&store, py_to);
    let spec_path = data_dir().join(format!("cedarpy-spec-{events}.json"));
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let py = check({
        let mut c = Command::new(python);
        c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/cedarpy_ntk.py")).arg(&spec_path);
        c
    });
    let py: Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(py["digest"].as_str().unwrap(), windows[1], "cedarpy and the audit disagree");
    lines.push(Line {
        section: "need-to-know",
        events,
        tool: "Python, `cedarpy.is_authorized` once per event".into(),
        scope: format!("first {} granted events (rate extrapolated)", py["events"]),
        seconds: vec![py["seconds"].as_f64().unwrap()],
        units: py["events"].as_f64().unwrap(),
        peak_mib: py["peak_mib"].as_f64().unwrap(),
        agreement: "same findings as Custos on the sample".into(),
    });

    eprintln!("need-to-know: the rules in Rego on regorus …");
    let rego = run_child("regorus", events, &[]);
    assert_eq!(rego["digest"].as_str().unwrap(), full, "regorus and the audit disagree");
    lines.push(Line {
        section: "need-to-know",
        events,
        tool: "the rules in Rego (`benches/peers/ntk.rego`), `regorus` once per distinct scene".into(),
        scope: format!("all {judged} granted events; {} Rego evaluations", rego["scenes"]),
        seconds: seconds(&rego),
        units: rego["units"].as_f64().unwrap(),
        peak_mib: rego["peak_mib"].as_f64().unwrap(),
        agreement: "same findings as Custos".into(),
    });
    lines
}

/// What the cedarpy script reads: the store's files, the domains as Custos reads them (the
/// imported table completed with the annex defaults), the policies and the schema.
fn cedarpy_spec(store: &Store, to: Option<i64>) -> Value {
    use arrow::array::{Array, AsArray};
    let tables: serde_json::Map<String, Value> =
        ["authorities", "users", "cases", "case_participants", "access_log"]
            .iter()
            .map(|t| ((*t).to_owned(), json!(analytics::absolute(store.paths(t).unwrap()))))
            .collect();
    let d = custos_engine::query::effective_domains(store).unwrap();
    let codes = d.column_by_name("domain").unwrap().as_string::<i32>();
    let commission = d.column_by_name("commission_participates").unwrap().as_boolean();
    let countries = d.column_by_name("third_countries").unwrap().as_list::<i32>();
    let domains: Vec<Value> = (0..d.num_rows())
        .map(|r| {
            let list: Vec<String> = if countries.is_null(r) {
                Vec::new()
            } else {
                countries.value(r).as_string::<i32>().iter().flatten().map(str::to_owned).collect()
            };
            json!([codes.value(r), !commission.is_null(r) && commission.value(r), list])
        })
        .collect();
    let policies = custos_policies::Policies::need_to_know().unwrap();
    let texts: Vec<Value> = policies.rules().iter().map(|r| json!([r.id, r.text])).collect();
    json!({
        "tables": tables,
        "domains": domains,
        "policies": texts,
        "schema": custos_policies::SCHEMA,
        "to_micros": to,
    })
}

fn analytics_lines(events: u64) -> Vec<Line> {
    eprintln!("analytics: Custos and DuckDB …");
    let v = run_child("analytics", events, &[]);
    let mut lines = Vec::new();
    for r in v["runs"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let kind = r["kind"].as_str().unwrap();
        for (tool, key, peak) in [
            ("Custos (DataFusion)", "custos", v["peak_mib"].as_f64().unwrap()),
            ("DuckDB", "duckdb", v["duckdb_peak_mib"].as_f64().unwrap()),
        ] {
            lines.push(Line {
                section: "analytics",
                events,
                tool: format!("{tool}: {name}"),
                scope: kind.to_owned(),
                seconds: seconds(&json!({"seconds": r[key]})),
                units: 1.0,
                peak_mib: peak,
                agreement: "every row equal".into(),
            });
        }
    }
    lines
}

fn import(events: u64, python: &str) -> Vec<Line> {
    eprintln!("import: Custos and DuckDB …");
    let export = export(events);
    let custos = run_child("import", events, &[]);
    let rows = custos["units"].as_f64().unwrap();
    let out = data_dir().join(format!("suite-import-duckdb-{events}"));
    let mut duck = Vec::new();
    let mut duck_rows = 0.0;
    let mut duck_peak: f64 = 0.0;
    for _ in 0..=reps(events) {
        let _ = std::fs::remove_dir_all(&out);
        let o = check({
            let mut c = Command::new(python);
            c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/duckdb_import.py"));
            c.args([export.to_str().unwrap(), out.to_str().unwrap(), &threads().to_string()]);
            c
        });
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        duck.push(v["seconds"].as_f64().unwrap());
        duck_rows = v["rows"].as_f64().unwrap();
        duck_peak = duck_peak.max(v["peak_mib"].as_f64().unwrap());
    }
    let _ = std::fs::remove_dir_all(&out);
    duck.remove(0);
    assert_eq!(rows, duck_rows, "Custos and DuckDB read different numbers of rows");
    vec![
        Line {
            section: "import",
            events,
            tool: "Custos `import` (types, values, references, keys; atomic commit)".into(),
            scope: format!("{rows} rows of every table from CSV"),
            seconds: seconds(&custos),
            units: rows,
            peak_mib: custos["peak_mib"].as_f64().unwrap(),
            agreement: "same rows".into(),
        },
        Line {
            section: "import",
            events,
            tool: "DuckDB CSV → Parquet (no validation)".into(),
            scope: format!("{duck_rows} rows"),
            seconds: duck,
            units: duck_rows,
            peak_mib: duck_peak,
            agreement: "same rows".into(),
        },
    ]
}

/// The measurement of one child: prints one line of JSON.
fn child(kind: &str, events: u64, rest: &[String]) -> Value {
    let n = reps(events);
    let window = |s: &str| Window { from: None, to: s.parse().ok() };
    let all = Window { from: None, to: None };
    match kind {
        "audit" | "regorus" => {
            let opened = Engine::open(store(events)).unwrap();
            let (store, judge) = (opened.store(), opened.judge());
            let rt = tokio::runtime::Runtime::new().unwrap();
            let mut rego = (kind == "regorus").then(regorus_engine);
            let mut result = None;
            let times = time(n, || {
                result = Some(match rego.as_mut() {
                    None => rt.block_on(audit::audit(store, judge, all)).unwrap(),
                    Some(engine) => rt
                        .block_on(audit::audit_by(
                            store,
                            judge,
                            all,
                            |s| rego_decide(engine, s),
                            &Default::default(),
                        ))
                        .unwrap(),
                });
            });
            let result = result.unwrap();
            let peak = peak_mib();
            let digests: Vec<String> = rest
                .iter()
                .map(|to| digest(&rt.block_on(audit::audit(store, judge, window(to))).unwrap()))
                .collect();
            json!({
                "seconds": times.iter().map(|d| d.as_secs_f64()).collect::<Vec<_>>(),
                "units": result.events, "scenes": result.scenes, "findings": result.findings.len(),
                "digest": digest(&result), "digests": digests, "peak_mib": peak,
            })
        }
        "naive" => {
            let opened = Engine::open(store(events)).unwrap();
            let (store, judge) = (opened.store(), opened.judge());
            let started = std::time::Instant::now();
            let result = audit::naive(store, judge, window(&rest[0])).unwrap();
            let secs = started.elapsed().as_secs_f64();
            json!({"seconds": [secs], "units": result.events, "digest": digest(&result), "peak_mib": peak_mib()})
        }
        "import" => {
            let export = export(events);
            let inputs = custos_engine::import::inputs(&[export], None).unwrap();
            let tmp = data_dir().join(format!("suite-import-{events}"));
            let mut rows = 0;
            let times = time(n, || {
                let _ = std::fs::remove_dir_all(&tmp);
                let r = custos_engine::import::import(&tmp, &inputs, "2026-01-01T00:00:00Z").unwrap();
                rows = r.tables.values().map(|c| c.read).sum::<u64>();
            });
            let _ = std::fs::remove_dir_all(&tmp);
            json!({
                "seconds": times.iter().map(|d| d.as_secs_f64()).collect::<Vec<_>>(),
                "units": rows, "peak_mib": peak_mib(),
            })
        }
        "analytics" => {
            let c = analytics::compare(events, n.max(if smoke() { 1 } else { 10 }), n);
            let runs: Vec<Value> = c
                .runs
                .iter()
                .map(|r| {
                    let s = |d: &[std::time::Duration]| d.iter().map(|d| d.as_secs_f64()).collect::<Vec<_>>();
                    json!({"name": r.name, "kind": r.kind, "custos": s(&r.custos), "duckdb": s(&r.duckdb)})
                })
                .collect();
            json!({"runs": runs, "peak_mib": peak_mib(), "duckdb_peak_mib": c.duckdb_peak_mib})
        }
        other => panic!("no child measurement is called {other}"),
    }
}

/// A regorus engine holding the need-to-know rules in Rego.
fn regorus_engine() -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    let rego = include_str!("peers/ntk.rego");
    engine.add_policy("ntk.rego".into(), rego.into()).unwrap();
    engine
}

/// Asks regorus about a scene: the set `data.ntk.broken`.
fn rego_decide(engine: &mut regorus::Engine, s: &Scene<'_>) -> custos_engine::Result<Verdict> {
    let resource = match &s.case {
        None => Value::Null,
        Some(c) => json!({
            "id": c.id, "domain": c.domain, "commission_participates": c.commission_participates,
            "third_countries": c.third_countries, "personal_data": c.personal_data, "blocked": c.blocked,
            "deleted": c.deleted, "subject_consent": c.subject_consent,
            "participants": c.participants.iter().map(|p| p.0).collect::<Vec<_>>(),
        }),
    };
    let input = json!({
        "principal": {
            "id": s.user, "active": s.user_active, "domains": s.user_domains,
            "authority": {"id": s.authority, "kind": s.authority_kind, "member_state": s.member_state},
        },
        "action": s.action,
        "context": {"purpose": s.purpose, "legal_ground": s.legal_ground},
        "resource": resource,
    });
    let fail = |e: String| custos_engine::Error::Usage(format!("regorus: {e}"));
    engine.set_input(regorus::Value::from_json_str(&input.to_string()).map_err(|e| fail(e.to_string()))?);
    let v = engine.eval_rule("data.ntk.broken".into()).map_err(|e| fail(e.to_string()))?;
    let json: Value = serde_json::from_str(&v.to_json_str().map_err(|e| fail(e.to_string()))?)?;
    let mut broken: Vec<String> = match json {
        Value::Array(items) => items.into_iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    broken.sort();
    Ok(Verdict { broken })
}

/// The results table, grouped by size and comparison.
fn render(sizes: &[u64], lines: &[Line]) -> String {
    let mut t = format!(
        "## Benchmark suite\n\nMachine: {}. Custos and every peer use {} threads; analytics engines \
         the same memory limit ({} MiB). Medians of the timed runs after a warm-up; the ratio is the \
         peer's time per unit of work over Custos's (> 1: the peer is slower).\n",
        machine(),
        threads(),
        analytics::MEMORY_LIMIT_MIB
    );
    for &events in sizes {
        for section in ["need-to-know", "analytics", "import"] {
            let rows: Vec<&Line> =
                lines.iter().filter(|l| l.events == events && l.section == section).collect();
            if rows.is_empty() {
                continue;
            }
            t.push_str(&format!(
                "\n### {section}, {events} access events\n\n\
                 | tool | measured on | median s | min s | max s | ratio to Custos | peak MiB | agreement |\n\
                 |---|---|---|---|---|---|---|---|\n"
            ));
            for (i, l) in rows.iter().enumerate() {
                // The Custos line a peer is compared with: the first of the section, or for
                // analytics the Custos run of the same query (the line before).
                let base = if section == "analytics" { rows[i - i % 2] } else { rows[0] };
                let (m, min, max) = stats(&l.durations());
                t.push_str(&format!(
                    "| {} | {} | {m:.3} | {min:.3} | {max:.3} | {:.2} | {:.0} | {} |\n",
                    l.tool,
                    l.scope,
                    l.per_unit() / base.per_unit(),
                    l.peak_mib,
                    l.agreement
                ));
            }
        }
    }
    t.push_str(
        "\nCommand: `cargo bench --features peers --bench suite` (add `-- --large` for 100 M events). \
         See BENCHMARKS.md for what each peer does differently.\n",
    );
    t
}
