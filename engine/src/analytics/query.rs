//! The query layer: one DataFusion session over the store's tables.
//!
//! Every table of [`catalog::TABLES`] is registered from exactly the files the manifest lists
//! (never by listing a directory, which could hold an interrupted import's leftovers), so a
//! query sees the store as of its last commit. `domains` is the effective list: the shipped
//! defaults of [`annex`], replaced or extended by imported rows.
//!
//! Production queries live in `engine/sql/`, one per file, and take their values as
//! parameters (`$1`, `$2`, …), never formatted into the text.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::annex;
use crate::calendar;
use crate::catalog::{self, Table};
use crate::error::{Error, Result};
use crate::period;
use crate::store::Store;

mod deferred;
use deferred::Deferred;

/// The production queries, by name.
pub mod sql {
    /// The facts of every granted access event as they stood at its instant.
    pub const NTK_FACTS: &str = include_str!("../../sql/ntk_facts.sql");
    /// Every case with its domain's retention and the states of the authorities that act.
    pub const CASE_DEADLINE_FACTS: &str = include_str!("../../sql/case_deadline_facts.sql");
    /// Users who ceased to be IMI users.
    pub const USER_DEADLINE_FACTS: &str = include_str!("../../sql/user_deadline_facts.sql");
    /// Data-subject requests with their controller's state.
    pub const REQUEST_DEADLINE_FACTS: &str = include_str!("../../sql/request_deadline_facts.sql");
    /// Breaches with their controller's state.
    pub const BREACH_DEADLINE_FACTS: &str = include_str!("../../sql/breach_deadline_facts.sql");
    /// One row per request with the durations the Scoreboard measures.
    pub const REQUEST_FACTS: &str = include_str!("../../sql/request_facts.sql");
    /// The five Scoreboard indicators by member state and domain.
    pub const INDICATORS: &str = include_str!("../../sql/indicators.sql");
    /// Authorities and member states against their peers.
    pub const BENCHMARK: &str = include_str!("../../sql/benchmark.sql");
    /// Cases of a year by domain, procedure and member state.
    pub const USAGE: &str = include_str!("../../sql/usage.sql");
    /// Days to answer requests of a year, in bands.
    pub const ANSWER_DISTRIBUTION: &str = include_str!("../../sql/answer_distribution.sql");

    /// The latest whole audit's findings, in the order of their events.
    pub const LATEST_FINDINGS: &str = include_str!("../../sql/latest_findings.sql");
    /// The policy set and time of the latest whole audit.
    pub const AUDIT_RUNS: &str = include_str!("../../sql/audit_runs.sql");
    /// The member state of every authority.
    pub const AUTHORITY_STATES: &str = include_str!("../../sql/authority_states.sql");
    /// The Commission's authority.
    pub const COMMISSION_AUTHORITY: &str = include_str!("../../sql/commission_authority.sql");
    /// The breach register with each controller's member state.
    pub const BREACH_REGISTER: &str = include_str!("../../sql/breach_register.sql");
    /// The data-subject requests with each controller's member state.
    pub const REQUEST_REGISTER: &str = include_str!("../../sql/request_register.sql");
    /// The first and last years in which requests were sent.
    pub const REQUEST_YEARS: &str = include_str!("../../sql/request_years.sql");

    /// Every production query: the name of its file, its text, and the SQL types of its
    /// parameters `$1`, `$2`, … (for `PREPARE`, as the sqllogictests run them).
    pub const ALL: [(&str, &str, &[&str]); 17] = [
        ("ntk_facts", NTK_FACTS, &[TIMESTAMP, TIMESTAMP]),
        ("case_deadline_facts", CASE_DEADLINE_FACTS, &[TIMESTAMP]),
        ("user_deadline_facts", USER_DEADLINE_FACTS, &[TIMESTAMP]),
        ("request_deadline_facts", REQUEST_DEADLINE_FACTS, &[]),
        ("breach_deadline_facts", BREACH_DEADLINE_FACTS, &[]),
        ("request_facts", REQUEST_FACTS, &["BIGINT", "BIGINT", "VARCHAR[]", "BOOLEAN", "BOOLEAN", TIMESTAMP]),
        ("indicators", INDICATORS, &["BIGINT"]),
        ("benchmark", BENCHMARK, &["BIGINT"]),
        ("usage", USAGE, &[TIMESTAMP, TIMESTAMP]),
        ("answer_distribution", ANSWER_DISTRIBUTION, &["BIGINT"]),
        ("latest_findings", LATEST_FINDINGS, &[]),
        ("audit_runs", AUDIT_RUNS, &[]),
        ("authority_states", AUTHORITY_STATES, &[]),
        ("commission_authority", COMMISSION_AUTHORITY, &[]),
        ("breach_register", BREACH_REGISTER, &[]),
        ("request_register", REQUEST_REGISTER, &[]),
        ("request_years", REQUEST_YEARS, &[]),
    ];

