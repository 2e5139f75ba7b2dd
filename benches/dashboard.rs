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
    let cookie = login(port);
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
    let _ = server.kill();
    let _ = server.wait();
    report("dashboard", &text);
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

/// Logs in as the benchmark's EDPS account; returns the session cookie.
fn login(port: u16) -> String {
    let form = http(port, "GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let token = form.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let body = format!("name=bench-edps&password={}&csrf={token}", PASSWORD.replace(' ', "+"));
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
