//! `custos`: the command line, a thin layer over the Custos crates.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use custos_engine::{Error, finding::Finding, import, indicator, store::Store, synthetic};

mod analytics;

/// Data-protection compliance engine for the EU Internal Market Information System (IMI).
#[derive(Parser)]
#[command(name = "custos", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a realistic sample store (if absent), audit it, and serve the dashboard on it.
    Demo {
        /// Where the demo's export, store and logins live.
        #[arg(long, default_value_os_t = default_demo_dir())]
        dir: PathBuf,
        /// The address to serve on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Prepare the store and the accounts, print the logins, and stop without serving.
        #[arg(long)]
        no_serve: bool,
    },
    /// Serve the supervision dashboard on a store.
    Serve {
        /// The store.
        #[arg(long)]
        store: PathBuf,
        /// The address to listen on (cookies are marked `Secure` unless it is a loopback address).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// The instant deadlines are judged at (default: now).
        #[arg(long, value_parser = parse_time)]
        as_of: Option<i64>,
    },
    /// Manage the dashboard's accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
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
        #[arg(long, default_value_t = 0.02, value_parser = parse_scale)]
        scale: f64,
        /// Access events to write (default: about 20 per case).
        #[arg(long, value_parser = clap::value_parser!(u64).range(0..=2_000_000_000))]
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
        /// Leave out columns (and JSON keys) the data model does not have, naming them in a
        /// warning, instead of refusing the file.
        #[arg(long)]
        ignore_unknown_columns: bool,
        /// The earliest instant a timestamp may hold (RFC 3339 or a date); earlier ones are refused as implausible.
        #[arg(long, default_value = "1990-01-01", value_parser = parse_time)]
        not_before: i64,
        /// How many years after the import a timestamp may lie; later ones are refused as implausible.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=100))]
        years_ahead: u32,
        /// How many refused rows the error quotes (in line order); the rest are counted and summed up by kind.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        max_errors: u64,
        /// Write every refused row with its reasons to this CSV file, to fix and import again.
        #[arg(long, value_name = "FILE")]
        rejects: Option<PathBuf>,
        /// Longest field (a CSV cell, a JSON string) in bytes.
        #[arg(long, default_value_t = 64 << 10, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
        max_field_bytes: u64,
        /// Most columns a file (keys a JSON object) may have.
        #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        max_columns: u64,
        /// Longest line of a CSV or JSON Lines file in bytes.
        #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..=1 << 32))]
        max_line_bytes: u64,
        /// Most bytes of one table's files in one import.
        #[arg(long, default_value_t = 256 << 30, value_parser = clap::value_parser!(u64).range(1..))]
        max_table_bytes: u64,
        /// Files (`cases.csv`, `access_log.parquet`, `users.jsonl`, `holidays.arrow`, …) or directories of them.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Judge every granted access event against the need-to-know policies, and store the findings.
    Audit {
        /// The store.
        #[arg(long)]
        store: PathBuf,
        /// First event time to judge (RFC 3339 or a date).
        #[arg(long, value_parser = parse_time)]
        from: Option<i64>,
        /// First event time not to judge (RFC 3339 or a date).
        #[arg(long, value_parser = parse_time)]
        to: Option<i64>,
        /// Output format: a summary per rule and member state, the findings as JSON, or Parquet (needs --out).
        #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
        format: AuditFormat,
        /// Write the output to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Explain one event instead: its facts, the request sent to Cedar, the decision and its reasons.
        #[arg(long, value_name = "EVENT_ID")]
        explain: Option<String>,
        /// Exit with code 1 when there are findings (violations, unless `--fail-on warnings`).
        #[arg(long)]
        fail_on_findings: bool,
        /// What `--fail-on-findings` counts: violations only, or warnings too.
        #[arg(long, value_enum, default_value_t = FailOn::Violations)]
        fail_on: FailOn,
    },
    /// Check every deadline rule (retention, blocking, deletion, requests, breaches, response times) as of an instant.
    Check {
        /// The store.
        #[arg(long)]
        store: PathBuf,
        /// The instant the check answers for (RFC 3339 or a date); facts dated after it are ignored.
        #[arg(long, value_parser = parse_time)]
        as_of: i64,
        /// How far ahead to report obligations falling due (`30d`, `12h`, `2w`).
        #[arg(long, default_value = "30d", value_parser = parse_horizon)]
        horizon: i64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = CheckFormat::Table)]
        format: CheckFormat,
        /// Days to block a deactivated user's data (RET-USER-BLOCK; a Custos default, the law sets none).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=3650))]
        user_block_days: u32,
        /// Hours to inform the DPO of a breach (BRE-DPO; a Custos default, the law sets none).
        #[arg(long, default_value_t = 72, value_parser = clap::value_parser!(u32).range(0..=8784))]
        dpo_hours: u32,
        /// Hours to tell data subjects of a high-risk breach (BRE-SUBJECTS; a Custos default for "without undue delay").
        #[arg(long, default_value_t = 72, value_parser = clap::value_parser!(u32).range(0..=8784))]
        subjects_hours: u32,
        /// Months without a granted login before a user's access rights are due for review (USR-DORMANT; a Custos default, the law sets none).
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=120))]
        dormant_months: u32,
        /// Exit with code 1 when there are findings other than `due_soon` (violations, unless `--fail-on warnings`).
        #[arg(long)]
        fail_on_findings: bool,
        /// What `--fail-on-findings` counts: violations only, or warnings too.
        #[arg(long, value_enum, default_value_t = FailOn::Violations)]
        fail_on: FailOn,
    },
    /// Compute the Single Market Scoreboard's IMI indicators and benchmark authorities against their peers.
    Indicators {
        /// The store.
        #[arg(long)]
        store: PathBuf,
        /// The year (of sending the request, UTC); trends compare with the year before.
        #[arg(long, value_parser = parse_year)]
        year: i32,
        /// Output format.
        #[arg(long, value_enum, default_value_t = analytics::IndicatorFormat::Table)]
        format: analytics::IndicatorFormat,
        /// What a table or CSV shows (JSON holds all three).
        #[arg(long, value_enum, default_value_t = analytics::View::Indicators)]
        view: analytics::View,
        /// Domains counted, comma-separated (default: the Scoreboard's four).
        #[arg(long, value_delimiter = ',')]
        domains: Vec<String>,
        /// IND-2 counts days to the answer from sending (the Scoreboard's reading) or from acceptance.
        #[arg(long, value_enum, default_value_t = AnswerFrom::Sending)]
        answer_days_from: AnswerFrom,
        /// "By the agreed date" (IND-3, share late): by 24:00 of the agreed day in the responding authority's time (as RT-LATE), or by the agreed instant.
        #[arg(long, value_enum, default_value_t = AgreedDate::EndOfDay)]
        agreed_date: AgreedDate,
        /// The instant unanswered requests are judged at (default: now).
        #[arg(long, value_parser = parse_time)]
        as_of: Option<i64>,
    },
    /// Write a report: the Commission's annual IMI report, the report to the EDPS, or a member state's supervision pack.
    Report {
        /// The store.
        #[arg(long)]
        store: PathBuf,
        /// The year reported on: a calendar year in Brussels time; for `edps`, the five years before 5 December of it.
        #[arg(long, value_parser = parse_year)]
        year: i32,
        /// The directory to write into (created if absent).
        #[arg(long)]
        out: PathBuf,
        /// Which report.
        #[arg(long, value_enum)]
        kind: ReportKindArg,
        /// The member state of a `member-state` pack (two letters).
        #[arg(long)]
        member_state: Option<String>,
        /// HTML, PDF or both.
        #[arg(long, value_enum, default_value_t = ReportFormat::Both)]
        format: ReportFormat,
        /// Disclosure-control threshold of the annual report (3-10; a Custos default of 5).
        #[arg(long, default_value_t = custos_engine::disclosure::DEFAULT_K)]
        k: u64,
    },
    /// Run a read-only SQL query over the store's tables.
    Query {
        /// The store.
        #[arg(long)]
        store: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = analytics::QueryFormat::Table)]
        format: analytics::QueryFormat,
        /// Write the result to this file (written whole or not at all) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seconds the query may run, planning to the last row written; past it, it stops and writes nothing.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        timeout: u64,
        /// Mebibytes the query's sorts, joins and aggregates may hold together; past it, the query fails.
        #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(64..=1 << 20))]
        memory_mb: u64,
        /// The query (`SELECT …`); tables are named as in the data model.
        sql: String,
    },
    /// Check the store's integrity chain and say exactly what was altered, added or removed.
    Verify {
        /// The store.
        #[arg(long)]
        store: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add an account (or replace one of the same name); the password is read from standard input.
    Add {
        /// The store.
        #[arg(long)]
        store: PathBuf,
        /// The account's login name.
        #[arg(long)]
        name: String,
        /// edps, dpa, dpo, commission or admin.
        #[arg(long)]
        role: String,
        /// A DPA's member state (two letters).
        #[arg(long)]
        member_state: Option<String>,
        /// A DPO's controller (an authority id).
        #[arg(long)]
        controller: Option<String>,
    },
    /// Record the accounts of a store made before accounts were recorded (its `accounts.json`,
    /// outside the integrity chain) as their first version, after you checked them.
    Adopt {
        /// The store.
        #[arg(long)]
        store: PathBuf,
    },
    /// List the accounts (never their passwords).
    List {
        /// The store.
        #[arg(long)]
        store: PathBuf,
    },
    /// Give an account a new password (read from standard input); its sessions end, on a running server too.
    Passwd {
        /// The store.
        #[arg(long)]
        store: PathBuf,
        /// The account's login name.
        #[arg(long)]
        name: String,
    },
    /// Disable an account: it cannot log in, and its sessions end at once.
    Disable {
        /// The store.
        #[arg(long)]
        store: PathBuf,
        /// The account's login name.
        #[arg(long)]
        name: String,
    },
    /// Enable a disabled account again.
    Enable {
        /// The store.
        #[arg(long)]
        store: PathBuf,
        /// The account's login name.
        #[arg(long)]
        name: String,
    },
    /// Remove an account; its sessions end at once.
    Remove {
        /// The store.
        #[arg(long)]
        store: PathBuf,
        /// The account's login name.
        #[arg(long)]
        name: String,
    },
    /// Lift an account's login limit (after failed logins) for every address, on a running server too.
    Unlock {
        /// The store.
        #[arg(long)]
        store: PathBuf,
        /// The account's login name.
        #[arg(long)]
        name: String,
    },
}

