//! The need-to-know audit end to end (Parquet in, findings out) against the naive loop that
//! builds every event's request and entities and calls Cedar once per event, in one run, on
//! the same store. The naive loop runs on a sample window and is extrapolated; on that
//! window both must give identical findings before any time is reported.
//!
//! `cargo bench --bench audit -- [EVENTS...]` (default 10,000,000; add 100000000 for the
//! large run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common.rs"]
mod common;

use std::time::Instant;

use common::*;
use custos_engine::Engine;
use custos_engine::audit::{self, Window};

fn main() {
    let mut sizes: Vec<u64> =
        std::env::args().skip(1).filter_map(|a| a.replace('_', "").parse().ok()).collect();
    if sizes.is_empty() {
        sizes.push(if smoke() { 20_000 } else { 10_000_000 });
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut text = format!(
        "## Need-to-know audit: end to end against Cedar once per event\n\nMachine: {}\n\n\
         | events | Custos audit median s | min s | max s | first run in the process s (every file's SHA-256 checked) | events/s | peak RSS MiB | scenes | naive events/s (sample) | speed-up |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        machine()
    );
    for events in sizes {
        let engine = Engine::open(store(events)).unwrap();
        let all = Window { from: None, to: None };
        let mut result = None;
        // The peak below is the audit's own, not an earlier size's or loop's.
        reset_peak();
        // The first audit of a process checks every file's digest (`Store::checked`), as
        // every `custos audit` does; the repetitions after it find them checked.
        let started = Instant::now();
        std::hint::black_box(rt.block_on(engine.audit(all)).unwrap());
        let first = started.elapsed().as_secs_f64();
        let times = time(3, || result = Some(rt.block_on(engine.audit(all)).unwrap()));
        let peak = peak_mib().unwrap_or(0.0);
        let result = result.unwrap();
        let (m, min, max) = stats(&times);
        // The naive loop on the first two months, checked against the audit on them.
        let sample = Window { from: None, to: custos_engine::import::parse_timestamp("2021-03-01") };
        let fast = rt.block_on(engine.audit(sample)).unwrap();
        let started = Instant::now();
        let slow = audit::naive(engine.store(), engine.judge(), sample).unwrap();
        let naive_secs = started.elapsed().as_secs_f64();
        assert_eq!(fast.events, slow.events);
        assert!(fast.findings == slow.findings, "the audit and the naive loop disagree");
        // The naive loop's time includes loading the tables; so does the audit's.
        let naive_rate = slow.events as f64 / naive_secs;
        let rate = result.events as f64 / m;
        text.push_str(&format!(
            "| {} | {m:.2} | {min:.2} | {max:.2} | {first:.2} | {rate:.0} | {peak:.0} | {} | {naive_rate:.0} ({} events) | {:.0}× |\n",
            result.events,
            result.scenes,
            slow.events,
            rate / naive_rate
        ));
    }
    text.push_str(
        "\nTargets: ≥ 5,000,000 events/s end to end and ≥ 50× the naive loop, decisions identical.\n\
         Command: `cargo bench --bench audit -- 10000000 100000000`.\n",
    );
    report("audit", &text);
}
