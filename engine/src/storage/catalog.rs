//! The tables Custos imports, column by column, exactly as `data-model.md` defines them.
//!
//! Everything that knows a table's name, a column's type, which values a column allows or
//! which columns form a key reads it from here: the importer validates against it, the store
//! writes Parquet with its Arrow schemas, and the query layer registers its tables from it.
//! Adding a column to the data model is one line in [`TABLES`].

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The type of a column, as `data-model.md` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `text`
    Text,
    /// `int`
    Int,
    /// `bool`
    Bool,
    /// `timestamp`: stored as UTC microseconds.
    Timestamp,
    /// `date`: a calendar day without a time.
    Date,
    /// `list<text>`: `;`-separated in CSV, an array in JSON. Never null: empty means none.
    TextList,
}

impl Kind {
    /// The Arrow type the store keeps this kind as.
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Text => DataType::Utf8,
            Kind::Int => DataType::Int64,
            Kind::Bool => DataType::Boolean,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Date => DataType::Date32,
            Kind::TextList => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        }
    }

    /// What a value of this kind looks like, for error messages.
    pub fn expected(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Int => "a whole number",
            Kind::Bool => "`true` or `false` (CSV also `1` or `0`)",
            Kind::Timestamp => {
                "an RFC 3339 timestamp with `Z` or an offset (`2024-03-15T10:37:00+01:00`) or a date (`2024-03-15`)"
            }
            Kind::Date => "a date `YYYY-MM-DD`",
            Kind::TextList => "a list of text (`a;b` in CSV, an array in JSON)",
        }
    }
}

/// Extra constraints on a column's values beyond its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// Any value of the type.
    Any,
    /// One of these values.
    OneOf(&'static [&'static str]),
    /// A country code: two capital letters (ISO 3166-1 alpha-2) or `EU`.
    Country,
    /// `EDPS` or a country code.
    Supervisor,
    /// A whole number from `lo` to `hi`, inclusive.
    Range(i64, i64),
}

/// One column of a table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The exact column name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Whether null is allowed (`, null` in the data model).
    pub nullable: bool,
    /// Allowed values.
    pub domain: Domain,
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, nullable: false, domain: Domain::Any }
}

const fn opt(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, nullable: true, domain: Domain::Any }
}

const fn one_of(name: &'static str, values: &'static [&'static str]) -> Column {
    Column { name, kind: Kind::Text, nullable: false, domain: Domain::OneOf(values) }
}

const fn opt_one_of(name: &'static str, values: &'static [&'static str]) -> Column {
    Column { name, kind: Kind::Text, nullable: true, domain: Domain::OneOf(values) }
}

/// How a table's files are laid out in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// One set of files for the whole table.
    None,
    /// One directory per calendar month (UTC) of this timestamp column, so that time-bounded
    /// queries open only the months they need.
    Month(&'static str),
}

/// The entities whose text identifiers Custos numbers at import (see [`Surrogate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// `authorities.authority_id`
    Authority,
    /// `users.user_id`
    User,
    /// `cases.case_id`
    Case,
}

impl Entity {
    /// The entity as a noun in messages (`authority`).
    pub fn noun(self) -> &'static str {
        match self {
            Entity::Authority => "authority",
            Entity::User => "user",
            Entity::Case => "case",
        }
    }
}

/// A column Custos adds to a table at import: a whole number standing for an identifier.
///
/// Every authority, user and case is numbered once, in the order it first came into the
/// store (`authority_key`, `user_key`, `case_key`), and every reference to one is stored
/// beside its text with the referenced row's number. Joins then compare integers, not text:
/// the audit joins hundreds of millions of events to their users and cases this way. The
/// numbers mean nothing outside one store, and no one imports them.
#[derive(Debug, Clone, Copy)]
pub struct Surrogate {
    /// The column's name.
    pub name: &'static str,
    /// The text column it stands for.
    pub of: &'static str,
    /// The entity numbered.
    pub entity: Entity,
}

/// The Arrow type of a [`Surrogate`] column.
pub const SURROGATE_TYPE: DataType = DataType::Int32;

