//! What the whole-command benchmarks share: data sets, timing, peers, the results table.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Whether this is a smoke run: `cargo test` runs the benchmarks without `--bench`, at the
/// smallest size, so that they cannot rot, and records nothing.
pub fn smoke() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// Where generated data sets are kept between runs.
pub fn data_dir() -> PathBuf {
    let base = std::env::var_os("CUSTOS_BENCH_DATA").map(PathBuf::from).unwrap_or_else(|| {
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| "target".into());
        target.join(if smoke() { "bench-smoke" } else { "bench-data" })
    });
    std::fs::create_dir_all(&base).unwrap();
    base
}

/// The `custos` binary built with the benchmark profile.
pub fn custos() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_custos"));
    c.env("CUSTOS_LOG", "error");
    c
}

/// Runs a command, failing loudly with its output if it fails.
pub fn check(mut c: Command) -> std::process::Output {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{:?} failed:\n{}", c, String::from_utf8_lossy(&out.stderr));
    out
}

/// A synthetic export with `events` access events (generated once, then reused).
pub fn export(events: u64) -> PathBuf {
    export_at(events, (events as f64 / 6_600_000.0).clamp(0.02, 1.0))
}

/// A synthetic export with `events` access events at `scale` (1.0: the real IMI's size).
pub fn export_at(events: u64, scale: f64) -> PathBuf {
    let dir = data_dir().join(format!("export-{events}-{scale}"));
    // An export generated before its answer key said what it is would be refused by import.
    if !custos_engine::import::is_answer_key(&dir.join("labels")) {
        eprintln!("generating {events} events at scale {scale} into {} …", dir.display());
        let mut c = custos();
        c.args(["generate", "--out", dir.to_str().unwrap(), "--seed", "42"]);
        c.args(["--scale", &format!("{scale:.3}"), "--events", &events.to_string()]);
        check(c);
    }
    dir
}

/// A store holding [`export`] (imported once, then reused).
pub fn store(events: u64) -> PathBuf {
    store_at(events, (events as f64 / 6_600_000.0).clamp(0.02, 1.0))
}

/// A store holding [`export_at`] (imported once, then reused).
pub fn store_at(events: u64, scale: f64) -> PathBuf {
    let dir = data_dir().join(format!("store-{events}-{scale}"));
    // A store an earlier Custos wrote (in another layout) is imported again.
    if dir.join("manifest.jsonl").exists() && custos_engine::store::Store::is_outdated(&dir).unwrap_or(true) {
        eprintln!("{} was written by an earlier Custos: importing again", dir.display());
        std::fs::remove_dir_all(&dir).unwrap();
    }
    if !dir.join("manifest.jsonl").exists() {
        let export = export_at(events, scale);
        eprintln!("importing into {} …", dir.display());
        let mut c = custos();
        c.args(["import", "--store", dir.to_str().unwrap(), export.to_str().unwrap()]);
        check(c);
    }
    dir
}

/// A store holding [`export`], audited (once, then reused).
pub fn audited_store(events: u64) -> PathBuf {
    let dir = store(events);
    if !dir.join("data/ntk_findings").exists() {
        eprintln!("auditing {events} events …");
        let mut c = custos();
        c.args(["audit", "--store", dir.to_str().unwrap()]);
        check(c);
    }
    // Accounts kept by an earlier Custos outside the chain (the bench's own): recorded.
    if dir.join("accounts.json").exists() {
        let mut c = custos();
        c.args(["user", "adopt", "--store", dir.to_str().unwrap()]);
        check(c);
    }
    dir
}

/// Python with the peers installed (by `benches/setup.sh`).
pub fn python() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/setup.sh");
    let out = check({
        let mut c = Command::new("bash");
        c.arg(script);
        c
    });
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Threads the peers may use: the same as Custos (every core).
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Times `f` `reps` times after one warm-up; returns the durations.
pub fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> Vec<Duration> {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect()
}

/// Median, min and max, in seconds.
pub fn stats(d: &[Duration]) -> (f64, f64, f64) {
    let mut s: Vec<f64> = d.iter().map(Duration::as_secs_f64).collect();
    s.sort_by(f64::total_cmp);
    (s[s.len() / 2], s[0], s[s.len() - 1])
}

/// The peak resident memory of this process so far, in MiB (Linux `VmHWM`).
pub fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Starts [`peak_mib`] again from the memory this process holds now (Linux: `5` written to
/// `/proc/self/clear_refs` resets `VmHWM`), so that a measurement's peak is its own and not
/// an earlier one's. Returns whether the reset took.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A description of this machine for the results.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<f64>().unwrap_or(0.0))
        })
        .unwrap_or(0.0);
    format!("{} cores ({cpu}), {:.0} GiB", threads(), mem / 1024.0 / 1024.0)
}

/// Appends a results table to `target/bench-results/NAME.md` and prints it.
pub fn report(name: &str, text: &str) {
    println!("{text}");
    if smoke() {
        println!("(smoke run at the smallest size: timings are not recorded)");
        return;
    }
    let dir = data_dir().join("../bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.md")), text).unwrap();
}
