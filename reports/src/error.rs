//! The reports crate's error: the engine's, or a report that could not be rendered.

/// What can go wrong making a report or the data pages show.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine failed (the store, a query, a bad argument).
    #[error(transparent)]
    Engine(#[from] custos_engine::Error),
    /// A report, page or chart could not be rendered: a bug, never the user's doing.
    #[error("rendering {what}: {cause}")]
    Render { what: &'static str, cause: String },
}

impl Error {
    /// Whether the user caused this error by what they gave (exit code 2, HTTP 400).
    pub fn is_user_error(&self) -> bool {
        matches!(self, Error::Engine(e) if e.is_user_error())
    }
}

macro_rules! through_engine {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Engine(e.into())
            }
        }
    )*};
}

through_engine!(datafusion::error::DataFusionError, arrow::error::ArrowError, serde_json::Error);

/// The reports crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
