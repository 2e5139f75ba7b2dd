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
pub use custos_engine::read as data;
pub mod demo;
pub mod error;
pub mod metrics;
pub mod page;
mod protected;
pub mod routes;
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

pub use error::{Error, Result};

/// What every handler shares.
pub struct AppState {
    /// The store's directory.
    pub store_dir: PathBuf,
    /// The engine as the server opened it: the policy sets parsed once, shared by every
    /// [`AppState::engine`].
    opened: custos_engine::Engine,
    /// The accounts that may log in, read again whenever their file changes.
    pub accounts: LiveAccounts,
    /// Password hashing and report drawing run off the async workers, one at a time: a
    /// flood of logins or reports takes at most one core from serving pages.
    pub hashing: tokio::sync::Semaphore,
    /// Logins waiting for [`hashing`](AppState::hashing); past [`LOGIN_QUEUE`] a login is
    /// answered 503 at once, costing nothing.
    pub logins_waiting: std::sync::atomic::AtomicUsize,
    /// Live sessions and failed logins.
    pub sessions: session::Sessions,
    /// The view policies.
    pub guard: authz::Guard,
    /// What the pages show.
    pub data: RwLock<Arc<data::Data>>,
    /// Which load of the data is shown: one more at every reload, part of every cached
    /// page's key, so that no page outlives the data it was built from.
    pub generation: std::sync::atomic::AtomicU64,
    /// The store as the data were loaded: what identifies its manifest, and its head.
    pub loaded: std::sync::Mutex<(FileId, String)>,
    /// Deadlines are judged as of now, moving with the clock (no `--as-of` given).
    pub follows_clock: bool,
    /// Cookies carry `Secure` (anything but a loopback address).
    pub secure_cookies: bool,
    /// The disclosure-control threshold for counts shown without access to detail.
    pub k: u64,
    /// The published grids of the data now shown, with the generation they were made from:
    /// what a role without access to detail sees (`protected`), made on its first request.
    pub grids: tokio::sync::Mutex<Option<(u64, Arc<custos_reports::grid::Grids>)>>,
    /// Pages built, by role, scope and address (see `routes::cached`).
    pub pages: std::sync::Mutex<std::collections::HashMap<PageKey, Arc<page::Page>>>,
    /// Every finding's review, as committed to the store (by this server or another).
    pub reviews: std::sync::Mutex<custos_engine::review::Reviews>,
    /// One more at every review committed: part of every cached page's key, so that no page
    /// shows a review's state older than the review.
    pub reviewed: std::sync::atomic::AtomicU64,
    /// The findings of the data now shown by their stable key, with the generation they were
    /// indexed from.
    pub index: std::sync::Mutex<Option<(u64, Arc<routes::review::Index>)>>,
    /// Visits not yet written to the trail (written every [`TRAIL_FLUSH`]).
    pub visits: std::sync::Mutex<Vec<custos_engine::trail::Visit>>,
    /// The trail as read from the store so far, and how many manifest entries were read.
    trail: std::sync::Mutex<(Vec<custos_engine::trail::Visit>, usize)>,
    /// Held by the refresh that runs.
    refreshing: tokio::sync::Mutex<()>,
    /// What `/metrics` answers.
    pub metrics: metrics::Metrics,
    /// A register entry was saved and the registers are to be read again.
    pub registers_stale: std::sync::atomic::AtomicBool,
    /// When the last register entry was saved (UTC microseconds).
    pub registers_saved: std::sync::atomic::AtomicI64,
    /// The registers kept in Custos (`breaches`, `dsr_requests`), by table: made at their
    /// first save or view, then caught up with the store.
    keepers: std::sync::Mutex<std::collections::HashMap<&'static str, custos_engine::edits::Keeper>>,
}

/// How often the visits of the access log are committed to the store: answers do not wait for
/// the disk, and a commit carries every visit of the interval. A server killed without
/// warning loses at most the visits of the last interval; a server stopped (Ctrl-C, SIGTERM)
/// writes them before it exits.
pub const TRAIL_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

/// The kinds of commit that record what supervisors did in Custos (reviews, the access log):
/// they change no finding, so the data are not loaded again after them.
const RECORDS: [&str; 2] = ["disposition", "trail"];

/// The kind of commit of a register entry saved in Custos (`custos_engine::edits`).
const REGISTER: &str = "register";

/// Logins that may wait for password hashing at once.
pub const LOGIN_QUEUE: usize = 64;
/// The least time between the starts of two password checks: at most five a second, so that
/// a flood of logins from many addresses takes a small share of one core (argon2id takes some
/// 30 ms of it), and the pages keep the rest.
pub const LOGIN_SPACING: std::time::Duration = std::time::Duration::from_millis(200);