const fn number(name: &'static str, of: &'static str, entity: Entity) -> Surrogate {
    Surrogate { name, of, entity }
}

/// A table of the data model.
#[derive(Debug)]
pub struct Table {
    /// The table's name, which is also the stem of the files it is imported from.
    pub name: &'static str,
    /// Its columns, in storage order.
    pub columns: &'static [Column],
    /// The columns whose values identify a row. Re-importing a row with the same key and the
    /// same content is a no-op; with other content it is an error.
    pub key: &'static [&'static str],
    /// The storage layout.
    pub partition: Partition,
    /// The numbers Custos adds to each row at import, after the columns (see [`Surrogate`]).
    pub surrogates: &'static [Surrogate],
    schema: LazyLock<SchemaRef>,
    stored: LazyLock<SchemaRef>,
}

impl Table {
    /// The Arrow schema of the table's columns, as imported.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The Arrow schema the store keeps this table in: its columns, then its surrogates.
    pub fn stored_schema(&self) -> SchemaRef {
        Arc::clone(&self.stored)
    }

    /// The surrogate that numbers this table's own rows (`case_key` of `cases`), if any.
    pub fn own_surrogate(&self) -> Option<&Surrogate> {
        self.surrogates.iter().find(|s| self.key == [s.of])
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The position of column `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Positions of the key columns.
    pub fn key_indices(&self) -> Vec<usize> {
        self.key.iter().filter_map(|k| self.index(k)).collect()
    }
}

macro_rules! table {
    ($name:literal, key $key:expr, $partition:expr, [$($c:expr),* $(,)?]) => {
        table!($name, key $key, $partition, [$($c),*], numbered [])
    };
    ($name:literal, key $key:expr, $partition:expr, [$($c:expr),* $(,)?], numbered [$($s:expr),* $(,)?]) => {{
        const COLUMNS: &[Column] = &[$($c),*];
        const SURROGATES: &[Surrogate] = &[$($s),*];
        // Every column is nullable in storage: the importer enforces `nullable`.
        fn fields() -> Vec<Field> {
            COLUMNS.iter().map(|c| Field::new(c.name, c.kind.data_type(), true)).collect()
        }
        Table {
            name: $name,
            columns: COLUMNS,
            key: $key,
            partition: $partition,
            surrogates: SURROGATES,
            schema: LazyLock::new(|| Arc::new(Schema::new(fields()))),
            stored: LazyLock::new(|| {
                let numbers = SURROGATES.iter().map(|s| Field::new(s.name, SURROGATE_TYPE, true));
                Arc::new(Schema::new(fields().into_iter().chain(numbers).collect::<Vec<_>>()))
            }),
        }
    }};
}

/// Kinds of IMI actor.
pub const AUTHORITY_KINDS: &[&str] = &[
    "competent_authority",
    "imi_coordinator",
    "national_coordinator",
    "commission",
    "union_body",
    "third_country_authority",
];
/// Kinds of procedure.
pub const PROCEDURES: &[&str] = &["request", "notification", "alert", "repository", "solvit_case"];
/// Roles in a case.
pub const PARTICIPANT_ROLES: &[&str] = &["requesting", "responding", "informed", "coordinator"];
/// Operations on IMI data.
pub const ACTIONS: &[&str] = &[
    "view",
    "create",
    "update",
    "forward",
    "export",
    "print",
    "search",
    "close",
    "block",
    "retrieve_blocked",
    "delete",
    "login",
];
/// Purposes of an operation.
pub const PURPOSES: &[&str] = &[
    "administrative_cooperation",
    "data_subject_request",
    "proof_of_exchange",
    "public_interest",
    "technical_support",
    "statistics",
];
/// Data-subject rights.
pub const RIGHTS: &[&str] =
    &["access", "rectification", "erasure", "restriction", "portability", "objection", "information"];
/// Legal regimes of a data-subject request.
pub const REGIMES: &[&str] = &["eudpr", "gdpr", "imi_user"];
/// Outcomes of a data-subject request.
pub const DSR_OUTCOMES: &[&str] = &["granted", "partially_granted", "refused", "no_action"];
/// Risk of a breach to data subjects.
pub const RISKS: &[&str] = &["unlikely", "risk", "high"];
/// Exemptions from communicating a breach to data subjects (EUDPR Art. 35(3)(a)-(c)).
pub const SUBJECT_EXEMPTIONS: &[&str] = &["encrypted", "risk_removed", "public_communication"];
/// Counterparts' ratings.
pub const RATINGS: &[&str] = &["positive", "neutral", "negative"];

/// `domains`: the internal-market areas (Annex of the IMI Regulation).
pub static DOMAINS: Table = table!(
    "domains",
    key & ["domain"],
    Partition::None,
    [
        col("domain", Kind::Text),
        col("name", Kind::Text),
        col("legal_act", Kind::Text),
        Column { name: "retention_months", kind: Kind::Int, nullable: false, domain: Domain::Range(1, 18) },
        col("commission_participates", Kind::Bool),
        col("special_categories_basis", Kind::Bool),
        Column { name: "third_countries", kind: Kind::TextList, nullable: true, domain: Domain::Country },
        col("repository", Kind::Bool),
    ]
);

/// `authorities`: IMI actors.
pub static AUTHORITIES: Table = table!(
    "authorities",
    key & ["authority_id"],
    Partition::None,
    [
        col("authority_id", Kind::Text),
        Column { name: "member_state", kind: Kind::Text, nullable: false, domain: Domain::Country },
        one_of("kind", AUTHORITY_KINDS),
        col("name", Kind::Text),
        col("domains", Kind::TextList),
    ],
    numbered[number("authority_key", "authority_id", Entity::Authority)]
);

/// `users`: IMI users, by pseudonym.
pub static USERS: Table = table!(
    "users",
    key & ["user_id"],
    Partition::None,
    [
        col("user_id", Kind::Text),
        col("authority_id", Kind::Text),
        col("domains", Kind::TextList),
        col("registered_at", Kind::Timestamp),
        opt("deactivated_at", Kind::Timestamp),
        opt("blocked_at", Kind::Timestamp),
        opt("deleted_at", Kind::Timestamp),
    ],
    numbered [number("user_key", "user_id", Entity::User), number("authority_key", "authority_id", Entity::Authority)]
);

/// `cases`: administrative cooperation procedures.
pub static CASES: Table = table!(
    "cases",
    key & ["case_id"],
    Partition::None,
    [
        col("case_id", Kind::Text),
        col("domain", Kind::Text),
        one_of("procedure", PROCEDURES),
        col("requesting_authority", Kind::Text),
        col("created_at", Kind::Timestamp),
        opt("sent_at", Kind::Timestamp),
        opt("accepted_at", Kind::Timestamp),
        opt("answered_at", Kind::Timestamp),
        opt("due_at", Kind::Timestamp),
        opt("closed_at", Kind::Timestamp),
        col("last_activity_at", Kind::Timestamp),
        col("inactivity_justified", Kind::Bool),
        col("personal_data", Kind::Bool),
        col("special_categories", Kind::Bool),
        Column { name: "retention_months", kind: Kind::Int, nullable: true, domain: Domain::Range(1, 18) },
        opt_one_of("repository_basis", &["consent", "union_act"]),
        opt("blocked_at", Kind::Timestamp),
        opt("deleted_at", Kind::Timestamp),
        opt("early_deletion_requested_at", Kind::Timestamp),
        col("subject_consent", Kind::Bool),
        opt_one_of("rating_timeliness", RATINGS),
        opt_one_of("rating_effort", RATINGS),
    ],
    numbered [number("case_key", "case_id", Entity::Case), number("requesting_key", "requesting_authority", Entity::Authority)]
);

/// `case_participants`: who takes part in a case, from when.
pub static CASE_PARTICIPANTS: Table = table!(
    "case_participants",
    key & ["case_id", "authority_id", "role", "joined_at"],
    Partition::None,
    [
        col("case_id", Kind::Text),
        col("authority_id", Kind::Text),
        one_of("role", PARTICIPANT_ROLES),
        col("joined_at", Kind::Timestamp),
        opt("left_at", Kind::Timestamp),
    ],
    numbered [number("case_key", "case_id", Entity::Case), number("authority_key", "authority_id", Entity::Authority)]
);

/// `access_log`: every operation of a user on IMI data (IMI Art. 17(3)).
pub static ACCESS_LOG: Table = table!(
    "access_log",
    key & ["event_id"],
    Partition::Month("ts"),
    [
        col("event_id", Kind::Text),
        col("ts", Kind::Timestamp),
        col("user_id", Kind::Text),
        col("authority_id", Kind::Text),
        opt("case_id", Kind::Text),
        one_of("action", ACTIONS),
        one_of("purpose", PURPOSES),
        opt("legal_ground", Kind::Text),
        one_of("outcome", &["granted", "refused"]),
    ],
    numbered [number("user_key", "user_id", Entity::User), number("authority_key", "authority_id", Entity::Authority), number("case_key", "case_id", Entity::Case)]
);

/// `dsr_requests`: data-subject requests.
pub static DSR_REQUESTS: Table = table!(
    "dsr_requests",
    key & ["request_id"],
    Partition::None,
    [
        col("request_id", Kind::Text),
        col("controller_id", Kind::Text),
        opt("case_id", Kind::Text),
        col("subject_ref", Kind::Text),
        one_of("right", RIGHTS),
        one_of("regime", REGIMES),
        col("received_at", Kind::Timestamp),
        opt("extension_notified_at", Kind::Timestamp),
        opt("responded_at", Kind::Timestamp),
        opt("completed_at", Kind::Timestamp),
        opt_one_of("outcome", DSR_OUTCOMES),
        col("remedy_info_given", Kind::Bool),
    ]
);

/// `breaches`: the personal data breach register.
pub static BREACHES: Table = table!(
    "breaches",
    key & ["breach_id"],
    Partition::None,
    [
        col("breach_id", Kind::Text),
        col("controller_id", Kind::Text),
        opt("occurred_at", Kind::Timestamp),
        col("aware_at", Kind::Timestamp),
        one_of("risk", RISKS),
        Column { name: "supervisor", kind: Kind::Text, nullable: false, domain: Domain::Supervisor },
        opt("notified_at", Kind::Timestamp),
        opt("delay_reasons", Kind::Text),
        opt("dpo_informed_at", Kind::Timestamp),
        opt("subjects_notified_at", Kind::Timestamp),
        opt_one_of("subject_exemption", SUBJECT_EXEMPTIONS),
        opt("nature", Kind::Text),
        opt("subject_categories", Kind::Text),
        opt("approx_subjects", Kind::Int),
        opt("record_categories", Kind::Text),
        opt("approx_records", Kind::Int),
        opt("consequences", Kind::Text),
        opt("measures", Kind::Text),
        col("case_ids", Kind::TextList),
    ]
);

/// `holidays`: public holidays of the actor who must act (Reg. 1182/71 Art. 2).
pub static HOLIDAYS: Table = table!(
    "holidays",
    key & ["calendar", "date"],
    Partition::None,
    [
        Column { name: "calendar", kind: Kind::Text, nullable: false, domain: Domain::Country },
        col("date", Kind::Date),
    ]
);

/// Every table, in the order an import processes them: a table comes after every table its
/// references point to.
pub static TABLES: [&Table; 9] = [
    &DOMAINS,
    &AUTHORITIES,
    &USERS,
    &CASES,
    &CASE_PARTICIPANTS,
    &ACCESS_LOG,
    &DSR_REQUESTS,
    &BREACHES,
    &HOLIDAYS,
];

/// The table called `name`.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().copied().find(|t| t.name == name)
}

/// The 30 states of the European Economic Area.
pub const EEA: [&str; 30] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS", "IT",
    "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
];

/// Whether `code` is one of the 30 EEA states.
pub fn is_eea(code: &str) -> bool {
    EEA.contains(&code)
}

/// Whether `code` has the shape of a country code (two capital letters) or is `EU`.
pub fn is_country_code(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase())
}

// Derived tables: what Custos itself stores beside IMI's records.

/// The stored table of need-to-know findings.
pub const NTK_FINDINGS: &str = "ntk_findings";
/// The stored table of the texts of every policy set that decided findings.
pub const POLICY_TEXTS: &str = "policy_texts";

/// The schema of [`POLICY_TEXTS`].
pub fn policy_texts_schema() -> arrow::datatypes::SchemaRef {
    let names = ["policy_hash", "id", "article", "title", "effect", "file", "text"];
    std::sync::Arc::new(arrow::datatypes::Schema::new(
        names
            .iter()
            .map(|n| arrow::datatypes::Field::new(*n, arrow::datatypes::DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ))
}

// Custos's own records: what supervisors do in Custos, appended as evidence.

/// The stored table of findings' dispositions: a new version of a finding's review per
/// change, never an edit (`supervision::review`).
pub const DISPOSITIONS: &str = "dispositions";
/// The stored table of Custos's own access log: who saw which person's data on which page
/// (`supervision::trail`).
pub const TRAIL: &str = "trail";

/// The schema of [`DISPOSITIONS`].
pub fn dispositions_schema() -> arrow::datatypes::SchemaRef {
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let text = |n: &str, nullable: bool| Field::new(n, DataType::Utf8, nullable);
    std::sync::Arc::new(Schema::new(vec![
        text("key", false),
        Field::new("version", DataType::Int64, false),
        Field::new("replaces", DataType::Int64, true),
        text("state", false),
        text("ground", true),
        text("note", false),
        text("referred_to", true),
        Field::new("answer_due", DataType::Date32, true),
        text("answer", true),
        text("by", false),
        text("role", false),
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        text("rule", false),
        text("member_state", true),
        text("authority_id", true),
        text("policy_hash", false),
        text("finding", false),
    ]))
}

/// The stored tables of the versions of a register's records saved in Custos (a breach, a
/// data-subject request), each superseding the imported record of its key and the versions
/// before it.
pub const BREACH_VERSIONS: &str = "breach_versions";
pub const REQUEST_VERSIONS: &str = "request_versions";

/// The table of versions of the register `table` (`breaches`, `dsr_requests`), if it has one.
pub fn versions_of(table: &Table) -> Option<&'static str> {
    match table.name {
        "breaches" => Some(BREACH_VERSIONS),
        "dsr_requests" => Some(REQUEST_VERSIONS),
        _ => None,
    }
}

/// The schema of a register's versions: the register's columns, then the version, the version
/// it replaces, and who saved it, in which role, when.
pub fn versions_schema(table: &Table) -> arrow::datatypes::SchemaRef {
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let mut fields: Vec<Field> = table.stored_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend([
        Field::new("version", DataType::Int64, false),
        Field::new("replaces", DataType::Int64, true),
        Field::new("saved_by", DataType::Utf8, false),
        Field::new("saved_role", DataType::Utf8, false),
        Field::new("saved_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
    ]);
    std::sync::Arc::new(Schema::new(fields))
}

/// The schema of [`TRAIL`].
pub fn trail_schema() -> arrow::datatypes::SchemaRef {
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let text = |n: &str| Field::new(n, DataType::Utf8, false);
    std::sync::Arc::new(Schema::new(vec![
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        text("user"),
        text("role"),
        text("page"),
        text("item_kind"),
        text("item"),
        text("member_state"),
        text("controller"),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_column_exists_and_is_required() {
        for t in TABLES {
            assert_eq!(t.key_indices().len(), t.key.len(), "{}", t.name);
            for k in t.key {
                assert!(!t.column(k).is_none_or(|c| c.nullable), "{}.{k}", t.name);
            }
        }
    }

    #[test]
    fn eea_has_thirty_distinct_states() {
        let mut v = EEA.to_vec();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), 30);
        assert!(is_eea("GR") && !is_eea("EL") && !is_eea("EU"));
    }
}
