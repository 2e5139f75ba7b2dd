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
use super::refusals::Refused;
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
    /// The rows refused so far, each with its reason (a refused row's bad cells are null).
    pub refused: Vec<Refused>,
}

impl Chunk {
    /// Refuses row `row` of the batch for `error`.
    pub fn refuse(&mut self, row: usize, error: InputError) {
        self.refused.push(Refused { row: Some(row), error, record: None });
    }

    /// Whether each row of the batch is refused (`None` when none is).
    pub fn refused_rows(&self) -> Option<Vec<bool>> {
        if self.refused.iter().all(|r| r.row.is_none()) {
            return None;
        }
        let mut rows = vec![false; self.batch.num_rows()];
        for r in self.refused.iter().filter_map(|r| r.row) {
            rows[r] = true;
        }
        Some(rows)
    }
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

/// How an import reads its files.
#[derive(Debug, Clone)]
pub struct Options {
    /// Columns and JSON keys the data model does not have are left out (named in one
    /// warning per file) rather than refused.
    pub ignore_unknown_columns: bool,
    /// The earliest instant (UTC microseconds) a timestamp may hold: IMI opened in 2008,
    /// and the default of 1990-01-01 leaves room for older records a member state migrated.
    pub earliest: i64,
    /// How many years after the import's own instant a timestamp may lie (agreed reply
    /// dates and planned deletions lie ahead; a year 9999 is a typing error).
    pub years_ahead: u32,
    /// How many refusals the error quotes; the rest are counted.
    pub max_errors: usize,
    /// Where to write every refused row with its reasons (CSV), if anywhere.
    pub rejects: Option<std::path::PathBuf>,
    /// Sizes beyond which input is refused rather than read.
    pub limits: Limits,
    /// Told each table as it is imported, and the rows read.
    pub progress: crate::progress::Progress,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ignore_unknown_columns: false,
            earliest: 631_152_000_000_000,
            years_ahead: 10,
            max_errors: 100,
            rejects: None,
            limits: Limits::default(),
            progress: crate::progress::Progress::default(),
        }
    }
}

/// Sizes beyond which input is refused, so that a hostile or broken file (one endless line,
/// a million columns, a device) costs a clear error rather than the machine's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes in one field (a CSV cell, a JSON string). Default 64 KiB: IMI's longest free
    /// text is a case title.
    pub field_bytes: usize,
    /// Columns of a file (keys of a JSON object). Default 1,000: the widest table has 23.
    pub columns: usize,
    /// Bytes in one line of a text file. Default 1 MiB.
    pub line_bytes: usize,
    /// Bytes of all the files of one table in one import. Default 256 GiB: a century of IMI's
    /// access log as CSV.
    pub table_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { field_bytes: 64 << 10, columns: 1_000, line_bytes: 1 << 20, table_bytes: 256 << 30 }
    }
}

impl Limits {
    fn field_too_long(&self, bytes: usize) -> String {
        format!("a field of {bytes} bytes: expected at most {} (`--max-field-bytes`)", self.field_bytes)
    }

    fn too_many_columns(&self, n: usize) -> String {
        format!("{n} columns: expected at most {} (`--max-columns`)", self.columns)
    }

    fn check_columns(&self, file: &str, n: usize) -> Result<()> {
        if n > self.columns {
            return Err(InputError::file(file, self.too_many_columns(n)).into());
        }
        Ok(())
    }

    /// Refuses the files of one table if together they exceed [`table_bytes`](Limits::table_bytes).
    pub fn check_table(&self, table: &str, files: &[(&str, u64)]) -> Result<()> {
        let total: u64 = files.iter().map(|(_, n)| n).sum();
        if total > self.table_bytes {
            let names: Vec<&str> = files.iter().map(|(f, _)| *f).collect();
            return Err(InputError::file(
                names.join(", "),
                format!(
                    "{total} bytes of `{table}` in one import: expected at most {} (`--max-table-bytes`)",
                    self.table_bytes
                ),
            )
            .into());
        }
        Ok(())
    }
}

/// A reader that refuses a line longer than its limit before holding it in memory.
struct LineLimit<R> {
    inner: R,
    file: String,
    max: usize,
    line: u64,
    run: usize,
}

/// The error [`LineLimit`] reads as: a line too long.
#[derive(Debug)]
struct TooLong {
    file: String,
    line: u64,
    max: usize,
}

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {} is longer than {} bytes", self.line, self.max)
    }
}

