//! The dashboard in a real browser: Debian's Chromium, headless, driven through its WebDriver
//! (`chromedriver`) against a real `custos serve` on 127.0.0.1. Logs in as each role, opens
//! every page, checks what a user would check, confirms refused pages are refused, and saves
//! a screenshot of each page under `target/screenshots/` for review.
//!
//! Needs `chromium` and `chromedriver` (`scripts/install-browser`, run by `scripts/test`).
//! Without them the test says so and passes, except under CI (`CI=true`), where it fails.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(60), "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port`; returns the status and the body.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let payload = body.map(Value::to_string).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )
    .unwrap();
    // Read the head, then exactly the body its `Content-Length` announces (chromedriver
    // keeps the connection open), or chunks until the last.
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed before the response's head");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let length: Option<usize> =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok());
    loop {
        let have = raw.len() - head_end;
        let done = match length {
            Some(n) => have >= n,
            None => raw.ends_with(b"0\r\n\r\n") || !head.contains("chunked"),
        };
        if done {
            break;
        }
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let rest = String::from_utf8_lossy(&raw[head_end..]).into_owned();
    let body = if head.contains("transfer-encoding: chunked") { dechunk(&rest) } else { rest };
    (status, body)
}

/// The body of a chunked HTTP/1.1 answer.
pub(super) fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n.min(rest.len())]);
        s = rest.get(n + 2..).unwrap_or("");
    }
    out
}

/// A WebDriver session.
struct Browser {
    port: u16,
    session: String,
}

impl Browser {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, text) =
            http(self.port, method, &format!("/session/{}{path}", self.session), body.as_ref());
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, 200, "WebDriver {method} {path}: {text}");
        v["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url})));
    }

    fn find(&self, css: &str) -> String {
        let v = self.call("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        v.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap().to_owned()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/value"), Some(json!({"text": text})));
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    /// Waits (up to 20 s) until the page's source satisfies `ok`: a click's navigation may
    /// finish after WebDriver answers.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let html = self.source();
            if ok(&html) {
                return html;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "waited in vain for {what}: {html}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn source(&self) -> String {
        self.call("GET", "/source", None).as_str().unwrap_or_default().to_owned()
    }

    fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap_or_default().to_owned()
    }

    fn text_of(&self, css: &str) -> String {
        let e = self.find(css);
        self.call("GET", &format!("/element/{e}/text"), None).as_str().unwrap_or_default().to_owned()
    }

    fn screenshot(&self, file: &Path) {
        let png = self.call("GET", "/screenshot", None);
        let bytes = base64_decode(png.as_str().unwrap());
        assert!(bytes.len() > 1000, "an empty screenshot");
        std::fs::write(file, bytes).unwrap();
    }
}

