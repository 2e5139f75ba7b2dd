//! The registers the controllers keep, as typed records: the personal data breaches and the
//! data-subject requests, each with its controller's member state, as the read model loads
//! them (`breach_register.sql`, `request_register.sql`). Instants are [`Instant`]s, written
//! and read as RFC 3339, as findings carry them.

use serde::{Deserialize, Serialize};

use crate::finding::Instant;

/// A personal data breach (Regulation 2018/1725 Arts. 34, 35).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breach {
    pub breach_id: String,
    pub controller_id: String,
    /// The controller's member state (`EU` for Union controllers; empty when unknown).
    pub member_state: String,
    pub occurred_at: Option<Instant>,
    pub aware_at: Instant,
    /// `unlikely`, `risk` or `high`.
    pub risk: String,
    pub supervisor: String,
    pub notified_at: Option<Instant>,
    pub delay_reasons: Option<String>,
    pub dpo_informed_at: Option<Instant>,
    pub subjects_notified_at: Option<Instant>,
    pub subject_exemption: Option<String>,
    pub nature: Option<String>,
    pub subject_categories: Option<String>,
    pub approx_subjects: Option<i64>,
    pub record_categories: Option<String>,
    pub approx_records: Option<i64>,
    pub consequences: Option<String>,
    pub measures: Option<String>,
    #[serde(default)]
    pub case_ids: Vec<String>,
}

/// A data subject's request (Regulation 2018/1725 Arts. 14, 17-24; IMI Art. 19).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub request_id: String,
    pub controller_id: String,
    /// The controller's member state (`EU` for Union controllers; empty when unknown).
    pub member_state: String,
    pub case_id: Option<String>,
    pub subject_ref: String,
    /// The right exercised (`access`, `erasure`, …).
    pub right: String,
    pub regime: String,
    pub received_at: Instant,
    pub extension_notified_at: Option<Instant>,
    pub responded_at: Option<Instant>,
    pub completed_at: Option<Instant>,
    /// `granted`, `refused`, …; `None` while the request is open.
    pub outcome: Option<String>,
    pub remedy_info_given: bool,
}

impl Request {
    /// Neither answered nor completed.
    pub fn is_open(&self) -> bool {
        self.responded_at.is_none() && self.completed_at.is_none()
    }
}
