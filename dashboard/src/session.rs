//! Sessions, CSRF tokens and the login rate limit.
//!
//! A session id is 32 random bytes from a cryptographic generator seeded by the operating
//! system (`rand::rng`), new at every
//! login (so a session id planted before login is worthless), held only in memory: a restart
//! logs everyone out. Each session has its own CSRF token, which every state-changing form
//! carries; the login form, before any session exists, carries a token that must equal the
//! one in its own short-lived cookie.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::authz::Viewer;

/// The session cookie's name.
pub const COOKIE: &str = "custos_session";
/// The login form's CSRF cookie's name.
pub const LOGIN_COOKIE: &str = "custos_login";
/// How long a session lasts without use, unless configured (see [`Limits`]).
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// How long a session lasts at most, however busy: a stolen session id is worth a working
/// day, not forever.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Failed logins allowed per account and client address together before each further try
/// must wait: 30 s after the last failure, then 60, 120, … up to [`WINDOW`]. A limit on the
/// pair, not on the account, so that failures from elsewhere never keep the owner out.
pub const MAX_FAILURES: u32 = 5;
/// The longest wait between tries, and how long failures are remembered.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);

/// The wait after `n` failures in a row.
fn backoff(n: u32) -> Duration {
    if n < MAX_FAILURES {
        return Duration::ZERO;
    }
    Duration::from_secs(30u64 << (n - MAX_FAILURES).min(16)).min(WINDOW)
}

/// The key of the login limit: an account name and a client address together.
pub fn limit_key(name: &str, client: std::net::IpAddr) -> String {
    format!("{client}|{name}")
}

/// A fresh random token (hex of 32 bytes).
pub fn token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// One logged-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub viewer: Viewer,
    /// The token every state-changing form must carry.
    pub csrf: String,
    /// The account's [`stamp`](crate::account::Account::stamp) at login.
    pub stamp: String,
    started: Instant,
    last_used: Instant,
}

impl Session {
    /// Whether the session has ended by itself: unused for `limits.idle`, or older than
    /// `limits.lifetime`.
    fn expired(&self, limits: Limits) -> bool {
        self.last_used.elapsed() >= limits.idle || self.started.elapsed() >= limits.lifetime
    }
}

/// How long sessions last: [`IDLE`] and [`LIFETIME`] unless the server is configured otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Without use.
    pub idle: Duration,
    /// At most, however busy.
    pub lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { idle: IDLE, lifetime: LIFETIME }
    }
}

/// Every live session, and recent failed logins.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    limits: Limits,
}

impl Sessions {
    /// No sessions yet, each to last as `limits` say.
    pub fn new(limits: Limits) -> Sessions {
        Sessions { limits, ..Sessions::default() }
    }

    /// How long sessions last.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Starts a session for `viewer`, logged in as an account of `stamp`; returns its id.
    pub fn start(&self, viewer: Viewer, stamp: String) -> String {
        let id = token();
        let now = Instant::now();
        let session = Session { viewer, csrf: token(), stamp, started: now, last_used: now };
        if let Ok(mut live) = self.live.lock() {
            live.retain(|_, s| !s.expired(self.limits));
            live.insert(id.clone(), session);
        }
        id
    }