/// Standard base64 (what WebDriver screenshots are).
fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let digits: Vec<u32> = s.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, d)| acc | (d << (18 - 6 * i)));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    out
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_role_uses_the_dashboard_in_a_headless_browser() {
    if !super::installed("chromedriver") || !super::installed("chromium") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs chromium and chromedriver: run scripts/install-browser"
        );
        eprintln!(
            "skipped: chromium or chromedriver is not installed (scripts/install-browser installs them)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = super::run(&["demo", "--dir", dir.to_str().unwrap(), "--no-serve"]);
    assert!(out.status.success(), "{}", super::stderr(&out));
    let logins: Vec<Vec<String>> = std::fs::read_to_string(dir.join("logins.txt"))
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();

    let port = free_port();
    let store = dir.join("store");
    let _server = Killed(
        super::custos()
            .args(["serve", "--store", store.to_str().unwrap(), "--addr", &format!("127.0.0.1:{port}")])
            .args(["--as-of", "2026-07-01T00:00:00Z"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let driver_port = free_port();
    let _driver = Killed(
        Command::new("chromedriver")
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(port);
    wait_for(driver_port);
    let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
        "binary": "/usr/bin/chromium",
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1600"],
    }}}});
    let (status, text) = http(driver_port, "POST", "/session", Some(&caps));
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let b = Browser { port: driver_port, session: v["value"]["sessionId"].as_str().unwrap().to_owned() };
    let base = format!("http://127.0.0.1:{port}");
    let shots = screenshots_dir();

    // Without a session, a page leads to the login form.
    b.go(&format!("{base}/findings"));
    assert!(b.url().ends_with("/login"), "{}", b.url());
    b.screenshot(&shots.join("login.png"));

    let pages = [
        ("/", "Overview", "Headline figures"),
        ("/findings", "Need-to-know findings", "Findings per rule and member state"),
        ("/deadlines", "Deadlines", "rule and status"),
        ("/breaches", "Breach register", "Breaches by risk and notification"),
        ("/requests", "Data-subject requests", "Requests by right and outcome"),
        ("/response-times", "Response times", "Average days to answer"),
        ("/policies", "Policy explorer", "NTK-DOMAIN"),
        ("/reports", "Reports", "Reports you may download"),
    ];
    for login in &logins {
        let (name, role, password) = (&login[0], &login[1], &login[3]);
        b.go(&format!("{base}/login"));
        b.type_into("#name", name);
        b.type_into("#password", password);
        b.click("button[type=submit]");
        b.wait(&format!("{name} to log in"), |h| {
            h.contains("<h1>Overview</h1>") || h.contains("you may not see this")
        });
        b.go(&format!("{base}/policies"));
        assert!(b.text_of("header").contains(name.as_str()), "{name} is shown as signed in");
        for (path, title, content) in pages {
            b.go(&format!("{base}{path}"));
            let html = b.source();
            let refused = match role.as_str() {
                "admin" => path != "/policies",
                // The demo's DPO is the Commission's: it reads the report to the EDPS.
                "dpo" => path == "/response-times",
                _ => false,
            };
            if refused {
                assert!(html.contains("you may not see this"), "{name} {path} is refused: {html}");
                continue;
            }
            assert_eq!(b.text_of("h1"), title, "{name} {path}");
            assert!(html.contains(content), "{name} {path} shows `{content}`");
            if role == "commission" && path == "/findings" {
                assert!(html.contains("Disclosure control"), "the Commission is told the rule applied");
            }
            if path == "/" && role != "dpo" && role != "admin" {
                assert!(
                    html.contains("<svg") && html.contains("chart-title"),
                    "the overview's chart is an accessible SVG"
                );
            }
            let file = format!("{name}{}.png", path.replace('/', "-").trim_end_matches('-'));
            b.screenshot(&shots.join(file));
        }
        // Drill down: from a count to the findings, from a finding to its event and policy.
        b.go(&format!("{base}/findings"));
        if (role == "edps" || role == "dpa") && b.source().contains("href=\"/findings/E") {
            b.click("main section:nth-of-type(2) tbody tr:first-child td:last-child a");
            let html = b.wait("the event's page", |h| h.contains("<h1>Event"));
            assert!(html.contains("Facts at the event"), "{name}: the event's facts");
            assert!(html.contains("the policy that decided"), "{name}: the deciding policy's text");
            b.screenshot(&shots.join(format!("{name}-event.png")));
        }
        b.go(&format!("{base}/policies"));
        b.click("header form button");
        b.wait(&format!("{name} to log out"), |h| h.contains("id=\"password\""));
        assert!(b.url().ends_with("/login"), "{name} logged out");
        b.go(&format!("{base}/"));
        assert!(b.url().ends_with("/login"), "{name}'s session ended");
    }
    // The report to the EDPS: the Commission produces it with the form and sees it named as
    // sent, not as a download; the EDPS and the Commission's DPO find it among the reports they
    // may download; a national DPA does not.
    let sign_in = |name: &str| {
        let login = logins.iter().find(|l| l[0] == name).unwrap_or_else(|| panic!("no login {name}"));
        b.go(&format!("{base}/login"));
        b.type_into("#name", &login[0]);
        b.type_into("#password", &login[3]);
        b.click("button[type=submit]");
        b.wait(&format!("{name} to log in"), |h| {
            h.contains("<h1>Overview</h1>") || h.contains("you may not see this")
        });
    };
    let sign_out = || {
        b.go(&format!("{base}/policies"));
        b.click("header form button");
        b.wait("to log out", |h| h.contains("id=\"password\""));
    };
    let commission = logins.iter().find(|l| l[1] == "commission").unwrap()[0].clone();
    sign_in(&commission);
    b.go(&format!("{base}/reports"));
    b.type_into("input[name=year]", "2027");
    b.type_into("input[name=kind]", "edps");
    b.click("main form button[type=submit]");
    let html = b.wait("the report to the EDPS", |h| h.contains("imi-edps-report-2027.html"));
    assert!(html.contains("imi-edps-report-2027.pdf"), "{html}");
    assert!(html.contains("which your role may not read"), "{html}");
    assert!(!html.contains("href=\"/reports/imi-edps-report-2027"), "{html}");
    b.screenshot(&shots.join("commission-edps-report.png"));
    sign_out();
    for l in logins.iter().filter(|l| l[1] == "edps" || l[1] == "dpo" || l[1] == "dpa") {
        sign_in(&l[0]);
        b.go(&format!("{base}/reports"));
        let listed = b.source().contains("imi-edps-report-2027.html");
        assert_eq!(listed, l[1] != "dpa", "{}: the report to the EDPS listed", l[0]);
        if l[1] == "dpo" {
            assert!(!b.source().contains(">Produce<"), "the Commission's DPO produces nothing");
        }
        sign_out();
    }
    // A national DPA reviews a finding of its member state and confirms it, without a line of
    // JavaScript; a finding of another member state answers as one that does not exist.
    sign_in("dpa-de");
    b.go(&format!("{base}/review"));
    assert_eq!(b.text_of("h1"), "Review");
    b.click("main section table tbody tr:first-child td:last-child a");
    b.wait("a finding's review", |h| h.contains("Change the review"));
    b.screenshot(&shots.join("dpa-de-review.png"));
    b.click("select[name=state] option[value=confirmed]");
    b.type_into("textarea[name=note]", "confirmed in the browser");
    b.click("main form.form button[type=submit]");
    let html = b.wait("the review saved", |h| h.contains("confirmed in the browser"));
    assert!(html.contains("<dd>confirmed</dd>"), "{html}");
    let reviewed = b.url();
    let foreign = super::run(&[
        "query",
        "--store",
        store.to_str().unwrap(),
        "--format",
        "csv",
        "SELECT rule || ':event:' || event_id AS k FROM ntk_findings WHERE member_state = 'FR' LIMIT 1",
    ]);
    let foreign = super::stdout(&foreign).lines().nth(1).unwrap().trim().to_owned();
    b.go(&format!("{base}/review/{}", custos_dashboard::page::encode(&foreign)));
    assert!(b.source().contains("not found"), "{}", b.source());
    sign_out();
    // The Commission's DPO records a breach its controller became aware of an hour ago and
    // sees its 72-hour clock run, judged by the notification rule as of now.
    sign_in("dpo-commission");
    b.go(&format!("{base}/breaches"));
    b.click("a[href='/breaches/record']");
    b.wait("the breach form", |h| h.contains("Record a breach"));
    let aware = custos_engine::finding::format_micros(
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 - 3600)
            * 1_000_000,
    );
    b.type_into("input[name=breach_id]", "B-BROWSER-1");
    b.type_into("input[name=aware_at]", &aware);
    b.click("select[name=risk] option[value=high]");
    b.type_into("input[name=supervisor]", "EDPS");
    b.click("main form.form button[type=submit]");
    let html = b.wait("the breach saved", |h| h.contains("Complete the breach"));
    assert!(
        html.contains("72-hour clock (BRE-NOTIFY, as of now)") && html.contains("due_soon (due "),
        "{html}"
    );
    assert!(html.contains("version 1 saved by dpo-commission"), "{html}");
    b.screenshot(&shots.join("dpo-breach.png"));
    sign_out();
    // The EDPS sees the DPA's visit in the access log (not whom: a DE finding is the DPA's to
    // see) and the decision in the rule's precision.
    sign_in("edps");
    b.go(&format!("{base}/trail?user=dpa-de&item_kind=finding"));
    let html = b.source();
    assert!(html.contains("dpa-de") && html.contains("(not in your scope)"), "{html}");
    assert!(!html.contains(reviewed.rsplit('/').next().unwrap()), "the EDPS sees a DE finding's key");
    b.screenshot(&shots.join("edps-trail.png"));
    b.go(&format!("{base}/precision"));
    let html = b.source();
    assert!(html.contains("Precision per rule") && html.contains(" %</td>"), "{html}");
    b.screenshot(&shots.join("edps-precision.png"));
    sign_out();
    http(driver_port, "DELETE", &format!("/session/{}", b.session), None);
}

#[test]
fn serve_says_clearly_when_the_store_is_missing_or_the_address_taken() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nothing");
    let out = super::run(&["serve", "--store", missing.to_str().unwrap(), "--addr", "127.0.0.1:0"]);
    assert!(!out.status.success());
    assert!(super::stderr(&out).contains("not a Custos store"), "{}", super::stderr(&out));
    let (_keep, store) = super::base_store();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = super::run(&["serve", "--store", store.to_str().unwrap(), "--addr", &addr]);
    assert_eq!(out.status.code(), Some(2), "{}", super::stderr(&out));
    assert!(super::stderr(&out).contains("already in use"), "{}", super::stderr(&out));
}