    const TIMESTAMP: &str = "TIMESTAMP WITH TIME ZONE";
}

/// An instant (UTC microseconds) as a query parameter: a timestamp with the UTC zone.
pub fn ts_param(v: i64) -> datafusion::scalar::ScalarValue {
    datafusion::scalar::ScalarValue::TimestampMicrosecond(Some(v), Some("UTC".into()))
}

/// A DataFusion session with every table of `store` registered.
pub async fn session(store: &Store) -> Result<SessionContext> {
    session_with(store, config()).await
}

/// The session configuration of every query: all cores, Parquet statistics used to plan;
/// then any DataFusion option set in the environment (see [`environment`]).
pub fn config() -> SessionConfig {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut config = SessionConfig::new()
        .with_target_partitions(threads)
        .with_batch_size(16 * 1024)
        .with_collect_statistics(true)
        .with_information_schema(true);
    // INVARIANT: the command line checked these with `environment()` before any session.
    for (key, value) in environment().unwrap_or_default() {
        let _ = config.options_mut().set(&key, &value);
    }
    config
}

/// DataFusion options set by an operator in the environment, the way DataFusion names them:
/// `datafusion.execution.batch_size` is `DATAFUSION_EXECUTION_BATCH_SIZE`. They apply to every
/// query Custos runs, over Custos's own defaults. An unknown value is an error naming the
/// variable.
pub fn environment() -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut probe = datafusion::config::ConfigOptions::default();
    for entry in datafusion::config::ConfigOptions::default().entries() {
        let var = entry.key.to_uppercase().replace('.', "_");
        if let Ok(value) = std::env::var(&var) {
            probe
                .set(&entry.key, &value)
                .map_err(|e| Error::Usage(format!("environment variable {var}={value}: {e}")))?;
            out.push((entry.key, value));
        }
    }
    Ok(out)
}

/// The configuration of the production queries whose joins are written in the order they must
/// run (the small table built in memory, the events streamed past it): the optimiser keeps it.
pub fn planned_config() -> SessionConfig {
    let mut config = config();
    let optimizer = &mut config.options_mut().optimizer;
    optimizer.join_reordering = false;
    // Every join builds its small side once, shared by all threads, however many rows it has
    // (a few million cases at most): the events then stream through the joins without being
    // repartitioned by key, which would copy every column of every event once per join.
    optimizer.hash_join_single_partition_threshold = usize::MAX;
    optimizer.hash_join_single_partition_threshold_rows = usize::MAX;
    config
}

/// A DataFusion session with every table of `store` registered, configured by `config`.
pub async fn session_with(store: &Store, config: SessionConfig) -> Result<SessionContext> {
    register_all(store, SessionContext::new_with_config(config)).await
}

/// [`session`] whose operators (joins, aggregations, sorts) may hold at most `bytes` of memory
/// together; past it a query fails with a resources error rather than take the machine.
pub async fn session_limited(store: &Store, bytes: usize) -> Result<SessionContext> {
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_limit(bytes, 1.0)
        .build_arc()?;
    register_all(store, SessionContext::new_with_config_rt(config(), runtime)).await
}