    /// The session `id`, if live (and marks it used).
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut live = self.live.lock().ok()?;
        let s = live.get_mut(id)?;
        if s.expired(self.limits) {
            live.remove(id);
            return None;
        }
        s.last_used = Instant::now();
        Some(s.clone())
    }

    /// Ends the session `id`.
    pub fn end(&self, id: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(id);
        }
    }

    /// Takes one try at logging in under `key` ([`limit_key`]), or says how many seconds
    /// to wait. The try counts as a failure from now on, until [`succeeded`](Sessions::succeeded):
    /// tries made at the same moment cannot slip past the limit together.
    pub fn attempt(&self, key: &str) -> Result<(), u64> {
        let Ok(mut failures) = self.failures.lock() else { return Err(1) };
        let e = failures.entry(key.to_owned()).or_insert((0, Instant::now()));
        if e.1.elapsed() >= WINDOW {
            *e = (0, Instant::now());
        }
        let wait = backoff(e.0).saturating_sub(e.1.elapsed());
        if !wait.is_zero() {
            // Whole seconds, rounded up: never an invitation to come back too early.
            return Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        }
        e.0 += 1;
        e.1 = Instant::now();
        Ok(())
    }

    /// Marks the try under `key` failed, now: the wait runs from the end of the try.
    pub fn failed(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock()
            && let Some(e) = failures.get_mut(key)
        {
            e.1 = Instant::now();
        }
    }

    /// Forgets the failures of `key` after a successful login.
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }

    /// Lifts the limit of the account `name` for every address (an operator's unlock).
    pub fn forget_failures_of(&self, name: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.retain(|k, _| k.rsplit_once('|').is_none_or(|(_, n)| n != name));
        }
    }

    /// Ends every session of the account `name`.
    pub fn end_all_of(&self, name: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.retain(|_, s| s.viewer.name != name);
        }
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').map(str::trim).find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Two tokens equal, compared in constant time.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sessions_are_new_at_each_start_and_end_on_logout() {
        let s = Sessions::default();
        let v = Viewer {
            name: "a".into(),
            role: "edps".into(),
            member_state: String::new(),
            controller: String::new(),
        };
        let (a, b) = (s.start(v.clone(), "stamp".into()), s.start(v, "stamp".into()));
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.get(&a).is_some());
        s.end(&a);
        assert!(s.get(&a).is_none() && s.get(&b).is_some());
    }

    #[test]
    fn a_session_ends_after_the_configured_idle_time_or_lifetime() {
        let v = Viewer {
            name: "a".into(),
            role: "edps".into(),
            member_state: String::new(),
            controller: String::new(),
        };
        let (second, long) = (Duration::from_secs(1), Duration::from_secs(600));
        // Used after 0.6 s, so never idle for long, but past its lifetime at 1.2 s all the same.
        let s = Sessions::new(Limits { idle: long, lifetime: second });
        let id = s.start(v.clone(), "stamp".into());
        assert!(s.get(&id).is_some());
        std::thread::sleep(second * 6 / 10);
        assert!(s.get(&id).is_some(), "ended before its lifetime");
        std::thread::sleep(second * 6 / 10);
        assert!(s.get(&id).is_none(), "lived past its lifetime");
        // Unused for its idle time: ended, though young.
        let s = Sessions::new(Limits { idle: second, lifetime: long });
        let id = s.start(v, "stamp".into());
        assert!(s.get(&id).is_some());
        std::thread::sleep(second * 11 / 10);
        assert!(s.get(&id).is_none(), "lived past its idle time");
        assert_eq!(Sessions::default().limits(), Limits { idle: IDLE, lifetime: LIFETIME });
    }

    #[test]
    fn five_failures_of_one_account_from_one_address_make_that_pair_wait_and_no_other() {
        let s = Sessions::default();
        let here: std::net::IpAddr = "127.0.0.2".parse().unwrap();
        let there: std::net::IpAddr = "127.0.0.3".parse().unwrap();
        let key = limit_key("edps", here);
        for _ in 0..MAX_FAILURES {
            assert!(s.attempt(&key).is_ok());
        }
        // The sixth try waits, however soon it comes: the tries in flight count.
        assert_eq!(s.attempt(&key), Err(30));
        // The owner, from another address, is not kept out; another account from here neither.
        assert!(s.attempt(&limit_key("edps", there)).is_ok());
        assert!(s.attempt(&limit_key("dpa-de", here)).is_ok());
        // An operator's unlock lifts it for every address.
        s.forget_failures_of("edps");
        assert!(s.attempt(&key).is_ok());
        s.succeeded(&key);
        assert!(s.attempt(&key).is_ok());
        assert_eq!(backoff(MAX_FAILURES + 3), Duration::from_secs(240));
        assert_eq!(backoff(MAX_FAILURES + 40), WINDOW);
    }

    #[test]
    fn cookies_and_tokens() {
        assert_eq!(cookie("a=1; custos_session=abc; b=2", COOKIE), Some("abc"));
        assert_eq!(cookie("custos_session_x=1", COOKIE), None);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