impl std::error::Error for TooLong {}

impl TooLong {
    fn error(&self) -> crate::Error {
        InputError::at(
            &self.file,
            Location::Line(self.line),
            format!(
                "a line longer than {} bytes: expected at most that (`--max-line-bytes`); nothing after it was read",
                self.max
            ),
        )
        .into()
    }
}

impl<R> LineLimit<R> {
    fn new(inner: R, file: &str, max: usize) -> Self {
        LineLimit { inner, file: file.to_owned(), max, line: 1, run: 0 }
    }

    /// Counts the lines in `bytes`, just read, and the length of the line still open.
    fn count(&mut self, bytes: &[u8]) {
        (self.line, self.run) = count_lines(self.line, self.run, self.max, bytes);
    }

    fn check(&self) -> std::io::Result<()> {
        if self.run > self.max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                TooLong { file: self.file.clone(), line: self.line, max: self.max },
            ));
        }
        Ok(())
    }
}

impl<R: std::io::Read> std::io::Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.check()?;
        let n = self.inner.read(buf)?;
        self.count(&buf[..n]);
        self.check()?;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineLimit<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.check()?;
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            (self.line, self.run) = count_lines(self.line, self.run, self.max, &buf[..amount.min(buf.len())]);
        }
        self.inner.consume(amount);
    }
}

