//! The dashboard under load: `custos serve` on a store of generated events (audited first),
//! `wrk` (Debian) against 127.0.0.1 for a fixed time on the overview and the findings page,
//! logged in as the EDPS. Reports requests per second, latency percentiles and errors.
//!
//! `cargo bench --bench dashboard -- [EVENTS]` (default 100,000,000 access events).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const PASSWORD: &str = "benchmark password";

fn main() {
    let events: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(if smoke() { 20_000 } else { 100_000_000 });
    let (duration, connections) = if smoke() { (2, 8) } else { (15, 32) };
    let wrk = setup_wrk();
    let store = audited_store(events);
    let s = store.to_str().unwrap();
    let mut add = custos();
    add.args(["user", "add", "--store", s, "--name", "bench-edps", "--role", "edps"]).stdin(Stdio::piped());
    let mut child = add.stdout(Stdio::null()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    // The Commission's DPO, who keeps its register in Custos.
    let mut q = custos();
    q.args(["query", "--store", s, "--format", "csv"])
        .arg("SELECT authority_id FROM authorities WHERE kind = 'commission' ORDER BY authority_id LIMIT 1");
    let out = check(q);
    let commission = String::from_utf8(out.stdout).unwrap().lines().nth(1).unwrap().trim().to_owned();
    let mut add = custos();
    add.args([
        "user",
        "add",
        "--store",
        s,
        "--name",
        "bench-dpo",
        "--role",
        "dpo",
        "--controller",
        &commission,
    ])
    .stdin(Stdio::piped());
    let mut child = add.stdout(Stdio::null()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let mut server = custos()
        .args([
            "serve",
            "--store",
            s,
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--as-of",
            "2026-07-01T00:00:00Z",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(600), "the server did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    let load = started.elapsed().as_secs_f64();
    let cookie = login(port, "bench-edps");
    let mut text = format!(
        "## Dashboard under load: {events} access events\n\n\
         Machine: {}. `custos serve` loaded the store in {load:.1} s; `wrk` ran {connections} connections on 2 \
         threads for {duration} s per page, logged in as the EDPS, on 127.0.0.1 (client and server share the \
         machine's cores).\n\n\
         | page | requests/s | p50 ms | p90 ms | p99 ms | errors (non-2xx, socket) |\n|---|---|---|---|---|---|\n",
        machine()
    );
    for path in ["/", "/findings", "/api/overview", "/api/findings"] {
        // Warm-up: the first request builds the page. It must be the page, not a redirect to
        // the login (which wrk would count as a success).
        let first = http_get(port, path, &cookie);
        assert!(first.starts_with("HTTP/1.1 200"), "{path}: {}", first.lines().next().unwrap_or_default());
        let report = run_wrk(&wrk, port, &cookie, connections, duration, path);
        let rps = field(&report, "Requests/sec:").unwrap_or_default();
        let pct = |p: &str| latency(&report, p).map_or("-".into(), |ms| format!("{ms:.2}"));
        let non2xx = field(&report, "Non-2xx or 3xx responses:").unwrap_or(0.0);
        let socket = report.lines().find(|l| l.contains("Socket errors")).unwrap_or("none").trim().to_owned();
        assert!(rps > 0.0, "wrk measured nothing:\n{report}");
        text.push_str(&format!(
            "| `{path}` | {rps:.0} | {} | {} | {} | {non2xx:.0}; {socket} |\n",
            pct("50%"),
            pct("90%"),
            pct("99%")
        ));
    }
    text.push_str(&format!(
        "\nTarget: ≥ 1,000 requests/s on the overview and findings pages at p99 ≤ 100 ms, zero errors. \
         Command: `cargo bench --bench dashboard -- {events}`.\n"
    ));
    // The same page while wrong passwords arrive at 20 logins/s, each from another loopback
    // address (so no limit on one address stops them): password hashing must not starve it.
    let (quiet_rps, quiet_p99) = wrk_findings(&wrk, port, &cookie, connections, duration);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooding = flood(port, 20, std::sync::Arc::clone(&stop));
    std::thread::sleep(Duration::from_secs(1));
    let (busy_rps, busy_p99) = wrk_findings(&wrk, port, &cookie, connections, duration);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (tried, refused, busy) = flooding.join().unwrap();
    text.push_str(&format!(
        "\n### `/findings` under a login flood\n\n| load | requests/s | p99 ms |\n|---|---|---|\n| none | {quiet_rps:.0} | {quiet_p99:.2} |\n| {tried} wrong logins at 20/s from rotating addresses ({refused} answered 401, {busy} answered 503) | {busy_rps:.0} | {busy_p99:.2} |\n\nThroughput kept: {:.0} %. Target: ≥ 80 % and p99 ≤ 100 ms.\n",
        100.0 * busy_rps / quiet_rps.max(1e-9)
    ));
    text.push_str(&reviews(port, &cookie));
    let _ = server.kill();
    let _ = server.wait();
    report("dashboard", &text);
}

/// Reviews saved one after another, as reviewers save them (each a commit to the store under
/// its chain, with its fsyncs), against the peer: the same records appended to SQLite (WAL,
/// `synchronous=FULL`, one transaction each, the version checked first) by Python, as a
/// work tool keeping its records in a database would. The peer has no HTTP, no session and
/// no policy decision: the ratio is an upper bound of what Custos's store costs.
fn reviews(port: u16, cookie: &str) -> String {
    let saves = if smoke() { 40 } else { 300 };
    let (status, body) = http_body(port, "GET", "/api/review?state=all", cookie, "", "");
    assert_eq!(status, 200, "{body}");
    let queue: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut items: Vec<(String, i64, String)> = queue["findings"]
        .as_array()
        .unwrap()
        .iter()
        .take(50)
        .map(|f| {
            (
                f["key"].as_str().unwrap().to_owned(),
                f["version"].as_i64().unwrap(),
                f["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(!items.is_empty(), "no finding for the EDPS to review");
    let page = http_get(port, "/policies", cookie);
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let mut ms = Vec::with_capacity(saves);
    for i in 0..saves {
        let n = items.len();
        let (key, version, state) = &mut items[i % n];
        let to = if state == "under_review" { "confirmed" } else { "under_review" };
        let body = format!(r#"{{"state":"{to}","seen":"{version}","note":"benchmark"}}"#);
        let path = format!("/api/review/{}", custos_dashboard::page::encode(key));
        let t = Instant::now();
        let (status, answer) = http_body(port, "POST", &path, cookie, &csrf, &body);
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 200, "{answer}");
        *version += 1;
        *state = to.to_owned();
    }
    let (p50, p99, max) = percentiles(&mut ms);
    // The DPO completes one breach again and again (a new version each time): a register save.
    let dpo = login(port, "bench-dpo");
    let page = http_get(port, "/policies", &dpo);
    let dpo_csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let (_, current) = http_body(port, "GET", "/api/breaches/record?id=B-BENCH-1", &dpo, "", "");
    let version = serde_json::from_str::<serde_json::Value>(&current)
        .ok()
        .and_then(|v| v["version"].as_i64())
        .unwrap_or(0);
    let mut register_ms = Vec::with_capacity(saves);
    for i in 0..saves as i64 {
        let version = version + i;
        let notified = if i % 2 == 0 { "2026-06-02T09:00:00Z" } else { "" };
        let body = format!(
            r#"{{"seen":"{version}","breach_id":"B-BENCH-1","aware_at":"2026-06-01T10:00:00Z","risk":"high","supervisor":"EDPS","notified_at":"{notified}","nature":"benchmark"}}"#
        );
        let t = Instant::now();
        let (status, answer) = http_body(port, "POST", "/api/breaches/record", &dpo, &dpo_csrf, &body);
        register_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 200, "{answer}");
    }
    let (r50, r99, rmax) = percentiles(&mut register_ms);
    let peer = Command::new("python3").arg("-c").arg(SQLITE_PEER).arg(saves.to_string()).output().unwrap();
    assert!(peer.status.success(), "{}", String::from_utf8_lossy(&peer.stderr));
    let out = String::from_utf8(peer.stdout).unwrap();
    let mut peer_ms: Vec<f64> = out.split_whitespace().map(|v| v.parse().unwrap()).collect();
    let (q50, q99, qmax) = percentiles(&mut peer_ms);
    format!(
        "\n### Reviews saved\n\n{saves} reviews saved one after another by the EDPS over HTTP (`POST /api/review/{{key}}`: \
         session, CSRF, Cedar `review`, the version checked under the store's lock, one Parquet file and one manifest \
         entry, synced), against the same records appended to SQLite by Python (WAL, `synchronous=FULL`, one \
         transaction each).\n\n| | p50 ms | p99 ms | max ms |\n|---|---|---|---|\n| Custos | {p50:.2} | {p99:.2} | {max:.2} |\n\
         | SQLite (Python) | {q50:.2} | {q99:.2} | {qmax:.2} |\n\nRatio of p99s (Custos / SQLite): {:.1}. Target: ≤ 50 ms at p99.\n\n\
         {saves} saves of a breach by the Commission's DPO (`POST /api/breaches/record`, the row checked as an import checks one, \
         against the authorities and cases of the store; each save starts a reload of the data in the background):\n\n\
         | | p50 ms | p99 ms | max ms |\n|---|---|---|---|\n| Custos | {r50:.2} | {r99:.2} | {rmax:.2} |\n\nTarget: ≤ 50 ms at p99.\n",
        p99 / q99.max(1e-9)
    )
}

/// p50, p99 and the maximum of `ms`.
fn percentiles(ms: &mut [f64]) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    (at(0.50), at(0.99), ms[ms.len() - 1])
}

/// The peer of a review's save: argv[1] records appended to SQLite, one durable transaction
/// each after reading the key's latest version; prints each one's milliseconds.
const SQLITE_PEER: &str = r#"
import sqlite3, sys, tempfile, time, os, json
n = int(sys.argv[1])
d = tempfile.mkdtemp()
db = sqlite3.connect(os.path.join(d, "reviews.db"), isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE dispositions (key TEXT, version INTEGER, replaces INTEGER, state TEXT, ground TEXT, note TEXT, by TEXT, role TEXT, at TEXT, rule TEXT, member_state TEXT, authority_id TEXT, policy_hash TEXT, finding TEXT, PRIMARY KEY (key, version))")
finding = json.dumps({"rule": "NTK-DOMAIN", "status": "unmet", "subject_kind": "event", "subject_id": "E0000000001", "member_state": "EU"})
out = []
for i in range(n):
    key = "NTK-DOMAIN:event:E%010d" % (i % 50)
    t = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    v = db.execute("SELECT coalesce(max(version), 0) FROM dispositions WHERE key = ?", (key,)).fetchone()[0]
    db.execute("INSERT INTO dispositions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (key, v + 1, v or None, "confirmed", None, "benchmark", "edps", "edps", time.strftime("%Y-%m-%dT%H:%M:%SZ"), "NTK-DOMAIN", "EU", "A-EU-1", "0" * 64, finding))
    db.execute("COMMIT")
    out.append((time.perf_counter() - t) * 1000)
print(" ".join("%.4f" % x for x in out))
"#;

/// A request with a body; the status and the (un-chunked) body.
fn http_body(port: u16, method: &str, path: &str, cookie: &str, csrf: &str, body: &str) -> (u16, String) {
    let raw = http(
        port,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = String::new();
        let mut s = rest;
        while let Some((size, more)) = s.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&more[..n.min(more.len())]);
            s = more.get(n + 2..).unwrap_or("");
        }
        out
    } else {
        rest.to_owned()
    };
    (status, body)
}

/// `wrk` on `path` for `duration` seconds with `connections`, logged in with `cookie`: its report.
fn run_wrk(wrk: &str, port: u16, cookie: &str, connections: u32, duration: u32, path: &str) -> String {
    let out = Command::new(wrk)
        .args(["-t2", &format!("-c{connections}"), &format!("-d{duration}s"), "--latency"])
        .args(["-H", &format!("Cookie: {cookie}")])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `wrk` on `/findings`: requests per second and p99 in milliseconds.
fn wrk_findings(wrk: &str, port: u16, cookie: &str, connections: u32, duration: u32) -> (f64, f64) {
    let report = run_wrk(wrk, port, cookie, connections, duration, "/findings");
    (field(&report, "Requests/sec:").unwrap_or_default(), latency(&report, "99%").unwrap_or(f64::NAN))
}

/// Posts a wrong password at `rate` logins a second, each from the next loopback address
/// (127.0.x.y) and on a thread of its own (a slow answer does not slow the flood), until
/// `stop`; returns the tries and how many were answered 401 (a wrong password) and 503 (too
/// many logins waiting).
fn flood(
    port: u16,
    rate: u32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(u64, u64, u64)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    std::thread::spawn(move || {
        let every = Duration::from_secs(1) / rate;
        let mut next = Instant::now();
        let answers = std::sync::Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let mut tries = Vec::new();
        let mut tried = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let ip = std::net::Ipv4Addr::new(127, 0, (tried / 250 % 250) as u8 + 1, (tried % 250) as u8 + 2);
            let answers = std::sync::Arc::clone(&answers);
            tries.push(std::thread::spawn(move || {
                let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
                socket.bind(&std::net::SocketAddr::from((ip, 0)).into()).unwrap();
                socket.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into()).unwrap();
                let mut s: TcpStream = socket.into();
                let body = "name=bench-edps&password=not+the+password&csrf=flood";
                let request = format!(
                    "POST /login HTTP/1.1\r\nHost: x\r\nCookie: custos_login=flood\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(request.as_bytes()).unwrap();
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 401") {
                    answers[0].fetch_add(1, Ordering::SeqCst);
                } else if answer.starts_with("HTTP/1.1 503") {
                    answers[1].fetch_add(1, Ordering::SeqCst);
                }
            }));
            tried += 1;
            next += every;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        for t in tries {
            t.join().unwrap();
        }
        (tried, answers[0].load(Ordering::SeqCst), answers[1].load(Ordering::SeqCst))
    })
}

/// `wrk`, installed from Debian if absent.
fn setup_wrk() -> String {
    if Command::new("wrk").arg("--version").output().is_err() {
        let status = Command::new("bash")
            .args(["-c", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk || sudo apt-get install -y -qq wrk"])
            .status()
            .unwrap();
        assert!(status.success(), "could not install wrk");
    }
    "wrk".into()
}

fn field(report: &str, key: &str) -> Option<f64> {
    report.lines().find_map(|l| l.trim().strip_prefix(key)).and_then(|v| v.trim().parse().ok())
}

/// A latency percentile of `wrk --latency`, in milliseconds.
fn latency(report: &str, pct: &str) -> Option<f64> {
    let line = report.lines().find(|l| l.trim().starts_with(pct))?;
    let v = line.split_whitespace().nth(1)?;
    let (num, unit) = v.split_at(v.find(|c: char| c.is_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => return None,
    })
}

fn http(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn http_get(port: u16, path: &str, cookie: &str) -> String {
    http(port, &format!("GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"))
}

/// Logs in as the benchmark's account `name`; returns the session cookie.
fn login(port: u16, name: &str) -> String {
    let form = http(port, "GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let token = form.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let body = format!("name={name}&password={}&csrf={token}", PASSWORD.replace(' ', "+"));
    let res = http(
        port,
        &format!(
            "POST /login HTTP/1.1\r\nHost: x\r\nCookie: custos_login={token}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let line =
        res.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie: custos_session=")).unwrap();
    line.split_once(": ").unwrap().1.split(';').next().unwrap().to_owned()
}
