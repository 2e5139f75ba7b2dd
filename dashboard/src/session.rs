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
/// How long a session lasts without use.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// Failed logins allowed per name and per client within [`WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// The window of the login rate limit.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);

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
    last_used: Instant,
}

/// Every live session, and recent failed logins.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Sessions {
    /// Starts a session for `viewer`; returns its id.
    pub fn start(&self, viewer: Viewer) -> String {
        let id = token();
        let session = Session { viewer, csrf: token(), last_used: Instant::now() };
        if let Ok(mut live) = self.live.lock() {
            live.retain(|_, s| s.last_used.elapsed() < IDLE);
            live.insert(id.clone(), session);
        }
        id
    }

    /// The session `id`, if live (and marks it used).
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut live = self.live.lock().ok()?;
        let s = live.get_mut(id)?;
        if s.last_used.elapsed() >= IDLE {
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

    /// Seconds to wait if `key` (a name, or a client address) failed too often lately.
    pub fn blocked(&self, key: &str) -> Option<u64> {
        let failures = self.failures.lock().ok()?;
        let (n, since) = failures.get(key)?;
        let left = WINDOW.checked_sub(since.elapsed())?;
        (*n >= MAX_FAILURES).then(|| left.as_secs().max(1))
    }

    /// Records a failed login for `key`.
    pub fn failed(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            let e = failures.entry(key.to_owned()).or_insert((0, Instant::now()));
            if e.1.elapsed() >= WINDOW {
                *e = (0, Instant::now());
            }
            e.0 += 1;
        }
    }

    /// Forgets the failures of `key` after a successful login.
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
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
        let (a, b) = (s.start(v.clone()), s.start(v));
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.get(&a).is_some());
        s.end(&a);
        assert!(s.get(&a).is_none() && s.get(&b).is_some());
    }

    #[test]
    fn five_failures_block_for_the_window() {
        let s = Sessions::default();
        for _ in 0..MAX_FAILURES - 1 {
            s.failed("x");
        }
        assert!(s.blocked("x").is_none());
        s.failed("x");
        assert!(s.blocked("x").is_some_and(|secs| secs <= WINDOW.as_secs()));
        s.succeeded("x");
        assert!(s.blocked("x").is_none());
    }

    #[test]
    fn cookies_and_tokens() {
        assert_eq!(cookie("a=1; custos_session=abc; b=2", COOKIE), Some("abc"));
        assert_eq!(cookie("custos_session_x=1", COOKIE), None);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
