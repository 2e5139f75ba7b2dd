//! Analytics: every indicator, benchmarking, dashboard and report query, and typical ad-hoc
//! queries, run by Custos (DataFusion, in process) and by DuckDB on the same Parquet files of
//! one store with the same threads and memory limit, in one run. Results must be equal before
//! any time is reported (`benches/analytics_compare.rs`).
//!
//! `cargo bench --bench analytics -- [EVENTS]` (default 10,000,000 access events).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common.rs"]
mod common;
#[path = "analytics_compare.rs"]
mod compare;

use common::*;
use compare::*;

fn main() {
    let events: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(if smoke() { 20_000 } else { 10_000_000 });
    let (reps, adhoc_reps) = if smoke() { (1, 1) } else { (20, 5) };
    let runs = compare(events, reps, adhoc_reps).runs;
    let mut text = format!(
        "## Analytics: {events} access events, indicators of {YEAR}\n\n\
         Machine: {}. Both engines use {} threads and read the same Parquet files of one store; \
         every result compared equal (floats to 10⁻⁵ relative: DataFusion's `percentile_cont` truncates its interpolation weight to 10⁻⁶) before timing was reported.\n\n\
         | query | kind | Custos median ms | Custos p95 ms | DuckDB median ms | DuckDB p95 ms | time ratio Custos / DuckDB |\n\
         |---|---|---|---|---|---|---|\n",
        machine(),
        threads()
    );
    for r in &runs {
        let (cm, cp) = (median(&r.custos), p95(&r.custos));
        let (dm, dp) = (median(&r.duckdb), p95(&r.duckdb));
        text.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |\n",
            r.name,
            r.kind,
            cm * 1e3,
            cp * 1e3,
            dm * 1e3,
            dp * 1e3,
            cm / dm
        ));
    }
    text.push_str(&format!(
        "\nTargets: ad-hoc queries within 1.5× of DuckDB; every dashboard query ≤ 200 ms at p95 on 100 M events \
         ({reps} runs after a warm-up; ad-hoc {adhoc_reps}). `request_facts` is materialised once per \
         session and read by `indicators` and `benchmark`.\n\
         Command: `cargo bench --bench analytics -- {events}`.\n"
    ));
    report("analytics", &text);
}
