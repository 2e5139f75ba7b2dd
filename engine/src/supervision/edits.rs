//! The controllers' registers kept in Custos: a DPO records a breach or a data-subject request
//! on the dashboard and completes it later. Each save is a new version of the record (its
//! key's), appended to `breach_versions` or `request_versions` with its author; it supersedes
//! the imported record of that key and every version before it. The query session shows the
//! register as it stands (`breaches`, `dsr_requests`: the latest version of each key, else the
//! imported record), so every rule judges the record as last saved.
//!
//! Imported and saved records merge by key: a save is always newer than the import of its key
//! (an imported record never changes: an import bringing the key again with other content is
//! refused, naming the conflict); two saves from the same version are a conflict
//! ([`Error::Conflict`]), never a lost update.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};

use crate::catalog::{self, Table};
use crate::error::{Error, Result};
use crate::finding::Instant;
use crate::store::Store;
pub use crate::versions::{Saved, latest, merged_view};

/// A register kept in Custos as committed: the latest saved version of each key with its
/// controller, the controller of every imported record, and what a form may refer to. Caught
/// up with the store (only what was committed since) at every save, so a save costs the same
/// whatever the store's size or the number of versions.
pub struct Keeper {
    table: &'static Table,
    versions: &'static str,
    /// Manifest entries read so far.
    seen: usize,
    latest: HashMap<String, (Saved, String)>,
    imported: HashMap<String, String>,
    refs: crate::import::FormReferences,
}

impl Keeper {
    /// The register `table` (`breaches`, `dsr_requests`) of `store`.
    pub fn load(store: &Store, table: &'static Table) -> Result<Keeper> {
        let versions = catalog::versions_of(table)
            .ok_or_else(|| Error::Usage(format!("`{}` is not a register kept in Custos", table.name)))?;
        let mut k = Keeper {
            table,
            versions,
            seen: 0,
            latest: HashMap::new(),
            imported: HashMap::new(),
            refs: Default::default(),
        };
        k.catch_up(store)?;
        Ok(k)
    }

    /// Reads what `store` committed since the last look.
    pub fn catch_up(&mut self, store: &Store) -> Result<()> {
        for b in store.read_files(&store.files_since(self.versions, self.seen))? {
            for (saved, controller) in crate::versions::rows(self.table, &b)? {
                if self.latest.get(&saved.key).is_none_or(|(s, _)| s.version < saved.version) {
                    self.latest.insert(saved.key.clone(), (saved, controller));
                }
            }
        }
        for b in store.read_files(&store.files_since(self.table.name, self.seen))? {
            let col = |name: &str| b.column_by_name(name).and_then(|c| c.as_string_opt::<i32>().cloned());
            let (Some(keys), Some(ctl)) = (col(self.table.key[0]), col("controller_id")) else {
                return Err(Error::Internal(format!("the table {}: no key or controller", self.table.name)));
            };
            for i in 0..b.num_rows() {
                self.imported.insert(keys.value(i).to_owned(), ctl.value(i).to_owned());
            }
        }
        self.refs.catch_up(store)?;
        self.seen = store.entries().len();
        Ok(())
    }

    /// The latest saved version of the record `key`.
    pub fn latest(&self, key: &str) -> Option<&Saved> {
        self.latest.get(key).map(|(s, _)| s)
    }

    /// The controller of the record `key` as it stands (its latest saved version's, else its
    /// imported record's), if there is such a record.
    pub fn owner(&self, key: &str) -> Option<&str> {
        self.latest.get(key).map(|(_, c)| c.as_str()).or_else(|| self.imported.get(key).map(String::as_str))
    }