/// The line number and the length of the line still open after `bytes`, from `line` and
/// `run` before them. A line longer than `max` stays open (so that it is reported).
fn count_lines(mut line: u64, mut run: usize, max: usize, bytes: &[u8]) -> (u64, usize) {
    let mut rest = bytes;
    while let Some(n) = rest.iter().position(|b| *b == b'\n') {
        if run + n > max {
            return (line, run + n);
        }
        line += 1;
        run = 0;
        rest = &rest[n + 1..];
    }
    (line, run + rest.len())
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
    options: &Options,
    prepare: &(dyn Fn(Chunk) -> Result<T> + Sync),
    sink: &mut dyn FnMut(T) -> Result<()>,
) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<T>(2);
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            read_here(path, name, table, format, options, &mut |chunk| {
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
    options: &Options,
    sink: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    let file = File::open(path).map_err(crate::Error::io(path))?;
    match format {
        Format::Csv => read_csv(file, name, table, options, sink),
        Format::JsonLines => read_jsonl(file, name, table, options, sink),
        Format::Parquet => read_parquet(file, name, table, options, sink),
        Format::Arrow => read_ipc(file, name, table, options, sink),
    }
}

/// Maps the columns a file has to the table's, checking that every required one is there.
/// Returns, for each table column, the file column it comes from.
fn map_columns<'a>(
    file: &str,
    table: &Table,
    names: impl Iterator<Item = &'a str>,
    options: &Options,
) -> Result<Vec<Option<usize>>> {
    let mut map = vec![None; table.columns.len()];
    let mut unknown = Unknown::default();
    for (pos, name) in names.enumerate() {
        let name = name.trim_start_matches('\u{feff}');
        if let Some(i) = table.index(name) {
            if map[i].is_some() {
                return Err(InputError::file(file, "the column appears twice in the header")
                    .column(name)
                    .into());
            }
            map[i] = Some(pos);
        } else if !is_own_number(table, name) {
            unknown.add(name);
        }
    }
    unknown.settle(file, table, options, "column")?;
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
    options: &Options,
    sink: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    let limits = options.limits;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        // A record of the wrong width is refused by its line, and reading goes on.
        .flexible(true)
        .from_reader(LineLimit::new(BufReader::with_capacity(1 << 20, file), name, limits.line_bytes));
    let csv_error = |e: csv::Error| -> crate::Error {
        let line = e.position().map(|p| p.line());
        let problem = match e.kind() {
            csv::ErrorKind::Io(err) => match err.get_ref().and_then(|e| e.downcast_ref::<TooLong>()) {
                Some(long) => return long.error(),
                None => format!("could not be read: {err}"),
            },
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
    limits.check_columns(name, header.len())?;
    let header_names: Vec<&str> = header
        .iter()
        .map(std::str::from_utf8)
        .collect::<Result<_, _>>()
        .map_err(|_| InputError::at(name, Location::Line(1), "the header is not valid UTF-8"))?;
    let map = map_columns(name, table, header_names.iter().copied(), options)?;

    let mut builder = TableBuilder::new(table, CHUNK_ROWS);
    let mut lines = Vec::with_capacity(CHUNK_ROWS);
    let mut refused = Vec::new();
    let mut record = csv::ByteRecord::new();
    while reader.read_byte_record(&mut record).map_err(csv_error)? {
        let line = record.position().map_or(0, |p| p.line());
        let at = Location::Line(line);
        if record.len() != header.len() {
            refused.push(Refused {
                row: None,
                error: InputError::at(
                    name,
                    at,
                    format!("the record has {} fields, but the header has {}", record.len(), header.len()),
                ),
                record: Some(csv_text(&record)),
            });
            continue;
        }
        let row = Some(builder.len());
        for (i, source) in map.iter().enumerate() {
            let Some(pos) = *source else {
                builder.push_null(i);
                continue;
            };
            let column = table.columns[i].name;
            let bytes = &record[pos];
            let problem = if bytes.len() > limits.field_bytes {
                Some(InputError::at(name, at.clone(), limits.field_too_long(bytes.len())).column(column))
            } else {
                match std::str::from_utf8(bytes) {
                    Err(_) => Some(InputError::at(name, at.clone(), "not valid UTF-8 text").column(column)),
                    Ok(cell) => builder.push_csv(i, cell).err().map(|expected| {
                        InputError::at(name, at.clone(), format!("expected {expected}"))
                            .column(column)
                            .value(cell)
                    }),
                }
            };
            if let Some(error) = problem {
                builder.push_null(i);
                refused.push(Refused { row, error, record: Some(csv_text(&record)) });
            }
        }
        builder.end_row();
        lines.push(line);
        if builder.len() == CHUNK_ROWS {
            let origins = Origins::Lines(std::mem::take(&mut lines));
            sink(Chunk { batch: builder.finish()?, origins, refused: std::mem::take(&mut refused) })?;
        }
    }
    if !builder.is_empty() || !refused.is_empty() {
        sink(Chunk { batch: builder.finish()?, origins: Origins::Lines(lines), refused })?;
    }
    Ok(())
}

/// A CSV record as one line of CSV text.
fn csv_text(record: &csv::ByteRecord) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_byte_record(record);
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end().to_owned()
}

fn read_jsonl(
    file: File,
    name: &str,
    table: &'static Table,
    options: &Options,
    sink: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    let limits = options.limits;
    let mut input = LineLimit::new(BufReader::with_capacity(1 << 20, file), name, limits.line_bytes);
    let mut builder = TableBuilder::new(table, CHUNK_ROWS);
    let mut lines = Vec::with_capacity(CHUNK_ROWS);
    let mut refused = Vec::new();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut any = false;
    let mut unknown = Unknown::default();
    loop {
        buf.clear();
        let n = std::io::BufRead::read_until(&mut input, b'\n', &mut buf).map_err(|e| {
            match e.get_ref().and_then(|e| e.downcast_ref::<TooLong>()) {
                Some(long) => long.error(),
                None => InputError::at(name, Location::Line(line_no + 1), format!("could not be read: {e}"))
                    .into(),
            }
        })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let at = Location::Line(line_no);
        let whole = |error: InputError| Refused {
            row: None,
            error,
            record: Some(String::from_utf8_lossy(&buf).trim_end().to_owned()),
        };
        let text = match std::str::from_utf8(&buf) {
            Ok(text) => text,
            Err(e) => {
                let error =
                    InputError::at(name, at, format!("not valid UTF-8 (at byte {})", e.valid_up_to() + 1));
                refused.push(whole(error));
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        any = true;
        let members = match serde_json::from_str::<Members>(text) {
            Ok(Members(members)) => members,
            Err(e) => {
                let error = InputError::at(
                    name,
                    at,
                    format!("not a JSON object: {e} (column {} of the line)", e.column()),
                );
                refused.push(whole(error));
                continue;
            }
        };
        let mut slots: Vec<Option<&serde_json::Value>> = vec![None; table.columns.len()];
        let mut problems = Vec::new();
        if members.len() > limits.columns {
            problems.push(InputError::at(name, at.clone(), limits.too_many_columns(members.len())));
        }
        for (key, value) in members.iter().take(limits.columns) {
            match table.index(key) {
                Some(i) if slots[i].is_some() => problems.push(
                    InputError::at(
                        name,
                        at.clone(),
                        "the key appears twice in the object: expected each key once",
                    )
                    .column(key.as_str()),
                ),
                Some(i) => slots[i] = Some(value),
                None if is_own_number(table, key) => {}
                None if options.ignore_unknown_columns => unknown.add(key),
                None => problems.push(InputError::at(name, at.clone(), unknown_name(table, key, "key"))),
            }
        }
        if !problems.is_empty() {
            refused.extend(problems.into_iter().map(whole));
            continue;
        }
        let row = Some(builder.len());
        for (i, column) in table.columns.iter().enumerate() {
            let Some(value) = slots[i] else {
                builder.push_null(i);
                continue;
            };
            let problem = match value {
                serde_json::Value::String(s) if s.len() > limits.field_bytes => {
                    Some(InputError::at(name, at.clone(), limits.field_too_long(s.len())).column(column.name))
                }
                _ => builder.push_json(i, value).err().map(|expected| {
                    InputError::at(name, at.clone(), format!("expected {expected}"))
                        .column(column.name)
                        .value(&value.to_string())
                }),
            };
            if let Some(error) = problem {
                builder.push_null(i);
                refused.push(Refused { row, error, record: Some(text.trim_end().to_owned()) });
            }
        }
        builder.end_row();
        lines.push(line_no);
        if builder.len() == CHUNK_ROWS {
            let origins = Origins::Lines(std::mem::take(&mut lines));
            sink(Chunk { batch: builder.finish()?, origins, refused: std::mem::take(&mut refused) })?;
        }
    }
    if !any && refused.is_empty() {
        return Err(InputError::file(name, "the file is empty: expected one JSON object per line").into());
    }
    unknown.settle(name, table, options, "key")?;
    if !builder.is_empty() || !refused.is_empty() {
        sink(Chunk { batch: builder.finish()?, origins: Origins::Lines(lines), refused })?;
    }
    Ok(())
}

fn read_parquet(
    file: File,
    name: &str,
    table: &'static Table,
    options: &Options,
    sink: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file.try_clone().map_err(crate::Error::io(name))?)
        .map_err(|e| InputError::file(name, format!("not a readable Parquet file: {e}")))?;
    let schema = Arc::clone(builder.schema());
    options.limits.check_columns(name, schema.fields().len())?;
    let map = map_columns(name, table, schema.fields().iter().map(|f| f.name().as_str()), options)?;
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
            let (batch, refused) = conform(name, table, &map, &batch, &origins, options)?;
            sink(Chunk { batch, origins, refused })?;
            first += rows;
        }
    }
    Ok(())
}

