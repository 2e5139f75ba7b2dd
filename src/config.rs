//! How `custos serve` is configured: an optional TOML file (`--config FILE`, or
//! `CUSTOS_CONFIG`), the `CUSTOS_*` environment variables over it, the command line's flags
//! over both, and the defaults under all three. Every key is in [`KEYS`], which the README's
//! table follows (a test holds them together).
//!
//! ```toml
//! store = "/srv/custos/store"
//! addr = "0.0.0.0:8443"
//! disclosure_threshold = 5
//! log_format = "json"
//! session_lifetime_minutes = 480
//! session_idle_minutes = 30
//! ```
//!
//! An unknown key, a value of the wrong type or out of range is refused before anything
//! starts, naming the file, the line and the key (or the environment variable).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::args::{ServeArgs, parse_time};

/// One setting of the server.
pub struct Key {
    /// Its name in the file.
    pub name: &'static str,
    /// The environment variable that sets it.
    pub env: &'static str,
    /// The flag that sets it.
    pub flag: &'static str,
    /// What it sets, and the values it takes.
    pub meaning: &'static str,
    /// Its value when nothing sets it.
    pub default: &'static str,
}

/// Every setting, in the order the README lists them.
pub const KEYS: [Key; 7] = [
    Key {
        name: "store",
        env: "CUSTOS_STORE",
        flag: "--store",
        meaning: "the store's directory (required)",
        default: "none",
    },
    Key {
        name: "addr",
        env: "CUSTOS_ADDR",
        flag: "--addr",
        meaning: "the address and port to listen on; off loopback the cookies are marked `Secure`",
        default: "127.0.0.1:8080",
    },
    Key {
        name: "as_of",
        env: "CUSTOS_AS_OF",
        flag: "--as-of",
        meaning: "the instant deadlines are judged at (RFC 3339 or a date), fixed; unset, the clock runs",
        default: "now, following the clock",
    },
    Key {
        name: "disclosure_threshold",
        env: "CUSTOS_DISCLOSURE_THRESHOLD",
        flag: "--disclosure-threshold",
        meaning: "the smallest count of persons shown in statistics and reports (3 to 10)",
        default: "5",
    },
    Key {
        name: "log_format",
        env: "CUSTOS_LOG_FORMAT",
        flag: "--log-format",
        meaning: "the log on standard error: `text`, or `json` (one object per line)",
        default: "text",
    },
    Key {
        name: "session_lifetime_minutes",
        env: "CUSTOS_SESSION_LIFETIME_MINUTES",
        flag: "--session-lifetime-minutes",
        meaning: "the longest a login lasts, however busy (1 to 10080, a week)",
        default: "480 (8 hours)",
    },
    Key {
        name: "session_idle_minutes",
        env: "CUSTOS_SESSION_IDLE_MINUTES",
        flag: "--session-idle-minutes",
        meaning: "how long a login lasts unused (1 to 1440, a day)",
        default: "30",
    },
];

/// The keys, as `custos serve --help` lists them after the flags.
pub fn help() -> String {
    let mut text = String::from(
        "Settings: a flag wins over its environment variable, the variable over the --config file's key.\n",
    );
    for key in &KEYS {
        text.push_str(&format!(
            "\n  {:<26} {:<33} {}\n      {}; default: {}\n",
            key.name, key.env, key.flag, key.meaning, key.default
        ));
    }
    text
}

/// The log's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

/// The server's settings, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub store: PathBuf,
    pub addr: SocketAddr,
    pub as_of: Option<i64>,
    pub disclosure_threshold: u64,
    pub log_format: LogFormat,
    pub sessions: custos_dashboard::session::Limits,
}

impl Settings {
    /// The defaults, serving `store` on `addr`.
    pub fn new(store: PathBuf, addr: SocketAddr) -> Settings {
        Settings {
            store,
            addr,
            as_of: None,
            disclosure_threshold: custos_engine::disclosure::DEFAULT_K,
            log_format: LogFormat::Text,
            sessions: custos_dashboard::session::Limits::default(),
        }
    }
}

/// What one source (the file, the environment, the flags) sets.
#[derive(Debug, Default)]
struct Layer {
    store: Option<PathBuf>,
    addr: Option<SocketAddr>,
    as_of: Option<i64>,
    disclosure_threshold: Option<u64>,
    log_format: Option<LogFormat>,
    session_lifetime_minutes: Option<u64>,
    session_idle_minutes: Option<u64>,
}