/// How audit findings are written.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AuditFormat {
    /// A summary a supervisor reads: findings per rule and member state, with examples.
    Table,
    /// `{"as_of": …, "findings": […]}` as `rules.md` gives it.
    Json,
    /// The findings as a Parquet file.
    Parquet,
}

fn parse_time(s: &str) -> Result<i64, String> {
    let t = custos_engine::import::parse_timestamp(s).ok_or_else(|| {
        format!("`{s}` is not a time: expected RFC 3339 (`2024-03-15T10:37:00+01:00`) or a date")
    })?;
    // The instants every calendar and period here can compute with.
    let (first, last) = (
        custos_engine::import::parse_timestamp("1900-01-01").unwrap_or(i64::MIN),
        custos_engine::import::parse_timestamp("2200-01-01").unwrap_or(i64::MAX),
    );
    if (first..last).contains(&t) {
        Ok(t)
    } else {
        Err(format!("`{s}` is out of range: expected a time from 1900 to 2199"))
    }
}

/// A generator's scale: a positive size up to ten times the real IMI.
fn parse_scale(s: &str) -> Result<f64, String> {
    s.parse::<f64>().ok().filter(|x| *x > 0.0 && *x <= 10.0).ok_or_else(|| {
        format!("`{s}` is not a scale: expected a number above 0 and at most 10 (1.0: the real IMI)")
    })
}

