//! The command line's arguments: every command, its flags and how each is parsed and checked.
//! What a command does is in `main.rs`, one function per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::analytics;

/// Data-protection compliance engine for the EU Internal Market Information System (IMI).
#[derive(Parser)]
#[command(name = "custos", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Say more on standard error: `-v` what each step does, `-vv` everything (over `CUSTOS_LOG`).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Say nothing on standard error but errors: no progress, no warnings (over `CUSTOS_LOG`).
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

impl Cli {
    /// The log filter the flags ask for, if they ask for one.
    pub fn log_filter(&self) -> Option<&'static str> {
        match (self.quiet, self.verbose) {
            (true, _) => Some("error"),
            (false, 0) => None,
            (false, 1) => Some("info"),
            (false, _) => Some("debug"),
        }
    }
}

/// The command line as parsed, helped and documented: the definitions below, with what is
/// made when the program runs (the policy sets' hashes in `--version`, the server's
/// configuration keys after `custos serve --help`). Made once per process: clap keeps the
/// strings for as long as the process runs.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    Cli::command()
        .long_version(leak(long_version()))
        .mut_subcommand("serve", |serve| serve.after_long_help(leak(crate::config::help())))
}

/// What `custos --version` says: the version, and the hash of each built-in policy set, so
/// that a finding's `policy_hash` can be matched with the binary that applies it.
pub fn long_version() -> String {
    let hash = |set: Result<custos_policies::Policies, custos_policies::Error>| {
        set.map_or_else(|e| format!("unreadable: {e}"), |p| p.hash().to_owned())
    };
    format!(
        "{}\nneed-to-know policies {}\ndeadline policies     {}\nview policies         {}",
        env!("CARGO_PKG_VERSION"),
        hash(custos_policies::Policies::need_to_know()),
        hash(custos_policies::Policies::deadlines()),
        hash(custos_policies::Policies::views()),
    )
}

#[derive(Subcommand)]
pub enum Command {
    /// Generate a realistic sample store (if absent), audit it, and serve the dashboard on it.
    Demo(DemoArgs),
    /// Serve the supervision dashboard on a store.
    Serve(ServeArgs),
    /// Manage the dashboard's accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Write a synthetic IMI export: one CSV file per table, and labelled violations under `labels/`.
    Generate(GenerateArgs),
    /// Validate files named after their tables and import them into a store, atomically.
    Import(ImportArgs),
    /// Judge every granted access event against the need-to-know policies, and store the findings.
    Audit(AuditArgs),
    /// Check every deadline rule (retention, blocking, deletion, requests, breaches, response times) as of an instant.
    Check(CheckArgs),
    /// Compute the Single Market Scoreboard's IMI indicators and benchmark authorities against their peers.
    Indicators(IndicatorsArgs),
    /// Write a report: the Commission's annual IMI report, the report to the EDPS, or a member state's supervision pack.
    Report(ReportArgs),
    /// Run a read-only SQL query over the store's tables.
    Query(QueryArgs),
    /// Check the store's integrity chain and say exactly what was altered, added or removed.
    Verify(VerifyArgs),
    /// Copy the store into a new directory while it is in use (a server may go on writing), and verify the copy.
    Backup(BackupArgs),
    /// Print the completion script for a shell (bash, zsh, fish, powershell, elvish).
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a directory.
    Man(ManArgs),
}

/// Print the completion script for a shell.
#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell: `custos completions bash > /etc/bash_completion.d/custos`, or for zsh into
    /// a directory of `$fpath` as `_custos`.
    pub shell: clap_complete::Shell,
}

