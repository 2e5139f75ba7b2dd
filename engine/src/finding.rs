//! Findings: what a rule found, in the shape `rules.md` gives, as Rust values, JSON and Arrow.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, AsArray, ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// One broken rule about one subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    /// The rule ID (`NTK-DOMAIN`).
    pub rule: String,
    /// `overdue`, `late`, `due_soon` or `unmet`.
    pub status: String,
    /// `case`, `user`, `request`, `breach` or `event`.
    pub subject_kind: String,
    /// The subject's identifier.
    pub subject_id: String,
    /// When the obligation fell due (RFC 3339, UTC); `None` for rules without a deadline.
    pub due_at: Option<String>,
    /// The legal reference.
    pub legal_ref: String,
    /// `violation` or `warning`.
    pub severity: String,
    /// The actor responsible.
    pub authority_id: Option<String>,
    /// Its member state (`EU` for Union actors).
    pub member_state: Option<String>,
    /// Need-to-know findings: the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Need-to-know findings: the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The case concerned, if any (always present in JSON, `null` when none).
    pub case_id: Option<String>,
    /// Need-to-know findings: when the event happened (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    /// The IDs of every policy that determined the decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<String>>,
    /// The period, when it is Custos's configurable default and not set by law.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_period: Option<String>,
    /// The particulars a rule lists (USR-RIGHTS: the domains outside the authority's areas,
    /// `;`-separated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The Arrow schema findings are stored in, with the run's policy hash and time.
pub static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |n: &str| Field::new(n, DataType::Utf8, true);
    let time = |n: &str| Field::new(n, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true);
    Arc::new(Schema::new(vec![
        text("rule"),
        text("status"),
        text("subject_kind"),
        text("subject_id"),
        time("due_at"),
        text("legal_ref"),
        text("severity"),
        text("authority_id"),
        text("member_state"),
        text("event_id"),
        text("user_id"),
        text("case_id"),
        time("ts"),
        Field::new("policies", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
        text("default_period"),
        text("policy_hash"),
        time("run_at"),
    ]))
});

fn micros(t: &Option<String>) -> Option<i64> {
    t.as_deref().and_then(crate::import::parse_timestamp)
}

/// Formats UTC microseconds as RFC 3339 (kept beside the parser, in the import).
pub use crate::import::format_micros;

/// Findings as a record batch of [`SCHEMA`], stamped with the policy hash and run time.
pub fn to_batch(findings: &[Finding], policy_hash: &str, run_at: i64) -> Result<RecordBatch> {
    let text = |f: &dyn Fn(&Finding) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from_iter(findings.iter().map(f)))
    };
    let time = |f: &dyn Fn(&Finding) -> Option<i64>| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from_iter(findings.iter().map(f)).with_timezone("UTC"))
    };
    let mut policies = ListBuilder::new(StringBuilder::new());
    for f in findings {
        match &f.policies {
            Some(p) => {
                for id in p {
                    policies.values().append_value(id);
                }
                policies.append(true);
            }
            None => policies.append(false),
        }
    }
    let columns: Vec<ArrayRef> = vec![
        text(&|f| Some(&f.rule)),
        text(&|f| Some(&f.status)),
        text(&|f| Some(&f.subject_kind)),
        text(&|f| Some(&f.subject_id)),
        time(&|f| micros(&f.due_at)),
        text(&|f| Some(&f.legal_ref)),
        text(&|f| Some(&f.severity)),
        text(&|f| f.authority_id.as_deref()),
        text(&|f| f.member_state.as_deref()),
        text(&|f| f.event_id.as_deref()),
        text(&|f| f.user_id.as_deref()),
        text(&|f| f.case_id.as_deref()),
        time(&|f| micros(&f.ts)),
        Arc::new(policies.finish()),
        text(&|f| f.default_period.as_deref()),
        Arc::new(StringArray::from_iter_values(findings.iter().map(|_| policy_hash))),
        time(&|_| Some(run_at)),
    ];
    Ok(RecordBatch::try_new(Arc::clone(&SCHEMA), columns)?)
}

/// Reads findings back from a record batch of [`SCHEMA`].
pub fn from_batch(batch: &RecordBatch) -> Vec<Finding> {
    let text = |i: usize, row: usize| -> Option<String> {
        let a = batch.column(i).as_string::<i32>();
        (!a.is_null(row)).then(|| a.value(row).to_owned())
    };
    let time = |i: usize, row: usize| -> Option<String> {
        let a = batch.column(i).as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        (!a.is_null(row)).then(|| format_micros(a.value(row)))
    };
    let lists = batch.column(13).as_list::<i32>();
    (0..batch.num_rows())
        .map(|row| Finding {
            rule: text(0, row).unwrap_or_default(),
            status: text(1, row).unwrap_or_default(),
            subject_kind: text(2, row).unwrap_or_default(),
            subject_id: text(3, row).unwrap_or_default(),
            due_at: time(4, row),
            legal_ref: text(5, row).unwrap_or_default(),
            severity: text(6, row).unwrap_or_default(),
            authority_id: text(7, row),
            member_state: text(8, row),
            event_id: text(9, row),
            user_id: text(10, row),
            case_id: text(11, row),
            ts: time(12, row),
            policies: (!lists.is_null(row))
                .then(|| lists.value(row).as_string::<i32>().iter().flatten().map(str::to_owned).collect()),
            default_period: text(14, row),
            detail: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_print_in_rfc_3339_with_microseconds_only_when_there_are_some() {
        for (micros, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_719_792_000_000_000, "2024-07-01T00:00:00Z"),
            (1_719_792_000_000_001, "2024-07-01T00:00:00.000001Z"),
            (1_709_251_199_500_000, "2024-02-29T23:59:59.500000Z"),
            (-1, "1969-12-31T23:59:59.999999Z"),
            (-1_000_000, "1969-12-31T23:59:59Z"),
        ] {
            assert_eq!(format_micros(micros), text);
            assert_eq!(crate::import::parse_timestamp(text), Some(micros));
        }
    }

    #[test]
    fn findings_survive_arrow() {
        let f = Finding {
            rule: "NTK-DOMAIN".into(),
            status: "unmet".into(),
            subject_kind: "event".into(),
            subject_id: "E1".into(),
            due_at: None,
            legal_ref: "IMI Reg. Art. 9(3)-(4)".into(),
            severity: "violation".into(),
            authority_id: Some("A-DE-1".into()),
            member_state: Some("DE".into()),
            event_id: Some("E1".into()),
            user_id: Some("U1".into()),
            case_id: Some("C1".into()),
            ts: Some("2024-03-15T09:37:00Z".into()),
            policies: Some(vec!["NTK-DOMAIN".into(), "NTK-INVOLVED".into()]),
            default_period: None,
            detail: None,
        };
        let batch = to_batch(std::slice::from_ref(&f), "abc", 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from_batch(&batch), vec![f]);
    }
}
