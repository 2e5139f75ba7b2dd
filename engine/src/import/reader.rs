//! Readers that turn an input file of any accepted format into batches of a table's schema.
//!
//! Every reader yields [`Chunk`]s: a record batch in the table's exact storage schema and,
//! for each row, where it came from, so that a later check can still name the line. Nothing
//! here decides whether a value is allowed; readers only parse types.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::DataType;
use arrow::ipc::reader::FileReader as IpcReader;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::builder::{TableBuilder, parse_text_column};
use crate::catalog::{Kind, Table};
use crate::error::{InputError, Location, Result};

/// Rows per chunk: large enough to amortise per-batch work, small enough to stream.
pub const CHUNK_ROWS: usize = 64 * 1024;

/// Where each row of a chunk came from.
#[derive(Debug, Clone)]
pub enum Origins {
    /// The line each row starts on.
    Lines(Vec<u64>),
    /// Rows of one Parquet row group, starting at `first`.
    RowGroup { group: usize, first: usize },
    /// Rows of one Arrow IPC record batch.
    Batch { batch: usize },
}

impl Origins {
    /// Where row `i` of the chunk came from.
    pub fn at(&self, i: usize) -> Location {
        match self {
            Origins::Lines(lines) => Location::Line(lines[i]),
            Origins::RowGroup { group, first } => Location::RowGroup { group: *group, row: first + i },
            Origins::Batch { batch } => Location::Batch { batch: *batch, row: i },
        }
    }
}

/// Rows read from a file, in the table's schema.
pub struct Chunk {
    /// The rows.
    pub batch: RecordBatch,
    /// Where they came from.
    pub origins: Origins,
}

/// The format of an input file, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.csv`
    Csv,
    /// `.jsonl` or `.ndjson`
    JsonLines,
    /// `.parquet`
    Parquet,
    /// `.arrow` (Arrow IPC file)
    Arrow,
}

impl Format {
    /// The format of `path`, by its extension.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            "parquet" => Some(Format::Parquet),
            "arrow" => Some(Format::Arrow),
            _ => None,
        }
    }
}

/// Reads `path` as `table`, calling `sink` with each chunk in order.
///
/// Parsing, and `prepare` (checking), run on their own thread a couple of chunks ahead of
/// `sink`, so that they overlap with what `sink` does (admitting keys, writing Parquet).
pub fn read<T: Send>(
    path: &Path,
    name: &str,
    table: &'static Table,
    format: Format,
    prepare: &(dyn Fn(Chunk) -> Result<T> + Sync),
    sink: &mut dyn FnMut(T) -> Result<()>,
) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<T>(2);
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            read_here(path, name, table, format, &mut |chunk| {
                let prepared = prepare(chunk)?;
                // The consumer hung up because it failed: stop quietly, its error wins.
                tx.send(prepared).map_err(|_| crate::Error::Usage(String::new()))
            })
        });
        let mut consumed = Ok(());
        for chunk in rx.iter() {
            if let Err(e) = sink(chunk) {
                consumed = Err(e);
                break;
            }
        }
        drop(rx);
        let produced =
            producer.join().unwrap_or_else(|_| Err(crate::Error::Usage("the reader thread failed".into())));
        consumed.and(produced)
    })
}

/// Reads `path` as `table` on the calling thread.
fn read_here(
    path: &Path,
    name: &str,
    table: &'static Table,
    format: Format,
    sink: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).map_err(crate::Error::io(path))?;
    match format {
        Format::Csv => read_csv(file, name, table, sink),
        Format::JsonLines => read_jsonl(file, name, table, sink),
        Format::Parquet => read_parquet(file, name, table, sink),
        Format::Arrow => read_ipc(file, name, table, sink),
    }
}

/// Maps the columns a file has to the table's, checking that every required one is there.
/// Returns, for each table column, the file column it comes from.
fn map_columns<'a>(
    file: &str,
    table: &Table,
    names: impl Iterator<Item = &'a str>,
) -> Result<Vec<Option<usize>>> {
    let mut map = vec![None; table.columns.len()];
    for (pos, name) in names.enumerate() {
        let name = name.trim_start_matches('\u{feff}');
        if let Some(i) = table.index(name) {
            if map[i].is_some() {
                return Err(InputError::file(file, "the column appears twice in the header")
                    .column(name)
                    .into());
            }
            map[i] = Some(pos);
        } else {
            tracing::warn!(file, column = name, "column not in the data model, ignored");
        }
    }
    let missing: Vec<_> = table
        .columns
        .iter()
        .zip(&map)
        .filter(|(c, m)| m.is_none() && !c.nullable && c.kind != Kind::TextList)
        .map(|(c, _)| format!("`{}`", c.name))
        .collect();
    if !missing.is_empty() {
        let expected: Vec<_> = table.columns.iter().map(|c| c.name).collect();
        return Err(InputError::file(
            file,
            format!(
                "missing required column{} {}: a `{}` file has the columns {}",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", "),
                table.name,
                expected.join(", ")
            ),
        )
        .into());
    }
    Ok(map)
}

