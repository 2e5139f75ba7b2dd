//! Supervision records under stress, on a real `custos serve`: a server killed with SIGKILL in
//! the middle of reviews loses none it answered and leaves nothing half-written; a backup
//! taken while it writes verifies.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "a long test password";

/// One HTTP/1.1 request; returns the status, the head (lower case) and the body.
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    // A server killed meanwhile answers nothing: status 0.
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return (0, String::new(), String::new()) };
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new(), String::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let head = head.to_ascii_lowercase();
    let body = if head.contains("transfer-encoding: chunked") {
        super::browser::dechunk(body)
    } else {
        body.to_owned()
    };
    (status, head, body)
}

fn cookie(head: &str, name: &str) -> String {
    head.lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no cookie {name} in {head}"))
}

/// Logs in as `name`: the session's cookie and CSRF token.
fn login(port: u16, name: &str) -> (String, String) {
    let (_, head, body) = http(port, "GET", "/login", &[], "");
    let token = body.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let pre = cookie(&head, "custos_login");
    let form = format!("name={name}&password={}&csrf={token}", PASSWORD.replace(' ', "+"));
    let (status, head, _) = http(
        port,
        "POST",
        "/login",
        &[("Cookie", &pre), ("Content-Type", "application/x-www-form-urlencoded")],
        &form,
    );
    assert_eq!(status, 303, "login as {name}");
    let session = cookie(&head, "custos_session");
    let (_, _, page) = http(port, "GET", "/policies", &[("Cookie", &session)], "");
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    (session, csrf)
}

/// A store with the base fixture, audited, and an EDPS account.
fn audited() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, store) = super::base_store();
    let s = store.to_str().unwrap();
    let out = super::run(&["audit", "--store", s]);
    assert!(out.status.success(), "{}", super::stderr(&out));
    let mut add = super::custos()
        .args(["user", "add", "--store", s, "--name", "edps", "--role", "edps"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    assert!(add.wait().unwrap().success());
    (tmp, store)
}

fn serve(store: &Path, port: u16) -> Child {
    let child = super::custos()
        .args(["serve", "--store", store.to_str().unwrap(), "--addr", &format!("127.0.0.1:{port}")])
        .args(["--as-of", "2026-07-01T00:00:00Z"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(60), "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The keys of the findings the EDPS may review.
fn reviewable(port: u16, session: &str) -> Vec<String> {
    let (status, _, body) = http(port, "GET", "/api/review?state=all", &[("Cookie", session)], "");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["findings"].as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_server_killed_mid_review_loses_nothing_it_answered_and_a_backup_taken_meanwhile_verifies() {
    let (tmp, store) = audited();
    let port = free_port();
    let mut server = serve(&store, port);
    let (session, csrf) = login(port, "edps");
    let keys = reviewable(port, &session);
    assert!(keys.len() >= 2, "the base fixture has Union findings to review: {keys:?}");
    // Reviewers change findings as fast as they can; a backup is taken while they do; then
    // the server is killed without warning in the middle of it.
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, i64)>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = keys
        .iter()
        .take(4)
        .cloned()
        .map(|key| {
            let (session, csrf, answered, stop) =
                (session.clone(), csrf.clone(), answered.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = 0i64;
                let states = ["under_review", "confirmed", "under_review", "false_positive"];
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let to = states[(seen as usize) % states.len()];
                    let body = json!({"state": to, "seen": seen.to_string(), "note": "x"}).to_string();
                    if TcpStream::connect(("127.0.0.1", port)).is_err() {
                        break;
                    }
                    let (status, _, text) = http(
                        port,
                        "POST",
                        &format!("/api/review/{}", custos_dashboard::page::encode(&key)),
                        &[
                            ("Cookie", &session),
                            ("X-CSRF-Token", &csrf),
                            ("Content-Type", "application/json"),
                        ],
                        &body,
                    );
                    if status != 200 {
                        break;
                    }
                    let v: Value = serde_json::from_str(&text).unwrap();
                    seen = v["disposition"]["version"].as_i64().unwrap();
                    answered.lock().unwrap().push((key.clone(), seen));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    let copy = tmp.path().join("backup");
    let out = super::run(&["backup", "--store", store.to_str().unwrap(), "--to", copy.to_str().unwrap()]);
    assert!(out.status.success(), "{}{}", super::stdout(&out), super::stderr(&out));
    assert!(super::stdout(&out).contains("the copy verifies"), "{}", super::stdout(&out));
    std::thread::sleep(Duration::from_millis(400));
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() >= 8, "reviews were written before the kill: {}", answered.len());
    // The store is whole: the chain holds, every file listed is intact, and what a write cut
    // off left is named as such, never as part of the store.
    let out = super::run(&["verify", "--store", store.to_str().unwrap()]);
    assert!(out.status.success(), "{}", super::stdout(&out));
    // Every review the server answered is there, at its version.
    let s = custos_engine::store::Store::open(&store).unwrap();
    let reviews = custos_engine::review::Reviews::load(&s).unwrap();
    for (key, version) in &answered {
        let history = reviews.history(key);
        assert!(history.iter().any(|d| d.version == *version), "{key} v{version} was answered and lost");
        assert_eq!(
            history.iter().map(|d| d.version).collect::<Vec<_>>(),
            (1..=history.len() as i64).collect::<Vec<_>>()
        );
    }
    // And `custos query` reads them.
    let out =
        super::run(&["query", "--store", store.to_str().unwrap(), "SELECT count(*) AS n FROM dispositions"]);
    assert!(out.status.success(), "{}", super::stderr(&out));
    let total: usize = reviews.all().count();
    assert!(super::stdout(&out).contains(&total.to_string()), "{}", super::stdout(&out));
    // A server started again goes on from there; the backup is a store of its own.
    let port = free_port();
    let _again = KillOnDrop(serve(&store, port));
    let (session, _) = login(port, "edps");
    assert_eq!(reviewable(port, &session).len(), keys.len());
    let out = super::run(&["verify", "--store", copy.to_str().unwrap()]);
    assert!(out.status.success(), "{}", super::stdout(&out));
    let out = super::run(&["backup", "--store", store.to_str().unwrap(), "--to", copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "a backup never writes over another");
    assert!(super::stderr(&out).contains("not empty"), "{}", super::stderr(&out));
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
