//! The one error type of the engine.
//!
//! Errors a user can cause by what they feed Custos ([`Error::Input`], [`Error::Usage`]) say
//! what was wrong, where, and what was expected; the command line maps them to exit code 2.
//! Everything else is an operational failure (a disk, a bug) and keeps its cause.

use std::fmt;
use std::path::PathBuf;

/// Where in an input file a problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The file as a whole (a missing column, an empty file, a damaged footer).
    File,
    /// A line of a text file (CSV, JSON Lines), 1-based. For CSV it is the line on which the
    /// record starts.
    Line(u64),
    /// A row of a Parquet file: row group and row within it, both 0-based as Parquet tools
    /// print them.
    RowGroup { group: usize, row: usize },
    /// A row of an Arrow IPC file: record batch and row within it, 0-based.
    Batch { batch: usize, row: usize },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File => Ok(()),
            Location::Line(n) => write!(f, ":{n}"),
            Location::RowGroup { group, row } => write!(f, ": row group {group}, row {row}"),
            Location::Batch { batch, row } => write!(f, ": record batch {batch}, row {row}"),
        }
    }
}

/// A problem in an input file, with everything needed to find and fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file, as the user named it.
    pub file: String,
    /// Where in it.
    pub location: Location,
    /// The column concerned, if one is.
    pub column: Option<String>,
    /// The offending value, if there is one (cut to a readable length).
    pub value: Option<String>,
    /// What is wrong, and what was expected.
    pub problem: String,
}

/// Longest value quoted back in a message; a huge field is cut, not echoed.
const MAX_QUOTED: usize = 60;

impl InputError {
    /// A problem with the file as a whole.
    pub fn file(file: impl Into<String>, problem: impl Into<String>) -> Self {
        InputError {
            file: file.into(),
            location: Location::File,
            column: None,
            value: None,
            problem: problem.into(),
        }
    }

    /// A problem at `location`.
    pub fn at(file: impl Into<String>, location: Location, problem: impl Into<String>) -> Self {
        InputError { location, ..InputError::file(file, problem) }
    }

    /// Names the column concerned.
    pub fn column(mut self, column: impl Into<String>) -> Self {
        self.column = Some(column.into());
        self
    }

    /// Quotes the offending value.
    pub fn value(mut self, value: &str) -> Self {
        self.value = Some(quote(value));
        self
    }
}

/// A value cut to a readable length, on a char boundary.
fn quote(value: &str) -> String {
    if value.chars().count() <= MAX_QUOTED {
        return value.to_owned();
    }
    let cut: String = value.chars().take(MAX_QUOTED).collect();
    format!("{cut}… ({} bytes)", value.len())
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.file, self.location)?;
        if let Some(c) = &self.column {
            write!(f, ": column `{c}`")?;
        }
        if let Some(v) = &self.value {
            write!(f, ": value `{v}`")?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// The rows an import refused: the first ones, in line order, and how many of each kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The first refusals (up to `--max-errors`), in the order of the files and their lines.
    pub shown: Vec<InputError>,
    /// How many there were in all.
    pub total: u64,
    /// Each kind of refusal (file, column, problem) with its count, most frequent first.
    pub kinds: Vec<(String, u64)>,
    /// Where every refused row was written, with its reasons.
    pub rejects: Option<PathBuf>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = if self.total == 1 { "refusal" } else { "refusals" };
        if let [only] = self.shown.as_slice()
            && self.total == 1
        {
            write!(f, "{only}")?;
        } else {
            writeln!(
                f,
                "{} {rows}; nothing was imported. In the order of the files and their lines:",
                self.total
            )?;
            for e in &self.shown {
                writeln!(f, "  {e}")?;
            }
            let more = self.total - self.shown.len() as u64;
            if more > 0 {
                writeln!(f, "  … and {more} more (`--max-errors N` shows more)")?;
            }
            writeln!(f, "By kind:")?;
            for (kind, n) in &self.kinds {
                writeln!(f, "  {n:>8}  {kind}")?;
            }
            write!(f, "Nothing was imported: fix every row and import again")?;
        }
        if let Some(p) = &self.rejects {
            write!(f, "\nThe refused rows, with their reasons: {}", p.display())?;
        }
        Ok(())
    }
}

/// The engine's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: the file, where, and what was expected.
    #[error("{0}")]
    Input(Box<InputError>),
    /// Rows of an import refused: every one of them (up to a limit), nothing imported.
    #[error("{0}")]
    Refused(Box<Refusal>),
    /// A request that cannot be carried out as asked (an unknown table, a bad argument).
    #[error("{0}")]
    Usage(String),
    /// A record changed since the one who changes it saw it (two reviewers at once): the
    /// second change is refused, never lost over the first.
    #[error("{0}")]
    Conflict(String),
    /// The store is damaged or not a store.
    #[error("store `{path}`: {message}")]
    Store { path: PathBuf, message: String },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A query failed.
    #[error(transparent)]
    DataFusion(datafusion::error::DataFusionError),
    /// Arrow failed on data it was given.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// Parquet failed on data it was given.
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    /// JSON could not be written or read.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A bug or an impossible state: never the user's doing (exit code 1, HTTP 500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Whether the user caused this error by what they gave Custos (exit code 2).
    pub fn is_user_error(&self) -> bool {
        matches!(self, Error::Input(_) | Error::Refused(_) | Error::Usage(_) | Error::Conflict(_))
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

/// A query's failure; the engine's own error when a table opened during the query failed (a
/// damaged file of the store names itself, as it would outside a query).
impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError;
        match e {
            DataFusionError::External(inner) => match inner.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(other) => Error::DataFusion(DataFusionError::External(other)),
            },
            DataFusionError::Context(context, inner) => match Error::from(*inner) {
                Error::DataFusion(inner) => {
                    Error::DataFusion(DataFusionError::Context(context, Box::new(inner)))
                }
                ours => ours,
            },
            DataFusionError::Shared(shared) => match std::sync::Arc::try_unwrap(shared) {
                Ok(inner) => Error::from(inner),
                Err(shared) => match shared.as_ref() {
                    // Several operators share one failure: the store's, as a copy of its words.
                    DataFusionError::External(inner) => match inner.downcast_ref::<Error>() {
                        Some(Error::Store { path, message }) => {
                            Error::Store { path: path.clone(), message: message.clone() }
                        }
                        _ => Error::DataFusion(DataFusionError::Shared(shared)),
                    },
                    _ => Error::DataFusion(DataFusionError::Shared(shared)),
                },
            },
            other => Error::DataFusion(other),
        }
    }
}

impl From<InputError> for Error {
    fn from(e: InputError) -> Self {
        Error::Input(Box::new(e))
    }
}

/// The engine's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_names_file_line_column_value_and_expectation() {
        let e = InputError::at("cases.csv", Location::Line(12), "expected a date")
            .column("created_at")
            .value("2024-13-01");
        assert_eq!(e.to_string(), "cases.csv:12: column `created_at`: value `2024-13-01`: expected a date");
    }

    #[test]
    fn a_huge_value_is_cut() {
        let big = "x".repeat(10_000);
        let e = InputError::file("users.csv", "too long").value(&big);
        assert!(e.to_string().len() < 200);
        assert!(e.to_string().contains("(10000 bytes)"));
    }
}
