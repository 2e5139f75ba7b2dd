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
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::TimestampMicrosecondType;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

pub use builder::{parse_date, parse_timestamp};
use reader::Chunk;
pub use reader::Format;
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

/// Finds the input files among `paths`: files as given, directories by the files in them
/// that are named after a table. `table` names the table of a single file not so named.
pub fn inputs(paths: &[PathBuf], table: Option<&str>) -> Result<Vec<Input>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(Error::io(path))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            for p in entries {
                match input(&p, None) {
                    Ok(i) => out.push(i),
                    Err(e) => tracing::warn!("skipped {}: {e}", p.display()),
                }
            }
        } else if path.exists() {
            out.push(input(path, table)?);
        } else {
            return Err(InputError::file(path.display().to_string(), "no such file or directory").into());
        }
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
}

/// Imports `inputs` into the store at `root` (created if absent) as one commit stamped
/// `committed_at`. Everything is validated; on any error nothing is stored.
pub fn import(root: &Path, inputs: &[Input], committed_at: &str) -> Result<Report> {
    let store = Store::open_or_create(root)?;
    let mut txn = store.begin("import")?;
    let mut refs = References::new();
    for table in [&catalog::DOMAINS, &catalog::AUTHORITIES, &catalog::USERS, &catalog::CASES] {
        for batch in txn.store().read(table.name)? {
            refs.absorb(table, &batch)?;
        }
    }
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    let mut report = Report::default();
    let mut i = 0;
    while i < inputs.len() {
        let table = inputs[i].table;
        let group: Vec<(usize, &Input)> =
            inputs.iter().enumerate().skip(i).take_while(|(_, x)| x.table.name == table.name).collect();
        i += group.len();
        let digester = Digester::new(table)?;
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
        let mut sink = TableSink::new(table);
        let count = report.tables.entry(table.name).or_default();
        // INVARIANT: no table refers to itself, so the keys a table brings are only needed by
        // later tables: they join the references once the whole table is read. Until then
        // the references are read-only, and checking runs on the reader's thread.
        let mut fresh_batches = Vec::new();
        for (n, input) in group {
            let prepare = |chunk: Chunk| -> Result<(Chunk, Digests)> {
                validate::check(&input.name, table, &chunk, &refs)?;
                let digests = digester.digests(&chunk.batch)?;
                Ok((refs.with_references(&input.name, table, chunk)?, digests))
            };
            reader::read(&input.path, &input.name, table, input.format, &prepare, &mut |(
                chunk,
                digests,
            )| {
                count.read += chunk.batch.num_rows() as u64;
                let fresh = keys.admit(&input.name, n as u32, &names, &chunk, &digests)?;
                if fresh.num_rows() > 0 {
                    let fresh = validate::number_rows(table, &fresh, &mut next)?;
                    count.added += fresh.num_rows() as u64;
                    if References::needs(table) {
                        fresh_batches.push(fresh.clone());
                    }
                    sink.write(&mut txn, &fresh)?;
                }
                Ok(())
            })?;
        }
        for batch in &fresh_batches {
            refs.absorb(table, batch)?;
        }
        sink.close(&mut txn)?;
    }
    report.entry = txn.commit(committed_at, names)?;
    Ok(report)
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
