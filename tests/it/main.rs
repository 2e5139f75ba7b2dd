//! End-to-end tests of the `custos` binary: one test binary, one module per capability.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod analytics;
mod audit;
mod browser;
mod check;
mod cli;
mod generate;
mod hostile;
mod import;
mod malformed;
mod report;
mod rules;
mod sql;
mod supervision;
mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `custos` binary built for these tests.
pub fn custos() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_custos"));
    c.env("CUSTOS_LOG", "error");
    c
}

/// Runs `custos` with `args`, returning its output.
pub fn run(args: &[&str]) -> Output {
    custos().args(args).output().expect("custos runs")
}

/// The small valid export every test starts from.
pub fn base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/base")
}

/// A store with the base fixture imported.
pub fn base_store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    let out = run(&["import", "--store", store.to_str().expect("utf-8"), base().to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (tmp, store)
}

/// Generates a synthetic export and imports it; returns (tempdir, export, store).
pub fn generated(scale: &str, events: &str, seed: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let export = tmp.path().join("export");
    let store = tmp.path().join("store");
    let out = run(&[
        "generate",
        "--out",
        export.to_str().unwrap(),
        "--scale",
        scale,
        "--events",
        events,
        "--seed",
        seed,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["import", "--store", store.to_str().unwrap(), export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    (tmp, export, store)
}

/// Rewrites the manifest of `store` as a Custos before surrogate keys wrote it: entries
/// without `layout`, chained and sealed as they were.
pub fn as_written_before_surrogates(store: &Path) {
    use custos_engine::manifest::{Entry, GENESIS, parse};
    let path = store.join("manifest.jsonl");
    let (entries, problems) = parse(&std::fs::read(&path).expect("manifest"));
    assert!(problems.is_empty());
    let mut text = String::new();
    let mut prev = GENESIS.to_owned();
    for e in entries {
        let mut body = e.body;
        body.layout = 1;
        body.prev = prev;
        let sealed = Entry::seal(body);
        prev = sealed.hash.clone();
        text.push_str(&sealed.to_line());
    }
    assert!(!text.contains("layout"));
    std::fs::write(&path, text).expect("manifest written");
}

/// Every file and directory under `dir` with its bytes (a directory's are empty, its name
/// ends in `/`): two snapshots are equal exactly when nothing changed, an empty directory
/// left behind included.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(read) = std::fs::read_dir(dir) else { return };
        for e in read.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let mut key = p.strip_prefix(root).expect("under root").as_os_str().to_owned();
                key.push("/");
                out.insert(PathBuf::from(key), Vec::new());
                walk(&p, root, out);
            } else if p.file_name().is_some_and(|n| n != ".lock") {
                out.insert(
                    p.strip_prefix(root).expect("under root").to_path_buf(),
                    std::fs::read(&p).expect("read"),
                );
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// Whether `program` is on the path and answers `--version`.
pub fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
