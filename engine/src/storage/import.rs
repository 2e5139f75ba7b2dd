//! Import: input files in, one atomic commit to the store out.
//!
//! ```text
//! files ──► reader (CSV | JSON Lines | Parquet | Arrow) ──► chunks in the table's schema
//!                                                              │
//!        references (store + accepted rows) ──► validate ◄─────┘
//!        key index (store + accepted rows)  ──► admit (drop exact repeats, refuse conflicts)
//!                                                              │
//!        staged Parquet files (one per table, per month for the access log) ◄─┘
//!                                                              │
//!        every file read and checked without error ──► one manifest entry (commit)
//! ```
//!
//! Tables are processed in dependency order, so a file of users may name authorities that
//! the same import brings. Any error anywhere drops the transaction, which removes every
//! staged file: the store is exactly as before.

mod builder;
mod reader;
mod refusals;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::TimestampMicrosecondType;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

pub use builder::{format_micros, parse_date, parse_timestamp};

/// What `labels/about.json` says it is: the answer key of a generated export (`custos
/// generate`), which an import of the export's directory leaves out (see [`is_answer_key`]).
pub const ANSWER_KEY: &str = "custos-generate answer key";

/// Whether `dir` is the answer key `custos generate` wrote beside an export: a directory
/// `labels` whose `about.json` says so.
pub fn is_answer_key(dir: &Path) -> bool {
    dir.file_name().is_some_and(|n| n == "labels")
        && std::fs::read(dir.join("about.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["kind"] == ANSWER_KEY)
}
use reader::Chunk;
pub use reader::{Format, Limits, Options};
use refusals::Refusals;
use validate::{Digester, Digests, KeyIndex, References};

use crate::catalog::{self, Partition, Table};
use crate::error::{Error, InputError, Result};
use crate::store::{HashingFile, Store, Transaction};

/// One input file and the table it feeds.
#[derive(Debug, Clone)]
pub struct Input {
    /// The file.
    pub path: PathBuf,
    /// How it is named in messages (as given on the command line).
    pub name: String,
    /// Its table.
    pub table: &'static Table,
    /// Its format.
    pub format: Format,
}

/// Finds the input files among `paths`: files as given, directories by the files in them,
/// each of which must be named after a table. Nothing in a directory is skipped silently: a
/// file not named after a table, a subdirectory, a link or a FIFO is refused by name (all of
/// them at once), except the answer key `custos generate` writes beside its export
/// (`labels/`, marked by its `about.json`), which is named in a warning and left out.
/// `table` names the table of a single file not so named.
pub fn inputs(paths: &[PathBuf], table: Option<&str>) -> Result<Vec<Input>> {
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(path)
                .map_err(Error::io(path))?
                .collect::<std::io::Result<_>>()
                .map_err(Error::io(path))?;
            entries.sort_by_key(std::fs::DirEntry::path);
            for entry in entries {
                let p = entry.path();
                let kind = entry.file_type().map_err(Error::io(&p))?;
                if kind.is_dir() && is_answer_key(&p) {
                    tracing::warn!(
                        "left out {}: the answer key of `custos generate`, not IMI data",
                        p.display()
                    );
                } else if kind.is_dir() {
                    refused.push(format!(
                        "`{}` is a subdirectory: Custos imports the files directly in a directory it is given; name the subdirectory to import its files",
                        p.display()
                    ));
                } else if !kind.is_file() {
                    refused.push(format!(
                        "`{}` is not a regular file (a link, a FIFO or a device)",
                        p.display()
                    ));
                } else {
                    match input(&p, None) {
                        Ok(i) => out.push(i),
                        Err(e) => refused.push(e.to_string()),
                    }
                }
            }
        } else if path.exists() {
            if !path.is_file() {
                return Err(InputError::file(
                    path.display().to_string(),
                    "not a regular file (a FIFO or a device): expected a file of rows",
                )
                .into());
            }
            out.push(input(path, table)?);
        } else {
            return Err(InputError::file(path.display().to_string(), "no such file or directory").into());
        }
    }
    if !refused.is_empty() {
        return Err(Error::Usage(format!(
            "{} {} in the directories to import {} not data of any table, and nothing was imported:\n  {}\nMove {} away, or name the files to import on the command line.",
            refused.len(),
            if refused.len() == 1 { "entry" } else { "entries" },
            if refused.len() == 1 { "is" } else { "are" },
            refused.join("\n  "),
            if refused.len() == 1 { "it" } else { "them" },
        )));
    }
    if out.is_empty() {
        return Err(Error::Usage(
            "nothing to import: no file named after a table (`cases.csv`, `access_log.parquet`, …)".into(),
        ));
    }
    if table.is_some() && out.len() > 1 {
        return Err(Error::Usage("`--table` names the table of a single file".into()));
    }
    // INVARIANT: inputs are processed in the dependency order of `catalog::TABLES`.
    out.sort_by_key(|i| catalog::TABLES.iter().position(|t| t.name == i.table.name));
    Ok(out)
}