/// Print the manual page, or write one per command.
#[derive(Args)]
pub struct ManArgs {
    /// Write `custos.1` and one `custos-<command>.1` per command into this directory
    /// (for `man -M` or a `man1` directory) instead of printing `custos.1`.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Generate a realistic sample store (if absent), audit it, and serve the dashboard on it.
#[derive(Args)]
pub struct DemoArgs {
    /// Where the demo's export, store and logins live.
    #[arg(long, default_value_os_t = default_demo_dir())]
    pub dir: PathBuf,
    /// The address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Prepare the store and the accounts, print the logins, and stop without serving.
    #[arg(long)]
    pub no_serve: bool,
}

/// Serve the supervision dashboard on a store.
///
/// Every setting can also come from a TOML file (`--config`) or a `CUSTOS_*` environment
/// variable: a flag wins over the variable, the variable over the file (see the README).
#[derive(Args)]
pub struct ServeArgs {
    /// A TOML file of settings (keys: store, addr, as_of, disclosure_threshold, log_format,
    /// session_lifetime_minutes, session_idle_minutes) [env: CUSTOS_CONFIG].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The store [env: CUSTOS_STORE].
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The address to listen on (cookies are marked `Secure` unless it is a loopback address)
    /// [default: 127.0.0.1:8080] [env: CUSTOS_ADDR].
    #[arg(long, value_parser = crate::config::parse_addr)]
    pub addr: Option<std::net::SocketAddr>,
    /// The instant deadlines are judged at (default: now, following the clock) [env: CUSTOS_AS_OF].
    #[arg(long, value_parser = parse_time)]
    pub as_of: Option<i64>,
    /// The smallest count of persons shown in statistics (3 to 10) [default: 5]
    /// [env: CUSTOS_DISCLOSURE_THRESHOLD].
    #[arg(long, value_parser = crate::config::parse_threshold)]
    pub disclosure_threshold: Option<u64>,
    /// The log's format on standard error [default: text] [env: CUSTOS_LOG_FORMAT].
    #[arg(long, value_enum)]
    pub log_format: Option<crate::config::LogFormat>,
    /// The longest a login lasts, however busy (1 to 10080) [default: 480]
    /// [env: CUSTOS_SESSION_LIFETIME_MINUTES].
    #[arg(long, value_parser = crate::config::parse_lifetime)]
    pub session_lifetime_minutes: Option<u64>,
    /// How long a login lasts unused (1 to 1440) [default: 30] [env: CUSTOS_SESSION_IDLE_MINUTES].
    #[arg(long, value_parser = crate::config::parse_idle)]
    pub session_idle_minutes: Option<u64>,
}

/// Write a synthetic IMI export: one CSV file per table, and labelled violations under `labels/`.
#[derive(Args)]
pub struct GenerateArgs {
    /// The directory to write (created if absent).
    #[arg(long)]
    pub out: PathBuf,
    /// The random seed: the same arguments always give byte-identical files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Size relative to the real IMI (1.0: about 12,600 authorities, 44,000 users, 60,000 exchanges a year).
    #[arg(long, default_value_t = 0.02, value_parser = parse_scale)]
    pub scale: f64,
    /// Access events to write (default: about 20 per case).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=2_000_000_000))]
    pub events: Option<u64>,
}

/// Validate files named after their tables and import them into a store, atomically.
#[derive(Args)]
pub struct ImportArgs {
    /// The store (created if absent).
    #[arg(long)]
    pub store: PathBuf,
    /// The table of a single file not named after it.
    #[arg(long)]
    pub table: Option<String>,
    /// Leave out columns (and JSON keys) the data model does not have, naming them in a
    /// warning, instead of refusing the file.
    #[arg(long)]
    pub ignore_unknown_columns: bool,
    /// The earliest instant a timestamp may hold (RFC 3339 or a date); earlier ones are refused as implausible.
    #[arg(long, default_value = "1990-01-01", value_parser = parse_time)]
    pub not_before: i64,
    /// How many years after the import a timestamp may lie; later ones are refused as implausible.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub years_ahead: u32,
    /// How many refused rows the error quotes (in line order); the rest are counted and summed up by kind.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_errors: u64,
    /// Write every refused row with its reasons to this CSV file, to fix and import again.
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// Longest field (a CSV cell, a JSON string) in bytes.
    #[arg(long, default_value_t = 64 << 10, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub max_field_bytes: u64,
    /// Most columns a file (keys a JSON object) may have.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_columns: u64,
    /// Longest line of a CSV or JSON Lines file in bytes.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..=1 << 32))]
    pub max_line_bytes: u64,
    /// Most bytes of one table's files in one import.
    #[arg(long, default_value_t = 256 << 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_table_bytes: u64,
    /// Files (`cases.csv`, `access_log.parquet`, `users.jsonl`, `holidays.arrow`, …) or directories of them.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

/// Judge every granted access event against the need-to-know policies, and store the findings.
#[derive(Args)]
pub struct AuditArgs {
    /// The store.
    #[arg(long)]
    pub store: PathBuf,
    /// First event time to judge (RFC 3339 or a date).
    #[arg(long, value_parser = parse_time)]
    pub from: Option<i64>,
    /// First event time not to judge (RFC 3339 or a date).
    #[arg(long, value_parser = parse_time)]
    pub to: Option<i64>,
    /// Output format: a summary per rule and member state, the findings as JSON, or Parquet (needs --out).
    #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
    pub format: AuditFormat,
    /// Write the output to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Explain one event instead: its facts, the request sent to Cedar, the decision and its reasons.
    #[arg(long, value_name = "EVENT_ID")]
    pub explain: Option<String>,
    /// Exit with code 1 when there are findings (violations, unless `--fail-on warnings`).
    #[arg(long)]
    pub fail_on_findings: bool,
    /// What `--fail-on-findings` counts: violations only, or warnings too.
    #[arg(long, value_enum, default_value_t = FailOn::Violations)]
    pub fail_on: FailOn,
}

/// Check every deadline rule (retention, blocking, deletion, requests, breaches, response times) as of an instant.
#[derive(Args)]
pub struct CheckArgs {
    /// The store.
    #[arg(long)]
    pub store: PathBuf,
    /// The instant the check answers for (RFC 3339 or a date); facts dated after it are ignored.
    #[arg(long, value_parser = parse_time)]
    pub as_of: i64,
    /// How far ahead to report obligations falling due (`30d`, `12h`, `2w`).
    #[arg(long, default_value = "30d", value_parser = parse_horizon)]
    pub horizon: i64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Table)]
    pub format: CheckFormat,
    /// Days to block a deactivated user's data (RET-USER-BLOCK; a Custos default, the law sets none).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub user_block_days: u32,
    /// Hours to inform the DPO of a breach (BRE-DPO; a Custos default, the law sets none).
    #[arg(long, default_value_t = 72, value_parser = clap::value_parser!(u32).range(0..=8784))]
    pub dpo_hours: u32,
    /// Hours to tell data subjects of a high-risk breach (BRE-SUBJECTS; a Custos default for "without undue delay").
    #[arg(long, default_value_t = 72, value_parser = clap::value_parser!(u32).range(0..=8784))]
    pub subjects_hours: u32,
    /// Months without a granted login before a user's access rights are due for review (USR-DORMANT; a Custos default, the law sets none).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=120))]
    pub dormant_months: u32,
    /// Exit with code 1 when there are findings other than `due_soon` (violations, unless `--fail-on warnings`).
    #[arg(long)]
    pub fail_on_findings: bool,
    /// What `--fail-on-findings` counts: violations only, or warnings too.
    #[arg(long, value_enum, default_value_t = FailOn::Violations)]
    pub fail_on: FailOn,
}

