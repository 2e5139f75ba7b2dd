//! `custos`: the command line, a thin layer over the Custos crates.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use custos_engine::{Error, finding::Finding, import, indicator, store::Store};

mod analytics;
mod args;
mod bar;
mod config;

use args::*;

fn main() -> ExitCode {
    use clap::FromArgMatches;
    let matches = args::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // `--quiet` and `--verbose` over `CUSTOS_LOG`, over the default (warnings); colours only on
    // a terminal, and never with `NO_COLOR` (https://no-color.org).
    let filter = match cli.log_filter() {
        Some(level) => tracing_subscriber::EnvFilter::new(level),
        None => tracing_subscriber::EnvFilter::try_from_env("CUSTOS_LOG").unwrap_or_else(|_| "warn".into()),
    };
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    QUIET.store(cli.quiet, std::sync::atomic::Ordering::Relaxed);
    // The server's settings are read before it logs anything: they say how it logs.
    let settings = match &cli.command {
        Command::Serve(args) => match config::resolve(args, &|k| std::env::var(k).ok()) {
            Ok(settings) => Some(settings),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    let log = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if settings.as_ref().is_some_and(|s| s.log_format == config::LogFormat::Json) {
        log.json().init();
    } else {
        log.with_ansi(colour).init();
    }
    match custos_engine::query::environment().map_err(anyhow::Error::from).and_then(|_| run(cli, settings)) {
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

/// `--quiet` was given.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs `f`, showing `work`'s progress on a terminal while it runs (cleared before the
/// command prints its summary).
fn showing<T>(work: &custos_engine::Progress, f: impl FnOnce() -> T) -> T {
    let _shown = bar::show(work, QUIET.load(std::sync::atomic::Ordering::Relaxed));
    f()
}

fn progress(msg: &str) {
    if std::io::stderr().is_terminal() && !QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("{msg}");
    }
}

/// Runs the command `cli` names (`custos serve` as `settings` say).
fn run(cli: Cli, settings: Option<config::Settings>) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Generate(args) => generate(args),
        Command::Import(args) => import(args),
        Command::Verify(args) => verify(args),
        Command::Backup(args) => backup(args),
        Command::Completions(args) => completions(args),
        Command::Man(args) => man(args),
        Command::Demo(args) => demo(args),
        Command::Serve(_) => serve(settings.context("the server's settings were not read")?),
        Command::Audit(args) => audit(args),
        Command::Check(args) => check(args),
        Command::Indicators(args) => indicators(args),
        Command::Report(args) => report(args),
        Command::Query(args) => query(args),
        Command::User { command } => user(command),
    }
}

/// `custos completions`: the shell's completion script, from the same definitions that parse
/// the arguments, on standard output.
fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = args::command();
    clap_complete::generate(args.shell, &mut cmd, "custos", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// `custos man`: the manual page in roff, made from the same definitions as `--help`; with
/// `--out`, one page per command as well.
fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    // Clap keeps names as `&'static str`: the few made here live as long as the command.
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let cmd = args::command();
    let render = |c: clap::Command| -> anyhow::Result<Vec<u8>> {
        let mut page = Vec::new();
        clap_mangen::Man::new(c).render(&mut page)?;
        Ok(page)
    };
    let Some(dir) = args.out else {
        std::io::Write::write_all(&mut std::io::stdout(), &render(cmd)?)?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let mut written = vec![("custos.1".to_owned(), render(cmd.clone())?)];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("custos-{}", sub.get_name());
        let page = sub.clone().name(leak(name.clone())).version(env!("CARGO_PKG_VERSION"));
        written.push((format!("{name}.1"), render(page)?));
    }
    for (file, page) in &written {
        let path = dir.join(file);
        std::fs::write(&path, page).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `custos generate`: a synthetic IMI export with its labelled violations.
fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let GenerateArgs { out, seed, scale, events } = args;
    let started = Instant::now();
    let work = custos_engine::Progress::default();
    let params = custos_synthetic::Params { seed, scale, events };
    let s = showing(&work, || custos_synthetic::generate_with(&out, &params, &work))?;
    for (table, rows) in &s.rows {
        println!("{table:<18} {rows:>12} rows");
    }
    println!("{:<18} {:>12} labelled (labels/violations.csv)", "violations", s.violations);
    progress(&format!("done in {:.1} s", started.elapsed().as_secs_f64()));
    Ok(ExitCode::SUCCESS)
}

/// `custos import`: validates the files and commits them in one entry, or refuses every bad row.
fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let ImportArgs {
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
    } = args;
    let inputs = import::inputs(&inputs, table.as_deref())?;
    let started = Instant::now();
    let work = custos_engine::Progress::default();
    let options = import::Options {
        progress: work.clone(),
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
    let report = showing(&work, || import::import_with(&store, &inputs, &now(), &options));
    print_import(&report?, started);
    Ok(ExitCode::SUCCESS)
}

/// `custos verify`: the integrity chain and every file, named when altered, added or removed.
fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let VerifyArgs { store } = args;
    let v = Store::verify(&store)?;
    for p in &v.problems {
        println!("ALTERED  {p}");
    }
    if let Some(line) = v.cut_commit {
        println!(
            "note     manifest line {line} is a commit cut off before it completed and is not part of the store; the next write removes it"
        );
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
    Ok(ExitCode::SUCCESS)
}

/// `custos backup`: the store as it stands copied into a new directory, then verified there.
/// A server may go on writing meanwhile: the copy holds every commit up to the instant the
/// manifest was read.
fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let BackupArgs { store, to } = args;
    let b = Store::backup(&store, &to)?;
    let v = Store::verify(&to)?;
    for p in &v.problems {
        println!("ALTERED  {p}");
    }
    if !v.is_sound() || v.head != b.head {
        println!("the copy in {} does NOT verify: {} problem(s)", to.display(), v.problems.len());
        return Ok(ExitCode::from(1));
    }
    println!(
        "copied store {} to {}: {} entries, {} files, {} bytes; head {}; the copy verifies",
        store.display(),
        to.display(),
        b.entries,
        b.files,
        b.bytes,
        b.head
    );
    Ok(ExitCode::SUCCESS)
}

/// `custos demo`: a sample store (made once), audited, one account per role, served.
fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let DemoArgs { dir, addr, no_serve } = args;
    let started = Instant::now();
    let work = custos_engine::Progress::default();
    let rt = runtime()?;
    let demo = showing(&work, || rt.block_on(custos_dashboard::demo::prepare(&dir, &work)))?;
    if let Some(report) = &demo.imported {
        print_import(report, started);
    }
    let s = Store::open(&demo.store)?;
    println!("\nCustos demo store: {}", demo.store.display());
    for t in custos_engine::catalog::TABLES {
        println!("  {:<18} {:>10} rows", t.name, s.rows(t.name));
    }
    println!("  ntk_findings       {:>10} rows", s.rows(custos_engine::catalog::NTK_FINDINGS));
    println!("  integrity head     {}", s.head());
    println!("  labelled violations: {}", demo.export.join("labels/violations.csv").display());
    println!("\nDashboard: http://{addr}/  (logins, one per role; also in {}):", demo.logins_file.display());
    for l in &demo.logins {
        println!("  {:<11} {:<16} {}   {}", l.role, l.name, l.password, l.scope);
    }
    println!(
        "\nAlso try: custos audit --store {0}; custos check --store {0} --as-of 2026-07-01; custos indicators --store {0} --year 2025",
        demo.store.display()
    );
    println!("The demo lives in {0} (export, store, logins); remove it with: rm -r {0}", dir.display());
    if !no_serve {
        serve_store(&config::Settings::new(demo.store.clone(), addr))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `custos serve`: the dashboard on a store until interrupted, configured by its flags, the
/// `CUSTOS_*` environment variables and its `--config` file (see `config`).
fn serve(settings: config::Settings) -> anyhow::Result<ExitCode> {
    Store::open(&settings.store)?;
    serve_store(&settings)?;
    Ok(ExitCode::SUCCESS)
}

/// `custos audit`: judges every granted access event (or explains one) and stores the findings.
fn audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let AuditArgs { store, from, to, format, out, explain, fail_on_findings, fail_on } = args;
    let engine = custos_engine::Engine::open(&store)?;
    let rt = runtime()?;
    if let Some(event) = explain {
        let e = rt.block_on(engine.explain(&event, None))?;
        print_explanation(engine.judge(), &e);
        return Ok(ExitCode::SUCCESS);
    }
    let started = Instant::now();
    let window = custos_engine::audit::Window { from, to };
    let work = custos_engine::Progress::default();
    let engine = engine.with_progress(work.clone());
    let audit = showing(&work, || rt.block_on(engine.audit(window)))?;
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
            let path = out
                .ok_or_else(|| custos_engine::Error::Usage("`--format parquet` needs `--out FILE`".into()))?;
            let batch =
                custos_engine::finding::to_batch(&audit.findings, engine.judge().policies().hash(), run_at)?;
            let file = std::fs::File::create(&path).with_context(|| format!("{}", path.display()))?;
            let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)?;
            w.write(&batch)?;
            w.close()?;
        }
    }
    sink.flush()?;
    if fail_on_findings && audit.findings.iter().any(|f| fail_on.counts(f.severity.as_str())) {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `custos check`: every deadline rule as of an instant.
fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let CheckArgs {
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
    } = args;
    use custos_engine::deadline;
    use custos_engine::period::Length;
    let engine = custos_engine::Engine::open(&store)?;
    let defaults = deadline::Defaults {
        user_block: Length::Days(user_block_days),
        dpo: Length::Hours(dpo_hours),
        subjects: Length::Hours(subjects_hours),
        dormant: Length::Months(dormant_months),
    };
    let options = deadline::Options { as_of, horizon, defaults, registers_only: false };
    let started = Instant::now();
    let work = custos_engine::Progress::default();
    let engine = engine.with_progress(work.clone());
    let rt = runtime()?;
    let check = showing(&work, || rt.block_on(engine.check(&options)))?;
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
        && check.findings.iter().any(|f| {
            f.status != custos_engine::finding::Status::DueSoon && fail_on.counts(&f.policy.severity)
        });
    // Millions of findings are freed by the process's exit, not one by one.
    std::mem::forget(check);
    if failed {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `custos indicators`: the Scoreboard's indicators and the benchmarking of a year.
fn indicators(args: IndicatorsArgs) -> anyhow::Result<ExitCode> {
    let IndicatorsArgs { store, year, format, view, domains, answer_days_from, agreed_date, as_of } = args;
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
    Ok(ExitCode::SUCCESS)
}

/// `custos report`: the annual report, the report to the EDPS or a member state's pack, as HTML and PDF.
fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let ReportArgs { store, year, out, kind, member_state, format, k } = args;
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
    let work = custos_engine::Progress::default();
    let engine = engine.with_progress(work.clone());
    let rt = runtime()?;
    let written = showing(&work, || {
        rt.block_on(async {
            work.step("computing the report's figures", "", None);
            let r = report::produce(&engine, &req).await?;
            let stem = report::stem(&req);
            std::fs::create_dir_all(&out).with_context(|| format!("{}", out.display()))?;
            let mut written = Vec::new();
            if format != ReportFormat::Pdf {
                work.step("writing the HTML", "", None);
                let path = out.join(format!("{stem}.html"));
                write_whole(&path, report::html(&r)?.as_bytes())?;
                written.push(path);
            }
            if format != ReportFormat::Html {
                work.step("drawing the PDF", "", None);
                let path = out.join(format!("{stem}.pdf"));
                let bytes = custos_reports::pdf::pdf(&r)?;
                write_whole(&path, &bytes)?;
                written.push(path);
            }
            Ok::<_, anyhow::Error>(written)
        })
    })?;
    for p in written {
        println!("{}", p.display());
    }
    progress(&format!("report written in {:.1} s", started.elapsed().as_secs_f64()));
    Ok(ExitCode::SUCCESS)
}

/// `custos query`: one read-only SQL query, with time and memory limits.
fn query(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let QueryArgs { store, format, out, timeout, memory_mb, sql } = args;
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
    Ok(ExitCode::SUCCESS)
}

/// `custos user`: the dashboard's accounts, each change a recorded version.
fn user(command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Add { store, name, role, member_state, controller } => {
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
        UserCommand::Passwd { store, name } => {
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
        UserCommand::Disable { store, name } => {
            change_account(&store, &name, "disabled; its sessions end", |a| a.set_disabled(&name, true))?;
        }
        UserCommand::Enable { store, name } => {
            change_account(&store, &name, "enabled", |a| a.set_disabled(&name, false))?;
        }
        UserCommand::Remove { store, name } => {
            change_account(&store, &name, "removed; its sessions end", |a| a.remove(&name))?;
        }
        UserCommand::Unlock { store, name } => {
            let at = now();
            change_account(&store, &name, "login limit lifted for every address", |a| a.unlock(&name, &at))?;
        }
        UserCommand::Adopt { store } => {
            Store::open(&store)?;
            for a in custos_dashboard::account::Accounts::adopt(&store)? {
                println!("adopted `{}` ({})", a.name, a.role);
            }
            println!("the accounts are recorded under the store's chain; `accounts.json` is removed");
        }
        UserCommand::List { store } => {
            Store::open(&store)?;
            for a in custos_dashboard::account::Accounts::load(&store)?.all() {
                let scope = a.member_state.clone().or_else(|| a.controller.clone()).unwrap_or_default();
                let state = if a.disabled { "  (disabled)" } else { "" };
                println!("{:<24} {:<11} {scope}{state}", a.name, a.role);
            }
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
        let key = (f.policy.rule.as_str(), f.status.as_str(), f.policy.severity.as_str());
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

/// Serves the dashboard as `settings` say until interrupted: deadlines as of their instant,
/// or as of now (moving with the clock) if they give none.
fn serve_store(settings: &config::Settings) -> anyhow::Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        progress("loading the store …");
        let mut state = custos_dashboard::AppState::open(
            &settings.store,
            settings.as_of.unwrap_or_else(now_micros),
            !settings.addr.ip().is_loopback(),
        )
        .await?;
        state.follows_clock = settings.as_of.is_none();
        state.k = settings.disclosure_threshold;
        state.sessions = custos_dashboard::session::Sessions::new(settings.sessions);
        println!("serving http://{}/ (Ctrl-C stops)", settings.addr);
        custos_dashboard::serve(std::sync::Arc::new(state), settings.addr).await
    })?;
    Ok(())
}
