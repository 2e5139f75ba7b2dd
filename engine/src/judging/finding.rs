//! Findings: what a rule found, in the shape `rules.md` gives, as Rust values, JSON and Arrow.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, AsArray, ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Where a finding stands. The order of the variants is the order of their texts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not yet due, but due within the horizon if nothing more happens.
    DueSoon,
    /// Done after it was due.
    Late,
    /// Not done, and due before the check's instant.
    Overdue,
    /// A condition without a deadline, not met (every need-to-know finding).
    #[default]
    Unmet,
}

/// What a finding is about. The order of the variants is the order of their texts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Breach,
    Case,
    /// An access event (need-to-know findings).
    #[default]
    Event,
    /// A data-subject request.
    Request,
    /// An IMI user.
    User,
}

/// How grave a finding is: `violation` of what the law sets, or `warning` against a Custos
/// default or a controller's own commitment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    #[default]
    Violation,
    Warning,
}

macro_rules! texts {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// As `rules.md` writes it.
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($s => Ok(<$t>::$v),)*
                    other => Err(format!("`{other}`: expected one of {}", [$($s),*].join(", "))),
                }
            }
        }
    };
}

pub(crate) use texts;

texts!(Status { DueSoon => "due_soon", Late => "late", Overdue => "overdue", Unmet => "unmet" });
texts!(SubjectKind { Breach => "breach", Case => "case", Event => "event", Request => "request", User => "user" });
texts!(Severity { Violation => "violation", Warning => "warning" });

/// An instant, UTC microseconds: compared and ordered as time, written as RFC 3339
/// (`format_micros`) and read as the import reads instants (`parse_timestamp`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub i64);

impl Instant {
    /// UTC microseconds.
    pub fn micros(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for Instant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_micros(self.0))
    }
}

impl std::str::FromStr for Instant {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        crate::import::parse_timestamp(s)
            .map(Instant)
            .ok_or_else(|| format!("`{s}`: expected an RFC 3339 instant"))
    }
}

impl Serialize for Instant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One broken rule about one subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    /// The rule ID (`NTK-DOMAIN`).
    pub rule: String,
    /// Where it stands.
    pub status: Status,
    /// What it is about.
    pub subject_kind: SubjectKind,
    /// The subject's identifier.
    pub subject_id: String,
    /// When the obligation fell due; `None` for rules without a deadline.
    pub due_at: Option<Instant>,
    /// The legal reference.
    pub legal_ref: String,
    /// `violation` or `warning`.
    pub severity: Severity,
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
    /// Need-to-know findings: when the event happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<Instant>,
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

fn micros(t: &Option<Instant>) -> Option<i64> {
    t.map(Instant::micros)
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
        text(&|f| Some(f.status.as_str())),
        text(&|f| Some(f.subject_kind.as_str())),
        text(&|f| Some(&f.subject_id)),
        time(&|f| micros(&f.due_at)),
        text(&|f| Some(&f.legal_ref)),
        text(&|f| Some(f.severity.as_str())),
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

/// Reads findings back from a record batch of [`SCHEMA`]; a status, subject kind or severity
/// that is none of Custos's is an error, never a default.
pub fn from_batch(batch: &RecordBatch) -> Result<Vec<Finding>> {
    fn parse<T: std::str::FromStr<Err = String>>(
        batch: &RecordBatch,
        i: usize,
        row: usize,
        what: &str,
    ) -> Result<T> {
        let a = batch.column(i).as_string::<i32>();
        let word = if a.is_null(row) { "" } else { a.value(row) };
        word.parse().map_err(|e: String| crate::Error::Internal(format!("a stored finding's {what}: {e}")))
    }
    let text = |i: usize, row: usize| -> Option<String> {
        let a = batch.column(i).as_string::<i32>();
        (!a.is_null(row)).then(|| a.value(row).to_owned())
    };
    let time = |i: usize, row: usize| -> Option<Instant> {
        let a = batch.column(i).as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        (!a.is_null(row)).then(|| Instant(a.value(row)))
    };
    let lists = batch.column(13).as_list::<i32>();
    (0..batch.num_rows())
        .map(|row| {
            Ok(Finding {
                rule: text(0, row).unwrap_or_default(),
                status: parse(batch, 1, row, "status")?,
                subject_kind: parse(batch, 2, row, "subject kind")?,
                subject_id: text(3, row).unwrap_or_default(),
                due_at: time(4, row),
                legal_ref: text(5, row).unwrap_or_default(),
                severity: parse(batch, 6, row, "severity")?,
                authority_id: text(7, row),
                member_state: text(8, row),
                event_id: text(9, row),
                user_id: text(10, row),
                case_id: text(11, row),
                ts: time(12, row),
                policies: (!lists.is_null(row)).then(|| {
                    lists.value(row).as_string::<i32>().iter().flatten().map(str::to_owned).collect()
                }),
                default_period: text(14, row),
                detail: None,
            })
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
            status: Status::Unmet,
            subject_kind: SubjectKind::Event,
            subject_id: "E1".into(),
            due_at: None,
            legal_ref: "IMI Reg. Art. 9(3)-(4)".into(),
            severity: Severity::Violation,
            authority_id: Some("A-DE-1".into()),
            member_state: Some("DE".into()),
            event_id: Some("E1".into()),
            user_id: Some("U1".into()),
            case_id: Some("C1".into()),
            ts: Some("2024-03-15T09:37:00Z".parse().unwrap()),
            policies: Some(vec!["NTK-DOMAIN".into(), "NTK-INVOLVED".into()]),
            default_period: None,
            detail: None,
        };
        let batch = to_batch(std::slice::from_ref(&f), "abc", 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from_batch(&batch).unwrap(), vec![f]);
    }
}
