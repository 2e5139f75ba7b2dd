//! The versions of a register's records saved in Custos (`breach_versions`,
//! `request_versions`), as stored: each key's latest version, and the register as it stands
//! (the latest version of each key, else the imported record) for the query session. Saving
//! them is supervision's (`supervision::edits`); reading them is the store's, so that an
//! import can name a key kept in Custos.

use std::collections::HashMap;

use arrow::array::{AsArray, RecordBatch, StringArray};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};

use crate::catalog::{self, Table};
use crate::error::{Error, Result};
use crate::store::Store;

/// The latest saved version of a record: its number, who saved it and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub key: String,
    pub version: i64,
    pub by: String,
    pub role: String,
    /// UTC microseconds.
    pub at: i64,
}

/// The saved versions in `batch` (of `table`'s versions), each with its record's controller.
pub fn rows(table: &'static Table, batch: &RecordBatch) -> Result<Vec<(Saved, String)>> {
    let bad = |what: &str| Error::Internal(format!("the versions of {}: no column {what}", table.name));
    let text = |name: &str| -> Result<&StringArray> {
        batch.column_by_name(name).and_then(|c| c.as_string_opt::<i32>()).ok_or_else(|| bad(name))
    };
    let (key, by, role, controller) =
        (text(table.key[0])?, text("saved_by")?, text("saved_role")?, text("controller_id")?);
    let version = batch
        .column_by_name("version")
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| bad("version"))?;
    let at = batch
        .column_by_name("saved_at")
        .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
        .ok_or_else(|| bad("saved_at"))?;
    Ok((0..batch.num_rows())
        .map(|i| {
            let saved = Saved {
                key: key.value(i).to_owned(),
                version: version.value(i),
                by: by.value(i).to_owned(),
                role: role.value(i).to_owned(),
                at: at.value(i),
            };
            (saved, controller.value(i).to_owned())
        })
        .collect())
}

/// The latest saved version of every record of `table` saved in Custos, by key.
pub fn latest(store: &Store, table: &'static Table) -> Result<HashMap<String, Saved>> {
    let Some(versions) = catalog::versions_of(table) else { return Ok(HashMap::new()) };
    let mut out: HashMap<String, Saved> = HashMap::new();
    for b in store.read(versions)? {
        for (saved, _) in rows(table, &b)? {
            if out.get(&saved.key).is_none_or(|s| s.version < saved.version) {
                out.insert(saved.key.clone(), saved);
            }
        }
    }
    Ok(out)
}

/// The SQL of the register `table` as it stands: each key's latest saved version, else its
/// imported record (read from `<table>_imported`).
pub fn merged_view(table: &Table) -> Option<String> {
    let versions = catalog::versions_of(table)?;
    let key = table.key[0];
    let schema = table.stored_schema();
    let list = schema.fields().iter().map(|f| format!("\"{}\"", f.name())).collect::<Vec<_>>().join(", ");
    Some(format!(
        "SELECT {list} FROM \"{name}_imported\" WHERE \"{key}\" NOT IN (SELECT \"{key}\" FROM \"{versions}\") \
         UNION ALL \
         SELECT {list} FROM (SELECT *, row_number() OVER (PARTITION BY \"{key}\" ORDER BY version DESC) AS latest FROM \"{versions}\") \
         WHERE latest = 1",
        name = table.name
    ))
}
