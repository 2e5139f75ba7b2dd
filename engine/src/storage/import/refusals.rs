//! The rows an import refuses, gathered across every file so that one run names them all.
//!
//! Readers and checks do not stop at the first bad row: each refusal is noted against its
//! chunk ([`Chunk::refuse`]), and once a chunk is judged its refusals join the import's, in
//! line order ([`Refusals::absorb`]). Nothing is written to the store once any row is
//! refused; at the end, the import fails with [`Error::Refused`] listing the first
//! `--max-errors`, counting the rest and summing them up by kind, and `--rejects FILE` holds
//! every refused row with its reasons.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use arrow::array::{Array, RecordBatch};

use super::reader::Chunk;
use crate::error::{Error, InputError, Location, Refusal, Result};

/// One refused row of a chunk (or a record that never became a row).
#[derive(Debug, Clone)]
pub struct Refused {
    /// The row in the chunk's batch, if the record became one.
    pub row: Option<usize>,
    /// What is wrong, and where.
    pub error: InputError,
    /// The record as read, when it never became a row (a CSV record with too many fields).
    pub record: Option<String>,
}

/// Where in a file, as a number that sorts in file order.
fn order(location: &Location) -> (u64, u64) {
    match location {
        Location::File => (0, 0),
        Location::Line(n) => (*n, 0),
        Location::RowGroup { group, row } => (*group as u64, *row as u64),
        Location::Batch { batch, row } => (*batch as u64, *row as u64),
    }
}

/// The refusals of a whole import.
pub struct Refusals {
    max: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    shown: Vec<InputError>,
    total: u64,
    kinds: BTreeMap<String, u64>,
    rejects: Option<(PathBuf, csv::Writer<std::fs::File>)>,
}

impl Refusals {
    /// Refusals of which the first `max` are quoted; with `rejects`, every refused row is
    /// written there (CSV) as well. The file is created now, so that a path that cannot be
    /// written fails before any work is done.
    pub fn new(max: usize, rejects: Option<&std::path::Path>) -> Result<Refusals> {
        let rejects = match rejects {
            None => None,
            Some(path) => {
                let file = std::fs::File::create(path).map_err(Error::io(path))?;
                let mut w = csv::Writer::from_writer(file);
                w.write_record(["file", "location", "table", "reasons", "row"])
                    .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
                Some((path.to_path_buf(), w))
            }
        };
        Ok(Refusals { max, inner: Mutex::new(Inner { rejects, ..Inner::default() }) })
    }

    /// Whether any row was refused so far.
    pub fn any(&self) -> bool {
        self.inner.lock().map(|i| i.total > 0).unwrap_or(true)
    }

    /// Takes the refusals of a judged chunk of `table`, in line order: each is counted, the
    /// first ones quoted, and each refused row written (once, with all its reasons) to the
    /// rejects file.
    pub fn absorb(&self, table: &str, chunk: &mut Chunk) -> Result<()> {
        if chunk.refused.is_empty() {
            return Ok(());
        }
        let mut refused = std::mem::take(&mut chunk.refused);
        refused.sort_by_key(|r| order(&r.error.location));
        let mut inner = self.inner.lock().map_err(|_| Error::Usage("a reader thread failed".into()))?;
        let inner = &mut *inner;
        for r in &refused {
            inner.total += 1;
            if inner.shown.len() < self.max {
                inner.shown.push(r.error.clone());
            }
            let mut kind = r.error.file.clone();
            if let Some(c) = &r.error.column {
                kind.push_str(&format!(": column `{c}`"));
            }
            kind.push_str(&format!(": {}", r.error.problem));
            *inner.kinds.entry(kind).or_default() += 1;
        }
        if let Some((path, w)) = &mut inner.rejects {
            // One line per refused row, its reasons together.
            let mut rows: Vec<(String, String, Vec<String>, String)> = Vec::new();
            for r in &refused {
                let location = r.error.location.to_string();
                let location = location.trim_start_matches([':', ' ']).to_owned();
                let reason = match (&r.error.column, &r.error.value) {
                    (Some(c), Some(v)) => format!("column `{c}`: value `{v}`: {}", r.error.problem),
                    (Some(c), None) => format!("column `{c}`: {}", r.error.problem),
                    _ => r.error.problem.clone(),
                };
                match rows.last_mut() {
                    Some(last) if last.1 == location && last.0 == r.error.file => last.2.push(reason),
                    _ => {
                        let row = match (&r.record, r.row) {
                            (Some(text), _) => text.clone(),
                            (None, Some(i)) => row_json(&chunk.batch, i),
                            (None, None) => String::new(),
                        };
                        rows.push((r.error.file.clone(), location, vec![reason], row));
                    }
                }
            }
            for (file, location, reasons, row) in rows {
                w.write_record([file.as_str(), &location, table, &reasons.join("; "), &row])
                    .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
            }
        }
        Ok(())
    }

    /// The import's outcome: `Ok` if no row was refused, else the refusal naming them.
    pub fn finish(self) -> Result<()> {
        let inner = self.inner.into_inner().map_err(|_| Error::Usage("a reader thread failed".into()))?;
        let rejects = match inner.rejects {
            Some((path, mut w)) => {
                w.flush().map_err(Error::io(&path))?;
                Some(path)
            }
            None => None,
        };
        if inner.total == 0 {
            if let Some(path) = &rejects {
                let _ = std::fs::remove_file(path);
            }
            return Ok(());
        }
        let mut kinds: Vec<(String, u64)> = inner.kinds.into_iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Err(Error::Refused(Box::new(Refusal { shown: inner.shown, total: inner.total, kinds, rejects })))
    }
}

/// Row `i` of `batch` as a JSON object of its values as text (nulls left out).
fn row_json(batch: &RecordBatch, i: usize) -> String {
    let mut object = serde_json::Map::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if column.is_valid(i) && !field.name().ends_with("_key") {
            let text = arrow::util::display::array_value_to_string(column, i).unwrap_or_default();
            object.insert(field.name().clone(), serde_json::Value::String(text));
        }
    }
    serde_json::Value::Object(object).to_string()
}