/// Registers every table of `store`. IMI's tables, the findings and the policy texts, on
/// which every answer stands, are checked now: a damaged file stops every reader. Custos's own
/// records that take a file per save (register versions, dispositions, the trail) grow with
/// the store's history; they are checked and read when a query reads them (see [`deferred`]),
/// so that a session costs the same however long supervisors have worked in the store.
async fn register_all(store: &Store, ctx: SessionContext) -> Result<SessionContext> {
    for table in catalog::TABLES {
        if table.name == "domains" {
            continue;
        }
        let schema = match table.partition {
            // The access log is the one table that streams past the others through joins:
            // its text as views, which a join copies as 16 bytes rather than the whole string.
            catalog::Partition::Month(_) => views(&table.stored_schema()),
            catalog::Partition::None => table.stored_schema(),
        };
        // A register kept in Custos too (breaches, requests): the imported records beside the
        // versions saved since, and the register as it stands under the table's own name.
        match crate::catalog::versions_of(table) {
            Some(versions) if !store.files(versions).is_empty() => {
                let name = table.name;
                ctx.register_table(format!("{name}_imported"), listing(store.paths(name)?, schema)?)?;
                defer(
                    &ctx,
                    versions,
                    crate::catalog::versions_schema(table),
                    store,
                    move |store, schema| kept(store, versions, schema),
                )?;
                let sql = crate::versions::merged_view(table)
                    .ok_or_else(|| Error::Internal(format!("no view of `{name}`")))?;
                ctx.sql(&format!("CREATE VIEW \"{name}\" AS {sql}")).await?;
            }
            Some(versions) => {
                register(&ctx, store, table.name, schema)?;
                ctx.register_table(versions, listing(Vec::new(), crate::catalog::versions_schema(table))?)?;
            }
            None => register(&ctx, store, table.name, schema)?,
        }
    }
    // Derived tables: the latest audit's findings, and the text of every policy set used.
    let findings = store.latest_paths(crate::catalog::NTK_FINDINGS)?;
    ctx.register_table(
        crate::catalog::NTK_FINDINGS,
        listing(findings, Arc::clone(&crate::finding::SCHEMA))?,
    )?;
    register(&ctx, store, crate::catalog::POLICY_TEXTS, crate::catalog::policy_texts_schema())?;
    // Custos's own records: every version of every review, every visit of the trail.
    defer(
        &ctx,
        crate::catalog::DISPOSITIONS,
        crate::catalog::dispositions_schema(),
        store,
        |store, schema| kept(store, crate::catalog::DISPOSITIONS, schema),
    )?;
    defer(&ctx, crate::catalog::TRAIL, crate::catalog::trail_schema(), store, |store, schema| {
        listing(store.paths(crate::catalog::TRAIL)?, schema)
    })?;
    let domains = effective_domains(store)?;
    ctx.register_table("domains", Arc::new(MemTable::try_new(domains.schema(), vec![vec![domains]])?))?;
    ctx.register_udf(end_of_local_day());
    ctx.register_udf(local_year());
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(InAnyPeriod::new()));
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(PackedPeriods::new()));
    Ok(ctx)
}

/// `end_of_local_day(ts, member_state)`: 24:00 of the day of `ts` in the member state's legal
/// time (`EU`: Brussels), as [`period::end_of_local_day`] computes it, so that SQL judges an
/// agreed day exactly as the deadline checks do.
fn end_of_local_day() -> datafusion::logical_expr::ScalarUDF {
    use arrow::datatypes::{DataType, TimeUnit};
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    zoned_udf("end_of_local_day", utc, |t, zone| period::end_of_local_day(t, zone).timestamp_micros())
}

/// `local_year(ts, member_state)`: the year of `ts` in the member state's legal time (`EU`:
/// Brussels, where the Commission counts the years of its reports).
fn local_year() -> datafusion::logical_expr::ScalarUDF {
    use chrono::Datelike;
    zoned_udf("local_year", arrow::datatypes::DataType::Int64, |t, zone| {
        i64::from(t.with_timezone(zone).year())
    })
}

/// A UDF `name(ts, member_state)`: `f` of the instant `ts` and the member state's zone, as a
/// value of type `returns` (microseconds, for a timestamp); null where either is null.
fn zoned_udf(
    name: &str,
    returns: arrow::datatypes::DataType,
    f: fn(chrono::DateTime<chrono::Utc>, &chrono_tz::Tz) -> i64,
) -> datafusion::logical_expr::ScalarUDF {
    use arrow::array::{Array, AsArray, Int64Array};
    use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let out_type = returns.clone();
    let fun = Arc::new(move |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let ts = arrays[0].as_primitive::<TimestampMicrosecondType>();
        let states = arrow::compute::cast(&arrays[1], &DataType::Utf8)?;
        let states = states.as_string::<i32>();
        let out: Int64Array = ts
            .iter()
            .zip(states.iter())
            .map(|(t, state)| Some(f(chrono::DateTime::from_timestamp_micros(t?)?, &calendar::zone(state?))))
            .collect();
        let array = arrow::compute::cast(&out, &out_type)?;
        // A scalar when every argument was one, else the array.
        let scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        Ok(if scalar && array.len() == 1 {
            ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&array, 0)?)
        } else {
            ColumnarValue::Array(array)
        })
    });
    create_udf(name, vec![utc, DataType::Utf8], returns, Volatility::Immutable, fun)
}

