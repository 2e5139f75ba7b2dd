//! `custos indicators` and `custos query`: how their results are written.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use custos_engine::indicator::{self, Benchmark, Colour, Indicators, Options};
use futures::StreamExt;

/// Which table `custos indicators` writes as a table or CSV (JSON holds all three).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum View {
    /// IND-1 to IND-5 per member state and domain, member state, domain and overall.
    Indicators,
    /// Each responding authority against its peers in the same domain.
    Authorities,
    /// Each member state against the others in the same domain.
    MemberStates,
}

/// How `custos indicators` writes.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IndicatorFormat {
    /// Aligned text for a terminal, with the readings used.
    Table,
    /// `{"year", "options", "indicators", "authorities", "member_states"}`.
    Json,
    /// CSV of the chosen `--view`.
    Csv,
}

/// The indicators and benchmarks of one year.
pub struct Scoreboard {
    pub year: i32,
    pub options: Options,
    pub indicators: Vec<Indicators>,
    pub benchmark: Vec<Benchmark>,
}

/// Computes the scoreboard of `year` over `store`.
pub async fn scoreboard(
    store: &custos_engine::store::Store,
    year: i32,
    options: Options,
) -> anyhow::Result<Scoreboard> {
    let ctx = custos_engine::query::session(store).await?;
    indicator::register_request_facts(&ctx, year - 1, year, &options).await?;
    let indicators = indicator::indicators(&ctx, year).await?;
    let benchmark = indicator::benchmark(&ctx, year).await?;
    Ok(Scoreboard { year, options, indicators, benchmark })
}

/// Writes `board` as `format`.
pub fn write_scoreboard(
    out: &mut dyn Write,
    board: &Scoreboard,
    format: IndicatorFormat,
    view: View,
) -> anyhow::Result<()> {
    let level = |l: &'static str| board.benchmark.iter().filter(move |b| b.level == l);
    match format {
        IndicatorFormat::Json => {
            let doc = serde_json::json!({
                "year": board.year,
                "options": board.options,
                "readings": board.options.describe(),
                "indicators": board.indicators,
                "authorities": level("authority").collect::<Vec<_>>(),
                "member_states": level("member_state").collect::<Vec<_>>(),
            });
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)?;
        }
        IndicatorFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            match view {
                View::Indicators => {
                    w.write_record([
                        "level",
                        "member_state",
                        "domain",
                        "received",
                        "ind1",
                        "ind1_colour",
                        "ind2",
                        "ind2_colour",
                        "ind3",
                        "ind3_colour",
                        "ind4",
                        "ind4_colour",
                        "ind5",
                        "ind5_colour",
                        "score",
                        "rating",
                    ])?;
                    for r in &board.indicators {
                        let mut rec = vec![
                            r.level.clone(),
                            r.member_state.clone().unwrap_or_default(),
                            r.domain.clone().unwrap_or_default(),
                            r.received.to_string(),
                        ];
                        for (v, c) in r.values().iter().zip(&r.colours) {
                            rec.push(v.map(|v| format!("{v:.2}")).unwrap_or_default());
                            rec.push(c.map(colour_name).unwrap_or_default().to_owned());
                        }
                        rec.push(r.score.map(|s| s.to_string()).unwrap_or_default());
                        rec.push(r.rating.clone().unwrap_or_default());
                        w.write_record(&rec)?;
                    }
                }
                View::Authorities | View::MemberStates => {
                    let l = if view == View::Authorities { "authority" } else { "member_state" };
                    for b in level(l) {
                        w.serialize(b)?;
                    }
                }
            }
            w.flush()?;
        }
        IndicatorFormat::Table => {
            writeln!(
                out,
                "Single Market Scoreboard indicators, {} (requests by year of sending)",
                board.year
            )?;
            writeln!(out, "Readings: {}.", board.options.describe())?;
            writeln!(
                out,
                "Colours: IND-1, IND-3 green ≥ 80 %, yellow 60-79, red < 60; IND-2 green < 16 days, yellow 16-25, \
                 red > 25; IND-4, IND-5 green < 5 %, yellow 5-14, red ≥ 15. Score: green +1, red -1; ≥ 2 good, ≤ -2 poor.\n"
            )?;
            match view {
                View::Indicators => write_indicator_table(out, &board.indicators)?,
                View::Authorities => write_benchmark_table(out, level("authority"), true)?,
                View::MemberStates => write_benchmark_table(out, level("member_state"), false)?,
            }
        }
    }
    Ok(())
}

fn colour_name(c: Colour) -> &'static str {
    match c {
        Colour::Green => "green",
        Colour::Yellow => "yellow",
        Colour::Red => "red",
    }
}