fn input(path: &Path, table: Option<&str>) -> Result<Input> {
    let name = path.display().to_string();
    let format = Format::of(path).ok_or_else(|| {
        InputError::file(&name, "unknown format: expected a `.csv`, `.jsonl`, `.parquet` or `.arrow` file")
    })?;
    let file_name = path.file_name().and_then(|s| s.to_str()).unwrap_or_default();
    let stem = table.unwrap_or_else(|| file_name.split('.').next().unwrap_or_default());
    let table = catalog::table(stem).ok_or_else(|| {
        let names: Vec<_> = catalog::TABLES.iter().map(|t| t.name).collect();
        InputError::file(
            &name,
            format!("no table is called `{stem}`: expected a file named after one of {}", names.join(", ")),
        )
    })?;
    Ok(Input { path: path.to_path_buf(), name, table, format })
}

/// What an import did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableCount {
    /// Rows read from the input files.
    pub read: u64,
    /// Rows new to the store.
    pub added: u64,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Per table.
    pub tables: BTreeMap<&'static str, TableCount>,
    /// The manifest entry made, or `None` when every row was already in the store.
    pub entry: Option<crate::manifest::Entry>,
    /// The holidays new to the store, by calendar (`YYYY-MM-DD`, in order): a holiday moves
    /// deadlines, so each one added is said, never taken silently.
    pub new_holidays: BTreeMap<String, Vec<String>>,
}

/// Imports `inputs` into the store at `root` (created if absent) as one commit stamped
/// `committed_at`. Everything is validated; on any error nothing is stored.
pub fn import(root: &Path, inputs: &[Input], committed_at: &str) -> Result<Report> {
    import_with(root, inputs, committed_at, &Options::default())
}

/// [`import`], read as `options` say.
pub fn import_with(root: &Path, inputs: &[Input], committed_at: &str, options: &Options) -> Result<Report> {
    let bounds = bounds(committed_at, options)?;
    // A refused first import leaves no store behind: the directory is as it was.
    let made_dir = !root.exists();
    let fresh = !root.join("manifest.jsonl").exists();
    let result = import_into(root, inputs, committed_at, options, bounds);
    if result.is_err() && fresh && root.join("manifest.jsonl").exists() {
        Store::remove_if_empty(root, made_dir)?;
    }
    result
}

