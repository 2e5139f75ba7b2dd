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
    /// The data pages show, or a report, could not be made.
    #[error(transparent)]
    Reports(#[from] custos_reports::Error),
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
            Error::Reports(e) => e.is_user_error(),
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
    /// 409: the record changed since the viewer saw it; what is there now.
    Conflict(String),
    /// 429, with the seconds to wait.
    TooMany(u64),
    /// 503: too much of one kind of work waits already (logins in a flood); try again soon.
    Busy,
    /// 500: logged, not shown.
    Internal(String),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        if let Error::Engine(custos_engine::Error::Conflict(m)) = e {
            AppError::Conflict(m)
        } else if e.is_user_error() {
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

impl From<custos_reports::Error> for AppError {
    fn from(e: custos_reports::Error) -> Self {
        AppError::from(Error::from(e))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            AppError::Forbidden => (StatusCode::FORBIDDEN, "you may not see this".to_owned()),
            AppError::NotFound(what) => (StatusCode::NOT_FOUND, format!("not found: {what}")),
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            AppError::Conflict(m) => (StatusCode::CONFLICT, m),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// An internal failure is answered as one: 500, its cause in the log and never on the
    /// page; a user's mistake is a 400 with its message.
    #[test]
    fn internal_failures_are_500_without_their_cause_and_user_errors_400() {
        let body = |r: Response| {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            String::from_utf8(rt.block_on(axum::body::to_bytes(r.into_body(), 1 << 20)).unwrap().to_vec())
                .unwrap()
        };
        for internal in [
            AppError::from(custos_reports::Error::Render {
                what: "the report as PDF",
                cause: "SECRET".into(),
            }),
            AppError::from(custos_engine::Error::Internal("SECRET".into())),
            AppError::from(Error::Internal("SECRET".into())),
        ] {
            let r = internal.into_response();
            assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert!(!body(r).contains("SECRET"));
        }
        let r =
            AppError::from(custos_engine::Error::Usage("year `x`: expected a year".into())).into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(body(r).contains("expected a year"));
        assert!(!Error::from(custos_reports::Error::Render { what: "x", cause: "y".into() }).is_user_error());
    }
}