/// `in_any_period(ts, periods [, authority])`: whether `ts` falls in one of `periods`, a list
/// of `{joined, left}` instants, each the half-open period `[joined, left)` (`left` null: still
/// taking part), or the same list packed by `packed_periods`. The periods may say whose they
/// are (`{authority, joined, left}`, the authority's number); given `authority`, only its
/// periods count. False for a null list: no period at all. The need-to-know facts use it to
/// tell whether the event's authority took part in its case at the event's instant, whatever
/// the overlap of its periods, from one list per case.
#[derive(Debug, PartialEq, Eq, Hash)]
struct InAnyPeriod {
    signature: datafusion::logical_expr::Signature,
}

impl InAnyPeriod {
    fn new() -> InAnyPeriod {
        use datafusion::logical_expr::{Signature, TypeSignature, Volatility};
        let forms = vec![TypeSignature::Any(2), TypeSignature::Any(3)];
        InAnyPeriod { signature: Signature::one_of(forms, Volatility::Immutable) }
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for InAnyPeriod {
    fn name(&self) -> &str {
        "in_any_period"
    }
    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }
    fn return_type(
        &self,
        _: &[arrow::datatypes::DataType],
    ) -> datafusion::error::Result<arrow::datatypes::DataType> {
        Ok(arrow::datatypes::DataType::Boolean)
    }
    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
        use arrow::array::{Array, AsArray, BooleanArray};
        use arrow::buffer::BooleanBuffer;
        use arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};
        use datafusion::error::DataFusionError;
        let usage = || {
            DataFusionError::Plan(
                "in_any_period(ts, periods [, authority]) takes a timestamp, a list of {joined, left} or \
                 {authority, joined, left} periods (or the list packed by packed_periods) and an \
                 authority's number"
                    .into(),
            )
        };
        let arrays = datafusion::logical_expr::ColumnarValue::values_to_arrays(&args.args)?;
        let ts = arrays[0].as_primitive_opt::<TimestampMicrosecondType>().ok_or_else(usage)?;
        let rows = args.number_rows.min(ts.len());
        let whose = match arrays.get(2) {
            Some(a) => Some(arrow::compute::cast(a, &DataType::Int64).map_err(|_| usage())?),
            None => None,
        };
        let whose = whose.as_ref().map(|a| a.as_primitive::<Int64Type>());
        // Whose periods count at row `i`: `None`, any; `Some(None)`, none (no authority given).
        let wanted = |i: usize| whose.map(|w| (!w.is_null(i)).then(|| w.value(i)));
        let counts = |wanted: Option<Option<i64>>, authority: Option<i64>| match wanted {
            None => true,
            Some(w) => w.is_some() && w == authority,
        };
        let out = if let Some(packed) = arrays[1].as_binary_view_opt() {
            BooleanBuffer::collect_bool(rows, |i| {
                if ts.is_null(i) || packed.is_null(i) {
                    return false;
                }
                let (t, wanted) = (ts.value(i), wanted(i));
                unpack(packed.value(i)).any(|p| p.joined <= t && t < p.left && counts(wanted, p.authority))
            })
        } else {
            let periods = periods_of(&arrays[1]).ok_or_else(usage)?;
            if whose.is_some() && periods.authority.is_none() {
                return Err(usage());
            }
            let (joined, left) = (periods.joined, periods.left);
            let offsets = periods.list.value_offsets();
            BooleanBuffer::collect_bool(rows, |i| {
                if ts.is_null(i) || periods.list.is_null(i) {
                    return false;
                }
                let (t, wanted) = (ts.value(i), wanted(i));
                (offsets[i] as usize..offsets[i + 1] as usize).any(|j| {
                    !joined.is_null(j)
                        && joined.value(j) <= t
                        && (left.is_null(j) || t < left.value(j))
                        && counts(wanted, periods.authority_at(j))
                })
            })
        };
        Ok(datafusion::logical_expr::ColumnarValue::Array(Arc::new(BooleanArray::new(out, None))))
    }
}

/// A list of `{joined, left}` or `{authority, joined, left}` periods.
struct Periods<'a> {
    list: &'a arrow::array::ListArray,
    /// The authorities' numbers, as 64-bit numbers, if the periods name them.
    authority: Option<arrow::array::Int64Array>,
    joined: &'a arrow::array::TimestampMicrosecondArray,
    left: &'a arrow::array::TimestampMicrosecondArray,
}

impl Periods<'_> {
    /// The authority of period `j` (an item of the list's values), if named.
    fn authority_at(&self, j: usize) -> Option<i64> {
        use arrow::array::Array;
        let a = self.authority.as_ref()?;
        (!a.is_null(j)).then(|| a.value(j))
    }
}