impl Layer {
    /// Sets the key `name` from its text, as the environment gives it and as the file's
    /// values are read; says what was expected if the text is not a value of it.
    fn set(&mut self, name: &str, text: &str) -> Result<(), String> {
        match name {
            "store" if text.is_empty() => return Err("expected the store's directory, not nothing".into()),
            "store" => self.store = Some(PathBuf::from(text)),
            "addr" => self.addr = Some(parse_addr(text)?),
            "as_of" => self.as_of = Some(parse_time(text)?),
            "disclosure_threshold" => self.disclosure_threshold = Some(parse_threshold(text)?),
            "log_format" => self.log_format = Some(parse_log_format(text)?),
            "session_lifetime_minutes" => self.session_lifetime_minutes = Some(parse_lifetime(text)?),
            "session_idle_minutes" => self.session_idle_minutes = Some(parse_idle(text)?),
            _ => return Err("not a setting of `custos serve`".into()),
        }
        Ok(())
    }

    /// This layer's settings, over `under`'s.
    fn over(self, under: Layer) -> Layer {
        Layer {
            store: self.store.or(under.store),
            addr: self.addr.or(under.addr),
            as_of: self.as_of.or(under.as_of),
            disclosure_threshold: self.disclosure_threshold.or(under.disclosure_threshold),
            log_format: self.log_format.or(under.log_format),
            session_lifetime_minutes: self.session_lifetime_minutes.or(under.session_lifetime_minutes),
            session_idle_minutes: self.session_idle_minutes.or(under.session_idle_minutes),
        }
    }
}

/// An address and port to listen on.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not an address: expected an IP address and port, e.g. 127.0.0.1:8080"))
}

/// A disclosure threshold (see `custos_engine::disclosure::K_RANGE`).
pub fn parse_threshold(s: &str) -> Result<u64, String> {
    let range = custos_engine::disclosure::K_RANGE;
    s.parse::<u64>().ok().filter(|k| range.contains(k)).ok_or_else(|| {
        format!(
            "`{s}` is not a disclosure threshold: expected a whole number from {} to {}",
            range.start(),
            range.end()
        )
    })
}

/// A log format.
pub fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("`{s}` is not a log format: expected `text` or `json`")),
    }
}

fn minutes(s: &str, most: u64) -> Result<u64, String> {
    s.parse::<u64>()
        .ok()
        .filter(|m| (1..=most).contains(m))
        .ok_or_else(|| format!("`{s}` is not a number of minutes: expected a whole number from 1 to {most}"))
}

/// A session's longest life in minutes: up to a week.
pub fn parse_lifetime(s: &str) -> Result<u64, String> {
    minutes(s, 7 * 24 * 60)
}

/// A session's life unused in minutes: up to a day.
pub fn parse_idle(s: &str) -> Result<u64, String> {
    minutes(s, 24 * 60)
}

/// The file's keys, each with where its value stands, for the error that names its line.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    store: Option<toml::Spanned<String>>,
    addr: Option<toml::Spanned<String>>,
    as_of: Option<toml::Spanned<String>>,
    disclosure_threshold: Option<toml::Spanned<i64>>,
    log_format: Option<toml::Spanned<String>>,
    session_lifetime_minutes: Option<toml::Spanned<i64>>,
    session_idle_minutes: Option<toml::Spanned<i64>>,
}

