//! A running dashboard follows its store: a new audit, an import, the passing of time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use custos_dashboard::AppState;

fn base() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/base")
}

/// A new store holding the base fixture: its directory (kept while in scope) and path.
fn imported() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let inputs = custos_engine::import::inputs(&[base()], None).unwrap();
    custos_engine::import::import(&store_dir, &inputs, "2026-07-01T00:00:00Z").unwrap();
    (dir, store_dir)
}

#[test]
fn a_new_audit_reaches_the_pages_without_a_restart_and_cached_pages_are_not_served_after_it() {
    let (_dir, store_dir) = imported();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let as_of = custos_engine::import::parse_timestamp("2026-07-01T00:00:00Z").unwrap();
    let state = rt.block_on(AppState::open(&store_dir, as_of, false)).unwrap();
    assert!(state.data().ntk.is_empty(), "no audit yet");
    assert!(!rt.block_on(state.refresh()).unwrap(), "nothing changed: nothing loaded");
    let generation = state.generation.load(std::sync::atomic::Ordering::SeqCst);
    // An audit commits while the server runs.
    let engine =
        custos_engine::Engine::open(&store_dir).unwrap().with_clock(custos_engine::Clock::Fixed(as_of));
    let audit = rt.block_on(engine.audit(Default::default())).unwrap();
    assert!(!audit.findings.is_empty());
    engine.record(&audit).unwrap();
    assert!(rt.block_on(state.refresh()).unwrap(), "the commit was not seen");
    assert_eq!(state.data().ntk.len(), audit.findings.len());
    assert_eq!(state.data().as_of, as_of, "a fixed --as-of stays fixed");
    assert_eq!(state.generation.load(std::sync::atomic::Ordering::SeqCst), generation + 1);
    assert_eq!(state.loaded.lock().unwrap().1, custos_engine::store::Store::open(&store_dir).unwrap().head());
    // A review and the access log committed (by this server or another) change no finding:
    // the review is seen, the data are not loaded again, the pages built are dropped only by
    // the review counter.
    let store = custos_engine::store::Store::open(&store_dir).unwrap();
    let f = &audit.findings[0];
    let mut other = custos_engine::review::Reviews::load(&store).unwrap();
    let change = custos_engine::review::Change {
        state: custos_engine::review::State::UnderReview,
        by: "elsewhere".into(),
        role: "edps".into(),
        ..Default::default()
    };
    other.record(&store, &[(f, "h", 0)], &change, custos_engine::finding::Instant(as_of)).unwrap();
    let visit = custos_engine::trail::Visit {
        at: custos_engine::finding::Instant(as_of),
        user: "elsewhere".into(),
        role: "edps".into(),
        page: "/review".into(),
        item_kind: "list".into(),
        item: String::new(),
        member_state: "EU".into(),
        controller: String::new(),
    };
    custos_engine::trail::record(&store, &[visit], custos_engine::finding::Instant(as_of)).unwrap();
    let reviewed = state.reviewed.load(std::sync::atomic::Ordering::SeqCst);
    assert!(!rt.block_on(state.refresh()).unwrap(), "the data were loaded again for a review");
    assert_eq!(state.generation.load(std::sync::atomic::Ordering::SeqCst), generation + 1);
    assert_eq!(state.reviewed.load(std::sync::atomic::Ordering::SeqCst), reviewed + 1);
    let key = custos_engine::review::key(f);
    assert_eq!(state.reviews.lock().unwrap().state(&key), custos_engine::review::State::UnderReview);
    assert_eq!(state.trail(<[_]>::len).unwrap(), 1);
}

#[test]
fn a_server_following_the_clock_judges_deadlines_as_of_now() {
    let (_dir, store_dir) = imported();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Loaded as of a day long past, following the clock: the next look judges as of now.
    let then = custos_engine::import::parse_timestamp("2025-01-01T00:00:00Z").unwrap();
    let mut state = rt.block_on(AppState::open(&store_dir, then, false)).unwrap();
    state.follows_clock = true;
    assert!(rt.block_on(state.refresh()).unwrap());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    assert!((now - state.data().as_of).abs() < 60_000_000, "deadlines not judged as of now");
}

#[test]
fn a_client_that_trickles_its_headers_is_disconnected_and_the_server_stops_when_asked() {
    use std::io::{Read, Write};
    let (_dir, store_dir) = imported();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let as_of = custos_engine::import::parse_timestamp("2026-07-01T00:00:00Z").unwrap();
    let state = Arc::new(rt.block_on(AppState::open(&store_dir, as_of, false)).unwrap());
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(custos_dashboard::serve_on(state, listener, async {
        let _ = stopped.await;
    }));
    // A whole request is answered.
    let mut quick = std::net::TcpStream::connect(addr).unwrap();
    quick.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    quick.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"), "{answer}");
    // Headers that never end: the connection is closed once the header-read timeout passes.
    let limit = custos_dashboard::HEADER_READ_TIMEOUT;
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    slow.set_read_timeout(Some(limit * 3)).unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let read = slow.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(read.is_ok(), "the connection was still open after {waited:?}: {read:?}");
    assert!(!String::from_utf8_lossy(&rest).contains("200"), "a request without its end was answered");
    assert!(
        waited >= limit - std::time::Duration::from_secs(1) && waited < limit * 2,
        "closed after {waited:?}"
    );
    stop.send(()).unwrap();
    rt.block_on(server).unwrap().unwrap();
}