/// The periods of a list-valued argument, or `None` if it is not a list of periods.
fn periods_of(array: &arrow::array::ArrayRef) -> Option<Periods<'_>> {
    use arrow::array::AsArray;
    use arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};
    let list = array.as_list_opt::<i32>()?;
    let values = list.values().as_struct_opt()?;
    let time = |name: &str| values.column_by_name(name)?.as_primitive_opt::<TimestampMicrosecondType>();
    let authority = match values.column_by_name("authority") {
        Some(a) => Some(arrow::compute::cast(a, &DataType::Int64).ok()?.as_primitive::<Int64Type>().clone()),
        None => None,
    };
    (values.num_columns() == 2 + usize::from(authority.is_some())).then_some(())?;
    Some(Periods { list, authority, joined: time("joined")?, left: time("left")? })
}

/// One period as `packed_periods` packs it.
struct Packed {
    authority: Option<i64>,
    joined: i64,
    left: i64,
}

/// Bytes of one packed period: authority, joined, left.
const PACKED: usize = 24;

/// The periods packed by `packed_periods`.
fn unpack(bytes: &[u8]) -> impl Iterator<Item = Packed> + '_ {
    bytes.chunks_exact(PACKED).map(|c| {
        let word = |b: &[u8]| i64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        let authority = word(&c[..8]);
        Packed {
            authority: (authority != i64::MIN).then_some(authority),
            joined: word(&c[8..16]),
            left: word(&c[16..]),
        }
    })
}

/// `packed_periods(periods)`: a list of `{joined, left}` or `{authority, joined, left}`
/// periods (as `in_any_period` takes it) packed into bytes, 24 a period, little-endian: the
/// authority's number (the smallest 64-bit number when the period names none), `joined` and
/// `left` (an open period's as the largest instant). A period without `joined` is left out,
/// as it never counts. Joined to millions of events, a packed list is copied as a 16-byte
/// view, where a list of structs would be copied period by period.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PackedPeriods {
    signature: datafusion::logical_expr::Signature,
}

