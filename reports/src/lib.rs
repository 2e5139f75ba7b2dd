//! Charts and reports of Custos.
//!
//! ```text
//! store ──► engine (findings, deadlines, indicators) ──► report models ──► HTML / PDF
//!                                                   └──► charts (plotters SVG) ──► dashboard
//! ```
//!
//! [`chart`] draws every chart Custos shows, as SVG in a bundled font, with its title,
//! description and data, so that the dashboard and the reports show the same figures the
//! same way.

pub mod chart;
pub mod error;
pub mod grid;
pub mod pdf;
pub mod report;

pub use error::{Error, Result};