fn write_indicator_table(out: &mut dyn Write, rows: &[Indicators]) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<20} {:<6} {:<28} {:>8}  {:>14} {:>14} {:>14} {:>14} {:>14}  score",
        "level", "state", "domain", "received", "IND-1 %", "IND-2 days", "IND-3 %", "IND-4 %", "IND-5 %"
    )?;
    // Overall first, then member states, domains, and their crossing.
    let order = ["overall", "member_state", "domain", "member_state_domain"];
    for level in order {
        for r in rows.iter().filter(|r| r.level == level) {
            write!(
                out,
                "{:<20} {:<6} {:<28} {:>8} ",
                r.level,
                r.member_state.as_deref().unwrap_or("all"),
                r.domain.as_deref().unwrap_or("all"),
                r.received
            )?;
            for (v, c) in r.values().iter().zip(&r.colours) {
                let cell = match (v, c) {
                    (Some(v), Some(c)) => format!("{v:.1} {}", colour_name(*c)),
                    _ => "-".to_owned(),
                };
                write!(out, " {cell:>14}")?;
            }
            match (&r.score, &r.rating) {
                (Some(s), Some(rating)) => writeln!(out, "  {s:+} {rating}")?,
                _ => writeln!(out, "  -")?,
            }
        }
    }
    Ok(())
}

fn write_benchmark_table<'a>(
    out: &mut dyn Write,
    rows: impl Iterator<Item = &'a Benchmark>,
    authorities: bool,
) -> anyhow::Result<()> {
    let days = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
    writeln!(
        out,
        "{:<28} {:<14} {:<6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>10} {:>9}",
        "domain",
        if authorities { "authority" } else { "" },
        "state",
        "received",
        "acc med",
        "acc p90",
        "ans med",
        "ans p90",
        "late %",
        "rank",
        "percentile",
        "Δ median"
    )?;
    for b in rows {
        writeln!(
            out,
            "{:<28} {:<14} {:<6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>10.0} {:>9}",
            b.domain,
            b.authority_id.as_deref().unwrap_or(""),
            b.member_state,
            b.received,
            days(b.accept_median),
            days(b.accept_p90),
            days(b.answer_median),
            days(b.answer_p90),
            b.share_late.map_or_else(|| "-".to_owned(), |s| format!("{:.1}", 100.0 * s)),
            format!("{}/{}", b.rank, b.peers),
            b.percentile,
            b.answer_median_change.map_or_else(|| "-".to_owned(), |v| format!("{v:+.1}")),
        )?;
    }
    Ok(())
}

/// How `custos query` writes.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryFormat {
    /// Aligned text for a terminal (the whole result is read first, to size the columns).
    Table,
    /// JSON: an array of objects, written as the rows arrive.
    Json,
    /// CSV with a header row, written as the rows arrive.
    Csv,
    /// Parquet (needs `--out`), written as the rows arrive.
    Parquet,
}

/// Runs a supervisor's read-only `sql` over `store`, streaming its rows to `out` (standard
/// output when none) as `format`.
pub async fn query(
    store: &custos_engine::store::Store,
    sql: &str,
    format: QueryFormat,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let ctx = custos_engine::query::session(store).await?;
    let df = custos_engine::query::read_only(&ctx, sql).await?;
    let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
    let mut stream = df.execute_stream().await.map_err(custos_engine::Error::from)?;
    if out.is_none() && format == QueryFormat::Parquet {
        return Err(custos_engine::Error::Usage("`--format parquet` needs `--out FILE`".into()).into());
    }
    // A file is written beside its final name and renamed once complete: a failed query
    // leaves no half-written result.
    let partial = out.map(|p| {
        let mut name = p.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        p.with_file_name(name)
    });
    let sink: Box<dyn Write + Send> = match &partial {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("{}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let written = write_stream(&mut stream, schema, sink, format).await;
    match (written, partial, out) {
        (Ok(()), Some(partial), Some(out)) => {
            std::fs::rename(&partial, out).with_context(|| format!("{}", out.display()))?;
            Ok(())
        }
        (Err(e), Some(partial), _) => {
            let _ = std::fs::remove_file(partial);
            Err(e)
        }
        (result, _, _) => result,
    }
}

async fn write_stream(
    stream: &mut datafusion::physical_plan::SendableRecordBatchStream,
    schema: arrow::datatypes::SchemaRef,
    mut sink: Box<dyn Write + Send>,
    format: QueryFormat,
) -> anyhow::Result<()> {
    match format {
        QueryFormat::Table => {
            let mut batches = Vec::new();
            while let Some(b) = stream.next().await {
                batches.push(b.map_err(custos_engine::Error::from)?);
            }
            writeln!(sink, "{}", arrow::util::pretty::pretty_format_batches(&batches)?)?;
        }
        QueryFormat::Csv => {
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(sink);
            while let Some(b) = stream.next().await {
                w.write(&b.map_err(custos_engine::Error::from)?)?;
            }
            w.into_inner().flush()?;
        }
        QueryFormat::Json => {
            let mut w = arrow::json::ArrayWriter::new(sink);
            while let Some(b) = stream.next().await {
                w.write(&b.map_err(custos_engine::Error::from)?)?;
            }
            w.finish()?;
            let mut sink = w.into_inner();
            writeln!(sink)?;
            sink.flush()?;
        }
        QueryFormat::Parquet => {
            let mut w = parquet::arrow::ArrowWriter::try_new(sink, schema, None)?;
            while let Some(b) = stream.next().await {
                w.write(&b.map_err(custos_engine::Error::from)?)?;
            }
            w.into_inner()?.flush()?;
        }
    }
    Ok(())
}
