//! The Custos engine: everything between IMI's records and the answers supervisors need.
//!
//! ```text
//! import ──► store (Parquet + manifest chained by SHA-256)
//!               │
//!               ▼
//!         facts (DataFusion SQL over the store's tables)
//!               │
//!               ▼
//!         decisions (Cedar policies)  ──►  findings ──► analytics ──► dashboard / reports
//! ```
//!
//! The rooms follow the flow, one folder per stage:
//!
//! - `storage/`: [`catalog`] defines the tables (IMI's and Custos's own), [`import`] validates
//!   input and commits it to the [`store`], whose [`manifest`] makes it tamper-evident;
//!   [`annex`] holds the shipped domains.
//! - `judging/`: [`calendar`]s and [`period`]s as Regulation 1182/71 counts them, Cedar
//!   [`decision`]s, the need-to-know [`audit`], the [`deadline`] checks, and the
//!   [`finding`]s they produce.
//! - `analytics/`: the DataFusion [`query`] session and production queries, the Scoreboard
//!   [`indicator`]s, [`disclosure`] control, the controllers' [`register`]s and the [`read`]
//!   model the dashboard and the reports show.
//! - `supervision/`: what supervisors do in Custos, appended to the store as evidence: the
//!   [`review`] of findings (dispositions), the registers' records saved in Custos
//!   ([`edits`]), and Custos's own access log, the [`trail`].
//!
//! [`Engine`] opens a store with the rules and the clock and is the way in. Each module is
//! also reachable at the crate's root (`custos_engine::audit`). The generator of realistic
//! IMI data with labelled violations is a crate of its own, `custos-synthetic`.

/// Store and import: the tables, their files, the chain.
pub mod storage {
    pub mod annex;
    pub mod catalog;
    pub mod import;
    pub mod manifest;
    pub mod store;
    pub mod versions;
}

/// Judging: calendars, periods, decisions, audits, deadline checks and their findings.
pub mod judging {
    pub mod audit;
    pub mod calendar;
    pub mod deadline;
    pub mod decision;
    pub mod finding;
    pub mod period;
}

/// Analytics: queries, indicators, disclosure control, the registers and the read model.
pub mod analytics {
    pub mod disclosure;
    pub mod indicator;
    pub mod query;
    pub mod read;
    pub mod register;
}

/// Supervision: the work supervisors do in Custos, kept as evidence: findings' reviews and
/// Custos's own access log.
pub mod supervision {
    pub mod edits;
    pub mod review;
    pub mod trail;
}

pub mod engine;
pub mod error;
pub mod progress;

pub use analytics::{disclosure, indicator, query, read, register};
pub use judging::{audit, calendar, deadline, decision, finding, period};
pub use storage::{annex, catalog, import, manifest, store, versions};
pub use supervision::{edits, review, trail};

pub use engine::{Clock, Engine};
pub use error::{Error, InputError, Location, Result};
pub use progress::Progress;
