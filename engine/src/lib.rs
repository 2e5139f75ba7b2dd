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
//! Modules, in the order data flows through them: [`catalog`] defines the tables,
//! [`import`] validates input and commits it to the [`store`] (whose [`manifest`] makes it
//! tamper-evident), and the store's tables are read with DataFusion. The generator of
//! realistic IMI data with labelled violations is a crate of its own, `custos-synthetic`.

pub mod annex;
pub mod audit;
pub mod calendar;
pub mod catalog;
pub mod deadline;
pub mod decision;
pub mod disclosure;
pub mod engine;
pub mod error;
pub mod finding;
pub mod import;
pub mod indicator;
pub mod manifest;
pub mod period;
pub mod query;
pub mod read;
pub mod register;
pub mod store;

pub use engine::{Clock, Engine};
pub use error::{Error, InputError, Location, Result};