    /// Saves `cells` (by column, each as a CSV cell) as the next version of its record, made
    /// by `by` in `role` from version `seen` (0: the imported record, or none). The row is
    /// checked as an import checks one ([`crate::import::form_row`]); a record of another
    /// controller is refused; if another version was saved since `seen`, the save is refused
    /// as a conflict. Takes the store's lock, so that what another server saved is seen first.
    pub fn save(
        &mut self,
        store: &Store,
        cells: &BTreeMap<String, String>,
        seen: i64,
        by: &str,
        role: &str,
        now: Instant,
    ) -> Result<Saved> {
        let table = self.table;
        let key = cells.get(table.key[0]).map(|k| k.trim().to_owned()).unwrap_or_default();
        if key.is_empty() {
            return Err(Error::Usage(format!("{}: `{}` is required", table.name, table.key[0])));
        }
        let mut txn = store.begin("register")?;
        self.catch_up(txn.store())?;
        let current = self.latest(&key);
        let at = current.map_or(0, |s| s.version);
        if at != seen {
            let what = current.map_or_else(String::new, |s| {
                format!("version {} by {} at {}", s.version, s.by, crate::import::format_micros(s.at))
            });
            return Err(Error::Conflict(format!("`{key}` changed since you saw version {seen}; now {what}")));
        }
        // A record's controller never changes: only its own DPO completes it.
        let controller = cells.get("controller_id").map(|c| c.trim()).unwrap_or_default();
        if self.owner(&key).is_some_and(|owner| owner != controller) {
            return Err(Error::Usage(format!(
                "`{key}` is a record of another controller: only its own DPO completes it"
            )));
        }
        let row = crate::import::form_row(&self.refs, table, cells, table.name, &now.to_string())?;
        let mut columns: Vec<ArrayRef> = row.columns().to_vec();
        columns.extend([
            Arc::new(Int64Array::from(vec![at + 1])) as ArrayRef,
            Arc::new(Int64Array::from(vec![(at > 0).then_some(at)])),
            Arc::new(StringArray::from(vec![by])),
            Arc::new(StringArray::from(vec![role])),
            Arc::new(TimestampMicrosecondArray::from(vec![now.micros()]).with_timezone("UTC")),
        ]);
        let batch = RecordBatch::try_new(catalog::versions_schema(table), columns)?;
        txn.write(self.versions, catalog::versions_schema(table), &[batch])?;
        txn.commit(&now.to_string(), vec![key.clone()])?;
        self.seen += 1;
        let saved = Saved {
            key: key.clone(),
            version: at + 1,
            by: by.to_owned(),
            role: role.to_owned(),
            at: now.micros(),
        };
        self.latest.insert(key, (saved.clone(), controller.to_owned()));
        Ok(saved)
    }
}

