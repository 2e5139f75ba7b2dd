//! The checks every imported row passes before anything is written: required values present,
//! values among the allowed ones, references resolving to rows that exist (in the store or
//! earlier in the same import), and keys that do not contradict rows already known.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Field, Int32Type, Int64Type, Schema};
use arrow::row::{RowConverter, SortField};
use xxhash_rust::xxh3::{Xxh3Builder, xxh3_128};

use super::reader::Chunk;
use crate::annex;
use crate::catalog::{self, Domain, Entity, Kind, Table};
use crate::error::{InputError, Result};

/// What references can point to: the rows of the store plus those accepted so far, each
/// authority, user and case with its number (see [`catalog::Surrogate`]).
#[derive(Debug, Default)]
pub struct References {
    domains: HashSet<String, Xxh3Builder>,
    authorities: HashMap<String, i32, Xxh3Builder>,
    /// User to the authority they work for, the user's number and the authority's.
    users: HashMap<String, (String, i32, i32), Xxh3Builder>,
    cases: HashMap<String, i32, Xxh3Builder>,
}

impl References {
    /// An empty set of references that knows the shipped domains.
    pub fn new() -> Self {
        let mut r = References::default();
        r.domains.extend(annex::DOMAINS.iter().map(|d| d.domain.to_owned()));
        r
    }

    /// Whether rows of `table` can be referred to (and so must be absorbed).
    pub fn needs(table: &Table) -> bool {
        matches!(table.name, "domains" | "authorities" | "users" | "cases")
    }