/// Line and column (from 1) of the byte `at` of `text`.
fn position(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The key written on the line of byte `at`, if the line sets one (`key = value`).
fn key_at(text: &str, at: usize) -> Option<String> {
    let start = text[..at.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let key = line.split_once('=')?.0.trim();
    Some(key.trim_matches('"').to_owned()).filter(|k| !k.is_empty())
}

fn refused(path: &Path, text: &str, at: usize, key: Option<&str>, problem: &str) -> custos_engine::Error {
    let (line, column) = position(text, at);
    let key = key.map(str::to_owned).or_else(|| key_at(text, at));
    custos_engine::Error::Usage(match key {
        Some(key) => format!("{}, line {line}, column {column}, key `{key}`: {problem}", path.display()),
        None => format!("{}, line {line}, column {column}: {problem}", path.display()),
    })
}

/// Reads the settings the file at `path` holds.
fn from_file(path: &Path) -> Result<Layer, custos_engine::Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        custos_engine::Error::Usage(format!("{}: the configuration file cannot be read: {e}", path.display()))
    })?;
    let file: File = toml::from_str(&text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        refused(path, &text, at, None, e.message().trim())
    })?;
    let mut layer = Layer::default();
    let strings =
        [("store", file.store), ("addr", file.addr), ("as_of", file.as_of), ("log_format", file.log_format)];
    let numbers = [
        ("disclosure_threshold", file.disclosure_threshold),
        ("session_lifetime_minutes", file.session_lifetime_minutes),
        ("session_idle_minutes", file.session_idle_minutes),
    ];
    let values =
        strings.into_iter().filter_map(|(k, v)| v.map(|v| (k, v.span().start, v.into_inner()))).chain(
            numbers
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v.span().start, v.into_inner().to_string()))),
        );
    for (key, at, value) in values {
        layer.set(key, &value).map_err(|problem| refused(path, &text, at, Some(key), &problem))?;
    }
    Ok(layer)
}

/// Reads the settings the `CUSTOS_*` variables of `env` hold.
fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Layer, custos_engine::Error> {
    let mut layer = Layer::default();
    for key in &KEYS {
        if let Some(value) = env(key.env) {
            layer.set(key.name, &value).map_err(|problem| {
                custos_engine::Error::Usage(format!("environment variable {}: {problem}", key.env))
            })?;
        }
    }
    Ok(layer)
}

