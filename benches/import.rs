//! Import throughput: `custos import` (full validation, atomic commit) against DuckDB reading
//! the same CSV files and writing Parquet with the same threads, in one run.
//!
//! `cargo bench --bench import -- [EVENTS]` (default 5,000,000 access events).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common.rs"]
mod common;

use common::*;

fn main() {
    let events: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(if smoke() { 20_000 } else { 5_000_000 });
    let export = export(events);
    let python = python();
    let tmp = data_dir().join("import-run");
    let mut rows = 0u64;
    let custos_times = time(3, || {
        let _ = std::fs::remove_dir_all(&tmp);
        let mut c = custos();
        c.args(["import", "--store", tmp.to_str().unwrap(), export.to_str().unwrap()]);
        let out = check(c);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        rows = text.lines().filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()).sum();
    });
    let duck_out = data_dir().join("import-duckdb");
    let mut duck_rows = 0u64;
    let duck_times: Vec<_> = (0..4)
        .map(|_| {
            let _ = std::fs::remove_dir_all(&duck_out);
            let mut c = std::process::Command::new(&python);
            c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/duckdb_import.py"));
            c.args([export.to_str().unwrap(), duck_out.to_str().unwrap(), &threads().to_string()]);
            let out = check(c);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            duck_rows = v["rows"].as_u64().unwrap();
            std::time::Duration::from_secs_f64(v["seconds"].as_f64().unwrap())
        })
        .skip(1)
        .collect();
    assert_eq!(rows, duck_rows, "custos and DuckDB read different numbers of rows");
    let (cm, cmin, cmax) = stats(&custos_times);
    let (dm, dmin, dmax) = stats(&duck_times);
    let text = format!(
        "## Import: {rows} rows from CSV ({events} access events)\n\n\
         Machine: {}\n\n\
         | tool | median s | min s | max s | rows/s (median) | time ratio to Custos |\n\
         |---|---|---|---|---|---|\n\
         | Custos `import` (full validation, atomic commit) | {cm:.2} | {cmin:.2} | {cmax:.2} | {:.0} | 1.00 |\n\
         | DuckDB CSV → Parquet ({} threads, no validation) | {dm:.2} | {dmin:.2} | {dmax:.2} | {:.0} | {:.2} |\n\n\
         Target: ≥ 1,000,000 rows/s with full validation. Command: `cargo bench --bench import -- {events}`.\n",
        machine(),
        rows as f64 / cm,
        threads(),
        rows as f64 / dm,
        dm / cm,
    );
    report("import", &text);
}
