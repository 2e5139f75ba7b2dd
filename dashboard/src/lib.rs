//! The Custos supervision dashboard: an axum application over one store.
//!
//! ```text
//! browser ──► security headers ──► session (cookie) ──► handler ──► Guard (Cedar view policies)
//!                                      │                   │              │
//!                                   /login              Data (loaded      only permitted items,
//!                                   /healthz            from the store)   counts protected for
//!                                                                         roles without detail
//! ```
//!
//! Every page has a JSON twin under `/api/` (same handler, same decisions) and the OpenAPI
//! document is at `/api/openapi.json`. Nothing but `/login`, `/healthz` and the stylesheet
//! answers without a session.

pub mod account;
pub mod authz;
pub use custos_reports::data;
pub mod error;
pub mod page;
mod routes;
pub mod session;
pub mod text;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use custos_engine::store::Store;

pub use error::{Error, Result};

/// What every handler shares.
pub struct AppState {
    /// The store's directory.
    pub store_dir: PathBuf,
    /// The accounts that may log in.
    pub accounts: RwLock<account::Accounts>,
    /// Live sessions and failed logins.
    pub sessions: session::Sessions,
    /// The view policies.
    pub guard: authz::Guard,
    /// What the pages show.
    pub data: RwLock<Arc<data::Data>>,
    /// Cookies carry `Secure` (anything but a loopback address).
    pub secure_cookies: bool,
    /// The disclosure-control threshold for counts shown without access to detail.
    pub k: u64,
    /// Pages built, by role, scope and address (see `routes::cached`).
    pub pages: std::sync::Mutex<std::collections::HashMap<PageKey, Arc<page::Page>>>,
}

/// Role, member state, controller, address.
pub type PageKey = (String, String, String, String);

/// The most pages kept built; past it the cache starts afresh.
pub const PAGE_CACHE: usize = 4096;

impl AppState {
    /// Opens `store_dir`, reads its accounts and loads its data as of `as_of`.
    pub async fn open(store_dir: &Path, as_of: i64, secure_cookies: bool) -> Result<AppState> {
        let store = Store::open(store_dir)?;
        let data = data::Data::load(&store, as_of).await?;
        Ok(AppState {
            store_dir: store_dir.to_owned(),
            accounts: RwLock::new(account::Accounts::load(store_dir)?),
            sessions: session::Sessions::default(),
            guard: authz::Guard::new()?,
            data: RwLock::new(Arc::new(data)),
            secure_cookies,
            k: custos_engine::disclosure::DEFAULT_K,
            pages: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The data now shown.
    pub fn data(&self) -> Arc<data::Data> {
        self.data.read().map(|d| Arc::clone(&d)).unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }
}

/// The application.
pub fn app(state: Arc<AppState>) -> Router {
    let private =
        routes::pages().route_layer(middleware::from_fn_with_state(Arc::clone(&state), require_session));
    Router::new()
        .merge(routes::public())
        .merge(private)
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// The session of a request, put there by [`require_session`].
#[derive(Clone)]
pub struct Current {
    /// The session id.
    pub id: String,
    /// The session.
    pub session: session::Session,
}

async fn require_session(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let found = req
        .headers()
        .get(header::COOKIE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| session::cookie(h, session::COOKIE))
        .and_then(|id| state.sessions.get(id).map(|s| (id.to_owned(), s)));
    match found {
        Some((id, session)) => {
            req.extensions_mut().insert(Current { id, session });
            next.run(req).await
        }
        None => {
            let path = req.uri().path().to_owned();
            tracing::info!(%path, "refused: no session");
            if path.starts_with("/api/") {
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"error":"log in first"}"#,
                )
                    .into_response()
            } else {
                Redirect::to("/login").into_response()
            }
        }
    }
}

/// The headers every response carries: a strict Content-Security-Policy (no scripts at all,
/// styles and images from this origin, no framing), `nosniff`, no referrer, no caching of
/// pages that show data.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    res
}

/// Serves `state` on `addr` until Ctrl-C or SIGTERM, then finishes the requests in flight.
pub async fn serve(state: Arc<AppState>, addr: SocketAddr) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            Error::Usage(format!(
                "address {addr} is already in use: stop what runs there or pass another `--addr`"
            ))
        } else {
            Error::Usage(format!("cannot listen on {addr}: {e}"))
        }
    })?;
    serve_on(state, listener, shutdown_signal()).await
}

/// Serves `state` on a bound `listener` until `shutdown` completes.
pub async fn serve_on(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = listener.local_addr().map_err(|e| Error::Internal(e.to_string()))?;
    tracing::info!(%addr, "serving");
    axum::serve(listener, app(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Internal(format!("server: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