fn read_csv(
    file: File,
    name: &str,
    table: &'static Table,
    sink: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(BufReader::with_capacity(1 << 20, file));
    let csv_error = |e: csv::Error| -> crate::Error {
        let line = e.position().map(|p| p.line());
        let problem = match e.kind() {
            csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                format!("the record has {len} fields, but the header has {expected_len}")
            }
            csv::ErrorKind::Utf8 { err, .. } => {
                format!("field {} is not valid UTF-8", err.field() + 1)
            }
            csv::ErrorKind::Io(err) => format!("could not be read: {err}"),
            _ => e.to_string(),
        };
        match line {
            Some(l) => InputError::at(name, Location::Line(l), problem).into(),
            None => InputError::file(name, problem).into(),
        }
    };
    let header = reader.byte_headers().map_err(csv_error)?.clone();
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        return Err(
            InputError::file(name, "the file is empty: expected a header row naming the columns").into()
        );
    }
    let header_names: Vec<&str> = header
        .iter()
        .map(std::str::from_utf8)
        .collect::<Result<_, _>>()
        .map_err(|_| InputError::at(name, Location::Line(1), "the header is not valid UTF-8"))?;
    let map = map_columns(name, table, header_names.iter().copied())?;

    let mut builder = TableBuilder::new(table, CHUNK_ROWS);
    let mut lines = Vec::with_capacity(CHUNK_ROWS);
    let mut record = csv::ByteRecord::new();
    while reader.read_byte_record(&mut record).map_err(csv_error)? {
        let line = record.position().map_or(0, |p| p.line());
        for (i, source) in map.iter().enumerate() {
            let Some(pos) = *source else {
                builder.push_null(i);
                continue;
            };
            let column = table.columns[i].name;
            let bytes = &record[pos];
            let cell = std::str::from_utf8(bytes).map_err(|_| {
                InputError::at(name, Location::Line(line), "not valid UTF-8 text").column(column)
            })?;
            builder.push_csv(i, cell).map_err(|expected| {
                InputError::at(name, Location::Line(line), format!("expected {expected}"))
                    .column(column)
                    .value(cell)
            })?;
        }
        builder.end_row();
        lines.push(line);
        if builder.len() == CHUNK_ROWS {
            sink(Chunk { batch: builder.finish()?, origins: Origins::Lines(std::mem::take(&mut lines)) })?;
        }
    }
    if !builder.is_empty() {
        sink(Chunk { batch: builder.finish()?, origins: Origins::Lines(lines) })?;
    }
    Ok(())
}

fn read_jsonl(
    file: File,
    name: &str,
    table: &'static Table,
    sink: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut builder = TableBuilder::new(table, CHUNK_ROWS);
    let mut lines = Vec::with_capacity(CHUNK_ROWS);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut any = false;
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf).map_err(|e| {
            InputError::at(name, Location::Line(line_no + 1), format!("could not be read: {e}"))
        })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let at = Location::Line(line_no);
        let text = std::str::from_utf8(&buf).map_err(|e| {
            InputError::at(name, at.clone(), format!("not valid UTF-8 (at byte {})", e.valid_up_to() + 1))
        })?;
        if text.trim().is_empty() {
            continue;
        }
        any = true;
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).map_err(|e| {
            InputError::at(
                name,
                at.clone(),
                format!("not a JSON object: {e} (column {} of the line)", e.column()),
            )
        })?;
        for (i, column) in table.columns.iter().enumerate() {
            match object.get(column.name) {
                None => builder.push_null(i),
                Some(value) => builder.push_json(i, value).map_err(|expected| {
                    InputError::at(name, at.clone(), format!("expected {expected}"))
                        .column(column.name)
                        .value(&value.to_string())
                })?,
            }
        }
        builder.end_row();
        lines.push(line_no);
        if builder.len() == CHUNK_ROWS {
            sink(Chunk { batch: builder.finish()?, origins: Origins::Lines(std::mem::take(&mut lines)) })?;
        }
    }
    if !any {
        return Err(InputError::file(name, "the file is empty: expected one JSON object per line").into());
    }
    if !builder.is_empty() {
        sink(Chunk { batch: builder.finish()?, origins: Origins::Lines(lines) })?;
    }
    Ok(())
}