fn read_ipc(
    file: File,
    name: &str,
    table: &'static Table,
    options: &Options,
    sink: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    let reader = IpcReader::try_new(BufReader::new(file), None)
        .map_err(|e| InputError::file(name, format!("not a readable Arrow IPC file: {e}")))?;
    let schema = reader.schema();
    options.limits.check_columns(name, schema.fields().len())?;
    let map = map_columns(name, table, schema.fields().iter().map(|f| f.name().as_str()), options)?;
    for (n, batch) in reader.enumerate() {
        let batch = batch.map_err(|e| {
            InputError::at(name, Location::Batch { batch: n, row: 0 }, format!("could not be read: {e}"))
        })?;
        let origins = Origins::Batch { batch: n };
        let (batch, refused) = conform(name, table, &map, &batch, &origins, options)?;
        sink(Chunk { batch, origins, refused })?;
    }
    Ok(())
}

/// Brings a batch read from a typed file (Parquet, Arrow) to the table's storage schema.
///
/// A value is converted only where it stays the same value: a column already of the right
/// type is taken as it is; text (plain or dictionary-encoded alike) is parsed as a CSV cell
/// would be, so a timestamp without an offset is refused whatever its encoding; a whole
/// number of any width becomes an `int`; a float only where it is integral; a whole number a
/// `bool` only where it is 0 or 1; a timestamp converts by its declared unit and zone, never
/// from a bare number (whose unit nothing declares); a date only from a date. Everything else
/// is refused with the usual message.
fn conform(
    name: &str,
    table: &'static Table,
    map: &[Option<usize>],
    batch: &RecordBatch,
    origins: &Origins,
    options: &Options,
) -> Result<(RecordBatch, Vec<Refused>)> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(table.columns.len());
    let mut refused = Vec::new();
    for (i, column) in table.columns.iter().enumerate() {
        let target = column.kind.data_type();
        let Some(pos) = map[i] else {
            columns.push(new_null_array(&target, batch.num_rows()));
            continue;
        };
        let mut source = Arc::clone(batch.column(pos));
        // A dictionary is an encoding, not a type: its values are judged as if written out.
        if let DataType::Dictionary(_, values) = source.data_type() {
            source = cast_with_options(&source, values, &CastOptions::default())?;
        }
        let problem = |row: usize, text: String| -> crate::Error {
            InputError::at(name, origins.at(row), text).column(column.name).into()
        };
        let not_lossless = || {
            problem(
                0,
                format!(
                    "type {} cannot be read as {} without changing values",
                    batch.column(pos).data_type(),
                    column.kind.expected()
                ),
            )
        };
        let exact = CastOptions { safe: false, ..Default::default() };
        let array = match (source.data_type(), column.kind) {
            (a, _) if *a == target => source,
            (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, kind) if kind != Kind::Text => {
                let text = cast_with_options(&source, &DataType::Utf8, &CastOptions::default())?;
                let text = text.as_string::<i32>();
                let (array, failed) = parse_text_column(table, i, text);
                for (row, expected) in failed {
                    let error = InputError::at(name, origins.at(row), format!("expected {expected}"))
                        .column(column.name)
                        .value(text.value(row));
                    refused.push(Refused { row: Some(row), error, record: None });
                }
                array
            }
            (DataType::LargeUtf8 | DataType::Utf8View, Kind::Text) => {
                cast_with_options(&source, &target, &exact)?
            }
            (t, Kind::Int) if t.is_integer() => cast_with_options(&source, &target, &exact).map_err(|e| {
                problem(0, format!("a whole number too large for {}: {e}", column.kind.expected()))
            })?,
            (t, Kind::Int) if t.is_floating() => {
                let floats = cast_with_options(&source, &DataType::Float64, &CastOptions::default())?;
                let floats = floats.as_primitive::<arrow::datatypes::Float64Type>();
                // Integral and exactly representable, or refused: 6.7 is not 6.
                let kept = keep_where(
                    floats,
                    |v| v.fract() == 0.0 && v.abs() < 9.007e15,
                    |row, value| {
                        let error = InputError::at(
                            name,
                            origins.at(row),
                            format!("expected {}", column.kind.expected()),
                        )
                        .column(column.name)
                        .value(&value.to_string());
                        refused.push(Refused { row: Some(row), error, record: None });
                    },
                )?;
                cast_with_options(&kept, &target, &exact)?
            }
            (t, Kind::Bool) if t.is_integer() => {
                let ints =
                    cast_with_options(&source, &DataType::Int64, &exact).map_err(|_| not_lossless())?;
                let ints = ints.as_primitive::<arrow::datatypes::Int64Type>();
                // 0 and 1 only: 2 is not `true`.
                let kept = keep_where(
                    ints,
                    |v| v == 0 || v == 1,
                    |row, value| {
                        let error = InputError::at(
                            name,
                            origins.at(row),
                            format!("expected {}", column.kind.expected()),
                        )
                        .column(column.name)
                        .value(&value.to_string());
                        refused.push(Refused { row: Some(row), error, record: None });
                    },
                )?;
                cast_with_options(&kept, &target, &exact)?
            }
            (DataType::Timestamp(_, None), Kind::Timestamp) => {
                return Err(problem(0, "a timestamp without a time zone: expected timestamps in UTC".into()));
            }
            (DataType::Timestamp(unit, Some(_)), Kind::Timestamp) => {
                let cast = cast_with_options(&source, &target, &exact)
                    .map_err(|e| problem(0, format!("a timestamp out of range: {e}")))?;
                if *unit == arrow::datatypes::TimeUnit::Nanosecond {
                    check_no_sub_microseconds(&source, &problem)?;
                }
                cast
            }
            (DataType::Date64, Kind::Date) => {
                let ms = source.as_primitive::<arrow::datatypes::Date64Type>();
                if let Some(row) = ms.iter().position(|v| v.is_some_and(|v| v % 86_400_000 != 0)) {
                    return Err(problem(row, "a date with a time of day: expected a date".into()));
                }
                cast_with_options(&source, &target, &exact)?
            }
            (t, Kind::Text) if t.is_integer() => cast_with_options(&source, &target, &exact)?,
            (DataType::List(item) | DataType::LargeList(item), Kind::TextList)
                if matches!(item.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) =>
            {
                cast_with_options(&source, &target, &exact)?
            }
            (DataType::Null, _) => new_null_array(&target, batch.num_rows()),
            _ => return Err(not_lossless()),
        };
        if column.kind == Kind::Text {
            let text = array.as_string::<i32>();
            for row in (0..text.len())
                .filter(|r| text.is_valid(*r) && text.value(*r).len() > options.limits.field_bytes)
            {
                let error = InputError::at(
                    name,
                    origins.at(row),
                    options.limits.field_too_long(text.value(row).len()),
                )
                .column(column.name);
                refused.push(Refused { row: Some(row), error, record: None });
            }
        }
        columns.push(array);
    }
    Ok((RecordBatch::try_new(table.schema(), columns)?, refused))
}