fn import_into(
    root: &Path,
    inputs: &[Input],
    committed_at: &str,
    options: &Options,
    bounds: validate::Bounds,
) -> Result<Report> {
    let store = Store::open_or_create(root)?;
    let mut txn = store.begin("import")?;
    let mut refs = References::new();
    for table in [&catalog::DOMAINS, &catalog::AUTHORITIES, &catalog::USERS, &catalog::CASES] {
        for batch in txn.store().read(table.name)? {
            refs.absorb(table, &batch)?;
        }
    }
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    let refusals = Refusals::new(options.max_errors, options.rejects.as_deref())?;
    let mut report = Report::default();
    let mut new_holidays: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut i = 0;
    while i < inputs.len() {
        let table = inputs[i].table;
        let group: Vec<(usize, &Input)> =
            inputs.iter().enumerate().skip(i).take_while(|(_, x)| x.table.name == table.name).collect();
        i += group.len();
        let digester = Digester::new(table)?;
        let files: Vec<(&str, u64)> = group
            .iter()
            .map(|(_, i)| (i.name.as_str(), std::fs::metadata(&i.path).map_or(0, |m| m.len())))
            .collect();
        options.limits.check_table(table.name, &files)?;
        let mut keys = KeyIndex::new(table)?;
        // The table's own numbers (see `catalog::Surrogate`) count on from the stored rows'.
        let mut next = 0;
        for batch in txn.store().read(table.name)? {
            keys.add_stored(&batch, &digester)?;
            if let Some(own) = table.own_surrogate().and_then(|s| batch.column_by_name(s.name)) {
                let max = arrow::compute::max(own.as_primitive::<arrow::datatypes::Int32Type>());
                next = next.max(max.map_or(0, |m| m + 1));
            }
        }
        // Room for every new key at once (about 60 bytes a row of text), not doubling as they come.
        let bytes: u64 =
            group.iter().filter_map(|(_, i)| std::fs::metadata(&i.path).ok()).map(|m| m.len()).sum();
        keys.reserve((bytes / 60) as usize);
        options.progress.step(format!("importing {}", table.name), "rows", None);
        let mut sink = TableSink::new(table);
        let count = report.tables.entry(table.name).or_default();
        // INVARIANT: no table refers to itself, so the keys a table brings are only needed by
        // later tables: they join the references once the whole table is read. Until then
        // the references are read-only, and checking runs on the reader's thread.
        let mut fresh_batches = Vec::new();
        // A register's records saved in Custos (a DPO's breaches and requests): an import
        // bringing one of their keys is a conflict, named, never a silent second truth.
        let saved = crate::versions::latest(txn.store(), table)?;
        for (n, input) in group {
            let prepare = |mut chunk: Chunk| -> Result<(Chunk, Digests)> {
                validate::check(&input.name, table, &mut chunk, &refs);
                validate::plausible(&input.name, table, &mut chunk, bounds);
                if !saved.is_empty() {
                    saved_in_custos(&input.name, table, &mut chunk, &saved);
                }
                let digests = digester.digests(&chunk.batch)?;
                Ok((refs.with_references(&input.name, table, chunk)?, digests))
            };
            reader::read(
                &input.path,
                &input.name,
                table,
                input.format,
                options,
                &prepare,
                &mut |(mut chunk, digests)| {
                    count.read += chunk.batch.num_rows() as u64;
                    options.progress.add(chunk.batch.num_rows() as u64);
                    let fresh = keys.admit(&input.name, n as u32, &names, &mut chunk, &digests)?;
                    refusals.absorb(table.name, &mut chunk)?;
                    if fresh.num_rows() > 0 {
                        let fresh = validate::number_rows(table, &fresh, &mut next)?;
                        count.added += fresh.num_rows() as u64;
                        if table.name == catalog::HOLIDAYS.name {
                            note_holidays(&fresh, &mut new_holidays);
                        }
                        // Refused rows are known still, so that rows referring to them are not
                        // refused too: the one mistake is reported once.
                        if References::needs(table) {
                            fresh_batches.push(fresh.clone());
                        }
                        // Once a row is refused nothing is committed: nothing more is written.
                        if !refusals.any() {
                            sink.write(&mut txn, &fresh)?;
                        }
                    }
                    Ok(())
                },
            )?;
        }
        for batch in &fresh_batches {
            refs.absorb(table, batch)?;
        }
        sink.close(&mut txn)?;
    }
    // Every row was read and judged: any refused fails the import, naming them all.
    refusals.finish()?;
    for dates in new_holidays.values_mut() {
        dates.sort();
    }
    report.new_holidays = new_holidays;
    report.entry = txn.commit(committed_at, names)?;
    Ok(report)
}

/// Adds the holidays of `batch` (rows new to the store) to `out`, by calendar.
fn note_holidays(batch: &RecordBatch, out: &mut BTreeMap<String, Vec<String>>) {
    let (Some(calendar), Some(date)) = (batch.column_by_name("calendar"), batch.column_by_name("date"))
    else {
        return;
    };
    let (calendar, date) = (calendar.as_string::<i32>(), date.as_primitive::<arrow::datatypes::Date32Type>());
    for row in 0..batch.num_rows() {
        if calendar.is_valid(row) && date.is_valid(row) {
            let day =
                chrono::DateTime::from_timestamp(i64::from(date.value(row)) * 86_400, 0).unwrap_or_default();
            out.entry(calendar.value(row).to_owned()).or_default().push(day.format("%Y-%m-%d").to_string());
        }
    }
}