fn read_parquet(
    file: File,
    name: &str,
    table: &'static Table,
    sink: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file.try_clone().map_err(crate::Error::io(name))?)
        .map_err(|e| InputError::file(name, format!("not a readable Parquet file: {e}")))?;
    let schema = Arc::clone(builder.schema());
    let map = map_columns(name, table, schema.fields().iter().map(|f| f.name().as_str()))?;
    let groups = builder.metadata().num_row_groups();
    drop(builder);
    for group in 0..groups {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(file.try_clone().map_err(crate::Error::io(name))?)
                .and_then(|b| b.with_row_groups(vec![group]).with_batch_size(CHUNK_ROWS).build())
                .map_err(|e| InputError::file(name, format!("not a readable Parquet file: {e}")))?;
        let mut first = 0;
        for batch in reader {
            let batch = batch.map_err(|e| {
                InputError::at(
                    name,
                    Location::RowGroup { group, row: first },
                    format!("could not be read: {e}"),
                )
            })?;
            let origins = Origins::RowGroup { group, first };
            let rows = batch.num_rows();
            let batch = conform(name, table, &map, &batch, &origins)?;
            sink(Chunk { batch, origins })?;
            first += rows;
        }
    }
    Ok(())
}

fn read_ipc(
    file: File,
    name: &str,
    table: &'static Table,
    sink: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    let reader = IpcReader::try_new(BufReader::new(file), None)
        .map_err(|e| InputError::file(name, format!("not a readable Arrow IPC file: {e}")))?;
    let schema = reader.schema();
    let map = map_columns(name, table, schema.fields().iter().map(|f| f.name().as_str()))?;
    for (n, batch) in reader.enumerate() {
        let batch = batch.map_err(|e| {
            InputError::at(name, Location::Batch { batch: n, row: 0 }, format!("could not be read: {e}"))
        })?;
        let origins = Origins::Batch { batch: n };
        let batch = conform(name, table, &map, &batch, &origins)?;
        sink(Chunk { batch, origins })?;
    }
    Ok(())
}

/// Brings a batch read from a typed file (Parquet, Arrow) to the table's storage schema.
///
/// Columns already of the right type are taken as they are; text columns are parsed as CSV
/// cells would be (a timestamp as text, say); other types are cast only where no value
/// changes (an `int32` to `int64`, a millisecond timestamp to microseconds).
fn conform(
    name: &str,
    table: &'static Table,
    map: &[Option<usize>],
    batch: &RecordBatch,
    origins: &Origins,
) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(table.columns.len());
    for (i, column) in table.columns.iter().enumerate() {
        let target = column.kind.data_type();
        let Some(pos) = map[i] else {
            columns.push(new_null_array(&target, batch.num_rows()));
            continue;
        };
        let source = batch.column(pos);
        let problem = |row: usize, text: String| -> crate::Error {
            InputError::at(name, origins.at(row), text).column(column.name).into()
        };
        let array = match (source.data_type(), &target) {
            (a, b) if a == b => Arc::clone(source),
            (DataType::Timestamp(_, None), DataType::Timestamp(..)) => {
                return Err(problem(0, "a timestamp without a time zone: expected timestamps in UTC".into()));
            }
            (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, _) if column.kind != Kind::Text => {
                let text = cast_with_options(source, &DataType::Utf8, &CastOptions::default())?;
                let text = text.as_string::<i32>();
                parse_text_column(table, i, text).map_err(|(row, expected)| {
                    InputError::at(name, origins.at(row), format!("expected {expected}"))
                        .column(column.name)
                        .value(text.value(row))
                })?
            }
            _ => {
                let options = CastOptions { safe: false, ..Default::default() };
                let cast = cast_with_options(source, &target, &options).map_err(|e| {
                    problem(
                        0,
                        format!(
                            "type {} cannot be read as {}: {e}",
                            source.data_type(),
                            column.kind.expected()
                        ),
                    )
                })?;
                if let (DataType::Timestamp(unit, _), Kind::Timestamp) = (source.data_type(), column.kind)
                    && *unit == arrow::datatypes::TimeUnit::Nanosecond
                {
                    check_no_sub_microseconds(source, &problem)?;
                }
                cast
            }
        };
        columns.push(array);
    }
    Ok(RecordBatch::try_new(table.schema(), columns)?)
}

fn check_no_sub_microseconds(
    source: &ArrayRef,
    problem: &dyn Fn(usize, String) -> crate::Error,
) -> Result<()> {
    let ns = source.as_primitive::<arrow::datatypes::TimestampNanosecondType>();
    for (row, v) in ns.iter().enumerate() {
        if v.is_some_and(|v| v % 1000 != 0) {
            return Err(problem(
                row,
                "a nanosecond timestamp would lose precision: expected microseconds".into(),
            ));
        }
    }
    Ok(())
}
