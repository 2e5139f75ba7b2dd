//! A table whose files are checked and opened only when a query reads it.
//!
//! Custos's own records that take a file per save (register versions, dispositions, the
//! trail) grow with the store's history. Opening one means checking each of its files against
//! the manifest (hashing it, once per process) and, for the small ones, reading them into
//! memory: registered eagerly, every session would pay for every save ever made, read or not
//! (a command-line audit of a store with 4,000 saves spent 2.3 s on it). Deferred, the work is
//! done for the tables a query reads, once per session, and a damaged file still stops every
//! query that reads it before any of its rows are used.

use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;

/// Opens the table: its files checked, its provider made.
type Open = Box<dyn Fn() -> crate::Result<Arc<dyn TableProvider>> + Send + Sync>;

/// A table of a known schema, opened by `open` the first time a query plans a scan of it or
/// asks which of its filters it can apply.
pub(super) struct Deferred {
    schema: SchemaRef,
    open: Open,
    opened: Mutex<Option<Arc<dyn TableProvider>>>,
}

impl Deferred {
    pub(super) fn new(schema: SchemaRef, open: Open) -> Deferred {
        Deferred { schema, open, opened: Mutex::new(None) }
    }

    /// The table, opened now if no query opened it before. A failure is the engine's error
    /// (a damaged file names itself), carried through DataFusion and unwrapped again by
    /// [`crate::Error`]'s conversion; it is not remembered, so the next query tries again.
    fn table(&self) -> Result<Arc<dyn TableProvider>> {
        let mut opened =
            self.opened.lock().map_err(|_| DataFusionError::Internal("a deferred table's lock".into()))?;
        if let Some(table) = opened.as_ref() {
            return Ok(Arc::clone(table));
        }
        let table = (self.open)().map_err(|e| DataFusionError::External(Box::new(e)))?;
        *opened = Some(Arc::clone(&table));
        Ok(table)
    }
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opened = self.opened.lock().map(|o| o.is_some()).unwrap_or(false);
        f.debug_struct("Deferred").field("schema", &self.schema).field("opened", &opened).finish()
    }
}

#[async_trait]
impl TableProvider for Deferred {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.table()?.scan(state, projection, filters, limit).await
    }

    async fn scan_with_args<'a>(&self, state: &dyn Session, args: ScanArgs<'a>) -> Result<ScanResult> {
        self.table()?.scan_with_args(state, args).await
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.table()?.supports_filters_pushdown(filters)
    }
}