/// A year a report or the indicators can be about.
fn parse_year(s: &str) -> Result<i32, String> {
    s.parse::<i32>()
        .ok()
        .filter(|y| (1990..=2199).contains(y))
        .ok_or_else(|| format!("`{s}` is not a year Custos reports on: expected a year from 1990 to 2199"))
}

/// How deadline findings are written.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CheckFormat {
    /// A summary per rule and status, with examples.
    Table,
    /// `{"as_of": …, "findings": […]}` as `rules.md` gives it.
    Json,
}

/// What `--fail-on-findings` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FailOn {
    /// Findings of severity `violation` (what the law itself sets).
    Violations,
    /// Violations and warnings (Custos defaults, controllers' commitments).
    Warnings,
}

impl FailOn {
    /// Whether a finding of this severity makes the command fail.
    fn counts(self, severity: &str) -> bool {
        self == FailOn::Warnings || severity == "violation"
    }
}

fn parse_horizon(s: &str) -> Result<i64, String> {
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 =
        n.parse().map_err(|_| format!("`{s}` is not a horizon: expected a number and a unit, like `30d`"))?;
    let hours = match unit {
        "h" => 1,
        "d" => 24,
        "w" => 24 * 7,
        _ => return Err(format!("`{s}`: the unit is `h`, `d` or `w`")),
    };
    // Up to 100 years ahead: beyond that an instant leaves what any calendar here can hold.
    n.checked_mul(hours * 3_600_000_000)
        .filter(|micros| (0..=100 * 366 * 24 * 3_600_000_000).contains(micros))
        .ok_or_else(|| format!("`{s}` is not a horizon: expected from 0 up to 100 years (`36600d`)"))
}

/// Which report.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportKindArg {
    /// The Commission's annual IMI report (IMI Art. 25(1)), with disclosure control.
    Annual,
    /// The report to the EDPS on data protection in IMI (IMI Art. 25(2)).
    Edps,
    /// A coordinated-supervision pack for one member state's DPA (IMI Art. 21).
    MemberState,
}

/// Report formats.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    Html,
    Pdf,
    Both,
}

/// From which instant IND-2 counts.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AnswerFrom {
    /// `sent_at` (the Scoreboard).
    Sending,
    /// `accepted_at`.
    Acceptance,
}