impl PackedPeriods {
    fn new() -> PackedPeriods {
        use datafusion::logical_expr::{Signature, Volatility};
        PackedPeriods { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for PackedPeriods {
    fn name(&self) -> &str {
        "packed_periods"
    }
    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }
    fn return_type(
        &self,
        _: &[arrow::datatypes::DataType],
    ) -> datafusion::error::Result<arrow::datatypes::DataType> {
        Ok(arrow::datatypes::DataType::BinaryView)
    }
    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
        use arrow::array::{Array, BinaryViewBuilder};
        use datafusion::error::DataFusionError;
        let arrays = datafusion::logical_expr::ColumnarValue::values_to_arrays(&args.args)?;
        let Some(periods) = periods_of(&arrays[0]) else {
            return Err(DataFusionError::Plan(
                "packed_periods(periods) takes a list of {joined, left} or {authority, joined, left} periods"
                    .into(),
            ));
        };
        let (list, joined, left) = (periods.list, periods.joined, periods.left);
        let offsets = list.value_offsets();
        let mut out = BinaryViewBuilder::with_capacity(list.len());
        let mut bytes = Vec::new();
        for i in 0..list.len() {
            if list.is_null(i) {
                out.append_null();
                continue;
            }
            bytes.clear();
            for j in offsets[i] as usize..offsets[i + 1] as usize {
                if joined.is_null(j) {
                    continue;
                }
                bytes.extend_from_slice(&periods.authority_at(j).unwrap_or(i64::MIN).to_le_bytes());
                bytes.extend_from_slice(&joined.value(j).to_le_bytes());
                let l = if left.is_null(j) { i64::MAX } else { left.value(j) };
                bytes.extend_from_slice(&l.to_le_bytes());
            }
            out.append_value(&bytes);
        }
        Ok(datafusion::logical_expr::ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `schema` with its text columns as string views.
fn views(schema: &arrow::datatypes::SchemaRef) -> arrow::datatypes::SchemaRef {
    use arrow::datatypes::{DataType, Field, Schema};
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Registers the committed files of `name` as a table of `schema` (empty if it has none),
/// each file checked now.
fn register(
    ctx: &SessionContext,
    store: &Store,
    name: &str,
    schema: arrow::datatypes::SchemaRef,
) -> Result<()> {
    ctx.register_table(name, listing(store.paths(name)?, schema)?)?;
    Ok(())
}

/// Registers `name`, a table of `schema` that `open` makes from `store` the first time a
/// query reads it.
fn defer(
    ctx: &SessionContext,
    name: &str,
    schema: arrow::datatypes::SchemaRef,
    store: &Store,
    open: impl Fn(&Store, arrow::datatypes::SchemaRef) -> Result<Arc<dyn TableProvider>> + Send + Sync + 'static,
) -> Result<()> {
    let store = store.clone();
    let of = Arc::clone(&schema);
    ctx.register_table(
        name,
        Arc::new(Deferred::new(schema, Box::new(move || open(&store, Arc::clone(&of))))),
    )?;
    Ok(())
}

/// The rows of Custos's own small tables that take a file per save (register versions,
/// dispositions), per store and file, as read once by this process.
type Kept = Vec<(std::path::PathBuf, HashMap<String, Vec<RecordBatch>>)>;
static KEPT: std::sync::LazyLock<std::sync::Mutex<Kept>> = std::sync::LazyLock::new(Default::default);

/// The committed rows of `name`, one of Custos's own tables that take a file per save, as an
/// in-memory table of `schema`. A file is read once per process and kept: a listed file never
/// changes, and every file is checked against the manifest each time before its kept rows are
/// used (an altered file is refused as from disk). A query then reads the registers' hundreds
/// of saves from memory rather than open hundreds of small files, and a save costs the next
/// query one file, not the store's history of saves.
fn kept(store: &Store, name: &str, schema: arrow::datatypes::SchemaRef) -> Result<Arc<dyn TableProvider>> {
    let files = store.files(name);
    let paths = store.checked(&files)?;
    let mut kept = KEPT.lock().map_err(|_| Error::Internal("the kept tables' lock".into()))?;
    let at = match kept.iter().position(|(root, _)| root == store.root()) {
        Some(at) => at,
        None => {
            // A few stores at most: a test process opens many, a server one.
            if kept.len() >= 8 {
                kept.remove(0);
            }
            kept.push((store.root().to_path_buf(), HashMap::new()));
            kept.len() - 1
        }
    };
    let of_store = &mut kept[at].1;
    let mut batches = Vec::new();
    for (record, path) in files.iter().zip(&paths) {
        let key = format!("{} {}", record.path, record.sha256);
        if !of_store.contains_key(&key) {
            of_store.insert(key.clone(), crate::store::read_parquet(path)?);
        }
        batches.extend(of_store[&key].iter().cloned());
    }
    Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
}

/// The Parquet files `paths` as a table of `schema` (empty if there are none).
fn listing(
    paths: Vec<std::path::PathBuf>,
    schema: arrow::datatypes::SchemaRef,
) -> Result<Arc<dyn TableProvider>> {
    if paths.is_empty() {
        return Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?));
    }
    let urls = paths
        .iter()
        .map(|p| {
            let abs = std::path::absolute(p).map_err(Error::io(p))?;
            ListingTableUrl::parse(abs.to_string_lossy()).map_err(Error::from)
        })
        .collect::<Result<Vec<_>>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config =
        ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options).with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// The effective `domains` table: imported rows, plus the shipped default of every code that
/// was not imported.
pub fn effective_domains(store: &Store) -> Result<RecordBatch> {
    let table: &Table = &catalog::DOMAINS;
    let batches = store.read(table.name)?;
    let imported = arrow::compute::concat_batches(&table.schema(), &batches)?;
    let codes: BTreeSet<String> = {
        use arrow::array::AsArray;
        imported.column(0).as_string::<i32>().iter().flatten().map(str::to_owned).collect()
    };
    let defaults: Vec<&annex::DomainDefault> =
        annex::DOMAINS.iter().filter(|d| !codes.contains(d.domain)).collect();
    let mut countries = ListBuilder::new(StringBuilder::new());
    for d in &defaults {
        for c in d.third_countries {
            countries.values().append_value(c);
        }
        countries.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(defaults.iter().map(|d| d.domain))),
        Arc::new(StringArray::from_iter_values(defaults.iter().map(|d| d.name))),
        Arc::new(StringArray::from_iter_values(defaults.iter().map(|d| d.legal_act))),
        Arc::new(Int64Array::from_iter_values(defaults.iter().map(|d| d.retention_months))),
        Arc::new(BooleanArray::from_iter(defaults.iter().map(|d| Some(d.commission_participates)))),
        Arc::new(BooleanArray::from_iter(defaults.iter().map(|d| Some(d.special_categories_basis)))),
        Arc::new(countries.finish()),
        Arc::new(BooleanArray::from_iter(defaults.iter().map(|d| Some(d.repository)))),
    ];
    let shipped = RecordBatch::try_new(table.schema(), columns)?;
    Ok(arrow::compute::concat_batches(&table.schema(), &[imported, shipped])?)
}

/// Plans `sql` for a supervisor: a query only. Anything that would change something (DDL,
/// DML, `SET`, `COPY`) is refused with a message saying so; a mistake is reported with its
/// line and column, and the line itself with a caret under the spot.
pub async fn read_only(ctx: &SessionContext, sql: &str) -> Result<datafusion::dataframe::DataFrame> {
    use datafusion::sql::parser::{DFParser, Statement};
    let statements = DFParser::parse_sql(sql).map_err(|e| Error::Usage(explain_query_error(sql, &e)))?;
    fn is_query(s: &Statement) -> bool {
        use datafusion::sql::sqlparser::ast::Statement as Sql;
        match s {
            Statement::Statement(s) => match s.as_ref() {
                Sql::Query(_) => true,
                Sql::Explain { statement, .. } => matches!(statement.as_ref(), Sql::Query(_)),
                _ => false,
            },
            Statement::Explain(e) => is_query(&e.statement),
            _ => false,
        }
    }
    match statements.len() {
        0 => return Err(Error::Usage("no query given".into())),
        1 if is_query(&statements[0]) => {}
        1 => {
            return Err(Error::Usage(format!(
                "refused: `custos query` runs queries only (SELECT, WITH, VALUES, EXPLAIN) and changes nothing; \
                 this is not one: `{}`",
                first_words(sql)
            )));
        }
        n => return Err(Error::Usage(format!("one query at a time, please: {n} statements given"))),
    }
    // A second line of defence: the planner itself refuses anything but a query.
    let options = datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    ctx.sql_with_options(sql, options).await.map_err(|e| Error::Usage(explain_query_error(sql, &e)))
}

/// The start of `sql`, to quote back.
fn first_words(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().take(4).collect();
    words.join(" ")
}

/// A supervisor's view of why `sql` was not run.
fn explain_query_error(sql: &str, e: &datafusion::error::DataFusionError) -> String {
    let message = e.to_string();
    let position = |key: &str| -> Option<usize> {
        let at = message.rfind(key)? + key.len();
        message[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
    };
    match (position("Line: "), position("Column: ")) {
        (Some(line), Some(column)) if line >= 1 && column >= 1 => {
            let text = sql.lines().nth(line - 1).unwrap_or_default();
            let pad: String =
                text.chars().take(column - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            format!("query error at line {line}, column {column}: {message}\n  {text}\n  {pad}^")
        }
        _ => format!("query error: {message}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow::array::AsArray;

    /// `in_any_period` at the edges, on a list and on the list packed by `packed_periods`:
    /// joining at the instant counts, leaving at it does not, an open period (no `left`) runs
    /// on (to the largest instant, where packing puts it), any of several periods counts, and
    /// only the given authority's when the periods name theirs. (No list at all, an
    /// authority that never took part, is the `ntk_facts` sqllogictest's.)
    #[tokio::test]
    async fn in_any_period_is_half_open_and_takes_any_period() {
        let ctx = SessionContext::new();
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(InAnyPeriod::new()));
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(PackedPeriods::new()));
        let t = |s: &str| format!("arrow_cast(TIMESTAMP '{s}', 'Timestamp(µs, \"UTC\")')");
        let p = |a: &str, b: Option<&str>| {
            let left = b.map_or("arrow_cast(NULL, 'Timestamp(µs, \"UTC\")')".to_owned(), &t);
            format!("named_struct('joined', {}, 'left', {left})", t(a))
        };
        let cases = [
            (
                t("2024-01-01T10:00:00"),
                format!("[{}]", p("2024-01-01T10:00:00", Some("2024-02-01T00:00:00"))),
                true,
            ),
            (
                t("2024-02-01T00:00:00"),
                format!("[{}]", p("2024-01-01T10:00:00", Some("2024-02-01T00:00:00"))),
                false,
            ),
            (t("2024-01-01T09:59:59"), format!("[{}]", p("2024-01-01T10:00:00", None)), false),
            (t("2030-01-01T00:00:00"), format!("[{}]", p("2024-01-01T10:00:00", None)), true),
            (
                t("2024-03-15T00:00:00"),
                format!(
                    "[{}, {}]",
                    p("2024-01-01T00:00:00", Some("2024-02-01T00:00:00")),
                    p("2024-03-01T00:00:00", Some("2024-04-01T00:00:00"))
                ),
                true,
            ),
            (
                t("2024-02-15T00:00:00"),
                format!(
                    "[{}, {}]",
                    p("2024-01-01T00:00:00", Some("2024-02-01T00:00:00")),
                    p("2024-03-01T00:00:00", Some("2024-04-01T00:00:00"))
                ),
                false,
            ),
        ];
        for (ts, periods, expected) in cases {
            // The list as it is, and packed: the same answer.
            for periods in [periods.clone(), format!("packed_periods({periods})")] {
                let sql = format!("SELECT in_any_period({ts}, {periods}) AS p");
                let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
                assert_eq!(batches[0].column(0).as_boolean().value(0), expected, "{sql}");
            }
        }
        // Periods that name their authority: given one, only its periods count; given none
        // (null), none does; a list that names no authority cannot be asked about one.
        let q = |a: i32, joined: &str, left: Option<&str>| {
            let left = left.map_or("arrow_cast(NULL, 'Timestamp(µs, \"UTC\")')".to_owned(), &t);
            format!(
                "named_struct('authority', arrow_cast({a}, 'Int32'), 'joined', {}, 'left', {left})",
                t(joined)
            )
        };
        let two = format!(
            "[{}, {}]",
            q(1, "2024-01-01T00:00:00", Some("2024-02-01T00:00:00")),
            q(2, "2024-01-15T00:00:00", None)
        );
        let cases = [
            (t("2024-01-10T00:00:00"), "arrow_cast(1, 'Int32')", true),
            (t("2024-01-10T00:00:00"), "arrow_cast(2, 'Int32')", false),
            (t("2024-01-15T00:00:00"), "arrow_cast(2, 'Int32')", true),
            (t("2024-02-01T00:00:00"), "arrow_cast(1, 'Int32')", false),
            (t("2024-01-20T00:00:00"), "arrow_cast(3, 'Int32')", false),
            (t("2024-01-20T00:00:00"), "arrow_cast(NULL, 'Int32')", false),
        ];
        for (ts, authority, expected) in cases {
            for periods in [two.clone(), format!("packed_periods({two})")] {
                let sql = format!("SELECT in_any_period({ts}, {periods}, {authority}) AS p");
                let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
                assert_eq!(batches[0].column(0).as_boolean().value(0), expected, "{sql}");
            }
            // Asked without an authority, any period counts (one holds at each of these).
            let sql = format!("SELECT in_any_period({ts}, {two}) AS p");
            let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
            assert!(batches[0].column(0).as_boolean().value(0), "{sql}");
        }
        let unnamed = format!("[{}]", p("2024-01-01T10:00:00", None));
        let sql = format!("SELECT in_any_period({}, {unnamed}, 1) AS p", t("2024-01-02T00:00:00"));
        assert!(ctx.sql(&sql).await.unwrap().collect().await.is_err(), "{sql}");
    }

    /// Custos's own records are read when a query reads them: a session over a store whose
    /// dispositions file was altered opens, answers a query of IMI's tables, and refuses a
    /// query of the dispositions with the store's own words naming the file (not a query
    /// engine's wrapping of them).
    #[tokio::test]
    async fn a_deferred_table_is_checked_when_a_query_reads_it() {
        use crate::finding::{Finding, Instant, Severity, Status, SubjectKind};
        use crate::review::{Change, Reviews, State};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(dir.path()).unwrap();
        let finding = Finding {
            rule: "NTK-DOMAIN".into(),
            status: Status::Unmet,
            subject_kind: SubjectKind::Event,
            subject_id: "E-1".into(),
            severity: Severity::Violation,
            ..Finding::default()
        };
        let change =
            Change { state: State::UnderReview, by: "anna".into(), role: "dpa".into(), ..Change::default() };
        let mut reviews = Reviews::load(&store).unwrap();
        reviews.record(&store, &[(&finding, "h1", 0)], &change, Instant(1_700_000_000_000_000)).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let count = |sql: &'static str| {
            let store = store.clone();
            async move { session(&store).await?.sql(sql).await?.collect().await.map_err(Error::from) }
        };
        assert!(count("SELECT count(*) FROM dispositions").await.is_ok());

        let file = store.files(crate::catalog::DISPOSITIONS)[0].path.clone();
        let path = dir.path().join(&file);
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
        std::fs::write(&path, bytes).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ctx = session(&store).await.unwrap();
        let cases = ctx.sql("SELECT count(*) FROM cases").await.unwrap().collect().await.unwrap();
        assert_eq!(cases[0].column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0), 0);
        let refused = count("SELECT count(*) FROM dispositions").await.unwrap_err();
        match &refused {
            Error::Store { message, .. } => {
                assert!(message.contains(&file) && message.contains("was altered"), "{refused}")
            }
            other => panic!("not the store's error: {other:?}"),
        }
    }
}