    /// Adds the keys of stored rows of `table` (with their surrogate columns).
    pub fn absorb(&mut self, table: &Table, batch: &RecordBatch) -> Result<()> {
        let text = |name: &str| batch.column(table.index(name).unwrap_or(0)).as_string::<i32>().clone();
        let number = |name: &str| -> Result<arrow::array::Int32Array> {
            batch.column_by_name(name).map(|c| c.as_primitive::<Int32Type>().clone()).ok_or_else(|| {
                InputError::file(table.name, format!("stored rows have no `{name}` column")).into()
            })
        };
        match table.name {
            "domains" => self.domains.extend(text("domain").iter().flatten().map(str::to_owned)),
            "authorities" => {
                let (a, k) = (text("authority_id"), number("authority_key")?);
                for (a, k) in a.iter().zip(k.iter()) {
                    if let (Some(a), Some(k)) = (a, k) {
                        self.authorities.insert(a.to_owned(), k);
                    }
                }
            }
            "users" => {
                let (u, a) = (text("user_id"), text("authority_id"));
                let (k, ak) = (number("user_key")?, number("authority_key")?);
                for (((u, a), k), ak) in u.iter().zip(a.iter()).zip(k.iter()).zip(ak.iter()) {
                    if let (Some(u), Some(a), Some(k), Some(ak)) = (u, a, k, ak) {
                        self.users.insert(u.to_owned(), (a.to_owned(), k, ak));
                    }
                }
            }
            "cases" => {
                let (c, k) = (text("case_id"), number("case_key")?);
                for (c, k) in c.iter().zip(k.iter()) {
                    if let (Some(c), Some(k)) = (c, k) {
                        self.cases.insert(c.to_owned(), k);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The number of the `entity` called `id`, if it is known.
    fn number(&self, entity: Entity, id: &str) -> Option<i32> {
        match entity {
            Entity::Authority => self.authorities.get(id).copied(),
            Entity::User => self.users.get(id).map(|(_, k, _)| *k),
            Entity::Case => self.cases.get(id).copied(),
        }
    }

    /// The rows of `chunk` (of `file`, checked by [`check`]) with the surrogate columns of
    /// their references appended: the number of each row's authority, user or case. Finding
    /// the number is finding the row referred to: a reference to no known row is an error
    /// naming the file, the row and the column. A table's own number is not among them (see
    /// [`number_rows`]).
    pub fn with_references(&self, file: &str, table: &'static Table, chunk: Chunk) -> Result<Chunk> {
        let own = table.own_surrogate().map(|s| s.name);
        let references: Vec<_> = table.surrogates.iter().filter(|s| Some(s.name) != own).collect();
        if references.is_empty() {
            return Ok(chunk);
        }
        let batch = &chunk.batch;
        let text = |name: &str| batch.column(table.index(name).unwrap_or(0)).as_string::<i32>();
        let dangling = |row: usize, column: &str, value: &str, entity: Entity| {
            dangling(file, &chunk, row, column, value, entity.noun())
        };
        // An event names its user and the user's own authority: both numbers come from the user.
        let mut from_user: Option<(arrow::array::Int32Array, arrow::array::Int32Array)> = None;
        if table.name == "access_log" {
            let (users, authorities) = (text("user_id"), text("authority_id"));
            let mut user = arrow::array::Int32Builder::with_capacity(batch.num_rows());
            let mut authority = arrow::array::Int32Builder::with_capacity(batch.num_rows());
            for row in 0..batch.num_rows() {
                let (u, a) = (users.value(row), authorities.value(row));
                let Some((own, k, ak)) = self.users.get(u) else {
                    return Err(dangling(row, "user_id", u, Entity::User));
                };
                if own != a {
                    return Err(InputError::at(
                        file,
                        chunk.origins.at(row),
                        format!("user `{u}` works for authority `{own}`: expected the user's own authority"),
                    )
                    .column("authority_id")
                    .value(a)
                    .into());
                }
                user.append_value(*k);
                authority.append_value(*ak);
            }
            from_user = Some((user.finish(), authority.finish()));
        }
        let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
        let mut columns = batch.columns().to_vec();
        for s in references {
            let numbers = match (&from_user, s.entity) {
                (Some((user, _)), Entity::User) => user.clone(),
                (Some((_, authority)), Entity::Authority) => authority.clone(),
                _ => {
                    let ids = text(s.of);
                    let mut numbers = arrow::array::Int32Builder::with_capacity(ids.len());
                    for (row, id) in ids.iter().enumerate() {
                        match id {
                            None => numbers.append_null(),
                            Some(id) => match self.number(s.entity, id) {
                                Some(n) => numbers.append_value(n),
                                None => return Err(dangling(row, s.of, id, s.entity)),
                            },
                        }
                    }
                    numbers.finish()
                }
            };
            fields.push(Arc::new(Field::new(s.name, catalog::SURROGATE_TYPE, true)));
            columns.push(Arc::new(numbers));
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        Ok(Chunk { batch, origins: chunk.origins })
    }
}

/// Rows of `table` with their references numbered (see [`References::with_references`]) as
/// the store keeps them: the table's own number given to each row, counting on from `next`.
pub fn number_rows(table: &'static Table, batch: &RecordBatch, next: &mut i32) -> Result<RecordBatch> {
    let schema = table.stored_schema();
    let own = table.own_surrogate().map(|s| s.name);
    let rows = batch.num_rows() as i32;
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            if Some(f.name().as_str()) == own {
                let numbers: arrow::array::Int32Array = (*next..*next + rows).collect();
                Ok(Arc::new(numbers) as arrow::array::ArrayRef)
            } else {
                batch.column_by_name(f.name()).cloned().ok_or_else(|| {
                    InputError::file(table.name, format!("no column `{}` to store", f.name())).into()
                })
            }
        })
        .collect::<Result<Vec<_>>>()?;
    *next += rows;
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// A hasher for keys that are already uniformly distributed hashes.
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

/// Where a known key was first seen: the store, or an input file of this import.
const FROM_STORE: u32 = u32::MAX;

/// Digests of a batch's rows: of each key, and of each whole row.
pub struct Digests {
    keys: Vec<u128>,
    contents: Vec<u64>,
}

/// Computes [`Digests`] from Arrow's row encoding (the same values always encode the same).
pub struct Digester {
    table: &'static Table,
    key_rows: RowConverter,
    all_rows: RowConverter,
}

impl Digester {
    /// A digester for `table`.
    pub fn new(table: &'static Table) -> Result<Self> {
        let schema = table.schema();
        let field = |i: usize| SortField::new(schema.field(i).data_type().clone());
        Ok(Digester {
            table,
            key_rows: RowConverter::new(table.key_indices().into_iter().map(field).collect())?,
            all_rows: RowConverter::new((0..schema.fields().len()).map(field).collect())?,
        })
    }

    /// The digests of every row of `batch`.
    pub fn digests(&self, batch: &RecordBatch) -> Result<Digests> {
        let keys: Vec<_> = self.table.key_indices().into_iter().map(|i| batch.column(i).clone()).collect();
        let keys = self.key_rows.convert_columns(&keys)?;
        // The table's own columns only: stored rows carry surrogate columns after them.
        let rows = self.all_rows.convert_columns(&batch.columns()[..self.table.columns.len()])?;
        Ok(Digests {
            keys: keys.iter().map(|r| xxh3_128(r.as_ref())).collect(),
            contents: rows.iter().map(|r| xxhash_rust::xxh3::xxh3_64(r.as_ref())).collect(),
        })
    }
}

/// The keys of one table known so far, each with a digest of its row's content.
pub struct KeyIndex {
    table: &'static Table,
    seen: HashMap<u128, (u64, u32), BuildHasherDefault<PassThrough>>,
}

impl KeyIndex {
    /// An empty index for `table`.
    pub fn new(table: &'static Table) -> Result<Self> {
        Ok(KeyIndex { table, seen: HashMap::default() })
    }

    /// Makes room for `n` more keys at once, rather than doubling the table as they come.
    pub fn reserve(&mut self, n: usize) {
        self.seen.reserve(n);
    }

    /// Records rows already in the store.
    pub fn add_stored(&mut self, batch: &RecordBatch, digester: &Digester) -> Result<()> {
        let d = digester.digests(batch)?;
        for (k, c) in d.keys.into_iter().zip(d.contents) {
            self.seen.insert(k, (c, FROM_STORE));
        }
        Ok(())
    }

    /// Keeps the rows of `chunk` whose key is new; drops those identical to a known row; fails
    /// on the first whose key is known with other content.
    pub fn admit(
        &mut self,
        file: &str,
        file_no: u32,
        files: &[String],
        chunk: &Chunk,
        digests: &Digests,
    ) -> Result<RecordBatch> {
        let mut keep = Vec::with_capacity(digests.keys.len());
        for (row, (k, c)) in digests.keys.iter().zip(&digests.contents).enumerate() {
            match self.seen.get(k) {
                None => {
                    self.seen.insert(*k, (*c, file_no));
                    keep.push(true);
                }
                Some((known, _)) if known == c => keep.push(false),
                Some((_, from)) => {
                    let whence = match *from {
                        FROM_STORE => "in the store".to_owned(),
                        n if n == file_no => "earlier in this file".to_owned(),
                        n => format!("in `{}`", files.get(n as usize).map_or("?", String::as_str)),
                    };
                    let key = self.key_text(&chunk.batch, row);
                    return Err(InputError::at(
                        file,
                        chunk.origins.at(row),
                        format!(
                            "a row with this key already exists {whence} with other content: expected the same row again (a no-op) or a new key"
                        ),
                    )
                    .column(self.table.key.join(", "))
                    .value(&key)
                    .into());
                }
            }
        }
        if keep.iter().all(|k| *k) {
            return Ok(chunk.batch.clone());
        }
        Ok(filter_record_batch(&chunk.batch, &BooleanArray::from(keep))?)
    }

    fn key_text(&self, batch: &RecordBatch, row: usize) -> String {
        self.table
            .key_indices()
            .into_iter()
            .map(|i| arrow::util::display::array_value_to_string(batch.column(i), row).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Checks every row of `chunk` against the table's constraints and the references.
pub fn check(file: &str, table: &'static Table, chunk: &Chunk, refs: &References) -> Result<()> {
    let batch = &chunk.batch;
    let fail = |row: usize, column: &str, value: &str, problem: String| -> crate::Error {
        InputError::at(file, chunk.origins.at(row), problem).column(column).value(value).into()
    };
    for (i, column) in table.columns.iter().enumerate() {
        let array = batch.column(i);
        if !column.nullable && column.kind != Kind::TextList && array.null_count() > 0 {
            let row = (0..array.len()).find(|&r| array.is_null(r)).unwrap_or(0);
            return Err(InputError::at(
                file,
                chunk.origins.at(row),
                format!("a value is required: expected {}", column.kind.expected()),
            )
            .column(column.name)
            .into());
        }
        match (column.domain, column.kind) {
            (Domain::Any, _) => {}
            (Domain::Range(lo, hi), Kind::Int) => {
                for (row, v) in array.as_primitive::<Int64Type>().iter().enumerate() {
                    if let Some(v) = v.filter(|v| !(lo..=hi).contains(v)) {
                        return Err(fail(
                            row,
                            column.name,
                            &v.to_string(),
                            format!("expected a number from {lo} to {hi}"),
                        ));
                    }
                }
            }
            (domain, Kind::Text) => {
                for (row, v) in array.as_string::<i32>().iter().enumerate() {
                    if let Some(v) = v
                        && let Some(expected) = allowed(domain, v)
                    {
                        return Err(fail(row, column.name, v, expected));
                    }
                }
            }
            (domain, Kind::TextList) => {
                let lists = array.as_list::<i32>();
                for row in 0..lists.len() {
                    let items = lists.value(row);
                    for v in items.as_string::<i32>().iter().flatten() {
                        if let Some(expected) = allowed(domain, v) {
                            return Err(fail(row, column.name, v, expected));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    check_references(file, table, chunk, refs)
}

/// `None` if `v` is allowed by `domain`, else what was expected.
fn allowed(domain: Domain, v: &str) -> Option<String> {
    match domain {
        // Length and first byte first: at most one full comparison per value.
        Domain::OneOf(values)
            if !values
                .iter()
                .any(|a| a.len() == v.len() && a.as_bytes().first() == v.as_bytes().first() && *a == v) =>
        {
            Some(format!(
                "expected one of {}",
                values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
            ))
        }
        Domain::Country if !catalog::is_country_code(v) => Some(
            "expected a country code: two capital letters (ISO 3166-1 alpha-2, `GR` for Greece) or `EU`"
                .into(),
        ),
        Domain::Supervisor if v != "EDPS" && !catalog::is_country_code(v) => {
            Some("expected `EDPS` or the national supervisor's country code".into())
        }
        _ => None,
    }
}

/// The error of a reference (`value` in `column` of `row`) to no known `what`.
fn dangling(file: &str, chunk: &Chunk, row: usize, column: &str, value: &str, what: &str) -> crate::Error {
    InputError::at(
        file,
        chunk.origins.at(row),
        format!("no {what} has this id: expected the id of an imported {what}"),
    )
    .column(column)
    .value(value)
    .into()
}

fn check_references(file: &str, table: &'static Table, chunk: &Chunk, refs: &References) -> Result<()> {
    let batch = &chunk.batch;
    let text = |name: &str| batch.column(table.index(name).unwrap_or(0)).as_string::<i32>();
    let list = |name: &str| batch.column(table.index(name).unwrap_or(0)).as_list::<i32>();
    let dangling =
        |row: usize, column: &str, value: &str, what: &str| dangling(file, chunk, row, column, value, what);
    let must_exist = |column: &str, set: &dyn Fn(&str) -> bool, what: &str| -> Result<()> {
        for (row, v) in text(column).iter().enumerate() {
            if let Some(v) = v.filter(|v| !set(v)) {
                return Err(dangling(row, column, v, what));
            }
        }
        Ok(())
    };
    let all_exist = |column: &str, set: &dyn Fn(&str) -> bool, what: &str| -> Result<()> {
        let lists = list(column);
        for row in 0..lists.len() {
            for v in lists.value(row).as_string::<i32>().iter().flatten() {
                if !set(v) {
                    return Err(dangling(row, column, v, what));
                }
            }
        }
        Ok(())
    };
    let domain = |v: &str| refs.domains.contains(v);
    let authority = |v: &str| refs.authorities.contains_key(v);
    let case = |v: &str| refs.cases.contains_key(v);
    match table.name {
        "authorities" => {
            all_exist("domains", &domain, "domain")?;
            let (ms, kind) = (text("member_state"), text("kind"));
            for row in 0..batch.num_rows() {
                let (m, k) = (ms.value(row), kind.value(row));
                let expected = match k {
                    "commission" | "union_body" if m != "EU" => {
                        Some("`EU` for the Commission and Union bodies")
                    }
                    "third_country_authority" if m == "EU" || catalog::is_eea(m) => {
                        Some("a third country's code for a third-country authority, not an EEA state or `EU`")
                    }
                    "competent_authority" | "imi_coordinator" | "national_coordinator"
                        if !catalog::is_eea(m) =>
                    {
                        Some("one of the 30 EEA states for a national authority")
                    }
                    _ => None,
                };
                if let Some(e) = expected {
                    return Err(InputError::at(
                        file,
                        chunk.origins.at(row),
                        format!("expected {e} (kind `{k}`)"),
                    )
                    .column("member_state")
                    .value(m)
                    .into());
                }
            }
        }
        // References that have a number (`catalog::Surrogate`) are found, or found missing,
        // as they are numbered: `References::with_references`.
        "users" => all_exist("domains", &domain, "domain")?,
        "cases" => must_exist("domain", &domain, "domain")?,
        "dsr_requests" => {
            must_exist("controller_id", &authority, "authority")?;
            must_exist("case_id", &case, "case")?;
        }
        "breaches" => {
            must_exist("controller_id", &authority, "authority")?;
            all_exist("case_ids", &case, "case")?;
        }
        _ => {}
    }
    Ok(())
}
