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
/// Bounds on an ad-hoc query: how long it may run and how much memory its operators may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock time, planning to the last row written.
    pub time: std::time::Duration,
    /// Bytes the query's operators (sorts, joins, aggregates) may hold together.
    pub memory: usize,
}

pub async fn query(
    store: &custos_engine::store::Store,
    sql: &str,
    format: QueryFormat,
    out: Option<&Path>,
    limits: Limits,
) -> anyhow::Result<()> {
    let ctx = custos_engine::query::session_limited(store, limits.memory).await?;
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
    // On a task of its own, so that this one sees the time run out even while the query's
    // operators keep every worker busy.
    let writing = tokio::spawn(async move { write_stream(&mut stream, schema, sink, format).await });
    let abort = writing.abort_handle();
    // The clock is a thread of its own: Tokio's timers are driven by workers that a query's
    // operators may keep busy far past the limit.
    let (ring, alarm) = tokio::sync::oneshot::channel::<()>();
    let limit = limits.time;
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        let _ = ring.send(());
    });
    let written = tokio::select! {
        done = writing => match done {
            Ok(written) => written,
            Err(e) => Err(anyhow::anyhow!("the query failed: {e}")),
        },
        _ = alarm => {
            abort.abort();
            Err(custos_engine::Error::Usage(format!(
                "the query ran longer than {} s and was stopped (raise `--timeout`); nothing was written",
                limits.time.as_secs()
            ))
            .into())
        }
    };
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
                w.write(&lists_joined(&b.map_err(custos_engine::Error::from)?)?)?;
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

/// `batch` with every list column written as its items joined by `;`, as imports read a list
/// in CSV (CSV has no lists of its own).
fn lists_joined(batch: &arrow::array::RecordBatch) -> anyhow::Result<arrow::array::RecordBatch> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Field};
    let is_list = |t: &DataType| matches!(t, DataType::List(_) | DataType::LargeList(_));
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| is_list(f.data_type())) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns: Vec<arrow::array::ArrayRef> = Vec::with_capacity(fields.capacity());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if !is_list(field.data_type()) {
            fields.push(std::sync::Arc::clone(field));
            columns.push(std::sync::Arc::clone(column));
            continue;
        }
        let mut joined = arrow::array::StringBuilder::new();
        for row in 0..column.len() {
            if column.is_null(row) {
                joined.append_null();
                continue;
            }
            let items = match field.data_type() {
                DataType::LargeList(_) => column.as_list::<i64>().value(row),
                _ => column.as_list::<i32>().value(row),
            };
            let texts = (0..items.len())
                .map(|i| arrow::util::display::array_value_to_string(&items, i))
                .collect::<Result<Vec<_>, _>>()?;
            joined.append_value(texts.join(";"));
        }
        fields.push(std::sync::Arc::new(Field::new(field.name(), DataType::Utf8, true)));
        columns.push(std::sync::Arc::new(joined.finish()));
    }
    Ok(arrow::array::RecordBatch::try_new(
        std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
        columns,
    )?)
}