/// [`Keeper::save`] on a keeper read afresh: for a single save.
pub fn save(
    store: &Store,
    table: &'static Table,
    cells: &BTreeMap<String, String>,
    seen: i64,
    by: &str,
    role: &str,
    now: Instant,
) -> Result<Saved> {
    Keeper::load(store, table)?.save(store, cells, seen, by, role, now)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A store holding the base fixture.
    fn base_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/base");
        let inputs = crate::import::inputs(&[base], None).unwrap();
        crate::import::import(dir.path(), &inputs, "2026-07-01T00:00:00Z").unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn a_saved_register_record_is_checked_as_an_import_and_versions_conflict() {
        let (dir, store) = base_store();
        let controller = store.read("authorities").unwrap()[0]
            .column_by_name("authority_id")
            .unwrap()
            .as_string::<i32>()
            .value(0)
            .to_owned();
        let cells = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>()
        };
        let now = Instant(crate::import::parse_timestamp("2026-07-02T00:00:00Z").unwrap());
        let b = &catalog::BREACHES;
        let good = cells(&[
            ("breach_id", "B-NEW-1"),
            ("controller_id", &controller),
            ("aware_at", "2026-06-30T08:00:00Z"),
            ("risk", "high"),
            ("supervisor", "EDPS"),
            ("case_ids", ""),
        ]);
        // Every problem of the row is named, with its column and value.
        let mut bad = good.clone();
        bad.insert("risk".into(), "enormous".into());
        bad.insert("aware_at".into(), "yesterday".into());
        bad.insert("controller_id".into(), "A-NOBODY".into());
        let e = save(&store, b, &bad, 0, "dpo", "dpo", now).unwrap_err().to_string();
        assert!(
            e.contains("risk: `enormous`") && e.contains("aware_at: `yesterday`") && e.contains("A-NOBODY"),
            "{e}"
        );
        assert!(latest(&store, b).unwrap().is_empty(), "nothing written");
        let v1 = save(&store, b, &good, 0, "dpo", "dpo", now).unwrap();
        assert_eq!(v1.version, 1);
        // Completed later: notified, from version 1. A second save from version 1 conflicts.
        let mut done = good.clone();
        done.insert("notified_at".into(), "2026-07-01T09:00:00Z".into());
        let v2 = save(&store, b, &done, 1, "dpo", "dpo", now).unwrap();
        // Another controller cannot take the record over, whatever version it names.
        let mut taken = done.clone();
        taken.insert("controller_id".into(), "A-SOMEONE-ELSE".into());
        let e = save(&store, b, &taken, 2, "thief", "dpo", now).unwrap_err().to_string();
        assert!(e.contains("another controller"), "{e}");
        assert_eq!(v2.version, 2);
        let e = save(&store, b, &done, 1, "other", "dpo", now).unwrap_err();
        assert!(matches!(&e, Error::Conflict(m) if m.contains("version 2 by dpo")), "{e}");
        assert_eq!(latest(&Store::open(dir.path()).unwrap(), b).unwrap()["B-NEW-1"].version, 2);
        assert!(Store::verify(dir.path()).unwrap().is_sound());
        // The rules judge the register as last saved: aware on 30 June at 08:00, not notified
        // in version 1, notified 25 hours later in version 2.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let engine = crate::Engine::open(dir.path()).unwrap();
        let as_of = crate::import::parse_timestamp("2026-07-05T00:00:00Z").unwrap();
        let found = rt.block_on(engine.deadlines(as_of)).unwrap();
        assert!(!found.iter().any(|f| f.subject_id == "B-NEW-1" && f.rule == "BRE-NOTIFY"), "{found:?}");
        // `custos query` sees the register as it stands, the imported records and the versions.
        let ctx = rt.block_on(crate::query::session(&engine.store().clone())).unwrap();
        let n = |sql: &str| {
            let rows = rt.block_on(crate::read::rows_of(&ctx, sql)).unwrap();
            rows[0]["n"].as_i64().unwrap()
        };
        assert_eq!(
            n("SELECT count(*) AS n FROM breaches WHERE breach_id = 'B-NEW-1' AND notified_at IS NOT NULL"),
            1
        );
        assert_eq!(n("SELECT count(*) AS n FROM breach_versions"), 2);
        assert_eq!(n("SELECT count(*) AS n FROM breaches_imported WHERE breach_id = 'B-NEW-1'"), 0);
        // An import bringing the same key is a conflict, named with the version kept here.
        let export = dir.path().join("export");
        std::fs::create_dir_all(&export).unwrap();
        let header = catalog::BREACHES.columns.iter().map(|c| c.name).collect::<Vec<_>>().join(",");
        let row = format!("B-NEW-1,{controller},,2026-06-30T08:00:00Z,low,EDPS,,,,,,,,,,,,,");
        std::fs::write(export.join("breaches.csv"), format!("{header}\n{row}\n")).unwrap();
        let inputs = crate::import::inputs(&[export], None).unwrap();
        let e = crate::import::import(dir.path(), &inputs, "2026-07-03T00:00:00Z").unwrap_err().to_string();
        assert!(e.contains("breaches.csv:2") && e.contains("kept in Custos (version 2 saved by dpo"), "{e}");
    }

    #[test]
    fn a_breach_saved_without_its_notification_is_found_late_by_the_checks_own_rule() {
        let (dir, store) = base_store();
        let controller = store.read("authorities").unwrap()[0]
            .column_by_name("authority_id")
            .unwrap()
            .as_string::<i32>()
            .value(0)
            .to_owned();
        let cells: BTreeMap<String, String> = [
            ("breach_id", "B-NEW-2"),
            ("controller_id", controller.as_str()),
            ("aware_at", "2026-06-30T08:00:00Z"),
            ("risk", "high"),
            ("supervisor", "EDPS"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let now = Instant(crate::import::parse_timestamp("2026-07-02T00:00:00Z").unwrap());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let as_of = crate::import::parse_timestamp("2026-07-05T00:00:00Z").unwrap();
        let before =
            rt.block_on(crate::read::Data::load(&crate::Engine::open(dir.path()).unwrap(), as_of)).unwrap();
        save(&store, &catalog::BREACHES, &cells, 0, "dpo", "dpo", now).unwrap();
        // The data with the registers read and judged again are the data loaded afresh.
        let reopened = crate::Engine::open(dir.path()).unwrap();
        let patched = rt.block_on(before.with_registers(&reopened)).unwrap();
        let fresh = rt.block_on(crate::read::Data::load(&reopened, as_of)).unwrap();
        assert_eq!(
            (&patched.breaches, &patched.requests, &patched.deadlines),
            (&fresh.breaches, &fresh.requests, &fresh.deadlines)
        );
        assert_ne!(patched.breaches, before.breaches);
        let engine = crate::Engine::open(dir.path()).unwrap();
        let as_of = crate::import::parse_timestamp("2026-07-05T00:00:00Z").unwrap();
        let found = rt.block_on(engine.deadlines(as_of)).unwrap();
        assert!(found.iter().any(|f| f.subject_id == "B-NEW-2" && f.rule == "BRE-NOTIFY"), "{found:?}");
        // The registers' check alone finds exactly the registers' findings of the whole check.
        let registers = rt.block_on(engine.register_deadlines(as_of)).unwrap();
        let of_registers: Vec<_> = found
            .into_iter()
            .filter(|f| {
                matches!(
                    f.subject_kind,
                    crate::finding::SubjectKind::Breach | crate::finding::SubjectKind::Request
                )
            })
            .collect();
        assert_eq!(registers, of_registers);
        assert!(!registers.is_empty());
    }
}
