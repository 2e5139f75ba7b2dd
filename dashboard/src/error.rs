//! The dashboard's error, and how an error becomes an HTTP response.

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What can go wrong in the dashboard.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request or argument that cannot be carried out as given.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] custos_engine::Error),
    /// The policies failed to load.
    #[error(transparent)]
    Policies(#[from] custos_policies::Error),
    /// A bug or an impossible state.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// Whether the user caused this error by what they gave (exit code 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Usage(_) => true,
            Error::Engine(e) => e.is_user_error(),
            _ => false,
        }
    }
}

/// The dashboard's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An HTTP error: 4xx messages are shown; 5xx causes are logged and hidden.
#[derive(Debug)]
pub enum AppError {
    /// 403: the viewer may not see this.
    Forbidden,
    /// 404.
    NotFound(String),
    /// 400.
    BadRequest(String),
    /// 429, with the seconds to wait.
    TooMany(u64),
    /// 503: too much of one kind of work waits already (logins in a flood); try again soon.
    Busy,
    /// 500: logged, not shown.
    Internal(String),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        if e.is_user_error() {
            AppError::BadRequest(e.to_string())
        } else {
            AppError::Internal(e.to_string())
        }
    }
}

impl From<custos_engine::Error> for AppError {
    fn from(e: custos_engine::Error) -> Self {
        AppError::from(Error::from(e))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            AppError::Forbidden => (StatusCode::FORBIDDEN, "you may not see this".to_owned()),
            AppError::NotFound(what) => (StatusCode::NOT_FOUND, format!("not found: {what}")),
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            AppError::TooMany(secs) => {
                let mut r =
                    (StatusCode::TOO_MANY_REQUESTS, format!("too many attempts: try again in {secs} s"))
                        .into_response();
                if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                    r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
                }
                return r;
            }
            AppError::Busy => {
                let mut r =
                    (StatusCode::SERVICE_UNAVAILABLE, "the server is busy: try again in a moment".to_owned())
                        .into_response();
                r.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
                return r;
            }
            AppError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error: see the server's log".to_owned())
            }
        };
        (status, [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], message).into_response()
    }
}