/// `values` with null where `keep` does not hold, `refuse` told of each such row and value.
fn keep_where<T: arrow::datatypes::ArrowPrimitiveType>(
    values: &arrow::array::PrimitiveArray<T>,
    keep: impl Fn(T::Native) -> bool,
    mut refuse: impl FnMut(usize, T::Native),
) -> Result<ArrayRef> {
    let kept: arrow::array::BooleanArray = values.iter().map(|v| Some(v.is_none_or(&keep))).collect();
    for row in (0..kept.len()).filter(|r| !kept.value(*r)) {
        refuse(row, values.value(row));
    }
    Ok(Arc::new(arrow::compute::nullif(values, &arrow::compute::not(&kept)?)?))
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

/// A JSON object's members in the order written, a key written twice kept twice (so that it
/// can be refused rather than silently take the last value, as a map would).
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Members, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(member) = map.next_entry::<String, serde_json::Value>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The column names (or JSON keys) of a file that the data model does not have.
#[derive(Default)]
struct Unknown {
    names: std::collections::BTreeSet<String>,
}

/// How many unknown names a message or warning quotes; the rest are counted.
const UNKNOWN_QUOTED: usize = 10;

impl Unknown {
    fn add(&mut self, name: &str) {
        if self.names.len() < 1_000 && !self.names.contains(name) {
            self.names.insert(name.to_owned());
        }
    }

    /// Refuses the unknown names (unless `--ignore-unknown-columns`, when one warning names
    /// them), each with the table's closest column name.
    fn settle(&mut self, file: &str, table: &Table, options: &Options, what: &str) -> Result<()> {
        if self.names.is_empty() {
            return Ok(());
        }
        let listed: Vec<String> = self
            .names
            .iter()
            .take(UNKNOWN_QUOTED)
            .map(|n| match closest(table, n) {
                Some(c) => format!("`{n}` (did you mean `{c}`?)"),
                None => format!("`{n}`"),
            })
            .collect();
        let more = match self.names.len().saturating_sub(UNKNOWN_QUOTED) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        let plural = if self.names.len() > 1 { "s" } else { "" };
        if options.ignore_unknown_columns {
            tracing::warn!(
                file,
                "left out {what}{plural} not in the data model: {}{more}",
                listed.join(", ")
            );
            self.names.clear();
            return Ok(());
        }
        let known: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        Err(InputError::file(
            file,
            format!(
                "{what}{plural} not in the data model of `{}`: {}{more}; its columns are {}. Rename {}, or pass `--ignore-unknown-columns` to import without {}",
                table.name,
                listed.join(", "),
                known.join(", "),
                if plural.is_empty() { "it" } else { "them" },
                if plural.is_empty() { "it" } else { "them" },
            ),
        )
        .into())
    }
}

/// Whether `name` is one of the numbers Custos itself gives the table's rows and references
/// (`catalog::Surrogate`): a file read back from a store carries them, and they are made
/// again on import, so they are no input to lose.
fn is_own_number(table: &Table, name: &str) -> bool {
    table.surrogates.iter().any(|s| s.name == name)
}

/// The refusal of one column or key `name` that the data model of `table` does not have.
fn unknown_name(table: &Table, name: &str, what: &str) -> String {
    let hint = closest(table, name).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default();
    format!(
        "{what} `{name}` is not in the data model of `{}`{hint}: rename it, or pass `--ignore-unknown-columns` to import without it",
        table.name
    )
}

/// The table's column closest to `name` in spelling, if one is close enough to be a typo.
fn closest<'t>(table: &'t Table, name: &str) -> Option<&'t str> {
    let lower = name.trim().to_lowercase();
    table
        .columns
        .iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, c.name), c.name))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min()
        .map(|(_, c)| c)
}
