//! The conventions of a command-line tool: `--version` names the policy sets it applies,
//! `--quiet` and `--verbose` over `CUSTOS_LOG`.

use crate::{custos, stderr, stdout};

#[test]
fn version_names_the_version_and_every_built_in_policy_sets_hash() {
    let out = custos().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.starts_with(&format!("custos {}", env!("CARGO_PKG_VERSION"))), "{text}");
    for (name, set) in [
        ("need-to-know", custos_policies::Policies::need_to_know()),
        ("deadline", custos_policies::Policies::deadlines()),
        ("view", custos_policies::Policies::views()),
    ] {
        let hash = set.unwrap().hash().to_owned();
        assert!(text.lines().any(|l| l.starts_with(name) && l.ends_with(&hash)), "{name}: {text}");
    }
}

#[test]
fn quiet_and_verbose_set_what_reaches_standard_error_over_custos_log() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("export");
    let out =
        custos().args(["generate", "--out", export.to_str().unwrap(), "--events", "2000"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Importing the export's directory warns that it leaves the answer key out.
    let import = |flags: &[&str], store: &str| {
        let mut c = custos();
        c.env("CUSTOS_LOG", "warn").args(flags);
        c.args(["import", "--store", tmp.path().join(store).to_str().unwrap(), export.to_str().unwrap()]);
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    assert!(import(&[], "a").contains("left out"), "the warning is shown by default");
    assert!(!import(&["--quiet"], "b").contains("left out"), "--quiet silences warnings");
    // The audit says how far it got at the debug level.
    let audit = |flags: &[&str]| {
        let mut c = custos();
        c.env("CUSTOS_LOG", "warn").args(flags);
        c.args(["audit", "--store", tmp.path().join("a").to_str().unwrap(), "--format", "json"]);
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    assert!(!audit(&[]).contains("need-to-know audit: lists read"));
    let verbose = audit(&["-vv"]);
    assert!(verbose.contains("DEBUG") && verbose.contains("need-to-know audit: lists read"), "{verbose}");
    let both = custos().args(["--quiet", "--verbose", "verify", "--store", "x"]).output().unwrap();
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
}

/// The conventions of a command-line tool: completion scripts for the usual shells and a
/// manual page per command, both made from the definitions that parse the arguments.
#[test]
fn completions_and_man_pages_come_from_the_same_definitions_as_help() {
    for (shell, mark) in [
        ("bash", "_custos()"),
        ("zsh", "#compdef custos"),
        ("fish", "complete -c custos"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = super::run(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", super::stderr(&out));
        let script = super::stdout(&out);
        assert!(script.contains(mark), "{shell}: no `{mark}`");
        assert!(script.contains("backup") && script.contains("verify"), "{shell}: the commands");
    }
    let out = super::run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
    let out = super::run(&["man"]);
    assert!(out.status.success());
    let page = super::stdout(&out);
    // The root page names every command, and the version with the policy sets' hashes.
    assert!(page.contains(".TH custos 1") && page.contains("custos\\-backup"), "{page}");
    assert!(page.contains("need\\-to\\-know policies "), "{page}");
    let tmp = tempfile::tempdir().unwrap();
    let out = super::run(&["man", "--out", tmp.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", super::stderr(&out));
    let backup = std::fs::read_to_string(tmp.path().join("custos-backup.1")).unwrap();
    assert!(backup.contains(".TH custos-backup 1") && backup.contains("\\-\\-to"), "{backup}");
    assert!(backup.contains(env!("CARGO_PKG_VERSION")), "the page names the version: {backup}");
    for command in ["audit", "check", "serve", "report", "query", "verify", "user", "completions", "man"] {
        assert!(tmp.path().join(format!("custos-{command}.1")).is_file(), "{command}");
    }
}

/// `custos serve` configured like a server: a TOML file, `CUSTOS_*` variables over it; a bad
/// key stops it before it starts, naming the file, line and key.
#[test]
fn serve_reads_its_settings_from_a_file_and_the_environment_and_refuses_a_bad_key() {
    use std::io::Read;
    let (tmp, store) = crate::base_store();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, format!("store = {:?}\nadress = \"127.0.0.1:1\"\n", store.to_str().unwrap()))
        .unwrap();
    let out = custos().args(["serve", "--config", bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains(&format!("{}, line 2, column 1, key `adress`: unknown field `adress`", bad.display())),
        "{said}"
    );

    // The store and the log's format from the file, the address from the environment.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let good = tmp.path().join("custos.toml");
    let text =
        format!("store = {:?}\naddr = \"127.0.0.1:1\"\nlog_format = \"json\"\n", store.to_str().unwrap());
    std::fs::write(&good, text).unwrap();
    let mut server = custos()
        .args(["serve", "--config", good.to_str().unwrap()])
        .env("CUSTOS_ADDR", format!("127.0.0.1:{port}"))
        .env("CUSTOS_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "the server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server.kill().unwrap();
    let mut log = String::new();
    server.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    server.wait().unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let serving =
        lines.iter().find(|l| l["fields"]["message"] == "serving").unwrap_or_else(|| panic!("{log}"));
    assert_eq!(serving["fields"]["addr"], format!("127.0.0.1:{port}"), "{log}");
    assert_eq!(serving["level"], "INFO");
}

/// Long work shows its progress on a terminal (a pseudo-terminal made by `script`), and
/// nothing of it reaches a pipe, nor a terminal with `--quiet`: only the final summary.
#[test]
fn progress_is_drawn_on_a_terminal_and_never_on_a_pipe_or_with_quiet() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_custos");
    let (export, store) = (tmp.path().join("export"), tmp.path().join("store"));
    let (e, s) = (export.to_str().unwrap(), store.to_str().unwrap());
    // On a pipe: the summaries on standard output, nothing on standard error.
    for args in [
        vec!["generate", "--out", e, "--events", "1000000"],
        vec!["import", "--store", s, e],
        vec!["audit", "--store", s],
        vec!["check", "--store", s, "--as-of", "2026-07-01"],
    ] {
        let out = custos().env("CUSTOS_LOG", "error").args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?} wrote to a pipe's standard error");
        assert!(!stdout(&out).contains('\r'), "{args:?}");
    }
    // On a terminal: the step, its count and rate; the summary after it.
    let on_terminal = |command: &str| {
        let out = std::process::Command::new("script")
            .args(["-qec", command, "/dev/null"])
            .env("CUSTOS_LOG", "error")
            .output()
            .expect("`script` (util-linux) runs a command on a pseudo-terminal");
        assert!(out.status.success(), "{command}: {}", stderr(&out));
        stdout(&out)
    };
    let again = tmp.path().join("again");
    let shown = on_terminal(&format!("{bin} generate --out {} --events 1000000", again.display()));
    assert!(shown.contains("writing access_log [") && shown.contains("/1,000,000 events"), "{shown}");
    assert!(shown.contains("events, ") && shown.contains("/s, "), "{shown}");
    assert!(shown.contains("access_log") && shown.contains("1000000 rows"), "the summary: {shown}");
    let quiet = on_terminal(&format!("{bin} --quiet generate --out {} --events 1000000", again.display()));
    assert!(!quiet.contains("writing access_log"), "{quiet}");
    assert!(quiet.contains("1000000 rows"), "the summary: {quiet}");
}

/// `cargo install --path .` copies the binary alone, so everything it reads at run time (the
/// dashboard's templates and style, the reports' fonts, the holiday calendars, the policies,
/// the SQL) must be built into it. A copy of the binary, run from an empty directory with an
/// empty home, is traced (`strace`) through generate, import, audit, check, report, verify and
/// serve: it opens, stats or lists no path inside the source tree.
#[test]
fn an_installed_binary_reads_nothing_from_its_source_tree() {
    use std::io::{Read, Write};
    if !crate::installed("strace") {
        assert!(std::env::var_os("CI").is_none(), "CI needs strace: run scripts/install-browser");
        eprintln!("skipped: strace is not installed (scripts/install-browser installs it)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (bin, home, work) = (tmp.path().join("bin"), tmp.path().join("home"), tmp.path().join("work"));
    for dir in [&bin, &home, &work] {
        std::fs::create_dir(dir).unwrap();
    }
    let custos = bin.join("custos");
    std::fs::copy(env!("CARGO_BIN_EXE_custos"), &custos).unwrap();
    let traces = tmp.path().join("traces");
    std::fs::create_dir(&traces).unwrap();
    let traced = |name: &str, args: &[&str]| {
        let mut c = std::process::Command::new("strace");
        c.args(["-f", "-qq", "-s", "4096", "-e", "trace=%file", "-o"])
            .arg(traces.join(name))
            .arg("--")
            .arg(&custos)
            .args(args)
            .current_dir(&work)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("CUSTOS_LOG", "error");
        c
    };
    for (name, args) in [
        ("generate", &["generate", "--out", "export", "--scale", "0.002", "--events", "2000"][..]),
        ("import", &["import", "--store", "store", "export"]),
        ("audit", &["audit", "--store", "store"]),
        ("check", &["check", "--store", "store", "--as-of", "2026-07-01"]),
        ("report", &["report", "--store", "store", "--year", "2025", "--kind", "annual", "--out", "reports"]),
        ("verify", &["verify", "--store", "store"]),
    ] {
        let out = traced(name, args).output().unwrap();
        assert!(out.status.success(), "{name}: {}", stderr(&out));
    }
    assert!(work.join("reports").read_dir().unwrap().count() >= 2, "the report's HTML and PDF");

    // The server: its login page and its style, then SIGTERM, on which it stops.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut strace = traced("serve", &["serve", "--store", "store", "--addr", &addr])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).ok()?;
        Some(answer)
    };
    let login = loop {
        if let Some(answer) = get("/login") {
            break answer;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "the server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    let style = get("/static/style.css").unwrap();
    assert!(style.starts_with("HTTP/1.1 200") && style.contains("text/css"), "{style}");
    // The traced server's process number is the first word of its trace.
    let trace = std::fs::read_to_string(traces.join("serve")).unwrap();
    let pid = trace.split_whitespace().next().unwrap();
    assert!(std::process::Command::new("kill").args(["-TERM", pid]).status().unwrap().success());
    assert!(strace.wait().unwrap().success());

    let tree = env!("CARGO_MANIFEST_DIR");
    let mut seen = 0;
    for entry in std::fs::read_dir(&traces).unwrap() {
        let path = entry.unwrap().path();
        let trace = std::fs::read_to_string(&path).unwrap();
        // Every quoted argument of a file system call: the paths the binary asked for.
        for quoted in trace.split('"').skip(1).step_by(2) {
            seen += 1;
            assert!(
                !quoted.starts_with(tree),
                "{} reached into the source tree: {quoted}",
                path.file_name().unwrap().to_string_lossy()
            );
        }
    }
    assert!(seen > 100, "the traces name the files the commands read ({seen})");
}
