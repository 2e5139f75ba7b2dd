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

use super::reader::{Chunk, Origins};
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
    /// the number is finding the row referred to: a row referring to no known row is refused,
    /// naming the file, the row and the column (its number is null). A table's own number is
    /// not among them (see [`number_rows`]).
    pub fn with_references(&self, file: &str, table: &'static Table, mut chunk: Chunk) -> Result<Chunk> {
        let own = table.own_surrogate().map(|s| s.name);
        let references: Vec<_> = table.surrogates.iter().filter(|s| Some(s.name) != own).collect();
        if references.is_empty() {
            return Ok(chunk);
        }
        let batch = chunk.batch.clone();
        let mut refused: Vec<(usize, InputError)> = Vec::new();
        let text = |name: &str| batch.column(table.index(name).unwrap_or(0)).as_string::<i32>();
        // An event names its user and the user's own authority: both numbers come from the user.
        let mut from_user: Option<(arrow::array::Int32Array, arrow::array::Int32Array)> = None;
        if table.name == "access_log" {
            let (users, authorities) = (text("user_id"), text("authority_id"));
            let mut user = arrow::array::Int32Builder::with_capacity(batch.num_rows());
            let mut authority = arrow::array::Int32Builder::with_capacity(batch.num_rows());
            for row in 0..batch.num_rows() {
                let (u, a) = (users.value(row), authorities.value(row));
                match self.users.get(u) {
                    None => {
                        if users.is_valid(row) {
                            refused.push((
                                row,
                                dangling(file, &chunk.origins, row, "user_id", u, Entity::User.noun()),
                            ));
                        }
                        user.append_null();
                        authority.append_null();
                    }
                    Some((own, k, ak)) => {
                        if own != a && authorities.is_valid(row) {
                            let error = InputError::at(
                                file,
                                chunk.origins.at(row),
                                format!("user `{u}` works for authority `{own}`: expected the user's own authority"),
                            )
                            .column("authority_id")
                            .value(a);
                            refused.push((row, error));
                        }
                        user.append_value(*k);
                        authority.append_value(*ak);
                    }
                }
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
                        match id.map(|id| (id, self.number(s.entity, id))) {
                            None => numbers.append_null(),
                            Some((_, Some(n))) => numbers.append_value(n),
                            Some((id, None)) => {
                                refused.push((
                                    row,
                                    dangling(file, &chunk.origins, row, s.of, id, s.entity.noun()),
                                ));
                                numbers.append_null();
                            }
                        }
                    }
                    numbers.finish()
                }
            };
            fields.push(Arc::new(Field::new(s.name, catalog::SURROGATE_TYPE, true)));
            columns.push(Arc::new(numbers));
        }
        for (row, error) in refused {
            chunk.refuse(row, error);
        }
        chunk.batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        Ok(chunk)
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

    /// Keeps the rows of `chunk` whose key is new; drops those identical to a known row;
    /// refuses each whose key is known with other content.
    pub fn admit(
        &mut self,
        file: &str,
        file_no: u32,
        files: &[String],
        chunk: &mut Chunk,
        digests: &Digests,
    ) -> Result<RecordBatch> {
        let mut keep = Vec::with_capacity(digests.keys.len());
        let mut refused = Vec::new();
        // A refused row's key may not have parsed: it is kept (so that what refers to it is
        // not refused as well) without being compared, and nothing is committed anyway.
        let bad = chunk.refused_rows();
        for (row, (k, c)) in digests.keys.iter().zip(&digests.contents).enumerate() {
            if bad.as_ref().is_some_and(|b| b[row]) {
                keep.push(true);
                continue;
            }
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
                    refused.push((
                        row,
                        InputError::at(
                            file,
                            chunk.origins.at(row),
                            format!(
                                "a row with this key already exists {whence} with other content: expected the same row again (a no-op) or a new key"
                            ),
                        )
                        .column(self.table.key.join(", "))
                        .value(&key),
                    ));
                    keep.push(false);
                }
            }
        }
        for (row, error) in refused {
            chunk.refuse(row, error);
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

/// Checks every row of `chunk` against the table's constraints and the references, refusing
/// each row that breaks one (every row, every broken constraint).
pub fn check(file: &str, table: &'static Table, chunk: &mut Chunk, refs: &References) {
    let (batch, origins) = (&chunk.batch, &chunk.origins);
    let fail = |row: usize, column: &str, value: &str, problem: String| {
        InputError::at(file, origins.at(row), problem).column(column).value(value)
    };
    let mut refused: Vec<(usize, InputError)> = Vec::new();
    // A cell that did not parse is null: it is not refused again as missing.
    let bad = chunk.refused_rows();
    let is_bad = |row: usize| bad.as_ref().is_some_and(|b| b[row]);
    for (i, column) in table.columns.iter().enumerate() {
        let array = batch.column(i);
        if !column.nullable && column.kind != Kind::TextList && array.null_count() > 0 {
            for row in (0..array.len()).filter(|&r| array.is_null(r) && !is_bad(r)) {
                refused.push((
                    row,
                    InputError::at(
                        file,
                        origins.at(row),
                        format!("a value is required: expected {}", column.kind.expected()),
                    )
                    .column(column.name),
                ));
            }
        }
        match (column.domain, column.kind) {
            (Domain::Any, _) => {}
            (Domain::Range(lo, hi), Kind::Int) => {
                for (row, v) in array.as_primitive::<Int64Type>().iter().enumerate() {
                    if let Some(v) = v.filter(|v| !(lo..=hi).contains(v)) {
                        refused.push((
                            row,
                            fail(
                                row,
                                column.name,
                                &v.to_string(),
                                format!("expected a number from {lo} to {hi}"),
                            ),
                        ));
                    }
                }
            }
            (domain, Kind::Text) => {
                for (row, v) in array.as_string::<i32>().iter().enumerate() {
                    if let Some(v) = v
                        && let Some(expected) = allowed(domain, v)
                    {
                        refused.push((row, fail(row, column.name, v, expected)));
                    }
                }
            }
            (domain, Kind::TextList) => {
                let lists = array.as_list::<i32>();
                for row in 0..lists.len() {
                    let items = lists.value(row);
                    for v in items.as_string::<i32>().iter().flatten() {
                        if let Some(expected) = allowed(domain, v) {
                            refused.push((row, fail(row, column.name, v, expected)));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for (row, error) in refused {
        chunk.refuse(row, error);
    }
    check_references(file, table, chunk, refs);
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

/// The refusal of a reference (`value` in `column` of `row`) to no known `what`.
fn dangling(file: &str, origins: &Origins, row: usize, column: &str, value: &str, what: &str) -> InputError {
    InputError::at(
        file,
        origins.at(row),
        format!("no {what} has this id: expected the id of an imported {what}"),
    )
    .column(column)
    .value(value)
}

fn check_references(file: &str, table: &'static Table, chunk: &mut Chunk, refs: &References) {
    let (batch, origins) = (&chunk.batch, &chunk.origins);
    let text = |name: &str| batch.column(table.index(name).unwrap_or(0)).as_string::<i32>();
    let list = |name: &str| batch.column(table.index(name).unwrap_or(0)).as_list::<i32>();
    let mut refused: Vec<(usize, InputError)> = Vec::new();
    let mut must_exist = |column: &str, set: &dyn Fn(&str) -> bool, what: &str| {
        for (row, v) in text(column).iter().enumerate() {
            if let Some(v) = v.filter(|v| !set(v)) {
                refused.push((row, dangling(file, origins, row, column, v, what)));
            }
        }
    };
    let domain = |v: &str| refs.domains.contains(v);
    let authority = |v: &str| refs.authorities.contains_key(v);
    let case = |v: &str| refs.cases.contains_key(v);
    match table.name {
        // References that have a number (`catalog::Surrogate`) are found, or found missing,
        // as they are numbered: `References::with_references`.
        "cases" => must_exist("domain", &domain, "domain"),
        "dsr_requests" => {
            must_exist("controller_id", &authority, "authority");
            must_exist("case_id", &case, "case");
        }
        "breaches" => must_exist("controller_id", &authority, "authority"),
        _ => {}
    }
    let mut all_exist = |column: &str, set: &dyn Fn(&str) -> bool, what: &str| {
        let lists = list(column);
        for row in 0..lists.len() {
            for v in lists.value(row).as_string::<i32>().iter().flatten() {
                if !set(v) {
                    refused.push((row, dangling(file, origins, row, column, v, what)));
                }
            }
        }
    };
    match table.name {
        "authorities" | "users" => all_exist("domains", &domain, "domain"),
        "breaches" => all_exist("case_ids", &case, "case"),
        _ => {}
    }
    if table.name == "authorities" {
        let (ms, kind) = (text("member_state"), text("kind"));
        for row in 0..batch.num_rows() {
            let (m, k) = (ms.value(row), kind.value(row));
            let expected = match k {
                "commission" | "union_body" if m != "EU" => Some("`EU` for the Commission and Union bodies"),
                "third_country_authority" if m == "EU" || catalog::is_eea(m) => {
                    Some("a third country's code for a third-country authority, not an EEA state or `EU`")
                }
                "competent_authority" | "imi_coordinator" | "national_coordinator" if !catalog::is_eea(m) => {
                    Some("one of the 30 EEA states for a national authority")
                }
                _ => None,
            };
            if let Some(e) = expected {
                let error = InputError::at(file, origins.at(row), format!("expected {e} (kind `{k}`)"))
                    .column("member_state")
                    .value(m);
                refused.push((row, error));
            }
        }
    }
    for (row, error) in refused {
        chunk.refuse(row, error);
    }
}

/// The instants an import accepts: from `earliest` up to `latest` (UTC microseconds).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The first instant accepted.
    pub earliest: i64,
    /// The last instant accepted.
    pub latest: i64,
}

/// Pairs of instants in one row that happen in order: `later` is never before `earlier`.
/// (`deleted_at` of a case follows `blocked_at` if the case was blocked, else `closed_at`.)
const IN_ORDER: &[(&str, &str, &str)] = &[
    ("users", "registered_at", "deactivated_at"),
    ("cases", "created_at", "closed_at"),
    ("cases", "closed_at", "blocked_at"),
    ("cases", "blocked_at", "deleted_at"),
    ("case_participants", "joined_at", "left_at"),
    // A controller becomes aware of a breach after it occurred, and notifies after becoming aware.
    ("breaches", "occurred_at", "aware_at"),
    ("breaches", "aware_at", "notified_at"),
    ("dsr_requests", "received_at", "responded_at"),
    ("dsr_requests", "received_at", "completed_at"),
];

/// Checks that the rows of `chunk` are plausible: every instant and date within `bounds`;
/// the instants of one row in the order they happen ([`IN_ORDER`]); every identifier
/// (a column named `…_id`, or a list of them) non-empty printable ASCII without spaces at
/// either end, so that no two identifiers differ by a letter that only looks the same, an
/// invisible character or a trailing space.
pub fn plausible(file: &str, table: &'static Table, chunk: &mut Chunk, bounds: Bounds) {
    let batch = &chunk.batch;
    let mut refused: Vec<(usize, InputError)> = Vec::new();
    let fail = |row: usize, column: &str, value: String, problem: String| {
        (row, InputError::at(file, chunk.origins.at(row), problem).column(column).value(&value))
    };
    let show = |micros: i64| super::builder::format_micros(micros);
    for (i, column) in table.columns.iter().enumerate() {
        let array = batch.column(i);
        match column.kind {
            Kind::Timestamp => {
                let values = array.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
                for (row, v) in values.iter().enumerate() {
                    if let Some(v) = v.filter(|v| !(bounds.earliest..=bounds.latest).contains(v)) {
                        refused.push(fail(
                            row,
                            column.name,
                            show(v),
                            format!(
                                "an implausible instant: expected one from {} to {}",
                                show(bounds.earliest),
                                show(bounds.latest)
                            ),
                        ));
                    }
                }
            }
            Kind::Date => {
                let values = array.as_primitive::<arrow::datatypes::Date32Type>();
                let (first, last) =
                    (bounds.earliest.div_euclid(86_400_000_000), bounds.latest.div_euclid(86_400_000_000));
                for (row, v) in values.iter().enumerate() {
                    if let Some(v) = v.filter(|v| !(first..=last).contains(&i64::from(*v))) {
                        let day = show(i64::from(v) * 86_400_000_000);
                        refused.push(fail(
                            row,
                            column.name,
                            day[..10.min(day.len())].to_owned(),
                            format!(
                                "an implausible date: expected one from {} to {}",
                                &show(bounds.earliest)[..10],
                                &show(bounds.latest)[..10]
                            ),
                        ));
                    }
                }
            }
            Kind::Text if column.name.ends_with("_id") => {
                for (row, v) in array.as_string::<i32>().iter().enumerate() {
                    if let Some(v) = v
                        && let Some(problem) = identifier_problem(v)
                    {
                        refused.push(fail(row, column.name, v.escape_debug().to_string(), problem.into()));
                    }
                }
            }
            Kind::TextList if column.name.ends_with("_ids") => {
                let lists = array.as_list::<i32>();
                for row in 0..lists.len() {
                    for v in lists.value(row).as_string::<i32>().iter().flatten() {
                        if let Some(problem) = identifier_problem(v) {
                            refused.push(fail(
                                row,
                                column.name,
                                v.escape_debug().to_string(),
                                problem.into(),
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for (name, earlier, later) in IN_ORDER.iter().filter(|(t, ..)| *t == table.name) {
        let (Some(e), Some(l)) = (table.index(earlier), table.index(later)) else { continue };
        let e = batch.column(e).as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        let l = batch.column(l).as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        // A case deleted without being blocked is judged against its closing.
        let closed = (*name == "cases" && *later == "deleted_at")
            .then(|| table.index("closed_at"))
            .flatten()
            .map(|c| batch.column(c).as_primitive::<arrow::datatypes::TimestampMicrosecondType>());
        for row in 0..batch.num_rows() {
            let (mut before, mut before_name) = (e.is_valid(row).then(|| e.value(row)), *earlier);
            if before.is_none()
                && let Some(c) = closed
            {
                (before, before_name) = (c.is_valid(row).then(|| c.value(row)), "closed_at");
            }
            if let (Some(b), true) = (before, l.is_valid(row))
                && l.value(row) < b
            {
                refused.push(fail(
                    row,
                    later,
                    show(l.value(row)),
                    format!("an instant before `{before_name}` ({}): expected one at or after it", show(b)),
                ));
            }
        }
    }
    for (row, error) in refused {
        chunk.refuse(row, error);
    }
}

/// What is wrong with `id` as an identifier, if anything.
fn identifier_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("an empty identifier: expected printable ASCII text")
    } else if id.starts_with(' ') || id.ends_with(' ') {
        Some("an identifier with a space at its start or end: expected none")
    } else if !id.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        Some(
            "an identifier with a control character or a letter outside ASCII (which may only look like another): expected printable ASCII text",
        )
    } else {
        None
    }
}
