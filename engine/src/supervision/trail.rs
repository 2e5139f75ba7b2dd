//! Who watched the watchers: Custos's own access log (EUDPR Arts. 4(2), 33). Every answer
//! that shows detail about a natural person is a visit: who, in which role, when, which item,
//! on which page. Visits are appended to the store's `trail` table, several to a commit.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::TimestampMicrosecondType;
use serde::Serialize;

use crate::catalog::{TRAIL, trail_schema};
use crate::error::{Error, Result};
use crate::finding::Instant;
use crate::store::Store;

/// One answer that showed detail about a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Visit {
    pub at: Instant,
    /// The viewer's login name and role.
    pub user: String,
    pub role: String,
    /// The address asked for (path and query).
    pub page: String,
    /// What was shown: `event`, `user`, `finding`, `breach`, `request`, `trail`, or `list`
    /// (a page listing records of persons, `item` then being the filter that selected them).
    pub item_kind: String,
    pub item: String,
    /// The scope of what was shown: the member state and the actor (authority or controller)
    /// whose records they are (for a list, the viewer's own scope). Only those who may see
    /// that scope in detail see the item and the address.
    pub member_state: String,
    pub controller: String,
}

/// Appends `visits` to the trail in one commit.
pub fn record(store: &Store, visits: &[Visit], now: Instant) -> Result<()> {
    if visits.is_empty() {
        return Ok(());
    }
    let mut txn = store.begin("trail")?;
    txn.write(TRAIL, trail_schema(), &[to_batch(visits)?])?;
    txn.commit(&now.to_string(), Vec::new())?;
    Ok(())
}

/// The visits of the trail that a reader who has read `seen` manifest entries has not read,
/// and how many entries it has read then.
pub fn since(store: &Store, seen: usize) -> Result<(Vec<Visit>, usize)> {
    let files = store.files_since(TRAIL, seen);
    let mut visits = Vec::new();
    if !files.is_empty() {
        for b in store.read_files(&files)? {
            visits.extend(from_batch(&b)?);
        }
    }
    Ok((visits, store.entries().len()))
}

fn to_batch(visits: &[Visit]) -> Result<RecordBatch> {
    let text = |f: &dyn Fn(&Visit) -> &str| -> ArrayRef {
        Arc::new(visits.iter().map(|v| Some(f(v))).collect::<StringArray>())
    };
    let at = visits
        .iter()
        .map(|v| Some(v.at.micros()))
        .collect::<TimestampMicrosecondArray>()
        .with_timezone("UTC");
    Ok(RecordBatch::try_new(
        trail_schema(),
        vec![
            Arc::new(at),
            text(&|v| &v.user),
            text(&|v| &v.role),
            text(&|v| &v.page),
            text(&|v| &v.item_kind),
            text(&|v| &v.item),
            text(&|v| &v.member_state),
            text(&|v| &v.controller),
        ],
    )?)
}

fn from_batch(b: &RecordBatch) -> Result<Vec<Visit>> {
    let bad = |what: &str| Error::Internal(format!("the trail table: {what}"));
    let text = |name: &str| -> Result<&StringArray> {
        b.column_by_name(name).and_then(|c| c.as_string_opt::<i32>()).ok_or_else(|| bad(name))
    };
    let (user, role, page, kind, item) =
        (text("user")?, text("role")?, text("page")?, text("item_kind")?, text("item")?);
    let (ms, controller) = (text("member_state")?, text("controller")?);
    let at = b
        .column_by_name("at")
        .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
        .ok_or_else(|| bad("at"))?;
    Ok((0..b.num_rows())
        .filter(|&i| at.is_valid(i))
        .map(|i| Visit {
            at: Instant(at.value(i)),
            user: user.value(i).to_owned(),
            role: role.value(i).to_owned(),
            page: page.value(i).to_owned(),
            item_kind: kind.value(i).to_owned(),
            item: item.value(i).to_owned(),
            member_state: ms.value(i).to_owned(),
            controller: controller.value(i).to_owned(),
        })
        .collect())
}