/// The instants an import at `committed_at` accepts, as `options` say.
/// Refuses the rows of `chunk` whose key is a record saved in Custos (`saved`), naming the
/// version there: the register kept in Custos holds it, and an import does not overwrite it.
fn saved_in_custos(
    file: &str,
    table: &'static Table,
    chunk: &mut Chunk,
    saved: &std::collections::HashMap<String, crate::versions::Saved>,
) {
    let Some(keys) = chunk.batch.column_by_name(table.key[0]).and_then(|c| c.as_string_opt::<i32>().cloned())
    else {
        return;
    };
    for i in 0..keys.len() {
        if keys.is_null(i) {
            continue;
        }
        if let Some(s) = saved.get(keys.value(i)) {
            let problem = format!(
                "this record is kept in Custos (version {} saved by {} at {}): an import does not overwrite it; \
                 change it on the dashboard, or leave it out of the import",
                s.version,
                s.by,
                format_micros(s.at)
            );
            let e =
                InputError::at(file, chunk.origins.at(i), problem).column(table.key[0]).value(keys.value(i));
            chunk.refuse(i, e);
        }
    }
}

/// What a form's row refers to (authorities and cases), read once and then kept up to date
/// with what the store commits since: a form is checked in a moment whatever the store's size.
#[derive(Default)]
pub struct FormReferences {
    refs: References,
    /// Manifest entries read so far.
    seen: usize,
}

impl FormReferences {
    /// Reads the authorities and cases committed since the last look.
    pub fn catch_up(&mut self, store: &Store) -> Result<()> {
        for t in [&catalog::AUTHORITIES, &catalog::CASES] {
            for stored in store.read_files(&store.files_since(t.name, self.seen))? {
                self.refs.absorb(t, &stored)?;
            }
        }
        self.seen = store.entries().len();
        Ok(())
    }
}

/// One row of a register (`breaches`, `dsr_requests`) as a person entered it on a form:
/// `cells` by column name, each as it would be written in a CSV file (empty for none).
/// Checked exactly as an import checks a row (types, allowed values, references to the
/// authorities and cases of `refs`, plausible instants in order, identifiers), every problem
/// of the row named with its column, value and what was expected.
pub fn form_row(
    refs: &FormReferences,
    table: &'static Table,
    cells: &BTreeMap<String, String>,
    form: &str,
    committed_at: &str,
) -> Result<RecordBatch> {
    if let Some(unknown) = cells.keys().find(|k| table.column(k).is_none()) {
        return Err(Error::Usage(format!(
            "{form}: `{unknown}` is not a column of `{}`; expected {}",
            table.name,
            table.columns.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
        )));
    }
    let mut problems = Vec::new();
    let mut b = builder::TableBuilder::new(table, 1);
    for (i, col) in table.columns.iter().enumerate() {
        let cell = cells.get(col.name).map_or("", |c| c.trim());
        if cell.is_empty() {
            b.push_null(i);
        } else if let Err(expected) = b.push_csv(i, cell) {
            b.push_null(i);
            problems.push(format!("{}: `{cell}`: {expected}", col.name));
        }
    }
    b.end_row();
    let batch = b.finish()?;
    let mut chunk = Chunk { batch, origins: reader::Origins::Batch { batch: 0 }, refused: Vec::new() };
    validate::check(form, table, &mut chunk, &refs.refs);
    validate::plausible(form, table, &mut chunk, bounds(committed_at, &Options::default())?);
    for r in &chunk.refused {
        let e = &r.error;
        let what = match (&e.column, &e.value) {
            (Some(c), Some(v)) => format!("{c}: `{v}`: "),
            (Some(c), None) => format!("{c}: "),
            _ => String::new(),
        };
        let problem = format!("{what}{}", e.problem);
        if !problems.contains(&problem) {
            problems.push(problem);
        }
    }
    if !problems.is_empty() {
        return Err(Error::Usage(format!("{form}: {}", problems.join("; "))));
    }
    Ok(chunk.batch)
}