/// Data generation, reviews committed, role, member state, controller, address.
pub type PageKey = (u64, u64, String, String, String, String);

/// How often a server looks whether the store took a commit.
pub const WATCH: std::time::Duration = std::time::Duration::from_secs(5);
/// How often a server that follows the clock judges deadlines afresh.
pub const CLOCK: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The most pages kept built; past it the cache starts afresh.
pub const PAGE_CACHE: usize = 4096;

impl AppState {
    /// Opens `store_dir`, reads its accounts and loads its data as of `as_of`.
    pub async fn open(store_dir: &Path, as_of: i64, secure_cookies: bool) -> Result<AppState> {
        let manifest = file_id(&store_dir.join("manifest.jsonl"));
        let engine = custos_engine::Engine::open(store_dir)?;
        let store = engine.store().clone();
        let data = data::Data::load(&engine, as_of).await?;
        Ok(AppState {
            opened: engine.clone(),
            generation: std::sync::atomic::AtomicU64::new(0),
            loaded: std::sync::Mutex::new((manifest, store.head().to_owned())),
            follows_clock: false,
            store_dir: store_dir.to_owned(),
            accounts: LiveAccounts::open(store_dir)?,
            hashing: tokio::sync::Semaphore::new(1),
            logins_waiting: std::sync::atomic::AtomicUsize::new(0),
            sessions: session::Sessions::default(),
            guard: authz::Guard::new()?,
            data: RwLock::new(Arc::new(data)),
            secure_cookies,
            k: custos_engine::disclosure::DEFAULT_K,
            grids: tokio::sync::Mutex::new(None),
            pages: std::sync::Mutex::new(std::collections::HashMap::new()),
            reviews: std::sync::Mutex::new(custos_engine::review::Reviews::load(&store)?),
            reviewed: std::sync::atomic::AtomicU64::new(0),
            index: std::sync::Mutex::new(None),
            visits: std::sync::Mutex::new(Vec::new()),
            trail: std::sync::Mutex::new((Vec::new(), 0)),
            refreshing: tokio::sync::Mutex::new(()),
            metrics: metrics::Metrics::default(),
            registers_stale: std::sync::atomic::AtomicBool::new(false),
            registers_saved: std::sync::atomic::AtomicI64::new(0),
            keepers: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The engine over the store as it is now (reopened: a commit since is seen), with the
    /// policy sets parsed when the server opened.
    pub fn engine(&self) -> Result<custos_engine::Engine> {
        Ok(self.opened.reopen()?)
    }

    /// Commits the queued visits of the access log to the store in one commit. A failed
    /// write keeps them queued for the next try (blocking: call it off the async workers).
    pub fn flush_visits(&self) -> Result<()> {
        let visits =
            std::mem::take(&mut *self.visits.lock().map_err(|_| Error::Internal("the visits' lock".into()))?);
        if visits.is_empty() {
            return Ok(());
        }
        let store = custos_engine::store::Store::open(&self.store_dir)?;
        if let Err(e) =
            custos_engine::trail::record(&store, &visits, custos_engine::finding::Instant(now_micros()))
        {
            if let Ok(mut q) = self.visits.lock() {
                let newer = std::mem::replace(&mut *q, visits);
                q.extend(newer);
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// The trail as committed to the store, read up to its latest commit.
    pub fn trail<T>(&self, f: impl FnOnce(&[custos_engine::trail::Visit]) -> T) -> Result<T> {
        let store = custos_engine::store::Store::open(&self.store_dir)?;
        let mut read = self.trail.lock().map_err(|_| Error::Internal("the trail's lock".into()))?;
        let (fresh, seen) = custos_engine::trail::since(&store, read.1)?;
        read.0.extend(fresh);
        read.1 = seen;
        // Read in place: the log grows with every answer, and is never copied for a page.
        Ok(f(&read.0))
    }

    /// Runs `f` with the keeper of the register `table`, caught up with `store` (made at the
    /// first call), one at a time (blocking: call it off the async workers).
    pub fn keeping<T>(
        &self,
        table: &'static custos_engine::catalog::Table,
        store: &custos_engine::store::Store,
        f: impl FnOnce(&mut custos_engine::edits::Keeper) -> Result<T>,
    ) -> Result<T> {
        let mut keepers = self.keepers.lock().map_err(|_| Error::Internal("the registers' lock".into()))?;
        let keeper = match keepers.entry(table.name) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let k = e.into_mut();
                k.catch_up(store)?;
                k
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(custos_engine::edits::Keeper::load(store, table)?)
            }
        };
        f(keeper)
    }

    /// The hash of the deadline policy set that judges the deadlines shown.
    pub fn deadline_policy_hash(&self) -> String {
        self.opened.deadline_policies().hash().to_owned()
    }

    /// The data now shown.
    pub fn data(&self) -> Arc<data::Data> {
        self.data.read().map(|d| Arc::clone(&d)).unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    /// The published grids of the data now shown, and the data generation they were made
    /// from; made once per generation (the breach grid of each year is judged as of that
    /// year's end, a deadline check each).
    pub async fn grids(&self) -> Result<(u64, Arc<custos_reports::grid::Grids>)> {
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        let mut made = self.grids.lock().await;
        if let Some((g, grids)) = made.as_ref()
            && *g == generation
        {
            return Ok((*g, Arc::clone(grids)));
        }
        let data = self.data();
        let engine = self.engine()?;
        let grids = Arc::new(custos_reports::grid::Grids::load(&engine, &data, self.k).await?);
        *made = Some((generation, Arc::clone(&grids)));
        Ok((generation, grids))
    }

    /// Loads the data again if the store took a commit since they were loaded (a new audit,
    /// an import) or, following the clock, if they were judged more than [`CLOCK`] ago.
    /// Returns whether it did. Pages built from the data before are no longer served.
    pub async fn refresh(&self) -> Result<bool> {
        // One at a time: a refresh asked for while another runs waits, then finds the data
        // already loaded.
        let _one = self.refreshing.lock().await;
        let manifest = file_id(&self.store_dir.join("manifest.jsonl"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        let stale = self.follows_clock && now - self.data().as_of >= CLOCK.as_micros() as i64;
        let moved = self.loaded.lock().map(|l| l.0 != manifest).unwrap_or(true);
        if !moved && !stale {
            return Ok(false);
        }
        let engine = self.engine()?;
        let store = engine.store().clone();
        if self.reviews.lock().map_err(|_| Error::Internal("the reviews' lock".into()))?.catch_up(&store)? {
            self.reviewed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        // Reviews and the access log change no finding: the data stay as they are. A register
        // entry saved in Custos changes the registers and their findings only: those are read
        // and judged again, nothing else.
        let head = self.loaded.lock().map(|l| l.1.clone()).unwrap_or_default();
        let since = store.entries().iter().rev().take_while(|e| e.hash != head);
        let kinds: Vec<&str> = since.clone().map(|e| e.body.kind.as_str()).collect();
        let head_known = since.count() < store.entries().len();
        if !stale && head_known && kinds.iter().all(|k| RECORDS.contains(k) || *k == REGISTER) {
            let registers = kinds.contains(&REGISTER);
            if registers {
                let fresh = self.data().with_registers(&engine).await?;
                self.metrics.register_checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Ok(mut d) = self.data.write() {
                    *d = Arc::new(fresh);
                }
                self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if let Ok(mut pages) = self.pages.lock() {
                    pages.clear();
                }
            }
            if let Ok(mut l) = self.loaded.lock() {
                *l = (manifest, store.head().to_owned());
            }
            return Ok(registers);
        }
        let as_of = if self.follows_clock { now } else { self.data().as_of };
        let fresh = data::Data::load(&engine, as_of).await?;
        self.metrics.loads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut d) = self.data.write() {
            *d = Arc::new(fresh);
        }
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut l) = self.loaded.lock() {
            *l = (manifest, store.head().to_owned());
        }
        if let Ok(mut pages) = self.pages.lock() {
            pages.clear();
        }
        tracing::info!(head = %store.head(), as_of, "data loaded again");
        Ok(true)
    }
}

/// Commits the queued visits of the access log every [`TRAIL_FLUSH`] until the server stops.
async fn flush_visits(state: Arc<AppState>) {
    loop {
        tokio::time::sleep(TRAIL_FLUSH).await;
        let s = Arc::clone(&state);
        match tokio::task::spawn_blocking(move || s.flush_visits()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("the access log could not be written (kept to retry): {e}"),
            Err(e) => tracing::error!("the access log could not be written: {e}"),
        }
    }
}

/// Refreshes `state` every [`WATCH`] until the server stops. A store that cannot be read
/// (a damaged file) keeps the data as last loaded, and says so.
async fn watch(state: Arc<AppState>) {
    loop {
        tokio::time::sleep(WATCH).await;
        if let Err(e) = state.refresh().await {
            tracing::error!("the store could not be read again; the pages show it as last read: {e}");
        }
    }
}

/// What identifies the accounts file's present content: size, modification time, inode.
pub type FileId = Option<(u64, Option<std::time::SystemTime>, u64)>;

fn file_id(path: &Path) -> FileId {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.len(), meta.modified().ok(), inode))
}

/// The last 4 KiB of the manifest at `path` (all of it if shorter): the whole of its last
/// entry, whose hash chains every entry before it. Read on every request while the manifest
/// is fresh, so never the whole file, which grows with the store's history.
fn tail(path: &Path) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 4096;
    let Ok(mut file) = std::fs::File::open(path) else { return Vec::new() };
    let len = file.metadata().map_or(0, |m| m.len());
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(len.saturating_sub(TAIL))).is_ok() && file.read_to_end(&mut bytes).is_err() {
        bytes.clear();
    }
    bytes
}

/// The store's accounts as a running server sees them: read again as soon as the file
/// changes, so that `custos user …` takes effect without a restart.
pub struct LiveAccounts {
    path: PathBuf,
    dir: PathBuf,
    current: RwLock<(FileId, Arc<account::Accounts>, Vec<u8>)>,
}

impl LiveAccounts {
    /// The accounts of the store at `store_dir`.
    pub fn open(store_dir: &Path) -> Result<LiveAccounts> {
        // Every change of the accounts is a commit: the manifest tells when to read them again.
        let path = store_dir.join("manifest.jsonl");
        let id = file_id(&path);
        let bytes = tail(&path);
        let accounts = account::Accounts::load(store_dir)?;
        Ok(LiveAccounts {
            path,
            dir: store_dir.to_owned(),
            current: RwLock::new((id, Arc::new(accounts), bytes)),
        })
    }

    /// The accounts now, read again if the manifest changed since. Sessions of accounts that
    /// changed or went end; the login limit of accounts an operator unlocked is lifted. A
    /// version that fails its check (altered by hand) is not read: the accounts as last read
    /// stand, and the failure is logged.
    pub fn now(&self, sessions: &session::Sessions) -> Arc<account::Accounts> {
        let mut id = file_id(&self.path);
        // A file replaced within the file system's clock granularity may show the same size,
        // time and (reused) inode: such a fresh file is told apart by its last bytes, which
        // end with the head entry's hash (the manifest is only appended to).
        if let Some((_, Some(modified), _)) = id
            && modified.elapsed().is_ok_and(|age| age < std::time::Duration::from_secs(2))
        {
            let bytes = tail(&self.path);
            let unchanged = self.current.read().is_ok_and(|c| c.0 == id && c.2 == bytes);
            if !unchanged {
                id = None;
            }
        }
        let known = self.current.read().map(|c| (c.0 == id && id.is_some(), Arc::clone(&c.1)));
        if let Ok((true, accounts)) = known {
            return accounts;
        }
        let Ok(mut current) = self.current.write() else {
            return Arc::new(account::Accounts::default());
        };
        let bytes = tail(&self.path);
        if current.0 == id && id.is_some() && current.2 == bytes {
            return Arc::clone(&current.1);
        }
        let id = file_id(&self.path);
        match account::Accounts::load(&self.dir) {
            Ok(fresh) => {
                for old in current.1.all() {
                    match fresh.get(&old.name) {
                        Some(new) if new.stamp() == old.stamp() => {}
                        _ => sessions.end_all_of(&old.name),
                    }
                    if fresh.get(&old.name).is_some_and(|new| new.unlocked_at != old.unlocked_at) {
                        sessions.forget_failures_of(&old.name);
                    }
                }
                tracing::info!(accounts = fresh.all().len(), "accounts read again");
                *current = (id, Arc::new(fresh), bytes);
            }
            // A version altered by hand: the accounts as last read stand.
            Err(e) => tracing::error!("accounts not read again: {e}"),
        }
        Arc::clone(&current.1)
    }
}

/// The application.
pub fn app(state: Arc<AppState>) -> Router {
    // The trail's layer is inside the session's: it sees who asked, and what was shown.
    let private = routes::pages()
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), record_visits))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), require_session));
    Router::new()
        .merge(routes::public())
        .merge(private)
        .route("/metrics", axum::routing::get(metrics))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), measure))
        .layer(middleware::from_fn(deadline))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Counts every answer by its route's pattern (bounded: `/review/{key}`, never the key) and
