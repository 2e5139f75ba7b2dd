//! Reports: `custos report` for one year of a store of generated events (the annual report
//! and the report to the EDPS, HTML and PDF), end to end. No peer writes these reports; the
//! target is absolute: a year of 100 M events in ≤ 60 s.
//!
//! `cargo bench --bench report -- [EVENTS]` (default 100,000,000 access events).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common.rs"]
mod common;

use common::*;

fn main() {
    let events: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(if smoke() { 20_000 } else { 100_000_000 });
    let store = audited_store(events);
    let s = store.to_str().unwrap();
    let out = data_dir().join("report-run");
    let reps = if smoke() { 1 } else { 3 };
    let mut text = format!(
        "## Reports: a year (2025) of a store of {events} access events\n\nMachine: {}.\n\n\
         | report | median s | min s | max s |\n|---|---|---|---|\n",
        machine()
    );
    for kind in ["annual", "edps"] {
        let times = time(reps, || {
            let mut c = custos();
            c.args([
                "report",
                "--store",
                s,
                "--year",
                "2025",
                "--out",
                out.to_str().unwrap(),
                "--kind",
                kind,
                "--format",
                "both",
            ]);
            check(c);
        });
        let (m, lo, hi) = stats(&times);
        text.push_str(&format!("| {kind} (HTML and PDF) | {m:.2} | {lo:.2} | {hi:.2} |\n"));
    }
    text.push_str(&format!(
        "\nTarget: ≤ 60 s for a year of 100 M events. Command: `cargo bench --bench report -- {events}`.\n"
    ));
    report("report", &text);
}