fn bounds(committed_at: &str, options: &Options) -> Result<validate::Bounds> {
    let now = parse_timestamp(committed_at)
        .ok_or_else(|| Error::Usage(format!("`{committed_at}` is not the instant of an import")))?;
    let now = chrono::DateTime::from_timestamp_micros(now).unwrap_or_default();
    let latest = now
        .checked_add_months(chrono::Months::new(12 * options.years_ahead))
        .ok_or_else(|| Error::Usage(format!("{} years ahead is beyond any calendar", options.years_ahead)))?;
    Ok(validate::Bounds { earliest: options.earliest, latest: latest.timestamp_micros() })
}

/// Where accepted rows of one table go: one staged Parquet file, or one per month.
struct TableSink {
    table: &'static Table,
    writers: BTreeMap<Option<String>, (String, u64, ArrowWriter<HashingFile>)>,
}

impl TableSink {
    fn new(table: &'static Table) -> Self {
        TableSink { table, writers: BTreeMap::new() }
    }

    fn write(&mut self, txn: &mut Transaction, batch: &RecordBatch) -> Result<()> {
        match self.table.partition {
            Partition::None => self.write_to(txn, None, batch),
            Partition::Month(column) => {
                let ts = batch
                    .column(self.table.index(column).unwrap_or(0))
                    .as_primitive::<TimestampMicrosecondType>();
                // Rows come mostly in time order: the month of the day before is usually the
                // month of the row, and a batch spans one or two months.
                let mut months: Vec<(i32, Vec<u32>)> = Vec::new();
                let mut last = (i64::MIN, 0);
                for (row, t) in ts.values().iter().enumerate() {
                    let day = t.div_euclid(86_400_000_000);
                    if day != last.0 {
                        last = (day, month_index(day));
                    }
                    match months.iter_mut().find(|(m, _)| *m == last.1) {
                        Some((_, rows)) => rows.push(row as u32),
                        None => months.push((last.1, vec![row as u32])),
                    }
                }
                if months.len() == 1 {
                    return self.write_to(txn, Some(month_name(months[0].0)), batch);
                }
                for (m, rows) in months {
                    let part = take_record_batch(batch, &UInt32Array::from(rows))?;
                    self.write_to(txn, Some(month_name(m)), &part)?;
                }
                Ok(())
            }
        }
    }

    fn write_to(
        &mut self,
        txn: &mut Transaction,
        partition: Option<String>,
        batch: &RecordBatch,
    ) -> Result<()> {
        if !self.writers.contains_key(&partition) {
            let dir = partition.as_ref().map(|m| format!("month={m}"));
            let (path, file) = txn.create(self.table.name, dir.as_deref())?;
            let mut props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
                .set_max_row_group_row_count(Some(1 << 20));
            // Keys and instants are (nearly) all distinct: a dictionary costs time and saves nothing.
            for c in self
                .table
                .columns
                .iter()
                .filter(|c| self.table.key.contains(&c.name) || c.kind == crate::catalog::Kind::Timestamp)
            {
                props = props.set_column_dictionary_enabled(c.name.into(), false);
            }
            let props = props.build();
            let writer = ArrowWriter::try_new(file, self.table.stored_schema(), Some(props))?;
            self.writers.insert(partition.clone(), (path, 0, writer));
        }
        if let Some((_, rows, writer)) = self.writers.get_mut(&partition) {
            writer.write(batch)?;
            *rows += batch.num_rows() as u64;
        }
        Ok(())
    }

    fn close(self, txn: &mut Transaction) -> Result<()> {
        for (_, (path, rows, writer)) in self.writers {
            let file = writer.into_inner()?;
            let done = file.finish().map_err(Error::io(&path))?;
            txn.add(path, self.table.name, rows, done);
        }
        Ok(())
    }
}

/// Months since year 0 of a day counted from 1970-01-01 (UTC).
fn month_index(day: i64) -> i32 {
    let date = chrono::DateTime::from_timestamp(day * 86_400, 0).unwrap_or_default();
    chrono::Datelike::year(&date) * 12 + chrono::Datelike::month0(&date) as i32
}

/// `YYYY-MM` of a [`month_index`].
fn month_name(index: i32) -> String {
    format!("{:04}-{:02}", index.div_euclid(12), index.rem_euclid(12) + 1)
}