/// the time it took.
async fn measure(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    state.metrics.observe(&route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// `/metrics` (Prometheus text): on a loopback address, or to the administrator's session;
/// to anyone else it does not exist.
async fn metrics(
    State(state): State<Arc<AppState>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
) -> Response {
    let admin = headers
        .get(header::COOKIE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| session::cookie(h, session::COOKIE))
        .and_then(|id| state.sessions.get(id))
        .is_some_and(|s| {
            let current =
                state.accounts.now(&state.sessions).get(&s.viewer.name).is_some_and(|a| a.stamp() == s.stamp);
            current && state.guard.allows(&s.viewer, &authz::Item::admin())
        });
    if !peer.ip().is_loopback() && !admin {
        return StatusCode::NOT_FOUND.into_response();
    }
    match custos_engine::store::Store::open(&state.store_dir) {
        Ok(store) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            state.metrics.render(&store),
        )
            .into_response(),
        Err(e) => error::AppError::from(e).into_response(),
    }
}

/// The session of a request, put there by [`require_session`].
#[derive(Clone)]
pub struct Current {
    /// The session id.
    pub id: String,
    /// The session.
    pub session: session::Session,
}

/// Writes every answer that showed detail about a natural person (a page marked with what it
/// showed, [`page::Shown`]) to the queue of Custos's own access log: who, in which role, when,
/// which item, which address.
async fn record_visits(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let viewer = req.extensions().get::<Current>().map(|c| c.session.viewer.clone());
    let page = req.uri().path_and_query().map(ToString::to_string).unwrap_or_default();
    let response = next.run(req).await;
    if let (Some(v), Some(shown)) = (viewer, response.extensions().get::<page::Shown>())
        && response.status().is_success()
    {
        let visit = custos_engine::trail::Visit {
            at: custos_engine::finding::Instant(now_micros()),
            page,
            item_kind: shown.kind.to_owned(),
            item: shown.item.clone(),
            // A list shows the viewer's own scope (the EDPS's: Union actors).
            member_state: if shown.member_state.is_empty() && shown.controller.is_empty() {
                if v.role == "edps" { "EU".to_owned() } else { v.member_state.clone() }
            } else {
                shown.member_state.clone()
            },
            controller: if shown.member_state.is_empty() && shown.controller.is_empty() {
                v.controller.clone()
            } else {
                shown.controller.clone()
            },
            user: v.name,
            role: v.role,
        };
        if let Ok(mut q) = state.visits.lock() {
            q.push(visit);
        }
    }
    response
}

/// Now, in UTC microseconds.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

async fn require_session(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let found = req
        .headers()
        .get(header::COOKIE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| session::cookie(h, session::COOKIE))
        .and_then(|id| state.sessions.get(id).map(|s| (id.to_owned(), s)))
        // A session lasts as long as its account as it was at login: changed, disabled or
        // removed, it ends.
        .filter(|(id, s)| {
            let accounts = state.accounts.now(&state.sessions);
            let same = accounts.get(&s.viewer.name).is_some_and(|a| a.stamp() == s.stamp);
            if !same {
                state.sessions.end(id);
            }
            same
        });
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

/// How long a client may take to send a request's headers: a client that trickles them in
/// (slowloris) is disconnected rather than holding a connection forever.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a request may take, reading its body to the last byte of the answer.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Answers 503 to a request that takes longer than [`REQUEST_TIMEOUT`], so that no client
/// holds a worker forever.
async fn deadline(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!(%path, "stopped: the request took longer than {} s", REQUEST_TIMEOUT.as_secs());
            (StatusCode::SERVICE_UNAVAILABLE, "the request took too long; try again later").into_response()
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
    let watcher = tokio::spawn(watch(Arc::clone(&state)));
    let flusher = tokio::spawn(flush_visits(Arc::clone(&state)));
    let router = app(Arc::clone(&state));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let service =
            tower::ServiceExt::map_request(router.clone(), move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                req
            });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            )
            .with_upgrades();
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                done = connection.as_mut() => {
                    if let Err(e) = done {
                        tracing::debug!(%peer, "connection: {e}");
                    }
                }
                _ = stopping.changed() => {
                    // The requests in flight finish; nothing new is read.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        // Connections that ended are reaped as they go, so the set holds only live ones.
        while connections.try_join_next().is_some() {}
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    watcher.abort();
    flusher.abort();
    // The visits of the last moments are written before the server exits.
    let last = Arc::clone(&state);
    match tokio::task::spawn_blocking(move || last.flush_visits()).await {
        Ok(Err(e)) => tracing::error!("the last visits of the access log could not be written: {e}"),
        Err(e) => tracing::error!("the last visits of the access log could not be written: {e}"),
        Ok(Ok(())) => {}
    }
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
