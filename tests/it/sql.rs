//! The production queries of `engine/sql/`, run over a small fixture store, with their results
//! reviewed as data in `tests/sql/*.slt` (sqllogictest).
//!
//! Each query is prepared under the name of its file (`PREPARE indicators AS …`), so a test
//! file runs it with its parameters bound: `EXECUTE indicators(2024)`. `request_facts` is also
//! registered as a table with the Scoreboard's readings for 2023-2024, as of 2025-01-01, since
//! the indicator and benchmark queries read it.
//!
//! `CUSTOS_BLESS=1` rewrites the expected results from what the queries return: review the
//! diff before committing it.

use std::path::{Path, PathBuf};

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use custos_engine::indicator::{self, Options};
use custos_engine::query;
use custos_engine::store::Store;
use datafusion::prelude::SessionContext;
use sqllogictest::{DBOutput, DefaultColumnType};

/// The instant the fixture's figures are judged at.
const AS_OF: &str = "2025-01-01T00:00:00Z";

struct Db {
    ctx: SessionContext,
    rt: tokio::runtime::Runtime,
}

#[derive(Debug)]
struct SqlError(String);

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlError {}

impl Db {
    fn open(store: &Path) -> Db {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let store = Store::open(store).unwrap();
        let ctx = rt.block_on(async {
            let ctx = query::session(&store).await.unwrap();
            let as_of = chrono::DateTime::parse_from_rfc3339(AS_OF).unwrap().timestamp_micros();
            indicator::register_request_facts(&ctx, 2023, 2024, &Options::scoreboard(as_of)).await.unwrap();
            for (name, text, types) in query::sql::ALL {
                let types = if types.is_empty() { String::new() } else { format!("({})", types.join(", ")) };
                let prepare = format!("PREPARE {name}{types} AS {text}");
                ctx.sql(&prepare).await.unwrap().collect().await.unwrap();
            }
            ctx
        });
        Db { ctx, rt }
    }
}

impl sqllogictest::DB for Db {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let batches = self.rt.block_on(async {
            let df = self.ctx.sql(sql).await?;
            df.collect().await
        });
        let batches = batches.map_err(|e| SqlError(e.to_string()))?;
        let Some(schema) = batches.first().map(RecordBatch::schema) else {
            return Ok(DBOutput::StatementComplete(0));
        };
        let types = schema.fields().iter().map(|f| column_type(f.data_type())).collect();
        let mut rows = Vec::new();
        for b in &batches {
            for r in 0..b.num_rows() {
                rows.push(b.columns().iter().map(|c| cell(c.as_ref(), r)).collect());
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }
}

fn column_type(t: &DataType) -> DefaultColumnType {
    match t {
        t if t.is_integer() => DefaultColumnType::Integer,
        t if t.is_floating() || matches!(t, DataType::Decimal128(..)) => DefaultColumnType::FloatingPoint,
        _ => DefaultColumnType::Text,
    }
}

/// A value as the test files show it: NULL, floats to 4 decimals, everything else as Arrow
/// displays it.
fn cell(column: &dyn Array, row: usize) -> String {
    if column.is_null(row) {
        return "NULL".into();
    }
    if let Some(f) = column.as_any().downcast_ref::<arrow::array::Float64Array>() {
        let v = f.value(row);
        let s = format!("{v:.4}");
        return if s == "-0.0000" { "0.0000".into() } else { s };
    }
    let s = arrow::util::display::array_value_to_string(column, row).unwrap_or_default();
    if s.is_empty() { "(empty)".into() } else { s }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_production_query_has_a_sqllogictest() {
    let files: Vec<String> =
        slt_files().iter().filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned())).collect();
    for (name, _, _) in query::sql::ALL {
        assert!(files.iter().any(|f| f == name), "no tests/sql/{name}.slt");
    }
    // And every query file is one the engine knows.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("engine/sql");
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let stem = e.path().file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            query::sql::ALL.iter().any(|(n, _, _)| *n == stem),
            "engine/sql/{stem}.sql is not in query::sql::ALL"
        );
        let text = std::fs::read_to_string(e.path()).unwrap();
        for header in ["-- Purpose:", "-- Inputs:", "-- Outputs:"] {
            assert!(text.contains(header), "engine/sql/{stem}.sql has no `{header}` header");
        }
    }
}

#[test]
fn production_queries_give_the_reviewed_results_on_the_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/analytics");
    let out = super::run(&["import", "--store", store.to_str().unwrap(), fixture.to_str().unwrap()]);
    assert!(out.status.success(), "{}", super::stderr(&out));
    let bless = std::env::var_os("CUSTOS_BLESS").is_some();
    for file in slt_files() {
        let store = store.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let db = Db::open(&store);
            async move { Ok::<_, SqlError>(db) }
        });
        if bless {
            futures::executor::block_on(runner.update_test_file(
                &file,
                " ",
                sqllogictest::default_validator,
                sqllogictest::default_normalizer,
                sqllogictest::default_column_validator,
            ))
            .unwrap();
        } else if let Err(e) = runner.run_file(&file) {
            panic!("{}: {}", file.display(), e.display(true));
        }
    }
}