/// What "by the agreed date" compares with.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AgreedDate {
    /// 24:00 of the agreed day, responding authority's time.
    EndOfDay,
    /// The agreed instant.
    Instant,
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
    match custos_engine::query::environment().map_err(anyhow::Error::from).and_then(|_| run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            let user = e.chain().any(|c| {
                c.downcast_ref::<Error>().is_some_and(Error::is_user_error)
                    || c.downcast_ref::<custos_dashboard::Error>()
                        .is_some_and(custos_dashboard::Error::is_user_error)
                    || c.downcast_ref::<custos_reports::Error>()
                        .is_some_and(custos_reports::Error::is_user_error)
            });
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
        Command::Import {
            store,
            table,
            ignore_unknown_columns,
            not_before,
            years_ahead,
            max_errors,
            rejects,
            max_field_bytes,
            max_columns,
            max_line_bytes,
            max_table_bytes,
            inputs,
        } => {
            let inputs = import::inputs(&inputs, table.as_deref())?;
            let started = Instant::now();
            let options = import::Options {
                ignore_unknown_columns,
                earliest: not_before,
                years_ahead,
                max_errors: max_errors as usize,
                rejects,
                limits: import::Limits {
                    field_bytes: max_field_bytes as usize,
                    columns: max_columns as usize,
                    line_bytes: max_line_bytes as usize,
                    table_bytes: max_table_bytes,
                },
            };
            let report = import::import_with(&store, &inputs, &now(), &options)?;
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
        Command::Demo { dir, addr, no_serve } => demo(&dir, addr, no_serve)?,
        Command::Serve { store, addr, as_of } => {
            Store::open(&store)?;
            serve(&store, addr, as_of)?;
        }
        Command::User { command: UserCommand::Add { store, name, role, member_state, controller } } => {
            Store::open(&store)?;
            if std::io::stdin().is_terminal() {
                eprint!("password for `{name}` (at least 12 characters; it is shown as you type): ");
            }
            let mut password = String::new();
            std::io::stdin().read_line(&mut password).context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            custos_dashboard::account::Accounts::edit(&store, |a| {
                a.add(&name, &role, member_state.as_deref(), controller.as_deref(), password)
            })?;
            let head = Store::open(&store)?.head().to_owned();
            println!("account `{name}` ({role}) recorded in {} (store head {head})", store.display());
        }
        Command::User { command: UserCommand::Passwd { store, name } } => {
            if std::io::stdin().is_terminal() {
                eprint!("new password for `{name}` (at least 12 characters; it is shown as you type): ");
            }
            let mut password = String::new();
            std::io::stdin().read_line(&mut password).context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            change_account(&store, &name, "new password saved; its sessions end", |a| {
                a.passwd(&name, password)
            })?;
        }
        Command::User { command: UserCommand::Disable { store, name } } => {
            change_account(&store, &name, "disabled; its sessions end", |a| a.set_disabled(&name, true))?;
        }
        Command::User { command: UserCommand::Enable { store, name } } => {
            change_account(&store, &name, "enabled", |a| a.set_disabled(&name, false))?;
        }
        Command::User { command: UserCommand::Remove { store, name } } => {
            change_account(&store, &name, "removed; its sessions end", |a| a.remove(&name))?;
        }
        Command::User { command: UserCommand::Unlock { store, name } } => {
            let at = now();
            change_account(&store, &name, "login limit lifted for every address", |a| a.unlock(&name, &at))?;
        }
        Command::User { command: UserCommand::Adopt { store } } => {
            Store::open(&store)?;
            for a in custos_dashboard::account::Accounts::adopt(&store)? {
                println!("adopted `{}` ({})", a.name, a.role);
            }
            println!("the accounts are recorded under the store's chain; `accounts.json` is removed");
        }
        Command::User { command: UserCommand::List { store } } => {
            Store::open(&store)?;
            for a in custos_dashboard::account::Accounts::load(&store)?.all() {
                let scope = a.member_state.clone().or_else(|| a.controller.clone()).unwrap_or_default();
                let state = if a.disabled { "  (disabled)" } else { "" };
                println!("{:<24} {:<11} {scope}{state}", a.name, a.role);
            }
        }
        Command::Audit { store, from, to, format, out, explain, fail_on_findings, fail_on } => {
            let engine = custos_engine::Engine::open(&store)?;
            let rt = runtime()?;
            if let Some(event) = explain {
                let e = rt.block_on(engine.explain(&event, None))?;
                print_explanation(engine.judge(), &e);
                return Ok(ExitCode::SUCCESS);
            }
            let started = Instant::now();
            let window = custos_engine::audit::Window { from, to };
            let audit = rt.block_on(engine.audit(window))?;
            let engine = engine.with_clock(custos_engine::Clock::Fixed(now_micros()));
            let run_at = engine.clock().now();
            let entry = engine.record(&audit)?;
            if entry.body.seq > audit.judged.seq + 1 {
                eprintln!(
                    "warning: entries {} to {} were committed while the audit ran; it judged the store as of entry {} (head {}) and not them: run `custos audit` again to judge them",
                    audit.judged.seq + 1,
                    entry.body.seq - 1,
                    audit.judged.seq,
                    audit.judged.head
                );
            }
            progress(&format!(
                "judged {} events ({} distinct scenes) in {:.2} s; findings stored in entry {}",
                audit.events,
                audit.scenes,
                started.elapsed().as_secs_f64(),
                entry.body.seq
            ));
            let as_of = custos_engine::finding::format_micros(to.unwrap_or(run_at));
            let mut sink: Box<dyn std::io::Write> = match &out {
                Some(p) if format != AuditFormat::Parquet => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p).with_context(|| format!("{}", p.display()))?,
                )),
                _ => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            match format {
                AuditFormat::Json => {
                    // Written as it is made: the findings are not first built as one JSON value.
                    #[derive(serde::Serialize)]
                    struct Doc<'a> {
                        as_of: &'a str,
                        /// The store as the audit read it (entry and head) and its window.
                        judged: &'a custos_engine::manifest::Judged,
                        findings: &'a [custos_engine::finding::Finding],
                    }
                    serde_json::to_writer_pretty(
                        &mut sink,
                        &Doc { as_of: &as_of, judged: &audit.judged, findings: &audit.findings },
                    )?;
                    writeln!(sink)?;
                }
                AuditFormat::Table => write_audit_summary(&mut sink, &audit, engine.judge())?,
                AuditFormat::Parquet => {
                    let path = out.ok_or_else(|| {
                        custos_engine::Error::Usage("`--format parquet` needs `--out FILE`".into())
                    })?;
                    let batch = custos_engine::finding::to_batch(
                        &audit.findings,
                        engine.judge().policies().hash(),
                        run_at,
                    )?;
                    let file = std::fs::File::create(&path).with_context(|| format!("{}", path.display()))?;
                    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)?;
                    w.write(&batch)?;
                    w.close()?;
                }
            }
            sink.flush()?;
            if fail_on_findings && audit.findings.iter().any(|f| fail_on.counts(&f.severity)) {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Check {
            store,
            as_of,
            horizon,
            format,
            user_block_days,
            dpo_hours,
            subjects_hours,
            dormant_months,
            fail_on_findings,
            fail_on,
        } => {
            use custos_engine::deadline;
            use custos_engine::period::Length;
            let engine = custos_engine::Engine::open(&store)?;
            let defaults = deadline::Defaults {
                user_block: Length::Days(user_block_days),
                dpo: Length::Hours(dpo_hours),
                subjects: Length::Hours(subjects_hours),
                dormant: Length::Months(dormant_months),
            };
            let options = deadline::Options { as_of, horizon, defaults };
            let started = Instant::now();
            let check = runtime()?.block_on(engine.check(&options))?;
            progress(&format!(
                "checked {} subjects ({} Cedar evaluations) in {:.2} s",
                check.subjects,
                check.evaluations,
                started.elapsed().as_secs_f64()
            ));
            let as_of = custos_engine::finding::format_micros(as_of);
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match format {
                CheckFormat::Json => {
                    // Written as it is made: the findings are not first built as one JSON value.
                    #[derive(serde::Serialize)]
                    struct Doc<'a> {
                        as_of: &'a str,
                        /// The store as the check read it: its newest entry and head.
                        judged: custos_engine::manifest::Judged,
                        horizon_hours: i64,
                        defaults: serde_json::Value,
                        policy_hash: &'a str,
                        findings: &'a deadline::Findings,
                    }
                    let doc = Doc {
                        as_of: &as_of,
                        judged: custos_engine::manifest::Judged {
                            seq: engine.store().entries().len() as u64,
                            head: engine.store().head().to_owned(),
                            ..Default::default()
                        },
                        horizon_hours: horizon / 3_600_000_000,
                        defaults: serde_json::json!({
                            "RET-USER-BLOCK": format!("{} (Custos default; the law sets no period)", defaults.user_block),
                            "BRE-DPO": format!("{} (Custos default; the law sets no period)", defaults.dpo),
                            "BRE-SUBJECTS": format!("{} (Custos default for \"without undue delay\")", defaults.subjects),
                            "USR-DORMANT": format!("{} (Custos default; the law sets no period)", defaults.dormant),
                        }),
                        policy_hash: engine.deadline_policies().hash(),
                        findings: &check.findings,
                    };
                    serde_json::to_writer_pretty(&mut out, &doc)?;
                    writeln!(out)?;
                }
                CheckFormat::Table => write_check_summary(&mut out, &check, &as_of, &defaults)?,
            }
            out.flush()?;
            let failed = fail_on_findings
                && check
                    .findings
                    .iter()
                    .any(|f| f.status != "due_soon" && fail_on.counts(&f.policy.severity));
            // Millions of findings are freed by the process's exit, not one by one.
            std::mem::forget(check);
            if failed {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Indicators { store, year, format, view, domains, answer_days_from, agreed_date, as_of } => {
            let store = Store::open(&store)?;
            let mut options = indicator::Options::scoreboard(as_of.unwrap_or_else(now_micros));
            if !domains.is_empty() {
                options.domains = domains;
            }
            options.answer_from = match answer_days_from {
                AnswerFrom::Sending => indicator::AnswerFrom::Sending,
                AnswerFrom::Acceptance => indicator::AnswerFrom::Acceptance,
            };
            options.agreed_date = match agreed_date {
                AgreedDate::EndOfDay => indicator::AgreedDate::EndOfDay,
                AgreedDate::Instant => indicator::AgreedDate::Instant,
            };
            let board = runtime()?.block_on(analytics::scoreboard(&store, year, options))?;
            analytics::write_scoreboard(&mut std::io::stdout().lock(), &board, format, view)?;
        }
        Command::Report { store, year, out, kind, member_state, format, k } => {
            use custos_reports::report::{self, ReportKind};
            let kind = match kind {
                ReportKindArg::Annual => ReportKind::Annual,
                ReportKindArg::Edps => ReportKind::Edps,
                ReportKindArg::MemberState => ReportKind::MemberState,
            };
            if kind == ReportKind::MemberState && member_state.is_none() {
                return Err(Error::Usage("`--kind member-state` needs `--member-state XX`".into()).into());
            }
            let k = custos_engine::disclosure::threshold(k)?;
            let engine = custos_engine::Engine::open(&store)?;
            let req = report::Request { kind, year, member_state, k };
            let started = Instant::now();
            let written = runtime()?.block_on(async {
                let r = report::produce(&engine, &req).await?;
                let stem = report::stem(&req);
                std::fs::create_dir_all(&out).with_context(|| format!("{}", out.display()))?;
                let mut written = Vec::new();
                if format != ReportFormat::Pdf {
                    let path = out.join(format!("{stem}.html"));
                    write_whole(&path, report::html(&r)?.as_bytes())?;
                    written.push(path);
                }
                if format != ReportFormat::Html {
                    let path = out.join(format!("{stem}.pdf"));
                    let bytes = custos_reports::pdf::pdf(&r)?;
                    write_whole(&path, &bytes)?;
                    written.push(path);
                }
                Ok::<_, anyhow::Error>(written)
            })?;
            for p in written {
                println!("{}", p.display());
            }
            progress(&format!("report written in {:.1} s", started.elapsed().as_secs_f64()));
        }
        Command::Query { store, format, out, timeout, memory_mb, sql } => {
            let store = Store::open(&store)?;
            let limits = analytics::Limits {
                time: std::time::Duration::from_secs(timeout),
                memory: usize::try_from(memory_mb << 20).unwrap_or(usize::MAX),
            };
            let rt = runtime()?;
            let done = rt.block_on(analytics::query(&store, &sql, format, out.as_deref(), limits));
            // A query stopped at its time may still be computing on the workers: not waited for.
            rt.shutdown_background();
            done?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Applies `change` to the accounts of `store` (saved, and seen by a running server at once).
fn change_account(
    store: &Path,
    name: &str,
    done: &str,
    change: impl FnOnce(&mut custos_dashboard::account::Accounts) -> custos_dashboard::Result<()>,
) -> anyhow::Result<()> {
    Store::open(store)?;
    custos_dashboard::account::Accounts::edit(store, change)?;
    println!("account `{name}`: {done}");
    Ok(())
}

/// Writes `bytes` to `path` whole or not at all (beside it, then renamed).
fn write_whole(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).with_context(|| format!("{}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("{}", path.display()))?;
    Ok(())
}

fn now_micros() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    d.as_micros() as i64
}

/// Findings grouped by two of their fields: how many, the first of each group (for what the
/// group shares, such as the article), and up to three example subjects.
type Tally<'a> = std::collections::BTreeMap<(&'a str, &'a str), (u64, &'a Finding, Vec<&'a str>)>;

fn tally<'a>(findings: &'a [Finding], key: impl Fn(&'a Finding) -> (&'a str, &'a str)) -> Tally<'a> {
    let mut cells = Tally::new();
    for f in findings {
        let cell = cells.entry(key(f)).or_insert((0, f, Vec::new()));
        cell.0 += 1;
        if cell.2.len() < 3 {
            cell.2.push(f.subject_id.as_str());
        }
    }
    cells
}

fn write_audit_summary(
    out: &mut dyn std::io::Write,
    audit: &custos_engine::audit::Audit,
    judge: &custos_engine::decision::Judge,
) -> anyhow::Result<()> {
    let cells = tally(&audit.findings, |f| (f.rule.as_str(), f.member_state.as_deref().unwrap_or("-")));
    writeln!(
        out,
        "Need-to-know audit: {} granted events judged ({} distinct scenes), {} findings.",
        audit.events,
        audit.scenes,
        audit.findings.len()
    )?;
    let j = &audit.judged;
    let window = match (&j.from, &j.to) {
        (None, None) => "every event".to_owned(),
        (from, to) => format!(
            "events from {} to {}",
            from.as_deref().unwrap_or("the first"),
            to.as_deref().unwrap_or("the last")
        ),
    };
    writeln!(out, "Store as read: entry {}, head {}; {window}.", j.seq, j.head)?;
    writeln!(out, "Policy set {}\n", judge.policies().hash())?;
    writeln!(out, "{:<20} {:<26} {:<6} {:>9}  examples", "rule", "article", "state", "findings")?;
    for ((rule, ms), (n, first, examples)) in &cells {
        let article = &first.legal_ref;
        writeln!(out, "{rule:<20} {article:<26} {ms:<6} {n:>9}  {}", examples.join(", "))?;
    }
    if cells.is_empty() {
        writeln!(out, "(no findings)")?;
    }
    writeln!(out, "\nDetail: `custos audit --format json`; one event: `custos audit --explain EVENT_ID`.")?;
    Ok(())
}

fn write_check_summary(
    out: &mut dyn std::io::Write,
    check: &custos_engine::deadline::Check,
    as_of: &str,
    defaults: &custos_engine::deadline::Defaults,
) -> anyhow::Result<()> {
    // Per rule and status: the count, the policy, the first three subjects.
    // A rule's policies may differ in severity (BRE-NOTIFY late with reasons is a warning).
    type Cells<'a> = std::collections::BTreeMap<
        (&'a str, &'a str, &'a str),
        (usize, &'a custos_policies::Rule, Vec<&'a str>),
    >;
    let mut cells = Cells::new();
    for f in check.findings.iter() {
        let key = (f.policy.rule.as_str(), f.status, f.policy.severity.as_str());
        let cell = cells.entry(key).or_insert((0, f.policy, Vec::new()));
        cell.0 += 1;
        if cell.2.len() < 3 {
            cell.2.push(f.subject_id);
        }
    }
    writeln!(
        out,
        "Deadline check as of {as_of}: {} subjects, {} findings.",
        check.subjects,
        check.findings.len()
    )?;
    writeln!(
        out,
        "Custos defaults (the law sets no period): RET-USER-BLOCK {}, BRE-DPO {}, BRE-SUBJECTS {}, USR-DORMANT {}.\n",
        defaults.user_block, defaults.dpo, defaults.subjects, defaults.dormant
    )?;
    writeln!(
        out,
        "{:<18} {:<9} {:<9} {:>8}  {:<34} examples",
        "rule", "status", "severity", "count", "article"
    )?;
    for ((rule, status, severity), (n, first, examples)) in &cells {
        let article = &first.article;
        writeln!(out, "{rule:<18} {status:<9} {severity:<9} {n:>8}  {article:<34} {}", examples.join(", "))?;
    }
    if cells.is_empty() {
        writeln!(out, "(no findings)")?;
    }
    Ok(())
}

fn print_explanation(judge: &custos_engine::decision::Judge, e: &custos_engine::audit::Explanation) {
    println!("Facts at the event's instant:\n{}", serde_json::to_string_pretty(&e.facts).unwrap_or_default());
    println!("\nCedar request:\n  {}", e.request);
    println!("\nCedar entities:\n{}", serde_json::to_string_pretty(&e.entities).unwrap_or_default());
    if e.verdict.broken.is_empty() {
        println!("\nDecision: allow (NTK-ACCESS): no need-to-know rule is broken.");
    }
    for id in &e.verdict.broken {
        if let Some(rule) = judge.policies().rule(id) {
            println!("\nDecision: deny by {} ({}): {}\n{}", rule.id, rule.article, rule.title, rule.text);
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn print_import(report: &import::Report, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    let mut read = 0;
    for (table, count) in &report.tables {
        read += count.read;
        println!("{table:<18} {:>12} read {:>12} new", count.read, count.added);
    }
    for (calendar, dates) in &report.new_holidays {
        let shown: Vec<&str> = dates.iter().take(12).map(String::as_str).collect();
        let more = if dates.len() > shown.len() {
            format!(" and {} more", dates.len() - shown.len())
        } else {
            String::new()
        };
        println!("holidays of {calendar:<6} {:>5} new: {}{more}", dates.len(), shown.join(", "));
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

fn demo(dir: &Path, addr: std::net::SocketAddr, no_serve: bool) -> anyhow::Result<()> {
    let export = dir.join("export");
    let store = dir.join("store");
    // The demo's own store, written by an earlier Custos without the numbers this one joins
    // on, is made again, and its logins with it (the accounts live in the store).
    if store.join("manifest.jsonl").exists() && Store::is_outdated(&store)? {
        progress("the demo store was written by an earlier Custos: making it again …");
        std::fs::remove_dir_all(&store).with_context(|| format!("removing {}", store.display()))?;
        let _ = std::fs::remove_file(dir.join("logins.txt"));
    }
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
    if s.rows(custos_engine::audit::NTK_FINDINGS) == 0 {
        progress("auditing every access event …");
        let engine = custos_engine::Engine::open(&store)?;
        let rt = runtime()?;
        let window = custos_engine::audit::Window { from: None, to: None };
        let audit = rt.block_on(engine.audit(window))?;
        engine.record(&audit)?;
    }
    let s = Store::open(&store)?;
    println!("\nCustos demo store: {}", store.display());
    for t in custos_engine::catalog::TABLES {
        println!("  {:<18} {:>10} rows", t.name, s.rows(t.name));
    }
    println!("  ntk_findings       {:>10} rows", s.rows(custos_engine::audit::NTK_FINDINGS));
    println!("  integrity head     {}", s.head());
    println!("  labelled violations: {}", export.join("labels/violations.csv").display());
    // The demo's accounts, kept by an earlier Custos outside the chain: its own, recorded now.
    if store.join(custos_dashboard::account::LEGACY).exists() {
        progress("recording the demo's accounts under the store's chain …");
        custos_dashboard::account::Accounts::adopt(&store)?;
    }
    let logins = demo_accounts(dir, &store)?;
    println!(
        "\nDashboard: http://{addr}/  (logins, one per role; also in {}):",
        dir.join("logins.txt").display()
    );
    for (name, role, scope, password) in &logins {
        println!("  {role:<11} {name:<16} {password}   {scope}");
    }
    println!(
        "\nAlso try: custos audit --store {0}; custos check --store {0} --as-of 2026-07-01; custos indicators --store {0} --year 2025",
        store.display()
    );
    if no_serve {
        return Ok(());
    }
    serve(&store, addr, None)
}

/// One demo account per role, with random passwords kept in `DIR/logins.txt` (created once).
fn demo_accounts(dir: &Path, store: &Path) -> anyhow::Result<Vec<(String, String, String, String)>> {
    let file = dir.join("logins.txt");
    if let Ok(text) = std::fs::read_to_string(&file) {
        let rows: Vec<(String, String, String, String)> = text
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f.len() == 4).then(|| (f[0].to_owned(), f[1].to_owned(), f[2].to_owned(), f[3].to_owned()))
            })
            .collect();
        if rows.len() == custos_dashboard::account::ROLES.len() {
            return Ok(rows);
        }
    }
    let s = Store::open(store)?;
    let commission = runtime()?.block_on(async {
        let ctx = custos_engine::query::session(&s).await?;
        let df = ctx.sql("SELECT min(authority_id) FROM authorities WHERE kind = 'commission'").await?;
        let batches = df.collect().await?;
        Ok::<_, custos_engine::Error>(
            batches
                .first()
                .and_then(|b| {
                    arrow::array::AsArray::as_string_opt::<i32>(b.column(0)).map(|a| a.value(0).to_owned())
                })
                .unwrap_or_default(),
        )
    })?;
    let mut accounts = custos_dashboard::account::Accounts::load(store)?;
    let mut rows = Vec::new();
    for (name, role, ms, controller) in [
        ("edps", "edps", None, None),
        ("dpa-de", "dpa", Some("DE"), None),
        ("dpo-commission", "dpo", None, Some(commission.as_str())),
        ("commission", "commission", None, None),
        ("admin", "admin", None, None),
    ] {
        let password = custos_dashboard::session::token()[..20].to_owned();
        accounts.add(name, role, ms, controller, &password)?;
        let scope = ms
            .map(|m| format!("member state {m}"))
            .or(controller.map(|c| format!("controller {c}")))
            .unwrap_or_default();
        rows.push((name.to_owned(), role.to_owned(), scope, password));
    }
    let text: String = rows.iter().map(|(a, b, c, d)| format!("{a}\t{b}\t{c}\t{d}\n")).collect();
    std::fs::write(&file, text).with_context(|| format!("{}", file.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
    }
    Ok(rows)
}

/// Serves the dashboard on `store` until interrupted: deadlines as of `as_of`, or as of now
/// (moving with the clock) if none is given.
fn serve(store: &Path, addr: std::net::SocketAddr, as_of: Option<i64>) -> anyhow::Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        progress("loading the store …");
        let mut state = custos_dashboard::AppState::open(
            store,
            as_of.unwrap_or_else(now_micros),
            !addr.ip().is_loopback(),
        )
        .await?;
        state.follows_clock = as_of.is_none();
        println!("serving http://{addr}/ (Ctrl-C stops)");
        custos_dashboard::serve(std::sync::Arc::new(state), addr).await
    })?;
    Ok(())
}
