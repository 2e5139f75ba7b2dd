//! A case's facts without a join: what `case_deadline_facts.sql` joins to each case, looked
//! up by number.
//!
//! The query joins ten million cases to their domain, their requesting authority, their
//! responding participant and its authority; each join copies every column of every case.
//! Here the three small tables are read once and indexed by number (`authority_key`) or name
//! (`domain`), the responding participant of every case is found once (`case_key` → the
//! authority), and each batch of cases, read as stored, gets the five columns the query
//! would have added, taken from the small tables by index. The per-subject twin
//! ([`super::check_naive`]) still reads the query, so every test comparing the two compares
//! these look-ups with DataFusion's joins.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{Field, Int32Type, Schema};
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use crate::catalog;
use crate::error::{Error, Result};
use crate::store::Store;

/// No row: a key with nothing behind it.
const NONE: u32 = u32::MAX;

/// The columns `case_deadline_facts.sql` adds to a case, by look-up.
pub(super) struct CaseLookups {
    /// `authorities`, all batches as one.
    authorities: RecordBatch,
    /// The row of `authorities` of each `authority_key`.
    authority_row: Vec<u32>,
    /// `domains`, all batches as one.
    domains: RecordBatch,
    /// The row of `domains` of each domain.
    domain_row: HashMap<String, u32, foldhash::fast::RandomState>,
    /// The row of `authorities` of each case's responding participant (the first by
    /// identifier), by `case_key`.
    responder: Vec<u32>,
}

/// The query, for the cases read as stored: the look-ups add the rest.
pub(super) const SQL: &str = "SELECT * FROM cases";

impl CaseLookups {
    /// Reads the small tables and finds every case's responding participant.
    /// A responding participant who joined after `as_of` is not yet known then.
    pub(super) async fn load(store: &Store, ctx: &SessionContext, as_of: i64) -> Result<CaseLookups> {
        let authorities = one_batch(store, catalog::AUTHORITIES.name)?;
        // Imported domains and the shipped default of every other, as the query sees them.
        let domains = crate::query::effective_domains(store)?;
        let keys = authorities.column_by_name("authority_key").ok_or_else(|| missing("authority_key"))?;
        let keys = keys.as_primitive_opt::<Int32Type>().ok_or_else(|| missing("authority_key"))?;
        let mut authority_row = Vec::new();
        for (row, key) in keys.iter().enumerate() {
            let Some(key) = key.and_then(|k| usize::try_from(k).ok()) else { continue };
            if authority_row.len() <= key {
                authority_row.resize(key + 1, NONE);
            }
            authority_row[key] = row as u32;
        }
        let names = text(&authorities, "authority_id")?;
        // An authority's place in the order of identifiers: the first responder by identifier
        // is the one with the lowest place.
        let mut by_id: Vec<u32> = (0..authorities.num_rows() as u32).collect();
        by_id.sort_unstable_by(|a, b| names.value(*a as usize).cmp(names.value(*b as usize)));
        let mut place = vec![0u32; authorities.num_rows()];
        for (p, row) in by_id.iter().enumerate() {
            place[*row as usize] = p as u32;
        }
        let domain_names = text(&domains, "domain")?;
        let domain_row =
            (0..domains.num_rows()).map(|r| (domain_names.value(r).to_owned(), r as u32)).collect();

        let mut responder: Vec<u32> = Vec::new();
        let mut stream = ctx
            .sql("SELECT case_key, authority_key FROM case_participants WHERE role = 'responding' AND joined_at <= $1")
            .await?
            .with_param_values(vec![crate::audit::ts_param(as_of)])?
            .execute_stream()
            .await?;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let cases = batch.column(0).as_primitive::<Int32Type>();
            let authorities = batch.column(1).as_primitive::<Int32Type>();
            for (case, authority) in cases.iter().zip(authorities.iter()) {
                let (Some(case), Some(row)) = (
                    case.and_then(|c| usize::try_from(c).ok()),
                    authority.and_then(|a| usize::try_from(a).ok()).and_then(|a| authority_row.get(a)),
                ) else {
                    continue;
                };
                if *row == NONE {
                    continue;
                }
                if responder.len() <= case {
                    responder.resize(case + 1, NONE);
                }
                let best = &mut responder[case];
                if *best == NONE || place[*row as usize] < place[*best as usize] {
                    *best = *row;
                }
            }
        }
        Ok(CaseLookups { authorities, authority_row, domains, domain_row, responder })
    }

    /// A batch of `cases` with the columns of `case_deadline_facts.sql` added:
    /// `domain_retention_months`, `special_categories_basis`, `requester_state`, `responder`
    /// and `responder_state`.
    pub(super) fn extend(&self, cases: &RecordBatch) -> Result<RecordBatch> {
        let key = |name: &str| {
            cases
                .column_by_name(name)
                .and_then(|c| c.as_primitive_opt::<Int32Type>())
                .ok_or_else(|| missing(name))
        };
        let (case_key, requesting_key) = (key("case_key")?, key("requesting_key")?);
        let domain = text(cases, "domain")?;
        let rows = |found: &mut dyn Iterator<Item = u32>| -> UInt32Array {
            found.map(|r| (r != NONE).then_some(r)).collect()
        };
        let authority = |k: Option<i32>| {
            k.and_then(|k| usize::try_from(k).ok())
                .and_then(|k| self.authority_row.get(k))
                .copied()
                .unwrap_or(NONE)
        };
        let domain_rows = rows(&mut (0..cases.num_rows()).map(|r| {
            if domain.is_null(r) {
                NONE
            } else {
                self.domain_row.get(domain.value(r)).copied().unwrap_or(NONE)
            }
        }));
        let requester_rows = rows(&mut requesting_key.iter().map(authority));
        let responder_rows = rows(&mut case_key.iter().map(|k| {
            k.and_then(|k| usize::try_from(k).ok())
                .and_then(|k| self.responder.get(k))
                .copied()
                .unwrap_or(NONE)
        }));
        let column = |table: &RecordBatch, name: &str, rows: &UInt32Array| -> Result<ArrayRef> {
            let c = table.column_by_name(name).ok_or_else(|| missing(name))?;
            Ok(take(c.as_ref(), rows, None)?)
        };
        let added: [(&str, ArrayRef); 5] = [
            ("domain_retention_months", column(&self.domains, "retention_months", &domain_rows)?),
            ("special_categories_basis", column(&self.domains, "special_categories_basis", &domain_rows)?),
            ("requester_state", column(&self.authorities, "member_state", &requester_rows)?),
            ("responder", column(&self.authorities, "authority_id", &responder_rows)?),
            ("responder_state", column(&self.authorities, "member_state", &responder_rows)?),
        ];
        let mut fields: Vec<Arc<Field>> = cases.schema().fields().iter().cloned().collect();
        let mut columns = cases.columns().to_vec();
        for (name, array) in added {
            fields.push(Arc::new(Field::new(name, array.data_type().clone(), true)));
            columns.push(array);
        }
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
    }
}

/// Every row of a small table as one batch.
fn one_batch(store: &Store, table: &str) -> Result<RecordBatch> {
    let batches = store.read(table)?;
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => {
            catalog::table(table).ok_or_else(|| Error::Usage(format!("no table `{table}`")))?.stored_schema()
        }
    };
    Ok(concat_batches(&schema, &batches)?)
}

fn text<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a arrow::array::StringArray> {
    batch.column_by_name(name).and_then(|c| c.as_string_opt::<i32>()).ok_or_else(|| missing(name))
}

fn missing(column: &str) -> Error {
    Error::Usage(format!("the store has no column `{column}` of the expected type"))
}