/// The settings `args` and the environment `env` give, over the configuration file's.
pub fn resolve(
    args: &ServeArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, custos_engine::Error> {
    let file = match args.config.clone().or_else(|| env("CUSTOS_CONFIG").map(PathBuf::from)) {
        Some(path) => from_file(&path)?,
        None => Layer::default(),
    };
    let flags = Layer {
        store: args.store.clone(),
        addr: args.addr,
        as_of: args.as_of,
        disclosure_threshold: args.disclosure_threshold,
        log_format: args.log_format,
        session_lifetime_minutes: args.session_lifetime_minutes,
        session_idle_minutes: args.session_idle_minutes,
    };
    let all = flags.over(from_env(env)?.over(file));
    let store = all.store.ok_or_else(|| {
        custos_engine::Error::Usage(
            "no store to serve: give `--store DIR`, set CUSTOS_STORE, or `store` in the `--config` file"
                .into(),
        )
    })?;
    let defaults = Settings::new(store, all.addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))));
    let minutes = |m: Option<u64>, default: Duration| m.map_or(default, |m| Duration::from_secs(m * 60));
    Ok(Settings {
        as_of: all.as_of,
        disclosure_threshold: all.disclosure_threshold.unwrap_or(defaults.disclosure_threshold),
        log_format: all.log_format.unwrap_or(defaults.log_format),
        sessions: custos_dashboard::session::Limits {
            lifetime: minutes(all.session_lifetime_minutes, defaults.sessions.lifetime),
            idle: minutes(all.session_idle_minutes, defaults.sessions.idle),
        },
        ..defaults
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn serve_args(extra: &[&str]) -> ServeArgs {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            args: ServeArgs,
        }
        Wrap::parse_from(std::iter::once("serve").chain(extra.iter().copied())).args
    }

    fn config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custos.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_fill_what_nothing_sets() {
        let s = resolve(&serve_args(&["--store", "/s"]), &no_env).unwrap();
        assert_eq!(s.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!((s.as_of, s.disclosure_threshold, s.log_format), (None, 5, LogFormat::Text));
        assert_eq!(s.sessions, custos_dashboard::session::Limits::default());
    }

    #[test]
    fn flags_win_over_the_environment_which_wins_over_the_file() {
        let (_dir, path) = config(
            "store = \"/from/file\"\naddr = \"127.0.0.1:9000\"\ndisclosure_threshold = 7\nlog_format = \"json\"\n\
             session_lifetime_minutes = 60\nsession_idle_minutes = 10\nas_of = \"2026-07-01\"\n",
        );
        let p = path.to_str().unwrap();
        let env = |k: &str| match k {
            "CUSTOS_ADDR" => Some("127.0.0.1:9001".to_owned()),
            "CUSTOS_DISCLOSURE_THRESHOLD" => Some("4".to_owned()),
            _ => None,
        };
        let s = resolve(&serve_args(&["--config", p, "--disclosure-threshold", "3"]), &env).unwrap();
        assert_eq!(s.store, PathBuf::from("/from/file"));
        assert_eq!(s.addr, "127.0.0.1:9001".parse().unwrap());
        assert_eq!((s.disclosure_threshold, s.log_format), (3, LogFormat::Json));
        assert_eq!(s.as_of, Some(parse_time("2026-07-01").unwrap()));
        assert_eq!(s.sessions.lifetime, Duration::from_secs(3600));
        assert_eq!(s.sessions.idle, Duration::from_secs(600));
        // The file named by the environment, when no flag names one.
        let env = |k: &str| (k == "CUSTOS_CONFIG").then(|| p.to_owned());
        assert_eq!(resolve(&serve_args(&[]), &env).unwrap().store, PathBuf::from("/from/file"));
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_file_line_and_name() {
        let (_dir, path) = config("store = \"/s\"\n\nadress = \"127.0.0.1:80\"\n");
        let e = resolve(&serve_args(&["--config", path.to_str().unwrap()]), &no_env).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "{}, line 3, column 1, key `adress`: unknown field `adress`",
                path.display()
            )),
            "{e}"
        );
        assert!(e.contains("expected one of"), "{e}");
    }

    #[test]
    fn a_bad_value_is_refused_with_its_file_line_key_and_what_was_expected() {
        for (text, line, key, expected) in [
            (
                "addr = \"localhost\"\n",
                1,
                "addr",
                "`localhost` is not an address: expected an IP address and port",
            ),
            (
                "store = \"/s\"\ndisclosure_threshold = 2\n",
                2,
                "disclosure_threshold",
                "expected a whole number from 3 to 10",
            ),
            (
                "disclosure_threshold = \"5\"\n",
                1,
                "disclosure_threshold",
                "invalid type: string \"5\", expected i64",
            ),
            ("log_format = \"xml\"\n", 1, "log_format", "expected `text` or `json`"),
            (
                "session_idle_minutes = 0\n",
                1,
                "session_idle_minutes",
                "expected a whole number from 1 to 1440",
            ),
            ("session_lifetime_minutes = 20000\n", 1, "session_lifetime_minutes", "from 1 to 10080"),
            ("as_of = \"yesterday\"\n", 1, "as_of", "`yesterday` is not a time"),
            ("\n\nstore = \n", 3, "store", ""),
        ] {
            let (_dir, path) = config(text);
            let e =
                resolve(&serve_args(&["--config", path.to_str().unwrap()]), &no_env).unwrap_err().to_string();
            let at = format!("{}, line {line}, column ", path.display());
            assert!(
                e.starts_with(&at) && e.contains(&format!("key `{key}`: ")) && e.contains(expected),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn a_bad_environment_variable_is_named() {
        let env = |k: &str| (k == "CUSTOS_SESSION_IDLE_MINUTES").then(|| "ten".to_owned());
        let e = resolve(&serve_args(&["--store", "/s"]), &env).unwrap_err().to_string();
        assert_eq!(
            e,
            "environment variable CUSTOS_SESSION_IDLE_MINUTES: `ten` is not a number of minutes: expected a whole number from 1 to 1440"
        );
    }

    #[test]
    fn a_missing_file_or_store_is_refused() {
        let e =
            resolve(&serve_args(&["--config", "/nonexistent/custos.toml"]), &no_env).unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/custos.toml: the configuration file cannot be read"), "{e}");
        let e = resolve(&serve_args(&[]), &no_env).unwrap_err().to_string();
        assert!(e.starts_with("no store to serve"), "{e}");
    }

    #[test]
    fn the_readme_documents_every_key() {
        let readme = include_str!("../README.md");
        for key in &KEYS {
            let row = format!(
                "| `{}` | `{}` | `{}` | {} | {} |",
                key.name, key.env, key.flag, key.meaning, key.default
            );
            assert!(readme.contains(&row), "README.md has no row `{row}`");
        }
    }
}
