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
