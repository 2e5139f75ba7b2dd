//! A case's facts without a join: what `case_deadline_facts.sql` joins to each case, looked
//! up by number.
//!
//! The query joins ten million cases to their domain, their requesting authority, their
//! responding participants and their authorities; each join copies every column of every
//! case. Here the three small tables are read once and indexed by number (`authority_key`)
//! or name (`domain`), the responding participants of every case are found once (`case_key` →
//! the
//! authorities with their periods, in the query's order), and each batch of cases, read as
//! stored, gets the columns the query would have added, taken from the small tables by index. The per-subject twin
//! ([`super::check_naive`]) still reads the query, so every test comparing the two compares
//! these look-ups with DataFusion's joins.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, ListArray, RecordBatch, StructArray, TimestampMicrosecondArray, UInt32Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{DataType, Field, Fields, Int32Type, Schema, TimeUnit, TimestampMicrosecondType};
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
    /// Every responding participation known at the check's instant, ordered by case number,
    /// then as the query orders them (authority identifier, joined): authority row, joined,
    /// left.
    responders: Vec<(u32, i64, Option<i64>)>,
    /// Where each case's responders start in `responders`, by `case_key` (one more than
    /// there are cases).
    responder_start: Vec<u32>,
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
        let domain_names = text(&domains, "domain")?;
        let domain_row =
            (0..domains.num_rows()).map(|r| (domain_names.value(r).to_owned(), r as u32)).collect();

        // (case, authority row, joined, left)
        let mut responders: Vec<(u32, u32, i64, Option<i64>)> = Vec::new();
        let mut stream = ctx
            .sql(
                "SELECT case_key, authority_key, joined_at, left_at FROM case_participants \
                 WHERE role = 'responding' AND joined_at <= $1",
            )
            .await?
            .with_param_values(vec![crate::query::ts_param(as_of)])?
            .execute_stream()
            .await?;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let cases = batch.column(0).as_primitive::<Int32Type>();
            let keys = batch.column(1).as_primitive::<Int32Type>();
            let joined = batch.column(2).as_primitive::<TimestampMicrosecondType>();
            let left = batch.column(3).as_primitive::<TimestampMicrosecondType>();
            for i in 0..batch.num_rows() {
                let (Some(case), Some(&row)) = (
                    cases.is_valid(i).then(|| cases.value(i)).and_then(|c| u32::try_from(c).ok()),
                    keys.is_valid(i)
                        .then(|| keys.value(i))
                        .and_then(|a| usize::try_from(a).ok())
                        .and_then(|a| authority_row.get(a)),
                ) else {
                    continue;
                };
                if row == NONE || joined.is_null(i) {
                    continue;
                }
                responders.push((case, row, joined.value(i), left.is_valid(i).then(|| left.value(i))));
            }
        }
        // Grouped by case, each in the order read (a counting placement rather than a sort:
        // which of a case's responders comes first changes no finding, whose order is total).
        let cases = responders.iter().map(|r| r.0 as usize + 1).max().unwrap_or(0);
        let mut responder_start = vec![0u32; cases + 1];
        for r in &responders {
            responder_start[r.0 as usize + 1] += 1;
        }
        for i in 1..responder_start.len() {
            responder_start[i] += responder_start[i - 1];
        }
        let mut next = responder_start.clone();
        let mut placed = vec![(NONE, 0i64, None); responders.len()];
        for (case, row, joined, left) in responders {
            let at = &mut next[case as usize];
            placed[*at as usize] = (row, joined, left);
            *at += 1;
        }
        let responders = placed;
        Ok(CaseLookups { authorities, authority_row, domains, domain_row, responders, responder_start })
    }

    /// A batch of `cases` with the columns of `case_deadline_facts.sql` added:
    /// `domain_retention_months`, `special_categories_basis`, `domain_repository`,
    /// `requester_state` and `responders`.
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
        let column = |table: &RecordBatch, name: &str, rows: &UInt32Array| -> Result<ArrayRef> {
            let c = table.column_by_name(name).ok_or_else(|| missing(name))?;
            Ok(take(c.as_ref(), rows, None)?)
        };
        let added: [(&str, ArrayRef); 5] = [
            ("domain_retention_months", column(&self.domains, "retention_months", &domain_rows)?),
            ("special_categories_basis", column(&self.domains, "special_categories_basis", &domain_rows)?),
            ("domain_repository", column(&self.domains, "repository", &domain_rows)?),
            ("requester_state", column(&self.authorities, "member_state", &requester_rows)?),
            ("responders", self.responders(case_key)?),
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

impl CaseLookups {
    /// The `responders` column of a batch of cases: a list of {authority_id, member_state,
    /// joined_at, left_at} per case, null when it has none, as the query builds it.
    fn responders(&self, case_key: &arrow::array::Int32Array) -> Result<ArrayRef> {
        let mut offsets = Vec::with_capacity(case_key.len() + 1);
        let mut valid = Vec::with_capacity(case_key.len());
        let mut picked: Vec<u32> = Vec::new();
        offsets.push(0i32);
        for k in case_key.iter() {
            let range = k
                .and_then(|k| usize::try_from(k).ok())
                .filter(|k| k + 1 < self.responder_start.len())
                .map_or(0..0, |k| self.responder_start[k] as usize..self.responder_start[k + 1] as usize);
            valid.push(!range.is_empty());
            picked.extend(range.map(|i| i as u32));
            offsets
                .push(i32::try_from(picked.len()).map_err(|_| Error::Usage("too many responders".into()))?);
        }
        let rows: UInt32Array = picked.iter().map(|&i| self.responders[i as usize].0).collect();
        let time = |t: &mut dyn Iterator<Item = Option<i64>>| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from_iter(t).with_timezone("UTC"))
        };
        let joined = time(&mut picked.iter().map(|&i| Some(self.responders[i as usize].1)));
        let left = time(&mut picked.iter().map(|&i| self.responders[i as usize].2));
        let column = |name: &str| -> Result<ArrayRef> {
            let c = self.authorities.column_by_name(name).ok_or_else(|| missing(name))?;
            Ok(take(c.as_ref(), &rows, None)?)
        };
        let (authority, state) = (column("authority_id")?, column("member_state")?);
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let fields = Fields::from(vec![
            Field::new("authority_id", authority.data_type().clone(), true),
            Field::new("member_state", state.data_type().clone(), true),
            Field::new("joined_at", ts.clone(), true),
            Field::new("left_at", ts, true),
        ]);
        let items = StructArray::try_new(fields.clone(), vec![authority, state, joined, left], None)?;
        let item = Arc::new(Field::new("item", DataType::Struct(fields), true));
        let list =
            ListArray::try_new(item, OffsetBuffer::new(offsets.into()), Arc::new(items), Some(valid.into()))?;
        Ok(Arc::new(list))
    }
}

/// Every row of a small table as one batch.
fn one_batch(store: &Store, table: &str) -> Result<RecordBatch> {
    let batches = store.read(table)?;
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => catalog::table(table)
            .ok_or_else(|| Error::Internal(format!("no table `{table}`")))?
            .stored_schema(),
    };
    Ok(concat_batches(&schema, &batches)?)
}

fn text<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a arrow::array::StringArray> {
    batch.column_by_name(name).and_then(|c| c.as_string_opt::<i32>()).ok_or_else(|| missing(name))
}

fn missing(column: &str) -> Error {
    Error::Internal(format!("the store has no column `{column}` of the expected type"))
}
