//! Deadline checks: every rule over ten million cases (and their users, requests and
//! breaches) as of one instant, against Cedar asked about every subject with its real
//! instants, in one run. The per-subject twin runs on a store of the real IMI's size and is
//! compared for identical findings before any time is reported.
//!
//! `cargo bench --bench check -- [CASES]` (default 10,000,000).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common.rs"]
mod common;

use std::time::Instant;

use common::*;
use custos_engine::Engine;
use custos_engine::deadline::{self, Defaults, Options};

fn main() {
    let cases: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(if smoke() { 10_000.0 } else { 10_000_000.0 });
    // The generator writes about 330,000 cases per unit of scale (60,000 a year over 5.5 years).
    let scale = (cases / 330_000.0 * 1000.0).round() / 1000.0;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let options = Options {
        as_of: custos_engine::import::parse_timestamp("2026-07-01").unwrap(),
        horizon: 30 * 86_400_000_000,
        defaults: Defaults::default(),
        registers_only: false,
    };

    // The twin, on the real IMI's size.
    let small = Engine::open(store_at(1000, if smoke() { 0.02 } else { 1.0 })).unwrap();
    let fast = rt.block_on(small.check(&options)).unwrap();
    let started = Instant::now();
    let slow = rt
        .block_on(deadline::check_naive(small.store(), small.deadline_policies().clone(), &options))
        .unwrap();
    let naive_secs = started.elapsed().as_secs_f64();
    assert!(fast.findings == slow.findings, "the check and its per-subject twin disagree");
    let small_times = time(3, || rt.block_on(small.check(&options)).unwrap());
    let (small_m, _, _) = stats(&small_times);

    let big = Engine::open(store_at(1000, scale)).unwrap();
    let mut result = None;
    // The peak below is the big check's own, not the twin's.
    reset_peak();
    let times = time(3, || result = Some(rt.block_on(big.check(&options)).unwrap()));
    let peak = peak_mib().unwrap_or(0.0);
    let result = result.unwrap();
    let (m, min, max) = stats(&times);
    let text = format!(
        "## Deadline checks as of 2026-07-01\n\nMachine: {}\n\n\
         | store | subjects | Custos check median s | min s | max s | subjects/s | Cedar evaluations | peak RSS MiB |\n\
         |---|---|---|---|---|---|---|---|\n\
         | {} cases | {} | {m:.2} | {min:.2} | {max:.2} | {:.0} | {} | {peak:.0} |\n\n\
         Against Cedar asked once per subject with its real instants, on the real IMI's size ({} subjects): \
         per-subject {naive_secs:.2} s, Custos {small_m:.2} s, ratio {:.0}×, findings identical ({}).\n\n\
         Target: 10 M cases as of any date in ≤ 10 s. Command: `cargo bench --bench check -- {cases}`.\n",
        machine(),
        big.store().rows("cases"),
        result.subjects,
        result.subjects as f64 / m,
        result.evaluations,
        slow.subjects,
        naive_secs / small_m,
        slow.findings.len(),
    );
    report("check", &text);
}