/// Compute the Single Market Scoreboard's IMI indicators and benchmark authorities against their peers.
#[derive(Args)]
pub struct IndicatorsArgs {
    /// The store.
    #[arg(long)]
    pub store: PathBuf,
    /// The year (of sending the request, UTC); trends compare with the year before.
    #[arg(long, value_parser = parse_year)]
    pub year: i32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = analytics::IndicatorFormat::Table)]
    pub format: analytics::IndicatorFormat,
    /// What a table or CSV shows (JSON holds all three).
    #[arg(long, value_enum, default_value_t = analytics::View::Indicators)]
    pub view: analytics::View,
    /// Domains counted, comma-separated (default: the Scoreboard's four).
    #[arg(long, value_delimiter = ',')]
    pub domains: Vec<String>,
    /// IND-2 counts days to the answer from sending (the Scoreboard's reading) or from acceptance.
    #[arg(long, value_enum, default_value_t = AnswerFrom::Sending)]
    pub answer_days_from: AnswerFrom,
    /// "By the agreed date" (IND-3, share late): by 24:00 of the agreed day in the responding authority's time (as RT-LATE), or by the agreed instant.
    #[arg(long, value_enum, default_value_t = AgreedDate::EndOfDay)]
    pub agreed_date: AgreedDate,
    /// The instant unanswered requests are judged at (default: now).
    #[arg(long, value_parser = parse_time)]
    pub as_of: Option<i64>,
}

/// Write a report: the Commission's annual IMI report, the report to the EDPS, or a member state's supervision pack.
#[derive(Args)]
pub struct ReportArgs {
    /// The store.
    #[arg(long)]
    pub store: PathBuf,
    /// The year reported on: a calendar year in Brussels time; for `edps`, the five years before 5 December of it.
    #[arg(long, value_parser = parse_year)]
    pub year: i32,
    /// The directory to write into (created if absent).
    #[arg(long)]
    pub out: PathBuf,
    /// Which report.
    #[arg(long, value_enum)]
    pub kind: ReportKindArg,
    /// The member state of a `member-state` pack (two letters).
    #[arg(long)]
    pub member_state: Option<String>,
    /// HTML, PDF or both.
    #[arg(long, value_enum, default_value_t = ReportFormat::Both)]
    pub format: ReportFormat,
    /// Disclosure-control threshold of the annual report (3-10; a Custos default of 5).
    #[arg(long, default_value_t = custos_engine::disclosure::DEFAULT_K)]
    pub k: u64,
}

