//! `custos`: the command line, a thin layer over the Custos crates.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use custos_engine::{Error, import, store::Store, synthetic};

/// Data-protection compliance engine for the EU Internal Market Information System (IMI).
#[derive(Parser)]
#[command(name = "custos", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a small realistic sample store (if absent) and show what it holds.
    Demo {
        /// Where the demo's export and store live.
        #[arg(long, default_value_os_t = default_demo_dir())]
        dir: PathBuf,
    },
    /// Write a synthetic IMI export: one CSV file per table, and labelled violations under `labels/`.
    Generate {
        /// The directory to write (created if absent).
        #[arg(long)]
        out: PathBuf,
        /// The random seed: the same arguments always give byte-identical files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Size relative to the real IMI (1.0: about 12,600 authorities, 44,000 users, 60,000 exchanges a year).
        #[arg(long, default_value_t = 0.02)]
        scale: f64,
        /// Access events to write (default: about 20 per case).
        #[arg(long)]
        events: Option<u64>,
    },
    /// Validate files named after their tables and import them into a store, atomically.
    Import {
        /// The store (created if absent).
        #[arg(long)]
        store: PathBuf,
        /// The table of a single file not named after it.
        #[arg(long)]
        table: Option<String>,
        /// Files (`cases.csv`, `access_log.parquet`, `users.jsonl`, `holidays.arrow`, …) or directories of them.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Check the store's integrity chain and say exactly what was altered, added or removed.
    Verify {
        /// The store.
        #[arg(long)]
        store: PathBuf,
    },
}

fn default_demo_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("custos/demo")
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CUSTOS_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            let user = e.chain().any(|c| c.downcast_ref::<Error>().is_some_and(Error::is_user_error));
            ExitCode::from(if user { 2 } else { 1 })
        }
    }
}

fn now() -> String {
    chrono_now()
}

/// The wall clock, read once per command: the one clock the commands use.
fn chrono_now() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    custos_engine::manifest::rfc3339(d.as_secs() as i64)
}

fn progress(msg: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("{msg}");
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Generate { out, seed, scale, events } => {
            let started = Instant::now();
            progress(&format!("generating into {} …", out.display()));
            let s = synthetic::generate(&out, &synthetic::Params { seed, scale, events })?;
            for (table, rows) in &s.rows {
                println!("{table:<18} {rows:>12} rows");
            }
            println!("{:<18} {:>12} labelled (labels/violations.csv)", "violations", s.violations);
            progress(&format!("done in {:.1} s", started.elapsed().as_secs_f64()));
        }
        Command::Import { store, table, inputs } => {
            let inputs = import::inputs(&inputs, table.as_deref())?;
            let started = Instant::now();
            let report = import::import(&store, &inputs, &now())?;
            print_import(&report, started);
        }
        Command::Verify { store } => {
            let v = Store::verify(&store)?;
            for p in &v.problems {
                println!("ALTERED  {p}");
            }
            for f in &v.interrupted {
                println!(
                    "note     `{f}` was left by an interrupted import and is not part of the store; the next import removes it"
                );
            }
            if v.is_sound() {
                println!(
                    "store {} is intact: {} entries, {} files; head {}",
                    store.display(),
                    v.entries,
                    v.files,
                    v.head
                );
            } else {
                println!(
                    "store {} is NOT intact: {} problem(s); entries {}, files {}",
                    store.display(),
                    v.problems.len(),
                    v.entries,
                    v.files
                );
                return Ok(ExitCode::from(1));
            }
        }
        Command::Demo { dir } => demo(&dir)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn print_import(report: &import::Report, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    let mut read = 0;
    for (table, count) in &report.tables {
        read += count.read;
        println!("{table:<18} {:>12} read {:>12} new", count.read, count.added);
    }
    match &report.entry {
        Some(e) => println!(
            "committed entry {} ({} files) in {secs:.1} s, {:.0} rows/s; head {}",
            e.body.seq,
            e.body.files.len(),
            read as f64 / secs.max(1e-9),
            e.hash
        ),
        None => println!("nothing new: every row was already in the store (no-op)"),
    }
}

fn demo(dir: &Path) -> anyhow::Result<()> {
    let export = dir.join("export");
    let store = dir.join("store");
    if !store.join("manifest.jsonl").exists() {
        let started = Instant::now();
        progress(&format!("generating a sample IMI export in {} …", export.display()));
        synthetic::generate(&export, &synthetic::Params::default())
            .with_context(|| format!("generating into {}", export.display()))?;
        let inputs = import::inputs(std::slice::from_ref(&export), None)?;
        let report = import::import(&store, &inputs, &now())?;
        print_import(&report, started);
    }
    let s = Store::open(&store)?;
    println!("\nCustos demo store: {}", store.display());
    for t in custos_engine::catalog::TABLES {
        println!("  {:<18} {:>10} rows", t.name, s.rows(t.name));
    }
    println!("  integrity head     {}", s.head());
    println!("\nTry:");
    println!("  custos verify --store {}", store.display());
    println!("  labelled violations: {}", export.join("labels/violations.csv").display());
    Ok(())
}