/// Run a read-only SQL query over the store's tables.
#[derive(Args)]
pub struct QueryArgs {
    /// The store.
    #[arg(long)]
    pub store: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = analytics::QueryFormat::Table)]
    pub format: analytics::QueryFormat,
    /// Write the result to this file (written whole or not at all) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seconds the query may run, planning to the last row written; past it, it stops and writes nothing.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// Mebibytes the query's sorts, joins and aggregates may hold together; past it, the query fails.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(64..=1 << 20))]
    pub memory_mb: u64,
    /// The query (`SELECT …`); tables are named as in the data model.
    pub sql: String,
}

/// Check the store's integrity chain and say exactly what was altered, added or removed.
#[derive(Args)]
pub struct VerifyArgs {
    /// The store.
    #[arg(long)]
    pub store: PathBuf,
}

/// Copy the store into a new directory while it is in use, and verify the copy.
#[derive(Args)]
pub struct BackupArgs {
    /// The store.
    #[arg(long)]
    pub store: PathBuf,
    /// The new directory to copy it into (absent or empty).
    #[arg(long)]
    pub to: PathBuf,
}

#[derive(Subcommand)]
pub enum UserCommand {
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
pub enum AuditFormat {
    /// A summary a supervisor reads: findings per rule and member state, with examples.
    Table,
    /// `{"as_of": …, "findings": […]}` as `rules.md` gives it.
    Json,
    /// The findings as a Parquet file.
    Parquet,
}

pub fn parse_time(s: &str) -> Result<i64, String> {
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

/// A generator's scale: a positive size up to a hundred times the real IMI (the deadline
/// benchmark's store of 10 M cases is scale 30.3).
pub fn parse_scale(s: &str) -> Result<f64, String> {
    s.parse::<f64>().ok().filter(|x| *x > 0.0 && *x <= 100.0).ok_or_else(|| {
        format!("`{s}` is not a scale: expected a number above 0 and at most 100 (1.0: the real IMI)")
    })
}

/// A year a report or the indicators can be about.
pub fn parse_year(s: &str) -> Result<i32, String> {
    s.parse::<i32>()
        .ok()
        .filter(|y| (1990..=2199).contains(y))
        .ok_or_else(|| format!("`{s}` is not a year Custos reports on: expected a year from 1990 to 2199"))
}

/// How deadline findings are written.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    /// A summary per rule and status, with examples.
    Table,
    /// `{"as_of": …, "findings": […]}` as `rules.md` gives it.
    Json,
}

/// What `--fail-on-findings` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Findings of severity `violation` (what the law itself sets).
    Violations,
    /// Violations and warnings (Custos defaults, controllers' commitments).
    Warnings,
}

impl FailOn {
    /// Whether a finding of this severity makes the command fail.
    pub fn counts(self, severity: &str) -> bool {
        self == FailOn::Warnings || severity == "violation"
    }
}

pub fn parse_horizon(s: &str) -> Result<i64, String> {
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
pub enum ReportKindArg {
    /// The Commission's annual IMI report (IMI Art. 25(1)), with disclosure control.
    Annual,
    /// The report to the EDPS on data protection in IMI (IMI Art. 25(2)).
    Edps,
    /// A coordinated-supervision pack for one member state's DPA (IMI Art. 21).
    MemberState,
}

/// Report formats.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Html,
    Pdf,
    Both,
}

/// From which instant IND-2 counts.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AnswerFrom {
    /// `sent_at` (the Scoreboard).
    Sending,
    /// `accepted_at`.
    Acceptance,
}

/// What "by the agreed date" compares with.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AgreedDate {
    /// 24:00 of the agreed day, responding authority's time.
    EndOfDay,
    /// The agreed instant.
    Instant,
}

pub fn default_demo_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("custos/demo")
}

#[cfg(test)]
mod tests {
    use super::parse_scale;

    #[test]
    fn a_scale_is_above_zero_and_at_most_a_hundred() {
        for ok in ["0.001", "1", "30.303", "100"] {
            assert!(parse_scale(ok).is_ok(), "{ok}");
        }
        for bad in ["0", "-1", "100.5", "NaN", "inf", "1e300", "x"] {
            let message = parse_scale(bad).expect_err(bad);
            assert!(message.contains("at most 100"), "{message}");
        }
    }
}
